#!/usr/bin/env python3
"""treecmp.py A B [IGNORE...]: compares two directory trees by path, file type, permission bits,
size, content hash and symlink target (not owners or times). Prints the differences and exits 1
when there are any."""
import hashlib
import os
import stat
import sys


def walk(root, ignore):
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if any(rel == i or rel.startswith(i + "/") for i in ignore):
                continue
            st = os.lstat(path)
            detail = ""
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    detail = f"{st.st_size} {hashlib.sha256(f.read()).hexdigest()}"
            elif stat.S_ISLNK(st.st_mode):
                detail = os.readlink(path)
            entries[rel] = (stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)), detail)
    return entries


a, b = walk(sys.argv[1], sys.argv[3:]), walk(sys.argv[2], sys.argv[3:])
differences = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
for k in differences[:50]:
    print(f"{k}: {a.get(k)} != {b.get(k)}")
print(f"{len(a)} and {len(b)} entries, {len(differences)} differences")
sys.exit(1 if differences else 0)
