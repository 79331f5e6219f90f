import CaissonSystem
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ScratchNameTests {
    /// A pid that is certainly gone: a child that has exited and been reaped.
    static func deadPID() -> Int32 {
        let pid = fork()
        if pid == 0 { _exit(0) }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return pid
    }

    @Test func namesCarryHostAndPid() {
        #expect(ScratchName.make("img.sqsh", kind: "partial") == ".img.sqsh.partial-\(ScratchName.host)-\(getpid())")
        #expect(!ScratchName.host.contains(".") && !ScratchName.host.contains("/") && !ScratchName.host.isEmpty)
    }

    @Test func onlyThisHostsWorkWhoseProcessIsGoneIsAbandoned() {
        let host = ScratchName.host
        let dead = Self.deadPID()
        #expect(ScratchName.isAbandoned(".x.partial-\(host)-\(dead)", kinds: ["partial"]))
        #expect(ScratchName.isAbandoned(".x.removing-\(host)-\(dead)", kinds: ["partial", "removing"]))
        #expect(ScratchName.isAbandoned(".x.partial-\(host)-\(dead)", kinds: ["partial"], name: "x"))
        #expect(!ScratchName.isAbandoned(".x.partial-\(host)-\(dead)", kinds: ["partial"], name: "y"), "another output's")
        #expect(!ScratchName.isAbandoned(".x.partial-\(host)-\(getpid())", kinds: ["partial"]), "our own")
        #expect(!ScratchName.isAbandoned(".x.partial-\(host)-1", kinds: ["partial"]), "a live process (init)")
        #expect(!ScratchName.isAbandoned(".x.partial-other-node-\(dead)", kinds: ["partial"]), "another host's")
        #expect(!ScratchName.isAbandoned(".x.removing-\(host)-\(dead)", kinds: ["partial"]), "another kind")
        #expect(!ScratchName.isAbandoned("x.partial-\(host)-\(dead)", kinds: ["partial"]), "not hidden")
        #expect(!ScratchName.isAbandoned(".x.partial-\(host)-", kinds: ["partial"]))
        #expect(!ScratchName.isAbandoned(".x.partial-\(dead)", kinds: ["partial"]), "no host: an older Caisson's, left alone")
    }
}
