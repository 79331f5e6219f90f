import Foundation
import Testing

@Suite struct CheckCommand {
    let h = Harness.shared

    @Test func passesOnThisHostAsAnOrdinaryUser() {
        let r = h.caisson(["check"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("OK   user namespaces"), "\(r)")
        #expect(r.stdout.contains("OK   overlayfs in a user namespace"), "\(r)")
        #expect(!r.stdout.contains("KO "), "\(r)")
    }

    /// user.max_user_namespaces = 0 in a user namespace of the test's own (the host's value needs
    /// CAP_SYS_RESOURCE in the initial namespace, which CI's sandboxed root may lack; the limit is
    /// enforced per namespace the same way).
    @Test func reportsDisabledUserNamespacesWithTheFix() {
        let r = h.userShell("exec unshare --user --map-root-user sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec \"$CAISSON\" check'")
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("KO   user.max_user_namespaces"), "\(r)")
        #expect(r.stdout.contains("KO   user namespaces"), "\(r)")
        #expect(r.stdout.contains("fix: sysctl -w user.max_user_namespaces="), "\(r)")
        #expect(r.stderr.contains("required check"), "\(r)")
        // The setting outside is untouched.
        #expect(Harness.shell("cat /proc/sys/user/max_user_namespaces").stdout != "0\n")
    }
}
