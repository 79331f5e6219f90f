import CArchive

/// One layer as a stream of tar entries, decompressed and hashed on the way.
///
/// Two libarchive readers are chained, nothing is buffered beyond their blocks:
///
///     read() ─► outer: gzip/zstd/xz/bzip2 filter + "raw" format ─► uncompressed tar bytes
///                                                                   │ SHA-256 (the diff_id)
///               inner: tar formats, no filter ◄─────────────────────┘ (zero-copy: the outer's blocks)
///
/// The outer reader does not enable `archive_read_support_filter_all`: that set also registers
/// uu, rpm and lrzip/lzop/grzip/lz4 (some run external programs), which would reinterpret an
/// uncompressed layer that merely starts with the right bytes. OCI and Docker layers are tar,
/// tar+gzip or tar+zstd; xz and bzip2 are accepted for old `docker save` archives.
final class LayerStream {
    /// Where the outer reader gets compressed bytes: the caller's `read`.
    private final class Input {
        let read: (UnsafeMutableRawBufferPointer) throws -> Int
        let buffer: UnsafeMutableRawBufferPointer
        var error: (any Error)?
        var badCount: Int?
        var bytes: UInt64 = 0

        init(read: @escaping (UnsafeMutableRawBufferPointer) throws -> Int, capacity: Int) {
            self.read = read
            buffer = .allocate(byteCount: capacity, alignment: 16)
        }

        deinit { buffer.deallocate() }
    }

    /// Where the inner (tar) reader gets uncompressed bytes: the outer reader's data blocks.
    private final class Bridge {
        var outer: OpaquePointer?
        var hasher = LayerHasher()
        /// libarchive's message when the outer reader failed (decompression error).
        var error: String?
        var atEnd = false

        /// The next uncompressed block, hashed; nil at the end; throws nothing, records `error`.
        func nextBlock() -> UnsafeRawBufferPointer? {
            guard let outer, !atEnd, error == nil else { return nil }
            while true {
                var block: UnsafeRawPointer?
                var size = 0
                var offset: la_int64_t = 0
                let status = archive_read_data_block(outer, &block, &size, &offset)
                if status == ARCHIVE_EOF {
                    atEnd = true
                    return nil
                }
                if status < ARCHIVE_WARN {
                    error = LayerStream.message(outer) ?? "the compressed stream could not be read"
                    return nil
                }
                if offset != la_int64_t(truncatingIfNeeded: hasher.count) {
                    error = "the uncompressed stream has a hole at offset \(hasher.count)"
                    return nil
                }
                guard let block, size > 0 else { continue }
                let bytes = UnsafeRawBufferPointer(start: block, count: size)
                hasher.update(bytes)
                return bytes
            }
        }
    }

    private let layer: String
    private let input: Input
    private let bridge = Bridge()
    private let outer: OpaquePointer
    private let inner: OpaquePointer
    /// The current entry (owned by the inner reader, valid until the next `next()`).
    private(set) var entry: OpaquePointer?
    /// Set when reading an entry's data failed, so the caller can tell a bad layer from a bad sink.
    private(set) var dataError: LayerError?

    init(layer: String, read: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) throws(LayerError) {
        self.layer = layer
        input = Input(read: read, capacity: 256 * 1024)
        guard let outer = archive_read_new() else {
            throw LayerError(layer: layer, entry: nil, kind: .archive, reason: "could not be opened: out of memory")
        }
        self.outer = outer
        guard let inner = archive_read_new() else {
            archive_read_free(outer)
            throw LayerError(layer: layer, entry: nil, kind: .archive, reason: "could not be opened: out of memory")
        }
        self.inner = inner
        bridge.outer = outer

        archive_read_support_filter_gzip(outer)
        archive_read_support_filter_zstd(outer)
        archive_read_support_filter_xz(outer)
        archive_read_support_filter_bzip2(outer)
        archive_read_support_format_raw(outer)
        archive_read_support_format_empty(outer)

        archive_read_support_format_tar(inner)
        archive_read_support_format_gnutar(inner)
        archive_read_support_format_empty(inner)

        let inputCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> la_ssize_t = { _, client, out in
            let input = Unmanaged<Input>.fromOpaque(client!).takeUnretainedValue()
            do {
                let count = try input.read(input.buffer)
                guard count >= 0, count <= input.buffer.count else {
                    input.badCount = count
                    return -1
                }
                input.bytes &+= UInt64(count)
                out?.pointee = UnsafeRawPointer(input.buffer.baseAddress)
                return la_ssize_t(count)
            } catch {
                input.error = error
                return -1
            }
        }
        let bridgeCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> la_ssize_t = { _, client, out in
            let bridge = Unmanaged<Bridge>.fromOpaque(client!).takeUnretainedValue()
            guard let block = bridge.nextBlock() else { return bridge.error == nil ? 0 : -1 }
            out?.pointee = block.baseAddress
            return la_ssize_t(block.count)
        }

        if archive_read_open(outer, Unmanaged.passUnretained(input).toOpaque(), nil, inputCallback, nil) != ARCHIVE_OK {
            throw failure(outer: true)
        }
        var rawEntry: OpaquePointer?
        let status = archive_read_next_header(outer, &rawEntry)
        if status == ARCHIVE_EOF {
            bridge.atEnd = true  // an empty stream: the inner reader sees an empty file
        } else if status < ARCHIVE_WARN {
            throw failure(outer: true)
        }
        if archive_read_open(inner, Unmanaged.passUnretained(bridge).toOpaque(), nil, bridgeCallback, nil) != ARCHIVE_OK {
            throw failure(outer: false)
        }
    }

    deinit {
        archive_read_free(inner)
        archive_read_free(outer)
    }

    /// Advances to the next entry; false at the end of the archive. Header warnings (charset
    /// conversions and the like) go to `warning`.
    func next(warning: (String) -> Void) throws(LayerError) -> Bool {
        var current: OpaquePointer?
        let status = archive_read_next_header(inner, &current)
        if status == ARCHIVE_EOF {
            entry = nil
            return false
        }
        if status < ARCHIVE_WARN || current == nil {
            throw failure(outer: false)
        }
        if status == ARCHIVE_WARN, let message = Self.message(inner),
           !message.contains("convert"), !message.contains("translate") {
            warning(message)
        }
        entry = current
        return true
    }

    /// Reads the current entry's data (sparse holes come back as zeros). Throws `dataError` (also
    /// recorded) when the layer is bad.
    func readData(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let count = archive_read_data(inner, base, buffer.count)
        if count < 0 {
            let error = failure(outer: false)
            dataError = error
            throw error
        }
        return count
    }

    /// After the last entry: hashes whatever follows the tar's end marker (padding) and returns
    /// the diff_id (hex SHA-256 of the whole uncompressed stream).
    func finish() throws(LayerError) -> (digest: String, uncompressed: UInt64, compressed: UInt64) {
        while bridge.nextBlock() != nil {}
        if bridge.error != nil || input.error != nil || input.badCount != nil {
            throw failure(outer: true)
        }
        let count = bridge.hasher.count
        return (bridge.hasher.finalizeHex(), count, input.bytes)
    }

    /// The most specific reason for a failure: the caller's `read`, then decompression, then tar.
    private func failure(outer failedOuter: Bool) -> LayerError {
        if let error = input.error {
            return LayerError(layer: layer, entry: nil, kind: .input, reason: "could not be read: \(error)")
        }
        if let count = input.badCount {
            return LayerError(layer: layer, entry: nil, kind: .input,
                              reason: "could not be read: read returned \(count) for a buffer of \(input.buffer.count) bytes")
        }
        if let message = bridge.error {
            return LayerError(layer: layer, entry: nil, kind: .decompression, reason: "could not be decompressed: \(message)")
        }
        if failedOuter {
            let message = Self.message(outer) ?? "unknown error"
            return LayerError(layer: layer, entry: nil, kind: .decompression, reason: "could not be decompressed: \(message)")
        }
        let message = Self.message(inner) ?? "unknown error"
        return LayerError(layer: layer, entry: nil, kind: .archive, reason: "is not a readable tar archive: \(message)")
    }

    fileprivate static func message(_ archive: OpaquePointer) -> String? {
        guard let text = archive_error_string(archive) else { return nil }
        return String(cString: text)
    }
}
