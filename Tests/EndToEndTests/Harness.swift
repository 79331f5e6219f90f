import Foundation
import Testing

/// Drives the real `caisson` binary as an ordinary user, the way users run it. When the suite
/// runs as root (CI does), it creates the user `caissontest` and drops to it for every run;
/// a test that only passed as root would prove nothing.
final class Harness: Sendable {
    static let shared = Harness()

    let workspace: String
    let binary: String
    let user: String
    let uid: UInt32
    let gid: UInt32
    let home: String
    let asRoot: Bool
    /// A busybox-static root filesystem, built once per run. Copy it before changing it.
    let busybox: String
    /// The same tree as a squashfs image.
    let busyboxImage: String

    private init() {
        asRoot = getuid() == 0
        workspace = "/var/tmp/caisson-e2e-\(getpid())"
        try? FileManager.default.removeItem(atPath: workspace)
        try! FileManager.default.createDirectory(atPath: workspace + "/bin", withIntermediateDirectories: true)
        chmod(workspace, 0o755)
        if asRoot {
            user = "caissontest"
            if Harness.shell("id -u \(user)").status != 0 {
                let created = Harness.shell("useradd --create-home --shell /bin/sh \(user)")
                precondition(created.status == 0, "cannot create the test user: \(created.stderr)")
            }
        } else {
            user = String(cString: getpwuid(getuid())!.pointee.pw_name)
        }
        let pw = getpwnam(user)!.pointee
        uid = pw.pw_uid
        gid = pw.pw_gid
        home = String(cString: pw.pw_dir)

        // The build directory may sit under a path the test user cannot enter (/root in CI): run a copy.
        let built = ProcessInfo.processInfo.environment["CAISSON_BIN"] ?? Harness.builtBinary()
        binary = workspace + "/bin/caisson"
        try! FileManager.default.copyItem(atPath: built, toPath: binary)
        chmod(binary, 0o755)
        // `caisson import|digest|cache` run the companion program installed beside it.
        let companion = URL(fileURLWithPath: built).deletingLastPathComponent().appendingPathComponent("caisson-import").path
        if FileManager.default.isExecutableFile(atPath: companion) {
            try! FileManager.default.copyItem(atPath: companion, toPath: workspace + "/bin/caisson-import")
            chmod(workspace + "/bin/caisson-import", 0o755)
        }

        busybox = workspace + "/busybox"
        busyboxImage = workspace + "/busybox.sqsh"
        Harness.makeBusyboxRootfs(at: busybox)
        chownTree(busybox)
        if asRoot { _ = Harness.shell("chown \(uid):\(gid) \(workspace)") }
        Harness.makeImage(of: busybox, at: busyboxImage, allRoot: true)
    }

    static func builtBinary() -> String {
        // Tests/EndToEndTests/Harness.swift → package root → .build/debug/caisson
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for candidate in [".build/debug/caisson", ".build/release/caisson"] {
            let path = package.appendingPathComponent(candidate).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        fatalError("caisson binary not found: run `swift build` first or set CAISSON_BIN")
    }

    static func makeBusyboxRootfs(at root: String) {
        let busyboxBinary = ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }
        precondition(busyboxBinary != nil, "busybox-static is not installed (apt-get install busybox-static)")
        let script = """
        set -e
        mkdir -p \(root)/bin \(root)/etc \(root)/proc \(root)/sys \(root)/dev \(root)/tmp \(root)/root \(root)/home \(root)/mnt \(root)/usr/bin
        cp \(busyboxBinary!) \(root)/bin/busybox
        for applet in $(\(root)/bin/busybox --list); do [ -e \(root)/bin/$applet ] || ln -s busybox \(root)/bin/$applet; done
        printf 'root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\\n' > \(root)/etc/passwd
        printf 'root:x:0:\\nnogroup:x:65534:\\n' > \(root)/etc/group
        printf 'IMAGE_VAR=from-image\\nPATH="/usr/local/bin:/usr/bin:/bin"\\n' > \(root)/etc/environment
        """
        let result = shell(script)
        precondition(result.status == 0, "building the busybox rootfs failed: \(result.stderr)")
    }

    /// A private copy of the busybox rootfs, changed by `customize` (a shell script run as root
    /// or as the test user, with $R set to the new rootfs), owned by the test user.
    func rootfs(_ name: String, customize script: String = "") -> String {
        let path = "\(workspace)/rootfs-\(name)-\(UUID().uuidString.prefix(8))"
        let copy = Harness.shell("cp -a \(busybox) \(path)")
        precondition(copy.status == 0, copy.stderr)
        chownTree(path)
        if !script.isEmpty {
            let result = Harness.shell("set -e; R=\(path); \(script)")
            precondition(result.status == 0, "customizing \(name) failed: \(result.stderr)")
        }
        return path
    }

    /// A squashfs image of a tree, as `caisson import` would make it: every file owned by root
    /// (`allRoot`), or with the tree's own owners (to plant setuid-root files).
    func image(of rootfs: String, allRoot: Bool = true) -> String {
        let path = "\(rootfs).sqsh"
        Harness.makeImage(of: rootfs, at: path, allRoot: allRoot)
        return path
    }

    /// A larger image, built once per run: the test suite's Debian tree when it exists, else a
    /// slice of the host's /usr/share. For tests that must interrupt work midway.
    var bigImage: String? { Harness.bigImageOnce }
    private static let bigImageOnce: String? = {
        let path = Harness.shared.workspace + "/big.sqsh"
        let debian = "/var/cache/caisson-test/debootstrap-bookworm"
        let sources = FileManager.default.fileExists(atPath: "\(debian)/etc/os-release") ? debian : "/usr/share/doc /usr/share/perl5 /etc"
        let r = shell("mksquashfs \(sources) \(path) -comp zstd -Xcompression-level 3 -no-xattrs -all-root -quiet -no-progress >/dev/null 2>&1 && chmod 644 \(path)")
        return r.status == 0 ? path : nil
    }()

    static func makeImage(of rootfs: String, at path: String, allRoot: Bool) {
        let r = shell("rm -f \(path) && mksquashfs \(rootfs) \(path) -comp zstd -Xcompression-level 3 -no-xattrs -quiet -no-progress \(allRoot ? "-all-root" : "") >/dev/null && chmod 644 \(path)")
        precondition(r.status == 0, "mksquashfs failed: \(r.stderr)")
    }

    func chownTree(_ path: String) {
        if asRoot { _ = Harness.shell("chown -hR \(uid):\(gid) \(path)") }
    }

    /// A scratch directory owned by the test user.
    func scratch(_ name: String) -> String {
        let path = "\(workspace)/\(name)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chownTree(path)
        return path
    }

    struct Result: CustomStringConvertible {
        var status: Int32
        var signal: Int32?
        var stdout: String
        var stderr: String
        var description: String { "status \(status) signal \(signal.map(String.init) ?? "-")\nstdout: \(stdout)\nstderr: \(stderr)" }
        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    /// The environment the test user's commands get: a clean login-like one.
    func baseEnvironment(_ extra: [String: String]) -> [String: String] {
        var env = ["HOME": home, "USER": user, "LOGNAME": user, "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                   "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": ""]
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// The argv prefix that runs a program as the test user with exactly `env`.
    func asUser(_ env: [String: String]) -> [String] {
        var argv: [String] = []
        if asRoot {
            argv += ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--"]
        }
        argv += ["/usr/bin/env", "-i"] + env.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }
        return argv
    }

    /// Runs `caisson ARGS` as the test user.
    func caisson(_ args: [String], env: [String: String] = [:], cwd: String? = nil, timeout: TimeInterval = 60) -> Result {
        run(asUser(baseEnvironment(env)) + [binary] + args, cwd: cwd, timeout: timeout)
    }

    /// Runs a shell snippet as the test user (for fd tricks around caisson).
    func userShell(_ script: String, env: [String: String] = [:], timeout: TimeInterval = 60) -> Result {
        var e = baseEnvironment(env)
        e["CAISSON"] = binary
        return run(asUser(e) + Harness.unblockSignals + ["/bin/sh", "-c", script], cwd: workspace, timeout: timeout)
    }

    /// Test threads block signals and children inherit the mask; a shell with SIGCHLD blocked
    /// never returns from `wait`. This prefix clears the mask, then execs the rest.
    static let unblockSignals = ["/usr/bin/perl", "-MPOSIX", "-e",
                                 "sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die; exec { $ARGV[0] } @ARGV or die \"$ARGV[0]: $!\""]

    func run(_ argv: [String], cwd: String? = nil, timeout: TimeInterval = 60, onStart: ((Process) -> Void)? = nil) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: cwd ?? workspace)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try! process.run()
        onStart?(process)
        let stdoutData = Locked(Data()), stderrData = Locked(Data())
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { stdoutData.set(out.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        group.enter(); DispatchQueue.global().async { stderrData.set(err.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        group.wait()
        let signal: Int32? = process.terminationReason == .uncaughtSignal ? process.terminationStatus : nil
        return Result(status: signal == nil ? process.terminationStatus : -1, signal: signal,
                      stdout: String(decoding: stdoutData.get(), as: UTF8.self),
                      stderr: String(decoding: stderrData.get(), as: UTF8.self))
    }

    @discardableResult
    static func shell(_ script: String) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try! process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, signal: nil,
                      stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Lists a host directory recursively with owners and sizes, to prove a run changed nothing there.
    static func snapshot(_ path: String) -> String {
        shell("find \(path) -xdev -printf '%p %y %u %m %s %l\\n' 2>/dev/null | sort").stdout
    }
}

final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ newValue: T) { lock.lock(); value = newValue; lock.unlock() }
}
