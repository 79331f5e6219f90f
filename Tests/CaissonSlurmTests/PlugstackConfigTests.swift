import CaissonSlurm
import Testing

@Suite struct PlugstackConfigTests {
    @Test func defaults() throws {
        let config = try PlugstackConfig.parse([])
        #expect(config.caisson == nil)
        #expect(config.runtimePath == "/run/caisson")
        #expect(config.scope == .global)
        #expect(config.sbatchSupport && !config.executeEntrypoint)
        #expect(config.userPaths == ["CAISSON_CONFIG_PATH"])
    }
}
