import CaissonSlurm
import CaissonSystem
import CSpank
#if canImport(Glibc)
import Glibc
#endif

/// The SPANK entry points. Slurm loads this library in srun, salloc and sbatch (to parse the
/// options), in slurmd (job epilog) and in slurmstepd, where the work happens:
///
///   init          register the options; parse plugstack.conf
///   init_post_opt fill unset options from PYXIS_*/CAISSON_* variables; as root, make the user's
///                 runtime directory
///   user_init     once per node and step: import, create, `caisson start --park` (StepSetup)
///   task_init     in every task, just before exec: join the container (TaskJoin)
///   task_exit     after the last local task: stop the container, save it, remove temporary state
///   exit          the same if the tasks never ran
///   job_epilog    container_scope=job: remove the job's named containers
///
/// Each slurmstepd serves one step and loads the plugin once, so plain process-global state
/// carries the step from user_init to exit; tasks are forked from slurmstepd after user_init and
/// inherit it. No threads, Dispatch or Foundation: slurmstepd forks, and setns() into a user
/// namespace needs a single-threaded process.
struct PluginState {
    var config = PlugstackConfig()
    var options = ContainerOptions()
    /// A bad option value seen by a callback (reported, and the command fails).
    var optionError: PluginError?
    var enabled = false
    var job: StepModel.Job?
    var user: CaissonProcess.User?
    var runtimeDirectory: String?
    var localTasks: UInt32 = 0
    var container: StepContainer?
    /// Setup failed: every task fails in task_init rather than run outside the container (a
    /// failure returned from user_init does not reach srun's exit status: SchedMD bug 7573).
    var failure: PluginError?
    var exitedTasks: UInt32 = 0
    var tornDown = false

    var caisson: CaissonProcess? {
        guard let user, let program = config.caisson else { return nil }
        return CaissonProcess(program: program, user: user)
    }
}

nonisolated(unsafe) var state = PluginState()

public typealias SpankArguments = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

func arguments(_ argc: Int32, _ argv: SpankArguments) -> [String] {
    guard let argv else { return [] }
    return (0..<Int(argc)).compactMap { argv[$0].map { String(cString: $0) } }
}

let optionCallback: cspank_option_callback = { val, optarg, _ in
    guard let id = ContainerOptions.ID(rawValue: val) else { return -1 }
    do throws(PluginError) {
        try state.options.apply(id, optarg.map { String(cString: $0) })
        return 0
    } catch {
        state.optionError = error
        Log.error(error.description)
        return -1
    }
}

@_cdecl("slurm_spank_init")
public func slurmSpankInit(_ handle: cspank_t?, _ argc: Int32, _ argv: SpankArguments) -> Int32 {
    let spank = Spank(handle: handle)
    do {
        state.config = try PlugstackConfig.parse(arguments(argc, argv))
    } catch {
        Log.error(error.description)
        return -1
    }
    if state.config.caisson == nil {
        let plugin = cspank_self_path().map { String(cString: $0) } ?? "/usr/local/lib/caisson/spank_caisson.so"
        state.config.caisson = PlugstackConfig.defaultCaisson(pluginPath: plugin)
    }
    switch Spank.context {
    case .local, .remote:
        break
    case .allocator:
        guard state.config.sbatchSupport else { return 0 }
    default:
        return 0
    }
    for spec in ContainerOptions.table {
        let rc = cspank_option_register(spank.handle, spec.name, spec.argument, spec.usage, spec.argument == nil ? 0 : 1,
                                        spec.id.rawValue, optionCallback)
        if rc != cspank_success {
            Log.error("caisson: spank: cannot register --\(spec.name): \(Spank.describe(rc))")
            return -1
        }
    }
    return 0
}

@_cdecl("slurm_spank_init_post_opt")
public func slurmSpankInitPostOpt(_ handle: cspank_t?, _ argc: Int32, _ argv: SpankArguments) -> Int32 {
    let spank = Spank(handle: handle)
    let context = Spank.context
    guard context == .local || context == .remote || context == .allocator else { return 0 }
    if state.optionError != nil { return -1 }
    do {
        if context == .remote {
            try state.options.applyEnvironment { spank.getenv($0) }
        } else {
            try state.options.applyEnvironment { name in Glibc.getenv(name).map { String(cString: $0) } }
        }
    } catch {
        Log.error(error.description)
        return -1
    }
    guard state.options.enabled else {
        if context != .remote && (!state.options.mounts.isEmpty || state.options.workdir != nil || state.options.save != nil) {
            Log.error("caisson: spank: ignoring container options: neither --container-image nor --container-name is set")
        }
        return 0
    }
    guard context == .remote else { return 0 }
    do {
        try prepareStep(spank)
    } catch {
        Log.failure(error)
        state.failure = error
        state.enabled = true
        return 0
    }
    return 0
}

/// In slurmstepd, as root: who the job is, and the user's runtime directory.
func prepareStep(_ spank: Spank) throws(PluginError) {
    guard let uid = spank.uid(), let gid = spank.gid(), let jobID = spank.jobID(), let stepID = spank.stepID() else {
        throw PluginError(.job, "cannot read the job's uid, gid and ids from Slurm")
    }
    let isBatch = stepID == cspank_batch_step
    if isBatch && !state.config.sbatchSupport { return }
    state.enabled = true
    state.localTasks = spank.localTaskCount() ?? 1
    var runtimeDirectory: String?
    if !state.config.runtimePath.isEmpty {
        runtimeDirectory = try makeRuntimeDirectory(state.config.runtimePath, uid: uid, gid: gid)
    }
    state.runtimeDirectory = runtimeDirectory
    let environment = spank.environment()
    let node = environment.first { $0.name == "SLURMD_NODENAME" }?.value ?? ProcessEnvironment.hostname()
    state.job = StepModel.Job(jobID: jobID, stepID: stepID, isBatch: isBatch, node: node,
                              cwd: environment.first { $0.name == "PWD" }?.value ?? "",
                              batchScript: isBatch ? spank.argv().first : nil, environment: environment)
    state.job?.uid = uid
    state.job?.nodeID = spank.nodeID() ?? 0
    state.job?.stepdPID = getpid()
    state.job?.spoolDirectory = cspank_conf_spooldir().map { String(cString: $0) }
    state.job?.tmpFS = cspank_conf_tmpfs().map { String(cString: $0) }
    var overrides: [(name: String, value: String)] = [("PATH", EnvironmentRules.systemPath)]
    if let runtimeDirectory { overrides.append(("CAISSON_RUNTIME_PATH", runtimeDirectory)) }
    if !environment.contains(where: { $0.name == "HOME" }), let home = UserDatabase.home(uid) { overrides.append(("HOME", home)) }
    state.user = CaissonProcess.User(
        uid: uid, gid: gid, groups: spank.supplementaryGroups() ?? UserDatabase.groups(uid, gid),
        environment: EnvironmentRules.forCaisson(job: environment, allowedPaths: state.config.userPaths, overrides: overrides),
        cwd: nil)
}

/// RUNTIME (0755, root's) and RUNTIME/UID (0700, the user's), made as root and verified: a
/// directory someone else planted there is refused rather than used.
func makeRuntimeDirectory(_ base: String, uid: uid_t, gid: gid_t) throws(PluginError) -> String {
    do { try Files.makeDirectories(base, mode: 0o755) } catch {
        throw PluginError(.config, "runtime_path \(base): \(error)")
    }
    let dir = "\(base)/\(uid)"
    if mkdir(dir, 0o700) == 0 {
        if chown(dir, uid, gid) != 0 {
            let reason = String(cString: strerror(errno))
            rmdir(dir)
            throw PluginError(.config, "chown \(dir): \(reason)")
        }
    } else if errno != EEXIST {
        throw PluginError(.config, "mkdir \(dir): \(String(cString: strerror(errno)))")
    }
    guard let st = Files.lstat(dir), st.st_mode & S_IFMT == S_IFDIR, st.st_uid == uid else {
        throw PluginError(.config, "\(dir) exists but is not a directory owned by uid \(uid)")
    }
    return dir
}

@_cdecl("slurm_spank_user_init")
public func slurmSpankUserInit(_ handle: cspank_t?, _ argc: Int32, _ argv: SpankArguments) -> Int32 {
    guard Spank.context == .remote, state.enabled, state.failure == nil,
          var job = state.job, let caisson = state.caisson else { return 0 }
    // slurmstepd has just moved to the job's working directory (srun --chdir, else where srun ran).
    let cwd = Path.currentDirectory()
    if cwd != "/" || job.cwd.isEmpty { job.cwd = cwd }
    // Looked at as the user (slurmstepd's effective uid here); the directory is the user's.
    if let server = StepModel(options: state.options, config: state.config, job: job).pmixServerDirectory {
        job.usesPMIx = Files.isDirectory(server)
    }
    state.job = job
    let model = StepModel(options: state.options, config: state.config, job: job)
    do {
        state.container = try StepSetup(model: model, caisson: caisson, runtimeDirectory: state.runtimeDirectory).run()
    } catch {
        Log.failure(error)
        state.failure = error
    }
    return 0
}

@_cdecl("slurm_spank_task_init")
public func slurmSpankTaskInit(_ handle: cspank_t?, _ argc: Int32, _ argv: SpankArguments) -> Int32 {
    guard Spank.context == .remote, state.enabled else { return 0 }
    let spank = Spank(handle: handle)
    if let failure = state.failure {
        if spank.taskID() == 0 {
            Log.error("caisson: spank: the step's container could not be set up (\(failure.stage.rawValue)): its tasks do not run")
        }
        return -1
    }
    guard let container = state.container else { return -1 }
    do {
        try TaskJoin(container: container, options: state.options, spank: spank).run()
    } catch {
        Log.failure(error)
        return -1
    }
    return 0
}

@_cdecl("slurm_spank_task_exit")
public func slurmSpankTaskExit(_ handle: cspank_t?, _ argc: Int32, _ argv: SpankArguments) -> Int32 {
    guard Spank.context == .remote, state.enabled else { return 0 }
    state.exitedTasks += 1
    guard state.exitedTasks >= state.localTasks else { return 0 }
    return tearDown(save: true)
}

@_cdecl("slurm_spank_exit")
public func slurmSpankExit(_ handle: cspank_t?, _ argc: Int32, _ argv: SpankArguments) -> Int32 {
    guard Spank.context == .remote, state.enabled else { return 0 }
    return tearDown(save: false)
}

func tearDown(save: Bool) -> Int32 {
    guard !state.tornDown, let container = state.container else { return 0 }
    state.tornDown = true
    let errors = StepTeardown(container: container, caisson: state.caisson, save: save).run()
    for error in errors { Log.failure(error) }
    return errors.isEmpty ? 0 : -1
}

@_cdecl("slurm_spank_job_epilog")
public func slurmSpankJobEpilog(_ handle: cspank_t?, _ argc: Int32, _ argv: SpankArguments) -> Int32 {
    // The epilog runs in a process of its own (slurmstepd's "spank epilog"), where init may not have run.
    guard var config = try? PlugstackConfig.parse(arguments(argc, argv)), config.scope == .job else { return 0 }
    if config.caisson == nil {
        config.caisson = PlugstackConfig.defaultCaisson(pluginPath: cspank_self_path().map { String(cString: $0) } ?? "")
    }
    state.config = config
    let spank = Spank(handle: handle)
    guard let uid = spank.uid(), let jobID = spank.jobID(), uid != 0, let program = config.caisson else {
        Log.error("caisson: spank: epilog: cannot read the job's uid and id from Slurm")
        return 0
    }
    Log.debug("caisson: spank: epilog: removing containers \(StepModel.jobScopePrefix(jobID: jobID))* of uid \(uid)")
    let gid = spank.gid() ?? UserDatabase.primaryGroup(uid) ?? uid
    var environment = ["PATH=\(EnvironmentRules.systemPath)"]
    if let home = UserDatabase.home(uid) { environment.append("HOME=\(home)") }
    if let name = UserDatabase.name(uid) { environment += ["USER=\(name)", "LOGNAME=\(name)"] }
    if !state.config.runtimePath.isEmpty { environment.append("CAISSON_RUNTIME_PATH=\(state.config.runtimePath)/\(uid)") }
    let caisson = CaissonProcess(program: program, user: CaissonProcess.User(
        uid: uid, gid: gid, groups: UserDatabase.groups(uid, gid), environment: environment, cwd: "/"))
    let errors = JobEpilog(caisson: caisson, prefix: StepModel.jobScopePrefix(jobID: jobID)).run()
    for error in errors { Log.failure(error) }
    return 0
}
