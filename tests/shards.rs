//! A run split over shards: `shard manifests` I/N for every I then `shard merge` gives the same
//! manifest cache as one run reading every manifest, and `apply --shard` I/N for every I then one
//! `apply` over the whole plan leaves the store as one `apply` does; for N = 1, 2 and 4, with the
//! index given as I/N and, as a Kubernetes Indexed Job gives it, in JOB_COMPLETION_INDEX.

#[path = "../fixtures/generator.rs"]
mod generator;
mod support;

use regsweep::pipeline::collect::manifest_cache::{Cached, ManifestCache};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{regsweep, run};

/// Every entry of the manifest cache in `dir`.
fn entries(dir: &Path) -> BTreeMap<String, Cached> {
    let cache = ManifestCache::open(dir);
    let out = cache
        .digests()
        .into_iter()
        .map(|d| {
            (
                d.to_string(),
                cache.get(&d).expect("an entry that checks out"),
            )
        })
        .collect();
    cache.release();
    out
}

/// Every file below `root`, relative to it.
fn files(root: &Path) -> Vec<String> {
    support::files_ending(root, "")
}

fn json(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(&run(cmd)).unwrap()
}

#[test]
fn shards_read_the_same_cache_and_sweep_the_same_store_as_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("gen");
    generator::generate(&generated, 30, 6, 3, 17);
    let store = generated.join("root");

    let one = dir.path().join("cache-one");
    let reference = json(
        regsweep()
            .arg("gc")
            .arg(&store)
            .args(["--grace", "0s", "--json", "--cache-dir"])
            .arg(&one),
    );
    let expected = entries(&one);
    assert!(
        expected.len() > 30,
        "a cache to compare: {}",
        expected.len()
    );
    assert_eq!(
        reference["manifest_cache"]["read"],
        expected.len() as u64,
        "one run reads every manifest"
    );

    for n in [1u32, 2, 4] {
        let parts = dir.path().join(format!("parts-{n}"));
        let mut read = 0;
        for i in 0..n {
            let mut cmd = regsweep();
            cmd.args(["shard", "manifests"])
                .arg(&store)
                .arg("--parts")
                .arg(&parts);
            if n == 4 {
                cmd.args(["--shard", "4"])
                    .env("JOB_COMPLETION_INDEX", i.to_string());
            } else {
                cmd.args(["--shard", &format!("{i}/{n}")]);
            }
            let part = json(cmd.arg("--json"));
            assert_eq!(
                (part["shard"].as_u64(), part["shards"].as_u64()),
                (Some(i.into()), Some(n.into()))
            );
            read += part["read"].as_u64().unwrap();
        }
        assert_eq!(
            read,
            expected.len() as u64,
            "N={n}: each manifest read by one shard"
        );
        let merged_dir = dir.path().join(format!("cache-{n}"));
        let merged = json(
            regsweep()
                .args(["shard", "merge"])
                .arg(&store)
                .arg("--parts")
                .arg(&parts)
                .arg("--cache-dir")
                .arg(&merged_dir)
                .arg("--json"),
        );
        assert_eq!(merged["shards"], n, "{merged}");
        assert_eq!(entries(&merged_dir), expected, "N={n}: the same cache");
        let after = json(
            regsweep()
                .arg("gc")
                .arg(&store)
                .args(["--grace", "0s", "--json", "--cache-dir"])
                .arg(&merged_dir),
        );
        assert_eq!(
            after["manifest_cache"]["read"], 0,
            "N={n}: nothing left to read"
        );
        assert_eq!(after["manifest_cache"]["hits"], expected.len() as u64);
    }

    // A part missing, or one of another store, is refused by name.
    let parts = dir.path().join("parts-2");
    std::fs::remove_file(parts.join("manifests-1-of-2.json")).unwrap();
    let out = regsweep()
        .args(["shard", "merge"])
        .arg(&store)
        .arg("--parts")
        .arg(&parts)
        .arg("--cache-dir")
        .arg(dir.path().join("cache-x"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("1/2") && err.contains("not written"), "{err}");
    let out = regsweep()
        .args(["shard", "manifests"])
        .arg(&store)
        .args(["--shard", "4"])
        .arg("--parts")
        .arg(&parts)
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("JOB_COMPLETION_INDEX"), "{err}");

    // The sweep: one apply, against shards then one apply, each on its own copy of the store.
    let copy = |name: &str| -> (PathBuf, PathBuf) {
        let to = dir.path().join(name);
        run(Command::new("cp").arg("-a").arg(&generated).arg(&to));
        let root = to.join("root");
        let plan = dir.path().join(format!("{name}.plan"));
        run(regsweep()
            .arg("gc")
            .arg(&root)
            .args(["--grace", "0s", "--no-cache", "--plan"])
            .arg(&plan));
        (root, plan)
    };
    let (single, plan) = copy("single");
    let before = files(&single);
    run(regsweep()
        .arg("apply")
        .arg(&plan)
        .arg(&single)
        .arg("--no-cache"));
    let swept = files(&single);
    assert!(swept.len() < before.len(), "the sweep deleted something");
    for n in [1u32, 2, 4] {
        let (root, plan) = copy(&format!("sharded-{n}"));
        let mut blobs = 0;
        for i in 0..n {
            let report = json(regsweep().arg("apply").arg(&plan).arg(&root).args([
                "--no-cache",
                "--json",
                "--shard",
                &format!("{i}/{n}"),
            ]));
            blobs += report["deleted"]["blobs"].as_u64().unwrap_or(0);
        }
        assert_eq!(
            blobs,
            reference["blobs"]["eligible"].as_u64().unwrap(),
            "N={n}: the shards delete every planned blob once"
        );
        run(regsweep()
            .arg("apply")
            .arg(&plan)
            .arg(&root)
            .arg("--no-cache"));
        assert_eq!(
            files(&root),
            swept,
            "N={n}: the store as one apply leaves it"
        );
    }
}

/// The Indexed Job example: as many pods as shards, the index from Kubernetes, and every command
/// line one regsweep takes (each parses up to a final `--help`).
#[test]
fn the_indexed_job_example_runs_one_pod_per_shard_with_commands_regsweep_takes() {
    use serde::Deserialize;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes/indexed-job.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).expect("each document parses"))
        .collect();
    assert_eq!(docs.len(), 2);
    let shards = &docs[0]["spec"];
    assert_eq!(shards["completionMode"], "Indexed");
    assert_eq!(shards["completions"], shards["parallelism"]);
    let args: Vec<String> = shards["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        args.iter().find(|a| a.starts_with("--shard=")).unwrap(),
        &format!("--shard={}", shards["completions"])
    );
    let parses = |line: &[String]| {
        let out = regsweep().args(line).arg("--help").output().unwrap();
        assert!(
            out.status.success(),
            "{line:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    parses(&args);
    // The merge (an init container: the image has no shell), then the plan.
    let spec = &docs[1]["spec"]["template"]["spec"];
    let steps = [
        &spec["initContainers"][0]["args"],
        &spec["containers"][0]["args"],
    ];
    let steps: Vec<Vec<String>> = steps
        .iter()
        .map(|a| {
            (a.as_array().unwrap().iter())
                .map(|w| w.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(steps[0][..2], ["shard", "merge"], "{steps:?}");
    assert_eq!(steps[1][0], "gc", "{steps:?}");
    for step in &steps {
        parses(step);
    }
}
