import ArgumentParser
import CaissonConfig
import CaissonRuntime
import CaissonStore
import CaissonSystem

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a running container.",
        discussion: """
        Joins the user and mount namespaces of a running container — given by a PID of one of \
        its processes, or by the name of a container started with `caisson start NAME` — and \
        runs COMMAND there (default: /bin/sh), like `enroot exec`. The command gets the \
        container process's environment and working directory unless --env and --workdir say \
        otherwise, the same identity (--root containers keep the fakeroot filter), and only \
        descriptors 0-2. Exit status: the command's own; 125 when the container cannot be \
        joined, 126/127 when the command cannot be run or found.

        Examples:
          caisson start --rw dev sleep infinity &
          caisson exec dev ps -ef
          caisson exec 12345 cat /etc/os-release
        """
    )

    @Option(name: [.short, .long], help: ArgumentHelp("Set NAME to VALUE, or pass the host's NAME.", valueName: "NAME[=VALUE]"))
    var env: [String] = []

    @Option(name: [.short, .long], help: ArgumentHelp("Working directory inside the container.", valueName: "DIR"))
    var workdir: String?

    @Argument(help: ArgumentHelp("A PID, or the name of a running container.", valueName: "PID|NAME"))
    var container: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func run() throws {
        do {
            let pid = try Exec.findProcess(container)
            let join = ContainerJoin(pid: pid)
            var environment = try join.environment()
            let host = ProcessEnvironment.dictionary()
            for flag in env { try environment.apply(flag: flag, host: host) }
            try join.exec(command.first == "--" ? Array(command.dropFirst()) : command,
                          environment: environment, workdir: workdir)
        } catch {
            printError("caisson: exec: \(error)")
            throw ExitCode(error.exitCode)
        }
    }

    static func findProcess(_ container: String) throws(StartError) -> Int32 {
        if let pid = Int32(container), pid > 0 { return pid }
        let store = ContainerStore(configuration: Configuration.load())
        guard store.exists(container) else {
            throw StartError(.rootfs, "no container named '\(container)' and not a PID", hint: "see `caisson list --fancy`")
        }
        guard let pid = store.running?.pids(of: container).first else {
            throw StartError(.rootfs, "container '\(container)' is not running", hint: "start it with `caisson start \(container)`")
        }
        return pid
    }
}
