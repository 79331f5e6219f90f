#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to standard error with a single write(2), unbuffered: the process may exec or
/// exit right after, and lines from concurrent processes must not interleave mid-line.
public func printError(_ line: String) {
    let text = line.hasSuffix("\n") ? line : line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
