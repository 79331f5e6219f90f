/* caisson-probe: stands in for `caisson` where the Slurm plugin runs it, records how it was run,
 * then execs the real program. The cluster tests install it as PREFIX/bin/caisson (the plugin's
 * default) with the real binary beside it as caisson.real, and read the records to check the
 * plugin's privilege drop: ids and supplementary groups, inherited descriptors, environment.
 *
 *     cc -O2 -o PREFIX/bin/caisson caisson-probe.c -DPROBE_LOG_DIR='"/dir"' -DPROBE_TARGET='"PREFIX/bin/caisson.real"'
 *
 * One file per run in PROBE_LOG_DIR (world-writable, sticky), named HOST-PID:
 *     argv ARG...            uid R E S     gid R E S     groups G...
 *     fds N...               (open descriptors, besides the one listing them)
 *     env NAME=VALUE         (only LD_*, CAISSON_*, PYXIS_*, PATH and HOME)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    char fds[4096] = "";
    DIR *dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] == '.' || atoi(entry->d_name) == dirfd(dir)) continue;
            strncat(fds, " ", sizeof fds - strlen(fds) - 1);
            strncat(fds, entry->d_name, sizeof fds - strlen(fds) - 1);
        }
        closedir(dir);
    }
    char host[256] = "host", path[4096];
    gethostname(host, sizeof host - 1);
    snprintf(path, sizeof path, "%s/%s-%d", PROBE_LOG_DIR, host, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *log = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (log != NULL) {
        fprintf(log, "argv");
        for (int i = 1; i < argc; i++) fprintf(log, " %s", argv[i]);
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        getresuid(&ru, &eu, &su);
        getresgid(&rg, &eg, &sg);
        fprintf(log, "\nuid %u %u %u\ngid %u %u %u\ngroups", ru, eu, su, rg, eg, sg);
        gid_t groups[256];
        int n = getgroups(256, groups);
        for (int i = 0; i < n; i++) fprintf(log, " %u", groups[i]);
        fprintf(log, "\nfds%s\n", fds);
        for (char **e = environ; *e != NULL; e++) {
            if (!strncmp(*e, "LD_", 3) || !strncmp(*e, "CAISSON_", 8) || !strncmp(*e, "PYXIS_", 6) ||
                !strncmp(*e, "PATH=", 5) || !strncmp(*e, "HOME=", 5))
                fprintf(log, "env %s\n", *e);
        }
        fclose(log);
    }
    argv[0] = PROBE_TARGET;
    execv(PROBE_TARGET, argv);
    perror("caisson-probe: " PROBE_TARGET);
    return 127;
}
