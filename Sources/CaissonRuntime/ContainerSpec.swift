/// Everything that describes one `caisson start`, after flags and configuration are merged.
public struct ContainerSpec: Sendable {
    public var rootfs: String
    /// The command and its arguments; empty runs the image's entrypoint (/etc/rc) or a shell.
    public var command: [String] = []
    /// Run the image's /etc/rc with `command` as its arguments, as enroot does.
    public var useEntrypoint = false
    public var writable = false
    public var remapRoot = false
    public var mountHome = false
    public var restrictDev = false
    public var mounts: [MountEntry] = []
    /// `--env` flags: NAME=VALUE or NAME.
    public var environment: [String] = []
    public var workdir: String?
    /// Descriptors besides 0-2 that stay open in the container.
    public var keepFileDescriptors: [Int32] = []

    public init(rootfs: String) { self.rootfs = rootfs }
}
