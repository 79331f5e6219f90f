import CaissonConfig
import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Named containers: persistent root filesystems under the data path (`$CAISSON_DATA_PATH/NAME`),
/// one plain directory each, as enroot keeps them.
///
/// Nothing in a container directory is ever locked: starts only read it (the overlay keeps their
/// changes elsewhere), so any number of them run at once. Containers appear atomically — a
/// `create` unpacks into `.NAME.partial-HOST-PID` (ScratchName) and renames it with
/// RENAME_NOREPLACE, so two creates of one name cannot both win, and a killed one leaves only a
/// hidden directory that is never listed or started and is collected later.
public struct ContainerStore: Sendable {
    public let dataPath: String
    public let running: RunningContainers?

    public init(configuration: Configuration) {
        dataPath = configuration.dataPath
        running = (try? configuration.runtimePath()).map { RunningContainers(directory: "\($0)/running") }
    }

    public init(dataPath: String, running: RunningContainers?) {
        self.dataPath = dataPath
        self.running = running
    }

    /// Names are single path components a shell can pass around unquoted.
    public static func validate(name: String) throws(StoreError) {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x2E || c == 0x5F
        }
        guard !name.isEmpty, name.utf8.count <= 128, allowed, !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw StoreError.invalidName(name)
        }
    }

    /// The default name for a container made from an image file: its name without `.sqsh`.
    public static func defaultName(forImage path: String) -> String {
        var name = Path.basename(path)
        for suffix in [".sqsh", ".sqfs", ".squashfs"] where name.hasSuffix(suffix) {
            name.removeLast(suffix.count)
            break
        }
        return name
    }

    public func path(of name: String) -> String { "\(dataPath)/\(name)" }

    public func exists(_ name: String) -> Bool {
        (try? ContainerStore.validate(name: name)) != nil && Files.isDirectory(path(of: name))
    }

    /// The containers, sorted by name (hidden partial and removing directories are not containers).
    public func names() -> [String] {
        Files.list(dataPath).filter { !$0.hasPrefix(".") && Files.lstat(path(of: $0)).map { $0.st_mode & S_IFMT == S_IFDIR } == true }
    }

    /// Where a create of `name` by this process unpacks before it is published.
    public func partialPath(for name: String) -> String { "\(dataPath)/\(ScratchName.make(name, kind: "partial"))" }

    /// Publishes a finished partial directory as `name`; fails if the name was taken meanwhile.
    public func publish(partial: String, as name: String) throws(StoreError) {
        let data: FileDescriptor
        do { data = try FileDescriptor.open(dataPath, O_RDONLY | O_DIRECTORY) } catch { throw StoreError.system(error) }
        if caisson_rename_noreplace(data.rawValue, Path.basename(partial), data.rawValue, name) != 0 {
            if errno == EEXIST { throw StoreError.exists(name) }
            throw StoreError.system(SystemError("rename", path: path(of: name)))
        }
        fsync(data.rawValue)
    }

    /// Removes containers. A running container is refused unless `force`; its processes then keep
    /// running on files that are gone.
    public func remove(_ name: String, force: Bool) throws(StoreError) {
        try ContainerStore.validate(name: name)
        guard exists(name) else { throw StoreError.notFound(name) }
        let pids = running?.pids(of: name) ?? []
        if !pids.isEmpty && !force { throw StoreError.running(name, pids) }
        // Renamed first, so that the name is free at once and a half-removed tree is never started.
        let doomed = "\(dataPath)/\(ScratchName.make(name, kind: "removing"))"
        guard rename(path(of: name), doomed) == 0 else {
            if errno == ENOENT { throw StoreError.notFound(name) }
            throw StoreError.system(SystemError("rename", path: path(of: name)))
        }
        do { try FileTree.remove(doomed) } catch { throw StoreError.system(error) }
    }

    /// Deletes what killed creates and removes on this host left behind (`.NAME.partial-HOST-PID`,
    /// `.NAME.removing-HOST-PID` whose PID is gone). Returns the paths removed.
    @discardableResult
    public func collectLeftovers() -> [String] {
        var removed: [String] = []
        for entry in Files.list(dataPath) where ScratchName.isAbandoned(entry, kinds: ["partial", "removing"]) {
            if (try? FileTree.remove("\(dataPath)/\(entry)")) != nil { removed.append(entry) }
        }
        return removed
    }

    /// What `caisson list --fancy` shows about a container.
    public struct Details: Sendable {
        public var name: String
        public var bytes: UInt64
        public var entries: Int
        /// The image reference it was imported from, read from its /etc/caisson/image.json.
        public var source: String?
        public var pids: [Int32]
    }

    public func details(of name: String) -> Details {
        let root = path(of: name)
        let usage = FileTree.usage(root)
        let source = (try? Files.readIfPresent("\(root)/etc/caisson/image.json")).flatMap { $0 }.flatMap { ContainerStore.jsonString("source", in: $0) }
        return Details(name: name, bytes: usage.bytes, entries: usage.entries, source: source,
                       pids: running?.pids(of: name) ?? [])
    }

    /// One string member of a flat JSON object; enough for image.json without a JSON library in
    /// the runtime binary.
    static func jsonString(_ key: String, in text: String) -> String? {
        let needle = Array("\"\(key)\"".utf8)
        let bytes = Array(text.utf8)
        guard bytes.count >= needle.count,
              let start = (0...(bytes.count - needle.count)).first(where: { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
        else { return nil }
        var rest = Substring(String(decoding: bytes[(start + needle.count)...], as: UTF8.self)).drop { $0 == " " || $0 == ":" || $0 == "\n" || $0 == "\t" }
        guard rest.first == "\"" else { return nil }
        rest = rest.dropFirst()
        var value = ""
        var escaped = false
        for c in rest {
            if escaped { value.append(c == "n" ? "\n" : c); escaped = false; continue }
            if c == "\\" { escaped = true; continue }
            if c == "\"" { return value }
            value.append(c)
        }
        return nil
    }
}

public enum StoreError: Error, CustomStringConvertible, Equatable {
    case invalidName(String)
    case notFound(String)
    case exists(String)
    case running(String, [Int32])
    case system(SystemError)

    public var description: String {
        switch self {
        case .invalidName(let name):
            return "'\(name)' is not a valid container name: use letters, digits, '.', '_' and '-', not starting with '.' or '-'"
        case .notFound(let name):
            return "no container named '\(name)' (see `caisson list`)"
        case .exists(let name):
            return "a container named '\(name)' already exists: pick another --name, or `caisson remove \(name)` first"
        case .running(let name, let pids):
            return "container '\(name)' is running (pid \(pids.map(String.init).joined(separator: ", "))): stop it, or use --force"
        case .system(let error):
            return error.description
        }
    }
}
