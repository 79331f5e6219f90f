import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// How an image is written: compressor, data block size and compression threads.
public struct SquashfsOptions: Sendable, Equatable {
    public enum Compression: Sendable, Equatable, CustomStringConvertible {
        /// zstd, level 1...22 (mksquashfs's default is 15; 3 is much faster and nearly as small).
        case zstd(level: Int)
        /// zlib deflate, level 1...9: readable by every kernel that has squashfs.
        case gzip(level: Int)
        case lz4
        /// xz at its default preset (6), no BCJ filter.
        case xz
        /// Nothing compressed: data, fragments and all metadata are stored as they are. The super
        /// block names gzip (as `mksquashfs -noI -noD -noF -noX` does) and sets the
        /// "uncompressed" flags; no block is ever actually deflated.
        case none

        /// Parses "zstd", "zstd:LEVEL", "gzip", "gzip:LEVEL", "lz4", "xz" or "none" (also
        /// "uncompressed"). Without a level, zstd gets 3 and gzip 9.
        public static func parse(_ text: String) throws(SquashfsError) -> Compression {
            let lowered = text.lowercased()
            let parts = lowered.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            let levelText = parts.count > 1 ? String(parts[1]) : nil
            func level(default value: Int, range: ClosedRange<Int>) throws(SquashfsError) -> Int {
                guard let levelText else { return value }
                guard let level = Int(levelText), range.contains(level) else {
                    throw .invalid("compression \"\(text)\"", "\(name) level must be a number from \(range.lowerBound) to \(range.upperBound)")
                }
                return level
            }
            func noLevel(_ value: Compression) throws(SquashfsError) -> Compression {
                if levelText != nil { throw .invalid("compression \"\(text)\"", "\(name) takes no level") }
                return value
            }
            switch name {
            case "zstd": return .zstd(level: try level(default: 3, range: 1...22))
            case "gzip", "zlib": return .gzip(level: try level(default: 9, range: 1...9))
            case "lz4": return try noLevel(.lz4)
            case "xz": return try noLevel(.xz)
            case "none", "uncompressed": return try noLevel(.none)
            default:
                throw .invalid("compression \"\(text)\"", "unknown compressor (expected zstd[:LEVEL], gzip[:LEVEL], lz4, xz or none)")
            }
        }

        /// The text form `parse` reads back.
        public var description: String {
            switch self {
            case .zstd(let level): return "zstd:\(level)"
            case .gzip(let level): return "gzip:\(level)"
            case .lz4: return "lz4"
            case .xz: return "xz"
            case .none: return "none"
            }
        }
    }

    public var compression: Compression = .zstd(level: 3)
    /// Data block size in bytes: a power of two from 4 KiB to 1 MiB.
    public var blockSize: Int = 131072
    /// Compression threads in libsquashfs's block processor. Reading the layers, hashing,
    /// deduplication and writing happen on the calling thread besides these.
    public var jobs: Int = SquashfsOptions.availableCPUs

    public init(compression: Compression = .zstd(level: 3), blockSize: Int = 131072,
                jobs: Int = SquashfsOptions.availableCPUs) {
        self.compression = compression
        self.blockSize = blockSize
        self.jobs = jobs
    }

    /// CPUs this process may run on (its affinity mask, which batch schedulers narrow to the
    /// job's allocation), falling back to the online count.
    public static var availableCPUs: Int { cpuCount }

    private static let cpuCount: Int = {
        // "Cpus_allowed:\t00000000,0000000f" in /proc/self/status is the affinity mask in hex
        // (sched_getaffinity needs _GNU_SOURCE, which Swift's Glibc module does not define).
        if let status = try? Files.read("/proc/self/status") {
            for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed:") {
                let mask = line.dropFirst("Cpus_allowed:".count)
                let count = mask.reduce(0) { sum, character in
                    sum + (character.hexDigitValue.map { $0.nonzeroBitCount } ?? 0)
                }
                if count > 0 { return count }
            }
        }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }()

    func validate() throws(SquashfsError) {
        if blockSize < 4096 || blockSize > 1 << 20 || blockSize & (blockSize - 1) != 0 {
            throw .invalid("block size \(blockSize)", "must be a power of two from 4096 to 1048576")
        }
        if jobs < 1 || jobs > 1024 {
            throw .invalid("jobs \(jobs)", "must be from 1 to 1024")
        }
        switch compression {
        case .zstd(let level) where !(1...22).contains(level):
            throw .invalid("compression \(compression)", "zstd level must be from 1 to 22")
        case .gzip(let level) where !(1...9).contains(level):
            throw .invalid("compression \(compression)", "gzip level must be from 1 to 9")
        default: break
        }
    }
}
