/// One file of an image being built: the merged result of all layers, before it is written.
///
/// Layers stream into a tree of these (CaissonLayers); SquashfsWriter renders the final tree.
/// A node is a class because identity matters: a hard link is the same node under two names.
/// Regular-file contents are not held here: they are written to the image as the layer streams
/// and referenced by `data`.
public final class FileNode {
    public enum Kind: Equatable, Sendable {
        case directory
        case regularFile
        case symlink(target: String)
        case fifo
        case socket
    }

    public var kind: Kind
    /// Permission bits including setuid, setgid and sticky (mask 0o7777). Ownership is not kept:
    /// every file in an image belongs to root (uid/gid 0), as enroot's images do.
    public var permissions: UInt16
    /// Seconds since the epoch.
    public var modificationTime: Int64
    /// Extended attributes in the `user.`, `trusted.`, `security.` namespaces, as written by the layer.
    public var xattrs: [String: [UInt8]]
    /// Children of a directory by name (names are single path components, never "." or "..").
    public var children: [String: FileNode]
    /// Where a regular file's contents went in the image, and how long they are.
    public var data: FileData?

    public init(kind: Kind, permissions: UInt16, modificationTime: Int64 = 0,
                xattrs: [String: [UInt8]] = [:], data: FileData? = nil) {
        self.kind = kind
        self.permissions = permissions
        self.modificationTime = modificationTime
        self.xattrs = xattrs
        self.children = [:]
        self.data = data
    }

    public static func directory(permissions: UInt16 = 0o755, modificationTime: Int64 = 0) -> FileNode {
        FileNode(kind: .directory, permissions: permissions, modificationTime: modificationTime)
    }

    public var isDirectory: Bool { kind == .directory }
}

/// A handle to file contents already written into the image by `SquashfsWriter.writeFileData`.
public struct FileData: Sendable, Equatable {
    public let id: Int
    public let size: UInt64

    public init(id: Int, size: UInt64) {
        self.id = id
        self.size = size
    }
}

/// Where file contents go while layers stream: the squashfs writer, or a test double that keeps
/// them in memory.
public protocol FileDataSink: AnyObject {
    /// Reads the whole stream through `read` (which fills the buffer and returns the byte count,
    /// 0 at the end) and stores it, returning a handle for a FileNode.
    func writeFileData(_ read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> FileData
}
