#!/usr/bin/env bash
# The floor a Slurm container plugin adds to: a bare 3-node cluster (Tests/Fixtures/cluster.py,
# slurmd in network/UTS/mount namespaces on this machine), no SPANK plugin, no container.
#   - cluster bring-up and teardown time
#   - `srun -N1 true` and `srun -N3 true` (hyperfine, as the test user, from the shared directory)
#   - MPI_Bcast latency of Tests/Fixtures/mpi-bcast.c (host build, `srun -N3 --mpi=pmix`,
#     OMPI_MCA_mpi_yield_when_idle=1), barrier-free and with OSU's per-iteration barrier (-b),
#     median of RUNS_MPI runs per message size
# Not a test: no thresholds are asserted. Needs root (namespaces, bridge, slurmd).
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "slurm-baseline.sh: run as root" >&2; exit 1; }
ensure_cluster_packages
ensure_packages hyperfine python3
ensure_test_user

work=${CAISSON_BENCH_DIR:-/var/tmp/caisson-bench}/slurm-baseline
runs=${RUNS:-20}
runs_mpi=${RUNS_MPI:-3}
iterations=${ITERATIONS:-1000}
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work" "$(dirname "$work")"
cluster="$work/cluster"

start=$(date +%s.%N)
python3 Tests/Fixtures/cluster.py start "$cluster" --watch-pid $$ >/dev/null
up=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
trap 'python3 Tests/Fixtures/cluster.py stop "$cluster" >/dev/null' EXIT
mpicc -O2 -o "$cluster/shared/mpi-bcast" Tests/Fixtures/mpi-bcast.c
chmod 755 "$cluster/shared/mpi-bcast"

echo "cluster: 3 nodes, bring-up $up s (cluster.py start, until every node is idle)"
run_on_cluster "$cluster" hyperfine -N --warmup 3 --runs "$runs" --export-json "$cluster/shared/srun.json" \
    -n "srun -N1 true" "srun -N1 true" -n "srun -N3 true" "srun -N3 true" >/dev/null

for i in $(seq "$runs_mpi"); do
    for mode in free barrier; do
        flag=; [ $mode = barrier ] && flag=-b
        run_on_cluster "$cluster" env OMPI_MCA_mpi_yield_when_idle=1 srun -N3 --mpi=pmix ./mpi-bcast $flag "$iterations" \
            > "$work/mpi-$mode-$i.out" || { cat "$work/mpi-$mode-$i.out"; exit 1; }
    done
done

cp "$cluster/shared/srun.json" "$work/srun.json"
python3 - "$work" "$runs_mpi" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
print("\n| command | median (ms) | mean ± σ (ms) | min … max (ms) |")
print("|---|---|---|---|")
for r in json.load(open(f"{work}/srun.json"))["results"]:
    print(f"| {r['command']} | {r['median']*1e3:.1f} | {r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} "
          f"| {r['min']*1e3:.1f} … {r['max']*1e3:.1f} |")
sizes, summary = {}, set()
for mode in ("free", "barrier"):
    for i in range(1, runs + 1):
        for line in open(f"{work}/mpi-{mode}-{i}.out"):
            f = line.split()
            if f[:2] == ["bcast", "ok"]:
                summary.add(" ".join(f[2:]))
            elif len(f) == 3 and f[0] == "bcast":
                sizes.setdefault(int(f[1]), {}).setdefault(mode, []).append(float(f[2]))
print(f"\nMPI_Bcast, srun -N3 --mpi=pmix ({', '.join(sorted(summary))}), median of {runs} runs (all runs):\n")
print("| size (B) | barrier-free (µs) | with barrier, -b (µs) |")
print("|---|---|---|")
show = lambda v: f"{statistics.median(v):.1f} ({' '.join(f'{x:.1f}' for x in v)})"
for size, modes in sorted(sizes.items()):
    print(f"| {size} | {show(modes['free'])} | {show(modes['barrier'])} |")
PY
stop=$(date +%s.%N)
python3 Tests/Fixtures/cluster.py stop "$cluster" >/dev/null
trap - EXIT
python3 -c "print(f'\nteardown: {$(date +%s.%N) - $stop:.2f} s (cluster.py stop)')"
