import Foundation
import Testing

/// The image's /etc/rc (enroot's image format), the working directory, and the image's /etc/fstab.
@Suite struct EntrypointAndWorkdir {
    let h = Harness.shared

    var rcImage: String {
        h.rootfs("rc", customize: """
        mkdir -p $R/work
        printf 'cd /work\\necho "rc args:$# $*"\\npwd\\n' > $R/etc/rc
        """)
    }

    @Test func noCommandRunsTheImageEntrypoint() {
        let r = h.caisson(["start", rcImage])
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["rc args:0 ", "/work"], "\(r)")
    }

    @Test func entrypointFlagPassesTheCommandAsArguments() {
        let r = h.caisson(["start", "--entrypoint", rcImage, "a", "b c"])
        #expect(r.lines == ["rc args:2 a b c", "/work"], "\(r)")
        let direct = h.caisson(["start", rcImage, "echo", "direct"])
        #expect(direct.stdout == "direct\n", "a command bypasses /etc/rc: \(direct)")
    }

    @Test func noCommandAndNoEntrypointRunsAShell() {
        let r = h.caisson(["start", h.busybox])
        #expect(r.status == 0, "sh reads an empty stdin and exits: \(r)")
    }

    @Test func workdirDefaultsAndExplicit() {
        let rootfs = h.rootfs("wd", customize: "mkdir -p $R/data/sub")
        let same = h.caisson(["start", rootfs, "pwd"], cwd: "/")
        #expect(same.stdout == "/\n", "\(same)")
        // The caller's directory does not exist in the image: $HOME if mounted, else /.
        let scratch = h.scratch("cwd")
        let fallback = h.caisson(["start", rootfs, "pwd"], cwd: scratch)
        #expect(fallback.stdout == "/\n", "\(fallback)")
        let home = h.caisson(["start", "--mount-home", rootfs, "pwd"], cwd: scratch)
        #expect(home.stdout == "\(h.home)\n", "\(home)")
        let explicit = h.caisson(["start", "-w", "/data/sub", rootfs, "pwd"])
        #expect(explicit.stdout == "/data/sub\n", "\(explicit)")
        let missing = h.caisson(["start", "-w", "/nope", rootfs, "pwd"])
        #expect(missing.status == 125 && missing.stderr.contains("workdir: /nope"), "\(missing)")
    }

    @Test func imageFstabMayOnlyAddTmpfs() {
        let rootfs = h.rootfs("fstab", customize: """
        printf '# image volumes\\ntmpfs /volume tmpfs x-create=dir,size=1m\\n/etc /stolen none x-create=dir,rbind\\n' > $R/etc/fstab
        """)
        let r = h.caisson(["start", rootfs, "sh", "-c", "grep -c ' /volume tmpfs' /proc/self/mounts; ls /stolen 2>/dev/null | wc -l"])
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["1", "0"], "\(r)")
        #expect(r.stderr.contains("only add tmpfs"), "\(r)")
    }
}
