#if canImport(Glibc)
import Glibc
#endif

/// Whole-file and directory helpers over plain POSIX calls. The runtime avoids Foundation
/// so that `caisson start` stays single-threaded and fast to load.
public enum Files {
    public static func read(_ path: String) throws(SystemError) -> String {
        let fd = try FileDescriptor.open(path, O_RDONLY)
        return String(decoding: try fd.readAll(), as: UTF8.self)
    }

    /// Reads a file if it exists; nil when it does not.
    public static func readIfPresent(_ path: String) throws(SystemError) -> String? {
        do { return try read(path) } catch where error.code == ENOENT || error.code == ENOTDIR { return nil }
    }

    /// Writes a file in one piece: a temporary sibling, fsync, rename. Readers never see half of it.
    public static func writeAtomically(_ path: String, _ contents: String, mode: mode_t = 0o644) throws(SystemError) {
        let temporary = "\(path).tmp.\(getpid())"
        do {
            let fd = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: mode)
            try fd.write(contents)
            try check("fsync", path: temporary) { fsync(fd.rawValue) }
            try check("rename", path: path) { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    public static func write(_ path: String, _ contents: String, mode: mode_t = 0o644) throws(SystemError) {
        let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        try fd.write(contents)
    }

    public static func lstat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return Glibc.lstat(path, &st) == 0 ? st : nil
    }

    public static func stat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return posixStat(path, &st) == 0 ? st : nil
    }

    public static func isDirectory(_ path: String) -> Bool {
        guard let st = stat(path) else { return false }
        return st.st_mode & S_IFMT == S_IFDIR
    }

    public static func exists(_ path: String) -> Bool { lstat(path) != nil }

    /// A symlink's target, or nil when `path` is not a readable symlink.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        return n < 0 ? nil : String(nulTerminated: Array(buffer[0..<n]) + [0])
    }

    /// Names in a directory, sorted, without "." and ".."; empty when it does not exist.
    public static func list(_ path: String) -> [String] {
        guard let dir = try? FileDescriptor.open(path, O_RDONLY | O_DIRECTORY) else { return [] }
        return ((try? FileTree.entries(dir)) ?? []).sorted()
    }

    /// Creates a directory and its parents; existing directories are fine.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if isDirectory(path) { return }
        let parent = Path.parent(path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemError("mkdir", path: path) }
    }
}

/// Lexical path helpers. They never touch the filesystem, so they never follow symlinks.
public enum Path {
    public static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    public static func parent(_ path: String) -> String {
        var parts = components(path)
        if parts.isEmpty { return path.hasPrefix("/") ? "/" : "." }
        parts.removeLast()
        let joined = parts.joined(separator: "/")
        if path.hasPrefix("/") { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    public static func basename(_ path: String) -> String { components(path).last ?? path }

    public static func join(_ base: String, _ rest: String) -> String {
        if rest.hasPrefix("/") { return rest }
        if base.hasSuffix("/") { return base + rest }
        return base + "/" + rest
    }

    /// Makes a path absolute against the current directory, without resolving symlinks.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return join(currentDirectory(), path)
    }

    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(nulTerminated: buffer)
    }
}

private func posixStat(_ path: String, _ st: inout stat) -> Int32 { stat(path, &st) }

extension String {
    /// Decodes a NUL-terminated C buffer (the non-deprecated spelling of `String(cString:)` for arrays).
    public init(nulTerminated buffer: [CChar]) {
        let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
