#if canImport(Glibc)
import Glibc
#endif

/// An owned file descriptor, closed when the last reference goes away.
public final class FileDescriptor: @unchecked Sendable {
    public let rawValue: Int32

    public init(adopting rawValue: Int32) { self.rawValue = rawValue }
    deinit { Glibc.close(rawValue) }

    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(SystemError) -> FileDescriptor {
        let fd = try check("open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(adopting: fd)
    }

    public static func open(_ name: String, relativeTo dir: FileDescriptor, _ flags: Int32, mode: mode_t = 0) throws(SystemError) -> FileDescriptor {
        let fd = try check("open", path: name) { Glibc.openat(dir.rawValue, name, flags | O_CLOEXEC, mode) }
        return FileDescriptor(adopting: fd)
    }

    /// The path through which the kernel lets other calls reach this descriptor's file.
    public var procPath: String { "/proc/self/fd/\(rawValue)" }

    public func stat() throws(SystemError) -> Glibc.stat {
        var st = Glibc.stat()
        try check("fstat") { fstat(rawValue, &st) }
        return st
    }

    public func readAll() throws(SystemError) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try check("read") { buffer.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress, $0.count) } }
            if n == 0 { return result }
            result.append(contentsOf: buffer[0..<n])
        }
    }

    public func write(_ bytes: some Collection<UInt8>) throws(SystemError) {
        let data = Array(bytes)
        var offset = 0
        while offset < data.count {
            let n = try check("write") { data.withUnsafeBytes { Glibc.write(rawValue, $0.baseAddress! + offset, data.count - offset) } }
            offset += n
        }
    }

    public func write(_ text: String) throws(SystemError) { try write(Array(text.utf8)) }
}
