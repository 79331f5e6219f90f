import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

public enum MountFlag {
    public static let rdonly = UInt(caisson_MS_RDONLY)
    public static let nosuid = UInt(caisson_MS_NOSUID)
    public static let nodev = UInt(caisson_MS_NODEV)
    public static let noexec = UInt(caisson_MS_NOEXEC)
    public static let noatime = UInt(caisson_MS_NOATIME)
    public static let nodiratime = UInt(caisson_MS_NODIRATIME)
    public static let relatime = UInt(caisson_MS_RELATIME)
    public static let strictatime = UInt(caisson_MS_STRICTATIME)
    public static let remount = UInt(caisson_MS_REMOUNT)
    public static let bind = UInt(caisson_MS_BIND)
    public static let rec = UInt(caisson_MS_REC)
    public static let privateProp = UInt(caisson_MS_PRIVATE)
    public static let slave = UInt(caisson_MS_SLAVE)
    /// Flags that a bind remount may change; everything else is ignored on remount.
    static let perMount = rdonly | nosuid | nodev | noexec | noatime | nodiratime | relatime | strictatime
}

/// mount(2) onto targets given as file descriptors (through /proc/self/fd/N), so that the
/// kernel mounts exactly the directory the resolver opened, not whatever a path names by then.
public enum Mounter {
    public static func bind(_ source: String, onto target: FileDescriptor, recursive: Bool) throws(SystemError) {
        try check("bind-mount \(source) on", path: target.procPath) {
            mount(source, target.procPath, nil, MountFlag.bind | (recursive ? MountFlag.rec : 0), nil)
        }
    }

    public static func mountFilesystem(type: String, source: String, onto target: FileDescriptor, flags: UInt, data: String) throws(SystemError) {
        try check("mount \(type) on", path: target.procPath) {
            mount(source, target.procPath, type, flags, data.isEmpty ? nil : data)
        }
    }

    /// Applies per-mount flags to the mount at `mountRoot` (an fd opened *after* the mount was
    /// made, so it names the new mount). Flags the kernel locks in a user namespace (those of the
    /// source mount: ro, nosuid, nodev, noexec, atime) are carried over so the remount is allowed.
    public static func remount(_ mountRoot: FileDescriptor, flags: UInt) throws(SystemError) {
        var vfs = statvfs()
        try check("statvfs", path: mountRoot.procPath) { fstatvfs(mountRoot.rawValue, &vfs) }
        var locked: UInt = 0
        let f = UInt(vfs.f_flag)
        if f & StatvfsFlag.rdonly != 0 { locked |= MountFlag.rdonly }
        if f & StatvfsFlag.nosuid != 0 { locked |= MountFlag.nosuid }
        if f & StatvfsFlag.nodev != 0 { locked |= MountFlag.nodev }
        if f & StatvfsFlag.noexec != 0 { locked |= MountFlag.noexec }
        if f & StatvfsFlag.nodiratime != 0 { locked |= MountFlag.nodiratime }
        if f & StatvfsFlag.noatime != 0 { locked |= MountFlag.noatime }
        else if f & StatvfsFlag.relatime != 0 { locked |= MountFlag.relatime }
        else { locked |= MountFlag.strictatime }
        var wanted = (flags | locked) & MountFlag.perMount
        if wanted & MountFlag.noatime != 0 { wanted &= ~(MountFlag.relatime | MountFlag.strictatime) }
        try check("remount", path: mountRoot.procPath) {
            mount(nil, mountRoot.procPath, nil, MountFlag.remount | MountFlag.bind | wanted, nil)
        }
    }

    public static func setPropagation(_ target: String, _ propagation: UInt) throws(SystemError) {
        try check("set mount propagation on", path: target) { mount(nil, target, nil, propagation, nil) }
    }
}
