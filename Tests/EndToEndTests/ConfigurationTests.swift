import Foundation
import Testing

/// --mount, mounts.d, environ.d, --env and hooks, as the README documents them.
@Suite struct StartConfiguration {
    let h = Harness.shared

    /// A system configuration directory (CAISSON_SYSCONF_PATH) and a user one (CAISSON_CONFIG_PATH).
    func configDirs(_ setup: String) -> (sys: String, user: String) {
        let sys = h.scratch("sysconf"), user = h.scratch("userconf")
        let r = Harness.shell("set -e; SYS=\(sys); USR=\(user); mkdir -p $SYS/mounts.d $SYS/environ.d $SYS/hooks.d $USR/mounts.d $USR/environ.d $USR/hooks.d; \(setup); chmod -R a+rX $SYS $USR")
        precondition(r.status == 0, r.stderr)
        h.chownTree(user)
        return (sys, user)
    }

    @Test func mountFlagBindsReadOnlyAndReadWrite() throws {
        let data = h.scratch("data")
        try "hello\n".write(toFile: "\(data)/greeting", atomically: true, encoding: .utf8)
        h.chownTree(data)
        let r = h.caisson(["start", "-m", "\(data):/data", "-m", "\(data):/data-ro:ro", h.busybox,
                           "sh", "-c", "cat /data/greeting; echo new > /data/written; echo x > /data-ro/nope"])
        #expect(r.stdout == "hello\n", "\(r)")
        #expect(r.stderr.contains("Read-only file system"), "\(r)")
        #expect((try? String(contentsOfFile: "\(data)/written", encoding: .utf8)) == "new\n")
        #expect(!FileManager.default.fileExists(atPath: "\(data)/nope"))
        // A file source gets a file target; the same path is the default destination.
        let file = h.caisson(["start", "-m", "\(data)/greeting", h.busybox, "cat", "\(data)/greeting"])
        #expect(file.stdout == "hello\n", "\(file)")
        let tmpfs = h.caisson(["start", "-m", "tmpfs:/scratch", h.busybox, "sh", "-c", "grep ' /scratch ' /proc/self/mounts"])
        #expect(tmpfs.stdout.contains("tmpfs"), "\(tmpfs)")
    }

    @Test func mountsDropInsAndNofail() throws {
        let data = h.scratch("mounts-d")
        try "sys\n".write(toFile: "\(data)/origin", atomically: true, encoding: .utf8)
        h.chownTree(data)
        let dirs = configDirs("""
        echo '\(data) /from-system none x-create=dir,rbind,ro' > $SYS/mounts.d/10-data.fstab
        echo '# comment' > $USR/mounts.d/20-user.fstab
        echo 'tmpfs /user-tmpfs tmpfs x-create=dir,size=1m' >> $USR/mounts.d/20-user.fstab
        echo '/does/not/exist /skipped none rbind,nofail' >> $USR/mounts.d/20-user.fstab
        echo 'not-an-fstab-file' > $SYS/mounts.d/README
        """)
        let env = ["CAISSON_SYSCONF_PATH": dirs.sys, "CAISSON_CONFIG_PATH": dirs.user]
        let r = h.caisson(["start", h.busybox, "sh", "-c", "cat /from-system/origin; grep -c ' /user-tmpfs ' /proc/self/mounts; test -e /skipped || echo skipped"], env: env)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["sys", "1", "skipped"], "\(r)")
        let bad = configDirs("echo 'just-one-field' > $SYS/mounts.d/10-bad.fstab")
        let broken = h.caisson(["start", h.busybox, "true"], env: ["CAISSON_SYSCONF_PATH": bad.sys])
        #expect(broken.status == 125 && broken.stderr.contains("10-bad.fstab:1"), "\(broken)")
    }

    @Test func environmentLayers() {
        let dirs = configDirs("""
        printf 'FROM_SYS=sys\\nLAYERED=sys\\n' > $SYS/environ.d/10-sys.env
        printf 'LAYERED=user\\nDERIVED=${FROM_SYS}-derived\\nPASSED\\n' > $USR/environ.d/10-user.env
        """)
        let env = ["CAISSON_SYSCONF_PATH": dirs.sys, "CAISSON_CONFIG_PATH": dirs.user, "PASSED": "from-host",
                   "HOST_ONLY": "host", "LD_PRELOAD": "/evil.so", "FLAGGED": "host-value"]
        let r = h.caisson(["start", "-e", "CLI=cli", "-e", "LAYERED=cli", "-e", "FLAGGED", h.busybox, "env"], env: env)
        #expect(r.status == 0, "\(r)")
        let vars = Dictionary(r.lines.compactMap { line -> (String, String)? in
            guard let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }, uniquingKeysWith: { a, _ in a })
        #expect(vars["FROM_SYS"] == "sys")
        #expect(vars["LAYERED"] == "cli", "--env wins over drop-ins")
        #expect(vars["DERIVED"] == "sys-derived")
        #expect(vars["PASSED"] == "from-host")
        #expect(vars["HOST_ONLY"] == "host", "host variables pass")
        #expect(vars["LD_PRELOAD"] == nil, "loader variables are denied")
        #expect(vars["IMAGE_VAR"] == "from-image", "the image's /etc/environment applies")
        #expect(vars["PATH"] == "/usr/local/bin:/usr/bin:/bin", "the image's PATH wins")
        #expect(vars["CLI"] == "cli")
        #expect(vars["FLAGGED"] == "host-value")
        #expect(vars["CAISSON_SYSCONF_PATH"] == nil)
    }

    @Test func hooksRunWithTheContainerAndCanAddEnvironmentAndMounts() throws {
        let shared = h.scratch("hook-shared")
        try "via-hook\n".write(toFile: "\(shared)/file", atomically: true, encoding: .utf8)
        h.chownTree(shared)
        let dirs = configDirs("""
        cat > $SYS/hooks.d/10-system <<'EOS'
        #!/bin/sh
        set -e
        echo "rootfs=$CAISSON_ROOTFS pid=$CAISSON_PID" > "$CAISSON_ROOTFS/tmp/hook-ran"
        echo "HOOK_VAR=from-hook" >> "$CAISSON_ENVIRON"
        echo "\(shared) /hooked none x-create=dir,rbind" >> "$CAISSON_MOUNTS"
        EOS
        chmod 755 $SYS/hooks.d/10-system
        cat > $USR/hooks.d/20-user <<'EOS'
        #!/bin/sh
        grep -q '^HOOK_VAR=' "$CAISSON_ENVIRON" && echo order-ok >> "$CAISSON_ROOTFS/tmp/hook-ran"
        EOS
        chmod 755 $USR/hooks.d/20-user
        echo 'not executable' > $SYS/hooks.d/30-ignored
        """)
        let env = ["CAISSON_SYSCONF_PATH": dirs.sys, "CAISSON_CONFIG_PATH": dirs.user]
        let r = h.caisson(["start", h.busybox, "sh", "-c", "cat /tmp/hook-ran; echo $HOOK_VAR; cat /hooked/file; echo pid=$$"], env: env)
        #expect(r.status == 0, "\(r)")
        let lines = r.lines
        #expect(lines.count == 5, "\(r)")
        if lines.count == 5 {
            #expect(lines[0].hasPrefix("rootfs=/") && lines[0].hasSuffix(lines[4]), "hook saw the container's pid, which is the command's: \(lines)")
            #expect(lines[1] == "order-ok")
            #expect(lines[2] == "from-hook")
            #expect(lines[3] == "via-hook")
        }
    }

    @Test func failingHookAbortsTheStartAndIsNamed() {
        let dirs = configDirs("printf '#!/bin/sh\\necho hook says no >&2\\nexit 3\\n' > $SYS/hooks.d/50-gpu; chmod 755 $SYS/hooks.d/50-gpu")
        let marker = h.scratch("never")
        let r = h.caisson(["start", "-m", "\(marker):/m", h.busybox, "touch", "/m/ran"], env: ["CAISSON_SYSCONF_PATH": dirs.sys])
        #expect(r.status == 125, "\(r)")
        #expect(r.stderr.contains("50-gpu") && r.stderr.contains("exit status 3"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: "\(marker)/ran"), "the command never ran")
    }

    @Test func configFileAndEnvironmentOverride() {
        let dirs = configDirs("""
        printf '# defaults for this site\\nCAISSON_MOUNT_HOME yes\\nCAISSON_REMAP_ROOT no\\n' > $SYS/caisson.conf
        """)
        let viaFile = h.caisson(["start", h.busybox, "sh", "-c", "test -d $HOME && echo home"], env: ["CAISSON_SYSCONF_PATH": dirs.sys])
        #expect(viaFile.stdout == "home\n", "\(viaFile)")
        let overridden = h.caisson(["start", h.busybox, "id", "-u"], env: ["CAISSON_SYSCONF_PATH": dirs.sys, "CAISSON_REMAP_ROOT": "yes"])
        #expect(overridden.stdout == "0\n", "the environment wins over the file: \(overridden)")
    }

    @Test func restrictedDev() {
        let r = h.caisson(["start", h.busybox, "sh", "-c", "ls /dev | sort | tr '\\n' ' '"], env: ["CAISSON_RESTRICT_DEV": "y"])
        #expect(r.status == 0, "\(r)")
        let names = Set(r.stdout.split(separator: " ").map(String.init))
        #expect(names.isSuperset(of: ["null", "zero", "urandom", "pts", "shm", "fd"]), "\(names)")
        #expect(!names.contains("autofs") && !names.contains("vda"), "host devices are absent: \(names)")
        let write = h.caisson(["start", h.busybox, "sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c"], env: ["CAISSON_RESTRICT_DEV": "y"])
        #expect(write.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "4", "\(write)")
    }
}
