import ArgumentParser
import CaissonConfig
import CaissonImport
import CaissonSquashfs
import CaissonStore
import CaissonSystem
import Foundation

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Unpack an image into a named container.",
        discussion: """
        Unpacks IMAGE.sqsh into CAISSON_DATA_PATH/NAME, a root filesystem you own, for \
        `caisson start NAME` (and `--rw` to change it for good). What `caisson start IMAGE.sqsh` \
        shows and what `caisson start NAME` shows are the same tree. No privileges are needed: \
        files are yours, device nodes are skipped (with a warning), and nothing in the image can \
        write outside the container's directory.

        The container appears at once and whole: the image is unpacked into a hidden directory \
        that is renamed into place, so two creates of one name cannot both win (the loser exits \
        1 and leaves nothing), and an interrupted or killed create leaves nothing that `list` or \
        `start` would take for a container.

        Examples:
          caisson create ubuntu.sqsh                 # container "ubuntu"
          caisson create --name dev pytorch.sqsh && caisson start --rw dev pip install ...
        """
    )

    @Option(name: [.short, .long], help: "The container's name (default: the image file's name without .sqsh).")
    var name: String?

    @Flag(name: [.short, .long], help: "Replace a container of the same name (not a running one).")
    var force = false

    @Flag(name: [.short, .long], help: "Print only warnings and errors.")
    var quiet = false

    @Argument(help: "The squashfs image to unpack.")
    var image: String

    func run() throws {
        let store = ContainerStore(configuration: Configuration.load())
        let name = self.name ?? ContainerStore.defaultName(forImage: image)
        let started = Date()
        do {
            try ContainerStore.validate(name: name)
            let extractor = try SquashfsExtractor(imagePath: image)
            store.collectLeftovers()
            if store.exists(name) {
                guard force else { throw StoreError.exists(name) }
                try store.remove(name, force: false)
            }
            try Files.makeDirectories(store.dataPath, mode: 0o700)
            let partial = store.partialPath(for: name)
            try check("mkdir", path: partial) { mkdir(partial, 0o700) }
            SignalCleanup.shared.register(partial)
            defer { SignalCleanup.shared.unregister(partial) }
            do {
                let summary = try extractor.extract(into: partial) { printError("caisson: create: warning: \($0)") }
                try store.publish(partial: partial, as: name)
                if !quiet {
                    printError(String(format: "%@: %d files, %@, %.1f s", store.path(of: name), summary.files + summary.directories + summary.symlinks,
                                      ConsoleProgress.bytes(Int64(summary.bytes)), Date().timeIntervalSince(started)))
                }
            } catch {
                try? FileTree.remove(partial)
                throw error
            }
        } catch {
            printError("caisson: create: \(error)")
            throw ExitCode(1)
        }
    }
}
