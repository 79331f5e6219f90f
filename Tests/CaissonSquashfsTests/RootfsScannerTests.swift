import CaissonSystem
import Testing
@testable import CaissonSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// RootfsScanner: a tree on disk → scan into a SquashfsWriter → extract → the same tree.
@Suite(.serialized)
struct RootfsScannerTests {
    static let isRoot = geteuid() == 0

    /// Builds the source tree: every kind of entry the scanner keeps, holes, hard links, odd
    /// modes and times. Returns the paths of entries the extractor leaves out (sockets).
    static func makeSource(_ root: String) throws -> [String] {
        var random = SplitMix(seed: 0x5CA11)
        func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
            let fd = try FileDescriptor.open(root + path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
            try fd.write(bytes)
            try check("chmod", path: path) { fchmod(fd.rawValue, mode) }
        }
        func dir(_ path: String) throws { try check("mkdir", path: path) { mkdir(root + path, 0o755) } }
        func time(_ path: String, _ seconds: Int) throws {
            var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
            try check("utimensat", path: path) { utimensat(AT_FDCWD, root + path, &times, AT_SYMLINK_NOFOLLOW) }
        }

        try write("/empty", [])
        try write("/small", random.text(1000))
        try write("/big", random.bytes(300_000), mode: 0o755)
        try write("/setuid", random.text(100), mode: 0o4750)
        try write("/odd-bits", random.text(10), mode: 0o3401)   // (readable by its owner: scanned as any user)
        // A file with holes (and a trailing one).
        let sparse = try FileDescriptor.open(root + "/sparse", O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        try sparse.write(random.bytes(5000))
        _ = lseek(sparse.rawValue, 1 << 20, SEEK_SET)
        try sparse.write(random.bytes(100))
        try check("ftruncate") { ftruncate(sparse.rawValue, 3 << 20) }

        try dir("/etc")
        try write("/etc/hosts", Array("127.0.0.1 localhost\n".utf8))
        try check("symlink") { symlink("/etc/hosts", root + "/etc/absolute") }
        try check("symlink") { symlink("hosts", root + "/etc/relative") }
        try check("symlink") { symlink("../missing/nowhere", root + "/etc/dangling") }
        try check("mkfifo") { mkfifo(root + "/etc/fifo", 0o600) }
        try check("chmod") { chmod(root + "/etc/fifo", 0o620) }

        // Hard links across directories, and a symlink with two names.
        try dir("/links")
        try write("/links/one", random.text(5000), mode: 0o700)
        try check("link") { link(root + "/links/one", root + "/links/two") }
        try check("link") { link(root + "/links/one", root + "/etc/three") }
        try check("symlink") { symlink("one", root + "/links/sym") }
        try check("link") { linkat(AT_FDCWD, root + "/links/sym", AT_FDCWD, root + "/links/sym2", 0) }

        try dir("/names")
        for name in ["with space", "é", "-x", "Z", "a", "~"] { try write("/names/" + name, Array(name.utf8)) }
        var deep = ""
        for level in 0..<12 {
            deep += "/n\(level)"
            try dir(deep)
        }
        try write(deep + "/leaf", random.text(10))

        // A socket, through python (binding from Swift takes a page of sockaddr plumbing).
        let socket = try Tool.run(["/usr/bin/python3", "-c",
                                   "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])", root + "/etc/socket"])
        #expect(socket.status == 0, "\(socket.errors)")

        // Read-only directory with contents; times set last, deepest first.
        try dir("/ro")
        try write("/ro/file", random.text(50), mode: 0o444)
        for (path, seconds) in [("/empty", 0), ("/small", 1), ("/big", 4_294_967_295), ("/sparse", 1_234_567_890),
                                ("/etc/hosts", 1_700_000_000), ("/etc/absolute", 5), ("/etc/fifo", 6), ("/links/one", 7),
                                ("/links/sym", 8), ("/ro/file", 9), (deep + "/leaf", 10)] {
            try time(path, seconds)
        }
        var path = deep
        while !path.isEmpty {
            try time(path, path.count)
            path = String(path[..<path.lastIndex(of: "/")!])
        }
        for (path, seconds) in [("/etc", 100), ("/links", 101), ("/names", 102), ("/ro", 103), ("", 104)] {
            try time(path, seconds)
        }
        try check("chmod") { chmod(root + "/ro", 0o555) }
        try time("/ro", 103)
        return ["/etc/socket"]
    }

    static func scan(_ source: String, into image: String, warnings: inout [String]) throws -> FileNode {
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .zstd(level: 3), blockSize: 65536, jobs: 2))
        var collected: [String] = []
        let root = try RootfsScanner.scan(source, into: writer) { collected.append($0) }
        try writer.finish(root: root)
        warnings += collected
        return root
    }

    @Test func treeRoundTripsThroughAnImage() throws {
        let directory = try TemporaryDirectory("caisson-scan")
        defer { ExtractorTests.removeTree(directory.path) }
        let source = directory.file("source")
        try ExtractorTests.makeDirectory(source)
        let leftOut = try Self.makeSource(source)
        let image = directory.file("scan.sqsh")
        var warnings: [String] = []
        let root = try Self.scan(source, into: image, warnings: &warnings)
        #expect(warnings.isEmpty, "\(warnings)")
        #expect(root.children["links"]?.children["one"] === root.children["etc"]?.children["three"])
        #expect(root.children["links"]?.children["sym"] === root.children["links"]?.children["sym2"])
        #expect(root.children["etc"]?.children["socket"]?.kind == .socket)

        let out = directory.file("out")
        try ExtractorTests.makeDirectory(out)
        var extractWarnings: [String] = []
        try SquashfsExtractor(imagePath: image).extract(into: out) { extractWarnings.append($0) }
        #expect(extractWarnings.count == 1 && extractWarnings[0].contains("/etc/socket"))
        try ExtractorTests.compareTrees(source, out, ignoring: leftOut.map { String($0.dropFirst()) })
        #expect(Files.lstat(out + "/etc/socket") == nil)

        // Hard links are links again, holes are holes.
        let one = try #require(Files.lstat(out + "/links/one"))
        #expect(one.st_nlink == 3)
        #expect(Files.lstat(out + "/links/two")?.st_ino == one.st_ino)
        #expect(Files.lstat(out + "/etc/three")?.st_ino == one.st_ino)
        #expect(Files.lstat(out + "/links/sym2")?.st_ino == Files.lstat(out + "/links/sym")?.st_ino)
        let sparse = try #require(Files.lstat(out + "/sparse"))
        #expect(sparse.st_size == 3 << 20)
        #expect(Int(sparse.st_blocks) * 512 < 1 << 20, "\(sparse.st_blocks) blocks")
        // The root's own mode and time went into the image and back onto the destination.
        #expect(Files.lstat(out)?.st_mtim.tv_sec == 104)

        // The socket is in the image.
        let listing = try Tool.run(["/usr/bin/unsquashfs", "-lln", image, "etc/socket"])
        #expect(listing.text.contains("srw"), "\(listing.text)")
    }

    @Test func twoScansGiveIdenticalImages() throws {
        let directory = try TemporaryDirectory("caisson-scan")
        defer { ExtractorTests.removeTree(directory.path) }
        let source = directory.file("source")
        try ExtractorTests.makeDirectory(source)
        _ = try Self.makeSource(source)
        var warnings: [String] = []
        _ = try Self.scan(source, into: directory.file("a.sqsh"), warnings: &warnings)
        _ = try Self.scan(source, into: directory.file("b.sqsh"), warnings: &warnings)
        let a = try readFile(directory.file("a.sqsh")), b = try readFile(directory.file("b.sqsh"))
        #expect(a.count > 4096)
        #expect(a == b)
    }

    /// Device nodes are skipped with a warning (creating one needs root).
    @Test(.enabled(if: isRoot)) func deviceNodesAreSkipped() throws {
        let directory = try TemporaryDirectory("caisson-scan")
        defer { ExtractorTests.removeTree(directory.path) }
        let source = directory.file("source")
        try ExtractorTests.makeDirectory(source)
        try check("mknod") { mknod(source + "/null", S_IFCHR | 0o666, dev_t(1 << 8 | 3)) }
        try FileDescriptor.open(source + "/kept", O_WRONLY | O_CREAT, mode: 0o644).write("x")
        var warnings: [String] = []
        let root = try Self.scan(source, into: directory.file("dev.sqsh"), warnings: &warnings)
        #expect(root.children["null"] == nil)
        #expect(root.children["kept"] != nil)
        #expect(warnings.count == 1 && warnings[0].contains("character device /null"), "\(warnings)")
    }

    /// A file that cannot be read is an error naming it (root reads everything: not as root).
    @Test(.enabled(if: !isRoot)) func unreadableFileIsAnError() throws {
        let directory = try TemporaryDirectory("caisson-scan")
        defer { ExtractorTests.removeTree(directory.path) }
        let source = directory.file("source")
        try ExtractorTests.makeDirectory(source)
        try FileDescriptor.open(source + "/secret", O_WRONLY | O_CREAT, mode: 0o000).write("x")
        var warnings: [String] = []
        do {
            _ = try Self.scan(source, into: directory.file("x.sqsh"), warnings: &warnings)
            Issue.record("an unreadable file was scanned")
        } catch {
            #expect("\(error)".contains(source + "/secret"), "\(error)")
        }
    }

    /// Other file systems are not entered: /dev holds devices (skipped) and, where it is its
    /// own mount as usual, /dev/shm and /dev/pts (kept as empty directories).
    static let devHasMounts: Bool = {
        guard let dev = Files.lstat("/dev"), let shm = Files.lstat("/dev/shm") else { return false }
        return dev.st_dev != shm.st_dev && shm.st_mode & S_IFMT == S_IFDIR
    }()

    @Test(.enabled(if: devHasMounts)) func mountPointsAreNotCrossed() throws {
        let directory = try TemporaryDirectory("caisson-scan")
        defer { ExtractorTests.removeTree(directory.path) }
        // Something on the other file system that must not be read.
        let marker = "/dev/shm/caisson-scan-marker-\(getpid())"
        try FileDescriptor.open(marker, O_WRONLY | O_CREAT, mode: 0o644).write("x")
        defer { unlink(marker) }
        var warnings: [String] = []
        let root = try Self.scan("/dev", into: directory.file("dev.sqsh"), warnings: &warnings)
        let shm = try #require(root.children["shm"])
        #expect(shm.isDirectory && shm.children.isEmpty)
        #expect(warnings.contains { $0.contains("/shm") && $0.contains("another file system") }, "\(warnings)")
        #expect(warnings.contains { $0.contains("character device /null") }, "\(warnings)")
        #expect(root.children["null"] == nil)
    }
}
