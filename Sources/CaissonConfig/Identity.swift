import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

/// Who is starting the container, as the host's user database says.
public struct Identity: Sendable, Equatable {
    public var uid: uid_t
    public var gid: gid_t
    public var name: String
    public var groupName: String
    public var home: String
    public var shell: String
    public var gecos: String

    public init(uid: uid_t, gid: gid_t, name: String, groupName: String, home: String, shell: String, gecos: String) {
        self.uid = uid; self.gid = gid; self.name = name; self.groupName = groupName
        self.home = home; self.shell = shell; self.gecos = gecos
    }

    public static func current() -> Identity {
        let uid = getuid(), gid = getgid()
        var name = "user\(uid)", home = ProcessEnvironment.dictionary()["HOME"] ?? "/", shell = "/bin/sh", gecos = ""
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        if getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil {
            name = String(cString: pwd.pw_name)
            home = String(cString: pwd.pw_dir)
            shell = String(cString: pwd.pw_shell)
            gecos = String(cString: pwd.pw_gecos)
        }
        var groupName = "group\(gid)"
        var grp = group()
        var gresult: UnsafeMutablePointer<group>?
        if getgrgid_r(gid, &grp, &buffer, buffer.count, &gresult) == 0, gresult != nil {
            groupName = String(cString: grp.gr_name)
        }
        return Identity(uid: uid, gid: gid, name: name, groupName: groupName, home: home, shell: shell, gecos: gecos)
    }
}
