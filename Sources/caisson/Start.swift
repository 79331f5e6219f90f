import ArgumentParser
import CaissonConfig
import CaissonRuntime
import CaissonStore
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in a container.",
        discussion: """
        CONTAINER is a squashfs image (a .sqsh from `caisson import`, mounted with squashfuse, \
        never extracted), the name of a container made by `caisson create`, or a directory \
        holding a root filesystem. A name without a slash is looked up among your containers \
        first (`caisson list`). The command runs as you (same uid, \
        same groups, same $HOME path) with the host's network, IPC, PIDs and cgroups, in new \
        user and mount namespaces only. Caisson execs the command: its exit status and signals \
        are yours. Without COMMAND the image's /etc/rc entrypoint runs, or /bin/sh.

        The root filesystem is read-only unless --rw. With --rw a directory or named container is \
        changed in place; an image is never changed: its writes go to a tmpfs and vanish at exit. /proc, /sys and /dev come from the host (a minimal /dev with \
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
          caisson start ubuntu.sqsh cat /etc/os-release
          caisson start ./rootfs id -un
          caisson create --name dev ubuntu.sqsh && caisson start --rw --root dev apt-get install -y python3
          caisson start -m /scratch/data:/data:ro -e OMP_NUM_THREADS=8 ./rootfs ./solver
        """
    )

    @Flag(name: .long, help: "Make the root filesystem writable (kept in a directory or named container; discarded at exit for an image).")
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

    @Option(name: .customLong("image-offset"), help: .hidden)
    var imageOffset: UInt64?

    @Flag(name: .long, help: ArgumentHelp(
        "Set the container up, print its environment (NUL-separated) on stdout, and stop (SIGSTOP) for other processes to join with `caisson exec PID` or setns(2); the Slurm plugin's mode.",
        visibility: .hidden))
    var park = false

    @Argument(help: ArgumentHelp("A .sqsh image, a container name, or a root filesystem directory.", valueName: "CONTAINER"))
    var rootfs: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    var arguments: StartArguments {
        StartArguments(rw: rw, root: root, mountHome: mountHome, mounts: mount, env: env, workdir: workdir,
                       entrypoint: entrypoint, keepFD: keepFD, imageOffset: imageOffset, park: park, rootfs: rootfs,
                       command: command.first == "--" ? Array(command.dropFirst()) : command)
    }

    func run() throws {
        try Start.run(arguments)
    }

    static func run(_ arguments: StartArguments) throws {
        let configuration = Configuration.load()
        for warning in configuration.warnings { printError("caisson: warning: \(warning)") }
        let store = ContainerStore(configuration: configuration)
        let target: StartTarget
        do { target = try StartTarget.resolve(arguments.rootfs, offset: arguments.imageOffset, store: store) } catch {
            printError("caisson: start: \(error)")
            throw ExitCode(125)
        }
        var spec = ContainerSpec(source: target.source)
        spec.command = arguments.command
        spec.useEntrypoint = arguments.entrypoint
        spec.writable = arguments.rw || configuration.flag("CAISSON_ROOTFS_WRITABLE")
        spec.remapRoot = arguments.root || configuration.flag("CAISSON_REMAP_ROOT")
        spec.mountHome = arguments.mountHome ?? configuration.flag("CAISSON_MOUNT_HOME")
        spec.restrictDev = configuration.flag("CAISSON_RESTRICT_DEV")
        spec.environment = arguments.env
        spec.workdir = arguments.workdir
        spec.keepFileDescriptors = arguments.keepFD
        spec.park = arguments.park
        do {
            spec.mounts = try arguments.mounts.map { text throws(MountParseError) in try MountTable.parseFlag(text) }
            if let name = target.name, let running = store.running {
                // Best effort: `list` and `exec NAME` use it; the container runs without it.
                do { try running.record(name: name) } catch { printError("caisson: warning: \(name) will not show as running: \(error)") }
            }
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

/// What `caisson start CONTAINER` means: a named container, an image file, or a directory.
struct StartTarget {
    var source: ContainerSpec.Source
    var name: String?

    static func resolve(_ argument: String, offset: UInt64?, store: ContainerStore) throws(StartError) -> StartTarget {
        if !argument.contains("/"), store.exists(argument) {
            return StartTarget(source: .directory(store.path(of: argument)), name: argument)
        }
        guard let st = Files.stat(argument) else {
            let hint = argument.contains("/") ? "check the path" : "no container of that name either: see `caisson list`; write ./\(argument) for a file here"
            throw StartError(.rootfs, "\(argument): no such image, container or directory", hint: hint)
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return StartTarget(source: .directory(argument))
        case S_IFREG: return StartTarget(source: .squashfs(argument, offset: offset ?? 0))
        default: throw StartError(.rootfs, "\(argument) is neither an image file nor a directory")
        }
    }
}
