/// Hand-written matchers for the distribution-spec grammars. They work on UTF-8 bytes so that no
/// Unicode normalisation or look-alike character can slip past them.
enum Grammar {
    static func isLowerAlnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || isDigit(b) }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isAlpha(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) }
    static func isAlnum(_ b: UInt8) -> Bool { isAlpha(b) || isDigit(b) }
    static func isLowerHex(_ b: UInt8) -> Bool { isDigit(b) || (b >= 0x61 && b <= 0x66) }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
    static func isRepository(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard !bytes.isEmpty else { return false }
        var component: [UInt8] = []
        for b in bytes + [0x2f] {
            if b == 0x2f {
                guard isPathComponent(component) else { return false }
                component.removeAll(keepingCapacity: true)
            } else {
                component.append(b)
            }
        }
        return true
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isPathComponent(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else {
            return false
        }
        var separator: [UInt8] = []
        for b in bytes {
            if isLowerAlnum(b) {
                if !separator.isEmpty {
                    guard isSeparator(separator) else { return false }
                    separator.removeAll(keepingCapacity: true)
                }
            } else if b == 0x2e || b == 0x5f || b == 0x2d {
                separator.append(b)
            } else {
                return false
            }
        }
        return true
    }

    /// `\.|_|__|-+`
    private static func isSeparator(_ s: [UInt8]) -> Bool {
        if s == [0x2e] || s == [0x5f] || s == [0x5f, 0x5f] { return true }
        return s.allSatisfy { $0 == 0x2d }
    }

    /// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
    static func isTag(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard let first = bytes.first, bytes.count <= 128, isAlnum(first) || first == 0x5f else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == 0x5f || $0 == 0x2e || $0 == 0x2d }
    }

    /// The digest algorithm grammar of the image spec: `[a-z0-9]+([+._-][a-z0-9]+)*`.
    static func isAlgorithm(_ s: Substring) -> Bool {
        let bytes = Array(s.utf8)
        guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else {
            return false
        }
        var previousWasSeparator = false
        for b in bytes {
            if isLowerAlnum(b) {
                previousWasSeparator = false
            } else if b == 0x2b || b == 0x2e || b == 0x5f || b == 0x2d {
                if previousWasSeparator { return false }
                previousWasSeparator = true
            } else {
                return false
            }
        }
        return true
    }

    /// `host[:port]`: a DNS name (letters, digits, `-`, `_`, `.`), an IPv4 address or a bracketed
    /// IPv6 address, then an optional decimal port 1–65535. Returns why it is not, or nil.
    static func registryProblem(_ s: String) -> String? {
        if s.isEmpty { return "the registry is empty" }
        if s.utf8.count > 253 + 6 { return "the registry name is too long" }
        if s.contains("/") { return "a registry is host[:port] and cannot contain '/'" }
        if s.contains("@") { return "a registry cannot contain user information ('@'); put the user first: USER@REGISTRY#IMAGE" }
        var host = Substring(s)
        var port: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return "unterminated IPv6 address" }
            let inside = host[host.index(after: host.startIndex)..<close]
            guard !inside.isEmpty, inside.utf8.allSatisfy({ isLowerHex($0) || (0x41...0x46).contains($0) || $0 == 0x3a || $0 == 0x2e }) else {
                return "invalid IPv6 address"
            }
            let rest = host[host.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return "unexpected characters after the IPv6 address" }
                port = rest.dropFirst()
            }
        } else {
            if let colon = host.firstIndex(of: ":") {
                port = host[host.index(after: colon)...]
                host = host[..<colon]
            }
            if host.isEmpty { return "the registry host is empty" }
            for label in host.split(separator: ".", omittingEmptySubsequences: false) {
                if let problem = labelProblem(label) { return problem }
            }
        }
        if let port {
            guard !port.isEmpty, port.utf8.count <= 5, port.utf8.allSatisfy(isDigit), let value = Int(port), (1...65535).contains(value) else {
                return "the registry port '\(port)' is not a number between 1 and 65535"
            }
        }
        return nil
    }

    private static func labelProblem(_ label: Substring) -> String? {
        guard !label.isEmpty else { return "the registry host has an empty label" }
        guard label.utf8.count <= 63 else { return "a registry host label is longer than 63 characters" }
        guard label.utf8.allSatisfy({ isAlnum($0) || $0 == 0x2d || $0 == 0x5f }) else {
            return "the registry host may contain only letters, digits, '-', '_' and '.'"
        }
        guard label.first != "-", label.last != "-" else { return "a registry host label cannot start or end with '-'" }
        return nil
    }
}
