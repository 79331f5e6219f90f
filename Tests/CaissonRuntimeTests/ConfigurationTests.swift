import CaissonSystem
import Testing
@testable import CaissonConfig
#if canImport(Glibc)
import Glibc
#endif

/// A temporary directory for one test, removed (without following symlinks) when released.
private final class ConfigScratch {
    let path: String

    init() throws {
        var template = Array("/tmp/caisson-config-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError("mkdtemp") }
        path = String(cString: made)
    }

    deinit {
        precondition(path.hasPrefix("/tmp/caisson-config-test-"))
        _ = try? Subprocess.run(["/bin/rm", "-rf", path], quiet: true)
    }

    func write(_ relative: String, _ text: String) throws {
        let full = "\(path)/\(relative)"
        try Files.makeDirectories(Path.parent(full))
        try Files.write(full, text)
    }
}

/// caisson.conf, drop-ins, the environment and the runtime directory.
struct ConfigurationTests {
    // MARK: - expand

    static let scope = ["HOME": "/home/u", "USER": "u", "EMPTY": "", "A_1": "x"]

    @Test(arguments: [
        ("$HOME/x", "/home/u/x"),
        ("${HOME}x", "/home/ux"),
        ("${USER}${USER}", "uu"),
        ("$A_1.$A_1", "x.x"),
        ("${NOPE:-/default}", "/default"),
        ("${HOME:-/default}", "/home/u"),
        ("${EMPTY:-d}", "d"),
        ("${NOPE:-$HOME/y}", "/home/u/y"),
        ("$NOPE", ""),
        ("${NOPE}", ""),
        ("a$NOPE-b", "a-b"),
        ("$HOME_DIR", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$$", "$$"),
        ("cost $5", "cost $5"),
        ("$/x", "$/x"),
        ("no variables", "no variables"),
        ("", ""),
    ])
    func expand(text: String, expected: String) {
        #expect(Configuration.expand(text, Self.scope) == expected)
    }

    @Test func bracedVariableInADefault() {
        // The shell reads `${NOPE:-${USER}}` as `u`; the expander stops the outer body at the first `}`
        // and copies the second one through.
        #expect(Configuration.expand("${NOPE:-${USER}}", Self.scope) == "u")
        #expect(Configuration.expand("${NOPE:-${HOME}/x}/y", Self.scope) == "/home/u/x/y")
    }

    // MARK: - parseBool

    @Test(arguments: ["1", "y", "Y", "yes", "YES", "true", "True", "on", "ON"])
    func truthy(text: String) {
        #expect(Configuration.parseBool(text) == true)
    }

    @Test(arguments: ["0", "n", "no", "No", "false", "FALSE", "off", ""])
    func falsy(text: String) {
        #expect(Configuration.parseBool(text) == false)
    }

    @Test(arguments: ["maybe", "2", "yes please", " yes", "enabled"])
    func notABool(text: String) {
        #expect(Configuration.parseBool(text) == nil)
    }

    @Test func flag() {
        let config = Configuration(values: ["A": "yes", "B": "off", "C": "maybe"])
        #expect(config.flag("A"))
        #expect(!config.flag("B"))
        #expect(!config.flag("C"))
        #expect(!config.flag("MISSING"))
    }

    // MARK: - apply(fileText:)

    @Test func appliesKeyValueLines() {
        var config = Configuration(values: [:])
        config.apply(fileText: """
            # site configuration
            CAISSON_CACHE_PATH /scratch/$USER/cache
            CAISSON_DATA_PATH "${CAISSON_CACHE_PATH}/data"

              CAISSON_MOUNT_HOME\tyes   
            CAISSON_TEMP_PATH '/tmp/x y'
            CAISSON_MOUNT_HOME no
            CAISSON_RESTRICT_DEV
            """, origin: "/etc/caisson/caisson.conf", environment: ["USER": "alice"])
        #expect(config["CAISSON_CACHE_PATH"] == "/scratch/alice/cache")
        #expect(config["CAISSON_DATA_PATH"] == "/scratch/alice/cache/data")
        #expect(config["CAISSON_TEMP_PATH"] == "/tmp/x y")
        #expect(config["CAISSON_MOUNT_HOME"] == "no")
        #expect(config["CAISSON_RESTRICT_DEV"] == "")
        #expect(config.warnings.isEmpty)
        #expect(!config.explicitRuntimePath)
        #expect(config.cachePath == "/scratch/alice/cache")
        #expect(config.dataPath == "/scratch/alice/cache/data")
        #expect(config.tempPath == "/tmp/x y")
    }

    @Test func earlierKeysWinOverTheEnvironmentInExpansion() {
        var config = Configuration(values: ["CAISSON_TEMP_PATH": "/default"])
        config.apply(fileText: "CAISSON_CACHE_PATH $CAISSON_TEMP_PATH/cache\n", origin: "f",
                     environment: ["CAISSON_TEMP_PATH": "/from-env"])
        #expect(config["CAISSON_CACHE_PATH"] == "/default/cache")
    }

    @Test func warningsNameFileAndLine() {
        var config = Configuration(values: [:])
        config.apply(fileText: """
            CAISSON_CACHE_PATH /c
            CAISSON_BOGUS 1
            # fine

            export FOO=bar
            caisson_cache_path /lower
            CAISSON-DATA-PATH /x
            """, origin: "/etc/caisson/caisson.conf.d/50-site.conf", environment: [:])
        #expect(config.warnings == [
            "/etc/caisson/caisson.conf.d/50-site.conf:2: unknown setting CAISSON_BOGUS (ignored)",
            "/etc/caisson/caisson.conf.d/50-site.conf:5: not a CAISSON_* setting: export FOO=bar",
            "/etc/caisson/caisson.conf.d/50-site.conf:6: not a CAISSON_* setting: caisson_cache_path /lower",
            "/etc/caisson/caisson.conf.d/50-site.conf:7: not a CAISSON_* setting: CAISSON-DATA-PATH /x",
        ])
        #expect(config["CAISSON_CACHE_PATH"] == "/c")
        #expect(config["CAISSON_DATA_PATH"] == nil)
    }

    @Test func windowsLineEndings() {
        // trimmingWhitespace() strips "\r", so CRLF files are meant to work; but "\r\n" is a single
        // Character in Swift, so splitting on "\n" never splits such a file into lines.
        var config = Configuration(values: [:])
        config.apply(fileText: "CAISSON_CACHE_PATH /c\r\nCAISSON_DATA_PATH /d\r\n", origin: "f", environment: [:])
        #expect(config["CAISSON_CACHE_PATH"] == "/c")
        #expect(config["CAISSON_DATA_PATH"] == "/d")
    }

    @Test func runtimePathInAFileIsExplicit() {
        var config = Configuration(values: [:])
        config.apply(fileText: "CAISSON_RUNTIME_PATH /run/caisson\n", origin: "f", environment: [:])
        #expect(config.explicitRuntimePath)
        #expect(config["CAISSON_RUNTIME_PATH"] == "/run/caisson")
    }

    @Test func everyKeyIsACaissonKeyWithASummary() {
        let names = Configuration.keys.map(\.name)
        #expect(Set(names).count == names.count)
        for key in Configuration.keys {
            #expect(key.name.hasPrefix("CAISSON_"))
            #expect(!key.summary.isEmpty)
        }
    }

    // MARK: - load(environment:)

    @Test func loadLayersFilesThenEnvironment() throws {
        let scratch = try ConfigScratch()
        try scratch.write("caisson.conf", """
            CAISSON_CACHE_PATH /file/cache
            CAISSON_MOUNT_HOME yes
            CAISSON_DATA_PATH /file/data
            """)
        try scratch.write("caisson.conf.d/20-b.conf", "CAISSON_DATA_PATH /dropin-20/data\nCAISSON_REMAP_ROOT yes\n")
        try scratch.write("caisson.conf.d/10-a.conf", "CAISSON_DATA_PATH /dropin-10/data\nnonsense here\n")
        try scratch.write("caisson.conf.d/30-c.conf.disabled", "CAISSON_TEMP_PATH /disabled\n")
        try scratch.write("caisson.conf.d/notes.txt", "CAISSON_TEMP_PATH /txt\n")

        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path,
            "HOME": "/home/t",
            "XDG_RUNTIME_DIR": "/run/user/4242",
            "CAISSON_MOUNT_HOME": "no",
        ])
        #expect(config.sysconfPath == scratch.path)
        #expect(config.cachePath == "/file/cache")
        #expect(config.dataPath == "/dropin-20/data")
        #expect(config["CAISSON_REMAP_ROOT"] == "yes")
        #expect(config["CAISSON_MOUNT_HOME"] == "no")   // the environment wins over the file
        #expect(!config.flag("CAISSON_MOUNT_HOME"))
        #expect(config.tempPath == "/tmp")
        #expect(config.configPath == "/home/t/.config/caisson")
        #expect(config["CAISSON_RUNTIME_PATH"] == "/run/user/4242/caisson")
        #expect(!config.explicitRuntimePath)
        #expect(config["CAISSON_RESTRICT_DEV"] == "no")
        #expect(config.warnings == ["\(scratch.path)/caisson.conf.d/10-a.conf:2: not a CAISSON_* setting: nonsense here"])
    }

    @Test func loadDefaultsFollowXDG() throws {
        let scratch = try ConfigScratch()  // an empty sysconf directory
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path,
            "HOME": "/home/t",
            "XDG_CACHE_HOME": "/xdg/cache",
            "XDG_CONFIG_HOME": "/xdg/config",
            "TMPDIR": "/local/tmp",
        ])
        #expect(config.cachePath == "/xdg/cache/caisson")
        #expect(config.configPath == "/xdg/config/caisson")
        #expect(config.dataPath == "/home/t/.local/share/caisson")
        #expect(config.tempPath == "/local/tmp")
        #expect(config["CAISSON_RUNTIME_PATH"] == "")   // no XDG_RUNTIME_DIR: runtimePath() falls back
        #expect(config.warnings.isEmpty)
        for key in Configuration.keys { #expect(config[key.name] != nil, "\(key.name) has no value") }
    }

    @Test func loadDefaultsWithoutXDG() throws {
        let scratch = try ConfigScratch()
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t", "XDG_CACHE_HOME": "", "XDG_RUNTIME_DIR": "",
        ])
        #expect(config.cachePath == "/home/t/.cache/caisson")
        #expect(config.configPath == "/home/t/.config/caisson")
        #expect(config["CAISSON_RUNTIME_PATH"] == "")
    }

    @Test func fileValuesExpandFromTheEnvironment() throws {
        let scratch = try ConfigScratch()
        try scratch.write("caisson.conf", "CAISSON_CACHE_PATH ${SCRATCH:-/fallback}/$USER\n")
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t", "USER": "t", "SCRATCH": "/lustre",
        ])
        #expect(config.cachePath == "/lustre/t")
    }

    @Test func environmentRuntimePathIsExplicit() throws {
        let scratch = try ConfigScratch()
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t", "CAISSON_RUNTIME_PATH": "/my/runtime",
        ])
        #expect(config.explicitRuntimePath)
        #expect(config["CAISSON_RUNTIME_PATH"] == "/my/runtime")
    }

    @Test func unreadableConfigurationIsAWarning() throws {
        let scratch = try ConfigScratch()
        // A directory where the file should be: read() fails with EISDIR, which is reported and skipped.
        try Files.makeDirectories("\(scratch.path)/caisson.conf")
        try scratch.write("caisson.conf.d/a.conf", "CAISSON_DATA_PATH /still/read\n")
        let config = Configuration.load(environment: ["CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t"])
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.hasPrefix("\(scratch.path)/caisson.conf: ") == true)
        #expect(config.warnings.first?.hasSuffix("(ignored)") == true)
        #expect(config.dataPath == "/still/read")
    }

    // MARK: - runtimePath()

    @Test func explicitUnusableRuntimePathThrows() throws {
        let scratch = try ConfigScratch()
        try scratch.write("file", "not a directory")
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t",
            "CAISSON_RUNTIME_PATH": "\(scratch.path)/file/sub",
            "CAISSON_TEMP_PATH": scratch.path,
        ])
        do {
            let path = try config.runtimePath()
            Issue.record("an unusable explicit runtime path was accepted, got \(path)")
        } catch {
            guard case .runtimePathUnusable(let path, _) = error else { return }
            #expect(path == "\(scratch.path)/file/sub")
            #expect(error.description.contains("CAISSON_RUNTIME_PATH"))
        }
        // No silent fallback either.
        #expect(!Files.exists("\(scratch.path)/caisson-runtime-\(getuid())"))
    }

    @Test func explicitUsableRuntimePathIsCreated() throws {
        let scratch = try ConfigScratch()
        let wanted = "\(scratch.path)/a/b/runtime"
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t", "CAISSON_RUNTIME_PATH": wanted,
        ])
        #expect(try config.runtimePath() == wanted)
        #expect(Files.isDirectory(wanted))
    }

    @Test func xdgRuntimeDirIsUsedWhenWritable() throws {
        let scratch = try ConfigScratch()
        try Files.makeDirectories("\(scratch.path)/xdg")
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t", "XDG_RUNTIME_DIR": "\(scratch.path)/xdg",
            "CAISSON_TEMP_PATH": scratch.path,
        ])
        #expect(try config.runtimePath() == "\(scratch.path)/xdg/caisson")
        #expect(Files.isDirectory("\(scratch.path)/xdg/caisson"))
    }

    @Test func unusableXDGRuntimeDirFallsBack() throws {
        let scratch = try ConfigScratch()
        try scratch.write("not-a-dir", "x")
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t",
            "XDG_RUNTIME_DIR": "\(scratch.path)/not-a-dir", "CAISSON_TEMP_PATH": scratch.path,
        ])
        #expect(!config.explicitRuntimePath)
        #expect(try config.runtimePath() == "\(scratch.path)/caisson-runtime-\(getuid())")
    }

    @Test func fallbackRuntimePathIsPrivate() throws {
        let scratch = try ConfigScratch()
        let config = Configuration.load(environment: [
            "CAISSON_SYSCONF_PATH": scratch.path, "HOME": "/home/t", "CAISSON_TEMP_PATH": scratch.path,
        ])
        let expected = "\(scratch.path)/caisson-runtime-\(getuid())"
        #expect(try config.runtimePath() == expected)
        let st = try #require(Files.lstat(expected))
        #expect(st.st_mode & S_IFMT == S_IFDIR)
        #expect(st.st_mode & 0o777 == 0o700)
        #expect(st.st_uid == getuid())
        // A second call reuses it.
        #expect(try config.runtimePath() == expected)
    }

    @Test func fallbackWithPlainConfiguration() throws {
        let scratch = try ConfigScratch()
        let config = Configuration(values: ["CAISSON_TEMP_PATH": scratch.path])
        #expect(try config.runtimePath() == "\(scratch.path)/caisson-runtime-\(getuid())")
    }

    @Test func looseFallbackPermissionsAreTightened() throws {
        let scratch = try ConfigScratch()
        let fallback = "\(scratch.path)/caisson-runtime-\(getuid())"
        #expect(mkdir(fallback, 0o700) == 0)
        #expect(chmod(fallback, 0o777) == 0)
        let config = Configuration(values: ["CAISSON_TEMP_PATH": scratch.path])
        #expect(try config.runtimePath() == fallback)
        #expect(try #require(Files.lstat(fallback)).st_mode & 0o777 == 0o700)
    }

    @Test func symlinkedFallbackIsRejected() throws {
        let scratch = try ConfigScratch()
        try Files.makeDirectories("\(scratch.path)/attacker")
        let fallback = "\(scratch.path)/caisson-runtime-\(getuid())"
        #expect(symlink("\(scratch.path)/attacker", fallback) == 0)
        let config = Configuration(values: ["CAISSON_TEMP_PATH": scratch.path])
        do {
            let path = try config.runtimePath()
            Issue.record("a symlinked runtime directory was accepted: \(path)")
        } catch {
            guard case .runtimePathUnusable(let path, let why) = error else { return }
            #expect(path == fallback)
            #expect(why.contains("tampering"))
        }
    }

    @Test func regularFileAtTheFallbackIsRejected() throws {
        let scratch = try ConfigScratch()
        let fallback = "\(scratch.path)/caisson-runtime-\(getuid())"
        try Files.write(fallback, "")
        let config = Configuration(values: ["CAISSON_TEMP_PATH": scratch.path])
        #expect(throws: ConfigurationError.self) { try config.runtimePath() }
    }

    @Test(.enabled(if: getuid() == 0, "only root can give the directory to another user"))
    func fallbackOwnedBySomeoneElseIsRejected() throws {
        let scratch = try ConfigScratch()
        let fallback = "\(scratch.path)/caisson-runtime-\(getuid())"
        #expect(mkdir(fallback, 0o700) == 0)
        #expect(chown(fallback, 54321, 54321) == 0)
        let config = Configuration(values: ["CAISSON_TEMP_PATH": scratch.path])
        #expect(throws: ConfigurationError.self) { try config.runtimePath() }
    }

    @Test func missingTempPathThrows() throws {
        let scratch = try ConfigScratch()
        let config = Configuration(values: ["CAISSON_TEMP_PATH": "\(scratch.path)/missing"])
        #expect(throws: ConfigurationError.self) { try config.runtimePath() }
    }

    // MARK: - trimmingWhitespace

    @Test func trimmingWhitespace() {
        #expect(" \t a b \r".trimmingWhitespace() == "a b")
        #expect("".trimmingWhitespace() == "")
        #expect(" \t ".trimmingWhitespace() == "")
    }
}
