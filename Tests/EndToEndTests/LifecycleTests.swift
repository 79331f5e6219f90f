import Foundation
import Testing

/// Named containers (create, start NAME, list, remove, exec), export and bundle, as the
/// unprivileged user, each with its own data path so that tests running at once never meet.
@Suite struct Lifecycle {
    let h = Harness.shared

    /// A fresh CAISSON_DATA_PATH (and runtime path, where running containers are recorded).
    func store(_ name: String) -> [String: String] {
        let dir = h.scratch("store-\(name)")
        return ["CAISSON_DATA_PATH": "\(dir)/data", "CAISSON_RUNTIME_PATH": "\(dir)/run"]
    }

    func hidden(_ env: [String: String]) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: env["CAISSON_DATA_PATH"]!)) ?? []).filter { $0.hasPrefix(".") }
    }

    @Test func createdContainerShowsTheImagesTree() {
        let env = store("tree")
        let created = h.caisson(["create", "--name", "box", h.busyboxImage], env: env)
        #expect(created.status == 0, "\(created)")
        let fromName = h.caisson(["start", "box", "sh", "-c", ImageStart.listing], env: env)
        let fromImage = h.caisson(["start", h.busyboxImage, "sh", "-c", ImageStart.listing], env: env)
        #expect(fromName.status == 0 && fromName.lines.count > 100, "\(fromName)")
        #expect(fromName.stdout == fromImage.stdout, "start NAME and start IMAGE.sqsh show the same tree")
        // Default name: the image file's name.
        let byDefault = h.caisson(["create", h.busyboxImage], env: env)
        #expect(byDefault.status == 0, "\(byDefault)")
        #expect(h.caisson(["list"], env: env).lines == ["box", "busybox"])
    }

    @Test func writableNamedContainerKeepsChangesAndReadOnlyStartsDoNot() {
        let env = store("rw")
        #expect(h.caisson(["create", "--name", "dev", h.busyboxImage], env: env).status == 0)
        let ro = h.caisson(["start", "dev", "sh", "-c", "echo x > /etc/kept"], env: env)
        #expect(ro.status != 0, "\(ro)")
        let rw = h.caisson(["start", "--rw", "--root", "dev", "sh", "-c", "echo kept > /etc/kept && chown 0:0 /etc/kept"], env: env)
        #expect(rw.status == 0, "\(rw)")
        let later = h.caisson(["start", "dev", "cat", "/etc/kept"], env: env)
        #expect(later.stdout == "kept\n", "\(later)")
    }

    @Test func twoCreatesOfOneNameOneWinsNothingCorrupted() {
        let env = store("race")
        let image = h.image(of: h.rootfs("race", customize: "dd if=/dev/urandom of=$R/usr/bin/blob bs=1M count=24 2>/dev/null"))
        for round in 0..<3 {
            _ = h.caisson(["remove", "--force", "x"], env: env)
            let r = h.userShell("""
            "$CAISSON" create -q --name x \(image) 2>err1 & a=$!
            "$CAISSON" create -q --name x \(image) 2>err2 & b=$!
            wait $a; ra=$?; wait $b; rb=$?
            echo $ra $rb; cat err1 err2
            """, env: env, timeout: 120)
            let codes = r.lines.first?.split(separator: " ").map(String.init) ?? []
            #expect(codes.sorted() == ["0", "1"], "round \(round): exactly one create wins: \(r)")
            #expect(r.stdout.contains("a container named 'x' already exists"), "\(r)")
            #expect(hidden(env).isEmpty, "the loser leaves nothing: \(hidden(env))")
            let check = h.caisson(["start", "x", "sh", "-c", "wc -c < /usr/bin/blob"], env: env)
            #expect(check.stdout.trimmingCharacters(in: .whitespaces) == "25165824\n", "\(check)")
        }
    }

    @Test func killedCreatesAndExportsLeaveNothingThatLooksValid() throws {
        let env = store("kill")
        let image = try #require(h.bigImage, "no large tree to build an image from")
        let out = h.scratch("exports")
        #expect(h.caisson(["create", "-q", "--name", "full", image], env: env).status == 0)
        // SIGKILL at spread-out moments of the work (the delays are in milliseconds).
        var interrupted = 0
        for delay in [5, 40, 120, 300, 700] {
            let r = h.userShell("""
            "$CAISSON" create -q --name victim \(image) & c=$!
            "$CAISSON" export -q -o \(out)/victim.sqsh full & e=$!
            sleep \(Double(delay) / 1000); kill -9 $c $e; wait $c $e 2>/dev/null; true
            """, env: env, timeout: 120)
            #expect(r.status == 0, "\(r)")
            if hidden(env).contains(where: { $0.hasPrefix(".victim.partial-") }) { interrupted += 1 }
            let list = h.caisson(["list"], env: env)
            if list.lines.contains("victim") {
                // The create finished before the kill: then it is whole.
                #expect(FileManager.default.fileExists(atPath: "\(env["CAISSON_DATA_PATH"]!)/victim/etc/os-release"))
                _ = h.caisson(["remove", "victim"], env: env)
            } else {
                let start = h.caisson(["start", "victim", "true"], env: env)
                #expect(start.status == 125, "a killed create is not a container: \(start)")
            }
            if FileManager.default.fileExists(atPath: "\(out)/victim.sqsh") {
                let valid = Harness.shell("unsquashfs -l \(out)/victim.sqsh | grep -c etc/os-release")
                #expect(valid.status == 0, "an export that exists is complete: \(valid)")
                try? FileManager.default.removeItem(atPath: "\(out)/victim.sqsh")
            }
        }
        #expect(interrupted > 0, "some kill landed while a create was unpacking")
        // The next list collects what the killed creates left.
        _ = h.caisson(["list"], env: env)
        #expect(hidden(env).isEmpty, "\(hidden(env))")
        // The next export to the same file collects what the killed exports left, and only that.
        let exportsLeft = { ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasPrefix(".victim.sqsh.partial-") } }
        let otherHost = ".victim.sqsh.partial-elsewhere-\(getpid())"
        FileManager.default.createFile(atPath: "\(out)/\(otherHost)", contents: Data("another node's".utf8))
        #expect(exportsLeft().count > 1, "killed exports left partial files: \(exportsLeft())")
        #expect(h.caisson(["export", "-q", "-o", "\(out)/victim.sqsh", "full"], env: env).status == 0)
        #expect(exportsLeft() == [otherHost], "this host's abandoned partial exports are gone, another host's stay: \(exportsLeft())")
    }

    @Test func listRemoveAndRunningContainers() throws {
        let env = store("list")
        #expect(h.caisson(["create", "-q", "--name", "one", h.busyboxImage], env: env).status == 0)
        #expect(h.caisson(["create", "-q", "--name", "two", h.busyboxImage], env: env).status == 0)
        let r = h.userShell("""
        "$CAISSON" start one sleep 30 & pid=$!
        for i in $(seq 100); do "$CAISSON" list --fancy | grep -q "^one .*$pid" && break; sleep 0.05; done
        echo pid $pid
        "$CAISSON" list --fancy
        "$CAISSON" remove one; echo removed $?
        "$CAISSON" exec one sh -c 'echo in $(readlink /proc/self/ns/mnt) $(id -u)'
        echo host $(readlink /proc/$pid/ns/mnt)
        "$CAISSON" remove --force one; echo forced $?
        kill $pid
        "$CAISSON" list
        """, env: env, timeout: 60)
        let pid = r.lines.first { $0.hasPrefix("pid ") }.map { String($0.dropFirst(4)) } ?? "?"
        #expect(r.stdout.contains("NAME"), "\(r)")
        #expect(r.lines.contains { $0.hasPrefix("one ") && $0.hasSuffix(pid) }, "list --fancy shows the running PID: \(r)")
        #expect(r.lines.contains { $0.hasPrefix("two ") && $0.hasSuffix("-") }, "\(r)")
        #expect(r.lines.contains("removed 1"), "a running container is not removed: \(r)")
        #expect(r.stderr.contains("is running"), "\(r)")
        let inside = r.lines.first { $0.hasPrefix("in ") }?.split(separator: " ") ?? []
        let host = r.lines.first { $0.hasPrefix("host ") }?.split(separator: " ") ?? []
        #expect(inside.count == 3 && host.count == 2 && inside[1] == host[1], "exec joined the container's mount namespace: \(r)")
        #expect(inside.last.map(String.init) == "\(h.uid)", "\(r)")
        #expect(r.lines.contains("forced 0"), "\(r)")
        #expect(r.lines.last == "two", "\(r)")
        let gone = h.caisson(["remove", "nosuch"], env: env)
        #expect(gone.status == 1 && gone.stderr.contains("no container named 'nosuch'"), "\(gone)")
    }

    @Test(arguments: ["image", "root"])
    func execJoinsAParkedContainer(kind: String) {
        let root = kind == "root" ? ["--root"] : []
        let r = h.userShell("""
        mkdir -p park && cd park
        "$CAISSON" start --park \(root.joined()) -e FROM_START=yes \(h.busyboxImage) > env & pid=$!
        for i in $(seq 100); do grep -q 'T (stopped)' /proc/$pid/status 2>/dev/null && break; sleep 0.05; done
        tr '\\0' '\\n' < env | grep FROM_START
        "$CAISSON" exec $pid sh -c 'echo uid $(id -u); echo env $FROM_START; chown 0 /tmp 2>/dev/null && echo chowned; ls /bin/busybox'
        kill -9 $pid
        """, timeout: 60)
        #expect(r.lines.contains("FROM_START=yes"), "the parked container prints its environment: \(r)")
        #expect(r.lines.contains("uid \(kind == "root" ? "0" : "\(h.uid)")"), "\(r)")
        #expect(r.lines.contains("/bin/busybox"), "\(r)")
        #expect(r.lines.contains("chowned") == (kind == "root"), "the fakeroot filter comes with --root: \(r)")
    }

    @Test func manySimultaneousStartsOfOneNamedContainer() {
        let env = store("many")
        #expect(h.caisson(["create", "-q", "--name", "shared", h.busyboxImage], env: env).status == 0)
        let r = h.userShell("""
        for i in $(seq 64); do "$CAISSON" start shared sh -c "echo ok-$i" & done; wait
        """, env: env, timeout: 300)
        #expect(Set(r.lines).count == 64 && r.lines.allSatisfy { $0.hasPrefix("ok-") }, "\(r)")
    }

    @Test func exportRoundTripsAContainer() throws {
        let env = store("export")
        let out = h.scratch("export-out")
        #expect(h.caisson(["create", "-q", "--name", "src", h.busyboxImage], env: env).status == 0)
        #expect(h.caisson(["start", "--rw", "src", "sh", "-c", "echo changed > /etc/changed; printf '#!/bin/sh\\necho entry \"$@\"\\n' > /etc/rc"], env: env).status == 0)
        let exported = h.caisson(["export", "-o", "\(out)/src.sqsh", "src"], env: env)
        #expect(exported.status == 0, "\(exported)")
        let again = h.caisson(["export", "-o", "\(out)/src.sqsh", "src"], env: env)
        #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again)")
        let fromExport = h.caisson(["start", "\(out)/src.sqsh", "sh", "-c", ImageStart.listing], env: env)
        let fromName = h.caisson(["start", "src", "sh", "-c", ImageStart.listing], env: env)
        #expect(fromExport.status == 0 && fromExport.stdout == fromName.stdout, "the export holds the container's tree")
        let entry = h.caisson(["start", "--entrypoint", "\(out)/src.sqsh", "a", "b"], env: env)
        #expect(entry.stdout == "entry a b\n", "/etc/rc came along: \(entry)")
    }

    @Test func bundleRunsWithoutCaissonInstalled() throws {
        let dir = h.scratch("bundle")
        let made = h.caisson(["bundle", "-o", "\(dir)/box.run", h.busyboxImage])
        #expect(made.status == 0, "\(made)")
        // A clean environment: PATH has no caisson, and the bundle is all there is.
        let env = ["PATH": "/usr/bin:/bin", "TMPDIR": dir, "XDG_RUNTIME_DIR": ""]
        let run = h.run(h.asUser(h.baseEnvironment(env)) + ["\(dir)/box.run", "-e", "FOO=bar", "--", "sh", "-c", "echo $FOO; cat /etc/environment; id -u"], cwd: dir)
        #expect(run.status == 0, "\(run)")
        #expect(run.lines.first == "bar" && run.lines.last == "\(h.uid)", "\(run)")
        #expect(run.stdout.contains("IMAGE_VAR=from-image"), "\(run)")
        let status = h.run(h.asUser(h.baseEnvironment(env)) + ["\(dir)/box.run", "sh", "-c", "exit 7"], cwd: dir)
        #expect(status.status == 7, "\(status)")
        let verify = h.run(h.asUser(h.baseEnvironment(env)) + ["\(dir)/box.run", "--verify"], cwd: dir)
        #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(verify)")
        let help = h.run(h.asUser(h.baseEnvironment(env)) + ["/bin/sh", "\(dir)/box.run", "--help"], cwd: dir)
        #expect(help.status == 0 && help.stdout.contains("Usage: box.run"), "\(help)")
    }
}
