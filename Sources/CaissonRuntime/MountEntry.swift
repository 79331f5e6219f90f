import CaissonConfig
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// One mount to make in the container: an fstab(5) line, with enroot's `x-create` extension.
///
/// `source target type options` — for bind mounts the type is `none` and the options hold
/// `bind` or `rbind`; `x-create=dir|file|auto` creates a missing target.
public struct MountEntry: Equatable, Sendable, CustomStringConvertible {
    public var source: String
    public var target: String
    public var type: String
    public var options: [String]
    /// Where the entry came from (file:line or flag), for error messages.
    public var origin: String

    public init(source: String, target: String, type: String = "none", options: [String], origin: String) {
        self.source = source
        self.target = target
        self.type = type
        self.options = options
        self.origin = origin
    }

    public var isBind: Bool { options.contains("bind") || options.contains("rbind") }
    public var isRecursive: Bool { options.contains("rbind") }

    public var create: RootResolver.Kind? {
        guard let value = options.first(where: { $0.hasPrefix("x-create=") })?.dropFirst("x-create=".count) else { return nil }
        switch value {
        case "dir": return .directory
        case "file": return .file
        default:  // auto: like the source
            if isBind, let st = Files.stat(source), st.st_mode & S_IFMT != S_IFDIR { return .file }
            return .directory
        }
    }

    /// An optional mount (`nofail`) is skipped when its source is missing.
    public var optional: Bool { options.contains("nofail") }

    public var description: String {
        "\(source) \(target) \(type) \(options.isEmpty ? "defaults" : options.joined(separator: ","))"
    }
}

public enum MountParseError: Error, CustomStringConvertible, Equatable {
    case malformed(origin: String, line: String, why: String)

    public var description: String {
        switch self {
        case .malformed(let origin, let line, let why): return "\(origin): \(why): \(line)"
        }
    }
}

public enum MountTable {
    /// Parses fstab text. Fields are separated by blanks; `\040` escapes a space as in fstab(5);
    /// the dump and pass fields are accepted and ignored.
    public static func parse(_ text: String, origin: String) throws(MountParseError) -> [MountEntry] {
        var entries: [MountEntry] = []
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { unescape(String($0)) }
            let place = "\(origin):\(index + 1)"
            guard fields.count >= 2 else {
                throw .malformed(origin: place, line: line, why: "expected `SOURCE TARGET [TYPE [OPTIONS]]`")
            }
            guard fields[1].hasPrefix("/") else {
                throw .malformed(origin: place, line: line, why: "the target must be an absolute path in the container")
            }
            let type = fields.count > 2 ? fields[2] : "none"
            var options = fields.count > 3 ? fields[3].split(separator: ",").map(String.init) : []
            options.removeAll { $0 == "defaults" }
            if type == "none" && !options.contains("bind") && !options.contains("rbind") { options.append("rbind") }
            entries.append(MountEntry(source: fields[0], target: fields[1], type: type, options: options, origin: place))
        }
        return entries
    }

    /// Parses `--mount SRC[:DST[:OPTS]]`. OPTS are separated by `,` or `+` (pyxis' spelling); the
    /// default is a recursive bind with `x-create=auto`. SRC `tmpfs` makes a tmpfs.
    public static func parseFlag(_ text: String, currentDirectory: String = Path.currentDirectory()) throws(MountParseError) -> MountEntry {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else {
            throw .malformed(origin: "--mount", line: text, why: "expected SRC[:DST[:OPTIONS]]")
        }
        var options = parts.count > 2 ? parts[2].split(whereSeparator: { $0 == "," || $0 == "+" }).map(String.init) : []
        if first == "tmpfs" {
            guard parts.count > 1, parts[1].hasPrefix("/") else {
                throw .malformed(origin: "--mount", line: text, why: "a tmpfs mount needs an absolute destination (tmpfs:/dst)")
            }
            if !options.contains(where: { $0.hasPrefix("x-create=") }) { options.append("x-create=dir") }
            return MountEntry(source: "tmpfs", target: parts[1], type: "tmpfs", options: options, origin: "--mount \(text)")
        }
        let source = first.hasPrefix("/") ? first : Path.join(currentDirectory, first)
        let target = parts.count > 1 && !parts[1].isEmpty ? parts[1] : source
        guard target.hasPrefix("/") else {
            throw .malformed(origin: "--mount", line: text, why: "the destination must be an absolute path in the container")
        }
        if !options.contains("bind") && !options.contains("rbind") { options.append("rbind") }
        if !options.contains(where: { $0.hasPrefix("x-create=") }) { options.append("x-create=auto") }
        return MountEntry(source: source, target: target, type: "none", options: options, origin: "--mount \(text)")
    }

    private static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var out = ""
        var chars = Array(field)[...]
        while let c = chars.popFirst() {
            if c == "\\", chars.count >= 3, let code = Int(String(chars.prefix(3)), radix: 8), let scalar = Unicode.Scalar(code) {
                out.unicodeScalars.append(scalar)
                chars.removeFirst(3)
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Maps fstab options to mount(2) flags and the filesystem data string.
    public static func flags(for options: [String]) -> (flags: UInt, data: String, propagation: UInt) {
        var flags: UInt = 0
        var propagation: UInt = 0
        var data: [String] = []
        for option in options {
            switch option {
            case "ro": flags |= MountFlag.rdonly
            case "rw": flags &= ~MountFlag.rdonly
            case "nosuid": flags |= MountFlag.nosuid
            case "nodev": flags |= MountFlag.nodev
            case "noexec": flags |= MountFlag.noexec
            case "noatime": flags |= MountFlag.noatime
            case "nodiratime": flags |= MountFlag.nodiratime
            case "relatime": flags |= MountFlag.relatime
            case "private": propagation = MountFlag.privateProp
            case "rprivate": propagation = MountFlag.privateProp | MountFlag.rec
            case "slave": propagation = MountFlag.slave
            case "rslave": propagation = MountFlag.slave | MountFlag.rec
            case "shared", "rshared", "unbindable", "runbindable": break  // never propagate back to the host
            case "bind", "rbind", "suid", "dev", "exec", "nofail", "auto", "noauto", "user", "nouser", "defaults":
                break
            default:
                if !option.hasPrefix("x-") { data.append(option) }
            }
        }
        return (flags, data.joined(separator: ","), propagation)
    }
}
