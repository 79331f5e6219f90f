import CaissonShim

/// GNU-only constants that Swift's Glibc module leaves out.
public let O_PATH: Int32 = caisson_O_PATH
public enum StatvfsFlag {
    public static let rdonly = UInt(caisson_ST_RDONLY)
    public static let nosuid = UInt(caisson_ST_NOSUID)
    public static let nodev = UInt(caisson_ST_NODEV)
    public static let noexec = UInt(caisson_ST_NOEXEC)
    public static let noatime = UInt(caisson_ST_NOATIME)
    public static let nodiratime = UInt(caisson_ST_NODIRATIME)
    public static let relatime = UInt(caisson_ST_RELATIME)
}
