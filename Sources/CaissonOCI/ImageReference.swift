/// A registry image: `[USER@]REGISTRY` + repository + tag and/or digest.
///
/// Parsed from enroot's syntax `docker://[USER@][REGISTRY#]IMAGE[:TAG][@DIGEST]` or Docker's
/// `REGISTRY/IMAGE[:TAG][@DIGEST]` (when the first path component has a `.` or `:` or is `localhost`);
/// the `docker://` scheme is optional. Docker Hub: registry `registry-1.docker.io` (for `docker.io`,
/// `index.docker.io` too), single-component names get `library/`, the default tag is `latest`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// The user name to log in with (enroot's `USER@`), if any.
    public let user: String?
    /// `host[:port]`, lowercase; Docker Hub is `registry-1.docker.io`.
    public let registry: String
    /// The repository path, e.g. `nvidia/pytorch` or `library/ubuntu`.
    public let repository: String
    /// The tag; `latest` when neither a tag nor a digest was given, nil when only a digest was.
    public let tag: String?
    /// The pinned digest; when present it is what gets fetched (it wins over the tag).
    public let digest: Digest?

    public static let dockerHubRegistry = "registry-1.docker.io"
    public static let defaultTag = "latest"
    static let dockerHubAliases: Set<String> = ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]

    /// The syntax reminder shown with every reference error.
    static let syntaxHint = "expected docker://[USER@][REGISTRY#]IMAGE[:TAG|@sha256:DIGEST] or REGISTRY/IMAGE[:TAG], "
        + "e.g. docker://nvcr.io#nvidia/pytorch:24.05-py3, nvcr.io/nvidia/pytorch:24.05-py3 or ubuntu:24.04"

    /// Makes a reference from parts, normalising the registry (Docker Hub aliases, `library/`) and
    /// validating every part.
    public init(user: String? = nil, registry: String = dockerHubRegistry, repository: String, tag: String? = nil, digest: Digest? = nil) throws(OCIError) {
        let input = "\(user.map { "\($0)@" } ?? "")\(registry)#\(repository)\(tag.map { ":\($0)" } ?? "")\(digest.map { "@\($0)" } ?? "")"
        try self.init(validating: input, user: user, registry: registry, repository: repository, tag: tag, digest: digest)
    }

    private init(validating input: String, user: String?, registry: String, repository: String, tag: String?, digest: Digest?) throws(OCIError) {
        func fail(_ reason: String) -> OCIError { .invalidReference(input, reason: reason, hint: Self.syntaxHint) }

        if let user {
            guard !user.isEmpty else { throw fail("the user before '@' is empty") }
            guard user.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x2f && $0 != 0x23 }) else {
                throw fail("the user '\(printable(user))' may not contain '/', '#', spaces or control characters")
            }
        }
        var host = registry.lowercased()
        if let problem = Grammar.registryProblem(host) { throw fail("registry '\(printable(registry))': \(problem)") }
        if Self.dockerHubAliases.contains(host) { host = Self.dockerHubRegistry }

        guard !repository.isEmpty else { throw fail("the image name is empty") }
        guard Grammar.isRepository(repository) else {
            if repository != repository.lowercased(), Grammar.isRepository(repository.lowercased()) {
                throw fail("repository names must be lowercase: '\(printable(repository))' (did you mean '\(repository.lowercased())'?)")
            }
            throw fail("'\(printable(repository))' is not a valid repository name: use lowercase letters and digits, "
                + "separated by '.', '_', '__' or '-', with components joined by '/'")
        }
        var path = repository
        if host == Self.dockerHubRegistry, !path.contains("/") { path = "library/" + path }
        guard host.utf8.count + 1 + path.utf8.count <= 255 else {
            throw fail("'\(host)/\(path)' is longer than 255 characters")
        }
        if let tag {
            guard Grammar.isTag(tag) else {
                throw fail("tag '\(printable(tag))' is invalid: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
            }
        }
        self.user = user
        self.registry = host
        self.repository = path
        self.tag = tag ?? (digest == nil ? Self.defaultTag : nil)
        self.digest = digest
    }

    /// What to put in `/v2/<name>/manifests/<reference>`: the digest when pinned, else the tag.
    public var reference: String { digest?.description ?? tag ?? Self.defaultTag }

    public var isDockerHub: Bool { registry == Self.dockerHubRegistry }

    /// Docker's form, `registry/repository[:tag][@digest]` (no user).
    public var canonicalName: String {
        var text = "\(registry)/\(repository)"
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }

    /// enroot's form, which `parse` reads back to an equal value:
    /// `docker://[user@]registry#repository[:tag][@digest]`.
    public var description: String {
        var text = "docker://"
        if let user { text += "\(user)@" }
        text += "\(registry)#\(repository)"
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }

    /// Parses a registry reference (see the type's documentation). Other schemes, file paths and
    /// malformed names are rejected with a message that shows the right syntax.
    public static func parse(_ string: String) throws(OCIError) -> ImageReference {
        func fail(_ reason: String) -> OCIError { .invalidReference(string, reason: reason, hint: syntaxHint) }

        guard !string.isEmpty else { throw fail("it is empty") }
        guard string.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw fail("it contains spaces, control or non-ASCII characters")
        }
        var rest = Substring(string)
        if let scheme = ImageSource.scheme(of: string) {
            guard scheme == "docker" else { throw fail("'\(printable(scheme))://' is not a registry scheme; write docker://") }
            rest = rest.dropFirst(scheme.utf8.count + 3)
        } else if let why = ImageSource.looksLikePath(string) {
            throw .invalidReference(string, reason: why, hint: ImageSource.pathHint)
        }
        guard !rest.isEmpty else { throw fail("the image name is empty") }

        // `@DIGEST` at the end: the last '@' when an algorithm name and ':' follow it.
        var digest: Digest?
        if let at = rest.lastIndex(of: "@") {
            let after = rest[rest.index(after: at)...]
            if looksLikeDigest(after) {
                do {
                    digest = try Digest(parsing: String(after))
                } catch let error {
                    if case let .invalidDigest(_, reason) = error { throw fail("digest '\(printable(String(after)))': \(reason)") }
                    throw error
                }
                rest = rest[..<at]
            }
        }

        var user: String?
        var registry: String?
        var image: Substring
        if let hash = rest.firstIndex(of: "#") {
            var left = rest[..<hash]
            image = rest[rest.index(after: hash)...]
            if let at = left.lastIndex(of: "@") {
                user = String(left[..<at])
                left = left[left.index(after: at)...]
            }
            guard !left.isEmpty else { throw fail("the registry before '#' is empty") }
            registry = String(left)
        } else {
            image = rest
            if let at = image.lastIndex(of: "@") {
                user = String(image[..<at])
                image = image[image.index(after: at)...]
            }
            // Docker's syntax: the first path component is a registry when it looks like a host.
            if let slash = image.firstIndex(of: "/") {
                let first = image[..<slash]
                if first.contains(".") || first.contains(":") || first == "localhost" {
                    registry = String(first)
                    image = image[image.index(after: slash)...]
                }
            }
        }
        guard !image.isEmpty else { throw fail("the image name is empty") }

        // `:TAG`: after the last ':' when no '/' follows it.
        var tag: String?
        if let colon = image.lastIndex(of: ":"), !image[colon...].contains("/") {
            let text = String(image[image.index(after: colon)...])
            guard !text.isEmpty else { throw fail("the tag after ':' is empty") }
            tag = text
            image = image[..<colon]
        }

        if let user, user.isEmpty { throw fail("the user before '@' is empty") }
        if image.contains("@") { throw fail("unexpected '@' in the image name (a digest looks like @sha256:<64 hex>)") }
        if image.contains("#") { throw fail("more than one '#' (only REGISTRY#IMAGE uses it)") }
        return try ImageReference(
            validating: string, user: user, registry: registry ?? dockerHubRegistry,
            repository: String(image), tag: tag, digest: digest
        )
    }

    /// `sha256:…`, `sha512:…` or another hash name (`sha<digits>`, `blake<digits>`) followed by ':',
    /// the way enroot tells `IMAGE@DIGEST` from `USER@IMAGE[:TAG]` (`me@shaper:v1` is a user).
    private static func looksLikeDigest(_ text: Substring) -> Bool {
        guard let colon = text.firstIndex(of: ":") else { return false }
        let algorithm = text[..<colon]
        for prefix in ["sha", "blake"] where algorithm.hasPrefix(prefix) {
            let digits = algorithm.dropFirst(prefix.count)
            if !digits.isEmpty, digits.utf8.allSatisfy(Grammar.isDigit) { return true }
        }
        return false
    }
}

/// Where an image comes from.
public enum ImageSource: Hashable, Sendable, CustomStringConvertible {
    /// `docker://…` or a bare reference: a registry.
    case registry(ImageReference)
    /// `oci://DIR[:TAG]`: an OCI image layout directory; the tag matches
    /// `org.opencontainers.image.ref.name` in its `index.json`.
    case ociLayout(path: String, tag: String?)
    /// `oci-archive://FILE[:TAG]`: a tar of an OCI image layout.
    case ociArchive(path: String, tag: String?)
    /// `docker-archive://FILE`: a `docker save` tar.
    case dockerArchive(path: String)

    static let pathHint = "a registry image is written docker://[USER@][REGISTRY#]IMAGE[:TAG] "
        + "(e.g. docker://nvcr.io#nvidia/pytorch:24.05-py3); a local image is oci://DIR[:TAG], "
        + "oci-archive://FILE[:TAG] or docker-archive://FILE"
    static let localHint = "expected oci://DIR[:TAG], oci-archive://FILE[:TAG] or docker-archive://FILE, "
        + "e.g. oci:///scratch/images/pytorch:24.05-py3"
    static let supportedSchemes = ["docker", "oci", "oci-archive", "docker-archive"]

    /// Parses an image source; without a scheme the input is a registry reference.
    public static func parse(_ string: String) throws(OCIError) -> ImageSource {
        guard let scheme = scheme(of: string) else {
            return .registry(try ImageReference.parse(string))
        }
        let rest = String(string.dropFirst(scheme.count + 3))
        func fail(_ reason: String) -> OCIError { .invalidReference(string, reason: reason, hint: localHint) }
        switch scheme {
        case "docker":
            return .registry(try ImageReference.parse(string))
        case "oci", "oci-archive":
            let (path, tag) = splitTag(rest)
            guard !path.isEmpty else { throw fail("the \(scheme == "oci" ? "directory" : "archive") path is empty") }
            guard !path.utf8.contains(0) else { throw fail("the path contains a NUL byte") }
            return scheme == "oci" ? .ociLayout(path: path, tag: tag) : .ociArchive(path: path, tag: tag)
        case "docker-archive":
            guard !rest.isEmpty else { throw fail("the archive path is empty") }
            guard !rest.utf8.contains(0) else { throw fail("the path contains a NUL byte") }
            return .dockerArchive(path: rest)
        default:
            throw OCIError.invalidReference(
                string,
                reason: "unsupported scheme '\(scheme)://' (supported: \(supportedSchemes.map { "\($0)://" }.joined(separator: ", ")))",
                hint: pathHint
            )
        }
    }

    /// `PATH:TAG` → (PATH, TAG) when what follows the last ':' is a valid tag; otherwise the whole
    /// string is the path (paths may contain ':').
    static func splitTag(_ text: String) -> (path: String, tag: String?) {
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        let after = String(text[text.index(after: colon)...])
        guard !after.contains("/"), Grammar.isTag(after) else { return (text, nil) }
        return (String(text[..<colon]), after)
    }

    /// The scheme of `scheme://…` (lowercase letters, digits, `-`, `+`, `.`), nil if none.
    static func scheme(of string: String) -> String? {
        guard let range = string.range(of: "://") else { return nil }
        let scheme = string[..<range.lowerBound]
        guard let first = scheme.utf8.first, Grammar.isAlpha(first),
              scheme.utf8.allSatisfy({ Grammar.isAlnum($0) || $0 == 0x2d || $0 == 0x2b || $0 == 0x2e }) else { return nil }
        return scheme.lowercased()
    }

    /// Why a scheme-less input is a file path rather than an image name, or nil.
    static func looksLikePath(_ string: String) -> String? {
        if string.hasPrefix("/") || string.hasPrefix(".") || string.hasPrefix("~") {
            return "'\(printable(string))' is a file path, not a registry image"
        }
        let name = string.split(separator: "/").last.map(String.init) ?? string
        for suffix in [".sqsh", ".squashfs", ".sif", ".tar", ".tar.gz", ".tgz"] where name.hasSuffix(suffix) {
            return "'\(printable(string))' looks like a file (\(suffix)), not a registry image; write ./\(printable(string)) for a file"
        }
        return nil
    }

    public var description: String {
        switch self {
        case let .registry(reference): reference.description
        case let .ociLayout(path, tag): "oci://\(path)\(tag.map { ":\($0)" } ?? "")"
        case let .ociArchive(path, tag): "oci-archive://\(path)\(tag.map { ":\($0)" } ?? "")"
        case let .dockerArchive(path): "docker-archive://\(path)"
        }
    }
}
