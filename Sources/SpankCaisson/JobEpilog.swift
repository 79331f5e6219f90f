import CaissonSlurm
#if canImport(Glibc)
import Glibc
#endif

/// container_scope=job: the job's named containers (`pyxis_JOBID_NAME`) go away with the job,
/// removed by slurmd's epilog on each node, as the job's user (nodes may share the data path,
/// so a name another node removed first is not an error).
struct JobEpilog {
    let caisson: CaissonProcess
    let prefix: String

    func run() -> [PluginError] {
        let listed: CaissonProcess.Finished
        do { listed = try caisson.run(["list"]) } catch { return [error] }
        guard listed.succeeded else {
            return [PluginError(.cleanup, "listing the job's containers failed", details: listed.stderr)]
        }
        let names = String(decoding: listed.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix(prefix) }
        guard !names.isEmpty else { return [] }
        do {
            let removed = try caisson.run(["remove", "-f"] + names)
            if !removed.succeeded, removed.stderr.contains(where: { !$0.contains("no container named") }) {
                return [PluginError(.cleanup, "removing the job's containers failed", details: removed.stderr)]
            }
        } catch {
            return [error]
        }
        return []
    }
}

/// The few user-database lookups the plugin needs where Slurm does not provide the answer.
enum UserDatabase {
    static func entry(_ uid: uid_t) -> (name: String, home: String, gid: gid_t)? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return (String(cString: pwd.pw_name), String(cString: pwd.pw_dir), pwd.pw_gid)
    }

    static func name(_ uid: uid_t) -> String? { entry(uid)?.name }
    static func home(_ uid: uid_t) -> String? { entry(uid)?.home }
    static func primaryGroup(_ uid: uid_t) -> gid_t? { entry(uid)?.gid }

    /// The user's groups as initgroups(3) would set them.
    static func groups(_ uid: uid_t, _ gid: gid_t) -> [gid_t] {
        guard let name = name(uid) else { return [gid] }
        var count: Int32 = 64
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var n = count
            if getgrouplist(name, gid, &groups, &n) >= 0 { return Array(groups[0..<Int(n)]) }
            if n <= count { return [gid] }
            count = n
        }
    }
}
