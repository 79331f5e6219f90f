#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: install what is needed, build and
# install Caisson, serve a locally built image from a loopback registry, import it into one
# .sqsh file and run containers from it as an ordinary user. (Starting straight from the .sqsh
# and running under Slurm come with the lifecycle and Slurm milestones; until then the image is
# unpacked with unsquashfs.)
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_swift
ensure_packages busybox-static util-linux passwd pkg-config libarchive-dev libsquashfs-dev squashfs-tools \
    docker-registry skopeo apache2-utils openssl zstd python3
ensure_test_user
ensure_fuse_access

out=${CAISSON_DEMO_DIR:-/var/tmp/caisson-demo}
mkdir -p "$out"
CAISSON_NO_MAN=1 PREFIX="$out/prefix" scripts/install.sh
caisson="$out/prefix/bin/caisson"
make_busybox_rootfs "$out/rootfs"
chmod -R a+rX "$out"
[ "$(id -u)" -eq 0 ] && chown -R "$CAISSON_TEST_USER:$(id -gn "$CAISSON_TEST_USER")" "$out/rootfs"

run() { printf '\n$ %s\n' "$*"; as_test_user "$@"; }
run "$caisson" version
run "$caisson" check
run "$caisson" start "$out/rootfs" sh -c 'cat /etc/os-release; echo "inside as $(id -un) (uid $(id -u))"; touch /file || echo "the image is read-only"'
run "$caisson" start --root "$out/rootfs" id
run "$caisson" start -m /etc/debian_version:/host/debian_version:ro "$out/rootfs" cat /host/debian_version
run "$caisson" start -e GREETING=hello "$out/rootfs" sh -c 'echo "$GREETING from a container; exit 7"' || echo "(exit status $? came back from the container)"

# An image from a registry: built here from busybox-static, pushed to a loopback registry.
python3 Tests/Fixtures/images.py build "$out/images" >/dev/null
python3 Tests/Fixtures/registry.py start "$out/registries" --images "$out/images" --watch-pid $$ >/dev/null
registry=$(python3 -c "import json; print(json.load(open('$out/registries/registries.json'))['open'])")
rm -rf "$out/work" && mkdir -p "$out/work" && chown "$CAISSON_TEST_USER" "$out/work" 2>/dev/null || true
cd "$out/work"
run env CAISSON_INSECURE_REGISTRIES="$registry" "$caisson" import "docker://$registry/busybox:latest"
run env CAISSON_INSECURE_REGISTRIES="$registry" "$caisson" digest "docker://$registry/busybox:latest"
run unsquashfs -q -d "$out/work/busybox" "$out/work/busybox+latest.sqsh"
run "$caisson" start "$out/work/busybox"
run "$caisson" start --entrypoint "$out/work/busybox" 'echo "arguments replace the image Cmd: $GREETING"'
cd - >/dev/null
python3 Tests/Fixtures/registry.py stop "$out/registries" >/dev/null
printf '\ndemo done: caisson installed in %s/prefix\n' "$out"
