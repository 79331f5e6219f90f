#if canImport(Glibc)
import Glibc
#endif

/// Whole-tree operations on directories a user owns (containers, partial unpacks), done with
/// *at() calls on directory descriptors opened with O_NOFOLLOW: a symlink inside the tree is
/// removed or counted, never followed, so a hostile tree cannot redirect them outside itself.
public enum FileTree {
    /// Removes `name` in `parent` and everything below it. Directories without write or search
    /// permission (an image's 0555 /usr, say) are made writable first: they are the caller's own.
    public static func remove(_ path: String) throws(SystemError) {
        let parent = try FileDescriptor.open(Path.parent(path), O_RDONLY | O_DIRECTORY)
        try remove(Path.basename(path), in: parent)
    }

    public static func remove(_ name: String, in parent: FileDescriptor) throws(SystemError) {
        if unlinkat(parent.rawValue, name, 0) == 0 || errno == ENOENT { return }
        guard errno == EISDIR || errno == EPERM else { throw SystemError("remove", path: name) }
        var st = stat()
        try check("stat", path: name) { fstatat(parent.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) }
        if st.st_mode & 0o700 != 0o700 { _ = fchmodat(parent.rawValue, name, (st.st_mode & 0o7777) | 0o700, 0) }
        let dir = try FileDescriptor.open(name, relativeTo: parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        for child in try entries(dir) {
            try remove(child, in: dir)
        }
        try check("rmdir", path: name) { unlinkat(parent.rawValue, name, AT_REMOVEDIR) }
    }

    /// Bytes the tree occupies on disk (hard links counted once) and how many entries it has.
    public static func usage(_ path: String) -> (bytes: UInt64, entries: Int) {
        guard let root = try? FileDescriptor.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) else { return (0, 0) }
        var seen = Set<UInt64>()
        var bytes: UInt64 = 0
        var count = 0
        func walk(_ dir: FileDescriptor) {
            for name in (try? entries(dir)) ?? [] {
                var st = stat()
                guard fstatat(dir.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                count += 1
                if st.st_nlink > 1 && st.st_mode & S_IFMT != S_IFDIR {
                    guard seen.insert(UInt64(st.st_ino)).inserted else { continue }
                }
                bytes += UInt64(st.st_blocks) * 512
                if st.st_mode & S_IFMT == S_IFDIR,
                   let child = try? FileDescriptor.open(name, relativeTo: dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
                    walk(child)
                }
            }
        }
        walk(root)
        return (bytes, count)
    }

    /// The names in an open directory, without "." and "..".
    public static func entries(_ dir: FileDescriptor) throws(SystemError) -> [String] {
        // fdopendir takes ownership of its descriptor: give it a duplicate.
        let copy = try check("dup") { fcntl(dir.rawValue, F_DUPFD_CLOEXEC, 0) }
        guard let stream = fdopendir(copy) else {
            let error = SystemError("opendir")
            close(copy)
            throw error
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
