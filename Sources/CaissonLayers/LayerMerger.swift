import CArchive
import CaissonSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// Applies OCI/Docker image layers, in order, to one in-memory `FileNode` tree.
///
/// Nothing is written to the host: entries become nodes, file contents go to the `FileDataSink`
/// as they stream, and every path — entry names, hard-link targets, symlinks met on the way to
/// an entry's directory — is resolved inside the tree, so a layer can only ever change the image.
///
/// Semantics (OCI image-spec layer.md, applied like an extraction into an empty root):
/// * Names lose leading `./` and `/`; `..` is resolved lexically and may not climb above the
///   root (`LayerError.Kind.escapesRoot`); `""`, `.`, `./` name the root, which may only be
///   updated by a directory entry.
/// * Missing parent directories are created (0755). A symlink met as a parent is followed inside
///   the tree (absolute targets from the image root, `..` stops at the root, at most 40 links), so
///   `a -> /etc` then `a/passwd` writes the image's `/etc/passwd`; through a dangling symlink the
///   missing directories are made where it points (inside the tree). Like securejoin, `..` after
///   a component that does not exist cancels it lexically. The last component of an entry is
///   never followed: an entry replaces a symlink, it does not write through it.
/// * Directory over directory updates the attributes and keeps the children; anything else
///   replaces the old node (and drops its subtree).
/// * `.wh.NAME` hides NAME and `.wh..wh..opq` hides every child of its directory, but only what
///   lower layers put there: what this layer wrote, before or after the whiteout, stays.
///   Whiteouts never create anything; one whose directory does not exist does nothing.
///   `.wh.`, `.wh..`, `.wh...` are errors; other `.wh..wh.*` names (aufs metadata) are skipped.
/// * A hard link (typeflag 1) makes the new name refer to the same `FileNode` as its target, which
///   must exist (in this layer or a lower one) and not be a directory; it may be a symlink (the
///   link itself, as containerd does). The hard-link entry's own mode and times are ignored.
/// * Block and character devices are skipped with a warning; FIFOs and sockets are kept;
///   set-id bits are kept (containers run nosuid); ownership is dropped (everything is root's).
/// * Extended attributes are kept in the `user.`, `trusted.` and `security.` namespaces (squashfs
///   has no others), except `trusted.overlay.*` and `user.overlay.*`, which would steer overlayfs.
public final class LayerMerger {
    public struct Stats: Sendable, Equatable {
        /// Layers applied completely.
        public var layers = 0
        /// Tar headers read (every entry, including whiteouts and skipped ones).
        public var entries = 0
        public var directories = 0
        public var regularFiles = 0
        public var symlinks = 0
        public var hardLinks = 0
        public var fifos = 0
        public var sockets = 0
        /// File content bytes handed to the sink.
        public var bytes: UInt64 = 0
        /// `.wh.NAME` entries (applied or without effect).
        public var whiteouts = 0
        /// `.wh..wh..opq` entries.
        public var opaqueWhiteouts = 0
        /// Nodes removed from the tree by whiteouts (a removed directory counts once).
        public var removedByWhiteouts = 0
        public var skippedDevices = 0
        /// Entries of unknown type and aufs `.wh..wh.*` metadata.
        public var skippedOther = 0
        /// Extended attributes not kept (overlay-private or outside user./trusted./security.).
        public var droppedXattrs = 0
        /// Bytes of uncompressed tar, and of layer bytes read (compressed or not).
        public var uncompressedBytes: UInt64 = 0
        public var compressedBytes: UInt64 = 0

        public init() {}
    }

    /// Nesting limit for directories (resolved depth). Real images stay far below it; it keeps
    /// recursive consumers of the tree (and node deallocation) within the stack.
    public static let maximumDepth = 1024
    /// Symlinks followed while resolving one path, as Linux's MAXSYMLINKS.
    public static let maximumSymlinks = 40

    /// The merged tree: the image root directory.
    public let root: FileNode
    public private(set) var stats = Stats()

    private let sink: FileDataSink
    private let warn: (String) -> Void
    private var failure: LayerError?

    // State of the layer being applied.
    private var layerName = ""
    private enum Origin { case created, updated }
    /// Which names each directory got from the current layer (`created`: the node is new in this
    /// layer; `updated`: a directory entry over a lower directory). Holds the directory so its
    /// identity cannot be reused while the layer is applied.
    private final class Written {
        let directory: FileNode
        var names: [String: Origin] = [:]
        init(_ directory: FileNode) { self.directory = directory }
    }
    private var written: [ObjectIdentifier: Written] = [:]
    /// Directories on the way to something the current layer wrote (held, as above).
    private var touched: [ObjectIdentifier: FileNode] = [:]
    private var layerDroppedXattrs = 0
    private var firstDroppedXattr: String?

    public init(sink: FileDataSink, warn: @escaping (String) -> Void) {
        self.sink = sink
        self.warn = warn
        root = FileNode.directory(permissions: 0o755)
    }

    /// Applies one layer. `read` pulls the layer's bytes — tar, or tar compressed with gzip, zstd,
    /// xz or bzip2, recognised by content — into the buffer and returns the count, 0 at the end.
    ///
    /// Returns the hex SHA-256 of the uncompressed tar (the layer's diff_id, without `sha256:`),
    /// to be compared with the image config's `rootfs.diff_ids`.
    ///
    /// On error the tree holds the entries applied before the failing one (and possibly the
    /// failing entry's new parent directories): it is not an image. The merger refuses further
    /// layers (`.unusable`); the caller discards it, and whatever the sink stored.
    @discardableResult
    public func apply(layer read: @escaping (UnsafeMutableRawBufferPointer) throws -> Int,
                      name: String) throws(LayerError) -> String {
        if let failure {
            throw LayerError(layer: name, entry: nil, kind: .unusable,
                             reason: "cannot be applied: layer \(failure.layer) failed before it and the tree is incomplete")
        }
        layerName = name
        written = [:]
        touched = [:]
        layerDroppedXattrs = 0
        firstDroppedXattr = nil
        defer {
            written = [:]
            touched = [:]
        }
        do throws(LayerError) {
            let stream = try LayerStream(layer: name, read: read)
            while try stream.next(warning: { warn("layer \(name): \($0)") }) {
                stats.entries += 1
                try applyEntry(stream)
            }
            let result = try stream.finish()
            stats.uncompressedBytes &+= result.uncompressed
            stats.compressedBytes &+= result.compressed
            stats.layers += 1
            if layerDroppedXattrs > 0, let first = firstDroppedXattr {
                warn("layer \(name): dropped \(layerDroppedXattrs) extended attribute(s) that an image cannot carry (first: \(first))")
            }
            return result.digest
        } catch {
            failure = error
            throw error
        }
    }

    // MARK: - Entries

    private static let typeMask: UInt32 = 0o170000
    private static let typeRegular: UInt32 = 0o100000
    private static let typeDirectory: UInt32 = 0o040000
    private static let typeSymlink: UInt32 = 0o120000
    private static let typeFIFO: UInt32 = 0o010000
    private static let typeSocket: UInt32 = 0o140000
    private static let typeCharacter: UInt32 = 0o020000
    private static let typeBlock: UInt32 = 0o060000

    private func applyEntry(_ stream: LayerStream) throws(LayerError) {
        guard let entry = stream.entry else { return }
        let name = Self.string(archive_entry_pathname(entry), archive_entry_pathname_utf8(entry)) ?? ""
        guard let components = Self.components(name) else {
            throw error(name, .escapesRoot, "escapes the image root")
        }
        let mode = UInt32(archive_entry_mode(entry))
        let type = mode & Self.typeMask
        let linkTarget = Self.string(archive_entry_hardlink(entry), archive_entry_hardlink_utf8(entry))

        guard let base = components.last else {
            // The root itself.
            guard linkTarget == nil, type == Self.typeDirectory else {
                throw error(name, .rootNotDirectory, "names the image root, which can only be a directory")
            }
            update(root, from: entry, path: "/")
            stats.directories += 1
            return
        }
        let parentComponents = components.dropLast()

        if base.hasPrefix(".wh.") {
            try whiteout(base: base, parent: parentComponents, name: name)
            return
        }

        if let linkTarget {
            try hardLink(name: name, parent: parentComponents, base: base, target: linkTarget)
            return
        }

        switch type {
        case Self.typeCharacter, Self.typeBlock:
            stats.skippedDevices += 1
            warn("layer \(layerName): skipped device /\(components.joined(separator: "/"))")
            return
        case Self.typeDirectory, Self.typeRegular, Self.typeSymlink, Self.typeFIFO, Self.typeSocket:
            break
        default:
            stats.skippedOther += 1
            warn("layer \(layerName): skipped /\(components.joined(separator: "/")) of unknown type \(String(mode >> 12, radix: 8))")
            return
        }

        let directory = try createDirectory(parentComponents, entry: name)
        let existing = directory.children[base]

        if type == Self.typeDirectory {
            if let existing, existing.isDirectory {
                update(existing, from: entry, path: name)
                mark(directory, base, .updated)
            } else {
                let node = FileNode.directory()
                update(node, from: entry, path: name)
                directory.children[base] = node
                mark(directory, base, .created)
            }
            stats.directories += 1
            return
        }

        let node: FileNode
        switch type {
        case Self.typeRegular:
            node = FileNode(kind: .regularFile, permissions: 0)
            var stored: UInt64 = 0
            do {
                node.data = try sink.writeFileData { buffer in
                    let count = try stream.readData(buffer)
                    stored &+= UInt64(count)
                    return count
                }
            } catch {
                if let dataError = stream.dataError {
                    throw LayerError(layer: layerName, entry: name, kind: dataError.kind, reason: dataError.reason)
                }
                throw self.error(name, .fileData, "could not be stored: \(error)")
            }
            stats.bytes &+= stored
            stats.regularFiles += 1
        case Self.typeSymlink:
            let target = Self.string(archive_entry_symlink(entry), archive_entry_symlink_utf8(entry)) ?? ""
            node = FileNode(kind: .symlink(target: target), permissions: 0o777)
            stats.symlinks += 1
        case Self.typeFIFO:
            node = FileNode(kind: .fifo, permissions: 0)
            stats.fifos += 1
        default:
            node = FileNode(kind: .socket, permissions: 0)
            stats.sockets += 1
        }
        update(node, from: entry, path: name)
        if case .symlink = node.kind { node.permissions = 0o777 }
        directory.children[base] = node
        mark(directory, base, .created)
    }

    /// Sets a node's permissions, modification time and extended attributes from its entry.
    private func update(_ node: FileNode, from entry: OpaquePointer, path: String) {
        node.permissions = UInt16(truncatingIfNeeded: UInt32(archive_entry_mode(entry)) & 0o7777)
        node.modificationTime = Int64(archive_entry_mtime(entry))
        var xattrs: [String: [UInt8]] = [:]
        if archive_entry_xattr_reset(entry) > 0 {
            // libarchive lists an attribute once per pax record naming it (LIBARCHIVE.xattr.* and
            // SCHILY.xattr.*): the last one wins, each name counts once.
            var dropped: Set<String> = []
            var namePointer: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(entry, &namePointer, &value, &size) == ARCHIVE_OK {
                guard let namePointer else { continue }
                let name = String(cString: namePointer)
                guard Self.keepsXattr(name) else {
                    if dropped.insert(name).inserted, firstDroppedXattr == nil { firstDroppedXattr = "\(name) on \(path)" }
                    continue
                }
                xattrs[name] = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            }
            stats.droppedXattrs += dropped.count
            layerDroppedXattrs += dropped.count
        }
        node.xattrs = xattrs
    }

    static func keepsXattr(_ name: String) -> Bool {
        if name.hasPrefix("trusted.overlay.") || name.hasPrefix("user.overlay.") { return false }
        return name.hasPrefix("user.") || name.hasPrefix("trusted.") || name.hasPrefix("security.")
    }

    // MARK: - Hard links

    private func hardLink(name: String, parent: ArraySlice<String>, base: String, target: String) throws(LayerError) {
        guard let targetComponents = Self.components(target) else {
            throw error(name, .escapesRoot, "is a hard link to \(target), which escapes the image root")
        }
        guard let targetBase = targetComponents.last else {
            throw error(name, .hardLinkTarget, "is a hard link to \(target), the image root, which is a directory")
        }
        let targetDirectory: FileNode
        switch try lookupDirectory(targetComponents.dropLast(), entry: name) {
        case .directory(let node): targetDirectory = node
        case .missing(let path):
            throw error(name, .hardLinkTarget, "is a hard link to \(target), which does not exist (no directory \(path))")
        case .notDirectory(let path):
            throw error(name, .hardLinkTarget, "is a hard link to \(target), which does not exist (\(path) is not a directory)")
        }
        guard let node = targetDirectory.children[targetBase] else {
            throw error(name, .hardLinkTarget, "is a hard link to \(target), which does not exist")
        }
        if node.isDirectory {
            throw error(name, .hardLinkTarget, "is a hard link to \(target), which is a directory")
        }
        let directory = try createDirectory(parent, entry: name)
        directory.children[base] = node
        mark(directory, base, .created)
        stats.hardLinks += 1
    }

    // MARK: - Whiteouts

    private func whiteout(base: String, parent: ArraySlice<String>, name: String) throws(LayerError) {
        let hidden = base.dropFirst(4)
        if base == ".wh..wh..opq" {
            stats.opaqueWhiteouts += 1
            guard case .directory(let directory) = try lookupDirectory(parent, entry: name) else { return }
            for child in Array(directory.children.keys) {
                hideLower(in: directory, name: child)
            }
            return
        }
        if hidden.hasPrefix(".wh.") {
            stats.skippedOther += 1
            warn("layer \(layerName): skipped aufs metadata /\((parent + [base]).joined(separator: "/"))")
            return
        }
        switch hidden {
        case "": throw error(name, .invalidWhiteout, "is a whiteout with an empty name")
        case ".": throw error(name, .invalidWhiteout, "is a whiteout for its own directory")
        case "..": throw error(name, .invalidWhiteout, "is a whiteout for its parent directory")
        default: break
        }
        stats.whiteouts += 1
        guard case .directory(let directory) = try lookupDirectory(parent, entry: name) else { return }
        hideLower(in: directory, name: String(hidden))
    }

    /// Hides what lower layers put at `directory/name`, keeping what the current layer wrote there
    /// or beneath it. Returns whether anything is left at that name.
    @discardableResult
    private func hideLower(in directory: FileNode, name: String) -> Bool {
        guard let child = directory.children[name] else { return false }
        switch written[ObjectIdentifier(directory)]?.names[name] {
        case .created?:
            return true
        case .updated?:
            for grandchild in Array(child.children.keys) { hideLower(in: child, name: grandchild) }
            return true
        case nil:
            if child.isDirectory, touched[ObjectIdentifier(child)] != nil {
                // A lower directory this layer wrote beneath without an entry of its own.
                for grandchild in Array(child.children.keys) { hideLower(in: child, name: grandchild) }
                if !child.children.isEmpty { return true }
            }
            directory.children[name] = nil
            stats.removedByWhiteouts += 1
            return false
        }
    }

    // MARK: - Paths

    /// The components of an archive path, with `.` and empty components removed and `..`
    /// resolved lexically; nil when `..` would climb above the root.
    static func components(_ path: String) -> [String]? {
        var result: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                if result.isEmpty { return nil }
                result.removeLast()
            default: result.append(String(part))
            }
        }
        return result
    }

    private enum Lookup {
        case directory(FileNode)
        case missing(String)
        case notDirectory(String)
    }

    /// The directory at `components`, following symlinks inside the tree, creating missing
    /// directories (0755). Throws when a component is not a directory.
    private func createDirectory(_ components: ArraySlice<String>, entry: String) throws(LayerError) -> FileNode {
        switch try resolve(components, create: true, entry: entry) {
        case .directory(let node): return node
        case .missing(let path), .notDirectory(let path):
            throw error(entry, .notADirectory, "cannot be created: \(path) is not a directory")
        }
    }

    private func lookupDirectory(_ components: ArraySlice<String>, entry: String) throws(LayerError) -> Lookup {
        try resolve(components, create: false, entry: entry)
    }

    /// Walks `components` from the root like securejoin does: symlinks met on the way are
    /// followed inside the tree (absolute targets restart at the root), `..` goes back one
    /// resolved component and stops at the root, and components that do not exist are carried
    /// lexically (so `missing/..` is harmless) and, when `create`, made as directories at the end.
    private func resolve(_ components: ArraySlice<String>, create: Bool, entry: String) throws(LayerError) -> Lookup {
        var stack: [FileNode] = [root]
        var names: [String] = []
        var missing: [String] = []
        var pending: [String] = components.reversed()
        var links = 0
        func here(_ last: String? = nil) -> String {
            "/" + (names + missing + (last.map { [$0] } ?? [])).joined(separator: "/")
        }

        while let component = pending.popLast() {
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                if !missing.isEmpty {
                    missing.removeLast()
                } else if stack.count > 1 {
                    stack.removeLast()
                    names.removeLast()
                }
                continue
            }
            if !missing.isEmpty {
                missing.append(component)
                continue
            }
            guard let child = stack[stack.count - 1].children[component] else {
                missing.append(component)
                continue
            }
            switch child.kind {
            case .directory:
                stack.append(child)
                names.append(component)
            case .symlink(let target):
                links += 1
                if links > Self.maximumSymlinks {
                    throw error(entry, .unresolvableSymlink,
                                "cannot be resolved: more than \(Self.maximumSymlinks) symbolic links at \(here(component))")
                }
                if target.isEmpty {
                    throw error(entry, .unresolvableSymlink, "cannot be resolved: \(here(component)) is a symlink with an empty target")
                }
                if target.hasPrefix("/") {
                    stack.removeSubrange(1...)
                    names.removeAll()
                }
                for part in target.split(separator: "/", omittingEmptySubsequences: true).reversed() {
                    pending.append(String(part))
                }
            default:
                return .notDirectory(here(component))
            }
        }
        if !missing.isEmpty {
            guard create else { return .missing(here()) }
            guard stack.count - 1 + missing.count <= Self.maximumDepth else {
                throw error(entry, .tooDeep, "is nested deeper than \(Self.maximumDepth) directories")
            }
            for component in missing {
                let node = FileNode.directory(permissions: 0o755)
                stack[stack.count - 1].children[component] = node
                mark(stack[stack.count - 1], component, .created)
                stack.append(node)
            }
        }
        if create {
            for node in stack { touched[ObjectIdentifier(node)] = node }
        }
        return .directory(stack[stack.count - 1])
    }

    private func mark(_ directory: FileNode, _ name: String, _ origin: Origin) {
        let id = ObjectIdentifier(directory)
        let record: Written
        if let existing = written[id] {
            record = existing
        } else {
            record = Written(directory)
            written[id] = record
        }
        if record.names[name] == .created, origin == .updated { return }
        record.names[name] = origin
    }

    private func error(_ entry: String, _ kind: LayerError.Kind, _ reason: String) -> LayerError {
        LayerError(layer: layerName, entry: entry, kind: kind, reason: reason)
    }

    /// A name from libarchive: the raw header bytes when they are UTF-8 (libarchive hands them
    /// back unconverted in the C locale), else its UTF-8 conversion, else the bytes decoded
    /// lossily.
    static func string(_ raw: UnsafePointer<CChar>?, _ utf8: UnsafePointer<CChar>?) -> String? {
        if let raw {
            let bytes = UnsafeRawBufferPointer(start: raw, count: strlen(raw))
            if let text = String(validating: bytes, as: UTF8.self) { return text }
            if let utf8 { return String(cString: utf8) }
            return String(decoding: bytes, as: UTF8.self)
        }
        if let utf8 { return String(cString: utf8) }
        return nil
    }
}
