#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: install what is needed, build and
# install Caisson, make a small image, and run containers from it as an ordinary user.
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_swift
ensure_packages busybox-static util-linux passwd
ensure_test_user
ensure_fuse_access

out=${CAISSON_DEMO_DIR:-/var/tmp/caisson-demo}
mkdir -p "$out"
PREFIX="$out/prefix" scripts/install.sh
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
printf '\ndemo done: caisson installed in %s/prefix\n' "$out"
