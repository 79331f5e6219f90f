import CaissonSlurm
import Foundation
import Testing

@Suite struct StepModelTests {
    static func job(_ env: [(String, String)] = [], batch: Bool = false) -> StepModel.Job {
        var job = StepModel.Job(jobID: 42, stepID: batch ? 0xffff_fffb : 3, isBatch: batch, node: "node2", cwd: "/home/u/work",
                                batchScript: batch ? "/var/spool/slurmd/job00042/slurm_script" : nil,
                                environment: env.map { (name: $0.0, value: $0.1) })
        job.uid = 1001
        job.spoolDirectory = "/var/spool/slurm/%n"
        job.tmpFS = "/tmp"
        job.usesPMIx = !batch
        return job
    }

    static func model(_ configure: (inout ContainerOptions) throws -> Void, config: PlugstackConfig = PlugstackConfig(),
                      job: StepModel.Job = job()) rethrows -> StepModel {
        var options = ContainerOptions()
        try configure(&options)
        return StepModel(options: options, config: config, job: job)
    }

    @Test func sources() throws {
        #expect(try Self.model { try $0.apply(.image, "ubuntu:24.04") }.source == .registry("docker://ubuntu:24.04"))
        #expect(try Self.model { try $0.apply(.image, "nvcr.io#nvidia/pytorch:24.05") }.source == .registry("docker://nvcr.io#nvidia/pytorch:24.05"))
        #expect(try Self.model { try $0.apply(.image, "oci:///srv/layout:1") }.source == .registry("oci:///srv/layout:1"))
        #expect(try Self.model { try $0.apply(.image, "/srv/img.sqsh") }.source == .squashfs("/srv/img.sqsh"))
        #expect(try Self.model { try $0.apply(.image, "./img.sqsh") }.source == .squashfs("/home/u/work/img.sqsh"))
        #expect(try Self.model { try $0.apply(.image, "../img.sqsh") }.source == .squashfs("/home/u/work/../img.sqsh"))
        #expect(try Self.model { try $0.apply(.name, "x") }.source == nil)
    }

    @Test func namesFollowPyxis() throws {
        var job = PlugstackConfig()
        job.scope = .job
        #expect(try Self.model { try $0.apply(.name, "dev") }.containerName == "pyxis_dev")
        #expect(try Self.model({ try $0.apply(.name, "dev") }, config: job).containerName == "pyxis_42_dev")
        #expect(StepModel.jobScopePrefix(jobID: 42) == "pyxis_42_")
        let save = try Self.model { try $0.apply(.image, "a"); try $0.apply(.save, "out.sqsh") }
        #expect(save.temporaryName == "caisson-step_42.3_node2")
        #expect(save.savePath == "/home/u/work/out.sqsh")
        #expect(try Self.model { try $0.apply(.name, "n"); try $0.apply(.save, "/o.sqsh") }.temporaryName == nil)
    }

    /// One file per node with %N or %n; one path without them, written by the step's first node only.
    @Test func saveOnSeveralNodes() throws {
        var second = Self.job()
        second.nodeID = 1
        func save(_ path: String, on job: StepModel.Job) throws -> StepModel {
            try Self.model({ try $0.apply(.image, "a"); try $0.apply(.save, path) }, job: job)
        }
        #expect(try save("out.sqsh", on: Self.job()).savePath == "/home/u/work/out.sqsh")
        #expect(try save("out.sqsh", on: second).savePath == nil)
        #expect(try save("out.sqsh", on: second).temporaryName == nil, "nothing to save: no directory-backed container")
        #expect(try save("/s/%N-%n.sqsh", on: second).savePath == "/s/node2-1.sqsh")
        #expect(try save("/s/%N-%n.sqsh", on: second).temporaryName == "caisson-step_42.3_node2")
        #expect(try save("/s/100%%-%x%", on: Self.job()).savePath == "/s/100%-%x%")
        #expect(try save("/s/100%%.sqsh", on: second).savePath == nil, "%% alone is not per node")
    }

    @Test func namedActions() throws {
        func action(_ flag: String, image: Bool = true, exists: Bool, running: [Int32] = []) throws -> StepModel.NamedAction {
            try Self.model { o in
                try o.apply(.name, "n:\(flag)")
                if image { try o.apply(.image, "busybox") }
            }.namedAction(exists: exists, running: running)
        }
        #expect(try action("auto", exists: true, running: [7]) == .join(7))
        #expect(try action("auto", exists: true) == .start)
        #expect(try action("auto", exists: false) == .create)
        #expect(throws: PluginError.self) { try action("auto", image: false, exists: false) }
        #expect(try action("create", exists: false) == .create)
        #expect(throws: PluginError.self) { try action("create", exists: true) }
        #expect(try action("exec", exists: true, running: [9]) == .join(9))
        #expect(throws: PluginError.self) { try action("exec", exists: true) }
        #expect(try action("no_exec", exists: true, running: [9]) == .start)
        #expect(try action("no_exec", exists: false, running: []) == .create)
    }

    @Test func startArguments() throws {
        let model = try Self.model({ o in
            try o.apply(.image, "busybox")
            try o.apply(.mounts, "data:/data:ro,/abs:/abs,tmpfs:/scratch,/same")
            try o.apply(.remapRoot, nil)
            try o.apply(.mountHome, nil)
            try o.apply(.workdir, "/w")
            try o.apply(.environment, "KEEP,MISSING")
        }, job: Self.job([("KEEP", "job value"), ("SLURM_MPI_TYPE", "pmix")]))
        #expect(model.startArguments(target: "/c/img.sqsh") == [
            "start", "--park", "--rw", "--root", "--mount-home",
            "-m", "/home/u/work/data:/data:ro", "-m", "/abs:/abs", "-m", "tmpfs:/scratch", "-m", "/same",
            "-m", "/var/spool/slurm/node2:/var/spool/slurm/node2:x-create=dir+rbind+nosuid+nodev",
            "-m", "/tmp/spmix_appdir_1001_42.3:/tmp/spmix_appdir_1001_42.3:x-create=dir+rbind+nosuid+nodev",
            "-e", "KEEP=job value", "-w", "/w", "/c/img.sqsh",
        ])
        let plain = try Self.model { o in try o.apply(.image, "busybox"); try o.apply(.readonly, nil); try o.apply(.noMountHome, nil) }
        #expect(plain.startArguments(target: "T").prefix(3) == ["start", "--park", "--no-mount-home"])
    }

    @Test func entrypointRunsAStoppingShellInsteadOfParking() throws {
        var config = PlugstackConfig()
        config.executeEntrypoint = true
        let byDefault = try Self.model({ try $0.apply(.image, "a") }, config: config)
        #expect(byDefault.runsEntrypoint)
        #expect(byDefault.startArguments(target: "T").suffix(5) == ["--entrypoint", "T", "/bin/sh", "-c", "kill -STOP $$; exit 0"])
        #expect(!byDefault.startArguments(target: "T").contains("--park"))
        let off = try Self.model({ try $0.apply(.image, "a"); try $0.apply(.noEntrypoint, nil) }, config: config)
        #expect(!off.runsEntrypoint && off.startArguments(target: "T").contains("--park"))
    }

    /// The stopping shell run by an entrypoint that did not exec it (its parent is not
    /// slurmstepd) ends that entrypoint and says why, rather than stopping where nobody waits.
    @Test func entrypointStopEndsAnEntrypointThatDidNotExecIt() throws {
        var config = PlugstackConfig()
        config.executeEntrypoint = true
        var job = Self.job()
        job.stepdPID = 1  // never this shell's parent
        let stop = try Self.model({ try $0.apply(.image, "a") }, config: config, job: job).entrypointStop
        let entrypoint = Process()
        entrypoint.executableURL = URL(fileURLWithPath: "/bin/sh")
        entrypoint.arguments = ["-c", "/bin/sh -c \"$1\"; echo still-running", "entrypoint", stop]
        let stdout = Pipe(), stderr = Pipe()
        entrypoint.standardOutput = stdout
        entrypoint.standardError = stderr
        try entrypoint.run()
        entrypoint.waitUntilExit()
        let said = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(entrypoint.terminationReason == .uncaughtSignal && entrypoint.terminationStatus == SIGKILL)
        #expect(stdout.fileHandleForReading.readDataToEndOfFile().isEmpty)
        #expect(said.contains("caisson: start: the image's entrypoint ran its arguments in a child process")
                && said.contains("end it with 'exec \"$@\"'"), "\(said)")
    }

    @Test func batchScriptIsBoundReadOnlyAndPMIxOverridesAreHonoured() throws {
        let batch = try Self.model({ try $0.apply(.image, "a") }, job: Self.job(batch: true))
        #expect(batch.mounts == ["/var/spool/slurmd/job00042/slurm_script:/var/spool/slurmd/job00042/slurm_script:x-create=file+bind+ro+nosuid+nodev+private"])
        let overridden = try Self.model({ try $0.apply(.image, "a") },
                                        job: Self.job([("SLURM_PMIX_SRV_TMPDIR", "/srv/pmix/"), ("SLURM_PMIX_TMPDIR", "/scratch")]))
        #expect(overridden.pmixServerDirectory == "/srv/pmix/pmix.42.3")
        #expect(overridden.pmixDirectories == ["/srv/pmix", "/scratch/spmix_appdir_1001_42.3"])
        var noPMIx = Self.job()
        noPMIx.usesPMIx = false
        #expect(try Self.model({ try $0.apply(.image, "a") }, job: noPMIx).pmixDirectories.isEmpty)
    }
}
