import Foundation
import Testing

/// `caisson start IMAGE.sqsh`: the image mounted with squashfuse inside the user namespace, an
/// overlay on top, nothing extracted and nothing left behind.
@Suite struct ImageStart {
    let h = Harness.shared

    /// Type, owner, mode, size and link target of every file under the given paths, as seen inside.
    /// (A directory's size is the filesystem's business, so directories are listed without one.)
    static let listing = "find /bin /etc /root /usr -xdev ! -type d | sort | xargs stat -c '%n %F %u %g %a %s %N'; find /bin /etc /root /usr -xdev -type d | sort | xargs stat -c '%n %F %u %g %a'"

    @Test func imageShowsTheSameTreeAsTheDirectory() {
        let fromDir = h.caisson(["start", h.busybox, "sh", "-c", ImageStart.listing])
        let fromImage = h.caisson(["start", h.busyboxImage, "sh", "-c", ImageStart.listing])
        #expect(fromDir.status == 0 && fromImage.status == 0, "\(fromDir)\n\(fromImage)")
        #expect(fromImage.lines.count > 100, "\(fromImage)")
        #expect(fromImage.stdout == fromDir.stdout, "root-owned image files belong to the caller, as in an unpacked tree")
        #expect(fromImage.stdout.contains(" \(h.uid) \(h.gid) "), "\(fromImage)")
    }

    @Test func identityAndExitStatusAreTheCommands() {
        let r = h.caisson(["start", h.busyboxImage, "sh", "-c", "id -u; id -g; id -un; exit 42"])
        #expect(r.status == 42, "\(r)")
        #expect(r.lines == ["\(h.uid)", "\(h.gid)", h.user], "\(r)")
        let root = h.caisson(["start", "--root", h.busyboxImage, "sh", "-c", "id -u; stat -c '%u %U' /bin/busybox"])
        #expect(root.status == 0, "\(root)")
        #expect(root.lines == ["0", "0 root"], "\(root)")
    }

    @Test func readOnlyByDefaultAndRwIsDiscarded() throws {
        let before = try Data(contentsOf: URL(fileURLWithPath: h.busyboxImage))
        let ro = h.caisson(["start", h.busyboxImage, "sh", "-c", "echo x > /etc/new"])
        #expect(ro.status != 0, "\(ro)")
        #expect(ro.stderr.contains("Read-only file system"), "\(ro)")
        let rw = h.caisson(["start", "--rw", h.busyboxImage, "sh", "-c", "echo changed > /etc/new && rm /bin/ls && cat /etc/new"])
        #expect(rw.status == 0 && rw.stdout == "changed\n", "\(rw)")
        let after = h.caisson(["start", h.busyboxImage, "sh", "-c", "test ! -e /etc/new && test -e /bin/ls && echo clean"])
        #expect(after.stdout == "clean\n", "--rw changes vanish with the container: \(after)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: h.busyboxImage)) == before, "the image file is never written")
    }

    @Test func theFuseServerDiesWithTheContainer() {
        let image = h.image(of: h.rootfs("tether"))
        // The container's process ($$, which Caisson became) is the FUSE server's parent.
        let r = h.caisson(["start", image, "sh", "-c", "ps -o pid,ppid,args | awk -v p=$$ '$2 == p && $3 ~ /squashfuse/ { print $1 }'"])
        #expect(r.status == 0 && r.lines.count == 1, "one FUSE server while the container runs: \(r)")
        guard let server = r.lines.first else { return }
        // Once the container's process has exited, the server is gone too (or a zombie waiting for init).
        var state = "?"
        for _ in 0..<100 {
            let stat = (try? String(contentsOfFile: "/proc/\(server)/stat", encoding: .utf8)) ?? ""
            state = stat.split(separator: ")").last.map { String($0.dropFirst().prefix(1)) } ?? "gone"
            if state == "gone" || state == "Z" { break }
            usleep(20_000)
        }
        #expect(state == "gone" || state == "Z", "no squashfuse server outlives its container: \(state)")
    }

    @Test func clearErrorsForWhatCannotStart() throws {
        let notImage = "\(h.scratch("notimage"))/plain.sqsh"
        try "not a squashfs image\n".write(toFile: notImage, atomically: true, encoding: .utf8)
        chmod(notImage, 0o644)
        let bad = h.caisson(["start", notImage, "true"])
        #expect(bad.status == 125, "\(bad)")
        #expect(bad.stderr.contains("is not a squashfs image"), "\(bad)")

        let noServer = h.caisson(["start", h.busyboxImage, "true"], env: ["CAISSON_SQUASHFUSE": "/nonexistent/squashfuse_ll"])
        #expect(noServer.status == 125, "\(noServer)")
        #expect(noServer.stderr.contains("needs squashfuse"), "\(noServer)")

        let missing = h.caisson(["start", "no-such-container-or-file", "true"])
        #expect(missing.status == 125, "\(missing)")
        #expect(missing.stderr.contains("no such image, container or directory"), "\(missing)")

        // A truncated image: the FUSE server refuses it, and the start fails instead of hanging.
        let truncated = "\(h.scratch("truncated"))/half.sqsh"
        Harness.shell("head -c 4096 \(h.busyboxImage) > \(truncated) && chmod 644 \(truncated)")
        let half = h.caisson(["start", truncated, "true"], timeout: 30)
        #expect(half.status == 125, "\(half)")
        #expect(half.stderr.contains("caisson: start: mounts:"), "\(half)")
    }

    @Test func manySimultaneousStartsOfOneImage() {
        let count = 64
        let r = h.userShell("""
        for i in $(seq \(count)); do "$CAISSON" start \(h.busyboxImage) sh -c "cat /etc/environment >/dev/null && echo ok-$i" & done; wait
        """, timeout: 300)
        #expect(r.status == 0, "\(r)")
        #expect(Set(r.lines).count == count && r.lines.allSatisfy { $0.hasPrefix("ok-") }, "all \(count) starts succeeded: \(r)")
        #expect(!r.stderr.contains("caisson:"), "\(r)")
    }
}
