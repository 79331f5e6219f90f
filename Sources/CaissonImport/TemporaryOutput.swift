import CaissonSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The hidden file an image is written to before it is complete (`.NAME.sqsh.partial-HOST-PID`,
/// next to the output so the final rename is atomic). It is removed on failure, and on SIGINT,
/// SIGTERM or SIGHUP: an interrupted import never leaves something that looks like an image.
/// What a SIGKILL left behind for the same output on this host is collected by the next writer.
public final class TemporaryOutput: @unchecked Sendable {
    public let path: String
    public let output: String

    public init(for output: String) {
        self.output = output
        let url = URL(fileURLWithPath: output)
        let directory = url.deletingLastPathComponent().path
        for entry in Files.list(directory) where ScratchName.isAbandoned(entry, kinds: ["partial"], name: url.lastPathComponent) {
            unlink("\(directory)/\(entry)")
        }
        path = "\(directory)/\(ScratchName.make(url.lastPathComponent, kind: "partial"))"
        SignalCleanup.shared.register(path)
    }

    public func publish() throws {
        guard rename(path, output) == 0 else {
            throw ImportError("cannot rename \(path) to \(output): \(String(cString: strerror(errno)))")
        }
        SignalCleanup.shared.unregister(path)
        let dir = open(URL(fileURLWithPath: output).deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    public func removeIfPresent() {
        unlink(path)
        SignalCleanup.shared.unregister(path)
    }
}

/// Removes registered partial outputs (files or directories) on SIGINT, SIGTERM or SIGHUP, then
/// dies of the signal. SIGKILL cannot be caught: what it leaves is hidden and collected later.
public final class SignalCleanup: @unchecked Sendable {
    public static let shared = SignalCleanup()
    private var paths: Set<String> = []
    private let lock = NSLock()
    private var sources: [DispatchSourceSignal] = []

    private init() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                self?.removeAll()
                // Die of the same signal, as an uncaught one would: libdispatch receives signals
                // through a blocked mask, so unblock it on this thread and raise it here.
                signal(sig, SIG_DFL)
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, sig)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                raise(sig)
                _exit(128 + sig)
            }
            source.resume()
            sources.append(source)
        }
    }

    public func register(_ path: String) { lock.lock(); paths.insert(path); lock.unlock() }
    public func unregister(_ path: String) { lock.lock(); paths.remove(path); lock.unlock() }

    private func removeAll() {
        lock.lock(); defer { lock.unlock() }
        for path in paths where unlink(path) != 0 && errno == EISDIR {
            try? FileTree.remove(path)  // an archive's scratch directory, a partial container
        }
        paths.removeAll()
    }
}
