import CSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// The libsquashfs compressors for a writer: one that compresses (copied by the block
/// processor for each worker thread) and one that decompresses (used to read fragment blocks
/// back when checking a deduplication candidate byte for byte).
struct Compressors {
    let compressor: UnsafeMutablePointer<sqfs_compressor_t>
    let decompressor: UnsafeMutablePointer<sqfs_compressor_t>
    /// The id written to the super block.
    let id: SQFS_COMPRESSOR
    /// Extra super block flags (the "uncompressed" flags for `.none`).
    let superFlags: UInt16
    /// Flags for every file given to the block processor.
    let blockFlags: UInt32

    init(_ compression: SquashfsOptions.Compression, blockSize: Int) throws(SquashfsError) {
        switch compression {
        case .none:
            compressor = makeStoringCompressor()
            decompressor = makeStoringCompressor()
            id = SQFS_COMP_GZIP
            superFlags = UInt16(SQFS_FLAG_UNCOMPRESSED_INODES.rawValue | SQFS_FLAG_UNCOMPRESSED_DATA.rawValue
                | SQFS_FLAG_UNCOMPRESSED_FRAGMENTS.rawValue | SQFS_FLAG_UNCOMPRESSED_XATTRS.rawValue
                | SQFS_FLAG_UNCOMPRESSED_IDS.rawValue)
            blockFlags = SQFS_BLK_DONT_COMPRESS.rawValue
            return
        case .zstd: id = SQFS_COMP_ZSTD
        case .gzip: id = SQFS_COMP_GZIP
        case .lz4: id = SQFS_COMP_LZ4
        case .xz: id = SQFS_COMP_XZ
        }
        superFlags = 0
        blockFlags = 0
        let level: UInt32?
        switch compression {
        case .zstd(let value), .gzip(let value): level = UInt32(value)
        default: level = nil
        }
        compressor = wrapNeverLarger(try Self.create(id, blockSize: blockSize, level: level, flags: 0,
                                                     step: "creating \(compression) compressor"))
        do {
            decompressor = try Self.create(id, blockSize: blockSize, level: level,
                                           flags: UInt16(SQFS_COMP_FLAG_UNCOMPRESS.rawValue),
                                           step: "creating \(compression) decompressor")
        } catch {
            sqfs_destroy(compressor)
            throw error
        }
    }

    private static func create(_ id: SQFS_COMPRESSOR, blockSize: Int, level: UInt32?, flags: UInt16,
                               step: String) throws(SquashfsError) -> UnsafeMutablePointer<sqfs_compressor_t> {
        var config = sqfs_compressor_config_t()
        var rc = sqfs_compressor_config_init(&config, id, blockSize, flags)
        if rc != 0 { throw SquashfsError(step: step, code: rc) }
        if let level { config.level = level }
        var result: UnsafeMutablePointer<sqfs_compressor_t>?
        rc = sqfs_compressor_create(&config, &result)
        guard rc == 0, let result else { throw SquashfsError(step: step, code: rc == 0 ? SQFS_ERROR_ALLOC.rawValue : rc) }
        return result
    }

    func destroy() {
        sqfs_destroy(compressor)
        sqfs_destroy(decompressor)
    }
}

/// A "compressor" that never compresses: `do_block` answers 0, which libsquashfs takes as
/// "the result would not be smaller" and stores the data as it is, both for data blocks and
/// for metadata blocks and tables. Each copy is its own allocation, freed by its destroy.
private func makeStoringCompressor() -> UnsafeMutablePointer<sqfs_compressor_t> {
    let pointer = UnsafeMutablePointer<sqfs_compressor_t>.allocate(capacity: 1)
    var object = sqfs_compressor_t()
    object.base.destroy = { object in
        object?.withMemoryRebound(to: sqfs_compressor_t.self, capacity: 1) { $0.deallocate() }
    }
    object.base.copy = { _ in
        UnsafeMutableRawPointer(makeStoringCompressor()).assumingMemoryBound(to: sqfs_object_t.self)
    }
    object.get_configuration = { _, config in
        guard let config else { return }
        _ = sqfs_compressor_config_init(config, SQFS_COMP_GZIP, Int(SQFS_DEFAULT_BLOCK_SIZE), 0)
    }
    object.write_options = { _, _ in 0 }
    object.read_options = { _, _ in 0 }
    object.do_block = { _, _, _, _, _ in 0 }
    pointer.initialize(to: object)
    return pointer
}

/// Wraps a compressor so that a "compressed" result that is not smaller than its input is
/// reported as incompressible (0), making libsquashfs store the block as it is.
///
/// libsquashfs 1.2's lz4 backend returns whatever LZ4 produced, which for tiny inputs (a 4-byte
/// id table, a short fragment block) is larger than the input. The kernel copes, but
/// unsquashfs refuses such an image ("failed to read id table block"); mksquashfs never
/// writes one. The wrapper is applied to every compressor, it costs one comparison per block.
private func wrapNeverLarger(_ inner: UnsafeMutablePointer<sqfs_compressor_t>) -> UnsafeMutablePointer<sqfs_compressor_t> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: neverLargerInnerOffset + MemoryLayout<UnsafeMutableRawPointer>.size,
                                               alignment: max(MemoryLayout<sqfs_compressor_t>.alignment, MemoryLayout<UnsafeMutableRawPointer>.alignment))
    let pointer = raw.bindMemory(to: sqfs_compressor_t.self, capacity: 1)
    var object = sqfs_compressor_t()
    object.base.destroy = { object in
        guard let object else { return }
        let raw = UnsafeMutableRawPointer(object)
        sqfs_destroy(UnsafeMutableRawPointer(innerCompressor(raw)))
        raw.deallocate()
    }
    object.base.copy = { object in
        guard let object else { return nil }
        guard let copy = sqfs_copy(UnsafeRawPointer(innerCompressor(UnsafeMutableRawPointer(mutating: object)))) else { return nil }
        return UnsafeMutableRawPointer(wrapNeverLarger(copy.assumingMemoryBound(to: sqfs_compressor_t.self)))
            .assumingMemoryBound(to: sqfs_object_t.self)
    }
    object.get_configuration = { compressor, config in
        guard let compressor else { return }
        let inner = innerCompressor(UnsafeMutableRawPointer(mutating: compressor))
        inner.pointee.get_configuration(inner, config)
    }
    object.write_options = { compressor, file in
        let inner = innerCompressor(UnsafeMutableRawPointer(compressor!))
        return inner.pointee.write_options(inner, file)
    }
    object.read_options = { compressor, file in
        let inner = innerCompressor(UnsafeMutableRawPointer(compressor!))
        return inner.pointee.read_options(inner, file)
    }
    object.do_block = { compressor, input, size, output, outputSize in
        let inner = innerCompressor(UnsafeMutableRawPointer(compressor!))
        let result = inner.pointee.do_block(inner, input, size, output, outputSize)
        return result > 0 && UInt32(result) >= size ? 0 : result
    }
    pointer.initialize(to: object)
    (raw + neverLargerInnerOffset).storeBytes(of: UnsafeMutableRawPointer(inner), as: UnsafeMutableRawPointer.self)
    return pointer
}

private let neverLargerInnerOffset: Int = {
    let alignment = MemoryLayout<UnsafeMutableRawPointer>.alignment
    return (MemoryLayout<sqfs_compressor_t>.stride + alignment - 1) / alignment * alignment
}()

private func innerCompressor(_ wrapper: UnsafeMutableRawPointer) -> UnsafeMutablePointer<sqfs_compressor_t> {
    (wrapper + neverLargerInnerOffset).load(as: UnsafeMutableRawPointer.self)
        .assumingMemoryBound(to: sqfs_compressor_t.self)
}
