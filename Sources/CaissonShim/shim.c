#define _GNU_SOURCE
#include "CaissonShim.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <linux/nsfs.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

const int caisson_CLONE_NEWUSER = CLONE_NEWUSER;
const int caisson_CLONE_NEWNS = CLONE_NEWNS;
const int caisson_CLONE_NEWNET = CLONE_NEWNET;
const int caisson_CLONE_NEWIPC = CLONE_NEWIPC;
const int caisson_CLONE_NEWUTS = CLONE_NEWUTS;
const int caisson_CLONE_NEWPID = CLONE_NEWPID;
const int caisson_CLONE_NEWCGROUP = CLONE_NEWCGROUP;

int caisson_unshare(int flags) { return unshare(flags); }
int caisson_setns(int fd, int nstype) { return setns(fd, nstype); }
int caisson_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

const uint64_t caisson_RESOLVE_IN_ROOT = RESOLVE_IN_ROOT;
const uint64_t caisson_RESOLVE_NO_MAGICLINKS = RESOLVE_NO_MAGICLINKS;
const uint64_t caisson_RESOLVE_NO_SYMLINKS = RESOLVE_NO_SYMLINKS;
const uint64_t caisson_RESOLVE_BENEATH = RESOLVE_BENEATH;
const uint64_t caisson_RESOLVE_NO_XDEV = RESOLVE_NO_XDEV;

int caisson_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
#ifdef SYS_openat2
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int caisson_close_range(unsigned int first, unsigned int last) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, last, 0) == 0) return 0;
    if (errno != ENOSYS) return -1;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1 << 20) max = 1 << 20;
    for (long fd = first; fd < max && fd <= (long)last; fd++) close((int)fd);
    return 0;
}

int caisson_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
int caisson_get_no_new_privs(void) { return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); }
int caisson_set_dumpable(int value) { return prctl(PR_SET_DUMPABLE, value, 0, 0, 0); }
int caisson_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

int caisson_seccomp_install(const void *filter, unsigned short count) {
    struct sock_fprog prog = {.len = count, .filter = (struct sock_filter *)filter};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

const uint32_t caisson_AUDIT_ARCH_X86_64 = AUDIT_ARCH_X86_64;
const uint32_t caisson_AUDIT_ARCH_I386 = AUDIT_ARCH_I386;
const uint32_t caisson_AUDIT_ARCH_AARCH64 = AUDIT_ARCH_AARCH64;
const uint32_t caisson_AUDIT_ARCH_ARM = AUDIT_ARCH_ARM;
#if defined(__x86_64__)
const uint32_t caisson_AUDIT_ARCH_NATIVE = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
const uint32_t caisson_AUDIT_ARCH_NATIVE = AUDIT_ARCH_AARCH64;
#else
const uint32_t caisson_AUDIT_ARCH_NATIVE = 0;
#endif
const uint32_t caisson_SECCOMP_RET_ALLOW = SECCOMP_RET_ALLOW;
const uint32_t caisson_SECCOMP_RET_ERRNO = SECCOMP_RET_ERRNO;
const uint32_t caisson_SECCOMP_RET_KILL_PROCESS = SECCOMP_RET_KILL_PROCESS;
const uint32_t caisson_SECCOMP_DATA_NR_OFFSET = offsetof(struct seccomp_data, nr);
const uint32_t caisson_SECCOMP_DATA_ARCH_OFFSET = offsetof(struct seccomp_data, arch);

#ifdef SYS_chown
const long caisson_SYS_chown = SYS_chown;
#else
const long caisson_SYS_chown = -1;
#endif
const long caisson_SYS_fchownat = SYS_fchownat;
const long caisson_SYS_setresuid = SYS_setresuid;
const long caisson_SYS_setgroups = SYS_setgroups;

const unsigned long caisson_MS_RDONLY = MS_RDONLY, caisson_MS_NOSUID = MS_NOSUID, caisson_MS_NODEV = MS_NODEV,
    caisson_MS_NOEXEC = MS_NOEXEC, caisson_MS_REMOUNT = MS_REMOUNT, caisson_MS_BIND = MS_BIND,
    caisson_MS_REC = MS_REC, caisson_MS_PRIVATE = MS_PRIVATE, caisson_MS_SLAVE = MS_SLAVE,
    caisson_MS_NOATIME = MS_NOATIME, caisson_MS_NODIRATIME = MS_NODIRATIME, caisson_MS_RELATIME = MS_RELATIME,
    caisson_MS_STRICTATIME = MS_STRICTATIME, caisson_MS_SHARED = MS_SHARED, caisson_MS_UNBINDABLE = MS_UNBINDABLE,
    caisson_MNT_DETACH = MNT_DETACH;

const int caisson_O_PATH = O_PATH;
const unsigned long caisson_ST_RDONLY = ST_RDONLY, caisson_ST_NOSUID = ST_NOSUID, caisson_ST_NODEV = ST_NODEV,
    caisson_ST_NOEXEC = ST_NOEXEC, caisson_ST_NOATIME = ST_NOATIME, caisson_ST_NODIRATIME = ST_NODIRATIME,
    caisson_ST_RELATIME = ST_RELATIME;

unsigned long caisson_fs_type(int fd) {
    struct statfs fs;
    return fstatfs(fd, &fs) == 0 ? (unsigned long)fs.f_type : 0;
}

long caisson_copy_file_range(int in_fd, int out_fd, unsigned long length) {
    return (long)copy_file_range(in_fd, NULL, out_fd, NULL, length, 0);
}

int caisson_execvpe(const char *file, char *const argv[], char *const envp[]) {
    return execvpe(file, argv, envp);
}

pid_t caisson_spawn_tethered(const char *path, char *const argv[], const int *keep, int nkeep) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    // Child: only async-signal-safe calls from here on.
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); }
    for (int i = 0; i < nkeep; i++) fcntl(keep[i], F_SETFD, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent) _exit(1);  // the parent died before the tether was tied
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(path, argv);
    _exit(127);
}

int caisson_ns_get_parent(int fd) { return ioctl(fd, NS_GET_PARENT); }
int caisson_ns_get_userns(int fd) { return ioctl(fd, NS_GET_USERNS); }

int caisson_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
}
