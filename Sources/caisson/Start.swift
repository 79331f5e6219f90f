import ArgumentParser
import CaissonConfig
import CaissonRuntime
import CaissonSystem

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in a container.",
        discussion: """
        ROOTFS is a directory holding a root filesystem. The command runs as you (same uid, \
        same groups, same $HOME path) with the host's network, IPC, PIDs and cgroups, in new \
        user and mount namespaces only. Caisson execs the command: its exit status and signals \
        are yours. Without COMMAND the image's /etc/rc entrypoint runs, or /bin/sh.

        The root filesystem is read-only unless --rw: writes go nowhere and the image is never \
        changed. /proc, /sys and /dev come from the host (a minimal /dev with \
        CAISSON_RESTRICT_DEV=y), /tmp is a private tmpfs, and /etc/passwd and /etc/group list \
        you. Then come mounts from mounts.d/*.fstab, the image's /etc/fstab (tmpfs only) and \
        --mount; every mount target is resolved inside the container, so an image's symlinks \
        cannot redirect a mount onto the host.

        The environment is the host's (minus loader and module-system variables), then the \
        image's /etc/environment, environ.d/*.env, and --env. Executables in hooks.d/ run \
        before the command with CAISSON_ROOTFS, CAISSON_PID, CAISSON_ENVIRON and CAISSON_MOUNTS.

        Exit status: the command's own, or 125 when Caisson could not start the container, \
        126 when the command cannot be executed, 127 when it is not found.

        Examples:
          caisson start ./rootfs id -un
          caisson start --rw --root ./rootfs apt-get install -y python3
          caisson start -m /scratch/data:/data:ro -e OMP_NUM_THREADS=8 ./rootfs ./solver
        """
    )

    @Flag(name: .long, help: "Make the root filesystem writable (changes are kept in ROOTFS).")
    var rw = false

    @Flag(name: .long, help: "Appear as uid 0 (root) inside; chown/setuid calls succeed without effect.")
    var root = false

    @Flag(inversion: .prefixedNo, help: "Bind your home directory into the container (default: CAISSON_MOUNT_HOME).")
    var mountHome: Bool?

    @Option(name: [.short, .long], help: ArgumentHelp(
        "Bind-mount SRC at DST (default: same path). OPTIONS: ro, nosuid, nodev, noexec, rbind/bind, x-create=dir|file|auto, nofail; separated by , or +. SRC `tmpfs` mounts a tmpfs.",
        valueName: "SRC[:DST[:OPTIONS]]"))
    var mount: [String] = []

    @Option(name: [.short, .long], help: ArgumentHelp("Set NAME to VALUE, or pass the host's NAME.", valueName: "NAME[=VALUE]"))
    var env: [String] = []

    @Option(name: [.short, .long], help: ArgumentHelp("Working directory inside the container (default: the current directory if it exists there, else $HOME, else /).", valueName: "DIR"))
    var workdir: String?

    @Flag(name: .long, help: "Run the image's /etc/rc entrypoint with COMMAND as its arguments.")
    var entrypoint = false

    @Option(name: .customLong("keep-fd"), help: ArgumentHelp("Keep file descriptor N open in the container (others above 2 are closed).", valueName: "N"))
    var keepFD: [Int32] = []

    @Argument(help: "The root filesystem directory.")
    var rootfs: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    var arguments: StartArguments {
        StartArguments(rw: rw, root: root, mountHome: mountHome, mounts: mount, env: env, workdir: workdir,
                       entrypoint: entrypoint, keepFD: keepFD, rootfs: rootfs,
                       command: command.first == "--" ? Array(command.dropFirst()) : command)
    }

    func run() throws {
        try Start.run(arguments)
    }

    static func run(_ arguments: StartArguments) throws {
        let configuration = Configuration.load()
        for warning in configuration.warnings { printError("caisson: warning: \(warning)") }
        var spec = ContainerSpec(rootfs: arguments.rootfs)
        spec.command = arguments.command
        spec.useEntrypoint = arguments.entrypoint
        spec.writable = arguments.rw || configuration.flag("CAISSON_ROOTFS_WRITABLE")
        spec.remapRoot = arguments.root || configuration.flag("CAISSON_REMAP_ROOT")
        spec.mountHome = arguments.mountHome ?? configuration.flag("CAISSON_MOUNT_HOME")
        spec.restrictDev = configuration.flag("CAISSON_RESTRICT_DEV")
        spec.environment = arguments.env
        spec.workdir = arguments.workdir
        spec.keepFileDescriptors = arguments.keepFD
        do {
            spec.mounts = try arguments.mounts.map { text throws(MountParseError) in try MountTable.parseFlag(text) }
            try Container(spec: spec, configuration: configuration).start()
        } catch let error as StartError {
            printError("caisson: start: \(error)")
            throw ExitCode(error.exitCode)
        } catch {
            printError("caisson: start: \(error)")
            throw ExitCode(125)
        }
    }
}
