import Crypto

/// The diff_id hasher: BoringSSL's SHA-256 (swift-crypto, with the CPU's SHA extensions), plus a
/// byte count. Hashing every uncompressed byte is on the import's critical path, so it must be
/// fast: a pure-Swift version measured ~250 MB/s, several times slower than decompression.
struct LayerHasher {
    private var hasher = Crypto.SHA256()
    private(set) var count: UInt64 = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        count += UInt64(bytes.count)
    }

    mutating func finalizeHex() -> String {
        hasher.finalize().map { byte in
            let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
        }.joined()
    }
}
