import CaissonSlurm
import CaissonSystem
import CSpank
#if canImport(Glibc)
import Glibc
#endif

/// The SPANK handle and Slurm's loggers, in Swift terms. Everything goes through CSpank's
/// non-variadic wrappers.
struct Spank {
    let handle: cspank_t?

    enum Context: Int32 {
        case error = 0, local, remote, allocator, slurmd, jobScript
    }

    static var context: Context { Context(rawValue: cspank_context()) ?? .error }

    func uid() -> uid_t? { var v: uid_t = 0; return cspank_job_uid(handle, &v) == cspank_success ? v : nil }
    func gid() -> gid_t? { var v: gid_t = 0; return cspank_job_gid(handle, &v) == cspank_success ? v : nil }
    func jobID() -> UInt32? { var v: UInt32 = 0; return cspank_job_id(handle, &v) == cspank_success ? v : nil }
    func stepID() -> UInt32? { var v: UInt32 = 0; return cspank_step_id(handle, &v) == cspank_success ? v : nil }
    func localTaskCount() -> UInt32? { var v: UInt32 = 0; return cspank_local_task_count(handle, &v) == cspank_success ? v : nil }
    func nodeID() -> UInt32? { var v: UInt32 = 0; return cspank_node_id(handle, &v) == cspank_success ? v : nil }
    func taskID() -> Int32? { var v: Int32 = 0; return cspank_task_id(handle, &v) == cspank_success ? v : nil }

    func supplementaryGroups() -> [gid_t]? {
        var pointer: UnsafeMutablePointer<gid_t>?
        var count: Int32 = 0
        guard cspank_supplementary_gids(handle, &pointer, &count) == cspank_success else { return nil }
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: Int(count)))
    }

    func argv() -> [String] {
        var argc: Int32 = 0
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        guard cspank_job_argv(handle, &argc, &argv) == cspank_success, let argv else { return [] }
        return (0..<Int(argc)).compactMap { argv[$0].map { String(cString: $0) } }
    }

    /// The job's environment as Slurm holds it for this step (in a task: for this task).
    func environment() -> [(name: String, value: String)] {
        var env: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        guard cspank_job_env(handle, &env) == cspank_success, let env else { return [] }
        var entries: [String] = []
        var index = 0
        while let entry = env[index] {
            entries.append(String(cString: entry))
            index += 1
        }
        return EnvironmentRules.pairs(entries)
    }

    func getenv(_ name: String) -> String? {
        var size = 4096
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            let rc = cspank_getenv(handle, name, &buffer, Int32(size))
            if rc == cspank_success { return String(nulTerminated: buffer) }
            if rc != cspank_nospace { return nil }
            size *= 4
        }
        return nil
    }

    @discardableResult
    func setenv(_ name: String, _ value: String, overwrite: Bool) -> Int32 {
        cspank_setenv(handle, name, value, overwrite ? 1 : 0)
    }

    @discardableResult
    func unsetenv(_ name: String) -> Int32 { cspank_unsetenv(handle, name) }

    static func describe(_ rc: Int32) -> String { String(cString: cspank_strerror(rc)) }
}

/// Messages from the plugin. In slurmstepd, once the step's I/O is set up, error-level messages
/// are written to the first task's stderr, i.e. srun's; info and debug go to slurmd's log.
enum Log {
    static func error(_ message: String) { cspank_log_error(message) }
    static func user(_ message: String) { cspank_log_user(message) }
    static func info(_ message: String) { cspank_log_info(message) }
    static func debug(_ message: String) { cspank_log_debug(message) }

    /// A failure, then what Caisson printed about it, line by line (already `caisson: STAGE: ...`).
    static func failure(_ error: PluginError) {
        cspank_log_error(error.description)
        for line in error.details where !line.isEmpty { cspank_log_error(line) }
    }
}

