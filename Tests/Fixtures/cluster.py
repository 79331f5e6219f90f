#!/usr/bin/env python3
"""A real multi-node Slurm cluster on this machine, for the test suite: Debian's munged,
slurmctld and N slurmd, each slurmd in its own network, UTS and mount namespace. Standard
library only, plus slurm-wlm, munge, iproute2 and util-linux (installed with apt through
scripts/lib.sh when missing). Needs root. Nothing leaves the machine: the nodes' addresses
exist only on a bridge this script makes.

    cluster.py start DIR [--nodes 3] [--plugstack FILE] [--extra-conf FILE] [--share PATH]...
                         [--watch-pid PID] [--registry-dir RDIR [--images IMAGES_DIR]]
    cluster.py stop DIR
    cluster.py exec DIR NODE -- COMMAND...     # run a command inside node NODE's namespaces (as root)

`start` returns when every node is idle and prints the path of DIR/cluster.json (one line);
on failure it prints what went wrong and the tails of the relevant logs on stderr, removes
everything it made and exits with status 1. A supervisor process (log: DIR/supervisor.log)
owns the daemons: it tears the cluster down when the process that ran `start` exits (or PID
given by --watch-pid; 0: never), on SIGTERM, or on `stop`. `stop` is idempotent and also cleans
up after a supervisor that was killed: it finds what is left by DIR-derived names (bridge,
veths, network namespaces) and by namespace (every process in a node's namespaces is killed).

Layout, all under DIR (`start` empties these first; other files in DIR are left alone):
  etc/slurm.conf, etc/cgroup.conf, etc/plugstack.conf (copy of --plugstack, else empty),
  etc/hosts (bind-mounted on /etc/hosts in the nodes: nodeK and the controller's hostname)
  munge/        a private munged (own key, socket munge/munge.socket.2 = slurm.conf AuthInfo)
  state/        StateSaveLocation     spool/nodeK/  SlurmdSpoolDir (mpi/pmix's server dirs too)
  log/          slurmctld.log, slurmd-nodeK.log (Slurm's), munged.out, *.out (stdout/stderr)
  run/          pid files
  shared/       world-writable, sticky: submit jobs from here (visible on every node)
  cluster.json  (below)         state.json, supervisor.log: for cluster.py itself

slurm.conf: SlurmUser=root (so that slurmctld keeps the parent-death signal), proctrack/cgroup,
task/cgroup with ConstrainCores=no and CpuBind=none (the fake nodes share the cores), cons_tres
CR_Core, MpiDefault=none (srun --mpi=pmix works), CPUs/RealMemory from `slurmd -C`, one
partition `all` (default) with every node, short KillWait, FirstJobId=1 (+100000 per
10.77.X subnet index when several clusters run), then --extra-conf appended verbatim.

Nodes: nodeK (K = 1..N), hostname nodeK, address BRIDGE.(10+K) on eth0 (a veth on the bridge
whose address BRIDGE.1 is also the controller's), private tmpfs /run, /tmp (TmpFS) and /dev/shm.
DIR and every --share PATH stay visible in the nodes at the same path, even when under /tmp.
slurmctld runs in the root namespaces, on a free port; srun/sbatch/salloc run there too, like on
a login node. The subnet is the first free 10.77.X.0/24.

With --registry-dir RDIR, registry.py starts (with --host BRIDGE.1, so that the nodes can reach
it; with --images IMAGES_DIR pushed) and stops with the cluster: cluster.json["registry"].

cluster.json:
  {"dir": DIR, "slurm_conf": DIR/etc/slurm.conf, "cluster_name": "...",
   "env": {"SLURM_CONF": ..., "PATH": ...}   # what srun/sbatch/salloc need (add HOME, USER)
   "user": "caissontest", "shared": DIR/shared,
   "bridge": "cb-XXXXXX", "bridge_address": "10.77.X.1", "subnet": "10.77.X.0/24",
   "controller": {"host": HOSTNAME, "address": "10.77.X.1", "port": P, "pid": PID},
   "nodes": [{"name": "node1", "hostname": "node1", "address": "10.77.X.11", "netns": NAME,
              "netns_path": "/run/netns/NAME", "veth": "cv-XXXXXX-1", "pid": SLURMD_PID,
              "spool": ...,
              "nsenter": ["nsenter", "-t", PID, "-m", "-u", "-n", "--"], "log": ...}, ...],
   "munge_socket": ..., "logs": {"slurmctld": ..., "node1": ..., "munged": ..., "supervisor": ...},
   "registry": null, or registry.py's registries.json ("open": "10.77.X.1:P", ...) plus
               "dir": RDIR and "json": RDIR/registries.json,
   "pids": {"supervisor": PID, "slurmctld": PID, "munged": PID, "slurmd": {NAME: PID}},
   "timings": {"bring_up_s": ...}}

Running a job as the test user (what the harness does; scripts/lib.sh: run_on_cluster):
  cd DIR/shared && setpriv --reuid caissontest --regid caissontest --init-groups \\
      env -i PATH=... SLURM_CONF=... HOME=... srun -N3 hostname
MPI: `srun --mpi=pmix`, with OMPI_MCA_mpi_yield_when_idle=1 (more ranks than cores). Set HOME:
libpmix 4.2 crashes in PMIx_Init (pmix_home_directory) without HOME when the user is not in
/etc/passwd, as in a container. The PMIx server listens on tcp4://127.0.0.1 of the node's
network namespace, so a task must stay in it.
"""
import argparse
import ctypes
import fcntl
import hashlib
import ipaddress
import json
import os
import pwd
import shutil
import select
import signal
import socket
import subprocess
import sys
import time

from supervision import alive, kill_all, log_tail, start_supervisor, watch_descriptor

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(__file__)
LIB_SH = os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts", "lib.sh")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TEST_USER = os.environ.get("CAISSON_TEST_USER", "caissontest")
LOCK = "/run/lock/caisson-cluster.lock"
SLURMD_PORT = 6818
READY_TIMEOUT = 30
COVERED = ("/run", "/tmp", "/dev/shm")  # private in every node
PACKAGES = {"slurmctld": "slurmctld", "slurmd": "slurmd", "srun": "slurm-client", "munged": "munge",
            "ip": "iproute2", "nsenter": "util-linux", "setpriv": "util-linux"}


class Failure(Exception):
    pass


class Terminated(Exception):
    pass


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def run(args, check=True, input=None, env=None):
    try:
        r = subprocess.run(args, input=input.encode() if input else None, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, stdin=None if input else subprocess.DEVNULL)
    except FileNotFoundError:
        raise Failure(f"{args[0]} is not installed")
    if check and r.returncode:
        raise Failure(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    return r


def names(d):
    tag = hashlib.sha256(d.encode()).hexdigest()[:6]
    return {"tag": tag, "bridge": f"cb-{tag}", "veth_prefix": f"cv-{tag}-", "netns_prefix": f"caisson-{tag}-"}


def clean_env(**extra):
    env = {"PATH": PATH, "LANG": "C.UTF-8"}
    env.update(extra)
    return env


# ----------------------------------------------------------------------------------------------
# Prerequisites

def ensure_prerequisites():
    missing = sorted({pkg for tool, pkg in PACKAGES.items() if not shutil.which(tool, path=PATH)})
    try:
        pwd.getpwnam(TEST_USER)
        user_missing = False
    except KeyError:
        user_missing = True
    if not missing and not user_missing:
        return
    if not os.path.exists(LIB_SH):
        raise Failure(f"missing packages {missing} and no {LIB_SH} to install them")
    script = f". {LIB_SH}; ensure_packages {' '.join(missing)}; ensure_test_user"
    r = subprocess.run(["bash", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=dict(os.environ, CAISSON_TEST_USER=TEST_USER))
    if r.returncode:
        raise Failure(f"installing {missing} / creating {TEST_USER} failed:\n{r.stdout.decode(errors='replace')}")


def hardware():
    """CPUs=... Boards=... RealMemory=... from `slurmd -C` (its first line, less NodeName)."""
    out = run(["slurmd", "-C"], env=clean_env()).stdout.decode()
    fields = out.splitlines()[0].split()
    return " ".join(f for f in fields if not f.startswith("NodeName="))


# ----------------------------------------------------------------------------------------------
# Network

def used_networks():
    nets = []
    for args in (["ip", "-j", "-4", "addr"], ["ip", "-j", "-4", "route", "show", "table", "all"]):
        for entry in json.loads(run(args).stdout or b"[]"):
            if "addr_info" in entry:
                for a in entry["addr_info"]:
                    nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
            elif entry.get("dst") not in (None, "default"):
                try:
                    nets.append(ipaddress.ip_network(entry["dst"], strict=False))
                except ValueError:
                    pass
    return nets


def pick_subnet():
    used = used_networks()
    for x in range(256):
        candidate = ipaddress.ip_network(f"10.77.{x}.0/24")
        if not any(candidate.overlaps(n) for n in used if n.prefixlen > 0):
            return candidate
    raise Failure("no free 10.77.X.0/24 subnet")


def make_network(nm, count):
    """Bridge + one netns per node with eth0 on it; returns (subnet, netns names)."""
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two clusters starting at once must not pick the same subnet
        subnet = pick_subnet()
        hosts = list(subnet.hosts())
        gateway = hosts[0]
        netns = [f"{nm['netns_prefix']}node{k}" for k in range(1, count + 1)]
        batch = [f"link add {nm['bridge']} type bridge stp_state 0 forward_delay 0",
                 f"addr add {gateway}/{subnet.prefixlen} dev {nm['bridge']}",
                 f"link set {nm['bridge']} up"]
        for k, ns in enumerate(netns, start=1):
            veth = f"{nm['veth_prefix']}{k}"
            batch += [f"netns add {ns}",
                      f"link add {veth} type veth peer name eth0 netns {ns}",
                      f"link set {veth} master {nm['bridge']} up"]
        run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    for k, ns in enumerate(netns, start=1):
        run(["ip", "-n", ns, "-batch", "-"], input=f"addr add {hosts[9 + k]}/{subnet.prefixlen} dev eth0\n"
                                                   "link set eth0 up\nlink set lo up\n")
    return subnet, netns


def remove_network(nm):
    out = run(["ip", "netns", "list"], check=False).stdout.decode()
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(nm["netns_prefix"]):
            run(["ip", "netns", "delete", name], check=False)
    links = json.loads(run(["ip", "-j", "link"], check=False).stdout or b"[]")
    for link in links:
        name = link.get("ifname", "")
        if name == nm["bridge"] or name.startswith(nm["veth_prefix"]):
            run(["ip", "link", "delete", name], check=False)


# ----------------------------------------------------------------------------------------------
# Node namespaces (run as `cluster.py _node SPEC`, then exec slurmd)

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWNET = 0x00020000, 0x04000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target}")


def cmd_node(args):
    spec = json.loads(args.spec)
    fd = os.open(spec["netns_path"], os.O_RDONLY)
    _check(libc.setns(fd, CLONE_NEWNET), f"setns {spec['netns_path']}")
    os.close(fd)
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Paths to keep visible: held open before /run, /tmp and /dev/shm are covered, bound back after.
    keep = []
    for path in spec["keep"]:
        keep.append((path, os.open(path, os.O_PATH | os.O_DIRECTORY)))
    _mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    os.makedirs("/run/lock", exist_ok=True)
    os.chmod("/run/lock", 0o1777)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for path, fd in keep:
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
    _mount(spec["hosts"], "/etc/hosts", None, MS_BIND)
    name = spec["hostname"].encode()
    _check(libc.sethostname(name, len(name)), "sethostname")
    os.chdir("/")
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


def cmd_exec(args):
    d = os.path.abspath(args.dir)
    info = load_json(os.path.join(d, "cluster.json"))
    if not info:
        sys.exit(f"cluster.py exec: no cluster in {d}")
    nodes = {n["name"]: n for n in info["nodes"]}
    if args.node not in nodes:
        sys.exit(f"cluster.py exec: no node {args.node} (nodes: {', '.join(nodes)})")
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    os.execvp("nsenter", nodes[args.node]["nsenter"] + (command or ["/bin/sh"]))


# ----------------------------------------------------------------------------------------------
# Configuration

def write_configs(d, nm, subnet, netns, port, hw, plugstack, extra_conf):
    gateway = str(list(subnet.hosts())[0])
    hosts = list(subnet.hosts())
    host = socket.gethostname().split(".")[0]
    cluster = f"caisson{nm['tag']}"
    nodes = [f"node{k}" for k in range(1, len(netns) + 1)]
    lines = [
        "# Made by Tests/Fixtures/cluster.py",
        f"ClusterName={cluster}",
        f"SlurmctldHost={host}({gateway})",
        f"SlurmctldPort={port}",
        f"SlurmdPort={SLURMD_PORT}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={d}/munge/munge.socket.2",
        "SlurmUser=root",  # see Child
        "SlurmdUser=root",
        f"StateSaveLocation={d}/state",
        f"SlurmdSpoolDir={d}/spool/%n",
        f"SlurmctldPidFile={d}/run/slurmctld.pid",
        f"SlurmdPidFile={d}/run/slurmd-%n.pid",
        f"SlurmctldLogFile={d}/log/slurmctld.log",
        f"SlurmdLogFile={d}/log/slurmd-%n.log",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        f"PlugStackConfig={d}/etc/plugstack.conf",
        # The fake nodes share the machine's cores: task/affinity would pin every node's first
        # task to core 0, so no binding (CpuBind=none below, ConstrainCores=no in cgroup.conf).
        # Without a cgroup v1 freezer (e.g. a cgroup v2 host with no systemd to delegate a
        # subtree), proctrack/linuxproc and task/none.
        *(["ProctrackType=proctrack/cgroup", "TaskPlugin=task/cgroup"] if os.path.isdir("/sys/fs/cgroup/freezer")
          else ["ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none"]),
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        "SwitchType=switch/none",
        "MailProg=/bin/true",
        # Clusters running at once share /sys/fs/cgroup/*/slurm_nodeK/uid_U/job_J: disjoint job
        # ids keep one cluster's step cleanup from killing another's tasks. The subnet index is
        # unique among running clusters (and 0, so ids start at 1, when only one runs).
        f"FirstJobId={subnet.network_address.packed[2] * 100000 + 1}",
        "MpiDefault=none",
        "ReturnToService=2",
        "TmpFS=/tmp",  # private per node: mpi/pmix puts its spmix_appdir_* there
        "KillWait=2",
        "MinJobAge=60",
        "MessageTimeout=10",
        "SlurmctldTimeout=10",
        "SlurmdTimeout=30",
        "InactiveLimit=0",
        "Waittime=0",
        "UnkillableStepTimeout=60",
    ]
    for k, name in enumerate(nodes, start=1):
        lines.append(f"NodeName={name} NodeHostname={name} NodeAddr={hosts[9 + k]} {hw} CpuBind=none State=UNKNOWN")
    lines.append("PartitionName=all Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO")
    etc = os.path.join(d, "etc")
    with open(os.path.join(etc, "slurm.conf"), "w") as f:
        f.write("\n".join(lines) + "\n")
        if extra_conf:
            with open(extra_conf) as e:
                f.write(f"# --extra-conf {extra_conf}\n" + e.read().rstrip("\n") + "\n")
    with open(os.path.join(etc, "cgroup.conf"), "w") as f:
        f.write("CgroupPlugin=autodetect\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=no\n"
                "ConstrainRAMSpace=no\nConstrainSwapSpace=no\nConstrainDevices=no\n")
    if plugstack:
        shutil.copyfile(plugstack, os.path.join(etc, "plugstack.conf"))
    else:
        open(os.path.join(etc, "plugstack.conf"), "w").close()
    with open(os.path.join(etc, "hosts"), "w") as f:
        f.write(f"127.0.0.1\tlocalhost\n{gateway}\t{host} controller\n")
        for k, name in enumerate(nodes, start=1):
            f.write(f"{hosts[9 + k]}\t{name}\n")
    for name in os.listdir(etc):
        os.chmod(os.path.join(etc, name), 0o644)
    return cluster, gateway, host, nodes, [str(hosts[9 + k]) for k in range(1, len(nodes) + 1)]


def prepare_dirs(d):
    munge = pwd.getpwnam("munge")
    for sub in ("etc", "munge", "state", "spool", "log", "run", "shared"):
        path = os.path.join(d, sub)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.makedirs(path)
    os.chmod(d, 0o755)
    for sub in ("etc", "spool", "state", "log", "run"):
        os.chmod(os.path.join(d, sub), 0o755)
    os.chmod(os.path.join(d, "shared"), 0o1777)
    m = os.path.join(d, "munge")
    key = os.path.join(m, "munge.key")
    with open(key, "wb") as f:
        f.write(os.urandom(1024))
    for path, mode in ((m, 0o755), (key, 0o400)):
        os.chown(path, munge.pw_uid, munge.pw_gid)
        os.chmod(path, mode)


def check_user_access(d):
    """The test user runs srun: it must read slurm.conf and reach the munge socket and DIR/shared."""
    conf = os.path.join(d, "etc", "slurm.conf")
    sock = os.path.join(d, "munge", "munge.socket.2")
    shared = os.path.join(d, "shared")
    r = subprocess.run(["setpriv", f"--reuid={TEST_USER}", f"--regid={TEST_USER}", "--init-groups", "--",
                        "sh", "-c", f'test -r "{conf}" && test -w "{sock}" && test -w "{shared}" && test -x "{shared}"'],
                       stdin=subprocess.DEVNULL, env=clean_env())
    if r.returncode:
        raise Failure(f"{TEST_USER} cannot read {conf} or use {sock} or {shared}: every directory above {d} "
                      f"must be searchable by others (chmod o+x)")


# ----------------------------------------------------------------------------------------------
# Processes

class Child:
    """A daemon in the foreground, killed by the kernel if the supervisor dies (the parent-death
    signal survives exec but not a change of credentials: `as_user` does it in the same setpriv,
    and slurmctld runs as root, SlurmUser=root, for that reason)."""

    def __init__(self, name, args, out, env, as_user=None):
        self.name, self.out, self.log = name, out, out
        user = [f"--reuid={as_user}", f"--regid={as_user}", "--init-groups"] if as_user else []
        with open(out, "ab") as f:
            self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "SIGTERM", *user, "--", *args], stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=subprocess.STDOUT, env=env, close_fds=True)
        self.reported = False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_for(condition, deadline, what, children=(), interval=0.02):
    while True:
        for c in children:
            if c.proc.poll() is not None:
                raise Failure(f"{c.name} exited with status {c.proc.returncode} while waiting for {what}; "
                              f"{c.log}:\n{log_tail(c.log, 20)}" + (f"\n{c.out}:\n{log_tail(c.out, 20)}" if c.out != c.log else ""))
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(interval)


def connectable(address, port=None):
    family = socket.AF_UNIX if port is None else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(address if port is None else (address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def node_states(env):
    r = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env)
    if r.returncode:
        return {}
    return dict(line.split()[:2] for line in r.stdout.decode().splitlines() if len(line.split()) >= 2)


def ns_inode(pid, kind):
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def processes_in(namespaces):
    """Pids of processes in any of the given namespaces: {(kind, inode)}."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        for kind in ("net", "mnt", "uts"):
            ino = ns_inode(entry, kind)
            if ino is not None and (kind, ino) in namespaces:
                found.append(int(entry))
                break
    return found


CLIENTS = ("srun", "salloc", "sbatch", "sattach", "sbcast")


def clients_of(conf):
    """srun/salloc/... processes in the root namespaces that talk to this cluster (SLURM_CONF)."""
    found, needle = [], f"SLURM_CONF={conf}\0".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() not in CLIENTS:
                    continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read() + b"\0":
                    found.append(int(entry))
        except OSError:
            pass
    return found


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def remove_cgroups(node_names):
    """proctrack/task cgroup leave /sys/fs/cgroup/<controller>/slurm_<node> (cgroup v1) behind."""
    root = "/sys/fs/cgroup"
    try:
        controllers = os.listdir(root)
    except OSError:
        return
    for c in controllers:
        for node in node_names:
            top = os.path.join(root, c, f"slurm_{node}")
            if not os.path.isdir(top):
                continue
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def teardown(d, children=(), state=None):
    """Idempotent: stops everything a cluster in d may have left, from any process."""
    t0 = time.monotonic()
    nm = names(d)
    state = state if state is not None else (load_json(os.path.join(d, "state.json")) or {})
    registry = None
    if state.get("registry_dir"):
        registry = subprocess.Popen([sys.executable, os.path.join(HERE, "registry.py"), "stop", state["registry_dir"]],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    namespaces = {tuple(x) for x in state.get("namespaces", [])}
    out = run(["ip", "netns", "list"], check=False).stdout.decode()
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(nm["netns_prefix"]):
            try:
                namespaces.add(("net", os.stat(f"/run/netns/{name}").st_ino))
            except OSError:
                pass
    pids = [c.proc.pid for c in children]
    for name, pid in state.get("daemons", {}).items():
        if alive(pid) and d in cmdline(pid):
            pids.append(pid)
    inside = [p for p in processes_in(namespaces) if p not in pids]  # slurmstepd, job tasks, containers
    inside += clients_of(os.path.join(d, "etc", "slurm.conf"))
    killed, stubborn = kill_all(pids, inside)
    late = processes_in(namespaces)  # started while the daemons were stopping
    if late:
        killed += kill_all([], late)[0]
    for c in children:
        try:
            c.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    remove_network(nm)
    remove_cgroups(state.get("node_names", []))
    for path in (os.path.join(d, "cluster.json"), os.path.join(d, "munge", "munge.socket.2")):
        try:
            os.unlink(path)
        except OSError:
            pass
    if registry:
        registry.wait()
    return killed, stubborn, time.monotonic() - t0


# ----------------------------------------------------------------------------------------------
# start / supervisor

def bring_up(d, opts, children, state):
    t0 = time.monotonic()
    nm = names(d)
    ensure_prerequisites()
    prepare_dirs(d)
    hw = hardware()
    state.update({"dir": d, "supervisor": os.getpid(), "daemons": {}, "namespaces": [], "node_names": [],
                  "registry_dir": None})
    save_json(os.path.join(d, "state.json"), state)
    env = clean_env()
    logs = {"supervisor": os.path.join(d, "supervisor.log")}

    # munged: private key and socket, so that clusters do not share credentials or a daemon.
    m = os.path.join(d, "munge")
    sock = os.path.join(m, "munge.socket.2")
    logs["munged"] = os.path.join(d, "log", "munged.out")  # in the foreground, munged logs to stderr
    munged = Child("munged", ["munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={m}/munge.key",
                              f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log",
                              f"--seed-file={m}/munged.seed", "--num-threads=4"],
                   logs["munged"], env, as_user="munge")
    children.append(munged)
    state["daemons"]["munged"] = munged.proc.pid

    subnet, netns = make_network(nm, opts.nodes)
    port = free_port()
    cluster, gateway, host, node_names, addresses = write_configs(d, nm, subnet, netns, port, hw, opts.plugstack,
                                                                  opts.extra_conf)
    state["node_names"] = node_names
    save_json(os.path.join(d, "state.json"), state)
    conf = os.path.join(d, "etc", "slurm.conf")
    slurm_env = clean_env(SLURM_CONF=conf)
    deadline = time.monotonic() + READY_TIMEOUT
    wait_for(lambda: connectable(sock), deadline, f"munged to listen on {sock}", [munged])

    logs["slurmctld"] = os.path.join(d, "log", "slurmctld.log")
    ctld = Child("slurmctld", ["slurmctld", "-D", "-f", conf], os.path.join(d, "log", "slurmctld.out"), slurm_env)
    ctld.log = logs["slurmctld"]
    children.append(ctld)
    state["daemons"]["slurmctld"] = ctld.proc.pid
    wait_for(lambda: connectable("127.0.0.1", port), deadline, f"slurmctld to listen on port {port}", children)

    keep = [d] + [os.path.abspath(p) for p in opts.share]
    keep = sorted({p for p in keep if any(p == c or p.startswith(c + "/") for c in COVERED)}, key=len)
    nodes = []
    for name, ns, address in zip(node_names, netns, addresses):
        os.makedirs(os.path.join(d, "spool", name))
        spec = {"netns_path": f"/run/netns/{ns}", "hostname": name, "keep": keep,
                "hosts": os.path.join(d, "etc", "hosts"),
                "argv": [shutil.which("slurmd", path=PATH), "-D", "-N", name, "-f", conf], "env": slurm_env}
        logs[name] = os.path.join(d, "log", f"slurmd-{name}.log")
        c = Child(name, [sys.executable, SCRIPT, "_node", json.dumps(spec)],
                  os.path.join(d, "log", f"slurmd-{name}.out"), slurm_env)
        c.log = logs[name]
        children.append(c)
        state["daemons"][name] = c.proc.pid
        nodes.append({"name": name, "hostname": name, "address": address, "netns": ns,
                      "netns_path": f"/run/netns/{ns}", "veth": f"{nm['veth_prefix']}{len(nodes) + 1}",
                      "pid": c.proc.pid, "spool": os.path.join(d, "spool", name), "log": logs[name],
                      "nsenter": ["nsenter", "-t", str(c.proc.pid), "-m", "-u", "-n", "--"]})
    save_json(os.path.join(d, "state.json"), state)

    def all_idle():
        states = node_states(slurm_env)
        return all(states.get(n, "").rstrip("*~#$@+-") == "idle" for n in node_names) and states
    try:
        wait_for(all_idle, deadline, "every node to be idle", children, interval=0.05)
    except Failure as e:
        states = node_states(slurm_env)
        raise Failure(f"{e} (sinfo: {states or 'no answer'}); {logs['slurmctld']}:\n{log_tail(logs['slurmctld'], 20)}\n" +
                      "\n".join(f"{logs[n]}:\n{log_tail(logs[n], 10)}" for n in node_names))
    for c in children:
        if c.name in node_names:
            for kind in ("mnt", "uts"):
                ino = ns_inode(c.proc.pid, kind)
                if ino:
                    state["namespaces"].append([kind, ino])
    save_json(os.path.join(d, "state.json"), state)
    check_user_access(d)

    registry = None
    if opts.registry_dir:
        rdir = os.path.abspath(opts.registry_dir)
        state["registry_dir"] = rdir
        save_json(os.path.join(d, "state.json"), state)
        args = [sys.executable, os.path.join(HERE, "registry.py"), "start", rdir, "--host", gateway,
                "--watch-pid", str(os.getpid())]
        if opts.images:
            args += ["--images", os.path.abspath(opts.images)]
        r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode:
            raise Failure(f"registry.py start failed:\n{r.stderr.decode(errors='replace')}")
        registry = json.loads(r.stdout)
        registry = {"dir": rdir, "json": os.path.join(rdir, "registries.json"), **registry}

    info = {
        "dir": d, "slurm_conf": conf, "cluster_name": cluster,
        "env": {"SLURM_CONF": conf, "PATH": PATH},
        "user": TEST_USER, "shared": os.path.join(d, "shared"),
        "bridge": nm["bridge"], "bridge_address": gateway, "subnet": str(subnet),
        "controller": {"host": host, "address": gateway, "port": port, "pid": ctld.proc.pid},
        "nodes": nodes, "munge_socket": sock, "logs": logs, "registry": registry,
        "pids": {"supervisor": os.getpid(), "slurmctld": ctld.proc.pid, "munged": munged.proc.pid,
                 "slurmd": {n["name"]: n["pid"] for n in nodes}},
        "timings": {"bring_up_s": round(time.monotonic() - t0, 3)},
    }
    save_json(os.path.join(d, "cluster.json"), info)
    log(f"cluster up after {time.monotonic() - t0:.2f} s")
    return info


def supervise(d, opts, watch_fd, report_fd):
    children, state = [], {}

    def terminate(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, terminate)
    status = 0
    try:
        try:
            info = bring_up(d, opts, children, state)
            message = b"OK\n" + os.path.join(d, "cluster.json").encode() + b"\n"
        except Failure as e:
            message = f"cluster.py start: {e}\n".encode()
            info = None
        except Terminated:
            raise
        except Exception as e:
            import traceback
            message = f"cluster.py start: unexpected error: {e!r}\n{traceback.format_exc()}".encode()
            info = None
        if info is None:
            status = 1
            log(message.decode(errors="replace"))
            return status  # the finally clause tears down before the caller hears about it
        log("ready")
        try:
            os.write(report_fd, message)
        except OSError:
            pass
        os.close(report_fd)
        report_fd = None
        while True:
            ready, _, _ = select.select([watch_fd] if watch_fd is not None else [], [], [], 1.0)
            if ready:
                log("the watched process exited: stopping")
                return 0
            for c in children:
                if not c.reported and c.proc.poll() is not None:
                    c.reported = True
                    log(f"{c.name} exited with status {c.proc.returncode}; {c.log}:\n{log_tail(c.log, 20)}")
    except Terminated as e:
        log(f"{e}: stopping")
        status = 1 if report_fd is not None else 0
        message = f"cluster.py start: interrupted ({e})\n".encode()
        return status
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        killed, stubborn, took = teardown(d, children, state)
        log(f"stopped {killed} process(es) ({stubborn} with SIGKILL), network removed, in {took:.2f} s")
        if report_fd is not None:
            try:
                os.write(report_fd, message)
            except OSError:
                pass


def supervisor_alive(d):
    state = load_json(os.path.join(d, "state.json")) or {}
    pid = state.get("supervisor")
    if pid and alive(pid) and os.path.basename(SCRIPT) in cmdline(pid):
        return pid
    return None


def cmd_start(opts):
    d = os.path.abspath(opts.dir)
    if os.geteuid() != 0:
        sys.exit("cluster.py start: needs root (namespaces, bridge, slurmd)")
    if opts.nodes < 1 or opts.nodes > 200:
        sys.exit("cluster.py start: --nodes must be 1..200")
    for path in (opts.plugstack, opts.extra_conf):
        if path and not os.path.isfile(path):
            sys.exit(f"cluster.py start: {path} does not exist")
    if opts.images and not opts.registry_dir:
        sys.exit("cluster.py start: --images needs --registry-dir")
    os.makedirs(d, exist_ok=True)
    pid = supervisor_alive(d)
    if pid:
        sys.exit(f"cluster.py start: a cluster of {d} still runs (supervisor {pid}): run `cluster.py stop {d}` first")
    teardown(d)  # leftovers of a cluster whose supervisor was killed
    watch_fd = watch_descriptor("cluster.py", opts.watch_pid)
    # The supervisor's command line names DIR (so that `stop` can tell it is ours).
    return start_supervisor(d, "cluster.py", lambda write_fd: supervise(d, opts, watch_fd, write_fd),
                            watch_fd, chdir_root=True, on_silent_death=lambda: teardown(d))


def cmd_stop(opts):
    d = os.path.abspath(opts.dir)
    t0 = time.monotonic()
    pid = supervisor_alive(d)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.02)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    killed, stubborn, _ = teardown(d)
    print(f"stopped in {time.monotonic() - t0:.2f} s" + (f" ({killed} leftover process(es) killed)" if killed else ""))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a cluster (returns when every node is idle)")
    start.add_argument("dir")
    start.add_argument("--nodes", type=int, default=3)
    start.add_argument("--plugstack", help="copied to DIR/etc/plugstack.conf (default: empty)")
    start.add_argument("--extra-conf", help="appended to slurm.conf")
    start.add_argument("--share", action="append", default=[],
                       help="a host path under /tmp, /run or /dev/shm to keep visible in the nodes")
    start.add_argument("--watch-pid", type=int, default=None,
                       help="stop everything when this process exits (default: the caller of start; 0: never)")
    start.add_argument("--registry-dir", help="start registry.py there, listening on the bridge address")
    start.add_argument("--images", help="with --registry-dir: an images.py build output to push")
    stop = sub.add_parser("stop", help="stop the cluster of DIR and remove what it made")
    stop.add_argument("dir")
    ex = sub.add_parser("exec", help="run a command in a node's namespaces")
    ex.add_argument("dir")
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    node = sub.add_parser("_node", help=argparse.SUPPRESS)
    node.add_argument("spec")
    opts = parser.parse_args()
    return {"start": cmd_start, "stop": cmd_stop, "exec": cmd_exec, "_node": cmd_node}[opts.command](opts)


if __name__ == "__main__":
    sys.exit(main())
