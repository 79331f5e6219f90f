import CaissonSlurm
import Testing

@Suite struct PlugstackConfigTests {
    @Test func defaults() throws {
        let config = try PlugstackConfig.parse([])
        #expect(config.caisson == nil)
        #expect(config.runtimePath == "/run/caisson")
        #expect(config.scope == .global)
        #expect(config.sbatchSupport && !config.executeEntrypoint)
        #expect(config.entrypointTimeout == 300)
        #expect(config.userPaths == ["CAISSON_CONFIG_PATH"])
    }

    @Test func everyKey() throws {
        let config = try PlugstackConfig.parse([
            "caisson=/opt/caisson/bin/caisson", "runtime_path=/run/ct/", "container_scope=job", "sbatch_support=no",
            "execute_entrypoint=Y", "user_paths=CAISSON_CACHE_PATH,CAISSON_DATA_PATH", "entrypoint_timeout=0",
        ])
        #expect(config.caisson == "/opt/caisson/bin/caisson")
        #expect(config.runtimePath == "/run/ct")
        #expect(config.scope == .job)
        #expect(!config.sbatchSupport && config.executeEntrypoint)
        #expect(config.entrypointTimeout == 0)
        #expect(config.userPaths == ["CAISSON_CACHE_PATH", "CAISSON_DATA_PATH"])
        #expect(try PlugstackConfig.parse(["runtime_path="]).runtimePath == "")
    }

    @Test(arguments: [
        ["unknown=1"], ["container_scope=node"], ["sbatch_support=maybe"], ["runtime_path=run/x"], ["caisson=bin/caisson"],
        ["user_paths=LD_PRELOAD"], ["execute_entrypoint"],
        ["entrypoint_timeout=5m"], ["entrypoint_timeout=-1"],
    ])
    func mistakesAreErrors(_ arguments: [String]) {
        #expect(throws: PluginError.self) { try PlugstackConfig.parse(arguments) }
    }

    @Test func defaultCaissonIsBesideThePluginsPrefix() {
        #expect(PlugstackConfig.defaultCaisson(pluginPath: "/usr/local/lib/caisson/spank_caisson.so") == "/usr/local/bin/caisson")
        #expect(PlugstackConfig.defaultCaisson(pluginPath: "/opt/c/lib/spank_caisson.so") == "/opt/c/bin/caisson")
        #expect(PlugstackConfig.defaultCaisson(pluginPath: "/src/.build/debug/libspank_caisson.so") == "/src/.build/debug/caisson")
    }
}
