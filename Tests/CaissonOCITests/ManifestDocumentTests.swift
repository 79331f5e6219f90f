import Foundation
import Testing
@testable import CaissonOCI

@Suite struct ManifestDocumentTests {
    @Test func ociManifestWithAnnotationsAndUnknownFields() throws {
        let doc = try ManifestDocument.decode(data: data(Samples.ociManifest), contentType: "application/vnd.oci.image.manifest.v1+json; charset=utf-8")
        guard case let .manifest(m) = doc else { Issue.record("expected a manifest, got \(doc)"); return }
        #expect(m.schemaVersion == 2)
        #expect(m.mediaType == MediaType.ociManifest)
        #expect(m.config.mediaType == MediaType.ociConfig)
        #expect(m.config.digest == digest("1"))
        #expect(m.config.size == 7023)
        #expect(m.layers.map(\.digest) == [digest("2"), digest("3"), digest("4")])
        #expect(m.layers.map(\.size) == [32654, 16724, 73109])
        #expect(m.layers[0].annotations?["org.opencontainers.image.title"] == "base.tar.gz")
        #expect(m.layers[1].annotations == nil)
        #expect(m.layers[2].urls?.count == 1)
        #expect(MediaType.isNondistributable(m.layers[2].mediaType))
        #expect(!MediaType.isNondistributable(m.layers[0].mediaType))
        #expect(m.subject?.digest == digest("5"))
        #expect(m.annotations?["com.example.key1"] == "value1")
        #expect(m.annotations?["com.example.empty"] == "")
        #expect(doc.mediaType == MediaType.ociManifest)
    }

    @Test func dockerSchema2() throws {
        let doc = try ManifestDocument.decode(data: data(Samples.dockerManifest), contentType: MediaType.dockerManifest)
        guard case let .manifest(m) = doc else { Issue.record("expected a manifest, got \(doc)"); return }
        #expect(m.mediaType == MediaType.dockerManifest)
        #expect(m.config.mediaType == MediaType.dockerConfig)
        #expect(MediaType.isConfig(m.config.mediaType))
        #expect(m.layers.count == 2)
        #expect(m.layers.allSatisfy { LayerCompression(mediaType: $0.mediaType) == .gzip })
        // Sizes beyond 4 GiB survive.
        #expect(m.layers[1].size == 5_000_000_000)
        #expect(m.annotations == nil)
    }

    @Test func ociIndexWithAttestations() throws {
        let doc = try ManifestDocument.decode(data: data(Samples.ociIndexWithAttestations), contentType: MediaType.ociIndex)
        guard case let .index(index) = doc else { Issue.record("expected an index, got \(doc)"); return }
        #expect(index.manifests.count == 4)
        #expect(index.manifests.map(\.isAttestation) == [false, false, true, true])
        #expect(index.manifests[1].platform == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(index.annotations?["org.opencontainers.image.created"] == "2024-06-01T00:00:00Z")
        #expect(try index.select(platform: Platform(os: "linux", architecture: "arm64")).digest == digest("2"))
    }

    @Test func dockerManifestList() throws {
        let doc = try ManifestDocument.decode(data: data(Samples.dockerManifestList), contentType: "application/vnd.docker.distribution.manifest.list.v2+json")
        guard case let .index(index) = doc else { Issue.record("expected an index, got \(doc)"); return }
        #expect(index.mediaType == MediaType.dockerManifestList)
        #expect(index.manifests.count == 6)
        let windows = index.manifests[5].platform
        #expect(windows?.os == "windows")
        #expect(windows?.osVersion == "10.0.17763.5820")
        #expect(windows?.osFeatures == ["win32k"])
    }

    struct Generic: Sendable, CustomTestStringConvertible {
        let contentType: String?
        var testDescription: String { contentType ?? "nil" }
    }

    @Test(arguments: [nil, "", "application/json", "text/plain; charset=utf-8", "Application/JSON"] as [String?])
    func genericContentTypeDecidesByBody(_ contentType: String?) throws {
        // Body mediaType decides.
        let list = try ManifestDocument.decode(data: data(Samples.dockerManifestList), contentType: contentType)
        #expect(list.mediaType == MediaType.dockerManifestList)
        let manifest = try ManifestDocument.decode(data: data(Samples.dockerManifest), contentType: contentType)
        #expect(manifest.mediaType == MediaType.dockerManifest)
        // No mediaType in the body: the shape decides.
        let bareIndex = #"{"schemaVersion":2,"manifests":[]}"#
        guard case .index = try ManifestDocument.decode(data: data(bareIndex), contentType: contentType) else {
            Issue.record("expected an index"); return
        }
        let bareManifest = #"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(sha("1"))","size":2},"layers":[]}"#
        let doc = try ManifestDocument.decode(data: data(bareManifest), contentType: contentType)
        guard case .manifest = doc else { Issue.record("expected a manifest"); return }
        #expect(doc.mediaType == MediaType.ociManifest)
    }

    @Test func bodyWithoutMediaTypeTakesContentType() throws {
        let body = #"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"\#(sha("1"))","size":2},"layers":[]}"#
        let doc = try ManifestDocument.decode(data: data(body), contentType: MediaType.dockerManifest)
        #expect(doc.mediaType == MediaType.dockerManifest)
    }

    struct Mismatch: Sendable, CustomTestStringConvertible {
        let name: String
        let body: String
        let contentType: String
        var testDescription: String { name }
    }

    static let mismatches: [Mismatch] = [
        Mismatch(name: "OCI manifest served as Docker v2", body: Samples.ociManifest, contentType: MediaType.dockerManifest),
        Mismatch(name: "Docker v2 served as OCI manifest", body: Samples.dockerManifest, contentType: MediaType.ociManifest),
        Mismatch(name: "index served as manifest", body: Samples.ociIndexWithAttestations, contentType: MediaType.ociManifest),
        Mismatch(name: "manifest served as index", body: Samples.ociManifest, contentType: MediaType.ociIndex),
        Mismatch(name: "manifest list served as OCI index", body: Samples.dockerManifestList, contentType: MediaType.ociIndex),
    ]

    @Test(arguments: mismatches)
    func mediaTypeContentTypeMismatchIsRejected(_ c: Mismatch) {
        let error = failure(try ManifestDocument.decode(data: data(c.body), contentType: c.contentType))
        guard case let .mediaTypeMismatch(contentType, body)? = error else {
            Issue.record("expected mediaTypeMismatch, got \(String(describing: error))"); return
        }
        #expect(contentType == c.contentType)
        #expect(body != c.contentType)
        #expect(error!.description.contains("does not match the Content-Type"))
    }

    @Test func shapeMismatchWithoutBodyMediaTypeIsRejected() {
        let bareIndex = #"{"schemaVersion":2,"manifests":[]}"#
        let e1 = failure(try ManifestDocument.decode(data: data(bareIndex), contentType: MediaType.ociManifest))
        #expect(e1?.description.contains("the body is an index") == true, "\(String(describing: e1))")
        let bareManifest = #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"\#(sha("1"))","size":2},"layers":[]}"#
        let e2 = failure(try ManifestDocument.decode(data: data(bareManifest), contentType: MediaType.dockerManifestList))
        #expect(e2?.description.contains("the body is a manifest") == true, "\(String(describing: e2))")
    }

    @Test func ambiguousDocumentIsRejected() {
        let body = """
        {"schemaVersion":2,"manifests":[],"config":{"mediaType":"x","digest":"\(sha("1"))","size":2},"layers":[]}
        """
        for contentType in [nil, MediaType.ociIndex, MediaType.ociManifest] as [String?] {
            let error = failure(try ManifestDocument.decode(data: data(body), contentType: contentType))
            #expect(error?.description.contains("ambiguous") == true, "\(String(describing: error))")
        }
    }

    @Test(arguments: [
        MediaType.dockerManifestSchema1Signed, MediaType.dockerManifestSchema1,
        "application/vnd.docker.distribution.manifest.v1+prettyjws; charset=utf-8", nil, "application/json",
    ] as [String?])
    func schema1IsRejected(_ contentType: String?) {
        let error = failure(try ManifestDocument.decode(data: data(Samples.schema1), contentType: contentType))
        #expect(error == .schema1Unsupported)
        #expect(error?.description.contains("schema 1") == true)
        #expect(error?.description.contains("not supported") == true)
    }

    @Test func schema1ByBodyMediaType() {
        let body = #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#
        #expect(failure(try ManifestDocument.decode(data: data(body), contentType: nil)) == .schema1Unsupported)
    }

    struct Broken: Sendable, CustomTestStringConvertible {
        let name: String
        let body: String
        let contentType: String?
        let message: String
        var testDescription: String { name }
    }

    static let broken: [Broken] = [
        Broken(name: "HTML error page", body: "<html><body>502 Bad Gateway</body></html>", contentType: MediaType.ociManifest, message: "not valid JSON"),
        Broken(name: "empty body", body: "", contentType: MediaType.ociManifest, message: "not valid JSON (0 bytes)"),
        Broken(name: "truncated", body: String(Samples.ociManifest.prefix(100)), contentType: MediaType.ociManifest, message: "not valid JSON"),
        Broken(name: "JSON array", body: "[1,2]", contentType: nil, message: "not an object"),
        Broken(name: "JSON string", body: "\"manifest\"", contentType: nil, message: "not an object"),
        Broken(name: "no hints at all", body: #"{"schemaVersion":2}"#, contentType: nil, message: "cannot tell a manifest from an index"),
        Broken(name: "schemaVersion 3", body: #"{"schemaVersion":3,"manifests":[]}"#, contentType: MediaType.ociIndex, message: "schemaVersion 3"),
        Broken(name: "schemaVersion missing", body: #"{"manifests":[]}"#, contentType: MediaType.ociIndex, message: "schemaVersion"),
        Broken(name: "mediaType not a string", body: #"{"schemaVersion":2,"mediaType":7,"manifests":[]}"#, contentType: nil, message: "'mediaType' is not a string"),
        Broken(name: "path traversal digest", body: #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../etc/passwd","size":1},"layers":[]}"#,
               contentType: MediaType.ociManifest, message: "config.digest"),
        Broken(name: "uppercase layer digest", body: #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"\#(sha("1"))","size":1},"layers":[{"mediaType":"x","digest":"sha256:\#(String(repeating: "A", count: 64))","size":1}]}"#,
               contentType: MediaType.ociManifest, message: "layers[0].digest"),
        Broken(name: "negative size", body: #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"\#(sha("1"))","size":-1},"layers":[]}"#,
               contentType: MediaType.ociManifest, message: "negative"),
        Broken(name: "size as string", body: #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"\#(sha("1"))","size":"12"},"layers":[]}"#,
               contentType: MediaType.ociManifest, message: "config.size"),
        Broken(name: "missing layers", body: #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"\#(sha("1"))","size":1}}"#,
               contentType: MediaType.ociManifest, message: "missing field 'layers'"),
        Broken(name: "index entry without digest", body: #"{"schemaVersion":2,"manifests":[{"mediaType":"x","size":1}]}"#,
               contentType: MediaType.ociIndex, message: "missing field 'digest' in manifests[0]"),
        Broken(name: "annotation value not a string", body: #"{"schemaVersion":2,"manifests":[],"annotations":{"a":1}}"#,
               contentType: MediaType.ociIndex, message: "annotations"),
    ]

    @Test(arguments: broken)
    func malformedDocumentsAreRejected(_ c: Broken) {
        let error = failure(try ManifestDocument.decode(data: data(c.body), contentType: c.contentType))
        guard case let .invalidManifest(reason)? = error else {
            Issue.record("expected invalidManifest, got \(String(describing: error))"); return
        }
        #expect(reason.contains(c.message), "reason: \(reason)")
    }

    @Test(arguments: ["application/vnd.oci.artifact.manifest.v1+json", "application/vnd.cncf.helm.config.v1+json"])
    func unknownContentTypeIsRejected(_ contentType: String) {
        let body = #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"\#(sha("1"))","size":1},"layers":[]}"#
        let error = failure(try ManifestDocument.decode(data: data(body), contentType: contentType))
        guard case let .unsupportedMediaType(type, _)? = error else {
            Issue.record("expected unsupportedMediaType, got \(String(describing: error))"); return
        }
        #expect(type == contentType)
    }

    @Test func manifestRoundTripsThroughCodable() throws {
        guard case let .manifest(m) = try ManifestDocument.decode(data: data(Samples.ociManifest), contentType: MediaType.ociManifest) else {
            Issue.record("expected a manifest"); return
        }
        let encoded = try JSONEncoder().encode(m)
        let again = try ManifestDocument.decode(data: encoded, contentType: MediaType.ociManifest)
        #expect(again == .manifest(m))
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(!text.contains("x-vendor-extension"))
        #expect(!text.contains("\"platform\""))
    }

    @Test func descriptorRejectsNegativeSizeDirectly() {
        let json = #"{"mediaType":"x","digest":"\#(sha("1"))","size":-5}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Descriptor.self, from: data(json)) }
        let ok = #"{"mediaType":"x","digest":"\#(sha("1"))","size":0}"#
        #expect((try? JSONDecoder().decode(Descriptor.self, from: data(ok)))?.size == 0)
    }
}
