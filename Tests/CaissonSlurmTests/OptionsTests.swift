import CaissonSlurm
import Testing

@Suite struct OptionsTests {
    @Test func commandLineValues() throws {
        var o = ContainerOptions()
        #expect(!o.enabled)
        try o.apply(.image, "nvcr.io#nvidia/pytorch:24.05")
        try o.apply(.mounts, "/a:/b:ro+nosuid,/c:/d,tmpfs:/t,rel/dir")
        try o.apply(.workdir, "/work")
        try o.apply(.name, "dev:no_exec")
        try o.apply(.save, "out.sqsh")
        try o.apply(.noMountHome, nil)
        try o.apply(.remapRoot, nil)
        try o.apply(.readonly, nil)
        try o.apply(.environment, "A,B_2")
        #expect(o.enabled)
        #expect(o.image == "nvcr.io#nvidia/pytorch:24.05")
        #expect(o.mounts == ["/a:/b:ro+nosuid", "/c:/d", "tmpfs:/t", "rel/dir"])
        #expect(o.workdir == "/work" && o.name == "dev" && o.nameFlag == .noExec && o.save == "out.sqsh")
        #expect(o.mountHome == false && o.remapRoot == true && o.writable == false)
        #expect(o.environment == ["A", "B_2"])
    }

    @Test func slurmMayCallACallbackTwiceWithTheSameValue() throws {
        var o = ContainerOptions()
        try o.apply(.image, "busybox")
        try o.apply(.image, "busybox")
        try o.apply(.mounts, "/a:/b")
        try o.apply(.mounts, "/a:/b")
        try o.apply(.remapRoot, nil)
        try o.apply(.remapRoot, nil)
        #expect(o.mounts == ["/a:/b"])
        #expect(throws: PluginError.self) { try o.apply(.image, "ubuntu") }
        #expect(throws: PluginError.self) { try o.apply(.noRemapRoot, nil) }
    }

    @Test(arguments: [
        (ContainerOptions.ID.image, ""), (.mounts, "/a:"), (.mounts, ":/b"), (.mounts, "/a:relative"), (.mounts, "tmpfs"),
        (.workdir, "relative"), (.name, "a/b"), (.name, "x:sometimes"), (.name, ""), (.environment, "1BAD"), (.environment, "A-B"),
    ])
    func badValues(_ id: ContainerOptions.ID, _ value: String) {
        var o = ContainerOptions()
        #expect(throws: PluginError.self) { try o.apply(id, value) }
    }

    @Test func environmentFillsWhatTheCommandLineLeft() throws {
        var o = ContainerOptions()
        try o.apply(.workdir, "/cli")
        let env = ["PYXIS_CONTAINER_IMAGE": "pyxis-image", "CAISSON_CONTAINER_IMAGE": "caisson-image",
                   "PYXIS_CONTAINER_WORKDIR": "/env", "PYXIS_CONTAINER_MOUNTS": "/x:/y,/z:/w",
                   "PYXIS_CONTAINER_WRITABLE": "0", "PYXIS_CONTAINER_REMAP_ROOT": "yes",
                   "PYXIS_CONTAINER_MOUNT_HOME": "false", "CAISSON_CONTAINER_ENTRYPOINT": "1",
                   "PYXIS_CONTAINER_ENTRYPOINT_LOG": "1", "PYXIS_CONTAINER_NAME": "n:exec", "PYXIS_CONTAINER_ENV": "A,B"]
        try o.applyEnvironment { env[$0] }
        #expect(o.image == "caisson-image", "Caisson's spelling wins over pyxis's")
        #expect(o.workdir == "/cli", "the command line wins")
        #expect(o.mounts == ["/x:/y", "/z:/w"])
        #expect(o.writable == false && o.remapRoot == true && o.mountHome == false)
        #expect(o.entrypoint == true && o.entrypointLog == true)
        #expect(o.name == "n" && o.nameFlag == .exec && o.environment == ["A", "B"])
    }

    @Test func pairedFlagsFromTheEnvironmentRespectTheCommandLine() throws {
        var o = ContainerOptions()
        try o.apply(.noRemapRoot, nil)
        try o.applyEnvironment { ["PYXIS_CONTAINER_REMAP_ROOT": "1", "PYXIS_CONTAINER_READONLY": "1"][$0] }
        #expect(o.remapRoot == false)
        #expect(o.writable == false)
        var p = ContainerOptions()
        try p.applyEnvironment { ["PYXIS_CONTAINER_READONLY": "0"][$0] }
        #expect(p.writable == true)
        var q = ContainerOptions()
        #expect(throws: PluginError.self) { try q.applyEnvironment { ["PYXIS_CONTAINER_WRITABLE": "perhaps"][$0] } }
    }

    @Test func tableHasPyxisNames() {
        let names = ContainerOptions.table.map(\.name)
        for expected in ["container-image", "container-mounts", "container-workdir", "container-name", "container-save",
                         "container-mount-home", "no-container-mount-home", "container-remap-root", "no-container-remap-root",
                         "container-entrypoint", "no-container-entrypoint", "container-entrypoint-log", "container-writable",
                         "container-readonly", "container-env"] {
            #expect(names.contains(expected), "\(expected)")
        }
        #expect(Set(ContainerOptions.table.map(\.id.rawValue)).count == ContainerOptions.table.count)
    }
}
