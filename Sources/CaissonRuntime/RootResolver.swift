import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Resolves paths *inside* a container root, the way the container itself would see them:
/// absolute symlinks restart at the container root and `..` never climbs above it. Mount
/// targets, created files and the working directory all go through here, so an image's
/// symlink can never send a mount, a new file or a chmod onto the host.
///
/// The kernel does the walk with openat2(RESOLVE_IN_ROOT) where available (Linux ≥ 5.6);
/// otherwise a userspace walk with O_NOFOLLOW on every component gives the same answers.
public struct RootResolver {
    public enum Strategy: Sendable { case kernel, userspace }

    public let root: FileDescriptor
    public let strategy: Strategy

    public init(root: FileDescriptor, strategy: Strategy? = nil) {
        self.root = root
        self.strategy = strategy ?? RootResolver.defaultStrategy
    }

    /// openat2 is tried once per process; `CAISSON_RESOLVE=userspace` forces the fallback (tests use it).
    nonisolated(unsafe) static var defaultStrategy: Strategy = {
        if let forced = getenv("CAISSON_RESOLVE"), String(cString: forced) == "userspace" { return .userspace }
        let fd = caisson_openat2(AT_FDCWD, "/", UInt64(O_PATH | O_CLOEXEC), 0, caisson_RESOLVE_IN_ROOT)
        if fd >= 0 { close(fd); return .kernel }
        return .userspace
    }()

    /// Opens `path` (interpreted inside the root) with `flags`. Magic links such as
    /// /proc/self/fd/N are refused: they would lead outside the root.
    public func open(_ path: String, _ flags: Int32 = O_PATH) throws(SystemError) -> FileDescriptor {
        switch strategy {
        case .kernel:
            let fd = caisson_openat2(root.rawValue, path, UInt64(flags | O_CLOEXEC), 0,
                                     caisson_RESOLVE_IN_ROOT | caisson_RESOLVE_NO_MAGICLINKS)
            if fd < 0 { throw SystemError("resolve", path: path) }
            return FileDescriptor(adopting: fd)
        case .userspace:
            return try walk(path, flags)
        }
    }

    private static let maxSymlinks = 40

    private func walk(_ path: String, _ flags: Int32) throws(SystemError) -> FileDescriptor {
        if path.isEmpty { throw SystemError("resolve", path: path, errno: ENOENT) }
        var pending = Path.components(path).reversed() as [String]
        var stack: [FileDescriptor] = []   // directories below the root, innermost last
        var followed = 0
        var current = root
        while let name = pending.popLast() {
            if name == "." { continue }
            if name == ".." {
                if !stack.isEmpty { stack.removeLast() }
                current = stack.last ?? root
                continue
            }
            let isLast = pending.isEmpty
            let fd = openat(current.rawValue, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { throw SystemError("resolve", path: path) }
            let next = FileDescriptor(adopting: fd)
            let st = try next.stat()
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                followed += 1
                if followed > RootResolver.maxSymlinks { throw SystemError("resolve", path: path, errno: ELOOP) }
                let target = try readLink(in: current, name)
                if RootResolver.isMagicLink(target, in: current) {
                    throw SystemError("resolve", path: path, errno: ELOOP)  // as RESOLVE_NO_MAGICLINKS does
                }
                // Links are read as text and re-walked here, never followed by the kernel, so even a
                // /proc magic link only names a path inside the root.
                if target.hasPrefix("/") {
                    stack.removeAll()
                    current = root
                }
                pending.append(contentsOf: Path.components(target).reversed())
            case S_IFDIR:
                stack.append(next)
                current = next
            default:
                if !isLast { throw SystemError("resolve", path: path, errno: ENOTDIR) }
                current = next
                stack.append(next)
            }
        }
        // "file/" names a directory: the kernel answers ENOTDIR when it is not one.
        if path.hasSuffix("/"), try current.stat().st_mode & S_IFMT != S_IFDIR {
            throw SystemError("resolve", path: path, errno: ENOTDIR)
        }
        if flags == O_PATH { return current }
        let fd = Glibc.open(current.procPath, flags | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: path) }
        return FileDescriptor(adopting: fd)
    }

    /// procfs links such as /proc/self/fd/N, cwd, root and exe name kernel objects, not paths: their
    /// text is absolute or `type:[inode]`. Ordinary procfs links (/proc/self, /proc/mounts) are relative.
    static func isMagicLink(_ target: String, in dir: FileDescriptor) -> Bool {
        guard caisson_fs_type(dir.rawValue) == CAISSON_PROC_SUPER_MAGIC else { return false }
        return target.hasPrefix("/") || target.contains(":[")
    }

    private func readLink(in dir: FileDescriptor, _ name: String) throws(SystemError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(dir.rawValue, name, &buffer, buffer.count - 1)
        if n < 0 { throw SystemError("readlink", path: name) }
        return String(nulTerminated: buffer)
    }

    public enum Kind: String, Sendable { case directory = "dir", file }

    /// Opens `path`, creating it (and missing parent directories) when absent. Creation happens
    /// with mkdirat/openat(O_EXCL|O_NOFOLLOW) relative to a parent that was itself resolved in
    /// the root, so a symlinked parent cannot redirect it.
    public func openOrCreate(_ path: String, as kind: Kind) throws(SystemError) -> FileDescriptor {
        try openOrCreate(path, as: kind, linksLeft: RootResolver.maxSymlinks)
    }

    private func openOrCreate(_ path: String, as kind: Kind, linksLeft: Int) throws(SystemError) -> FileDescriptor {
        if linksLeft <= 0 { throw SystemError("create", path: path, errno: ELOOP) }
        do {
            return try open(path)
        } catch where error.code == ENOENT {
            let name = Path.basename(path)
            let parentPath = Path.parent(path)
            if name == "." || name == ".." || Path.components(path).isEmpty {
                throw SystemError("create", path: path, errno: EINVAL)
            }
            let parent = try openOrCreate(parentPath, as: .directory, linksLeft: linksLeft)
            let parentDir = try FileDescriptor.open(parent.procPath, O_RDONLY | O_DIRECTORY)
            switch kind {
            case .directory:
                if mkdirat(parentDir.rawValue, name, 0o755) != 0 && errno != EEXIST {
                    throw SystemError("mkdir", path: path)
                }
            case .file:
                let fd = openat(parentDir.rawValue, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                if fd < 0 && errno != EEXIST { throw SystemError("create", path: path) }
                if fd >= 0 { close(fd) }
            }
            do {
                return try open(path)
            } catch where error.code == ENOENT {
                // The name is a dangling symlink: create what it points to, read as a path inside the
                // root (an absolute target starts again at the container's /, never the host's).
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                guard readlinkat(parentDir.rawValue, name, &buffer, buffer.count - 1) > 0 else { throw error }
                let target = String(nulTerminated: buffer)
                let inRoot = target.hasPrefix("/") ? target : Path.join(parentPath, target)
                return try openOrCreate(inRoot, as: kind, linksLeft: linksLeft - 1)
            }
        }
    }

    /// Reads a whole file from inside the root; nil if it is absent.
    public func readFile(_ path: String) -> String? {
        guard let fd = try? open(path, O_RDONLY), let st = try? fd.stat(), st.st_mode & S_IFMT == S_IFREG,
              let bytes = try? fd.readAll() else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
