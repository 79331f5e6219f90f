import CaissonRuntime
import CaissonSlurm
import CaissonSystem
import CSpank
#if canImport(Glibc)
import Glibc
#endif

/// task_init: runs in each task's process, as the job's user, just before slurmstepd execs the
/// task's program. The task joins the step's container (user and mount namespaces, in the order
/// the kernel allows for an unprivileged owner) instead of getting a container of its own, so the
/// program is still Slurm's child: its cgroup, signals, PMIx wire-up, I/O and accounting are
/// exactly those of a task without a container. Slurm resolves the program with the PATH set here
/// and execs it inside the container's root.
struct TaskJoin {
    let container: StepContainer
    let options: ContainerOptions
    let spank: Spank

    func run() throws(PluginError) {
        // The container's working directory (the job's directory when the container has it,
        // else $HOME or /, as `caisson start` chose it), kept as a descriptor across setns.
        let cwd = options.workdir == nil ? open("/proc/\(container.pid)/cwd", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1
        defer { if cwd >= 0 { close(cwd) } }

        let update = EnvironmentRules.taskUpdate(container: container.environment, job: spank.environment(),
                                                 keep: options.environment)
        for (name, value, overwrite) in update.set {
            let rc = spank.setenv(name, value, overwrite: overwrite)
            if rc != cspank_success && rc != cspank_env_exists {
                throw PluginError(.environment, "setting \(name): \(Spank.describe(rc))")
            }
        }
        for name in update.unset { spank.unsetenv(name) }

        do {
            try ContainerJoin(pid: container.pid).enter(workdir: options.workdir, inherited: nil)
        } catch {
            throw PluginError(.join, "\(error)")
        }
        if cwd >= 0 && fchdir(cwd) != 0 {
            _ = chdir("/")
        }
        if container.fakeroot {
            do { try ContainerJoin.installFakeroot() } catch { throw PluginError(.join, "\(error)") }
        }
    }
}
