import ArgumentParser

enum CaissonVersion {
    static let current = "0.1.0"
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Caisson's version.")

    func run() {
        print("caisson \(CaissonVersion.current)")
    }
}
