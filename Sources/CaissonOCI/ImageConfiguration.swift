import Foundation

/// An image configuration blob (`application/vnd.oci.image.config.v1+json` or Docker's
/// `application/vnd.docker.container.image.v1+json`): what the runtime needs to start the image.
/// Unknown fields (Docker's `Healthcheck`, `container_config`, `history`…) are ignored.
public struct ImageConfiguration: Hashable, Sendable, Codable {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var created: String?
    public var author: String?
    /// The execution parameters; empty when the document has none (`config` is optional, may be null).
    public var config: ContainerConfig
    public var rootfs: RootFS

    public init(
        architecture: String, os: String, variant: String? = nil, osVersion: String? = nil,
        created: String? = nil, author: String? = nil, config: ContainerConfig = ContainerConfig(), rootfs: RootFS
    ) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.osVersion = osVersion
        self.created = created
        self.author = author
        self.config = config
        self.rootfs = rootfs
    }

    /// The platform this image was built for.
    public var platform: Platform { Platform(os: os, architecture: architecture, variant: variant) }

    private enum CodingKeys: String, CodingKey {
        case architecture, os, variant, created, author, config, rootfs
        case osVersion = "os.version"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try c.decode(String.self, forKey: .architecture)
        os = try c.decode(String.self, forKey: .os)
        variant = try c.decodeIfPresent(String.self, forKey: .variant)
        osVersion = try c.decodeIfPresent(String.self, forKey: .osVersion)
        created = try c.decodeIfPresent(String.self, forKey: .created)
        author = try c.decodeIfPresent(String.self, forKey: .author)
        config = try c.decodeIfPresent(ContainerConfig.self, forKey: .config) ?? ContainerConfig()
        rootfs = try c.decode(RootFS.self, forKey: .rootfs)
    }

    /// Decodes a configuration blob; errors say which field is wrong.
    public static func decode(data: Data) throws(OCIError) -> ImageConfiguration {
        do {
            return try JSONDecoder().decode(ImageConfiguration.self, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                throw OCIError.invalidConfiguration("the body is not a valid JSON object")
            }
            throw OCIError.invalidConfiguration(describe(error))
        } catch {
            throw OCIError.invalidConfiguration("\(error)")
        }
    }

    /// The execution parameters (`config` in the image config).
    public struct ContainerConfig: Hashable, Sendable, Codable {
        public var env: [String]?
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var workingDir: String?
        public var user: String?
        /// The paths of `Volumes` (a JSON object whose keys are paths and values `{}`), sorted.
        public var volumes: [String]?
        public var exposedPorts: [String]?
        public var labels: [String: String]?
        public var stopSignal: String?

        public init(
            env: [String]? = nil, entrypoint: [String]? = nil, cmd: [String]? = nil, workingDir: String? = nil,
            user: String? = nil, volumes: [String]? = nil, exposedPorts: [String]? = nil,
            labels: [String: String]? = nil, stopSignal: String? = nil
        ) {
            self.env = env
            self.entrypoint = entrypoint
            self.cmd = cmd
            self.workingDir = workingDir
            self.user = user
            self.volumes = volumes
            self.exposedPorts = exposedPorts
            self.labels = labels
            self.stopSignal = stopSignal
        }

        private enum CodingKeys: String, CodingKey {
            case env = "Env"
            case entrypoint = "Entrypoint"
            case cmd = "Cmd"
            case workingDir = "WorkingDir"
            case user = "User"
            case volumes = "Volumes"
            case exposedPorts = "ExposedPorts"
            case labels = "Labels"
            case stopSignal = "StopSignal"
        }

        /// An empty JSON object (the value type of `Volumes` and `ExposedPorts` entries).
        private struct Empty: Codable {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            env = try c.decodeIfPresent([String].self, forKey: .env)
            entrypoint = try Self.decodeCommand(c, .entrypoint)
            cmd = try Self.decodeCommand(c, .cmd)
            workingDir = try c.decodeIfPresent(String.self, forKey: .workingDir)
            user = try c.decodeIfPresent(String.self, forKey: .user)
            volumes = try c.decodeIfPresent([String: IgnoredValue].self, forKey: .volumes).map { $0.keys.sorted() }
            exposedPorts = try c.decodeIfPresent([String: IgnoredValue].self, forKey: .exposedPorts).map { $0.keys.sorted() }
            labels = try c.decodeIfPresent([String: String].self, forKey: .labels)
            stopSignal = try c.decodeIfPresent(String.self, forKey: .stopSignal)
        }

        /// Docker accepts `"Cmd": "echo hi"` as well as an array (its `StrSlice`); so do we.
        private static func decodeCommand(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [String]? {
            if let array = try? c.decodeIfPresent([String].self, forKey: key) { return array }
            if let single = try? c.decodeIfPresent(String.self, forKey: key) { return [single] }
            return try c.decodeIfPresent([String].self, forKey: key)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(env, forKey: .env)
            try c.encodeIfPresent(entrypoint, forKey: .entrypoint)
            try c.encodeIfPresent(cmd, forKey: .cmd)
            try c.encodeIfPresent(workingDir, forKey: .workingDir)
            try c.encodeIfPresent(user, forKey: .user)
            if let volumes {
                try c.encode(Dictionary(uniqueKeysWithValues: volumes.map { ($0, Empty()) }), forKey: .volumes)
            }
            if let exposedPorts {
                try c.encode(Dictionary(uniqueKeysWithValues: exposedPorts.map { ($0, Empty()) }), forKey: .exposedPorts)
            }
            try c.encodeIfPresent(labels, forKey: .labels)
            try c.encodeIfPresent(stopSignal, forKey: .stopSignal)
        }
    }

    /// `rootfs`: `type` is `layers`; `diff_ids` are the digests of the uncompressed layer tars, in order.
    public struct RootFS: Hashable, Sendable, Codable {
        public var type: String
        public var diffIDs: [Digest]

        public init(type: String = "layers", diffIDs: [Digest]) {
            self.type = type
            self.diffIDs = diffIDs
        }

        private enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            diffIDs = try c.decodeIfPresent([Digest].self, forKey: .diffIDs) ?? []
        }
    }
}

/// Any JSON value, skipped (Docker writes `{}` but some tools write `null` or other values).
struct IgnoredValue: Decodable {
    init(from decoder: any Decoder) throws {}
}
