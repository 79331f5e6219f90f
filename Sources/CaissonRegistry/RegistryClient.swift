import AsyncHTTPClient
import CaissonOCI
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A client for one OCI distribution registry (the distribution spec's pull side).
///
/// - HTTPS unless the registry is configured as insecure; certificates from the system store,
///   or `SSL_CERT_FILE` / `SSL_CERT_DIR`; proxies from `https_proxy` / `no_proxy`.
/// - 401 answers start the `WWW-Authenticate` flow: Bearer tokens from the realm (cached per
///   scope until they expire, in memory only) or Basic credentials.
/// - Redirects are followed by hand: `Authorization` is never sent to another host, and an
///   HTTPS request is never redirected to HTTP.
/// - 429, 5xx and transport errors are retried with backoff; interrupted blob downloads resume
///   with `Range`.
public final class RegistryClient: Sendable {
    public struct Settings: Sendable {
        /// host[:port] names that are spoken to over plain HTTP.
        public var insecureRegistries: Set<String> = []
        public var connectTimeout: TimeAmount = .seconds(30)
        /// A transfer that receives nothing for this long is abandoned (and retried).
        public var stallTimeout: TimeAmount = .seconds(60)
        public var retries = 4
        public var initialBackoff: Double = 0.5
        public var caFile: String? = ProcessInfo.processInfo.environment["SSL_CERT_FILE"]
        public var caDirectory: String? = ProcessInfo.processInfo.environment["SSL_CERT_DIR"]
        public var userAgent = "caisson"

        public init() {}
    }

    public let registry: String
    let settings: Settings
    let credential: Credential?
    let http: HTTPClient
    let tokens = TokenCache()

    public init(registry: String, credential: Credential?, settings: Settings = Settings()) throws {
        self.registry = registry
        self.settings = settings
        self.credential = credential
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = settings.caFile, !caFile.isEmpty {
            tls.trustRoots = .file(caFile)
        } else if let dir = settings.caDirectory, !dir.isEmpty {
            let pems = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            let certificates = pems.filter { $0.hasSuffix(".pem") || $0.hasSuffix(".crt") }
                .flatMap { (try? NIOSSLCertificate.fromPEMFile("\(dir)/\($0)")) ?? [] }
            if !certificates.isEmpty { tls.trustRoots = .certificates(certificates) }
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: settings.connectTimeout, read: settings.stallTimeout),
            proxy: RegistryClient.proxy(for: registry),
            ignoreUncleanSSLShutdown: false,
            decompression: .disabled)
        configuration.httpVersion = .automatic
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? http.syncShutdown() }

    public func shutdown() async { try? await http.shutdown() }

    var baseURL: String { "\(settings.insecureRegistries.contains(registry) ? "http" : "https")://\(registry)" }

    static func proxy(for registry: String) -> HTTPClient.Configuration.Proxy? {
        let env = ProcessInfo.processInfo.environment
        let host = registry.split(separator: ":").first.map(String.init) ?? registry
        let noProxy = (env["no_proxy"] ?? env["NO_PROXY"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if noProxy.contains(where: { $0 == "*" || host == $0 || (!$0.isEmpty && host.hasSuffix($0.hasPrefix(".") ? $0 : "." + $0)) }) {
            return nil
        }
        guard let proxy = env["https_proxy"] ?? env["HTTPS_PROXY"] ?? env["all_proxy"] ?? env["ALL_PROXY"],
              let url = URL(string: proxy.contains("://") ? proxy : "http://\(proxy)"), let proxyHost = url.host else { return nil }
        return .server(host: proxyHost, port: url.port ?? 3128)
    }

    // MARK: - Manifests

    public struct FetchedManifest: Sendable {
        public let data: Data
        public let contentType: String
        public let digest: CaissonOCI.Digest
        public let document: ManifestDocument
    }

    /// GETs a manifest or index by tag or digest, verifies its bytes against the digest when the
    /// reference is a digest (and against Docker-Content-Digest when the registry sends one),
    /// and parses exactly the bytes that were verified.
    public func manifest(repository: String, reference: String) async throws -> FetchedManifest {
        let url = "\(baseURL)/v2/\(repository)/manifests/\(reference)"
        let (response, data) = try await fetchSmall(url: url, repository: repository,
                                                    headers: [("Accept", MediaType.manifestAccept.joined(separator: ", "))],
                                                    what: "manifest \(repository):\(reference)", limit: 8 << 20)
        let computed = try CaissonOCI.Digest(parsing: "sha256:" + SHA256.hash(data: data).hexString)
        if let pinned = try? CaissonOCI.Digest(parsing: reference), pinned != computed {
            throw RegistryError(.verification, "manifest \(repository)@\(reference): the registry sent bytes whose digest is \(computed)")
        }
        if let header = response.headers.first(name: "Docker-Content-Digest"), let claimed = try? CaissonOCI.Digest(parsing: header),
           claimed.algorithm == .sha256, claimed != computed {
            throw RegistryError(.verification, "manifest \(repository):\(reference): Docker-Content-Digest \(claimed) does not match the body (\(computed))")
        }
        let contentType = response.headers.first(name: "Content-Type") ?? ""
        let document: ManifestDocument
        do {
            document = try ManifestDocument.decode(data: data, contentType: contentType)
        } catch {
            throw RegistryError(.protocolViolation, "manifest \(repository):\(reference): \(error)")
        }
        return FetchedManifest(data: data, contentType: contentType, digest: computed, document: document)
    }

    /// The digest a tag points to, from a HEAD request (no manifest body, no layers).
    public func manifestDigest(repository: String, reference: String) async throws -> CaissonOCI.Digest {
        let url = "\(baseURL)/v2/\(repository)/manifests/\(reference)"
        let response = try await send(url: url, method: .HEAD, repository: repository,
                                      headers: [("Accept", MediaType.manifestAccept.joined(separator: ", "))],
                                      what: "manifest \(repository):\(reference)")
        if let header = response.headers.first(name: "Docker-Content-Digest"), let digest = try? CaissonOCI.Digest(parsing: header) {
            return digest
        }
        return try await manifest(repository: repository, reference: reference).digest
    }

    // MARK: - Blobs

    /// Small blobs (image configurations) in memory, verified.
    public func blobData(repository: String, descriptor: Descriptor, limit: Int = 16 << 20) async throws -> Data {
        guard descriptor.size <= limit else {
            throw RegistryError(.protocolViolation, "blob \(descriptor.digest) is \(descriptor.size) bytes, more than the \(limit) expected")
        }
        let (_, data) = try await fetchSmall(url: "\(baseURL)/v2/\(repository)/blobs/\(descriptor.digest)",
                                             repository: repository, headers: [], what: "blob \(descriptor.digest)", limit: limit + 1)
        try Verifier.check(data: data, against: descriptor)
        return data
    }

    /// Streams a blob into `file` (opened for writing, positioned at its end), resuming from
    /// `file`'s current size with Range. Verifies size and digest over the whole file at the end.
    /// `progress` receives the number of bytes added.
    public func downloadBlob(repository: String, descriptor: Descriptor, into file: FileHandle,
                             progress: @Sendable (Int) -> Void) async throws {
        let url = "\(baseURL)/v2/\(repository)/blobs/\(descriptor.digest)"
        var attempt = 0
        while true {
            let offset = Int64(try file.seekToEnd())
            if offset == descriptor.size { break }
            if offset > descriptor.size {
                throw RegistryError(.verification, "blob \(descriptor.digest): more bytes than its size \(descriptor.size)")
            }
            do {
                var headers: [(String, String)] = []
                if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
                let response = try await send(url: url, method: .GET, repository: repository, headers: headers,
                                              what: "blob \(descriptor.digest)")
                if offset > 0 && response.status == .ok {
                    // The registry ignored Range: start over.
                    try file.truncate(atOffset: 0)
                }
                var received: Int64 = 0
                for try await chunk in response.body {
                    received += Int64(chunk.readableBytes)
                    if Int64(try file.offset()) + Int64(chunk.readableBytes) > descriptor.size {
                        throw RegistryError(.verification, "blob \(descriptor.digest): the registry sent more than its size \(descriptor.size)")
                    }
                    chunk.withUnsafeReadableBytes { try? file.write(contentsOf: $0) }
                    progress(chunk.readableBytes)
                }
                if Int64(try file.offset()) < descriptor.size {
                    throw RegistryError(.transport, "blob \(descriptor.digest): connection closed after \(try file.offset()) of \(descriptor.size) bytes")
                }
            } catch let error as RegistryError where error.kind == .transport || error.kind == .server {
                attempt += 1
                if attempt > settings.retries { throw error }
                try await backoff(attempt)
            } catch let error as HTTPClientError {
                attempt += 1
                if attempt > settings.retries {
                    throw RegistryError(.transport, "blob \(descriptor.digest): \(RegistryClient.describe(error)) (after \(attempt) attempts)")
                }
                try await backoff(attempt)
            }
        }
        try file.synchronize()
        try file.seek(toOffset: 0)
        try Verifier.check(file: file, against: descriptor)
    }

    // MARK: - Requests, authentication, redirects, retries

    /// A GET whose whole body is wanted in memory; a stall or drop while reading the body is
    /// retried like one before the headers.
    func fetchSmall(url: String, repository: String, headers: [(String, String)], what: String, limit: Int) async throws -> (HTTPClientResponse, Data) {
        var attempt = 0
        while true {
            let response = try await send(url: url, method: .GET, repository: repository, headers: headers, what: what)
            do {
                return (response, Data(buffer: try await response.body.collect(upTo: limit)))
            } catch let error as NIOTooManyBytesError {
                throw RegistryError(.protocolViolation, "\(what): more than \(limit) bytes (\(error))")
            } catch {
                attempt += 1
                if attempt > settings.retries {
                    throw RegistryError(.transport, "\(what) from \(registry): \(RegistryClient.describe(error)) (after \(attempt) attempts)")
                }
                try await backoff(attempt)
            }
        }
    }

    func send(url: String, method: HTTPMethod, repository: String, headers: [(String, String)], what: String) async throws -> HTTPClientResponse {
        var attempt = 0
        // Credentials are sent only when the registry asks for them (401), and only to it.
        var authorization = tokens.get(scope: RegistryClient.scope(repository))
        var triedAuthentication = false
        while true {
            let response: HTTPClientResponse
            do {
                response = try await followRedirects(url: url, method: method, headers: headers, authorization: authorization)
            } catch let error as RegistryError {
                throw error
            } catch {
                attempt += 1
                if attempt > settings.retries {
                    throw RegistryError(.transport, "\(what) from \(registry): \(RegistryClient.describe(error)) (after \(attempt) attempts)")
                }
                try await backoff(attempt)
                continue
            }
            switch response.status.code {
            case 200..<300:
                return response
            case 401:
                try? await response.body.collect(upTo: 1 << 20)
                if triedAuthentication {
                    throw RegistryError(.unauthorized, credential == nil
                        ? "\(what): \(registry) requires credentials: add `machine \(registry) login USER password SECRET` to your credentials file"
                        : "\(what): \(registry) rejected the credentials for user \(credential!.user) (wrong password or token?)")
                }
                triedAuthentication = true
                authorization = try await authenticate(response.headers, repository: repository, what: what)
            case 403:
                throw RegistryError(.denied, "\(what): access denied by \(registry)")
            case 404:
                throw RegistryError(.notFound, "\(what): not found on \(registry) (check the image name and tag)")
            case 429, 500, 502, 503, 504:
                try? await response.body.collect(upTo: 1 << 20)
                attempt += 1
                if attempt > settings.retries {
                    throw RegistryError(response.status.code == 429 ? .tooManyRequests : .server,
                                        "\(what): \(registry) answered \(response.status.code) \(response.status.reasonPhrase) \(attempt) times")
                }
                let retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init)
                try await backoff(attempt, atLeast: retryAfter)
            default:
                throw RegistryError(.protocolViolation, "\(what): \(registry) answered \(response.status.code) \(response.status.reasonPhrase)")
            }
        }
    }

    private func followRedirects(url: String, method: HTTPMethod, headers: [(String, String)], authorization: String?) async throws -> HTTPClientResponse {
        guard var current = URL(string: url), let originalHost = current.host else {
            throw RegistryError(.protocolViolation, "invalid URL \(url)")
        }
        let originalPort = current.port
        for _ in 0..<6 {
            var request = HTTPClientRequest(url: current.absoluteString)
            request.method = method
            request.headers.add(name: "User-Agent", value: settings.userAgent)
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            // Credentials belong to the registry's own host: never forward them elsewhere.
            if let authorization, current.host == originalHost, current.port == originalPort {
                request.headers.add(name: "Authorization", value: authorization)
            }
            let response = try await http.execute(request, timeout: .hours(6))
            guard [301, 302, 303, 307, 308].contains(response.status.code) else { return response }
            try? await response.body.collect(upTo: 1 << 20)
            guard let location = response.headers.first(name: "Location"), let next = URL(string: location, relativeTo: current)?.absoluteURL else {
                throw RegistryError(.protocolViolation, "\(registry) sent a redirect without a usable Location")
            }
            if current.scheme == "https" && next.scheme != "https" {
                throw RegistryError(.insecure, "\(registry) redirected \(current.absoluteString) to \(next.absoluteString): refusing to downgrade from HTTPS")
            }
            current = next
        }
        throw RegistryError(.protocolViolation, "\(registry): too many redirects")
    }

    private func authenticate(_ headers: HTTPHeaders, repository: String, what: String) async throws -> String {
        let challenges = headers[canonicalForm: "WWW-Authenticate"].flatMap { AuthChallenge.parse(String($0)) }
        if let bearer = challenges.first(where: { $0.scheme == "bearer" }), let realm = bearer.parameters["realm"] {
            return try await fetchToken(realm: realm, service: bearer.parameters["service"],
                                        scope: bearer.parameters["scope"] ?? RegistryClient.scope(repository), what: what)
        }
        if challenges.contains(where: { $0.scheme == "basic" }) || challenges.isEmpty {
            guard let credential else {
                throw RegistryError(.unauthorized, "\(what): \(registry) requires credentials: add `machine \(registry) login USER password SECRET` to your credentials file")
            }
            return credential.basicAuthorization
        }
        throw RegistryError(.protocolViolation, "\(what): \(registry) asks for an unsupported authentication scheme (\(challenges.map(\.scheme).joined(separator: ", ")))")
    }

    private func fetchToken(realm: String, service: String?, scope: String, what: String) async throws -> String {
        if let cached = tokens.get(scope: scope) { return cached }
        guard var components = URLComponents(string: realm), let realmURL = components.url, let scheme = realmURL.scheme else {
            throw RegistryError(.protocolViolation, "\(what): invalid token realm \(realm)")
        }
        if scheme != "https" && !settings.insecureRegistries.contains(registry) {
            throw RegistryError(.insecure, "\(what): the token service \(realm) is not HTTPS")
        }
        var query = components.queryItems ?? []
        if let service { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: scope))
        components.queryItems = query
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.headers.add(name: "User-Agent", value: settings.userAgent)
        if let credential { request.headers.add(name: "Authorization", value: credential.basicAuthorization) }
        let response = try await http.execute(request, timeout: .seconds(120))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw RegistryError(.unauthorized, response.status.code == 401
                ? "\(what): the token service for \(registry) rejected the credentials\(credential.map { " for user \($0.user)" } ?? "")"
                : "\(what): the token service for \(registry) answered \(response.status.code)")
        }
        struct TokenResponse: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Int?
        }
        guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(buffer: body)),
              let token = decoded.token ?? decoded.access_token, !token.isEmpty else {
            throw RegistryError(.protocolViolation, "\(what): the token service for \(registry) sent no token")
        }
        let value = "Bearer \(token)"
        tokens.put(scope: scope, value: value, lifetime: max(60, decoded.expires_in ?? 60))
        return value
    }

    static func scope(_ repository: String) -> String { "repository:\(repository):pull" }

    private func backoff(_ attempt: Int, atLeast: Double? = nil) async throws {
        let delay = max(atLeast ?? 0, settings.initialBackoff * pow(2, Double(attempt - 1)))
        try await Task.sleep(nanoseconds: UInt64(min(delay, 30) * 1e9))
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .readTimeout: return "no data for too long (the registry stalled)"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "the registry closed the connection"
            default: return "\(error)"
            }
        }
        if let error = error as? NIOSSLError { return "TLS: \(error)" }
        if let error = error as? BoringSSLError { return "TLS: \(error) (is the registry's CA in SSL_CERT_FILE?)" }
        return "\(error)"
    }
}

/// Bearer tokens per scope, in memory only, dropped 30 s before they expire.
final class TokenCache: @unchecked Sendable {
    private var tokens: [String: (value: String, expires: Date)] = [:]
    private let lock = NSLock()

    func get(scope: String) -> String? {
        lock.lock(); defer { lock.unlock() }
        guard let entry = tokens[scope], entry.expires > Date() else { return nil }
        return entry.value
    }

    func put(scope: String, value: String, lifetime: Int) {
        lock.lock(); defer { lock.unlock() }
        tokens[scope] = (value, Date().addingTimeInterval(Double(lifetime - 30)))
    }
}

/// Size and sha256 checks over exactly the bytes that will be used.
public enum Verifier {
    /// The sha256 of `bytes` as lowercase hex.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String { SHA256.hash(data: Data(bytes)).hexString }

    /// The sha256 (hex) and length of everything left in `file`.
    public static func hexAndSize(of file: FileHandle) throws -> (String, Int64) {
        var hasher = SHA256()
        var total: Int64 = 0
        while let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            total += Int64(chunk.count)
        }
        return (hasher.finalize().hexString, total)
    }

    public static func check(data: Data, against descriptor: Descriptor) throws {
        guard Int64(data.count) == descriptor.size else {
            throw RegistryError(.verification, "blob \(descriptor.digest): \(data.count) bytes, expected \(descriptor.size)")
        }
        let actual = "sha256:" + SHA256.hash(data: data).hexString
        guard actual == descriptor.digest.description else {
            throw RegistryError(.verification, "blob \(descriptor.digest): content does not match its digest (got \(actual))")
        }
    }

    public static func check(file: FileHandle, against descriptor: Descriptor) throws {
        let (hex, total) = try hexAndSize(of: file)
        guard total == descriptor.size else {
            throw RegistryError(.verification, "blob \(descriptor.digest): \(total) bytes, expected \(descriptor.size)")
        }
        guard "sha256:\(hex)" == descriptor.digest.description else {
            throw RegistryError(.verification, "blob \(descriptor.digest): content does not match its digest (got sha256:\(hex))")
        }
    }
}

extension Sequence where Element == UInt8 {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}

extension SHA256.Digest {
    var hexString: String { Array(self).hexString }
}

/// Reads a local blob while hashing it, so the bytes a consumer uses are the bytes verified.
public final class DigestingReader {
    let handle: FileHandle
    let descriptor: Descriptor
    var hasher = SHA256()
    public private(set) var count: Int64 = 0

    public init(path: String, descriptor: Descriptor) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw RegistryError(.transport, "cannot open \(path)")
        }
        self.handle = handle
        self.descriptor = descriptor
    }

    deinit { try? handle.close() }

    /// Fills `buffer`; 0 at the end of the blob.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = Glibc.read(handle.fileDescriptor, buffer.baseAddress, buffer.count)
        if n < 0 { throw RegistryError(.transport, "reading blob \(descriptor.digest): \(String(cString: strerror(errno)))") }
        if n > 0 {
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            count += Int64(n)
        }
        return n
    }

    /// Reads what is left and verifies the whole blob: after a consumer failed half-way, this tells
    /// a corrupt blob (digest mismatch) from bad content in a good blob.
    public func drainAndVerify() throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while try buffer.withUnsafeMutableBytes({ try read(into: $0) }) > 0 {}
        try verify()
    }

    /// Throws unless everything read so far is exactly the blob the descriptor names.
    public func verify() throws {
        let actual = "sha256:" + hasher.finalize().hexString
        guard count == descriptor.size, actual == descriptor.digest.description else {
            throw RegistryError(.verification, "blob \(descriptor.digest) is corrupt (\(count) bytes, digest \(actual))")
        }
    }
}
