/// What a job step's container is made of, decided once per node in slurmstepd (user_init) from
/// the options, the plugstack configuration and the job. The decisions are pure so that they are
/// tested without Slurm; SpankCaisson carries them out with `caisson` as the job's user:
///
///   image (URI)        → `caisson import --cached -q URI` → the cached .sqsh (one manifest request when warm)
///   image (.sqsh path) → used as it is
///   --container-name   → `pyxis_NAME` (or `pyxis_JOBID_NAME` with container_scope=job), pyxis's
///                        names so that pyxis users find their containers: joined when running
///                        (auto, exec), reused (auto, no_exec), else `caisson create --name`
///   --container-save   → a directory-backed container (named, or a temporary one made with
///                        `caisson create`), exported with `caisson export` when the step ends
///   then               → `caisson start --park [flags] TARGET`: set up once per node; tasks join it.
public struct StepModel: Equatable, Sendable {
    public struct Job: Equatable, Sendable {
        public var jobID: UInt32
        public var stepID: UInt32
        public var isBatch: Bool
        /// The node's name, in names of temporary containers: nodes may share the data path.
        public var node: String
        /// The job's working directory: relative paths in options are relative to it.
        public var cwd: String
        /// The batch script (sbatch), bound read-only at its own path so that it runs in the container.
        public var batchScript: String?
        public var environment: [(name: String, value: String)]
        public var uid: UInt32 = 0
        /// slurm.conf's SlurmdSpoolDir and TmpFS (as configured: %n and %h are expanded here).
        public var spoolDirectory: String?
        public var tmpFS: String?
        /// Whether mpi/pmix serves this step (its server directory exists).
        public var usesPMIx = false
        /// This node's index in the step.
        public var nodeID: UInt32 = 0
        /// slurmstepd's pid: the parent of the process an entrypoint must exec into.
        public var stepdPID: Int32 = 0

        public init(jobID: UInt32, stepID: UInt32, isBatch: Bool, node: String, cwd: String, batchScript: String?,
                    environment: [(name: String, value: String)]) {
            self.jobID = jobID; self.stepID = stepID; self.isBatch = isBatch; self.node = node; self.cwd = cwd
            self.batchScript = batchScript; self.environment = environment
        }

        public func value(_ name: String) -> String? { environment.first { $0.name == name }?.value }

        public static func == (a: Job, b: Job) -> Bool {
            a.jobID == b.jobID && a.stepID == b.stepID && a.isBatch == b.isBatch && a.node == b.node && a.cwd == b.cwd
                && a.batchScript == b.batchScript && a.environment.map(\.name) == b.environment.map(\.name)
                && a.environment.map(\.value) == b.environment.map(\.value) && a.uid == b.uid
            && a.spoolDirectory == b.spoolDirectory && a.tmpFS == b.tmpFS && a.usesPMIx == b.usesPMIx
            && a.nodeID == b.nodeID && a.stepdPID == b.stepdPID
        }
    }

    public enum Source: Equatable, Sendable {
        /// An image reference to import (`docker://` added when the user gave no scheme).
        case registry(String)
        /// A squashfs file on the node.
        case squashfs(String)
    }

    public let options: ContainerOptions
    public let config: PlugstackConfig
    public let job: Job

    public init(options: ContainerOptions, config: PlugstackConfig, job: Job) {
        self.options = options
        self.config = config
        self.job = job
    }

    /// Where the image comes from; nil when only a name was given.
    public var source: Source? {
        guard let image = options.image else { return nil }
        if image.hasPrefix("/") || image.hasPrefix(".") { return .squashfs(absolute(image)) }
        return .registry(image.contains("://") ? image : "docker://\(image)")
    }

    /// The named container's full name, as pyxis spells it.
    public var containerName: String? {
        guard let name = options.name else { return nil }
        return config.scope == .job ? "pyxis_\(job.jobID)_\(name)" : "pyxis_\(name)"
    }

    /// The prefix of this job's names, for the epilog of container_scope=job.
    public static func jobScopePrefix(jobID: UInt32) -> String { "pyxis_\(jobID)_" }

    /// A container for --container-save without --container-name: a directory to save from,
    /// removed at the end of the step. Per node, as nodes may share the data path.
    public var temporaryName: String? {
        guard options.name == nil, savePath != nil else { return nil }
        let node = String(job.node.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
        let step = job.isBatch ? "batch" : String(job.stepID)
        return "caisson-step_\(job.jobID).\(step)_\(node)"
    }

    /// Whether the tasks run the image's entrypoint first (the parked process then is the
    /// entrypoint's `exec "$@"` of a stopping shell, pyxis's way, instead of `--park`).
    public var runsEntrypoint: Bool { options.entrypoint ?? config.executeEntrypoint }

    /// Writable unless --container-readonly: named containers keep what a step changed, as
    /// pyxis users expect; an image's changes live in a tmpfs and vanish with the step.
    public var writable: Bool { options.writable ?? true }

    /// Where this node saves the container for --container-save, if it does. `%N` (node name),
    /// `%n` (node index in the step) and `%%` are expanded, as in srun's --output; a path with
    /// neither names one file, which only the step's first node writes (several nodes writing one
    /// path would leave whichever finished last).
    public var savePath: String? {
        guard let save = options.save else { return nil }
        var result = ""
        var perNode = false
        var chars = Substring(save)
        while let c = chars.popFirst() {
            guard c == "%", let next = chars.first, "Nn%".contains(next) else {
                result.append(c)
                continue
            }
            chars.removeFirst()
            switch next {
            case "N": result += job.node; perNode = true
            case "n": result += String(job.nodeID); perNode = true
            default: result.append("%")
            }
        }
        if !perNode && job.nodeID != 0 { return nil }
        return absolute(result)
    }

    /// What to do about a named container, given what exists.
    public enum NamedAction: Equatable, Sendable {
        /// Join this running container's process (another step's); set nothing up.
        case join(Int32)
        /// Start from the existing root filesystem.
        case start
        /// Make the container from the image first.
        case create
    }

    public func namedAction(exists: Bool, running: [Int32]) throws(PluginError) -> NamedAction {
        let name = containerName ?? "?"
        switch options.nameFlag {
        case .create:
            if exists { throw PluginError(.name, "\"create\" was given to --container-name but container \(name) already exists") }
        case .exec:
            guard let pid = running.first else {
                throw PluginError(.name, "\"exec\" was given to --container-name but container \(name) is not running")
            }
            return .join(pid)
        case .auto:
            if let pid = running.first { return .join(pid) }
        case .noExec:
            break
        }
        if exists { return .start }
        guard source != nil else {
            throw PluginError(.name, "container \(name) does not exist and --container-image is not set")
        }
        return .create
    }

    /// `caisson start` arguments, up to and including the target (and, for an entrypoint run,
    /// the stopping shell that follows it).
    public func startArguments(target: String) -> [String] {
        var args = ["start"]
        if !runsEntrypoint { args.append("--park") }
        if writable { args.append("--rw") }
        if options.remapRoot == true { args.append("--root") }
        switch options.mountHome {
        case true?: args.append("--mount-home")
        case false?: args.append("--no-mount-home")
        case nil: break
        }
        for entry in mounts { args += ["-m", entry] }
        for name in options.environment {
            if let value = job.value(name) { args += ["-e", "\(name)=\(value)"] }
        }
        if let workdir = options.workdir { args += ["-w", workdir] }
        if runsEntrypoint {
            args += ["--entrypoint", target, "/bin/sh", "-c", entrypointStop]
        } else {
            args.append(target)
        }
        return args
    }

    /// What the entrypoint runs as its arguments: a shell that stops itself, so that the tasks
    /// join the container with the environment the entrypoint made. It must be the process
    /// slurmstepd started (the entrypoint exec'd it); an entrypoint that runs its arguments as a
    /// child would leave setup waiting for a stop that slurmstepd cannot see, so the shell ends
    /// that entrypoint process instead, and setup fails saying why.
    public var entrypointStop: String {
        guard job.stepdPID > 0 else { return "kill -STOP $$; exit 0" }
        return "if [ \"$PPID\" != \(job.stepdPID) ]; then "
            + "echo \"caisson: start: the image's entrypoint ran its arguments in a child process instead of exec'ing them: "
            + "end it with 'exec \\\"\\$@\\\"', or run the step with --no-container-entrypoint\" >&2; kill -KILL $PPID; exit 1; fi; "
            + "kill -STOP $$; exit 0"
    }

    /// The user's mounts with relative sources made absolute against the job's directory, then
    /// what Slurm needs inside: the batch script, and mpi/pmix's directories (the PMIx server's,
    /// holding the shared-memory data store clients map, and the client's), which Slurm makes
    /// before user_init but names in the tasks' environment only (enroot's 50-slurm-pmi hook
    /// binds the same two).
    public var mounts: [String] {
        var result: [String] = []
        for entry in options.mounts {
            let parts = entry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let source = parts[0]
            if source == "tmpfs" || source.hasPrefix("/") {
                result.append(entry)
            } else {
                let rest = parts.count > 1 ? ":" + parts[1] : ":" + absolute(source)
                result.append(absolute(source) + rest)
            }
        }
        if job.isBatch, let script = job.batchScript {
            result.append("\(script):\(script):x-create=file+bind+ro+nosuid+nodev+private")
        }
        for dir in pmixDirectories {
            result.append("\(dir):\(dir):x-create=dir+rbind+nosuid+nodev")
        }
        return result
    }

    /// Where mpi/pmix keeps this step's server directory (Slurm 22.05 pmixp_info.c): in
    /// SLURM_PMIX_SRV_TMPDIR or SlurmdSpoolDir. It exists by user_init when the step uses PMIx.
    public var pmixServerDirectory: String? {
        guard !job.isBatch, let base = pmixServerBase else { return nil }
        return join(base, "pmix.\(job.jobID).\(job.stepID)")
    }

    var pmixServerBase: String? {
        guard let base = job.value("SLURM_PMIX_SRV_TMPDIR") ?? job.spoolDirectory.map(expand), base.hasPrefix("/") else { return nil }
        return base
    }

    /// What to bind for PMIx: the server directory's parent (one stable mount point, so that a
    /// named container's root filesystem does not collect a `pmix.JOB.STEP` per step), and the
    /// client's directory in SLURM_PMIX_TMPDIR or TmpFS (under the container's private /tmp).
    public var pmixDirectories: [String] {
        guard job.usesPMIx, let server = pmixServerBase else { return [] }
        var dirs = [server.count > 1 && server.hasSuffix("/") ? String(server.dropLast()) : server]
        if let base = job.value("SLURM_PMIX_TMPDIR") ?? job.tmpFS.map(expand), base.hasPrefix("/") {
            dirs.append(join(base, "spmix_appdir_\(job.uid)_\(job.jobID).\(job.stepID)"))
        }
        return dirs
    }

    /// slurm.conf's %n (node name) and %h (host name; the node name here too).
    func expand(_ path: String) -> String {
        var result = ""
        var chars = Substring(path)
        while let c = chars.popFirst() {
            if c == "%", let next = chars.first, next == "n" || next == "h" {
                chars.removeFirst()
                result += job.node
            } else {
                result.append(c)
            }
        }
        return result
    }

    func join(_ base: String, _ name: String) -> String { base.hasSuffix("/") ? base + name : base + "/" + name }

    func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var base = job.cwd.isEmpty ? "/" : job.cwd
        if !base.hasSuffix("/") { base += "/" }
        var rest = Substring(path)
        while rest.hasPrefix("./") { rest = rest.dropFirst(2) }
        return rest == "." ? String(base.dropLast()) : base + rest
    }
}
