/// A content digest, `algorithm ":" encoded`, validated when it is made: only `sha256` with
/// exactly 64 and `sha512` with exactly 128 lowercase hex characters exist as values of this type.
/// A `Digest` can therefore be put into a file name or URL path as it is (CVE-2024-3727: a digest
/// such as `sha256:../../x` must never reach a path).
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    /// The registered algorithms this module can verify.
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256
        case sha512

        /// How many hex characters the encoded part has.
        public var encodedLength: Int {
            switch self {
            case .sha256: 64
            case .sha512: 128
            }
        }
    }

    public let algorithm: Algorithm
    /// The lowercase hex encoding, without the `algorithm:` prefix.
    public let encoded: String

    /// Parses and validates `algorithm:encoded`.
    public init(parsing string: String) throws(OCIError) {
        guard !string.isEmpty else { throw OCIError.invalidDigest(string, reason: "it is empty") }
        guard let colon = string.firstIndex(of: ":") else {
            throw OCIError.invalidDigest(string, reason: "missing ':' between algorithm and encoded value")
        }
        let name = string[..<colon]
        let hex = string[string.index(after: colon)...]
        guard Grammar.isAlgorithm(name) else {
            throw OCIError.invalidDigest(string, reason: "'\(printable(String(name)))' is not a valid algorithm name")
        }
        guard let algorithm = Algorithm(rawValue: String(name)) else {
            throw OCIError.invalidDigest(string, reason: "unsupported algorithm '\(name)' (supported: sha256, sha512)")
        }
        try self.init(algorithm: algorithm, encoded: String(hex), original: string)
    }

    /// Makes a digest from its parts, validating the encoded value.
    public init(algorithm: Algorithm, encoded: String) throws(OCIError) {
        try self.init(algorithm: algorithm, encoded: encoded, original: "\(algorithm.rawValue):\(encoded)")
    }

    private init(algorithm: Algorithm, encoded: String, original: String) throws(OCIError) {
        let bytes = encoded.utf8
        guard !bytes.isEmpty else { throw OCIError.invalidDigest(original, reason: "the encoded value is empty") }
        guard bytes.allSatisfy(Grammar.isLowerHex) else {
            let uppercase = bytes.allSatisfy { Grammar.isLowerHex($0) || (0x41...0x46).contains($0) }
            throw OCIError.invalidDigest(
                original,
                reason: uppercase
                    ? "the encoded value must be lowercase hex"
                    : "the encoded value may contain only the hex characters 0-9 and a-f"
            )
        }
        guard bytes.count == algorithm.encodedLength else {
            throw OCIError.invalidDigest(
                original,
                reason: "\(algorithm.rawValue) needs exactly \(algorithm.encodedLength) hex characters, got \(bytes.count)"
            )
        }
        self.algorithm = algorithm
        self.encoded = encoded
    }

    /// Non-throwing parse, nil when invalid (`LosslessStringConvertible`).
    public init?(_ description: String) {
        guard let digest = try? Digest(parsing: description) else { return nil }
        self = digest
    }

    /// `algorithm:encoded`, e.g. `sha256:9f86d0…`.
    public var description: String { "\(algorithm.rawValue):\(encoded)" }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }
}

extension Digest: Codable {
    /// Decodes from a JSON string; fails on any invalid digest.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do {
            try self.init(parsing: string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
