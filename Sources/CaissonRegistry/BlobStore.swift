import CaissonOCI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The layer cache: blobs stored by digest under `ROOT/blobs/sha256/HEX`.
///
/// Many jobs of several users may import the same image at once, so:
/// - a published blob is immutable and complete (written to `HEX.partial`, fsynced, renamed);
///   readers never take a lock;
/// - one writer per digest: a download holds an exclusive lock on `HEX.lock`; others wait for
///   it and then find the blob published;
/// - an interrupted download leaves `HEX.partial`, which the next writer resumes with Range;
/// - readers verify the digest as they stream; a corrupted blob is removed and fetched again;
/// - in a group-writable cache directory (an admin's shared cache) files are made group-writable.
public struct BlobStore: Sendable {
    public let root: String
    var blobs: String { "\(root)/blobs/sha256" }

    public init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: "\(root)/blobs/sha256", withIntermediateDirectories: true)
    }

    public func path(for digest: CaissonOCI.Digest) -> String { "\(blobs)/\(digest.encoded)" }

    /// The published blob, if present with the expected size.
    public func published(_ descriptor: Descriptor) -> String? {
        let path = path(for: descriptor.digest)
        var st = stat()
        guard stat(path, &st) == 0, st.st_size == descriptor.size else { return nil }
        return path
    }

    /// Makes sure the blob is published, downloading it with `fetch` if needed. Returns its path.
    /// `fetch` appends to the handle it is given (which may already hold a partial download).
    public func ensure(_ descriptor: Descriptor, fetch: (FileHandle) async throws -> Void) async throws -> String {
        if let path = published(descriptor) { return path }
        let hex = descriptor.digest.encoded
        let lock = try await acquireLock("\(blobs)/\(hex).lock")
        defer { close(lock) }
        if let path = published(descriptor) { return path }  // another process finished it meanwhile
        let partial = "\(blobs)/\(hex).partial"
        if !FileManager.default.fileExists(atPath: partial) {
            guard FileManager.default.createFile(atPath: partial, contents: nil, attributes: [.posixPermissions: fileMode]) else {
                throw RegistryError(.transport, "cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: partial))
        defer { try? handle.close() }
        do {
            try await fetch(handle)
        } catch let error as RegistryError where error.kind == .verification {
            unlink(partial)  // wrong bytes are never resumed from
            throw error
        }
        let final = path(for: descriptor.digest)
        guard rename(partial, final) == 0 else {
            throw RegistryError(.transport, "cannot publish \(final): \(String(cString: strerror(errno)))")
        }
        syncDirectory(blobs)
        return final
    }

    /// Removes a blob that failed verification so the next import fetches it again.
    public func discard(_ digest: CaissonOCI.Digest) {
        unlink(path(for: digest))
    }

    private var fileMode: Int {
        var st = stat()
        return stat(blobs, &st) == 0 && st.st_mode & S_IWGRP != 0 ? 0o664 : 0o644
    }

    private func acquireLock(_ path: String) async throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode_t(fileMode))
        guard fd >= 0 else { throw RegistryError(.transport, "cannot open lock \(path): \(String(cString: strerror(errno)))") }
        // Poll rather than block: the waiting task must not hold one of the few cooperative threads.
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                close(fd)
                throw RegistryError(.transport, "cannot lock \(path): \(String(cString: strerror(errno)))")
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return fd
    }

    private func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    // MARK: - cache list / prune

    public struct Entry: Sendable {
        /// `sha256:HEX` for a layer, `image:NAME` for a finished image.
        public let digest: String
        public let size: Int64
        public let lastUsed: Date
        let path: String
    }

    /// Finished images, by manifest digest and squashfs settings (see ImageCache in CaissonImport).
    public var images: String { "\(root)/images" }

    public func entries() -> [Entry] {
        func scan(_ dir: String, _ keep: (String) -> Bool, _ name: (String) -> String) -> [Entry] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter(keep).compactMap { file in
                var st = stat()
                guard stat("\(dir)/\(file)", &st) == 0 else { return nil }
                let used = max(st.st_atim.tv_sec, st.st_mtim.tv_sec)
                return Entry(digest: name(file), size: Int64(st.st_size), lastUsed: Date(timeIntervalSince1970: Double(used)),
                             path: "\(dir)/\(file)")
            }
        }
        let layers = scan(blobs, { $0.count == 64 && !$0.contains(".") }, { "sha256:\($0)" })
        let finished = scan(images, { $0.hasSuffix(".sqsh") && !$0.hasPrefix(".") }, { "image:\($0)" })
        return (layers + finished).sorted { $0.lastUsed > $1.lastUsed }
    }

    /// Marks a blob as used (for pruning by age), since many filesystems mount with noatime.
    public func touch(_ digest: CaissonOCI.Digest) {
        utimensat(AT_FDCWD, path(for: digest), nil, 0)
    }

    /// Removes blobs unused for longer than `olderThan`, then the least recently used ones until
    /// the cache is at most `maxSize` bytes. Stale partial downloads older than a day go too.
    @discardableResult
    public func prune(olderThan: TimeInterval?, maxSize: Int64?) -> [Entry] {
        var removed: [Entry] = []
        var kept = entries()
        if let olderThan {
            let cutoff = Date().addingTimeInterval(-olderThan)
            removed += kept.filter { $0.lastUsed < cutoff }
            kept.removeAll { $0.lastUsed < cutoff }
        }
        if let maxSize {
            var total = kept.reduce(0) { $0 + $1.size }
            while total > maxSize, let oldest = kept.popLast() {
                removed.append(oldest)
                total -= oldest.size
            }
        }
        for entry in removed { unlink(entry.path) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? []
        for name in names where name.hasSuffix(".partial") {
            var st = stat()
            if stat("\(blobs)/\(name)", &st) == 0, Double(st.st_mtim.tv_sec) < Date().timeIntervalSince1970 - 86400 {
                unlink("\(blobs)/\(name)")
            }
        }
        return removed
    }
}
