import Testing
@testable import caisson

/// `start`'s fast parser must read every well-formed command line exactly as ArgumentParser does,
/// and hand everything else to ArgumentParser.
@Suite struct StartArgumentsTests {
    static let wellFormed: [[String]] = [
        ["./rootfs"],
        ["./rootfs", "id", "-u"],
        ["--rw", "--root", "/r", "sh", "-c", "exit 3"],
        ["-m", "/a:/b:ro", "--mount", "/c", "--mount=/d:/e", "/r", "ls", "-la"],
        ["-e", "A=1", "--env", "B", "--env=C=3=4", "/r", "env"],
        ["-w", "/tmp", "--workdir=/x", "/r", "pwd"],
        ["--mount-home", "/r"],
        ["--no-mount-home", "/r", "true"],
        ["--entrypoint", "/r", "--rw", "-m", "x"],
        ["--keep-fd", "7", "--keep-fd=8", "/r", "ls", "/proc/self/fd"],
        ["/r", "--", "echo", "--help"],
        ["/r", "sh", "-c", "echo --root"],
    ]

    @Test(arguments: wellFormed)
    func fastParserAgreesWithArgumentParser(_ args: [String]) throws {
        let fast = try #require(StartArguments.parseFast(args[...]), "fast parser declined \(args)")
        let slow = try Start.parse(args).arguments
        #expect(fast == slow)
    }

    @Test(arguments: [
        ["--help"], ["-h", "/r"], ["--bogus", "/r"], ["--rw=yes", "/r"], ["-m"], ["--keep-fd", "x", "/r"], [], ["--rw"], ["-eD=5", "/r"], ["-m/f:/g", "/r"],
    ] as [[String]])
    func unusualLinesGoToArgumentParser(_ args: [String]) {
        #expect(StartArguments.parseFast(args[...]) == nil)
    }
}
