#!/usr/bin/env bash
# Builds release binaries linked with -static-stdlib (compute nodes have no Swift runtime) and
# installs them with the configuration tree: PREFIX/bin/caisson, PREFIX/libexec/caisson/caisson-import
# (import, digest, cache), PREFIX/lib/caisson/spank_caisson.so (the Slurm plugin, when Slurm's spank.h
# is installed: Debian's libslurm-dev), PREFIX/etc/caisson/{caisson.conf,hooks.d,mounts.d,environ.d,
# plugstack.conf.d/caisson.conf}. PREFIX=/usr installs the configuration in /etc/caisson.
cd "$(dirname "$0")/.."
. scripts/lib.sh
PREFIX=${PREFIX:-${1:-/usr/local}}
DESTDIR=${DESTDIR:-}
ensure_swift

log "building release (static Swift runtime)"
swift build -c release -Xswiftc -static-stdlib --product caisson
swift build -c release -Xswiftc -static-stdlib --product caisson-import
# The plugin is loaded by srun, sbatch, salloc, slurmd and slurmstepd on nodes without a Swift
# runtime: linked with the static stdlib, it needs only glibc (and the Slurm process's symbols).
plugin=
if [ -f /usr/include/slurm/spank.h ]; then
    swift build -c release -Xswiftc -static-stdlib --product spank_caisson
    plugin=yes
else
    log "Slurm plugin skipped: slurm/spank.h not found (Debian: apt install libslurm-dev)"
fi
bindir=$(swift build -c release -Xswiftc -static-stdlib --show-bin-path)

sysconf="$PREFIX/etc/caisson"
[ "$PREFIX" = /usr ] && sysconf=/etc/caisson
install -D -m 0755 "$bindir/caisson" "$DESTDIR$PREFIX/bin/caisson"
# The image tools: a separate program so that `caisson start` never loads the network stack.
install -D -m 0755 "$bindir/caisson-import" "$DESTDIR$PREFIX/libexec/caisson/caisson-import"
if [ -n "$plugin" ]; then
    install -D -m 0755 "$bindir/libspank_caisson.so" "$DESTDIR$PREFIX/lib/caisson/spank_caisson.so"
    install -d -m 0755 "$DESTDIR$sysconf/plugstack.conf.d"
    # An example for plugstack.conf, with this install's paths; never overwrites the admin's copy.
    [ -e "$DESTDIR$sysconf/plugstack.conf.d/caisson.conf" ] ||
        sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@SYSCONF@|$sysconf|g" etc/caisson/plugstack.conf.d/caisson.conf \
            > "$DESTDIR$sysconf/plugstack.conf.d/caisson.conf"
fi
install -d -m 0755 "$DESTDIR$sysconf"/{hooks.d,mounts.d,environ.d}
[ -e "$DESTDIR$sysconf/caisson.conf" ] || install -m 0644 etc/caisson/caisson.conf "$DESTDIR$sysconf/caisson.conf"
for dir in hooks.d mounts.d environ.d; do
    for file in etc/caisson/$dir/*; do
        [ -f "$file" ] && [ ! -e "$DESTDIR$sysconf/$dir/$(basename "$file")" ] && install -m 0644 "$file" "$DESTDIR$sysconf/$dir/"
    done
done
# Manual pages come from the same definitions as --help (swift-argument-parser's generate-manual).
# The plugin rebuilds the package on its own (minutes); CAISSON_NO_MAN=1 skips it.
man=$(mktemp -d)
if [ -n "${CAISSON_NO_MAN:-}" ]; then
    log "manual pages skipped (CAISSON_NO_MAN)"
elif swift package --allow-writing-to-directory "$man" generate-manual --multi-page -o "$man" >/dev/null 2>&1; then
    install -d -m 0755 "$DESTDIR$PREFIX/share/man/man1"
    install -m 0644 "$man"/*.1 "$DESTDIR$PREFIX/share/man/man1/"
else
    log "warning: manual pages not generated (swift package generate-manual failed)"
fi
rm -rf "$man"
log "installed $DESTDIR$PREFIX/bin/caisson, $DESTDIR$PREFIX/libexec/caisson/caisson-import${plugin:+, $DESTDIR$PREFIX/lib/caisson/spank_caisson.so} and $DESTDIR$sysconf"
