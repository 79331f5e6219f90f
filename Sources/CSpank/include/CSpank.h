// What Slurm's SPANK ABI needs and Swift cannot express: the plugin's data symbols (defined in
// cspank.c with SPANK_PLUGIN), thin wrappers for the variadic spank_get_item() and Slurm's
// printf-style loggers, and a fork+exec helper that is safe to call from the multi-threaded
// slurmstepd (the child makes only system calls).
//
// slurm/spank.h is included only by cspank.c: its declarations of slurm_spank_init & co. would
// clash with the Swift definitions exported under the same names, so Swift sees an opaque handle.
#ifndef CSPANK_H
#define CSPANK_H

#include <stdint.h>
#include <sys/types.h>

typedef void *cspank_t;

// spank_context() values.
enum { CSPANK_CTX_ERROR = 0, CSPANK_CTX_LOCAL, CSPANK_CTX_REMOTE, CSPANK_CTX_ALLOCATOR, CSPANK_CTX_SLURMD,
       CSPANK_CTX_JOB_SCRIPT };
int cspank_context(void);

// The batch step's id (SLURM_BATCH_SCRIPT), and spank_err_t values we test for.
extern const uint32_t cspank_batch_step;
extern const int cspank_success, cspank_env_exists, cspank_env_noexist, cspank_nospace;

// Registers option `val` of the plugin. The strings must outlive the plugin (they are kept by Slurm).
typedef int (*cspank_option_callback)(int val, const char *optarg, int remote);
int cspank_option_register(cspank_t sp, const char *name, const char *arginfo, const char *usage, int has_arg,
                           int val, cspank_option_callback cb);

// spank_get_item() for the items the plugin reads. Each returns a spank_err_t (0 = success).
int cspank_job_uid(cspank_t sp, uid_t *uid);
int cspank_job_gid(cspank_t sp, gid_t *gid);
int cspank_job_id(cspank_t sp, uint32_t *id);
int cspank_step_id(cspank_t sp, uint32_t *id);
int cspank_local_task_count(cspank_t sp, uint32_t *count);
/* The node's index in the step (S_JOB_NODEID). */
int cspank_node_id(cspank_t sp, uint32_t *id);
int cspank_task_id(cspank_t sp, int *id);
int cspank_job_argv(cspank_t sp, int *argc, char ***argv);
int cspank_job_env(cspank_t sp, char ***env);
int cspank_supplementary_gids(cspank_t sp, gid_t **gids, int *count);

int cspank_getenv(cspank_t sp, const char *name, char *buffer, int length);
int cspank_setenv(cspank_t sp, const char *name, const char *value, int overwrite);
int cspank_unsetenv(cspank_t sp, const char *name);
const char *cspank_strerror(int err);

// Slurm's loggers, with the message passed as data (never as a format).
void cspank_log_error(const char *message);   // error level: reaches srun's stderr
void cspank_log_user(const char *message);    // slurm_spank_log: srun's stderr without "error:"
void cspank_log_info(const char *message);
void cspank_log_debug(const char *message);

// slurm.conf's SlurmdSpoolDir and TmpFS as this process loaded them (slurmstepd's `slurm_conf`,
// reached through a weak reference: NULL where the host program has no such symbol). Unexpanded:
// %n and %h may remain. mpi/pmix keeps its server directory and the client's directory there.
const char *cspank_conf_spooldir(void);
const char *cspank_conf_tmpfs(void);

// Asks slurmctld (slurm_load_job, as the calling process's effective user) whether the job has
// stopped running: 1 when it is cancelled, timed out or completing, 0 while it runs, -1 when
// that cannot be known (no libslurm in this process, slurmctld unreachable).
int cspank_job_ended(uint32_t job_id);

// Where this plugin was loaded from (dladdr), or NULL.
const char *cspank_self_path(void);

// memfd_create(name, MFD_CLOEXEC), for output that must never block or raise SIGPIPE.
int cspank_memfd(const char *name);

// pipe2(fds, O_CLOEXEC): atomic, as other slurmstepd threads may fork at any time.
int cspank_pipe(int fds[2]);

// Runs a program as the job's user. In the child: signals reset, root regained when only the
// effective uid had been dropped (slurmstepd does that around user_init), then
// setgroups(groups) / setresgid(gid) / setresuid(uid) — verified, and refused if root could be
// regained —, stdin from /dev/null, stdout and stderr from the given descriptors (-1: /dev/null),
// every other descriptor closed, a new session if `new_session`, chdir(cwd) if cwd is not NULL,
// then execve(path, argv, envp) with exactly envp. Returns the child's pid, or -1 with errno.
// When the child cannot get that far it writes one line on `stderr_fd` and exits with 126/127.
typedef struct {
    const char *path;
    char *const *argv;
    char *const *envp;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int ngroups;
    int stdout_fd;
    int stderr_fd;
    int new_session;
    const char *cwd;
} cspank_spawn_request;
pid_t cspank_spawn(const cspank_spawn_request *request);

// waitpid(2) status decoding (function-like macros are invisible to Swift).
int cspank_wifexited(int status);
int cspank_wexitstatus(int status);
int cspank_wifsignaled(int status);
int cspank_wtermsig(int status);
int cspank_wifstopped(int status);

#endif
