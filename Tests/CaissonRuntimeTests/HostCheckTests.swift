import CaissonConfig
import CaissonShim
import CaissonSystem
import Testing
@testable import CaissonRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Serialized: one test lowers the global `user.max_user_namespaces` for a moment, which
/// would make the other namespace experiments here fail if they ran at the same time.
@Suite(.serialized)
struct HostCheckTests {
    private static var isRoot: Bool { getuid() == 0 }

    // MARK: - The whole run on this machine

    @Test func requiredChecksPassAsRoot() throws {
        let results = HostCheck.runAll(configuration: Configuration.load())
        for result in results { for line in result.lines { print(line) } }
        #expect(results.contains { $0.name == "kernel" && $0.status == .info })
        #expect(results.contains { $0.name == "user namespaces" })
        #expect(results.contains { $0.name == "overlayfs in a user namespace" })
        #expect(results.contains { $0.name == "seccomp filters" })
        #expect(results.contains { $0.name == "runtime directory" })
        if Self.isRoot {
            #expect(HostCheck.blockingFailures(results).isEmpty, "\(HostCheck.blockingFailures(results).flatMap(\.lines))")
        }
    }

    // MARK: - Single experiments

    @Test func userNamespaceExperimentWorks() {
        let result = HostCheck.userNamespaces()
        #expect(result.status == .ok, "\(result.lines)")
        #expect(result.required)
    }

    @Test func overlayExperimentWorksAndCleansUp() throws {
        var template = Array("/tmp/caisson-hostcheck-test-XXXXXX".utf8CString)
        let parent = String(cString: try #require(mkdtemp(&template)))
        defer { rmdir(parent) }
        let result = HostCheck.overlayInUserNamespace(scratchParent: parent)
        #expect(result.status == .ok, "\(result.lines)")
        #expect(Files.list(parent).isEmpty, "scratch directory left behind: \(Files.list(parent))")
    }

    @Test func overlayCheckFailsCleanlyWithoutScratchSpace() {
        let result = HostCheck.overlayInUserNamespace(scratchParent: "/nonexistent-caisson-parent")
        #expect(result.status == .ko)
        #expect(result.detail.contains("scratch directory"))
        #expect(result.fix != nil)
    }

    @Test func seccompFilterInstalls() {
        let before = caisson_get_no_new_privs()
        let result = HostCheck.seccomp()
        #expect(result.status == .ok, "\(result.lines)")
        // The filter went into a child: this process's no_new_privs is unchanged.
        #expect(caisson_get_no_new_privs() == before)
    }

    @Test func experimentsLeaveTheCallerAlone() throws {
        let before = try namespaceLinks()
        _ = HostCheck.userNamespaces()
        _ = HostCheck.overlayInUserNamespace()
        _ = HostCheck.seccomp()
        #expect(try namespaceLinks() == before)
    }

    private func namespaceLinks() throws -> [String] {
        ["user", "mnt"].map { name in
            var buffer = [CChar](repeating: 0, count: 256)
            _ = readlink("/proc/self/ns/\(name)", &buffer, buffer.count - 1)
            return String(nulTerminated: buffer)
        }
    }

    @Test func kernelIsInformation() {
        let result = HostCheck.kernel()
        #expect(result.status == .info)
        #expect(result.lines.first?.hasPrefix("INFO kernel: Linux ") == true)
        let version = HostCheck.kernelVersion("6.1.0-18-amd64")
        #expect(version?.0 == 6 && version?.1 == 1)
        #expect(HostCheck.kernelVersion("5.10.0").map { $0 < (5, 11) } == true)
        #expect(HostCheck.kernelVersion("garbage") == nil)
    }

    // MARK: - Sysctl checks against stand-in files

    private func withFile(_ contents: String?, _ body: (String) throws -> Void) throws {
        var template = Array("/tmp/caisson-sysctl-test-XXXXXX".utf8CString)
        let dir = String(cString: try #require(mkdtemp(&template)))
        let file = "\(dir)/value"
        if let contents { try Files.write(file, contents) }
        defer { unlink(file); rmdir(dir) }
        try body(file)
    }

    @Test func maxUserNamespacesReadsTheValue() throws {
        try withFile("15000\n") { #expect(HostCheck.maxUserNamespaces(file: $0).status == .ok) }
        try withFile("0\n") { file in
            let result = HostCheck.maxUserNamespaces(file: file)
            #expect(result.status == .ko)
            #expect(result.isBlocking)
            #expect(result.fix?.contains("sysctl -w user.max_user_namespaces=") == true)
            #expect(result.fix?.contains("/etc/sysctl.d/") == true)
            #expect(result.lines.count == 2)
            #expect(result.lines[0].hasPrefix("KO   user.max_user_namespaces: 0"))
            #expect(result.lines[1].hasPrefix("     fix: sysctl -w user.max_user_namespaces="))
        }
        try withFile(nil) { #expect(HostCheck.maxUserNamespaces(file: $0).status == .skip) }
    }

    @Test func unprivilegedUsernsCloneMustBeOne() throws {
        try withFile("1\n") { #expect(HostCheck.unprivilegedUsernsClone(file: $0).status == .ok) }
        try withFile("0\n") { file in
            let result = HostCheck.unprivilegedUsernsClone(file: file)
            #expect(result.isBlocking)
            #expect(result.fix?.contains("kernel.unprivileged_userns_clone=1") == true)
        }
        try withFile(nil) { file in
            let result = HostCheck.unprivilegedUsernsClone(file: file)
            #expect(result.status == .skip)
            #expect(result.detail.contains("not present"))
            #expect(result.lines.first?.hasPrefix("--   kernel.unprivileged_userns_clone: not present") == true)
        }
    }

    @Test func apparmorRestrictionMustBeOffOrProfiled() throws {
        try withFile("0\n") { #expect(HostCheck.apparmorRestriction(file: $0).status == .ok) }
        try withFile("1\n") { file in
            let result = HostCheck.apparmorRestriction(file: file)
            #expect(result.isBlocking)
            #expect(result.fix?.contains("kernel.apparmor_restrict_unprivileged_userns=0") == true)
            #expect(result.fix?.contains("apparmor_parser -r /etc/apparmor.d/caisson") == true)
            #expect(result.fix?.contains("userns,") == true)
            #expect(HostCheck.apparmorRestriction(file: file, userNamespacesWork: true).status == .ok)
        }
        try withFile(nil) { #expect(HostCheck.apparmorRestriction(file: $0).status == .skip) }
    }

    // MARK: - Optional checks

    @Test func fuseProblemsOnlyWarn() {
        let missing = HostCheck.fuseDevice(path: "/nonexistent/fuse")
        #expect(missing.status == .ko)
        #expect(!missing.required && !missing.isBlocking)
        #expect(missing.lines.first?.hasPrefix("KO   /nonexistent/fuse (optional): missing") == true)

        let notDevice = HostCheck.fuseDevice(path: "/etc/passwd")
        #expect(notDevice.status == .ko && !notDevice.isBlocking)

        let absent = HostCheck.squashfuse(configuration: Configuration(values: [:]), searchPath: "/nonexistent")
        #expect(absent.status == .ko && !absent.isBlocking)
        #expect(absent.fix?.contains("install squashfuse") == true)
        // What start would use: CAISSON_SQUASHFUSE first, whatever PATH holds.
        let configured = HostCheck.squashfuse(configuration: Configuration(values: ["CAISSON_SQUASHFUSE": "/bin/sh"]),
                                              searchPath: "/nonexistent")
        #expect(configured.status == .ok && configured.detail == "/bin/sh")
        let broken = HostCheck.squashfuse(configuration: Configuration(values: ["CAISSON_SQUASHFUSE": "/nonexistent/squashfuse_ll"]),
                                          searchPath: "/bin:/usr/bin")
        #expect(broken.status == .ko && broken.detail.contains("CAISSON_SQUASHFUSE=/nonexistent/squashfuse_ll"))
        #expect(HostCheck.blockingFailures([missing, notDevice, absent]).isEmpty)
    }

    @Test func fuseDeviceOpensForRoot() {
        guard Self.isRoot, Files.exists("/dev/fuse") else { return }
        #expect(HostCheck.fuseDevice().status == .ok)
    }

    @Test func findsExecutablesOnPath() {
        #expect(HostCheck.findExecutable(["sh"], searchPath: "/nonexistent::/bin") == "/bin/sh")
        #expect(HostCheck.findExecutable(["no-such-program-caisson"], searchPath: "/bin:/usr/bin") == nil)
    }

    // MARK: - Runtime directory

    @Test func runtimeDirectoryReportsTheConfigurationError() {
        let configuration = Configuration.load(environment: [
            "HOME": "/tmp", "CAISSON_SYSCONF_PATH": "/nonexistent-caisson-sysconf",
            "CAISSON_RUNTIME_PATH": "/proc/caisson-cannot-exist",
        ])
        let result = HostCheck.runtimeDirectory(configuration: configuration)
        #expect(result.isBlocking)
        #expect(result.detail.contains("/proc/caisson-cannot-exist"))
        #expect(result.fix?.contains("CAISSON_RUNTIME_PATH") == true)
    }

    @Test func runtimeDirectoryWorks() {
        let result = HostCheck.runtimeDirectory(configuration: Configuration.load())
        #expect(result.status == .ok, "\(result.lines)")
    }

    // MARK: - The real failure: user namespaces disabled host-wide

    /// Sets the host's `user.max_user_namespaces` to 0 for as short a time as possible (other
    /// suites may be starting containers meanwhile), always restoring the saved value. With
    /// the limit at 0 even root's unshare(CLONE_NEWUSER) fails with ENOSPC.
    @Test(.enabled(if: getuid() == 0, "needs root to change user.max_user_namespaces"))
    func userNamespaceCheckFailsWhenDisabled() throws {
        let file = HostCheck.maxUserNamespacesFile
        let saved = try #require(HostCheck.readSysctl(file))
        try #require(Int(saved) != nil, "unexpected \(file) contents: \(saved)")
        if access(file, W_OK) != 0 {
            // Root without CAP_SYS_RESOURCE (a sandboxed root) cannot write user.* sysctls;
            // userNamespaceCheckFailsInANamespaceWithNoneLeft covers the same path there.
            try Test.cancel("\(file) is not writable (\(SystemError("access", path: file).reason)): root lacks CAP_SYS_RESOURCE here")
        }

        let (userns, sysctl) = try withMaxUserNamespaces("0", file: file, restoring: saved) {
            (HostCheck.userNamespaces(), HostCheck.maxUserNamespaces())
        }
        #expect(HostCheck.readSysctl(file) == saved, "\(file) was not restored")

        #expect(userns.status == .ko, "\(userns.lines)")
        #expect(userns.isBlocking)
        #expect(userns.detail.contains("unshare(CLONE_NEWUSER|CLONE_NEWNS)"))
        #expect(userns.detail.contains("ENOSPC"), "\(userns.detail)")
        #expect(userns.fix?.contains("user.max_user_namespaces") == true, "\(userns.fix ?? "no fix")")
        #expect(sysctl.status == .ko)
        #expect(sysctl.fix?.contains("user.max_user_namespaces") == true)
        for line in userns.lines + sysctl.lines { print(line) }

        // And back to normal once restored.
        #expect(HostCheck.userNamespaces().status == .ok)
    }

    private func withMaxUserNamespaces<T>(_ value: String, file: String, restoring saved: String, _ body: () -> T) throws -> T {
        defer {
            do { try Files.write(file, saved + "\n") } catch { Issue.record("could not restore \(file) to \(saved): \(error)") }
        }
        try Files.write(file, value + "\n")
        return body()
    }

    /// The same failure without touching the host, for any user: a forked child enters a user
    /// namespace, where it holds CAP_SYS_RESOURCE and may set that namespace's own
    /// `user.max_user_namespaces` to 0, then runs the unmodified check, whose experiment
    /// (a grandchild) then gets ENOSPC from unshare.
    @Test func userNamespaceCheckFailsInANamespaceWithNoneLeft() {
        let uid = getuid(), gid = getgid()
        let strings = HostCheck.CStrings([
            "/proc/self/setgroups", "deny", "/proc/self/uid_map", "\(uid) \(uid) 1\n",
            "/proc/self/gid_map", "\(gid) \(gid) 1\n", HostCheck.maxUserNamespacesFile, "0\n",
        ])
        let flags = caisson_CLONE_NEWUSER
        let outcome = HostCheck.runInChild { () -> (Int32, Int32) in
            alarm(30)  // a hung child fails the test instead of hanging it
            let s = strings.pointers
            if caisson_unshare(flags) != 0 { return (1, errno) }
            for index in stride(from: 0, to: 8, by: 2) {
                let failure = HostCheck.writeFile(s[index], s[index + 1])
                if failure != 0 { return (Int32(2 + index / 2), failure) }
            }
            let userns = HostCheck.userNamespaces()
            let sysctl = HostCheck.maxUserNamespaces()
            var wrong: Int32 = 0
            if userns.status != .ko { wrong |= 1 }
            if !userns.isBlocking { wrong |= 2 }
            if !userns.detail.contains("unshare(CLONE_NEWUSER|CLONE_NEWNS): No space left on device (ENOSPC)") { wrong |= 4 }
            if userns.fix?.contains("sysctl -w user.max_user_namespaces=") != true { wrong |= 8 }
            if sysctl.status != .ko || sysctl.fix?.contains("user.max_user_namespaces") != true { wrong |= 16 }
            return wrong == 0 ? (0, 0) : (100, wrong)
        }
        let steps = ["unshare(CLONE_NEWUSER)", "setgroups", "uid_map", "gid_map", "write 0 to max_user_namespaces"]
        if outcome.stage == 100 {
            Issue.record("check results were wrong inside the namespace (bits \(String(outcome.code, radix: 2)): 1 status, 2 required, 4 detail, 8 fix, 16 sysctl check)")
        } else {
            #expect(outcome.completed, "\(outcome.describe(stages: steps))")
        }
        // The host's limit was never touched.
        #expect(HostCheck.userNamespaces().status == .ok)
    }
}
