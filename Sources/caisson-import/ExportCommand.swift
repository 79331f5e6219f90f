import ArgumentParser
import CaissonConfig
import CaissonImport
import CaissonSquashfs
import CaissonStore
import CaissonSystem
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a named container as a squashfs image.",
        discussion: """
        Packs the root filesystem of container NAME (or of a directory, given with a slash) into \
        one squashfs image, the same format `caisson import` writes: its /etc/rc, \
        /etc/environment and /etc/fstab come along, so the image starts as the container did. \
        Every file belongs to root in the image, like an imported one. The image is written to \
        a hidden file beside FILE and renamed when complete: an interrupted or killed export \
        never leaves a FILE that looks finished.

        Examples:
          caisson export dev                  # writes dev.sqsh
          caisson export -o /shared/images/dev-v2.sqsh dev
        """
    )

    @Option(name: [.short, .long], help: ArgumentHelp("Write the image to FILE (default: NAME.sqsh here).", valueName: "FILE"))
    var output: String?

    @Option(help: ArgumentHelp("Compression: zstd[:LEVEL] (default zstd:3), gzip[:LEVEL], lz4, xz or none.", valueName: "ALGO[:LEVEL]"))
    var compression: String = "zstd:3"

    @Flag(name: [.short, .long], help: "Replace FILE if it exists.")
    var force = false

    @Flag(name: [.short, .long], help: "Print only warnings and errors.")
    var quiet = false

    @Argument(help: "The container (or a root filesystem directory) to export.")
    var name: String

    func run() throws {
        let store = ContainerStore(configuration: Configuration.load())
        let root = name.contains("/") ? name : store.path(of: name)
        let output = self.output ?? "\(Path.basename(name)).sqsh"
        let started = Date()
        do {
            guard Files.isDirectory(root) else { throw StoreError.notFound(name) }
            if Files.exists(output) && !force {
                throw ImportError("\(output) already exists: remove it, choose another name with -o, or pass --force")
            }
            var options = SquashfsOptions()
            options.compression = try SquashfsOptions.Compression.parse(compression)
            let temporary = TemporaryOutput(for: output)
            defer { temporary.removeIfPresent() }
            let writer = try SquashfsWriter(path: temporary.path, options: options)
            let tree = try RootfsScanner.scan(root, into: writer) { printError("caisson: export: warning: \($0)") }
            try writer.finish(root: tree)
            try temporary.publish()
            if !quiet {
                printError(String(format: "%@: %@, %.1f s", output, ConsoleProgress.bytes(Int64(writer.bytesWritten)),
                                  Date().timeIntervalSince(started)))
            }
        } catch {
            printError("caisson: export: \(error)")
            throw ExitCode(1)
        }
    }
}
