import CSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// A failure while writing a squashfs image: the step that failed, the libsquashfs error code
/// (a negative `SQFS_ERROR_*` value, or 0 for a failure found by this module itself) and, when
/// the failure was an I/O error on the image file, the errno behind it.
///
/// The description reads like "writing data block: I/O error (No space left on device)".
public struct SquashfsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What was being done, e.g. "writing data block" or "writing inode table".
    public let step: String
    /// The libsquashfs error code (negative), or 0 when the error did not come from libsquashfs.
    public let code: Int32
    /// The operating system error of the failed read or write on the image, when there was one.
    public let systemErrno: Int32?
    /// Extra words for errors found by this module (bad arguments, misuse).
    public let detail: String?

    public init(step: String, code: Int32, systemErrno: Int32? = nil, detail: String? = nil) {
        self.step = step
        self.code = code
        self.systemErrno = systemErrno
        self.detail = detail
    }

    /// An error found by this module rather than by libsquashfs.
    static func invalid(_ step: String, _ detail: String) -> SquashfsError {
        SquashfsError(step: step, code: 0, detail: detail)
    }

    /// What the libsquashfs error code means, in words.
    public var reason: String { Self.meaning(of: code) }

    /// True when the image's file system ran out of space (ENOSPC or EDQUOT).
    public var isOutOfSpace: Bool { systemErrno == ENOSPC || systemErrno == EDQUOT }

    public var description: String {
        var text = step + ": "
        if let detail {
            text += detail
        } else {
            text += reason
        }
        if let systemErrno, systemErrno != 0 {
            text += " (" + String(cString: strerror(systemErrno)) + ")"
        }
        return text
    }

    static func meaning(of code: Int32) -> String {
        switch code {
        case SQFS_ERROR_ALLOC.rawValue: return "out of memory"
        case SQFS_ERROR_IO.rawValue: return "I/O error"
        case SQFS_ERROR_COMPRESSOR.rawValue: return "compressor error"
        case SQFS_ERROR_INTERNAL.rawValue: return "internal libsquashfs error"
        case SQFS_ERROR_CORRUPTED.rawValue: return "data structure corrupted"
        case SQFS_ERROR_UNSUPPORTED.rawValue: return "unsupported feature or setting"
        case SQFS_ERROR_OVERFLOW.rawValue: return "numeric overflow"
        case SQFS_ERROR_OUT_OF_BOUNDS.rawValue: return "location out of bounds"
        case SFQS_ERROR_SUPER_MAGIC.rawValue: return "wrong super block magic"
        case SFQS_ERROR_SUPER_VERSION.rawValue: return "unsupported squashfs version"
        case SQFS_ERROR_SUPER_BLOCK_SIZE.rawValue: return "invalid block size"
        case SQFS_ERROR_NOT_DIR.rawValue: return "not a directory"
        case SQFS_ERROR_NO_ENTRY.rawValue: return "no such entry"
        case SQFS_ERROR_LINK_LOOP.rawValue: return "hard link loop"
        case SQFS_ERROR_NOT_FILE.rawValue: return "not a regular file"
        case SQFS_ERROR_ARG_INVALID.rawValue: return "invalid argument"
        case SQFS_ERROR_SEQUENCE.rawValue: return "calls out of sequence"
        case 0: return "failed"
        default: return "libsquashfs error \(code)"
        }
    }
}
