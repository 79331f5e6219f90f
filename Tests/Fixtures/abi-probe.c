// abi-probe: calls fchownat(AT_FDCWD, "/nonexistent-probe", 0, 0, 0) through every system call
// ABI the machine can enter the kernel with, and prints one line per ABI:
//
//     native 0          the raw return value, or -errno
//     x32 -38           (x86_64 only) the x32 ABI: the x86_64 number with bit 30 set
//     i386 -2           (x86_64 only) the i386 ABI through `int $0x80`
//     i386 unsupported  `int $0x80` faulted: the kernel runs no 32-bit code (ia32_emulation off)
//
// Under Caisson's fakeroot seccomp filter every line reads 0 (the call is answered with
// success without running). Without it the path does not exist, so the kernel says -2
// (ENOENT), or -38 (ENOSYS) for x32 on kernels built or booted without it.
//
// Build: gcc -static -O1 -o abi-probe abi-probe.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char probe_path[] = "/nonexistent-probe";

static long result(long rc) { return rc < 0 ? -errno : rc; }

static void report(const char *abi, long value) {
    printf("%s %ld\n", abi, value);
    fflush(stdout);
}

#if defined(__x86_64__)
#define X32_SYSCALL_BIT 0x40000000L // asm/unistd.h: __X32_SYSCALL_BIT
#define I386_NR_fchownat 298L       // asm/unistd_32.h: __NR_fchownat

static sigjmp_buf fault_jump;
static void on_fault(int sig) {
    (void)sig;
    siglongjmp(fault_jump, 1);
}

// A 32-bit system call from 64-bit code: number in eax, arguments in ebx, ecx, edx, esi,
// edi, result in eax. Only the low 32 bits of each register reach the kernel.
static long int80(long nr, long a, long b, long c, long d, long e) {
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "0"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
                     : "memory", "cc", "r8", "r9", "r10", "r11");
    return (long)(int)ret; // the kernel's 32-bit result, sign-extended
}

static void probe_i386(void) {
    // The path must be addressable with 32 bits: copy it below 4 GiB.
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) {
        report("i386", -errno);
        return;
    }
    if ((uintptr_t)low + sizeof probe_path > 0xffffffffUL) {
        report("i386", -EFAULT);
        munmap(low, 4096);
        return;
    }
    memcpy(low, probe_path, sizeof probe_path);

    struct sigaction fault = {.sa_handler = on_fault}, old_segv, old_bus;
    sigemptyset(&fault.sa_mask);
    sigaction(SIGSEGV, &fault, &old_segv);
    sigaction(SIGBUS, &fault, &old_bus);
    if (sigsetjmp(fault_jump, 1) == 0) {
        report("i386", int80(I386_NR_fchownat, AT_FDCWD, (long)(uintptr_t)low, 0, 0, 0));
    } else {
        printf("i386 unsupported\n");
        fflush(stdout);
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    munmap(low, 4096);
}
#endif

int main(void) {
    report("native", result(syscall(SYS_fchownat, AT_FDCWD, probe_path, 0, 0, 0)));
#if defined(__x86_64__)
    report("x32", result(syscall(SYS_fchownat | X32_SYSCALL_BIT, AT_FDCWD, probe_path, 0, 0, 0)));
    probe_i386();
#endif
    return 0;
}
