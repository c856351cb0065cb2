#!/usr/bin/env python3
"""regsweep on S3 at ten million blobs, without a server loaded with them: a virtual bucket.

    python3 benches/virtual_s3.py [--store v1m:21000:9] [--store v10m:210000:9] [--delay-ms 20]
        [--in-flight 128] [--delete] [--check-plan DIR] [--du]

For each store NAME:REPOS:SEED it starts fixtures/virtual_bucket.rs (the store `genstore --repos REPOS
--images 10 --seed SEED --layer-span 1024` (or `--layer-span B`) would write, generated in memory and served as an S3 bucket,
nothing stored) behind fixtures/latency_proxy.rs (--delay-ms a request), and runs through the proxy:

- `regsweep gc s3://bench/NAME --grace 0s --json --no-cache --max-in-flight N`: wall time, peak RSS,
  requests by kind (regsweep's counters and the server's), requests against the floor (one list page
  per 1,000 keys plus one GET per distinct manifest);
- with --du, `regsweep du` the same way;
- with --delete, `regsweep gc ... -m --delete --force`: the server answers and counts DeleteObjects
  and keeps every object, so the run is repeatable;
- with --check-plan DIR, the plan of `gc -m --plan` on the virtual bucket against the plan of the
  same command on the store genstore writes into DIR/NAME from the same arguments (a filesystem store;
  made when missing; `--layer-span 67108864` is genstore's default, so `--store g1m:21000:9
  --check-plan /work/stores` checks against BENCHMARKS.md's g1m): the items must be the same.

Every run's eligible-blob count must equal the generator's, or the benchmark stops.
"""

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `REGSWEEP_BENCH_PROFILE=profiling` measures the quicker-built profile instead of release.
PROFILE = os.environ.get("REGSWEEP_BENCH_PROFILE", "release")
REGSWEEP = ROOT / "target" / PROFILE / "regsweep"
EXAMPLES = ROOT / "target" / PROFILE / "examples"
LAYER_SPAN = 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measured(cmd, env):
    """Runs cmd; returns (wall s, peak RSS MB, stdout)."""
    p = subprocess.run(["/usr/bin/time", "-f", "TIMED %e %M"] + cmd, capture_output=True, text=True, env=env)
    line = [l for l in p.stderr.splitlines() if l.startswith("TIMED ")]
    if p.returncode != 0 or not line:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    wall, rss = line[-1].split()[1:]
    return float(wall), int(rss) / 1024, p.stdout


def stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_virtual/stats") as r:
        return json.load(r)


def plan_items(path, root_of_keys):
    """The plan's items, each as its JSON without the header, the store's own part of keys dropped."""
    items = []
    for line in Path(path).read_text().splitlines()[1:]:
        items.append(line.replace(root_of_keys, ""))
    return sorted(items)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", action="append", help="NAME:REPOS:SEED (repeatable; default v1m:21000:9)")
    ap.add_argument("--delay-ms", type=int, default=20)
    ap.add_argument("--in-flight", type=int, default=128)
    ap.add_argument("--delete", action="store_true", help="also time gc -m --delete --force")
    ap.add_argument("--du", action="store_true", help="also time du")
    ap.add_argument("--check-plan", metavar="DIR", help="compare the plan with the filesystem store's")
    ap.add_argument("--layer-span", type=int, default=LAYER_SPAN,
                    help="layer sizes 1 KiB to 1 KiB + this (genstore's default is 67108864)")
    args = ap.parse_args()
    stores = args.store or ["v1m:21000:9"]
    subprocess.run(
        ["cargo", "build", "--profile", PROFILE, "--bin", "regsweep", "--example", "virtual_bucket", "--example",
         "latency_proxy", "--example", "genstore"],
        cwd=ROOT, check=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL")}
    env.update(AWS_ACCESS_KEY_ID="virtual", AWS_SECRET_ACCESS_KEY="virtual", AWS_REGION="us-east-1")
    print(f"virtual bucket on loopback, {args.delay_ms} ms added a request by a proxy; "
          f"{os.cpu_count()} cores; {args.in_flight} requests in flight\n")
    print("| store | blobs | objects | command | wall | peak RSS | list | get | delete | floor | over floor | "
          "server generated in |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for spec in stores:
        name, repos, seed = spec.split(":")
        port = free_port()
        started = time.monotonic()
        server = subprocess.Popen(
            [str(EXAMPLES / "virtual_bucket"), str(port), "bench", name, "--repos", repos, "--images", "10",
             "--seed", seed, "--layer-span", str(args.layer_span)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        proxy = None
        try:
            ready = server.stdout.readline().split()
            if not ready or ready[0] != "listening":
                sys.exit(f"virtual_bucket did not start:\n{server.stderr.read()[-2000:]}")
            generated_in = time.monotonic() - started
            objects = int(ready[2])
            made = server.stderr.readline()
            expected = json.loads(made.split("expected ", 1)[1])
            proxy_port = free_port()
            proxy = subprocess.Popen(
                [str(EXAMPLES / "latency_proxy"), str(proxy_port), f"127.0.0.1:{port}", "--delay-ms",
                 str(args.delay_ms)],
                stdout=subprocess.PIPE, text=True,
            )
            proxy.stdout.readline()
            via = f"http://127.0.0.1:{proxy_port}"
            base = ["s3://bench/" + name, "--endpoint-url", via, "--no-cache",
                    "--max-in-flight", str(args.in_flight), "--json"]
            gc = ["gc"] + base + ["--grace", "0s"]
            runs = [("gc", gc, "plain")]
            if args.du:
                runs.append(("du", ["du"] + base, None))
            if args.delete:
                runs.append(("gc -m --delete", gc + ["-m", "--delete", "--force"], "untagged"))
            floor = math.ceil(objects / 1000) + expected["revisions"]
            for label, cmd, mode in runs:
                before = stats(port)
                wall, mb, out = measured([str(REGSWEEP)] + cmd, env)
                after = stats(port)
                got = json.loads(out)
                if mode:
                    eligible = (got.get("deleted") or {}).get("blobs", got["blobs"]["eligible"])
                    if eligible != expected[mode]["blobs"]:
                        sys.exit(f"{name} {label}: {eligible} blobs, the generator says {expected[mode]['blobs']}")
                d = {k: after[k] - before[k] for k in after}
                total = d["list"] + d["get"]
                print(f"| {name} | {expected['blobs']:,} | {objects:,} | {label} | {wall:.1f} s | {mb:.0f} MB | "
                      f"{d['list']:,} | {d['get']:,} | {d['deleted_keys']:,} keys in {d['delete_objects']:,} | "
                      f"{floor:,} | {100 * (total - floor) / floor:+.1f}% | {generated_in:.0f} s |", flush=True)
            if args.check_plan:
                store = Path(args.check_plan) / name
                if not (store / "expected.json").exists():
                    subprocess.run([str(EXAMPLES / "genstore"), str(store), "--repos", repos, "--images", "10",
                                    "--seed", seed, "--layer-span", str(args.layer_span)],
                                   check=True, stdout=subprocess.DEVNULL)
                plans = {}
                for where, target, extra in (("virtual", "s3://bench/" + name, ["--endpoint-url", via]),
                                             ("filesystem", str(store / "root"), [])):
                    plan = Path(f"/tmp/virtual-s3-{name}-{where}.plan")
                    subprocess.run([str(REGSWEEP), "gc", target, "--grace", "0s", "-m", "--no-cache",
                                    "--plan", str(plan)] + extra,
                                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    plans[where] = plan_items(plan, "")
                    plan.unlink()
                same = plans["virtual"] == plans["filesystem"]
                print(f"\n{name}: gc -m plan on the virtual bucket {'equals' if same else 'DIFFERS FROM'} the "
                      f"filesystem store's ({len(plans['virtual']):,} and {len(plans['filesystem']):,} items)\n")
                if not same:
                    # A store DIR/NAME already there is compared as it is: one written with another
                    # layer span (genstore's default is 67108864) differs in every size.
                    print(f"(the filesystem store was made with the layer span it was made with; this run's is "
                          f"{args.layer_span}: pass --layer-span with the one {store} was written with)")
                    sys.exit(1)
        finally:
            for p in (proxy, server):
                if p:
                    p.terminate()
                    p.wait()


if __name__ == "__main__":
    main()
