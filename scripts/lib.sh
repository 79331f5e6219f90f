# Shared helpers for Caisson's scripts (sourced, not run).
set -euo pipefail

CAISSON_TEST_USER=${CAISSON_TEST_USER:-caissontest}

log() { printf '==> %s\n' "$*" >&2; }

# Swift lives in /opt/swift on the project's machines; nothing else is assumed.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        for dir in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            [ -x "$dir/swift" ] && export PATH="$dir:$PATH" && break
        done
    fi
    command -v swift >/dev/null 2>&1 || { echo "swift not found: install Swift 6 (https://swift.org/install) and put it on PATH" >&2; exit 1; }
}

# Installs Debian packages that are missing. Needs root; without it, names what is missing.
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# CI runs as root: the runtime must be exercised as an ordinary user, which we create here.
ensure_test_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id -u "$CAISSON_TEST_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$CAISSON_TEST_USER"
}

# Without udev /dev/fuse is 0600 and ordinary users cannot mount squashfuse; Debian's udev default is 0666.
ensure_fuse_access() {
    if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ]; then chmod 0666 /dev/fuse; fi
}

# Runs a command as the test user (or as yourself when not root), with a clean environment.
as_test_user() {
    if [ "$(id -u)" -eq 0 ]; then
        local home
        home=$(getent passwd "$CAISSON_TEST_USER" | cut -d: -f6)
        setpriv --reuid="$CAISSON_TEST_USER" --regid="$CAISSON_TEST_USER" --init-groups -- \
            env -i HOME="$home" USER="$CAISSON_TEST_USER" LOGNAME="$CAISSON_TEST_USER" \
            PATH=/usr/local/bin:/usr/bin:/bin TERM="${TERM:-dumb}" "$@"
    else
        "$@"
    fi
}

# A busybox-static root filesystem, the smallest useful image.
make_busybox_rootfs() {
    local root=$1
    rm -rf "$root"
    mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root,home,mnt,usr/bin}
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\n' > "$root/etc/group"
    printf 'NAME="Caisson demo (busybox)"\nID=busybox\n' > "$root/etc/os-release"
}

# What Tests/Fixtures/cluster.py (a Slurm cluster in namespaces) and the mpi test image need:
# Slurm 22.05 and munge, mpicc/OpenMPI 4.1 (mpi-bcast is compiled on the host), debootstrap.
CLUSTER_PACKAGES=(slurm-wlm munge iproute2 util-linux openmpi-bin libopenmpi-dev debootstrap skopeo docker-registry)
ensure_cluster_packages() {
    ensure_packages "${CLUSTER_PACKAGES[@]}"
}

# Runs a Slurm client as the test user against the cluster in DIR (made by cluster.py start),
# from DIR/shared, like a user on a login node: run_on_cluster DIR srun -N3 hostname
run_on_cluster() {
    local dir=$1
    shift
    (cd "$dir/shared" && as_test_user env SLURM_CONF="$dir/etc/slurm.conf" "$@")
}
