#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: install what is needed, build and
# install Caisson (runtime, image tools, Slurm plugin), serve a locally built image from a
# loopback registry, import it into one .sqsh and run it as an ordinary user; then bring up a
# real Slurm (munged, slurmctld, slurmd in network namespaces) with the plugin and run
# `srun --container-image=...` on it, on one node and across three.
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_swift
ensure_packages busybox-static util-linux passwd pkg-config libarchive-dev libsquashfs-dev squashfs-tools \
    squashfuse docker-registry skopeo apache2-utils openssl zstd python3 libslurm-dev
ensure_cluster_packages
ensure_test_user
ensure_fuse_access

out=${CAISSON_DEMO_DIR:-/var/tmp/caisson-demo}
mkdir -p "$out"
CAISSON_NO_MAN=1 PREFIX="$out/prefix" scripts/install.sh
caisson="$out/prefix/bin/caisson"
chmod -R a+rX "$out"

# as_test_user starts from an empty environment: pass on the settings this demo makes.
run() {
    printf '\n$ %s\n' "$*"
    as_test_user env ${CAISSON_INSECURE_REGISTRIES:+CAISSON_INSECURE_REGISTRIES=$CAISSON_INSECURE_REGISTRIES} \
        ${CAISSON_DATA_PATH:+CAISSON_DATA_PATH=$CAISSON_DATA_PATH} "$@"
}
run "$caisson" version
run "$caisson" check

# An image from a registry: built here from busybox-static, pushed to a loopback registry.
# (and the MPI image for the Slurm part: Debian minbase + OpenMPI, debootstrapped once per machine)
python3 Tests/Fixtures/images.py build "$out/images" --kinds default,mpi >/dev/null
python3 Tests/Fixtures/registry.py start "$out/registries" --images "$out/images" --watch-pid $$ >/dev/null
registry=$(python3 -c "import json; print(json.load(open('$out/registries/registries.json'))['open'])")
rm -rf "$out/work" && mkdir -p "$out/work" && chown "$CAISSON_TEST_USER" "$out/work" 2>/dev/null || true
cd "$out/work"
export CAISSON_INSECURE_REGISTRIES="$registry" CAISSON_DATA_PATH="$out/work/containers"
run "$caisson" import -o busybox.sqsh "docker://$registry/busybox:latest"
run "$caisson" start busybox.sqsh sh -c 'echo "inside as $(id -un) (uid $(id -u))"; touch /file || echo "the image is read-only"'
run "$caisson" start --root busybox.sqsh id
run "$caisson" start -e GREETING=hello busybox.sqsh sh -c 'echo "$GREETING from a container; exit 7"' || echo "(exit status $? came back from the container)"
run "$caisson" start --entrypoint busybox.sqsh 'echo "arguments replace the image Cmd"'
run "$caisson" create --name demo busybox.sqsh
run "$caisson" start --rw demo sh -c 'echo kept > /etc/note'
run "$caisson" list --fancy
run "$caisson" export -o demo.sqsh demo
run "$caisson" start demo.sqsh cat /etc/note
run "$caisson" bundle -o demo.run demo.sqsh
run ./demo.run sh -c 'echo "a bundle runs anywhere: $(cat /etc/note)"'
run "$caisson" remove demo
cd - >/dev/null
python3 Tests/Fixtures/registry.py stop "$out/registries" >/dev/null

# Slurm: three nodes in network namespaces on one bridge, the registry on the bridge address,
# and the plugin in plugstack.conf.
plugin="$out/prefix/lib/caisson/spank_caisson.so"
if [ ! -f "$plugin" ]; then
    printf '\ndemo done (the Slurm plugin is not built by this version): caisson installed in %s/prefix\n' "$out"
    exit 0
fi
printf 'required %s caisson=%s\n' "$plugin" "$caisson" > "$out/plugstack.conf"
python3 Tests/Fixtures/cluster.py stop "$out/cluster" >/dev/null 2>&1 || true
python3 Tests/Fixtures/cluster.py start "$out/cluster" --nodes 3 --plugstack "$out/plugstack.conf" \
    --registry-dir "$out/cluster-registries" --images "$out/images" --watch-pid $$ >/dev/null
bridge_registry=$(python3 -c "import json; print(json.load(open('$out/cluster/cluster.json'))['registry']['open'])")
slurm() { printf '\n$ %s\n' "$*"; run_on_cluster "$out/cluster" env CAISSON_INSECURE_REGISTRIES="$bridge_registry" "$@"; }
slurm srun --container-image="$bridge_registry#busybox:latest" cat /etc/os-release
slurm srun -N3 --container-image="$bridge_registry#busybox:latest" sh -c 'echo "$(hostname): task $SLURM_PROCID of $SLURM_NTASKS in $(cat /etc/os-release | head -1)"'
# MPI across the three nodes: OpenMPI in the image, Slurm's PMIx on the hosts; the broadcast
# checks every buffer and counts the hosts it ran on.
slurm srun -N3 --mpi=pmix --container-image="$bridge_registry#mpi:latest" mpi-bcast 100
python3 Tests/Fixtures/cluster.py stop "$out/cluster" >/dev/null
printf '\ndemo done: caisson installed in %s/prefix\n' "$out"
