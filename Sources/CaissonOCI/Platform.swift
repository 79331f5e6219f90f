#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An image platform, in Go's GOOS/GOARCH vocabulary (`linux`, `amd64`, `arm64`, `ppc64le`…).
public struct Platform: Hashable, Sendable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?
    /// `os.version` (Windows builds; kept so nothing is lost).
    public var osVersion: String?
    /// `os.features`.
    public var osFeatures: [String]?

    public init(os: String, architecture: String, variant: String? = nil, osVersion: String? = nil, osFeatures: [String]? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.osVersion = osVersion
        self.osFeatures = osFeatures
    }

    /// `os/architecture[/variant]`.
    public var description: String {
        var text = "\(os)/\(architecture)"
        if let variant, !variant.isEmpty { text += "/\(variant)" }
        return text
    }

    /// The platform of this machine, from `uname -m` (Linux assumed for the OS).
    public static let current: Platform = {
        var name = utsname()
        guard uname(&name) == 0 else { return compiledPlatform }
        let machine = withUnsafeBytes(of: &name.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return machine.isEmpty ? compiledPlatform : Platform(unameMachine: machine)
    }()

    /// The platform for a `uname -m` value: `x86_64` → linux/amd64, `aarch64` → linux/arm64/v8,
    /// `armv7l` → linux/arm/v7, `ppc64le`, `riscv64`, `s390x` unchanged.
    public init(unameMachine machine: String) {
        let (architecture, variant) = Platform.normalizeArchitecture(machine, variant: nil)
        self.init(os: "linux", architecture: architecture, variant: architecture == "arm64" ? (variant ?? "v8") : variant)
    }

    private static var compiledPlatform: Platform {
        #if arch(x86_64)
        return Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
        return Platform(os: "linux", architecture: "arm64", variant: "v8")
        #elseif arch(powerpc64le)
        return Platform(os: "linux", architecture: "ppc64le")
        #elseif arch(s390x)
        return Platform(os: "linux", architecture: "s390x")
        #elseif arch(riscv64)
        return Platform(os: "linux", architecture: "riscv64")
        #else
        return Platform(os: "linux", architecture: "unknown")
        #endif
    }

    /// Parses `OS/ARCH[/VARIANT]` (e.g. `linux/arm64/v8`), or a bare `ARCH` meaning `linux/ARCH`.
    /// Architecture aliases are normalised (`aarch64` → `arm64`, `x86_64` → `amd64`); no default
    /// variant is added, so `linux/arm64` prints as written.
    public static func parse(_ string: String) throws(OCIError) -> Platform {
        let trimmed = string.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { throw OCIError.invalidPlatform(string, reason: "it is empty") }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false).map { $0.lowercased() }
        guard parts.count <= 3 else { throw OCIError.invalidPlatform(string, reason: "too many '/'-separated parts") }
        for part in parts {
            guard !part.isEmpty else { throw OCIError.invalidPlatform(string, reason: "empty part") }
            guard part.utf8.allSatisfy({ Grammar.isLowerAlnum($0) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }) else {
                throw OCIError.invalidPlatform(string, reason: "'\(printable(part))' may contain only letters, digits, '.', '_' and '-'")
            }
        }
        let os: String
        let architecture: String
        let variant: String?
        switch parts.count {
        case 1:
            if knownOperatingSystems.contains(parts[0]) {
                throw OCIError.invalidPlatform(string, reason: "'\(parts[0])' is an OS; add the architecture")
            }
            (os, architecture, variant) = ("linux", parts[0], nil)
        case 2: (os, architecture, variant) = (parts[0], parts[1], nil)
        default: (os, architecture, variant) = (parts[0], parts[1], parts[2])
        }
        let normalized = normalizeArchitecture(architecture, variant: variant)
        return Platform(os: os, architecture: normalized.architecture, variant: normalized.variant)
    }

    private static let knownOperatingSystems: Set<String> = [
        "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "illumos", "solaris", "aix",
    ]

    /// The same platform with lowercase OS, Go architecture names and explicit default variants
    /// (`arm64` → `v8`, `arm` variants `7` → `v7`). Two platforms match when their normalised
    /// forms agree.
    public var normalized: Platform {
        var copy = self
        copy.os = os.lowercased()
        let (architecture, variant) = Platform.normalizeArchitecture(self.architecture, variant: self.variant)
        copy.architecture = architecture
        copy.variant = architecture == "arm64" ? (variant ?? "v8") : variant
        return copy
    }

    /// Whether an index entry's platform satisfies this (requested) platform: same OS, same
    /// architecture, and the same variant when this platform names one (arm64 always compares
    /// variants, with `v8` as the default on both sides).
    public func matches(_ candidate: Platform) -> Bool {
        let want = normalized
        let have = candidate.normalized
        guard want.os == have.os, want.architecture == have.architecture else { return false }
        guard let wantVariant = want.variant, !wantVariant.isEmpty else { return true }
        return have.variant == wantVariant
    }

    /// Maps kernel / distribution spellings to Go's: `x86_64`, `x86-64` → `amd64`; `aarch64`,
    /// `armv8*` (64-bit) → `arm64`; `i386…i686` → `386`; `armhf`, `armv7l` → `arm` + `v7`;
    /// `armel`, `armv6l` → `arm` + `v6`; `ppc64el` → `ppc64le`. Variants `8` → `v8` and the like.
    static func normalizeArchitecture(_ architecture: String, variant: String?) -> (architecture: String, variant: String?) {
        let arch = architecture.lowercased()
        var variant = variant?.lowercased()
        if let v = variant, v.isEmpty { variant = nil }
        switch arch {
        case "x86_64", "x86-64", "amd64":
            return ("amd64", variant)
        case "aarch64", "arm64", "armv8", "armv8l", "arm64v8":
            if variant == "8" { variant = "v8" }
            return ("arm64", variant)
        case "i386", "i486", "i586", "i686", "386", "x86":
            return ("386", nil)
        case "armhf", "armv7", "armv7l", "arm32v7":
            return ("arm", "v7")
        case "armel", "armv6", "armv6l", "arm32v6":
            return ("arm", "v6")
        case "armv5", "armv5l", "armv5tel", "arm32v5":
            return ("arm", "v5")
        case "arm":
            if let v = variant, ["5", "6", "7", "8"].contains(v) { variant = "v" + v }
            return ("arm", variant)
        case "ppc64le", "ppc64el", "powerpc64le":
            return ("ppc64le", variant)
        case "riscv64", "s390x", "mips64le", "mips64", "loong64", "ppc64":
            return (arch, variant)
        default:
            return (arch, variant)
        }
    }
}

extension Platform: Codable {
    private enum CodingKeys: String, CodingKey {
        case os
        case architecture
        case variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }
}
