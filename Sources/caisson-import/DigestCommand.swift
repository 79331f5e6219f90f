import ArgumentParser
import CaissonConfig
import CaissonSystem
import CaissonImport
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
                let client = try Importer.client(for: reference, configuration: configuration)
                do {
                    let digest = try await client.manifestDigest(repository: reference.repository, reference: reference.reference)
                    await client.shutdown()
                    return digest
                } catch {
                    await client.shutdown()
                    throw error
                }
            }
            print(digest)
        } catch {
            printError("caisson: digest: \(error)")
            throw ExitCode(1)
        }
    }
}
