#!/usr/bin/env bash
# Import of a ~570 MB, 4-layer image from a loopback registry, cold cache, side by side in one
# run, as an ordinary user:
#   caisson          caisson import (zstd level 3, the default), cold cache
#   caisson-gzip     caisson import --compression gzip (ch-convert's fixed setting)
#   caisson-warm     caisson import with every layer already cached
#   charliecloud     ch-image pull (TLS registry, --tls-no-verify) + ch-convert dir → squash
#                    (mksquashfs defaults: gzip, 64 KiB blocks; not configurable)
#   skopeo+umoci     skopeo copy → OCI layout, umoci unpack --rootless, mksquashfs zstd level 3
# and the floor of this pipeline on this machine: the slowest of
#   download         all layer blobs fetched in parallel with curl to /dev/null
#   decompress       all layers gunzipped to /dev/null, two at a time (2 cores)
#   mksquashfs       the final tree (umoci's unpack) packed with zstd level 3, 2 processors
# Prints hyperfine's table, ratios and output sizes. Not a test: nothing is asserted.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_packages docker-registry skopeo umoci squashfs-tools charliecloud hyperfine curl python3 debootstrap
ensure_test_user

work=${CAISSON_BENCH_DIR:-/var/tmp/caisson-bench-import}
runs=${RUNS:-3}
rm -rf "$work"; mkdir -p "$work"; chmod 755 "$work"
PREFIX="$work/prefix" scripts/install.sh >/dev/null 2>&1
ln -s "$work/prefix/bin/caisson" "$work/caisson"

base=/var/cache/caisson-test/debootstrap-bookworm
[ -e "$base/etc/debian_version" ] || { debootstrap --variant=minbase bookworm "$base.tmp" http://deb.debian.org/debian >/dev/null && mv "$base.tmp" "$base"; } || base=
log "building the image"
python3 bench/make-big-image.py "$work/layout" $base
python3 Tests/Fixtures/registry.py start "$work/registries" --watch-pid $$ >/dev/null
reg() { python3 -c "import json;print(json.load(open('$work/registries/registries.json'))['$1'])"; }
open=$(reg open); tls=$(reg tls)
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:latest" "docker://$open/big:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:latest" "docker://$tls/big:latest"
chown -R "$CAISSON_TEST_USER" "$work"

u() { printf 'setpriv --reuid=%s --regid=%s --init-groups -- env -i HOME=%s USER=%s PATH=/usr/bin:/bin CAISSON_CACHE_PATH=%s/cache CAISSON_INSECURE_REGISTRIES=%s %s' \
        "$CAISSON_TEST_USER" "$CAISSON_TEST_USER" "$work" "$CAISSON_TEST_USER" "$work" "$open" "$*"; }
blobs=$(python3 - "$work/layout" <<'PY'
import json, sys
root = sys.argv[1]
index = json.load(open(f"{root}/index.json"))
manifest = json.load(open(f"{root}/blobs/sha256/{index['manifests'][0]['digest'][7:]}"))
print(" ".join(l["digest"] for l in manifest["layers"]))
PY
)
cat > "$work/download.sh" <<EOS
for d in $blobs; do curl -s -o /dev/null http://$open/v2/big/blobs/\$d & done; wait
EOS
cat > "$work/decompress.sh" <<EOS
printf '%s\n' $blobs | sed 's/sha256://' | xargs -P 2 -I{} sh -c 'gzip -dc < $work/layout/blobs/sha256/{} > /dev/null'
EOS
cat > "$work/umoci.sh" <<EOS
set -e; rm -rf $work/sk $work/un $work/sk.sqsh
skopeo copy --quiet --src-tls-verify=false docker://$open/big:latest oci:$work/sk:latest
umoci unpack --rootless --image $work/sk:latest $work/un
mksquashfs $work/un/rootfs $work/sk.sqsh -comp zstd -Xcompression-level 3 -processors 2 -noappend -quiet >/dev/null
EOS
cat > "$work/charliecloud.sh" <<EOS
set -e; rm -rf $work/ch $work/ch.sqfs
export CH_IMAGE_STORAGE=$work/ch
ch-image --no-cache pull --tls-no-verify $tls/big:latest big >/dev/null
ch-convert -i ch-image -o squash big $work/ch.sqfs >/dev/null 2>&1
EOS
chmod +x "$work"/*.sh; chown "$CAISSON_TEST_USER" "$work"/*.sh
# the final tree for the mksquashfs floor
as_test_user sh "$work/umoci.sh"

# hyperfine pairs the Nth --prepare with the Nth command.
hyperfine --runs "$runs" --export-json "$work/import.json" \
    --prepare "rm -rf $work/cache $work/c.sqsh" --prepare "rm -rf $work/cache $work/g.sqsh" --prepare "rm -f $work/w.sqsh" \
    --prepare "rm -rf $work/ch $work/ch.sqfs" --prepare "rm -rf $work/sk $work/un $work/sk.sqsh" --prepare true --prepare true \
    --prepare "rm -f $work/floor.sqsh" \
    -n caisson "$(u "$work/caisson" import -q -o "$work/c.sqsh" "docker://$open/big:latest")" \
    -n caisson-gzip "$(u "$work/caisson" import -q --compression gzip -o "$work/g.sqsh" "docker://$open/big:latest")" \
    -n caisson-warm "$(u "$work/caisson" import -q -o "$work/w.sqsh" "docker://$open/big:latest")" \
    -n charliecloud "$(u sh "$work/charliecloud.sh")" \
    -n skopeo+umoci "$(u sh "$work/umoci.sh")" \
    -n floor-download "$(u sh "$work/download.sh")" \
    -n floor-decompress "$(u sh "$work/decompress.sh")" \
    -n floor-mksquashfs "$(u mksquashfs "$work/un/rootfs" "$work/floor.sqsh" -comp zstd -Xcompression-level 3 -processors 2 -noappend -quiet)"

python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
r = {x["command"]: x for x in json.load(open(f"{work}/import.json"))["results"]}
floor_name = max(("floor-download", "floor-decompress", "floor-mksquashfs"), key=lambda n: r[n]["median"])
floor = r[floor_name]["median"]
sizes = {"caisson": "c.sqsh", "caisson-gzip": "g.sqsh", "caisson-warm": "w.sqsh", "charliecloud": "ch.sqfs",
         "skopeo+umoci": "sk.sqsh", "floor-mksquashfs": "floor.sqsh"}
print(f"\nfloor = {floor_name} ({floor:.2f} s)\n")
print("| command | median (s) | min–max (s) | ratio to floor | ratio to caisson | output (MB) |")
print("|---|---|---|---|---|---|")
for name, x in r.items():
    out = sizes.get(name)
    size = f"{os.path.getsize(os.path.join(work, out)) / 1e6:.0f}" if out and os.path.exists(os.path.join(work, out)) else ""
    print(f"| {name} | {x['median']:.2f} | {x['min']:.2f}–{x['max']:.2f} | {x['median']/floor:.2f} | {x['median']/r['caisson']['median']:.2f} | {size} |")
PY
python3 Tests/Fixtures/registry.py stop "$work/registries" >/dev/null
