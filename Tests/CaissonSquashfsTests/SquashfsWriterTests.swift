import CaissonSystem
import Testing
@testable import CaissonSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// Images written by SquashfsWriter, checked with tools that do not share its code path:
/// unsquashfs (squashfs-tools) lists and extracts; rdsquashfs/sqfs2tar (squashfs-tools-ng)
/// show inode internals, xattrs and a tar view.
@Suite(.serialized)
struct SquashfsWriterTests {
    static let toolsPresent = ["/usr/bin/unsquashfs", "/usr/bin/rdsquashfs", "/usr/bin/sqfs2tar"].allSatisfy(Tool.exists)

    /// A tree with every kind of node and the awkward cases, and the bytes each file must hold.
    struct Sample {
        let root: FileNode
        var contents: [String: [UInt8]] = [:]
        /// Expected `ls -l` style mode strings.
        var modes: [String: String] = [:]
        var symlinks: [String: String] = [:]
        var smallFiles = 0
        var orderNames: [String] = []
    }

    static func makeSample(_ writer: SquashfsWriter, blockSize: Int, smallFiles: Int = 3000) throws -> Sample {
        var random = SplitMix(seed: 0xCA155011)
        let root = FileNode.dir(0o755)
        var sample = Sample(root: root)
        sample.smallFiles = smallFiles

        func addFile(_ path: String, _ parent: FileNode, _ name: String, _ bytes: [UInt8],
                     permissions: UInt16 = 0o644, mode: String = "-rw-r--r--") throws -> FileNode {
            let node = FileNode.file(try writer.store(bytes), permissions: permissions)
            parent.add(name, node)
            sample.contents[path] = bytes
            sample.modes[path] = mode
            return node
        }

        // Content written before the tree exists, never referenced (a file a later layer deleted).
        _ = try writer.store(random.bytes(blockSize + 123))

        _ = try addFile("/empty", root, "empty", [])
        root.add("nodata", .file(nil, permissions: 0o600))
        sample.contents["/nodata"] = []
        sample.modes["/nodata"] = "-rw-------"
        let oneBlock = random.bytes(blockSize)
        _ = try addFile("/one-block", root, "one-block", oneBlock)
        let big = random.bytes(blockSize * 7 / 2)
        _ = try addFile("/big", root, "big", big)
        _ = try addFile("/big-copy", root, "big-copy", big)           // whole-file deduplication
        _ = try addFile("/text", root, "text", random.text(300_000))
        _ = try addFile("/zeros", root, "zeros", [UInt8](repeating: 0, count: blockSize * 2 + 100)) // sparse blocks
        _ = try addFile("/tail-of-big", root, "tail-of-big", Array(big.suffix(blockSize / 2))) // same bytes as a tail

        let bin = root.add("bin", .dir())
        sample.modes["/bin"] = "drwxr-xr-x"
        _ = try addFile("/bin/tool", bin, "tool", random.text(5000), permissions: 0o4755, mode: "-rwsr-xr-x")
        _ = try addFile("/bin/group", bin, "group", random.text(100), permissions: 0o2711, mode: "-rwx--s--x")
        bin.add("dangling", FileNode(kind: .symlink(target: "../no where/at all"), permissions: 0o777))
        sample.symlinks["/bin/dangling"] = "../no where/at all"
        root.add("link", FileNode(kind: .symlink(target: "one-block"), permissions: 0o777))
        sample.symlinks["/link"] = "one-block"
        sample.modes["/link"] = "lrwxrwxrwx"
        root.add("tmp", .dir(0o1777))
        sample.modes["/tmp"] = "drwxrwxrwt"
        root.add("fifo", FileNode(kind: .fifo, permissions: 0o640))
        sample.modes["/fifo"] = "prw-r-----"
        root.add("socket", FileNode(kind: .socket, permissions: 0o755))
        sample.modes["/socket"] = "srwxr-xr-x"

        // One node under two names: one inode, link count 2.
        let sub = root.add("sub", .dir(0o750))
        sample.modes["/sub"] = "drwxr-x---"
        let hard = try addFile("/hard1", root, "hard1", random.text(7000), permissions: 0o755, mode: "-rwxr-xr-x")
        sub.add("hard2", hard)
        sample.contents["/sub/hard2"] = sample.contents["/hard1"]
        sample.modes["/sub/hard2"] = "-rwxr-xr-x"
        let tagged = try addFile("/sub/xattr", sub, "xattr", random.text(10))
        tagged.xattrs = ["user.test": Array("value".utf8), "trusted.other": [0, 1, 2, 255],
                         "system.posix_acl_access": [2, 0, 0, 0]]   // not storable in squashfs: skipped
        let tagDir = sub.add("tagged-dir", .dir())
        tagDir.xattrs = ["user.dir": Array("1".utf8)]
        let tagLink = FileNode(kind: .symlink(target: "xattr"), permissions: 0o777, xattrs: ["trusted.link": Array("yes".utf8)])  // user.* is not readable on symlinks
        sub.add("tagged-link", tagLink)
        sample.symlinks["/sub/tagged-link"] = "xattr"

        var deep = root
        var deepPath = ""
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            deep = deep.add(name, .dir())
            deepPath += "/" + name
        }
        _ = try addFile(deepPath + "/file", deep, "file", random.text(333))

        // Many small files: fragments, many fragment blocks, several directory headers/index
        // entries, duplicate tails.
        let many = root.add("many", .dir())
        let firstSmall = random.text(1000)
        for index in 0..<smallFiles {
            let name = "f" + String(index + 100_000).dropFirst()
            let bytes = index % 10 == 0 ? firstSmall : random.text(Int(random.next() % 3000) + 1)
            _ = try addFile("/many/\(name)", many, name, bytes)
        }

        // Names whose byte order differs from other orders (case, punctuation, UTF-8).
        let order = root.add("order", .dir())
        sample.orderNames = ["b", "B", "a", "a.b", "a-b", "a_b", "é", "Z", "0", "~", "ab", "a b", "zz", "ä"]
        for name in sample.orderNames { order.add(name, .file(nil)) }

        // Timestamps are 32-bit unsigned in squashfs: clamped.
        let future = FileNode.file(nil, modificationTime: 1 << 40)
        root.add("future", future)
        let past = FileNode.file(nil, modificationTime: -5)
        root.add("past", past)
        return sample
    }

    static func listing(_ image: String) throws -> [String: ListingEntry] {
        let result = try Tool.run(["/usr/bin/unsquashfs", "-lln", image])
        #expect(result.status == 0, "unsquashfs -lln: \(result.errors)")
        return ListingEntry.parse(result.lines)
    }

    static let compressions: [SquashfsOptions.Compression] = [.zstd(level: 3), .gzip(level: 6), .lz4, .xz, .none]

    @Test(.enabled(if: toolsPresent), arguments: compressions)
    func fullTreeRoundTrips(compression: SquashfsOptions.Compression) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = directory.file("image.sqfs")
        let blockSize = 131072
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: compression, blockSize: blockSize, jobs: 2))
        let sample = try Self.makeSample(writer, blockSize: blockSize)
        try writer.finish(root: sample.root)
        // CAISSON_SQFS_KEEP=DIR keeps the images for a look by hand.
        if let keep = ProcessEnvironment.dictionary()["CAISSON_SQFS_KEEP"] {
            _ = try Tool.run(["/bin/cp", image, "\(keep)/sample-\(compression).sqfs"])
        }
        let size = Files.stat(image).map { UInt64($0.st_size) } ?? 0
        #expect(size == writer.bytesWritten)
        #expect(size % 4096 == 0)

        // The super block: compressor and flags.
        let superblock = try Tool.run(["/usr/bin/unsquashfs", "-s", image])
        #expect(superblock.status == 0, "\(superblock.errors)")
        let expectedName: String
        switch compression {
        case .zstd: expectedName = "zstd"
        case .gzip, .none: expectedName = "gzip"
        case .lz4: expectedName = "lz4"
        case .xz: expectedName = "xz"
        }
        #expect(superblock.text.contains("Compression \(expectedName)"), "\(superblock.text)")
        if compression == .none {
            #expect(superblock.text.contains("Data is uncompressed"))
            #expect(superblock.text.contains("Inodes are uncompressed"))
            #expect(superblock.text.contains("Fragments are uncompressed"))
        } else {
            #expect(superblock.text.contains("Data is compressed"))
        }
        #expect(superblock.text.contains("Filesystem is exportable via NFS"))
        #expect(superblock.text.contains("Number of ids 1"))
        #expect(superblock.text.contains("Duplicates are removed"))

        // The listing: every path, its mode, size, owner 0/0, symlink targets.
        let entries = try Self.listing(image)
        for (path, entry) in entries {
            #expect(entry.owner == "0/0", "\(path) owned by \(entry.owner)")
        }
        for (path, bytes) in sample.contents {
            #expect(entries[path]?.size == UInt64(bytes.count), "size of \(path)")
        }
        for (path, mode) in sample.modes {
            #expect(entries[path]?.mode == mode, "mode of \(path): \(entries[path]?.mode ?? "missing")")
        }
        for (path, target) in sample.symlinks {
            #expect(entries[path]?.target == target, "target of \(path)")
        }
        #expect(entries["/"]?.mode == "drwxr-xr-x")
        #expect(entries["/many"] != nil)
        #expect(entries.keys.filter { $0.hasPrefix("/many/") }.count == sample.smallFiles)

        // Directory entries are stored sorted by name bytes (unsquashfs lists in stored order).
        let orderLines = try Tool.run(["/usr/bin/unsquashfs", "-lln", image, "order"]).lines
            .compactMap { line -> String? in
                line.splitOnce("squashfs-root/order/")?.1
            }
        let byteSorted = sample.orderNames.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        #expect(orderLines == byteSorted)

        // Contents, byte for byte, from a full extraction by unsquashfs.
        let out = directory.file("out")
        let extract = try Tool.run(["/usr/bin/unsquashfs", "-no-xattrs", "-d", out, image])
        #expect(extract.status == 0, "unsquashfs: \(extract.errors)")
        for (path, bytes) in sample.contents {
            let actual = try? readFile(out + path)
            let same = actual == bytes
            #expect(same, "contents of \(path): \(actual?.count ?? -1) bytes, expected \(bytes.count)")
        }

        // Hard links: one inode, link count 2; directories: 2 + subdirectories.
        let hard1 = try inodeStat(image, "/hard1")
        let hard2 = try inodeStat(image, "/sub/hard2")
        #expect(hard1["Inode number"] != nil && hard1["Inode number"] == hard2["Inode number"])
        #expect(hard1["Hard link count"] == "2")
        let root = try inodeStat(image, "/")
        let subdirectories = sample.root.children.values.filter(\.isDirectory).count
        #expect(root["Hard link count"] == String(2 + subdirectories))
        #expect(try inodeStat(image, "/sub")["Hard link count"] == "3")
        #expect(try inodeStat(image, "/tmp")["Hard link count"] == "2")
        // (A basic file inode has no link count field: it is 1.)
        #expect(try inodeStat(image, "/one-block")["Hard link count"] ?? "1" == "1")
        #expect(try inodeStat(image, "/one-block")["Inode type"] == "file")
        #expect(try inodeStat(image, "/sub/xattr")["Inode type"] == "extended file")
        // The root has the highest inode number, as in mksquashfs images (inodes: the listed
        // paths less the second name of the hard link).
        #expect(root["Inode number"] == String(entries.count - 1))

        // Timestamps clamp to the 32-bit range.
        #expect(try inodeStat(image, "/future")["Last modified"]?.hasSuffix("(4294967295)") == true)
        #expect(try inodeStat(image, "/past")["Last modified"]?.hasSuffix("(0)") == true)
        #expect(try inodeStat(image, "/one-block")["Last modified"]?.hasSuffix("(1700000000)") == true)

        // Extended attributes, on a file, a directory and a symlink.
        let xattrs = try Tool.run(["/usr/bin/rdsquashfs", "-x", "/sub/xattr", image])
        #expect(xattrs.lines.contains("user.test=value"), "\(xattrs.text)")
        #expect(xattrs.lines.contains { $0.hasPrefix("trusted.other=") })
        #expect(!xattrs.text.contains("system."))
        #expect(try Tool.run(["/usr/bin/rdsquashfs", "-x", "/sub/tagged-dir", image]).lines == ["user.dir=1"])
        #expect(try Tool.run(["/usr/bin/rdsquashfs", "-x", "/sub/tagged-link", image]).lines == ["trusted.link=yes"])
        #expect(try Tool.run(["/usr/bin/rdsquashfs", "-x", "/one-block", image]).lines.isEmpty)

        // A second reader: sqfs2tar's tar stream lists the same files (sockets are not tar-able).
        let tar = try Tool.shell("/usr/bin/sqfs2tar --no-xattr \(image) 2>/dev/null | tar -tf -")
        #expect(tar.status == 0)
        let tarNames = Set(tar.lines.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 })
        for path in sample.contents.keys {
            #expect(tarNames.contains(String(path.dropFirst())), "tar lacks \(path)")
        }
        let hash = try Tool.shell("/usr/bin/sqfs2tar --no-xattr \(image) 2>/dev/null | tar -xOf - big | md5sum")
        let bigHash = try Tool.shell("md5sum < \(out)/big")
        #expect(hash.text == bigHash.text)
    }

    /// The Linux kernel reads the image (loop mount; needs root and loop devices, otherwise the
    /// test only notes that it could not mount). Lookups go through the kernel's directory index
    /// and sorted-name search, so every name is looked up.
    @Test(.enabled(if: getuid() == 0)) func kernelMountReadsTheImage() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = directory.file("kernel.sqfs")
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .zstd(level: 3), jobs: 2))
        let sample = try Self.makeSample(writer, blockSize: 131072)
        try writer.finish(root: sample.root)
        let mountPoint = directory.file("mnt")
        try Files.makeDirectories(mountPoint)
        let mount = try Subprocess.run(["/bin/mount", "-t", "squashfs", "-o", "loop,ro", image, mountPoint], quiet: true)
        guard mount.succeeded else {
            print("kernel mount not possible here (\(mount.description)): skipped")
            return
        }
        defer { _ = try? Subprocess.run(["/bin/umount", mountPoint], quiet: true) }

        for (path, bytes) in sample.contents {
            let actual = try? readFile(mountPoint + path)
            let same = actual == bytes
            #expect(same, "kernel read of \(path): \(actual?.count ?? -1) bytes, expected \(bytes.count)")
        }
        for name in sample.orderNames {
            #expect(Files.lstat(mountPoint + "/order/" + name) != nil, "kernel lookup of /order/\(name)")
        }
        for (path, mode) in sample.modes {
            guard let st = Files.lstat(mountPoint + path) else { Issue.record("kernel lookup of \(path)"); continue }
            #expect(Self.modeString(st.st_mode) == mode, "kernel mode of \(path)")
            #expect(st.st_uid == 0 && st.st_gid == 0)
        }
        for (path, target) in sample.symlinks {
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink(mountPoint + path, &buffer, buffer.count)
            #expect(n > 0 && String(decoding: buffer[..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self) == target)
        }
        let hard1 = try #require(Files.lstat(mountPoint + "/hard1"))
        let hard2 = try #require(Files.lstat(mountPoint + "/sub/hard2"))
        #expect(hard1.st_ino == hard2.st_ino && hard1.st_nlink == 2)
        #expect(Files.lstat(mountPoint + "/sub")?.st_nlink == 3)
        #expect(Files.lstat(mountPoint + "/future")?.st_mtim.tv_sec == 4_294_967_295)
        #expect(ExtendedAttributes.get(mountPoint + "/sub/xattr", "user.test") == Array("value".utf8))
        #expect(ExtendedAttributes.get(mountPoint + "/sub/xattr", "trusted.other") == [0, 1, 2, 255])
        #expect(ExtendedAttributes.get(mountPoint + "/sub/tagged-dir", "user.dir") == Array("1".utf8))
        #expect(ExtendedAttributes.get(mountPoint + "/sub/tagged-link", "trusted.link", followingSymlinks: false) == Array("yes".utf8))
        #expect(ExtendedAttributes.get(mountPoint + "/one-block", "user.test") == nil)
    }

    static func modeString(_ mode: mode_t) -> String {
        let type: Character
        switch mode & S_IFMT {
        case S_IFDIR: type = "d"
        case S_IFLNK: type = "l"
        case S_IFIFO: type = "p"
        case S_IFSOCK: type = "s"
        default: type = "-"
        }
        var text = [type]
        let bits: [(mode_t, Character)] = [(0o400, "r"), (0o200, "w"), (0o100, "x"), (0o40, "r"), (0o20, "w"), (0o10, "x"),
                                          (0o4, "r"), (0o2, "w"), (0o1, "x")]
        for (bit, letter) in bits { text.append(mode & bit != 0 ? letter : "-") }
        if mode & 0o4000 != 0 { text[3] = text[3] == "x" ? "s" : "S" }
        if mode & 0o2000 != 0 { text[6] = text[6] == "x" ? "s" : "S" }
        if mode & 0o1000 != 0 { text[9] = text[9] == "x" ? "t" : "T" }
        return String(text)
    }

    @Test(.enabled(if: toolsPresent))
    func unreferencedDataStillGivesAValidImage() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = directory.file("dead.sqfs")
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .zstd(level: 3), jobs: 2))
        var random = SplitMix(seed: 7)
        // Whole blocks and fragments that nothing will refer to, before and after the kept file.
        for _ in 0..<5 { _ = try writer.store(random.bytes(200_000)) }
        let kept = random.text(50_000)
        let keptData = try writer.store(kept)
        for _ in 0..<50 { _ = try writer.store(random.text(700)) }
        let root = FileNode.dir()
        root.add("kept", .file(keptData))
        try writer.finish(root: root)

        let entries = try Self.listing(image)
        #expect(Set(entries.keys) == ["/", "/kept"])
        let cat = try Tool.run(["/usr/bin/unsquashfs", "-cat", image, "kept"])
        #expect(cat.status == 0)
        let same = cat.output == kept
        #expect(same, "unsquashfs -cat gave \(cat.output.count) bytes, expected \(kept.count)")
        let extract = try Tool.run(["/usr/bin/unsquashfs", "-d", directory.file("out"), image])
        #expect(extract.status == 0, "\(extract.errors)")
    }

    @Test(.enabled(if: toolsPresent))
    func emptyRootAndOtherBlockSizes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // An image with nothing but the root.
        let empty = directory.file("empty.sqfs")
        let writer = try SquashfsWriter(path: empty, options: SquashfsOptions(jobs: 1))
        try writer.finish(root: .dir(0o700))
        let entries = try Self.listing(empty)
        #expect(entries.count == 1 && entries["/"]?.mode == "drwx------")

        // The smallest and largest block sizes, one worker and many.
        for (blockSize, jobs) in [(4096, 1), (1 << 20, 3)] {
            let image = directory.file("bs\(blockSize).sqfs")
            let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .gzip(level: 1), blockSize: blockSize, jobs: jobs))
            var random = SplitMix(seed: UInt64(blockSize))
            let root = FileNode.dir()
            var expected: [String: [UInt8]] = [:]
            for index in 0..<40 {
                let bytes = index % 2 == 0 ? random.bytes(Int(random.next() % 3_000_000)) : random.text(Int(random.next() % 9000))
                root.add("file\(index)", .file(try writer.store(bytes)))
                expected["/file\(index)"] = bytes
            }
            try writer.finish(root: root)
            let superblock = try Tool.run(["/usr/bin/unsquashfs", "-s", image])
            #expect(superblock.text.contains("Block size \(blockSize)"))
            let out = directory.file("out\(blockSize)")
            let extract = try Tool.run(["/usr/bin/unsquashfs", "-d", out, image])
            #expect(extract.status == 0, "\(extract.errors)")
            for (path, bytes) in expected {
                let same = (try? readFile(out + path)) == bytes
                #expect(same, "\(path) with block size \(blockSize)")
            }
        }
    }

    @Test(.enabled(if: toolsPresent))
    func uncompressedFullFragmentBlocksDeduplicate() throws {
        // Fragments filling a fragment block exactly, stored uncompressed, then a duplicate of
        // one of them: deduplication must read the full block back and match it.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for compression in [SquashfsOptions.Compression.none, .zstd(level: 3)] {
            let image = directory.file("frag-\(compression).sqfs")
            let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: compression, blockSize: 131072, jobs: 2))
            var random = SplitMix(seed: 99)
            let root = FileNode.dir()
            var expected: [String: [UInt8]] = [:]
            var pieces: [[UInt8]] = []
            for index in 0..<64 {       // 64 × 4 KiB: two exactly full fragment blocks
                let bytes = random.bytes(4096)
                pieces.append(bytes)
                root.add("p\(index)", .file(try writer.store(bytes)))
                expected["/p\(index)"] = bytes
            }
            for index in 0..<64 {
                root.add("d\(index)", .file(try writer.store(pieces[index])))
                expected["/d\(index)"] = pieces[index]
            }
            try writer.finish(root: root)
            let out = directory.file("out-\(compression)")
            let extract = try Tool.run(["/usr/bin/unsquashfs", "-d", out, image])
            #expect(extract.status == 0, "\(extract.errors)")
            for (path, bytes) in expected {
                let same = (try? readFile(out + path)) == bytes
                #expect(same, "\(path) with \(compression)")
            }
            let fragments = try Tool.run(["/usr/bin/unsquashfs", "-s", image]).lines.first { $0.hasPrefix("Number of fragments") }
            #expect(fragments == "Number of fragments 2", "\(compression): \(fragments ?? "-")")
        }
    }

    @Test func readerErrorsPropagateAndTheWriterGoesOn() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = directory.file("reader.sqfs")
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(jobs: 1))
        struct Broken: Error {}
        var calls = 0
        #expect(throws: Broken.self) {
            _ = try writer.writeFileData { buffer in
                calls += 1
                if calls > 3 { throw Broken() }
                buffer.initializeMemory(as: UInt8.self, repeating: 1)
                return buffer.count
            }
        }
        let good = try writer.store(Array("fine".utf8))
        let root = FileNode.dir()
        root.add("good", .file(good))
        try writer.finish(root: root)
        if Self.toolsPresent {
            #expect(try Tool.run(["/usr/bin/unsquashfs", "-cat", image, "good"]).text == "fine")
        }
        // Finished: no more data, no second finish.
        #expect(throws: SquashfsError.self) { _ = try writer.store([1]) }
        #expect(throws: SquashfsError.self) { try writer.finish(root: root) }
    }

    @Test func invalidTreesAreRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        func attempt(_ build: (SquashfsWriter) throws -> FileNode) throws -> String {
            let writer = try SquashfsWriter(path: directory.file("bad.sqfs"), options: SquashfsOptions(jobs: 1))
            do {
                try writer.finish(root: try build(writer))
                return "no error"
            } catch let error as SquashfsError {
                return error.description
            }
        }
        // Contents from another writer (an id this one never handed out).
        #expect(try attempt { _ in
            let root = FileNode.dir(); root.add("x", .file(FileData(id: 5, size: 3))); return root
        }.contains("not written by this writer"))
        // A size that does not match what was written.
        #expect(try attempt { writer in
            let data = try writer.store([1, 2, 3])
            let root = FileNode.dir(); root.add("x", .file(FileData(id: data.id, size: 4))); return root
        }.contains("3 bytes"))
        // A directory under two names, and a directory inside itself.
        #expect(try attempt { _ in
            let root = FileNode.dir(); let d = FileNode.dir(); root.add("a", d); root.add("b", d); return root
        }.contains("two names"))
        #expect(try attempt { _ in
            let root = FileNode.dir(); let d = root.add("a", .dir()); d.add("loop", root); return root
        }.contains("two names"))
        // Names squashfs cannot hold.
        #expect(try attempt { _ in
            let root = FileNode.dir(); root.add("a/b", .file(nil)); return root
        }.contains("invalid entry name"))
        #expect(try attempt { _ in
            let root = FileNode.dir(); root.add("..", .file(nil)); return root
        }.contains("invalid entry name"))
        #expect(try attempt { _ in FileNode.file(nil) }.contains("not a directory"))
    }

    @Test func deeplyNestedTreesDoNotRecurse() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = directory.file("deep.sqfs")
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .lz4, jobs: 1))
        let root = FileNode.dir()
        var current = root
        for _ in 0..<20_000 { current = current.add("d", .dir()) }
        current.add("bottom", .file(try writer.store(Array("deep".utf8))))
        try writer.finish(root: root)
        if Self.toolsPresent {
            let stat = try inodeStat(image, "/")
            #expect(stat["Inode number"] == "20002")
        }
    }

    @Test func parsesCompressionNames() throws {
        #expect(try SquashfsOptions.Compression.parse("zstd") == .zstd(level: 3))
        #expect(try SquashfsOptions.Compression.parse("zstd:19") == .zstd(level: 19))
        #expect(try SquashfsOptions.Compression.parse("ZSTD:1") == .zstd(level: 1))
        #expect(try SquashfsOptions.Compression.parse("gzip") == .gzip(level: 9))
        #expect(try SquashfsOptions.Compression.parse("gzip:1") == .gzip(level: 1))
        #expect(try SquashfsOptions.Compression.parse("lz4") == .lz4)
        #expect(try SquashfsOptions.Compression.parse("xz") == .xz)
        #expect(try SquashfsOptions.Compression.parse("none") == .none)
        for bad in ["zstd:0", "zstd:23", "zstd:", "gzip:10", "lz4:1", "lzo", "", "none:1", "zstd:x"] {
            #expect(throws: SquashfsError.self, "\(bad)") { try SquashfsOptions.Compression.parse(bad) }
        }
        for compression in Self.compressions {
            #expect(try SquashfsOptions.Compression.parse(compression.description) == compression)
        }
        let error = #expect(throws: SquashfsError.self) { try SquashfsOptions.Compression.parse("brotli") }
        #expect(error?.description.contains("unknown compressor") == true)
    }

    @Test func refusesBadOptions() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for options in [SquashfsOptions(blockSize: 1000), SquashfsOptions(blockSize: 2048), SquashfsOptions(blockSize: 1 << 21),
                        SquashfsOptions(jobs: 0), SquashfsOptions(compression: .zstd(level: 30))] {
            #expect(throws: SquashfsError.self) { _ = try SquashfsWriter(path: directory.file("x"), options: options) }
        }
        #expect(SquashfsOptions().jobs >= 1)
        #expect(SquashfsOptions().jobs <= SquashfsOptions.availableCPUs)
        // An image that cannot be created names the path and the reason.
        let error = #expect(throws: SquashfsError.self) {
            _ = try SquashfsWriter(path: "/nonexistent-dir/x.sqfs", options: SquashfsOptions())
        }
        #expect(error?.description.contains("/nonexistent-dir/x.sqfs") == true)
        #expect(error?.description.contains("No such file or directory") == true)
    }

    @Test func errorDescriptionsNameStepAndCause() {
        let full = SquashfsError(step: "writing data block", code: -2, systemErrno: ENOSPC)
        #expect(full.description == "writing data block: I/O error (No space left on device)")
        #expect(full.isOutOfSpace)
        #expect(SquashfsError(step: "writing id table", code: -1).description == "writing id table: out of memory")
        #expect(SquashfsError(step: "x", code: -99).description == "x: libsquashfs error -99")
    }

    /// Disk full: the image on a 1 MiB tmpfs. Needs root (to mount); skipped otherwise.
    @Test(.enabled(if: getuid() == 0)) func fullDiskIsAClearError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let mountPoint = directory.file("small")
        try Files.makeDirectories(mountPoint)
        let mount = try Subprocess.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint], quiet: true)
        guard mount.succeeded else {
            print("mounting a tmpfs is not possible here (\(mount.description)): skipped")
            return
        }
        defer { _ = try? Subprocess.run(["/bin/umount", mountPoint], quiet: true) }

        // Data that does not compress, much more than fits: writeFileData (or at the latest
        // finish) must throw, naming the step and "No space left on device".
        var random = SplitMix(seed: 3)
        for compression in [SquashfsOptions.Compression.none, .zstd(level: 3)] {
            let image = mountPoint + "/image.sqfs"
            let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: compression, jobs: 2))
            var failure: SquashfsError?
            let root = FileNode.dir()
            do {
                for index in 0..<8 {
                    root.add("f\(index)", .file(try writer.store(random.bytes(512 * 1024))))
                }
                try writer.finish(root: root)
            } catch let error as SquashfsError {
                failure = error
            }
            let error = try #require(failure, "no error writing 4 MiB into 1 MiB with \(compression)")
            print("disk full with \(compression): \(error)")
            #expect(error.isOutOfSpace)
            #expect(error.description.contains("No space left on device"), "\(error)")
            #expect(error.description.contains("I/O error"), "\(error)")
            #expect(error.step.hasPrefix("writing"), "\(error)")
            // The writer stays failed, and says why.
            let again = #expect(throws: SquashfsError.self) { try writer.finish(root: root) }
            #expect(again?.description.contains("No space left on device") == true)
            #expect(throws: SquashfsError.self) { _ = try writer.store([1, 2, 3]) }
            unlink(image)
        }

        // No room left for the tables: finish throws at the inode table.
        let image = mountPoint + "/tables.sqfs"
        let filler = mountPoint + "/filler"
        let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .none, jobs: 1))
        let root = FileNode.dir()
        let longName = String(repeating: "n", count: 200)
        for index in 0..<3000 { root.add("\(longName)\(index)", .file(nil)) }
        // Fill the rest of the file system.
        let fill = try Tool.shell("dd if=/dev/zero of=\(filler) bs=4096 2>/dev/null; true")
        #expect(fill.status == 0)
        let error = #expect(throws: SquashfsError.self) { try writer.finish(root: root) }
        #expect(error?.isOutOfSpace == true, "\(String(describing: error))")
        print("disk full in finish: \(error.map(String.init(describing:)) ?? "-")")
        #expect(error?.step == "writing inode table", "\(String(describing: error))")
        unlink(filler)
    }
}
