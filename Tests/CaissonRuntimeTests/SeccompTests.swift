import CaissonShim
import CaissonSystem
import Testing
@testable import CaissonRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A classic-BPF interpreter for the instructions seccomp programs use, written from
/// <linux/bpf_common.h> and <linux/filter.h> with its own opcode values, independent of
/// FakerootFilter's encoder. It also performs the checks the kernel's verifier does
/// (bpf_check_classic + seccomp_check_filter): jumps inside the program, aligned in-bounds
/// loads from struct seccomp_data, a return at the end.
struct BPFMachine {
    enum Failure: Error, Equatable {
        case empty, tooLong, unsupported(pc: Int, code: UInt16), jumpOutOfRange(pc: Int)
        case badLoad(pc: Int), noFinalReturn, fellOffEnd
    }

    // struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
    static let seccompDataSize: UInt32 = 64
    static let nrOffset: UInt32 = 0, archOffset: UInt32 = 4

    static let ldWAbs: UInt16 = 0x20   // BPF_LD | BPF_W | BPF_ABS
    static let ja: UInt16 = 0x05       // BPF_JMP | BPF_JA
    static let jeqK: UInt16 = 0x15     // BPF_JMP | BPF_JEQ | BPF_K
    static let jgtK: UInt16 = 0x25     // BPF_JMP | BPF_JGT | BPF_K
    static let jgeK: UInt16 = 0x35     // BPF_JMP | BPF_JGE | BPF_K
    static let jsetK: UInt16 = 0x45    // BPF_JMP | BPF_JSET | BPF_K
    static let retK: UInt16 = 0x06     // BPF_RET | BPF_K

    static func verify(_ program: [SockFilter]) throws(Failure) {
        if program.isEmpty { throw .empty }
        if program.count > 4096 { throw .tooLong }  // BPF_MAXINSNS
        for (pc, insn) in program.enumerated() {
            switch insn.code {
            case ldWAbs:
                if insn.k % 4 != 0 || insn.k >= seccompDataSize { throw .badLoad(pc: pc) }
            case ja:
                if pc + 1 + Int(insn.k) >= program.count { throw .jumpOutOfRange(pc: pc) }
            case jeqK, jgtK, jgeK, jsetK:
                if pc + 1 + Int(insn.jt) >= program.count || pc + 1 + Int(insn.jf) >= program.count {
                    throw .jumpOutOfRange(pc: pc)
                }
            case retK: break
            default: throw .unsupported(pc: pc, code: insn.code)
            }
        }
        if program.last!.code != retK { throw .noFinalReturn }
    }

    static func run(_ program: [SockFilter], arch: UInt32, nr: UInt32) throws(Failure) -> UInt32 {
        try verify(program)
        var data = [UInt32](repeating: 0, count: Int(seccompDataSize / 4))
        data[Int(nrOffset / 4)] = nr
        data[Int(archOffset / 4)] = arch
        var a: UInt32 = 0
        var pc = 0
        while pc < program.count {
            let insn = program[pc]
            pc += 1
            switch insn.code {
            case ldWAbs: a = data[Int(insn.k / 4)]
            case ja: pc += Int(insn.k)
            case jeqK: pc += Int(a == insn.k ? insn.jt : insn.jf)
            case jgtK: pc += Int(a > insn.k ? insn.jt : insn.jf)
            case jgeK: pc += Int(a >= insn.k ? insn.jt : insn.jf)
            case jsetK: pc += Int(a & insn.k != 0 ? insn.jt : insn.jf)
            case retK: return insn.k
            default: throw .unsupported(pc: pc - 1, code: insn.code)
            }
        }
        throw .fellOffEnd
    }
}

// Values from <linux/seccomp.h> and <linux/audit.h>, spelled out so a wrong shim constant fails.
private let retAllow: UInt32 = 0x7fff_0000
private let retErrnoZero: UInt32 = 0x0005_0000
private let retKillProcess: UInt32 = 0x8000_0000
private let archX86_64: UInt32 = 0xc000_003e
private let archI386: UInt32 = 0x4000_0003
private let archAArch64: UInt32 = 0xc000_00b7
private let archARM: UInt32 = 0x4000_0028

/// The expected numbers, from the kernel tables (asm/unistd_64.h, unistd_x32.h, unistd_32.h,
/// asm-generic/unistd.h, arch/arm/tools/syscall.tbl), written independently of the runtime's.
private let expectedNumbers: [String: Set<UInt32>] = {
    let x86_64: Set<UInt32> = [92, 93, 94, 105, 106, 113, 114, 116, 117, 119, 122, 123, 260]
    let legacy: Set<UInt32> = [16, 23, 46, 70, 71, 81, 95, 138, 139, 164, 170, 182,
                               198, 203, 204, 206, 207, 208, 210, 212, 213, 214, 215, 216]
    return [
        "x86_64": x86_64,
        "x32": Set(x86_64.map { $0 | 0x4000_0000 }),
        "i386": legacy.union([298]),
        "aarch64": [54, 55, 143, 144, 145, 146, 147, 149, 151, 152, 159],
        "arm": legacy.union([325]),
    ]
}()

private let allMachines: [(name: String, abis: [SyscallABI])] = [
    ("x86_64", SyscallABI.x86_64Machine), ("arm64", SyscallABI.arm64Machine),
]

/// (machine, ABI) pairs: every ABI is checked inside the program of the machine it belongs to.
private let machineABIs: [(machine: String, abi: String)] = allMachines.flatMap { machine in
    machine.abis.map { (machine.name, $0.name) }
}

private func machine(_ name: String) -> [SyscallABI] {
    allMachines.first { $0.name == name }!.abis
}

@Suite struct SeccompTests {
    @Test func sockFilterHasKernelLayout() {
        #expect(MemoryLayout<SockFilter>.size == 8)
        #expect(MemoryLayout<SockFilter>.stride == 8)
        #expect(MemoryLayout<SockFilter>.offset(of: \.code) == 0)
        #expect(MemoryLayout<SockFilter>.offset(of: \.jt) == 2)
        #expect(MemoryLayout<SockFilter>.offset(of: \.jf) == 3)
        #expect(MemoryLayout<SockFilter>.offset(of: \.k) == 4)
    }

    @Test func shimConstantsMatchKernelValues() {
        #expect(caisson_SECCOMP_DATA_NR_OFFSET == BPFMachine.nrOffset)
        #expect(caisson_SECCOMP_DATA_ARCH_OFFSET == BPFMachine.archOffset)
        #expect(caisson_SECCOMP_RET_ALLOW == retAllow)
        #expect(caisson_SECCOMP_RET_ERRNO == retErrnoZero)
        #expect(caisson_SECCOMP_RET_KILL_PROCESS == retKillProcess)
        #expect(caisson_AUDIT_ARCH_X86_64 == archX86_64)
        #expect(caisson_AUDIT_ARCH_I386 == archI386)
        #expect(caisson_AUDIT_ARCH_AARCH64 == archAArch64)
        #expect(caisson_AUDIT_ARCH_ARM == archARM)
    }

    @Test func tablesMatchKernelHeaders() {
        let abis = SyscallABI.x86_64Machine + SyscallABI.arm64Machine
        #expect(Set(abis.map(\.name)) == Set(expectedNumbers.keys))
        for abi in abis {
            let numbers = abi.fakedSyscalls.map(\.number)
            #expect(Set(numbers) == expectedNumbers[abi.name], "\(abi.name)")
            #expect(Set(numbers).count == numbers.count, "\(abi.name) lists a number twice")
            #expect(Set(abi.fakedSyscalls.map(\.name)).count == numbers.count, "\(abi.name) lists a name twice")
        }
        #expect(SyscallABI.x86_64.auditArch == archX86_64)
        #expect(SyscallABI.x32.auditArch == archX86_64)
        #expect(SyscallABI.i386.auditArch == archI386)
        #expect(SyscallABI.aarch64.auditArch == archAArch64)
        #expect(SyscallABI.armEABI.auditArch == archARM)
        // Every ABI fakes the whole family under its own names.
        for abi in abis {
            for name in ["fchownat", "fchown", "setuid", "setgid", "setreuid", "setregid",
                         "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups"] {
                #expect(abi.number(of: name) != nil, "\(abi.name) lacks \(name)")
            }
        }
        #expect(SyscallABI.i386.number(of: "chown32") == 212)
        #expect(SyscallABI.armEABI.number(of: "fchownat") == 325)
        #expect(SyscallABI.x32.number(of: "setgroups") == UInt32(0x4000_0000 | 116))
    }

    @Test func nativeNumbersAgreeWithLibc() throws {
        let native = try #require(SyscallABI.machine.first)
        #expect(native.auditArch == caisson_AUDIT_ARCH_NATIVE)
        #expect(native.number(of: "fchownat").map(Int.init) == caisson_SYS_fchownat)
        #expect(native.number(of: "setresuid").map(Int.init) == caisson_SYS_setresuid)
        #expect(native.number(of: "setgroups").map(Int.init) == caisson_SYS_setgroups)
        if caisson_SYS_chown == -1 {
            #expect(native.number(of: "chown") == nil)
        } else {
            #expect(native.number(of: "chown").map(Int.init) == caisson_SYS_chown)
        }
        #if arch(x86_64)
        #expect(SyscallABI.machine == SyscallABI.x86_64Machine)
        #elseif arch(arm64)
        #expect(SyscallABI.machine == SyscallABI.arm64Machine)
        #endif
        #expect(FakerootFilter.program() == FakerootFilter.program(for: SyscallABI.machine))
    }

    @Test func programsPassTheVerifier() throws {
        for (name, abis) in allMachines {
            let program = FakerootFilter.program(for: abis)
            #expect(throws: Never.self, "\(name)") { try BPFMachine.verify(program) }
            #expect(program.last == SockFilter(code: BPFMachine.retK, k: retKillProcess))
            // Jumps only go forward (cBPF cannot go back) and never past the end.
            for (pc, insn) in program.enumerated() where insn.code & 0x07 == 0x05 {
                #expect(pc + 1 + Int(max(insn.jt, insn.jf)) < program.count, "\(name) pc \(pc)")
            }
        }
        // The verifier itself rejects a jump past the end.
        let bad = [SockFilter(code: BPFMachine.jeqK, jt: 1, jf: 0, k: 0), SockFilter(code: BPFMachine.retK, k: 0)]
        #expect(throws: BPFMachine.Failure.jumpOutOfRange(pc: 0)) { try BPFMachine.verify(bad) }
    }

    @Test(arguments: machineABIs)
    func everyFakedSyscallReturnsZero(machine machineName: String, abi abiName: String) throws {
        let abis = machine(machineName)
        let abi = try #require(abis.first { $0.name == abiName })
        let program = FakerootFilter.program(for: abis)
        let expected = try #require(expectedNumbers[abiName])
        for nr in expected.sorted() {
            let result = try BPFMachine.run(program, arch: abi.auditArch, nr: nr)
            #expect(result == retErrnoZero, "\(machineName)/\(abiName) nr \(nr)")
        }
    }

    @Test func unrelatedSyscallsAreAllowed() throws {
        let x86 = FakerootFilter.program(for: SyscallABI.x86_64Machine)
        let arm = FakerootFilter.program(for: SyscallABI.arm64Machine)
        let allowed: [(program: [SockFilter], arch: UInt32, nr: UInt32, what: String)] = [
            (x86, archX86_64, 0, "x86_64 read"),
            (x86, archX86_64, 257, "x86_64 openat"),
            (x86, archX86_64, 59, "x86_64 execve"),
            (x86, archX86_64, 298, "x86_64 perf_event_open (i386 fchownat's number)"),
            (x86, archX86_64, 182, "x86_64 putpmsg (i386 chown's number)"),
            (x86, archX86_64, 0xffff_ffff, "x86_64 nr -1 (skipped call)"),
            (x86, archX86_64, 0x4000_0000 | 0, "x32 read"),
            (x86, archX86_64, 0x4000_0000 | 257, "x32 openat"),
            (x86, archX86_64, 0x4000_0000 | 298, "x32 perf_event_open"),
            (x86, archI386, 5, "i386 open"),
            (x86, archI386, 3, "i386 read"),
            (x86, archI386, 92, "i386 truncate (x86_64 chown's number)"),
            (x86, archI386, 260, "i386 timer_getoverrun (x86_64 fchownat's number)"),
            (arm, archAArch64, 56, "aarch64 openat"),
            (arm, archAArch64, 63, "aarch64 read"),
            (arm, archAArch64, 92, "aarch64 personality"),
            (arm, archAArch64, 325, "aarch64 325 (arm fchownat's number)"),
            (arm, archARM, 5, "arm open"),
            (arm, archARM, 54, "arm ioctl (aarch64 fchownat's number)"),
            (arm, archARM, 298, "arm semop (i386 fchownat's number)"),
        ]
        for c in allowed {
            #expect(try BPFMachine.run(c.program, arch: c.arch, nr: c.nr) == retAllow, "\(c.what)")
        }
    }

    @Test func foreignArchitecturesAreKilled() throws {
        let x86 = FakerootFilter.program(for: SyscallABI.x86_64Machine)
        let arm = FakerootFilter.program(for: SyscallABI.arm64Machine)
        for (program, arch) in [(x86, UInt32(0x1234)), (x86, archAArch64), (x86, archARM),
                                (arm, UInt32(0x1234)), (arm, archX86_64), (arm, archI386)] {
            for nr: UInt32 in [0, 5, 92, 260, 298, 0x4000_0000 | 260] {
                #expect(try BPFMachine.run(program, arch: arch, nr: nr) == retKillProcess,
                        "arch \(arch) nr \(nr)")
            }
        }
        // No ABIs at all: everything is refused, nothing allowed by default.
        #expect(try BPFMachine.run(FakerootFilter.program(for: []), arch: archX86_64, nr: 0) == retKillProcess)
    }

    @Test func x32AndNativeBlocksDoNotOverlap() throws {
        // The x32 selector must send a bit-30 number to the x32 block only, and a plain number
        // to the x86_64 block only, whatever order the table lists them in.
        for abis in [[SyscallABI.x86_64, .x32, .i386], [SyscallABI.x32, .x86_64, .i386]] {
            let program = FakerootFilter.program(for: abis)
            #expect(try BPFMachine.run(program, arch: archX86_64, nr: 260) == retErrnoZero)
            #expect(try BPFMachine.run(program, arch: archX86_64, nr: 0x4000_0000 | 260) == retErrnoZero)
            #expect(try BPFMachine.run(program, arch: archX86_64, nr: 0x4000_0000 | 0) == retAllow)
        }
        // Without an x32 block, x32 numbers under AUDIT_ARCH_X86_64 match no ABI: killed.
        let noX32 = FakerootFilter.program(for: [.x86_64, .i386])
        #expect(try BPFMachine.run(noX32, arch: archX86_64, nr: 0x4000_0000 | 260) == retKillProcess)
        #expect(try BPFMachine.run(noX32, arch: archX86_64, nr: 260) == retErrnoZero)
    }

    // MARK: The real kernel

    @Test func kernelAnswersFakedCallsWithSuccess() throws {
        let missing = "/nonexistent-caisson-seccomp-test"
        #expect(Files.lstat(missing) == nil)
        // Everything the children touch is made before fork: they only make system calls.
        let path = try #require(strdup(missing))
        defer { free(path) }

        // Without the filter the kernel runs fchownat: ENOENT, even as root.
        let plain = try forkAndWait { probeChild(path: path) }
        #expect(plain == 1, "unfiltered child: \(plain)")

        // With it the call returns 0 without running; unrelated calls still reach the kernel.
        let program = FakerootFilter.program()
        let filtered = try forkAndWait {
            do { try FakerootFilter.install(program) } catch { return 10 }
            // Without no_new_privs only CAP_SYS_ADMIN (root, as in CI) could load the filter.
            if caisson_get_no_new_privs() != 1 { return 11 }
            return probeChild(path: path)
        }
        #expect(filtered == 0, "filtered child: \(filtered)")
    }

    @Test(.enabled(if: compiler != nil, "needs gcc to build Tests/Fixtures/abi-probe.c"))
    func kernelAnswersEveryABIUnderTheFilter() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let probe = dir.path + "/abi-probe"
        let build = try Subprocess.run([compiler!, "-O1", "-o", probe, fixturePath("abi-probe.c")])
        try #require(build.succeeded, "gcc: \(build.description)")
        defer { unlink(probe) }

        let plain = try parse(runCapturingOutput(probe, filtered: false))
        let filtered = try parse(runCapturingOutput(probe, filtered: true))
        #expect(plain.map(\.abi) == filtered.map(\.abi))
        #expect(plain.first?.abi == "native")
        #expect(plain.first?.value == "-\(ENOENT)", "the probe must see the kernel's answer unfiltered")
        #if arch(x86_64)
        #expect(plain.map(\.abi) == ["native", "x32", "i386"])
        #endif
        for (abi, value) in filtered {
            let unfiltered = plain.first { $0.abi == abi }?.value
            if unfiltered == "unsupported" { continue }  // the kernel takes no calls that way
            #expect(value == "0", "\(abi): \(value) under the filter, \(unfiltered ?? "?") without")
        }
    }
}

// MARK: Helpers for the real-kernel tests

/// In a forked child: 0 if fchownat on a missing path returned 0, 1 if ENOENT, 2 on another
/// error; 3 if an unrelated call (faccessat on the same path) no longer reaches the kernel.
private func probeChild(path: UnsafePointer<CChar>) -> Int32 {
    if faccessat(AT_FDCWD, path, F_OK, 0) == 0 || errno != ENOENT { return 3 }
    if fchownat(AT_FDCWD, path, 0, 0, 0) == 0 { return 0 }
    return errno == ENOENT ? 1 : 2
}

/// Runs `body` in a forked child and returns its exit status. The child only makes system
/// calls and exits with _exit, never returning into the test runner.
private func forkAndWait(_ body: () -> Int32) throws -> Int32 {
    let pid = fork()
    if pid < 0 { throw SystemError("fork") }
    if pid == 0 { _exit(body()) }
    var status: Int32 = 0
    try check("waitpid") { waitpid(pid, &status, 0) }
    if status & 0x7f != 0 { return 128 + (status & 0x7f) }  // killed by a signal
    return (status >> 8) & 0xff
}

private let compiler: String? = ["/usr/bin/gcc", "/usr/local/bin/gcc", "/usr/bin/cc"].first { access($0, X_OK) == 0 }

/// Tests/Fixtures/<name>, found from this source file's path.
private func fixturePath(_ name: String, file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)  // CaissonRuntimeTests/SeccompTests.swift
    return parts.joined(separator: "/") + "/Fixtures/" + name
}

private struct TemporaryDirectory {
    let path: String
    init() throws {
        var template = Array("/tmp/caisson-seccomp-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError("mkdtemp")
        }
        path = String(cString: made)
    }
    func remove() { rmdir(path) }
}

/// Runs `executable` with stdout captured, after installing the fakeroot filter if asked;
/// the filter survives execve.
private func runCapturingOutput(_ executable: String, filtered: Bool) throws -> String {
    var fds: [Int32] = [-1, -1]
    try check("pipe") { pipe(&fds) }
    // Close-on-exec, so children forked by tests running in parallel do not hold the pipe open.
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let reader = FileDescriptor(adopting: fds[0])
    let program = FakerootFilter.program()
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), nil]
    defer { free(argv[0]) }

    let pid = fork()
    if pid < 0 {
        close(fds[1])
        throw SystemError("fork")
    }
    if pid == 0 {
        if dup2(fds[1], 1) < 0 { _exit(120) }
        if filtered {
            do { try FakerootFilter.install(program) } catch { _exit(121) }
        }
        execv(argv[0]!, argv)
        _exit(127)
    }
    close(fds[1])
    let output = String(decoding: try reader.readAll(), as: UTF8.self)
    var status: Int32 = 0
    try check("waitpid") { waitpid(pid, &status, 0) }
    #expect(status == 0, "\(executable) (filtered: \(filtered)) ended with wait status \(status)")
    return output
}

private func parse(_ output: String) -> [(abi: String, value: String)] {
    output.split(separator: "\n").map { line in
        let fields = line.split(separator: " ", maxSplits: 1)
        return (String(fields[0]), fields.count > 1 ? String(fields[1]) : "")
    }
}
