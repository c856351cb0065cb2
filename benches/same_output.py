#!/usr/bin/env python3
"""Two regsweep binaries against the same stores: every report, human and `--json`, and every plan
file, compared byte for byte, with only what differs from run to run set aside (elapsed times,
rates, a plan's creation time). For a change that must not change behaviour (a refactoring).

    python3 benches/same_output.py OLD_BINARY NEW_BINARY STORE [STORE ...]

Each binary runs on a fresh copy of each store (hard links: the commands are dry runs and reports,
which write no file of the store), at the same path, so that reports naming it name the same one. Prints each difference and exits 1 if there is
one, 0 (with the count of outputs compared) if there is none.
"""

import argparse
import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Dry runs and reports, each run as given and with --json; `{plan}` is a plan file to write.
COMMANDS = [
    ["gc", "{store}", "--grace", "0s", "--no-cache"],
    ["gc", "{store}", "--grace", "0s", "--no-cache", "-m"],
    ["gc", "{store}", "--grace", "0s", "--no-cache", "-m", "--plan", "{plan}"],
    ["gc", "{store}", "--grace", "0s", "--no-cache", "--plan", "{plan}"],
    ["gc", "{store}", "--no-cache", "-m", "--trash", "7d", "--grace", "0s"],
    ["gc", "{store}", "--no-cache", "--grace", "1h"],
    ["du", "{store}", "--no-cache"],
    ["du", "{store}", "--no-cache", "--top", "5"],
    ["audit", "{store}", "--no-cache"],
    ["prune-tags", "{store}", "--repo", "**", "--keep-last", "2"],
    ["prune-tags", "{store}", "--repo", "**", "--keep-last", "1", "--plan", "{plan}"],
    ["prune-tags", "{store}", "--all-tags", "--repo", "nothing-matches-*"],
    ["trash", "list", "{store}"],
]

# Fields and phrases that differ between two runs of one binary.
VOLATILE_KEYS = {
    "created_unix",
    "elapsed_seconds", "elapsed_ms", "elapsed", "seconds", "created_unix", "created", "duration_seconds",
    "rate", "per_second", "started", "started_unix", "now", "age_seconds", "until",
}
VOLATILE_TEXT = [
    (re.compile(r"\d+(\.\d+)?\s?(ms|s|µs)\b"), "<time>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<date>"),
    (re.compile(r"\b\d+(\.\d+)? ?[kKMG]?(blobs|manifests|keys)/s\b"), "<rate>"),
    (re.compile(r"regsweep-[a-z]+-[A-Za-z0-9_]+"), "<tmp>"),
]


def scrub(value):
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in VOLATILE_KEYS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def scrub_text(text):
    for pattern, repl in VOLATILE_TEXT:
        text = pattern.sub(repl, text)
    return text


def normal(out, as_json):
    if as_json:
        try:
            return json.dumps(scrub(json.loads(out)), indent=1, sort_keys=True)
        except json.JSONDecodeError:
            pass
        try:
            # A plan file: one JSON object a line.
            lines = [scrub(json.loads(line)) for line in out.splitlines() if line.strip()]
            return "\n".join(json.dumps(line, sort_keys=True) for line in lines)
        except json.JSONDecodeError:
            pass
    return scrub_text(out)


def forms():
    """Every command line, as given and with `--json`."""
    return [f for args in COMMANDS for f in (args, args + ["--json"])]


def run(binary, args, store, work):
    plan = work / "plan.json"
    if plan.exists():
        plan.unlink()
    argv = [str(binary)] + [a.format(store=store, plan=plan) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=work)
    as_json = "--json" in args
    outputs = {
        "exit": str(p.returncode),
        "stdout": normal(p.stdout, as_json),
        "stderr": scrub_text(p.stderr),
    }
    if plan.exists():
        outputs["plan"] = normal(plan.read_text(), True)
    return outputs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("stores", type=Path, nargs="+")
    a = ap.parse_args()
    for b in (a.old, a.new):
        if not b.is_file():
            sys.exit(f"{b}: no such binary")
    differences = compared = 0
    with tempfile.TemporaryDirectory(prefix="regsweep-same-") as tmp:
        tmp = Path(tmp)
        for store in a.stores:
            if not (store / "docker/registry/v2").is_dir() and (store / "root").is_dir():
                store = store / "root"  # a generated store: genstore writes it below root/
            if not (store / "docker/registry/v2").is_dir():
                sys.exit(f"{store}: no docker/registry/v2 below it: not a registry's store")
            # Each binary runs on its own fresh copy, at the same path, so that reports naming
            # the store name the same one.
            copy, work = tmp / store.name, tmp / "work"
            got = {}
            for side in ("old", "new"):
                shutil.rmtree(copy, ignore_errors=True)
                shutil.rmtree(work, ignore_errors=True)
                # Hard links: the commands are dry runs, which write no file of the store (a
                # generated store's files are sparse, and a real copy would fill the disk).
                subprocess.run(["cp", "-al", str(store), str(copy)], check=True)
                work.mkdir()
                binary = getattr(a, side)
                got[side] = [run(binary, form, copy, work) for form in forms()]
            for form, old, new in zip(forms(), got["old"], got["new"]):
                for what in sorted(set(old) | set(new)):
                    compared += 1
                    if old.get(what, "") != new.get(what, ""):
                        differences += 1
                        print(f"== {store.name}: regsweep {' '.join(form)}: {what} differs")
                        sys.stdout.writelines(
                            difflib.unified_diff(
                                old.get(what, "").splitlines(True),
                                new.get(what, "").splitlines(True),
                                "old",
                                "new",
                                n=2,
                            )
                        )
    if differences:
        print(f"{differences} of {compared} outputs differ")
        sys.exit(1)
    print(f"{compared} outputs compared ({len(COMMANDS) * 2} command lines a store), none differs")


if __name__ == "__main__":
    main()
