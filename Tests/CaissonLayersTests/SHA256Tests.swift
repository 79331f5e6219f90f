import Testing
@testable import CaissonLayers

/// The diff_id hasher (swift-crypto underneath), including its byte count and hex rendering.
@Suite struct SHA256Tests {
    static func hash(_ bytes: [UInt8]) -> String {
        var hasher = LayerHasher()
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finalizeHex()
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ])
    func knownVectors(_ input: String, _ expected: String) {
        #expect(Self.hash(Array(input.utf8)) == expected)
    }

    @Test func oneMillionA() {
        var hasher = LayerHasher()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { chunk.withUnsafeBytes { hasher.update($0) } }
        #expect(hasher.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Every length around the padding boundaries, fed in uneven pieces, against sha256sum.
    @Test func agreesWithSha256sum() throws {
        var generator = SplitMix(seed: 42)
        let lengths = Array(0...130) + [183, 255, 256, 511, 512, 1000, 4095, 65_537, 1_048_583]
        for length in lengths {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            var hasher = LayerHasher()
            var offset = 0
            var piece = 1
            while offset < bytes.count {
                let end = min(bytes.count, offset + piece)
                bytes[offset..<end].withUnsafeBytes { hasher.update($0) }
                offset = end
                piece = piece * 3 % 1031 + 1
            }
            #expect(hasher.count == UInt64(length))
            let incremental = hasher.finalizeHex()
            #expect(incremental == Self.hash(bytes), "length \(length)")
            #expect(incremental == (try sha256sum(bytes)), "length \(length)")
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
