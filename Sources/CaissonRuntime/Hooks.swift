import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Hooks are executables in `hooks.d/` (system, then user), run in name order after the mounts
/// are made and before the command. They see the host's filesystem and the container's root at
/// $CAISSON_ROOTFS, and may append `NAME=VALUE` lines to $CAISSON_ENVIRON and fstab lines to
/// $CAISSON_MOUNTS. A hook that fails stops the start.
public enum Hooks {
    public static func discover(in directories: [String]) -> [String] {
        directories.flatMap { dir in
            Files.list(dir)
                .filter { !$0.hasPrefix(".") && !$0.hasSuffix("~") && !$0.contains(".dpkg-") }
                .map { "\(dir)/\($0)" }
                .filter { path in
                    guard let st = Files.stat(path), st.st_mode & S_IFMT == S_IFREG else { return false }
                    return access(path, X_OK) == 0
                }
        }
    }

    public static func run(_ hooks: [String], environment: [String]) throws(StartError) {
        for hook in hooks {
            let status: Subprocess.Status
            do {
                status = try Subprocess.run([hook], environment: environment)
            } catch {
                throw StartError(.hooks, "hook \(hook) could not run: \(error.reason)",
                                 hint: "check that it is executable and its interpreter exists")
            }
            if !status.succeeded {
                throw StartError(.hooks, "hook \(hook) failed with \(status.description)",
                                 hint: "the container was not started; fix or remove the hook")
            }
        }
    }
}
