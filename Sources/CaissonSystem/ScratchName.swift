#if canImport(Glibc)
import Glibc
#endif

/// Hidden names for work in progress next to its result: `.NAME.KIND-HOST-PID` (KIND: `partial`
/// for something being written, `removing` for something being deleted). The result appears
/// only by an atomic rename, so a killed writer leaves at most one of these, which a later run
/// collects. The host is part of the name because data paths and export targets are often on
/// a shared file system: a process id only says whether the work is abandoned on the host that
/// started it, and another node's work in progress must never be collected.
public enum ScratchName {
    public static func make(_ name: String, kind: String) -> String {
        ".\(name).\(kind)-\(host)-\(getpid())"
    }

    /// Whether `entry` is one of this host's scratch names (of one of `kinds`, and for `name`
    /// when given) whose process is gone.
    public static func isAbandoned(_ entry: String, kinds: [String], name: String? = nil) -> Bool {
        guard entry.hasPrefix("."), let dash = entry.lastIndex(of: "-"),
              let pid = Int32(entry[entry.index(after: dash)...]), pid > 0 else { return false }
        let head = entry[..<dash]
        for kind in kinds {
            let suffix = ".\(kind)-\(host)"
            guard head.hasSuffix(suffix) else { continue }
            if let name, head.dropFirst().dropLast(suffix.count) != Substring(name) { continue }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }
        return false
    }

    /// This machine's name, without dots or slashes (it goes into file names).
    public static let host: String = {
        let cleaned = String(ProcessEnvironment.hostname().map { $0 == "." || $0 == "/" ? "_" : $0 })
        return cleaned.isEmpty ? "localhost" : cleaned
    }()
}
