import Foundation
import Testing

/// One real 3-node Slurm cluster per test run (Tests/Fixtures/cluster.py: munged, slurmctld and
/// three slurmd, each in its own network, UTS and mount namespace on a bridge), with the
/// Caisson plugin in its plugstack and a registry on the bridge holding busybox and the MPI image.
///
/// Caisson is installed as an admin would, under one prefix every node can read:
///   PREFIX/lib/caisson/spank_caisson.so   the plugin as built (.build/debug/libspank_caisson.so)
///   PREFIX/bin/caisson                    caisson-probe: records how the plugin ran it, then execs
///   PREFIX/bin/caisson.real               the real caisson (the plugin's default path is bin/caisson)
///   PREFIX/bin/caisson-import             its image tools
///   PREFIX/etc/caisson/caisson.conf       the registry allowed over HTTP, the cache and data paths
/// Jobs run as the test user from the cluster's shared directory, like a user on a login node.
/// Needs root (namespaces, a bridge, slurmd); the suite is skipped otherwise.
final class SlurmCluster: Sendable {
    /// Started on first use; a failure (say, no Debian mirror for the MPI image's base) fails the
    /// Slurm tests with its reason instead of stopping the whole test run.
    static let shared = Result { try SlurmCluster() }

    static func ready() throws -> SlurmCluster { try shared.get() }

    struct SetupError: Error, CustomStringConvertible {
        let description: String
    }

    static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/slurmd")
            && FileManager.default.fileExists(atPath: "/usr/include/slurm/spank.h")
    }

    let h = Harness.shared
    let dir: String
    let prefix: String
    let clusterDir: String
    /// Where jobs are submitted from; visible on every node.
    let shared: String
    /// The plain-HTTP registry on the bridge, as `HOST:PORT`.
    let registry: String
    /// A registry on the bridge that answers /v2/ and then never sends a manifest or blob.
    let stallingRegistry: String
    let slurmConf: String
    let probeLog: String
    /// The caisson cache and data paths the site configured for users (per run).
    let cache: String
    let data: String
    /// A supplementary group of the test user, and a directory only that group may enter.
    let extraGroup: String
    let extraGID: UInt32
    let groupOnly: String
    let fixtures: String
    let bringUp: TimeInterval

    private init() throws {
        guard SlurmCluster.available else {
            throw SetupError(description: "the Slurm tests need root and slurm-wlm, libslurm-dev (scripts/test.sh installs them)")
        }
        let started = Date()
        fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").path
        dir = h.workspace + "/slurm"
        prefix = dir + "/prefix"
        clusterDir = dir + "/cluster"
        probeLog = dir + "/probe"
        cache = dir + "/user-cache"
        data = dir + "/user-data"
        groupOnly = dir + "/group-only"
        extraGroup = "caissonextra"
        let built = URL(fileURLWithPath: h.binary).deletingLastPathComponent().path
        let buildDir = URL(fileURLWithPath: ProcessInfo.processInfo.environment["CAISSON_BIN"] ?? Harness.builtBinary())
            .deletingLastPathComponent().path
        let plugin = buildDir + "/libspank_caisson.so"
        guard FileManager.default.fileExists(atPath: plugin) else { throw SetupError(description: "\(plugin) missing: run `swift build` first") }

        // The test user gets a supplementary group before slurmctld starts (it caches groups).
        let group = Harness.shell("""
        set -e
        getent group \(extraGroup) >/dev/null || groupadd \(extraGroup)
        id -nG \(h.user) | tr ' ' '\\n' | grep -qx \(extraGroup) || usermod -aG \(extraGroup) \(h.user)
        getent group \(extraGroup) | cut -d: -f3
        """)
        guard group.status == 0 else { throw SetupError(description: "supplementary group: \(group.stderr)") }
        extraGID = UInt32(group.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0

        let install = Harness.shell("""
        set -e
        mkdir -p \(prefix)/bin \(prefix)/lib/caisson \(prefix)/etc/caisson \(probeLog) \(cache) \(data) \(groupOnly)/inner
        chmod 755 \(dir) \(prefix) \(prefix)/bin \(prefix)/lib \(prefix)/lib/caisson \(prefix)/etc \(prefix)/etc/caisson
        chmod 1777 \(probeLog)
        chown \(h.uid):\(h.gid) \(cache) \(data)
        install -m 0755 \(built)/caisson \(prefix)/bin/caisson.real
        install -m 0755 \(built)/caisson-import \(prefix)/bin/caisson-import
        install -m 0755 \(plugin) \(prefix)/lib/caisson/spank_caisson.so
        cc -O2 -o \(prefix)/bin/caisson \(fixtures)/caisson-probe.c \
            -DPROBE_LOG_DIR='"\(probeLog)"' -DPROBE_TARGET='"\(prefix)/bin/caisson.real"'
        echo group-only > \(groupOnly)/inner/file
        chown -R root:\(extraGroup) \(groupOnly)
        chmod 0750 \(groupOnly)
        chmod 0755 \(groupOnly)/inner && chmod 0644 \(groupOnly)/inner/file
        printf 'required %s container_scope=job entrypoint_timeout=6 user_paths=CAISSON_CONFIG_PATH,CAISSON_CACHE_PATH\\n' \
            \(prefix)/lib/caisson/spank_caisson.so > \(dir)/plugstack.conf
        [ -c /dev/fuse ] && chmod 0666 /dev/fuse
        python3 \(fixtures)/images.py build \(dir)/images --kinds busybox,mpi
        """)
        guard install.status == 0 else {
            throw SetupError(description: "installing Caisson for the cluster failed: \(install.stderr)\n\(install.stdout)")
        }

        let start = Harness.shell("""
        python3 \(fixtures)/cluster.py start \(clusterDir) --nodes 3 --plugstack \(dir)/plugstack.conf \
            --registry-dir \(dir)/registry --images \(dir)/images --watch-pid \(getpid())
        """)
        guard start.status == 0, let clusterJSON = FileManager.default.contents(atPath: clusterDir + "/cluster.json"),
              let json = try JSONSerialization.jsonObject(with: clusterJSON) as? [String: Any],
              let sharedDir = json["shared"] as? String, let conf = json["slurm_conf"] as? String,
              let open = (json["registry"] as? [String: Any])?["open"] as? String,
              let stall = (json["registry"] as? [String: Any])?["stall"] as? String else {
            throw SetupError(description: "cluster.py start failed: \(start.stderr)\n\(start.stdout)")
        }
        shared = sharedDir
        slurmConf = conf
        registry = open
        stallingRegistry = stall
        let caissonConf = """
        # Written by the Slurm test suite: what a site's administrator would set.
        CAISSON_INSECURE_REGISTRIES \(registry),\(stallingRegistry)
        CAISSON_CACHE_PATH \(cache)
        CAISSON_DATA_PATH \(data)

        """
        try caissonConf.write(toFile: prefix + "/etc/caisson/caisson.conf", atomically: true, encoding: .utf8)
        chmod(prefix + "/etc/caisson/caisson.conf", 0o644)
        bringUp = Date().timeIntervalSince(started)
    }

    /// `docker://`-less reference of a test image in the cluster's registry.
    func image(_ name: String) -> String { "\(registry)/\(name)" }

    /// Runs a Slurm client (or any command) as the test user from the shared directory.
    func run(_ argv: [String], env extra: [String: String] = [:], cwd: String? = nil, timeout: TimeInterval = 120) -> Harness.Result {
        var env = ["HOME": h.home, "USER": h.user, "LOGNAME": h.user, "PATH": "/usr/local/bin:/usr/bin:/bin",
                   "LANG": "C.UTF-8", "SLURM_CONF": slurmConf]
        for (k, v) in extra { env[k] = v }
        return h.run(h.asUser(env) + Harness.unblockSignals + argv, cwd: cwd ?? shared, timeout: timeout)
    }

    func srun(_ args: [String], env: [String: String] = [:], timeout: TimeInterval = 120) -> Harness.Result {
        run(["/usr/bin/srun"] + args, env: env, timeout: timeout)
    }

    /// A shell script run as the test user (for salloc/sbatch sequences and concurrency).
    func sh(_ script: String, env: [String: String] = [:], timeout: TimeInterval = 180) -> Harness.Result {
        run(["/bin/sh", "-c", script], env: env, timeout: timeout)
    }

    /// The probe's records written since `marker` (a set of names seen before).
    func probeRecords(after before: Set<String>) -> [String] {
        let names = Set((try? FileManager.default.contentsOfDirectory(atPath: probeLog)) ?? []).subtracting(before)
        return names.sorted().compactMap { try? String(contentsOfFile: "\(probeLog)/\($0)", encoding: .utf8) }
    }

    func probeNames() -> Set<String> { Set((try? FileManager.default.contentsOfDirectory(atPath: probeLog)) ?? []) }

    /// A squashfs image in the shared directory, from a busybox tree changed by `script` ($R = the tree).
    func sharedImage(_ name: String, customize script: String = "") -> String {
        let rootfs = h.rootfs(name, customize: script)
        let path = "\(shared)/\(name).sqsh"
        Harness.makeImage(of: rootfs, at: path, allRoot: true)
        return path
    }
}
