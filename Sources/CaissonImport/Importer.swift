import CaissonConfig
import CaissonLayers
import CaissonOCI
import CaissonRegistry
import CaissonSquashfs
import Foundation

public struct ImportRequest: Sendable {
    public var source: ImageSource
    /// The .sqsh to write; nil = NAME.sqsh in the current directory.
    public var output: String?
    public var platform: Platform
    public var squashfs: SquashfsOptions
    public var force = false
    /// Keep the image only in the image cache and report its path there (no copy): for launchers
    /// such as the Slurm plugin, which start the cached file directly.
    public var intoCache = false

    public init(source: ImageSource, output: String? = nil, platform: Platform, squashfs: SquashfsOptions) {
        self.source = source
        self.output = output
        self.platform = platform
        self.squashfs = squashfs
    }
}

public struct ImportResult: Sendable {
    public let output: String
    public let manifestDigest: CaissonOCI.Digest
    public let bytes: UInt64
    public let layers: Int
}

/// reference → registry → layers → image: pulls an image into one squashfs file.
///
/// Layer blobs download in parallel (into the shared cache) while the layers that are already
/// there are merged, in order, on a thread of their own: decompressed, whiteouts applied, and
/// file contents streamed straight into the squashfs writer, which compresses on every core.
/// Nothing is extracted to the host filesystem. The output appears only when complete: it is
/// written to a hidden temporary file next to it and renamed; on any failure or signal the
/// temporary file is removed.
public final class Importer: @unchecked Sendable {
    let configuration: Configuration
    let request: ImportRequest
    let progress: ImportProgress

    public init(configuration: Configuration, request: ImportRequest, progress: ImportProgress) {
        self.configuration = configuration
        self.request = request
        self.progress = progress
    }

    public func run() async throws -> ImportResult {
        let provider = try makeProvider()
        do {
            let result: ImportResult
            do {
                result = try await importOnce(provider)
            } catch let error as RegistryError where error.kind == .verification {
                // A cached blob went bad on disk: it has been dropped; fetch it again once.
                progress.warn("\(error); fetching it again")
                result = try await importOnce(provider)
            }
            await provider.close()
            return result
        } catch {
            await provider.close()
            throw error
        }
    }

    func makeProvider() throws -> ImageProvider {
        switch request.source {
        case .registry(let reference):
            let client = try Importer.client(for: reference, configuration: configuration)
            return RegistryProvider(reference: reference, client: client, store: try BlobStore(root: configuration.cachePath))
        case .ociLayout(let path, let tag):
            return LayoutProvider(directory: path, tag: tag)
        case .ociArchive(let path, let tag):
            return try ArchiveProvider(archive: path, format: .oci(tag: tag), temporaryDirectory: configuration.tempPath)
        case .dockerArchive(let path):
            return try ArchiveProvider(archive: path, format: .docker, temporaryDirectory: configuration.tempPath)
        }
    }

    /// A client for the reference's registry, set up from Caisson's configuration (insecure
    /// registries, timeouts, retries) and the user's credentials.
    public static func client(for reference: ImageReference, configuration: Configuration) throws -> RegistryClient {
        var settings = RegistryClient.Settings()
        settings.insecureRegistries = Set((configuration["CAISSON_INSECURE_REGISTRIES"] ?? "")
            .split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init))
        if let seconds = configuration["CAISSON_CONNECT_TIMEOUT"].flatMap(Int64.init) { settings.connectTimeout = .seconds(seconds) }
        if let seconds = configuration["CAISSON_STALL_TIMEOUT"].flatMap(Int64.init) { settings.stallTimeout = .seconds(seconds) }
        if let retries = configuration["CAISSON_TRANSFER_RETRIES"].flatMap(Int.init) { settings.retries = retries }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        let credentials = CredentialStore(netrcPath: "\(configuration.configPath)/credentials",
                                          dockerConfigPath: "\(home)/.docker/config.json")
        return try RegistryClient(registry: reference.registry,
                                  credential: credentials.credential(for: reference.registry, user: reference.user),
                                  settings: settings)
    }

    func outputPath() -> String {
        if let output = request.output { return output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output }
        return FileManager.default.currentDirectoryPath + "/" + Importer.defaultName(for: request.source) + ".sqsh"
    }

    /// enroot's naming: `nvcr.io#nvidia/pytorch:24.05-py3` → `nvidia+pytorch+24.05-py3`.
    public static func defaultName(for source: ImageSource) -> String {
        switch source {
        case .registry(let reference):
            var name = reference.repository.replacingOccurrences(of: "/", with: "+")
            if let tag = reference.tag { name += "+\(tag)" }
            if let digest = reference.digest, reference.tag == nil { name += "+\(digest.encoded.prefix(12))" }
            return name
        case .ociLayout(let path, let tag), .ociArchive(let path, let tag):
            return URL(fileURLWithPath: path).lastPathComponent + (tag.map { "+\($0)" } ?? "")
        case .dockerArchive(let path):
            return URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        }
    }

    private func importOnce(_ provider: ImageProvider) async throws -> ImportResult {
        var output = outputPath()
        if !request.intoCache && FileManager.default.fileExists(atPath: output) && !request.force {
            throw ImportError("\(output) already exists: remove it, choose another name with -o, or pass --force")
        }
        progress.status("resolving \(provider.source)")
        let image = try await provider.resolve(platform: request.platform)
        let layers = image.manifest.layers
        guard layers.count == image.configuration.rootfs.diffIDs.count else {
            throw ImportError("\(provider.source): the manifest has \(layers.count) layers but the configuration lists \(image.configuration.rootfs.diffIDs.count)")
        }
        progress.resolved(layers: layers.map(\.size), digest: image.manifestDigest.description)
        progress.status("importing \(provider.source)")

        let images = provider.imageCache
        if request.intoCache {
            guard let images else { throw ImportError("\(provider.source) has no image cache: import it to a file with -o instead") }
            output = images.path(manifest: image.manifestDigest, options: request.squashfs)
            try FileManager.default.createDirectory(atPath: images.directory, withIntermediateDirectories: true)
            if images.lookup(manifest: image.manifestDigest, options: request.squashfs) != nil {
                progress.status("cached image for \(image.manifestDigest)")
                return ImportResult(output: output, manifestDigest: image.manifestDigest, bytes: Importer.size(of: output),
                                    layers: layers.count)
            }
        }
        let temporary = TemporaryOutput(for: output)
        defer { temporary.removeIfPresent() }
        if !request.intoCache, let images, try images.restore(manifest: image.manifestDigest, options: request.squashfs, to: temporary.path) {
            progress.status("reused the image imported before from \(image.manifestDigest)")
            try temporary.publish()
            return ImportResult(output: output, manifestDigest: image.manifestDigest, bytes: Importer.size(of: output),
                                layers: layers.count)
        }
        let writer: SquashfsWriter
        do {
            writer = try SquashfsWriter(path: temporary.path, options: request.squashfs)
        } catch {
            throw ImportError("cannot write \(output): \(error)")
        }
        let merger = LayerMerger(sink: writer) { [progress] in progress.warn($0) }
        // Used by one thread at a time: each merge and the final write run one after another.
        let pipeline = Unchecked((merger: merger, writer: writer))
        let limiter = Limiter(configuration["CAISSON_MAX_CONNECTIONS"].flatMap(Int.init) ?? 4)
        let downloads = layers.enumerated().map { index, descriptor in
            Task { [progress] in
                try await limiter.run {
                    try await provider.layer(descriptor) { progress.downloaded(layer: index, bytes: $0) }
                }
            }
        }
        defer { downloads.forEach { $0.cancel() } }

        for (index, descriptor) in layers.enumerated() {
            let path = try await downloads[index].value
            progress.merging(layer: index)
            let diffID = try await Importer.onThread {
                let reader = try DigestingReader(path: path, descriptor: descriptor)
                do {
                    let hex = try pipeline.value.merger.apply(layer: { try reader.read(into: $0) }, name: "\(index + 1) (\(descriptor.digest))")
                    try reader.verify()
                    return hex
                } catch {
                    // Corruption (a blob that no longer matches its digest) fails decompression long
                    // before the end: check the digest first, so the cause is named and the blob dropped.
                    do { try reader.drainAndVerify() } catch let corrupt {
                        provider.discard(descriptor)
                        throw corrupt
                    }
                    throw error
                }
            }
            let expected = image.configuration.rootfs.diffIDs[index]
            guard "sha256:\(diffID)" == expected.description else {
                throw ImportError("layer \(index + 1) (\(descriptor.digest)): its uncompressed content is sha256:\(diffID), but the image configuration says \(expected)")
            }
            progress.merged(layer: index)
        }

        progress.status("writing \(output)")
        try await Importer.onThread { [self] in
            let (merger, writer) = pipeline.value
            try addMetadata(to: merger.root, writer: writer, image: image, source: provider.source)
            try writer.finish(root: merger.root)
        }
        if !request.intoCache { images?.store(temporary.path, manifest: image.manifestDigest, options: request.squashfs) }
        // Into the cache, concurrent imports of one image may both get here: each renames a
        // complete, identical file into place, so whichever lands last is as good as the first.
        try temporary.publish()
        return ImportResult(output: output, manifestDigest: image.manifestDigest, bytes: Importer.size(of: output), layers: layers.count)
    }

    private func addMetadata(to root: FileNode, writer: SquashfsWriter, image: ResolvedImage, source: String) throws {
        let config = image.configuration
        // The image's creation time, not now: the same image always gives the same bytes.
        let created = config.created.flatMap { ISO8601DateFormatter().date(from: $0) }.map { Int64($0.timeIntervalSince1970) } ?? 0
        func add(_ path: [String], _ text: String, permissions: UInt16) throws {
            var node = root
            for component in path.dropLast() {
                if let child = node.children[component] {
                    guard child.isDirectory else {
                        progress.warn("/\(path.joined(separator: "/")) not written: /\(component) in the image is not a directory")
                        return
                    }
                    node = child
                } else {
                    let dir = FileNode.directory()
                    node.children[component] = dir
                    node = dir
                }
            }
            var bytes = Array(text.utf8)[...]
            let data = try writer.writeFileData { buffer in
                let n = min(buffer.count, bytes.count)
                buffer.copyBytes(from: bytes.prefix(n))
                bytes = bytes.dropFirst(n)
                return n
            }
            node.children[path.last!] = FileNode(kind: .regularFile, permissions: permissions,
                                                 modificationTime: created, data: data)
        }
        try add(["etc", "environment"], ImageMetadata.environment(config), permissions: 0o644)
        try add(["etc", "rc"], ImageMetadata.rc(config, source: source), permissions: 0o755)
        if let fstab = ImageMetadata.fstab(config, existing: nil) {
            try add(["etc", "fstab"], fstab, permissions: 0o644)
        }
        let provenance = ImageMetadata.Provenance(
            source: source, manifestDigest: image.manifestDigest.description, configDigest: image.configDigest.description,
            platform: config.platform.description, created: config.created, importedBy: "caisson")
        try add(["etc", "caisson", "image.json"], ImageMetadata.provenance(provenance), permissions: 0o644)
    }

    static func size(of path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// Runs blocking work (decompression, tar parsing, compression hand-off) off the cooperative pool.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
            }
        }
    }
}

struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// At most `limit` operations at once.
actor Limiter {
    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ limit: Int) { available = max(1, limit) }

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if available > 0 { available -= 1 } else { await withCheckedContinuation { waiting.append($0) } }
        defer { if waiting.isEmpty { available += 1 } else { waiting.removeFirst().resume() } }
        return try await body()
    }
}
