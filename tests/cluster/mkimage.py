#!/usr/bin/env python3
"""Writes an OCI image archive (the layout `ctr images import` reads) from files on this host.

    mkimage.py --name REF --out FILE [--entrypoint JSON] [--dir PATH]... [--copy SRC[:DST]]...
               [--with-libs] [--symlink LINK:TARGET]...

Every --copy file lands at DST (default: the same path); with --with-libs the shared libraries
the copied ELF files need (ldd) and their loader come along. One uncompressed layer; files are
owned by root. No registry and no daemon are involved.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import tarfile


def ldd_deps(path):
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    deps = []
    for line in out.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/") and os.path.exists(p):
                deps.append(p)
    return deps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--entrypoint", default="[]")
    ap.add_argument("--cmd", default="[]")
    ap.add_argument("--copy", action="append", default=[])
    ap.add_argument("--dir", action="append", default=[])
    ap.add_argument("--symlink", action="append", default=[])
    ap.add_argument("--with-libs", action="store_true")
    a = ap.parse_args()

    files = {}
    for spec in a.copy:
        src, _, dst = spec.partition(":")
        files[dst or src] = src
    if a.with_libs:
        for src in list(files.values()):
            for dep in ldd_deps(src):
                files.setdefault(dep, os.path.realpath(dep))
                # Keep the name ldd printed and the real file's name (libfoo.so.1 -> libfoo.so.1.2).
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs = set(a.dir) | {"/tmp", "/etc", "/dev", "/proc", "/sys"}
        for dst in files:
            d = os.path.dirname(dst)
            while d not in ("/", ""):
                dirs.add(d)
                d = os.path.dirname(d)
        for d in sorted(dirs):
            ti = tarfile.TarInfo(d.lstrip("/"))
            ti.type, ti.mode = tarfile.DIRTYPE, 0o1777 if d == "/tmp" else 0o755
            t.addfile(ti)
        for dst in sorted(files):
            src = files[dst]
            st = os.stat(src)
            ti = tarfile.TarInfo(dst.lstrip("/"))
            ti.size, ti.mode = st.st_size, st.st_mode & 0o7777
            with open(src, "rb") as f:
                t.addfile(ti, f)
        for spec in a.symlink:
            link, _, target = spec.partition(":")
            ti = tarfile.TarInfo(link.lstrip("/"))
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            t.addfile(ti)
        passwd = b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        for name, data in (("etc/passwd", passwd), ("etc/group", b"root:x:0:\nnogroup:x:65534:\n")):
            if "/" + name not in files:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    layer_digest = hashlib.sha256(layer_bytes).hexdigest()

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": json.loads(a.entrypoint) or None,
            "Cmd": json.loads(a.cmd) or None,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + layer_digest, "size": len(layer_bytes)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + manifest_digest, "size": len(manifest_bytes),
                       "annotations": {"io.containerd.image.name": a.name,
                                       "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]},
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }
    with tarfile.open(a.out, mode="w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        for digest, data in ((layer_digest, layer_bytes), (config_digest, config_bytes),
                             (manifest_digest, manifest_bytes)):
            add("blobs/sha256/" + digest, data)


if __name__ == "__main__":
    main()
