// The few Linux interfaces Swift's Glibc module does not export: calls hidden
// behind _GNU_SOURCE, raw syscalls with no glibc wrapper, and variadic functions.
// Everything else in Caisson is Swift.
#ifndef CAISSON_SHIM_H
#define CAISSON_SHIM_H

// This header declares only: it must not define _GNU_SOURCE or pull in system headers that
// change with it, or clang's view of glibc types (fd_set, …) would clash with Swift's Glibc module.
#include <stdint.h>
#include <sys/types.h>

// Namespace flags (sched.h hides them without _GNU_SOURCE in Swift's view).
extern const int caisson_CLONE_NEWUSER;
extern const int caisson_CLONE_NEWNS;
extern const int caisson_CLONE_NEWNET;
extern const int caisson_CLONE_NEWIPC;
extern const int caisson_CLONE_NEWUTS;
extern const int caisson_CLONE_NEWPID;
extern const int caisson_CLONE_NEWCGROUP;

int caisson_unshare(int flags);
int caisson_setns(int fd, int nstype);
int caisson_pivot_root(const char *new_root, const char *put_old);

// openat2(2): resolve a path with the kernel confined to a root directory.
extern const uint64_t caisson_RESOLVE_IN_ROOT;
extern const uint64_t caisson_RESOLVE_NO_MAGICLINKS;
extern const uint64_t caisson_RESOLVE_NO_SYMLINKS;
extern const uint64_t caisson_RESOLVE_BENEATH;
extern const uint64_t caisson_RESOLVE_NO_XDEV;
int caisson_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

// Close every descriptor in [first, last]; falls back to a loop where close_range(2) is missing.
int caisson_close_range(unsigned int first, unsigned int last);

// prctl(2) is variadic.
int caisson_set_no_new_privs(void);
int caisson_get_no_new_privs(void);
int caisson_set_dumpable(int value);
int caisson_set_pdeathsig(int sig);

// Install a classic-BPF seccomp program (array of struct sock_filter, 8 bytes each).
int caisson_seccomp_install(const void *filter, unsigned short count);
extern const uint32_t caisson_AUDIT_ARCH_X86_64;
extern const uint32_t caisson_AUDIT_ARCH_I386;
extern const uint32_t caisson_AUDIT_ARCH_AARCH64;
extern const uint32_t caisson_AUDIT_ARCH_ARM;
extern const uint32_t caisson_AUDIT_ARCH_NATIVE;
extern const uint32_t caisson_SECCOMP_RET_ALLOW;
extern const uint32_t caisson_SECCOMP_RET_ERRNO;
extern const uint32_t caisson_SECCOMP_RET_KILL_PROCESS;
extern const uint32_t caisson_SECCOMP_DATA_NR_OFFSET;
extern const uint32_t caisson_SECCOMP_DATA_ARCH_OFFSET;

// Native syscall numbers, used to cross-check Caisson's own syscall tables.
extern const long caisson_SYS_chown;      // -1 where the ABI has no such call
extern const long caisson_SYS_fchownat;
extern const long caisson_SYS_setresuid;
extern const long caisson_SYS_setgroups;

// mount(2) flag values, collected here so Swift does not depend on which
// subset Glibc's module happens to export.
extern const unsigned long caisson_MS_RDONLY, caisson_MS_NOSUID, caisson_MS_NODEV, caisson_MS_NOEXEC,
    caisson_MS_REMOUNT, caisson_MS_BIND, caisson_MS_REC, caisson_MS_PRIVATE, caisson_MS_SLAVE,
    caisson_MS_NOATIME, caisson_MS_NODIRATIME, caisson_MS_RELATIME, caisson_MS_STRICTATIME,
    caisson_MS_SHARED, caisson_MS_UNBINDABLE, caisson_MNT_DETACH;

// GNU-only open flag and statvfs flags.
extern const int caisson_O_PATH;
extern const unsigned long caisson_ST_RDONLY, caisson_ST_NOSUID, caisson_ST_NODEV, caisson_ST_NOEXEC,
    caisson_ST_NOATIME, caisson_ST_NODIRATIME, caisson_ST_RELATIME;

// The filesystem magic of the file behind fd (statfs f_type), or 0 on error.
unsigned long caisson_fs_type(int fd);
#define CAISSON_PROC_SUPER_MAGIC 0x9fa0UL

// copy_file_range(2) at the files' current offsets (a reflink where the filesystem can).
long caisson_copy_file_range(int in_fd, int out_fd, unsigned long length);

// Start a helper daemon (the squashfuse server) that dies with its parent: fork, make
// stdin/stdout /dev/null, clear close-on-exec on `keep` fds, PR_SET_PDEATHSIG(SIGKILL), execv.
// Returns the child's pid, or -1 with errno set.
pid_t caisson_spawn_tethered(const char *path, char *const argv[], const int *keep, int nkeep);

// ioctl(2) is variadic: NS_GET_PARENT and NS_GET_USERNS return a new fd for the parent user
// namespace of a user namespace, or the owning user namespace of any namespace.
int caisson_ns_get_parent(int fd);
int caisson_ns_get_userns(int fd);

// renameat2(2) with RENAME_NOREPLACE: publish a directory under a name only if the name is free.
int caisson_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

// execvpe(3) is a GNU extension.
int caisson_execvpe(const char *file, char *const argv[], char *const envp[]);

#endif
