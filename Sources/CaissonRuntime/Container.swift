import CaissonConfig
import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Starts a container and becomes its command: rootfs → namespaces → root mount → system
/// mounts → configured mounts → environment → hooks → pivot_root → exec. No process stays
/// behind: the command keeps Caisson's PID, so exit status and signals are the caller's.
///
/// Everything is made inside a private mount namespace, on a tmpfs over the runtime directory,
/// so a failed start leaves nothing mounted or written on the host.
public struct Container {
    public let spec: ContainerSpec
    public let configuration: Configuration
    public let identity: Identity
    let host: [(name: String, value: String)]
    let hostDictionary: [String: String]

    public init(spec: ContainerSpec, configuration: Configuration, identity: Identity = .current(),
                hostEnvironment: [(name: String, value: String)] = ProcessEnvironment.current()) {
        self.spec = spec
        self.configuration = configuration
        self.identity = identity
        self.host = hostEnvironment
        var dict: [String: String] = [:]
        for (k, v) in hostEnvironment where dict[k] == nil { dict[k] = v }
        self.hostDictionary = dict
    }

    /// The scratch layout on the runtime tmpfs.
    struct Staging {
        let base: String
        var root: String { "\(base)/root" }
        var upper: String { "\(base)/upper" }
        var work: String { "\(base)/work" }
        var passwd: String { "\(base)/passwd" }
        var group: String { "\(base)/group" }
        var environ: String { "\(base)/environment" }
        var mounts: String { "\(base)/mounts" }
        var image: String { "\(base)/image" }
    }

    public func start() throws(StartError) -> Never {
        // Fail early, before any namespace work, with a plain message.
        var image: SquashfsImage?
        var server = ""
        switch spec.source {
        case .directory:
            _ = try openRootfs()
        case .squashfs(let path, let offset):
            image = try SquashfsImage(path: path, offset: offset)
            guard let found = SquashfsImage.server(configuration) else {
                throw StartError(.rootfs, "starting from a .sqsh needs squashfuse, which is not installed",
                                 hint: "install squashfuse (Debian: apt install squashfuse), set CAISSON_SQUASHFUSE, or `caisson create` the image and start that")
            }
            server = found
        }
        let runtime: String
        do { runtime = try configuration.runtimePath() } catch { throw StartError(.rootfs, error.description) }
        let workdirRequest = spec.workdir ?? Path.currentDirectory()

        // An image is mounted as uid 0 of the namespace so that its root-owned files are the caller's.
        let nested = image != nil && !spec.remapRoot
        try UserNamespace.enter(identity: identity, remapRoot: spec.remapRoot || nested)

        let staging = Staging(base: runtime)
        let root = try mountRoot(staging) { () throws(StartError) -> FileDescriptor in
            guard let image else {
                // Reopened inside the new mount namespace: the kernel only mounts from mounts of the caller's namespace.
                return try openRootfs()
            }
            do {
                try check("mkdir", path: staging.image) { mkdir(staging.image, 0o755) }
                try image.mount(onto: try FileDescriptor.open(staging.image, O_PATH | O_DIRECTORY), server: server)
                return try FileDescriptor.open(staging.image, O_PATH | O_DIRECTORY)
            } catch {
                throw StartError.wrap(.mounts, error, hint: "squashfuse could not serve \(image.path); its message, if any, is above")
            }
        }
        let resolver = RootResolver(root: root)
        try mountSystem(resolver, staging)
        var applied: [MountEntry] = []
        if spec.mountHome {
            let home = MountEntry(source: identity.home, target: identity.home, options: ["rbind", "x-create=dir"],
                                  origin: "--mount-home")
            try apply(home, resolver)
            applied.append(home)
        }
        for entry in try configuredMounts(resolver) {
            try apply(entry, resolver)
            applied.append(entry)
        }

        var environment = try buildEnvironment(resolver)
        try runHooks(staging, resolver, &environment, applied)
        try finishRoot(root)
        try pivot(into: root)
        try enterWorkdir(workdirRequest, explicit: spec.workdir != nil, environment)
        if nested { try UserNamespace.enterNested(identity: identity) }
        try dropPrivileges()
        if spec.park { Container.park(environment) }
        try exec(resolvedCommand(), environment)
    }

    /// The container without a command, for a launcher whose processes join it (Slurm tasks):
    /// writes the container's environment to stdout (NAME=VALUE, each ending in NUL), closes
    /// stdout, and stops itself with SIGSTOP. The launcher reads to end of file, waits for the stop
    /// (waitpid WUNTRACED), has its processes join this one's namespaces, and kills it when done.
    /// Continued instead, it exits 0. Its FUSE server, if any, lives exactly as long as it does.
    static func park(_ environment: ContainerEnvironment) -> Never {
        let text = environment.assignments.map { $0 + "\0" }.joined()
        _ = try? FileDescriptor(adopting: dup(1)).write(text)
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if null >= 0 { dup2(null, 1) } else { close(1) }
        kill(getpid(), SIGSTOP)
        exit(0)
    }

    // MARK: - Stages

    private func openRootfs() throws(StartError) -> FileDescriptor {
        let path = Path.absolute(spec.rootfs)
        do {
            let fd = try FileDescriptor.open(path, O_PATH | O_DIRECTORY)
            return fd
        } catch {
            let hint = error.code == ENOTDIR ? "give the directory that holds the root filesystem" : "check the path"
            throw StartError(.rootfs, "\(path): \(error.reason)", hint: hint)
        }
    }

    /// The root is an overlay: the image read-only below, a tmpfs on top that takes mount points
    /// and hook output and is discarded at exit. `--rw` on a directory binds the directory itself
    /// instead; `--rw` on an image leaves the overlay writable (changes vanish at exit).
    private func mountRoot(_ staging: Staging, lower: () throws(StartError) -> FileDescriptor) throws(StartError) -> FileDescriptor {
        let isImage: Bool
        if case .squashfs = spec.source { isImage = true } else { isImage = false }
        do {
            let base = try FileDescriptor.open(staging.base, O_PATH | O_DIRECTORY)
            try Mounter.mountFilesystem(type: "tmpfs", source: "caisson", onto: base,
                                        flags: MountFlag.nosuid | MountFlag.nodev, data: "mode=0700")
            for dir in [staging.root, staging.upper, staging.work] {
                try check("mkdir", path: dir) { mkdir(dir, 0o755) }
            }
            let rootfs = try lower()
            let target = try FileDescriptor.open(staging.root, O_PATH | O_DIRECTORY)
            if spec.writable && !isImage {
                try Mounter.bind(rootfs.procPath, onto: target, recursive: true)
            } else {
                do {
                    try Mounter.mountFilesystem(
                        type: "overlay", source: "caisson", onto: target, flags: MountFlag.nosuid | MountFlag.nodev,
                        data: "lowerdir=\(rootfs.procPath),upperdir=\(staging.upper),workdir=\(staging.work),userxattr")
                } catch {
                    // Kernels before 5.11 have no overlayfs in user namespaces: bind the image
                    // instead; missing mount points are then created in the rootfs itself.
                    warn("overlayfs unavailable (\(error.reason)); mount points will be created in \(spec.rootfs)")
                    try Mounter.bind(rootfs.procPath, onto: target, recursive: true)
                }
            }
            return try FileDescriptor.open(staging.root, O_PATH | O_DIRECTORY)
        } catch let error as StartError {
            throw error
        } catch {
            throw StartError.wrap(.mounts, error, hint: "run `caisson check`")
        }
    }

    private func mountSystem(_ resolver: RootResolver, _ staging: Staging) throws(StartError) {
        let noexec = MountFlag.nosuid | MountFlag.nodev | MountFlag.noexec
        try systemBind("/proc", resolver, flags: noexec)
        try systemBind("/sys", resolver, flags: noexec | MountFlag.rdonly)
        if spec.restrictDev {
            try minimalDev(resolver)
        } else {
            try systemBind("/dev", resolver, flags: MountFlag.nosuid | MountFlag.noexec)
        }
        do {
            let tmp = try systemDirectory("/tmp", resolver)
            try Mounter.mountFilesystem(type: "tmpfs", source: "tmpfs", onto: tmp,
                                        flags: MountFlag.nosuid | MountFlag.nodev, data: "mode=1777")
        } catch {
            throw StartError.wrap(.mounts, error)
        }
        for file in ["/etc/resolv.conf", "/etc/hosts", "/etc/hostname"] where Files.exists(file) {
            // Name resolution is worth a warning, not a failed job.
            do { try bindFile(file, to: file, resolver) } catch { warn("\(file) not provided: \(error)") }
        }
        let imagePasswd = resolver.readFile("/etc/passwd")
        let imageGroup = resolver.readFile("/etc/group")
        do {
            try Files.write(staging.passwd, Accounts.passwd(image: imagePasswd, identity: identity, remapRoot: spec.remapRoot))
            try Files.write(staging.group, Accounts.group(image: imageGroup, identity: identity, remapRoot: spec.remapRoot))
        } catch {
            throw StartError(.identity, error)
        }
        try bindFile(staging.passwd, to: "/etc/passwd", resolver)
        try bindFile(staging.group, to: "/etc/group", resolver)
    }

    /// /proc, /sys, /dev and /tmp must be real directories of the image: a symlink there could
    /// point the kernel's filesystems somewhere the image chose (CVE-2019-19921 and its kin).
    private func systemDirectory(_ path: String, _ resolver: RootResolver) throws(StartError) -> FileDescriptor {
        do {
            let parent = try resolver.open(Path.parent(path), O_PATH | O_DIRECTORY)
            let name = Path.basename(path)
            var st = stat()
            if fstatat(parent.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                guard errno == ENOENT else { throw SystemError("stat", path: path) }
                let dir = try FileDescriptor.open(parent.procPath, O_RDONLY | O_DIRECTORY)
                if mkdirat(dir.rawValue, name, 0o755) != 0 && errno != EEXIST { throw SystemError("mkdir", path: path) }
            } else if st.st_mode & S_IFMT != S_IFDIR {
                let what = st.st_mode & S_IFMT == S_IFLNK ? "a symbolic link" : "not a directory"
                throw StartError(.mounts, "the image's \(path) is \(what); refusing to mount \(path) through it",
                                 hint: "the image is broken or hostile: \(path) must be a plain directory")
            }
            return try FileDescriptor.open(name, relativeTo: parent, O_PATH | O_DIRECTORY | O_NOFOLLOW)
        } catch {
            throw StartError.wrap(.mounts, error)
        }
    }

    private func systemBind(_ path: String, _ resolver: RootResolver, flags: UInt) throws(StartError) {
        let target = try systemDirectory(path, resolver)
        do {
            try Mounter.bind(path, onto: target, recursive: true)
            try Mounter.remount(try systemDirectory(path, resolver), flags: flags)
        } catch {
            throw StartError.wrap(.mounts, error)
        }
    }

    /// A tmpfs /dev with only the harmless devices, bound one by one from the host's.
    private func minimalDev(_ resolver: RootResolver) throws(StartError) {
        let dev = try systemDirectory("/dev", resolver)
        do {
            try Mounter.mountFilesystem(type: "tmpfs", source: "tmpfs", onto: dev,
                                        flags: MountFlag.nosuid | MountFlag.noexec, data: "mode=0755")
            let devDir = try resolver.open("/dev", O_RDONLY | O_DIRECTORY)
            for node in ["null", "zero", "full", "random", "urandom", "tty"] where Files.exists("/dev/\(node)") {
                let fd = openat(devDir.rawValue, node, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
                if fd < 0 { throw SystemError("create", path: "/dev/\(node)") }
                close(fd)
                try Mounter.bind("/dev/\(node)", onto: try FileDescriptor.open(node, relativeTo: devDir, O_PATH | O_NOFOLLOW), recursive: false)
            }
            for dir in ["pts", "shm", "mqueue"] where Files.isDirectory("/dev/\(dir)") {
                try check("mkdir", path: "/dev/\(dir)") { mkdirat(devDir.rawValue, dir, 0o755) }
                try Mounter.bind("/dev/\(dir)", onto: try FileDescriptor.open(dir, relativeTo: devDir, O_PATH | O_NOFOLLOW), recursive: true)
            }
            for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                                   ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")] {
                try check("symlink", path: "/dev/\(name)") { symlinkat(target, devDir.rawValue, name) }
            }
        } catch {
            throw StartError.wrap(.mounts, error)
        }
    }

    private func bindFile(_ source: String, to target: String, _ resolver: RootResolver) throws(StartError) {
        do {
            let fd = try resolver.openOrCreate(target, as: .file)
            guard try fd.stat().st_mode & S_IFMT == S_IFREG else {
                throw StartError(.mounts, "\(target) in the image is not a regular file; cannot bind \(source) on it")
            }
            try Mounter.bind(source, onto: fd, recursive: false)
        } catch let error as SystemError {
            throw StartError(.mounts, error, hint: Container.hint(for: error))
        } catch {
            throw StartError.wrap(.mounts, error)
        }
    }

    /// mounts.d drop-ins (system, then user), the image's /etc/fstab (tmpfs entries only: an image
    /// must not pick host paths to mount), then `--mount` flags.
    private func configuredMounts(_ resolver: RootResolver) throws(StartError) -> [MountEntry] {
        var entries: [MountEntry] = []
        do {
            for dir in ["\(configuration.sysconfPath)/mounts.d", "\(configuration.configPath)/mounts.d"] {
                for name in Files.list(dir) where name.hasSuffix(".fstab") {
                    let path = "\(dir)/\(name)"
                    let text: String
                    do { text = try Files.read(path) } catch { throw StartError(.mounts, error) }
                    entries += try MountTable.parse(Configuration.expand(text, hostDictionary), origin: path)
                }
            }
            if let fstab = resolver.readFile("/etc/fstab") {
                for entry in try MountTable.parse(fstab, origin: "image /etc/fstab") {
                    if entry.type == "tmpfs" {
                        entries.append(entry)
                    } else {
                        warn("\(entry.origin): ignored \(entry.target): an image's fstab may only add tmpfs mounts")
                    }
                }
            }
        } catch {
            throw StartError.wrap(.mounts, error)
        }
        return entries + spec.mounts
    }

    private func apply(_ entry: MountEntry, _ resolver: RootResolver) throws(StartError) {
        let (flags, data, propagation) = MountTable.flags(for: entry.options)
        if entry.isBind {
            guard let sourceStat = Files.stat(entry.source) else {
                if entry.optional { return }
                throw StartError(.mounts, "\(entry.origin): source \(entry.source) does not exist",
                                 hint: "create it, fix the path, or add `nofail` to skip it")
            }
            do {
                let kind: RootResolver.Kind = sourceStat.st_mode & S_IFMT == S_IFDIR ? .directory : .file
                let target = entry.create != nil ? try resolver.openOrCreate(entry.target, as: entry.create ?? kind)
                                                 : try resolver.open(entry.target)
                let targetIsDir = try target.stat().st_mode & S_IFMT == S_IFDIR
                if targetIsDir != (kind == .directory) {
                    throw StartError(.mounts, "\(entry.origin): cannot bind a \(kind == .directory ? "directory" : "file") on \(entry.target), which is a \(targetIsDir ? "directory" : "file")")
                }
                try Mounter.bind(entry.source, onto: target, recursive: entry.isRecursive)
                if flags != 0 { try Mounter.remount(try resolver.open(entry.target), flags: flags) }
                if propagation != 0 {
                    // Held until the call returns: the path names the descriptor, which must stay open.
                    let mounted = try resolver.open(entry.target)
                    try withExtendedLifetime(mounted) { () throws(SystemError) in
                        try Mounter.setPropagation(mounted.procPath, propagation)
                    }
                }
            } catch let error as StartError {
                throw error
            } catch let error as SystemError {
                throw StartError(.mounts, "\(entry.origin): \(entry.target): \(error)", hint: Container.hint(for: error))
            } catch {
                throw StartError(.mounts, "\(entry.origin): \(error)")
            }
        } else {
            do {
                let target = entry.create != nil ? try resolver.openOrCreate(entry.target, as: .directory)
                                                 : try resolver.open(entry.target)
                try Mounter.mountFilesystem(type: entry.type, source: entry.source, onto: target,
                                            flags: flags | MountFlag.nosuid | MountFlag.nodev, data: data)
            } catch {
                throw StartError(.mounts, "\(entry.origin): \(entry.target): \(error)", hint: Container.hint(for: error))
            }
        }
    }

    static func hint(for error: SystemError) -> String? {
        switch error.code {
        case ENOENT: return "the target does not exist in the image: add x-create=dir or x-create=file"
        case ELOOP: return "the target is a dangling or looping symlink in the image"
        case EPERM, EACCES: return "the kernel refused this mount in a user namespace"
        case EOVERFLOW: return "the image's files belong to users that do not exist in the container (for example root): use a root filesystem that you own (`cp -a` it as yourself, or unpack it with caisson)"
        default: return nil
        }
    }

    private func buildEnvironment(_ resolver: RootResolver) throws(StartError) -> ContainerEnvironment {
        var env = ContainerEnvironment()
        env.importHost(host)
        if let text = resolver.readFile("/etc/environment") { env.apply(etcEnvironment: text) }
        for dir in ["\(configuration.sysconfPath)/environ.d", "\(configuration.configPath)/environ.d"] {
            for name in Files.list(dir) where name.hasSuffix(".env") {
                guard let text = try? Files.read("\(dir)/\(name)") else {
                    throw StartError(.environment, "\(dir)/\(name) cannot be read")
                }
                env.apply(dropIn: text, host: hostDictionary)
            }
        }
        for flag in spec.environment { try env.apply(flag: flag, host: hostDictionary) }
        return env
    }

    private func runHooks(_ staging: Staging, _ resolver: RootResolver, _ env: inout ContainerEnvironment,
                          _ applied: [MountEntry]) throws(StartError) {
        let hooks = Hooks.discover(in: ["\(configuration.sysconfPath)/hooks.d", "\(configuration.configPath)/hooks.d"])
        guard !hooks.isEmpty else { return }
        let environText = env.fileText
        let mountsText = applied.map { "\($0.description)\n" }.joined()
        do {
            try Files.write(staging.environ, environText, mode: 0o600)
            try Files.write(staging.mounts, mountsText, mode: 0o600)
        } catch {
            throw StartError(.hooks, error)
        }
        var hookEnv = host.map { "\($0.name)=\($0.value)" }.filter { !$0.hasPrefix("CAISSON_ROOTFS=") }
        hookEnv += [
            "CAISSON_ROOTFS=\(staging.root)", "CAISSON_PID=\(getpid())",
            "CAISSON_ENVIRON=\(staging.environ)", "CAISSON_MOUNTS=\(staging.mounts)",
            "CAISSON_REMAP_ROOT=\(spec.remapRoot ? "y" : "n")", "CAISSON_ROOTFS_WRITABLE=\(spec.writable ? "y" : "n")",
        ]
        try Hooks.run(hooks, environment: hookEnv)
        // Hooks append; whatever they added after our own text is theirs.
        let newEnviron = (try? Files.read(staging.environ)) ?? environText
        if newEnviron.utf8.count > environText.utf8.count {
            env.apply(dropIn: String(decoding: Array(newEnviron.utf8).dropFirst(environText.utf8.count), as: UTF8.self),
                      host: hostDictionary)
        }
        let newMounts = (try? Files.read(staging.mounts)) ?? mountsText
        if newMounts.utf8.count > mountsText.utf8.count {
            let added = String(decoding: Array(newMounts.utf8).dropFirst(mountsText.utf8.count), as: UTF8.self)
            let entries: [MountEntry]
            do { entries = try MountTable.parse(added, origin: "hook mounts") } catch {
                throw StartError(.hooks, error.description)
            }
            for entry in entries { try apply(entry, resolver) }
        }
    }

    private func finishRoot(_ root: FileDescriptor) throws(StartError) {
        let flags = MountFlag.nosuid | MountFlag.nodev | (spec.writable ? 0 : MountFlag.rdonly)
        do { try Mounter.remount(root, flags: flags) } catch { throw StartError(.mounts, error) }
    }

    private func pivot(into root: FileDescriptor) throws(StartError) {
        do {
            let dir = try FileDescriptor.open(root.procPath, O_RDONLY | O_DIRECTORY)
            try check("fchdir", path: "container root") { fchdir(dir.rawValue) }
            // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the container.
            try check("pivot_root") { caisson_pivot_root(".", ".") }
            try check("umount old root") { umount2(".", Int32(caisson_MNT_DETACH)) }
            try check("chdir", path: "/") { chdir("/") }
        } catch {
            throw StartError(.mounts, error)
        }
    }

    /// The working directory is resolved inside the container and magic links are refused, so a
    /// workdir like /proc/self/fd/N cannot hand the command a directory outside its root.
    private func enterWorkdir(_ request: String, explicit: Bool, _ env: ContainerEnvironment) throws(StartError) {
        let candidates = explicit ? [request] : [request, env["HOME"] ?? identity.home, "/"]
        do {
            let root = try FileDescriptor.open("/", O_PATH | O_DIRECTORY)
            let resolver = RootResolver(root: root)
            for (index, candidate) in candidates.enumerated() {
                do {
                    let dir = try resolver.open(candidate, O_RDONLY | O_DIRECTORY)
                    try check("fchdir", path: candidate) { fchdir(dir.rawValue) }
                    if !explicit || index == 0 { return }
                } catch {
                    if explicit || index == candidates.count - 1 {
                        throw StartError(.workdir, "\(candidate): \(error.reason)",
                                         hint: "give a directory that exists in the container")
                    }
                }
            }
        } catch {
            throw StartError.wrap(.workdir, error)
        }
    }

    private func dropPrivileges() throws(StartError) {
        try Container.seal(keeping: spec.keepFileDescriptors, fakeroot: spec.remapRoot)
    }

    /// The last steps before exec, shared with `caisson exec`: descriptors above 2 closed (but
    /// `keeping`), signal mask cleared, no new privileges, and the fakeroot filter for `--root`.
    static func seal(keeping: [Int32], fakeroot: Bool) throws(StartError) {
        let keep = Set(keeping.filter { $0 > 2 })
        var next: Int32 = 3
        for fd in keep.sorted() {
            if fd > next { _ = caisson_close_range(UInt32(next), UInt32(fd - 1)) }
            next = fd + 1
        }
        _ = caisson_close_range(UInt32(next), UInt32.max)
        // Launchers often spawn from threads that block signals; the mask survives exec and would
        // make the command deaf to SIGTERM/SIGINT. Ignored signals stay ignored (nohup still works).
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        try denyNewPrivileges(fakeroot: fakeroot)
    }

    /// no_new_privs, then the fakeroot filter of `--root` (an unprivileged process may install a
    /// seccomp filter only under no_new_privs). Also what a process joining a container uses.
    static func denyNewPrivileges(fakeroot: Bool) throws(StartError) {
        if caisson_set_no_new_privs() != 0 { throw StartError(.seccomp, SystemError("prctl(PR_SET_NO_NEW_PRIVS)")) }
        if fakeroot {
            do { try FakerootFilter.install() } catch {
                throw StartError(.seccomp, error, hint: "run `caisson check`; --root needs seccomp filters")
            }
        }
    }

    func resolvedCommand() -> [String] {
        let hasRC = Files.stat("/etc/rc").map { $0.st_mode & S_IFMT == S_IFREG } ?? false
        if spec.useEntrypoint || spec.command.isEmpty {
            if hasRC { return ["/bin/sh", "/etc/rc"] + spec.command }
            if spec.command.isEmpty { return ["/bin/sh"] }
        }
        return spec.command
    }

    private func exec(_ argv: [String], _ env: ContainerEnvironment) throws(StartError) -> Never {
        try Container.execute(argv, env)
    }

    /// execve with the container's PATH search (the environment's PATH, not Caisson's).
    static func execute(_ argv: [String], _ env: ContainerEnvironment) throws(StartError) -> Never {
        let program = argv[0]
        let search: [String] = program.contains("/")
            ? [program]
            : (env["PATH"] ?? ContainerEnvironment.defaultPath).split(separator: ":").map { "\($0.isEmpty ? "." : String($0))/\(program)" }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.assignments.map { strdup($0) } + [nil]
        var firstError: Int32 = ENOENT
        for candidate in search {
            execve(candidate, cArgs, cEnv)
            if errno != ENOENT && errno != ENOTDIR && firstError == ENOENT { firstError = errno }
        }
        if firstError == ENOENT {
            throw StartError(.exec, "\(program): command not found in the container",
                             hint: program.contains("/") ? nil : "searched PATH=\(env["PATH"] ?? "")", exitCode: 127)
        }
        throw StartError(.exec, "\(program): \(SystemError("exec", errno: firstError).reason)", exitCode: 126)
    }
}

func warn(_ message: String) {
    printError("caisson: warning: \(message)")
}
