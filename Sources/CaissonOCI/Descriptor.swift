/// A content descriptor (image-spec descriptor.md): what a blob or manifest is, its digest and size.
/// Unknown fields are ignored; `size` must not be negative; the digest is validated.
public struct Descriptor: Hashable, Sendable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    /// Where else the blob may be fetched from (foreign / nondistributable layers). Untrusted.
    public var urls: [String]?
    public var annotations: [String: String]?
    /// In an index: the platform of the manifest this entry points to.
    public var platform: Platform?
    public var artifactType: String?

    public init(
        mediaType: String, digest: Digest, size: Int64,
        urls: [String]? = nil, annotations: [String: String]? = nil,
        platform: Platform? = nil, artifactType: String? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.urls = urls
        self.annotations = annotations
        self.platform = platform
        self.artifactType = artifactType
    }

    private enum CodingKeys: String, CodingKey {
        case mediaType, digest, size, urls, annotations, platform, artifactType
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mediaType = try c.decode(String.self, forKey: .mediaType)
        digest = try c.decode(Digest.self, forKey: .digest)
        size = try c.decode(Int64.self, forKey: .size)
        guard size >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "size \(size) is negative")
        }
        urls = try c.decodeIfPresent([String].self, forKey: .urls)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
        platform = try c.decodeIfPresent(Platform.self, forKey: .platform)
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
    }

    /// An index entry that is a build attestation, not an image: platform `unknown/unknown` or the
    /// annotation `vnd.docker.reference.type: attestation-manifest` (BuildKit).
    public var isAttestation: Bool {
        if annotations?[Annotation.dockerReferenceType] == "attestation-manifest" { return true }
        if let platform, platform.os == "unknown", platform.architecture == "unknown" { return true }
        return false
    }
}

/// Annotation keys this module reads.
public enum Annotation {
    /// The tag of a manifest in an OCI image layout's `index.json`.
    public static let refName = "org.opencontainers.image.ref.name"
    /// BuildKit marks attestation manifests in an index with this key.
    public static let dockerReferenceType = "vnd.docker.reference.type"
    public static let dockerReferenceDigest = "vnd.docker.reference.digest"
}

/// An image manifest: one config blob plus the ordered layers (`layers[0]` is the base).
/// Covers OCI `application/vnd.oci.image.manifest.v1+json` and Docker schema 2.
public struct Manifest: Hashable, Sendable, Codable {
    public var schemaVersion: Int
    /// The document's own media type (from the body, or from `Content-Type` when the body had none).
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(
        schemaVersion: Int = 2, mediaType: String? = MediaType.ociManifest, artifactType: String? = nil,
        config: Descriptor, layers: [Descriptor], subject: Descriptor? = nil, annotations: [String: String]? = nil
    ) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.config = config
        self.layers = layers
        self.subject = subject
        self.annotations = annotations
    }
}

/// An image index / Docker manifest list: one manifest per platform.
public struct Index: Hashable, Sendable, Codable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(
        schemaVersion: Int = 2, mediaType: String? = MediaType.ociIndex, artifactType: String? = nil,
        manifests: [Descriptor], subject: Descriptor? = nil, annotations: [String: String]? = nil
    ) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.manifests = manifests
        self.subject = subject
        self.annotations = annotations
    }

    /// The manifest for `platform`. Only image manifests (OCI or Docker schema 2) are candidates:
    /// entries with any other media type and attestation entries are skipped. The first entry whose
    /// platform matches wins (image-index.md); an entry without a platform is used only when no
    /// entry names a matching one.
    public func select(platform: Platform) throws(OCIError) -> Descriptor {
        var available: [Platform] = []
        var unplatformed: Descriptor?
        for entry in manifests {
            guard MediaType.isManifest(entry.mediaType), !entry.isAttestation else { continue }
            guard let candidate = entry.platform else {
                if unplatformed == nil { unplatformed = entry }
                continue
            }
            if platform.matches(candidate) { return entry }
            let shown = Platform(os: candidate.os, architecture: candidate.architecture, variant: candidate.variant)
            if !available.contains(shown) { available.append(shown) }
        }
        if let unplatformed { return unplatformed }
        throw OCIError.noMatchingPlatform(requested: platform, available: available)
    }

    /// The entry of an OCI image layout's `index.json` for `tag`, matched against the
    /// `org.opencontainers.image.ref.name` annotation (either the bare tag or a full reference
    /// ending in `:tag`). Without a tag the layout must hold exactly one entry (the one whose
    /// media type is a manifest or index).
    public func select(refName tag: String?) throws(OCIError) -> Descriptor {
        let candidates = manifests.filter { MediaType.isManifest($0.mediaType) || MediaType.isIndex($0.mediaType) }
        let names = candidates.compactMap { $0.annotations?[Annotation.refName] }
        guard let tag else {
            if candidates.count == 1 { return candidates[0] }
            throw OCIError.noMatchingReference(requested: nil, available: names)
        }
        if let exact = candidates.first(where: { $0.annotations?[Annotation.refName] == tag }) { return exact }
        if let suffixed = candidates.first(where: { ($0.annotations?[Annotation.refName])?.hasSuffix(":" + tag) == true }) {
            return suffixed
        }
        throw OCIError.noMatchingReference(requested: tag, available: names)
    }
}
