import CaissonConfig
import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Enters a new user and mount namespace. Only these two: the container keeps the host's
/// network, IPC, PID namespace and cgroups, which MPI and Slurm rely on.
public enum UserNamespace {
    /// Must run while the process is single-threaded (the kernel refuses otherwise).
    public static func enter(identity: Identity, remapRoot: Bool) throws(StartError) {
        if caisson_unshare(caisson_CLONE_NEWUSER | caisson_CLONE_NEWNS) != 0 {
            let error = SystemError("unshare(user, mount)")
            let hint: String
            switch error.code {
            case EINVAL: hint = "the process was multi-threaded (a Caisson bug) or the kernel lacks user namespaces"
            case ENOSPC, EUSERS: hint = "the user namespace limit is reached or zero: run `caisson check` for the sysctl to change"
            default: hint = "unprivileged user namespaces are disabled here: run `caisson check` for the fix"
            }
            throw StartError(.namespaces, error, hint: hint)
        }
        let inside = remapRoot ? 0 : identity.uid
        let insideGroup = remapRoot ? 0 : identity.gid
        do {
            // setgroups must be denied before an unprivileged process may write gid_map.
            try Files.write("/proc/self/setgroups", "deny")
            try Files.write("/proc/self/uid_map", "\(inside) \(identity.uid) 1\n")
            try Files.write("/proc/self/gid_map", "\(insideGroup) \(identity.gid) 1\n")
            // Nothing mounted in here may propagate back to the host; host unmounts still reach us.
            try Mounter.setPropagation("/", MountFlag.slave | MountFlag.rec)
        } catch {
            throw StartError(.namespaces, error)
        }
    }

    /// Leaves the remapped root of `enter(identity:remapRoot: true)` for the caller's own uid and gid
    /// through a second user namespace nested in the first.
    ///
    /// A squashfs image is mounted by uid 0 of the outer namespace, so that the files the image
    /// gives to root belong to the caller, exactly as in a `caisson create`d tree; the command then
    /// runs as the caller in the inner one. Mounts stay those of the outer namespace.
    public static func enterNested(identity: Identity) throws(StartError) {
        if caisson_unshare(caisson_CLONE_NEWUSER) != 0 {
            throw StartError(.namespaces, SystemError("unshare(user)"), hint: "run `caisson check`")
        }
        do {
            try Files.write("/proc/self/uid_map", "\(identity.uid) 0 1\n")
            try Files.write("/proc/self/gid_map", "\(identity.gid) 0 1\n")
        } catch {
            throw StartError(.namespaces, error)
        }
    }
}
