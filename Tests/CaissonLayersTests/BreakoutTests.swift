import CaissonSquashfs
import Foundation
import Testing
@testable import CaissonLayers

/// containerd's `TestBreakouts` (pkg/archive/tar_test.go), case by case, in our model.
///
/// containerd extracts onto a real directory and checks that nothing escaped it. We never extract:
/// a "breakout" here means an entry that lands somewhere in the tree other than where containerd
/// puts it inside its root, or that touches the host at all. Each case states the exact tree (or
/// the error) and, for every case, the host is checked unchanged: a sentinel directory standing
/// for "outside" (whose absolute paths the last case aims at), and the paths the layers name,
/// both under `/` and under the current directory.
struct BreakoutCase: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        /// The tree as `render` prints it; `same`: paths (symlinks followed) that must be one node,
        /// as containerd's `sameFile`; `different`: paths that must not be.
        case tree([String], same: [(String, String)] = [], different: [(String, String)] = [])
        case error(LayerError.Kind, String)
    }

    let name: String
    /// Each closure gets the sentinel directory's path.
    let lower: @Sendable (String) -> [TarEntry]
    let layer: @Sendable (String) -> [TarEntry]
    let outcome: @Sendable (String) -> Outcome

    var testDescription: String { name }

    init(_ name: String, lower: [TarEntry] = [], _ layer: [TarEntry], _ outcome: Outcome) {
        self.name = name
        self.lower = { _ in lower }
        self.layer = { _ in layer }
        self.outcome = { _ in outcome }
    }

    init(_ name: String, layer: @escaping @Sendable (String) -> [TarEntry], outcome: @escaping @Sendable (String) -> Outcome) {
        self.name = name
        lower = { _ in [] }
        self.layer = layer
        self.outcome = outcome
    }

    static let all: [BreakoutCase] = [
        BreakoutCase("SymlinkAbsolute", [
            .dir("etc"),
            .symlink("/etc", "localetc"),
            .file("/localetc/unbroken", "unbroken"),
        ], .tree([
            "d 0755 /etc",
            "f 0644 /etc/unbroken = \"unbroken\"",
            "l /localetc -> /etc",
        ])),
        BreakoutCase("SymlinkUpAndOut", [
            .dir("etc"),
            .dir("dummy"),
            .symlink("/dummy/../etc", "localetc"),
            .file("/localetc/unbroken", "unbroken"),
        ], .tree([
            "d 0755 /dummy",
            "d 0755 /etc",
            "f 0644 /etc/unbroken = \"unbroken\"",
            "l /localetc -> /dummy/../etc",
        ])),
        BreakoutCase("SymlinkMultipleAbsolute", [
            .dir("etc"),
            .dir("dummy"),
            .symlink("/etc", "/dummy/etc"),
            .symlink("/dummy/etc", "localetc"),
            .file("/dummy/etc/unbroken", "unbroken"),
        ], .tree([
            "d 0755 /dummy",
            "l /dummy/etc -> /etc",
            "d 0755 /etc",
            "f 0644 /etc/unbroken = \"unbroken\"",
            "l /localetc -> /dummy/etc",
        ])),
        BreakoutCase("SymlinkMultipleRelative", [
            .dir("etc"),
            .dir("dummy"),
            .symlink("/etc", "/dummy/etc"),
            .symlink("./dummy/etc", "localetc"),
            .file("/dummy/etc/unbroken", "unbroken"),
        ], .tree([
            "d 0755 /dummy",
            "l /dummy/etc -> /etc",
            "d 0755 /etc",
            "f 0644 /etc/unbroken = \"unbroken\"",
            "l /localetc -> ./dummy/etc",
        ])),
        BreakoutCase("SymlinkEmptyFile", [
            .dir("etc"),
            .file("etc/emptied", "notempty"),
            .symlink("/etc", "localetc"),
            .file("/localetc/emptied", ""),
        ], .tree([
            "d 0755 /etc",
            "f 0644 /etc/emptied = \"\"",
            "l /localetc -> /etc",
        ])),
        BreakoutCase("HardlinkRelative", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .dir("breakouts"),
            .symlink("../../etc", "breakouts/d1"),
            .link("/breakouts/d1/passwd", "breakouts/mypasswd"),
        ], .tree([
            "d 0755 /breakouts",
            "l /breakouts/d1 -> ../../etc",
            "f 0644 /breakouts/mypasswd = \"inside\" #1",
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
        ], same: [("/breakouts/mypasswd", "/etc/passwd")])),
        BreakoutCase("HardlinkDownAndOut", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .dir("breakouts"),
            .dir("downandout"),
            .symlink("../downandout/../../etc", "breakouts/d1"),
            .link("/breakouts/d1/passwd", "breakouts/mypasswd"),
        ], .tree([
            "d 0755 /breakouts",
            "l /breakouts/d1 -> ../downandout/../../etc",
            "f 0644 /breakouts/mypasswd = \"inside\" #1",
            "d 0755 /downandout",
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
        ], same: [("/breakouts/mypasswd", "/etc/passwd")])),
        BreakoutCase("HardlinkAbsolute", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("/etc", "localetc"),
            .link("/localetc/passwd", "localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
            "l /localetc -> /etc",
            "f 0644 /localpasswd = \"inside\" #1",
        ], same: [("/localpasswd", "/etc/passwd")])),
        BreakoutCase("HardlinkRelativeLong", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("../../../../../../../etc", "localetc"),
            .link("/localetc/passwd", "localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
            "l /localetc -> ../../../../../../../etc",
            "f 0644 /localpasswd = \"inside\" #1",
        ], same: [("/localpasswd", "/etc/passwd")])),
        // `upandout` does not exist: like securejoin, `upandout/..` cancels lexically (nothing is made).
        BreakoutCase("HardlinkRelativeUpAndOut", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("upandout/../../../etc", "localetc"),
            .link("/localetc/passwd", "localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
            "l /localetc -> upandout/../../../etc",
            "f 0644 /localpasswd = \"inside\" #1",
        ], same: [("/localpasswd", "/etc/passwd")])),
        // containerd clamps the target to /etc/passwd; a hard-link target is an archive path like
        // an entry name, and one that climbs above the root is refused like `../evil`.
        BreakoutCase("HardlinkDirectRelative", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .link("../../../../../etc/passwd", "localpasswd"),
        ], .error(.escapesRoot,
                  "layer breakouts: entry localpasswd is a hard link to ../../../../../etc/passwd, which escapes the image root")),
        BreakoutCase("HardlinkDirectAbsolute", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .link("/etc/passwd", "localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
            "f 0644 /localpasswd = \"inside\" #1",
        ], same: [("/localpasswd", "/etc/passwd")])),
        // containerd skips an entry that resolves to its root; `..` climbs above ours: refused.
        BreakoutCase("SymlinkParentDirectory", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("/etc/", ".."),
            .link("/etc/passwd", "localpasswd"),
        ], .error(.escapesRoot, "layer breakouts: entry .. escapes the image root")),
        // An empty name is the root; a symlink cannot replace it (containerd skips the entry).
        BreakoutCase("SymlinkEmptyFilename", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("/etc/", ""),
            .link("/etc/passwd", "localpasswd"),
        ], .error(.rootNotDirectory, "layer breakouts: entry \"\" names the image root, which can only be a directory")),
        // Not in peers.md's list, but in the same containerd table: `localetc/sub/..` is `localetc`.
        BreakoutCase("SymlinkParentRelative", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("/etc/", "localetc/sub/.."),
            .link("/etc/passwd", "/localetc/localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/localpasswd = \"inside\" #1",
            "f 0644 /etc/passwd = \"inside\" #1",
            "l /localetc -> /etc/",
        ], same: [("/localetc/localpasswd", "/etc/passwd")])),
        BreakoutCase("SymlinkSlashEnded", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .dir("localetc/", 0o770),
            .link("/etc/passwd", "/localetc/localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
            "d 0770 /localetc",
            "f 0644 /localetc/localpasswd = \"inside\" #1",
        ], same: [("/localetc/localpasswd", "/etc/passwd")])),
        BreakoutCase("SymlinkOverrideDirectory", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "inside"),
            .dir("/localetc/"),
        ], [
            .symlink("/etc", "localetc"),
            .link("/etc/passwd", "/localetc/localpasswd"),
        ], .tree([
            "d 0755 /etc",
            "f 0644 /etc/localpasswd = \"inside\" #1",
            "f 0644 /etc/passwd = \"inside\" #1",
            "l /localetc -> /etc",
        ], same: [("/localetc/localpasswd", "/etc/passwd")])),
        BreakoutCase("SymlinkOverrideDirectoryRelative", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "inside"),
            .dir("/localetc/"),
        ], [
            .symlink("../../etc", "localetc"),
            .link("/etc/passwd", "/localetc/localpasswd"),
        ], .tree([
            "d 0755 /etc",
            "f 0644 /etc/localpasswd = \"inside\" #1",
            "f 0644 /etc/passwd = \"inside\" #1",
            "l /localetc -> ../../etc",
        ], same: [("/localetc/localpasswd", "/etc/passwd")])),
        BreakoutCase("DirectoryOverrideSymlink", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "inside"),
            .symlink("/etc", "localetc"),
        ], [
            .dir("/localetc/"),
            .link("/etc/passwd", "/localetc/localpasswd"),
        ], .tree([
            "d 0755 /etc",
            "f 0644 /etc/passwd = \"inside\" #1",
            "d 0755 /localetc",
            "f 0644 /localetc/localpasswd = \"inside\" #1",
        ], same: [("/localetc/localpasswd", "/etc/passwd")])),
        BreakoutCase("DirectoryOverrideSymlinkAndHardlink", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "inside"),
            .symlink("etc", "localetc"),
            .link("/etc/passwd", "/localetc/localpasswd"),  // lands in /etc through the symlink
        ], [
            .dir("/localetc/"),
            .file("/localetc/localpasswd", "different"),
        ], .tree([
            "d 0755 /etc",
            "f 0644 /etc/localpasswd = \"inside\" #1",
            "f 0644 /etc/passwd = \"inside\" #1",
            "d 0755 /localetc",
            "f 0644 /localetc/localpasswd = \"different\"",
        ], different: [("/localetc/localpasswd", "/etc/passwd")])),
        BreakoutCase("WhiteoutRootParent", lower: [.dir("/etc/"), .file("/etc/passwd", "inside")],
                     [.whiteout(".wh...")],
                     .error(.invalidWhiteout, "layer breakouts: entry .wh... is a whiteout for its parent directory")),
        BreakoutCase("WhiteoutParent", lower: [.dir("/etc/"), .file("/etc/passwd", "inside")],
                     [.whiteout("etc/.wh...")],
                     .error(.invalidWhiteout, "layer breakouts: entry etc/.wh... is a whiteout for its parent directory")),
        BreakoutCase("WhiteoutRoot", lower: [.dir("/etc/"), .file("/etc/passwd", "inside")],
                     [.whiteout(".wh..")],
                     .error(.invalidWhiteout, "layer breakouts: entry .wh.. is a whiteout for its own directory")),
        BreakoutCase("WhiteoutCurrentDirectory", lower: [.dir("/etc/"), .file("/etc/passwd", "inside")],
                     [.whiteout("etc/.wh..")],
                     .error(.invalidWhiteout, "layer breakouts: entry etc/.wh.. is a whiteout for its own directory")),
        BreakoutCase("WhiteoutSymlink", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "all users"),
            .symlink("/etc", "localetc"),
        ], [.whiteout(".wh.localetc")], .tree([
            "d 0755 /etc",
            "f 0644 /etc/passwd = \"all users\"",
        ])),
        BreakoutCase("WhiteoutSymlinkPath", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "all users"),
            .file("/etc/whitedout", "ahhhh whiteout"),
            .symlink("/etc", "localetc"),
        ], [.whiteout("localetc/.wh.whitedout")], .tree([
            "d 0755 /etc",
            "f 0644 /etc/passwd = \"all users\"",
            "l /localetc -> /etc",
        ])),
        // Only the last component is a whiteout: `.wh.etc/` is an ordinary directory.
        BreakoutCase("WhiteoutDirectoryName", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "all users"),
            .file("/etc/whitedout", "ahhhh whiteout"),
            .symlink("/etc", "localetc"),
        ], [.file(".wh.etc/somefile", "non-empty")], .tree([
            "d 0755 /.wh.etc",
            "f 0644 /.wh.etc/somefile = \"non-empty\"",
            "d 0755 /etc",
            "f 0644 /etc/passwd = \"all users\"",
            "f 0644 /etc/whitedout = \"ahhhh whiteout\"",
            "l /localetc -> /etc",
        ])),
        // The whiteout's directory (/dne, through the dangling symlink) does not exist: nothing
        // happens, and nothing is created for it.
        BreakoutCase("WhiteoutDeadSymlinkParent", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "all users"),
            .symlink("/dne", "localetc"),
        ], [.whiteout("localetc/.wh.etc")], .tree([
            "d 0755 /etc",
            "f 0644 /etc/passwd = \"all users\"",
            "l /localetc -> /dne",
        ])),
        BreakoutCase("WhiteoutRelativePath", lower: [
            .dir("/etc/"),
            .file("/etc/passwd", "all users"),
            .symlink("/dne", "localetc"),
        ], [.whiteout("dne/../.wh.etc")], .tree([
            "l /localetc -> /dne",
        ])),
        // A hard link to a symlink is the symlink itself (one node), as containerd makes it.
        BreakoutCase("HardlinkSymlinkBeforeCreateTarget", [
            .dir("etc", 0o770),
            .symlink("/etc/passwd", "localpasswd"),
            .link("localpasswd", "localpasswd-dup"),
            .file("/etc/passwd", "after"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"after\"",
            "l /localpasswd -> /etc/passwd #1",
            "l /localpasswd-dup -> /etc/passwd #1",
        ], same: [("/localpasswd-dup", "/etc/passwd"), ("/localpasswd", "/etc/passwd")])),
        BreakoutCase("HardlinkSymlinkRelative", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("../../../../../etc/passwd", "passwdlink"),
            .link("/passwdlink", "localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\"",
            "l /localpasswd -> ../../../../../etc/passwd #1",
            "l /passwdlink -> ../../../../../etc/passwd #1",
        ], same: [("/localpasswd", "/etc/passwd")])),
        BreakoutCase("HardlinkSymlinkAbsolute", [
            .dir("etc", 0o770),
            .file("/etc/passwd", "inside"),
            .symlink("/etc/passwd", "passwdlink"),
            .link("/passwdlink", "localpasswd"),
        ], .tree([
            "d 0770 /etc",
            "f 0644 /etc/passwd = \"inside\"",
            "l /localpasswd -> /etc/passwd #1",
            "l /passwdlink -> /etc/passwd #1",
        ], same: [("/localpasswd", "/etc/passwd")])),
        // Names and targets are real host paths (the sentinel's): they become image paths, the
        // hard link's mode changes nothing, and the host's perm400 keeps 0400 (snapshot).
        BreakoutCase("HardlinkSymlinkChmod", layer: { sentinel in
            [
                .symlink(sentinel + "/perm400", sentinel + "/also-exists-outside-root"),
                .link(sentinel + "/also-exists-outside-root", "sketchylink"),
            ]
        }, outcome: { sentinel in
            let parts = sentinel.split(separator: "/").map(String.init)
            var lines: [String] = []
            var path = ""
            for part in parts {
                path += "/" + part
                lines.append("d 0755 \(path)")
            }
            lines.append("l \(sentinel)/also-exists-outside-root -> \(sentinel)/perm400 #1")
            return .tree(["l /sketchylink -> \(sentinel)/perm400 #1"] + lines)
        }),
    ]
}

@Suite struct BreakoutTests {
    /// Host paths a breakout of these layers would create or change, outside any sentinel.
    static func hostPaths() -> [String] {
        let names = ["etc", "etc/unbroken", "etc/emptied", "etc/passwd", "etc/localpasswd", "etc/whitedout",
                     "localetc", "dummy", "breakouts", "downandout", "dne", "upandout", "unbroken",
                     "localpasswd", "localpasswd-dup", "passwdlink", "sketchylink", ".wh.etc"]
        let cwd = FileManager.default.currentDirectoryPath
        return names.map { "/" + $0 } + names.map { cwd + "/" + $0 }
    }

    @Test(arguments: BreakoutCase.all)
    func breakout(_ test: BreakoutCase) throws {
        let sentinel = try Sentinel()
        let sentinelBefore = sentinel.snapshot
        let hostBefore = HostSnapshot.of(paths: Self.hostPaths())

        let harness = Harness()
        let lower = test.lower(sentinel.path)
        if !lower.isEmpty { try harness.apply(lower, name: "lower") }
        let error = harness.failure { try $0.apply(test.layer(sentinel.path), .gzip, name: "breakouts") }

        switch test.outcome(sentinel.path) {
        case .tree(let expected, let same, let different):
            #expect(error == nil, "\(error?.description ?? "")")
            #expect(harness.tree == expected)
            for (a, b) in same {
                let nodeA = harness.node(a, follow: true), nodeB = harness.node(b, follow: true)
                #expect(nodeA != nil && nodeA === nodeB, "\(a) and \(b) should be the same file")
            }
            for (a, b) in different {
                let nodeA = harness.node(a, follow: true), nodeB = harness.node(b, follow: true)
                #expect(nodeA != nil && nodeB != nil && nodeA !== nodeB, "\(a) and \(b) should be different files")
            }
        case .error(let kind, let message):
            #expect(error?.kind == kind)
            #expect(error?.description == message)
            #expect(error?.layer == "breakouts")
        }
        #expect(harness.warnings.isEmpty)
        #expect(sentinel.snapshot == sentinelBefore)
        #expect(HostSnapshot.of(paths: Self.hostPaths()) == hostBefore)
    }

    @Test func tableCoversPeersList() {
        let listed = ["SymlinkAbsolute", "SymlinkUpAndOut", "SymlinkMultipleAbsolute", "SymlinkMultipleRelative",
                      "SymlinkEmptyFile", "HardlinkRelative", "HardlinkDownAndOut", "HardlinkAbsolute",
                      "HardlinkRelativeLong", "HardlinkRelativeUpAndOut", "HardlinkDirectRelative",
                      "HardlinkDirectAbsolute", "SymlinkParentDirectory", "SymlinkEmptyFilename", "SymlinkSlashEnded",
                      "SymlinkOverrideDirectory", "SymlinkOverrideDirectoryRelative", "DirectoryOverrideSymlink",
                      "DirectoryOverrideSymlinkAndHardlink", "WhiteoutRootParent", "WhiteoutParent", "WhiteoutRoot",
                      "WhiteoutCurrentDirectory", "WhiteoutSymlink", "WhiteoutSymlinkPath", "WhiteoutDirectoryName",
                      "WhiteoutDeadSymlinkParent", "WhiteoutRelativePath", "HardlinkSymlinkBeforeCreateTarget",
                      "HardlinkSymlinkRelative", "HardlinkSymlinkAbsolute", "HardlinkSymlinkChmod"]
        let names = BreakoutCase.all.map(\.name)
        #expect(Set(listed).subtracting(names).isEmpty)
        #expect(Set(names).count == names.count)
    }
}

@Suite struct HostSnapshotTests {
    /// The breakout table's host check is only worth something if it notices changes.
    @Test func noticesChanges() throws {
        let sentinel = try Sentinel()
        let before = sentinel.snapshot
        #expect(before.entries.count == 5)  // the directory, etc, etc/passwd, perm400, also-exists-outside-root
        chmod(sentinel.path + "/perm400", 0o600)
        #expect(sentinel.snapshot != before)

        let other = try Sentinel()
        let snapshot = other.snapshot
        _ = FileManager.default.createFile(atPath: other.path + "/etc/unbroken", contents: Data("x".utf8))
        #expect(other.snapshot != snapshot)

        let probe = HostSnapshot.of(paths: [other.path + "/etc/passwd"])
        let handle = try #require(FileHandle(forWritingAtPath: other.path + "/etc/passwd"))
        handle.write(Data("HOSTS".utf8))
        try handle.close()
        #expect(HostSnapshot.of(paths: [other.path + "/etc/passwd"]) != probe)
    }
}
