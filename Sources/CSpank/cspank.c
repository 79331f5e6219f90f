#define _GNU_SOURCE
#include "CSpank.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

// slurm.h's value (the whole of slurm.h is not needed for one constant).
#ifndef SLURM_BATCH_SCRIPT
#define SLURM_BATCH_SCRIPT (0xfffffffb)
#endif

// The data symbols Slurm's plugin loader looks up: plugin_name, plugin_type, plugin_version
// (this Slurm's version: a plugin built for another release is refused) and spank_plugin_version.
SPANK_PLUGIN(caisson, 1)

const uint32_t cspank_batch_step = SLURM_BATCH_SCRIPT;
const int cspank_success = ESPANK_SUCCESS, cspank_env_exists = ESPANK_ENV_EXISTS,
          cspank_env_noexist = ESPANK_ENV_NOEXIST, cspank_nospace = ESPANK_NOSPACE;

int cspank_context(void) { return (int)spank_context(); }

int cspank_option_register(cspank_t sp, const char *name, const char *arginfo, const char *usage, int has_arg,
                           int val, cspank_option_callback cb) {
    // Slurm keeps a pointer to the option for the life of the process.
    struct spank_option *opt = calloc(1, sizeof *opt);
    if (opt == NULL) return ESPANK_ERROR;
    opt->name = strdup(name);
    opt->arginfo = arginfo ? strdup(arginfo) : NULL;
    opt->usage = strdup(usage);
    opt->has_arg = has_arg;
    opt->val = val;
    opt->cb = cb;
    return spank_option_register((spank_t)sp, opt);
}

int cspank_job_uid(cspank_t sp, uid_t *uid) { return spank_get_item((spank_t)sp, S_JOB_UID, uid); }
int cspank_job_gid(cspank_t sp, gid_t *gid) { return spank_get_item((spank_t)sp, S_JOB_GID, gid); }
int cspank_job_id(cspank_t sp, uint32_t *id) { return spank_get_item((spank_t)sp, S_JOB_ID, id); }
int cspank_step_id(cspank_t sp, uint32_t *id) { return spank_get_item((spank_t)sp, S_JOB_STEPID, id); }
int cspank_local_task_count(cspank_t sp, uint32_t *count) {
    return spank_get_item((spank_t)sp, S_JOB_LOCAL_TASK_COUNT, count);
}
int cspank_node_id(cspank_t sp, uint32_t *id) { return spank_get_item((spank_t)sp, S_JOB_NODEID, id); }
int cspank_task_id(cspank_t sp, int *id) { return spank_get_item((spank_t)sp, S_TASK_ID, id); }
int cspank_job_argv(cspank_t sp, int *argc, char ***argv) { return spank_get_item((spank_t)sp, S_JOB_ARGV, argc, argv); }
int cspank_job_env(cspank_t sp, char ***env) { return spank_get_item((spank_t)sp, S_JOB_ENV, env); }
int cspank_supplementary_gids(cspank_t sp, gid_t **gids, int *count) {
    return spank_get_item((spank_t)sp, S_JOB_SUPPLEMENTARY_GIDS, gids, count);
}

int cspank_getenv(cspank_t sp, const char *name, char *buffer, int length) {
    return spank_getenv((spank_t)sp, name, buffer, length);
}
int cspank_setenv(cspank_t sp, const char *name, const char *value, int overwrite) {
    return spank_setenv((spank_t)sp, name, value, overwrite);
}
int cspank_unsetenv(cspank_t sp, const char *name) { return spank_unsetenv((spank_t)sp, name); }
const char *cspank_strerror(int err) { return spank_strerror((spank_err_t)err); }

void cspank_log_error(const char *message) { slurm_error("%s", message); }
void cspank_log_user(const char *message) { slurm_spank_log("%s", message); }
void cspank_log_info(const char *message) { slurm_info("%s", message); }
void cspank_log_debug(const char *message) { slurm_debug("%s", message); }

// Not part of Slurm's published API, but a SPANK plugin is built for one Slurm release (Slurm
// checks plugin_version), and slurm_conf_t is slurm.h's own type. Weak: srun or sbatch without
// the symbol still load the plugin.
extern slurm_conf_t slurm_conf __attribute__((weak));

const char *cspank_conf_spooldir(void) { return &slurm_conf != NULL ? slurm_conf.slurmd_spooldir : NULL; }
const char *cspank_conf_tmpfs(void) { return &slurm_conf != NULL ? slurm_conf.tmp_fs : NULL; }

// slurm.h's API, from the libslurm the host program (slurmstepd) is linked with; weak, as above.
#pragma weak slurm_load_job
#pragma weak slurm_free_job_info_msg

int cspank_job_ended(uint32_t job_id) {
    if (slurm_load_job == NULL || slurm_free_job_info_msg == NULL) return -1;
    job_info_msg_t *message = NULL;
    if (slurm_load_job(&message, job_id, SHOW_ALL) != SLURM_SUCCESS || message == NULL) return -1;
    int ended = -1;
    if (message->record_count >= 1) {
        uint32_t state = message->job_array[0].job_state;
        ended = (state & JOB_COMPLETING) || (state & JOB_STATE_BASE) != JOB_RUNNING;
    }
    slurm_free_job_info_msg(message);
    return ended;
}

const char *cspank_self_path(void) {
    Dl_info info;
    if (dladdr((void *)&cspank_self_path, &info) == 0 || info.dli_fname == NULL) return NULL;
    return info.dli_fname;
}

int cspank_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int cspank_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

// Child side of cspank_spawn: only system calls (the parent may have other threads).
static void fail(int fd, const char *what, int code) {
    int saved = errno;
    if (fd >= 0) {
        const char *prefix = "caisson: spank: ";
        const char *reason = strerrorname_np(saved);  // a static string: nothing allocated
        (void)!write(fd, prefix, strlen(prefix));
        (void)!write(fd, what, strlen(what));
        (void)!write(fd, ": ", 2);
        if (reason != NULL) (void)!write(fd, reason, strlen(reason));
        (void)!write(fd, "\n", 1);
    }
    _exit(code);
}

pid_t cspank_spawn(const cspank_spawn_request *r) {
    pid_t pid = fork();
    if (pid != 0) return pid;

    // Out of the way of 0-2 first: the descriptors we were given may themselves be 0-2.
    int out = r->stdout_fd >= 0 ? fcntl(r->stdout_fd, F_DUPFD_CLOEXEC, 10) : -1;
    int err = r->stderr_fd >= 0 ? fcntl(r->stderr_fd, F_DUPFD_CLOEXEC, 10) : -1;

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }

    // Identity. slurmstepd runs user_init with the effective uid dropped to the user and the real
    // uid still root: regain root so that the drop below is complete and covers every id.
    int already_user = getuid() == r->uid && geteuid() == r->uid;
    if (!already_user) {
        if (geteuid() != 0 && getuid() == 0 && seteuid(0) != 0) fail(err, "seteuid(0)", 126);
        if (setgroups((size_t)r->ngroups, r->groups) != 0) fail(err, "setgroups", 126);
        if (setresgid(r->gid, r->gid, r->gid) != 0) fail(err, "setresgid", 126);
        if (setresuid(r->uid, r->uid, r->uid) != 0) fail(err, "setresuid", 126);
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || ru != r->uid || eu != r->uid || su != r->uid) {
        errno = EPERM;
        fail(err, "dropping to the job's uid", 126);
    }
    if (getresgid(&rg, &eg, &sg) != 0 || rg != r->gid || eg != r->gid || sg != r->gid) {
        errno = EPERM;
        fail(err, "dropping to the job's gid", 126);
    }
    if (r->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        fail(err, "privileges could be regained after the drop", 126);
    }

    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) fail(err, "open /dev/null", 126);
    if (dup2(null, 0) < 0) fail(err, "dup2 stdin", 126);
    if (dup2(out >= 0 ? out : null, 1) < 0) fail(err, "dup2 stdout", 126);
    if (dup2(err >= 0 ? err : null, 2) < 0) fail(err, "dup2 stderr", 126);
    // Nothing of slurmstepd's may leak into the user's program: its sockets, the job's I/O, files.
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
    {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > (1L << 20)) max = 1L << 20;
        for (long fd = 3; fd < max; fd++) close((int)fd);
    }
    err = 2;

    if (r->new_session) setsid();
    if (r->cwd != NULL && chdir(r->cwd) != 0) fail(err, "chdir", 126);
    execve(r->path, r->argv, r->envp);
    fail(err, r->path, errno == ENOENT ? 127 : 126);
    return -1;
}

int cspank_wifexited(int status) { return WIFEXITED(status); }
int cspank_wexitstatus(int status) { return WEXITSTATUS(status); }
int cspank_wifsignaled(int status) { return WIFSIGNALED(status); }
int cspank_wtermsig(int status) { return WTERMSIG(status); }
int cspank_wifstopped(int status) { return WIFSTOPPED(status); }
