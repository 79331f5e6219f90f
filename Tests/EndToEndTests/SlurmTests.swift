import Foundation
import Testing

/// The Slurm plugin on a real 3-node cluster (SlurmCluster), mirroring pyxis's test matrix:
/// srun, salloc and sbatch as the unprivileged test user, images from the registry and from
/// .sqsh files, mounts and escape attempts, names across steps, save, remap root, writable and
/// read-only, environment, entrypoint, multi-node, concurrent imports, MPI over PMIx, failures.
/// One cluster serves every test; they run one after another.
@Suite(.serialized, .enabled(if: SlurmCluster.available, "needs root, slurm-wlm and libslurm-dev"))
struct SlurmPlugin {
    var busybox: String { (try? SlurmCluster.ready().image("busybox:latest")) ?? "busybox" }

    @Test func multiNodeStepRunsInTheImageOnEveryNode() throws {
        let c = try SlurmCluster.ready()
        let r = c.srun(["-N3", "--container-image=\(busybox)", "sh", "-c", "echo $(hostname) $(head -1 /etc/os-release)"])
        #expect(r.status == 0, "\(r)")
        let lines = r.lines.sorted()
        #expect(lines == ["node1 NAME=\"Caisson test busybox\"", "node2 NAME=\"Caisson test busybox\"",
                          "node3 NAME=\"Caisson test busybox\""], "\(r)")
        // A step without the options runs on the host.
        let plain = c.srun(["-N1", "sh", "-c", "test -e /etc/debian_version && echo host"])
        #expect(plain.stdout == "host\n", "\(plain)")
    }

    @Test func imageFromASquashfsPathAbsoluteAndRelative() throws {
        let c = try SlurmCluster.ready()
        let image = c.sharedImage("sqsh-path", customize: "echo from-sqsh > $R/etc/marker")
        let absolute = c.srun(["--container-image=\(image)", "cat", "/etc/marker"])
        #expect(absolute.stdout == "from-sqsh\n", "\(absolute)")
        let relative = c.srun(["--container-image=./sqsh-path.sqsh", "cat", "/etc/marker"])
        #expect(relative.stdout == "from-sqsh\n", "relative to the job's directory: \(relative)")
    }

    @Test func mountsFlagsAndTmpfs() throws {
        let c = try SlurmCluster.ready()
        let source = "\(c.shared)/mount-src-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "data\n".write(toFile: source + "/file", atomically: true, encoding: .utf8)
        chmod(source, 0o777)
        let r = c.srun(["--container-image=\(busybox)",
                        "--container-mounts=\(source):/data:ro,\(source):/rw,tmpfs:/scratch",
                        "sh", "-c", "cat /data/file; touch /data/x 2>&1 | grep -c 'Read-only'; touch /rw/y && echo rw-ok; grep -c ' /scratch tmpfs' /proc/self/mounts"])
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["data", "1", "rw-ok", "1"], "\(r)")
        #expect(FileManager.default.fileExists(atPath: source + "/y"), "the rw bind writes through to the host")
    }

    @Test func mountsCannotReadWhatTheUserCannotAndDoNotEscape() throws {
        let c = try SlurmCluster.ready()
        // Caisson runs as the user: /etc/shadow can be bound but not read.
        let shadow = c.srun(["--container-image=\(busybox)", "--container-mounts=/etc/shadow:/x", "cat", "/x"])
        #expect(shadow.status != 0 && shadow.stderr.contains("Permission denied"), "\(shadow)")
        // A destination climbing out with .. or through an image symlink stays in the container.
        let outside = "\(c.dir)/escape-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        chmod(outside, 0o777)
        let image = c.sharedImage("escape", customize: "ln -s \(outside) $R/link")
        let climb = c.srun(["--container-image=\(image)", "--container-mounts=/etc/hostname:/../../../..\(outside)/climbed",
                            "--container-mounts=/etc/hostname:/link/planted", "sh", "-c", "true"])
        _ = climb
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: outside)) ?? ["?"]).isEmpty,
                "nothing was created on the host: \(climb)")
        // A missing source fails the step at the mounts stage.
        let missing = c.srun(["--container-image=\(busybox)", "--container-mounts=/nonexistent-src:/x", "true"])
        #expect(missing.status != 0 && missing.stderr.contains("caisson: start: mounts:"), "\(missing)")
        // Supplementary groups are kept: a directory only the test user's extra group may enter.
        let group = c.srun(["--container-image=\(busybox)", "--container-mounts=\(c.groupOnly)/inner:/g", "cat", "/g/file"])
        #expect(group.stdout == "group-only\n", "\(group)")
    }

    @Test func workdirExplicitAndInherited() throws {
        let c = try SlurmCluster.ready()
        let explicit = c.srun(["--container-image=\(busybox)", "--container-workdir=/tmp", "pwd"])
        #expect(explicit.stdout == "/tmp\n", "\(explicit)")
        let missing = c.srun(["--container-image=\(busybox)", "--container-workdir=/nope", "pwd"])
        #expect(missing.status != 0 && missing.stderr.contains("workdir"), "\(missing)")
        // The job's directory, when the container has it (here: bound at the same path).
        let inherited = c.srun(["--container-image=\(busybox)", "--container-mounts=\(c.shared)", "pwd"])
        #expect(inherited.stdout == "\(c.shared)\n", "\(inherited)")
        let absent = c.srun(["--container-image=\(busybox)", "pwd"])
        #expect(absent.stdout == "/\n", "\(absent)")
    }

    @Test func namedContainersAcrossStepsAutoCreateExecNoExec() throws {
        let c = try SlurmCluster.ready()
        // container_scope=job: names live for the job (salloc here) and go with its epilog.
        let r = c.sh("""
        salloc -N1 sh -c '
          srun --container-image=\(busybox) --container-name=keep sh -c "echo kept > /kept"
          echo "reuse: $(srun --container-name=keep cat /kept)"
          srun --container-name=keep:create true 2>/dev/null; echo "create-existing: $?"
          srun --container-name=fresh:create --container-image=\(busybox) true; echo "create-new: $?"
          srun --container-name=nothere:exec true 2>/dev/null; echo "exec-not-running: $?"
          srun --container-name=keep sh -c "echo live > /tmp/live; sleep 6" &
          sleep 3
          echo "exec: $(srun --overlap --container-name=keep:exec cat /tmp/live)"
          echo "auto joins: $(srun --overlap --container-name=keep cat /tmp/live)"
          echo "no_exec: $(srun --overlap --container-name=keep:no_exec sh -c "cat /tmp/live 2>/dev/null || cat /kept")"
          wait
          echo "job $SLURM_JOB_ID"
        '
        """)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.contains("reuse: kept"), "\(r)")
        #expect(r.lines.contains("create-existing: 1"), "\(r)")
        #expect(r.lines.contains("create-new: 0"), "\(r)")
        #expect(r.lines.contains("exec-not-running: 1"), "\(r)")
        #expect(r.lines.contains("exec: live"), "joined the running container's mount namespace: \(r)")
        #expect(r.lines.contains("auto joins: live"), "\(r)")
        #expect(r.lines.contains("no_exec: kept"), "its own container from the same root filesystem: \(r)")
        let job = r.lines.first { $0.hasPrefix("job ") }.map { String($0.dropFirst(4)) } ?? "?"
        // pyxis's names, so that pyxis users find them; removed by the job's epilog.
        var left: [String] = []
        for _ in 0..<50 {
            left = ((try? FileManager.default.contentsOfDirectory(atPath: c.data)) ?? []).filter { $0.hasPrefix("pyxis_\(job)_") }
            if left.isEmpty { break }
            usleep(100_000)
        }
        #expect(left.isEmpty, "container_scope=job names are removed by the epilog: \(left)")
        let missing = c.srun(["--container-name=neverexisted", "true"])
        #expect(missing.status != 0 && missing.stderr.contains("does not exist and --container-image is not set"), "\(missing)")
    }

    @Test func saveExportsBeforeTheStepEnds() throws {
        let c = try SlurmCluster.ready()
        let saved = "\(c.shared)/saved-\(UUID().uuidString.prefix(6)).sqsh"
        let r = c.srun(["--container-image=\(busybox)", "--container-save=\(Path.basename(saved))",
                        "sh", "-c", "echo saved-marker > /marker"])
        #expect(r.status == 0, "\(r)")
        #expect(FileManager.default.fileExists(atPath: saved), "saved when srun returned: \(r)")
        let again = c.srun(["--container-image=\(saved)", "cat", "/marker"])
        #expect(again.stdout == "saved-marker\n", "\(again)")
        let temporaries = ((try? FileManager.default.contentsOfDirectory(atPath: c.data)) ?? []).filter { $0.contains("caisson-step_") }
        #expect(temporaries.isEmpty, "the temporary container is removed: \(temporaries)")
    }

    /// On several nodes: a plain path is written by the step's first node only; %N gives one file
    /// per node, each with that node's changes.
    @Test func saveOnSeveralNodes() throws {
        let c = try SlurmCluster.ready()
        let tag = UUID().uuidString.prefix(6)
        let single = "\(c.shared)/saved-one-\(tag).sqsh"
        let one = c.srun(["-N3", "--container-image=\(busybox)", "--container-save=\(single)",
                          "sh", "-c", "hostname > /marker"])
        #expect(one.status == 0, "\(one)")
        let first = c.srun(["--container-image=\(single)", "cat", "/marker"])
        #expect(first.stdout == "node1\n", "the first node's container: \(first)")
        let perNode = c.srun(["-N3", "--container-image=\(busybox)", "--container-save=\(c.shared)/saved-\(tag)-%N.sqsh",
                              "sh", "-c", "hostname > /marker"])
        #expect(perNode.status == 0, "\(perNode)")
        for node in ["node1", "node2", "node3"] {
            let r = c.srun(["--container-image=\(c.shared)/saved-\(tag)-\(node).sqsh", "cat", "/marker"])
            #expect(r.stdout == "\(node)\n", "\(node): \(r)")
        }
    }

    @Test func remapRootAndItsEnvironmentVariable() throws {
        let c = try SlurmCluster.ready()
        let root = c.srun(["--container-image=\(busybox)", "--container-remap-root", "sh", "-c", "id -u; cat /proc/self/uid_map; chown 0:0 /tmp && echo chown-ok"])
        #expect(root.lines.first == "0" && root.lines.last == "chown-ok", "\(root)")
        #expect(root.lines.dropFirst().first?.split(separator: " ").map(String.init) == ["0", "\(c.h.uid)", "1"], "\(root)")
        let user = c.srun(["--container-image=\(busybox)", "id", "-u"])
        #expect(user.stdout == "\(c.h.uid)\n", "\(user)")
        let env = c.srun(["--container-image=\(busybox)", "id", "-u"], env: ["PYXIS_CONTAINER_REMAP_ROOT": "1"])
        #expect(env.stdout == "0\n", "\(env)")
        let cli = c.srun(["--container-image=\(busybox)", "--no-container-remap-root", "id", "-u"], env: ["PYXIS_CONTAINER_REMAP_ROOT": "1"])
        #expect(cli.stdout == "\(c.h.uid)\n", "the command line wins: \(cli)")
    }

    @Test func mountHomeOnRequest() throws {
        let c = try SlurmCluster.ready()
        let home = c.srun(["--container-image=\(busybox)", "--container-mount-home", "sh", "-c", "test -d \(c.h.home) && echo mounted"])
        #expect(home.stdout == "mounted\n", "\(home)")
        let none = c.srun(["--container-image=\(busybox)", "--no-container-mount-home", "sh", "-c", "test -d \(c.h.home) || echo absent"])
        #expect(none.stdout == "absent\n", "\(none)")
    }

    @Test func oneSetupPerNodeWhateverTheNumberOfTasks() throws {
        let c = try SlurmCluster.ready()
        let before = c.probeNames()
        let r = c.srun(["-N1", "-n2", "--overcommit", "--container-image=\(busybox)", "sh", "-c", "echo $SLURM_PROCID $(cat /proc/1/comm 2>/dev/null | wc -l)"])
        #expect(r.status == 0 && r.lines.count == 2, "\(r)")
        let runs = c.probeRecords(after: before).compactMap { $0.split(separator: "\n").first }.map { String($0.split(separator: " ")[1]) }
        // (Job epilogs of earlier tests may run `caisson list` meanwhile: container_scope=job.)
        #expect(runs.filter { $0 != "list" }.sorted() == ["import", "start"], "one import and one container for the node's tasks: \(runs)")
    }

    @Test func writableByDefaultReadOnlyOnRequest() throws {
        let c = try SlurmCluster.ready()
        let writable = c.srun(["--container-image=\(busybox)", "sh", "-c", "touch /newfile && echo ok"])
        #expect(writable.stdout == "ok\n", "\(writable)")
        let readonly = c.srun(["--container-image=\(busybox)", "--container-readonly", "touch", "/newfile"])
        #expect(readonly.status != 0 && readonly.stderr.contains("Read-only file system"), "\(readonly)")
        let env = c.srun(["--container-image=\(busybox)", "touch", "/newfile"], env: ["CAISSON_CONTAINER_WRITABLE": "0"])
        #expect(env.status != 0 && env.stderr.contains("Read-only file system"), "\(env)")
    }

    @Test func environmentImageWinsContainerEnvKeepsSlurmStays() throws {
        let c = try SlurmCluster.ready()
        let r = c.srun(["-n2", "--container-image=\(busybox)", "sh", "-c",
                        "echo \"$SLURM_PROCID|$GREETING|$FOO|${LD_LIBRARY_PATH-unset}|$PATH\""],
                       env: ["GREETING": "from the job", "FOO": "bar", "LD_LIBRARY_PATH": "/host/lib"])
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.sorted() == ["0|hello from the image|bar|unset|/usr/local/bin:/usr/bin:/bin",
                                     "1|hello from the image|bar|unset|/usr/local/bin:/usr/bin:/bin"], "\(r)")
        let kept = c.srun(["--container-image=\(busybox)", "--container-env=GREETING,LD_LIBRARY_PATH", "sh", "-c",
                           "echo \"$GREETING|$LD_LIBRARY_PATH\""], env: ["GREETING": "from the job", "LD_LIBRARY_PATH": "/host/lib"])
        #expect(kept.stdout == "from the job|/host/lib\n", "\(kept)")
        let byVariable = c.srun(["sh", "-c", "head -1 /etc/os-release"], env: ["PYXIS_CONTAINER_IMAGE": busybox])
        #expect(byVariable.stdout == "NAME=\"Caisson test busybox\"\n", "\(byVariable)")
        let workdir = c.srun(["--container-image=\(busybox)", "pwd"], env: ["CAISSON_CONTAINER_WORKDIR": "/etc", "PYXIS_CONTAINER_WORKDIR": "/tmp"])
        #expect(workdir.stdout == "/etc\n", "Caisson's spelling wins over pyxis's: \(workdir)")
    }

    @Test func entrypointOnlyWhenAsked() throws {
        let c = try SlurmCluster.ready()
        let image = c.sharedImage("entrypoint", customize: """
        printf '#!/bin/sh\\nexport FROM_ENTRYPOINT=yes\\necho entrypoint-output\\necho ran > /tmp/entrypoint-ran\\nexec "$@"\\n' > $R/etc/rc
        """)
        let on = c.srun(["--container-image=\(image)", "--container-entrypoint", "sh", "-c", "echo $FROM_ENTRYPOINT; cat /tmp/entrypoint-ran"])
        #expect(on.lines == ["yes", "ran"], "\(on)")
        #expect(!on.stdout.contains("entrypoint-output") && !on.stderr.contains("entrypoint-output"), "quiet without the log flag: \(on)")
        let log = c.srun(["--container-image=\(image)", "--container-entrypoint", "--container-entrypoint-log", "true"])
        #expect(log.status == 0 && (log.stdout + log.stderr).contains("entrypoint-output"), "\(log)")
        let off = c.srun(["--container-image=\(image)", "sh", "-c", "echo ${FROM_ENTRYPOINT-unset}; ls /tmp"])
        #expect(off.lines == ["unset"], "\(off)")
    }

    /// An entrypoint must exec its arguments (the tasks join the process it execs into): one that
    /// runs them as a child, or never runs them, fails the step saying so; nothing hangs and the
    /// task never runs. The test cluster's plugstack sets entrypoint_timeout=6.
    @Test func entrypointThatDoesNotExecItsArgumentsFailsTheStep() throws {
        let c = try SlurmCluster.ready()
        let child = c.sharedImage("entrypoint-child", customize: """
        printf '#!/bin/sh\\n"$@"\\necho entrypoint-continued\\n' > $R/etc/rc
        """)
        let r = c.srun(["--container-image=\(child)", "--container-entrypoint", "echo", "task-ran"])
        #expect(r.status != 0 && !r.stdout.contains("task-ran"), "\(r)")
        #expect(r.stderr.contains("ran its arguments in a child process") && r.stderr.contains("exec \"$@\""), "\(r)")
        let never = c.sharedImage("entrypoint-never", customize: """
        printf '#!/bin/sh\\nexec sleep 1000\\n' > $R/etc/rc
        """)
        let started = Date()
        let stuck = c.srun(["--container-image=\(never)", "--container-entrypoint", "echo", "task-ran"])
        #expect(stuck.status != 0 && !stuck.stdout.contains("task-ran"), "\(stuck)")
        #expect(stuck.stderr.contains("did not run the step's command within 6 s"), "\(stuck)")
        #expect(Date().timeIntervalSince(started) < 60, "the timeout ended the setup")
    }

    @Test func sbatchRunsTheBatchScriptInTheContainer() throws {
        let c = try SlurmCluster.ready()
        let out = "\(c.shared)/batch-\(UUID().uuidString.prefix(6)).out"
        let script = "\(c.shared)/batch-\(UUID().uuidString.prefix(6)).sh"
        try """
        #!/bin/sh
        #SBATCH --container-image=\(busybox)
        #SBATCH -o \(out)
        head -1 /etc/os-release
        echo "script $0 ran as $(id -u)"

        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let r = c.run(["/usr/bin/sbatch", "--wait", script])
        #expect(r.status == 0, "\(r)")
        let output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(output.hasPrefix("NAME=\"Caisson test busybox\"\nscript /"), "\(output)")
        #expect(output.contains("slurm_script ran as \(c.h.uid)"), "\(output)")
    }

    @Test func sallocThenSrun() throws {
        let c = try SlurmCluster.ready()
        let r = c.sh("salloc -N2 srun --container-image=\(busybox) sh -c 'echo $(hostname) $GREETING'")
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.sorted() == ["node1 hello from the image", "node2 hello from the image"], "\(r)")
    }

    @Test func concurrentStepsImportOneImageOnce() throws {
        let c = try SlurmCluster.ready()
        // A fresh cache (user_paths allows CAISSON_CACHE_PATH): nine cold imports of one image at once.
        let cache = c.h.scratch("slurm-concurrent-cache")
        let r = c.sh("""
        salloc -N3 sh -c '
          for i in 1 2 3; do srun --overlap -N3 --container-image=\(c.image("mpi:latest")) sh -c "test -x /usr/local/bin/mpi-bcast && echo ok" & done
          wait'
        """, env: ["CAISSON_CACHE_PATH": cache], timeout: 300)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.filter { $0 == "ok" }.count == 9, "\(r)")
        let images = ((try? FileManager.default.contentsOfDirectory(atPath: cache + "/images")) ?? []).filter { $0.hasSuffix(".sqsh") }
        #expect(images.count == 1, "one image in the cache: \(images)")
    }

    @Test func mpiBroadcastAcrossThreeNodesOverPMIx() throws {
        let c = try SlurmCluster.ready()
        let r = c.srun(["-N3", "--mpi=pmix", "--container-image=\(c.image("mpi:latest"))", "mpi-bcast", "200"],
                       env: ["OMPI_MCA_mpi_yield_when_idle": "1"], timeout: 300)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.contains("bcast ok ranks=3 hosts=3"), "\(r)")
        #expect(!r.stderr.contains("PMIX ERROR"), "the PMIx server directory is reachable in the container: \(r)")
    }

    /// slurmstepd holds a cancel until the tasks launch; the plugin asks slurmctld while an
    /// import runs and stops it when the job has ended, so a job cancelled while its image hangs
    /// in a registry leaves the node in seconds instead of when the registry gives up.
    @Test func cancellingAJobStopsItsImport() throws {
        let c = try SlurmCluster.ready()
        let name = "cancel-\(UUID().uuidString.prefix(6))"
        let r = c.sh("""
        srun -J \(name) --container-image=\(c.stallingRegistry)#busybox:latest true 2>srun.err.\(name) & s=$!
        i=0; until pgrep -u $(id -u) -f "caisson-[i]mport import --cached -q docker://\(c.stallingRegistry)" >/dev/null; do
            i=$((i+1)); [ $i -lt 100 ] || { echo "no import started"; exit 1; }; sleep 0.1; done
        job=$(squeue -h -n \(name) -o %i)
        start=$(date +%s)
        scancel $job
        i=0; while squeue -h -j $job 2>/dev/null | grep -q .; do
            i=$((i+1)); [ $i -lt 600 ] || break; sleep 0.1; done
        echo "gone after $(( $(date +%s) - start )) s"
        pgrep -u $(id -u) -f "caisson-[i]mport import --cached -q docker://\(c.stallingRegistry)" >/dev/null && echo "import still running"
        wait $s; true
        """, timeout: 120)  // [i]: the pattern must not match this script's own command line
        let gone = r.lines.first { $0.hasPrefix("gone after ") }.flatMap { Int($0.split(separator: " ")[2]) }
        #expect(gone != nil && gone! <= 20, "the job left the node soon after scancel (CAISSON_STALL_TIMEOUT is 60 s): \(r)")
        #expect(!r.stdout.contains("import still running") && !r.stdout.contains("no import started"), "\(r)")
    }

    @Test func failedSetupFailsTheStepAndNeverRunsOutside() throws {
        let c = try SlurmCluster.ready()
        let marker = "\(c.shared)/ran-outside-\(UUID().uuidString.prefix(6))"
        let r = c.srun(["-N2", "--container-image=\(c.image("doesnotexist:latest"))", "touch", marker])
        #expect(r.status != 0, "\(r)")
        #expect(r.stderr.contains("caisson: spank: import:") && r.stderr.contains("not found"), "names the stage: \(r)")
        #expect(!FileManager.default.fileExists(atPath: marker), "the task never ran outside the container")
        let bad = c.srun(["--container-image=\(busybox)", "--container-name=bad/name", "true"])
        #expect(bad.status != 0 && bad.stderr.contains("not a valid container name"), "\(bad)")
    }

    @Test func caissonRunsAsTheUserWithGroupsNoInheritedDescriptorsAndASanitisedEnvironment() throws {
        let c = try SlurmCluster.ready()
        let before = c.probeNames()
        let r = c.srun(["-N3", "--container-image=\(busybox)", "true"],
                       env: ["LD_LIBRARY_PATH": "/tmp/evil", "CAISSON_SYSCONF_PATH": "/nonexistent", "CAISSON_DATA_PATH": "/tmp/evil-data",
                             "PATH": "/tmp/evil-bin:/usr/bin:/bin"])
        #expect(r.status == 0, "the site's configuration still applies: \(r)")
        let records = c.probeRecords(after: before)
        #expect(records.count >= 3, "\(records)")
        for record in records {
            let fields = Dictionary(record.split(separator: "\n").compactMap { line -> (String, String)? in
                guard let space = line.firstIndex(of: " ") else { return nil }
                return (String(line[..<space]), String(line[line.index(after: space)...]))
            }, uniquingKeysWith: { a, b in a + "\n" + b })
            #expect(fields["uid"] == "\(c.h.uid) \(c.h.uid) \(c.h.uid)", "\(record)")
            #expect(fields["gid"] == "\(c.h.gid) \(c.h.gid) \(c.h.gid)", "\(record)")
            #expect(Set((fields["groups"] ?? "").split(separator: " ").map(String.init)) == ["\(c.h.gid)", "\(c.extraGID)"], "\(record)")
            #expect(fields["fds"] == "0 1 2", "nothing of slurmstepd's is inherited: \(record)")
            let env = fields["env"] ?? ""
            #expect(!env.contains("LD_LIBRARY_PATH") && !env.contains("CAISSON_SYSCONF_PATH") && !env.contains("CAISSON_DATA_PATH"), "\(record)")
            #expect(!env.contains("/tmp/evil-bin"), "\(record)")
            #expect(env.contains("CAISSON_RUNTIME_PATH=/run/caisson/\(c.h.uid)"), "\(record)")
        }
    }
}

private enum Path {
    static func basename(_ path: String) -> String { URL(fileURLWithPath: path).lastPathComponent }
}
