#!/usr/bin/env python3
"""Two regsweep binaries, A and B, on the same store: wall time and peak RSS of the same command,
run alternately (A B A B ...) so that a change in the machine's state weighs on both alike.

    python3 benches/ab.py OLD_BINARY NEW_BINARY STORE [--runs N] [--cache] [-- ARGS...]

Runs `regsweep gc STORE --grace 0s` with ARGS (default: `--no-cache`, a first run that reads every
manifest). With --cache each binary gets its own manifest cache, filled by one untimed run first: the
warm repeat run. Prints the median wall time and peak RSS of each, and B against A.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd):
    """Wall seconds and peak RSS (bytes) of one run of `cmd`, which must succeed."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        os.execv(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)}: exit {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("store", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache", action="store_true", help="the warm repeat run, with a filled cache")
    ap.add_argument("args", nargs="*", help="more arguments for gc (after --)")
    a = ap.parse_args()
    store = a.store / "root" if (a.store / "root" / "docker").is_dir() else a.store
    if not (store / "docker/registry/v2").is_dir():
        sys.exit(f"{store}: no docker/registry/v2 below it")
    with tempfile.TemporaryDirectory(prefix="regsweep-ab-") as tmp:
        cmds = {}
        for side in ("a", "b"):
            cmd = [str(getattr(a, side)), "gc", str(store), "--grace", "0s"] + a.args
            if a.cache:
                cmd += ["--cache-dir", os.path.join(tmp, side)]
                timed(cmd)  # fills the cache
            elif "--no-cache" not in a.args:
                cmd.append("--no-cache")
            cmds[side] = cmd
        got = {"a": [], "b": []}
        for _ in range(a.runs):
            for side in ("a", "b"):
                got[side].append(timed(cmds[side]))
    print(f"store {store}, {a.runs} runs each, {'warm (cache)' if a.cache else 'first run (no cache)'}")
    med = {}
    for side in ("a", "b"):
        walls = [w for w, _ in got[side]]
        rss = [r for _, r in got[side]]
        med[side] = (statistics.median(walls), statistics.median(rss))
        print(
            f"  {side.upper()} {getattr(a, side)}: wall {med[side][0]:.2f} s "
            f"(runs {', '.join(f'{w:.2f}' for w in walls)}), peak RSS {med[side][1] / 2**20:.1f} MiB"
        )
    print(
        f"  B/A: wall {med['b'][0] / med['a'][0]:.3f}, peak RSS {med['b'][1] / med['a'][1]:.3f}"
    )


if __name__ == "__main__":
    main()
