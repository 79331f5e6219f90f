import CaissonSystem
import Testing
@testable import CaissonRuntime
#if canImport(Glibc)
import Glibc
#endif

/// fstab lines, `--mount` flags and the option → mount(2) flag mapping.
struct MountTableTests {
    // Linux <sys/mount.h> values, written out here so that the mapping is checked against the
    // kernel ABI rather than against Caisson's own constants.
    static let MS_RDONLY: UInt = 1, MS_NOSUID: UInt = 2, MS_NODEV: UInt = 4, MS_NOEXEC: UInt = 8
    static let MS_NOATIME: UInt = 1024, MS_NODIRATIME: UInt = 2048, MS_RELATIME: UInt = 1 << 21
    static let MS_REC: UInt = 16384, MS_PRIVATE: UInt = 1 << 18, MS_SLAVE: UInt = 1 << 19

    /// The origin and offending line of a parse error, or nil when parsing succeeded.
    private func parseFailure(_ text: String, origin: String = "mounts.fstab") -> (origin: String, line: String)? {
        do {
            _ = try MountTable.parse(text, origin: origin)
            return nil
        } catch {
            guard case .malformed(let place, let line, _) = error else { return nil }
            return (place, line)
        }
    }

    private func flagFailure(_ text: String) -> (origin: String, line: String, why: String)? {
        do {
            _ = try MountTable.parseFlag(text, currentDirectory: "/home/u")
            return nil
        } catch {
            guard case .malformed(let origin, let line, let why) = error else { return nil }
            return (origin, line, why)
        }
    }

    // MARK: - --mount flags

    @Test func flagDefaultsToRecursiveBindWithAutoCreate() throws {
        let entry = try MountTable.parseFlag("/data", currentDirectory: "/home/u")
        #expect(entry.source == "/data")
        #expect(entry.target == "/data")
        #expect(entry.type == "none")
        #expect(entry.options == ["rbind", "x-create=auto"])
        #expect(entry.origin == "--mount /data")
        #expect(entry.isBind)
        #expect(entry.isRecursive)
        #expect(!entry.optional)
    }

    @Test func flagWithDestination() throws {
        let entry = try MountTable.parseFlag("/scratch/u:/work", currentDirectory: "/home/u")
        #expect(entry.source == "/scratch/u")
        #expect(entry.target == "/work")
        #expect(entry.options == ["rbind", "x-create=auto"])
    }

    @Test func emptyDestinationMeansSameAsSource() throws {
        let entry = try MountTable.parseFlag("/a::ro", currentDirectory: "/home/u")
        #expect(entry.target == "/a")
        #expect(entry.options == ["ro", "rbind", "x-create=auto"])
    }

    @Test(arguments: ["ro+nosuid+nofail", "ro,nosuid,nofail", "ro+nosuid,nofail"])
    func flagOptionSeparators(options: String) throws {
        let entry = try MountTable.parseFlag("/a:/b:\(options)", currentDirectory: "/")
        #expect(entry.options == ["ro", "nosuid", "nofail", "rbind", "x-create=auto"])
        #expect(entry.optional)
    }

    @Test func explicitBindAndCreateAreKept() throws {
        let entry = try MountTable.parseFlag("/a:/b:bind+x-create=file", currentDirectory: "/")
        #expect(entry.options == ["bind", "x-create=file"])
        #expect(entry.isBind)
        #expect(!entry.isRecursive)
        #expect(entry.create == .file)
    }

    @Test func optionsMayContainColons() throws {
        // Only the first two colons split: everything after belongs to OPTS.
        let entry = try MountTable.parseFlag("/a:/b:ro,x-opt=c:d", currentDirectory: "/")
        #expect(entry.target == "/b")
        #expect(entry.options == ["ro", "x-opt=c:d", "rbind", "x-create=auto"])
    }

    @Test func tmpfsFlag() throws {
        let entry = try MountTable.parseFlag("tmpfs:/scratch:size=1m+mode=1777", currentDirectory: "/home/u")
        #expect(entry.source == "tmpfs")
        #expect(entry.target == "/scratch")
        #expect(entry.type == "tmpfs")
        #expect(entry.options == ["size=1m", "mode=1777", "x-create=dir"])
        #expect(!entry.isBind)
        #expect(entry.create == .directory)
        #expect(entry.origin == "--mount tmpfs:/scratch:size=1m+mode=1777")
    }

    @Test func tmpfsFlagWithoutOptions() throws {
        let entry = try MountTable.parseFlag("tmpfs:/t", currentDirectory: "/home/u")
        #expect(entry.type == "tmpfs")
        #expect(entry.options == ["x-create=dir"])
    }

    @Test(arguments: ["tmpfs", "tmpfs:", "tmpfs:relative", "tmpfs::size=1m"])
    func tmpfsNeedsAbsoluteDestination(flag: String) {
        let failure = flagFailure(flag)
        #expect(failure?.origin == "--mount")
        #expect(failure?.line == flag)
        #expect(failure?.why.contains("tmpfs") == true)
    }

    @Test func relativeSourceIsMadeAbsolute() throws {
        let entry = try MountTable.parseFlag("data:/mnt", currentDirectory: "/home/u")
        #expect(entry.source == "/home/u/data")
        #expect(entry.target == "/mnt")
        let trailing = try MountTable.parseFlag("sub/dir", currentDirectory: "/home/u/")
        #expect(trailing.source == "/home/u/sub/dir")
        #expect(trailing.target == "/home/u/sub/dir")
    }

    @Test(arguments: ["", ":/x", "::"])
    func flagWithoutSourceIsRejected(flag: String) {
        let failure = flagFailure(flag)
        #expect(failure?.origin == "--mount")
        #expect(failure?.line == flag)
    }

    @Test func flagWithRelativeDestinationIsRejected() {
        let failure = flagFailure("/a:relative")
        #expect(failure?.origin == "--mount")
        #expect(failure?.line == "/a:relative")
        #expect(failure?.why.contains("absolute") == true)
    }

    // MARK: - x-create=auto and friends

    @Test func createFollowsTheSourceKind() throws {
        var template = Array("/tmp/caisson-mounttable-test-XXXXXX".utf8CString)
        let dir = String(cString: try #require(mkdtemp(&template)))
        let file = "\(dir)/file"
        try Files.write(file, "x")
        defer { unlink(file); rmdir(dir) }

        #expect(try MountTable.parseFlag(dir, currentDirectory: "/").create == .directory)
        #expect(try MountTable.parseFlag("\(file):/etc/f", currentDirectory: "/").create == .file)
        // A missing source: a directory (the mount itself will then fail or be skipped).
        #expect(try MountTable.parseFlag("\(dir)/missing:/m", currentDirectory: "/").create == .directory)
        #expect(try MountTable.parseFlag("\(file):/m:x-create=dir", currentDirectory: "/").create == .directory)
        #expect(try MountTable.parseFlag("\(dir):/m:x-create=file", currentDirectory: "/").create == .file)
    }

    @Test func noCreateWithoutTheOption() throws {
        let entries = try MountTable.parse("/a /b none bind\n", origin: "f")
        #expect(entries[0].create == nil)
    }

    // MARK: - fstab text

    @Test func parsesFstabText() throws {
        let text = """
            # site mounts

            /src /dst
            /a\\040b /mnt/with\\040space none bind,ro 0 0
            \ttmpfs\t/tmp  tmpfs   size=1m,defaults
            proc /proc proc defaults
            /opt /opt none ro,nofail
            """
        let entries = try MountTable.parse(text, origin: "/etc/caisson/mounts.d/10-site.fstab")
        try #require(entries.count == 5)

        #expect(entries[0] == MountEntry(source: "/src", target: "/dst", type: "none", options: ["rbind"],
                                         origin: "/etc/caisson/mounts.d/10-site.fstab:3"))
        #expect(entries[1].source == "/a b")
        #expect(entries[1].target == "/mnt/with space")
        #expect(entries[1].options == ["bind", "ro"])
        #expect(entries[1].origin.hasSuffix(":4"))
        #expect(entries[2] == MountEntry(source: "tmpfs", target: "/tmp", type: "tmpfs", options: ["size=1m"],
                                         origin: "/etc/caisson/mounts.d/10-site.fstab:5"))
        #expect(entries[3].type == "proc")
        #expect(entries[3].options == [])
        #expect(entries[4].options == ["ro", "nofail", "rbind"])
        #expect(entries[4].optional)
    }

    @Test func trailingBlanksAndCarriageReturns() throws {
        let entries = try MountTable.parse("/a /b none bind \t\n\t \n/c /d\r", origin: "f")
        #expect(entries.map(\.target) == ["/b", "/d"])
        #expect(entries.map(\.origin) == ["f:1", "f:3"])
        #expect(entries[0].options == ["bind"])
    }

    @Test func windowsLineEndings() throws {
        // "\r\n" is one Character in Swift: splitting on "\n" leaves a CRLF file as a single line.
        let entries = try MountTable.parse("/a /b none bind\r\n/c /d\r\n", origin: "f")
        #expect(entries.map(\.target) == ["/b", "/d"])
        #expect(entries.first?.options == ["bind"])
    }

    @Test func unescapesOctal() throws {
        let entries = try MountTable.parse("/x\\040y\\011z /t\\134u\n", origin: "f")
        #expect(entries[0].source == "/x y\tz")
        #expect(entries[0].target == "/t\\u")
    }

    @Test func leavesOtherBackslashesAlone() throws {
        let entries = try MountTable.parse("/a\\b /c\\04\n", origin: "f")
        #expect(entries[0].source == "/a\\b")
        #expect(entries[0].target == "/c\\04")
    }

    @Test func emptyAndCommentOnlyTextGivesNothing() throws {
        #expect(try MountTable.parse("", origin: "f").isEmpty)
        #expect(try MountTable.parse("# only\n   \n\t# indented comment\n", origin: "f").isEmpty)
    }

    @Test func malformedLineReportsItsLine() {
        let failure = parseFailure("# ok\n/a /b\n\nlonely\n/c /d\n", origin: "mounts.fstab")
        #expect(failure?.origin == "mounts.fstab:4")
        #expect(failure?.line == "lonely")
    }

    @Test func relativeTargetReportsItsLine() {
        let failure = parseFailure("/a /b\n/c d none bind\n", origin: "user.fstab")
        #expect(failure?.origin == "user.fstab:2")
        #expect(failure?.line == "/c d none bind")
    }

    @Test func errorDescriptionNamesOriginAndLine() {
        do {
            _ = try MountTable.parse("x\n", origin: "f")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("f:1: "))
            #expect(error.description.hasSuffix(": x"))
        }
    }

    @Test func descriptionRoundTripsOptions() throws {
        let entry = try MountTable.parse("/a /b none bind,ro\nproc /proc proc\n", origin: "f")
        #expect(entry[0].description == "/a /b none bind,ro")
        #expect(entry[1].description == "proc /proc proc defaults")
    }

    // MARK: - mount(2) flags

    @Test func mountFlagConstantsMatchTheKernel() {
        #expect(MountFlag.rdonly == Self.MS_RDONLY)
        #expect(MountFlag.nosuid == Self.MS_NOSUID)
        #expect(MountFlag.nodev == Self.MS_NODEV)
        #expect(MountFlag.noexec == Self.MS_NOEXEC)
        #expect(MountFlag.rec == Self.MS_REC)
        #expect(MountFlag.privateProp == Self.MS_PRIVATE)
        #expect(MountFlag.slave == Self.MS_SLAVE)
    }

    @Test func securityFlags() {
        let result = MountTable.flags(for: ["ro", "nosuid", "nodev", "noexec"])
        #expect(result.flags == Self.MS_RDONLY | Self.MS_NOSUID | Self.MS_NODEV | Self.MS_NOEXEC)
        #expect(result.data == "")
        #expect(result.propagation == 0)
    }

    @Test func atimeFlags() {
        let result = MountTable.flags(for: ["noatime", "nodiratime", "relatime"])
        #expect(result.flags == Self.MS_NOATIME | Self.MS_NODIRATIME | Self.MS_RELATIME)
    }

    @Test func rwAfterRoClearsReadOnly() {
        #expect(MountTable.flags(for: ["ro", "nosuid", "rw"]).flags == Self.MS_NOSUID)
        #expect(MountTable.flags(for: ["rw", "ro"]).flags == Self.MS_RDONLY)
    }

    @Test func propagation() {
        #expect(MountTable.flags(for: ["private"]).propagation == Self.MS_PRIVATE)
        #expect(MountTable.flags(for: ["rprivate"]).propagation == Self.MS_PRIVATE | Self.MS_REC)
        #expect(MountTable.flags(for: ["slave"]).propagation == Self.MS_SLAVE)
        #expect(MountTable.flags(for: ["rslave"]).propagation == Self.MS_SLAVE | Self.MS_REC)
        #expect(MountTable.flags(for: ["rprivate", "rslave"]).propagation == Self.MS_SLAVE | Self.MS_REC)
    }

    @Test(arguments: ["shared", "rshared", "unbindable", "runbindable"])
    func propagationBackToTheHostIsIgnored(option: String) {
        let result = MountTable.flags(for: ["rbind", option])
        #expect(result.flags == 0)
        #expect(result.propagation == 0)
        #expect(result.data == "")
    }

    @Test func filesystemDataIsPassedThroughAndExtensionsDropped() {
        let result = MountTable.flags(for: ["size=1m", "x-create=dir", "nosuid", "mode=1777", "nofail", "x-anything", "uid=0", "defaults", "bind"])
        #expect(result.data == "size=1m,mode=1777,uid=0")
        #expect(result.flags == Self.MS_NOSUID)
        #expect(result.propagation == 0)
    }

    @Test func tmpfsFlagEndToEnd() throws {
        let entry = try MountTable.parseFlag("tmpfs:/scratch:size=1m+nodev", currentDirectory: "/")
        let result = MountTable.flags(for: entry.options)
        #expect(result.data == "size=1m")
        #expect(result.flags == Self.MS_NODEV)
    }
}
