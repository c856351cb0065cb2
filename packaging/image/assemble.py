#!/usr/bin/env python3
"""Assembles regsweep's OCI image layout from the release binary and Debian packages (see `build`).

One layer, written the same way every time: entries sorted by path, every time set to the commit's
time, owners numeric, the gzip stream without a name or time; the config and manifest as compact
JSON with sorted keys. The same inputs give the same digests.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

UID = GID = 65532
USER = "regsweep"

# What the binary needs from each package (it links libc, libm and libgcc_s; it reads the CA
# bundle for the object stores' TLS), and each package's copyright file where it has one.
FROM_PACKAGES = {
    "libc6": [
        "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libm.so.6",
        "lib64/ld-linux-x86-64.so.2",
        "usr/share/doc/libc6/copyright",
    ],
    "libgcc-s1": ["lib/x86_64-linux-gnu/libgcc_s.so.1"],
    "ca-certificates": ["usr/share/doc/ca-certificates/copyright"],
}
CA_DIR = "usr/share/ca-certificates/mozilla/"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def package_files(deb):
    """(name, TarInfo, bytes or None) of every member of a .deb's data, names without `./`."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            name = m.name.lstrip("./")
            body = t.extractfile(m).read() if m.isfile() else None
            yield name, m, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--binary", required=True, type=Path)
    ap.add_argument("--debs", required=True, type=Path)
    ap.add_argument("--version", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--created", required=True, type=int)
    a = ap.parse_args()

    # path -> (kind, mode, body or link target, uid)
    entries = {}
    versions = {}

    def add_dirs(path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            entries.setdefault(d, ("dir", 0o755, None, 0))

    def add(path, kind, mode, body, uid=0):
        add_dirs(path)
        entries[path] = (kind, mode, body, uid)

    for deb in sorted(a.debs.glob("*.deb")):
        package = deb.name.split("_")[0]
        versions[package] = deb.name.split("_")[1]
        wanted = set(FROM_PACKAGES.get(package, []))
        certs = []
        for name, m, body in package_files(deb):
            if name in wanted:
                if m.issym():
                    add(name, "sym", 0o777, m.linkname)
                else:
                    add(name, "file", m.mode & 0o7777, body)
                wanted.discard(name)
            if package == "ca-certificates" and name.startswith(CA_DIR) and name.endswith(".crt"):
                certs.append((name, body))
        if wanted:
            raise SystemExit(f"{deb.name}: has none of {sorted(wanted)}")
        if package == "ca-certificates":
            bundle = b"".join(body.rstrip(b"\n") + b"\n" for _, body in sorted(certs))
            add(CA_BUNDLE, "file", 0o644, bundle)
    for needed in FROM_PACKAGES:
        if needed not in versions:
            raise SystemExit(f"no {needed} package in {a.debs}")

    add("usr/local/bin/regsweep", "file", 0o755, a.binary.read_bytes())
    add("etc/passwd", "file", 0o644,
        f"root:x:0:0:root:/root:/sbin/nologin\n{USER}:x:{UID}:{GID}:{USER}:/home/{USER}:/sbin/nologin\n".encode())
    add("etc/group", "file", 0o644, f"root:x:0:\n{USER}:x:{GID}:\n".encode())
    add(f"home/{USER}", "dir", 0o755, None, UID)
    add("tmp", "dir", 0o1777, None)

    # The layer: sorted, fixed times and owners.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path in sorted(entries):
            kind, mode, body, uid = entries[path]
            info = tarfile.TarInfo(path + ("/" if kind == "dir" else ""))
            info.mtime = a.created
            info.mode = mode
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = body
                t.addfile(info)
            else:
                info.size = len(body)
                t.addfile(info, io.BytesIO(body))
    layer_tar = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=9, mtime=0, filename="") as g:
        g.write(layer_tar)
    layer = gz.getvalue()

    def digest(b):
        return "sha256:" + hashlib.sha256(b).hexdigest()

    def compact(v):
        return json.dumps(v, sort_keys=True, separators=(",", ":")).encode()

    created = datetime.datetime.fromtimestamp(a.created, datetime.timezone.utc)
    created = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": "regsweep",
        "org.opencontainers.image.description":
            "Garbage collector and auditor for container-registry storage (CNCF Distribution layout)",
        "org.opencontainers.image.version": a.version,
        "org.opencontainers.image.revision": a.revision,
        "org.opencontainers.image.source": "NOASSERTION",
        "org.opencontainers.image.licenses": "NOASSERTION",
        "org.opencontainers.image.created": created,
    }
    labels.update({f"org.debian.package.{p}": v for p, v in sorted(versions.items())})
    config = compact({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{UID}:{GID}",
            "Entrypoint": ["/usr/local/bin/regsweep"],
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                f"HOME=/home/{USER}",
                "SSL_CERT_FILE=/" + CA_BUNDLE,
            ],
            "WorkingDir": f"/home/{USER}",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(layer_tar)]},
        "history": [{"created": created, "created_by": "packaging/image/build"}],
    })
    manifest = compact({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(layer), "size": len(layer)}],
        "annotations": {k: v for k, v in labels.items() if k.startswith("org.opencontainers.")},
    })
    blobs = a.out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for b in (layer, config, manifest):
        (blobs / digest(b)[7:]).write_bytes(b)
    (a.out / "oci-layout").write_bytes(compact({"imageLayoutVersion": "1.0.0"}))
    (a.out / "index.json").write_bytes(compact({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": a.version},
        }],
    }))
    print(json.dumps({
        "image": f"oci:{a.out}:{a.version}",
        "manifest": digest(manifest),
        "layer_bytes": len(layer),
        "files": sorted(p for p, e in entries.items() if e[0] != "dir"),
    }, indent=1))


if __name__ == "__main__":
    os.umask(0o022)
    main()
