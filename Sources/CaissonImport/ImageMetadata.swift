import CaissonOCI
import Foundation

/// The image configuration turned into files inside the image, in enroot's image format, so a
/// `.sqsh` is self-describing and `caisson start` needs nothing else:
/// - `/etc/environment` — the image's Env, one `NAME=VALUE` per line;
/// - `/etc/rc` — a POSIX shell script: cd to WorkingDir, exec Entrypoint + (arguments or Cmd);
/// - `/etc/fstab` — one tmpfs entry per Volume (appended to the image's own lines);
/// - `/etc/caisson/image.json` — where the image came from: source, manifest and config digests.
public enum ImageMetadata {
    public static func environment(_ config: ImageConfiguration) -> String {
        (config.config.env ?? []).filter { $0.contains("=") && !$0.contains("\n") }.map { "\($0)\n" }.joined()
    }

    public static func rc(_ config: ImageConfiguration, source: String) -> String {
        let entrypoint = config.config.entrypoint ?? []
        let cmd = config.config.cmd ?? []
        var lines = ["#!/bin/sh", "# The image's entrypoint, written by caisson import from \(source.replacingOccurrences(of: "\n", with: " ")).",
                     "# Arguments replace the image's Cmd, as with docker run."]
        if let workdir = config.config.workingDir, !workdir.isEmpty {
            lines.append("mkdir -p \(quote(workdir)) 2>/dev/null; cd \(quote(workdir)) || exit 1")
        }
        let entry = entrypoint.map(quote).joined(separator: " ")
        let defaults = cmd.map(quote).joined(separator: " ")
        if entrypoint.isEmpty {
            lines.append("if [ $# -gt 0 ]; then exec \"$@\"; fi")
            lines.append(cmd.isEmpty ? "exec /bin/sh" : "exec \(defaults)")
        } else {
            lines.append("if [ $# -gt 0 ]; then exec \(entry) \"$@\"; fi")
            lines.append("exec \(entry)\(defaults.isEmpty ? "" : " " + defaults)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func fstab(_ config: ImageConfiguration, existing: String?) -> String? {
        let volumes = (config.config.volumes ?? []).filter { $0.hasPrefix("/") && !$0.contains(" ") && !$0.contains("\n") }.sorted()
        guard !volumes.isEmpty else { return nil }
        var text = existing ?? ""
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        text += "# Volumes of the image, added by caisson import\n"
        text += volumes.map { "tmpfs \($0) tmpfs x-create=dir,nosuid,nodev\n" }.joined()
        return text
    }

    public struct Provenance: Codable, Sendable, Equatable {
        public var source: String
        public var manifestDigest: String
        public var configDigest: String
        public var platform: String
        public var created: String?
        public var importedBy: String
    }

    public static func provenance(_ value: Provenance) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self) + "\n"
    }

    /// Single-quotes a word for /bin/sh.
    static func quote(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
