#!/usr/bin/env python3
"""regsweep on S3 at scale and at a real S3's latency: a million blobs, 20 ms a request.

    python3 benches/s3_scale.py [--store s100k:2100:9] [--store s1m:21000:9] [--delay-ms 20]
        [--in-flight 32,64,128] [--reference s1k:20:11] [--dir /var/tmp/regsweep-s3-scale]

One command does it all, and what it made it keeps in DIR for the next run:
- installs Garage (crates.io `garage`, an S3-compatible server with a sorted metadata index; built
  once into target/bench-tools) and starts one node on loopback ports, data in DIR/garage;
- generates each store with `genstore --repos REPOS --images 10 --seed SEED --layer-span 1024` into
  DIR/NAME (skipped when there) and loads it into the bucket `bench` under the prefix NAME with
  fixtures/load_s3.rs (once: DIR/garage/loaded-NAME records it); layers are 1 to 2 KiB and put whole,
  so that every object is as large as its manifests say (no size mismatches);
- starts fixtures/latency_proxy.rs in front of Garage, holding every chunk --delay-ms/2 each way,
  so a request takes --delay-ms more (the kernel here has no netem);
- runs `regsweep gc s3://bench/NAME --grace 0s --json --no-cache --max-in-flight N` through the proxy
  for each N, and reports wall time, requests by kind (regsweep's own counters), requests a second,
  peak RSS, the server's and the proxy's CPU seconds, and the floor: one list page per 1,000 keys
  plus one GET per distinct manifest (every tag resolved from its ETag);
- on the small --reference store, loaded into a bucket of its own (`bench-reference`: Garage answers
  ListMultipartUploads by scanning the whole bucket, which both tools ask once), the registry's own
  `docker-registry garbage-collect --dry-run` through the same proxy against regsweep, and the ratio.
Every run's eligible-blob count must equal the generator's: a disagreement stops the benchmark.
"""

import argparse
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "target/bench-tools"
GARAGE = TOOLS / "bin/garage"
REGSWEEP = ROOT / "target/release/regsweep"
EXAMPLES = ROOT / "target/release/examples"
# A fixed key pair, imported into the benchmark's own Garage node (loopback only).
KEY_ID = "GK31c2f218a2e44f485b94239e"
# Layers of 1 KiB to 1 KiB + LAYER_SPAN bytes, put whole: an object store holds no sparse data, and a
# layer put shorter than its manifest declares would be a size mismatch (a problem) on every layer.
LAYER_SPAN = 1024
# The scale stores share one bucket; the reference store has a bucket of its own. Garage answers
# ListMultipartUploads by scanning the whole bucket (4.4 s with 3M objects in it, prefix or not), which
# both tools ask once: a small store in the big bucket would measure that scan, not the tools.
BUCKET = "bench"
REFERENCE_BUCKET = "bench-reference"
SECRET = "4420d99ef7aa26b56c5ac67402a4fc1ef6e2a3e8ab35e5a7c7bcd8ed9b0e9bd3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit(f"{what} did not start on 127.0.0.1:{port}")
            time.sleep(0.2)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(cmd, env):
    """Runs cmd under a helper that reports its child's peak RSS; returns (wall, MB, stdout)."""
    helper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.monotonic()\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "w = time.monotonic() - t\n"
        "sys.stderr.buffer.write(p.stderr)\n"
        "sys.stdout.buffer.write(p.stdout)\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stderr.write('\\nMEASURED ' + json.dumps([w, rss / 1024, p.returncode]) + '\\n')\n"
    )
    p = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True, env=env)
    m = re.search(r"MEASURED (\[.*\])", p.stderr)
    wall, mb, rc = json.loads(m.group(1))
    if rc != 0:
        sys.exit(f"{' '.join(cmd)} failed ({rc}):\n{p.stderr[-3000:]}")
    return wall, mb, p.stdout


class Garage:
    def __init__(self, base):
        self.dir = base / "garage"
        self.dir.mkdir(parents=True, exist_ok=True)
        ports = self.dir / "ports.json"
        if not ports.exists():
            ports.write_text(json.dumps({"s3": free_port(), "rpc": free_port()}))
        p = json.loads(ports.read_text())
        self.port, rpc = p["s3"], p["rpc"]
        self.config = self.dir / "garage.toml"
        self.config.write_text(
            f'metadata_dir = "{self.dir}/meta"\ndata_dir = "{self.dir}/data"\ndb_engine = "lmdb"\n'
            f'replication_factor = 1\nrpc_bind_addr = "127.0.0.1:{rpc}"\n'
            f'rpc_public_addr = "127.0.0.1:{rpc}"\nrpc_secret = "{"0" * 63}1"\n'
            f'[s3_api]\ns3_region = "us-east-1"\napi_bind_addr = "127.0.0.1:{self.port}"\n'
            'root_domain = ".s3.localhost"\n'
        )
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [str(GARAGE), "-c", str(self.config), "server"],
            stdout=(self.dir / "server.log").open("a"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_port(self.port, self.proc, "garage")
        self.setup()

    def cli(self, *args, check=True):
        for _ in range(30):
            p = subprocess.run([str(GARAGE), "-c", str(self.config), *args], capture_output=True, text=True)
            if p.returncode == 0 or not check:
                return p
            time.sleep(1)
        sys.exit(f"garage {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")

    def setup(self):
        status = self.cli("status").stdout
        if "NO ROLE ASSIGNED" in status:
            node = self.cli("node", "id", "-q").stdout.strip().split("@")[0]
            self.cli("layout", "assign", "-z", "dc1", "-c", "100G", node)
            self.cli("layout", "apply", "--version", "1")
        if KEY_ID not in self.cli("key", "list").stdout:
            self.cli("key", "import", "--yes", "-n", "bench", KEY_ID, SECRET)
        listed = self.cli("bucket", "list").stdout.split()
        for bucket in (BUCKET, REFERENCE_BUCKET):
            if bucket not in listed:
                self.cli("bucket", "create", bucket)
                self.cli("bucket", "allow", "--read", "--write", "--owner", bucket, "--key", KEY_ID)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def build():
    if not GARAGE.exists():
        subprocess.run(
            ["cargo", "install", "garage@2.5.0", "--locked", "--no-default-features", "--features",
             "lmdb,bundled-libs", "--root", str(TOOLS)],
            check=True,
        )
    subprocess.run(
        ["cargo", "build", "--release", "--bin", "regsweep", "--example", "genstore", "--example",
         "latency_proxy", "--example", "load_s3"],
        cwd=ROOT,
        check=True,
    )


def generate(base, spec):
    name, repos, seed = spec.split(":")
    store = base / name
    if not (store / "expected.json").exists():
        subprocess.run(
            [str(EXAMPLES / "genstore"), str(store), "--repos", repos, "--images", "10", "--seed", seed,
             "--layer-span", str(LAYER_SPAN)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    counted = store / "objects.txt"
    if not counted.exists():
        counted.write_text(str(sum(len(files) for _, _, files in os.walk(store / "root"))))
    return name, store, json.loads((store / "expected.json").read_text()), int(counted.read_text())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", action="append", help="NAME:REPOS:SEED (repeatable; default s100k:2100:9)")
    ap.add_argument("--reference", default="s1k:20:11", help="NAME:REPOS:SEED the reference runs on")
    ap.add_argument("--delay-ms", type=int, default=20)
    ap.add_argument("--in-flight", default="32,64,128")
    ap.add_argument("--dir", default="/var/tmp/regsweep-s3-scale")
    args = ap.parse_args()
    stores = args.store or ["s100k:2100:9"]
    in_flight = [int(n) for n in args.in_flight.split(",")]
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    build()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL")}
    env.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1")

    garage = Garage(base)
    proxy = None
    try:
        direct = f"http://127.0.0.1:{garage.port}"
        generated = [generate(base, s) for s in stores + [args.reference]]
        reference = args.reference.split(":")[0]
        for name, store, _, objects in generated:
            bucket = REFERENCE_BUCKET if name == reference else BUCKET
            mark = garage.dir / (f"loaded-{bucket}-{name}" if bucket != BUCKET else f"loaded-{name}")
            if not mark.exists():
                print(f"loading {name} ({objects:,} objects) into s3://{bucket}/{name}", flush=True)
                subprocess.run([str(EXAMPLES / "load_s3"), str(store / "root"), direct, bucket, name],
                               check=True, env=env)
                mark.write_text("loaded\n")
                # S3 keeps whole seconds: what was loaded in a run's first second would be held back.
                time.sleep(1.1)
        proxy_port = free_port()
        proxy = subprocess.Popen(
            [str(EXAMPLES / "latency_proxy"), str(proxy_port), f"127.0.0.1:{garage.port}", "--delay-ms",
             str(args.delay_ms)],
            stdout=subprocess.DEVNULL,
        )
        wait_port(proxy_port, proxy, "the latency proxy")
        via = f"http://127.0.0.1:{proxy_port}"
        print(f"\nGarage 2.5.0 (lmdb) on loopback, {args.delay_ms} ms added a request by a proxy; "
              f"{os.cpu_count()} cores\n")
        print("| store | blobs | objects | in flight | wall | peak RSS | list | get | requests/s | floor | "
              "over floor | server CPU | proxy CPU |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        rows = {}
        for name, store, expected, objects in generated:
            if name == reference:
                continue
            for n in in_flight:
                cmd = [str(REGSWEEP), "gc", f"s3://{BUCKET}/{name}", "--endpoint-url", via, "--grace", "0s",
                       "--json", "--no-cache", "--max-in-flight", str(n)]
                cpu0 = (cpu_seconds(garage.proc.pid), cpu_seconds(proxy.pid))
                wall, mb, out = peak_rss_mb(cmd, env)
                cpu1 = (cpu_seconds(garage.proc.pid), cpu_seconds(proxy.pid))
                summary = json.loads(out)
                if summary["blobs"]["eligible"] != expected["plain"]["blobs"]:
                    sys.exit(f"{name}: {summary['blobs']['eligible']} eligible, expected {expected['plain']['blobs']}")
                s3 = summary["s3"]
                total = s3["list_requests"] + s3["get_requests"]
                floor = math.ceil(objects / 1000) + expected["revisions"]
                rows[(name, n)] = wall
                print(f"| {name} | {expected['blobs']:,} | {objects:,} | {n} | {wall:.1f} s | {mb:.0f} MB | "
                      f"{s3['list_requests']:,} | {s3['get_requests']:,} | {total / wall:,.0f} | {floor:,} | "
                      f"{100 * (total - floor) / floor:+.1f}% | {cpu1[0] - cpu0[0]:.1f} s | "
                      f"{cpu1[1] - cpu0[1]:.1f} s |", flush=True)

        # The reference, on a store small enough for it to finish at this latency.
        name, store, expected, objects = generated[-1]
        config = base / f"reference-{name}.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  s3:\n    bucket: {REFERENCE_BUCKET}\n    region: us-east-1\n"
            f"    regionendpoint: {via}\n    rootdirectory: /{name}\n    accesskey: {KEY_ID}\n"
            f"    secretkey: {SECRET}\n    forcepathstyle: true\n    secure: false\n    v4auth: true\n"
        )
        ref_wall, ref_mb, ref_out = peak_rss_mb(["docker-registry", "garbage-collect", "--dry-run", str(config)], env)
        ref_eligible = len(re.findall(r"blob eligible for deletion", ref_out))
        ours_cmd = [str(REGSWEEP), "gc", f"s3://{REFERENCE_BUCKET}/{name}", "--endpoint-url", via, "--grace", "0s", "--json",
                    "--no-cache", "--max-in-flight", str(max(in_flight))]
        ours_wall, ours_mb, ours_out = peak_rss_mb(ours_cmd, env)
        ours = json.loads(ours_out)
        for who, got in (("reference", ref_eligible), ("regsweep", ours["blobs"]["eligible"])):
            if got != expected["plain"]["blobs"]:
                sys.exit(f"{who} on {name}: {got} eligible, expected {expected['plain']['blobs']}")
        print(f"\nReference store {name} (in a bucket of its own): {expected['blobs']:,} blobs, {objects:,} objects, "
              f"{args.delay_ms} ms a request")
        print("| command | wall | peak RSS |")
        print("|---|---|---|")
        print(f"| docker-registry garbage-collect --dry-run | {ref_wall:.1f} s | {ref_mb:.0f} MB |")
        print(f"| regsweep gc --max-in-flight {max(in_flight)} | {ours_wall:.2f} s | {ours_mb:.0f} MB |")
        print(f"\nreference / regsweep: {ref_wall / ours_wall:.0f}x")
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait()
        garage.stop()


if __name__ == "__main__":
    main()
