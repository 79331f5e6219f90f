import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Turns a directory tree on disk (a container's root file system, for `caisson export`) into a
/// FileNode tree whose file contents are already in a SquashfsWriter; the caller then calls
/// `writer.finish(root:)`.
///
/// The walk uses openat/fstatat(AT_SYMLINK_NOFOLLOW) relative to directory descriptors and
/// never follows a symlink (the root path itself may be one). Entries are visited in byte
/// order of their names, so two scans of an unchanged tree write identical images.
///
/// Kept: directories, regular files, symlinks (target verbatim), fifos, sockets, hard links
/// (one FileNode under several names when st_dev/st_ino repeat), permission bits & 0o7777 and
/// modification times (seconds). Not kept: ownership (images belong to root), extended
/// attributes, sub-second times. Skipped with a warning: device nodes, names or symlink
/// targets that are not valid UTF-8 (FileNode holds Swift strings), and anything on another
/// file system than the root's (a mount point becomes an empty directory, a file mounted over
/// is left out). An entry that vanishes during the scan is skipped with a warning. Anything
/// that cannot be read is an error naming the path.
public enum RootfsScanner {
    public static func scan(_ root: String, into writer: some FileDataSink,
                            warn: (String) -> Void = { _ in }) throws -> FileNode {
        let rootFd = try FileDescriptor.open(root, O_RDONLY | O_DIRECTORY)
        let rootStat = try statOrThrow(rootFd, path: root)
        let rootNode = FileNode.directory(permissions: UInt16(rootStat.st_mode & 0o7777),
                                          modificationTime: Int64(rootStat.st_mtim.tv_sec))
        let device = rootStat.st_dev

        var stack = [Level(fd: rootFd, node: rootNode, path: "", names: try listing(rootFd, path: root))]
        /// Non-directories with more than one link, by device and inode.
        var links: [HardLinkKey: FileNode] = [:]

        while !stack.isEmpty {
            let top = stack.count - 1
            guard stack[top].next < stack[top].names.count else {
                stack.removeLast()
                continue
            }
            let bytes = stack[top].names[stack[top].next]
            stack[top].next += 1
            let level = stack[top]
            let shown = level.path + "/" + String(decoding: bytes, as: UTF8.self)
            guard let name = String(validating: bytes, as: UTF8.self) else {
                warn("skipping \(shown): its name is not valid UTF-8")
                continue
            }
            let path = level.path + "/" + name
            // Swift compares strings by canonical equivalence: "é" precomposed and decomposed
            // are one key of `children`.
            if level.node.children[name] != nil {
                warn("skipping \(shown): its name equals another one in the directory up to Unicode normalisation")
                continue
            }
            var st = stat()
            if fstatat(level.fd.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT {
                    warn("skipping \(path): it vanished during the scan")
                    continue
                }
                throw SystemError("stat", path: root + path)
            }
            let permissions = UInt16(st.st_mode & 0o7777)
            let time = Int64(st.st_mtim.tv_sec)
            let type = st.st_mode & S_IFMT

            if type == S_IFDIR {
                let node = FileNode.directory(permissions: permissions, modificationTime: time)
                level.node.children[name] = node
                if st.st_dev != device {
                    warn("not descending into \(path): another file system is mounted there (kept as an empty directory)")
                    continue
                }
                let fd = try open(name, in: level.fd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, path: root + path)
                let opened = try statOrThrow(fd, path: root + path)
                guard opened.st_dev == st.st_dev, opened.st_ino == st.st_ino else {
                    throw SystemError("open", path: root + path, errno: ESTALE)
                }
                stack.append(Level(fd: fd, node: node, path: path, names: try listing(fd, path: root + path)))
                continue
            }
            if st.st_dev != device {
                warn("skipping \(path): it is on another file system (mounted over)")
                continue
            }
            let key = HardLinkKey(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            if st.st_nlink > 1, let node = links[key] {
                level.node.children[name] = node
                continue
            }

            let node: FileNode
            switch type {
            case S_IFREG:
                node = FileNode(kind: .regularFile, permissions: permissions, modificationTime: time,
                                data: try readFile(name, in: level.fd, expecting: st, path: root + path, writer: writer))
            case S_IFLNK:
                let target = try readLink(name, in: level.fd, size: Int(st.st_size), path: root + path)
                guard let text = String(validating: target, as: UTF8.self) else {
                    warn("skipping symlink \(path): its target is not valid UTF-8")
                    continue
                }
                node = FileNode(kind: .symlink(target: text), permissions: permissions, modificationTime: time)
            case S_IFIFO:
                node = FileNode(kind: .fifo, permissions: permissions, modificationTime: time)
            case S_IFSOCK:
                node = FileNode(kind: .socket, permissions: permissions, modificationTime: time)
            case S_IFCHR, S_IFBLK:
                warn("skipping \(type == S_IFCHR ? "character" : "block") device \(path): device nodes are not exported")
                continue
            default:
                warn("skipping \(path): unknown file type \(type)")
                continue
            }
            if st.st_nlink > 1 { links[key] = node }
            level.node.children[name] = node
        }
        return rootNode
    }

    /// A directory being listed: its descriptor, node, path from the root, sorted names.
    private struct Level {
        let fd: FileDescriptor
        let node: FileNode
        let path: String
        let names: [[UInt8]]
        var next = 0
    }

    private struct HardLinkKey: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    /// openat relative to a directory descriptor; the error names the whole path.
    private static func open(_ name: String, in dir: FileDescriptor, _ flags: Int32, path: String) throws(SystemError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(name, relativeTo: dir, flags)
        } catch {
            throw SystemError(error.operation, path: path, errno: error.code)
        }
    }

    private static func statOrThrow(_ fd: FileDescriptor, path: String) throws(SystemError) -> stat {
        var st = stat()
        if fstat(fd.rawValue, &st) != 0 { throw SystemError("stat", path: path) }
        return st
    }

    /// The names in a directory, without "." and "..", in byte order.
    private static func listing(_ dir: FileDescriptor, path: String) throws(SystemError) -> [[UInt8]] {
        // fdopendir takes ownership of its descriptor: give it a duplicate.
        let copy = fcntl(dir.rawValue, F_DUPFD_CLOEXEC, 0)
        if copy < 0 { throw SystemError("dup", path: path) }
        guard let stream = fdopendir(copy) else {
            let error = SystemError("opendir", path: path)
            Glibc.close(copy)
            throw error
        }
        defer { closedir(stream) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemError("readdir", path: path) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        return names
    }

    private static func readFile(_ name: String, in dir: FileDescriptor, expecting st: stat, path: String,
                                 writer: some FileDataSink) throws -> FileData? {
        // O_NONBLOCK: should the name have become a fifo since fstatat, the open must not hang.
        let fd = try open(name, in: dir, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, path: path)
        let opened = try statOrThrow(fd, path: path)
        guard opened.st_mode & S_IFMT == S_IFREG, opened.st_dev == st.st_dev, opened.st_ino == st.st_ino else {
            throw SystemError("open", path: path, errno: ESTALE)
        }
        let data = try writer.writeFileData { buffer in
            while true {
                let n = Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count)
                if n >= 0 { return n }
                if errno == EINTR { continue }
                throw SystemError("read", path: path)
            }
        }
        return data.size == 0 ? nil : data
    }

    private static func readLink(_ name: String, in dir: FileDescriptor, size: Int, path: String) throws(SystemError) -> [UInt8] {
        var capacity = max(size, 63) + 1
        while true {
            var buffer = [UInt8](repeating: 0, count: capacity)
            let n = buffer.withUnsafeMutableBytes { readlinkat(dir.rawValue, name, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
            if n < 0 { throw SystemError("readlink", path: path) }
            if n < capacity { return Array(buffer.prefix(n)) }
            capacity *= 2
            if capacity > 1 << 20 { throw SystemError("readlink", path: path, errno: ENAMETOOLONG) }
        }
    }
}
