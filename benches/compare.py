#!/usr/bin/env python3
"""regsweep against the reference collector on generated stores: median wall time, ratio, peak RSS.

    python3 benches/compare.py [--runs 3] [--store NAME:REPOS:SEED ...] [--dir DIR] [--extra CMD ...]
                               [--cold] [--timeline]

For each store (generated once with `cargo run --release --example genstore` into DIR/NAME when
missing), runs `regsweep gc ROOT --grace 0s --no-cache` (a first run: every manifest is read),
`regsweep gc ROOT --grace 0s` into an empty `--cache-dir` (a first run that fills the manifest
cache: every manifest read and written to it), `regsweep gc ROOT --grace 0s` with a manifest cache
that one untimed run filled (the nightly repeat run over an unchanged store: no manifest is read) and `docker-registry garbage-collect
--dry-run CONFIG`, interleaved, `--runs` times each after one untimed warm-up run of each (warm page cache),
and prints a Markdown table: median wall time, user and system CPU, cores busy ((user+sys)/wall),
peak RSS, bytes of RSS per blob, and the ratio of the medians. `--extra` adds regsweep
subcommands measured the same way (for example `du` or `audit`), with ROOT appended.

`--cold` drops the page cache (`sync; echo 3 > /proc/sys/vm/drop_caches`, root only) before every
run instead of warming up. `--timeline` also runs `regsweep gc` once per store while sampling its CPU
time from /proc every 0.25 s, and prints how many cores were busy in each interval.

Both eligible-blob counts are compared on every run: a benchmark of two programs that disagree
measures nothing, so a disagreement stops it.
"""

import argparse
import json
import os
import re
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


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout, wall s, user s, sys s, max RSS KiB)."""
    fmt = "TIMED %e %U %S %M"
    p = subprocess.run(
        ["/usr/bin/time", "-f", fmt] + cmd,
        capture_output=True,
        text=True,
        env=env,
    )
    line = [l for l in p.stderr.splitlines() if l.startswith("TIMED ")]
    if not line:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    wall, user, system, rss = line[-1].split()[1:]
    return p.stdout, float(wall), float(user), float(system), int(rss)


def drop_caches():
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as e:
        sys.exit(f"--cold needs root to write /proc/sys/vm/drop_caches: {e}")


def timeline(cmd, env, step=0.25):
    """Runs cmd, sampling its CPU time; returns [(t, cores busy over the interval ending at t)]."""
    tick = os.sysconf("SC_CLK_TCK")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    stat = Path(f"/proc/{p.pid}/stat")
    out, last, t0 = [], 0, time.monotonic()
    while p.poll() is None:
        time.sleep(step)
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            break
        cpu = (int(fields[11]) + int(fields[12])) / tick
        out.append((time.monotonic() - t0, (cpu - last) / step))
        last = cpu
    p.wait()
    return out


def ensure_store(base, name, repos, seed):
    out = base / name
    if not (out / "expected.json").exists():
        print(f"generating {out} ({repos} repositories, seed {seed})", file=sys.stderr)
        subprocess.run(
            [str(GENSTORE), str(out), "--repos", str(repos), "--images", "10", "--seed", str(seed)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def ours_eligible(stdout):
    return json.loads(stdout)["blobs"]["eligible"]


def reference_eligible(stdout):
    return len(re.findall(r"blob eligible for deletion", stdout))


def row(name, samples, blobs):
    walls = [s[1] for s in samples]
    med = statistics.median(walls)
    user = statistics.median(s[2] for s in samples)
    system = statistics.median(s[3] for s in samples)
    rss = max(s[4] for s in samples)
    busy = (user + system) / med if med else 0
    return med, (
        f"| {name} | {med:.2f} s | {user:.2f} s | {system:.2f} s | {busy:.2f} | "
        f"{rss / 1024:.1f} MB | {rss * 1024 / blobs:.0f} |"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/var/tmp/regsweep-bench")
    ap.add_argument(
        "--store",
        action="append",
        help="NAME:REPOS:SEED (default g100k:2100:7 and g1m:21000:9)",
    )
    ap.add_argument("--extra", action="append", default=[], help="a regsweep subcommand")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before every run")
    ap.add_argument("--timeline", action="store_true", help="cores busy over one gc run")
    args = ap.parse_args()
    stores = args.store or ["g100k:2100:7", "g1m:21000:9"]
    subprocess.run(
        ["cargo", "build", "--release", "--example", "genstore", "--bin", "regsweep"],
        cwd=ROOT,
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    cache = "cold (page cache dropped before each run)" if args.cold else "warm"
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; runs: {args.runs}; cache: {cache}\n")
    for spec in stores:
        name, repos, seed = spec.split(":")
        store = ensure_store(base, name, int(repos), int(seed))
        expected = json.loads((store / "expected.json").read_text())
        blobs = expected["blobs"]
        root, config = str(store / "root"), str(store / "config.yml")
        gc = [str(REGSWEEP), "gc", root, "--grace", "0s", "--json"]
        cache = tempfile.mkdtemp(prefix="regsweep-bench-cache-")
        commands = {
            "regsweep gc": gc + ["--no-cache"],
            # FRESH: a new empty folder each run.
            "regsweep gc, first run (empty cache)": gc + ["--cache-dir", "FRESH"],
            "regsweep gc, repeat run (cache)": gc + ["--cache-dir", cache],
        }
        timed(commands["regsweep gc, repeat run (cache)"], env)  # fills the cache
        for extra in args.extra:
            commands[f"regsweep {extra}"] = [str(REGSWEEP)] + extra.split() + [root]
        if not args.no_reference:
            commands["reference"] = ["docker-registry", "garbage-collect", "--dry-run", config]
        samples = {k: [] for k in commands}
        for i in range(1 if args.cold else 0, args.runs + 1):
            for label, cmd in commands.items():
                fresh = None
                if "FRESH" in cmd:
                    fresh = tempfile.mkdtemp(prefix="regsweep-bench-fresh-")
                    cmd = [fresh if c == "FRESH" else c for c in cmd]
                if args.cold:
                    drop_caches()
                out = timed(cmd, env)
                if fresh:
                    shutil.rmtree(fresh, ignore_errors=True)
                if label.startswith("regsweep gc"):
                    got = ours_eligible(out[0])
                elif label == "reference":
                    got = reference_eligible(out[0])
                else:
                    got = None
                if got is not None and got != expected["plain"]["blobs"]:
                    sys.exit(f"{label} found {got} eligible blobs, expected {expected['plain']['blobs']}")
                if i > 0:
                    samples[label].append(out)
        print(f"### {name}: {blobs:,} blobs, {expected['repositories']:,} repositories, "
              f"{expected['revisions']:,} revisions\n")
        print("| command | median wall | user | sys | cores busy | peak RSS | RSS bytes/blob |")
        print("|---|---|---|---|---|---|---|")
        medians = {}
        for label, s in samples.items():
            medians[label], line = row(label, s, blobs)
            print(line)
        if "reference" in medians:
            for label in ("regsweep gc", "regsweep gc, repeat run (cache)"):
                print(f"\nreference / {label}: {medians['reference'] / medians[label]:.1f}x")
            print()
        shutil.rmtree(cache, ignore_errors=True)
        if args.timeline:
            if args.cold:
                drop_caches()
            samples = timeline(commands["regsweep gc"], env)
            print("\ncores busy during one `regsweep gc` run (0.25 s intervals):\n")
            print("| t | cores busy |")
            print("|---|---|")
            for t, busy in samples:
                print(f"| {t:.2f} s | {busy:.2f} |")
            print()


if __name__ == "__main__":
    main()
