import ArgumentParser
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// `import`, `digest` and `cache` live in the companion program `caisson-import` (the registry
/// client and TLS would otherwise be loaded by every `caisson start`). These entries exist for
/// `caisson --help`; `Caisson.main` hands such command lines to the companion before parsing.
enum ImageTools {
    static let commands: Set<String> = ["import", "digest", "cache", "create", "export", "bundle"]

    /// Next to this binary (a build tree), or in PREFIX/libexec/caisson (an install).
    static func companion() -> String? {
        guard let exe = Files.readLink("/proc/self/exe") else { return nil }
        let bin = Path.parent(exe)
        return ["\(bin)/caisson-import", "\(Path.parent(bin))/libexec/caisson/caisson-import"]
            .first { access($0, X_OK) == 0 }
    }

    static func exec(_ arguments: ArraySlice<String>) -> Never {
        guard let program = companion() else {
            printError("caisson: \(arguments.first ?? "import"): the image tools (caisson-import) are not installed next to caisson or in ../libexec/caisson; reinstall Caisson")
            exit(127)
        }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        execv(program, argv)
        printError("caisson: cannot run \(program): \(String(cString: strerror(errno)))")
        exit(126)
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pull an image into one squashfs file (see `caisson import --help`).")
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unpack an image into a named container (see `caisson create --help`).")
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a named container as a squashfs image (see `caisson export --help`).")
    }

    struct Bundle: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a self-extracting executable of an image and Caisson (see `caisson bundle --help`).")
    }

    struct Digest: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the manifest digest an image reference points to (see `caisson digest --help`).")
    }

    struct Cache: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List or prune the layer cache (see `caisson cache --help`).")
    }
}
