import Foundation
import Testing
@testable import CaissonOCI

@Suite struct DigestTests {
    @Test func parsesSha256() throws {
        let text = "sha256:" + "0123456789abcdef" + "0123456789abcdef" + "0123456789abcdef" + "0123456789abcdef"
        let d = try Digest(parsing: text)
        #expect(d.algorithm == .sha256)
        #expect(d.encoded == String(text.dropFirst(7)))
        #expect(d.description == text)
        #expect("\(d)" == text)
    }

    @Test func parsesSha512() throws {
        let text = "sha512:" + String(repeating: "a1", count: 64)
        let d = try Digest(parsing: text)
        #expect(d.algorithm == .sha512)
        #expect(d.encoded.count == 128)
        #expect(d.description == text)
    }

    @Test func buildsFromParts() throws {
        let d = try Digest(algorithm: .sha256, encoded: hex64("b"))
        #expect(d == digest("b"))
        #expect(failure(try Digest(algorithm: .sha512, encoded: hex64("b"))) != nil)
    }

    struct Hostile: Sendable, CustomTestStringConvertible {
        let input: String
        let reason: String
        var testDescription: String { input.isEmpty ? "<empty>" : String(input.prefix(40)) }
    }

    static let hostile: [Hostile] = [
        Hostile(input: "", reason: "empty"),
        Hostile(input: "sha256:../../x", reason: "only the hex characters"),
        Hostile(input: "sha256:../../../../etc/passwd", reason: "only the hex characters"),
        Hostile(input: "sha256:" + String(repeating: "a", count: 63), reason: "exactly 64 hex characters, got 63"),
        Hostile(input: "sha256:" + String(repeating: "a", count: 65), reason: "exactly 64 hex characters, got 65"),
        Hostile(input: "sha256:" + String(repeating: "A", count: 64), reason: "lowercase"),
        Hostile(input: "sha256:" + String(repeating: "a", count: 63) + "G", reason: "only the hex characters"),
        Hostile(input: "sha256:" + hex64("a") + "/..", reason: "only the hex characters"),
        Hostile(input: "sha256:" + String(repeating: "a", count: 32) + "/" + String(repeating: "a", count: 31), reason: "only the hex characters"),
        Hostile(input: "sha256:", reason: "encoded value is empty"),
        Hostile(input: "sha256", reason: "missing ':'"),
        Hostile(input: hex64("a"), reason: "missing ':'"),
        Hostile(input: ":" + hex64("a"), reason: "not a valid algorithm"),
        Hostile(input: "md5:d41d8cd98f00b204e9800998ecf8427e", reason: "unsupported algorithm 'md5'"),
        Hostile(input: "sha384:" + String(repeating: "a", count: 96), reason: "unsupported algorithm 'sha384'"),
        Hostile(input: "SHA256:" + hex64("a"), reason: "not a valid algorithm"),
        Hostile(input: "sha512:" + hex64("a"), reason: "exactly 128 hex characters, got 64"),
        Hostile(input: "../sha256:" + hex64("a"), reason: "not a valid algorithm"),
        Hostile(input: " sha256:" + hex64("a"), reason: "not a valid algorithm"),
        Hostile(input: "sha256:" + hex64("a") + "\n", reason: "only the hex characters"),
        Hostile(input: "sha256:" + hex64("a") + "\0", reason: "only the hex characters"),
        // Fullwidth digits look like hex to a human; they are not.
        Hostile(input: "sha256:" + String(repeating: "\u{FF11}", count: 64), reason: "only the hex characters"),
    ]

    @Test(arguments: hostile)
    func rejectsHostileDigests(_ c: Hostile) {
        let error = failure(try Digest(parsing: c.input))
        guard case let .invalidDigest(input, reason)? = error else {
            Issue.record("expected invalidDigest, got \(String(describing: error))")
            return
        }
        #expect(input == c.input)
        #expect(reason.contains(c.reason), "reason: \(reason)")
        #expect(Digest(c.input) == nil)
    }

    @Test func errorMessageShowsTheExpectedForm() {
        let error = failure(try Digest(parsing: "sha256:../../x"))
        #expect(error?.description.contains("sha256:../../x") == true)
        #expect(error?.description.contains("64 lowercase hex") == true)
    }

    @Test func errorMessageEscapesControlCharacters() {
        let error = failure(try Digest(parsing: "sha256:\n\u{1b}[31m"))
        let text = error?.description ?? ""
        #expect(!text.contains("\n"))
        #expect(!text.contains("\u{1b}"))
    }

    struct Box: Codable, Equatable { var digest: Digest }

    @Test func codableAsString() throws {
        let json = #"{"digest":"\#(sha("c"))"}"#
        let box = try JSONDecoder().decode(Box.self, from: data(json))
        #expect(box.digest == digest("c"))
        let encoded = String(decoding: try JSONEncoder().encode(box), as: UTF8.self)
        #expect(encoded == json)
    }

    @Test(arguments: [
        #"{"digest":"sha256:../../x"}"#,
        #"{"digest":"sha256:\#(String(repeating: "A", count: 64))"}"#,
        #"{"digest":""}"#,
        #"{"digest":42}"#,
        #"{"digest":null}"#,
    ])
    func decodingFailsOnInvalid(_ json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Box.self, from: data(json)) }
    }

    @Test func hashableAndComparable() {
        let set: Set<Digest> = [digest("a"), digest("a"), digest("b")]
        #expect(set.count == 2)
        #expect(digest("a") < digest("b"))
        #expect(!(digest("b") < digest("a")))
    }
}
