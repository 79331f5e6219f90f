import CSquashfs

/// libsquashfs takes a file as an `sqfs_file_t`: a struct of C callbacks, which cannot capture
/// anything. Each one made here is followed in memory by an unretained pointer back to the
/// Swift object that serves its callbacks, which they find with `owner(of:)`. The owner keeps
/// the allocation and frees it with `release`; libsquashfs never destroys a file it was handed.
enum SquashfsFileBridge {
    private static let ownerOffset: Int = {
        let stride = MemoryLayout<sqfs_file_t>.stride
        let alignment = MemoryLayout<UnsafeRawPointer>.alignment
        return (stride + alignment - 1) / alignment * alignment
    }()

    /// A copy of `callbacks` (destroy and copy are set here) with room for its owner.
    static func allocate(_ callbacks: sqfs_file_t) -> UnsafeMutablePointer<sqfs_file_t> {
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: ownerOffset + MemoryLayout<UnsafeRawPointer>.size,
            alignment: max(MemoryLayout<sqfs_file_t>.alignment, MemoryLayout<UnsafeRawPointer>.alignment))
        var object = callbacks
        object.base.destroy = { _ in }
        object.base.copy = nil
        let file = raw.bindMemory(to: sqfs_file_t.self, capacity: 1)
        file.initialize(to: object)
        return file
    }

    /// Records the owner, once it is fully initialised.
    static func attach(_ owner: AnyObject, to file: UnsafeMutablePointer<sqfs_file_t>) {
        (UnsafeMutableRawPointer(file) + ownerOffset).storeBytes(
            of: UnsafeRawPointer(Unmanaged.passUnretained(owner).toOpaque()), as: UnsafeRawPointer.self)
    }

    static func owner<Owner: AnyObject>(of file: UnsafePointer<sqfs_file_t>?, as type: Owner.Type) -> Owner {
        let raw = UnsafeRawPointer(file!) + ownerOffset
        return Unmanaged<Owner>.fromOpaque(raw.load(as: UnsafeRawPointer.self)).takeUnretainedValue()
    }

    static func release(_ file: UnsafeMutablePointer<sqfs_file_t>) {
        file.deinitialize(count: 1)
        UnsafeMutableRawPointer(file).deallocate()
    }
}
