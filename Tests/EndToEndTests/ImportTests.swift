import Foundation
import Testing

/// Real registries for the import tests: Debian's docker-registry (open, TLS, htpasswd, Bearer
/// token) and small misbehaving servers, with images the suite builds itself. Started once per run.
final class Registries: Sendable {
    static let shared = Registries()

    let directory: String
    let images: String
    let open: String, tls: String, basic: String, token: String
    let stall: String, flaky: String, redirect: String
    let ca: String, user: String, password: String
    let redirectTargetLog: String, redirectOriginLog: String
    let fixtures: String

    private init() {
        let h = Harness.shared
        fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").path
        directory = h.workspace + "/registries"
        images = h.workspace + "/images"
        var build = "python3 \(fixtures)/images.py build \(images)"
        if let base = Registries.debootstrapTree() { build += " --debootstrap \(base)" }
        let built = Harness.shell(build)
        precondition(built.status == 0, "building test images failed: \(built.stderr)")
        let started = Harness.shell("python3 \(fixtures)/registry.py start \(directory) --images \(images) --watch-pid \(getpid())")
        precondition(started.status == 0, "starting registries failed: \(started.stderr)\n\(started.stdout)")
        let data = FileManager.default.contents(atPath: directory + "/registries.json")!
        let json = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        func s(_ key: String) -> String { json[key] as! String }
        open = s("open"); tls = s("tls"); basic = s("basic"); token = s("token")
        stall = s("stall"); flaky = s("flaky"); redirect = s("redirect")
        ca = s("ca"); user = s("user"); password = s("password")
        redirectTargetLog = s("redirectLog"); redirectOriginLog = s("redirectOriginLog")
        chmod(ca, 0o644)
    }

    /// A debootstrap minbase tree for the layered image, made once per machine (root and the
    /// Debian mirror apt uses are needed); nil falls back to a busybox base.
    static func debootstrapTree() -> String? {
        let cache = "/var/cache/caisson-test/debootstrap-bookworm"
        if FileManager.default.fileExists(atPath: cache + "/etc/debian_version") { return cache }
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/debootstrap") else { return nil }
        let r = Harness.shell("rm -rf \(cache).tmp && debootstrap --variant=minbase bookworm \(cache).tmp http://deb.debian.org/debian >/dev/null 2>&1 && mv \(cache).tmp \(cache)")
        return r.status == 0 ? cache : nil
    }

    /// Settings every import test uses: a private cache, the plain-HTTP registries allowed.
    func environment(cache: String, _ extra: [String: String] = [:]) -> [String: String] {
        var env = ["CAISSON_CACHE_PATH": cache,
                   "CAISSON_INSECURE_REGISTRIES": [open, token, stall, flaky, redirect].joined(separator: ","),
                   "CAISSON_CONFIG_PATH": cache + "/config"]
        for (k, v) in extra { env[k] = v }
        return env
    }
}

@Suite struct ImportFromRegistry {
    let h = Harness.shared
    let r = Registries.shared

    /// Runs `caisson import` as the test user in a fresh directory with a fresh cache.
    func importImage(_ args: [String], env extra: [String: String] = [:], dir: String? = nil, cache: String? = nil) -> (Harness.Result, String) {
        let dir = dir ?? h.scratch("import")
        let cache = cache ?? h.scratch("cache")
        let result = h.caisson(["import"] + args, env: r.environment(cache: cache, extra), cwd: dir, timeout: 300)
        return (result, dir)
    }

    static func cat(_ image: String, _ path: String) -> String {
        Harness.shell("unsquashfs -cat \(image) \(path)").stdout
    }

    static func listing(_ image: String) -> String {
        Harness.shell("unsquashfs -lln \(image)").stdout
    }

    /// Files in a directory, for "nothing left behind" checks.
    static func contents(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func busyboxWithImageMetadata() throws {
        let (result, dir) = importImage(["docker://\(r.open)/busybox:latest"])
        #expect(result.status == 0, "\(result)")
        let image = "\(dir)/busybox+latest.sqsh"
        #expect(Self.contents(dir) == ["busybox+latest.sqsh"], "only the image, no temporary files")
        let listing = Self.listing(image)
        #expect(listing.contains("-rwxr-xr-x 0/0") && listing.contains("squashfs-root/bin/busybox"), "\(listing)")
        #expect(Self.cat(image, "etc/environment").contains("GREETING=hello from the image"))
        let rc = Self.cat(image, "etc/rc")
        #expect(rc.contains("cd /root") && rc.contains("exec /bin/sh -c"), "\(rc)")
        #expect(Self.cat(image, "etc/fstab").contains("tmpfs /data tmpfs x-create=dir"))
        let provenance = Self.cat(image, "etc/caisson/image.json")
        #expect(provenance.contains("\"manifestDigest\" : \"sha256:"), "\(provenance)")
        #expect(result.stderr.contains("busybox+latest.sqsh: 1 layers"), "a one-line summary off a terminal: \(result)")
        // The digest command agrees with what the import recorded, without fetching layers.
        let digest = h.caisson(["digest", "docker://\(r.open)/busybox:latest"], env: r.environment(cache: h.scratch("c")))
        #expect(digest.status == 0 && provenance.contains(digest.stdout.trimmingCharacters(in: .newlines)), "\(digest)")
    }

    @Test func layeredImageEqualsUmociUnpack() throws {
        let (result, dir) = importImage(["-o", "layered.sqsh", "docker://\(r.open)/layered:latest"])
        #expect(result.status == 0, "\(result)")
        let ours = h.scratch("ours"), reference = h.scratch("umoci")
        Harness.shell("rm -rf \(ours) && unsquashfs -q -d \(ours) \(dir)/layered.sqsh >/dev/null")
        let umoci = Harness.shell("rm -rf \(reference) && umoci unpack --rootless --image \(r.images)/layered:gzip \(reference)")
        try #require(umoci.status == 0, "umoci: \(umoci.stderr)")
        let compare = Harness.shell("python3 \(r.fixtures)/treecmp.py \(reference)/rootfs \(ours) etc/rc etc/environment etc/fstab etc/caisson")
        #expect(compare.status == 0, "differences from umoci's unpack: \(compare.stdout)")
        // The semantics the layered image exercises, spelled out.
        #expect(!FileManager.default.fileExists(atPath: "\(ours)/opt/removed-later"))
        #expect(Self.contents("\(ours)/var/cache/apt") == ["fresh"], "opaque whiteout")
        #expect((try? String(contentsOfFile: "\(ours)/opt/recreated", encoding: .utf8)) == "version 3\n")
        var a = stat(), b = stat()
        stat("\(ours)/opt/linked-a", &a); stat("\(ours)/opt/linked-b", &b)
        #expect(a.st_ino == b.st_ino && a.st_nlink == 2, "hard link within a layer")
        stat("\(ours)/opt/shared", &a); stat("\(ours)/opt/shared-link", &b)
        #expect(a.st_ino == b.st_ino, "hard link across layers")
    }

    @Test func platformSelection() throws {
        let (amd, dir) = importImage(["-o", "amd.sqsh", "--platform", "linux/amd64", "docker://\(r.open)/multiarch:latest"])
        #expect(amd.status == 0, "\(amd)")
        #expect(Self.cat("\(dir)/amd.sqsh", "etc/arch") == "amd64\n")
        let (arm, dir2) = importImage(["-o", "arm.sqsh", "--arch", "aarch64", "docker://\(r.open)/multiarch:latest"])
        #expect(arm.status == 0, "\(arm)")
        #expect(Self.cat("\(dir2)/arm.sqsh", "etc/arch") == "arm64/v8\n", "aarch64 is normalised to arm64/v8")
        let (none, dir3) = importImage(["--platform", "linux/s390x", "docker://\(r.open)/multiarch:latest"])
        #expect(none.status == 1, "\(none)")
        #expect(none.stderr.contains("no image for linux/s390x") && none.stderr.contains("linux/amd64, linux/arm64/v8"), "\(none)")
        #expect(!none.stderr.contains("unknown"), "the attestation entry is not offered: \(none)")
        #expect(Self.contents(dir3).isEmpty)
    }

    @Test func dockerSchema2AndOCILayout() {
        let (docker, dir) = importImage(["-o", "docker.sqsh", "docker://\(r.open)/busybox:docker"])
        #expect(docker.status == 0, "\(docker)")
        #expect(Self.cat("\(dir)/docker.sqsh", "etc/os-release").contains("Caisson test busybox"))
        let (layout, dir2) = importImage(["-o", "layout.sqsh", "oci://\(r.images)/layered:latest"])
        #expect(layout.status == 0, "\(layout)")
        #expect(Self.cat("\(dir2)/layout.sqsh", "opt/recreated") == "version 3\n")
    }

    @Test func ociAndDockerArchives() throws {
        let archives = h.scratch("archives")
        let made = Harness.shell("""
        skopeo copy --quiet oci:\(r.images)/layered:latest oci-archive:\(archives)/layered-oci.tar:latest &&
        skopeo copy --quiet oci:\(r.images)/layered:gzip docker-archive:\(archives)/layered-docker.tar:layered:gzip &&
        chmod 644 \(archives)/*.tar
        """)
        try #require(made.status == 0, "\(made.stderr)")
        let temp = h.scratch("tmp")
        for (uri, name) in [("oci-archive://\(archives)/layered-oci.tar:latest", "oci.sqsh"),
                            ("docker-archive://\(archives)/layered-docker.tar", "docker.sqsh")] {
            let (result, dir) = importImage(["-o", name, uri], env: ["CAISSON_TEMP_PATH": temp])
            #expect(result.status == 0, "\(uri): \(result)")
            #expect(Self.cat("\(dir)/\(name)", "opt/recreated") == "version 3\n", "\(uri)")
            #expect(Self.contents(temp).isEmpty, "the archive's scratch directory is gone: \(Self.contents(temp))")
        }
    }

    @Test func hostileArchiveMembersAreNeverExtracted() throws {
        let archives = h.scratch("evil")
        // Members with traversal names next to a valid-looking layout.
        let made = Harness.shell("""
        cd \(archives) && python3 - <<'PY'
        import io, tarfile
        with tarfile.open("evil.tar", "w") as t:
            for name, data in [("../evil-outside", b"x"), ("blobs/sha256/../../../evil-blob", b"y"),
                               ("/tmp/evil-absolute", b"z"), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]:
                info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("index.json"); link.type = tarfile.SYMTYPE; link.linkname = "/etc/passwd"; t.addfile(link)
        PY
        chmod 644 evil.tar
        """)
        try #require(made.status == 0, "\(made.stderr)")
        let temp = h.scratch("tmp")
        let (result, dir) = importImage(["oci-archive://\(archives)/evil.tar"], env: ["CAISSON_TEMP_PATH": temp])
        #expect(result.status == 1, "\(result)")
        #expect(Self.contents(dir).isEmpty && Self.contents(temp).isEmpty, "nothing left behind")
        #expect(Self.contents(archives) == ["evil.tar"])
        for path in ["\(h.workspace)/evil-outside", "\(temp)/../evil-outside", "\(h.workspace)/evil-blob", "/tmp/evil-absolute", "/var/tmp/evil-blob"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path)")
        }
    }

    @Test func tlsRegistryTrustsOnlyTheConfiguredCA() {
        let (untrusted, dir) = importImage(["docker://\(r.tls)/busybox:latest"])
        #expect(untrusted.status == 1, "\(untrusted)")
        #expect(untrusted.stderr.lowercased().contains("tls") || untrusted.stderr.lowercased().contains("certificate"), "\(untrusted)")
        #expect(Self.contents(dir).isEmpty)
        let (trusted, _) = importImage(["docker://\(r.tls)/busybox:latest"], env: ["SSL_CERT_FILE": r.ca])
        #expect(trusted.status == 0, "\(trusted)")
    }

    /// Writes a credentials file (netrc format) into the cache's config directory.
    func credentials(_ cache: String, host: String, password: String) {
        let config = cache + "/config"
        try? FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        try? "machine \(host) login \(r.user) password \(password)\n".write(toFile: config + "/credentials", atomically: true, encoding: .utf8)
        h.chownTree(cache)
    }

    @Test func basicAuthentication() {
        let noCreds = importImage(["docker://\(r.basic)/busybox:latest"], env: ["SSL_CERT_FILE": r.ca]).0
        #expect(noCreds.status == 1 && noCreds.stderr.contains("requires credentials"), "\(noCreds)")
        let wrong = h.scratch("cache")
        credentials(wrong, host: r.basic, password: "not-the-password")
        let rejected = importImage(["docker://\(r.basic)/busybox:latest"], env: ["SSL_CERT_FILE": r.ca], cache: wrong).0
        #expect(rejected.status == 1 && rejected.stderr.contains("rejected the credentials"), "\(rejected)")
        #expect(!rejected.stderr.contains("not-the-password"), "secrets are never printed")
        let good = h.scratch("cache")
        credentials(good, host: r.basic, password: r.password)
        let accepted = importImage(["docker://\(r.basic)/busybox:latest"], env: ["SSL_CERT_FILE": r.ca], cache: good).0
        #expect(accepted.status == 0, "\(accepted)")
    }

    @Test func bearerTokenAuthentication() {
        let anonymous = importImage(["docker://\(r.token)/public/busybox:latest"]).0
        #expect(anonymous.status == 0, "anonymous pull of a public repository: \(anonymous)")
        let denied = importImage(["docker://\(r.token)/private/busybox:latest"]).0
        #expect(denied.status == 1 && denied.stderr.contains("credentials"), "\(denied)")
        let cache = h.scratch("cache")
        credentials(cache, host: r.token, password: r.password)
        let allowed = importImage(["docker://\(r.token)/private/busybox:latest"], cache: cache).0
        #expect(allowed.status == 0, "\(allowed)")
        let user = importImage(["docker://\(r.user)@\(r.token)#private/busybox:latest"], cache: cache).0
        #expect(user.status == 0, "USER@REGISTRY#IMAGE picks that user's credentials: \(user)")
    }

    @Test func missingTagAndRepository() {
        let (tag, dir) = importImage(["docker://\(r.open)/busybox:no-such-tag"])
        #expect(tag.status == 1 && tag.stderr.contains("not found"), "\(tag)")
        #expect(Self.contents(dir).isEmpty)
        let (repo, _) = importImage(["docker://\(r.open)/nobody/nothing:latest"])
        #expect(repo.status == 1 && repo.stderr.contains("not found"), "\(repo)")
    }

    @Test func retriesAServerError() {
        let (result, _) = importImage(["docker://\(r.flaky)/busybox:latest"], env: ["CAISSON_TRANSFER_RETRIES": "3"])
        #expect(result.status == 0, "every path answers 503 once; retries get through: \(result)")
    }

    @Test func stalledRegistryFailsClearlyAndLeavesNothing() {
        let started = Date()
        let (result, dir) = importImage(["docker://\(r.stall)/busybox:latest"],
                                        env: ["CAISSON_STALL_TIMEOUT": "2", "CAISSON_TRANSFER_RETRIES": "1"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("stalled") || result.stderr.contains("timed out"), "\(result)")
        #expect(Date().timeIntervalSince(started) < 60, "retries are bounded")
        #expect(Self.contents(dir).isEmpty)
    }

    @Test func redirectsDoNotCarryCredentialsToAnotherHost() throws {
        let cache = h.scratch("cache")
        credentials(cache, host: r.redirect, password: r.password)
        let (result, _) = importImage(["docker://\(r.redirect)/tamper:latest"], cache: cache)
        #expect(result.status == 0, "\(result)")
        let target = (try? String(contentsOfFile: r.redirectTargetLog, encoding: .utf8)) ?? ""
        let origin = (try? String(contentsOfFile: r.redirectOriginLog, encoding: .utf8)) ?? ""
        try #require(target.contains("/blobs/sha256:"), "the blob came through the redirect target: \(target)")
        #expect(origin.contains("\"authorization\": true"), "the origin got the credentials: \(origin)")
        #expect(!target.contains("\"authorization\": true"), "the other host never did: \(target)")
    }

    @Test func hostileLayerEscapeIsRefused() {
        let outside = "\(h.workspace)/escaped-by-caisson-test"
        let (result, dir) = importImage(["docker://\(r.open)/hostile:escape"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("escape"), "\(result)")
        #expect(Self.contents(dir).isEmpty, "no partial image")
        #expect(!FileManager.default.fileExists(atPath: outside))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/../escaped-by-caisson-test"))
    }

    @Test func devicesAreSkippedAndSetuidKeptAsData() {
        let (result, dir) = importImage(["-o", "device.sqsh", "docker://\(r.open)/hostile:device"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("dev/sda") && result.stderr.contains("sneaky-device"), "warned: \(result)")
        let listing = Self.listing("\(dir)/device.sqsh")
        #expect(!listing.contains("sneaky-device") && !listing.contains("squashfs-root/dev/sda"), "\(listing)")
        #expect(listing.contains("-rwsr-xr-x 0/0") && listing.contains("suid-busybox"), "\(listing)")
    }

    @Test func corruptBlobIsRejectedAndNotCached() throws {
        // Corrupt tamper:latest's layer inside the open registry's storage (same size, other bytes).
        let storage = "\(r.directory)/open/storage"
        let manifest = Harness.shell("python3 -c \"import json,sys; m=json.load(open('\(r.images)/tamper/index.json'))['manifests'][0]['digest']; print(m[7:])\"").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let manifestJSON = try String(contentsOfFile: "\(r.images)/tamper/blobs/sha256/\(manifest)", encoding: .utf8)
        let layer = try #require(manifestJSON.components(separatedBy: "\"digest\": \"sha256:").last?.prefix(64))
        let blob = "\(storage)/docker/registry/v2/blobs/sha256/\(layer.prefix(2))/\(layer)/data"
        try #require(FileManager.default.fileExists(atPath: blob), "registry blob at \(blob)")
        Harness.shell("cp \(blob) \(blob).orig && python3 -c \"p='\(blob)'; b=bytearray(open(p,'rb').read()); b[-20]^=0xff; open(p,'wb').write(b)\"")
        defer { Harness.shell("mv \(blob).orig \(blob)") }
        let cache = h.scratch("cache")
        let (result, dir) = importImage(["docker://\(r.open)/tamper:latest"], cache: cache)
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("does not match its digest"), "\(result)")
        #expect(Self.contents(dir).isEmpty, "no partial image")
        let cached = Self.contents("\(cache)/blobs/sha256").filter { $0.hasPrefix(String(layer)) && !$0.hasSuffix(".lock") }
        #expect(cached.isEmpty, "no bad cache entry: \(cached)")
    }

    @Test func corruptedCacheEntryIsDetectedAndFetchedAgain() throws {
        let cache = h.scratch("cache")
        let (first, _) = importImage(["docker://\(r.open)/busybox:latest"], cache: cache)
        try #require(first.status == 0, "\(first)")
        let blobs = Self.contents("\(cache)/blobs/sha256").filter { $0.count == 64 }
        try #require(!blobs.isEmpty)
        // The finished image would be reused without reading a layer: drop it to exercise the layers.
        Harness.shell("rm -rf \(cache)/images")
        // Flip a byte in every cached blob, keeping the size (what bit rot or a bad disk does).
        for blob in blobs {
            Harness.shell("python3 -c \"p='\(cache)/blobs/sha256/\(blob)'; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0x55; open(p,'wb').write(b)\"")
        }
        let (second, dir) = importImage(["docker://\(r.open)/busybox:latest"], cache: cache)
        #expect(second.status == 0, "\(second)")
        #expect(second.stderr.contains("corrupt") && second.stderr.contains("fetching it again"), "\(second)")
        #expect(Self.cat("\(dir)/busybox+latest.sqsh", "etc/os-release").contains("Caisson test busybox"))
        for blob in blobs {
            let fixed = Harness.shell("sha256sum < \(cache)/blobs/sha256/\(blob)").stdout
            #expect(fixed.hasPrefix(blob), "the cache holds good bytes again")
        }
    }

    @Test func importingAgainReusesTheImageWithoutFetchingLayers() throws {
        let cache = h.scratch("cache")
        let (first, dir) = importImage(["-o", "one.sqsh", "docker://\(r.open)/layered:latest"], cache: cache)
        try #require(first.status == 0, "\(first)")
        // Without the layers, only the finished image can satisfy a second import.
        Harness.shell("rm -f \(cache)/blobs/sha256/*")
        let (second, _) = importImage(["-o", "\(dir)/two.sqsh", "docker://\(r.open)/layered:latest"], cache: cache)
        #expect(second.status == 0, "\(second)")
        #expect(Self.contents("\(cache)/blobs/sha256").filter { $0.count == 64 }.isEmpty, "no layer was fetched")
        #expect(Harness.shell("cmp \(dir)/one.sqsh \(dir)/two.sqsh").status == 0, "the same image")
        // Other settings make another image.
        let (gzip, _) = importImage(["-o", "\(dir)/three.sqsh", "--compression", "gzip:1", "docker://\(r.open)/layered:latest"], cache: cache)
        #expect(gzip.status == 0, "\(gzip)")
        #expect(Self.contents("\(cache)/images").filter { $0.hasSuffix(".sqsh") }.count == 2)
    }

    @Test func diskFullLeavesNothingBehind() throws {
        try #require(h.asRoot, "needs root to mount a small tmpfs")
        let small = h.scratch("small")
        try #require(Harness.shell("mount -t tmpfs -o size=256k,mode=0777 tmpfs \(small)").status == 0)
        defer { Harness.shell("umount \(small)") }
        let (result, _) = importImage(["-o", "\(small)/layered.sqsh", "docker://\(r.open)/layered:latest"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.lowercased().contains("space"), "says the disk is full: \(result)")
        #expect(Self.contents(small).isEmpty, "no partial image: \(Self.contents(small))")
    }

    @Test func interruptedImportLeavesNoPartialImage() throws {
        let dir = h.scratch("interrupt")
        let env = h.baseEnvironment(r.environment(cache: h.scratch("cache")))
        let sawPartial = Locked(false)
        let result = h.run(h.asUser(env) + [h.binary, "import", "-o", "\(dir)/x.sqsh", "docker://\(r.open)/layered:latest"], timeout: 120) { process in
            // Interrupt once the hidden partial image exists, i.e. in the middle of writing it.
            for _ in 0..<3000 where Self.contents(dir).isEmpty { usleep(5_000) }
            sawPartial.set(Self.contents(dir).contains { $0.hasPrefix(".x.sqsh.partial-") })
            kill(process.processIdentifier, SIGTERM)
        }
        try #require(sawPartial.get(), "the import was interrupted while writing: \(result)")
        #expect(result.signal == SIGTERM, "\(result)")
        #expect(Self.contents(dir).isEmpty, "no partial image: \(Self.contents(dir))")
    }

    @Test func concurrentImportsShareOneCache() throws {
        let cache = h.scratch("shared-cache")
        let dirs = (0..<4).map { _ in h.scratch("concurrent") }
        let results = Locked<[Harness.Result]>([])
        DispatchQueue.concurrentPerform(iterations: dirs.count) { i in
            let result = h.caisson(["import", "-o", "\(dirs[i])/layered.sqsh", "docker://\(r.open)/layered:latest"],
                                   env: r.environment(cache: cache), cwd: dirs[i], timeout: 300)
            var all = results.get(); all.append(result); results.set(all)
        }
        for result in results.get() { #expect(result.status == 0, "\(result)") }
        let blobs = Self.contents("\(cache)/blobs/sha256")
        #expect(blobs.filter { $0.count == 64 }.count == 3, "each layer cached once: \(blobs)")
        #expect(!blobs.contains { $0.hasSuffix(".partial") }, "\(blobs)")
        let sums = Set(dirs.map { Harness.shell("sha256sum < \($0)/layered.sqsh").stdout })
        #expect(sums.count == 1, "the same image, byte for byte, every time")
        let list = h.caisson(["cache", "list"], env: r.environment(cache: cache))
        #expect(list.stdout.contains("3 layers, 1 image,"), "\(list)")
        let prune = h.caisson(["cache", "prune", "--all"], env: r.environment(cache: cache))
        #expect(prune.stdout.contains("removed 3 layers, 1 image,"), "\(prune)")
        #expect(Self.contents("\(cache)/blobs/sha256").filter { $0.count == 64 }.isEmpty)
    }
}
