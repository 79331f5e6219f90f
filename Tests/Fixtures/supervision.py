"""What the fixtures that run daemons for the test suite (registry.py, cluster.py) share: a
supervisor process detached from the caller, which answers `start` through a pipe, and the
small process and log helpers around it."""

import os
import signal
import sys
import time


def log_tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError as e:
        return f"  (no log: {e})"
    tail = text.splitlines()[-lines:]
    return "\n".join("  | " + line for line in tail) if tail else "  (log is empty)"


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def start_supervisor(d, tool, supervise, watch_fd, chdir_root=False, on_silent_death=None):
    """Forks the supervisor, which runs `supervise(write_fd)` with DIR/supervisor.log as its
    output, in a session of its own and without the caller's stdio (so that a subprocess.run
    capturing output returns when `start` does), keeping only `watch_fd` and the answer pipe.
    `supervise` writes "OK\\n" and what `start` prints, or an error, and closes the pipe.
    Returns `start`'s exit status."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.setsid()
        if chdir_root:
            os.chdir("/")
        out = os.open(os.path.join(d, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        keep = {0, 1, 2, write_fd, watch_fd}
        for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        status = 1
        try:
            status = supervise(write_fd)
        finally:
            sys.stdout.flush()
            os._exit(status)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    answer = b"".join(chunks).decode(errors="replace")
    if answer.startswith("OK\n"):
        sys.stdout.write(answer[3:])
        return 0
    if not answer:
        if on_silent_death:
            os.waitpid(pid, 0)
            on_silent_death()
        answer = (f"{tool} start: the supervisor (pid {pid}) died without an answer; "
                  f"{d}/supervisor.log:\n{log_tail(os.path.join(d, 'supervisor.log'))}\n")
    sys.stderr.write(answer)
    return 1


def watch_descriptor(tool, watch_pid):
    """A pidfd for the process whose death tears the daemons down (default: the caller of
    `start`; 0: none)."""
    watch = os.getppid() if watch_pid is None else watch_pid
    if not watch:
        return None
    try:
        return os.pidfd_open(watch)
    except OSError as e:
        sys.exit(f"{tool} start: cannot watch process {watch}: {e}")


def kill_all(pids, doomed=(), grace=2.0):
    """SIGTERM to pids, SIGKILL to doomed (job steps: no state worth saving) and to whatever of
    pids outlives the grace period."""
    pids = [p for p in set(pids) | set(doomed) if p != os.getpid() and alive(p)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL if pid in doomed else signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
    stubborn = [p for p in pids if alive(p) and p not in doomed]
    for pid in stubborn:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(alive(p) for p in stubborn):
        time.sleep(0.02)
    return len(pids), len(stubborn)
