import CSquashfs
#if canImport(Glibc)
import Glibc
#endif

/// Writes the inode and directory tables for a finished tree (whose file contents are already in
/// the image) and keeps the id, xattr and export information that goes into the later tables.
///
/// Two passes over the tree, both without recursion (a hostile layer can nest directories
/// deeply): the first finds every distinct node, counts the names of each non-directory (hard
/// links), sorts each directory by name bytes and numbers the inodes in post-order; the second
/// writes, directory by directory in the same order, the inodes of the children not yet written,
/// the directory listing, and the directory's own inode. Inode numbers therefore grow along the
/// inode table and the root is last (inode number = inode count), as with mksquashfs.
final class TreeSerializer {
    private let file: UnsafeMutablePointer<sqfs_file_t>
    private let compressor: UnsafeMutablePointer<sqfs_compressor_t>
    private let inodeWriter: OpaquePointer
    private let directoryWriter: OpaquePointer
    private let listingWriter: OpaquePointer
    private let idTable: OpaquePointer
    private let xattrWriter: OpaquePointer
    private let fileInode: (FileData) -> UnsafeMutablePointer<sqfs_inode_generic_t>?
    /// The block processor's fragment table (every fragment block written) and the table of
    /// those the final tree uses, with the mapping from one index to the other.
    private let allFragments: OpaquePointer
    private let liveFragments: OpaquePointer
    private var fragmentMap: [UInt32: UInt32] = [:]

    private static let inodeHeaderSize = MemoryLayout<sqfs_inode_generic_t>.size
    private static let noXattr: UInt32 = 0xFFFF_FFFF

    /// What the super block needs once the tables are written.
    private(set) var inodeCount: UInt32 = 0
    private(set) var rootInodeNumber: UInt32 = 0
    private(set) var rootInodeReference: UInt64 = 0
    private(set) var latestModificationTime: UInt32 = 0
    private var rootIdIndex: UInt16 = 0

    init(file: UnsafeMutablePointer<sqfs_file_t>, compressor: UnsafeMutablePointer<sqfs_compressor_t>,
         fragments: OpaquePointer, fileInode: @escaping (FileData) -> UnsafeMutablePointer<sqfs_inode_generic_t>?) throws(SquashfsError) {
        self.file = file
        self.compressor = compressor
        self.fileInode = fileInode
        allFragments = fragments
        let keep = SQFS_META_WRITER_KEEP_IN_MEMORY.rawValue
        // Created one by one so that a failure part-way frees what exists.
        var made: [OpaquePointer] = []
        func make(_ what: String, _ create: () -> OpaquePointer?) throws(SquashfsError) -> OpaquePointer {
            guard let object = create() else {
                for object in made { sqfs_destroy(UnsafeMutableRawPointer(object)) }
                throw SquashfsError(step: "creating \(what)", code: SQFS_ERROR_ALLOC.rawValue)
            }
            made.append(object)
            return object
        }
        inodeWriter = try make("inode table writer") { sqfs_meta_writer_create(file, compressor, keep) }
        listingWriter = try make("directory table writer") { sqfs_meta_writer_create(file, compressor, keep) }
        let listing = listingWriter
        directoryWriter = try make("directory writer") {
            sqfs_dir_writer_create(listing, SQFS_DIR_WRITER_CREATE_EXPORT_TABLE.rawValue)
        }
        idTable = try make("id table") { sqfs_id_table_create(0) }
        xattrWriter = try make("xattr writer") { sqfs_xattr_writer_create(0) }
        liveFragments = try make("fragment table") { sqfs_frag_table_create(0) }
        // Ownership is normalised: every inode belongs to uid 0 and gid 0, the table's only id.
        let rc = sqfs_id_table_id_to_index(idTable, 0, &rootIdIndex)
        if rc != 0 {
            for object in made { sqfs_destroy(UnsafeMutableRawPointer(object)) }
            throw SquashfsError(step: "adding id 0 to the id table", code: rc)
        }
    }

    deinit {
        // The directory writer refers to the listing writer: destroy it first.
        sqfs_destroy(UnsafeMutableRawPointer(directoryWriter))
        sqfs_destroy(UnsafeMutableRawPointer(listingWriter))
        sqfs_destroy(UnsafeMutableRawPointer(inodeWriter))
        sqfs_destroy(UnsafeMutableRawPointer(idTable))
        sqfs_destroy(UnsafeMutableRawPointer(xattrWriter))
        sqfs_destroy(UnsafeMutableRawPointer(liveFragments))
    }

    // MARK: - Plan: distinct nodes, link counts, sorted listings, inode numbers

    private struct Entry {
        let node: FileNode
        var number: UInt32 = 0
        /// Names that refer to this node (non-directories; directories have exactly one).
        var links: UInt32 = 0
        /// Where the inode was written, once it was.
        var reference: UInt64?
        /// For directories: the children sorted by name bytes, as entry indices.
        var children: [(name: String, entry: Int)] = []
        var parent: Int = -1
        var name: String = ""
    }

    private var entries: [Entry] = []
    /// Directories in the order they complete in a post-order walk (root last).
    private var directoryOrder: [Int] = []

    private func path(of index: Int) -> String {
        var parts: [String] = []
        var current = index
        while current >= 0, entries[current].parent >= 0 {
            parts.append(entries[current].name)
            current = entries[current].parent
        }
        return "/" + parts.reversed().joined(separator: "/")
    }

    private func plan(root: FileNode) throws(SquashfsError) {
        guard root.isDirectory else { throw .invalid("writing the directory tree", "the root is not a directory") }
        var indexOf: [ObjectIdentifier: Int] = [ObjectIdentifier(root): 0]
        entries = [Entry(node: root, links: 1)]
        var nextNumber: UInt32 = 1

        // Lists a directory: validates and sorts its names, finds or adds its children.
        func list(_ directory: Int) throws(SquashfsError) {
            let node = entries[directory].node
            var named: [(name: String, bytes: [UInt8], node: FileNode)] = []
            named.reserveCapacity(node.children.count)
            for (name, child) in node.children {
                let bytes = Array(name.utf8)
                if bytes.isEmpty || bytes.count > 256 || name == "." || name == ".."
                    || bytes.contains(0x2F) || bytes.contains(0) {
                    throw .invalid("writing \(path(of: directory))", "invalid entry name \"\(name)\"")
                }
                named.append((name, bytes, child))
            }
            named.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
            var children: [(name: String, entry: Int)] = []
            children.reserveCapacity(named.count)
            for (name, _, child) in named {
                let id = ObjectIdentifier(child)
                if let existing = indexOf[id] {
                    if child.isDirectory {
                        throw .invalid("writing \(path(of: directory))/\(name)",
                                       "a directory appears under two names (or inside itself)")
                    }
                    entries[existing].links += 1
                    children.append((name, existing))
                } else {
                    let index = entries.count
                    indexOf[id] = index
                    var entry = Entry(node: child, links: 1)
                    entry.parent = directory
                    entry.name = name
                    entries.append(entry)
                    children.append((name, index))
                }
            }
            entries[directory].children = children
        }

        // Post-order: a directory completes after all its subdirectories; it then numbers its
        // not yet numbered non-directory children, then itself.
        try list(0)
        var stack: [(entry: Int, position: Int)] = [(0, 0)]
        while let top = stack.last {
            let children = entries[top.entry].children
            var position = top.position
            var descended = false
            while position < children.count {
                let child = children[position].entry
                position += 1
                // Each directory is listed once (a second name for it is refused above).
                if entries[child].node.isDirectory {
                    stack[stack.count - 1].position = position
                    try list(child)
                    stack.append((child, 0))
                    descended = true
                    break
                }
            }
            if descended { continue }
            for (_, child) in children where entries[child].number == 0 && !entries[child].node.isDirectory {
                entries[child].number = nextNumber
                nextNumber += 1
            }
            entries[top.entry].number = nextNumber
            nextNumber += 1
            directoryOrder.append(top.entry)
            stack.removeLast()
            if nextNumber == 0 || entries.count > Int(UInt32.max - 2) {
                throw .invalid("writing the directory tree", "too many inodes")
            }
        }
        inodeCount = nextNumber - 1
        rootInodeNumber = entries[0].number
    }

    // MARK: - Writing

    /// Writes every inode and directory listing into the in-memory inode and directory tables.
    func serialize(root: FileNode) throws(SquashfsError) {
        try plan(root: root)
        for directory in directoryOrder {
            let children = entries[directory].children
            var subdirectories: UInt32 = 0
            for (_, child) in children {
                if entries[child].node.isDirectory {
                    subdirectories += 1
                } else if entries[child].reference == nil {
                    entries[child].reference = try writeInode(of: child)
                }
            }
            try check("starting directory listing of \(path(of: directory))") { sqfs_dir_writer_begin(directoryWriter, 0) }
            for (name, child) in children {
                guard let reference = entries[child].reference else {
                    throw .invalid("writing \(path(of: directory))", "internal error: \(name) has no inode yet")
                }
                let number = entries[child].number
                let mode = Self.mode(of: entries[child].node)
                try check("adding \(path(of: directory))/\(name) to its directory") {
                    sqfs_dir_writer_add_entry(directoryWriter, name, number, reference, mode)
                }
            }
            try check("writing directory listing of \(path(of: directory))") { sqfs_dir_writer_end(directoryWriter) }

            let node = entries[directory].node
            let xattr = try xattrIndex(of: node, at: directory)
            let parentNumber = entries[directory].parent >= 0 ? entries[entries[directory].parent].number : inodeCount + 1
            guard let inode = sqfs_dir_writer_create_inode(directoryWriter, 0, xattr, parentNumber) else {
                throw SquashfsError(step: "creating directory inode of \(path(of: directory))", code: SQFS_ERROR_ALLOC.rawValue)
            }
            defer { sqfs_free(inode) }
            // Link count: "." and the name in the parent, plus each subdirectory's "..".
            if inode.pointee.base.type == UInt16(SQFS_INODE_EXT_DIR.rawValue) {
                inode.pointee.data.dir_ext.nlink = 2 + subdirectories
            } else {
                inode.pointee.data.dir.nlink = 2 + subdirectories
            }
            fillBase(inode, node: node, number: entries[directory].number)
            entries[directory].reference = try write(inode, what: path(of: directory))
        }
        rootInodeReference = entries[0].reference ?? 0
    }

    private static func mode(of node: FileNode) -> UInt16 {
        let type: UInt32
        switch node.kind {
        case .directory: type = SQFS_INODE_MODE_DIR.rawValue
        case .regularFile: type = SQFS_INODE_MODE_REG.rawValue
        case .symlink: type = SQFS_INODE_MODE_LNK.rawValue
        case .fifo: type = SQFS_INODE_MODE_FIFO.rawValue
        case .socket: type = SQFS_INODE_MODE_SOCK.rawValue
        }
        return UInt16(type) | (node.permissions & 0o7777)
    }

    private func fillBase(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>, node: FileNode, number: UInt32) {
        let time = UInt32(clamping: node.modificationTime)
        latestModificationTime = max(latestModificationTime, time)
        inode.pointee.base.mode = Self.mode(of: node)
        inode.pointee.base.uid_idx = rootIdIndex
        inode.pointee.base.gid_idx = rootIdIndex
        inode.pointee.base.mod_time = time
        inode.pointee.base.inode_number = number
    }

    /// Appends an inode to the inode table and returns its reference (block << 16 | offset).
    private func write(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>, what: @autoclosure () -> String) throws(SquashfsError) -> UInt64 {
        var block: UInt64 = 0
        var offset: UInt32 = 0
        sqfs_meta_writer_get_position(inodeWriter, &block, &offset)
        try check("writing inode of \(what())") { sqfs_meta_writer_write_inode(inodeWriter, inode) }
        return block << 16 | UInt64(offset)
    }

    /// A zeroed inode with room for `extra` payload bytes, from the C heap (libsquashfs may
    /// realloc or free inodes it is given).
    private static func allocateInode(extra: Int) throws(SquashfsError) -> UnsafeMutablePointer<sqfs_inode_generic_t> {
        guard let raw = calloc(1, inodeHeaderSize + max(extra, 0)) else {
            throw SquashfsError(step: "allocating an inode", code: SQFS_ERROR_ALLOC.rawValue)
        }
        let inode = raw.bindMemory(to: sqfs_inode_generic_t.self, capacity: 1)
        inode.pointee.payload_bytes_available = UInt32(extra)
        return inode
    }

    private func writeInode(of index: Int) throws(SquashfsError) -> UInt64 {
        let node = entries[index].node
        let links = entries[index].links
        let xattr = try xattrIndex(of: node, at: index)
        // Paths are only spelled out for error messages (each costs the depth of the node).
        func what() -> String { path(of: index) }
        let inode: UnsafeMutablePointer<sqfs_inode_generic_t>
        switch node.kind {
        case .directory:
            throw .invalid("writing \(what())", "internal error: directory written as a leaf")
        case .regularFile:
            inode = try regularFileInode(node, what: what())
        case .symlink(let target):
            let bytes = Array(target.utf8)
            inode = try Self.allocateInode(extra: bytes.count)
            inode.pointee.payload_bytes_used = UInt32(bytes.count)
            bytes.withUnsafeBytes { source in
                if let base = source.baseAddress {
                    (UnsafeMutableRawPointer(inode) + Self.inodeHeaderSize).copyMemory(from: base, byteCount: bytes.count)
                }
            }
            if xattr == Self.noXattr {
                inode.pointee.base.type = UInt16(SQFS_INODE_SLINK.rawValue)
                inode.pointee.data.slink.nlink = links
                inode.pointee.data.slink.target_size = UInt32(bytes.count)
            } else {
                inode.pointee.base.type = UInt16(SQFS_INODE_EXT_SLINK.rawValue)
                inode.pointee.data.slink_ext.nlink = links
                inode.pointee.data.slink_ext.target_size = UInt32(bytes.count)
                inode.pointee.data.slink_ext.xattr_idx = xattr
            }
        case .fifo, .socket:
            let isFifo = node.kind == .fifo
            inode = try Self.allocateInode(extra: 0)
            if xattr == Self.noXattr {
                inode.pointee.base.type = UInt16(isFifo ? SQFS_INODE_FIFO.rawValue : SQFS_INODE_SOCKET.rawValue)
                inode.pointee.data.ipc.nlink = links
            } else {
                inode.pointee.base.type = UInt16(isFifo ? SQFS_INODE_EXT_FIFO.rawValue : SQFS_INODE_EXT_SOCKET.rawValue)
                inode.pointee.data.ipc_ext.nlink = links
                inode.pointee.data.ipc_ext.xattr_idx = xattr
            }
        }
        defer { free(inode) }
        if node.kind == .regularFile {
            // Only extended file inodes carry a link count and an xattr index; make_basic turns
            // the inode back into a basic one when neither (nor size, sparseness) needs it.
            try check("preparing inode of \(what())") { sqfs_inode_make_extended(inode) }
            inode.pointee.data.file_ext.nlink = links
            inode.pointee.data.file_ext.xattr_idx = xattr
            try check("preparing inode of \(what())") { sqfs_inode_make_basic(inode) }
        }
        fillBase(inode, node: node, number: entries[index].number)
        return try write(inode, what: what())
    }

    /// A private copy of the inode the block processor built for the file's contents (the same
    /// contents may back several distinct nodes, each with its own inode), or an empty file.
    private func regularFileInode(_ node: FileNode, what: @autoclosure () -> String) throws(SquashfsError) -> UnsafeMutablePointer<sqfs_inode_generic_t> {
        guard let data = node.data else {
            let inode = try Self.allocateInode(extra: 0)
            inode.pointee.base.type = UInt16(SQFS_INODE_FILE.rawValue)
            inode.pointee.data.file.fragment_index = 0xFFFF_FFFF
            inode.pointee.data.file.fragment_offset = 0xFFFF_FFFF
            return inode
        }
        guard let source = fileInode(data) else {
            throw .invalid("writing \(what())", "its contents (data \(data.id)) were not written by this writer")
        }
        var size: UInt64 = 0
        try check("reading inode of \(what())") { sqfs_inode_get_file_size(source, &size) }
        if size != data.size {
            throw .invalid("writing \(what())", "its contents hold \(size) bytes, not \(data.size)")
        }
        let used = Int(source.pointee.payload_bytes_used)
        let inode = try Self.allocateInode(extra: used)
        UnsafeMutableRawPointer(inode).copyMemory(from: source, byteCount: Self.inodeHeaderSize + used)
        inode.pointee.payload_bytes_available = UInt32(used)
        do {
            var index: UInt32 = 0
            var offset: UInt32 = 0
            try check("reading inode of \(what())") { sqfs_inode_get_frag_location(inode, &index, &offset) }
            if index != 0xFFFF_FFFF {
                let live = try liveFragmentIndex(index)
                try check("preparing inode of \(what())") { sqfs_inode_set_frag_location(inode, live, offset) }
            }
        } catch {
            free(inode)
            throw error
        }
        return inode
    }

    /// The index, in the table of fragment blocks that live files use, of a block from the
    /// block processor's table. Fragment blocks holding only tails of unreferenced contents stay
    /// in the image as dead bytes but out of the table (unsquashfs rejects an image with more
    /// fragment blocks than inodes).
    private func liveFragmentIndex(_ index: UInt32) throws(SquashfsError) -> UInt32 {
        if let known = fragmentMap[index] { return known }
        var fragment = sqfs_fragment_t()
        try check("looking up fragment block \(index)") { sqfs_frag_table_lookup(allFragments, index, &fragment) }
        var live: UInt32 = 0
        try check("adding fragment block \(index)") {
            sqfs_frag_table_append(liveFragments, fragment.start_offset, fragment.size, &live)
        }
        fragmentMap[index] = live
        return live
    }

    /// Records a node's extended attributes (those in namespaces squashfs can store:
    /// user., trusted., security.) and returns their index, or 0xFFFFFFFF for none.
    private func xattrIndex(of node: FileNode, at index: Int) throws(SquashfsError) -> UInt32 {
        if node.xattrs.isEmpty { return Self.noXattr }
        let storable = node.xattrs
            .filter { key, _ in
                sqfs_get_xattr_prefix_id(key) >= 0 && !isBarePrefix(key)
            }
            .sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        if storable.isEmpty { return Self.noXattr }
        let what = "extended attributes of \(path(of: index))"
        try check("recording \(what)") { sqfs_xattr_writer_begin(xattrWriter, 0) }
        for (key, value) in storable {
            try check("recording \(what)") {
                value.withUnsafeBytes { sqfs_xattr_writer_add(xattrWriter, key, $0.baseAddress, $0.count) }
            }
        }
        var result: UInt32 = Self.noXattr
        try check("recording \(what)") { sqfs_xattr_writer_end(xattrWriter, &result) }
        return result
    }

    // MARK: - Tables after the data

    /// Writes the inode table, then the directory table, recording their starts in the super block.
    func writeInodeAndDirectoryTables(_ superBlock: inout sqfs_super_t) throws(SquashfsError) {
        try check("writing inode table") { sqfs_meta_writer_flush(inodeWriter) }
        try check("writing directory table") { sqfs_meta_writer_flush(listingWriter) }
        superBlock.inode_table_start = file.pointee.get_size(file)
        try check("writing inode table") { sqfs_meta_write_write_to_file(inodeWriter) }
        superBlock.directory_table_start = file.pointee.get_size(file)
        try check("writing directory table") { sqfs_meta_write_write_to_file(listingWriter) }
    }

    /// Writes the table of the fragment blocks that the tree uses.
    func writeFragmentTable(_ superBlock: inout sqfs_super_t) throws(SquashfsError) {
        try check("writing fragment table") { sqfs_frag_table_write(liveFragments, file, &superBlock, compressor) }
    }

    func writeExportTable(_ superBlock: inout sqfs_super_t) throws(SquashfsError) {
        try check("writing export table") {
            sqfs_dir_writer_write_export_table(directoryWriter, file, compressor, rootInodeNumber,
                                               rootInodeReference, &superBlock)
        }
    }

    func writeIdTable(_ superBlock: inout sqfs_super_t) throws(SquashfsError) {
        try check("writing id table") { sqfs_id_table_write(idTable, file, &superBlock, compressor) }
    }

    func writeXattrTable(_ superBlock: inout sqfs_super_t) throws(SquashfsError) {
        try check("writing xattr table") { sqfs_xattr_writer_flush(xattrWriter, file, &superBlock, compressor) }
    }

    private func check(_ step: @autoclosure () -> String, _ call: () -> Int32) throws(SquashfsError) {
        let rc = call()
        if rc < 0 { throw SquashfsError(step: step(), code: rc) }
    }
}

/// True for a key that is only a namespace prefix ("user.") with no name after it.
private func isBarePrefix(_ key: String) -> Bool {
    key.hasSuffix(".") && !key.dropLast().contains(".")
}
