import CaissonSlurm
import CaissonSystem
import CSpank
#if canImport(Glibc)
import Glibc
#endif

/// Runs `caisson` as the job's user from slurmstepd. Everything the user's side does (registry
/// access, reading images and mount sources, FUSE, namespaces) happens in that process, never in
/// slurmstepd as root: the user cannot read through the plugin what they could not read on the
/// host. CSpank's spawn drops to the user and their supplementary groups, closes every inherited
/// descriptor and passes exactly the environment given here.
///
/// stdout is a pipe (the cached image path, or the parked container's environment); stderr is a
/// memfd rather than a pipe: nothing has to drain it while we wait, and a container's FUSE server,
/// which inherits it and outlives our reading, can never get SIGPIPE from it.
struct CaissonProcess {
    struct User {
        var uid: uid_t
        var gid: gid_t
        var groups: [gid_t]
        /// NAME=VALUE, exactly what the program gets.
        var environment: [String]
        var cwd: String?
    }

    let program: String
    let user: User

    struct Finished {
        /// The exit status, or 128 + signal.
        var status: Int32
        var stdout: [UInt8]
        var stderr: [String]
        /// Stopped because `abandonIf` said the work was no longer wanted.
        var abandoned = false
        var succeeded: Bool { status == 0 && !abandoned }
    }

    /// Runs to completion, or until `abandonIf` (asked every `Self.abandonCheckSeconds` while the
    /// program runs) says the work is no longer wanted: slurmstepd holds a cancel until the tasks
    /// launch, so a long import would otherwise outlive its job. The program then gets SIGTERM
    /// (the image tools remove their partial output on it), and SIGKILL 5 s later.
    func run(_ arguments: [String], abandonIf abandon: (() -> Bool)? = nil) throws(PluginError) -> Finished {
        let child = try spawn(arguments, newSession: false)
        let (output, abandoned) = child.readStdout(abandonIf: abandon)
        var status: Int32 = 0
        var reaped = false
        if abandoned {
            kill(child.pid, SIGTERM)
            reaped = CaissonProcess.wait(child.pid, &status, options: 0, seconds: 5)
            if !reaped { kill(child.pid, SIGKILL) }
        }
        if !reaped {
            while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
        }
        return Finished(status: CaissonProcess.exitCode(status), stdout: output, stderr: child.readStderr(), abandoned: abandoned)
    }

    static let abandonCheckSeconds: Int32 = 5

    /// A container set up and stopped (`start --park`, or the entrypoint's shell stopping itself):
    /// the process to join, its environment as it printed it (empty for the entrypoint form), and
    /// what it wrote on stderr.
    struct Parked {
        var pid: Int32
        var printed: [UInt8]
        var stderr: [String]
    }

    /// Starts and waits until the container stops itself (WUNTRACED) or exits (setup failed).
    /// In a session of its own: if slurmstepd dies, the kernel sends a stopped orphan SIGHUP.
    /// `--park` prints the environment and closes stdout before stopping; an entrypoint's shell
    /// stops with stdout still open, so then stdout joins stderr in the log instead, and the wait
    /// is bounded by `entrypointTimeout` seconds (0: none), since the image's code runs first.
    func park(_ arguments: [String], printsEnvironment: Bool, entrypointTimeout: UInt32 = 0) throws(PluginError) -> Parked {
        let child = try spawn(arguments, newSession: true, stdoutToLog: !printsEnvironment)
        let printed = printsEnvironment ? child.readStdout().bytes : []
        var status: Int32 = 0
        if !printsEnvironment && entrypointTimeout > 0 {
            guard CaissonProcess.wait(child.pid, &status, options: WUNTRACED, seconds: entrypointTimeout) else {
                kill(-child.pid, SIGKILL)
                while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
                throw PluginError(.start, "the image's entrypoint did not run the step's command within \(entrypointTimeout) s "
                                  + "(entrypoint_timeout in plugstack.conf): it must end with 'exec \"$@\"'; "
                                  + "or run the step with --no-container-entrypoint", details: child.readStderr())
            }
        } else {
            while waitpid(child.pid, &status, WUNTRACED) < 0 {
                if errno != EINTR {
                    throw PluginError(.start, "waiting for caisson (pid \(child.pid)): \(String(cString: strerror(errno)))")
                }
            }
        }
        let stderr = child.readStderr()
        if cspank_wifstopped(status) == 0 {
            throw PluginError(.start, "caisson start failed (\(CaissonProcess.describe(status)))", details: stderr)
        }
        return Parked(pid: child.pid, printed: printed, stderr: stderr)
    }

    /// waitpid with a deadline, by polling: slurmstepd's signals are its own, so no alarm; the
    /// interval grows from 1 ms to 20 ms, so that a quick child costs little. False on timeout.
    static func wait(_ pid: Int32, _ status: inout Int32, options: Int32, seconds: UInt32) -> Bool {
        func nanoseconds() -> Int {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            return now.tv_sec * 1_000_000_000 + now.tv_nsec
        }
        let deadline = nanoseconds() + Int(seconds) * 1_000_000_000
        var interval = 1_000_000
        while true {
            let r = waitpid(pid, &status, options | WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { return true }
            if nanoseconds() >= deadline { return false }
            var pause = timespec(tv_sec: 0, tv_nsec: interval)
            nanosleep(&pause, nil)
            interval = min(interval * 2, 20_000_000)
        }
    }

    private struct Child {
        var pid: Int32
        var stdout: Int32
        var stderr: Int32

        /// Until end of file, or until `abandon` (asked whenever no output came for
        /// abandonCheckSeconds) returns true.
        func readStdout(abandonIf abandon: (() -> Bool)? = nil) -> (bytes: [UInt8], abandoned: Bool) {
            guard stdout >= 0 else { return ([], false) }
            defer { close(stdout) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                if let abandon {
                    var ready = pollfd(fd: stdout, events: Int16(POLLIN), revents: 0)
                    let r = poll(&ready, 1, CaissonProcess.abandonCheckSeconds * 1000)
                    if r == 0 {
                        if abandon() { return (bytes, true) }
                        continue
                    }
                    if r < 0 && errno == EINTR { continue }
                }
                let n = buffer.withUnsafeMutableBytes { read(stdout, $0.baseAddress, $0.count) }
                if n > 0 { bytes += buffer[0..<n]; continue }
                if n < 0 && errno == EINTR { continue }
                return (bytes, false)
            }
        }

        func readStderr() -> [String] {
            defer { close(stderr) }
            guard lseek(stderr, 0, SEEK_SET) == 0 else { return [] }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16384)
            while bytes.count < 1 << 20 {
                let n = buffer.withUnsafeMutableBytes { read(stderr, $0.baseAddress, $0.count) }
                if n > 0 { bytes += buffer[0..<n]; continue }
                if n < 0 && errno == EINTR { continue }
                break
            }
            return bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    private func spawn(_ arguments: [String], newSession: Bool, stdoutToLog: Bool = false) throws(PluginError) -> Child {
        let log = cspank_memfd("caisson-stderr")
        guard log >= 0 else { throw PluginError(.start, "memfd_create: \(String(cString: strerror(errno)))") }
        var pipeFDs: [Int32] = [-1, -1]
        if !stdoutToLog {
            guard cspank_pipe(&pipeFDs) == 0 else {
                close(log)
                throw PluginError(.start, "pipe: \(String(cString: strerror(errno)))")
            }
        }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = user.environment.map { strdup($0) } + [nil]
        let cwd = user.cwd.map { strdup($0) }
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
            cwd.map { free($0) }
        }
        let pid: pid_t = user.groups.withUnsafeBufferPointer { groups in
            argv.withUnsafeBufferPointer { argvBuffer in
                envp.withUnsafeBufferPointer { envpBuffer in
                    var request = cspank_spawn_request()
                    request.path = UnsafePointer(argv[0])
                    request.argv = argvBuffer.baseAddress
                    request.envp = envpBuffer.baseAddress
                    request.uid = user.uid
                    request.gid = user.gid
                    request.groups = groups.baseAddress
                    request.ngroups = Int32(groups.count)
                    request.stdout_fd = stdoutToLog ? log : pipeFDs[1]
                    request.stderr_fd = log
                    request.new_session = newSession ? 1 : 0
                    request.cwd = UnsafePointer(cwd ?? nil)
                    return cspank_spawn(&request)
                }
            }
        }
        let spawnErrno = errno
        if pipeFDs[1] >= 0 { close(pipeFDs[1]) }
        guard pid > 0 else {
            if pipeFDs[0] >= 0 { close(pipeFDs[0]) }
            close(log)
            throw PluginError(.start, "fork: \(String(cString: strerror(spawnErrno)))")
        }
        return Child(pid: pid, stdout: pipeFDs[0], stderr: log)
    }

    static func exitCode(_ status: Int32) -> Int32 {
        if cspank_wifexited(status) != 0 { return cspank_wexitstatus(status) }
        if cspank_wifsignaled(status) != 0 { return 128 + cspank_wtermsig(status) }
        return -1
    }

    static func describe(_ status: Int32) -> String {
        if cspank_wifexited(status) != 0 { return "exit status \(cspank_wexitstatus(status))" }
        if cspank_wifsignaled(status) != 0 { return "killed by signal \(cspank_wtermsig(status))" }
        return "status \(status)"
    }

    static func describe(exitCode: Int32) -> String {
        exitCode > 128 ? "killed by signal \(exitCode - 128)" : "exit status \(exitCode)"
    }
}
