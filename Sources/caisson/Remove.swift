import ArgumentParser
import CaissonConfig
import CaissonStore
import CaissonSystem

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Delete named containers.",
        discussion: """
        Deletes each container's root filesystem. A container that is running (see \
        `caisson list --fancy`) is refused unless --force; its processes then go on without \
        their files. The name is freed at once, before the files are deleted. Exit status 1 if \
        any container could not be removed; the others are removed anyway.
        """
    )

    @Flag(name: [.short, .long], help: "Remove running containers too.")
    var force = false

    @Argument(help: "The containers to remove.")
    var names: [String]

    func run() throws {
        let store = ContainerStore(configuration: Configuration.load())
        var failed = false
        for name in names {
            do { try store.remove(name, force: force) } catch {
                printError("caisson: remove: \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
