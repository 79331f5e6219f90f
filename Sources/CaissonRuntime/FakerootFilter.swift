import CaissonShim
import CaissonSystem
#if canImport(Glibc)
import Glibc
#endif

// `caisson start --root`: the caller is uid 0 inside a user namespace that maps only one
// uid and one gid. Package managers (apt/dpkg, dnf, rpm) chown files and drop privileges
// to helper users; in such a namespace those calls fail with EINVAL or EPERM. The fakeroot
// filter makes the whole chown/setuid/setgid/setgroups family succeed without running
// (SECCOMP_RET_ERRNO with errno 0 makes the call return 0) and lets every other call through.
//
// The filter must cover every syscall ABI the kernel accepts on the machine: a 64-bit
// x86 process can still enter the kernel through the x32 ABI (`syscall` with bit 30 set in
// the number) and the i386 ABI (`int $0x80`), and seccomp reports those calls with their own
// numbering. A filter that checked the native numbers only would let an i386 chown (182)
// through to the kernel, where it fails, and, if it ignored the architecture, would fake
// the success of i386 truncate (92, x86_64's chown). So each ABI gets its own block, and a
// call from an architecture that is none of the machine's ABIs kills the process.

/// One instruction of a classic BPF program, laid out exactly like `struct sock_filter`
/// from <linux/filter.h> (u16 code, u8 jt, u8 jf, u32 k: 8 bytes).
public struct SockFilter: Equatable, Sendable {
    public var code: UInt16
    public var jt: UInt8
    public var jf: UInt8
    public var k: UInt32

    public init(code: UInt16, jt: UInt8 = 0, jf: UInt8 = 0, k: UInt32) {
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k
    }

    // Opcodes from <linux/bpf_common.h>.
    static let BPF_LD: UInt16 = 0x00, BPF_JMP: UInt16 = 0x05, BPF_RET: UInt16 = 0x06
    static let BPF_W: UInt16 = 0x00, BPF_ABS: UInt16 = 0x20
    static let BPF_JEQ: UInt16 = 0x10, BPF_JSET: UInt16 = 0x40
    static let BPF_K: UInt16 = 0x00

    /// A = 32-bit word at `offset` in struct seccomp_data.
    static func load(_ offset: UInt32) -> SockFilter {
        SockFilter(code: BPF_LD | BPF_W | BPF_ABS, k: offset)
    }
    /// pc += (A == k) ? jt : jf
    static func jumpIfEqual(_ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> SockFilter {
        SockFilter(code: BPF_JMP | BPF_JEQ | BPF_K, jt: jt, jf: jf, k: k)
    }
    /// pc += (A & k) != 0 ? jt : jf
    static func jumpIfAnySet(_ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> SockFilter {
        SockFilter(code: BPF_JMP | BPF_JSET | BPF_K, jt: jt, jf: jf, k: k)
    }
    static func ret(_ k: UInt32) -> SockFilter {
        SockFilter(code: BPF_RET | BPF_K, k: k)
    }
}

/// One way into the kernel's system call table: the audit architecture seccomp reports for
/// it, which of that architecture's call numbers belong to it, and the numbers (as seen in
/// `seccomp_data.nr`) of the calls the fakeroot filter answers with success.
///
/// Numbers are taken from the kernel's uapi headers (Linux 6.1, Debian 12):
/// - x86_64: /usr/include/x86_64-linux-gnu/asm/unistd_64.h (arch/x86/entry/syscalls/syscall_64.tbl)
/// - x32:    /usr/include/x86_64-linux-gnu/asm/unistd_x32.h — the same numbers plus
///           __X32_SYSCALL_BIT 0x40000000 (asm/unistd.h); seccomp sees the bit in `nr`
///           and reports AUDIT_ARCH_X86_64
/// - i386:   /usr/include/x86_64-linux-gnu/asm/unistd_32.h (syscall_32.tbl): the 16-bit-uid
///           calls (lchown 16, setuid 23, …) and their *32 successors (lchown32 198, …)
/// - aarch64: asm-generic/unistd.h (no chown/lchown: only fchownat and fchown)
/// - arm (EABI, AArch32 tasks on arm64): arch/arm/tools/syscall.tbl — the i386 numbers for
///           this family, except fchownat 325
public struct SyscallABI: Equatable, Sendable {
    public struct Syscall: Equatable, Sendable {
        public let name: String
        public let number: UInt32
    }

    /// Which call numbers under `auditArch` belong to this ABI (x86_64 and x32 share one).
    public enum Numbers: Equatable, Sendable {
        case all
        case withBit(UInt32)
        case withoutBit(UInt32)
    }

    public let name: String
    public let auditArch: UInt32
    public let numbers: Numbers
    public let fakedSyscalls: [Syscall]

    public init(name: String, auditArch: UInt32, numbers: Numbers = .all, fakedSyscalls: [Syscall]) {
        self.name = name
        self.auditArch = auditArch
        self.numbers = numbers
        self.fakedSyscalls = fakedSyscalls
    }

    public func number(of syscall: String) -> UInt32? {
        fakedSyscalls.first { $0.name == syscall }?.number
    }

    private static func table(_ entries: KeyValuePairs<String, UInt32>, offset: UInt32 = 0) -> [Syscall] {
        entries.map { Syscall(name: $0.key, number: $0.value | offset) }
    }

    public static let x32SyscallBit: UInt32 = 0x4000_0000

    private static let x86_64Table: KeyValuePairs<String, UInt32> = [
        "chown": 92, "fchown": 93, "lchown": 94, "setuid": 105, "setgid": 106,
        "setreuid": 113, "setregid": 114, "setgroups": 116, "setresuid": 117, "setresgid": 119,
        "setfsuid": 122, "setfsgid": 123, "fchownat": 260,
    ]

    /// i386 and 32-bit ARM EABI share this family's numbers, except fchownat.
    private static let legacy32Table: KeyValuePairs<String, UInt32> = [
        "lchown": 16, "setuid": 23, "setgid": 46, "setreuid": 70, "setregid": 71,
        "setgroups": 81, "fchown": 95, "setfsuid": 138, "setfsgid": 139, "setresuid": 164,
        "setresgid": 170, "chown": 182,
        "lchown32": 198, "setreuid32": 203, "setregid32": 204, "setgroups32": 206,
        "fchown32": 207, "setresuid32": 208, "setresgid32": 210, "chown32": 212,
        "setuid32": 213, "setgid32": 214, "setfsuid32": 215, "setfsgid32": 216,
    ]

    public static let x86_64 = SyscallABI(
        name: "x86_64", auditArch: caisson_AUDIT_ARCH_X86_64, numbers: .withoutBit(x32SyscallBit),
        fakedSyscalls: table(x86_64Table))

    public static let x32 = SyscallABI(
        name: "x32", auditArch: caisson_AUDIT_ARCH_X86_64, numbers: .withBit(x32SyscallBit),
        fakedSyscalls: table(x86_64Table, offset: x32SyscallBit))

    public static let i386 = SyscallABI(
        name: "i386", auditArch: caisson_AUDIT_ARCH_I386,
        fakedSyscalls: table(legacy32Table) + [Syscall(name: "fchownat", number: 298)])

    public static let aarch64 = SyscallABI(
        name: "aarch64", auditArch: caisson_AUDIT_ARCH_AARCH64,
        fakedSyscalls: table([
            "fchownat": 54, "fchown": 55, "setregid": 143, "setgid": 144, "setreuid": 145,
            "setuid": 146, "setresuid": 147, "setresgid": 149, "setfsuid": 151, "setfsgid": 152,
            "setgroups": 159,
        ]))

    public static let armEABI = SyscallABI(
        name: "arm", auditArch: caisson_AUDIT_ARCH_ARM,
        fakedSyscalls: table(legacy32Table) + [Syscall(name: "fchownat", number: 325)])

    /// Every ABI an x86_64 kernel may accept (x32 and i386 depend on its configuration).
    public static let x86_64Machine: [SyscallABI] = [x86_64, x32, i386]
    /// Every ABI an arm64 kernel may accept (AArch32 EABI where the CPU and kernel support it).
    public static let arm64Machine: [SyscallABI] = [aarch64, armEABI]

    /// The ABIs of the machine Caisson was built for; the first is the native one.
    public static var machine: [SyscallABI] {
        #if arch(x86_64)
        return x86_64Machine
        #elseif arch(arm64)
        return arm64Machine
        #else
        return []
        #endif
    }
}

public enum FakerootFilter {
    /// The seccomp program for `abis`. Layout, one block per ABI, each reached only by
    /// falling through from the previous one so every jump stays inside its block:
    ///
    ///     ld  arch;  jeq AUDIT_ARCH, 0, next
    ///     ld  nr;   [jset BIT, 0, next | jset BIT, next, 0]
    ///     jeq n1, errno, 0;  …;  jeq nN, errno, 0
    ///     ret ALLOW
    ///     errno: ret ERRNO|0
    ///     next: …
    ///     ret KILL_PROCESS
    public static func program(for abis: [SyscallABI] = SyscallABI.machine) -> [SockFilter] {
        var program: [SockFilter] = []
        for abi in abis {
            let hasSelector = abi.numbers != .all
            // ld arch, jeq arch, ld nr, [jset], N × jeq, ret allow, ret errno
            let blockLength = 3 + (hasSelector ? 1 : 0) + abi.fakedSyscalls.count + 2
            precondition(blockLength <= 256, "seccomp block for \(abi.name) too long for 8-bit jumps")
            let start = program.count
            let next = start + blockLength, retErrno = next - 1
            var block: [SockFilter] = []
            // Jump offsets are relative to the instruction after the jump.
            func offset(to target: Int) -> UInt8 { UInt8(target - (start + block.count) - 1) }

            block.append(.load(caisson_SECCOMP_DATA_ARCH_OFFSET))
            block.append(.jumpIfEqual(abi.auditArch, 0, offset(to: next)))
            block.append(.load(caisson_SECCOMP_DATA_NR_OFFSET))
            switch abi.numbers {
            case .all: break
            case .withBit(let bit): block.append(.jumpIfAnySet(bit, 0, offset(to: next)))
            case .withoutBit(let bit): block.append(.jumpIfAnySet(bit, offset(to: next), 0))
            }
            for call in abi.fakedSyscalls {
                block.append(.jumpIfEqual(call.number, offset(to: retErrno), 0))
            }
            block.append(.ret(caisson_SECCOMP_RET_ALLOW))
            block.append(.ret(caisson_SECCOMP_RET_ERRNO | 0))
            program += block
            assert(program.count == start + blockLength)
        }
        program.append(.ret(caisson_SECCOMP_RET_KILL_PROCESS))
        return program
    }

    /// Sets no_new_privs (the kernel requires it, or CAP_SYS_ADMIN, to load a filter) and
    /// installs the fakeroot filter on the calling thread only (no TSYNC: call it while
    /// single-threaded, before exec); it is inherited across fork and kept across execve.
    public static func install() throws(SystemError) {
        guard !SyscallABI.machine.isEmpty else { throw SystemError("seccomp", errno: ENOSYS) }
        try install(program())
    }

    /// Installs an already built program: no allocation, so a freshly forked child may call it.
    static func install(_ program: [SockFilter]) throws(SystemError) {
        guard program.count <= Int(UInt16.max) else { throw SystemError("seccomp", errno: E2BIG) }
        try check("prctl(PR_SET_NO_NEW_PRIVS)") { caisson_set_no_new_privs() }
        let rc = program.withUnsafeBufferPointer { buffer in
            caisson_seccomp_install(buffer.baseAddress, UInt16(buffer.count))
        }
        if rc != 0 { throw SystemError("seccomp") }
    }
}
