/// The media types of the OCI image spec and of Docker's schema 2, as they appear in
/// `Content-Type`, `Accept` and descriptors' `mediaType`.
public enum MediaType {
    // OCI image spec (media-types.md)
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayout = "application/vnd.oci.layout.header.v1+json"
    public static let ociEmpty = "application/vnd.oci.empty.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    /// Deprecated: layers that registries should not redistribute (their `urls` point elsewhere).
    public static let ociLayerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let ociLayerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

    // Docker image manifest v2 schema 2 (distribution manifest-v2-2.md)
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    /// Not in Docker's spec, but written by some tools.
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    /// Not in Docker's spec, but written by some tools (e.g. BuildKit with zstd compression).
    public static let dockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    // Docker schema 1: legacy, unsupported.
    public static let dockerManifestSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let dockerManifestSchema1 = "application/vnd.docker.distribution.manifest.v1+json"

    /// The `Accept` header values for a manifest request: every manifest and index type we parse.
    /// Without a v2 type in `Accept`, Docker Hub may answer with a schema 1 manifest.
    public static let manifestAccept: [String] = [ociIndex, ociManifest, dockerManifestList, dockerManifest]

    /// Image manifests (a config plus layers).
    public static let manifestTypes: Set<String> = [ociManifest, dockerManifest]
    /// Indexes / manifest lists (one manifest per platform).
    public static let indexTypes: Set<String> = [ociIndex, dockerManifestList]
    public static let schema1Types: Set<String> = [dockerManifestSchema1Signed, dockerManifestSchema1]
    public static let configTypes: Set<String> = [ociConfig, dockerConfig]
    public static let layerTypes: Set<String> = [
        ociLayer, ociLayerGzip, ociLayerZstd,
        ociLayerNondistributable, ociLayerNondistributableGzip, ociLayerNondistributableZstd,
        dockerLayer, dockerLayerGzip, dockerLayerZstd, dockerForeignLayerGzip,
    ]

    /// The bare type of a `Content-Type` value: parameters (`; charset=…`) dropped, spaces trimmed,
    /// lowercased (media types are case-insensitive, RFC 6838).
    public static func essence(_ contentType: String) -> String {
        let bare = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return bare.trimmingASCIIWhitespace().lowercased()
    }

    public static func isManifest(_ type: String) -> Bool { manifestTypes.contains(essence(type)) }
    public static func isIndex(_ type: String) -> Bool { indexTypes.contains(essence(type)) }
    public static func isSchema1(_ type: String) -> Bool { schema1Types.contains(essence(type)) }
    public static func isConfig(_ type: String) -> Bool { configTypes.contains(essence(type)) }
    /// A filesystem layer, including the nondistributable and foreign variants.
    public static func isLayer(_ type: String) -> Bool { layerTypes.contains(essence(type)) }
    /// Whether the layer type says its blobs must not be pushed and may be fetched from `urls`.
    public static func isNondistributable(_ type: String) -> Bool {
        let e = essence(type)
        return e.hasPrefix("application/vnd.oci.image.layer.nondistributable.")
            || e.hasPrefix("application/vnd.docker.image.rootfs.foreign.")
    }
}

/// How a layer blob is compressed.
public enum LayerCompression: String, Sendable, CaseIterable {
    case gzip
    case zstd
    case none

    /// The compression a layer media type declares; nil when the type is not a layer type we know
    /// (then sniff the blob's first bytes).
    public init?(mediaType: String) {
        switch MediaType.essence(mediaType) {
        case MediaType.ociLayerGzip, MediaType.ociLayerNondistributableGzip,
             MediaType.dockerLayerGzip, MediaType.dockerForeignLayerGzip:
            self = .gzip
        case MediaType.ociLayerZstd, MediaType.ociLayerNondistributableZstd, MediaType.dockerLayerZstd:
            self = .zstd
        case MediaType.ociLayer, MediaType.ociLayerNondistributable, MediaType.dockerLayer:
            self = .none
        default:
            return nil
        }
    }

    /// The compression the first bytes of a blob show: gzip `1f 8b`, zstd `28 b5 2f fd`,
    /// anything else is taken as an uncompressed tar.
    public static func sniff<Bytes: Collection>(_ firstBytes: Bytes) -> LayerCompression where Bytes.Element == UInt8 {
        let head = Array(firstBytes.prefix(4))
        if head.count >= 2, head[0] == 0x1f, head[1] == 0x8b { return .gzip }
        if head == [0x28, 0xb5, 0x2f, 0xfd] { return .zstd }
        return .none
    }

    /// The compression to decode with: magic bytes win when they show gzip or zstd (bytes cannot lie,
    /// media types sometimes do); otherwise the media type; otherwise an uncompressed tar.
    public static func detect<Bytes: Collection>(mediaType: String?, firstBytes: Bytes) -> LayerCompression where Bytes.Element == UInt8 {
        let sniffed = sniff(firstBytes)
        if sniffed != .none { return sniffed }
        if let mediaType, let declared = LayerCompression(mediaType: mediaType) { return declared }
        return .none
    }
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        let s = Substring(self)
        guard let start = s.firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = s.lastIndex(where: { !isSpace($0) })!
        return s[start...end]
    }
}
