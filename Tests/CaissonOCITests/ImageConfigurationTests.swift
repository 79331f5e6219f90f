import Foundation
import Testing
@testable import CaissonOCI

@Suite struct ImageConfigurationTests {
    @Test func dockerConfigWithIgnoredFields() throws {
        let config = try ImageConfiguration.decode(data: data(Samples.dockerConfig))
        #expect(config.architecture == "amd64")
        #expect(config.os == "linux")
        #expect(config.variant == nil)
        #expect(config.created == "2024-05-20T19:51:21.123456789Z")
        #expect(config.platform == Platform(os: "linux", architecture: "amd64"))
        let c = config.config
        #expect(c.env?.count == 2)
        #expect(c.env?.last == "CUDA_VERSION=12.4.1")
        #expect(c.entrypoint == ["/opt/nvidia/nvidia_entrypoint.sh"])
        #expect(c.cmd == nil)
        #expect(c.workingDir == "/workspace")
        #expect(c.user == "1000:1000")
        #expect(c.volumes == ["/data", "/workspace"])
        #expect(c.exposedPorts == ["6006/tcp", "8888/tcp"])
        #expect(c.labels?["maintainer"] == "NVIDIA CORPORATION")
        #expect(c.stopSignal == "SIGINT")
        #expect(config.rootfs.type == "layers")
        #expect(config.rootfs.diffIDs == [digest("7"), digest("8")])
    }

    @Test func minimalOCIConfig() throws {
        let json = #"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]}}"#
        let config = try ImageConfiguration.decode(data: data(json))
        #expect(config.config == ImageConfiguration.ContainerConfig())
        #expect(config.platform.description == "linux/arm64/v8")
        #expect(config.rootfs.diffIDs.isEmpty)
    }

    @Test func nullConfigAndStringCmd() throws {
        let nullConfig = #"{"architecture":"amd64","os":"linux","config":null,"rootfs":{"type":"layers","diff_ids":["\#(sha("1"))"]}}"#
        #expect(try ImageConfiguration.decode(data: data(nullConfig)).config.entrypoint == nil)
        let stringCmd = #"{"architecture":"amd64","os":"linux","config":{"Cmd":"echo hi","Entrypoint":[],"Volumes":null},"rootfs":{"type":"layers","diff_ids":[]}}"#
        let c = try ImageConfiguration.decode(data: data(stringCmd)).config
        #expect(c.cmd == ["echo hi"])
        #expect(c.entrypoint == [])
        #expect(c.volumes == nil)
    }

    @Test func volumesEncodeBackAsAnObject() throws {
        let config = try ImageConfiguration.decode(data: data(Samples.dockerConfig))
        let encoded = try JSONEncoder().encode(config)
        let object = try JSONSerialization.jsonObject(with: encoded) as? [String: Any]
        let inner = object?["config"] as? [String: Any]
        let volumes = inner?["Volumes"] as? [String: Any]
        #expect(volumes.map { Set($0.keys) } == ["/data", "/workspace"])
        #expect(try ImageConfiguration.decode(data: encoded) == config)
    }

    @Test(arguments: [
        (#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:../../x"]}}"#, "rootfs.diff_ids[0]"),
        (#"{"architecture":"amd64","os":"linux"}"#, "missing field 'rootfs'"),
        (#"{"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#, "missing field 'architecture'"),
        (#"{"architecture":"amd64","os":"linux","config":{"Env":"A=1"},"rootfs":{"type":"layers","diff_ids":[]}}"#, "config.Env"),
        (#"{"architecture":"amd64","os":"linux","config":{"Cmd":7},"rootfs":{"type":"layers","diff_ids":[]}}"#, "config.Cmd"),
        ("not json", "not a valid JSON object"),
    ])
    func rejectsMalformed(_ json: String, _ message: String) {
        let error = failure(try ImageConfiguration.decode(data: data(json)))
        guard case let .invalidConfiguration(reason)? = error else {
            Issue.record("expected invalidConfiguration, got \(String(describing: error))"); return
        }
        #expect(reason.contains(message), "reason: \(reason)")
    }
}
