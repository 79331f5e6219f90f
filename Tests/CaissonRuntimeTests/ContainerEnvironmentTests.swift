import CaissonSystem
import Testing
@testable import CaissonRuntime

/// The container's environment, layer by layer.
struct ContainerEnvironmentTests {
    private func names(_ env: ContainerEnvironment) -> [String] { env.variables.map(\.name) }

    // MARK: - Host import and the deny list

    @Test func deniedHostVariablesAreDropped() {
        var env = ContainerEnvironment()
        env.importHost([
            ("HOME", "/home/u"),
            ("LD_PRELOAD", "/lib/evil.so"),
            ("LD_LIBRARY_PATH", "/host/lib"),
            ("BASH_FUNC_module%%", "() {  eval $($LMOD_CMD bash \"$@\")\n}"),
            ("LMOD_CMD", "/usr/share/lmod/lmod/libexec/lmod"),
            ("__LMOD_REF_COUNT_PATH", "/usr/bin:1"),
            ("MODULEPATH", "/etc/modulefiles"),
            ("CAISSON_RUNTIME_PATH", "/run/x"),
            ("BASH_ENV", "/etc/profile.d/x"),
            ("LANG", "C.UTF-8"),
        ])
        #expect(names(env) == ["HOME", "LANG", "PATH"])
        #expect(env["HOME"] == "/home/u")
        #expect(env["LD_PRELOAD"] == nil)
        #expect(env["BASH_FUNC_module%%"] == nil)
        #expect(env["CAISSON_RUNTIME_PATH"] == nil)
    }

    @Test(arguments: ["LD_PRELOAD", "LD_AUDIT", "BASH_FUNC_x%%", "BASH_FUNC_ml%%", "LMOD_DIR", "__LMOD_STACK_X",
                      "CAISSON_DEBUG", "MODULESHOME", "_LMFILES_", "PROMPT_COMMAND", "ENV"])
    func denied(name: String) {
        #expect(ContainerEnvironment.isDenied(name))
    }

    @Test(arguments: ["PATH", "HOME", "LMOD", "CAISSON", "MY_CAISSON_X", "LD_PRELOAD_NOT", "SLURM_JOB_ID", "ENVIRONMENT"])
    func allowed(name: String) {
        #expect(!ContainerEnvironment.isDenied(name))
    }

    @Test func hostPathIsReplacedByTheDefaultInPlace() {
        var env = ContainerEnvironment()
        env.importHost([("A", "1"), ("PATH", "/host/only/bin"), ("B", "2")])
        #expect(names(env) == ["A", "PATH", "B"])
        #expect(env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    }

    @Test func pathIsSetEvenWhenTheHostHasNone() {
        var env = ContainerEnvironment()
        env.importHost([("A", "1")])
        #expect(names(env) == ["A", "PATH"])
        #expect(env["PATH"] == ContainerEnvironment.defaultPath)
        #expect(ContainerEnvironment.defaultPath.split(separator: ":").contains("/usr/bin"))
    }

    // MARK: - /etc/environment

    @Test func etcEnvironment() {
        var env = ContainerEnvironment()
        env.importHost([("HOME", "/home/u"), ("LANG", "en_US.UTF-8")])
        env.apply(etcEnvironment: """
            # Debian's /etc/environment
            export LANG="C.UTF-8"
            TZ='Europe/Paris'
              PATH=/opt/conda/bin:/usr/bin
            1BAD=x
            BAD-NAME=y
            NOEQUALS
            EMPTY=
            MIXED="abc'
            NOEXPAND=$HOME/x
            EQUALS=a=b
            """)
        #expect(env["LANG"] == "C.UTF-8")
        #expect(env["TZ"] == "Europe/Paris")
        #expect(env["PATH"] == "/opt/conda/bin:/usr/bin")
        #expect(env["1BAD"] == nil)
        #expect(env["BAD-NAME"] == nil)
        #expect(env["NOEQUALS"] == nil)
        #expect(env["EMPTY"] == "")
        #expect(env["MIXED"] == "\"abc'")
        #expect(env["NOEXPAND"] == "$HOME/x")
        #expect(env["EQUALS"] == "a=b")
        #expect(names(env) == ["HOME", "LANG", "PATH", "TZ", "EMPTY", "MIXED", "NOEXPAND", "EQUALS"])
    }

    @Test func commentedOutAssignmentIsIgnored() {
        var env = ContainerEnvironment()
        env.apply(etcEnvironment: "#FOO=1\n   # BAR=2\nBAZ=3\n")
        #expect(names(env) == ["BAZ"])
    }

    @Test func windowsLineEndings() {
        var env = ContainerEnvironment()
        env.apply(etcEnvironment: "A=1\r\nB=2\r\n")
        #expect(env["A"] == "1")
        #expect(env["B"] == "2")
    }

    // MARK: - Drop-ins

    @Test func dropInExpandsFromTheEnvironmentBuiltSoFar() {
        var env = ContainerEnvironment()
        env.importHost([("HOME", "/home/u"), ("LD_LIBRARY_PATH", "/host/lib")])
        env.apply(dropIn: """
            # environ.d/10-site.env
            SCRATCH=$HOME/scratch
            BOTH=${SCRATCH}:x
            DEFAULTED=${NOPE:-fallback}
            PATH=/opt/tool/bin:$PATH
            QUOTED="hello $HOME"
            LIBS=${LD_LIBRARY_PATH}
            """, host: ["HOME": "/elsewhere", "LD_LIBRARY_PATH": "/host/lib"])
        #expect(env["SCRATCH"] == "/home/u/scratch")
        #expect(env["BOTH"] == "/home/u/scratch:x")
        #expect(env["DEFAULTED"] == "fallback")
        #expect(env["PATH"] == "/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        #expect(env["QUOTED"] == "hello /home/u")
        // A denied host variable is not in the container's environment, so it expands to nothing.
        #expect(env["LIBS"] == "")
    }

    @Test func bareNamePassesTheHostValue() {
        var env = ContainerEnvironment()
        env.importHost([("HOME", "/home/u")])
        env.apply(dropIn: "LD_LIBRARY_PATH\nNOT_ON_HOST\nHOME\n  SLURM_JOB_ID  \nnot-a-name\n",
                  host: ["LD_LIBRARY_PATH": "/host/lib", "HOME": "/host/home", "SLURM_JOB_ID": "42"])
        #expect(env["LD_LIBRARY_PATH"] == "/host/lib")
        #expect(env["NOT_ON_HOST"] == nil)
        #expect(env["HOME"] == "/host/home")
        #expect(env["SLURM_JOB_ID"] == "42")
        #expect(names(env) == ["HOME", "PATH", "LD_LIBRARY_PATH", "SLURM_JOB_ID"])
    }

    @Test func laterDropInOverridesEarlierOne() {
        var env = ContainerEnvironment()
        env.apply(dropIn: "A=system\nB=$A", host: [:])
        env.apply(dropIn: "A=user:$A", host: [:])
        #expect(env["A"] == "user:system")
        #expect(env["B"] == "system")
        #expect(names(env) == ["A", "B"])
    }

    // MARK: - --env flags

    @Test func flagAssignmentIsLiteral() throws {
        var env = ContainerEnvironment()
        env.importHost([("HOME", "/home/u")])
        try env.apply(flag: "GREETING=$HOME and ${X:-y}", host: [:])
        try env.apply(flag: "OPTS=a=b=c", host: [:])
        try env.apply(flag: "EMPTY=", host: [:])
        #expect(env["GREETING"] == "$HOME and ${X:-y}")
        #expect(env["OPTS"] == "a=b=c")
        #expect(env["EMPTY"] == "")
    }

    @Test func flagBareNameTakesTheHostValue() throws {
        var env = ContainerEnvironment()
        env.set("CUDA_VISIBLE_DEVICES", "old")
        try env.apply(flag: "CUDA_VISIBLE_DEVICES", host: ["CUDA_VISIBLE_DEVICES": "0,1"])
        #expect(env["CUDA_VISIBLE_DEVICES"] == "0,1")
        // Even a denied name may be requested explicitly.
        try env.apply(flag: "LD_PRELOAD", host: ["LD_PRELOAD": "/lib/x.so"])
        #expect(env["LD_PRELOAD"] == "/lib/x.so")
    }

    @Test func flagBareNameRemovesWhenTheHostLacksIt() throws {
        var env = ContainerEnvironment()
        env.set("A", "1")
        env.set("TZ", "UTC")
        env.set("B", "2")
        try env.apply(flag: "TZ", host: ["OTHER": "x"])
        #expect(env["TZ"] == nil)
        #expect(names(env) == ["A", "B"])
        #expect(!env.assignments.contains { $0.hasPrefix("TZ=") })
        // Removing what is not there is fine.
        try env.apply(flag: "NEVER_SET", host: [:])
        #expect(names(env) == ["A", "B"])
    }

    @Test(arguments: ["1X", "=value", "A-B=1", "A B", "", "-e", "x.y"])
    func invalidFlagIsAnEnvironmentError(flag: String) {
        var env = ContainerEnvironment()
        do {
            try env.apply(flag: flag, host: ["A B": "x"])
            Issue.record("--env \(flag) was accepted")
        } catch {
            #expect(error.stage == .environment)
            #expect(error.message == "--env \(flag): expected NAME=VALUE or NAME")
            #expect(error.exitCode == 125)
        }
        #expect(env.variables.isEmpty)
    }

    // MARK: - Output

    @Test func fileTextLeavesOutMultiLineValues() {
        var env = ContainerEnvironment()
        env.set("A", "1")
        env.set("BASH_FUNC_f%%", "() { echo hi\n}")
        env.set("B", "two words")
        #expect(env.fileText == "A=1\nB=two words\n")
        #expect(env.assignments == ["A=1", "BASH_FUNC_f%%=() { echo hi\n}", "B=two words"])
    }

    @Test func emptyFileText() {
        #expect(ContainerEnvironment().fileText == "")
    }

    @Test func setKeepsFirstPositionAndUpdatesValue() {
        var env = ContainerEnvironment()
        env.set("C", "3")
        env.set("A", "1")
        env.set("B", "2")
        env.set("C", "30")
        #expect(names(env) == ["C", "A", "B"])
        #expect(env.assignments == ["C=30", "A=1", "B=2"])
        #expect(env.dictionary == ["A": "1", "B": "2", "C": "30"])
        #expect(env["C"] == "30")
        #expect(env["D"] == nil)
    }

    @Test func layersInOrder() throws {
        var env = ContainerEnvironment()
        env.importHost([("HOME", "/home/u"), ("LANG", "en_US.UTF-8"), ("SHELL", "/bin/zsh")])
        env.apply(etcEnvironment: "LANG=C.UTF-8\n")
        env.apply(dropIn: "SHELL=/bin/bash\nWORK=$HOME/work\n", host: [:])
        try env.apply(flag: "WORK=/scratch", host: [:])
        #expect(env.assignments == [
            "HOME=/home/u", "LANG=C.UTF-8", "SHELL=/bin/bash", "PATH=\(ContainerEnvironment.defaultPath)", "WORK=/scratch",
        ])
    }

    // MARK: - Helpers

    @Test(arguments: [("A", true), ("_", true), ("_A1", true), ("a_b9", true), ("9A", false), ("A-B", false),
                      ("", false), ("A.B", false), ("A B", false)])
    func nameSyntax(text: String, valid: Bool) {
        #expect(ContainerEnvironment.isName(text) == valid)
    }

    @Test func unquote() {
        #expect(ContainerEnvironment.unquote("\"a b\"") == "a b")
        #expect(ContainerEnvironment.unquote("'a'") == "a")
        #expect(ContainerEnvironment.unquote("\"\"") == "")
        #expect(ContainerEnvironment.unquote("\"") == "\"")
        #expect(ContainerEnvironment.unquote("\"a'") == "\"a'")
        #expect(ContainerEnvironment.unquote("a\"") == "a\"")
    }
}
