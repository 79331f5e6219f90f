import CSquashfs
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Unpacks a squashfs image into a directory, as an unprivileged user can: safely (the image is
/// hostile input) and fast (file contents are decompressed and written by `jobs` threads).
///
/// What is created:
/// - directories, regular files, symbolic links (the target verbatim, never followed), fifos,
///   and hard links (several entries naming one inode) as `linkat` within the tree, made once
///   every file exists;
/// - the exact permission bits, setuid, setgid and sticky included (the files belong to the
///   user who unpacks, so that is harmless), and every modification time (the access time is
///   set to it too). Directories are created 0700 and get their own mode and time at the end,
///   deepest first, so a 0555 directory still receives its contents;
/// - all-zero ("sparse") blocks become holes.
///
/// What is not: ownership (every file belongs to the caller), extended attributes (not read at
/// all), device nodes and sockets (skipped, each with a warning through `warn`).
///
/// Safety: everything is created with *at() calls relative to directory descriptors opened
/// with O_DIRECTORY|O_NOFOLLOW, starting from `destination`; files with O_CREAT|O_EXCL|O_NOFOLLOW.
/// An entry name that is empty, "." or "..", or holds "/" or a NUL byte is an error, and so is
/// a name that exists already (a crafted image listing a symlink `a` and then a directory `a`
/// cannot make the extractor write through the symlink), a directory listed twice (a loop),
/// and anything libsquashfs or this code finds inconsistent. Nothing is ever written outside
/// `destination`. After an error the directory holds a partial tree: the caller removes it.
/// Directories nest at most `maxDepth` levels (each level holds a descriptor while it is filled).
public struct SquashfsExtractor {
    public let imagePath: String
    public let offset: UInt64
    private let header: ImageHeader

    /// Directory levels below the root that an image may have.
    public static let maxDepth = 256

    /// Opens the image and reads its super block. `offset` is where the image starts in the
    /// file (a self-extracting bundle appends an image to a script).
    public init(imagePath: String, offset: UInt64 = 0) throws(SquashfsError) {
        self.imagePath = imagePath
        self.offset = offset
        header = try ImageHeader(path: imagePath, offset: offset)
    }

    /// Bytes of the image (from its super block), without the offset and padding.
    public var imageSize: UInt64 { header.superBlock.bytes_used }

    /// What an extraction created.
    public struct Summary: Sendable, Equatable {
        public var directories = 0
        public var files = 0
        public var symlinks = 0
        public var hardLinks = 0
        public var fifos = 0
        /// Device nodes and sockets left out.
        public var skipped = 0
        /// Bytes of file contents (holes included).
        public var bytes: UInt64 = 0
    }

    /// Unpacks the image into `destination`, an existing (normally empty) directory, which gets
    /// the mode and time of the image's root. The calling thread reads the directory tree and
    /// creates directories, symlinks and fifos; `jobs` threads create the regular files,
    /// decompress and write their contents. `warn` is called on the calling thread.
    @discardableResult
    public func extract(into destination: String, jobs: Int = SquashfsOptions.availableCPUs,
                        warn: (String) -> Void = { _ in }) throws(SquashfsError) -> Summary {
        guard jobs >= 1 && jobs <= 1024 else { throw .invalid("jobs \(jobs)", "must be from 1 to 1024") }
        let extraction = try Extraction(header: header, imagePath: imagePath, destination: destination)
        return try extraction.run(jobs: jobs, warn: warn)
    }
}

// MARK: - One extraction

/// A directory created by the walk: what the final pass needs to find it again and finish it.
private struct DirectoryRecord {
    let parent: Int32
    let depth: Int32
    /// NUL-terminated name in the parent.
    let name: [CChar]
    let mode: mode_t
    let time: UInt32
    var firstChild: Int32 = -1
    var nextSibling: Int32 = -1
}

/// What an inode reference already seen in the walk became. Directories are all recorded (a
/// directory listed twice is an error: a loop); other inodes only when their link count says
/// there are more names to come.
private enum Seen {
    case directory
    /// A device node or socket left out: later names for it are left out too.
    case skipped
    /// The first name of a non-directory, for hard links to it.
    case entry(directory: Int32, name: [CChar])
}

/// A hard link to make once every file exists (the first name of a regular file is created by
/// a worker, at some point after the walk read it).
private struct PendingLink {
    let sourceDirectory: Int32
    let sourceName: [CChar]
    let directory: Int32
    let name: [CChar]
}

/// A directory being read by the walk.
private struct Frame {
    let directory: Int32
    let handle: DirectoryHandle
    var state: sqfs_readdir_state_t
    let path: String
}

/// An open directory of the tree being created, closed when the walk and the last file task in
/// it are done with it.
final class DirectoryHandle: @unchecked Sendable {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    deinit { Glibc.close(fd) }
}

final class Extraction {
    private let header: ImageHeader
    /// A copy of the super block that libsquashfs's readers may point to.
    private var superBlock: sqfs_super_t
    private let imagePath: String
    private let destination: String
    private let blockSize: Int
    private let root: DirectoryHandle

    private var decompressor: UnsafeMutablePointer<sqfs_compressor_t>?
    /// Metadata readers, one pair per directory level: each keeps its last metadata block
    /// decompressed, so that going back to a parent's listing and inodes after a subdirectory
    /// does not decompress their blocks again.
    private var inodeReaders: [OpaquePointer] = []
    private var directoryReaders: [OpaquePointer] = []
    private var directoryTableEnd: UInt64 = 0
    private var fragments: [FragmentLocation] = []

    private var directories: [DirectoryRecord] = []
    private var seen: [UInt64: Seen] = [:]
    private var links: [PendingLink] = []
    private var stack: [Frame] = []
    private var summary = SquashfsExtractor.Summary()

    /// File contents are handed to the workers in batches of consecutive files (consecutive
    /// small files share fragment blocks, which each worker keeps decompressed), up to this
    /// many files or bytes. Files larger than `chunkBytes` are split into pieces.
    private static let batchFiles = 48
    private static let batchBytes: UInt64 = 4 << 20
    private static let chunkBytes = 8 << 20
    /// Files handed to the workers and not finished yet (each may hold a descriptor, and its
    /// directory's): the walk waits above this. With the walk's own directory descriptors (at
    /// most `maxDepth`) this stays well below the usual limit of 1024 descriptors.
    static let openFileLimit = 256

    /// The process's umask (from /proc/self/status: umask() cannot read it without setting it).
    private let umask: mode_t? = Extraction.currentUmask()

    private var queue: ExtractQueue?
    private var batch: [FileChunk] = []
    private var batchSize: UInt64 = 0
    /// The fragment block of the last file tail added to the batch.
    private var lastFragment: UInt32 = 0xFFFF_FFFF

    init(header: ImageHeader, imagePath: String, destination: String) throws(SquashfsError) {
        self.header = header
        superBlock = header.superBlock
        self.imagePath = imagePath
        self.destination = destination
        blockSize = header.blockSize
        let fd = Glibc.open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            throw SquashfsError(step: "opening destination \(destination)", code: SQFS_ERROR_IO.rawValue,
                                systemErrno: errno, detail: "not a directory one can open")
        }
        root = DirectoryHandle(fd)
    }

    deinit {
        for reader in inodeReaders + directoryReaders { sqfs_destroy(UnsafeMutableRawPointer(reader)) }
        if let decompressor { sqfs_destroy(decompressor) }
    }

    func run(jobs: Int, warn: (String) -> Void) throws(SquashfsError) -> SquashfsExtractor.Summary {
        try openReaders()
        let queue = ExtractQueue(openFileLimit: Self.openFileLimit)
        self.queue = queue
        var workers: [ExtractWorker] = []
        var threads: [pthread_t] = []
        var failure: SquashfsError?
        do {
            for _ in 0..<jobs {
                let worker = try ExtractWorker(header: header, fragments: fragments, queue: queue)
                workers.append(worker)
            }
            for worker in workers {
                threads.append(try worker.start())
            }
            try walk(warn: warn)
            try flushBatch()
        } catch {
            failure = error
            queue.fail(error)
        }
        queue.close()
        for thread in threads { pthread_join(thread, nil) }
        // What the workers never got to (after a failure) is closed and freed here.
        queue.drain()
        batch.removeAll()
        stack.removeAll()
        if let error = queue.failure ?? failure { throw error }
        try makeLinks()
        try finishDirectories()
        summary.directories = directories.count - 1
        return summary
    }

    // MARK: Readers

    private func openReaders() throws(SquashfsError) {
        let decompressor = try header.makeDecompressor()
        self.decompressor = decompressor
        let file = header.image.file
        // The directory table ends where the next table starts (as libsquashfs's dir reader has it).
        var limit = superBlock.id_table_start
        if superBlock.fragment_table_start < limit { limit = superBlock.fragment_table_start }
        if superBlock.export_table_start < limit { limit = superBlock.export_table_start }
        directoryTableEnd = limit
        try addReaders()

        guard let table = sqfs_frag_table_create(0) else {
            throw SquashfsError(step: "creating fragment table", code: SQFS_ERROR_ALLOC.rawValue)
        }
        defer { sqfs_destroy(UnsafeMutableRawPointer(table)) }
        let rc = sqfs_frag_table_read(table, file, &superBlock, decompressor)
        if rc != 0 { throw SquashfsError(step: "reading fragment table of \(imagePath)", code: rc) }
        let count = sqfs_frag_table_get_size(table)
        fragments.reserveCapacity(count)
        for index in 0..<count {
            var entry = sqfs_fragment_t()
            let rc = sqfs_frag_table_lookup(table, UInt32(index), &entry)
            if rc != 0 { throw SquashfsError(step: "reading fragment table of \(imagePath)", code: rc) }
            fragments.append(FragmentLocation(start: entry.start_offset, size: entry.size))
        }
    }

    /// A metadata reader pair for one more directory level.
    private func addReaders() throws(SquashfsError) {
        let file = header.image.file
        guard let inodes = sqfs_meta_reader_create(file, decompressor, superBlock.inode_table_start,
                                                   superBlock.directory_table_start) else {
            throw SquashfsError(step: "creating inode table reader", code: SQFS_ERROR_ALLOC.rawValue)
        }
        inodeReaders.append(inodes)
        guard let listing = sqfs_meta_reader_create(file, decompressor, superBlock.directory_table_start, directoryTableEnd) else {
            throw SquashfsError(step: "creating directory table reader", code: SQFS_ERROR_ALLOC.rawValue)
        }
        directoryReaders.append(listing)
    }

    private func readInode(_ reference: UInt64, level: Int, _ path: @autoclosure () -> String) throws(SquashfsError) -> UnsafeMutablePointer<sqfs_inode_generic_t> {
        var inode: UnsafeMutablePointer<sqfs_inode_generic_t>?
        let rc = sqfs_meta_reader_read_inode(inodeReaders[level], &superBlock, reference >> 16, Int(reference & 0xFFFF), &inode)
        guard rc == 0, let inode else {
            throw SquashfsError(step: "reading inode of \(path())", code: rc == 0 ? SQFS_ERROR_CORRUPTED.rawValue : rc)
        }
        return inode
    }

    // MARK: The walk

    /// Reads the directory tree depth first, creating directories, symlinks and fifos as they
    /// are read; regular files go to the workers, which create them and write their contents.
    private func walk(warn: (String) -> Void) throws(SquashfsError) {
        let rootReference = superBlock.root_inode_ref
        let rootInode = try readInode(rootReference, level: 0, "/")
        defer { sqfs_free(rootInode) }
        guard isDirectory(rootInode) else {
            throw SquashfsError(step: "reading root inode", code: SQFS_ERROR_NOT_DIR.rawValue)
        }
        directories.append(DirectoryRecord(parent: -1, depth: 0, name: [0], mode: permissions(rootInode),
                                           time: rootInode.pointee.base.mod_time))
        seen[rootReference] = .directory
        var state = sqfs_readdir_state_t()
        try check("reading directory /") { sqfs_readdir_state_init(&state, &superBlock, rootInode) }
        stack.append(Frame(directory: 0, handle: root, state: state, path: ""))

        while !stack.isEmpty {
            let top = stack.count - 1
            var entry: UnsafeMutablePointer<sqfs_dir_entry_t>?
            var number: UInt32 = 0
            var reference: UInt64 = 0
            let rc = sqfs_meta_reader_readdir(directoryReaders[top], &stack[top].state, &entry, &number, &reference)
            if rc > 0 {
                stack.removeLast()
                continue
            }
            guard rc == 0, let entry else {
                throw SquashfsError(step: "reading directory \(displayPath(stack[top].path))",
                                    code: rc == 0 ? SQFS_ERROR_CORRUPTED.rawValue : rc)
            }
            defer { sqfs_free(entry) }
            try create(entry, reference: reference, in: top, warn: warn)
        }
    }

    private func create(_ entry: UnsafeMutablePointer<sqfs_dir_entry_t>, reference: UInt64, in top: Int,
                        warn: (String) -> Void) throws(SquashfsError) {
        let frame = stack[top]
        let fd = frame.handle.fd
        let length = Int(entry.pointee.size) + 1
        let namePointer = (UnsafeMutableRawPointer(entry) + MemoryLayout<sqfs_dir_entry_t>.size)
            .assumingMemoryBound(to: CChar.self)
        let nameBytes = UnsafeRawBufferPointer(start: namePointer, count: length)
        // Spelled out only for messages (and once per directory).
        func path() -> String { frame.path + "/" + printable(nameBytes) }
        if let problem = Self.nameProblem(nameBytes) {
            throw SquashfsError(step: "reading directory \(displayPath(frame.path))", code: SQFS_ERROR_CORRUPTED.rawValue,
                                detail: "invalid entry name \(path()): \(problem)")
        }
        // The entry's bytes are followed by a NUL (libsquashfs allocates one more), so the name
        // is a C string of exactly `length` bytes once the checks above passed.
        func name() -> [CChar] { Array(UnsafeBufferPointer(start: namePointer, count: length + 1)) }

        if let earlier = seen[reference] {
            switch earlier {
            case .directory:
                throw SquashfsError(step: "reading directory \(displayPath(frame.path))", code: SQFS_ERROR_LINK_LOOP.rawValue,
                                    detail: "\(path()) refers to a directory listed elsewhere (a loop or a directory hard link)")
            case .skipped:
                summary.skipped += 1
                warn("skipping \(path()): a hard link to a device node or socket, which are not extracted")
            case .entry(let directory, let source):
                links.append(PendingLink(sourceDirectory: directory, sourceName: source, directory: frame.directory, name: name()))
                summary.hardLinks += 1
            }
            return
        }

        let inode = try readInode(reference, level: top, path())
        var handedOff = false
        defer { if !handedOff { sqfs_free(inode) } }
        let mode = permissions(inode)
        let time = inode.pointee.base.mod_time
        let type = UInt32(inode.pointee.base.type)
        if linkCount(inode) > 1 {
            let isSkipped = [SQFS_INODE_BDEV, SQFS_INODE_EXT_BDEV, SQFS_INODE_CDEV, SQFS_INODE_EXT_CDEV,
                             SQFS_INODE_SOCKET, SQFS_INODE_EXT_SOCKET].contains { $0.rawValue == type }
            if !isDirectory(inode) { seen[reference] = isSkipped ? .skipped : .entry(directory: frame.directory, name: name()) }
        }

        switch type {
        case SQFS_INODE_DIR.rawValue, SQFS_INODE_EXT_DIR.rawValue:
            seen[reference] = .directory
            let depth = Int(directories[Int(frame.directory)].depth) + 1
            if depth > SquashfsExtractor.maxDepth {
                throw .invalid("creating \(path())", "directories nest deeper than \(SquashfsExtractor.maxDepth) levels")
            }
            if mkdirat(fd, namePointer, 0o700) != 0 { throw systemFailure("creating directory \(path())", errno) }
            let child = openat(fd, namePointer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child < 0 { throw systemFailure("opening directory \(path())", errno) }
            let handle = DirectoryHandle(child)
            var state = sqfs_readdir_state_t()
            let rc = sqfs_readdir_state_init(&state, &superBlock, inode)
            if rc != 0 { throw SquashfsError(step: "reading directory \(path())", code: rc) }
            let index = Int32(directories.count)
            var record = DirectoryRecord(parent: frame.directory, depth: Int32(depth), name: name(), mode: mode, time: time)
            record.nextSibling = directories[Int(frame.directory)].firstChild
            directories[Int(frame.directory)].firstChild = index
            directories.append(record)
            stack.append(Frame(directory: index, handle: handle, state: state, path: path()))
            if stack.count > directoryReaders.count { try addReaders() }

        case SQFS_INODE_FILE.rawValue, SQFS_INODE_EXT_FILE.rawValue:
            let layout = try fileLayout(inode, path())
            try acquireFileSlot()
            summary.files += 1
            summary.bytes &+= layout.size
            handedOff = true
            let task = FileTask(directory: frame.handle, name: name(), parentPath: frame.path, inode: inode,
                                size: layout.size, mode: mode, time: time, sparse: layout.sparse,
                                modeAtCreation: umask.map { mode & 0o6000 == 0 && mode & $0 == 0 } ?? false,
                                queue: queue!)
            try schedule(task, layout)

        case SQFS_INODE_SLINK.rawValue, SQFS_INODE_EXT_SLINK.rawValue:
            let target = try symlinkTarget(inode, path())
            if symlinkat(target, fd, namePointer) != 0 { throw systemFailure("creating symlink \(path())", errno) }
            try setTime(fd, namePointer, time, path())
            summary.symlinks += 1

        case SQFS_INODE_FIFO.rawValue, SQFS_INODE_EXT_FIFO.rawValue:
            if mkfifoat(fd, namePointer, 0o600) != 0 { throw systemFailure("creating fifo \(path())", errno) }
            // Exactly the image's bits (mkfifoat's are filtered by the umask). fchmodat cannot
            // refuse to follow a symlink everywhere; the name was just created as a fifo in a
            // directory only this extraction writes to.
            if fchmodat(fd, namePointer, mode, AT_SYMLINK_NOFOLLOW) != 0 {
                guard errno == ENOTSUP || errno == EOPNOTSUPP, fchmodat(fd, namePointer, mode, 0) == 0 else {
                    throw systemFailure("setting permissions of \(path())", errno)
                }
            }
            try setTime(fd, namePointer, time, path())
            summary.fifos += 1

        case SQFS_INODE_BDEV.rawValue, SQFS_INODE_EXT_BDEV.rawValue,
             SQFS_INODE_CDEV.rawValue, SQFS_INODE_EXT_CDEV.rawValue:
            summary.skipped += 1
            let kind = type == SQFS_INODE_BDEV.rawValue || type == SQFS_INODE_EXT_BDEV.rawValue ? "block" : "character"
            warn("skipping \(kind) device \(path()): an unprivileged user cannot create device nodes")

        case SQFS_INODE_SOCKET.rawValue, SQFS_INODE_EXT_SOCKET.rawValue:
            summary.skipped += 1
            warn("skipping socket \(path()): a socket is only meaningful to the process that bound it")

        default:
            throw SquashfsError(step: "reading inode of \(path())", code: SQFS_ERROR_CORRUPTED.rawValue,
                                detail: "unknown inode type \(inode.pointee.base.type)")
        }
    }

    /// The reasons a directory entry name cannot be created as it is, or nil for a good name.
    static func nameProblem(_ bytes: UnsafeRawBufferPointer) -> String? {
        if bytes.isEmpty { return "empty" }
        if bytes.count == 1 && bytes[0] == UInt8(ascii: ".") { return "\".\" is not a name" }
        if bytes.count == 2 && bytes[0] == UInt8(ascii: ".") && bytes[1] == UInt8(ascii: ".") {
            return "\"..\" is not a name"
        }
        if bytes.contains(UInt8(ascii: "/")) { return "it contains \"/\"" }
        if bytes.contains(0) { return "it contains a NUL byte" }
        if bytes.count > 255 { return "longer than 255 bytes" }
        return nil
    }

    // MARK: Regular files

    struct FileLayout {
        let size: UInt64
        let blocks: Int
        let blocksStart: UInt64
        let fragment: (index: UInt32, offset: UInt32, size: Int)?
        let sparse: Bool
    }

    private func fileLayout(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>, _ path: String) throws(SquashfsError) -> FileLayout {
        var size: UInt64 = 0
        var start: UInt64 = 0
        var fragmentIndex: UInt32 = 0
        var fragmentOffset: UInt32 = 0
        try check("reading inode of \(path)") { sqfs_inode_get_file_size(inode, &size) }
        try check("reading inode of \(path)") { sqfs_inode_get_file_block_start(inode, &start) }
        try check("reading inode of \(path)") { sqfs_inode_get_frag_location(inode, &fragmentIndex, &fragmentOffset) }
        let blockSize = UInt64(self.blockSize)
        let blocks = Int(inode.pointee.payload_bytes_used) / MemoryLayout<UInt32>.size
        let tail = Int(size % blockSize)
        let hasFragment = fragmentIndex != 0xFFFF_FFFF && tail > 0
        let expected = size / blockSize + (tail > 0 && !hasFragment ? 1 : 0)
        guard UInt64(blocks) == expected, Int(inode.pointee.payload_bytes_available) >= blocks * 4 else {
            throw SquashfsError(step: "reading inode of \(path)", code: SQFS_ERROR_CORRUPTED.rawValue,
                                detail: "\(size) bytes in \(blocks) blocks of \(blockSize)")
        }
        if hasFragment {
            guard Int(fragmentIndex) < fragments.count, UInt64(fragmentOffset) + UInt64(tail) <= blockSize else {
                throw SquashfsError(step: "reading inode of \(path)", code: SQFS_ERROR_OUT_OF_BOUNDS.rawValue,
                                    detail: "fragment \(fragmentIndex) at \(fragmentOffset) is not in the fragment table")
            }
        }
        let sizes = blockSizes(inode)
        var sparse = false
        var end = start
        for index in 0..<blocks {
            let word = sizes[index]
            if word & 0x00FF_FFFF == 0 { sparse = true }
            // A data block never holds more than a block (stored or compressed).
            if word & 0x00FF_FFFF > UInt32(blockSize) || word & ~UInt32(0x01FF_FFFF) != 0 {
                throw SquashfsError(step: "reading inode of \(path)", code: SQFS_ERROR_CORRUPTED.rawValue,
                                    detail: "block \(index) has an impossible size \(word)")
            }
            end = end &+ UInt64(word & 0x00FF_FFFF)
        }
        // The blocks lie inside the image (which also keeps every later sum from overflowing).
        if blocks > 0 && (start > superBlock.bytes_used || end < start || end > superBlock.bytes_used) {
            throw SquashfsError(step: "reading inode of \(path)", code: SQFS_ERROR_OUT_OF_BOUNDS.rawValue,
                                detail: "its data blocks lie outside the image")
        }
        return FileLayout(size: size, blocks: blocks, blocksStart: start,
                          fragment: hasFragment ? (fragmentIndex, fragmentOffset, tail) : nil, sparse: sparse)
    }

    /// Splits a file into chunks (large files) and adds them to the current batch.
    private func schedule(_ task: FileTask, _ layout: FileLayout) throws(SquashfsError) {
        let blocksPerChunk = max(1, Self.chunkBytes / blockSize)
        let chunkCount = max(1, (layout.blocks + blocksPerChunk - 1) / blocksPerChunk)
        task.setPending(chunkCount)
        // Workers create the files they write; one written by several is created here first.
        if chunkCount > 1 { try task.create() }
        let sizes = blockSizes(task.inode)
        var location = layout.blocksStart
        var first = 0
        for chunk in 0..<chunkCount {
            let count = min(blocksPerChunk, layout.blocks - first)
            let isLast = chunk == chunkCount - 1
            let fragment = isLast ? layout.fragment : nil
            // A full batch goes to the workers when the fragment block changes, so that the
            // files sharing one stay together.
            if batch.count >= Self.batchFiles || batchSize >= Self.batchBytes,
               fragment == nil || fragment?.index != lastFragment {
                try flushBatch()
            }
            batch.append(FileChunk(task: task, firstBlock: first, blockCount: count, location: location,
                                   fragment: fragment))
            if let fragment { lastFragment = fragment.index }
            for index in first..<first + count {
                location += UInt64(sizes[index] & 0x00FF_FFFF)
            }
            first += count
            let bytes = isLast ? layout.size - UInt64(blockSize) * UInt64(chunk * blocksPerChunk) : UInt64(count * blockSize)
            batchSize += bytes
        }
    }

    private func flushBatch() throws(SquashfsError) {
        guard !batch.isEmpty, let queue else { return }
        let full = batch
        batch = []
        batchSize = 0
        if !queue.push(full) {
            throw queue.failure ?? .invalid("extracting", "the workers stopped")
        }
    }

    /// Waits until fewer than `openFileLimit` files are with the workers (handing them the
    /// current batch first, so that they can finish some).
    private func acquireFileSlot() throws(SquashfsError) {
        guard let queue else { return }
        if !queue.tryAcquireFile() {
            try flushBatch()
            guard queue.acquireFile() else { throw queue.failure ?? .invalid("extracting", "the workers stopped") }
        }
    }

    // MARK: Other entries

    private func symlinkTarget(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>, _ path: String) throws(SquashfsError) -> [CChar] {
        let size = Int(UInt32(inode.pointee.base.type) == SQFS_INODE_SLINK.rawValue
                       ? inode.pointee.data.slink.target_size : inode.pointee.data.slink_ext.target_size)
        guard size > 0, size <= Int(inode.pointee.payload_bytes_available), size <= Int(PATH_MAX) else {
            throw SquashfsError(step: "reading symlink \(path)", code: SQFS_ERROR_CORRUPTED.rawValue,
                                detail: "impossible target length \(size)")
        }
        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(inode) + MemoryLayout<sqfs_inode_generic_t>.size, count: size)
        if bytes.contains(0) {
            throw SquashfsError(step: "reading symlink \(path)", code: SQFS_ERROR_CORRUPTED.rawValue,
                                detail: "its target contains a NUL byte")
        }
        return bytes.map { CChar(bitPattern: $0) } + [0]
    }

    private func setTime(_ directory: Int32, _ name: UnsafePointer<CChar>, _ time: UInt32, _ path: String) throws(SquashfsError) {
        var times = [timespec(tv_sec: Int(time), tv_nsec: 0), timespec(tv_sec: Int(time), tv_nsec: 0)]
        if utimensat(directory, name, &times, AT_SYMLINK_NOFOLLOW) != 0 {
            throw systemFailure("setting the time of \(path)", errno)
        }
    }

    /// A directory created by the walk, opened again from the root one O_NOFOLLOW step at a
    /// time (only this extraction writes to the tree, so the names are still its directories).
    private func openDirectory(_ index: Int32) throws(SquashfsError) -> DirectoryHandle {
        var chain: [Int32] = []
        var current = index
        while current > 0 {
            chain.append(current)
            current = directories[Int(current)].parent
        }
        var handle = root
        for step in chain.reversed() {
            let next = directories[Int(step)].name.withUnsafeBufferPointer {
                openat(handle.fd, $0.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0 { throw systemFailure("opening directory \(directoryPath(step))", errno) }
            handle = DirectoryHandle(next)
        }
        return handle
    }

    /// The hard links, now that every first name exists.
    private func makeLinks() throws(SquashfsError) {
        var handles: [Int32: DirectoryHandle] = [:]
        func handle(_ index: Int32) throws(SquashfsError) -> DirectoryHandle {
            if let known = handles[index] { return known }
            if handles.count >= 64 { handles.removeAll() }
            let opened = try openDirectory(index)
            handles[index] = opened
            return opened
        }
        for link in links {
            let source = try handle(link.sourceDirectory)
            let target = try handle(link.directory)
            let rc = link.sourceName.withUnsafeBufferPointer { sourceName in
                link.name.withUnsafeBufferPointer { name in
                    linkat(source.fd, sourceName.baseAddress!, target.fd, name.baseAddress!, 0)
                }
            }
            if rc != 0 {
                let path = directoryPath(link.directory) + "/" + link.name.dropLast().withUnsafeBytes { printable($0) }
                throw systemFailure("creating hard link \(path)", errno)
            }
        }
    }

    // MARK: Directory modes and times

    /// Gives every directory its mode and time, children before parents (a directory's time
    /// changes while entries are created in it, and a read-only one could not be filled).
    private func finishDirectories() throws(SquashfsError) {
        let rootFd = root.fd
        var pending: [(index: Int32, fd: Int32, child: Int32)] = [(0, rootFd, directories[0].firstChild)]
        defer { for entry in pending where entry.fd != rootFd { Glibc.close(entry.fd) } }
        while let top = pending.last {
            if top.child >= 0 {
                let child = directories[Int(top.child)]
                pending[pending.count - 1].child = child.nextSibling
                let fd = child.name.withUnsafeBufferPointer {
                    openat(top.fd, $0.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                }
                if fd < 0 { throw systemFailure("opening directory \(directoryPath(top.child))", errno) }
                pending.append((top.child, fd, child.firstChild))
                continue
            }
            let record = directories[Int(top.index)]
            if fchmod(top.fd, record.mode) != 0 {
                throw systemFailure("setting permissions of \(directoryPath(top.index))", errno)
            }
            var times = [timespec(tv_sec: Int(record.time), tv_nsec: 0), timespec(tv_sec: Int(record.time), tv_nsec: 0)]
            if futimens(top.fd, &times) != 0 {
                throw systemFailure("setting the time of \(directoryPath(top.index))", errno)
            }
            pending.removeLast()
            if top.fd != rootFd { Glibc.close(top.fd) }
        }
    }

    private func directoryPath(_ index: Int32) -> String {
        var parts: [String] = []
        var current = index
        while current > 0 {
            let name = directories[Int(current)].name.dropLast()
            parts.append(name.withUnsafeBytes { printable($0) })
            current = directories[Int(current)].parent
        }
        return "/" + parts.reversed().joined(separator: "/")
    }

    // MARK: Helpers

    static func currentUmask() -> mode_t? {
        guard let status = try? Files.read("/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Umask:") {
            let digits = line.dropFirst("Umask:".count).filter { $0 != " " && $0 != "\t" }
            return mode_t(digits, radix: 8)
        }
        return nil
    }

    private func displayPath(_ path: String) -> String { path.isEmpty ? "/" : path }

    private func check(_ step: @autoclosure () -> String, _ call: () -> Int32) throws(SquashfsError) {
        let rc = call()
        if rc != 0 { throw SquashfsError(step: step(), code: rc) }
    }
}

/// Where a fragment block lies and its size word (bit 24: stored uncompressed).
struct FragmentLocation: Sendable {
    let start: UInt64
    let size: UInt32
}

/// The data block size words that follow a file inode.
func blockSizes(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>) -> UnsafeBufferPointer<UInt32> {
    let count = Int(inode.pointee.payload_bytes_used) / MemoryLayout<UInt32>.size
    let start = (UnsafeMutableRawPointer(inode) + MemoryLayout<sqfs_inode_generic_t>.size)
        .assumingMemoryBound(to: UInt32.self)
    return UnsafeBufferPointer(start: start, count: count)
}

func isDirectory(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>) -> Bool {
    let type = UInt32(inode.pointee.base.type)
    return type == SQFS_INODE_DIR.rawValue || type == SQFS_INODE_EXT_DIR.rawValue
}

/// The link count an inode records (basic file inodes have none: 1).
func linkCount(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>) -> UInt32 {
    let data = inode.pointee.data
    switch UInt32(inode.pointee.base.type) {
    case SQFS_INODE_EXT_FILE.rawValue: return data.file_ext.nlink
    case SQFS_INODE_SLINK.rawValue: return data.slink.nlink
    case SQFS_INODE_EXT_SLINK.rawValue: return data.slink_ext.nlink
    case SQFS_INODE_FIFO.rawValue, SQFS_INODE_SOCKET.rawValue: return data.ipc.nlink
    case SQFS_INODE_EXT_FIFO.rawValue, SQFS_INODE_EXT_SOCKET.rawValue: return data.ipc_ext.nlink
    case SQFS_INODE_BDEV.rawValue, SQFS_INODE_CDEV.rawValue: return data.dev.nlink
    case SQFS_INODE_EXT_BDEV.rawValue, SQFS_INODE_EXT_CDEV.rawValue: return data.dev_ext.nlink
    default: return 1
    }
}

func permissions(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>) -> mode_t {
    mode_t(inode.pointee.base.mode & 0o7777)
}

/// A name or path for messages: invalid UTF-8, control characters and NUL escaped.
func printable(_ bytes: UnsafeRawBufferPointer) -> String {
    if !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }),
       let text = String(validating: bytes, as: UTF8.self) {
        return text
    }
    var result = ""
    for byte in bytes {
        if byte >= 0x20 && byte < 0x7F {
            result.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            result += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }
    }
    return result
}

/// A failed system call while creating the tree.
func systemFailure(_ step: String, _ code: Int32) -> SquashfsError {
    let detail = code == EEXIST ? "the name exists already (listed twice in the image?)" : "failed"
    return SquashfsError(step: step, code: SQFS_ERROR_IO.rawValue, systemErrno: code, detail: detail)
}
