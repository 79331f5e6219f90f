import CaissonSystem
import Testing
@testable import CaissonSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// Not a check, a measurement: ~500 MB of mixed files written by SquashfsWriter (streamed from
/// a source directory, as layers stream) and by mksquashfs from the same directory, both zstd
/// level 3 with two compression threads. Runs only with CAISSON_SQFS_BENCH=1, best in release:
///   CAISSON_SQFS_BENCH=1 swift test -c release --scratch-path .build-sqfs --filter throughput
/// CAISSON_SQFS_BENCH_MB sets the size (default 500); CAISSON_SQFS_BENCH_SOURCE=DIR measures an
/// existing tree instead (e.g. an extracted image), or keeps the generated one there.
@Suite struct ThroughputBenchmark {
    static let enabled = ProcessEnvironment.dictionary()["CAISSON_SQFS_BENCH"] != nil

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Writes the source tree: many small text files, medium files mixing text with random
    /// chunks (already-compressed content), a few large ones. Returns the byte count.
    static func generate(into root: String, megabytes: Int) throws -> (bytes: UInt64, files: Int) {
        var random = SplitMix(seed: 2024)
        // A text corpus to cut files from (compresses roughly 3:1 with zstd -3).
        let corpus = random.text(8 << 20)
        func mixed(_ count: Int, randomShare: UInt64) -> [UInt8] {
            var result: [UInt8] = []
            result.reserveCapacity(count)
            while result.count < count {
                let piece = min(count - result.count, 16384 + Int(random.next() % 49152))
                if random.next() % 100 < randomShare {
                    result += random.bytes(piece)
                } else {
                    let start = Int(random.next() % UInt64(corpus.count - piece))
                    result += corpus[start..<start + piece]
                }
            }
            return result
        }
        let scale = Double(megabytes) / 500
        var total: UInt64 = 0
        var files = 0
        func write(_ path: String, _ bytes: [UInt8]) throws {
            let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
            try fd.write(bytes)
            total += UInt64(bytes.count)
            files += 1
        }
        // ~120 MB: 30 000 small text files (0–8 KiB) in 300 directories.
        for directory in 0..<300 {
            let path = "\(root)/small/d\(directory)"
            try Files.makeDirectories(path)
            for index in 0..<Int(100 * scale) {
                let start = Int(random.next() % UInt64(corpus.count - 8192))
                try write("\(path)/f\(index).txt", Array(corpus[start..<start + Int(random.next() % 8192)]))
            }
        }
        // ~220 MB: 400 medium files (100 KiB–1 MiB), a quarter of their content random.
        try Files.makeDirectories("\(root)/medium")
        for index in 0..<Int(400 * scale) {
            try write("\(root)/medium/m\(index).bin", mixed(102_400 + Int(random.next() % 946_176), randomShare: 25))
        }
        // ~160 MB: 8 large files of 20 MiB.
        try Files.makeDirectories("\(root)/large")
        for index in 0..<max(1, Int(8 * scale)) {
            try write("\(root)/large/l\(index).dat", mixed(20 << 20, randomShare: 25))
        }
        return (total, files)
    }

    /// Streams a directory tree into a writer and returns the FileNode tree.
    static func stream(_ path: String, into writer: SquashfsWriter) throws -> FileNode {
        let node = FileNode.directory(permissions: 0o755)
        for name in Files.list(path) {
            let child = path + "/" + name
            guard let st = Files.lstat(child) else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                node.children[name] = try stream(child, into: writer)
            } else if st.st_mode & S_IFMT == S_IFREG {
                let fd = try FileDescriptor.open(child, O_RDONLY)
                let data = try writer.writeFileData { buffer in
                    let n = read(fd.rawValue, buffer.baseAddress, buffer.count)
                    if n < 0 { throw SystemError("read", path: child) }
                    return n
                }
                node.children[name] = FileNode(kind: .regularFile, permissions: UInt16(st.st_mode & 0o7777),
                                               modificationTime: Int64(st.st_mtim.tv_sec), data: data)
            }
        }
        return node
    }

    static func maxRSSMegabytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss / 1024
    }

    @Test(.enabled(if: enabled)) func throughputAgainstMksquashfs() throws {
        let megabytes = Int(ProcessEnvironment.dictionary()["CAISSON_SQFS_BENCH_MB"] ?? "") ?? 500
        let directory = try TemporaryDirectory("caisson-sqfs-bench")
        defer { directory.remove() }
        let environment = ProcessEnvironment.dictionary()
        let source = environment["CAISSON_SQFS_BENCH_SOURCE"] ?? directory.file("source")
        let generated = Self.now()
        let bytes: UInt64, files: Int
        if Files.isDirectory(source) {
            let du = try Tool.shell("find '\(source)' -type f -printf '%s\\n' | awk '{s+=$1; n++} END {print s, n}'")
            let fields = du.text.split(separator: " ").map { String($0).filter(\.isNumber) }
            bytes = UInt64(fields.first ?? "") ?? 0
            files = Int(fields.last ?? "") ?? 0
        } else {
            (bytes, files) = try Self.generate(into: source, megabytes: megabytes)
        }
        let megabytesIn = Double(bytes) / 1e6
        print("source: \(fixed(megabytesIn)) MB in \(files) files (generated in \(fixed(Self.now() - generated)) s)")
        _ = try Tool.shell("find '\(source)' -type f -exec cat {} + > /dev/null 2>&1")   // warm the page cache

        func ours(_ run: Int) throws -> (seconds: Double, size: UInt64) {
            let image = directory.file("ours\(run).sqfs")
            let start = Self.now()
            let writer = try SquashfsWriter(path: image, options: SquashfsOptions(compression: .zstd(level: 3), jobs: 2))
            let root = try Self.stream(source, into: writer)
            let streamed = Self.now()
            try writer.finish(root: root)
            let seconds = Self.now() - start
            let finishing = Self.now() - streamed
            let imageMB = Double(writer.bytesWritten) / 1e6
            print("SquashfsWriter run \(run): \(fixed(seconds, 2)) s (\(fixed(megabytesIn / seconds)) MB/s, finish \(fixed(finishing, 2)) s), "
                  + "image \(fixed(imageMB)) MB, peak RSS of the test process \(Self.maxRSSMegabytes()) MB")
            let check = try Tool.run(["/usr/bin/unsquashfs", "-lls", image])
            #expect(check.status == 0)
            return (seconds, writer.bytesWritten)
        }
        func mksquashfs(_ run: Int) throws -> (seconds: Double, size: UInt64) {
            let image = directory.file("mksquashfs\(run).sqfs")
            let start = Self.now()
            let result = try Tool.run(["/usr/bin/mksquashfs", source, image, "-comp", "zstd", "-Xcompression-level", "3",
                                       "-processors", "2", "-noappend", "-quiet", "-no-progress"])
            let seconds = Self.now() - start
            #expect(result.status == 0, "\(result.errors)")
            let size = Files.stat(image).map { UInt64($0.st_size) } ?? 0
            print("mksquashfs run \(run): \(fixed(seconds, 2)) s (\(fixed(megabytesIn / seconds)) MB/s), image \(fixed(Double(size) / 1e6)) MB")
            return (seconds, size)
        }
        _ = try ours(1)
        _ = try mksquashfs(1)
        _ = try ours(2)
        _ = try mksquashfs(2)
    }
}

/// A number with a fixed count of decimals (no Foundation here).
func fixed(_ value: Double, _ decimals: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let whole = scaled / Int(scale), fraction = scaled % Int(scale)
    var digits = String(fraction)
    while digits.count < decimals { digits = "0" + digits }
    return (value < 0 ? "-" : "") + String(whole) + (decimals > 0 ? "." + digits : "")
}
