import Foundation
@testable import CaissonOCI

/// A deterministic sha256 hex string made of one repeated hex character.
func hex64(_ c: Character) -> String { String(repeating: c, count: 64) }

/// `sha256:` + 64 × `c`.
func sha(_ c: Character) -> String { "sha256:" + hex64(c) }

/// The parsed digest `sha256:` + 64 × `c`.
func digest(_ c: Character) -> Digest { try! Digest(parsing: sha(c)) }

/// The error a throwing body produced, or nil when it returned.
func failure<T>(_ body: @autoclosure () throws(OCIError) -> T) -> OCIError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

func data(_ text: String) -> Data { Data(text.utf8) }
