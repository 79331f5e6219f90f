import Testing
@testable import CaissonOCI

@Suite struct ImageReferenceTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        let input: String
        let user: String?
        let registry: String
        let repository: String
        let tag: String?
        let digest: String?
        var testDescription: String { input }
    }

    static let hub = "registry-1.docker.io"

    static let valid: [Valid] = [
        Valid(input: "ubuntu", user: nil, registry: hub, repository: "library/ubuntu", tag: "latest", digest: nil),
        Valid(input: "docker://ubuntu:24.04", user: nil, registry: hub, repository: "library/ubuntu", tag: "24.04", digest: nil),
        Valid(input: "nvidia/cuda:12.4.1-base-ubuntu22.04", user: nil, registry: hub, repository: "nvidia/cuda", tag: "12.4.1-base-ubuntu22.04", digest: nil),
        Valid(input: "docker.io/library/alpine:3.19", user: nil, registry: hub, repository: "library/alpine", tag: "3.19", digest: nil),
        Valid(input: "docker.io/alpine", user: nil, registry: hub, repository: "library/alpine", tag: "latest", digest: nil),
        Valid(input: "index.docker.io/nvidia/cuda", user: nil, registry: hub, repository: "nvidia/cuda", tag: "latest", digest: nil),
        Valid(input: "docker://docker.io#alpine", user: nil, registry: hub, repository: "library/alpine", tag: "latest", digest: nil),
        Valid(input: "docker://nvcr.io#nvidia/pytorch:24.05-py3", user: nil, registry: "nvcr.io", repository: "nvidia/pytorch", tag: "24.05-py3", digest: nil),
        Valid(input: "nvcr.io#nvidia/pytorch:24.05-py3", user: nil, registry: "nvcr.io", repository: "nvidia/pytorch", tag: "24.05-py3", digest: nil),
        Valid(input: "docker://user@nvcr.io#nvidia/pytorch", user: "user", registry: "nvcr.io", repository: "nvidia/pytorch", tag: "latest", digest: nil),
        Valid(input: "user@nvcr.io#nvidia/pytorch", user: "user", registry: "nvcr.io", repository: "nvidia/pytorch", tag: "latest", digest: nil),
        Valid(input: "$oauthtoken@nvcr.io#nvidia/pytorch:24.05-py3", user: "$oauthtoken", registry: "nvcr.io", repository: "nvidia/pytorch", tag: "24.05-py3", digest: nil),
        Valid(input: "docker://user@ubuntu", user: "user", registry: hub, repository: "library/ubuntu", tag: "latest", digest: nil),
        Valid(input: "docker://me@shaper:v1", user: "me", registry: hub, repository: "library/shaper", tag: "v1", digest: nil),
        Valid(input: "me@ubuntu:22.04@\(sha("f"))", user: "me", registry: hub, repository: "library/ubuntu", tag: "22.04", digest: sha("f")),
        Valid(input: "localhost:5000/a/b:t", user: nil, registry: "localhost:5000", repository: "a/b", tag: "t", digest: nil),
        Valid(input: "localhost/foo", user: nil, registry: "localhost", repository: "foo", tag: "latest", digest: nil),
        Valid(input: "nvcr.io/nvidia/pytorch:24.05-py3", user: nil, registry: "nvcr.io", repository: "nvidia/pytorch", tag: "24.05-py3", digest: nil),
        Valid(input: "docker://nvcr.io/nvidia/pytorch:24.05-py3", user: nil, registry: "nvcr.io", repository: "nvidia/pytorch", tag: "24.05-py3", digest: nil),
        Valid(input: "docker://127.0.0.1:5000#x/y@\(sha("a"))", user: nil, registry: "127.0.0.1:5000", repository: "x/y", tag: nil, digest: sha("a")),
        Valid(input: "ubuntu@\(sha("b"))", user: nil, registry: hub, repository: "library/ubuntu", tag: nil, digest: sha("b")),
        Valid(input: "ghcr.io/owner/img:v1@\(sha("c"))", user: nil, registry: "ghcr.io", repository: "owner/img", tag: "v1", digest: sha("c")),
        Valid(input: "me@nvcr.io#nvidia/pytorch:24.05-py3@\(sha("d"))", user: "me", registry: "nvcr.io", repository: "nvidia/pytorch", tag: "24.05-py3", digest: sha("d")),
        Valid(input: "registry.example.com:443/team/sub/img__x--y.z_w", user: nil, registry: "registry.example.com:443", repository: "team/sub/img__x--y.z_w", tag: "latest", digest: nil),
        Valid(input: "NVCR.IO#nvidia/pytorch", user: nil, registry: "nvcr.io", repository: "nvidia/pytorch", tag: "latest", digest: nil),
        Valid(input: "[::1]:5000/a/b", user: nil, registry: "[::1]:5000", repository: "a/b", tag: "latest", digest: nil),
        Valid(input: "ubuntu:_underscore.Tag-9", user: nil, registry: hub, repository: "library/ubuntu", tag: "_underscore.Tag-9", digest: nil),
        Valid(input: "a:" + String(repeating: "t", count: 128), user: nil, registry: hub, repository: "library/a", tag: String(repeating: "t", count: 128), digest: nil),
    ]

    @Test(arguments: valid)
    func parses(_ c: Valid) throws {
        let ref = try ImageReference.parse(c.input)
        #expect(ref.user == c.user)
        #expect(ref.registry == c.registry)
        #expect(ref.repository == c.repository)
        #expect(ref.tag == c.tag)
        #expect(ref.digest?.description == c.digest)
        #expect(ref.reference == (c.digest ?? c.tag))
        // enroot's form reads back to the same value.
        #expect(try ImageReference.parse(ref.description) == ref)
        // So does the registry source.
        #expect(try ImageSource.parse(c.input) == .registry(ref))
    }

    @Test func digestWinsOverTag() throws {
        let ref = try ImageReference.parse("ghcr.io/owner/img:v1@\(sha("e"))")
        #expect(ref.tag == "v1")
        #expect(ref.reference == sha("e"))
        #expect(ref.canonicalName == "ghcr.io/owner/img:v1@\(sha("e"))")
    }

    @Test func forms() throws {
        let ref = try ImageReference.parse("user@nvcr.io#nvidia/pytorch:24.05-py3")
        #expect(ref.description == "docker://user@nvcr.io#nvidia/pytorch:24.05-py3")
        #expect(ref.canonicalName == "nvcr.io/nvidia/pytorch:24.05-py3")
        #expect(!ref.isDockerHub)
        #expect(try ImageReference.parse("ubuntu").isDockerHub)
        #expect(try ImageReference.parse("ubuntu").canonicalName == "registry-1.docker.io/library/ubuntu:latest")
    }

    @Test func memberwiseInitNormalisesAndValidates() throws {
        let ref = try ImageReference(registry: "docker.io", repository: "alpine")
        #expect(ref.registry == "registry-1.docker.io")
        #expect(ref.repository == "library/alpine")
        #expect(ref.tag == "latest")
        #expect(failure(try ImageReference(registry: "nvcr.io", repository: "Bad")) != nil)
        #expect(failure(try ImageReference(registry: "a/b", repository: "ok")) != nil)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        let input: String
        let reason: String
        var testDescription: String { input.isEmpty ? "<empty>" : String(input.prefix(60)) }
    }

    static let invalid: [Invalid] = [
        Invalid(input: "", reason: "empty"),
        Invalid(input: "docker://", reason: "image name is empty"),
        Invalid(input: "docker://nvcr.io#", reason: "image name is empty"),
        Invalid(input: "docker://nvcr.io#NVIDIA/pytorch", reason: "must be lowercase"),
        Invalid(input: "Ubuntu", reason: "must be lowercase"),
        Invalid(input: "nvcr.io/Nvidia/PyTorch:1", reason: "did you mean 'nvidia/pytorch'"),
        Invalid(input: "ubuntu:-bad", reason: "tag '-bad' is invalid"),
        Invalid(input: "ubuntu:.bad", reason: "tag '.bad' is invalid"),
        Invalid(input: "ubuntu:a+b", reason: "tag 'a+b' is invalid"),
        Invalid(input: "ubuntu:" + String(repeating: "t", count: 129), reason: "is invalid"),
        Invalid(input: "ubuntu:", reason: "tag after ':' is empty"),
        Invalid(input: "ubuntu@sha256:abc", reason: "exactly 64 hex characters, got 3"),
        Invalid(input: "ubuntu@sha256:../../x", reason: "only the hex characters"),
        Invalid(input: "ubuntu@sha384:" + String(repeating: "a", count: 96), reason: "unsupported algorithm 'sha384'"),
        Invalid(input: "ubuntu@sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709", reason: "unsupported algorithm 'sha1'"),
        Invalid(input: "ubuntu@sha256:" + String(repeating: "A", count: 64), reason: "lowercase hex"),
        Invalid(input: "./foo.sqsh", reason: "is a file path, not a registry image"),
        Invalid(input: "/scratch/images/foo.sqsh", reason: "is a file path"),
        Invalid(input: "../x", reason: "is a file path"),
        Invalid(input: "~/x.sqsh", reason: "is a file path"),
        Invalid(input: "foo.sqsh", reason: "looks like a file (.sqsh)"),
        Invalid(input: "image.tar.gz", reason: "looks like a file"),
        Invalid(input: "@nvcr.io#x", reason: "user before '@' is empty"),
        Invalid(input: "user@#x", reason: "registry before '#' is empty"),
        Invalid(input: "nvcr.io:99999#x", reason: "port '99999'"),
        Invalid(input: "nvcr.io:abc#x", reason: "port 'abc'"),
        Invalid(input: "nvcr.io:#x", reason: "port ''"),
        Invalid(input: ":5000#x", reason: "host is empty"),
        Invalid(input: "nv cr.io#x", reason: "spaces"),
        Invalid(input: "nvcr..io#x", reason: "empty label"),
        Invalid(input: "-nvcr.io#x", reason: "cannot start or end with '-'"),
        Invalid(input: "nv!cr.io#x", reason: "only letters, digits"),
        Invalid(input: "https://nvcr.io#x", reason: "'https://' is not a registry scheme"),
        Invalid(input: "nvcr.io#nvidia#pytorch", reason: "more than one '#'"),
        Invalid(input: "a//b", reason: "not a valid repository name"),
        Invalid(input: "docker://nvcr.io#a/../b", reason: "not a valid repository name"),
        Invalid(input: "foo__-bar", reason: "not a valid repository name"),
        Invalid(input: "foo___bar", reason: "not a valid repository name"),
        Invalid(input: "foo-", reason: "not a valid repository name"),
        Invalid(input: "nvcr.io/a/b/", reason: "not a valid repository name"),
        Invalid(input: "ubuntu\t", reason: "spaces, control"),
        Invalid(input: "ubüntu", reason: "non-ASCII"),
        Invalid(input: "nvcr.io#" + String(repeating: "a", count: 250), reason: "longer than 255"),
    ]

    @Test(arguments: invalid)
    func rejects(_ c: Invalid) {
        let error = failure(try ImageReference.parse(c.input))
        guard case let .invalidReference(input, reason, hint)? = error else {
            Issue.record("expected invalidReference for '\(c.input)', got \(String(describing: error))")
            return
        }
        #expect(input == c.input)
        #expect(reason.contains(c.reason), "reason: \(reason)")
        // Every message shows the right syntax with an example.
        #expect(hint.contains("nvcr.io#nvidia/pytorch:24.05-py3"), "hint: \(hint)")
        #expect(error!.description.contains(reason))
    }

    @Test func filePathMessageIsClear() {
        let error = failure(try ImageSource.parse("./foo.sqsh"))
        let text = error?.description ?? ""
        #expect(text.contains("'./foo.sqsh' is a file path, not a registry image"))
        #expect(text.contains("docker://[USER@][REGISTRY#]IMAGE[:TAG]"))
        #expect(text.contains("oci://DIR[:TAG]"))
    }
}

@Suite struct ImageSourceTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let input: String
        let expected: ImageSource
        var testDescription: String { input }
    }

    static let cases: [Case] = [
        Case(input: "oci:///data/img:v1", expected: .ociLayout(path: "/data/img", tag: "v1")),
        Case(input: "oci:///data/img", expected: .ociLayout(path: "/data/img", tag: nil)),
        Case(input: "oci:///data/my:dir/img", expected: .ociLayout(path: "/data/my:dir/img", tag: nil)),
        Case(input: "oci:///data/a:b:v2", expected: .ociLayout(path: "/data/a:b", tag: "v2")),
        Case(input: "oci://relative/dir:24.05-py3", expected: .ociLayout(path: "relative/dir", tag: "24.05-py3")),
        Case(input: "oci:///data/img:", expected: .ociLayout(path: "/data/img:", tag: nil)),
        Case(input: "oci:///data/img:not+a+tag", expected: .ociLayout(path: "/data/img:not+a+tag", tag: nil)),
        Case(input: "oci-archive:///tmp/x.tar:latest", expected: .ociArchive(path: "/tmp/x.tar", tag: "latest")),
        Case(input: "oci-archive:///tmp/x.tar", expected: .ociArchive(path: "/tmp/x.tar", tag: nil)),
        Case(input: "docker-archive:///tmp/save.tar", expected: .dockerArchive(path: "/tmp/save.tar")),
        Case(input: "docker-archive:///tmp/a:b.tar", expected: .dockerArchive(path: "/tmp/a:b.tar")),
        Case(input: "docker://ubuntu", expected: .registry(try! ImageReference(repository: "library/ubuntu"))),
        Case(input: "nvcr.io#nvidia/pytorch:24.05-py3",
             expected: .registry(try! ImageReference(registry: "nvcr.io", repository: "nvidia/pytorch", tag: "24.05-py3"))),
    ]

    @Test(arguments: cases)
    func parses(_ c: Case) throws {
        let source = try ImageSource.parse(c.input)
        #expect(source == c.expected)
        #expect(try ImageSource.parse(source.description) == source)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        let input: String
        let reason: String
        var testDescription: String { input }
    }

    static let invalid: [Invalid] = [
        Invalid(input: "oci://", reason: "directory path is empty"),
        Invalid(input: "oci://:v1", reason: "directory path is empty"),
        Invalid(input: "oci-archive://", reason: "archive path is empty"),
        Invalid(input: "docker-archive://", reason: "archive path is empty"),
        Invalid(input: "dockerd://ubuntu", reason: "unsupported scheme 'dockerd://'"),
        Invalid(input: "podman://ubuntu", reason: "unsupported scheme 'podman://'"),
        Invalid(input: "./foo.sqsh", reason: "file path"),
    ]

    @Test(arguments: invalid)
    func rejects(_ c: Invalid) {
        let error = failure(try ImageSource.parse(c.input))
        guard case let .invalidReference(_, reason, hint)? = error else {
            Issue.record("expected invalidReference for '\(c.input)', got \(String(describing: error))")
            return
        }
        #expect(reason.contains(c.reason), "reason: \(reason)")
        #expect(hint.contains("oci://"), "hint: \(hint)")
    }

    @Test func unsupportedSchemeListsSupportedOnes() {
        let text = failure(try ImageSource.parse("dockerd://ubuntu"))?.description ?? ""
        for scheme in ["docker://", "oci://", "oci-archive://", "docker-archive://"] {
            #expect(text.contains(scheme), "\(scheme) missing from: \(text)")
        }
    }
}
