import ArgumentParser
import CaissonImport
import CaissonSquashfs
import CaissonSystem
import Crypto
import Foundation

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Make one self-extracting executable of an image and Caisson.",
        discussion: """
        Writes FILE (default: NAME.run), a shell script followed by the `caisson` program and \
        the image. On any Linux machine with user namespaces and squashfuse, with or without \
        Caisson installed, `./NAME.run COMMAND...` runs COMMAND in the image, and \
        `./NAME.run` alone runs its entrypoint. The program is unpacked once per user and \
        version into $XDG_RUNTIME_DIR (or $TMPDIR, /tmp); the image is used where it lies, never \
        extracted.

        `./NAME.run --verify` checks the host (`caisson check`); `./NAME.run --help` explains. \
        Options before COMMAND are `caisson start`'s (--rw, --root, -m, -e, -w, --mount-home, \
        --entrypoint); `--` ends them.

        Examples:
          caisson bundle -o solver.run solver.sqsh && scp solver.run cluster:
          ./solver.run --root -m /data:/data ./solve input.cfg
        """
    )

    @Option(name: [.short, .long], help: ArgumentHelp("Write the bundle to FILE (default: NAME.run here).", valueName: "FILE"))
    var output: String?

    @Flag(name: [.short, .long], help: "Replace FILE if it exists.")
    var force = false

    @Argument(help: "The squashfs image to bundle.")
    var image: String

    func run() throws {
        let name = Path.basename(image).replacingOccurrences(of: ".sqsh", with: "")
        let output = self.output ?? "\(name).run"
        do {
            _ = try SquashfsExtractor(imagePath: image)  // refuse anything that is not an image
            guard let runtime = BundleCommand.runtimeProgram() else {
                throw ImportError("the caisson program is not installed beside this one; reinstall Caisson")
            }
            if Files.exists(output) && !force {
                throw ImportError("\(output) already exists: remove it, choose another name with -o, or pass --force")
            }
            let program = try Data(contentsOf: URL(fileURLWithPath: runtime))
            let imageSize = try FileManager.default.attributesOfItem(atPath: image)[.size] as? UInt64 ?? 0
            let key = SHA256.hash(data: program).prefix(8).map { String(format: "%02x", $0) }.joined()
            let header = BundleCommand.header(name: name, programSize: program.count, imageSize: imageSize, key: key)

            let temporary = TemporaryOutput(for: output)
            defer { temporary.removeIfPresent() }
            FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o755])
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary.path))
            out.write(Data(header.utf8))
            out.write(program)
            let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: image))
            while let chunk = try input.read(upToCount: 1 << 22), !chunk.isEmpty { out.write(chunk) }
            try out.synchronize()
            try out.close()
            try temporary.publish()
            printError("\(output): \(ConsoleProgress.bytes(Int64(header.utf8.count + program.count) + Int64(imageSize))); run ./\(Path.basename(output)) --help")
        } catch {
            printError("caisson: bundle: \(error)")
            throw ExitCode(1)
        }
    }

    /// `caisson` beside this program (a build tree) or in PREFIX/bin (an install).
    static func runtimeProgram() -> String? {
        guard let me = Files.readLink("/proc/self/exe") else { return nil }
        let dir = Path.parent(me)
        return ["\(dir)/caisson", "\(Path.parent(Path.parent(dir)))/bin/caisson"].first { access($0, X_OK) == 0 }
    }

    /// The script at the front of a bundle; the offsets it holds depend on its own length, so it
    /// is rendered until that length stops changing.
    static func header(name: String, programSize: Int, imageSize: UInt64, key: String) -> String {
        func header(_ programOffset: Int) -> String {
            return """
            #!/bin/sh
            # \(name).run: a container image with the Caisson runtime, made by `caisson bundle`.
            # Run `sh \(name).run --help` to read what it does. The script ends at the first NUL byte.
            set -eu
            self=$(readlink -f -- "$0")
            program_offset=\(programOffset)
            program_size=\(programSize)
            image_offset=\(programOffset + programSize)
            dir="${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/caisson-bundle-$(id -u)"
            bin="$dir/caisson-\(key)"
            case "${1:-}" in
            --help|-h)
                prog=$(basename -- "$0")
                cat <<USAGE
            Usage: $prog [START-OPTIONS] [--] [COMMAND [ARG...]]
                   $prog --verify

            Runs COMMAND (default: the image's entrypoint) in the container image held in this file,
            as you, with only user and mount namespaces (no root, no daemon). START-OPTIONS are those
            of "caisson start": --rw (changes vanish at exit), --root, -m SRC[:DST[:OPTS]], -e NAME[=VALUE],
            -w DIR, --mount-home, --entrypoint. --verify checks that this host can run it.
            The image: \(name).
            Needs: Linux with unprivileged user namespaces, /dev/fuse and squashfuse.
            USAGE
                exit 0 ;;
            esac
            if [ ! -x "$bin" ]; then
                mkdir -p "$dir" && chmod 700 "$dir"
                tail -c +$((program_offset + 1)) -- "$self" | head -c "$program_size" > "$bin.$$"
                chmod 755 "$bin.$$" && mv -f "$bin.$$" "$bin"
            fi
            if [ "${1:-}" = --verify ]; then exec "$bin" check; fi
            # Options first, then the image, then the command: `caisson start`'s order.
            count=$#; placed=0
            while [ "$count" -gt 0 ]; do
                a=$1; shift; count=$((count - 1))
                if [ "$placed" = 0 ]; then
                    case $a in
                    --) set -- "$@" "$self"; placed=1; continue ;;
                    -m|--mount|-e|--env|-w|--workdir|--keep-fd)
                        [ "$count" -gt 0 ] || { echo "$(basename -- "$0"): $a needs a value" >&2; exit 125; }
                        set -- "$@" "$a" "$1"; shift; count=$((count - 1)); continue ;;
                    -*) set -- "$@" "$a"; continue ;;
                    *) set -- "$@" "$self"; placed=1 ;;
                    esac
                fi
                set -- "$@" "$a"
            done
            [ "$placed" = 1 ] || set -- "$@" "$self"
            exec "$bin" start --image-offset "$image_offset" "$@"
            exit 125

            """
        }
        // A NUL after the script keeps `file` and editors from taking the rest for text.
        var size = header(0).utf8.count + 1
        while header(size).utf8.count + 1 != size { size = header(size).utf8.count + 1 }
        return header(size) + "\0"
    }
}
