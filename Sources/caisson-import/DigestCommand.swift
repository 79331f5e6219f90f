import ArgumentParser
import CaissonConfig
import CaissonOCI
import CaissonRegistry
import Foundation

struct DigestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print the manifest digest an image reference points to, without fetching layers.",
        discussion: "A cheap way to see whether a tag moved since the last import (one HEAD request).")

    @Argument(help: "docker://[USER@][REGISTRY#]IMAGE[:TAG]")
    var uri: String

    func run() throws {
        let configuration = Configuration.load()
        guard case .registry(let reference) = try ImageSource.parse(uri) else {
            printError("caisson: digest: only registry references have a digest to look up")
            throw ExitCode(2)
        }
        do {
            let digest = try runBlocking {
                var settings = RegistryClient.Settings()
                settings.insecureRegistries = Set((configuration["CAISSON_INSECURE_REGISTRIES"] ?? "")
                    .split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init))
                let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
                let credentials = CredentialStore(netrcPath: "\(configuration.configPath)/credentials",
                                                  dockerConfigPath: "\(home)/.docker/config.json")
                let client = try RegistryClient(registry: reference.registry,
                                                credential: credentials.credential(for: reference.registry, user: reference.user),
                                                settings: settings)
                defer { Task { await client.shutdown() } }
                return try await client.manifestDigest(repository: reference.repository, reference: reference.reference)
            }
            print(digest)
        } catch {
            printError("caisson: digest: \(error)")
            throw ExitCode(1)
        }
    }
}
