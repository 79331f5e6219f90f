import CaissonConfig
import CaissonSystem

/// The environment a container's command sees, built in layers (later layers win):
/// the host's environment minus a deny list → the image's /etc/environment → `environ.d/*.env`
/// drop-ins (system, then user) → `--env` flags → lines that hooks append to $CAISSON_ENVIRON.
public struct ContainerEnvironment: Sendable {
    public private(set) var variables: [(name: String, value: String)] = []

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Host variables that would break or mislead a container: the dynamic loader's, the host's
    /// module system (its paths do not exist inside), shell functions exported by it, and
    /// Caisson's own settings.
    public static let deniedNames: Set<String> = [
        "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_BIND_NOW", "LD_DEBUG",
        "MODULEPATH", "MODULESHOME", "LOADEDMODULES", "_LMFILES_", "MODULEPATH_ROOT",
        "BASH_ENV", "ENV", "PROMPT_COMMAND",
    ]
    public static let deniedPrefixes = ["BASH_FUNC_", "LMOD_", "__LMOD", "CAISSON_"]

    public static func isDenied(_ name: String) -> Bool {
        deniedNames.contains(name) || deniedPrefixes.contains(where: { name.hasPrefix($0) })
    }

    public init() {}

    public subscript(_ name: String) -> String? {
        variables.last(where: { $0.name == name })?.value
    }

    public mutating func set(_ name: String, _ value: String) {
        if let index = variables.firstIndex(where: { $0.name == name }) {
            variables[index].value = value
        } else {
            variables.append((name, value))
        }
    }

    public var dictionary: [String: String] {
        var result: [String: String] = [:]
        for (name, value) in variables { result[name] = value }
        return result
    }

    /// `NAME=VALUE` strings for execve.
    public var assignments: [String] { variables.map { "\($0.name)=\($0.value)" } }

    public mutating func importHost(_ host: [(name: String, value: String)]) {
        for (name, value) in host where !ContainerEnvironment.isDenied(name) { set(name, value) }
        set("PATH", ContainerEnvironment.defaultPath)
    }

    /// `/etc/environment` (pam_env style): `KEY=VALUE`, optional `export`, optional quotes. No expansion.
    public mutating func apply(etcEnvironment text: String) {
        for line in ContainerEnvironment.lines(text) {
            guard let (name, value) = ContainerEnvironment.split(line) else { continue }
            set(name, ContainerEnvironment.unquote(value))
        }
    }

    /// `environ.d/*.env` and hook additions: `KEY=VALUE` with `$VAR`/`${VAR}` expanded from the
    /// environment built so far, or a bare `KEY` to pass the host's value through.
    public mutating func apply(dropIn text: String, host: [String: String]) {
        for line in ContainerEnvironment.lines(text) {
            if let (name, value) = ContainerEnvironment.split(line) {
                set(name, Configuration.expand(ContainerEnvironment.unquote(value), dictionary))
            } else if ContainerEnvironment.isName(line), let value = host[line] {
                set(line, value)
            }
        }
    }

    /// `--env KEY=VALUE` (literal) or `--env KEY` (the host's value; unset if the host has none).
    public mutating func apply(flag: String, host: [String: String]) throws(StartError) {
        if let (name, value) = ContainerEnvironment.split(flag) {
            set(name, value)
        } else if ContainerEnvironment.isName(flag) {
            if let value = host[flag] { set(flag, value) } else { variables.removeAll { $0.name == flag } }
        } else {
            throw StartError(.environment, "--env \(flag): expected NAME=VALUE or NAME")
        }
    }

    /// The file hooks read and append to: one `NAME=VALUE` per line. Values with newlines are
    /// left out (they cannot be represented one per line; exported shell functions are the usual case).
    public var fileText: String {
        variables.filter { !$0.value.contains("\n") }.map { "\($0.name)=\($0.value)\n" }.joined()
    }

    static func lines(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    static func split(_ line: String) -> (String, String)? {
        var line = Substring(line)
        if line.hasPrefix("export ") { line = line.dropFirst("export ".count) }
        guard let eq = line.firstIndex(of: "=") else { return nil }
        let name = String(line[..<eq]).trimmingWhitespace()
        guard isName(name) else { return nil }
        return (name, String(line[line.index(after: eq)...]))
    }

    static func isName(_ text: String) -> Bool {
        guard let first = text.first, first == "_" || first.isLetter else { return false }
        return text.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber }
    }

    static func unquote(_ value: String) -> String {
        if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
            return String(value.dropFirst().dropLast())
        }
        return value
    }
}
