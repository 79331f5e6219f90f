import ArgumentParser
import CaissonConfig
import CaissonSystem
import CaissonImport
import CaissonOCI
import CaissonSquashfs
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Pull an image into one squashfs file.",
        discussion: """
        URI is where the image comes from:
          docker://[USER@][REGISTRY#]IMAGE[:TAG|@sha256:DIGEST]   a registry (enroot's syntax;
              REGISTRY/IMAGE also works when REGISTRY has a dot or a port; Docker Hub by default)
          oci://DIR[:TAG]            an OCI image layout directory

        The result is one file (default ./NAME.sqsh, e.g. nvidia+pytorch+24.05-py3.sqsh) that \
        `caisson start` runs and that a parallel filesystem can serve to every node. Layers are \
        verified by size and sha256 and cached by digest in CAISSON_CACHE_PATH, shared by \
        concurrent imports; the output appears only once it is complete.

        Credentials: `machine REGISTRY login USER password SECRET` lines in \
        $CAISSON_CONFIG_PATH/credentials (netrc format), or ~/.docker/config.json. Registries \
        reached over plain HTTP must be listed in CAISSON_INSECURE_REGISTRIES.

        Examples:
          caisson import docker://ubuntu:24.04
          caisson import -o pytorch.sqsh docker://nvcr.io#nvidia/pytorch:24.05-py3
          caisson import --platform linux/arm64 docker://registry.example.org:5000/team/app:1.2
        """
    )

    @Option(name: [.short, .long], help: ArgumentHelp("Write the image to FILE.", valueName: "FILE"))
    var output: String?

    @Option(help: ArgumentHelp("The platform to pick from a multi-platform image (default: this machine's).", valueName: "OS/ARCH[/VARIANT]"))
    var platform: String?

    @Option(help: ArgumentHelp("The architecture to pick (shorthand for --platform linux/ARCH).", valueName: "ARCH"))
    var arch: String?

    @Option(help: ArgumentHelp("Compression: zstd[:LEVEL] (default zstd:3), gzip[:LEVEL], lz4, xz or none.", valueName: "ALGO[:LEVEL]"))
    var compression: String = "zstd:3"

    @Flag(help: "Replace the output file if it exists.")
    var force = false

    @Flag(name: [.short, .long], help: "Print only warnings and errors.")
    var quiet = false

    @Flag(help: "Keep the image only in the image cache (CAISSON_CACHE_PATH/images) and print its path there; a cached image is reused after a manifest check. For launchers that start the cached file directly.")
    var cached = false

    @Argument(help: "The image to import.")
    var uri: String

    func run() throws {
        let configuration = Configuration.load()
        let source: ImageSource
        let target: Platform
        var squashfs = SquashfsOptions()
        do {
            source = try ImageSource.parse(uri)
            if let platform { target = try Platform.parse(platform) }
            else if let arch { target = try Platform.parse("linux/\(arch)") }
            else { target = Platform.current }
            squashfs.compression = try SquashfsOptions.Compression.parse(compression)
        } catch {
            printError("caisson: import: \(error)")
            throw ExitCode(2)
        }
        var request = ImportRequest(source: source, output: output, platform: target, squashfs: squashfs)
        request.force = force
        request.intoCache = cached
        if cached && output != nil {
            printError("caisson: import: --cached and --output exclude each other")
            throw ExitCode(2)
        }
        let progress = ConsoleProgress.forStandardError(quiet: quiet)
        let started = Date()
        do {
            let result = try runBlocking { [request] in
                try await Importer(configuration: configuration, request: request, progress: progress).run()
            }
            let seconds = Date().timeIntervalSince(started)
            progress.finish(String(format: "%@: %d layers, %@, %.1f s (%@)", result.output, result.layers,
                                   ConsoleProgress.bytes(Int64(result.bytes)), seconds, result.manifestDigest.description))
            if cached { print(result.output) }
        } catch {
            progress.finish("")
            printError("caisson: import: \(error)")
            throw ExitCode(1)
        }
    }
}
