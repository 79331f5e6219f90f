#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to standard error, unbuffered (the process may exec right after).
func printError(_ line: String) {
    let text = line.hasSuffix("\n") ? line : line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
