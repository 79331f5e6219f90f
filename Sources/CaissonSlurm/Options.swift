/// The srun/salloc/sbatch options, with pyxis's names and meanings so that job scripts move over
/// unchanged (NVIDIA/pyxis args.c). Every option can also come from the environment, as
/// `PYXIS_<OPTION>` or `CAISSON_<OPTION>` (`--container-image` → `PYXIS_CONTAINER_IMAGE`); the
/// command line wins, then Caisson's spelling, then pyxis's.
public struct ContainerOptions: Equatable, Sendable {
    public enum NameFlag: String, Sendable {
        /// Join the running container, else reuse its root filesystem, else create it.
        case auto
        /// Fail if the container exists.
        case create
        /// Fail unless the container is running; join it.
        case exec
        /// Reuse the root filesystem, never join a running container (pyxis #80).
        case noExec = "no_exec"
    }

    public var image: String?
    /// `SRC:DST[:FLAGS]` entries, flags separated by `+`, in the order given.
    public var mounts: [String] = []
    public var workdir: String?
    public var name: String?
    public var nameFlag = NameFlag.auto
    public var save: String?
    public var mountHome: Bool?
    public var remapRoot: Bool?
    public var entrypoint: Bool?
    public var entrypointLog: Bool?
    public var writable: Bool?
    /// Job variables that keep their value over the image's (set before the entrypoint runs).
    public var environment: [String] = []

    /// Options set on the command line (the environment does not override them).
    var fromCommandLine: Set<ID> = []

    public init() {}

    /// Without an image or a name the step runs on the host, and other container options are ignored.
    public var enabled: Bool { image != nil || name != nil }

    public enum ID: Int32, CaseIterable, Sendable {
        case image = 1, mounts, workdir, name, save, mountHome, noMountHome, remapRoot, noRemapRoot,
             entrypoint, noEntrypoint, entrypointLog, writable, readonly, environment
    }

    public struct Spec: Sendable {
        public let id: ID
        public let name: String
        public let argument: String?
        public let usage: String
    }

    /// The option table registered with Slurm, in `srun --help` order.
    public static let table: [Spec] = [
        Spec(id: .image, name: "container-image", argument: "[USER@][REGISTRY#]IMAGE[:TAG]|PATH",
             usage: "[caisson] the image to run the step in: an image reference (docker:// is implied; REGISTRY#IMAGE and REGISTRY/IMAGE both work), or the path of a .sqsh file on the compute node (starting with . or /)"),
        Spec(id: .mounts, name: "container-mounts", argument: "SRC:DST[:FLAGS][,SRC:DST...]",
             usage: "[caisson] bind mount[s] inside the container. Mount flags are separated with \"+\", e.g. \"ro+nosuid\"; SRC tmpfs mounts a tmpfs"),
        Spec(id: .workdir, name: "container-workdir", argument: "PATH", usage: "[caisson] working directory inside the container"),
        Spec(id: .name, name: "container-name", argument: "NAME[:FLAG]",
             usage: "[caisson] keep the container under NAME for later steps. FLAG: auto (default: join it if running, else reuse it, else create it), create (fail if it exists), exec (fail unless it is running), no_exec (reuse, never join a running one)"),
        Spec(id: .save, name: "container-save", argument: "PATH", usage: "[caisson] save the container's filesystem as a squashfs file at PATH when the step ends (several nodes: the first node's, or one per node with %N or %n in PATH)"),
        Spec(id: .mountHome, name: "container-mount-home", argument: nil, usage: "[caisson] bind mount the user's home directory"),
        Spec(id: .noMountHome, name: "no-container-mount-home", argument: nil, usage: "[caisson] do not bind mount the user's home directory"),
        Spec(id: .remapRoot, name: "container-remap-root", argument: nil,
             usage: "[caisson] appear as root (uid 0) inside the container. Does not grant any privilege on the host"),
        Spec(id: .noRemapRoot, name: "no-container-remap-root", argument: nil, usage: "[caisson] do not remap to root inside the container"),
        Spec(id: .entrypoint, name: "container-entrypoint", argument: nil, usage: "[caisson] run the image's entrypoint before the tasks join the container"),
        Spec(id: .noEntrypoint, name: "no-container-entrypoint", argument: nil, usage: "[caisson] do not run the image's entrypoint"),
        Spec(id: .entrypointLog, name: "container-entrypoint-log", argument: nil, usage: "[caisson] print the entrypoint's output"),
        Spec(id: .writable, name: "container-writable", argument: nil, usage: "[caisson] make the container filesystem writable (the default)"),
        Spec(id: .readonly, name: "container-readonly", argument: nil, usage: "[caisson] make the container filesystem read-only"),
        Spec(id: .environment, name: "container-env", argument: "NAME[,NAME...]",
             usage: "[caisson] job environment variables that override the image's values (and are set before the entrypoint)"),
    ]

    /// Applies an option from the command line. Slurm may call an option's callback twice with
    /// the same value (pyxis notes it): a repeat is accepted, a conflicting value is an error.
    public mutating func apply(_ id: ID, _ value: String?) throws(PluginError) {
        try set(id, value, origin: "--\(ContainerOptions.spec(id).name)")
        fromCommandLine.insert(id)
        if let pair = ContainerOptions.pair(of: id) { fromCommandLine.insert(pair) }
    }

    /// Fills what the command line left unset from `CAISSON_<OPTION>`, else `PYXIS_<OPTION>`.
    public mutating func applyEnvironment(_ lookup: (String) -> String?) throws(PluginError) {
        for spec in ContainerOptions.table where !fromCommandLine.contains(spec.id) {
            // --no-X has no variable of its own: X=0 says it.
            if spec.name.hasPrefix("no-") { continue }
            let base = String(spec.name.uppercased().map { $0 == "-" ? "_" : $0 })
            for prefix in ["CAISSON_", "PYXIS_"] {
                guard let value = lookup(prefix + base), !value.isEmpty else { continue }
                let origin = prefix + base
                if spec.argument != nil {
                    try set(spec.id, value, origin: origin, replacing: true)
                } else if try ContainerOptions.bool(value, origin: origin) {
                    try set(spec.id, nil, origin: origin, replacing: true)
                } else if let opposite = ContainerOptions.pair(of: spec.id) {
                    try set(opposite, nil, origin: origin, replacing: true)
                } else {
                    entrypointLog = false  // the only flag without a --no- twin
                }
                break
            }
        }
    }

    static func spec(_ id: ID) -> Spec { table.first { $0.id == id }! }

    /// The other half of a --X / --no-X (or --container-writable / --container-readonly) pair.
    static func pair(of id: ID) -> ID? {
        switch id {
        case .mountHome: return .noMountHome
        case .noMountHome: return .mountHome
        case .remapRoot: return .noRemapRoot
        case .noRemapRoot: return .remapRoot
        case .entrypoint: return .noEntrypoint
        case .noEntrypoint: return .entrypoint
        case .writable: return .readonly
        case .readonly: return .writable
        default: return nil
        }
    }

    static func bool(_ value: String, origin: String) throws(PluginError) -> Bool {
        switch value.lowercased() {
        case "1", "true", "yes", "y", "on": return true
        case "0", "false", "no", "n", "off": return false
        default: throw PluginError(.options, "\(origin): expected 1 or 0 (true/false, yes/no), not '\(value)'")
        }
    }

    private mutating func set(_ id: ID, _ value: String?, origin: String, replacing: Bool = false) throws(PluginError) {
        func text() throws(PluginError) -> String {
            guard let value, !value.isEmpty else { throw PluginError(.options, "\(origin): argument required") }
            return value
        }
        func single(_ current: String?, _ new: String) throws(PluginError) -> String {
            if let current, current != new, !replacing {
                throw PluginError(.options, "\(origin) specified multiple times ('\(current)' and '\(new)')")
            }
            return new
        }
        func flag(_ current: Bool?, _ new: Bool, _ names: String) throws(PluginError) -> Bool {
            if let current, current != new, !replacing {
                throw PluginError(.options, "both \(names) were specified")
            }
            return new
        }
        switch id {
        case .image:
            image = try single(image, try text())
        case .mounts:
            let entries = try ContainerOptions.parseMounts(try text(), origin: origin)
            if replacing { mounts = [] }
            for entry in entries where !mounts.contains(entry) { mounts.append(entry) }
        case .workdir:
            let dir = try text()
            guard dir.hasPrefix("/") else { throw PluginError(.options, "\(origin): the working directory must be an absolute path in the container") }
            workdir = try single(workdir, dir)
        case .name:
            let (name, flag) = try ContainerOptions.parseName(try text(), origin: origin)
            if let current = self.name, (current != name || nameFlag != flag), !replacing {
                throw PluginError(.options, "\(origin) specified multiple times")
            }
            self.name = name
            nameFlag = flag
        case .save:
            save = try single(save, try text())
        case .mountHome, .noMountHome:
            mountHome = try flag(mountHome, id == .mountHome, "--container-mount-home and --no-container-mount-home")
        case .remapRoot, .noRemapRoot:
            remapRoot = try flag(remapRoot, id == .remapRoot, "--container-remap-root and --no-container-remap-root")
        case .entrypoint, .noEntrypoint:
            entrypoint = try flag(entrypoint, id == .entrypoint, "--container-entrypoint and --no-container-entrypoint")
        case .entrypointLog:
            entrypointLog = true
        case .writable, .readonly:
            writable = try flag(writable, id == .writable, "--container-writable and --container-readonly")
        case .environment:
            let names = try text().split(separator: ",").map(String.init)
            for name in names where !ContainerOptions.isVariableName(name) {
                throw PluginError(.options, "\(origin): '\(name)' is not a variable name")
            }
            if replacing { environment = [] }
            for name in names where !environment.contains(name) { environment.append(name) }
        }
    }

    /// `SRC:DST[:FLAGS],...` → one `SRC:DST[:FLAGS]` per mount, as `caisson start -m` takes them
    /// (Caisson's defaults are pyxis's: rbind, x-create=auto). A missing DST means the same path.
    static func parseMounts(_ text: String, origin: String) throws(PluginError) -> [String] {
        var result: [String] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let parts = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard let source = parts.first, !source.isEmpty, parts.count < 2 || !parts[1].isEmpty else {
                throw PluginError(.options, "\(origin): invalid format: '\(entry)' (expected SRC:DST[:FLAGS])")
            }
            if parts.count > 1, !parts[1].hasPrefix("/") {
                throw PluginError(.options, "\(origin): '\(entry)': the destination must be an absolute path in the container")
            }
            if source == "tmpfs" && parts.count < 2 {
                throw PluginError(.options, "\(origin): '\(entry)': a tmpfs needs a destination (tmpfs:/dst)")
            }
            result.append(entry)
        }
        return result
    }

    /// `NAME[:FLAG]`. Names become `pyxis_NAME` containers: letters, digits, `.`, `_`, `-`.
    static func parseName(_ text: String, origin: String) throws(PluginError) -> (String, NameFlag) {
        var name = text
        var flag = NameFlag.auto
        if let colon = text.lastIndex(of: ":") {
            name = String(text[..<colon])
            let raw = String(text[text.index(after: colon)...])
            guard let parsed = NameFlag(rawValue: raw) else {
                throw PluginError(.options, "\(origin): unknown flag '\(raw)' (auto, create, exec or no_exec)")
            }
            flag = parsed
        }
        let valid = !name.isEmpty && name.utf8.count <= 100 && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x2E || c == 0x5F
        }
        guard valid else {
            throw PluginError(.options, "\(origin): '\(name)' is not a valid container name (letters, digits, '.', '_' and '-')")
        }
        return (name, flag)
    }

    static func isVariableName(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == 0x5F || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else { return false }
        return text.utf8.allSatisfy { c in c == 0x5F || (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) }
    }
}
