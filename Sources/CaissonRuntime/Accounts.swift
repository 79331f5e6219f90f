import CaissonConfig

/// The container's /etc/passwd and /etc/group: the image's entries, plus the caller, so that
/// `id -un`, `ls -l` and `getpwuid()` work without rebuilding the image per user.
public enum Accounts {
    public static func passwd(image: String?, identity: Identity, remapRoot: Bool) -> String {
        var lines = entries(image)
        if remapRoot {
            if !lines.contains(where: { field($0, 2) == "0" }) {
                lines.insert("root:x:0:0:root:/root:/bin/sh", at: 0)
            }
        } else {
            let uid = String(identity.uid)
            lines.removeAll { field($0, 0) == identity.name || field($0, 2) == uid }
            let gecos = identity.gecos.replacingColons()
            lines.append("\(identity.name):x:\(identity.uid):\(identity.gid):\(gecos):\(identity.home):\(identity.shell)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func group(image: String?, identity: Identity, remapRoot: Bool) -> String {
        var lines = entries(image)
        if remapRoot {
            if !lines.contains(where: { field($0, 2) == "0" }) { lines.insert("root:x:0:", at: 0) }
        } else {
            let gid = String(identity.gid)
            if !lines.contains(where: { field($0, 2) == gid }) {
                lines.removeAll { field($0, 0) == identity.groupName }
                lines.append("\(identity.groupName):x:\(identity.gid):")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func entries(_ text: String?) -> [String] {
        (text ?? "").split(separator: "\n").map(String.init).filter { !$0.trimmingWhitespace().isEmpty }
    }

    private static func field(_ line: String, _ index: Int) -> String? {
        let fields = line.split(separator: ":", omittingEmptySubsequences: false)
        return index < fields.count ? String(fields[index]) : nil
    }
}

extension String {
    fileprivate func replacingColons() -> String { String(map { $0 == ":" ? " " : $0 }) }
}
