import CaissonConfig
import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// A .sqsh image mounted read-only with squashfuse, without extracting it.
///
/// Caisson mounts the FUSE filesystem itself (a user namespace may mount FUSE) and hands the
/// connection to `squashfuse_ll -f` through `/dev/fd/N`, so there is no wait for the server to
/// come up: requests queue in the kernel until it answers. The server is tethered to the
/// container's process (PR_SET_PDEATHSIG): when the command exits the server dies with it.
/// The image file is opened once, before the namespaces, and read lazily by the server, which is
/// what a parallel filesystem serving one image to thousands of nodes wants.
public struct SquashfsImage {
    public let path: String
    public let offset: UInt64
    let file: FileDescriptor

    /// Opens and checks the image: a clear error now beats a FUSE error later.
    public init(path: String, offset: UInt64 = 0) throws(StartError) {
        self.path = path
        self.offset = offset
        do {
            file = try FileDescriptor.open(path, O_RDONLY)
        } catch {
            throw StartError(.rootfs, "\(path): \(error.reason)", hint: "check the path")
        }
        var magic = [UInt8](repeating: 0, count: 4)
        let count = magic.withUnsafeMutableBytes { pread(file.rawValue, $0.baseAddress, 4, off_t(offset)) }
        guard count == 4, magic == Array("hsqs".utf8) else {
            throw StartError(.rootfs, "\(path) is not a squashfs image",
                             hint: "give a .sqsh made by `caisson import`, or a root filesystem directory")
        }
    }

    /// The FUSE server program: CAISSON_SQUASHFUSE, else squashfuse_ll (multi-threaded, low-level)
    /// or squashfuse from `searchPath` (default: PATH and the usual directories).
    public static func server(_ configuration: Configuration, searchPath: String? = nil) -> String? {
        if let configured = configuration["CAISSON_SQUASHFUSE"], !configured.isEmpty {
            return access(configured, X_OK) == 0 ? configured : nil
        }
        let path = searchPath ?? (getenv("PATH").map { String(cString: $0) } ?? "") + ":/usr/bin:/usr/local/bin:/bin"
        return HostCheck.findExecutable(["squashfuse_ll", "squashfuse"], searchPath: path)
    }

    /// Mounts the image on `target`. Call inside the container's user and mount namespaces, where
    /// the caller is uid 0: files the image gives to root then belong to the caller.
    func mount(onto target: FileDescriptor, server: String) throws(StartError) {
        let fuse: FileDescriptor
        do {
            fuse = try FileDescriptor.open("/dev/fuse", O_RDWR)
        } catch {
            throw StartError(.mounts, "/dev/fuse: \(error.reason)",
                             hint: "starting from a .sqsh needs FUSE: run `caisson check` for the fix, or `caisson create` the image and start that")
        }
        do {
            try Mounter.mountFilesystem(
                type: "fuse.squashfuse", source: path, onto: target,
                flags: MountFlag.nosuid | MountFlag.nodev | MountFlag.rdonly,
                data: "fd=\(fuse.rawValue),rootmode=40000,user_id=0,group_id=0")
        } catch {
            throw StartError(.mounts, "mounting \(path) with FUSE: \(error)", hint: "run `caisson check`")
        }
        var argv = [server, "-f"]
        if offset > 0 { argv += ["-o", "offset=\(offset)"] }
        argv += [file.procPath, "/dev/fd/\(fuse.rawValue)"]
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let keep = [file.rawValue, fuse.rawValue]
        let pid = withExtendedLifetime(fuse) { caisson_spawn_tethered(server, cArgs, keep, Int32(keep.count)) }
        if pid < 0 { throw StartError(.mounts, SystemError("fork", path: server)) }
        // Our copy of the connection closes on return: if the server dies, the kernel then fails
        // requests (ENOTCONN) instead of letting them wait forever for an answer nobody will send.
    }
}
