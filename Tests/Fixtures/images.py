#!/usr/bin/env python3
"""Builds the test suite's OCI images from local material only (busybox-static, an optional
debootstrap tree) and writes them as OCI image layouts; `push` copies them to a registry
with skopeo. Nothing is downloaded.

    images.py build OUT [--debootstrap DIR] [--kinds KIND,...] [--mpi-base DIR]
                                                # OUT/<name>/ are OCI layouts, OUT/manifest.json lists them
    images.py push OUT REGISTRY [--creds U:P] [--tls-verify=false|--cert-dir D]
    images.py mpi-base                          # makes (once) and prints the cached MPI base tree

--kinds picks what to build (default: busybox,layered,multiarch,hostile,tamper; `default` stands
for that set, e.g. `--kinds default,mpi`). `mpi` is not built unless asked for.

Images (name:tag):
  busybox:latest     one gzip layer; config with Env, Entrypoint, Cmd, WorkingDir, Volumes
  layered:latest     3 layers (gzip, zstd, uncompressed): file and opaque whiteouts, hard links
                     within and across layers, symlinks, a directory replaced by a file, a
                     whited-out name re-created; base = debootstrap tree when given, else busybox
  layered:gzip       the same layers, all gzip (umoci 0.4 reads no zstd: the reference unpack)
  multiarch:latest   an index: linux/amd64, linux/arm64/v8 (a marker file says which), and an
                     attestation manifest (unknown/unknown) that must be skipped
  hostile:escape     a layer whose entry climbs out with ../
  hostile:device     a layer with a character device and a setuid-root file
  tamper:latest      one layer of random bytes that no other image shares (tests corrupt it)
  mpi:latest         (kind `mpi`) 2 gzip layers: Debian bookworm minbase + openmpi-bin and
                     libopenmpi3 (apt lists, docs, man pages and locales dropped), then
                     /usr/local/bin/mpi-bcast (Tests/Fixtures/mpi-bcast.c, compiled on this host
                     with mpicc: the host must be Debian 12 with libopenmpi-dev). Cmd: mpi-bcast.
                     OUT/mpi-bcast is the same binary, for runs outside a container.
                     The base tree is made once per machine with debootstrap (root and the
                     Debian mirror are needed) and kept in /var/cache/caisson-test/debootstrap-bookworm-mpi
                     (--mpi-base DIR: use that tree instead).
"""
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

MTIME = 1_700_000_000
HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = "/var/cache/caisson-test"
MIRROR = "http://deb.debian.org/debian"
DEFAULT_KINDS = ("busybox", "layered", "multiarch", "hostile", "tamper")
ALL_KINDS = DEFAULT_KINDS + ("mpi",)
MPI_PACKAGES = "openmpi-bin,libopenmpi3"
# Dropped from the MPI base tree: nothing an MPI program needs at run time.
MPI_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
            "usr/share/linda", "var/lib/apt/lists", "var/cache/apt", "var/cache/debconf", "var/log")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI image layout directory: blobs/sha256/*, index.json, oci-layout."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}

    def blob(self, data):
        digest = sha256(data)
        with open(os.path.join(self.path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        return digest

    def descriptor(self, media_type, data, **extra):
        d = {"mediaType": media_type, "digest": self.blob(data), "size": len(data)}
        d.update(extra)
        return d

    def image(self, layers, config_extra, platform=("amd64", "linux", None)):
        """layers: list of (uncompressed tar bytes, compression); returns the manifest descriptor."""
        arch, os_name, variant = platform
        descriptors, diff_ids = [], []
        for tar, compression in layers:
            diff_ids.append(sha256(tar))
            if compression == "gzip":
                descriptors.append(self.descriptor("application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(tar, 6, mtime=0)))
            elif compression == "zstd":
                data = subprocess.run(["zstd", "-q", "-3", "-c"], input=tar, stdout=subprocess.PIPE, check=True).stdout
                descriptors.append(self.descriptor("application/vnd.oci.image.layer.v1.tar+zstd", data))
            else:
                descriptors.append(self.descriptor("application/vnd.oci.image.layer.v1.tar", tar))
        config = {"architecture": arch, "os": os_name, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "config": config_extra, "created": "2023-11-14T22:13:20Z",
                  "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"caisson test layer {i + 1}"}
                              for i in range(len(layers))]}
        if variant:
            config["variant"] = variant
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": self.descriptor("application/vnd.oci.image.config.v1+json", json.dumps(config).encode()),
                    "layers": descriptors,
                    "annotations": {"org.opencontainers.image.description": "caisson test image"}}
        return self.descriptor("application/vnd.oci.image.manifest.v1+json", json.dumps(manifest).encode())

    def tag(self, descriptor, tag):
        d = dict(descriptor)
        d["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index["manifests"].append(d)
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump(self.index, f)


class Tar:
    """A layer tarball built entry by entry (PAX, owned by root, fixed mtimes)."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def dir(self, name, mode=0o755):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name, data, mode=0o644):
        if isinstance(data, str):
            data = data.encode()
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def symlink(self, name, target):
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def hardlink(self, name, target):
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        self.tar.addfile(info)

    def chardev(self, name, major, minor):
        info = self._info(name, tarfile.CHRTYPE, 0o600)
        info.devmajor, info.devminor = major, minor
        self.tar.addfile(info)

    def tree(self, root, skip_contents=("dev", "proc", "sys", "run", "tmp")):
        """Adds a directory tree as the layer's root (what `docker export` would give)."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            top = rel.split(os.sep)[0]
            if rel != "." and top in skip_contents and rel != top:
                dirnames[:] = []
                continue
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                if rel == top and top in skip_contents:
                    continue
                path = os.path.join(dirpath, name)
                arc = os.path.normpath(os.path.join(rel, name))
                self.tar.add(path, arcname=arc, recursive=False, filter=self._normalise)
            if rel != ".":
                self.tar.add(dirpath, arcname=rel, recursive=False, filter=self._normalise)
            if rel == top and top in skip_contents:
                dirnames[:] = []

    @staticmethod
    def _normalise(info):
        if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def bytes(self):
        self.tar.close()
        return self.buffer.getvalue()


def busybox_tree(tar):
    busybox = "/bin/busybox"
    applets = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    for d in ("bin", "etc", "root", "tmp", "var", "usr", "usr/bin", "home", "proc", "sys", "dev"):
        tar.dir(d, 0o1777 if d == "tmp" else 0o755)
    with open(busybox, "rb") as f:
        tar.file("bin/busybox", f.read(), 0o755)
    for applet in sorted(set(applets)):
        if applet != "busybox":
            tar.symlink(f"bin/{applet}", "busybox")
    tar.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    tar.file("etc/group", "root:x:0:\n")
    tar.file("etc/os-release", 'NAME="Caisson test busybox"\nID=busybox\n')


def unmount_below(path):
    """Unmounts whatever a failed debootstrap left mounted inside path (its /proc, /sys)."""
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mpi_base_tree(cache=CACHE):
    """A trimmed `debootstrap --variant=minbase --include=openmpi-bin,libopenmpi3 bookworm` tree,
    made once per machine (~40 s with a nearby mirror) and reused afterwards."""
    tree = os.path.join(cache, "debootstrap-bookworm-mpi")
    done = lambda: os.path.exists(os.path.join(tree, "etc", "debian_version"))
    if done():
        return tree
    if os.geteuid() != 0:
        sys.exit(f"images.py: {tree} does not exist and only root can make it (debootstrap)")
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(debootstrap):
        sys.exit("images.py: debootstrap is not installed (apt-get install debootstrap)")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".debootstrap-bookworm-mpi.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build may be making it right now
        if done():
            return tree
        tmp, log = tree + ".tmp", tree + ".log"
        unmount_below(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"images.py: making {tree} (once per machine; log: {log})", file=sys.stderr, flush=True)
        with open(log, "wb") as f:
            r = subprocess.run([debootstrap, "--variant=minbase", f"--include={MPI_PACKAGES}", "bookworm", tmp, MIRROR],
                               stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode:
            unmount_below(tmp)
            with open(log, errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
            sys.exit(f"images.py: debootstrap failed ({r.returncode}); {log}:\n{tail}")
        unmount_below(tmp)
        for rel in MPI_TRIM:
            path = os.path.join(tmp, rel)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
                os.makedirs(path)
        os.rename(tmp, tree)
    return tree


def dpkg_version(package, status_file="/var/lib/dpkg/status"):
    try:
        with open(status_file) as f:
            for stanza in f.read().split("\n\n"):
                fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
                if fields.get("Package") == package and fields.get("Status", "").endswith(" installed"):
                    return fields.get("Version")
    except OSError:
        pass
    return None


def build_mpi(out, base):
    """mpi:latest: the base tree as one layer, mpi-bcast (compiled here) as a second one."""
    mpicc = shutil.which("mpicc")
    if not mpicc:
        sys.exit("images.py: mpicc is not installed (apt-get install libopenmpi-dev)")
    host, image = dpkg_version("libopenmpi3"), dpkg_version("libopenmpi3", os.path.join(base, "var/lib/dpkg/status"))
    if host is None or image is None or host.split("+")[0] != image.split("+")[0]:
        print(f"images.py: warning: libopenmpi3 {host} on this host, {image} in {base}: "
              "mpi-bcast may not run in the image", file=sys.stderr)
    binary = os.path.join(out, "mpi-bcast")
    subprocess.run([mpicc, "-O2", "-Wall", "-o", binary, os.path.join(HERE, "mpi-bcast.c")], check=True)
    with open(binary, "rb") as f:
        program = f.read()
    base_layer = Tar()
    base_layer.tree(base)
    tool = Tar()
    for d in ("usr", "usr/local", "usr/local/bin"):
        tool.dir(d)
    tool.file("usr/local/bin/mpi-bcast", program, 0o755)
    config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
              "Cmd": ["/usr/local/bin/mpi-bcast"], "WorkingDir": "/",
              "Labels": {"org.example.caisson": "mpi", "org.example.openmpi": image or "unknown"}}
    layout = Layout(os.path.join(out, "mpi"))
    layout.tag(layout.image([(base_layer.bytes(), "gzip"), (tool.bytes(), "gzip")], config), "latest")


def build(out, debootstrap=None, kinds=DEFAULT_KINDS, mpi_base=None):
    os.makedirs(out, exist_ok=True)
    listing = {}

    if "busybox" in kinds:
        # busybox:latest
        layout = Layout(os.path.join(out, "busybox"))
        base = Tar()
        busybox_tree(base)
        busybox_layer = base.bytes()
        config = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hello from the image"],
                  "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo \"$GREETING\"; pwd"],
                  "WorkingDir": "/root", "Volumes": {"/data": {}}, "Labels": {"org.example": "caisson"}}
        layout.tag(layout.image([(busybox_layer, "gzip")], config), "latest")
        listing["busybox:latest"] = "busybox"

    if "layered" in kinds:
        # layered:latest
        layout = Layout(os.path.join(out, "layered"))
        first = Tar()
        if debootstrap:
            first.tree(debootstrap)
        else:
            busybox_tree(first)
            first.dir("var/cache")
            first.dir("var/cache/apt")
            for i in range(3):
                first.file(f"var/cache/apt/pkg{i}.bin", os.urandom(1024))
        first.dir("opt")
        first.file("opt/removed-later", "gone in layer 2\n")
        first.file("opt/shared", "shared contents\n")
        first.dir("opt/becomes-file")
        first.file("opt/becomes-file/child", "hidden by layer 2\n")
        first.file("opt/recreated", "version 1\n")
        second = Tar()  # zstd
        second.file("opt/.wh.removed-later", "")
        second.dir("var/cache/apt")
        second.file("var/cache/apt/.wh..wh..opq", "")
        second.file("var/cache/apt/fresh", "added with the opaque whiteout\n")
        second.file("opt/.wh.becomes-file", "")
        second.file("opt/becomes-file", "now a file\n")
        second.file("opt/.wh.recreated", "")
        second.file("opt/linked-a", "hard linked contents\n", 0o640)
        second.hardlink("opt/linked-b", "opt/linked-a")
        second.symlink("opt/abs-link", "/etc/os-release")
        second.symlink("opt/rel-link", "../etc")
        second.file("opt/setuid-tool", "#!/bin/sh\necho tool\n", 0o4755)
        third = Tar()  # uncompressed
        third.hardlink("opt/shared-link", "opt/shared")  # across layers
        third.file("opt/recreated", "version 3\n")
        third.dir("opt/empty-dir", 0o700)
        tars = [first.bytes(), second.bytes(), third.bytes()]
        layered_config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}
        layout.tag(layout.image(list(zip(tars, ["gzip", "zstd", "none"])), layered_config), "latest")
        # The same layers, all gzip: the reference input for umoci 0.4, which cannot read zstd.
        layout.tag(layout.image([(t, "gzip") for t in tars], layered_config), "gzip")
        listing["layered:latest"] = listing["layered:gzip"] = "layered"

    if "multiarch" in kinds:
        # multiarch:latest
        layout = Layout(os.path.join(out, "multiarch"))
        manifests = []
        for arch, variant in (("amd64", None), ("arm64", "v8")):
            t = Tar()
            busybox_tree(t)
            t.file("etc/arch", f"{arch}{'/' + variant if variant else ''}\n")
            d = layout.image([(t.bytes(), "gzip")], {"Cmd": ["cat", "/etc/arch"]}, (arch, "linux", variant))
            d["platform"] = {"architecture": arch, "os": "linux"}
            if variant:
                d["platform"]["variant"] = variant
            manifests.append(d)
        attestation = Tar()
        attestation.file("sbom.json", "{}")
        att = layout.image([(attestation.bytes(), "none")], {}, ("unknown", "unknown", None))
        att["platform"] = {"architecture": "unknown", "os": "unknown"}
        att["annotations"] = {"vnd.docker.reference.type": "attestation-manifest",
                              "vnd.docker.reference.digest": manifests[0]["digest"]}
        manifests.append(att)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
        layout.tag(layout.descriptor("application/vnd.oci.image.index.v1+json", json.dumps(index).encode()), "latest")
        listing["multiarch:latest"] = "multiarch"

    if "hostile" in kinds:
        # hostile images
        layout = Layout(os.path.join(out, "hostile"))
        escape = Tar()
        busybox_tree(escape)
        escape.file("../escaped-by-caisson-test", "written outside the image\n")
        layout.tag(layout.image([(escape.bytes(), "gzip")], {}), "escape")
        device = Tar()
        busybox_tree(device)
        device.chardev("dev/sda", 8, 0)
        device.chardev("usr/bin/sneaky-device", 1, 3)
        with open("/bin/busybox", "rb") as f:
            device.file("usr/bin/suid-busybox", f.read(), 0o4755)
        layout.tag(layout.image([(device.bytes(), "gzip")], {}), "device")
        listing["hostile:escape"] = listing["hostile:device"] = "hostile"

    if "tamper" in kinds:
        # tamper:latest — a layer no other image shares, so a test may corrupt its blob in a registry.
        layout = Layout(os.path.join(out, "tamper"))
        unique = Tar()
        unique.file("unique", os.urandom(4096))
        layout.tag(layout.image([(unique.bytes(), "gzip")], {}), "latest")
        listing["tamper:latest"] = "tamper"
    if "mpi" in kinds:
        build_mpi(out, mpi_base or mpi_base_tree())
        listing["mpi:latest"] = "mpi"
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(listing, f, indent=1)


def push(out, registry, extra):
    with open(os.path.join(out, "manifest.json")) as f:
        listing = json.load(f)
    for ref, layout in listing.items():
        name, tag = ref.split(":")
        args = ["skopeo", "copy", "--quiet", "--all", "--preserve-digests"] + extra
        subprocess.run(args + [f"oci:{os.path.join(out, layout)}:{tag}", f"docker://{registry}/{name}:{tag}"], check=True)
    # The same busybox image as a Docker schema2 manifest.
    if "busybox:latest" not in listing:
        return
    subprocess.run(["skopeo", "copy", "--quiet", "--format", "v2s2"] + extra +
                   [f"oci:{os.path.join(out, 'busybox')}:latest", f"docker://{registry}/busybox:docker"], check=True)


def option(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[:-1] else None


def parse_kinds(text):
    kinds = []
    for kind in (text or "default").split(","):
        for k in (DEFAULT_KINDS if kind == "default" else (kind,)):
            if k not in ALL_KINDS:
                sys.exit(f"images.py: unknown kind {k!r} (known: default, {', '.join(ALL_KINDS)})")
            if k not in kinds:
                kinds.append(k)
    return kinds


if __name__ == "__main__":
    if "-h" in sys.argv or "--help" in sys.argv:
        print(__doc__)
    elif len(sys.argv) >= 3 and sys.argv[1] == "build":
        build(sys.argv[2], option("--debootstrap"), parse_kinds(option("--kinds")), option("--mpi-base"))
    elif len(sys.argv) == 2 and sys.argv[1] == "mpi-base":
        print(mpi_base_tree())
    elif len(sys.argv) >= 4 and sys.argv[1] == "push":
        push(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
