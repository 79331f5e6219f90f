import Foundation
import Testing

/// Images are hostile input. Each case shows that the host is unchanged afterwards, under both
/// path resolvers (the kernel's openat2(RESOLVE_IN_ROOT) and the userspace fallback), and for
/// both forms of root: a directory, and the same tree as a .sqsh started through squashfuse.
@Suite struct HostileRootfs {
    let h = Harness.shared
    static let resolvers = ["kernel", "userspace", "kernel sqsh", "userspace sqsh"]

    func env(_ variant: String, _ extra: [String: String] = [:]) -> [String: String] {
        var e = extra
        if variant.hasPrefix("userspace") { e["CAISSON_RESOLVE"] = "userspace" }
        return e
    }

    /// The root to start for a variant: the directory itself, or a squashfs image of it.
    func root(_ rootfs: String, _ variant: String) -> String {
        variant.hasSuffix("sqsh") ? h.image(of: rootfs) : rootfs
    }

    /// A host directory the test user can write to: the place a broken runtime would write into.
    func victim() -> String {
        let dir = h.scratch("victim")
        try! "original\n".write(toFile: "\(dir)/file", atomically: true, encoding: .utf8)
        h.chownTree(dir)
        return dir
    }

    @Test(arguments: ["/proc", "/sys", "/dev", "/tmp"], resolvers)
    func systemMountPointAsSymlinkIsRefused(path: String, resolver: String) {
        let target = victim()
        let before = Harness.snapshot(target)
        let rootfs = h.rootfs("sym\(path.dropFirst())", customize: "rm -rf $R\(path) && ln -s \(target) $R\(path)")
        h.chownTree(rootfs)
        let r = h.caisson(["start", root(rootfs, resolver), "sh", "-c", "echo pwned > \(path)/file"], env: env(resolver))
        #expect(r.status == 125, "\(r)")
        #expect(r.stderr.contains("\(path) is a symbolic link"), "\(r)")
        #expect(Harness.snapshot(target) == before)
        #expect((try? String(contentsOfFile: "\(target)/file", encoding: .utf8)) == "original\n")
    }

    @Test(arguments: [true, false], resolvers)
    func mountTargetSymlinksResolveInsideTheRoot(writable: Bool, resolver: String) throws {
        let target = victim()
        let before = Harness.snapshot(target)
        let data = h.scratch("data")
        try "payload\n".write(toFile: "\(data)/payload", atomically: true, encoding: .utf8)
        h.chownTree(data)
        let climb = String(repeating: "../", count: 8) + target.dropFirst()
        let rootfs = h.rootfs("mnt", customize: "ln -s \(target) $R/mnt/abs && ln -s \(climb) $R/mnt/rel && ln -s /etc $R/mnt/etc")
        var args = ["start"]
        if writable { args.append("--rw") }
        args += ["-m", "\(data):/mnt/abs/created:x-create=dir",
                 "-m", "\(data):/mnt/rel/created2",
                 "-m", "\(data)/payload:/mnt/etc/payload:x-create=file",
                 root(rootfs, resolver), "sh", "-c", "cat /mnt/abs/created/payload /mnt/rel/created2/payload /etc/payload"]
        let r = h.caisson(args, env: env(resolver))
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout == "payload\npayload\npayload\n", "mounts landed inside the container: \(r)")
        #expect(Harness.snapshot(target) == before, "nothing was created or mounted on the host target")
        #expect(!FileManager.default.fileExists(atPath: "/etc/payload"))
        if writable && !resolver.hasSuffix("sqsh") {
            // With --rw the created mount points live in the rootfs, under the in-root path.
            #expect(FileManager.default.fileExists(atPath: "\(rootfs)\(target)/created"))
        } else {
            #expect(!FileManager.default.fileExists(atPath: "\(rootfs)\(target)"), "read-only starts never write the rootfs")
        }
    }

    @Test(arguments: resolvers)
    func danglingCreateThroughSymlinkedParentStaysInside(resolver: String) {
        let target = victim()
        let before = Harness.snapshot(target)
        let rootfs = h.rootfs("parent", customize: "mkdir -p $R/opt && ln -s \(target)/deeper $R/opt/link")
        let r = h.caisson(["start", "--rw", "-m", "tmpfs:/opt/link/sub/dir", root(rootfs, resolver), "true"], env: env(resolver))
        #expect(r.status == 0, "\(r)")
        #expect(Harness.snapshot(target) == before)
        if !resolver.hasSuffix("sqsh") {
            #expect(FileManager.default.fileExists(atPath: "\(rootfs)\(target)/deeper/sub/dir"))
        }
    }

    @Test(arguments: ["n", "y"], resolvers)
    func devNullAsSymlinkIsNotFollowed(restrict: String, resolver: String) {
        let target = victim()
        let rootfs = h.rootfs("devnull", customize: "mkdir -p $R/dev && ln -s \(target)/file $R/dev/null")
        let r = h.caisson(["start", root(rootfs, resolver), "sh", "-c", "echo pwned > /dev/null; test -c /dev/null && echo chardev"],
                          env: env(resolver, ["CAISSON_RESTRICT_DEV": restrict]))
        #expect(r.status == 0 && r.stdout == "chardev\n", "\(r)")
        #expect((try? String(contentsOfFile: "\(target)/file", encoding: .utf8)) == "original\n")
    }

    @Test func setuidRootBinaryRunsWithoutPrivilege() throws {
        try #require(h.asRoot, "needs root to plant a setuid-root file")
        let probe = try Probes.build("ids", """
        #include <stdio.h>
        #include <unistd.h>
        int main(void) { printf("%d %d\\n", (int)getuid(), (int)geteuid()); return 0; }
        """)
        let rootfs = h.rootfs("suid")
        Harness.shell("cp \(probe) \(rootfs)/bin/suid-probe && chown 0:0 \(rootfs)/bin/suid-probe && chmod 4755 \(rootfs)/bin/suid-probe")
        let image = h.image(of: rootfs, allRoot: false)
        for (extra, root) in [([], rootfs), (["--rw"], rootfs), ([], image), (["--rw"], image)] {
            let r = h.caisson(["start"] + extra + [root, "sh", "-c", "/bin/suid-probe; grep NoNewPrivs /proc/self/status; grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo"])
            #expect(r.status == 0, "\(r)")
            #expect(r.lines.first == "\(h.uid) \(h.uid)", "setuid-root gave no privilege: \(r)")
            #expect(!r.stderr.contains("pwned"))
            #expect(r.stdout.contains("NoNewPrivs:\t1"), "\(r)")
            #expect(r.lines.last?.contains("nosuid") == true, "the root is mounted nosuid: \(r)")
        }
    }

    @Test(arguments: ["dir", "sqsh"])
    func onlyStandardDescriptorsAreInherited(form: String) {
        let root = form == "sqsh" ? h.busyboxImage : h.busybox
        let r = h.userShell("exec 7</ 8>/dev/null; exec \"$CAISSON\" start \(root) ls /proc/self/fd")
        #expect(r.status == 0, "\(r)")
        #expect(Set(r.lines) == ["0", "1", "2", "3"], "only 0-2 and ls's own directory fd (no image or FUSE fd): \(r)")
        let kept = h.userShell("exec 7</ 8>/dev/null; exec \"$CAISSON\" start --keep-fd 8 \(root) ls /proc/self/fd")
        #expect(Set(kept.lines) == ["0", "1", "2", "3", "8"], "\(kept)")
    }

    @Test(arguments: resolvers)
    func workdirThroughAnInheritedDescriptorIsRefused(resolver: String) {
        let root = resolver.hasSuffix("sqsh") ? h.busyboxImage : h.busybox
        let r = h.userShell("exec 7</; exec \"$CAISSON\" start --workdir /proc/self/fd/7 \(root) sh -c 'pwd; ls'",
                            env: env(resolver))
        #expect(r.status == 125, "\(r)")
        #expect(r.stderr.contains("workdir"), "\(r)")
        let escaped = h.userShell("cd /; exec 7</; exec \"$CAISSON\" start --workdir /proc/self/fd/7/.. \(root) pwd", env: env(resolver))
        #expect(escaped.status == 125, "\(escaped)")
    }
}

/// Small C programs compiled once per run for tests that need exact system calls.
enum Probes {
    static func build(_ name: String, _ source: String) throws -> String {
        let dir = Harness.shared.workspace + "/probes"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let binary = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: binary) { return binary }
        try source.write(toFile: "\(binary).c", atomically: true, encoding: .utf8)
        let r = Harness.shell("gcc -static -O1 -o \(binary).tmp \(binary).c && mv \(binary).tmp \(binary) && chmod 755 \(binary)")
        guard r.status == 0 else { throw ProbeError(message: "gcc failed: \(r.stderr)") }
        return binary
    }

    struct ProbeError: Error { let message: String }
}

/// `--root` fakes chown/setuid for every syscall ABI the kernel accepts, not only the native one.
@Suite struct FakerootABIs {
    let h = Harness.shared

    @Test func everyABIIsFilteredUnderRoot() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/abi-probe.c").path
        let probe = try Probes.build("abi-probe", try String(contentsOfFile: fixture, encoding: .utf8))
        let rootfs = h.rootfs("abi")
        Harness.shell("cp \(probe) \(rootfs)/bin/abi-probe")
        h.chownTree(rootfs)
        let faked = h.caisson(["start", "--root", rootfs, "/bin/abi-probe"])
        #expect(faked.status == 0, "\(faked)")
        let results = Dictionary(faked.lines.compactMap { line -> (String, String)? in
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }, uniquingKeysWith: { a, _ in a })
        #expect(results["native"] == "0", "\(faked)")
        #if arch(x86_64)
        #expect(results["x32"] == "0", "x32 is filtered even where the kernel disables it: \(faked)")
        // A kernel booted with ia32_emulation=0 cannot run i386 code at all: then there is nothing to filter.
        #expect(results["i386"] == "0" || results["i386"] == "unsupported", "\(faked)")
        #endif
        // Without --root the same calls reach the kernel and fail (ENOENT for the missing path).
        let real = h.caisson(["start", rootfs, "/bin/abi-probe"])
        #expect(real.lines.contains("native -2"), "\(real)")
    }
}
