#!/usr/bin/env python3
"""make-big-image.py OUT [BASE_TREE]: an OCI layout OUT (tag `latest`) of about 570 MB
uncompressed in four gzip layers, from local material only: a debootstrap tree (or busybox),
Swift's runtime libraries (large binaries), /usr/include (thousands of small files), /usr/lib/gcc."""
import os
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures"))
from images import Layout, Tar, busybox_tree  # noqa: E402


def tree_layer(source, prefix):
    """A layer holding the directory `source` at path `prefix` inside the image."""
    t = Tar()
    parts = prefix.strip("/").split("/")
    for i in range(1, len(parts)):
        t.dir("/".join(parts[:i]))

    def normalise(info):
        if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    t.tar.add(source, arcname=prefix.strip("/"), filter=normalise)
    return t.bytes()


out = sys.argv[1]
base = sys.argv[2] if len(sys.argv) > 2 else None
layout = Layout(out)
first = Tar()
if base:
    first.tree(base)
else:
    busybox_tree(first)
layers = [(first.bytes(), "gzip"),
          (tree_layer("/opt/swift/usr/lib/swift/linux", "/usr/lib/swift/linux"), "gzip"),
          (tree_layer("/usr/include", "/usr/include"), "gzip"),
          (tree_layer("/usr/lib/gcc", "/usr/lib/gcc"), "gzip")]
print("uncompressed layers:", [len(t) for t, _ in layers], "total", sum(len(t) for t, _ in layers))
layout.tag(layout.image(layers, {"Cmd": ["/bin/sh"]}), "latest")
