import CaissonSystem

/// Why a container did not start: the stage that failed, the cause, and what to do about it.
/// Rendered as one line, e.g.
/// `caisson: start: mounts: /mnt/x: target escapes the container root (…); …`
public struct StartError: Error, CustomStringConvertible {
    public enum Stage: String, Sendable {
        case rootfs, namespaces, identity, mounts, environment, hooks, workdir, seccomp, exec
    }

    public let stage: Stage
    public let message: String
    public let hint: String?
    /// The process exit status `caisson start` uses for this error (125, or 126/127 for exec failures,
    /// the conventions of env(1) and the shells).
    public let exitCode: Int32

    public init(_ stage: Stage, _ message: String, hint: String? = nil, exitCode: Int32 = 125) {
        self.stage = stage
        self.message = message
        self.hint = hint
        self.exitCode = exitCode
    }

    public init(_ stage: Stage, _ error: SystemError, hint: String? = nil) {
        self.init(stage, error.description, hint: hint)
    }

    /// Wraps any error from a stage; StartErrors pass through unchanged.
    public static func wrap(_ stage: Stage, _ error: any Error, hint: String? = nil) -> StartError {
        if let error = error as? StartError { return error }
        if let error = error as? SystemError { return StartError(stage, error, hint: hint) }
        return StartError(stage, "\(error)", hint: hint)
    }

    public var description: String {
        var text = "\(stage.rawValue): \(message)"
        if let hint { text += "; \(hint)" }
        return text
    }
}
