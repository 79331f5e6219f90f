import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Runs a command in a container that is already running: joins the user and mount namespaces
/// of one of its processes, as `nsenter` would, but in the order the kernel allows for an
/// unprivileged caller — a container started from an image has a user namespace nested in
/// another, and its mount namespace belongs to the outer one, so that one is joined first.
/// Used by `caisson exec`, and by Slurm tasks joining their step's container.
public struct ContainerJoin {
    public let pid: Int32

    public init(pid: Int32) { self.pid = pid }

    /// The running container's own environment, from /proc/PID/environ.
    public func environment() throws(StartError) -> ContainerEnvironment {
        let bytes: [UInt8]
        do { bytes = try FileDescriptor.open("/proc/\(pid)/environ", O_RDONLY).readAll() } catch {
            throw StartError(.environment, "process \(pid): \(error.reason)",
                             hint: error.code == EACCES ? "the process is not yours" : nil)
        }
        var env = ContainerEnvironment()
        for entry in bytes.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if let eq = text.firstIndex(of: "=") {
                env.set(String(text[..<eq]), String(text[text.index(after: eq)...]))
            }
        }
        return env
    }

    /// Whether the process sees itself as root (a `--root` container): then the fakeroot filter applies.
    public func isFakeroot() -> Bool {
        guard let map = try? Files.read("/proc/\(pid)/uid_map") else { return false }
        return map.split(separator: "\n").contains { $0.split(separator: " ").first == "0" }
    }

    /// Joins the namespaces; afterwards the root and working directory are the container's root.
    public func join() throws(StartError) {
        let userNS: FileDescriptor
        let mountNS: FileDescriptor
        do throws(SystemError) {
            guard kill(pid, 0) == 0 || errno == EPERM else { throw SystemError("find process", path: "\(pid)") }
            userNS = try FileDescriptor.open("/proc/\(pid)/ns/user", O_RDONLY)
            mountNS = try FileDescriptor.open("/proc/\(pid)/ns/mnt", O_RDONLY)
        } catch {
            throw StartError(.namespaces, "process \(pid): \(error.reason)",
                             hint: error.code == EACCES || error.code == EPERM ? "the process is not yours" : "is the container still running? see `caisson list --fancy`")
        }
        let own = Files.stat("/proc/self/ns/user")?.st_ino
        guard let target = try? userNS.stat().st_ino, target != own else {
            throw StartError(.namespaces, "process \(pid) is not in a container (it shares your user namespace)")
        }
        // The chain of user namespaces from ours (exclusive) down to the target's.
        var chain = [userNS]
        while true {
            let parent = caisson_ns_get_parent(chain[chain.count - 1].rawValue)
            if parent < 0 { break }  // EPERM: above ours; we are not an ancestor
            let fd = FileDescriptor(adopting: parent)
            if (try? fd.stat().st_ino) == own { break }
            chain.append(fd)
        }
        let ownerFD = caisson_ns_get_userns(mountNS.rawValue)
        let owner = ownerFD >= 0 ? (try? FileDescriptor(adopting: ownerFD).stat().st_ino) : nil
        var mountJoined = false
        do {
            if owner == own {
                try check("setns(mount)") { caisson_setns(mountNS.rawValue, caisson_CLONE_NEWNS) }
                mountJoined = true
            }
            for ns in chain.reversed() {
                try check("setns(user)") { caisson_setns(ns.rawValue, caisson_CLONE_NEWUSER) }
                if !mountJoined, (try? ns.stat().st_ino) == owner {
                    try check("setns(mount)") { caisson_setns(mountNS.rawValue, caisson_CLONE_NEWNS) }
                    mountJoined = true
                }
            }
            if !mountJoined { try check("setns(mount)") { caisson_setns(mountNS.rawValue, caisson_CLONE_NEWNS) } }
        } catch {
            throw StartError(.namespaces, "joining process \(pid): \(error)",
                             hint: error.code == EPERM ? "only the container's owner can join it" : nil)
        }
    }

    /// Joins, then moves to `workdir` (resolved inside the container), else to `inherited` (a
    /// directory the caller was in, kept if the container has it), else to the root. For Slurm
    /// tasks, which Slurm itself then execs: nothing here closes descriptors or changes signals.
    public func enter(workdir: String?, inherited: String?) throws(StartError) {
        try join()
        do {
            let resolver = RootResolver(root: try FileDescriptor.open("/", O_PATH | O_DIRECTORY))
            let dir: FileDescriptor
            if let workdir {
                do { dir = try resolver.open(workdir, O_RDONLY | O_DIRECTORY) } catch {
                    throw StartError(.workdir, "\(workdir): \(error.reason)", hint: "give a directory that exists in the container")
                }
            } else if let inherited, let found = try? resolver.open(inherited, O_RDONLY | O_DIRECTORY) {
                dir = found
            } else {
                dir = try FileDescriptor.open("/", O_RDONLY | O_DIRECTORY)
            }
            try check("fchdir") { fchdir(dir.rawValue) }
        } catch {
            throw StartError.wrap(.workdir, error)
        }
    }

    /// The fakeroot filter of a `--root` container, for a process that joined it (sets no_new_privs).
    public static func installFakeroot() throws(StartError) {
        try Container.denyNewPrivileges(fakeroot: true)
    }

    /// Joins, moves to `workdir` or the process's own working directory, and execs `argv` with
    /// `environment`, keeping only descriptors 0-2 and `keeping`.
    public func exec(_ argv: [String], environment: ContainerEnvironment, workdir: String?,
                     keeping: [Int32] = []) throws(StartError) -> Never {
        let fakeroot = isFakeroot()
        try enter(workdir: workdir, inherited: Files.readLink("/proc/\(pid)/cwd"))
        try Container.seal(keeping: keeping, fakeroot: fakeroot)
        try Container.execute(argv.isEmpty ? ["/bin/sh"] : argv, environment)
    }
}
