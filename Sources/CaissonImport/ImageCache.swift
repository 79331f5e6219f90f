import CaissonOCI
import CaissonShim
import CaissonRegistry
import CaissonSquashfs
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finished images, kept in the cache by manifest digest and squashfs settings: importing an
/// image that was imported before with the same settings is a manifest check and a file copy,
/// not a second decompression and compression of every layer (pyxis users' "re-import on every
/// job" complaint). Entries are published like blobs: written beside, fsynced, renamed.
struct ImageCache {
    let directory: String

    init(store: BlobStore) {
        directory = store.images
    }

    func path(manifest: CaissonOCI.Digest, options: SquashfsOptions) -> String {
        let compression = "\(options.compression)".replacingOccurrences(of: ":", with: "")
        return "\(directory)/\(manifest.encoded)-\(compression)-\(options.blockSize).sqsh"
    }

    /// The cached image's path, marked as just used (for pruning); nil when there is none.
    func lookup(manifest: CaissonOCI.Digest, options: SquashfsOptions) -> String? {
        let cached = path(manifest: manifest, options: options)
        guard FileManager.default.fileExists(atPath: cached) else { return nil }
        utimensat(AT_FDCWD, cached, nil, 0)
        return cached
    }

    /// Copies a cached image to `destination`; false when there is none.
    func restore(manifest: CaissonOCI.Digest, options: SquashfsOptions, to destination: String) throws -> Bool {
        guard let cached = lookup(manifest: manifest, options: options) else { return false }
        try ImageCache.copy(cached, to: destination)
        return true
    }

    /// Keeps a copy of a finished image. Failing to cache never fails the import.
    func store(_ image: String, manifest: CaissonOCI.Digest, options: SquashfsOptions) {
        let target = path(manifest: manifest, options: options)
        let temporary = "\(directory)/.\(manifest.encoded).\(getpid()).partial"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try ImageCache.copy(image, to: temporary)
            guard rename(temporary, target) == 0 else { throw ImportError("rename: \(String(cString: strerror(errno)))") }
        } catch {
            unlink(temporary)
        }
    }

    /// A whole-file copy with copy_file_range (a reflink on filesystems that can), fsynced.
    static func copy(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw ImportError("cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw ImportError("cannot write \(destination): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        while true {
            let n = caisson_copy_file_range(input, output, 1 << 30)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImportError("cannot copy to \(destination): \(String(cString: strerror(errno)))")
            }
        }
        guard fsync(output) == 0 else { throw ImportError("cannot write \(destination): \(String(cString: strerror(errno)))") }
    }
}
