#!/usr/bin/env bash
# Start latency of `caisson start ROOTFS true` beside its peers, in one hyperfine run, as an
# ordinary user, same busybox rootfs and comparable mounts:
#   caisson   – release build, -static-stdlib (what `make install` ships)
#   bwrap     – bubblewrap: user namespace, rootfs read-only, /proc /sys /dev bound, tmpfs /tmp
#   ch-run    – charliecloud 0.31 on the same directory
#   unshare   – util-linux `unshare -Urm` + chroot: the namespace floor with no mounts
#   exec      – /bin/true with no container at all
# Prints hyperfine's table and the ratios to bwrap. Not a test: no thresholds are asserted.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_packages busybox-static bubblewrap charliecloud hyperfine util-linux passwd
ensure_test_user

work=${CAISSON_BENCH_DIR:-/var/tmp/caisson-bench}
mkdir -p "$work"
swift build -c release -Xswiftc -static-stdlib --product caisson >/dev/null
install -m 0755 "$(swift build -c release -Xswiftc -static-stdlib --show-bin-path)/caisson" "$work/caisson"
make_busybox_rootfs "$work/rootfs"
[ "$(id -u)" -eq 0 ] && chown -R "$CAISSON_TEST_USER:$(id -gn "$CAISSON_TEST_USER")" "$work" && chmod 755 "$work"
R="$work/rootfs"
runs=${RUNS:-200}

as_test_user hyperfine -N --warmup 20 --runs "$runs" --export-markdown "$work/start-latency.md" --export-json "$work/start-latency.json" \
    -n caisson "$work/caisson start $R /bin/true" \
    -n bwrap "bwrap --unshare-user --ro-bind $R / --bind /proc /proc --ro-bind /sys /sys --dev-bind /dev /dev --tmpfs /tmp /bin/true" \
    -n ch-run "ch-run $R -- /bin/true" \
    -n unshare "unshare -Urm /usr/sbin/chroot $R /bin/true" \
    -n exec "$R/bin/true"

python3 - "$work/start-latency.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
base = results["bwrap"]["median"]
print("\n| command | median (ms) | mean ± σ (ms) | ratio to bwrap (median) |")
print("|---|---|---|---|")
for name, r in results.items():
    print(f"| {name} | {r['median']*1e3:.2f} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} | {r['median']/base:.2f} |")
PY
