import CaissonSystem
import Testing
@testable import CaissonSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// SquashfsExtractor: images written by SquashfsWriter (and mksquashfs) unpacked and compared
/// path by path with what went in, and with unsquashfs's extraction of the same image; images
/// with a junk prefix; crafted (byte-patched) and truncated or corrupted images.
@Suite(.serialized)
struct ExtractorTests {
    static let unsquashfsPresent = Tool.exists("/usr/bin/unsquashfs")
    static let isRoot = geteuid() == 0
    /// unsquashfs run by another user than root leaves out setuid and setgid bits; the
    /// extractor keeps them. The sample's files with such bits, for comparisons then.
    static let setuidFiles = isRoot ? [] : ["bin/setuid", "bin/setgid", "bin/all-bits"]
    static let mksquashfsPresent = Tool.exists("/usr/bin/mksquashfs")

    // MARK: - Expected trees and snapshots of extracted ones

    enum Kind: Equatable, CustomStringConvertible {
        case directory
        case file([UInt8])
        case symlink(String)
        case fifo

        var description: String {
            switch self {
            case .directory: return "directory"
            case .file(let bytes): return "file of \(bytes.count) bytes"
            case .symlink(let target): return "symlink to \(target)"
            case .fifo: return "fifo"
            }
        }
    }

    struct Expected {
        var kind: Kind
        var mode: mode_t
        var time: Int
    }

    /// Builds a FileNode tree in a writer and, beside it, what extracting it must give.
    final class TreeBuilder {
        let writer: SquashfsWriter
        let root: FileNode
        var expected: [String: Expected]
        private var directories: [String: FileNode]

        init(_ writer: SquashfsWriter, rootMode: UInt16 = 0o755, rootTime: Int64 = 1_600_000_000) {
            self.writer = writer
            root = FileNode.dir(rootMode, modificationTime: rootTime)
            expected = ["/": Expected(kind: .directory, mode: mode_t(rootMode), time: Int(rootTime))]
            directories = ["/": root]
        }

        private func parent(_ path: String) -> (FileNode, String) {
            let slash = path.lastIndex(of: "/")!
            let parentPath = slash == path.startIndex ? "/" : String(path[..<slash])
            return (directories[parentPath]!, String(path[path.index(after: slash)...]))
        }

        @discardableResult
        func dir(_ path: String, _ mode: UInt16 = 0o755, time: Int64 = 1_650_000_000) -> FileNode {
            let (parent, name) = parent(path)
            let node = parent.add(name, .dir(mode, modificationTime: time))
            directories[path] = node
            expected[path] = Expected(kind: .directory, mode: mode_t(mode), time: Int(time))
            return node
        }

        @discardableResult
        func file(_ path: String, _ bytes: [UInt8], _ mode: UInt16 = 0o644, time: Int64 = 1_700_000_000,
                  noData: Bool = false) throws -> FileNode {
            let (parent, name) = parent(path)
            let node = parent.add(name, .file(noData ? nil : try writer.store(bytes), permissions: mode, modificationTime: time))
            expected[path] = Expected(kind: .file(bytes), mode: mode_t(mode), time: Int(time))
            return node
        }

        func symlink(_ path: String, _ target: String, time: Int64 = 1_700_000_001) {
            let (parent, name) = parent(path)
            parent.add(name, FileNode(kind: .symlink(target: target), permissions: 0o777, modificationTime: time))
            expected[path] = Expected(kind: .symlink(target), mode: 0o777, time: Int(time))
        }

        @discardableResult
        func fifo(_ path: String, _ mode: UInt16, time: Int64 = 1_700_000_002) -> FileNode {
            let (parent, name) = parent(path)
            let node = parent.add(name, FileNode(kind: .fifo, permissions: mode, modificationTime: time))
            expected[path] = Expected(kind: .fifo, mode: mode_t(mode), time: Int(time))
            return node
        }

        /// Another name for `node`, expected like the path it was first added under.
        func hardLink(_ path: String, to node: FileNode, like first: String) {
            let (parent, name) = parent(path)
            parent.add(name, node)
            expected[path] = expected[first]
        }

        /// An entry the extractor leaves out (a socket).
        func socket(_ path: String) {
            let (parent, name) = parent(path)
            parent.add(name, FileNode(kind: .socket, permissions: 0o755))
        }
    }

    struct Found {
        var st: stat
        var target: String?
    }

    /// Every path under `root` ("/" for the root itself), by lstat, never following symlinks.
    static func snapshot(_ root: String) -> [String: Found] {
        var result: [String: Found] = [:]
        var st = stat()
        guard lstat(root, &st) == 0 else { return result }
        result["/"] = Found(st: st)
        var pending = [""]
        while let relative = pending.popLast() {
            guard let stream = opendir(root + relative) else { continue }
            defer { closedir(stream) }
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                let path = relative + "/" + name
                var st = stat()
                guard lstat(root + path, &st) == 0 else { continue }
                var found = Found(st: st)
                if st.st_mode & S_IFMT == S_IFLNK { found.target = Files.readLink(root + path) }
                if st.st_mode & S_IFMT == S_IFDIR { pending.append(path) }
                result[path] = found
            }
        }
        return result
    }

    /// Checks an extracted tree against the expectation: the same paths, and for each the type,
    /// permission bits, modification time, contents or symlink target.
    static func verify(_ root: String, _ expected: [String: Expected], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let found = snapshot(root)
        let missing = Set(expected.keys).subtracting(found.keys).sorted()
        let extra = Set(found.keys).subtracting(expected.keys).sorted()
        #expect(missing.isEmpty, "missing from the extraction: \(missing.prefix(20))", sourceLocation: sourceLocation)
        #expect(extra.isEmpty, "not in the image: \(extra.prefix(20))", sourceLocation: sourceLocation)
        for (path, want) in expected.sorted(by: { $0.key < $1.key }) {
            guard let have = found[path] else { continue }
            let type = have.st.st_mode & S_IFMT
            switch want.kind {
            case .directory:
                #expect(type == S_IFDIR, "\(path) should be a directory", sourceLocation: sourceLocation)
            case .file(let bytes):
                #expect(type == S_IFREG, "\(path) should be a file", sourceLocation: sourceLocation)
                #expect(Int(have.st.st_size) == bytes.count, "size of \(path)", sourceLocation: sourceLocation)
                if type == S_IFREG {
                    // (Not root: a file without read permission is read after a temporary u+r.)
                    let locked = access(root + path, R_OK) != 0
                    if locked { chmod(root + path, have.st.st_mode & 0o7777 | 0o400) }
                    defer { if locked { chmod(root + path, have.st.st_mode & 0o7777) } }
                    let actual = try readFile(root + path)
                    #expect(actual == bytes, "contents of \(path)", sourceLocation: sourceLocation)
                }
            case .symlink(let target):
                #expect(type == S_IFLNK, "\(path) should be a symlink", sourceLocation: sourceLocation)
                #expect(have.target == target, "target of \(path)", sourceLocation: sourceLocation)
            case .fifo:
                #expect(type == S_IFIFO, "\(path) should be a fifo", sourceLocation: sourceLocation)
            }
            if type != S_IFLNK {
                #expect(have.st.st_mode & 0o7777 == want.mode,
                        "mode of \(path): \(String(have.st.st_mode & 0o7777, radix: 8)), expected \(String(want.mode, radix: 8))",
                        sourceLocation: sourceLocation)
            }
            #expect(have.st.st_mtim.tv_sec == want.time, "time of \(path): \(have.st.st_mtim.tv_sec), expected \(want.time)",
                    sourceLocation: sourceLocation)
        }
    }

    /// Two extracted trees have the same paths with the same types, modes, sizes, contents,
    /// targets (treecmp.py) and modification times.
    static func compareTrees(_ a: String, _ b: String, ignoring: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        // Not root: files and directories without owner read (or search) permission are made
        // readable on both sides alike, for treecmp to hash them.
        if !isRoot { _ = try Tool.run(["/bin/chmod", "-R", "u+rX", a, b]) }
        let script = fixture("treecmp.py")
        let result = try Tool.run(["/usr/bin/python3", script, a, b] + ignoring)
        #expect(result.status == 0, "treecmp: \(result.text)\(result.errors)", sourceLocation: sourceLocation)
        let left = snapshot(a), right = snapshot(b)
        var differences: [String] = []
        for (path, entry) in left where !ignoring.contains(where: { path == "/" + $0 || path.hasPrefix("/" + $0 + "/") }) {
            guard let other = right[path] else { continue }
            if entry.st.st_mtim.tv_sec != other.st.st_mtim.tv_sec {
                differences.append("\(path): \(entry.st.st_mtim.tv_sec) != \(other.st.st_mtim.tv_sec)")
            }
        }
        #expect(differences.isEmpty, "modification times differ: \(differences.prefix(20))", sourceLocation: sourceLocation)
    }

    static func fixture(_ name: String) -> String {
        let here = #filePath
        return here.splitOnce("/CaissonSquashfsTests/")!.0 + "/Fixtures/" + name
    }

    /// Removes a tree even where it holds read-only directories.
    static func removeTree(_ path: String) {
        _ = try? Tool.run(["/bin/chmod", "-R", "u+rwX", path])
        _ = try? Tool.run(["/bin/rm", "-rf", path])
    }

    static func makeDirectory(_ path: String) throws {
        try check("mkdir", path: path) { mkdir(path, 0o755) }
    }

    /// The full sample tree: every kind of entry and the awkward cases.
    static func buildSample(_ writer: SquashfsWriter, blockSize: Int) throws -> TreeBuilder {
        var random = SplitMix(seed: 0xE7_7AC7)
        let tree = TreeBuilder(writer)
        try tree.file("/empty", [])
        try tree.file("/nodata", [], 0o600, noData: true)
        try tree.file("/one-block", random.bytes(blockSize))
        try tree.file("/big", random.bytes(blockSize * 7 / 2 + 17))
        try tree.file("/text", random.text(300_000), 0o640)
        // Zero blocks are stored as sparse blocks and must come back as holes.
        try tree.file("/sparse", random.bytes(blockSize) + [UInt8](repeating: 0, count: blockSize * 6) + random.bytes(100))
        try tree.file("/sparse-end", random.bytes(blockSize) + [UInt8](repeating: 0, count: blockSize * 3))
        try tree.file("/all-zero", [UInt8](repeating: 0, count: blockSize * 4))
        // Larger than one work chunk (8 MiB): written by several workers.
        try tree.file("/huge", random.bytes(9 << 20 + 1234))

        tree.dir("/bin", 0o755, time: 0)
        try tree.file("/bin/setuid", random.text(5000), 0o4755, time: 1)
        try tree.file("/bin/setgid", random.text(100), 0o2711, time: 4_294_967_295)
        try tree.file("/bin/all-bits", random.text(10), 0o7777, time: 1_234_567_890)
        try tree.file("/bin/no-bits", random.text(10), 0o000)
        tree.dir("/tmp", 0o1777)

        // Read-only directories that still receive their contents.
        tree.dir("/ro", 0o555, time: 42)
        try tree.file("/ro/inside", random.text(2000), 0o444)
        tree.dir("/ro/deeper", 0o500, time: 43)
        try tree.file("/ro/deeper/file", random.text(20))
        tree.symlink("/ro/deeper/link", "../inside")

        tree.symlink("/absolute", "/etc/passwd")
        tree.symlink("/relative", "bin/setuid")
        tree.symlink("/dangling", "../no where/at all", time: 7)
        tree.symlink("/dots", "../../../../../../../etc")
        tree.fifo("/fifo", 0o640)
        tree.socket("/socket")

        // Hard links: a file under three names in three directories, a fifo and a symlink twice.
        tree.dir("/sub", 0o750)
        tree.dir("/sub/inner")
        let hard = try tree.file("/hard1", random.text(7000), 0o755, time: 99)
        tree.hardLink("/sub/hard2", to: hard, like: "/hard1")
        tree.hardLink("/sub/inner/hard3", to: hard, like: "/hard1")
        tree.hardLink("/ro/hard4", to: hard, like: "/hard1")
        let pipe = tree.fifo("/sub/pipe1", 0o600)
        tree.hardLink("/sub/pipe2", to: pipe, like: "/sub/pipe1")
        let link = FileNode(kind: .symlink(target: "hard1"), permissions: 0o777, modificationTime: 5)
        tree.root.add("link1", link)
        tree.root.children["sub"]!.add("link2", link)
        tree.expected["/link1"] = Expected(kind: .symlink("hard1"), mode: 0o777, time: 5)
        tree.expected["/sub/link2"] = tree.expected["/link1"]

        var deep = ""
        for level in 0..<24 {
            deep += "/d\(level)"
            tree.dir(deep, 0o755, time: Int64(level))
        }
        try tree.file(deep + "/bottom", random.text(333))

        // Many small files: fragment blocks shared by consecutive files, several batches.
        tree.dir("/many")
        for index in 0..<700 {
            try tree.file("/many/f\(index)", random.text(Int(random.next() % 3000) + 1))
        }
        try tree.file("/many/whole-block", random.bytes(blockSize))

        tree.dir("/names", 0o700)
        for name in ["with space", "é-ü", "-dash", "UPPER", "a.b.c", "~tilde", "\u{1F600}"] {
            try tree.file("/names/" + name, Array(name.utf8), 0o600)
        }
        return tree
    }

    // MARK: - Round trips

    static func writeSample(_ image: String, blockSize: Int, compression: SquashfsOptions.Compression = .zstd(level: 3)) throws -> TreeBuilder {
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: compression, blockSize: blockSize, jobs: 2))
        let sample = try buildSample(writer, blockSize: blockSize)
        try writer.finish(root: sample.root)
        return sample
    }

    @Test(arguments: [(4096, 2), (131072, 1), (131072, 3)])
    func everyKindOfEntryRoundTrips(blockSize: Int, jobs: Int) throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let image = directory.file("sample.sqsh")
        let sample = try Self.writeSample(image, blockSize: blockSize)

        let out = directory.file("out")
        try Self.makeDirectory(out)
        var warnings: [String] = []
        let summary = try SquashfsExtractor(imagePath: image).extract(into: out, jobs: jobs) { warnings.append($0) }
        try Self.verify(out, sample.expected)
        #expect(warnings.count == 1 && warnings.first?.contains("/socket") == true, "\(warnings)")
        #expect(summary.skipped == 1)
        #expect(summary.hardLinks == 3 + 1 + 1)
        #expect(summary.fifos == 2)

        // Hard links share an inode.
        let names = ["/hard1", "/sub/hard2", "/sub/inner/hard3", "/ro/hard4"]
        let inodes = names.compactMap { Files.lstat(out + $0)?.st_ino }
        #expect(inodes.count == 4 && Set(inodes).count == 1, "\(inodes)")
        #expect(Files.lstat(out + "/hard1")?.st_nlink == 4)
        #expect(Files.lstat(out + "/sub/pipe1")?.st_ino == Files.lstat(out + "/sub/pipe2")?.st_ino)
        #expect(Files.lstat(out + "/link1")?.st_ino == Files.lstat(out + "/sub/link2")?.st_ino)
        #expect(Files.lstat(out + "/one-block")?.st_nlink == 1)

        // Zero blocks are holes: far fewer bytes allocated than the size.
        for path in ["/sparse", "/sparse-end", "/all-zero"] {
            let st = try #require(Files.lstat(out + path))
            #expect(Int(st.st_blocks) * 512 <= Int(st.st_size) / 2, "\(path): \(st.st_blocks) blocks for \(st.st_size) bytes")
        }
    }

    @Test(.enabled(if: unsquashfsPresent), arguments: [SquashfsOptions.Compression.zstd(level: 3), .gzip(level: 6), .lz4, .xz, .none])
    func sameTreeAsUnsquashfs(compression: SquashfsOptions.Compression) throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let image = directory.file("sample.sqsh")
        _ = try Self.writeSample(image, blockSize: 65536, compression: compression)
        let ours = directory.file("ours")
        try Self.makeDirectory(ours)
        try SquashfsExtractor(imagePath: image).extract(into: ours, jobs: 2)
        let theirs = directory.file("theirs")
        let result = try Tool.run(["/usr/bin/unsquashfs", "-no-xattrs", "-n", "-d", theirs, image])
        #expect(result.status == 0, "unsquashfs: \(result.errors)")
        // unsquashfs creates the socket (as a socket or not at all, by version); we leave it out.
        try Self.compareTrees(ours, theirs, ignoring: ["socket"] + Self.setuidFiles)
    }

    /// The sample tree of the writer's own tests (xattrs on some entries, which are not extracted).
    @Test func writerSampleRoundTrips() throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let image = directory.file("writer.sqsh")
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .zstd(level: 3), blockSize: 131072, jobs: 2))
        let sample = try SquashfsWriterTests.makeSample(writer, blockSize: 131072, smallFiles: 500)
        try writer.finish(root: sample.root)
        let out = directory.file("out")
        try Self.makeDirectory(out)
        try SquashfsExtractor(imagePath: image).extract(into: out)
        for (path, bytes) in sample.contents {
            let actual = try? readFile(out + path)
            #expect(actual == bytes, "contents of \(path)")
        }
        for (path, target) in sample.symlinks {
            #expect(Files.readLink(out + path) == target)
        }
        #expect(Files.lstat(out + "/future")?.st_mtim.tv_sec == 4_294_967_295)
        #expect(Files.lstat(out + "/past")?.st_mtim.tv_sec == 0)
        #expect(Files.lstat(out + "/socket") == nil)
        for name in sample.orderNames {
            #expect(Files.lstat(out + "/order/" + name) != nil, "/order/\(name)")
        }
    }

    /// An image made by mksquashfs (another writer's layout: fragments, compressor options,
    /// device nodes from pseudo definitions): the same tree as unsquashfs gives, devices left out.
    @Test(.enabled(if: unsquashfsPresent && mksquashfsPresent))
    func mksquashfsImageMatchesUnsquashfs() throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        // The source: a tree extracted from our own sample.
        let sampleImage = directory.file("sample.sqsh")
        _ = try Self.writeSample(sampleImage, blockSize: 131072)
        let source = directory.file("source")
        try Self.makeDirectory(source)
        try SquashfsExtractor(imagePath: sampleImage).extract(into: source)

        // (Not root: mksquashfs must be able to read every file.)
        if !Self.isRoot { _ = try Tool.run(["/bin/chmod", "-R", "u+rX", source]) }
        let image = directory.file("mk.sqsh")
        let make = try Tool.run(["/usr/bin/mksquashfs", source, image, "-noappend", "-no-xattrs", "-quiet", "-no-progress",
                                 "-comp", "xz", "-Xdict-size", "50%", "-b", "65536",
                                 "-p", "dev d 755 0 0", "-p", "dev/null c 666 0 0 1 3", "-p", "dev/loop b 660 0 0 7 0"])
        #expect(make.status == 0, "mksquashfs: \(make.errors)")

        let ours = directory.file("ours")
        try Self.makeDirectory(ours)
        var warnings: [String] = []
        try SquashfsExtractor(imagePath: image).extract(into: ours, jobs: 2) { warnings.append($0) }
        #expect(warnings.contains { $0.contains("character device /dev/null") }, "\(warnings)")
        #expect(warnings.contains { $0.contains("block device /dev/loop") }, "\(warnings)")
        #expect(Files.lstat(ours + "/dev/null") == nil)
        #expect(Files.isDirectory(ours + "/dev"))

        let theirs = directory.file("theirs")
        let result = try Tool.run(["/usr/bin/unsquashfs", "-no-xattrs", "-n", "-d", theirs, image])
        _ = result  // as non-root unsquashfs cannot create the device nodes and says so
        try Self.compareTrees(ours, theirs, ignoring: ["dev/null", "dev/loop", "socket"] + Self.setuidFiles)
        // And the source itself, which the image was made from.
        try Self.compareTrees(ours, source, ignoring: ["dev", "socket"])
    }

    // MARK: - Offset

    @Test func imageAfterAPrefix() throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let image = directory.file("sample.sqsh")
        let sample = try Self.writeSample(image, blockSize: 131072)
        var random = SplitMix(seed: 12345)
        let junk = random.bytes(12345)
        let bundle = directory.file("bundle.run")
        let fd = try FileDescriptor.open(bundle, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        try fd.write(junk)
        try fd.write(try readFile(image))

        let out = directory.file("out")
        try Self.makeDirectory(out)
        let extractor = try SquashfsExtractor(imagePath: bundle, offset: 12345)
        #expect(extractor.imageSize <= UInt64(Files.stat(image)!.st_size))
        try extractor.extract(into: out)
        try Self.verify(out, sample.expected)

        // Without the offset, or a wrong one, there is no image there.
        #expect(throws: SquashfsError.self) { try SquashfsExtractor(imagePath: bundle) }
        #expect(throws: SquashfsError.self) { try SquashfsExtractor(imagePath: bundle, offset: 12344) }
        #expect(throws: SquashfsError.self) { try SquashfsExtractor(imagePath: bundle, offset: 1 << 40) }
    }

    // MARK: - Hostile images

    /// Writes an uncompressed image (names stand verbatim in its directory table), then
    /// replaces each `patches` key, which must occur exactly once, by its value (same length).
    static func craft(_ image: String, _ build: (SquashfsWriter, FileNode) throws -> Void,
                      patches: [(String, [UInt8])]) throws {
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .none, jobs: 1))
        let root = FileNode.dir()
        try build(writer, root)
        try writer.finish(root: root)
        var bytes = try readFile(image)
        for (from, to) in patches {
            let needle = Array(from.utf8)
            #expect(needle.count == to.count)
            var hits: [Int] = []
            var index = 0
            while index + needle.count <= bytes.count {
                if bytes[index] == needle[0] && bytes[index..<index + needle.count].elementsEqual(needle) { hits.append(index) }
                index += 1
            }
            try #require(hits.count == 1, "\(from) occurs \(hits.count) times in the image")
            bytes.replaceSubrange(hits[0]..<hits[0] + needle.count, with: to)
        }
        let fd = try FileDescriptor.open(image, O_WRONLY | O_TRUNC)
        try fd.write(bytes)
    }

    /// Extracts into `work/dest` and expects an error; then nothing but `dest` may be in `work`
    /// and nothing in `outside`.
    static func expectRefused(_ image: String, work: String, outside: String, mention: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let destination = work + "/dest"
        try makeDirectory(destination)
        do {
            try SquashfsExtractor(imagePath: image).extract(into: destination, jobs: 2)
            Issue.record("the crafted image was extracted without an error", sourceLocation: sourceLocation)
        } catch {
            #expect(error.description.contains(mention), "\(error)", sourceLocation: sourceLocation)
        }
        #expect(Files.list(work) == ["dest"], "\(Files.list(work))", sourceLocation: sourceLocation)
        #expect(Files.list(outside).isEmpty, "written outside: \(Files.list(outside))", sourceLocation: sourceLocation)
    }

    @Test func crossingASymlinkOrDotDotIsRefused() throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let outside = directory.file("outside")
        try Self.makeDirectory(outside)

        // "a" -> outside, then "a/b": a name with a slash would create outside/b.
        let slash = directory.file("slash.sqsh")
        try Self.craft(slash, { writer, root in
            root.add("a", FileNode(kind: .symlink(target: outside), permissions: 0o777))
            root.add("a_b", .file(try writer.store(Array("owned".utf8))))
        }, patches: [("a_b", Array("a/b".utf8))])
        try Self.makeDirectory(directory.file("w1"))
        try Self.expectRefused(slash, work: directory.file("w1"), outside: outside, mention: "a/b")
        #expect(Files.lstat(outside + "/b") == nil)

        // A directory named ".." at the top, holding a file: would land beside the destination.
        let dotdot = directory.file("dotdot.sqsh")
        try Self.craft(dotdot, { writer, root in
            root.add("Qz", .dir()).add("victim", .file(try writer.store(Array("owned".utf8))))
        }, patches: [("Qz", Array("..".utf8))])
        try Self.makeDirectory(directory.file("w2"))
        try Self.expectRefused(dotdot, work: directory.file("w2"), outside: outside, mention: "\"..\"")

        // A file named "." and one with a NUL byte.
        let dot = directory.file("dot.sqsh")
        try Self.craft(dot, { writer, root in
            root.add("Q", .file(try writer.store(Array("x".utf8))))
        }, patches: [])
        // "Q" is too short to be unique in the image; patch the listing entry by position instead.
        try Self.patchName(dot, from: "Q", to: ".")
        try Self.makeDirectory(directory.file("w3"))
        try Self.expectRefused(dot, work: directory.file("w3"), outside: outside, mention: "\".\"")

        let nul = directory.file("nul.sqsh")
        try Self.craft(nul, { writer, root in
            root.add("QnulQ", .file(try writer.store(Array("x".utf8))))
        }, patches: [("QnulQ", [0x51, 0x6E, 0, 0x6C, 0x51])])
        try Self.makeDirectory(directory.file("w4"))
        try Self.expectRefused(nul, work: directory.file("w4"), outside: outside, mention: "NUL")
    }

    /// Patches a one-character name by finding its directory entry: the 8-byte entry header
    /// (offset, inode diff, type, size 0) followed by the name.
    static func patchName(_ image: String, from: Character, to: Character) throws {
        var bytes = try readFile(image)
        let name = UInt8(ascii: from.unicodeScalars.first!)
        var hits: [Int] = []
        for index in 8..<bytes.count where bytes[index] == name && bytes[index - 1] == 0 && bytes[index - 2] == 0
            && bytes[index - 4] == 2 && bytes[index - 3] == 0 {   // type 2 (file), size 0 (one byte)
            hits.append(index)
        }
        try #require(hits.count == 1, "entry \(from) found \(hits.count) times")
        bytes[hits[0]] = UInt8(ascii: to.unicodeScalars.first!)
        let fd = try FileDescriptor.open(image, O_WRONLY | O_TRUNC)
        try fd.write(bytes)
    }

    /// A symlink `a` -> outside, then a directory also named `a` holding `passwd`: the
    /// directory must not be created through (or over) the symlink.
    @Test func duplicateNameIsRefused() throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let outside = directory.file("outside")
        try Self.makeDirectory(outside)
        let image = directory.file("duplicate.sqsh")
        try Self.craft(image, { writer, root in
            root.add("aaaaaaaa1", FileNode(kind: .symlink(target: outside), permissions: 0o777))
            let dir = root.add("aaaaaaaa2", .dir())
            dir.add("passwd", .file(try writer.store(Array("root::0:0::/:/bin/sh\n".utf8))))
        }, patches: [("aaaaaaaa2", Array("aaaaaaaa1".utf8))])
        try Self.makeDirectory(directory.file("w"))
        try Self.expectRefused(image, work: directory.file("w"), outside: outside, mention: "/aaaaaaaa1")
        #expect(Files.lstat(outside + "/passwd") == nil)
        // And two files of one name: the second is not written over the first.
        let files = directory.file("files.sqsh")
        try Self.craft(files, { writer, root in
            root.add("bbbbbbbb1", .file(try writer.store(Array("first".utf8))))
            root.add("bbbbbbbb2", .file(try writer.store(Array("second".utf8))))
        }, patches: [("bbbbbbbb2", Array("bbbbbbbb1".utf8))])
        try Self.makeDirectory(directory.file("w2"))
        try Self.expectRefused(files, work: directory.file("w2"), outside: outside, mention: "exists already")
    }

    // MARK: - Damaged images

    @Test func truncatedImagesGiveErrors() throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let image = directory.file("sample.sqsh")
        _ = try Self.writeSample(image, blockSize: 131072)
        let bytes = try readFile(image)
        var attempt = 0
        for length in [0, 50, 96, 4096, bytes.count / 10, bytes.count / 2, bytes.count - 8192, bytes.count - 4096 - 1] {
            attempt += 1
            let cut = directory.file("cut\(attempt).sqsh")
            try FileDescriptor.open(cut, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644).write(bytes.prefix(length))
            let out = directory.file("out\(attempt)")
            try Self.makeDirectory(out)
            #expect(throws: SquashfsError.self, "\(length) of \(bytes.count) bytes") {
                try SquashfsExtractor(imagePath: cut).extract(into: out, jobs: 2)
            }
        }
    }

    /// Bytes changed at random places (the image keeps its size): extraction may fail or
    /// succeed, but never crashes, hangs or writes outside its destination.
    @Test func corruptedImagesNeverCrash() throws {
        let directory = try TemporaryDirectory("caisson-extract")
        defer { Self.removeTree(directory.path) }
        let image = directory.file("small.sqsh")
        for compression in [SquashfsOptions.Compression.none, .gzip(level: 6)] {
            let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: compression, blockSize: 4096, jobs: 1))
            var random = SplitMix(seed: 99)
            let root = FileNode.dir()
            let sub = root.add("sub", .dir())
            for index in 0..<40 {
                (index % 2 == 0 ? root : sub).add("f\(index)", .file(try writer.store(random.text(Int(random.next() % 9000)))))
            }
            sub.add("link", FileNode(kind: .symlink(target: "../f0"), permissions: 0o777))
            root.add("deeper", .dir()).add("fifo", FileNode(kind: .fifo, permissions: 0o600))
            try writer.finish(root: root)
            let original = try readFile(image)
            let work = directory.file("work")
            try Self.makeDirectory(work)
            var failures = 0
            for round in 0..<150 {
                var bytes = original
                // Mostly the tables at the end (metadata), sometimes anywhere.
                let flips = 1 + Int(random.next() % 4)
                for _ in 0..<flips {
                    let position = round % 3 == 0 ? Int(random.next() % UInt64(bytes.count))
                        : bytes.count - 1 - Int(random.next() % UInt64(min(bytes.count, 3000)))
                    bytes[position] = UInt8(truncatingIfNeeded: random.next())
                }
                let damaged = directory.file("damaged.sqsh")
                try FileDescriptor.open(damaged, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644).write(bytes)
                let out = work + "/d\(round)"
                try Self.makeDirectory(out)
                do {
                    try SquashfsExtractor(imagePath: damaged).extract(into: out, jobs: 2)
                } catch {
                    failures += 1
                }
            }
            #expect(failures > 0)
            let names = Set(Files.list(work))
            #expect(names == Set((0..<150).map { "d\($0)" }), "entries beside the destinations: \(names.subtracting((0..<150).map { "d\($0)" }))")
            Self.removeTree(work)
        }
    }

    // MARK: - Benchmark (by hand)

    /// Not a check, a measurement: unsquashfs against the extractor on one image, alternating,
    /// three rounds. Runs only with CAISSON_EXTRACT_BENCH=IMAGE, best in release:
    ///   CAISSON_EXTRACT_BENCH=/tmp/x.sqsh swift test -c release --scratch-path .build-squashfs \
    ///       --filter ExtractorTests.benchmark
    /// CAISSON_EXTRACT_BENCH_DIR sets where the trees go (default /tmp), CAISSON_EXTRACT_BENCH_JOBS
    /// the threads (default: the available CPUs, which unsquashfs uses too).
    @Test(.enabled(if: ProcessEnvironment.dictionary()["CAISSON_EXTRACT_BENCH"] != nil))
    func benchmark() throws {
        let environment = ProcessEnvironment.dictionary()
        let image = environment["CAISSON_EXTRACT_BENCH"]!
        let base = environment["CAISSON_EXTRACT_BENCH_DIR"] ?? "/tmp"
        let jobs = environment["CAISSON_EXTRACT_BENCH_JOBS"].flatMap { Int($0) } ?? SquashfsOptions.availableCPUs
        let size = Files.stat(image).map { Int($0.st_size) } ?? 0
        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        let theirs = base + "/caisson-bench-unsquashfs", ours = base + "/caisson-bench-extractor"
        var timesTheirs: [Double] = [], timesOurs: [Double] = []
        for _ in 0..<3 {
            Self.removeTree(theirs)
            _ = try Tool.shell("sync")
            var start = now()
            let result = try Tool.run(["/usr/bin/unsquashfs", "-no-xattrs", "-n", "-d", theirs, image])
            timesTheirs.append(now() - start)
            #expect(result.status == 0, "\(result.errors)")

            Self.removeTree(ours)
            try Self.makeDirectory(ours)
            _ = try Tool.shell("sync")
            start = now()
            let summary = try SquashfsExtractor(imagePath: image).extract(into: ours, jobs: jobs)
            timesOurs.append(now() - start)
            print("extractor: \(summary)")
        }
        // Device nodes and sockets: unsquashfs makes them where it can, the extractor never.
        let special = Self.snapshot(theirs).filter { [S_IFCHR, S_IFBLK, S_IFSOCK].contains($0.value.st.st_mode & S_IFMT) }
        try Self.compareTrees(ours, theirs, ignoring: special.keys.map { String($0.dropFirst()) })
        func show(_ times: [Double]) -> String { times.map { String(Int($0 * 1000)) + " ms" }.joined(separator: ", ") }
        print("image \(image): \(size / 1_000_000) MB, jobs \(jobs)")
        print("unsquashfs -no-xattrs -n: \(show(timesTheirs)); best \(Int(timesTheirs.min()! * 1000)) ms")
        print("SquashfsExtractor:        \(show(timesOurs)); best \(Int(timesOurs.min()! * 1000)) ms")
        Self.removeTree(theirs)
        Self.removeTree(ours)
    }
}
