import CArchive
import CaissonOCI
import CaissonRegistry
import Foundation

/// Image archives: `oci-archive://FILE[:TAG]` (a tar of an OCI image layout, as `skopeo copy …
/// oci-archive:` or buildah write) and `docker-archive://FILE` (`docker save`). The archive's
/// members are copied into a private scratch directory under names Caisson chooses from a strict
/// allow-list (layout files and blobs named by their hex digest), so an archive cannot place a
/// file anywhere else; layers stay compressed blobs and are then read like any other.
final class ArchiveProvider: ImageProvider, @unchecked Sendable {
    enum Format { case oci(tag: String?), docker }

    let archive: String
    let format: Format
    let scratch: String
    private var layout: LayoutProvider?
    private var dockerLayers: [CaissonOCI.Digest: String] = [:]

    var source: String {
        switch format {
        case .oci(let tag): return "oci-archive://\(archive)\(tag.map { ":\($0)" } ?? "")"
        case .docker: return "docker-archive://\(archive)"
        }
    }

    init(archive: String, format: Format, temporaryDirectory: String) throws {
        self.archive = archive
        self.format = format
        var template = Array("\(temporaryDirectory)/caisson-archive-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ImportError("cannot create a scratch directory in \(temporaryDirectory): \(String(cString: strerror(errno)))")
        }
        scratch = String(cString: made)
        SignalCleanup.shared.register(scratch)
    }

    func close() async {
        try? FileManager.default.removeItem(atPath: scratch)
        SignalCleanup.shared.unregister(scratch)
    }

    /// Which archive members are kept, and under which scratch name.
    static func scratchName(for member: String, format: Format) -> String? {
        var name = member
        while name.hasPrefix("./") { name.removeFirst(2) }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        func isHex(_ s: String, _ n: Int) -> Bool { s.count == n && s.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
        switch parts.count {
        case 1 where ["oci-layout", "index.json", "manifest.json"].contains(parts[0]):
            return parts[0]
        case 1 where parts[0].hasSuffix(".json") && isHex(String(parts[0].dropLast(5)), 64):
            return parts[0]  // docker save: the config, named by its digest
        case 1 where parts[0].hasSuffix(".tar") && isHex(String(parts[0].dropLast(4)), 64):
            return parts[0]  // docker save (skopeo, Docker 1.10+): a layer named by its digest
        case 2 where parts[1] == "layer.tar" && isHex(parts[0], 64):
            return "\(parts[0]).layer.tar"  // docker save (legacy): ID/layer.tar
        case 3 where parts[0] == "blobs" && parts[1] == "sha256" && isHex(parts[2], 64):
            return "blob-\(parts[2])"
        default:
            return nil
        }
    }

    private func extract() throws {
        guard let reader = archive_read_new() else { throw ImportError("libarchive: out of memory") }
        defer { archive_read_free(reader) }
        archive_read_support_format_tar(reader)
        archive_read_support_format_gnutar(reader)
        archive_read_support_filter_gzip(reader)
        archive_read_support_filter_zstd(reader)
        archive_read_support_filter_none(reader)
        guard archive_read_open_filename(reader, archive, 1 << 20) == ARCHIVE_OK else {
            throw ImportError("\(archive): \(String(cString: archive_error_string(reader)))")
        }
        var links: [(name: String, target: String)] = []
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(reader, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw ImportError("\(archive): \(String(cString: archive_error_string(reader)))")
            }
            let member = String(cString: archive_entry_pathname(entry))
            guard let name = ArchiveProvider.scratchName(for: member, format: format) else {
                archive_read_data_skip(reader)
                continue
            }
            switch archive_entry_filetype(entry) {
            case UInt32(Glibc.S_IFREG):
                if let hardlink = archive_entry_hardlink(entry) {
                    links.append((name, String(cString: hardlink)))
                    continue
                }
                let fd = open("\(scratch)/\(name)", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw ImportError("\(archive): member \(member) appears twice or cannot be written") }
                defer { Glibc.close(fd) }
                guard archive_read_data_into_fd(reader, fd) == ARCHIVE_OK else {
                    throw ImportError("\(archive): reading \(member): \(String(cString: archive_error_string(reader)))")
                }
            case UInt32(Glibc.S_IFLNK):
                // docker save links repeated layers: ID/layer.tar -> ../OTHER/layer.tar
                let target = String(cString: archive_entry_symlink(entry))
                let resolved = target.hasPrefix("../") ? String(target.dropFirst(3)) : "\(member.split(separator: "/").first ?? "")/\(target)"
                links.append((name, resolved))
            default:
                archive_read_data_skip(reader)
            }
        }
        for link in links {
            guard let targetName = ArchiveProvider.scratchName(for: link.target, format: format),
                  FileManager.default.fileExists(atPath: "\(scratch)/\(targetName)") else {
                throw ImportError("\(archive): \(link.name) links to \(link.target), which is not in the archive")
            }
            try FileManager.default.linkItem(atPath: "\(scratch)/\(targetName)", toPath: "\(scratch)/\(link.name)")
        }
    }

    func resolve(platform: Platform) async throws -> ResolvedImage {
        try extract()
        if FileManager.default.fileExists(atPath: "\(scratch)/index.json") {
            // An OCI layout (oci-archive, and docker save since Docker 25): blobs are already named by digest.
            try FileManager.default.createDirectory(atPath: "\(scratch)/layout/blobs/sha256", withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: scratch) {
                if name.hasPrefix("blob-") {
                    try FileManager.default.moveItem(atPath: "\(scratch)/\(name)", toPath: "\(scratch)/layout/blobs/sha256/\(name.dropFirst(5))")
                } else if name == "index.json" || name == "oci-layout" {
                    try FileManager.default.moveItem(atPath: "\(scratch)/\(name)", toPath: "\(scratch)/layout/\(name)")
                }
            }
            let tag: String? = { if case .oci(let tag) = format { return tag }; return nil }()
            let provider = LayoutProvider(directory: "\(scratch)/layout", tag: tag)
            layout = provider
            return try await provider.resolve(platform: platform)
        }
        return try resolveDockerSave()
    }

    /// `docker save` (legacy): manifest.json names the config and the uncompressed layer tars.
    private func resolveDockerSave() throws -> ResolvedImage {
        struct Entry: Decodable { var Config: String; var Layers: [String] }
        guard let data = FileManager.default.contents(atPath: "\(scratch)/manifest.json"),
              let entries = try? JSONDecoder().decode([Entry].self, from: data), let entry = entries.first else {
            throw ImportError("\(archive) is neither an OCI archive (index.json) nor a docker save archive (manifest.json)")
        }
        guard let configName = ArchiveProvider.scratchName(for: entry.Config, format: format),
              let configData = FileManager.default.contents(atPath: "\(scratch)/\(configName)") else {
            throw ImportError("\(archive): the configuration \(entry.Config) is missing")
        }
        let configDigest = try CaissonOCI.Digest(parsing: "sha256:" + Verifier.hex(configData))
        let configuration = try ImageConfiguration.decode(data: configData)
        var layers: [Descriptor] = []
        for layer in entry.Layers {
            guard let name = ArchiveProvider.scratchName(for: layer, format: format) else {
                throw ImportError("\(archive): unexpected layer name \(layer)")
            }
            let path = "\(scratch)/\(name)"
            guard let handle = FileHandle(forReadingAtPath: path) else { throw ImportError("\(archive): layer \(layer) is missing") }
            let (hex, size) = try Verifier.hexAndSize(of: handle)
            try? handle.close()
            let digest = try CaissonOCI.Digest(parsing: "sha256:\(hex)")
            dockerLayers[digest] = path
            layers.append(Descriptor(mediaType: MediaType.dockerLayer, digest: digest, size: size))
        }
        let manifest = Manifest(mediaType: MediaType.dockerManifest,
                                config: Descriptor(mediaType: MediaType.dockerConfig, digest: configDigest, size: Int64(configData.count)),
                                layers: layers)
        // A docker save archive has no manifest: the image ID (the config digest) identifies it.
        return ResolvedImage(manifestDigest: configDigest, manifest: manifest, configDigest: configDigest, configuration: configuration)
    }

    func layer(_ descriptor: Descriptor, progress: @escaping @Sendable (Int) -> Void) async throws -> String {
        if let layout { return try await layout.layer(descriptor, progress: progress) }
        guard let path = dockerLayers[descriptor.digest] else { throw ImportError("\(source): layer \(descriptor.digest) is missing") }
        progress(Int(descriptor.size))
        return path
    }

    func discard(_ descriptor: Descriptor) {}
}
