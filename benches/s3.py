#!/usr/bin/env python3
"""regsweep against the reference collector on an S3 bucket: wall time and requests.

    python3 benches/s3.py [--repos 60] [--images 10] [--seed 11] [--runs 3] [--dir DIR]

Starts a loopback S3 server (moto's, `python3 -m moto.server`), generates a store with
`genstore` (once, into DIR/s3-REPOS-SEED), loads it into a bucket with fixtures/load_s3.py, then
runs `regsweep gc s3://bench/store --grace 0s --json --no-cache` (a first run), the same with a
manifest cache one untimed run filled (the repeat run over an unchanged bucket: list requests only),
and `docker-registry garbage-collect --dry-run` on a config naming the same bucket, alternately,
`--runs` times each. Requests are counted from the
server's access log (one line a request) for both tools, and from regsweep's own `s3` counters.
Both eligible-blob counts must equal the generator's: a disagreement stops the benchmark.
"""

import argparse
import json
import os
import re
import socket
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGSWEEP = ROOT / "target/release/regsweep"
GENSTORE = ROOT / "target/release/examples/genstore"
REQUEST = re.compile(r'"(GET|PUT|POST|DELETE|HEAD) /')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_in(log):
    return sum(1 for line in log.read_text(errors="replace").splitlines() if REQUEST.search(line))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=60)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/var/tmp/regsweep-bench")
    args = ap.parse_args()
    subprocess.run(
        ["cargo", "build", "--release", "--example", "genstore", "--bin", "regsweep"],
        cwd=ROOT,
        check=True,
    )
    base = Path(args.dir)
    store = base / f"s3-{args.repos}-{args.seed}"
    if not (store / "expected.json").exists():
        subprocess.run(
            [str(GENSTORE), str(store), "--repos", str(args.repos), "--images", str(args.images),
             "--seed", str(args.seed)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    expected = json.loads((store / "expected.json").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "AWS_PROFILE")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = base / "s3-bench-server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the S3 server did not start")
                time.sleep(0.2)
        subprocess.run(
            [sys.executable, str(ROOT / "fixtures/load_s3.py"), str(store / "root"), endpoint, "bench", "store"],
            check=True,
            env=env,
        )
        # S3 and Azure keep whole seconds: what was loaded in a run's first second would be held back
        # under --grace 0s (it cannot be told from what is written after the run started).
        time.sleep(1.1)
        objects = sum(1 for f in (store / "root").rglob("*") if f.is_file())
        config = base / "s3-bench-config.yml"
        config.write_text(
            "version: 0.1\nstorage:\n  s3:\n    bucket: bench\n    region: us-east-1\n"
            f"    regionendpoint: {endpoint}\n    rootdirectory: /store\n    accesskey: test\n"
            "    secretkey: test\n    forcepathstyle: true\n    secure: false\n    v4auth: true\n"
        )
        ours_cmd = [str(REGSWEEP), "gc", "s3://bench/store", "--endpoint-url", endpoint, "--grace", "0s", "--json"]
        cache = tempfile.mkdtemp(prefix="regsweep-bench-cache-")
        commands = {
            "regsweep gc": ours_cmd + ["--no-cache"],
            "regsweep gc, repeat run (cache)": ours_cmd + ["--cache-dir", cache],
            "reference": ["docker-registry", "garbage-collect", "--dry-run", str(config)],
        }
        subprocess.run(commands["regsweep gc, repeat run (cache)"], capture_output=True, env=env, check=True)
        samples = {label: [] for label in commands}
        counted = {}
        for _ in range(args.runs):
            for label, cmd in commands.items():
                before = requests_in(log)
                start = time.monotonic()
                p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                wall = time.monotonic() - start
                if p.returncode != 0:
                    sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
                time.sleep(0.5)  # the server writes its log line after the response
                reqs = requests_in(log) - before
                if label.startswith("regsweep gc"):
                    summary = json.loads(p.stdout)
                    got = summary["blobs"]["eligible"]
                    counted[label] = summary["s3"]
                else:
                    got = len(re.findall(r"blob eligible for deletion", p.stdout))
                if got != expected["plain"]["blobs"]:
                    sys.exit(f"{label} found {got} eligible blobs, expected {expected['plain']['blobs']}")
                samples[label].append((wall, reqs))
    finally:
        server.kill()
        server.wait()

    print(f"S3 (loopback moto server): {expected['blobs']:,} blobs, {objects:,} objects; "
          f"runs: {args.runs}\n")
    print("| command | median wall | requests (server log) |")
    print("|---|---|---|")
    med = {}
    for label, s in samples.items():
        med[label] = statistics.median(w for w, _ in s)
        print(f"| {label} | {med[label]:.2f} s | {statistics.median(r for _, r in s):,.0f} |")
    print()
    for label, c in counted.items():
        print(f"{label}, its own counters: {c['list_requests']} list, {c['get_requests']} get, "
              f"{c['retries']} retries")
    for label in counted:
        print(f"reference / {label}: {med['reference'] / med[label]:.1f}x")
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
