import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

@main
struct Caisson: ParsableCommand {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        if let command = args.first, ImageTools.commands.contains(command) {
            ImageTools.exec(args)
        }
        if args.first == "help", let command = args.dropFirst().first, ImageTools.commands.contains(command) {
            ImageTools.exec([command, "--help"])
        }
        if args.first == "start", let fast = StartArguments.parseFast(args.dropFirst()) {
            do { try Start.run(fast) } catch { Start.exit(withError: error) }
        }
        Caisson.main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "caisson",
        abstract: "Unprivileged containers for HPC clusters.",
        discussion: """
        Caisson runs OCI/Docker images as ordinary users on Slurm clusters: no daemon, no root, \
        only user and mount namespaces. Configuration: /etc/caisson/caisson.conf, hooks.d, \
        mounts.d and environ.d (system), and the same under ~/.config/caisson (user).
        """,
        version: CaissonVersion.current,
        subcommands: [ImageTools.Import.self, Start.self, ImageTools.Create.self, List.self, Exec.self, Remove.self,
                      ImageTools.Export.self, ImageTools.Bundle.self, ImageTools.Digest.self, ImageTools.Cache.self,
                      Check.self, Version.self]
    )
}
