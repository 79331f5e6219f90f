import CaissonRuntime

/// The two places where the job's environment meets a container's:
///
/// 1. The environment Caisson itself runs with (as the job's user, from slurmstepd). It is the
///    job's, because Caisson builds the container's environment from its own (HOME, USER, the
///    job's variables); minus what could change how programs load or what the site decided:
///    the dynamic loader's and glibc's "unsecure" variables, and `CAISSON_*_PATH` overrides the
///    admin did not allow (plugstack `user_paths=`). The plugin's own option variables are
///    dropped too; they mean nothing to Caisson.
/// 2. What each task gets: the parked container's environment is applied over the job's with
///    spank_setenv, so image values win (pyxis #124), except the `--container-env` names (the
///    job's value stays) and Slurm's own `SLURM_*`, `PMIX_*`, `PMI_*`, which are per task and
///    must stay Slurm's for srun, PMIx and accounting to work. Host variables a container never
///    inherits (ContainerEnvironment's deny list: loader, module system) are unset.
public enum EnvironmentRules {
    /// glibc's UNSECURE_ENVVARS (what it drops for setuid programs), less TMPDIR, which Caisson
    /// uses for scratch space and which is harmless: every other entry names code or data to load.
    static let loaderNames: Set<String> = [
        "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE", "NIS_PATH",
        "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR",
    ]

    /// PATH for Caisson: the system's, not the job's (it finds squashfuse and its companions
    /// there; the container gets its own PATH from the image anyway).
    public static let systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public static func isLoaderVariable(_ name: String) -> Bool {
        name.hasPrefix("LD_") || loaderNames.contains(name)
    }

    /// The environment Caisson runs with: `job` sanitised, then `overrides` (set last).
    public static func forCaisson(job: [(name: String, value: String)], allowedPaths: Set<String>,
                                  overrides: [(name: String, value: String)]) -> [String] {
        let overridden = Set(overrides.map(\.name))
        var result: [String] = []
        var seen: Set<String> = []
        for (name, value) in job where !seen.contains(name) && !overridden.contains(name) {
            seen.insert(name)
            if isLoaderVariable(name) || name == "PATH" { continue }
            if name.hasPrefix("CAISSON_") {
                if name.hasPrefix("CAISSON_CONTAINER_") { continue }
                if name.hasSuffix("_PATH") && !allowedPaths.contains(name) { continue }
            }
            if name.hasPrefix("PYXIS_") { continue }
            result.append("\(name)=\(value)")
        }
        for (name, value) in overrides { result.append("\(name)=\(value)") }
        return result
    }

    /// Whether a variable belongs to Slurm's launch (per task, or the PMI/PMIx wire-up).
    public static func isSlurmOwned(_ name: String) -> Bool {
        name.hasPrefix("SLURM_") || name.hasPrefix("PMIX_") || name.hasPrefix("PMI_")
    }

    public struct TaskUpdate: Equatable {
        public var set: [(name: String, value: String, overwrite: Bool)] = []
        public var unset: [String] = []

        public static func == (a: TaskUpdate, b: TaskUpdate) -> Bool {
            a.unset == b.unset && a.set.count == b.set.count
                && zip(a.set, b.set).allSatisfy { $0.name == $1.name && $0.value == $1.value && $0.overwrite == $1.overwrite }
        }
    }

    /// What to do to a task's environment (`job`, as Slurm prepared it for this task) so that it
    /// becomes the container's (`container`, as the parked container reported it).
    public static func taskUpdate(container: [(name: String, value: String)], job: [(name: String, value: String)],
                                  keep: [String]) -> TaskUpdate {
        let kept = Set(keep)
        var update = TaskUpdate()
        var inContainer: Set<String> = []
        for (name, value) in container {
            inContainer.insert(name)
            if isSlurmOwned(name) { continue }
            update.set.append((name, value, !kept.contains(name)))
        }
        for (name, _) in job where !kept.contains(name) && !inContainer.contains(name) && !isSlurmOwned(name) {
            if ContainerEnvironment.isDenied(name) || isLoaderVariable(name) { update.unset.append(name) }
        }
        return update
    }

    /// Splits `NAME=VALUE` entries (from environ arrays or NUL-separated text).
    public static func pairs(_ entries: [String]) -> [(name: String, value: String)] {
        entries.compactMap { entry in
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else { return nil }
            return (String(entry[..<eq]), String(entry[entry.index(after: eq)...]))
        }
    }

    /// NUL-terminated `NAME=VALUE` records, as `caisson start --park` writes them and /proc/PID/environ holds them.
    public static func parseNulSeparated(_ bytes: [UInt8]) -> [(name: String, value: String)] {
        pairs(bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
    }
}
