import CSpank
import CaissonRuntime
import CaissonSlurm
import CaissonStore
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// The container of one step on one node, as user_init left it for the tasks (which are forked
/// from slurmstepd afterwards and so inherit this state) and for the step's end.
struct StepContainer {
    /// The process whose namespaces every task joins.
    var pid: Int32
    /// Whether this step started it (and so stops it); false when it joined another step's.
    var owned: Bool
    /// The container's environment, as it reported it.
    var environment: [(name: String, value: String)]
    /// A `--root` container: tasks get the fakeroot seccomp filter.
    var fakeroot: Bool
    /// The caisson name it runs under, if any (named, or temporary for --container-save).
    var name: String?
    /// A temporary container to remove at the end of the step.
    var temporary: Bool
    /// Where to export it at the end of the step.
    var savePath: String?
    /// Where this step recorded the environment for `exec` joins from other steps.
    var environmentRecord: String?
}

/// user_init: everything that happens once per node and step, in slurmstepd, before any task
/// exists. slurmstepd is then running with the user's effective uid and groups (it dropped them
/// for user_init), so the few files the plugin touches itself are touched as the user; caisson
/// runs as the user entirely (CaissonProcess).
struct StepSetup {
    let model: StepModel
    let caisson: CaissonProcess
    /// The user's Caisson runtime directory the plugin made (runtime_path/UID), if configured.
    let runtimeDirectory: String?

    func run() throws(PluginError) -> StepContainer {
        var name: String? = model.containerName
        var temporary = false
        var target: String
        if model.containerName != nil {
            let existing = try containerNames()
            let running = runtimeDirectory.map { RunningContainers(directory: "\($0)/running").pids(of: name!) } ?? []
            switch try model.namedAction(exists: existing.contains(name!), running: running) {
            case .join(let pid):
                Log.info("caisson: joining running container \(name!) (pid \(pid))")
                return try join(pid: pid, name: name!)
            case .start:
                Log.info("caisson: reusing container \(name!)")
            case .create:
                try create(name!, from: try image(), alreadyCreatedIsFine: model.options.nameFlag != .create)
            }
            target = name!
        } else if let temporaryName = model.temporaryName {
            try? remove(temporaryName)  // a leftover of a killed step with the same ids
            try create(temporaryName, from: try image(), alreadyCreatedIsFine: false)
            name = temporaryName
            temporary = true
            target = temporaryName
        } else {
            target = try image()
        }
        do {
            var parked = try start(target)
            parked.name = name
            parked.temporary = temporary
            parked.savePath = model.savePath
            if model.containerName != nil, let name { parked.environmentRecord = record(parked, name: name) }
            return parked
        } catch {
            if temporary, let name { try? remove(name) }
            throw error
        }
    }

    /// The .sqsh to start or create from: imported into the user's image cache unless it is a file.
    func image() throws(PluginError) -> String {
        switch model.source {
        case .squashfs(let path)?:
            return path
        case .registry(let uri)?:
            let result = try caisson.run(["import", "--cached", "-q", uri], abandonIf: jobEnded)
            for line in result.stderr where !line.isEmpty { Log.info(line) }
            if result.abandoned {
                throw PluginError(.import, "the job ended (cancelled or out of time) while importing \(uri): the import was stopped")
            }
            let path = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            guard result.succeeded, path.hasPrefix("/") else {
                throw PluginError(.import, "importing \(uri) failed (\(CaissonProcess.describe(exitCode: result.status)))",
                                  details: result.stderr)
            }
            return path
        case nil:
            throw PluginError(.import, "no --container-image to make the container from")
        }
    }

    /// Whether slurmctld says the job has stopped running. slurmstepd answers a cancel only once
    /// the tasks launch; until then this is how a long import or create learns of it.
    func jobEnded() -> Bool { cspank_job_ended(model.job.jobID) == 1 }

    func containerNames() throws(PluginError) -> Set<String> {
        let result = try caisson.run(["list"])
        guard result.succeeded else {
            throw PluginError(.name, "listing containers failed (\(CaissonProcess.describe(exitCode: result.status)))",
                              details: result.stderr)
        }
        return Set(String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").map(String.init))
    }

    func create(_ name: String, from image: String, alreadyCreatedIsFine: Bool) throws(PluginError) {
        Log.info("caisson: creating container \(name) from \(image)")
        let result = try caisson.run(["create", "--quiet", "--name", name, image], abandonIf: jobEnded)
        if result.succeeded { return }
        if result.abandoned {
            throw PluginError(.create, "the job ended (cancelled or out of time) while creating container \(name): the create was stopped")
        }
        // Several nodes (or steps) may create one name at once; one wins, the others reuse it.
        if alreadyCreatedIsFine, (try? containerNames())?.contains(name) == true { return }
        throw PluginError(.create, "creating container \(name) failed (\(CaissonProcess.describe(exitCode: result.status)))",
                          details: result.stderr)
    }

    func remove(_ name: String) throws(PluginError) {
        let result = try caisson.run(["remove", "-f", name])
        guard result.succeeded else {
            throw PluginError(.cleanup, "removing container \(name) failed", details: result.stderr)
        }
    }

    func start(_ target: String) throws(PluginError) -> StepContainer {
        let arguments = model.startArguments(target: target)
        Log.debug("caisson: running \(caisson.program) \(arguments.joined(separator: " "))")
        let log = model.options.entrypointLog == true && model.runsEntrypoint
        let parked = try caisson.park(arguments, printsEnvironment: !model.runsEntrypoint,
                                      entrypointTimeout: model.config.entrypointTimeout)
        for line in parked.stderr where !line.isEmpty {
            if log { Log.user(line) } else { Log.info(line) }
        }
        let environment: [(name: String, value: String)]
        if model.runsEntrypoint {
            // The entrypoint exec'd the stopping shell: its environment is what the entrypoint made.
            environment = StepSetup.processEnvironment(parked.pid)
        } else {
            environment = EnvironmentRules.parseNulSeparated(parked.printed)
        }
        return StepContainer(pid: parked.pid, owned: true, environment: environment,
                             fakeroot: model.options.remapRoot == true || ContainerJoin(pid: parked.pid).isFakeroot(),
                             name: nil, temporary: false, savePath: nil, environmentRecord: nil)
    }

    /// Another step's running container (--container-name with auto or exec).
    func join(pid: Int32, name: String) throws(PluginError) -> StepContainer {
        if !model.options.mounts.isEmpty {
            Log.user("caisson: ignoring --container-mounts: joining running container \(name)")
        }
        var environment = runtimeDirectory.flatMap { StepSetup.readRecord("\($0)/spank/\(name)@\(pid).environ") } ?? []
        if environment.isEmpty { environment = StepSetup.processEnvironment(pid) }
        return StepContainer(pid: pid, owned: false, environment: environment,
                             fakeroot: ContainerJoin(pid: pid).isFakeroot(), name: name, temporary: false,
                             savePath: model.savePath, environmentRecord: nil)
    }

    /// Keeps a named container's environment where later steps that join it find it (a parked
    /// Caisson's own /proc/PID/environ is Caisson's, not the container's).
    func record(_ container: StepContainer, name: String) -> String? {
        guard let runtimeDirectory else { return nil }
        let dir = "\(runtimeDirectory)/spank"
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return nil }
        let path = "\(dir)/\(name)@\(container.pid).environ"
        let text = container.environment.map { "\($0.name)=\($0.value)\0" }.joined()
        return (try? Files.writeAtomically(path, text, mode: 0o600)) != nil ? path : nil
    }

    static func readRecord(_ path: String) -> [(name: String, value: String)]? {
        guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_NOFOLLOW), let bytes = try? fd.readAll() else { return nil }
        return EnvironmentRules.parseNulSeparated(bytes)
    }

    static func processEnvironment(_ pid: Int32) -> [(name: String, value: String)] {
        guard let fd = try? FileDescriptor.open("/proc/\(pid)/environ", O_RDONLY), let bytes = try? fd.readAll() else { return [] }
        return EnvironmentRules.parseNulSeparated(bytes)
    }
}

/// The end of the step on this node, run by slurmstepd once the last local task has exited
/// (task_exit), before Slurm reports that task's exit to srun, so that `--container-save` is
/// complete when srun returns (pyxis #76); again from exit() if the tasks never ran.
///
/// The parked container and its FUSE server live in slurmstepd's own cgroup, not the step's
/// proctrack cgroup: Slurm signals a step only once it runs (so that would not help cancel a
/// setup), and at the step's end it would find them there and wait a second before killing
/// them (measured: +1.1 s per step). They are stopped here instead; the FUSE server follows
/// the container (PR_SET_PDEATHSIG), and a container orphaned by a dead slurmstepd is a
/// stopped process in an orphaned group, which the kernel sends SIGHUP.
struct StepTeardown {
    let container: StepContainer
    let caisson: CaissonProcess?
    let save: Bool

    func run() -> [PluginError] {
        var errors: [PluginError] = []
        if container.owned {
            kill(container.pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(container.pid, &status, 0) < 0 && errno == EINTR {}
        }
        if let record = container.environmentRecord { unlink(record) }
        guard let caisson, let name = container.name else { return errors }
        if save, let path = container.savePath {
            Log.user("caisson: saving container \(name) to \(path)")
            do {
                let result = try caisson.run(["export", "--quiet", "--force", "-o", path, name])
                if !result.succeeded {
                    errors.append(PluginError(.save, "saving to \(path) failed (\(CaissonProcess.describe(exitCode: result.status)))",
                                              details: result.stderr))
                }
            } catch {
                errors.append(error)
            }
        }
        if container.temporary {
            do {
                let result = try caisson.run(["remove", "-f", name])
                if !result.succeeded {
                    errors.append(PluginError(.cleanup, "removing temporary container \(name) failed", details: result.stderr))
                }
            } catch {
                errors.append(error)
            }
        }
        return errors
    }
}
