import CaissonOCI
import Foundation
import Testing
@testable import CaissonRegistry

@Suite struct AuthChallengeTests {
    @Test func bearerWithCommasInQuotedScope() {
        let challenges = AuthChallenge.parse(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#)
        #expect(challenges == [AuthChallenge(scheme: "bearer", parameters: [
            "realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:samalba/my-app:pull,push"])])
    }

    @Test func severalChallengesAndErrorParameter() {
        let challenges = AuthChallenge.parse(#"Basic realm="reg", Bearer realm="https://a/t",error="invalid_token",error_description="the \"token\" expired""#)
        #expect(challenges.map(\.scheme) == ["basic", "bearer"])
        #expect(challenges[0].parameters == ["realm": "reg"])
        #expect(challenges[1].parameters["error"] == "invalid_token")
        #expect(challenges[1].parameters["error_description"] == #"the "token" expired"#)
    }

    @Test func unquotedValuesAndCase() {
        let challenges = AuthChallenge.parse("BASIC Realm=registry")
        #expect(challenges == [AuthChallenge(scheme: "basic", parameters: ["realm": "registry"])])
        #expect(AuthChallenge.parse("").isEmpty)
    }
}

@Suite struct CredentialStoreTests {
    func temp(_ name: String, _ text: String) -> String {
        let path = NSTemporaryDirectory() + "caisson-cred-\(UUID().uuidString)-\(name)"
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func netrcEntriesAndUserSelection() {
        let netrc = temp("netrc", """
        machine nvcr.io login $oauthtoken password nvapi-secret
        machine registry.example.org
            login alice
            password a1
        machine registry.example.org login bob password b2
        """)
        defer { unlink(netrc) }
        let store = CredentialStore(netrcPath: netrc, dockerConfigPath: nil)
        #expect(store.credential(for: "nvcr.io") == Credential(user: "$oauthtoken", password: "nvapi-secret"))
        #expect(store.credential(for: "registry.example.org")?.user == "alice", "the first entry without USER@")
        #expect(store.credential(for: "registry.example.org", user: "bob")?.password == "b2")
        #expect(store.credential(for: "registry.example.org", user: "carol") == nil)
        #expect(store.credential(for: "other.example.org") == nil)
    }

    @Test func dockerConfigAuthsAndHubAliases() {
        let auth = Data("dave:d4".utf8).base64EncodedString()
        let config = temp("config.json", #"{"auths": {"https://index.docker.io/v1/": {"auth": "\#(auth)"}, "ghcr.io": {"username": "erin", "password": "e5"}, "bad": {"auth": "!!"}}}"#)
        defer { unlink(config) }
        let store = CredentialStore(netrcPath: nil, dockerConfigPath: config)
        #expect(store.credential(for: "registry-1.docker.io") == Credential(user: "dave", password: "d4"))
        #expect(store.credential(for: "ghcr.io") == Credential(user: "erin", password: "e5"))
        #expect(store.credential(for: "bad") == nil)
    }

    @Test func basicAuthorizationHeader() {
        #expect(Credential(user: "u", password: "p:w").basicAuthorization == "Basic " + Data("u:p:w".utf8).base64EncodedString())
    }
}

@Suite struct BlobStoreTests {
    func descriptor(_ bytes: [UInt8]) throws -> Descriptor {
        let hex = Verifier.hex(bytes)
        return Descriptor(mediaType: MediaType.ociLayerGzip, digest: try Digest(parsing: "sha256:\(hex)"), size: Int64(bytes.count))
    }

    func store() throws -> BlobStore {
        try BlobStore(root: NSTemporaryDirectory() + "caisson-blobs-\(UUID().uuidString)")
    }

    @Test func publishesAtomicallyAndReadersSeeOnlyCompleteBlobs() async throws {
        let store = try store()
        let bytes = [UInt8](repeating: 7, count: 100_000)
        let d = try descriptor(bytes)
        #expect(store.published(d) == nil)
        let path = try await store.ensure(d) { handle in
            try handle.write(contentsOf: bytes[..<50_000])
            #expect(store.published(d) == nil, "half a blob is never visible")
            try handle.write(contentsOf: bytes[50_000...])
        }
        #expect(store.published(d) == path)
        #expect(FileManager.default.contents(atPath: path) == Data(bytes))
        let names = try FileManager.default.contentsOfDirectory(atPath: store.root + "/blobs/sha256")
        #expect(!names.contains { $0.hasSuffix(".partial") })
    }

    @Test func oneWriterPerDigest() async throws {
        let store = try store()
        let bytes = [UInt8](repeating: 1, count: 4096)
        let d = try descriptor(bytes)
        let fetches = Counter()
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await store.ensure(d) { handle in
                        fetches.increment()
                        try await Task.sleep(nanoseconds: 100_000_000)
                        try handle.write(contentsOf: bytes)
                    }
                }
            }
            for try await path in group { #expect(path == store.path(for: d.digest)) }
        }
        #expect(fetches.value == 1, "the others waited and found it published")
    }

    @Test func interruptedDownloadResumesAndBadBytesAreDropped() async throws {
        let store = try store()
        let bytes = Array(UInt8(0)..<UInt8(200))
        let d = try descriptor(bytes)
        struct Interrupted: Error {}
        await #expect(throws: Interrupted.self) {
            _ = try await store.ensure(d) { handle in
                try handle.write(contentsOf: bytes[..<80])
                throw Interrupted()
            }
        }
        let resumedFrom = Counter()
        _ = try await store.ensure(d) { handle in
            resumedFrom.add(Int(try handle.seekToEnd()))
            try handle.write(contentsOf: bytes[80...])
        }
        #expect(resumedFrom.value == 80, "the partial download was kept and resumed")
        let other = try descriptor([9, 9, 9])
        await #expect(throws: RegistryError.self) {
            _ = try await store.ensure(other) { _ in throw RegistryError(.verification, "bad bytes") }
        }
        #expect(!FileManager.default.fileExists(atPath: store.root + "/blobs/sha256/\(other.digest.encoded).partial"),
                "bytes that failed verification are never resumed from")
    }

    @Test func pruneByAgeAndSize() async throws {
        let store = try store()
        var descriptors: [Descriptor] = []
        for i in 0..<3 {
            let bytes = [UInt8](repeating: UInt8(i), count: 1000 * (i + 1))
            let d = try descriptor(bytes)
            _ = try await store.ensure(d) { try $0.write(contentsOf: bytes) }
            descriptors.append(d)
        }
        // Age the first blob by a week.
        var times = [timespec(tv_sec: Int(Date().timeIntervalSince1970) - 7 * 86400, tv_nsec: 0),
                     timespec(tv_sec: Int(Date().timeIntervalSince1970) - 7 * 86400, tv_nsec: 0)]
        utimensat(AT_FDCWD, store.path(for: descriptors[0].digest), &times, 0)
        let old = store.prune(olderThan: 86400, maxSize: nil)
        #expect(old.map(\.digest) == [descriptors[0].digest.description])
        let big = store.prune(olderThan: nil, maxSize: 3500)
        #expect(big.count == 1 && store.entries().reduce(0) { $0 + $1.size } <= 3500)
    }
}

@Suite struct VerifierTests {
    @Test func sizeAndDigestAreBothChecked() throws {
        let data = Data("hello".utf8)
        let good = Descriptor(mediaType: "x", digest: try Digest(parsing: "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"), size: 5)
        try Verifier.check(data: data, against: good)
        var shorter = good; shorter.size = 4
        #expect(throws: RegistryError.self) { try Verifier.check(data: data, against: shorter) }
        #expect(throws: RegistryError.self) { try Verifier.check(data: Data("hellp".utf8), against: good) }
    }
}

final class Counter: @unchecked Sendable {
    private var count = 0
    private let lock = NSLock()
    func increment() { add(1) }
    func add(_ n: Int) { lock.lock(); count += n; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
