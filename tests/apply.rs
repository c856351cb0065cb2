//! Plan, then apply, on a store written by the real registry: `apply` deletes what the plan lists
//! when the store has not moved on, refuses (deleting nothing) when it has, and converges when run
//! again.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;
use support::oci;
use support::registry::Registry;
use support::scenario::build_store;
use support::{files_ending, read_plan, regsweep, regsweep_plan, run, skopeo_copy};

/// Every file of the store.
fn files(root: &Path) -> BTreeSet<String> {
    files_ending(root, "").into_iter().collect()
}

fn plan_to(config: &Path, path: &Path) {
    run(regsweep()
        .arg("gc")
        .arg(config)
        .args(["-m", "--grace", "0s", "--plan"])
        .arg(path));
}

/// Runs `apply PLAN CONFIG --json`; returns the exit code, the summary and stderr.
fn apply(plan: &Path, config: &Path) -> (i32, serde_json::Value, String) {
    let out = regsweep()
        .arg("apply")
        .arg(plan)
        .arg(config)
        .arg("--json")
        .output()
        .unwrap();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), summary, stderr)
}

#[test]
fn apply_deletes_the_reviewed_plan_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let s = build_store(dir.path(), Registry::start(dir.path()));
    s.registry.set_read_only();
    let (config, root) = (&s.registry.config, &s.registry.root);
    let plan_path = dir.path().join("plan.ndjson");
    plan_to(config, &plan_path);
    let planned = read_plan(&plan_path);
    let header: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&plan_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kind"], "header");
    assert_eq!(header["delete_untagged"], true);
    assert_eq!(header["tags"], 5);

    let (code, summary, stderr) = apply(&plan_path, config);
    assert_eq!(code, 0, "{stderr}");
    let items = planned.blobs.len()
        + planned.manifests.len()
        + planned.layer_links.len()
        + planned.uploads.len()
        + planned.repositories.len();
    assert_eq!(summary["applied"]["planned"], items);
    assert_eq!(summary["applied"]["eligible"], items);
    assert_eq!(summary["deleted"]["blobs"], planned.blobs.len());
    assert_eq!(summary["deleted"]["manifests"], planned.manifests.len());
    assert_eq!(summary["deleted"]["uploads"], planned.uploads.len());
    // The config names no blob-descriptor cache, so the registry has none: nothing to evict or
    // restart for.
    assert!(
        summary["notice"].is_null() && summary["cache"].is_null(),
        "{summary}"
    );
    let (after, _) = regsweep_plan(config, &["-m", "--grace", "0s"]);
    assert_eq!(after, Default::default(), "nothing left to collect");
    s.pull_every_tag(dir.path());

    // Applied again: everything is gone already, nothing is deleted, and that is not an error.
    let before = files(root);
    let (code, summary, stderr) = apply(&plan_path, config);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["applied"]["already_gone"], items);
    assert_eq!(summary["deleted"]["blobs"], 0);
    assert_eq!(files(root), before);
}

#[test]
fn apply_refuses_when_the_store_moved_on_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = build_store(dir.path(), Registry::start(dir.path()));
    let (config, root) = (&s.registry.config, &s.registry.root);
    let plan_path = dir.path().join("plan.ndjson");
    plan_to(config, &plan_path);
    let planned = read_plan(&plan_path);
    assert!(planned.blobs.contains(&s.orphan));

    // Not in read-only mode: refused unless --force.
    let (code, _, stderr) = apply(&plan_path, config);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("read-only") && stderr.contains("--force"),
        "{stderr}"
    );

    // A planned blob written again since the plan (an upload of the same layer): refused, named.
    s.registry.set_read_only();
    let data = root
        .join("docker/registry/v2/blobs/sha256")
        .join(&s.orphan[7..9])
        .join(&s.orphan[7..])
        .join("data");
    let later = SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&data)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let before = files(root);
    let (code, _, stderr) = apply(&plan_path, config);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&s.orphan) && stderr.contains("written again"),
        "{stderr}"
    );
    assert_eq!(files(root), before, "a refused apply deletes nothing");

    // A tag moved since the plan: refused as a whole.
    let moved = plan_path.with_extension("2.ndjson");
    plan_to(config, &moved);
    oci::single(&dir.path().join("layouts/new"), &["base", "a-new-layer"]);
    skopeo_copy(
        &format!("oci:{}:latest", dir.path().join("layouts/new").display()),
        &s.registry.image("team/app", "v1"),
        &[],
    );
    let before = files(root);
    let (code, _, stderr) = apply(&moved, config);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("tags changed"), "{stderr}");
    assert_eq!(files(root), before, "a refused apply deletes nothing");

    // A file that is not a plan is named with its line.
    let not_a_plan = dir.path().join("items.ndjson");
    std::fs::write(&not_a_plan, "{\"kind\":\"blob\"}\n").unwrap();
    let (code, _, stderr) = apply(&not_a_plan, config);
    assert_eq!(code, 2);
    assert!(stderr.contains("items.ndjson:1"), "{stderr}");
}
