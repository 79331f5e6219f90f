import Foundation
import Testing
@testable import CaissonOCI

@Suite struct PlatformTests {
    struct Parsed: Sendable, CustomTestStringConvertible {
        let input: String
        let os: String
        let architecture: String
        let variant: String?
        var testDescription: String { input }
    }

    static let parsed: [Parsed] = [
        Parsed(input: "linux/arm64/v8", os: "linux", architecture: "arm64", variant: "v8"),
        Parsed(input: "linux/amd64", os: "linux", architecture: "amd64", variant: nil),
        Parsed(input: "linux/aarch64", os: "linux", architecture: "arm64", variant: nil),
        Parsed(input: "linux/x86_64", os: "linux", architecture: "amd64", variant: nil),
        Parsed(input: "linux/x86-64", os: "linux", architecture: "amd64", variant: nil),
        Parsed(input: "LINUX/AMD64", os: "linux", architecture: "amd64", variant: nil),
        Parsed(input: "linux/arm64/8", os: "linux", architecture: "arm64", variant: "v8"),
        Parsed(input: "linux/arm/7", os: "linux", architecture: "arm", variant: "v7"),
        Parsed(input: "linux/armhf", os: "linux", architecture: "arm", variant: "v7"),
        Parsed(input: "linux/ppc64le", os: "linux", architecture: "ppc64le", variant: nil),
        Parsed(input: "linux/riscv64", os: "linux", architecture: "riscv64", variant: nil),
        Parsed(input: "linux/amd64/v3", os: "linux", architecture: "amd64", variant: "v3"),
        Parsed(input: "arm64", os: "linux", architecture: "arm64", variant: nil),
        Parsed(input: " linux/s390x ", os: "linux", architecture: "s390x", variant: nil),
    ]

    @Test(arguments: parsed)
    func parses(_ c: Parsed) throws {
        let p = try Platform.parse(c.input)
        #expect(p.os == c.os)
        #expect(p.architecture == c.architecture)
        #expect(p.variant == c.variant)
    }

    @Test(arguments: ["", "linux/", "/amd64", "linux//v8", "a/b/c/d", "linux", "linux/am d64", "linux/amd64;rm"])
    func rejects(_ input: String) {
        let error = failure(try Platform.parse(input))
        guard case .invalidPlatform? = error else {
            Issue.record("expected invalidPlatform for '\(input)', got \(String(describing: error))"); return
        }
        #expect(error!.description.contains("linux/arm64/v8"))
    }

    @Test func description() throws {
        #expect(Platform(os: "linux", architecture: "arm64", variant: "v8").description == "linux/arm64/v8")
        #expect(Platform(os: "linux", architecture: "amd64").description == "linux/amd64")
        #expect(try Platform.parse("linux/arm64").description == "linux/arm64")
    }

    @Test(arguments: [
        ("x86_64", "linux/amd64"), ("aarch64", "linux/arm64/v8"), ("arm64", "linux/arm64/v8"),
        ("armv7l", "linux/arm/v7"), ("armv6l", "linux/arm/v6"), ("ppc64le", "linux/ppc64le"),
        ("riscv64", "linux/riscv64"), ("s390x", "linux/s390x"), ("i686", "linux/386"),
    ])
    func fromUname(_ machine: String, _ expected: String) {
        #expect(Platform(unameMachine: machine).description == expected)
    }

    @Test func currentMatchesTheBuildArchitecture() {
        let current = Platform.current
        #expect(current.os == "linux")
        #if arch(x86_64)
        #expect(current == Platform(os: "linux", architecture: "amd64"))
        #elseif arch(arm64)
        #expect(current == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #elseif arch(powerpc64le)
        #expect(current.architecture == "ppc64le")
        #endif
    }

    @Test func normalised() {
        #expect(Platform(os: "Linux", architecture: "aarch64").normalized == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(Platform(os: "linux", architecture: "x86_64").normalized == Platform(os: "linux", architecture: "amd64"))
        #expect(Platform(os: "linux", architecture: "arm64", variant: "v8.2").normalized.variant == "v8.2")
    }

    @Test(arguments: [
        ("linux/arm64", "linux/arm64/v8", true),
        ("linux/arm64/v8", "linux/arm64", true),
        ("linux/aarch64", "linux/arm64", true),
        ("linux/x86_64", "linux/amd64", true),
        ("linux/amd64", "linux/amd64/v3", true),
        ("linux/arm", "linux/arm/v6", true),
        ("linux/amd64", "linux/arm64", false),
        ("linux/amd64", "windows/amd64", false),
        ("linux/arm/v7", "linux/arm/v6", false),
        ("linux/arm64/v8", "linux/arm/v8", false),
        ("linux/amd64/v3", "linux/amd64", false),
        ("linux/arm64/v9", "linux/arm64", false),
    ])
    func matching(_ requested: String, _ candidate: String, _ expected: Bool) throws {
        let want = try Platform.parse(requested)
        let have = try Platform.parse(candidate)
        #expect(want.matches(have) == expected)
    }

    @Test func codableUsesDottedKeys() throws {
        let json = #"{"architecture":"amd64","os":"windows","os.version":"10.0.20348","os.features":["win32k"],"x":1}"#
        let p = try JSONDecoder().decode(Platform.self, from: data(json))
        #expect(p.osVersion == "10.0.20348")
        #expect(p.osFeatures == ["win32k"])
        let back = String(decoding: try JSONEncoder().encode(p), as: UTF8.self)
        #expect(back.contains("\"os.version\""))
    }
}

@Suite struct IndexSelectionTests {
    func entry(_ c: Character, _ platform: String?, mediaType: String = MediaType.ociManifest, annotations: [String: String]? = nil) -> Descriptor {
        let p: Platform? = platform.map { text in
            let parts = text.split(separator: "/").map(String.init)
            return Platform(os: parts[0], architecture: parts[1], variant: parts.count > 2 ? parts[2] : nil)
        }
        return Descriptor(mediaType: mediaType, digest: digest(c), size: 500, annotations: annotations, platform: p)
    }

    func manifestList() throws -> Index {
        guard case let .index(index) = try ManifestDocument.decode(data: data(Samples.dockerManifestList), contentType: nil) else {
            throw OCIError.invalidManifest("sample is not an index")
        }
        return index
    }

    @Test(arguments: [
        ("linux/amd64", Character("a")), ("linux/arm/v7", "b"), ("linux/arm64/v8", "c"), ("linux/arm64", "c"),
        ("linux/aarch64", "c"), ("linux/ppc64le", "d"), ("linux/s390x", "e"), ("windows/amd64", "f"),
    ])
    func selectsFromDockerManifestList(_ platform: String, _ expected: Character) throws {
        let index = try manifestList()
        #expect(try index.select(platform: Platform.parse(platform)).digest == digest(expected))
    }

    @Test func selectsForThisMachine() throws {
        let index = try manifestList()
        #if arch(x86_64)
        #expect(try index.select(platform: .current).digest == digest("a"))
        #elseif arch(arm64)
        #expect(try index.select(platform: .current).digest == digest("c"))
        #endif
    }

    @Test func errorListsAvailablePlatforms() {
        let index = Index(manifests: [
            entry("1", "linux/amd64"),
            entry("2", "unknown/unknown", annotations: [Annotation.dockerReferenceType: "attestation-manifest"]),
            entry("3", "linux/arm64/v8", mediaType: "application/vnd.example.unknown+json"),
            entry("4", "linux/ppc64le"),
            entry("5", "linux/amd64"),
        ])
        let error = failure(try index.select(platform: Platform(os: "linux", architecture: "arm64", variant: "v8")))
        #expect(error?.description == "no image for linux/arm64/v8 in the index; available: linux/amd64, linux/ppc64le")
        guard case let .noMatchingPlatform(requested, available)? = error else {
            Issue.record("expected noMatchingPlatform"); return
        }
        #expect(requested.description == "linux/arm64/v8")
        #expect(available.map(\.description) == ["linux/amd64", "linux/ppc64le"])
    }

    @Test func emptyIndexSaysNone() {
        let error = failure(try Index(manifests: []).select(platform: Platform(os: "linux", architecture: "amd64")))
        #expect(error?.description == "no image for linux/amd64 in the index; available: none")
    }

    @Test func firstMatchWins() throws {
        let index = Index(manifests: [entry("1", "linux/arm64"), entry("2", "linux/amd64"), entry("3", "linux/amd64"), entry("4", "linux/arm64")])
        #expect(try index.select(platform: Platform(os: "linux", architecture: "amd64")).digest == digest("2"))
        #expect(try index.select(platform: Platform(os: "linux", architecture: "arm64", variant: "v8")).digest == digest("1"))
    }

    @Test func skipsAttestationsAndUnknownMediaTypes() throws {
        let index = Index(manifests: [
            // An attestation wrongly carrying a real platform: skipped by its annotation.
            entry("1", "linux/amd64", annotations: [Annotation.dockerReferenceType: "attestation-manifest"]),
            entry("2", "linux/amd64", mediaType: "application/vnd.in-toto+json"),
            entry("3", "linux/amd64", mediaType: MediaType.ociIndex),
            entry("4", "linux/amd64", mediaType: MediaType.dockerManifest),
        ])
        #expect(try index.select(platform: Platform(os: "linux", architecture: "amd64")).digest == digest("4"))
    }

    @Test func osMustMatchToo() {
        let index = Index(manifests: [entry("1", "windows/amd64")])
        let error = failure(try index.select(platform: Platform(os: "linux", architecture: "amd64")))
        #expect(error?.description == "no image for linux/amd64 in the index; available: windows/amd64")
    }

    @Test func variantIsHonouredWhenRequested() throws {
        let index = Index(manifests: [entry("1", "linux/arm/v6"), entry("2", "linux/arm/v7")])
        #expect(try index.select(platform: Platform.parse("linux/arm/v7")).digest == digest("2"))
        #expect(try index.select(platform: Platform.parse("linux/arm")).digest == digest("1"))
        let error = failure(try index.select(platform: Platform.parse("linux/arm/v5")))
        #expect(error?.description == "no image for linux/arm/v5 in the index; available: linux/arm/v6, linux/arm/v7")
    }

    @Test func unplatformedEntryIsOnlyAFallback() throws {
        let fallbackOnly = Index(manifests: [entry("1", nil), entry("2", "unknown/unknown")])
        #expect(try fallbackOnly.select(platform: Platform(os: "linux", architecture: "amd64")).digest == digest("1"))
        let mixed = Index(manifests: [entry("1", nil), entry("2", "linux/amd64")])
        #expect(try mixed.select(platform: Platform(os: "linux", architecture: "amd64")).digest == digest("2"))
    }

    @Test func ociLayoutTagSelection() throws {
        let layout = Index(manifests: [
            Descriptor(mediaType: MediaType.ociManifest, digest: digest("1"), size: 10, annotations: [Annotation.refName: "v1"]),
            Descriptor(mediaType: MediaType.ociIndex, digest: digest("2"), size: 10, annotations: [Annotation.refName: "docker.io/library/alpine:3.19"]),
            Descriptor(mediaType: "application/vnd.example+json", digest: digest("3"), size: 10, annotations: [Annotation.refName: "other"]),
        ])
        #expect(try layout.select(refName: "v1").digest == digest("1"))
        #expect(try layout.select(refName: "3.19").digest == digest("2"))
        #expect(try layout.select(refName: "docker.io/library/alpine:3.19").digest == digest("2"))
        let missing = failure(try layout.select(refName: "v2"))
        #expect(missing?.description == "no image tagged 'v2' in the OCI layout; available tags: v1, docker.io/library/alpine:3.19")
        let ambiguous = failure(try layout.select(refName: nil))
        #expect(ambiguous?.description.contains("oci://DIR:TAG") == true)
        let single = Index(manifests: [Descriptor(mediaType: MediaType.ociManifest, digest: digest("9"), size: 1)])
        #expect(try single.select(refName: nil).digest == digest("9"))
    }
}
