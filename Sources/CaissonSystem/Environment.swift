#if canImport(Glibc)
import Glibc
#endif

/// The process environment as an ordered list of assignments (order is kept so that the
/// container sees variables in a stable order).
public enum ProcessEnvironment {
    /// This machine's name (gethostname: the UTS namespace's).
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(nulTerminated: buffer)
    }

    public static func current() -> [(name: String, value: String)] {
        var result: [(String, String)] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let assignment = String(cString: entry)
            if let eq = assignment.firstIndex(of: "=") {
                result.append((String(assignment[..<eq]), String(assignment[assignment.index(after: eq)...])))
            }
            pointer += 1
        }
        return result
    }

    public static func dictionary() -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in current() where result[name] == nil { result[name] = value }
        return result
    }
}

/// Runs a program and waits for it, for hooks and checks. Single-threaded: fork + exec.
public enum Subprocess {
    public struct Status: Equatable, Sendable {
        public let exitCode: Int32?
        public let signal: Int32?
        public var succeeded: Bool { exitCode == 0 }
        public var description: String {
            if let exitCode { return "exit status \(exitCode)" }
            return "signal \(signal ?? 0)"
        }
    }

    public static func run(_ argv: [String], environment: [String]? = nil, quiet: Bool = false) throws(SystemError) -> Status {
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = (environment ?? []).map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        var pid: pid_t = 0
        let rc: Int32
        if environment != nil {
            rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, &cEnv)
        } else {
            rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        }
        if rc != 0 { throw SystemError("exec", path: argv[0], errno: rc) }
        var status: Int32 = 0
        try check("waitpid") { waitpid(pid, &status, 0) }
        if status & 0x7f == 0 { return Status(exitCode: (status >> 8) & 0xff, signal: nil) }
        return Status(exitCode: nil, signal: status & 0x7f)
    }
}
