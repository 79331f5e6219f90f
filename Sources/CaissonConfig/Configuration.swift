import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Caisson's settings: built-in defaults, then `caisson.conf` and `caisson.conf.d/*.conf`
/// from the system configuration directory, then the environment (which wins).
///
/// The file format is enroot's: one `CAISSON_KEY value` per line, `#` comments, values may
/// use `$VAR` / `${VAR}` from the environment and from keys set earlier.
public struct Configuration: Sendable {
    public struct Key: Sendable {
        public let name: String
        public let defaultValue: String
        public let summary: String
    }

    /// Every key Caisson reads. The README's configuration table is generated from the same facts.
    public static let keys: [Key] = [
        Key(name: "CAISSON_SYSCONF_PATH", defaultValue: "", summary: "system configuration: caisson.conf, hooks.d, mounts.d, environ.d (default: /etc/caisson, or PREFIX/etc/caisson for an install outside /usr)"),
        Key(name: "CAISSON_RUNTIME_PATH", defaultValue: "${XDG_RUNTIME_DIR}/caisson", summary: "per-start scratch mount point; falls back to $CAISSON_TEMP_PATH/caisson-runtime-<uid> when unset or unwritable"),
        Key(name: "CAISSON_CONFIG_PATH", defaultValue: "${XDG_CONFIG_HOME:-$HOME/.config}/caisson", summary: "user configuration: hooks.d, mounts.d, environ.d, credentials"),
        Key(name: "CAISSON_CACHE_PATH", defaultValue: "${XDG_CACHE_HOME:-$HOME/.cache}/caisson", summary: "layer cache"),
        Key(name: "CAISSON_DATA_PATH", defaultValue: "${XDG_DATA_HOME:-$HOME/.local/share}/caisson", summary: "named containers"),
        Key(name: "CAISSON_TEMP_PATH", defaultValue: "${TMPDIR:-/tmp}", summary: "scratch space for import and export"),
        Key(name: "CAISSON_MOUNT_HOME", defaultValue: "no", summary: "bind the caller's $HOME into the container (--mount-home)"),
        Key(name: "CAISSON_REMAP_ROOT", defaultValue: "no", summary: "map the caller to uid 0 with fakeroot syscalls (--root)"),
        Key(name: "CAISSON_ROOTFS_WRITABLE", defaultValue: "no", summary: "write through to the root filesystem (--rw)"),
        Key(name: "CAISSON_RESTRICT_DEV", defaultValue: "no", summary: "a minimal /dev (null, zero, full, random, urandom, tty, pts, shm) instead of the host's"),
        Key(name: "CAISSON_SQUASHFUSE", defaultValue: "", summary: "the FUSE server that mounts .sqsh images (default: squashfuse_ll, else squashfuse, from PATH)"),
        Key(name: "CAISSON_INSECURE_REGISTRIES", defaultValue: "", summary: "registries (host[:port], comma-separated) spoken to over plain HTTP"),
        Key(name: "CAISSON_MAX_CONNECTIONS", defaultValue: "4", summary: "layers downloaded at once"),
        Key(name: "CAISSON_CONNECT_TIMEOUT", defaultValue: "30", summary: "seconds to wait for a registry connection"),
        Key(name: "CAISSON_STALL_TIMEOUT", defaultValue: "60", summary: "seconds without data before a transfer is retried"),
        Key(name: "CAISSON_TRANSFER_RETRIES", defaultValue: "4", summary: "retries after 429, 5xx and network errors (with backoff)"),
    ]

    public private(set) var values: [String: String]
    /// Problems found while reading files: unknown keys and malformed lines. Reported, not fatal.
    public private(set) var warnings: [String] = []
    /// Set when an administrator or the user named the runtime path: then it must work, no fallback.
    public private(set) var explicitRuntimePath = false

    public init(values: [String: String]) { self.values = values }

    public subscript(_ key: String) -> String? { values[key] }

    public func flag(_ key: String) -> Bool { Configuration.parseBool(values[key] ?? "") ?? false }

    public static func parseBool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "1", "y", "yes", "true", "on": return true
        case "0", "n", "no", "false", "off", "": return false
        default: return nil
        }
    }

    /// Loads the effective configuration for the current process.
    public static func load(environment: [String: String] = ProcessEnvironment.dictionary()) -> Configuration {
        var env = environment
        if env["HOME"] == nil { env["HOME"] = Identity.current().home }
        let sysconf = env["CAISSON_SYSCONF_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultSysconfPath()
        var config = Configuration(values: ["CAISSON_SYSCONF_PATH": sysconf])
        for key in keys where key.name != "CAISSON_SYSCONF_PATH" {
            config.values[key.name] = expand(key.defaultValue, env)
        }
        if (env["XDG_RUNTIME_DIR"] ?? "").isEmpty {
            config.values["CAISSON_RUNTIME_PATH"] = ""  // runtimePath() picks the fallback
        }
        var files = ["\(sysconf)/caisson.conf"]
        files += Files.list("\(sysconf)/caisson.conf.d").filter { $0.hasSuffix(".conf") }.map { "\(sysconf)/caisson.conf.d/\($0)" }
        for file in files {
            do {
                if let text = try Files.readIfPresent(file) {
                    config.apply(fileText: text, origin: file, environment: env)
                }
            } catch {
                config.warnings.append("\(file): \(error.reason) (ignored)")
            }
        }
        for (name, value) in env where name.hasPrefix("CAISSON_") && name != "CAISSON_SYSCONF_PATH" {
            config.values[name] = value
            if name == "CAISSON_RUNTIME_PATH" { config.explicitRuntimePath = true }
        }
        return config
    }

    /// Applies `KEY value` lines. Later lines override earlier ones.
    public mutating func apply(fileText: String, origin: String, environment: [String: String]) {
        let known = Set(Configuration.keys.map(\.name))
        for (index, rawLine) in fileText.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
            let key = String(parts[0])
            guard key.hasPrefix("CAISSON_"), key.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) else {
                warnings.append("\(origin):\(index + 1): not a CAISSON_* setting: \(line)")
                continue
            }
            if !known.contains(key) {
                warnings.append("\(origin):\(index + 1): unknown setting \(key) (ignored)")
                continue
            }
            var value = parts.count > 1 ? String(parts[1]).trimmingWhitespace() : ""
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            var scope = environment
            for (k, v) in values { scope[k] = v }
            values[key] = Configuration.expand(value, scope)
            if key == "CAISSON_RUNTIME_PATH" { explicitRuntimePath = true }
        }
    }

    /// Expands `$VAR`, `${VAR}` and `${VAR:-default}`; unknown variables expand to nothing.
    public static func expand(_ text: String, _ scope: [String: String]) -> String {
        var output = ""
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            guard c == "$", let next = chars.first else { output.append(c); continue }
            if next == "{" {
                chars.removeFirst()
                var body = ""
                var depth = 1
                while let d = chars.popFirst() {
                    if d == "{" { depth += 1 } else if d == "}" { depth -= 1; if depth == 0 { break } }
                    body.append(d)
                }
                let parts = body.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[1].hasPrefix("-") {
                    let value = scope[String(parts[0])] ?? ""
                    output += value.isEmpty ? expand(String(parts[1].dropFirst()), scope) : value
                } else {
                    output += scope[body] ?? ""
                }
            } else if next == "_" || next.isLetter {
                var name = ""
                while let d = chars.first, d == "_" || d.isLetter || d.isNumber { name.append(d); chars.removeFirst() }
                output += scope[name] ?? ""
            } else {
                output.append(c)
            }
        }
        return output
    }

    /// /etc/caisson for a system install; PREFIX/etc/caisson when the binary lives in PREFIX/bin.
    public static func defaultSysconfPath() -> String {
        guard let exe = Files.readLink("/proc/self/exe") else { return "/etc/caisson" }
        let prefix = Path.parent(Path.parent(exe))
        if prefix == "/usr" || prefix == "/" { return "/etc/caisson" }
        let candidate = "\(prefix)/etc/caisson"
        return Files.isDirectory(candidate) ? candidate : "/etc/caisson"
    }

    public var sysconfPath: String { values["CAISSON_SYSCONF_PATH"] ?? "/etc/caisson" }
    public var configPath: String { values["CAISSON_CONFIG_PATH"] ?? "" }
    public var cachePath: String { values["CAISSON_CACHE_PATH"] ?? "" }
    public var dataPath: String { values["CAISSON_DATA_PATH"] ?? "" }
    public var tempPath: String { (values["CAISSON_TEMP_PATH"]).flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp" }

    /// The per-user runtime directory, created if needed. `XDG_RUNTIME_DIR` is often unset or
    /// unwritable in batch jobs (a frequent enroot/pyxis failure), so fall back to a private
    /// directory under the temp path that is verified to be ours.
    public func runtimePath() throws(ConfigurationError) -> String {
        let uid = getuid()
        if let configured = values["CAISSON_RUNTIME_PATH"], !configured.isEmpty {
            if (try? Files.makeDirectories(configured, mode: 0o700)) != nil, access(configured, W_OK | X_OK) == 0 {
                return configured
            }
            if explicitRuntimePath {
                throw ConfigurationError.runtimePathUnusable(configured, "it cannot be created or is not writable")
            }
        }
        let fallback = "\(tempPath)/caisson-runtime-\(uid)"
        if mkdir(fallback, 0o700) != 0 && errno != EEXIST {
            throw ConfigurationError.runtimePathUnusable(fallback, SystemError("mkdir", path: fallback).reason)
        }
        guard let st = Files.lstat(fallback), st.st_mode & S_IFMT == S_IFDIR, st.st_uid == uid else {
            throw ConfigurationError.runtimePathUnusable(fallback, "it exists but is not a directory owned by uid \(uid) (possible tampering)")
        }
        if st.st_mode & 0o077 != 0 { chmod(fallback, 0o700) }
        return fallback
    }
}

public enum ConfigurationError: Error, CustomStringConvertible {
    case runtimePathUnusable(String, String)

    public var description: String {
        switch self {
        case .runtimePathUnusable(let path, let why):
            return "runtime directory \(path) is unusable: \(why); set CAISSON_RUNTIME_PATH to a private writable directory (for example on node-local /tmp)"
        }
    }
}

extension StringProtocol {
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
