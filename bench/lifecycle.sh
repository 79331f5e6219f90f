#!/usr/bin/env bash
# Image vs unpacked container, side by side with charliecloud, in one run, as an ordinary user:
#   start      `caisson start IMAGE.sqsh true` (squashfuse + overlay), `caisson start NAME true`
#              (unpacked by `caisson create`), `ch-run IMAGE.sqfs -- true` and `ch-run DIR -- true`
#   create     `caisson create` vs `unsquashfs -no-xattrs` of the same image
#   workload   read every file of the image (metadata + data) and import many Python modules,
#              inside the container from the .sqsh, from the unpacked container, and on the host
# Image: Debian bookworm minbase + python3 (debootstrap, cached in /var/cache/caisson-test),
# squashfs zstd level 3, 128 KiB blocks. Prints the tables and ratios; asserts nothing.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_packages debootstrap squashfs-tools squashfuse charliecloud hyperfine util-linux passwd python3
ensure_test_user
ensure_fuse_access

work=${CAISSON_BENCH_DIR:-/var/tmp/caisson-bench-lifecycle}
tree=/var/cache/caisson-test/debootstrap-bookworm-python
runs=${RUNS:-100}
heavy_runs=${HEAVY_RUNS:-5}
mkdir -p "$work"
if [ ! -x "$tree/usr/bin/python3" ]; then
    log "debootstrap bookworm minbase + python3 into $tree (once)"
    rm -rf "$tree.partial"
    debootstrap --variant=minbase --include=python3 bookworm "$tree.partial" >"$work/debootstrap.log" 2>&1
    rm -rf "$tree.partial"/var/cache/apt/archives/*.deb "$tree.partial"/var/lib/apt/lists/*
    mv "$tree.partial" "$tree"
fi
log "building release binaries"
swift build -c release -Xswiftc -static-stdlib --product caisson >/dev/null
swift build -c release -Xswiftc -static-stdlib --product caisson-import >/dev/null
bin=$(swift build -c release -Xswiftc -static-stdlib --show-bin-path)
install -m 0755 "$bin/caisson" "$bin/caisson-import" "$work/"
image="$work/debian.sqsh"
rm -f "$image"
mksquashfs "$tree" "$image" -comp zstd -Xcompression-level 3 -all-root -no-xattrs -quiet -no-progress >/dev/null
chmod 644 "$image"
ln -sf debian.sqsh "$work/debian.sqfs"   # ch-run wants the .sqfs suffix
chown -R "$CAISSON_TEST_USER:$(id -gn "$CAISSON_TEST_USER")" "$work"
chmod 755 "$work"
export CAISSON_DATA_PATH="$work/data" CAISSON_RUNTIME_PATH="$work/run"
C="$work/caisson"

as_test_user env CAISSON_DATA_PATH="$CAISSON_DATA_PATH" "$C" remove -f bench >/dev/null 2>&1 || true
as_test_user env CAISSON_DATA_PATH="$CAISSON_DATA_PATH" "$C" create -q --name bench "$image" 2>/dev/null
rm -rf "$work/chdir"
# unsquashfs exits non-zero when it cannot make the image's device nodes, as an ordinary user.
as_test_user unsquashfs -q -no-xattrs -d "$work/chdir" "$image" >/dev/null 2>&1 || true

summary() {
    python3 - "$@" <<'PY'
import json, sys
path, base = sys.argv[1], sys.argv[2]
results = {r["command"]: r for r in json.load(open(path))["results"]}
b = results[base]["median"]
print(f"\n| command | median | mean ± σ | ratio to {base} |")
print("|---|---|---|---|")
for name, r in results.items():
    unit, scale = ("ms", 1e3) if r["median"] < 1 else ("s", 1)
    print(f"| {name} | {r['median']*scale:.2f} {unit} | {r['mean']*scale:.2f} ± {r['stddev']*scale:.2f} {unit} | {r['median']/b:.2f} |")
PY
}
E="env CAISSON_DATA_PATH=$CAISSON_DATA_PATH CAISSON_RUNTIME_PATH=$CAISSON_RUNTIME_PATH USER=$CAISSON_TEST_USER"

log "start latency ($runs runs)"
as_test_user $E hyperfine -N --warmup 10 --runs "$runs" --export-json "$work/start.json" \
    -n "caisson start NAME" "$C start bench /bin/true" \
    -n "caisson start IMAGE.sqsh" "$C start $image /bin/true" \
    -n "ch-run DIR" "ch-run $work/chdir -- /bin/true" \
    -n "ch-run IMAGE.sqfs" "ch-run $work/debian.sqfs -- /bin/true" >/dev/null
summary "$work/start.json" "caisson start NAME"

log "create vs unsquashfs ($heavy_runs runs)"
as_test_user $E hyperfine -i --warmup 1 --runs "$heavy_runs" --export-json "$work/create.json" \
    -n "caisson create" --prepare "$C remove -f made >/dev/null 2>&1; true" "$C create -q --name made $image 2>/dev/null" \
    -n "unsquashfs" --prepare "rm -rf $work/unsq" "unsquashfs -q -no-xattrs -d $work/unsq $image 2>/dev/null" >/dev/null
summary "$work/create.json" "unsquashfs"
echo "image: $(du -b "$image" | cut -f1) bytes; unpacked: $(du -sb "$work/chdir" | cut -f1) bytes, $(find "$work/chdir" | wc -l) entries"

walk='find / -xdev -type f -readable -exec cat {} + > /dev/null 2>&1; true'
hostwalk="find $tree -xdev -type f -readable -exec cat {} + > /dev/null 2>&1; true"
py='python3 -c "import json, email.parser, http.client, asyncio, decimal, xml.etree.ElementTree, unittest, logging, argparse, sqlite3, urllib.request, csv, tarfile, zipfile, ssl, pydoc, multiprocessing, concurrent.futures"'
log "metadata-heavy workloads ($heavy_runs runs)"
as_test_user $E hyperfine --warmup 1 --runs "$heavy_runs" --export-json "$work/walk.json" \
    -n "read every file: IMAGE.sqsh" "$C start $image sh -c '$walk'" \
    -n "read every file: NAME" "$C start bench sh -c '$walk'" \
    -n "read every file: host" "sh -c '$hostwalk'" >/dev/null
summary "$work/walk.json" "read every file: host"
as_test_user $E hyperfine --warmup 2 --runs $((heavy_runs * 4)) --export-json "$work/python.json" \
    -n "python imports: IMAGE.sqsh" "$C start $image $py" \
    -n "python imports: NAME" "$C start bench $py" \
    -n "python imports: host" "$py" >/dev/null
summary "$work/python.json" "python imports: host"
