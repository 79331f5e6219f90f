import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Which processes run which named container: `caisson start NAME` records its PID (which the
/// command keeps, as Caisson execs it) in the per-user runtime directory as `NAME@PID`, holding
/// the process's start time so that a recycled PID is never taken for the container.
///
/// Records are only ever created and deleted whole, without locks; stale ones (the process is
/// gone) are dropped whenever they are read.
public struct RunningContainers: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func record(name: String, pid: Int32 = getpid()) throws(SystemError) {
        guard let started = RunningContainers.startTime(of: pid) else { throw SystemError("read", path: "/proc/\(pid)/stat", errno: ESRCH) }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw SystemError("mkdir", path: directory) }
        try Files.writeAtomically("\(directory)/\(name)@\(pid)", "\(started)\n", mode: 0o600)
    }

    /// The live processes of `name`, oldest first.
    public func pids(of name: String) -> [Int32] {
        all().filter { $0.name == name }.map(\.pid)
    }

    /// Every live record, by name then PID.
    public func all() -> [(name: String, pid: Int32)] {
        var result: [(name: String, pid: Int32)] = []
        for entry in Files.list(directory) {
            guard let at = entry.lastIndex(of: "@"), let pid = Int32(entry[entry.index(after: at)...]) else { continue }
            let path = "\(directory)/\(entry)"
            let recorded = (try? Files.read(path))?.split(whereSeparator: { $0 == "\n" || $0 == " " }).first.map(String.init)
            if let recorded, let started = RunningContainers.startTime(of: pid), recorded == started {
                result.append((String(entry[..<at]), pid))
            } else {
                unlink(path)
            }
        }
        return result.sorted { ($0.name, $0.pid) < ($1.name, $1.pid) }
    }

    /// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
    static func startTime(of pid: Int32) -> String? {
        guard let text = try? Files.read("/proc/\(pid)/stat"), let paren = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: paren)...].split(separator: " ")
        // After the command name: state is field 3, so start time (22) is index 19.
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
