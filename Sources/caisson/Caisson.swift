import ArgumentParser

@main
struct Caisson: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caisson",
        abstract: "Unprivileged containers for HPC clusters.",
        subcommands: []
    )
}
