/// Why the plugin could not set a step's container up, named by stage so that the line srun
/// prints says where it broke: `caisson: spank: import: docker://x failed (exit status 1)`.
/// The lines Caisson itself printed (its own stage-named errors) follow it on srun's stderr.
public struct PluginError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Stage: String, Sendable {
        case options, config, job, `import`, name, create, start, join, environment, save, cleanup
    }

    public let stage: Stage
    public let message: String
    /// What Caisson wrote on stderr, forwarded line by line after the plugin's own line.
    public let details: [String]

    public init(_ stage: Stage, _ message: String, details: [String] = []) {
        self.stage = stage
        self.message = message
        self.details = details
    }

    public var description: String { "caisson: spank: \(stage.rawValue): \(message)" }
}
