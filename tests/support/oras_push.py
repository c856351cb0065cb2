"""Pushes an OCI artifact with the oras client (PyPI's `oras`), as a real client writes it.

Usage: oras_push.py TARGET FILE ARTIFACT_TYPE [SUBJECT_MEDIA_TYPE SUBJECT_DIGEST SUBJECT_SIZE]
TARGET is host:port/repo:tag on loopback; FILE is pushed as the artifact's one layer.
"""

import os
import sys

import oras.client
import oras.oci


def main():
    target, path, artifact_type = sys.argv[1:4]
    subject = None
    if len(sys.argv) == 7:
        subject = oras.oci.Subject(
            mediaType=sys.argv[4], digest=sys.argv[5], size=int(sys.argv[6])
        )
    host = target.split("/", 1)[0]
    client = oras.client.OrasClient(hostname=host, insecure=True)
    os.chdir(os.path.dirname(os.path.abspath(path)))
    response = client.push(
        target=target,
        files=[f"{os.path.basename(path)}:{artifact_type}"],
        subject=subject,
        manifest_annotations={"org.opencontainers.image.description": "pushed by oras-py"},
    )
    if response.status_code != 201:
        sys.exit(f"push of {target} answered {response.status_code}: {response.text}")


if __name__ == "__main__":
    main()
