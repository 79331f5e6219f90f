/// Everything that describes one `caisson start`, after flags and configuration are merged.
public struct ContainerSpec: Sendable {
    /// What the container's root filesystem comes from.
    public enum Source: Sendable, Equatable {
        /// A root filesystem directory (an unpacked image or a `caisson create`d container).
        case directory(String)
        /// A squashfs image, mounted with FUSE; `offset` is where the image starts in the file.
        case squashfs(String, offset: UInt64)
    }

    public var source: Source
    /// The directory or image file the root comes from, for messages.
    public var rootfs: String {
        switch source {
        case .directory(let path), .squashfs(let path, _): return path
        }
    }
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
    /// Set the container up, then stop instead of running a command (see `Container.park`).
    public var park = false

    public init(rootfs: String) { self.source = .directory(rootfs) }
    public init(source: Source) { self.source = source }
}
