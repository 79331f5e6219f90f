#!/usr/bin/env bash
# Caisson's Slurm plugin against plain Slurm, on one real 3-node cluster (Tests/Fixtures/cluster.py:
# munged, slurmctld and three slurmd, each in its own network/UTS/mount namespace on a bridge, with
# Debian's docker-registry on the bridge address serving images built here), as an ordinary user:
#   - `srun -N3 true` plain, vs `srun -N3 --container-image=REGISTRY#busybox:latest true` warm
#     (image cached on the nodes) and cold (every node's cache emptied before each run), and the
#     same for the 55 MB MPI image (Debian minbase + OpenMPI);
#   - MPI_Bcast latency of Tests/Fixtures/mpi-bcast.c, 1 B to 16 KiB, `srun -N3 --mpi=pmix`, the
#     same binary on the hosts (from the shared directory) and inside the containers, alternated
#     run by run so that drift on the machine hits both sides alike; barrier-free and with OSU's
#     per-iteration barrier (-b); median over RUNS_MPI runs of ITERATIONS broadcasts each.
# Release build with the static stdlib, installed to a prefix as install.sh does. Not a test: no
# thresholds are asserted. Needs root (namespaces, bridge, slurmd); the first run debootstraps
# the MPI image's base tree (Debian mirror needed once, then cached in /var/cache/caisson-test).
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "slurm.sh: run as root" >&2; exit 1; }
ensure_swift
ensure_packages hyperfine python3 libslurm-dev squashfuse
ensure_cluster_packages
ensure_test_user
ensure_fuse_access

work=${CAISSON_BENCH_DIR:-/var/tmp/caisson-bench}/slurm
runs=${RUNS:-30}
runs_cold=${RUNS_COLD:-10}
runs_mpi=${RUNS_MPI:-12}
iterations=${ITERATIONS:-2000}
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work" "$(dirname "$work")"

CAISSON_NO_MAN=1 PREFIX="$work/prefix" scripts/install.sh >/dev/null
chmod -R a+rX "$work/prefix"
python3 Tests/Fixtures/images.py build "$work/images" --kinds busybox,mpi >/dev/null
# user_paths: the cold runs point CAISSON_CACHE_PATH at an empty directory.
printf 'required %s caisson=%s user_paths=CAISSON_CONFIG_PATH,CAISSON_CACHE_PATH\n' \
    "$work/prefix/lib/caisson/spank_caisson.so" "$work/prefix/bin/caisson" > "$work/plugstack.conf"

cluster="$work/cluster"
start=$(date +%s.%N)
python3 Tests/Fixtures/cluster.py start "$cluster" --nodes 3 --plugstack "$work/plugstack.conf" \
    --registry-dir "$work/registries" --images "$work/images" --watch-pid $$ >/dev/null
up=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
trap 'python3 Tests/Fixtures/cluster.py stop "$cluster" >/dev/null' EXIT
registry=$(python3 -c "import json; print(json.load(open('$cluster/cluster.json'))['registry']['open'])")
shared="$cluster/shared"
install -m 0755 "$work/images/mpi-bcast" "$shared/mpi-bcast"
install -d -m 0777 "$shared/results"
# Every node shares one cache path here (the nodes share the host's file systems); emptying it
# empties every node's cache. The image cache is what makes a step warm or cold.
cold_cache="$shared/cold-cache"

on_cluster() { run_on_cluster "$cluster" env CAISSON_INSECURE_REGISTRIES="$registry" "$@"; }
busybox="--container-image=$registry#busybox:latest"
mpi="--container-image=$registry#mpi:latest"

echo "cluster: 3 nodes, bring-up $up s (cluster.py start, until every node is idle)"
# The first container step imports both images into the warm cache and checks the plugin works.
on_cluster srun -N3 "$busybox" true
on_cluster srun -N3 "$mpi" true

on_cluster hyperfine -N --warmup 3 --runs "$runs" --export-json "$shared/results/warm.json" \
    -n "plain" "srun -N3 true" \
    -n "warm busybox" "srun -N3 $busybox true" \
    -n "warm mpi" "srun -N3 $mpi true" >/dev/null
on_cluster env CAISSON_CACHE_PATH="$cold_cache" hyperfine -N --runs "$runs_cold" --prepare "rm -rf $cold_cache" \
    --export-json "$shared/results/cold.json" \
    -n "cold busybox" "srun -N3 $busybox true" \
    -n "cold mpi" "srun -N3 $mpi true" >/dev/null
# The cold runs must have used (and filled) the emptied cache, or they were warm runs.
[ -n "$(ls -A "$cold_cache/images" 2>/dev/null)" ] || { echo "slurm.sh: the cold runs did not use $cold_cache" >&2; exit 1; }

for i in $(seq "$runs_mpi"); do
    for mode in free barrier; do
        flag=; [ $mode = barrier ] && flag=-b
        on_cluster env OMPI_MCA_mpi_yield_when_idle=1 srun -N3 --mpi=pmix ./mpi-bcast $flag "$iterations" \
            > "$work/mpi-host-$mode-$i.out" 2>&1 || { cat "$work/mpi-host-$mode-$i.out"; exit 1; }
        on_cluster env OMPI_MCA_mpi_yield_when_idle=1 srun -N3 --mpi=pmix "$mpi" mpi-bcast $flag "$iterations" \
            > "$work/mpi-container-$mode-$i.out" 2>&1 || { cat "$work/mpi-container-$mode-$i.out"; exit 1; }
    done
done
cp "$shared/results/"*.json "$work/"

python3 - "$work" <<'PY'
import glob, json, os, statistics, sys
work = sys.argv[1]
times = {}
for name in ("warm", "cold"):
    for r in json.load(open(f"{work}/{name}.json"))["results"]:
        times[r["command"]] = r["times"]
plain = statistics.median(times["plain"])
print("\n| srun -N3 … true | runs | median (ms) | mean ± σ (ms) | min … max (ms) | above plain (ms) |")
print("|---|---|---|---|---|---|")
for name, t in times.items():
    m = statistics.median(t)
    print(f"| {name} | {len(t)} | {m*1e3:.1f} | {statistics.mean(t)*1e3:.1f} ± {statistics.stdev(t)*1e3:.1f} "
          f"| {min(t)*1e3:.1f} … {max(t)*1e3:.1f} | {'' if name == 'plain' else f'{(m - plain)*1e3:+.1f}'} |")

results, summaries = {}, set()
for path in glob.glob(f"{work}/mpi-*.out"):
    where, mode = os.path.basename(path)[:-4].split("-")[1:3]
    for line in open(path):
        f = line.split()
        if f[:2] == ["bcast", "ok"]:
            summaries.add(" ".join(f[2:]))
        elif len(f) == 3 and f[0] == "bcast":
            results.setdefault((mode, int(f[1])), {}).setdefault(where, []).append(float(f[2]))
print(f"\nMPI_Bcast, srun -N3 --mpi=pmix ({'; '.join(sorted(summaries))}), median over runs (µs):\n")
print("| mode | size (B) | host | container | ratio | host min … max | container min … max | runs |")
print("|---|---|---|---|---|---|---|---|")
for (mode, size), v in sorted(results.items()):
    h, c = statistics.median(v["host"]), statistics.median(v["container"])
    print(f"| {mode} | {size} | {h:.1f} | {c:.1f} | {c/h:.2f} | {min(v['host']):.1f} … {max(v['host']):.1f} "
          f"| {min(v['container']):.1f} … {max(v['container']):.1f} | {len(v['host'])} |")
PY
