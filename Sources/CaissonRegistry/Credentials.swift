import Foundation

/// A user name and password (or token) for one registry.
public struct Credential: Sendable, Equatable {
    public let user: String
    public let password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    var basicAuthorization: String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }
}

/// Where credentials come from: a netrc-format file in the user's configuration directory
/// (enroot's `.credentials` format: `machine HOST login USER password SECRET`), then Docker's
/// `~/.docker/config.json` `auths`. Secrets are only ever sent to the registry they belong to.
public struct CredentialStore: Sendable {
    private var netrc: [(machine: String, credential: Credential)] = []
    private var docker: [String: Credential] = [:]

    public init() {}

    public init(netrcPath: String?, dockerConfigPath: String?) {
        if let netrcPath, let text = try? String(contentsOfFile: netrcPath, encoding: .utf8) {
            netrc = CredentialStore.parseNetrc(text)
        }
        if let dockerConfigPath, let data = FileManager.default.contents(atPath: dockerConfigPath) {
            docker = CredentialStore.parseDockerConfig(data)
        }
    }

    /// The credential for `registry`; when the reference names a user (`USER@REGISTRY#IMAGE`),
    /// only an entry for that user matches.
    public func credential(for registry: String, user: String? = nil) -> Credential? {
        let names = CredentialStore.aliases(of: registry)
        for entry in netrc where names.contains(entry.machine) || entry.machine == "default" {
            if user == nil || entry.credential.user == user { return entry.credential }
        }
        for name in names {
            if let credential = docker[name], user == nil || credential.user == user { return credential }
        }
        return nil
    }

    /// Docker Hub goes by several names; credentials saved under any of them apply.
    static func aliases(of registry: String) -> [String] {
        let hub = ["registry-1.docker.io", "docker.io", "index.docker.io", "https://index.docker.io/v1/"]
        return hub.contains(registry) ? hub : [registry, "https://\(registry)", "http://\(registry)"]
    }

    static func parseNetrc(_ text: String) -> [(machine: String, credential: Credential)] {
        var tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0.isNewline }).map(String.init)[...]
        var entries: [(String, Credential)] = []
        var machine: String?, login: String?, password: String?
        func flush() {
            if let m = machine, let l = login, let p = password { entries.append((m, Credential(user: l, password: p))) }
            machine = nil; login = nil; password = nil
        }
        while let token = tokens.popFirst() {
            switch token {
            case "machine": flush(); machine = tokens.popFirst()
            case "default": flush(); machine = "default"
            case "login": login = tokens.popFirst()
            case "password": password = tokens.popFirst()
            default: if token.hasPrefix("#") { continue }
            }
        }
        flush()
        return entries
    }

    static func parseDockerConfig(_ data: Data) -> [String: Credential] {
        struct Config: Decodable {
            struct Entry: Decodable { var auth: String?; var username: String?; var password: String? }
            var auths: [String: Entry]?
        }
        guard let config = try? JSONDecoder().decode(Config.self, from: data) else { return [:] }
        var result: [String: Credential] = [:]
        for (host, entry) in config.auths ?? [:] {
            if let user = entry.username, let password = entry.password {
                result[host] = Credential(user: user, password: password)
            } else if let auth = entry.auth, let decoded = Data(base64Encoded: auth),
                      let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") {
                result[host] = Credential(user: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            }
        }
        return result
    }
}

/// One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1), e.g.
/// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"`.
public struct AuthChallenge: Sendable, Equatable {
    public let scheme: String
    public let parameters: [String: String]

    /// Parses every challenge in a header. Quoted values may hold commas and escaped quotes.
    public static func parse(_ header: String) -> [AuthChallenge] {
        var challenges: [AuthChallenge] = []
        var chars = Array(header)[...]
        func skipSpace() { while let c = chars.first, c == " " || c == "\t" || c == "," { chars.removeFirst() } }
        func token() -> String {
            var t = ""
            while let c = chars.first, c != " ", c != "\t", c != ",", c != "=" { t.append(c); chars.removeFirst() }
            return t
        }
        skipSpace()
        while !chars.isEmpty {
            let scheme = token()
            guard !scheme.isEmpty else { chars.removeFirst(); continue }
            var parameters: [String: String] = [:]
            while true {
                skipSpace()
                let save = chars
                let name = token()
                guard !name.isEmpty, chars.first == "=" else { chars = save; break }
                chars.removeFirst()
                var value = ""
                if chars.first == "\"" {
                    chars.removeFirst()
                    while let c = chars.popFirst(), c != "\"" {
                        if c == "\\", let escaped = chars.popFirst() { value.append(escaped) } else { value.append(c) }
                    }
                } else {
                    value = token()
                }
                parameters[name.lowercased()] = value
            }
            challenges.append(AuthChallenge(scheme: scheme.lowercased(), parameters: parameters))
            skipSpace()
        }
        return challenges
    }
}
