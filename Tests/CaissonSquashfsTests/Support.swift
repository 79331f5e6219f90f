import CaissonSystem
import Testing
@testable import CaissonSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ prefix: String = "caisson-sqfs") throws {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else { throw SystemError("mkdtemp") }
        path = String(cString: result)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() {
        _ = try? Subprocess.run(["/bin/rm", "-rf", path], quiet: true)
    }
}

/// The result of running a tool: exit status, stdout and stderr.
struct ToolResult {
    let status: Int32
    let output: [UInt8]
    let errors: String
    var text: String { String(decoding: output, as: UTF8.self) }
    var lines: [String] { text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
}

enum Tool {
    /// Runs a program (absolute path) or `/bin/sh -c` line, capturing its output through
    /// temporary files (listings of thousands of files would fill a pipe).
    static func run(_ argv: [String]) throws -> ToolResult {
        let scratch = try TemporaryDirectory("caisson-sqfs-tool")
        defer { scratch.remove() }
        let outPath = scratch.file("out"), errPath = scratch.file("err")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        if rc != 0 { throw SystemError("spawn", path: argv[0], errno: rc) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = try FileDescriptor.open(outPath, O_RDONLY).readAll()
        let errors = String(decoding: try FileDescriptor.open(errPath, O_RDONLY).readAll(), as: UTF8.self)
        return ToolResult(status: exit, output: output, errors: errors)
    }

    static func shell(_ line: String) throws -> ToolResult { try run(["/bin/sh", "-c", line]) }

    static func exists(_ path: String) -> Bool { access(path, X_OK) == 0 }
}

/// A deterministic pseudo-random generator (SplitMix64), so that failures reproduce.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        result.withUnsafeMutableBytes { raw in
            var index = 0
            while index < count {
                var word = next()
                let n = min(8, count - index)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: index).copyMemory(from: $0.baseAddress!, byteCount: n) }
                index += n
            }
        }
        return result
    }

    /// Text-like bytes: words from a small vocabulary, compressible like source code or configs.
    mutating func text(_ count: Int) -> [UInt8] {
        let words = ["the", "container", "image", "layer", "squashfs", "block", "inode", "cluster",
                     "node", "job", "fn", "return", "let", "var", "if", "else", "{", "}", "(", ")",
                     "0x1f", "42", "path", "/usr/lib", "export", "import", "struct", "\n", "\t"]
        var result: [UInt8] = []
        result.reserveCapacity(count + 16)
        while result.count < count {
            result.append(contentsOf: words[Int(next() % UInt64(words.count))].utf8)
            result.append(0x20)
        }
        return Array(result.prefix(count))
    }
}

extension FileDataSink {
    /// Feeds bytes in uneven pieces, as a layer stream would.
    func store(_ bytes: [UInt8], piece: Int = 50_000) throws -> FileData {
        var offset = 0
        var turn = 0
        return try writeFileData { buffer in
            turn += 1
            let want = min(buffer.count, max(1, piece - (turn % 7) * 997), bytes.count - offset)
            if want <= 0 { return 0 }
            bytes.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: want)
            }
            offset += want
            return want
        }
    }
}

extension FileNode {
    /// Adds a child and returns it.
    @discardableResult
    func add(_ name: String, _ child: FileNode) -> FileNode {
        children[name] = child
        return child
    }

    static func file(_ data: FileData?, permissions: UInt16 = 0o644, modificationTime: Int64 = 1_700_000_000,
                     xattrs: [String: [UInt8]] = [:]) -> FileNode {
        FileNode(kind: .regularFile, permissions: permissions, modificationTime: modificationTime,
                 xattrs: xattrs, data: data)
    }

    static func dir(_ permissions: UInt16 = 0o755, modificationTime: Int64 = 1_700_000_000) -> FileNode {
        FileNode.directory(permissions: permissions, modificationTime: modificationTime)
    }
}

/// One line of `unsquashfs -lln`: "drwxr-xr-x 0/0 51 2024-01-01 00:00 squashfs-root/path -> target".
struct ListingEntry: Equatable {
    let mode: String
    let owner: String
    let size: UInt64
    let path: String
    let target: String?

    static func parse(_ lines: [String]) -> [String: ListingEntry] {
        var result: [String: ListingEntry] = [:]
        for line in lines {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true).map(String.init)
            guard fields.count == 6, let size = UInt64(fields[2]) else { continue }
            var rest = fields[5]
            var target: String?
            if let (before, after) = rest.splitOnce(" -> ") {
                target = after
                rest = before
            }
            let path = rest == "squashfs-root" ? "/" : String(rest.dropFirst("squashfs-root".count))
            result[path] = ListingEntry(mode: fields[0], owner: fields[1], size: size, path: path, target: target)
        }
        return result
    }
}

/// `rdsquashfs -s PATH IMG` as key/value pairs ("Inode number" → "3").
func inodeStat(_ image: String, _ path: String) throws -> [String: String] {
    let result = try Tool.run(["/usr/bin/rdsquashfs", "-s", path, image])
    #expect(result.status == 0, "rdsquashfs -s \(path): \(result.errors)")
    var fields: [String: String] = [:]
    for line in result.lines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: " ")
    }
    return fields
}

extension String {
    /// The text before and after the first occurrence of `separator`.
    func splitOnce(_ separator: String) -> (String, String)? {
        let text = Array(utf8), needle = Array(separator.utf8)
        guard needle.count <= text.count else { return nil }
        for start in 0...(text.count - needle.count) where text[start..<start + needle.count].elementsEqual(needle) {
            return (String(decoding: text[..<start], as: UTF8.self),
                    String(decoding: text[(start + needle.count)...], as: UTF8.self))
        }
        return nil
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}

func readFile(_ path: String) throws -> [UInt8] {
    try FileDescriptor.open(path, O_RDONLY).readAll()
}

/// getxattr/lgetxattr from libc (their header, sys/xattr.h, is not in Swift's Glibc module).
enum ExtendedAttributes {
    private typealias Get = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int

    private static func function(_ name: String) -> Get? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: Get.self)
    }

    /// The value, or nil when the attribute is absent (or cannot be read).
    static func get(_ path: String, _ name: String, followingSymlinks: Bool = true) -> [UInt8]? {
        guard let call = function(followingSymlinks ? "getxattr" : "lgetxattr") else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let length = buffer.withUnsafeMutableBytes { call(path, name, $0.baseAddress, $0.count) }
        return length < 0 ? nil : Array(buffer.prefix(length))
    }
}
