import Foundation
import Testing

/// `caisson start` as an ordinary user: identity, read-only root, exit codes and signals.
@Suite struct StartBasics {
    let h = Harness.shared

    @Test func runsAsTheCaller() {
        let uid = h.caisson(["start", h.busybox, "id", "-u"])
        #expect(uid.status == 0, "\(uid)")
        #expect(uid.stdout == "\(h.uid)\n")
        let name = h.caisson(["start", h.busybox, "id", "-un"])
        #expect(name.stdout == "\(h.user)\n", "\(name)")
        let group = h.caisson(["start", h.busybox, "id", "-gn"])
        #expect(group.status == 0 && !group.stdout.isEmpty && Int(group.stdout.dropLast()) == nil, "group has a name: \(group)")
        let passwd = h.caisson(["start", h.busybox, "grep", "^root:", "/etc/passwd"])
        #expect(passwd.status == 0, "the image's own entries are kept: \(passwd)")
    }

    @Test func remapRootIsUidZero() {
        let r = h.caisson(["start", "--root", h.busybox, "id", "-u"])
        #expect(r.status == 0 && r.stdout == "0\n", "\(r)")
        let name = h.caisson(["start", "--root", h.busybox, "id", "-un"])
        #expect(name.stdout == "root\n", "\(name)")
    }

    @Test func homeIsMountedAndFilesBelongToTheCaller() throws {
        let marker = "e2e-home-\(UUID().uuidString.prefix(8))"
        let r = h.caisson(["start", "--mount-home", h.busybox, "sh", "-c", "touch $HOME/\(marker) && ls -n $HOME/\(marker)"])
        #expect(r.status == 0, "\(r)")
        let path = "\(h.home)/\(marker)"
        defer { unlink(path) }
        var st = stat()
        #expect(stat(path, &st) == 0, "file created inside exists on the host")
        #expect(st.st_uid == h.uid && st.st_gid == h.gid)
        // Without --mount-home (the default) the home directory is not there.
        let without = h.caisson(["start", h.busybox, "ls", "\(h.home)/\(marker)"])
        #expect(without.status != 0)
    }

    @Test func rootAndRwLetPackageManagersChown() throws {
        let rootfs = h.rootfs("chown")
        let r = h.caisson(["start", "--root", "--rw", rootfs, "sh", "-c", "touch /f && chown 1234:1234 /f && touch /g && chown root /g"])
        #expect(r.status == 0, "\(r)")
        var st = stat()
        #expect(stat("\(rootfs)/f", &st) == 0 && st.st_uid == h.uid, "chown was a harmless no-op on the host")
        #expect(Harness.shell("test -e \(rootfs)/g").status == 0, "--rw writes reach the rootfs")
    }

    @Test func rootIsReadOnlyByDefault() {
        let rootfs = h.rootfs("ro")
        let r = h.caisson(["start", rootfs, "sh", "-c", "touch /newfile"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("Read-only file system"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: "\(rootfs)/newfile"))
        let root = h.caisson(["start", "--root", rootfs, "sh", "-c", "touch /newfile"])
        #expect(root.status != 0 && root.stderr.contains("Read-only file system"), "\(root)")
    }

    static let exitCases: [(command: [String], expected: Int32)] = [
        (["true"], 0), (["false"], 1), (["sh", "-c", "exit 42"], 42), (["no-such-command"], 127),
    ]

    @Test(arguments: exitCases)
    func exitStatusPropagates(command: [String], expected: Int32) {
        let r = h.caisson(["start", h.busybox] + command)
        #expect(r.status == expected, "\(r)")
        if expected == 127 { #expect(r.stderr.contains("command not found"), "\(r)") }
    }

    @Test func notExecutableIs126() {
        let rootfs = h.rootfs("noexec", customize: "printf 'data' > $R/bin/datafile; chmod 644 $R/bin/datafile")
        let r = h.caisson(["start", rootfs, "/bin/datafile"])
        #expect(r.status == 126, "\(r)")
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func signalsReachTheCommand(signal: Int32) {
        // The command traps the signal and exits 42; a start that did not exec would not relay it.
        let script = "trap 'exit 42' TERM INT; : > /host-flag/ready; while :; do sleep 0.05; done"
        let flagDir = h.scratch("flag")
        let result = h.run(h.asUser(h.baseEnvironment([:])) + [h.binary, "start", "-m", "\(flagDir):/host-flag", h.busybox, "sh", "-c", script],
                           timeout: 20) { process in
            for _ in 0..<1000 where !FileManager.default.fileExists(atPath: "\(flagDir)/ready") { usleep(10_000) }
            kill(process.processIdentifier, signal)
        }
        #expect(result.status == 42, "\(result)")
    }

    @Test func uncaughtSignalKillsLikeTheCommand() {
        let flagDir = h.scratch("flag")
        let result = h.run(h.asUser(h.baseEnvironment([:])) + [h.binary, "start", "-m", "\(flagDir):/f", h.busybox, "sh", "-c", ": > /f/ready; exec sleep 30"],
                           timeout: 20) { process in
            for _ in 0..<1000 where !FileManager.default.fileExists(atPath: "\(flagDir)/ready") { usleep(10_000) }
            usleep(50_000)
            kill(process.processIdentifier, SIGTERM)
        }
        #expect(result.signal == SIGTERM, "\(result)")
    }

    @Test func missingRootfsIsAClearError() {
        let r = h.caisson(["start", "/nonexistent/rootfs", "true"])
        #expect(r.status == 125)
        #expect(r.stderr.contains("caisson: start: rootfs: /nonexistent/rootfs: no such image, container or directory; check the path"), "\(r)")
    }

    @Test func noProcessOrMountIsLeftBehind() {
        let before = Harness.shell("cat /proc/self/mountinfo | wc -l").stdout
        let r = h.caisson(["start", "-m", "/nonexistent-src:/x", h.busybox, "true"])
        #expect(r.status == 125 && r.stderr.contains("does not exist"), "\(r)")
        #expect(Harness.shell("cat /proc/self/mountinfo | wc -l").stdout == before)
    }
}
