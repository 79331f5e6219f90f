import CaissonOCI
import CaissonRegistry
import Foundation

/// An image resolved to one platform: what to fetch and how it was configured.
public struct ResolvedImage: Sendable {
    public let manifestDigest: CaissonOCI.Digest
    public let manifest: Manifest
    public let configDigest: CaissonOCI.Digest
    public let configuration: ImageConfiguration
}

/// Where an image's manifest, configuration and layer blobs come from.
protocol ImageProvider: Sendable {
    var source: String { get }
    func resolve(platform: Platform) async throws -> ResolvedImage
    /// A local file holding the layer blob (its digest is checked again while it is read).
    func layer(_ descriptor: Descriptor, progress: @escaping @Sendable (Int) -> Void) async throws -> String
    /// Called when reading a blob found it corrupt: a cached copy should be dropped.
    func discard(_ descriptor: Descriptor)
    func close() async
    /// Where finished images of this source are kept (registry images only: their manifest
    /// digest names them for good; local files are imported from scratch).
    var imageCache: ImageCache? { get }
}

extension ImageProvider {
    var imageCache: ImageCache? { nil }
}

/// A registry, with blobs kept in the shared layer cache.
final class RegistryProvider: ImageProvider {
    let reference: ImageReference
    let client: RegistryClient
    let store: BlobStore
    var source: String { reference.description }

    init(reference: ImageReference, client: RegistryClient, store: BlobStore) {
        self.reference = reference
        self.client = client
        self.store = store
    }

    func resolve(platform: Platform) async throws -> ResolvedImage {
        let repository = reference.repository
        var fetched = try await client.manifest(repository: repository, reference: reference.reference)
        if case .index(let index) = fetched.document {
            let chosen = try index.select(platform: platform)
            fetched = try await client.manifest(repository: repository, reference: chosen.digest.description)
        }
        guard case .manifest(let manifest) = fetched.document else {
            throw ImportError("\(source): the registry returned an index where a manifest was expected")
        }
        let data = try await client.blobData(repository: repository, descriptor: manifest.config)
        let configuration = try ImageConfiguration.decode(data: data)
        return ResolvedImage(manifestDigest: fetched.digest, manifest: manifest, configDigest: manifest.config.digest,
                             configuration: configuration)
    }

    func layer(_ descriptor: Descriptor, progress: @escaping @Sendable (Int) -> Void) async throws -> String {
        if let path = store.published(descriptor) {
            store.touch(descriptor.digest)
            return path
        }
        return try await store.ensure(descriptor) { handle in
            let already = Int(try handle.seekToEnd())
            if already > 0 { progress(already) }
            try await client.downloadBlob(repository: reference.repository, descriptor: descriptor, into: handle, progress: progress)
        }
    }

    func discard(_ descriptor: Descriptor) { store.discard(descriptor.digest) }

    var imageCache: ImageCache? { ImageCache(store: store) }

    func close() async { await client.shutdown() }
}

/// An OCI image layout directory (`oci://DIR[:TAG]`): index.json and blobs/sha256/*.
final class LayoutProvider: ImageProvider {
    let directory: String
    let tag: String?
    var source: String { "oci://\(directory)\(tag.map { ":\($0)" } ?? "")" }

    init(directory: String, tag: String?) {
        self.directory = directory
        self.tag = tag
    }

    private func blob(_ digest: CaissonOCI.Digest) -> String { "\(directory)/blobs/\(digest.algorithm.rawValue)/\(digest.encoded)" }

    private func read(_ descriptor: Descriptor, limit: Int64 = 16 << 20) throws -> Data {
        guard descriptor.size <= limit, let data = FileManager.default.contents(atPath: blob(descriptor.digest)) else {
            throw ImportError("\(source): blob \(descriptor.digest) is missing or too large")
        }
        try Verifier.check(data: data, against: descriptor)
        return data
    }

    func resolve(platform: Platform) async throws -> ResolvedImage {
        guard let indexData = FileManager.default.contents(atPath: "\(directory)/index.json") else {
            throw ImportError("\(directory) is not an OCI image layout (no index.json)")
        }
        guard case .index(let top) = try ManifestDocument.decode(data: indexData, contentType: MediaType.ociIndex) else {
            throw ImportError("\(directory)/index.json is not an OCI index")
        }
        var descriptor = try top.select(refName: tag)
        var document = try ManifestDocument.decode(data: try read(descriptor), contentType: descriptor.mediaType)
        if case .index(let nested) = document {
            descriptor = try nested.select(platform: platform)
            document = try ManifestDocument.decode(data: try read(descriptor), contentType: descriptor.mediaType)
        }
        guard case .manifest(let manifest) = document else { throw ImportError("\(source): no image manifest") }
        let configuration = try ImageConfiguration.decode(data: try read(manifest.config))
        return ResolvedImage(manifestDigest: descriptor.digest, manifest: manifest, configDigest: manifest.config.digest,
                             configuration: configuration)
    }

    func layer(_ descriptor: Descriptor, progress: @escaping @Sendable (Int) -> Void) async throws -> String {
        let path = blob(descriptor.digest)
        guard FileManager.default.fileExists(atPath: path) else { throw ImportError("\(source): layer \(descriptor.digest) is missing") }
        progress(Int(descriptor.size))
        return path
    }

    func discard(_ descriptor: Descriptor) {}
    func close() async {}
}

public struct ImportError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
