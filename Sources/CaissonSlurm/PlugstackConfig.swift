/// The arguments after the plugin's path on its plugstack.conf line, e.g.
///
///     required /usr/local/lib/caisson/spank_caisson.so runtime_path=/run/caisson container_scope=job
///
/// pyxis's keys keep their names and meanings (`runtime_path`, `container_scope`,
/// `sbatch_support`, `execute_entrypoint`), so an admin's line moves over; `caisson=`,
/// `entrypoint_timeout=` and `user_paths=` are Caisson's own. As in pyxis, an unknown key is an
/// error: a typo in a site's configuration should stop jobs loudly, not change their behaviour
/// silently.
public struct PlugstackConfig: Equatable, Sendable {
    public enum Scope: String, Sendable { case job, global }

    /// The caisson binary; nil until resolved (default: PREFIX/bin/caisson next to the plugin).
    public var caisson: String?
    /// Parent of the per-user runtime directories (`RUNTIME/UID`, made by the plugin as root,
    /// owned by the user) that become CAISSON_RUNTIME_PATH. Empty: Caisson's own default.
    public var runtimePath = "/run/caisson"
    /// `job`: container names carry the job id and are removed by the job epilog.
    public var scope = Scope.global
    /// Whether sbatch and salloc accept the options (the batch script then runs in the container).
    public var sbatchSupport = true
    /// The default of --container-entrypoint.
    public var executeEntrypoint = false
    /// How long an image entrypoint may take before it runs the tasks' stopping shell (seconds;
    /// 0: no limit). Slurm defers cancelling a step until its tasks launch, so an entrypoint that
    /// never runs its arguments (a server, a wait for input) would otherwise hold the step, and
    /// the nodes, until an admin kills slurmstepd.
    public var entrypointTimeout: UInt32 = 300
    /// The CAISSON_*_PATH variables a job's environment may set for Caisson. Any other is dropped:
    /// where Caisson keeps images and containers is the site's decision (as pyxis does for enroot).
    public var userPaths: Set<String> = ["CAISSON_CONFIG_PATH"]

    public init() {}

    public static func parse(_ arguments: [String]) throws(PluginError) -> PlugstackConfig {
        var config = PlugstackConfig()
        for argument in arguments {
            guard let eq = argument.firstIndex(of: "=") else {
                throw PluginError(.config, "plugstack.conf: expected KEY=VALUE, got '\(argument)'")
            }
            let key = String(argument[..<eq])
            let value = String(argument[argument.index(after: eq)...])
            switch key {
            case "caisson":
                guard value.hasPrefix("/") else { throw PluginError(.config, "plugstack.conf: caisson= needs an absolute path") }
                config.caisson = value
            case "runtime_path":
                guard value.isEmpty || value.hasPrefix("/") else {
                    throw PluginError(.config, "plugstack.conf: runtime_path= needs an absolute path (or nothing for Caisson's default)")
                }
                config.runtimePath = value.count > 1 && value.hasSuffix("/") ? String(value.dropLast()) : value
            case "container_scope":
                guard let scope = Scope(rawValue: value) else {
                    throw PluginError(.config, "plugstack.conf: container_scope= must be job or global, not '\(value)'")
                }
                config.scope = scope
            case "sbatch_support":
                config.sbatchSupport = try bool(key, value)
            case "execute_entrypoint":
                config.executeEntrypoint = try bool(key, value)
            case "entrypoint_timeout":
                guard let seconds = UInt32(value) else {
                    throw PluginError(.config, "plugstack.conf: entrypoint_timeout= must be a number of seconds (0: no limit), not '\(value)'")
                }
                config.entrypointTimeout = seconds
            case "user_paths":
                let names = value.split(separator: ",").map(String.init)
                for name in names where !(name.hasPrefix("CAISSON_") && name.hasSuffix("_PATH")) {
                    throw PluginError(.config, "plugstack.conf: user_paths= lists CAISSON_*_PATH variables, not '\(name)'")
                }
                config.userPaths = Set(names)
            default:
                throw PluginError(.config, "plugstack.conf: unknown argument '\(key)' (known: caisson, runtime_path, container_scope, sbatch_support, execute_entrypoint, entrypoint_timeout, user_paths)")
            }
        }
        return config
    }

    /// pyxis's spellings: 1/true/yes/y and 0/false/no/n.
    static func bool(_ key: String, _ value: String) throws(PluginError) -> Bool {
        switch value.lowercased() {
        case "1", "true", "yes", "y": return true
        case "0", "false", "no", "n": return false
        default: throw PluginError(.config, "plugstack.conf: \(key)= must be 1/true/yes/y or 0/false/no/n, not '\(value)'")
        }
    }

    /// Where the caisson binary is when plugstack.conf does not say: the install puts the plugin in
    /// PREFIX/lib/caisson/ and the binary in PREFIX/bin/; a build tree has both in one directory.
    public static func defaultCaisson(pluginPath: String) -> String {
        let components = pluginPath.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let dir = components.dropLast()
        if dir.count >= 2, dir.last == "caisson", dir[dir.count - 2] == "lib" {
            return "/" + (dir.dropLast(2) + ["bin", "caisson"]).joined(separator: "/")
        }
        if dir.last == "lib" {
            return "/" + (dir.dropLast() + ["bin", "caisson"]).joined(separator: "/")
        }
        return "/" + (dir + ["caisson"]).joined(separator: "/")
    }
}
