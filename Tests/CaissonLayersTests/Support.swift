import CArchive
import CaissonSquashfs
import Foundation
import Testing
@testable import CaissonLayers
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Tar layers built in memory with libarchive's writer

/// One tar entry to write. The factory names follow containerd's tartest (`symlink(target, name)`,
/// `link(target, name)`), so the breakout table reads like the original.
struct TarEntry: Sendable {
    enum Kind: Sendable {
        case directory
        case file([UInt8])
        case symlink(String)
        case hardLink(String)
        case fifo
        case characterDevice(major: Int, minor: Int)
        case blockDevice(major: Int, minor: Int)
    }

    var path: String
    var kind: Kind
    var mode: UInt16
    var mtime: Int64 = 1_700_000_000
    var xattrs: [(String, [UInt8])] = []
    /// Data regions (offset, length) of a sparse file; the rest of `.file`'s bytes must be zeros.
    var sparse: [(Int, Int)] = []

    static func dir(_ path: String, _ mode: UInt16 = 0o755) -> TarEntry { TarEntry(path: path, kind: .directory, mode: mode) }
    static func file(_ path: String, _ content: String, _ mode: UInt16 = 0o644) -> TarEntry {
        TarEntry(path: path, kind: .file(Array(content.utf8)), mode: mode)
    }
    static func file(_ path: String, bytes: [UInt8], _ mode: UInt16 = 0o644) -> TarEntry {
        TarEntry(path: path, kind: .file(bytes), mode: mode)
    }
    static func symlink(_ target: String, _ name: String) -> TarEntry { TarEntry(path: name, kind: .symlink(target), mode: 0o777) }
    static func link(_ target: String, _ name: String) -> TarEntry { TarEntry(path: name, kind: .hardLink(target), mode: 0o644) }
    /// A whiteout as layers carry them: an empty regular file.
    static func whiteout(_ path: String) -> TarEntry { .file(path, "") }
    static func fifo(_ path: String, _ mode: UInt16 = 0o644) -> TarEntry { TarEntry(path: path, kind: .fifo, mode: mode) }

    func with(mtime: Int64) -> TarEntry {
        var copy = self
        copy.mtime = mtime
        return copy
    }

    func with(xattr name: String, _ value: String) -> TarEntry {
        var copy = self
        copy.xattrs.append((name, Array(value.utf8)))
        return copy
    }
}

private final class Collector {
    var bytes: [UInt8] = []
}

private let collect: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> la_ssize_t = { _, client, buffer, length in
    let collector = Unmanaged<Collector>.fromOpaque(client!).takeUnretainedValue()
    if let buffer, length > 0 {
        collector.bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
    }
    return la_ssize_t(length)
}

/// Writes an archive with libarchive into memory.
private func writeArchive(_ configure: (OpaquePointer) -> Void, _ body: (OpaquePointer) -> Void) -> [UInt8] {
    let archive = archive_write_new()!
    defer { archive_write_free(archive) }
    configure(archive)
    let collector = Collector()
    let opened = archive_write_open(archive, Unmanaged.passUnretained(collector).toOpaque(), nil, collect, nil)
    precondition(opened == ARCHIVE_OK, String(cString: archive_error_string(archive)))
    body(archive)
    precondition(archive_write_close(archive) == ARCHIVE_OK, String(cString: archive_error_string(archive)))
    return collector.bytes
}

private let emptyNamePlaceholder = "caisson-empty-name-placeholder"

/// An uncompressed pax (restricted) tar of `entries`, padded like tar does (10 KiB records).
/// libarchive refuses to write an empty name, so such an entry is written under a placeholder
/// and its ustar header patched afterwards.
func makeTar(_ entries: [TarEntry]) -> [UInt8] {
    var tar = writeArchive({ archive_write_set_format_pax_restricted($0) }) { archive in
        for item in entries {
            let entry = archive_entry_new()!
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname(entry, item.path.isEmpty ? emptyNamePlaceholder : item.path)
            archive_entry_set_perm(entry, mode_t(item.mode))
            archive_entry_set_mtime(entry, time_t(item.mtime), 0)
            archive_entry_set_uid(entry, 1000)
            archive_entry_set_gid(entry, 1000)
            for (name, value) in item.xattrs {
                value.withUnsafeBytes { archive_entry_xattr_add_entry(entry, name, $0.baseAddress, $0.count) }
            }
            var body: [UInt8] = []
            switch item.kind {
            case .directory:
                archive_entry_set_filetype(entry, 0o040000)
            case .file(let bytes):
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_set_size(entry, la_int64_t(bytes.count))
                body = bytes
                for (offset, length) in item.sparse {  // checked against the size: after it
                    archive_entry_sparse_add_entry(entry, la_int64_t(offset), la_int64_t(length))
                }
            case .symlink(let target):
                archive_entry_set_filetype(entry, 0o120000)
                archive_entry_set_symlink(entry, target)
            case .hardLink(let target):
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_set_hardlink(entry, target)
            case .fifo:
                archive_entry_set_filetype(entry, 0o010000)
            case .characterDevice(let major, let minor):
                archive_entry_set_filetype(entry, 0o020000)
                archive_entry_set_rdevmajor(entry, dev_t(major))
                archive_entry_set_rdevminor(entry, dev_t(minor))
            case .blockDevice(let major, let minor):
                archive_entry_set_filetype(entry, 0o060000)
                archive_entry_set_rdevmajor(entry, dev_t(major))
                archive_entry_set_rdevminor(entry, dev_t(minor))
            }
            // ARCHIVE_WARN: a non-ASCII name libarchive cannot convert in the C locale; it writes
            // the bytes as they are (hdrcharset=BINARY), which is what the test wants.
            let status = archive_write_header(archive, entry)
            precondition(status >= ARCHIVE_WARN, "\(item.path): \(String(cString: archive_error_string(archive)))")
            if !body.isEmpty {
                let written = body.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
                precondition(written == body.count)
            }
        }
    }
    patchEmptyNames(&tar)
    return tar
}

/// Empties the name field of every ustar header that carries the placeholder, fixing its checksum.
private func patchEmptyNames(_ tar: inout [UInt8]) {
    let placeholder = Array(emptyNamePlaceholder.utf8)
    var offset = 0
    while offset + 512 <= tar.count {
        if Array(tar[offset..<offset + placeholder.count]) == placeholder, tar[offset + placeholder.count] == 0 {
            for index in offset..<offset + 100 { tar[index] = 0 }
            for index in offset + 148..<offset + 156 { tar[index] = 0x20 }
            let sum = tar[offset..<offset + 512].reduce(0) { $0 + Int($1) }
            let digits = Array(String(sum, radix: 8).utf8)
            let field = [UInt8](repeating: 0x30, count: 6 - digits.count) + digits + [0, 0x20]
            tar.replaceSubrange(offset + 148..<offset + 156, with: field)
        }
        offset += 512
    }
}

enum Compression: String, CaseIterable, Sendable {
    case none, gzip, zstd, xz, bzip2
}

/// `bytes` compressed as one stream (libarchive's "raw" format with a filter).
func compress(_ bytes: [UInt8], _ compression: Compression) -> [UInt8] {
    if compression == .none { return bytes }
    return writeArchive({ archive in
        archive_write_set_format_raw(archive)
        archive_write_set_bytes_in_last_block(archive, 1)  // no zero padding after the compressed stream
        switch compression {
        case .gzip: archive_write_add_filter_gzip(archive)
        case .zstd: archive_write_add_filter_zstd(archive)
        case .xz: archive_write_add_filter_xz(archive)
        case .bzip2: archive_write_add_filter_bzip2(archive)
        case .none: break
        }
    }) { archive in
        let entry = archive_entry_new()!
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, "layer.tar")
        archive_entry_set_filetype(entry, 0o100000)
        archive_entry_set_size(entry, la_int64_t(bytes.count))
        precondition(archive_write_header(archive, entry) == ARCHIVE_OK)
        if !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
            precondition(written == bytes.count)
        }
    }
}

func layer(_ entries: [TarEntry], _ compression: Compression = .none) -> [UInt8] {
    compress(makeTar(entries), compression)
}

/// A `read` function over bytes in memory, handing out at most `chunk` bytes a call.
func reader(_ bytes: [UInt8], chunk: Int = 64 * 1024) -> (UnsafeMutableRawBufferPointer) throws -> Int {
    final class Cursor: @unchecked Sendable { var offset = 0 }
    let cursor = Cursor()
    return { buffer in
        let count = min(buffer.count, chunk, bytes.count - cursor.offset)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + cursor.offset, byteCount: count)
        }
        cursor.offset += count
        return count
    }
}

// MARK: - An in-memory sink and a merger harness

struct SinkFailure: Error, CustomStringConvertible {
    var description: String { "the image file is full" }
}

/// Keeps every stored file's bytes, so tests can compare contents.
final class MemorySink: FileDataSink {
    var blobs: [[UInt8]] = []
    /// Fail when asked to store more than this many files.
    var failAfter: Int?
    /// The largest buffer `read` was handed (the sink decides it; streaming means it is bounded).
    var bufferSize = 4096

    func writeFileData(_ read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> FileData {
        if let failAfter, blobs.count >= failAfter { throw SinkFailure() }
        var bytes: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let count = try read(buffer)
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        blobs.append(bytes)
        return FileData(id: blobs.count - 1, size: UInt64(bytes.count))
    }

    func contents(_ node: FileNode) -> [UInt8]? {
        guard let data = node.data else { return nil }
        return blobs[data.id]
    }
}

/// A merger with a memory sink and collected warnings.
final class Harness {
    let sink = MemorySink()
    private(set) var warnings: [String] = []
    private(set) lazy var merger = LayerMerger(sink: sink, warn: { [unowned self] in self.warnings.append($0) })

    @discardableResult
    func apply(_ bytes: [UInt8], name: String = "layer", chunk: Int = 64 * 1024) throws(LayerError) -> String {
        try merger.apply(layer: reader(bytes, chunk: chunk), name: name)
    }

    @discardableResult
    func apply(_ entries: [TarEntry], _ compression: Compression = .none, name: String = "layer") throws(LayerError) -> String {
        try apply(layer(entries, compression), name: name)
    }

    /// The `LayerError` `body` throws, or nil (any other error fails the test).
    func failure(_ body: (Harness) throws -> Void) -> LayerError? {
        do {
            try body(self)
            return nil
        } catch let error as LayerError {
            return error
        } catch {
            Issue.record("not a LayerError: \(error)")
            return nil
        }
    }

    var tree: [String] { render(merger.root, sink) }

    /// The node at `path`, symlinks followed inside the tree (the last one too when `follow`).
    func node(_ path: String, follow: Bool = false) -> FileNode? {
        lookup(merger.root, path, followLast: follow)
    }
}

// MARK: - Trees as text

/// One line per node under the root, sorted by path:
///
///     d 0755 /etc
///     f 0644 /etc/passwd = "inside" #1      (#N: the same node appears under several names)
///     l /localetc -> /etc
///     p 0644 /run/fifo
func render(_ root: FileNode, _ sink: MemorySink) -> [String] {
    var references: [ObjectIdentifier: Int] = [:]
    func count(_ node: FileNode) {
        for child in node.children.values {
            references[ObjectIdentifier(child), default: 0] += 1
            count(child)
        }
    }
    count(root)
    var groups: [ObjectIdentifier: Int] = [:]
    var lines: [String] = []
    func mode(_ node: FileNode) -> String {
        let digits = String(node.permissions, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
    func visit(_ node: FileNode, _ path: String) {
        for name in node.children.keys.sorted() {
            let child = node.children[name]!
            let childPath = path + "/" + name
            var line: String
            switch child.kind {
            case .directory: line = "d \(mode(child)) \(childPath)"
            case .regularFile:
                let text = sink.contents(child).map { String(decoding: $0, as: UTF8.self) } ?? "<no data>"
                line = "f \(mode(child)) \(childPath) = \"\(text)\""
            case .symlink(let target): line = "l \(childPath) -> \(target)"
            case .fifo: line = "p \(mode(child)) \(childPath)"
            case .socket: line = "s \(mode(child)) \(childPath)"
            }
            if references[ObjectIdentifier(child), default: 0] > 1 {
                let group = groups[ObjectIdentifier(child)] ?? (groups.count + 1)
                groups[ObjectIdentifier(child)] = group
                line += " #\(group)"
            }
            lines.append(line)
            if child.isDirectory { visit(child, childPath) }
        }
    }
    visit(root, "")
    return lines
}

/// Test-side path lookup, independent of the merger's: symlinks resolved in the tree, `..` stops
/// at the root. Nil when missing.
func lookup(_ root: FileNode, _ path: String, followLast: Bool) -> FileNode? {
    var stack = [root]
    var pending = path.split(separator: "/").map(String.init).reversed() as [String]
    var hops = 0
    while let component = pending.popLast() {
        if component == "." { continue }
        if component == ".." {
            if stack.count > 1 { stack.removeLast() }
            continue
        }
        guard let child = stack.last!.children[component] else { return nil }
        if case .symlink(let target) = child.kind, followLast || !pending.isEmpty {
            hops += 1
            if hops > 40 { return nil }
            if target.hasPrefix("/") { stack = [root] }
            pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
            continue
        }
        if !pending.isEmpty && !child.isDirectory { return nil }
        stack.append(child)
    }
    return stack.last!
}

// MARK: - The host side: proof that nothing is written

/// What a set of host paths look like (lstat plus file contents), for before/after comparisons.
struct HostSnapshot: Equatable, CustomStringConvertible {
    var entries: [String: String] = [:]

    /// `paths` as given (not recursive).
    static func of(paths: [String]) -> HostSnapshot {
        var snapshot = HostSnapshot()
        for path in paths { snapshot.entries[path] = describe(path) }
        return snapshot
    }

    /// Everything under `directory`, recursively, plus the directory itself.
    static func tree(_ directory: String) -> HostSnapshot {
        var snapshot = HostSnapshot()
        func walk(_ path: String) {
            snapshot.entries[path] = describe(path)
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
            for name in names.sorted() { walk(path + "/" + name) }
        }
        walk(directory)
        return snapshot
    }

    private static func describe(_ path: String) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "absent (errno \(errno))" }
        var text = "mode \(String(info.st_mode, radix: 8)) ino \(info.st_ino) size \(info.st_size) "
            + "mtime \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) ctime \(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
        if info.st_mode & S_IFMT == S_IFREG, let data = FileManager.default.contents(atPath: path) {
            text += " sha256 \(SHA256Tests.hash(Array(data)))"
        }
        return text
    }

    var description: String {
        entries.keys.sorted().map { "\($0): \(entries[$0]!)" }.joined(separator: "\n")
    }
}

/// A scratch directory standing for "the host outside the image", with files a breakout would touch.
final class Sentinel {
    let path: String

    init() throws {
        var template = Array("/tmp/caisson-layers-sentinel-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: made)
        try FileManager.default.createDirectory(atPath: path + "/etc", withIntermediateDirectories: true)
        try write("etc/passwd", "HOST", mode: 0o644)
        try write("perm400", "...", mode: 0o400)
        try write("also-exists-outside-root", "...", mode: 0o640)
    }

    private func write(_ name: String, _ text: String, mode: Int) throws {
        let file = path + "/" + name
        guard FileManager.default.createFile(atPath: file, contents: Data(text.utf8)) else { throw POSIXError(.EIO) }
        chmod(file, mode_t(mode))
    }

    var snapshot: HostSnapshot { HostSnapshot.tree(path) }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// `sha256sum` of bytes, through the real tool.
func sha256sum(_ bytes: [UInt8]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    // sha256sum reads while we write and prints only at the end: no deadlock.
    input.fileHandleForWriting.write(Data(bytes))
    try input.fileHandleForWriting.close()
    let result = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: result.prefix(64), as: UTF8.self)
}
