import CaissonSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What an import reports as it goes. Called from several threads.
public protocol ImportProgress: Sendable {
    func status(_ text: String)
    func resolved(layers: [Int64], digest: String)
    func downloaded(layer: Int, bytes: Int)
    func merging(layer: Int)
    func merged(layer: Int)
    func warn(_ text: String)
    func finish(_ summary: String)
}

/// On a terminal: a live display, one line per layer (bytes, rate, state) and an overall line
/// with the total rate and ETA, redrawn ten times a second. Elsewhere (logs, batch jobs):
/// warnings and a one-line summary only. `quiet`: warnings and errors only.
public final class ConsoleProgress: ImportProgress, @unchecked Sendable {
    public enum Mode: Sendable { case live, lines, quiet }

    let mode: Mode
    let lock = NSLock()
    var sizes: [Int64] = []
    var received: [Int64] = []
    var states: [String] = []
    var digest = ""
    var statusText = ""
    let started = Date()
    var linesDrawn = 0
    var timer: DispatchSourceTimer?

    public init(mode: Mode) {
        self.mode = mode
        if mode == .live {
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + 0.1, repeating: 0.1)
            timer.setEventHandler { [weak self] in self?.redraw() }
            timer.resume()
            self.timer = timer
        }
    }

    public static func forStandardError(quiet: Bool) -> ConsoleProgress {
        ConsoleProgress(mode: quiet ? .quiet : (isatty(2) != 0 ? .live : .lines))
    }

    public func status(_ text: String) { lock.lock(); statusText = text; lock.unlock() }

    public func resolved(layers: [Int64], digest: String) {
        lock.lock()
        sizes = layers
        received = Array(repeating: 0, count: layers.count)
        states = Array(repeating: "waiting", count: layers.count)
        self.digest = digest
        lock.unlock()
    }

    public func downloaded(layer: Int, bytes: Int) {
        lock.lock()
        if layer < received.count {
            received[layer] += Int64(bytes)
            states[layer] = received[layer] >= sizes[layer] ? "downloaded" : "downloading"
        }
        lock.unlock()
    }

    public func merging(layer: Int) { set(layer, "unpacking") }
    public func merged(layer: Int) { set(layer, "done") }

    private func set(_ layer: Int, _ state: String) {
        lock.lock()
        if layer < states.count { states[layer] = state }
        lock.unlock()
    }

    public func warn(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        clearLive()
        write("caisson: warning: \(text)\n")
    }

    public func finish(_ summary: String) {
        timer?.cancel()
        lock.lock(); defer { lock.unlock() }
        clearLive()
        if mode != .quiet { write(summary + "\n") }
    }

    private func redraw() {
        lock.lock(); defer { lock.unlock() }
        clearLive()
        let elapsed = max(Date().timeIntervalSince(started), 0.001)
        var lines: [String] = []
        for (i, size) in sizes.enumerated() {
            lines.append(String(format: "  layer %2d/%d  %@ / %@  %@", i + 1, sizes.count,
                                ConsoleProgress.bytes(received[i]), ConsoleProgress.bytes(size), states[i]))
        }
        let total = sizes.reduce(0, +), got = received.reduce(0, +)
        let rate = Double(got) / elapsed
        let eta = rate > 0 && got < total ? String(format: ", ETA %.0fs", Double(total - got) / rate) : ""
        lines.append("  \(statusText): \(ConsoleProgress.bytes(got)) of \(ConsoleProgress.bytes(total)) at \(ConsoleProgress.bytes(Int64(rate)))/s\(eta)")
        write(lines.joined(separator: "\n") + "\n")
        linesDrawn = lines.count
    }

    private func clearLive() {
        guard mode == .live, linesDrawn > 0 else { return }
        write("\u{1B}[\(linesDrawn)A\u{1B}[J")
        linesDrawn = 0
    }

    private func write(_ text: String) {
        _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    public static func bytes(_ n: Int64) -> String { ByteCount.text(n) }
}
