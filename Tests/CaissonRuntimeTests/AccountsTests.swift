import CaissonConfig
import Testing
@testable import CaissonRuntime

/// /etc/passwd and /etc/group for the container.
struct AccountsTests {
    static let alice = Identity(uid: 1000, gid: 1000, name: "alice", groupName: "alice",
                                home: "/home/alice", shell: "/bin/bash", gecos: "Alice A")
    static let imagePasswd = """
        root:x:0:0:root:/root:/bin/bash
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

        """
    static let imageGroup = """
        root:x:0:
        users:x:100:
        nogroup:x:65534:

        """

    private func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    // MARK: - passwd

    @Test func callerIsAppended() {
        let text = Accounts.passwd(image: Self.imagePasswd, identity: Self.alice, remapRoot: false)
        #expect(text == Self.imagePasswd + "alice:x:1000:1000:Alice A:/home/alice:/bin/bash\n")
    }

    @Test func noImagePasswd() {
        #expect(Accounts.passwd(image: nil, identity: Self.alice, remapRoot: false)
                == "alice:x:1000:1000:Alice A:/home/alice:/bin/bash\n")
        #expect(Accounts.passwd(image: "", identity: Self.alice, remapRoot: false)
                == "alice:x:1000:1000:Alice A:/home/alice:/bin/bash\n")
    }

    @Test func imageEntryWithTheSameUidIsReplaced() {
        // Ubuntu images ship `ubuntu` as uid 1000: the caller takes its place.
        let image = Self.imagePasswd + "ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"
        let result = lines(Accounts.passwd(image: image, identity: Self.alice, remapRoot: false))
        #expect(!result.contains { $0.hasPrefix("ubuntu:") })
        #expect(result.filter { $0.split(separator: ":", omittingEmptySubsequences: false)[2] == "1000" }
                == ["alice:x:1000:1000:Alice A:/home/alice:/bin/bash"])
        #expect(result.count == 4)
        #expect(result.last == "alice:x:1000:1000:Alice A:/home/alice:/bin/bash")
    }

    @Test func imageEntryWithTheSameNameIsReplaced() {
        let image = "alice:x:2000:2000::/home/alice:/bin/sh\n" + Self.imagePasswd
        let result = lines(Accounts.passwd(image: image, identity: Self.alice, remapRoot: false))
        #expect(result.filter { $0.hasPrefix("alice:") } == ["alice:x:1000:1000:Alice A:/home/alice:/bin/bash"])
        #expect(!result.contains { $0.contains(":2000:") })
        #expect(result.first == "root:x:0:0:root:/root:/bin/bash")
    }

    @Test func similarNamesAndUidsAreKept() {
        // Only exact field matches are replaced: not `alice2`, not uid 10000, not gid 1000 of another user.
        let image = "alice2:x:1001:1001::/home/alice2:/bin/sh\nbob:x:10000:1000::/home/bob:/bin/sh\n"
        let result = lines(Accounts.passwd(image: image, identity: Self.alice, remapRoot: false))
        #expect(result == [
            "alice2:x:1001:1001::/home/alice2:/bin/sh",
            "bob:x:10000:1000::/home/bob:/bin/sh",
            "alice:x:1000:1000:Alice A:/home/alice:/bin/bash",
        ])
    }

    @Test func gecosColonsAreSanitized() {
        var identity = Self.alice
        identity.gecos = "Smith, Alice:HPC:x"
        let result = lines(Accounts.passwd(image: nil, identity: identity, remapRoot: false))
        #expect(result == ["alice:x:1000:1000:Smith, Alice HPC x:/home/alice:/bin/bash"])
        #expect(result[0].split(separator: ":", omittingEmptySubsequences: false).count == 7)
    }

    @Test func emptyGecos() {
        var identity = Self.alice
        identity.gecos = ""
        #expect(Accounts.passwd(image: nil, identity: identity, remapRoot: false)
                == "alice:x:1000:1000::/home/alice:/bin/bash\n")
    }

    @Test func remapRootKeepsTheImageRoot() {
        let image = "root:x:0:0:Image Root:/root:/bin/zsh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n"
        let text = Accounts.passwd(image: image, identity: Self.alice, remapRoot: true)
        #expect(text == image)
    }

    @Test func remapRootInsertsRootWhenTheImageHasNone() {
        let image = "app:x:100:100::/app:/bin/sh\n"
        let result = lines(Accounts.passwd(image: image, identity: Self.alice, remapRoot: true))
        #expect(result == ["root:x:0:0:root:/root:/bin/sh", "app:x:100:100::/app:/bin/sh"])
        #expect(lines(Accounts.passwd(image: nil, identity: Self.alice, remapRoot: true)) == ["root:x:0:0:root:/root:/bin/sh"])
    }

    @Test func blankLinesAreDropped() {
        let image = "root:x:0:0:root:/root:/bin/bash\n\n   \ndaemon:x:1:1::/:/bin/false\n"
        let result = Accounts.passwd(image: image, identity: Self.alice, remapRoot: false)
        #expect(result == "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/false\nalice:x:1000:1000:Alice A:/home/alice:/bin/bash\n")
    }

    // MARK: - group

    @Test func callerGroupIsAppended() {
        let text = Accounts.group(image: Self.imageGroup, identity: Self.alice, remapRoot: false)
        #expect(text == Self.imageGroup + "alice:x:1000:\n")
    }

    @Test func existingGidIsKeptWithoutDuplicate() {
        var identity = Self.alice
        identity.gid = 100
        identity.groupName = "alice"
        let text = Accounts.group(image: Self.imageGroup, identity: identity, remapRoot: false)
        #expect(text == Self.imageGroup)
    }

    @Test func sameNameWithAnotherGidIsReplaced() {
        let image = "root:x:0:\nalice:x:2000:bob\n"
        let result = lines(Accounts.group(image: image, identity: Self.alice, remapRoot: false))
        #expect(result == ["root:x:0:", "alice:x:1000:"])
    }

    @Test func noImageGroup() {
        #expect(Accounts.group(image: nil, identity: Self.alice, remapRoot: false) == "alice:x:1000:\n")
    }

    @Test func remapRootGroup() {
        #expect(Accounts.group(image: Self.imageGroup, identity: Self.alice, remapRoot: true) == Self.imageGroup)
        #expect(Accounts.group(image: "users:x:100:\n", identity: Self.alice, remapRoot: true) == "root:x:0:\nusers:x:100:\n")
        #expect(Accounts.group(image: nil, identity: Self.alice, remapRoot: true) == "root:x:0:\n")
    }
}
