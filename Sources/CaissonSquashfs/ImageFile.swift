import CSquashfs
import CaissonSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The image file as libsquashfs sees it: an `sqfs_file_t` whose callbacks use pread/pwrite on
/// our own descriptor. libsquashfs's own file type turns every failed write into a bare
/// SQFS_ERROR_IO; this one keeps the errno, so "disk full" can be told apart from other I/O
/// errors, and it tracks the size for progress reports.
///
/// libsquashfs calls these from the thread that drives it (the block processor's workers only
/// compress), but the state is behind a mutex anyway because `size` is read for progress from
/// any thread.
final class ImageFile {
    private struct State {
        var size: UInt64 = 0
        var lastErrno: Int32 = 0
    }

    private let descriptor: FileDescriptor
    private let state = Mutex(State())
    /// Our `sqfs_file_t` (see SquashfsFileBridge).
    let file: UnsafeMutablePointer<sqfs_file_t>

    /// Creates (or truncates) the image file, readable and writable (libsquashfs reads blocks
    /// back to verify deduplication).
    init(path: String) throws(SystemError) {
        descriptor = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_TRUNC, mode: 0o644)
        var object = sqfs_file_t()
        object.read_at = { file, offset, buffer, size in
            ImageFile.context(file).readAt(offset, buffer, size)
        }
        object.write_at = { file, offset, buffer, size in
            ImageFile.context(file).writeAt(offset, buffer, size)
        }
        object.get_size = { file in
            ImageFile.context(file).size
        }
        object.truncate = { file, size in
            ImageFile.context(file).truncate(size)
        }
        file = SquashfsFileBridge.allocate(object)
        SquashfsFileBridge.attach(self, to: file)
    }

    deinit { SquashfsFileBridge.release(file) }

    private static func context(_ file: UnsafePointer<sqfs_file_t>?) -> ImageFile {
        SquashfsFileBridge.owner(of: file, as: ImageFile.self)
    }

    var rawDescriptor: Int32 { descriptor.rawValue }

    /// Bytes in the image so far.
    var size: UInt64 { state.withLock { $0.size } }

    /// The errno of the last failed read or write, cleared by reading it.
    func takeLastErrno() -> Int32? {
        state.withLock { state in
            defer { state.lastErrno = 0 }
            return state.lastErrno == 0 ? nil : state.lastErrno
        }
    }

    private func fail(_ code: Int32) -> Int32 {
        state.withLock { $0.lastErrno = code }
        return SQFS_ERROR_IO.rawValue
    }

    private func writeAt(_ offset: UInt64, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int32 {
        guard count > 0 else { return 0 }
        guard let buffer else { return SQFS_ERROR_ARG_INVALID.rawValue }
        var done = 0
        while done < count {
            let n = pwrite(descriptor.rawValue, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return fail(errno)
            }
            // A write that makes no progress can only mean the device is full.
            if n == 0 { return fail(ENOSPC) }
            done += n
        }
        state.withLock { $0.size = max($0.size, offset + UInt64(count)) }
        return 0
    }

    private func readAt(_ offset: UInt64, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int32 {
        guard count > 0 else { return 0 }
        guard let buffer else { return SQFS_ERROR_ARG_INVALID.rawValue }
        if offset + UInt64(count) > size { return SQFS_ERROR_OUT_OF_BOUNDS.rawValue }
        var done = 0
        while done < count {
            let n = pread(descriptor.rawValue, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return fail(errno)
            }
            if n == 0 { return SQFS_ERROR_OUT_OF_BOUNDS.rawValue }
            done += n
        }
        return 0
    }

    private func truncate(_ newSize: UInt64) -> Int32 {
        while ftruncate(descriptor.rawValue, off_t(newSize)) != 0 {
            if errno == EINTR { continue }
            return fail(errno)
        }
        state.withLock { $0.size = newSize }
        return 0
    }

    /// Appends zero bytes until the size is a multiple of `alignment` (mksquashfs pads images
    /// to 4 KiB so that they can back a loop device).
    func pad(to alignment: UInt64) -> Int32 {
        let current = size
        let remainder = current % alignment
        if remainder == 0 { return 0 }
        let zeros = [UInt8](repeating: 0, count: Int(alignment - remainder))
        return zeros.withUnsafeBytes { writeAt(current, $0.baseAddress, $0.count) }
    }

    func sync() -> Int32 {
        while fsync(descriptor.rawValue) != 0 {
            if errno == EINTR { continue }
            return fail(errno)
        }
        return 0
    }
}
