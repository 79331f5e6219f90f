import CaissonSquashfs
import Testing
@testable import CaissonLayers

@Suite struct LayerSemanticsTests {
    static let base: [TarEntry] = [
        .dir("etc"),
        .file("etc/passwd", "root:x:0:0"),
        .file("etc/hosts", "127.0.0.1"),
        .link("etc/hosts", "etc/hosts.allow"),
        .dir("usr/lib"),
        .file("usr/lib/libfoo.so", "foo", 0o755),
        .symlink("libfoo.so", "usr/lib/libfoo.so.1"),
        .symlink("usr/lib", "lib"),
        .dir("opt/app"),
        .file("opt/app/a", "a"),
        .file("opt/app/b", "b"),
        .dir("var/cache"),
        .file("var/cache/x", "x"),
        .dir("home"),
        .file("home/old", "old"),
        .fifo("run/fifo", 0o600),
        .file("bin/su", "su", 0o4755),
    ]

    static let update: [TarEntry] = [
        .whiteout("etc/.wh.hosts"),
        .dir("etc", 0o700),  // dir over dir: attributes change, children stay
        .dir("opt/app", 0o750),
        .file("opt/app/c", "c"),  // before the opaque marker: survives it
        .whiteout("opt/app/.wh..wh..opq"),
        .file("opt/app/d", "d"),
        .file("lib/libbar.so", "bar"),  // through the lower symlink lib -> usr/lib
        .file("var/cache", "now a file"),  // replaces a directory and its subtree
        .file("usr/lib/libfoo.so.1", "real"),  // replaces a symlink, does not write through it
        .link("usr/lib/libfoo.so", "newlink"),  // hard link to a lower layer's file
        .file("x", "same layer"),
        .whiteout(".wh.x"),  // hides lower layers only: x stays
    ]

    static let top: [TarEntry] = [
        .whiteout(".wh.opt"),
        .file("usr/lib/libfoo.so", "foo2", 0o755),  // new node; the hard link keeps the old one
        .file("home/new", "new"),
        .whiteout(".wh.home"),  // after home/new: the lower home/old goes, home/new stays
        .whiteout(".wh.var"),
        .file("var/log/new", "log"),  // var made anew
    ]

    @Test func threeLayers() throws {
        let harness = Harness()
        try harness.apply(Self.base, .gzip, name: "base")
        #expect(harness.tree == [
            "d 0755 /bin",
            "f 4755 /bin/su = \"su\"",
            "d 0755 /etc",
            "f 0644 /etc/hosts = \"127.0.0.1\" #1",
            "f 0644 /etc/hosts.allow = \"127.0.0.1\" #1",
            "f 0644 /etc/passwd = \"root:x:0:0\"",
            "d 0755 /home",
            "f 0644 /home/old = \"old\"",
            "l /lib -> usr/lib",
            "d 0755 /opt",
            "d 0755 /opt/app",
            "f 0644 /opt/app/a = \"a\"",
            "f 0644 /opt/app/b = \"b\"",
            "d 0755 /run",
            "p 0600 /run/fifo",
            "d 0755 /usr",
            "d 0755 /usr/lib",
            "f 0755 /usr/lib/libfoo.so = \"foo\"",
            "l /usr/lib/libfoo.so.1 -> libfoo.so",
            "d 0755 /var",
            "d 0755 /var/cache",
            "f 0644 /var/cache/x = \"x\"",
        ])

        try harness.apply(Self.update, .zstd, name: "update")
        #expect(harness.tree == [
            "d 0755 /bin",
            "f 4755 /bin/su = \"su\"",
            "d 0700 /etc",
            "f 0644 /etc/hosts.allow = \"127.0.0.1\"",
            "f 0644 /etc/passwd = \"root:x:0:0\"",
            "d 0755 /home",
            "f 0644 /home/old = \"old\"",
            "l /lib -> usr/lib",
            "f 0755 /newlink = \"foo\" #1",
            "d 0755 /opt",
            "d 0750 /opt/app",
            "f 0644 /opt/app/c = \"c\"",
            "f 0644 /opt/app/d = \"d\"",
            "d 0755 /run",
            "p 0600 /run/fifo",
            "d 0755 /usr",
            "d 0755 /usr/lib",
            "f 0644 /usr/lib/libbar.so = \"bar\"",
            "f 0755 /usr/lib/libfoo.so = \"foo\" #1",
            "f 0644 /usr/lib/libfoo.so.1 = \"real\"",
            "d 0755 /var",
            "f 0644 /var/cache = \"now a file\"",
            "f 0644 /x = \"same layer\"",
        ])

        try harness.apply(Self.top, .none, name: "top")
        #expect(harness.tree == [
            "d 0755 /bin",
            "f 4755 /bin/su = \"su\"",
            "d 0700 /etc",
            "f 0644 /etc/hosts.allow = \"127.0.0.1\"",
            "f 0644 /etc/passwd = \"root:x:0:0\"",
            "d 0755 /home",
            "f 0644 /home/new = \"new\"",
            "l /lib -> usr/lib",
            "f 0755 /newlink = \"foo\"",
            "d 0755 /run",
            "p 0600 /run/fifo",
            "d 0755 /usr",
            "d 0755 /usr/lib",
            "f 0644 /usr/lib/libbar.so = \"bar\"",
            "f 0755 /usr/lib/libfoo.so = \"foo2\"",
            "f 0644 /usr/lib/libfoo.so.1 = \"real\"",
            "d 0755 /var",
            "d 0755 /var/log",
            "f 0644 /var/log/new = \"log\"",
            "f 0644 /x = \"same layer\"",
        ])

        let stats = harness.merger.stats
        #expect(stats.layers == 3)
        #expect(stats.entries == Self.base.count + Self.update.count + Self.top.count)
        #expect(stats.whiteouts == 5)
        #expect(stats.opaqueWhiteouts == 1)
        #expect(stats.hardLinks == 2)
        #expect(stats.fifos == 1)
        #expect(stats.regularFiles == 17)
        #expect(harness.warnings.isEmpty)
    }

    /// An opaque directory keeps what its own layer put there, whichever side of the marker, and
    /// a whiteout in a later layer removes a directory this layer only wrote beneath.
    @Test func opaqueAndWhiteoutOrdering() throws {
        let harness = Harness()
        try harness.apply([.file("d/lower1", "1"), .file("d/sub/lower2", "2"), .file("e/keep", "k")], name: "one")
        try harness.apply([
            .file("d/sub/new", "n"),  // d, d/sub: lower directories written beneath, no entry of their own
            .whiteout("d/.wh..wh..opq"),
            .whiteout(".wh.e"),
            .file("e/fresh", "f"),
        ], name: "two")
        #expect(harness.tree == [
            "d 0755 /d",
            "d 0755 /d/sub",
            "f 0644 /d/sub/new = \"n\"",
            "d 0755 /e",
            "f 0644 /e/fresh = \"f\"",
        ])
        try harness.apply([.whiteout(".wh.d"), .whiteout("e/.wh..wh..opq")], name: "three")
        #expect(harness.tree == ["d 0755 /e"])
        #expect(harness.merger.stats.removedByWhiteouts == 2 + 1 + 1 + 1)
    }

    /// Writing through a dangling symlink makes its target inside the tree (as containerd does);
    /// whiteouts never make anything.
    @Test func danglingSymlinkParents() throws {
        let harness = Harness()
        try harness.apply([.symlink("/dne/sub", "l"), .symlink("../gone", "r")], name: "lower")
        try harness.apply([
            .whiteout("l/.wh..wh..opq"),
            .whiteout("l/.wh.x"),
            .whiteout("missing/.wh.x"),
            .whiteout(".wh.nothing"),
            .whiteout("r/.wh.x"),
        ], name: "whiteouts")
        #expect(harness.tree == ["l /l -> /dne/sub", "l /r -> ../gone"])
        try harness.apply([.file("l/x", "x"), .file("r/y", "y")], name: "writes")
        #expect(harness.tree == [
            "d 0755 /dne",
            "d 0755 /dne/sub",
            "f 0644 /dne/sub/x = \"x\"",
            "d 0755 /gone",
            "f 0644 /gone/y = \"y\"",
            "l /l -> /dne/sub",
            "l /r -> ../gone",
        ])
    }

    @Test func attributesAndXattrs() throws {
        let harness = Harness()
        try harness.apply([
            TarEntry.dir("./", 0o700).with(mtime: 42),
            .dir("etc"),
            TarEntry.file("bin/ping", "ping", 0o755)
                .with(xattr: "security.capability", "\u{1}\u{2}")
                .with(xattr: "user.comment", "hello")
                .with(xattr: "trusted.overlay.opaque", "y")
                .with(xattr: "user.overlay.redirect", "/x")
                .with(mtime: 1_234_567_890),
        ], name: "attrs")
        #expect(harness.merger.root.permissions == 0o700)
        #expect(harness.merger.root.modificationTime == 42)
        let ping = try #require(harness.node("/bin/ping"))
        #expect(ping.modificationTime == 1_234_567_890)
        #expect(ping.xattrs == ["security.capability": [1, 2], "user.comment": Array("hello".utf8)])
        #expect(harness.merger.stats.droppedXattrs == 2)
        #expect(harness.warnings == [
            "layer attrs: dropped 2 extended attribute(s) that an image cannot carry (first: trusted.overlay.opaque on bin/ping)",
        ])

        // Directory over directory: attributes replaced, xattrs too, children kept.
        try harness.apply([TarEntry.dir("bin", 0o711).with(mtime: 7).with(xattr: "user.a", "b")], name: "over")
        let bin = try #require(harness.node("/bin"))
        #expect(bin.permissions == 0o711)
        #expect(bin.modificationTime == 7)
        #expect(bin.xattrs == ["user.a": Array("b".utf8)])
        #expect(bin.children["ping"] === ping)
    }

    @Test func devicesAreSkippedWithAWarning() throws {
        let harness = Harness()
        try harness.apply([.file("dev/sda", "lower"), .file("dev/keep", "k")], name: "lower")
        try harness.apply([
            .dir("dev"),
            TarEntry(path: "dev/null", kind: .characterDevice(major: 1, minor: 3), mode: 0o666),
            TarEntry(path: "./dev/sda", kind: .blockDevice(major: 8, minor: 0), mode: 0o660),
            TarEntry(path: "etc/tty0", kind: .characterDevice(major: 4, minor: 0), mode: 0o620),
            .fifo("dev/initctl", 0o600),
            .file("usr/bin/sudo", "s", 0o4711),
            .file("usr/bin/wall", "w", 0o2755),
            .dir("tmp", 0o1777),
        ], name: "devs")
        #expect(harness.warnings == [
            "layer devs: skipped device /dev/null",
            "layer devs: skipped device /dev/sda",
            "layer devs: skipped device /etc/tty0",
        ])
        #expect(harness.merger.stats.skippedDevices == 3)
        // A skipped device leaves the path as lower layers had it.
        #expect(harness.tree == [
            "d 0755 /dev",
            "p 0600 /dev/initctl",
            "f 0644 /dev/keep = \"k\"",
            "f 0644 /dev/sda = \"lower\"",
            "d 1777 /tmp",
            "d 0755 /usr",
            "d 0755 /usr/bin",
            "f 4711 /usr/bin/sudo = \"s\"",
            "f 2755 /usr/bin/wall = \"w\"",
        ])
    }

    @Test func utf8Names() throws {
        let harness = Harness()
        try harness.apply([.file("héllo/wörld", "ü"), .symlink("wörld", "héllo/link")], name: "utf8")
        #expect(harness.tree == [
            "d 0755 /héllo",
            "l /héllo/link -> wörld",
            "f 0644 /héllo/wörld = \"ü\"",
        ])
    }

    @Test func aufsMetadataIsSkipped() throws {
        let harness = Harness()
        try harness.apply([.dir(".wh..wh.plnk"), .whiteout(".wh..wh.aufs"), .file("a", "a")], name: "aufs")
        #expect(harness.tree == ["f 0644 /a = \"a\""])
        #expect(harness.merger.stats.skippedOther == 2)
    }

    @Test func sparseFilesReadInFull() throws {
        var content = [UInt8](repeating: 0, count: 300_000)
        for index in 0..<1000 { content[index] = 1 }
        for index in 200_000..<201_000 { content[index] = 2 }
        var entry = TarEntry.file("sparse", bytes: content)
        entry.sparse = [(0, 1000), (200_000, 1000)]
        let tar = makeTar([entry])
        #expect(tar.count < 100_000)  // the holes are not in the archive
        let harness = Harness()
        try harness.apply(tar, name: "sparse")
        #expect(harness.sink.contents(try #require(harness.node("/sparse"))) == content)
    }

    @Test func largeFileStreamsToTheSink() throws {
        var generator = SplitMix(seed: 7)
        let content = (0..<(3 << 20) + 123).map { _ in UInt8(truncatingIfNeeded: generator.next() >> 13) }
        let tar = makeTar([.file("big", bytes: content), .file("small", "s")])
        let harness = Harness()
        let digest = try harness.apply(compress(tar, .gzip), name: "big", chunk: 10_000)
        let node = try #require(harness.node("/big"))
        #expect(harness.sink.contents(node) == content)
        #expect(node.data?.size == UInt64(content.count))
        #expect(harness.merger.stats.bytes == UInt64(content.count + 1))
        #expect(digest == SHA256Tests.hash(tar))
        #expect(harness.merger.stats.uncompressedBytes == UInt64(tar.count))
    }
}

@Suite struct CompressionTests {
    static let entries: [TarEntry] = [
        .dir("etc"),
        .file("etc/os-release", "ID=test\n"),
        .link("etc/os-release", "etc/os-release.link"),
        .symlink("../etc", "usr/etc"),
        .fifo("run/fifo"),
        .whiteout(".wh.gone"),
        .file("data", bytes: (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) }),
    ]

    /// Every compression gives the same tree, and the diff_id is sha256sum of the uncompressed tar.
    @Test(arguments: Compression.allCases)
    func sameTreeAndDiffID(_ compression: Compression) throws {
        let tar = makeTar(Self.entries)
        let expected = try sha256sum(tar)

        let plain = Harness()
        #expect(try plain.apply(tar, name: "plain") == expected)

        let harness = Harness()
        let bytes = compress(tar, compression)
        if compression != .none { #expect(bytes != tar) }
        #expect(try harness.apply(bytes, name: compression.rawValue, chunk: 4_099) == expected)
        #expect(harness.tree == plain.tree)
        #expect(harness.tree.count == 8)
        #expect(harness.merger.stats.uncompressedBytes == UInt64(tar.count))
        #expect(harness.merger.stats.compressedBytes == UInt64(bytes.count))
    }

    /// A tar without the 10 KiB record padding, and bytes after the end-of-archive marker: the
    /// diff_id covers the whole stream, not just what the tar reader needed.
    @Test func digestCoversTrailingBytes() throws {
        var tar = makeTar([.file("a", "a")])
        tar += [UInt8](repeating: 0, count: 777) + Array("trailing".utf8)
        let harness = Harness()
        #expect(try harness.apply(compress(tar, .gzip), name: "padded") == (try sha256sum(tar)))
        #expect(harness.tree == ["f 0644 /a = \"a\""])
    }

    @Test func tinyReads() throws {
        let tar = makeTar(Self.entries)
        let harness = Harness()
        #expect(try harness.apply(compress(tar, .zstd), name: "tiny", chunk: 1) == SHA256Tests.hash(tar))
        #expect(harness.tree.count == 8)
    }

    @Test func emptyLayers() throws {
        let empty = Harness()
        #expect(try empty.apply([UInt8](), name: "zero bytes") == SHA256Tests.hash([UInt8]()))
        #expect(empty.tree.isEmpty)
        let tar = makeTar([])
        #expect(try empty.apply(compress(tar, .gzip), name: "empty tar") == SHA256Tests.hash(tar))
        #expect(empty.tree.isEmpty)
        #expect(empty.merger.stats.layers == 2)
    }
}

@Suite struct LayerErrorTests {
    @Test func escapingEntry() {
        let harness = Harness()
        let error = harness.failure { try $0.apply([.file("ok", "x"), .file("../evil", "x")], name: "X") }
        #expect(error?.description == "layer X: entry ../evil escapes the image root")
        #expect(error?.kind == .escapesRoot)
        #expect(error?.entry == "../evil")
        #expect(Harness().failure { try $0.apply([.file("a/../../evil", "x")], name: "X") }?.kind == .escapesRoot)
        #expect(Harness().failure { try $0.apply([.file("/a/./b/../../../evil", "x")], name: "X") }?.kind == .escapesRoot)
        // Climbing and coming back down stays inside.
        let fine = Harness()
        #expect(fine.failure { try $0.apply([.file("/a/../b/./c/../d", "x")], name: "X") } == nil)
        #expect(fine.tree == ["d 0755 /b", "f 0644 /b/d = \"x\""])
    }

    @Test func parentIsAFile() {
        let error = Harness().failure { try $0.apply([.file("f", "x"), .file("f/x", "y")], name: "X") }
        #expect(error?.description == "layer X: entry f/x cannot be created: /f is not a directory")
        let viaLink = Harness().failure {
            try $0.apply([.file("f", "x"), .symlink("/f/deeper", "l"), .dir("l/x")], name: "X")
        }
        #expect(viaLink?.kind == .notADirectory)
    }

    @Test func symlinkLoops() {
        let error = Harness().failure {
            try $0.apply([.symlink("b", "a"), .symlink("a", "b"), .file("a/x", "y")], name: "X")
        }
        #expect(error?.kind == .unresolvableSymlink)
        #expect(error?.description.hasPrefix("layer X: entry a/x cannot be resolved: more than 40 symbolic links") == true)
    }

    @Test func emptySymlinkTargetAsParent() {
        let error = Harness().failure { try $0.apply([.symlink("", "e"), .file("e/x", "y")], name: "X") }
        #expect(error?.description == "layer X: entry e/x cannot be resolved: /e is a symlink with an empty target")
    }

    @Test func depthLimit() throws {
        let deep = Array(repeating: "d", count: LayerMerger.maximumDepth).joined(separator: "/")
        let fine = Harness()
        try fine.apply([.file(deep + "/file", "x")], name: "deep")
        #expect(fine.tree.count == LayerMerger.maximumDepth + 1)
        let error = Harness().failure { try $0.apply([.file(deep + "/d/file", "x")], name: "deeper") }
        #expect(error?.kind == .tooDeep)
    }

    @Test func hardLinkTargets() {
        let missing = Harness().failure { try $0.apply([.link("nope", "x")], name: "X") }
        #expect(missing?.description == "layer X: entry x is a hard link to nope, which does not exist")
        let directory = Harness().failure { try $0.apply([.dir("etc"), .link("etc", "x")], name: "X") }
        #expect(directory?.description == "layer X: entry x is a hard link to etc, which is a directory")
        #expect(directory?.kind == .hardLinkTarget)
        let noParent = Harness().failure { try $0.apply([.link("a/b/c", "x")], name: "X") }
        #expect(noParent?.description == "layer X: entry x is a hard link to a/b/c, which does not exist (no directory /a/b)")
        let later = Harness().failure { try $0.apply([.link("a", "x"), .file("a", "a")], name: "X") }
        #expect(later?.kind == .hardLinkTarget)
    }

    @Test func truncatedGzip() throws {
        var generator = SplitMix(seed: 3)
        let tar = makeTar([.file("a", "a"), .file("blob", bytes: (0..<200_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) })])
        let gzip = compress(tar, .gzip)

        let middle = Harness().failure { try $0.apply(Array(gzip.prefix(gzip.count / 2)), name: "broken.tar.gz") }
        #expect(middle?.layer == "broken.tar.gz")
        #expect(middle?.kind == .decompression)
        #expect(middle?.description == "layer broken.tar.gz: entry blob could not be decompressed: truncated gzip input")

        // Only the gzip trailer (CRC, length) missing: every tar entry reads, the stream does not end.
        let trailer = Harness()
        let error = trailer.failure { try $0.apply(Array(gzip.dropLast(4)), name: "no-trailer.tar.gz") }
        #expect(error?.kind == .decompression)
        #expect(error?.layer == "no-trailer.tar.gz")
    }

    @Test func garbage() {
        let text = Array(String(repeating: "this is not a tar archive\n", count: 100).utf8)
        let plain = Harness().failure { try $0.apply(text, name: "garbage") }
        #expect(plain?.kind == .archive)
        #expect(plain?.description.hasPrefix("layer garbage: is not a readable tar archive: ") == true)
        let gzipped = Harness().failure { try $0.apply(compress(text, .gzip), name: "garbage.gz") }
        #expect(gzipped?.kind == .archive)
        #expect(gzipped?.layer == "garbage.gz")
    }

    @Test func mergerRefusesLayersAfterAFailure() throws {
        let harness = Harness()
        try harness.apply([.file("a", "a")], name: "one")
        #expect(harness.failure { try $0.apply([.file("../b", "b")], name: "two") }?.kind == .escapesRoot)
        let refused = harness.failure { try $0.apply([.file("c", "c")], name: "three") }
        #expect(refused?.kind == .unusable)
        #expect(refused?.description == "layer three: cannot be applied: layer two failed before it and the tree is incomplete")
        #expect(harness.merger.stats.layers == 1)
    }

    @Test func readAndSinkFailures() {
        struct Unplugged: Error, CustomStringConvertible { var description: String { "connection reset" } }
        let merger = LayerMerger(sink: MemorySink(), warn: { _ in })
        do throws(LayerError) {
            try merger.apply(layer: { _ in throw Unplugged() }, name: "net")
            Issue.record("no error")
        } catch {
            #expect(error.kind == .input)
            #expect(error.description == "layer net: could not be read: connection reset")
        }

        let harness = Harness()
        harness.sink.failAfter = 1
        let error = harness.failure { try $0.apply([.file("a", "a"), .file("b", "b")], name: "full") }
        #expect(error?.description == "layer full: entry b could not be stored: the image file is full")
        #expect(error?.kind == .fileData)
    }

    @Test func truncatedEntryDataNamesTheEntry() throws {
        let tar = makeTar([.file("a", "a"), .file("blob", bytes: [UInt8](repeating: 7, count: 100_000))])
        let error = Harness().failure { try $0.apply(Array(tar.prefix(50_000)), name: "cut.tar") }
        #expect(error?.entry == "blob")
        #expect(error?.kind == .archive)
    }
}
