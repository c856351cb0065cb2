#!/usr/bin/env python3
"""gc with and without --inventory on S3 at scale, at a real S3's latency (20 ms a request).

    python3 benches/s3_inventory.py [--store s100k:2100:9] [--store s1m:21000:9] [--in-flight 128]
        [--format Parquet] [--dir /var/tmp/regsweep-s3-scale]

On the stores, the Garage node and the latency proxy of benches/s3_scale.py (same DIR: what that
benchmark loaded is reused): an S3 Inventory of each store's prefix is written as AWS delivers one
(tests/support/s3_inventory.py, listing the server directly, not timed) into DIR/inventory-NAME, then
`regsweep gc s3://bench/NAME --grace 0s --json --no-cache --max-in-flight N` runs through the proxy
without and with `--inventory DIR/inventory-NAME/.../manifest.json`. Reported: wall time, peak RSS,
requests by kind (regsweep's counters), the inventory's size and read time. Both runs must find the
generator's eligible blobs and the same plan size.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import s3_scale as scale  # noqa: E402

INVENTORY = scale.ROOT / "tests/support/s3_inventory.py"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", action="append", help="NAME:REPOS:SEED (default s100k:2100:9)")
    ap.add_argument("--delay-ms", type=int, default=20)
    ap.add_argument("--in-flight", type=int, default=128)
    ap.add_argument("--format", default="Parquet", choices=["CSV", "ORC", "Parquet"])
    ap.add_argument("--dir", default="/var/tmp/regsweep-s3-scale")
    args = ap.parse_args()
    stores = args.store or ["s100k:2100:9"]
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    scale.build()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL")}
    env.update(AWS_ACCESS_KEY_ID=scale.KEY_ID, AWS_SECRET_ACCESS_KEY=scale.SECRET, AWS_REGION="us-east-1")
    garage = scale.Garage(base)
    proxy = None
    try:
        direct = f"http://127.0.0.1:{garage.port}"
        generated = [scale.generate(base, s) for s in stores]
        for name, store, _, objects in generated:
            mark = garage.dir / f"loaded-{name}"
            if not mark.exists():
                print(f"loading {name} ({objects:,} objects) into s3://{scale.BUCKET}/{name}", flush=True)
                subprocess.run([str(scale.EXAMPLES / "load_s3"), str(store / "root"), direct, scale.BUCKET, name],
                               check=True, env=env)
                mark.write_text("loaded\n")
        proxy_port = scale.free_port()
        proxy = subprocess.Popen(
            [str(scale.EXAMPLES / "latency_proxy"), str(proxy_port), f"127.0.0.1:{garage.port}", "--delay-ms",
             str(args.delay_ms)],
            stdout=subprocess.DEVNULL,
        )
        scale.wait_port(proxy_port, proxy, "the latency proxy")
        via = f"http://127.0.0.1:{proxy_port}"
        print(f"\nGarage 2.5.0 (lmdb) on loopback, {args.delay_ms} ms added a request by a proxy; "
              f"{os.cpu_count()} cores; --max-in-flight {args.in_flight}; inventory as {args.format}\n")
        print("| store | blobs | objects | blobs from | wall | peak RSS | list | get | requests | eligible |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, store, expected, objects in generated:
            local = base / f"inventory-{name}-{args.format}"
            made = local / "manifest-key.txt"
            if not made.exists():
                t = time.monotonic()
                key = subprocess.run(
                    [sys.executable, str(INVENTORY), direct, scale.BUCKET, "inventory", "inv", args.format.upper(),
                     str(local), "--files", "4", "--source-prefix", f"{name}/", "--unversioned", "--local-only"],
                    check=True, env=env, capture_output=True, text=True).stdout.strip()
                made.write_text(key)
                print(f"(inventory of {name} written in {time.monotonic() - t:.0f} s, not timed below)", flush=True)
            manifest = local / made.read_text().strip()
            size = sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
            base_cmd = [str(scale.REGSWEEP), "gc", f"s3://{scale.BUCKET}/{name}", "--endpoint-url", via, "--grace",
                        "0s", "--json", "--no-cache", "--max-in-flight", str(args.in_flight)]
            runs = {}
            for label, extra in (("listing", []),
                                 (f"inventory ({size / 1e6:.1f} MB)", ["--inventory", str(manifest),
                                                                       "--inventory-max-age", "3650d"])):
                wall, mb, out = scale.peak_rss_mb(base_cmd + extra, env)
                summary = json.loads(out)
                eligible = summary["blobs"]["eligible"]
                if eligible != expected["plain"]["blobs"]:
                    sys.exit(f"{name} ({label}): {eligible} eligible, expected {expected['plain']['blobs']}")
                s3 = summary["s3"]
                runs[label] = eligible
                print(f"| {name} | {expected['blobs']:,} | {objects:,} | {label} | {wall:.1f} s | {mb:.0f} MB | "
                      f"{s3['list_requests']:,} | {s3['get_requests']:,} | "
                      f"{s3['list_requests'] + s3['get_requests']:,} | {eligible:,} |", flush=True)
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait()
        garage.stop()


if __name__ == "__main__":
    main()
