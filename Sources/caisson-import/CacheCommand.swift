import ArgumentParser
import CaissonConfig
import CaissonSystem
import CaissonRegistry
import Foundation

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "List or prune the layer and image cache.",
        discussion: "Layers are cached by digest in CAISSON_CACHE_PATH and shared by every import that uses them; finished images are kept by manifest digest and squashfs settings, so importing an image again is a copy.",
        subcommands: [List.self, Prune.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List cached layers and images, most recently used first.")

        func run() throws {
            let store = try BlobStore(root: Configuration.load().cachePath)
            let entries = store.entries()
            let formatter = ISO8601DateFormatter()
            for entry in entries {
                print("\(entry.digest)  \(String(entry.size).leftPadded(12))  \(formatter.string(from: entry.lastUsed))")
            }
            print("\(Quantity.summary(entries)) in \(store.root)")
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove cached layers and images by age or to fit a size.",
            discussion: "Examples: caisson cache prune --older-than 30d; caisson cache prune --max-size 50G; caisson cache prune --all")

        @Option(help: ArgumentHelp("Remove layers unused for longer than this (s, m, h, d suffixes).", valueName: "AGE"))
        var olderThan: String?

        @Option(help: ArgumentHelp("Then remove the least recently used layers until the cache is at most this big (K, M, G, T suffixes).", valueName: "SIZE"))
        var maxSize: String?

        @Flag(help: "Remove every cached layer.")
        var all = false

        func run() throws {
            guard all || olderThan != nil || maxSize != nil else {
                throw ValidationError("say what to prune: --older-than AGE, --max-size SIZE or --all")
            }
            let age = try olderThan.map { text throws -> TimeInterval in
                guard let seconds = Quantity.seconds(text) else { throw ValidationError("--older-than: not a duration: \(text) (e.g. 12h, 30d)") }
                return seconds
            }
            let size = try maxSize.map { text throws -> Int64 in
                guard let bytes = Quantity.bytes(text) else { throw ValidationError("--max-size: not a size: \(text) (e.g. 500M, 50G)") }
                return bytes
            }
            let store = try BlobStore(root: Configuration.load().cachePath)
            let removed = store.prune(olderThan: all ? 0 : age, maxSize: all ? 0 : size)
            print("removed \(Quantity.summary(removed))")
        }
    }
}

enum Quantity {
    /// "3 layers, 1 image, 123456 bytes"
    static func summary(_ entries: [BlobStore.Entry]) -> String {
        let images = entries.filter { $0.digest.hasPrefix("image:") }.count
        let layers = entries.count - images
        let bytes = entries.reduce(Int64(0)) { $0 + $1.size }
        return "\(layers) layer\(layers == 1 ? "" : "s"), \(images) image\(images == 1 ? "" : "s"), \(bytes) bytes"
    }

    static func seconds(_ text: String) -> TimeInterval? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800]
        guard let last = text.last else { return nil }
        if let unit = units[last], let value = Double(text.dropLast()) { return value * unit }
        return Double(text)
    }

    static func bytes(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        guard let last = text.uppercased().last else { return nil }
        if let unit = units[last], let value = Double(text.dropLast()) { return Int64(value * Double(unit)) }
        return Int64(text)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
