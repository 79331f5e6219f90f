import ArgumentParser
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// The network half of Caisson (registry client, TLS, HTTP), kept out of the `caisson` binary
/// that every container start loads: linking it there made `caisson start` 3× slower (measured,
/// bench/README.md). `caisson import|digest|cache ...` exec this program with the same arguments.
@main
struct CaissonImportTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caisson",
        abstract: "Caisson's image tools (run through `caisson import|create|export|bundle|digest|cache`).",
        subcommands: [Import.self, CreateCommand.self, ExportCommand.self, BundleCommand.self, DigestCommand.self, CacheCommand.self]
    )
}
