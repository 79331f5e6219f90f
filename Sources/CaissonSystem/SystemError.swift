#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: what was attempted, on which path, and the errno the kernel gave.
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public let path: String?
    public let code: Int32

    public init(_ operation: String, path: String? = nil, errno code: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var reason: String { String(cString: strerror(code)) }

    public var description: String {
        if let path { return "\(operation) \(path): \(reason)" }
        return "\(operation): \(reason)"
    }
}

/// Retries a call interrupted by a signal; throws `SystemError` when it returns -1.
@discardableResult
public func check<T: BinaryInteger>(_ operation: @autoclosure () -> String, path: String? = nil, _ call: () -> T) throws(SystemError) -> T {
    while true {
        let result = call()
        if result != -1 { return result }
        if errno == EINTR { continue }
        throw SystemError(operation(), path: path)
    }
}
