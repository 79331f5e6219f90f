import CaissonConfig
import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// The outcome of one host check, as `caisson check` prints it.
public struct CheckResult: Equatable, Sendable {
    public enum Status: String, Equatable, Sendable {
        /// The check passed.
        case ok
        /// The check failed; `fix` says what to do about it.
        case ko
        /// The check does not apply to this host (for example a sysctl this kernel does not have).
        case skip
        /// Not a pass/fail check: a fact worth printing (the kernel version).
        case info
    }

    /// What was checked, e.g. `user namespaces` or `kernel.unprivileged_userns_clone`.
    public var name: String
    public var status: Status
    /// What was found: the value read, the path used, or the error text on failure.
    public var detail: String
    /// The exact command or setting that repairs a failure; nil when there is nothing to do.
    public var fix: String?
    /// A required check that fails makes `caisson check` exit non-zero; optional ones only warn.
    public var required: Bool

    public init(name: String, status: Status, detail: String, fix: String? = nil, required: Bool) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix
        self.required = required
    }

    /// A required check that failed.
    public var isBlocking: Bool { status == .ko && required }

    /// The lines `caisson check` prints for this result: `OK   what: detail`,
    /// `KO   what: why` followed by an indented `fix:` line, `--   what: ...` for a check
    /// that does not apply, `INFO what: ...` for facts.
    public var lines: [String] {
        let label = status == .ko && !required ? "\(name) (optional)" : name
        let text = detail.isEmpty ? label : "\(label): \(detail)"
        switch status {
        case .ok: return ["OK   \(text)"]
        case .skip: return ["--   \(text)"]
        case .info: return ["INFO \(text)"]
        case .ko: return ["KO   \(text)"] + (fix.map { ["     fix: \($0)"] } ?? [])
        }
    }
}

/// Verifies that this host can run Caisson containers. Every experiment that touches
/// namespaces, mounts or seccomp runs in a forked child: the calling process's namespaces,
/// mounts and filters never change.
public enum HostCheck {
    public static let maxUserNamespacesFile = "/proc/sys/user/max_user_namespaces"
    public static let unprivilegedUsernsCloneFile = "/proc/sys/kernel/unprivileged_userns_clone"
    public static let apparmorRestrictFile = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"

    /// Every check, in the order `caisson check` prints them.
    public static func runAll(configuration: Configuration) -> [CheckResult] {
        var results: [CheckResult] = [kernel()]
        results.append(maxUserNamespaces())
        results.append(unprivilegedUsernsClone())
        let userns = userNamespaces()
        // The overlay experiment needs an empty directory of ours; an unusable temp path is
        // not an overlayfs problem, so fall back to /tmp rather than fail this check for it.
        let tempPath = configuration.tempPath
        let scratchParent = Files.isDirectory(tempPath) && access(tempPath, W_OK | X_OK) == 0 ? tempPath : "/tmp"
        let overlay = overlayInUserNamespace(scratchParent: scratchParent)
        // Under the AppArmor restriction an unprivileged caller only gets a capable user
        // namespace through a profile; if the overlay experiment worked, one is in place.
        let apparmorAllowed = getuid() != 0 && userns.status == .ok && overlay.status == .ok
        results.append(apparmorRestriction(userNamespacesWork: apparmorAllowed))
        results.append(userns)
        results.append(overlay)
        results.append(seccomp())
        results.append(runtimeDirectory(configuration: configuration))
        results.append(fuseDevice())
        results.append(squashfuse(configuration: configuration))
        return results
    }

    /// The required checks that failed; `caisson check` exits non-zero when this is not empty.
    public static func blockingFailures(_ results: [CheckResult]) -> [CheckResult] {
        results.filter(\.isBlocking)
    }

    // MARK: - Kernel

    /// The running kernel (information only), with a note when it is too old for overlayfs
    /// in a user namespace (5.11 added `userxattr`).
    public static func kernel() -> CheckResult {
        let (system, release, machine) = uname()
        var detail = "\(system) \(release) \(machine)"
        if let version = kernelVersion(release), version < (5, 11) {
            detail += " (older than 5.11: overlayfs in a user namespace needs the userxattr option of 5.11 or later)"
        }
        return CheckResult(name: "kernel", status: .info, detail: detail, required: false)
    }

    /// uname(2): system name, release and machine.
    static func uname() -> (system: String, release: String, machine: String) {
        var names = utsname()
        _ = Glibc.uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        return (field(names.sysname), field(names.release), field(names.machine))
    }

    /// `major.minor` of a kernel release string such as `6.1.0-18-amd64`.
    public static func kernelVersion(_ release: String) -> (Int, Int)? {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
    }

    // MARK: - User-namespace sysctls

    /// `user.max_user_namespaces` must be above 0 (0 disables user namespaces for everyone, root included).
    public static func maxUserNamespaces(file: String = maxUserNamespacesFile) -> CheckResult {
        let name = "user.max_user_namespaces"
        guard let value = readSysctl(file) else {
            return CheckResult(name: name, status: .skip, detail: "not present (\(file) does not exist)", required: true)
        }
        guard let number = Int(value) else {
            return CheckResult(name: name, status: .ko, detail: "unreadable value \"\(value)\" in \(file)",
                               fix: maxUserNamespacesFix, required: true)
        }
        if number > 0 { return CheckResult(name: name, status: .ok, detail: "\(number)", required: true) }
        return CheckResult(name: name, status: .ko, detail: "\(number): user namespaces are disabled",
                           fix: maxUserNamespacesFix, required: true)
    }

    /// Debian's and Ubuntu's `kernel.unprivileged_userns_clone` must be 1 where the kernel has it.
    public static func unprivilegedUsernsClone(file: String = unprivilegedUsernsCloneFile) -> CheckResult {
        let name = "kernel.unprivileged_userns_clone"
        guard let value = readSysctl(file) else {
            return CheckResult(name: name, status: .skip, detail: "not present (this kernel has no such switch)", required: true)
        }
        if value == "1" { return CheckResult(name: name, status: .ok, detail: "1", required: true) }
        return CheckResult(
            name: name, status: .ko, detail: "\(value): only privileged users may create user namespaces",
            fix: "sysctl -w kernel.unprivileged_userns_clone=1 && echo kernel.unprivileged_userns_clone=1 > /etc/sysctl.d/90-caisson-userns-clone.conf",
            required: true)
    }

    /// Ubuntu's `kernel.apparmor_restrict_unprivileged_userns` must be 0 where the kernel has it,
    /// unless an AppArmor profile grants `userns` to Caisson (`userNamespacesWork` says the
    /// experiments succeeded for an unprivileged caller, which proves that).
    public static func apparmorRestriction(file: String = apparmorRestrictFile, userNamespacesWork: Bool = false) -> CheckResult {
        let name = "kernel.apparmor_restrict_unprivileged_userns"
        guard let value = readSysctl(file) else {
            return CheckResult(name: name, status: .skip, detail: "not present (no AppArmor user-namespace restriction)", required: true)
        }
        if value == "0" { return CheckResult(name: name, status: .ok, detail: "0", required: true) }
        if userNamespacesWork {
            return CheckResult(name: name, status: .ok, detail: "\(value), but an AppArmor profile lets this program use user namespaces", required: true)
        }
        let exe = Files.readLink("/proc/self/exe") ?? "/usr/bin/caisson"
        let profile = "printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile caisson \(exe) flags=(unconfined) {\\n  userns,\\n}\\n' > /etc/apparmor.d/caisson && apparmor_parser -r /etc/apparmor.d/caisson"
        return CheckResult(
            name: name, status: .ko,
            detail: "\(value): AppArmor strips capabilities from user namespaces of unconfined programs",
            fix: "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 && echo kernel.apparmor_restrict_unprivileged_userns=0 > /etc/sysctl.d/90-caisson-apparmor-userns.conf; or keep the restriction and allow only Caisson with a profile: \(profile)",
            required: true)
    }

    // MARK: - User namespace experiment

    /// Forks a child that calls `unshare(CLONE_NEWUSER|CLONE_NEWNS)`, denies setgroups and
    /// maps the caller's uid and gid onto themselves, exactly as `caisson start` does.
    public static func userNamespaces() -> CheckResult {
        let name = "user namespaces"
        let outcome = userNamespaceExperiment(overlay: nil)
        if outcome.completed {
            let who = getuid() == 0 ? " (as root: unprivileged users also need the sysctls above)" : ""
            return CheckResult(name: name, status: .ok,
                               detail: "unshare(CLONE_NEWUSER|CLONE_NEWNS) and uid/gid maps work\(who)", required: true)
        }
        return CheckResult(name: name, status: .ko, detail: outcome.describe(stages: userNamespaceStages),
                           fix: userNamespaceFix(outcome), required: true)
    }

    // MARK: - Overlayfs experiment

    /// Forks a child that enters a user and mount namespace, mounts a tmpfs on a fresh
    /// directory under `scratchParent`, and mounts an overlay with `userxattr` on it; then
    /// writes a file through the overlay and deletes a lower file (a whiteout). The directory
    /// is removed afterwards; the mounts vanish with the child's mount namespace.
    public static func overlayInUserNamespace(scratchParent: String = "/tmp") -> CheckResult {
        let name = "overlayfs in a user namespace"
        var template = Array("\(scratchParent)/caisson-check-\(getuid())-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            let error = SystemError("mkdtemp", path: String(nulTerminated: template))
            return CheckResult(name: name, status: .ko, detail: "cannot create a scratch directory: \(error)",
                               fix: "export CAISSON_TEMP_PATH=<a writable directory> (or TMPDIR)", required: true)
        }
        let scratch = String(cString: created)
        defer { rmdir(scratch) }
        let outcome = userNamespaceExperiment(overlay: scratch)
        if outcome.completed {
            return CheckResult(name: name, status: .ok,
                               detail: "tmpfs + overlay (userxattr) mounted, written through and whiteout created", required: true)
        }
        if outcome.abnormal == nil && outcome.stage >= 1 && outcome.stage <= Int32(userNamespaceStages.count) {
            return CheckResult(name: name, status: .skip,
                               detail: "cannot test without a user namespace (\(outcome.describe(stages: overlayStages)))", required: true)
        }
        var fix = "overlayfs must be mountable inside a user namespace: a kernel of 5.11 or later with CONFIG_OVERLAY_FS (modprobe overlay)"
        let release = uname().release
        if let version = kernelVersion(release), version < (5, 11) {
            fix = "upgrade the kernel to 5.11 or later (running \(release)): overlayfs in a user namespace needs the userxattr option"
        } else if outcome.stage == OverlayStage.overlay.rawValue, outcome.code == ENODEV {
            fix = "modprobe overlay (and add overlay to /etc/modules-load.d/overlay.conf)"
        }
        return CheckResult(name: name, status: .ko, detail: outcome.describe(stages: overlayStages), fix: fix, required: true)
    }

    // MARK: - Seccomp

    /// Forks a child that sets no_new_privs and installs an allow-all seccomp filter; `--root`
    /// needs seccomp to fake ownership syscalls.
    public static func seccomp() -> CheckResult {
        let name = "seccomp filters"
        var program: [UInt8] = []
        withUnsafeBytes(of: UInt16(0x06)) { program += $0 }  // BPF_RET | BPF_K
        program += [0, 0]  // jt, jf
        withUnsafeBytes(of: caisson_SECCOMP_RET_ALLOW) { program += $0 }
        let outcome = program.withUnsafeBytes { filter in
            runInChild { () -> (Int32, Int32) in
                if caisson_set_no_new_privs() != 0 { return (1, errno) }
                if caisson_seccomp_install(filter.baseAddress, 1) != 0 { return (2, errno) }
                if caisson_get_no_new_privs() != 1 { return (3, errno) }
                return (0, 0)
            }
        }
        if outcome.completed {
            return CheckResult(name: name, status: .ok, detail: "no_new_privs and a seccomp filter install (needed by --root)", required: true)
        }
        let stages = ["prctl(PR_SET_NO_NEW_PRIVS)", "seccomp(SECCOMP_SET_MODE_FILTER)", "running under the filter"]
        var fix = "a kernel with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y"
        if outcome.stage == 2 && (outcome.code == EPERM || outcome.code == EACCES) {
            fix = "allow seccomp(2) in the sandbox this runs in (e.g. docker run --security-opt seccomp=unconfined)"
        }
        return CheckResult(name: name, status: .ko, detail: outcome.describe(stages: stages) + " (needed by --root)",
                           fix: fix, required: true)
    }

    // MARK: - Runtime directory

    /// The per-user runtime directory (`CAISSON_RUNTIME_PATH` or its fallback) can be created and written.
    public static func runtimeDirectory(configuration: Configuration) -> CheckResult {
        let name = "runtime directory"
        do {
            let path = try configuration.runtimePath()
            return CheckResult(name: name, status: .ok, detail: path, required: true)
        } catch {
            let detail: String
            switch error {
            case .runtimePathUnusable(let path, let why): detail = "\(path) is unusable: \(why)"
            }
            return CheckResult(
                name: name, status: .ko, detail: detail,
                fix: "export CAISSON_RUNTIME_PATH=<a private writable directory, e.g. on node-local /tmp> (or set CAISSON_RUNTIME_PATH in \(configuration.sysconfPath)/caisson.conf)",
                required: true)
        }
    }

    // MARK: - FUSE (optional: squashfs images)

    /// `/dev/fuse` exists and the caller can open it read-write (squashfuse inside a user namespace needs that).
    public static func fuseDevice(path: String = "/dev/fuse") -> CheckResult {
        let name = path
        let udev = "chmod 0666 \(path) && echo 'KERNEL==\"fuse\", MODE=\"0666\"' > /etc/udev/rules.d/99-fuse.rules"
        guard let st = Files.stat(path) else {
            return CheckResult(name: name, status: .ko, detail: "missing", fix: "modprobe fuse (in a container: pass the device, e.g. --device \(path))", required: false)
        }
        guard st.st_mode & S_IFMT == S_IFCHR else {
            return CheckResult(name: name, status: .ko, detail: "not a character device", fix: "rm \(path) && modprobe fuse", required: false)
        }
        let fd = open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 {
            let error = SystemError("open", path: path)
            return CheckResult(name: name, status: .ko, detail: "\(error.reason) (\(errnoName(error.code)), mode \(String(st.st_mode & 0o7777, radix: 8)))",
                               fix: udev, required: false)
        }
        close(fd)
        return CheckResult(name: name, status: .ok, detail: "read-writable (mode \(String(st.st_mode & 0o7777, radix: 8)))", required: false)
    }

    /// The FUSE server `caisson start IMAGE.sqsh` will use (SquashfsImage.server: CAISSON_SQUASHFUSE,
    /// else squashfuse_ll or squashfuse on PATH), to start images without extracting them.
    /// (Caisson mounts FUSE itself inside the user namespace: fusermount is never needed.)
    public static func squashfuse(configuration: Configuration, searchPath: String? = nil) -> CheckResult {
        let name = "squashfuse"
        if let found = SquashfsImage.server(configuration, searchPath: searchPath) {
            return CheckResult(name: name, status: .ok, detail: found, required: false)
        }
        if let configured = configuration["CAISSON_SQUASHFUSE"], !configured.isEmpty {
            return CheckResult(name: name, status: .ko, detail: "CAISSON_SQUASHFUSE=\(configured) is not an executable file",
                               fix: "point CAISSON_SQUASHFUSE at squashfuse_ll, or unset it to use the one on PATH", required: false)
        }
        return CheckResult(name: name, status: .ko, detail: "neither squashfuse_ll nor squashfuse is on PATH",
                           fix: installCommand("squashfuse"), required: false)
    }

    /// The first of `names` that is an executable regular file in a PATH directory.
    public static func findExecutable(_ names: [String], searchPath: String? = nil) -> String? {
        let path = searchPath ?? ProcessEnvironment.dictionary()["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init)
        for name in names {
            for directory in directories where !directory.isEmpty {
                let candidate = Path.join(directory, name)
                if let st = Files.stat(candidate), st.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                    return candidate
                }
            }
        }
        return nil
    }

    // MARK: - Helpers

    static let maxUserNamespacesFix =
        "sysctl -w user.max_user_namespaces=65536 && echo user.max_user_namespaces=65536 > /etc/sysctl.d/90-caisson-max-userns.conf"

    static func readSysctl(_ file: String) -> String? {
        guard let text = try? Files.readIfPresent(file) else { return nil }
        return text.trimmingWhitespace().split(separator: "\n").first.map(String.init) ?? ""
    }

    static func installCommand(_ package: String) -> String {
        if findExecutable(["apt-get"], searchPath: "/usr/bin:/bin") != nil { return "apt-get install \(package)" }
        if findExecutable(["dnf"], searchPath: "/usr/bin:/bin") != nil { return "dnf install \(package)" }
        if findExecutable(["zypper"], searchPath: "/usr/bin:/bin") != nil { return "zypper install \(package)" }
        return "install \(package) with the system package manager"
    }

    static let userNamespaceStages = [
        "unshare(CLONE_NEWUSER|CLONE_NEWNS)",
        "write /proc/self/setgroups",
        "write /proc/self/uid_map",
        "write /proc/self/gid_map",
    ]

    enum OverlayStage: Int32 {
        case privateRoot = 5, tmpfs, chdir, mkdirs, lowerFile, overlay, write, upperCopy, whiteout
    }

    static let overlayStages = userNamespaceStages + [
        "make / private (mount MS_REC|MS_PRIVATE)",
        "mount tmpfs",
        "chdir into the tmpfs",
        "mkdir lower, upper, work, merged",
        "create a lower file",
        "mount overlay (lowerdir,upperdir,workdir,userxattr)",
        "create a file through the overlay",
        "find the new file in upperdir",
        "delete a lower file through the overlay (whiteout)",
    ]

    /// Why the user-namespace experiment failed, turned into the setting that fixes it.
    static func userNamespaceFix(_ outcome: ChildOutcome) -> String {
        if outcome.stage == 1 {
            switch outcome.code {
            case ENOSPC:
                if let value = readSysctl(maxUserNamespacesFile), let limit = Int(value), limit > 0 {
                    return "the user-namespace limit (\(limit)) is reached or namespaces nest too deep; raise it: sysctl -w user.max_user_namespaces=\(max(limit * 2, 65536)) && echo user.max_user_namespaces=\(max(limit * 2, 65536)) > /etc/sysctl.d/90-caisson-max-userns.conf"
                }
                return maxUserNamespacesFix
            case EPERM, EACCES:
                if readSysctl(unprivilegedUsernsCloneFile).map({ $0 != "1" }) ?? false {
                    return "sysctl -w kernel.unprivileged_userns_clone=1 && echo kernel.unprivileged_userns_clone=1 > /etc/sysctl.d/90-caisson-userns-clone.conf"
                }
                if readSysctl(apparmorRestrictFile).map({ $0 != "0" }) ?? false {
                    return "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile granting userns, see above)"
                }
                return "allow unshare(CLONE_NEWUSER) in the sandbox this runs in (not in a chroot; for Docker: --security-opt seccomp=unconfined --security-opt apparmor=unconfined)"
            case EINVAL:
                return "a kernel built with CONFIG_USER_NS=y (and run the check from a single-threaded process)"
            case EUSERS:
                return "run from a shallower user-namespace nesting (the kernel allows 32 levels)"
            default:
                break
            }
        }
        if (outcome.stage == 3 || outcome.stage == 4), readSysctl(apparmorRestrictFile).map({ $0 != "0" }) ?? false {
            return "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile granting userns, see above)"
        }
        return "a kernel with CONFIG_USER_NS=y and user namespaces enabled: sysctl -w user.max_user_namespaces=65536"
    }

    /// What a forked experiment reported: the step it reached and the errno of the failure.
    struct ChildOutcome {
        /// 0 when every step succeeded; otherwise the 1-based step that failed.
        var stage: Int32
        var code: Int32
        /// Set when the child reported nothing: fork failed, or it died from a signal.
        var abnormal: String?

        var completed: Bool { stage == 0 && abnormal == nil }

        func describe(stages: [String]) -> String {
            if let abnormal { return abnormal }
            let step = stage >= 1 && Int(stage) <= stages.count ? stages[Int(stage) - 1] : "step \(stage)"
            return "\(step): \(String(cString: strerror(code))) (\(errnoName(code)))"
        }
    }

    /// Runs `body` in a forked child and returns the (stage, errno) it reports through a
    /// shared anonymous page. The child only makes system calls on memory prepared before
    /// the fork, so it is safe even when the parent has other threads (as a test runner does).
    static func runInChild(_ body: () -> (Int32, Int32)) -> ChildOutcome {
        let size = 4096
        guard let page = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
              page != UnsafeMutableRawPointer(bitPattern: -1) else {
            return ChildOutcome(stage: -1, code: errno, abnormal: "mmap: \(SystemError("mmap").reason)")
        }
        defer { munmap(page, size) }
        let slots = page.bindMemory(to: Int32.self, capacity: 3)
        slots[0] = 0
        let pid = fork()
        if pid < 0 { return ChildOutcome(stage: -1, code: errno, abnormal: "fork: \(SystemError("fork").reason)") }
        if pid == 0 {
            let (stage, code) = body()
            slots[1] = stage
            slots[2] = code
            slots[0] = 1
            _exit(0)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { return ChildOutcome(stage: -1, code: errno, abnormal: "waitpid: \(SystemError("waitpid").reason)") }
        }
        if slots[0] == 1 { return ChildOutcome(stage: slots[1], code: slots[2], abnormal: nil) }
        if status & 0x7f != 0 {
            let signal = status & 0x7f
            return ChildOutcome(stage: -1, code: 0, abnormal: "the test process was killed by signal \(signal) (\(String(cString: strsignal(signal))))")
        }
        return ChildOutcome(stage: -1, code: 0, abnormal: "the test process exited with status \((status >> 8) & 0xff) without reporting")
    }

    /// The user-namespace experiment, optionally followed by the overlay experiment in
    /// `overlayScratch` (an empty directory the caller owns).
    static func userNamespaceExperiment(overlay overlayScratch: String?) -> ChildOutcome {
        let uid = getuid(), gid = getgid()
        let strings = CStrings([
            "/proc/self/setgroups", "deny",
            "/proc/self/uid_map", "\(uid) \(uid) 1\n",
            "/proc/self/gid_map", "\(gid) \(gid) 1\n",
            overlayScratch ?? "", "tmpfs", "mode=0700,size=4m",
            "lower", "upper", "work", "merged",
            "lower/probe", "overlay", "lowerdir=lower,upperdir=upper,workdir=work,userxattr",
            "merged/written", "upper/written", "merged/probe",
        ])
        let flags = caisson_CLONE_NEWUSER | caisson_CLONE_NEWNS
        let privateFlags = caisson_MS_REC | caisson_MS_PRIVATE
        return runInChild { () -> (Int32, Int32) in
            let s = strings.pointers
            if caisson_unshare(flags) != 0 { return (1, errno) }
            var failure = writeFile(s[0], s[1])
            if failure != 0 { return (2, failure) }
            failure = writeFile(s[2], s[3])
            if failure != 0 { return (3, failure) }
            failure = writeFile(s[4], s[5])
            if failure != 0 { return (4, failure) }
            guard overlayScratch != nil else { return (0, 0) }
            if mount(nil, "/", nil, privateFlags, nil) != 0 { return (OverlayStage.privateRoot.rawValue, errno) }
            if mount(s[7], s[6], s[7], 0, s[8]) != 0 { return (OverlayStage.tmpfs.rawValue, errno) }
            if chdir(s[6]) != 0 { return (OverlayStage.chdir.rawValue, errno) }
            for index in 9...12 where mkdir(s[index], 0o755) != 0 { return (OverlayStage.mkdirs.rawValue, errno) }
            failure = writeFile(s[13], s[1], create: true)
            if failure != 0 { return (OverlayStage.lowerFile.rawValue, failure) }
            if mount(s[14], s[12], s[14], 0, s[15]) != 0 { return (OverlayStage.overlay.rawValue, errno) }
            failure = writeFile(s[16], s[1], create: true)
            if failure != 0 { return (OverlayStage.write.rawValue, failure) }
            if access(s[17], F_OK) != 0 { return (OverlayStage.upperCopy.rawValue, errno) }
            if unlink(s[18]) != 0 { return (OverlayStage.whiteout.rawValue, errno) }
            return (0, 0)
        }
    }

    /// Writes a NUL-terminated string to a file with bare system calls; returns 0 or the errno.
    static func writeFile(_ path: UnsafePointer<CChar>, _ text: UnsafePointer<CChar>, create: Bool = false) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0o644)
        if fd < 0 { return errno }
        let length = strlen(text)
        let written = write(fd, text, length)
        let code = written == length ? 0 : (written < 0 ? errno : EIO)
        close(fd)
        return code
    }

    /// The symbolic name of an errno value, for messages that can be searched for.
    public static func errnoName(_ code: Int32) -> String {
        let names: [(Int32, String)] = [
            (EPERM, "EPERM"), (ENOENT, "ENOENT"), (EINTR, "EINTR"), (EIO, "EIO"), (EBADF, "EBADF"),
            (ENOMEM, "ENOMEM"), (EACCES, "EACCES"), (EFAULT, "EFAULT"), (EBUSY, "EBUSY"), (EEXIST, "EEXIST"),
            (ENODEV, "ENODEV"), (ENOTDIR, "ENOTDIR"), (EISDIR, "EISDIR"), (EINVAL, "EINVAL"), (ENOSPC, "ENOSPC"),
            (EROFS, "EROFS"), (ENOSYS, "ENOSYS"), (ENXIO, "ENXIO"), (EOPNOTSUPP, "EOPNOTSUPP"), (EUSERS, "EUSERS"),
            (ELOOP, "ELOOP"), (ENAMETOOLONG, "ENAMETOOLONG"), (EAGAIN, "EAGAIN"), (EXDEV, "EXDEV"),
        ]
        return names.first(where: { $0.0 == code })?.1 ?? "errno \(code)"
    }

    /// C strings allocated before a fork, so that the child does not allocate.
    final class CStrings {
        let pointers: [UnsafeMutablePointer<CChar>]
        init(_ strings: [String]) { pointers = strings.map { strdup($0)! } }
        deinit { pointers.forEach { free($0) } }
    }
}
