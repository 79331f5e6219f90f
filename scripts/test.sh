#!/usr/bin/env bash
# Runs every test: unit tests and end-to-end tests that drive the real binary as an ordinary user.
# On a fresh Debian 12 machine, as root, it installs what the tests need first.
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_swift
ensure_packages busybox-static gcc libc6-dev util-linux passwd pkg-config libarchive-dev libsquashfs-dev \
    squashfs-tools squashfs-tools-ng squashfuse docker-registry skopeo umoci apache2-utils openssl zstd debootstrap python3 \
    libslurm-dev
# The Slurm plugin's tests start a 3-node cluster (Tests/Fixtures/cluster.py) with an MPI image.
ensure_cluster_packages
ensure_test_user
ensure_fuse_access

log "building"
swift build --build-tests
log "testing (end-to-end tests run caisson as ${CAISSON_TEST_USER} when started as root)"
swift test --skip-build
