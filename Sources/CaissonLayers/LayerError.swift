/// Why a layer could not be applied. Names the layer, the entry (as written in the archive) when
/// one is at fault, and the reason.
///
/// After any `LayerError` the merger's tree is partly applied (see `LayerMerger.apply`): the
/// caller discards the whole tree.
public struct LayerError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An entry name or hard-link target climbs above the image root (`../x`, `a/../../x`, `..`).
        case escapesRoot
        /// A whiteout that names nothing valid: `.wh.` (empty), `.wh..` (the directory itself),
        /// `.wh...` (the parent directory).
        case invalidWhiteout
        /// A path component that must be a directory is a file, FIFO or socket (or a symlink to one).
        case notADirectory
        /// An entry for the image root (`./`, `""`, `/`) that is not a directory.
        case rootNotDirectory
        /// A hard link whose target is missing or is a directory.
        case hardLinkTarget
        /// More than 40 symbolic links, or a symlink with an empty target, on the way to an entry's parent.
        case unresolvableSymlink
        /// An entry's directory would be nested deeper than `LayerMerger.maximumDepth`.
        case tooDeep
        /// The uncompressed stream is not a readable tar archive (not a tar, corrupt or truncated).
        case archive
        /// The compressed stream is corrupt or truncated (gzip, zstd, xz, bzip2).
        case decompression
        /// The layer's `read` function threw.
        case input
        /// The `FileDataSink` failed to store a file's contents.
        case fileData
        /// An earlier `apply` failed; the merger's tree is incomplete and takes no more layers.
        case unusable
    }

    /// The `name` given to `LayerMerger.apply`.
    public let layer: String
    /// The entry's path as written in the archive, when one entry is at fault.
    public let entry: String?
    public let kind: Kind
    /// Why, phrased to follow "entry PATH" (or "layer NAME:" when there is no entry).
    public let reason: String

    public init(layer: String, entry: String?, kind: Kind, reason: String) {
        self.layer = layer
        self.entry = entry
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        if let entry {
            return "layer \(layer): entry \(entry.isEmpty ? "\"\"" : entry) \(reason)"
        }
        return "layer \(layer): \(reason)"
    }
}
