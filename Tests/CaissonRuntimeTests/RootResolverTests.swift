import CaissonShim
import CaissonSystem
import Testing
@testable import CaissonRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A hostile image root next to a sibling "outside" directory that stands for the host:
///
///     BASE/outside/etc/passwd        "HOST"        (what an escape would reach)
///     BASE/root/etc/passwd           "ROOT"
///     BASE/root/etc/sub/rel       -> ../passwd
///     BASE/root/etc/sub/up        -> ../../../../../outside
///     BASE/root/usr/bin/sh, BASE/root/bin/sh       (told apart by content)
///     BASE/root/lib               -> usr/lib
///     BASE/root/a                 -> /etc
///     BASE/root/b                 -> ../../../../etc
///     BASE/root/c                 -> a
///     BASE/root/l1 -> l2 -> /l3 -> etc
///     BASE/root/esc               -> ../outside
///     BASE/root/hostabs           -> BASE/outside            (a real host path, absolute)
///     BASE/root/hostpasswd        -> BASE/outside/etc/passwd
///     BASE/root/loop1 <-> loop2, self -> self
///     BASE/root/dangling          -> /nonexistent/file
///     BASE/root/file              regular file
///     BASE/root/pw                -> /etc/passwd
///     BASE/root/magic             -> /proc/self/fd/0         (BASE/root/proc/self/fd/0 is a plain file)
///     BASE/root/procroot          -> /proc/self/root/etc/passwd
///     BASE/root/proccwd           -> /proc/self/cwd
private final class HostileTree {
    let base: String
    var root: String { "\(base)/root" }
    var outside: String { "\(base)/outside" }
    let rootFD: FileDescriptor

    init() throws {
        var template = Array("/tmp/caisson-resolver-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError("mkdtemp") }
        base = String(cString: made)
        let root = "\(base)/root", outside = "\(base)/outside"
        for dir in [root, "\(root)/etc/sub", "\(root)/usr/lib", "\(root)/usr/bin", "\(root)/bin", "\(root)/proc/self/fd",
                    "\(outside)/etc"] {
            try Files.makeDirectories(dir)
        }
        try Files.write("\(outside)/etc/passwd", "HOST\n")
        try Files.write("\(root)/etc/passwd", "ROOT\n")
        try Files.write("\(root)/usr/bin/sh", "usr-sh")
        try Files.write("\(root)/bin/sh", "bin-sh")
        try Files.write("\(root)/file", "plain")
        try Files.write("\(root)/proc/self/fd/0", "in-root fd 0")
        let links: [(String, String)] = [
            ("etc/sub/rel", "../passwd"),
            ("etc/sub/up", "../../../../../outside"),
            ("lib", "usr/lib"),
            ("a", "/etc"),
            ("b", "../../../../etc"),
            ("c", "a"),
            ("l1", "l2"), ("l2", "/l3"), ("l3", "etc"),
            ("esc", "../outside"),
            ("hostabs", outside),
            ("hostpasswd", "\(outside)/etc/passwd"),
            ("loop1", "loop2"), ("loop2", "loop1"), ("self", "self"),
            ("dangling", "/nonexistent/file"),
            ("pw", "/etc/passwd"),
            ("magic", "/proc/self/fd/0"),
            ("procroot", "/proc/self/root/etc/passwd"),
            ("proccwd", "/proc/self/cwd"),
        ]
        for (name, target) in links {
            guard symlink(target, "\(root)/\(name)") == 0 else { throw SystemError("symlink", path: name) }
        }
        rootFD = try FileDescriptor.open(root, O_PATH | O_DIRECTORY)
    }

    deinit {
        precondition(base.hasPrefix("/tmp/caisson-resolver-test-"))
        _ = try? Subprocess.run(["/bin/rm", "-rf", base], quiet: true)
    }

    func resolver(_ strategy: RootResolver.Strategy) -> RootResolver { RootResolver(root: rootFD, strategy: strategy) }

    func link(_ name: String, _ target: String) throws {
        guard symlink(target, "\(root)/\(name)") == 0 else { throw SystemError("symlink", path: name) }
    }
}

/// What resolving a path gave: the file (device and inode) or an errno.
private enum Outcome: Equatable, CustomStringConvertible {
    case file(dev: UInt64, ino: UInt64)
    case error(Int32)

    /// The file at a host path, found with a plain stat that follows symlinks: the expectation is
    /// computed independently of the resolver.
    static func at(_ hostPath: String) -> Outcome {
        guard let st = Files.stat(hostPath) else { return .error(-1) }
        return .file(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    static func of(_ fd: FileDescriptor) -> Outcome {
        guard let st = try? fd.stat() else { return .error(-2) }
        return .file(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    var description: String {
        switch self {
        case .file(let dev, let ino): return "file(dev: \(dev), ino: \(ino))"
        case .error(let code): return "error(\(code): \(String(cString: strerror(code))))"
        }
    }
}

/// openat2(2) with RESOLVE_IN_ROOT: present on every kernel Caisson supports (≥ 5.6), but probed
/// so that the userspace half of the suite still runs where it is missing.
private let kernelResolveAvailable: Bool = {
    let fd = caisson_openat2(AT_FDCWD, "/", UInt64(O_PATH | O_CLOEXEC), 0, caisson_RESOLVE_IN_ROOT)
    if fd >= 0 { close(fd); return true }
    return false
}()

private let strategies: [RootResolver.Strategy] = kernelResolveAvailable ? [.kernel, .userspace] : [.userspace]

private func readLinkText(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buffer, buffer.count - 1)
    return n < 0 ? nil : String(nulTerminated: buffer)
}

private func readLinkText(in dir: FileDescriptor, _ name: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlinkat(dir.rawValue, name, &buffer, buffer.count - 1)
    return n < 0 ? nil : String(nulTerminated: buffer)
}

struct RootResolverTests {
    private func outcome(_ resolver: RootResolver, _ path: String, _ flags: Int32 = O_PATH) -> Outcome {
        do {
            let fd = try resolver.open(path, flags)
            return .of(fd)
        } catch {
            return .error(error.code)
        }
    }

    /// Resolves `path` with every strategy; each must give `expected`, and a found file must lie in the root.
    private func check(_ tree: HostileTree, _ path: String, _ expected: Outcome,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        for strategy in strategies {
            let resolver = tree.resolver(strategy)
            do {
                let fd = try resolver.open(path)
                #expect(Outcome.of(fd) == expected, "\(strategy) resolved \(path)", sourceLocation: sourceLocation)
                // The kernel's own name for the descriptor: inside the root, never in "outside".
                let name = readLinkText(fd.procPath) ?? ""
                #expect(name == tree.root || name.hasPrefix(tree.root + "/"),
                        "\(strategy) resolved \(path) to \(name)", sourceLocation: sourceLocation)
            } catch {
                #expect(Outcome.error(error.code) == expected, "\(strategy) resolving \(path)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func kernelStrategyIsTheDefaultWhereAvailable() {
        guard getenv("CAISSON_RESOLVE") == nil else { return }  // forced by the environment
        #expect(RootResolver.defaultStrategy == (kernelResolveAvailable ? .kernel : .userspace))
    }

    @Test func fixtureSanity() throws {
        // The expectations below mean something only if the host-side escape targets exist.
        let tree = try HostileTree()
        #expect(Outcome.at("\(tree.outside)/etc/passwd") != Outcome.at("\(tree.root)/etc/passwd"))
        #expect(Outcome.at("\(tree.root)/usr/bin/sh") != Outcome.at("\(tree.root)/bin/sh"))
        if case .error = Outcome.at("\(tree.outside)/etc/passwd") { Issue.record("outside/etc/passwd missing") }
        // Following the links on the host (as a careless runtime would) does escape:
        #expect(Outcome.at("\(tree.root)/hostpasswd") == Outcome.at("\(tree.outside)/etc/passwd"))
        #expect(Outcome.at("\(tree.root)/esc/etc/passwd") == Outcome.at("\(tree.outside)/etc/passwd"))
    }

    // MARK: - Paths that stay in the root

    @Test(arguments: [
        "etc/passwd", "/etc/passwd", "./etc/./passwd", "//etc//passwd",
        "a/passwd", "/a/passwd",          // absolute symlink restarts at the container's /
        "b/passwd",                        // relative symlink climbing past the root
        "c/passwd",                        // chain c -> a -> /etc
        "l1/passwd",                       // l1 -> l2 -> /l3 -> etc
        "pw",                              // final component is a symlink
        "etc/sub/rel",                     // relative link with ..
        "etc/sub/../passwd",
        "../../etc/passwd", "/../../../etc/passwd", "..//../etc/passwd",
        "a/../etc/passwd", "a/sub/../../a/passwd",
    ])
    func resolvesToTheImagePasswd(path: String) throws {
        let tree = try HostileTree()
        check(tree, path, .at("\(tree.root)/etc/passwd"))
    }

    @Test(arguments: ["/", ".", "..", "/..", "../..", "a/..", "etc/sub/../..", "c/../../.."])
    func resolvesToTheRootItself(path: String) throws {
        let tree = try HostileTree()
        check(tree, path, .at(tree.root))
    }

    @Test func emptyPath() throws {
        // openat2 answers ENOENT for "", like open(""); the userspace walk returns the root instead.
        let tree = try HostileTree()
        check(tree, "", .error(ENOENT))
    }

    @Test func directoryLinkResolvesToTheImageDirectory() throws {
        let tree = try HostileTree()
        check(tree, "a", .at("\(tree.root)/etc"))
        check(tree, "b", .at("\(tree.root)/etc"))
        check(tree, "lib", .at("\(tree.root)/usr/lib"))
    }

    @Test func dotDotAfterASymlinkIsPhysical() throws {
        // lib -> usr/lib, so lib/.. is usr (not the root, as a lexical cleanup would say).
        let tree = try HostileTree()
        check(tree, "lib/../bin/sh", .at("\(tree.root)/usr/bin/sh"))
        check(tree, "bin/sh", .at("\(tree.root)/bin/sh"))
    }

    // MARK: - Escapes that must fail inside the root

    @Test(arguments: [
        "../outside/etc/passwd", "/../outside", "esc", "esc/etc/passwd", "hostabs", "hostabs/etc/passwd",
        "hostpasswd", "etc/sub/up", "etc/sub/up/etc/passwd", "dangling", "dangling/x", "missing", "etc/missing",
        "procroot", "proccwd", "proccwd/etc/passwd",
    ])
    func escapesFindNothing(path: String) throws {
        // Each of these exists on the host side (except dangling/missing); inside the root it does not.
        let tree = try HostileTree()
        check(tree, path, .error(ENOENT))
    }

    @Test func linkToHostPathResolvesInsideWhenTheImageHasIt() throws {
        // hostabs -> BASE/outside: after the image grows that path, the link names the image's copy.
        let tree = try HostileTree()
        let inRoot = tree.root + tree.outside
        try Files.makeDirectories("\(inRoot)/etc")
        try Files.write("\(inRoot)/etc/passwd", "ROOT COPY\n")
        check(tree, "hostabs/etc/passwd", .at("\(inRoot)/etc/passwd"))
        check(tree, "hostpasswd", .at("\(inRoot)/etc/passwd"))
    }

    @Test func procStyleTargetsNameFilesInTheRoot() throws {
        // magic -> /proc/self/fd/0 is only text inside the image: it is the image's /proc/self/fd/0.
        let tree = try HostileTree()
        check(tree, "magic", .at("\(tree.root)/proc/self/fd/0"))
    }

    @Test(arguments: ["loop1", "loop2", "loop1/x", "self", "self/x", "etc/../loop2"])
    func loopsAreELOOP(path: String) throws {
        let tree = try HostileTree()
        check(tree, path, .error(ELOOP))
    }

    @Test(arguments: ["file/x", "etc/passwd/x", "pw/x", "etc/passwd/..", "etc/passwd/.", "a/passwd/x"])
    func fileAsADirectoryIsENOTDIR(path: String) throws {
        let tree = try HostileTree()
        check(tree, path, .error(ENOTDIR))
    }

    @Test(arguments: ["file/", "etc/passwd/", "pw/", "etc/passwd//"])
    func trailingSlashOnAFileIsENOTDIR(path: String) throws {
        // open("file/") fails with ENOTDIR; openat2 agrees. The userspace walk drops the slash.
        let tree = try HostileTree()
        check(tree, path, .error(ENOTDIR))
    }

    @Test func symlinkBudgetMatchesTheKernel() throws {
        // Linux follows at most 40 links in one lookup (MAXSYMLINKS); the walk has the same budget.
        let tree = try HostileTree()
        try tree.link("chain0", "etc")
        for i in 1...40 { try tree.link("chain\(i)", "chain\(i - 1)") }
        check(tree, "chain39/passwd", .at("\(tree.root)/etc/passwd"))  // 40 links
        check(tree, "chain40/passwd", .error(ELOOP))                    // 41 links
    }

    @Test func openWithFlagsReadsTheImageFile() throws {
        let tree = try HostileTree()
        for strategy in strategies {
            let resolver = tree.resolver(strategy)
            let fd = try resolver.open("b/passwd", O_RDONLY)
            #expect(String(decoding: try fd.readAll(), as: UTF8.self) == "ROOT\n", "\(strategy)")
            #expect(outcome(resolver, "a", O_PATH | O_DIRECTORY) == .at("\(tree.root)/etc"), "\(strategy)")
            #expect(outcome(resolver, "a", O_RDONLY | O_DIRECTORY) == .at("\(tree.root)/etc"), "\(strategy)")
            #expect(outcome(resolver, "pw", O_PATH | O_DIRECTORY) == .error(ENOTDIR), "\(strategy)")
            #expect(outcome(resolver, "hostpasswd", O_RDONLY) == .error(ENOENT), "\(strategy)")
        }
    }

    // MARK: - Real procfs magic links

    @Test func magicLinksInProcAreRefused() throws {
        // With /proc itself as the root, self/fd/N is a kernel magic link to a directory outside:
        // both strategies refuse it (ELOOP, as RESOLVE_NO_MAGICLINKS does), while ordinary procfs
        // links (self, mounts -> self/mounts) still resolve.
        let proc = try FileDescriptor.open("/proc", O_PATH | O_DIRECTORY)
        let tree = try HostileTree()
        let outsideDir = try FileDescriptor.open(tree.outside, O_PATH | O_DIRECTORY)
        let direct = try FileDescriptor.open("/proc/self/status", O_PATH)
        let mounts = try FileDescriptor.open("/proc/self/mounts", O_PATH)
        for strategy in strategies {
            let resolver = RootResolver(root: proc, strategy: strategy)
            #expect(outcome(resolver, "self/fd/\(outsideDir.rawValue)") == .error(ELOOP), "\(strategy)")
            #expect(outcome(resolver, "self/fd/\(outsideDir.rawValue)/etc/passwd") == .error(ELOOP), "\(strategy)")
            #expect(outcome(resolver, "self/cwd") == .error(ELOOP), "\(strategy)")
            #expect(outcome(resolver, "self/root/etc") == .error(ELOOP), "\(strategy)")
            #expect(outcome(resolver, "self/status") == .of(direct), "\(strategy)")
            #expect(outcome(resolver, "mounts") == .of(mounts), "\(strategy)")
        }
    }

    @Test func isMagicLink() throws {
        let tree = try HostileTree()
        let held = try FileDescriptor.open(tree.outside, O_PATH | O_DIRECTORY)
        let fdDir = try FileDescriptor.open("/proc/self/fd", O_PATH | O_DIRECTORY)
        let proc = try FileDescriptor.open("/proc", O_PATH | O_DIRECTORY)

        let fdTarget = try #require(readLinkText(in: fdDir, "\(held.rawValue)"))
        #expect(fdTarget == tree.outside)
        #expect(RootResolver.isMagicLink(fdTarget, in: fdDir))

        let selfTarget = try #require(readLinkText(in: proc, "self"))
        #expect(selfTarget == "\(getpid())")
        #expect(!RootResolver.isMagicLink(selfTarget, in: proc))

        // Anonymous objects (pipes, sockets) read as type:[inode].
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let pipeTarget = try #require(readLinkText(in: fdDir, "\(fds[0])"))
        #expect(pipeTarget.hasPrefix("pipe:["))
        #expect(RootResolver.isMagicLink(pipeTarget, in: fdDir))

        // The same texts outside procfs are ordinary links.
        let plainDir = try FileDescriptor.open(tree.root, O_PATH | O_DIRECTORY)
        #expect(!RootResolver.isMagicLink(fdTarget, in: plainDir))
        #expect(!RootResolver.isMagicLink(pipeTarget, in: plainDir))
    }

    // MARK: - openOrCreate

    @Test func createsThroughAnAbsoluteHostSymlinkInsideTheRoot() throws {
        for strategy in strategies {
            let tree = try HostileTree()
            let fd = try tree.resolver(strategy).openOrCreate("hostabs/newdir", as: .directory)
            let created = tree.root + tree.outside + "/newdir"
            #expect(Files.isDirectory(created), "\(strategy)")
            #expect(Outcome.of(fd) == .at(created), "\(strategy)")
            #expect(!Files.exists("\(tree.outside)/newdir"), "\(strategy) created on the host side")
            #expect(Files.list(tree.outside) == ["etc"], "\(strategy)")
        }
    }

    @Test func createsThroughARelativeEscapeInsideTheRoot() throws {
        for strategy in strategies {
            let tree = try HostileTree()
            let fd = try tree.resolver(strategy).openOrCreate("esc/made/deeper", as: .directory)
            #expect(Outcome.of(fd) == .at("\(tree.root)/outside/made/deeper"), "\(strategy)")
            #expect(!Files.exists("\(tree.outside)/made"), "\(strategy) created on the host side")

            // etc/sub/up -> ../../../../../outside, in a fresh tree where root/outside is still missing.
            let fresh = try HostileTree()
            let up = try fresh.resolver(strategy).openOrCreate("etc/sub/up/x", as: .directory)
            #expect(Outcome.of(up) == .at("\(fresh.root)/outside/x"), "\(strategy)")
            #expect(!Files.exists("\(fresh.outside)/x"), "\(strategy) created on the host side")
        }
    }

    @Test func createsFiles() throws {
        for strategy in strategies {
            let tree = try HostileTree()
            let resolver = tree.resolver(strategy)
            let fd = try resolver.openOrCreate("var/lib/app/state.conf", as: .file)
            let host = "\(tree.root)/var/lib/app/state.conf"
            let st = try #require(Files.lstat(host), "\(strategy)")
            #expect(st.st_mode & S_IFMT == S_IFREG, "\(strategy)")
            #expect(st.st_size == 0, "\(strategy)")
            #expect(Outcome.of(fd) == .at(host), "\(strategy)")
            #expect(Files.isDirectory("\(tree.root)/var/lib/app"), "\(strategy)")

            // Through an absolute symlinked parent: a -> /etc.
            let viaLink = try resolver.openOrCreate("a/new.conf", as: .file)
            #expect(Outcome.of(viaLink) == .at("\(tree.root)/etc/new.conf"), "\(strategy)")
        }
    }

    @Test func existingPathsAreOpenedNotRecreated() throws {
        for strategy in strategies {
            let tree = try HostileTree()
            let resolver = tree.resolver(strategy)
            let fd = try resolver.openOrCreate("b/passwd", as: .file)
            #expect(Outcome.of(fd) == .at("\(tree.root)/etc/passwd"), "\(strategy)")
            #expect(try Files.read("\(tree.root)/etc/passwd") == "ROOT\n", "\(strategy)")
            #expect(Outcome.of(try resolver.openOrCreate("/", as: .directory)) == .at(tree.root), "\(strategy)")
        }
    }

    @Test func danglingSymlinkTargetsAreCreatedInTheRoot() throws {
        for strategy in strategies {
            let tree = try HostileTree()
            let resolver = tree.resolver(strategy)
            // dangling -> /nonexistent/file
            let file = try resolver.openOrCreate("dangling", as: .file)
            let st = try #require(Files.lstat("\(tree.root)/nonexistent/file"), "\(strategy)")
            #expect(st.st_mode & S_IFMT == S_IFREG, "\(strategy)")
            #expect(Outcome.of(file) == .at("\(tree.root)/nonexistent/file"), "\(strategy)")
            #expect(!Files.exists("/nonexistent"), "\(strategy)")

            // A dangling link to a real host path: created under the root, not on the host.
            try tree.link("hostnew", "\(tree.outside)/newfile")
            let hostnew = try resolver.openOrCreate("hostnew", as: .file)
            #expect(Outcome.of(hostnew) == .at(tree.root + tree.outside + "/newfile"), "\(strategy)")
            #expect(!Files.exists("\(tree.outside)/newfile"), "\(strategy) created on the host side")

            // A relative dangling link, as a directory.
            try tree.link("etc/sub/reldir", "../../opt/tool")
            let dir = try resolver.openOrCreate("etc/sub/reldir", as: .directory)
            #expect(Outcome.of(dir) == .at("\(tree.root)/opt/tool"), "\(strategy)")
            #expect(Files.isDirectory("\(tree.root)/opt/tool"), "\(strategy)")
        }
    }

    @Test(arguments: ["missing/..", "missing/.", "a/missing/.."])
    func dotDotAsLastComponentIsRefused(path: String) throws {
        for strategy in strategies {
            let tree = try HostileTree()
            do {
                let fd = try tree.resolver(strategy).openOrCreate(path, as: .directory)
                Issue.record("\(strategy) created \(path): \(Outcome.of(fd))")
            } catch {
                #expect(error.code == EINVAL, "\(strategy): \(error)")
            }
            #expect(!Files.exists("\(tree.root)/missing"), "\(strategy)")
            #expect(!Files.exists("\(tree.root)/etc/missing"), "\(strategy)")
        }
    }

    @Test func createErrorsPassThrough() throws {
        for strategy in strategies {
            let tree = try HostileTree()
            let resolver = tree.resolver(strategy)
            #expect(throws: SystemError.self) { try resolver.openOrCreate("file/x", as: .directory) }
            do {
                _ = try resolver.openOrCreate("loop1/x", as: .directory)
                Issue.record("\(strategy): created through a loop")
            } catch {
                #expect(error.code == ELOOP, "\(strategy)")
            }
            do {
                _ = try resolver.openOrCreate("pw/x", as: .file)
                Issue.record("\(strategy): created below a file")
            } catch {
                #expect(error.code == ENOTDIR, "\(strategy)")
            }
            #expect(!Files.exists("\(tree.root)/file/x") && !Files.exists("\(tree.root)/etc/passwd/x"))
        }
    }

    // MARK: - readFile

    @Test func readFile() throws {
        for strategy in strategies {
            let tree = try HostileTree()
            let resolver = tree.resolver(strategy)
            #expect(resolver.readFile("etc/passwd") == "ROOT\n", "\(strategy)")
            #expect(resolver.readFile("/a/passwd") == "ROOT\n", "\(strategy)")
            #expect(resolver.readFile("hostpasswd") == nil, "\(strategy)")
            #expect(resolver.readFile("../outside/etc/passwd") == nil, "\(strategy)")
            #expect(resolver.readFile("etc") == nil, "\(strategy)")
            #expect(resolver.readFile("a") == nil, "\(strategy)")
            #expect(resolver.readFile("missing") == nil, "\(strategy)")
            #expect(resolver.readFile("loop1") == nil, "\(strategy)")
            #expect(resolver.readFile("magic") == "in-root fd 0", "\(strategy)")
            try Files.write("\(tree.root)/empty", "")
            #expect(resolver.readFile("empty") == "", "\(strategy)")
        }
    }
}
