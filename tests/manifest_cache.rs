//! The manifest cache: a run over a store that changed little reads only its new manifests, and
//! plans exactly what a run without the cache plans, however the store changed and whatever
//! happened to the cache file.

mod support;

use std::path::Path;
use std::time::Duration;
use support::store::HandStore;
use support::{PlanSets, read_plan, regsweep, run};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// `gc -m --grace 0s` with the cache in `cache` (or `--no-cache`): the plan and the summary.
fn gc(storage: &Path, cache: Option<&Path>, extra: &[&str]) -> (PlanSets, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.ndjson");
    let mut cmd = regsweep();
    cmd.arg("gc")
        .arg(storage)
        .args(["-m", "--grace", "0s", "--json", "--plan"]);
    cmd.arg(&plan).args(extra);
    match cache {
        Some(c) => cmd.arg("--cache-dir").arg(c),
        None => cmd.arg("--no-cache"),
    };
    let summary: serde_json::Value = serde_json::from_str(&run(&mut cmd)).unwrap();
    (read_plan(&plan), summary)
}

/// (hits, added) of a run's cache report.
fn cache_use(summary: &serde_json::Value) -> (u64, u64) {
    let c = &summary["manifest_cache"];
    (c["hits"].as_u64().unwrap(), c["added"].as_u64().unwrap())
}

/// An index of two platform images, its children linked in `repo`; returns the index's digest.
fn index(s: &HandStore, repo: &str, seed: &str) -> String {
    let children: Vec<serde_json::Value> = ["amd64", "arm64"]
        .iter()
        .map(|arch| {
            let (m, _) = s.image(repo, &format!("{seed}-{arch}"), None);
            let size = std::fs::metadata(s.blob_path(&m)).unwrap().len();
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": m,
                "size": size,
                "platform": {"os": "linux", "architecture": arch},
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children,
    });
    let d = s.blob(index.to_string().as_bytes());
    s.revision(repo, &d);
    d
}

#[test]
fn a_store_that_changes_between_runs_plans_the_same_with_the_cache_as_without() {
    let s = HandStore::new();
    let (a, _) = s.image("team/app", "a", None);
    let (b, _) = s.image("team/app", "b", None);
    s.tag("team/app", "v1", &a);
    let multi = index(&s, "multi/app", "m");
    s.tag("multi/app", "latest", &multi);
    let (gone, gone_blobs) = s.image("gone/img", "g", None);
    s.tag("gone/img", "1.0", &gone);
    s.blob(b"an orphan");
    s.age_all(DAY);
    let cache = tempfile::tempdir().unwrap();
    let manifests = 6; // a, b, the index and its two children, gone

    // The first run reads every manifest and adds it; the second reads none.
    let (first, summary) = gc(&s.root, Some(cache.path()), &[]);
    assert_eq!(cache_use(&summary), (0, manifests), "{summary}");
    let (second, summary) = gc(&s.root, Some(cache.path()), &[]);
    assert_eq!(cache_use(&summary), (manifests, 0), "{summary}");
    assert_eq!(second, first);
    assert_eq!(first, gc(&s.root, None, &[]).0);
    assert!(first.manifests.contains(&("team/app".into(), b.clone())));

    // The store changes: a new image, a tag moved, a manifest deleted (as the API deletes one:
    // its revision link and the tag that named it go).
    let (c, c_blobs) = s.image("team/new", "c", None);
    s.tag("team/new", "latest", &c);
    s.tag("team/app", "v1", &b);
    let v2 = s
        .root
        .join("docker/registry/v2/repositories/gone/img/_manifests");
    std::fs::remove_dir_all(v2.join("revisions/sha256").join(&gone[7..])).unwrap();
    std::fs::remove_dir_all(v2.join("tags/1.0")).unwrap();
    s.age_all(DAY);

    let (cached, summary) = gc(&s.root, Some(cache.path()), &[]);
    let (uncached, plain) = gc(&s.root, None, &[]);
    assert_eq!(cached, uncached, "{summary}\n{plain}");
    // Only the new manifest is read; the deleted one is no longer asked for.
    assert_eq!(cache_use(&summary), (manifests - 1, 1), "{summary}");
    assert_eq!(summary["manifest_cache"]["read"], 1, "{summary}");
    // And the plan follows the changes: the moved-from image goes, the moved-to one stays, the
    // deleted manifest's blobs go, the new image's stay.
    assert!(cached.manifests.contains(&("team/app".into(), a.clone())));
    assert!(!cached.manifests.contains(&("team/app".into(), b.clone())));
    assert!(cached.blobs.contains(&gone) && cached.blobs.contains(&gone_blobs[1]));
    assert!(!cached.blobs.contains(&c) && !cached.blobs.contains(&c_blobs[0]));
    for k in ["blobs", "manifests", "layer_links"] {
        assert_eq!(summary[k], plain[k], "{k}");
    }
}

#[test]
fn a_damaged_truncated_or_foreign_cache_file_is_survived_with_a_note_and_the_same_plan() {
    let s = HandStore::new();
    for i in 0..12 {
        let (m, _) = s.image(&format!("r{}", i % 3), &format!("img{i}"), None);
        if i % 2 == 0 {
            s.tag(&format!("r{}", i % 3), &format!("t{i}"), &m);
        }
    }
    s.age_all(DAY);
    let cache = tempfile::tempdir().unwrap();
    let file = cache.path().join("manifests-v3");
    let (expected, _) = gc(&s.root, None, &[]);
    assert!(!expected.manifests.is_empty());
    let (warm, summary) = gc(&s.root, Some(cache.path()), &[]);
    assert_eq!(warm, expected);
    assert_eq!(cache_use(&summary), (0, 12));
    let good = std::fs::read(&file).unwrap();

    let mut flipped_record = good.clone();
    let at = good.len() - 20;
    flipped_record[at] ^= 0x01;
    let mut flipped_index = good.clone();
    flipped_index[60] ^= 0x80;
    let damaged: [(&str, Vec<u8>); 5] = [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        (
            "foreign",
            b"PK\x03\x04 some zip file, not a cache".repeat(4),
        ),
        ("a record's byte flipped", flipped_record),
        ("an index byte flipped", flipped_index),
    ];
    for (what, bytes) in damaged {
        std::fs::write(&file, &bytes).unwrap();
        let (plan, summary) = gc(&s.root, Some(cache.path()), &[]);
        assert_eq!(plan, expected, "{what}");
        let notes = summary["manifest_cache"]["notes"].as_array().unwrap();
        assert!(
            !notes.is_empty(),
            "{what}: a note says what was wrong: {summary}"
        );
        assert!(
            notes[0].as_str().unwrap().contains("manifests-v3"),
            "{what}: names the file: {summary}"
        );
        assert_eq!(summary["problems"], serde_json::json!([]), "{what}");
        // What was read again is written back: the next run reads nothing and notes nothing.
        let (plan, summary) = gc(&s.root, Some(cache.path()), &[]);
        assert_eq!(plan, expected, "{what}");
        assert_eq!(cache_use(&summary), (12, 0), "{what}: {summary}");
        assert_eq!(summary["manifest_cache"]["notes"], serde_json::json!([]));
    }
}

#[test]
fn the_cache_is_shared_by_commands_found_in_the_users_cache_folder_and_off_with_no_cache() {
    let s = HandStore::new();
    let (m, _) = s.image("r", "one", None);
    s.tag("r", "v1", &m);
    s.image("r", "two", None);
    let home = tempfile::tempdir().unwrap();
    let with_home = |args: &[&str]| {
        let mut cmd = regsweep();
        cmd.env("XDG_CACHE_HOME", home.path())
            .args(args)
            .arg(&s.root);
        cmd.output().unwrap()
    };
    let file = home.path().join("regsweep/manifests-v3");

    // --no-cache neither reads nor writes it, and says nothing of it.
    let out = with_home(&["gc", "--json", "--no-cache"]);
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary.get("manifest_cache").is_none(), "{summary}");
    assert!(!home.path().join("regsweep").exists());

    // audit reads every manifest (it checks the store's data, not what the cache remembers) and
    // fills the cache in the user's cache folder; du and gc then read no manifest.
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&with_home(args).stdout).unwrap()
    };
    let audit = json(&["audit", "--json"]);
    assert_eq!(audit["manifest_cache"]["path"], file.display().to_string());
    assert_eq!(cache_use(&audit), (0, 2), "{audit}");
    assert!(file.is_file());
    for command in ["du", "gc"] {
        let summary = json(&[command, "--json"]);
        assert_eq!(cache_use(&summary), (2, 0), "{command}: {summary}");
    }
    let audit = json(&["audit", "--json"]);
    assert_eq!(
        cache_use(&audit),
        (0, 0),
        "audit reads them all again: {audit}"
    );
    assert_eq!(audit["summary"]["manifests"], 2);
    // The human report says where it is and what it gave.
    let out = with_home(&["gc"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("manifest cache 2 from the cache, 0 read from the store, 0 added")
            && text.contains(&file.display().to_string()),
        "{text}"
    );

    // The two options together are a usage error, before any work.
    let out = with_home(&["gc", "--no-cache", "--cache-dir", "/tmp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--no-cache"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_second_dry_run_of_an_unchanged_bucket_makes_list_requests_only() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _s) = support::scenario::build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    let cache = dir.path().join("cache");
    let endpoint = s3.endpoint();
    let args = ["--endpoint-url", endpoint.as_str()];
    let (first, summary) = gc(url, Some(&cache), &args);
    assert!(!first.blobs.is_empty());
    let manifests = cache_use(&summary).1;
    assert!(manifests > 0, "{summary}");
    assert_eq!(summary["s3"]["get_requests"], manifests, "{summary}");

    let (second, summary) = gc(url, Some(&cache), &args);
    assert_eq!(second, first);
    assert_eq!(cache_use(&summary), (manifests, 0), "{summary}");
    let requests = &summary["s3"];
    assert_eq!(requests["get_requests"], 0, "{summary}");
    assert!(requests["list_requests"].as_u64().unwrap() > 0);
    assert_eq!(second, gc(url, None, &args).0, "and the same without it");
}
