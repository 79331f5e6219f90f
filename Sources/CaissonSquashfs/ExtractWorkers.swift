import CSquashfs
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A regular file the walk read: where to create it, its inode (block sizes), and once
/// created its descriptor, all released when the last chunk lets go of the task.
final class FileTask: @unchecked Sendable {
    /// Set by the worker that creates the file (by the walk for a file in several chunks).
    var fd: Int32 = -1
    let directory: DirectoryHandle
    /// NUL-terminated name in `directory`.
    let name: [CChar]
    let parentPath: String
    let inode: UnsafeMutablePointer<sqfs_inode_generic_t>
    let size: UInt64
    let mode: mode_t
    let time: UInt32
    /// Some blocks are holes: the size is set explicitly at the end (a trailing hole).
    let sparse: Bool
    /// The mode can be given at creation: the umask keeps all its bits, and it has no setuid or
    /// setgid bit (which writing as a non-root user would clear). Saves an fchmod per file.
    let modeAtCreation: Bool
    private let queue: ExtractQueue
    private let pending = Atomic<Int>(0)

    init(directory: DirectoryHandle, name: [CChar], parentPath: String, inode: UnsafeMutablePointer<sqfs_inode_generic_t>,
         size: UInt64, mode: mode_t, time: UInt32, sparse: Bool, modeAtCreation: Bool, queue: ExtractQueue) {
        self.directory = directory
        self.name = name
        self.parentPath = parentPath
        self.inode = inode
        self.size = size
        self.mode = mode
        self.time = time
        self.sparse = sparse
        self.modeAtCreation = modeAtCreation
        self.queue = queue
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        sqfs_free(inode)
        queue.releaseFile()
    }

    /// The path in the image, for messages.
    var path: String { parentPath + "/" + name.dropLast().withUnsafeBytes { printable($0) } }

    /// Creates the file: never over an existing name, never through a symlink.
    func create() throws(SquashfsError) {
        let fd = name.withUnsafeBufferPointer {
            openat(directory.fd, $0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   modeAtCreation ? mode : 0o600)
        }
        if fd < 0 { throw systemFailure("creating \(path)", errno) }
        self.fd = fd
    }

    func setPending(_ chunks: Int) { pending.store(chunks, ordering: .releasing) }

    /// Counts a chunk written; true for the last one.
    func chunkDone() -> Bool {
        pending.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0
    }

    /// After the contents: the size (trailing holes), then mode and time (writing as a
    /// non-root user would clear setuid bits, so the mode comes after the data).
    func finish() throws(SquashfsError) {
        if sparse && ftruncate(fd, off_t(size)) != 0 {
            throw systemFailure("setting the size of \(path)", errno)
        }
        if !modeAtCreation && fchmod(fd, mode) != 0 { throw systemFailure("setting permissions of \(path)", errno) }
        var times = [timespec(tv_sec: Int(time), tv_nsec: 0), timespec(tv_sec: Int(time), tv_nsec: 0)]
        if futimens(fd, &times) != 0 { throw systemFailure("setting the time of \(path)", errno) }
        // Closed now rather than when the batch holding the task is dropped.
        Glibc.close(fd)
        fd = -1
    }
}

/// Consecutive blocks of one file, starting at `location` in the image, and, for the file's
/// last chunk, the tail in a fragment block.
struct FileChunk: @unchecked Sendable {
    let task: FileTask
    let firstBlock: Int
    let blockCount: Int
    let location: UInt64
    let fragment: (index: UInt32, offset: UInt32, size: Int)?
}

/// Batches of chunks from the walk to the workers, the first failure, and the count of files
/// handed to the workers and not done yet (the walk waits above a limit; a file counts until
/// its task goes away).
final class ExtractQueue: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var batches: [[FileChunk]] = []
    private var head = 0
    private var closed = false
    private var error: SquashfsError?
    private var openFiles = 0
    private let openFileLimit: Int

    init(openFileLimit: Int) {
        self.openFileLimit = openFileLimit
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        changed.deallocate()
        lock.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    var failure: SquashfsError? { locked { error } }

    /// Records the first failure and wakes everyone: the walk stops, the workers stop.
    func fail(_ failure: SquashfsError) {
        locked {
            if error == nil { error = failure }
            pthread_cond_broadcast(changed)
        }
    }

    /// Adds a batch; false after a failure.
    func push(_ batch: [FileChunk]) -> Bool {
        locked {
            guard error == nil else { return false }
            batches.append(batch)
            pthread_cond_broadcast(changed)
            return true
        }
    }

    /// The next batch, waiting for one; nil once closed and empty, or after a failure.
    func pop() -> [FileChunk]? {
        locked {
            while true {
                if error != nil { return nil }
                if head < batches.count {
                    let batch = batches[head]
                    batches[head] = []
                    head += 1
                    if head > 64 && head * 2 > batches.count {
                        batches.removeFirst(head)
                        head = 0
                    }
                    return batch
                }
                if closed { return nil }
                pthread_cond_wait(changed, lock)
            }
        }
    }

    /// No more batches will come.
    func close() {
        locked {
            closed = true
            pthread_cond_broadcast(changed)
        }
    }

    /// Drops what was never processed (after a failure): their files close.
    func drain() {
        let leftover: [[FileChunk]] = locked {
            defer { batches = []; head = 0 }
            return batches
        }
        _ = leftover
    }

    /// Counts a file handed over if that stays within the limit.
    func tryAcquireFile() -> Bool {
        locked {
            if openFiles >= openFileLimit { return false }
            openFiles += 1
            return true
        }
    }

    /// Waits until a file may be handed over and counts it; false after a failure.
    func acquireFile() -> Bool {
        locked {
            while openFiles >= openFileLimit {
                if error != nil { return false }
                pthread_cond_wait(changed, lock)
            }
            if error != nil { return false }
            openFiles += 1
            return true
        }
    }

    func releaseFile() {
        locked {
            openFiles -= 1
            if openFiles == openFileLimit - 1 { pthread_cond_broadcast(changed) }
        }
    }
}

/// One thread decompressing and writing file contents, with its own decompressor and buffers
/// and the fragment blocks it decompressed last (consecutive small files share one).
final class ExtractWorker: @unchecked Sendable {
    private let image: ReadOnlyImageFile
    private let blockSize: Int
    private let fragments: [FragmentLocation]
    private let queue: ExtractQueue
    private let decompressor: UnsafeMutablePointer<sqfs_compressor_t>
    private let input: UnsafeMutableRawPointer
    private let output: UnsafeMutableRawPointer
    /// The fragment blocks decompressed last, least recently used first out. Files sharing a
    /// block mostly come one after another, but an image's writer may have packed tails a
    /// little out of directory order (mksquashfs does, by up to a few blocks).
    private var cache: [CachedFragment] = []
    private var clock = 0
    private static let cachedFragments = 8

    private struct CachedFragment {
        let buffer: UnsafeMutableRawPointer
        var index = -1
        var length = 0
        var used = 0
    }

    init(header: ImageHeader, fragments: [FragmentLocation], queue: ExtractQueue) throws(SquashfsError) {
        image = header.image
        blockSize = header.blockSize
        self.fragments = fragments
        self.queue = queue
        decompressor = try header.makeDecompressor()
        input = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 64)
        output = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 64)
        for _ in 0..<Self.cachedFragments {
            cache.append(CachedFragment(buffer: UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 64)))
        }
    }

    deinit {
        sqfs_destroy(decompressor)
        input.deallocate()
        output.deallocate()
        for entry in cache { entry.buffer.deallocate() }
    }

    /// Starts the thread (which holds a reference to the worker until it ends).
    func start() throws(SquashfsError) -> pthread_t {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let worker = Unmanaged<ExtractWorker>.fromOpaque(context!).takeRetainedValue()
            worker.run()
            return nil
        }, context)
        if rc != 0 {
            Unmanaged<ExtractWorker>.fromOpaque(context).release()
            throw SquashfsError(step: "starting an extraction thread", code: SQFS_ERROR_INTERNAL.rawValue, systemErrno: rc)
        }
        return thread
    }

    private func run() {
        while let batch = queue.pop() {
            for chunk in batch {
                do {
                    if chunk.task.fd < 0 { try chunk.task.create() }
                    try write(chunk)
                    if chunk.task.chunkDone() { try chunk.task.finish() }
                } catch {
                    queue.fail(error)
                    return
                }
            }
        }
    }

    private func write(_ chunk: FileChunk) throws(SquashfsError) {
        let task = chunk.task
        let sizes = blockSizes(task.inode)
        var location = chunk.location
        var position = UInt64(chunk.firstBlock) * UInt64(blockSize)
        for index in chunk.firstBlock..<chunk.firstBlock + chunk.blockCount {
            let word = sizes[index]
            let stored = Int(word & 0x00FF_FFFF)
            let expected = Int(min(UInt64(blockSize), task.size - position))
            if stored == 0 {
                // A hole: nothing to write; the file's size is set at the end.
                position += UInt64(expected)
                continue
            }
            let length: Int
            if word & (1 << 24) != 0 {
                try read(location, into: output, stored, task, "block \(index)")
                length = stored
            } else {
                try read(location, into: input, stored, task, "block \(index)")
                length = Int(decompressor.pointee.do_block(decompressor, input, UInt32(stored), output, UInt32(blockSize)))
            }
            if length != expected {
                throw SquashfsError(step: "reading block \(index) of \(task.path)", code: SQFS_ERROR_CORRUPTED.rawValue,
                                    detail: length < 0 ? SquashfsError.meaning(of: Int32(length)) + " while decompressing"
                                        : "it holds \(length) bytes instead of \(expected)")
            }
            try writeAll(task, output, expected, at: position)
            location += UInt64(stored)
            position += UInt64(expected)
        }
        if let tail = chunk.fragment {
            let block = try fragmentBlock(Int(tail.index), for: task)
            guard Int(tail.offset) + tail.size <= block.count else {
                throw SquashfsError(step: "reading the tail of \(task.path)", code: SQFS_ERROR_OUT_OF_BOUNDS.rawValue,
                                    detail: "fragment block \(tail.index) holds \(block.count) bytes, not \(Int(tail.offset) + tail.size)")
            }
            try writeAll(task, block.baseAddress! + Int(tail.offset), tail.size, at: position)
        }
    }

    /// A fragment block, decompressed, from the cache or read now.
    private func fragmentBlock(_ index: Int, for task: FileTask) throws(SquashfsError) -> UnsafeRawBufferPointer {
        clock += 1
        var slot = 0
        for candidate in cache.indices {
            if cache[candidate].index == index {
                cache[candidate].used = clock
                return UnsafeRawBufferPointer(start: cache[candidate].buffer, count: cache[candidate].length)
            }
            if cache[candidate].used < cache[slot].used { slot = candidate }
        }
        cache[slot].index = -1
        let buffer = cache[slot].buffer
        let entry = fragments[index]
        let stored = Int(entry.size & 0x00FF_FFFF)
        guard stored > 0, stored <= blockSize, entry.size & ~UInt32(0x01FF_FFFF) == 0 else {
            throw SquashfsError(step: "reading fragment block \(index) for \(task.path)", code: SQFS_ERROR_CORRUPTED.rawValue,
                                detail: "impossible size \(entry.size)")
        }
        let length: Int
        if entry.size & (1 << 24) != 0 {
            try read(entry.start, into: buffer, stored, task, "fragment block \(index)")
            length = stored
        } else {
            try read(entry.start, into: input, stored, task, "fragment block \(index)")
            length = Int(decompressor.pointee.do_block(decompressor, input, UInt32(stored), buffer, UInt32(blockSize)))
            if length <= 0 {
                throw SquashfsError(step: "reading fragment block \(index) for \(task.path)",
                                    code: length < 0 ? Int32(length) : SQFS_ERROR_CORRUPTED.rawValue,
                                    detail: length < 0 ? nil : "it decompresses to nothing")
            }
        }
        cache[slot] = CachedFragment(buffer: buffer, index: index, length: length, used: clock)
        return UnsafeRawBufferPointer(start: buffer, count: length)
    }

    private func read(_ location: UInt64, into buffer: UnsafeMutableRawPointer, _ count: Int, _ task: FileTask,
                      _ what: @autoclosure () -> String) throws(SquashfsError) {
        let rc = image.read(at: location, into: buffer, count: count)
        if rc != 0 {
            throw SquashfsError(step: "reading \(what()) of \(task.path)", code: rc,
                                systemErrno: rc == SQFS_ERROR_IO.rawValue ? errno : nil)
        }
    }

    private func writeAll(_ task: FileTask, _ buffer: UnsafeRawPointer, _ count: Int, at position: UInt64) throws(SquashfsError) {
        var done = 0
        while done < count {
            let n = pwrite(task.fd, buffer + done, count - done, off_t(position) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw systemFailure("writing \(task.path)", errno)
            }
            if n == 0 { throw systemFailure("writing \(task.path)", ENOSPC) }
            done += n
        }
    }
}
