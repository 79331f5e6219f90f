import ArgumentParser

@main
struct Caisson: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caisson",
        abstract: "Unprivileged containers for HPC clusters.",
        discussion: """
        Caisson runs OCI/Docker images as ordinary users on Slurm clusters: no daemon, no root, \
        only user and mount namespaces. Configuration: /etc/caisson/caisson.conf, hooks.d, \
        mounts.d and environ.d (system), and the same under ~/.config/caisson (user).
        """,
        version: CaissonVersion.current,
        subcommands: [Start.self, Check.self, Version.self]
    )
}
