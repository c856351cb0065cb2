//! The collector on stores written file by file: shapes the registry does not make, bad input,
//! referrers, schema 1, grace, and that a parallel and a single-thread run agree.

mod support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;
use support::store::HandStore;
use support::{regsweep_json, regsweep_plan};

const DAY: Duration = Duration::from_secs(86_400);

fn gc(root: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("gc"), root.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    regsweep_json(&args)
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}

#[test]
fn an_unparseable_manifest_stops_delete_and_is_named_while_the_dry_run_reports() {
    let s = HandStore::new();
    let (kept, _) = s.image("r", "kept", None);
    s.tag("r", "v1", &kept);
    let corrupt = s.blob(b"{\"schemaVersion\": 2, \"layers\": [ truncated");
    s.revision("r", &corrupt);
    let orphan = s.blob(b"orphan");
    s.age_all(DAY);

    let (code, summary, _) = gc(&s.root, &["--grace", "0s"]);
    assert_eq!(code, 0);
    let problems = summary["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{summary}");
    assert_eq!(problems[0]["kind"], "corrupt_manifest");
    assert_eq!(problems[0]["digest"], corrupt.as_str());
    assert!(problems[0]["path"].as_str().unwrap().ends_with("/data"));

    let (code, summary, stderr) = gc(&s.root, &["--grace", "0s", "--delete"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&corrupt),
        "the refusal names the manifest: {stderr}"
    );
    assert!(summary.get("deleted").is_none());
    assert!(s.blob_path(&orphan).exists(), "nothing may be deleted");
}

#[test]
fn bad_links_stop_delete_and_name_their_path() {
    let s = HandStore::new();
    let (m, _) = s.image("r", "x", None);
    s.tag("r", "v1", &m);
    s.write("repositories/r/_manifests/tags/empty/current/link", b"");
    let (other, _) = s.image("q", "y", None);
    // A revision link whose content is not its folder's digest.
    s.write(
        &format!(
            "repositories/q/_manifests/revisions/sha256/{}/link",
            &other[7..]
        ),
        m.as_bytes(),
    );
    let orphan = s.blob(b"orphan");
    s.age_all(DAY);

    let (code, summary, _) = gc(&s.root, &["--grace", "0s", "-m"]);
    assert_eq!(code, 0);
    let kinds: Vec<(&str, &str)> = summary["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["path"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds.len(), 2, "{summary}");
    assert!(kinds.iter().all(|(k, _)| *k == "bad_link"));
    assert!(
        kinds
            .iter()
            .any(|(_, p)| p.ends_with("tags/empty/current/link"))
    );
    assert!(kinds.iter().any(|(_, p)| p.contains(&other[7..])));

    let (code, _, _) = gc(&s.root, &["--grace", "0s", "-m", "--delete"]);
    assert_eq!(code, 2);
    assert!(s.blob_path(&orphan).exists());
}

#[test]
fn an_empty_revision_folder_is_not_a_revision() {
    let s = HandStore::new();
    let (m, blobs) = s.image("r", "deleted-through-api", None);
    std::fs::remove_file(s.root.join(format!(
        "docker/registry/v2/repositories/r/_manifests/revisions/sha256/{}/link",
        &m[7..]
    )))
    .unwrap();
    s.age_all(DAY);
    let (plan, _) = regsweep_plan(&s.root, &["--grace", "0s"]);
    assert_eq!(plan.blobs, set(&[&m, &blobs[0], &blobs[1]]));
}

#[test]
fn a_blob_folder_without_its_data_is_no_blob() {
    let s = HandStore::new();
    let (m, _) = s.image("r", "kept", None);
    s.tag("r", "v1", &m);
    let orphan = s.blob(b"orphan");
    // An unreferenced blob whose data is gone and folder left (a delete cut off between the two).
    let empty = s.blob(b"data removed");
    std::fs::remove_file(s.blob_path(&empty)).unwrap();
    s.age_all(DAY);
    for args in [&["--grace", "0s"][..], &["--grace", "0s", "-m"]] {
        let (plan, summary) = regsweep_plan(&s.root, args);
        assert_eq!(plan.blobs, set(&[&orphan]), "{args:?}");
        assert_eq!(
            summary["blobs"]["total"], 4,
            "config, layer, manifest, orphan: {summary}"
        );
        assert_eq!(summary["problems"], serde_json::json!([]));
    }
    let (code, du, _) = support::regsweep_json(&["du".as_ref(), s.root.as_os_str()]);
    assert_eq!((code, &du["blobs"]), (0, &serde_json::json!(4)), "{du}");
}

#[test]
fn repositories_nested_inside_other_repositories_are_both_walked() {
    let s = HandStore::new();
    let (outer, outer_blobs) = s.image("a", "outer", None);
    s.tag("a", "latest", &outer);
    let (inner, inner_blobs) = s.image("a/b", "inner", None);
    s.tag("a/b", "latest", &inner);
    let (untagged, untagged_blobs) = s.image("a/b", "old", None);
    s.age_all(DAY);
    let (plan, summary) = regsweep_plan(&s.root, &["--grace", "0s", "-m"]);
    assert_eq!(summary["repositories"], 2);
    assert_eq!(summary["tags"], 2);
    let expected: BTreeSet<(String, String)> = [("a/b".to_owned(), untagged.clone())].into();
    assert_eq!(plan.manifests, expected);
    assert_eq!(
        plan.blobs,
        set(&[&untagged, &untagged_blobs[0], &untagged_blobs[1]])
    );
    for d in outer_blobs.iter().chain(&inner_blobs) {
        assert!(!plan.blobs.contains(d));
    }
}

#[test]
fn referrers_of_kept_manifests_stay_with_m_and_referrers_of_untagged_ones_go() {
    let s = HandStore::new();
    let (image, _) = s.image("r", "image", None);
    s.tag("r", "v1", &image);
    let (signature, sig_blobs) = s.image("r", "signature", Some(&image));
    let (sbom_of_sig, _) = s.image("r", "sbom-of-signature", Some(&signature));
    let (old, _) = s.image("r", "old", None);
    let (old_sig, old_sig_blobs) = s.image("r", "old-signature", Some(&old));
    s.age_all(DAY);
    let (plan, _) = regsweep_plan(&s.root, &["--grace", "0s", "-m"]);
    let manifests: BTreeSet<String> = plan.manifests.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(manifests, set(&[&old, &old_sig]));
    for d in [&signature, &sbom_of_sig, &sig_blobs[0], &sig_blobs[1]] {
        assert!(
            !plan.blobs.contains(d),
            "{d} of a kept referrer was planned"
        );
    }
    assert!(plan.blobs.contains(&old_sig_blobs[1]));
}

#[test]
fn schema1_manifests_keep_their_layers() {
    let s = HandStore::new();
    let layer = s.blob(b"schema1 layer");
    let m = serde_json::json!({
        "schemaVersion": 1, "name": "old", "tag": "t", "architecture": "amd64",
        "fsLayers": [{"blobSum": layer}], "history": [{"v1Compatibility": "{}"}],
        "signatures": []
    });
    let m = s.blob(m.to_string().as_bytes());
    s.revision("old", &m);
    s.tag("old", "t", &m);
    let orphan = s.blob(b"orphan");
    s.age_all(DAY);
    for args in [&["--grace", "0s"][..], &["--grace", "0s", "-m"]] {
        let (plan, _) = regsweep_plan(&s.root, args);
        assert_eq!(plan.blobs, set(&[&orphan]), "{args:?}");
    }
}

#[test]
fn grace_holds_back_recent_blobs_and_recent_untagged_manifests() {
    let s = HandStore::new();
    let (tagged, _) = s.image("r", "tagged", None);
    s.tag("r", "v1", &tagged);
    let (pushing, pushing_blobs) = s.image("r", "index-child-being-pushed", None);
    let old_orphan = s.blob(b"old orphan");
    s.age_all(DAY);
    let new_orphan = s.blob(b"new orphan");
    s.age_blob(&pushing, Duration::from_secs(60));

    let (plan, summary) = regsweep_plan(&s.root, &["-m", "--grace", "1h"]);
    assert!(
        plan.manifests.is_empty(),
        "a manifest written a minute ago must wait: {plan:?}"
    );
    assert_eq!(plan.blobs, set(&[&old_orphan]));
    assert_eq!(summary["blobs"]["held_by_grace"], 1);
    assert_eq!(summary["manifests"]["held_by_grace"], 1);

    let (plan, _) = regsweep_plan(&s.root, &["-m", "--grace", "0s"]);
    assert_eq!(
        plan.blobs,
        set(&[
            &old_orphan,
            &new_orphan,
            &pushing,
            &pushing_blobs[0],
            &pushing_blobs[1]
        ])
    );
}

#[test]
fn a_symlink_in_the_store_is_never_followed_and_blocks_delete() {
    let s = HandStore::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("data"), b"outside the store").unwrap();
    let (m, _) = s.image("r", "x", None);
    s.tag("r", "v1", &m);
    let orphan = s.blob(b"orphan");
    let shard = s.root.join("docker/registry/v2/blobs/sha256/ab");
    std::fs::create_dir_all(&shard).unwrap();
    std::os::unix::fs::symlink(outside.path(), shard.join("ab".repeat(32))).unwrap();
    s.age_all(DAY);

    let (code, summary, _) = gc(&s.root, &["--grace", "0s"]);
    assert_eq!(code, 0);
    assert_eq!(summary["problems"][0]["kind"], "unreadable", "{summary}");
    let (code, _, _) = gc(&s.root, &["--grace", "0s", "--delete"]);
    assert_eq!(code, 2);
    assert!(outside.path().join("data").exists());
    assert!(s.blob_path(&orphan).exists());
}

#[test]
fn one_thread_and_many_threads_plan_the_same() {
    let s = HandStore::new();
    for i in 0..40 {
        let repo = format!("team{}/app{i}", i % 3);
        let (m, _) = s.image(&repo, &format!("img{i}"), None);
        if i % 4 != 0 {
            s.tag(&repo, "latest", &m);
        }
        s.blob(format!("orphan {i}").as_bytes());
    }
    s.age_all(DAY);
    let dir = tempfile::tempdir().unwrap();
    let plan_file = |name: &str| dir.path().join(name);
    for (threads, name) in [("1", "one"), ("4", "many")] {
        let out = support::regsweep()
            .env("RAYON_NUM_THREADS", threads)
            .args(["gc", "-m", "--grace", "0s", "--plan"])
            .arg(plan_file(name))
            .arg(&s.root)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    // The same file but for when each was made (two runs can straddle a second).
    let read = |name: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(plan_file(name)).unwrap();
        let mut lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let header = lines[0].as_object_mut().unwrap();
        assert!(header.remove("created").is_some() && header.remove("created_unix").is_some());
        lines
    };
    let one = read("one");
    assert_eq!(one, read("many"));
    assert_eq!(one.iter().filter(|l| l["kind"] == "manifest").count(), 10);
}

#[test]
fn a_store_that_cannot_be_listed_is_an_error_not_an_empty_store() {
    let s = HandStore::new();
    s.blob(b"some blob");
    // `repositories` is a file where a folder must be: the walk cannot list it.
    s.write("repositories", b"not a folder");
    let (code, summary, stderr) = gc(&s.root, &["--grace", "0s"]);
    assert_eq!(code, 2, "{summary}");
    assert!(
        stderr.contains("repositories"),
        "the error names what could not be listed: {stderr}"
    );
    assert!(
        summary.is_null(),
        "no plan may be printed from a partial walk"
    );
}
