import CSquashfs
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Writes a squashfs image in one pass, straight from the layer streams.
///
/// File contents go into libsquashfs's block processor as they are read (`writeFileData`):
/// split into blocks, compressed by `options.jobs` worker threads, deduplicated (whole files
/// and tail-end fragments, verified byte for byte) and appended to the image. Nothing is
/// extracted to the host file system. `finish(root:)` then writes the inode, directory,
/// fragment, export, id and xattr tables for the final tree, the super block, and fsyncs.
///
/// Contents that no node of the final tree refers to (a file a later layer deleted) stay in
/// the image as dead blocks; the image is valid regardless.
///
/// Not thread-safe: one thread drives a writer (`bytesWritten` may be read from any thread).
/// After any error the writer is unusable and the image incomplete: remove it.
public final class SquashfsWriter: FileDataSink {
    public let path: String
    public let options: SquashfsOptions

    private let image: ImageFile
    private let compressors: Compressors
    private let fragmentTable: OpaquePointer
    private let blockWriter: UnsafeMutablePointer<sqfs_block_writer_t>
    private let processor: OpaquePointer
    private var superBlock = sqfs_super_t()
    /// One per writeFileData call, indexed by FileData.id: where the block processor keeps the
    /// file's inode (block sizes, start, fragment) up to date until it is finished.
    private var inodeSlots: [UnsafeMutablePointer<UnsafeMutablePointer<sqfs_inode_generic_t>?>] = []
    private let buffer: UnsafeMutableRawBufferPointer

    private enum State {
        case writing
        case finished
        case failed(SquashfsError)
    }
    private var state = State.writing

    /// Creates or truncates `path` and writes a provisional super block.
    public init(path: String, options: SquashfsOptions) throws {
        try options.validate()
        self.path = path
        self.options = options
        let image: ImageFile
        do {
            image = try ImageFile(path: path)
        } catch {
            throw SquashfsError(step: "creating image \(path)", code: SQFS_ERROR_IO.rawValue, systemErrno: error.code)
        }
        self.image = image
        let compressors = try Compressors(options.compression, blockSize: options.blockSize)
        guard let fragmentTable = sqfs_frag_table_create(0) else {
            compressors.destroy()
            throw SquashfsError(step: "creating fragment table", code: SQFS_ERROR_ALLOC.rawValue)
        }
        // Block alignment is not used (no SQFS_BLK_ALIGN), the device block size is nominal.
        guard let blockWriter = sqfs_block_writer_create(image.file, Int(SQFS_DEVBLK_SIZE), 0) else {
            sqfs_destroy(UnsafeMutableRawPointer(fragmentTable))
            compressors.destroy()
            throw SquashfsError(step: "creating block writer", code: SQFS_ERROR_ALLOC.rawValue)
        }
        var description = sqfs_block_processor_desc_t()
        description.size = UInt32(MemoryLayout<sqfs_block_processor_desc_t>.size)
        description.max_block_size = UInt32(options.blockSize)
        description.num_workers = UInt32(options.jobs)
        description.max_backlog = UInt32(Self.backlog(jobs: options.jobs, blockSize: options.blockSize))
        description.cmp = compressors.compressor
        description.wr = blockWriter
        description.tbl = fragmentTable
        description.file = image.file
        description.uncmp = compressors.decompressor
        var processor: OpaquePointer?
        let rc = sqfs_block_processor_create_ex(&description, &processor)
        guard rc == 0, let processor else {
            sqfs_destroy(blockWriter)
            sqfs_destroy(UnsafeMutableRawPointer(fragmentTable))
            compressors.destroy()
            throw SquashfsError(step: "creating block processor with \(options.jobs) threads",
                                code: rc == 0 ? SQFS_ERROR_INTERNAL.rawValue : rc)
        }
        self.compressors = compressors
        self.fragmentTable = fragmentTable
        self.blockWriter = blockWriter
        self.processor = processor
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: options.blockSize, alignment: 64)

        // The super block goes first; it is written again, complete, by finish. Compressor
        // options (e.g. a non-default zstd level) follow it directly.
        try run("initialising super block") {
            sqfs_super_init(&superBlock, options.blockSize, 0, compressors.id)
        }
        superBlock.flags |= compressors.superFlags
        try run("writing super block") { sqfs_super_write(&superBlock, image.file) }
        let optionBytes = compressors.compressor.pointee.write_options(compressors.compressor, image.file)
        if optionBytes < 0 { try run("writing compressor options") { optionBytes } }
        if optionBytes > 0 { superBlock.flags |= UInt16(SQFS_FLAG_COMPRESSOR_OPTIONS.rawValue) }
    }

    /// Blocks in flight in the block processor. Each holds a full block buffer whatever its
    /// fill (a 100-byte file tail too), so this bounds the writer's memory: backlog × block size.
    /// Small files make one queue entry each (their tails), and a short queue makes the reading
    /// thread wait for the workers every few files. 32 per worker, at least 16, at most 32 MiB.
    static func backlog(jobs: Int, blockSize: Int) -> Int {
        min(max(16, jobs * 32), max(16, (32 << 20) / blockSize))
    }

    deinit {
        sqfs_destroy(UnsafeMutableRawPointer(processor))
        sqfs_destroy(blockWriter)
        sqfs_destroy(UnsafeMutableRawPointer(fragmentTable))
        compressors.destroy()
        for slot in inodeSlots {
            if let inode = slot.pointee { sqfs_free(inode) }
            slot.deallocate()
        }
        buffer.deallocate()
    }

    /// Bytes written to the image so far (compressed data and, after finish, the tables).
    public var bytesWritten: UInt64 { image.size }

    /// Streams one file's contents into the image: `read` fills the buffer it is given and
    /// returns the byte count, 0 at the end. An error thrown by `read` is rethrown as it is
    /// (what was read so far stays in the image as dead data, and the writer stays usable).
    public func writeFileData(_ read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> FileData {
        try checkWriting()
        let slot = UnsafeMutablePointer<UnsafeMutablePointer<sqfs_inode_generic_t>?>.allocate(capacity: 1)
        slot.initialize(to: nil)
        let id = inodeSlots.count
        inodeSlots.append(slot)

        try run("starting file data") {
            sqfs_block_processor_begin_file(processor, slot, nil, compressors.blockFlags)
        }
        var total: UInt64 = 0
        var readError: (any Error)?
        while true {
            let count: Int
            do {
                count = try read(buffer)
            } catch {
                readError = error
                break
            }
            if count == 0 { break }
            if count < 0 || count > buffer.count {
                readError = SquashfsError.invalid("reading file data", "the reader returned \(count) for a buffer of \(buffer.count) bytes")
                break
            }
            try run("writing data block") { sqfs_block_processor_append(processor, buffer.baseAddress, count) }
            total += UInt64(count)
        }
        try run("finishing file data") { sqfs_block_processor_end_file(processor) }
        if let readError { throw readError }
        return FileData(id: id, size: total)
    }

    /// Writes the tables for `root` and the super block, and fsyncs the image. Every regular
    /// file in the tree must have `data` from this writer (or nil for an empty file).
    public func finish(root: FileNode) throws {
        try checkWriting()
        try run("writing data blocks") { sqfs_block_processor_finish(processor) }

        let slots = inodeSlots
        let tree: TreeSerializer
        do {
            tree = try TreeSerializer(file: image.file, compressor: compressors.compressor,
                                      fragments: fragmentTable) { data in
                guard data.id >= 0, data.id < slots.count else { return nil }
                return slots[data.id].pointee
            }
            try tree.serialize(root: root)
            try tree.writeInodeAndDirectoryTables(&superBlock)
            // Fragment table, export table, id table, xattr table: the order the format asks for.
            try tree.writeFragmentTable(&superBlock)
            try tree.writeExportTable(&superBlock)
            try tree.writeIdTable(&superBlock)
            try tree.writeXattrTable(&superBlock)
        } catch {
            throw fail(error)
        }

        superBlock.inode_count = tree.inodeCount
        superBlock.root_inode_ref = tree.rootInodeReference
        superBlock.modification_time = tree.latestModificationTime
        // The table writers set the fragment, xattr and export flags. Flag 0x40 stays set, as
        // sqfs_super_init left it: libsquashfs calls it NO_DUPLICATES, but squashfs-tools and
        // the format read it as "duplicates are removed" (mksquashfs sets it), which is true
        // here: whole files and fragments are deduplicated.
        superBlock.bytes_used = image.size
        try run("padding image") { image.pad(to: UInt64(SQFS_DEVBLK_SIZE)) }
        try run("writing super block") { sqfs_super_write(&superBlock, image.file) }
        try run("syncing image") { image.sync() }
        state = .finished
    }

    private func checkWriting() throws {
        switch state {
        case .writing: return
        case .finished: throw SquashfsError.invalid("writing \(path)", "the image is already finished")
        case .failed(let error):
            throw SquashfsError(step: "writing \(path)", code: error.code, systemErrno: error.systemErrno,
                                detail: "an earlier step failed: \(error)")
        }
    }

    /// Records the error (with the image's errno for I/O errors) and makes the writer unusable.
    private func fail(_ error: any Error) -> any Error {
        guard var error = error as? SquashfsError else { return error }
        if error.code == SQFS_ERROR_IO.rawValue, error.systemErrno == nil, let code = image.takeLastErrno() {
            error = SquashfsError(step: error.step, code: error.code, systemErrno: code, detail: error.detail)
        }
        state = .failed(error)
        return error
    }

    private func run(_ step: @autoclosure () -> String, _ call: () -> Int32) throws {
        let rc = call()
        if rc < 0 { throw fail(SquashfsError(step: step(), code: rc)) }
    }
}
