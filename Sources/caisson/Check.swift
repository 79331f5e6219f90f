import ArgumentParser
import CaissonSystem
import CaissonConfig
import CaissonRuntime
#if canImport(Glibc)
import Glibc
#endif

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify that this host can run Caisson containers.",
        discussion: """
        Prints one line per check: `OK   <what>`, `KO   <what>: <why>` followed by an indented \
        `fix:` line with the exact command or setting that repairs it, `--   <what>: ...` for a \
        check that does not apply to this host, and `INFO` for facts. Exits with status 1 when a \
        required check fails; optional checks (marked "(optional)" when they fail) only warn.

        Run it as the user who will start containers: root passes checks that ordinary users fail. \
        Every experiment runs in a forked child; this process's namespaces never change.

        kernel                    The running kernel (information). Overlayfs in a user namespace needs 5.11+.
        user.max_user_namespaces  How many user namespaces may exist; 0 disables them for everyone, root included.
        kernel.unprivileged_userns_clone
                                  Debian/Ubuntu kernel switch; must be 1 so that ordinary users may create \
        user namespaces. Skipped where the kernel has no such switch.
        kernel.apparmor_restrict_unprivileged_userns
                                  Ubuntu 23.10+: when 1, AppArmor strips capabilities from user namespaces \
        of unconfined programs. Must be 0, or an AppArmor profile must grant `userns` to caisson.
        user namespaces           (required) A child calls unshare(CLONE_NEWUSER|CLONE_NEWNS), denies \
        setgroups and maps your uid and gid, as `caisson start` does. The errno tells why it failed.
        overlayfs in a user namespace
                                  (required by `caisson start`) Inside that namespace a child mounts a tmpfs, \
        then an overlay with `userxattr`, writes through it and deletes a lower file (a whiteout).
        seccomp filters           (required by --root) A child sets no_new_privs and installs a seccomp filter, \
        which --root uses to fake chown and friends.
        runtime directory         (required) CAISSON_RUNTIME_PATH, or its fallback under CAISSON_TEMP_PATH, \
        can be created and written.
        /dev/fuse                 (optional, squashfs images) The FUSE device exists and you can open it \
        read-write; without udev it is often mode 0600.
        squashfuse                (optional) CAISSON_SQUASHFUSE, else squashfuse_ll or squashfuse on PATH, \
        is executable: what `caisson start IMAGE.sqsh` runs.
        """
    )

    func run() throws {
        let results = HostCheck.runAll(configuration: Configuration.load())
        for result in results {
            for line in result.lines { print(line) }
        }
        let failures = HostCheck.blockingFailures(results)
        if !failures.isEmpty {
            fflush(nil)  // the check lines first, then the summary on stderr
            let names = failures.map(\.name).joined(separator: ", ")
            printError("caisson check: \(failures.count) required check\(failures.count == 1 ? "" : "s") failed: \(names)")
            throw ExitCode(1)
        }
    }
}
