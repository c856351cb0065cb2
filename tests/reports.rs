//! `du` and `audit` on stores written by the real registry: du's sums against a count the test makes
//! itself from the store's files, and audit clean, then naming each fault planted in the store.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use support::registry::Registry;
use support::scenario::build_store;
use support::store::HandStore;
use support::{reference_dry_run, regsweep_json, regsweep_plan};

const V2: &str = "docker/registry/v2";

fn data_path(root: &Path, digest: &str) -> PathBuf {
    let hex = &digest["sha256:".len()..];
    root.join(V2)
        .join("blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

fn size(root: &Path, digest: &str) -> u64 {
    std::fs::metadata(data_path(root, digest)).map_or(0, |m| m.len())
}

/// The repositories of the store and their tags' targets, read from the folders.
fn tag_targets(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in support::files_ending(&root.join(V2).join("repositories"), "/current/link") {
        let (repo, _) = key.split_once("/_manifests/tags/").unwrap();
        let target =
            std::fs::read_to_string(root.join(V2).join("repositories").join(&key)).unwrap();
        out.entry(repo.to_owned())
            .or_default()
            .push(target.trim().to_owned());
    }
    for key in support::files_ending(&root.join(V2).join("repositories"), "/link") {
        if let Some((repo, _)) = key.split_once("/_") {
            out.entry(repo.to_owned()).or_default();
        }
    }
    out
}

/// Per repository, its tags by name and what each names, read from the folders.
fn tags_of(root: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for key in support::files_ending(&root.join(V2).join("repositories"), "/current/link") {
        let (repo, rest) = key.split_once("/_manifests/tags/").unwrap();
        let tag = rest.strip_suffix("/current/link").unwrap();
        let target =
            std::fs::read_to_string(root.join(V2).join("repositories").join(&key)).unwrap();
        out.entry(repo.to_owned())
            .or_default()
            .insert(tag.to_owned(), target.trim().to_owned());
    }
    out
}

/// Every digest a manifest reaches: itself, an index's children (recursively), config and layers.
fn reach(root: &Path, manifest: &str, into: &mut BTreeSet<String>) {
    if !into.insert(manifest.to_owned()) {
        return;
    }
    let m: Value =
        serde_json::from_slice(&std::fs::read(data_path(root, manifest)).unwrap()).unwrap();
    for child in m["manifests"].as_array().into_iter().flatten() {
        reach(root, child["digest"].as_str().unwrap(), into);
    }
    into.extend(m["config"]["digest"].as_str().map(str::to_owned));
    for l in m["layers"].as_array().into_iter().flatten() {
        into.insert(l["digest"].as_str().unwrap().to_owned());
    }
}

fn sum(root: &Path, digests: &BTreeSet<String>) -> u64 {
    digests.iter().map(|d| size(root, d)).sum()
}

#[test]
fn du_sums_match_an_independent_count_of_what_each_repositorys_tags_reach() {
    let dir = tempfile::tempdir().unwrap();
    let s = build_store(dir.path(), Registry::start(dir.path()));
    let root = &s.registry.root;

    let reached: BTreeMap<String, BTreeSet<String>> = tag_targets(root)
        .into_iter()
        .map(|(repo, targets)| {
            let mut set = BTreeSet::new();
            for t in &targets {
                reach(root, t, &mut set);
            }
            (repo, set)
        })
        .collect();
    let (code, du, stderr) = regsweep_json(&["du".as_ref(), root.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    let repos = du["repositories"].as_array().unwrap();
    assert_eq!(repos.len(), reached.len(), "{du:#}");
    for r in repos {
        let name = r["name"].as_str().unwrap();
        let mine = &reached[name];
        let others: BTreeSet<&String> = reached
            .iter()
            .filter(|(n, _)| *n != name)
            .flat_map(|(_, s)| s)
            .collect();
        let exclusive: BTreeSet<String> = mine
            .iter()
            .filter(|d| !others.contains(d))
            .cloned()
            .collect();
        assert_eq!(r["bytes"], sum(root, mine), "{name}: {r}");
        assert_eq!(r["exclusive_bytes"], sum(root, &exclusive), "{name}: {r}");
    }
    // Per tag, the bytes its image reaches; per repository, its largest blobs and who shares them.
    let tags = tags_of(root);
    for r in repos {
        let name = r["name"].as_str().unwrap();
        let expected: Vec<(String, String, u64)> = tags
            .get(name)
            .into_iter()
            .flatten()
            .map(|(tag, target)| {
                let mut set = BTreeSet::new();
                reach(root, target, &mut set);
                (tag.clone(), target.clone(), sum(root, &set))
            })
            .collect();
        let reported: Vec<(String, String, u64)> = r["tag_sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap().to_owned();
                (s("name"), s("digest"), t["bytes"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(reported, expected, "{name}");
        let mut largest: Vec<(u64, String)> = reached[name]
            .iter()
            .map(|d| (size(root, d), d.clone()))
            .collect();
        largest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        largest.truncate(5);
        let blobs = r["largest_blobs"].as_array().unwrap();
        assert_eq!(blobs.len(), largest.len(), "{name}: {r}");
        for (b, (bytes, digest)) in blobs.iter().zip(&largest) {
            assert_eq!(
                (b["bytes"].as_u64().unwrap(), b["digest"].as_str().unwrap()),
                (*bytes, digest.as_str())
            );
            let holders: Vec<&String> = reached
                .iter()
                .filter(|(n, set)| *n != name && set.contains(digest))
                .map(|(n, _)| n)
                .collect();
            assert_eq!(b["shared_by"], holders.len(), "{name} {digest}");
            assert_eq!(
                b["shared_with"],
                serde_json::json!(holders),
                "{name} {digest}"
            );
        }
        assert_eq!(
            r["shared_bytes"],
            r["bytes"].as_u64().unwrap() - r["exclusive_bytes"].as_u64().unwrap()
        );
    }
    let base = repos.iter().find(|r| r["name"] == "library/base").unwrap();
    assert_eq!(
        base["largest_blobs"][0]["shared_with"],
        serde_json::json!(["mirror/base"])
    );
    // The two repositories holding the same image share all of it.
    let by_name = |n: &str| repos.iter().find(|r| r["name"] == n).unwrap();
    assert!(by_name("library/base")["bytes"].as_u64().unwrap() > 0);
    assert_eq!(by_name("library/base")["exclusive_bytes"], 0);
    // Sorted by exclusive bytes, largest first.
    let exclusive: Vec<u64> = repos
        .iter()
        .map(|r| r["exclusive_bytes"].as_u64().unwrap())
        .collect();
    assert!(exclusive.windows(2).all(|w| w[0] >= w[1]), "{exclusive:?}");

    let all: BTreeSet<String> = support::files_ending(&root.join(V2).join("blobs"), "/data")
        .iter()
        .map(|k| format!("sha256:{}", k.split('/').nth_back(1).unwrap()))
        .collect();
    assert_eq!(du["total_bytes"], sum(root, &all));
    let unreferenced = reference_dry_run(&s.registry.config, false).blobs;
    assert_eq!(
        du["reclaimable"]["unreferenced_bytes"],
        sum(root, &unreferenced)
    );
    let (untagged, _) = regsweep_plan(root, &["--grace", "0s", "-m"]);
    let only_untagged: BTreeSet<String> =
        untagged.blobs.difference(&unreferenced).cloned().collect();
    assert!(!only_untagged.is_empty());
    assert_eq!(
        du["reclaimable"]["untagged_bytes"],
        sum(root, &only_untagged)
    );
    let uploads: u64 = support::files_ending(&root.join(V2).join("repositories"), "")
        .iter()
        .filter(|k| k.contains("/_uploads/"))
        .map(|k| {
            std::fs::metadata(root.join(V2).join("repositories").join(k))
                .unwrap()
                .len()
        })
        .sum();
    assert!(uploads > 0);
    assert_eq!(du["reclaimable"]["uploads_bytes"], uploads);
}

/// The problems of an audit report, as (kind, repo, tag, digest) tuples.
fn found(report: &Value) -> BTreeSet<(String, String, String, String)> {
    let s = |p: &Value, k: &str| p[k].as_str().unwrap_or("").to_owned();
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (s(p, "kind"), s(p, "repo"), s(p, "tag"), s(p, "digest")))
        .collect()
}

#[test]
fn audit_is_clean_on_a_registry_store_and_names_each_planted_fault() {
    let dir = tempfile::tempdir().unwrap();
    let s = build_store(dir.path(), Registry::start(dir.path()));
    let root = s.registry.root.clone();
    let audit = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["audit".as_ref(), root.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        regsweep_json(&args)
    };

    let (code, clean, stderr) = audit(&["--verify-digests"]);
    assert_eq!(code, 0, "{clean:#}\n{stderr}");
    assert_eq!(clean["problems"], Value::Array(vec![]));
    assert_eq!(
        clean["summary"]["orphan_blobs"],
        3 + s.deleted.layers.len() as u64
    );
    assert!(clean["summary"]["verified_blobs"].as_u64().unwrap() > 0);

    // Plant one fault of each kind.
    let hand = HandStore::at(&root);
    let tool: Value = serde_json::from_slice(
        &std::fs::read(data_path(&root, &tag_targets(&root)["team/x/tool"][0])).unwrap(),
    )
    .unwrap();
    let tool_layer = tool["layers"][0]["digest"].as_str().unwrap().to_owned();
    std::fs::remove_file(data_path(&root, &tool_layer)).unwrap();
    let corrupt = hand.blob(b"{\"this\": \"is not a manifest\"}");
    hand.revision("team/app", &corrupt);
    let moved = &s.moved_from;
    let bad_layer_link = hand.write(
        &format!(
            "repositories/team/app/_layers/sha256/{}/link",
            &moved.layers[0]["sha256:".len()..]
        ),
        b"sha256:not-a-digest",
    );
    let ghost = format!("sha256:{}", "e".repeat(64));
    hand.write(
        "repositories/team/app/_manifests/tags/ghost/current/link",
        ghost.as_bytes(),
    );
    std::fs::write(
        data_path(&root, &s.orphan),
        b"bytes that hash to something else",
    )
    .unwrap();

    let (code, report, stderr) = audit(&["--verify-digests", "--grace", "0s"]);
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    let problems = found(&report);
    let t = |kind: &str, repo: &str, tag: &str, digest: &str| {
        (
            kind.to_owned(),
            repo.to_owned(),
            tag.to_owned(),
            digest.to_owned(),
        )
    };
    for expected in [
        t("missing_blob", "team/x/tool", "1.0", &tool_layer),
        t("missing_blob", "team/x/tool", "", &tool_layer),
        t("corrupt_manifest", "", "", &corrupt),
        t("bad_link", "team/app", "", &moved.layers[0]),
        t("dangling_tag", "team/app", "ghost", &ghost),
        t("missing_blob", "team/app", "ghost", &ghost),
        t("digest_mismatch", "", "", &s.orphan),
    ] {
        assert!(
            problems.contains(&expected),
            "{expected:?} not in {problems:#?}"
        );
    }
    let stale: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "stale_upload")
        .collect();
    assert_eq!(stale.len(), 1, "{report:#}");
    assert_eq!(stale[0]["repo"], "team/app");
    // Every problem says where, and in words.
    for p in report["problems"].as_array().unwrap() {
        assert!(p["path"].as_str().is_some_and(|k| k.starts_with(V2)), "{p}");
        assert!(p["message"].as_str().is_some_and(|m| m.len() > 10), "{p}");
    }
    let bad_key = bad_layer_link
        .strip_prefix(&root)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == bad_key.as_str()),
        "{bad_key} not named"
    );
    // The counts add up to the list.
    let counted: u64 = report["summary"]["problems"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, report["problems"].as_array().unwrap().len() as u64);
}
