import CSquashfs
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// An image opened for reading, as libsquashfs sees it: an `sqfs_file_t` whose reads are preads
/// on our descriptor at `offset` plus the position libsquashfs asks for, so that the image may
/// sit after other bytes in a file (a self-extracting bundle's script). Writing and truncating
/// are refused.
///
/// Immutable after init, so any thread may read through it (the extractor's workers pread the
/// descriptor directly).
final class ReadOnlyImageFile: @unchecked Sendable {
    let descriptor: FileDescriptor
    /// Where the image starts in the file.
    let offset: UInt64
    /// Bytes from `offset` to the end of the file.
    let size: UInt64
    /// Our `sqfs_file_t` (see SquashfsFileBridge).
    let file: UnsafeMutablePointer<sqfs_file_t>

    init(path: String, offset: UInt64) throws(SquashfsError) {
        let descriptor: FileDescriptor
        let st: stat
        do {
            descriptor = try FileDescriptor.open(path, O_RDONLY)
            st = try descriptor.stat()
        } catch {
            throw SquashfsError(step: "opening image \(path)", code: SQFS_ERROR_IO.rawValue, systemErrno: error.code)
        }
        guard st.st_mode & S_IFMT == S_IFREG || st.st_mode & S_IFMT == S_IFBLK else {
            throw .invalid("opening image \(path)", "not a regular file")
        }
        var fileSize = UInt64(st.st_size)
        if st.st_mode & S_IFMT == S_IFBLK {
            let end = lseek(descriptor.rawValue, 0, SEEK_END)
            fileSize = end > 0 ? UInt64(end) : 0
        }
        guard offset <= fileSize else {
            throw .invalid("opening image \(path)", "offset \(offset) is beyond the end of the file (\(fileSize) bytes)")
        }
        self.descriptor = descriptor
        self.offset = offset
        self.size = fileSize - offset
        var object = sqfs_file_t()
        object.read_at = { file, position, buffer, count in
            ReadOnlyImageFile.context(file).read(at: position, into: buffer, count: count)
        }
        object.write_at = { _, _, _, _ in SQFS_ERROR_UNSUPPORTED.rawValue }
        object.get_size = { file in
            ReadOnlyImageFile.context(file).size
        }
        object.truncate = { _, _ in SQFS_ERROR_UNSUPPORTED.rawValue }
        file = SquashfsFileBridge.allocate(object)
        SquashfsFileBridge.attach(self, to: file)
    }

    deinit { SquashfsFileBridge.release(file) }

    private static func context(_ file: UnsafePointer<sqfs_file_t>?) -> ReadOnlyImageFile {
        SquashfsFileBridge.owner(of: file, as: ReadOnlyImageFile.self)
    }

    /// Reads exactly `count` bytes at `position` of the image: 0, or a libsquashfs error code
    /// (out of bounds for a read past the end, I/O error otherwise).
    func read(at position: UInt64, into buffer: UnsafeMutableRawPointer?, count: Int) -> Int32 {
        guard count > 0 else { return 0 }
        guard let buffer else { return SQFS_ERROR_ARG_INVALID.rawValue }
        let (end, overflow) = position.addingReportingOverflow(UInt64(count))
        if overflow || end > size { return SQFS_ERROR_OUT_OF_BOUNDS.rawValue }
        var done = 0
        while done < count {
            let n = pread(descriptor.rawValue, buffer + done, count - done, off_t(offset + position) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return SQFS_ERROR_IO.rawValue
            }
            // The file shrank under us.
            if n == 0 { return SQFS_ERROR_OUT_OF_BOUNDS.rawValue }
            done += n
        }
        return 0
    }
}

/// The parts of an image every reader needs: the file, its super block and a decompressor
/// factory (each thread decompresses with its own instance).
struct ImageHeader {
    let image: ReadOnlyImageFile
    var superBlock: sqfs_super_t
    let blockSize: Int

    init(path: String, offset: UInt64) throws(SquashfsError) {
        image = try ReadOnlyImageFile(path: path, offset: offset)
        var superBlock = sqfs_super_t()
        let rc = sqfs_super_read(&superBlock, image.file)
        if rc != 0 { throw SquashfsError(step: "reading super block of \(path)", code: rc) }
        if superBlock.bytes_used > image.size {
            throw .invalid("reading \(path)",
                           "the image is truncated: its super block says \(superBlock.bytes_used) bytes, the file has \(image.size)"
                           + (offset > 0 ? " after offset \(offset)" : ""))
        }
        // libsquashfs checks magic, version and block size; the tables must also lie in order
        // inside the image, or the readers' limits would be meaningless.
        let bytesUsed = superBlock.bytes_used
        if superBlock.inode_table_start >= superBlock.directory_table_start
            || superBlock.directory_table_start >= bytesUsed
            || superBlock.id_table_start >= bytesUsed
            || superBlock.root_inode_ref >> 16 >= superBlock.directory_table_start - superBlock.inode_table_start {
            throw SquashfsError(step: "reading super block of \(path)", code: SQFS_ERROR_CORRUPTED.rawValue,
                                detail: "table locations are out of order or out of bounds")
        }
        self.superBlock = superBlock
        self.blockSize = Int(superBlock.block_size)
    }

    /// A new decompressor for the image's compressor, with the image's compressor options.
    func makeDecompressor() throws(SquashfsError) -> UnsafeMutablePointer<sqfs_compressor_t> {
        var config = sqfs_compressor_config_t()
        let id = SQFS_COMPRESSOR(rawValue: UInt32(superBlock.compression_id))
        var rc = sqfs_compressor_config_init(&config, id, blockSize, UInt16(SQFS_COMP_FLAG_UNCOMPRESS.rawValue))
        if rc != 0 {
            throw SquashfsError(step: "creating decompressor for compressor \(superBlock.compression_id)", code: rc)
        }
        var result: UnsafeMutablePointer<sqfs_compressor_t>?
        rc = sqfs_compressor_create(&config, &result)
        guard rc == 0, let result else {
            throw SquashfsError(step: "creating decompressor for compressor \(superBlock.compression_id)",
                                code: rc == 0 ? SQFS_ERROR_ALLOC.rawValue : rc)
        }
        if superBlock.flags & UInt16(SQFS_FLAG_COMPRESSOR_OPTIONS.rawValue) != 0 {
            rc = result.pointee.read_options(result, image.file)
            if rc != 0 {
                sqfs_destroy(result)
                throw SquashfsError(step: "reading compressor options", code: rc)
            }
        }
        return result
    }
}
