//! The registry's blob-descriptor cache after a sweep: the real registry caching in a real
//! `redis-server`, re-pushes pulled back with skopeo, and the cache's keys counted before and after.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use support::oci;
use support::redis::RedisServer;
use support::registry::Registry;
use support::store::HandStore;
use support::{PlanSets, regsweep, regsweep_json, regsweep_plan, skopeo_copy};

/// A registry caching blob descriptors in redis database 2, behind a password; with a multi-arch
/// image pushed to `cached/app:v1` and then deleted through the API, and an image `cached/keep:v1`
/// that stays. Returns the layout of the deleted image, to push it again.
fn cached_registry(dir: &Path) -> (RedisServer, Registry, String) {
    let redis = RedisServer::start(dir, Some("s3cret"), &[]);
    let registry = Registry::start_redis_cached(
        dir,
        &format!(
            "  addr: 127.0.0.1:{}\n  password: s3cret\n  db: 2\n  dialtimeout: 2s\n",
            redis.port
        ),
    );
    let layout = |name: &str| dir.join("layouts").join(name);
    let (index, _) = oci::multi(
        &layout("m"),
        &[("amd64", &["app-amd64", "base"]), ("arm64", &["app-arm64"])],
    );
    let multi = format!("oci:{}:latest", layout("m").display());
    skopeo_copy(&multi, &registry.image("cached/app", "v1"), &["--all"]);
    oci::single(&layout("k"), &["base", "keep-only"]);
    let keep = format!("oci:{}:latest", layout("k").display());
    skopeo_copy(&keep, &registry.image("cached/keep", "v1"), &[]);
    // Pulled once, so that the cache also holds what reads put there.
    pull(&registry, "cached/keep", dir, "warm", false).expect("cached/keep pulls");
    registry.delete_manifest("cached/app", &index);
    registry.set_read_only();
    (redis, registry, multi)
}

/// Pulls `repo:v1` into a new layout (every platform with `all`); skopeo checks every digest, so
/// success means the image is whole. `Err(stderr)` when it fails.
fn pull(registry: &Registry, repo: &str, dir: &Path, name: &str, all: bool) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("pulls")).unwrap();
    let dest = format!("oci:{}:pulled", dir.join("pulls").join(name).display());
    let extra: &[&str] = if all { &["--all"] } else { &[] };
    support::try_skopeo_copy(&registry.image(repo, "v1"), &dest, extra)
}

/// The cache as it must be after evicting `plan` from `before`: no `blobs::` hash of a swept blob,
/// no repository hash or set member of a removed link; every other key as it was.
fn evicted(
    before: &BTreeMap<String, BTreeSet<String>>,
    plan: &PlanSets,
) -> BTreeMap<String, BTreeSet<String>> {
    let links: BTreeSet<(String, String)> =
        plan.manifests.union(&plan.layer_links).cloned().collect();
    let mut after = BTreeMap::new();
    for (key, members) in before {
        if let Some(d) = key.strip_prefix("blobs::")
            && plan.blobs.contains(d)
        {
            continue;
        }
        if let Some(rest) = key.strip_prefix("repository::") {
            if let Some((repo, d)) = rest.split_once("::blobs::")
                && links.contains(&(repo.to_owned(), d.to_owned()))
            {
                continue;
            }
            if let Some(repo) = rest.strip_suffix("::blobs") {
                let left: BTreeSet<String> = members
                    .iter()
                    .filter(|d| !links.contains(&(repo.to_owned(), (*d).clone())))
                    .cloned()
                    .collect();
                if !left.is_empty() {
                    after.insert(key.clone(), left);
                }
                continue;
            }
        }
        after.insert(key.clone(), members.clone());
    }
    after
}

#[test]
fn after_a_sweep_that_evicts_the_cache_the_same_image_pushed_again_pulls_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (redis, registry, multi) = cached_registry(dir.path());
    let config = &registry.config;

    // The dry run reads the cache (never writes it) and says how much of the plan it holds.
    let (plan, summary) = regsweep_plan(config, &["-m", "--grace", "0s"]);
    assert!(
        !plan.blobs.is_empty() && !plan.manifests.is_empty(),
        "{plan:?}"
    );
    let cache = &summary["cache"];
    assert_eq!(cache["kind"], "redis", "{summary}");
    assert_eq!(
        cache["address"],
        format!("redis://127.0.0.1:{}/2", redis.port)
    );
    assert_eq!(cache["from"], "config.yml");
    assert_eq!(cache["reachable"], true);
    let before = redis.snapshot(2);
    let expected = evicted(&before, &plan);
    let removed = before.len() - expected.len();
    assert!(
        plan.blobs
            .iter()
            .any(|d| before.contains_key(&format!("blobs::{d}"))),
        "the registry cached none of the swept blobs, so this test proves nothing: {before:?}"
    );
    assert!(cache["evicted_keys"].as_u64().unwrap() > 0, "{cache}");
    assert_eq!(redis.snapshot(2), before, "a dry run changes nothing");

    let (code, summary, stderr) = regsweep_json(&[
        "gc".as_ref(),
        config.as_os_str(),
        "-m".as_ref(),
        "--grace".as_ref(),
        "0s".as_ref(),
        "--delete".as_ref(),
    ]);
    assert_eq!(code, 0, "{stderr}\n{summary}");
    let cache = &summary["cache"];
    assert_eq!(cache["keys_left"], serde_json::json!([]), "{cache}");
    assert!(cache["error"].is_null(), "{cache}");
    assert_eq!(cache["restart_required"], false);
    // Exactly the keys of what was deleted are gone; every other key, and every other set member,
    // is as it was.
    let after = redis.snapshot(2);
    assert_eq!(after, expected);
    let hashes_removed = before
        .keys()
        .filter(|k| !k.ends_with("::blobs") && !after.contains_key(*k))
        .count() as u64;
    assert_eq!(cache["evicted_keys"], hashes_removed, "{cache}");
    assert!(removed > 0);
    assert!(summary["notice"].is_null(), "the cache is known: {summary}");

    // Pushed again, the image is whole: every platform pulls, and so does the image left alone.
    skopeo_copy(&multi, &registry.image("cached/app", "v1"), &["--all"]);
    pull(&registry, "cached/app", dir.path(), "again", true).expect("the re-pushed image pulls");
    pull(&registry, "cached/keep", dir.path(), "keep", false).expect("cached/keep still pulls");
}

#[test]
fn without_eviction_the_same_push_succeeds_and_the_image_does_not_pull() {
    let dir = tempfile::tempdir().unwrap();
    let (redis, registry, multi) = cached_registry(dir.path());
    let before = redis.snapshot(2);
    let (code, summary, stderr) = regsweep_json(&[
        "gc".as_ref(),
        registry.config.as_os_str(),
        "-m".as_ref(),
        "--grace".as_ref(),
        "0s".as_ref(),
        "--delete".as_ref(),
        "--skip-cache-eviction".as_ref(),
    ]);
    assert_eq!(code, 0, "{stderr}\n{summary}");
    assert_eq!(redis.snapshot(2), before, "the cache was left alone");
    let cache = &summary["cache"];
    assert_eq!(cache["restart_required"], true, "{cache}");
    let left: Vec<&str> = cache["keys_left"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        left.iter().any(|k| k.starts_with("blobs::sha256:")),
        "{cache}"
    );
    assert!(
        cache["advice"].as_str().unwrap().contains("FLUSHDB"),
        "{cache}"
    );

    // The failure the eviction prevents: the registry says the swept blobs exist, the push skips
    // them and succeeds, and the image it made does not pull.
    skopeo_copy(&multi, &registry.image("cached/app", "v1"), &["--all"]);
    let err = pull(&registry, "cached/app", dir.path(), "broken", true)
        .expect_err("a push that skipped swept blobs makes an image that does not pull");
    assert!(err.contains("unknown"), "{err}");
}

/// A store with an untagged image in `gone` and a tagged one in `keep`, aged past any grace, and
/// a registry config (read-only) that caches in redis at `redis_section`.
fn hand_store_with_config(redis_section: &str) -> (HandStore, std::path::PathBuf) {
    let store = HandStore::new();
    let (kept, _) = store.image("keep", "kept", None);
    store.tag("keep", "v1", &kept);
    store.image("gone", "gone-1", None);
    store.image("gone", "gone-2", None);
    store.age_all(std::time::Duration::from_secs(86400));
    let config = config_for(
        &store,
        &format!("  cache:\n    blobdescriptor: redis\nredis:\n{redis_section}"),
    );
    (store, config)
}

/// Writes a registry config.yml beside `store`'s root: its filesystem root, read-only mode, and
/// `tail` (the `storage.cache` lines and any top-level sections after them).
fn config_for(store: &HandStore, tail: &str) -> std::path::PathBuf {
    let config = store.root.parent().unwrap().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    readonly:\n      \
             enabled: true\n{tail}",
            store.root.display()
        ),
    )
    .unwrap();
    config
}

fn files(root: &Path) -> Vec<String> {
    support::files_ending(root, "")
}

#[test]
fn an_unreachable_cache_refuses_the_delete_unless_forced_and_then_names_the_keys_to_flush() {
    let port = support::registry::free_port();
    let (store, config) = hand_store_with_config(&format!("  addr: 127.0.0.1:{port}\n"));
    let before = files(&store.root);

    let gc = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "gc".as_ref(),
            config.as_os_str(),
            "-m".as_ref(),
            "--grace".as_ref(),
            "0s".as_ref(),
        ];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        regsweep_json(&args)
    };
    let (code, _, stderr) = gc(&["--delete"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot be evicted")
            && stderr.contains(&format!("127.0.0.1:{port}"))
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(files(&store.root), before, "nothing deleted");

    // The dry run says beforehand that --delete would refuse.
    let (code, summary, _) = gc(&[]);
    assert_eq!(code, 0);
    assert_eq!(summary["cache"]["reachable"], false, "{summary}");
    assert!(
        summary["cache"]["advice"]
            .as_str()
            .unwrap()
            .contains("--delete will refuse")
    );

    let (plan, _) = regsweep_plan(&config, &["-m", "--grace", "0s"]);
    let (code, summary, stderr) = gc(&["--delete", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("deleting anyway"), "{stderr}");
    assert_eq!(summary["deleted"]["blobs"], plan.blobs.len() as u64);
    let left: BTreeSet<String> = summary["cache"]["keys_left"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for d in &plan.blobs {
        assert!(
            left.contains(&format!("blobs::{d}")),
            "{d} not named: {left:?}"
        );
    }
    for (repo, d) in &plan.manifests {
        assert!(left.contains(&format!("repository::{repo}::blobs::{d}")));
        assert!(left.contains(&format!("repository::{repo}::blobs {d}")));
    }
}

#[test]
fn a_cache_that_fails_halfway_stops_the_sweep_and_the_report_names_the_keys_left() {
    let dir = tempfile::tempdir().unwrap();
    // A user that may write the probe and the repositories' keys, but not the global blob hashes:
    // eviction works for the links, then fails at the first batch of blobs.
    let redis = RedisServer::start(
        dir.path(),
        None,
        &[
            "--user",
            "evictor",
            "on",
            ">pw",
            "~regsweep:*",
            "~repository::*",
            "+@all",
        ],
    );
    let (store, _config) = hand_store_with_config("  addr: 127.0.0.1:1\n");
    let (plan, _) = regsweep_plan(&store.root, &["-m", "--grace", "0s"]);
    assert_eq!(plan.repositories, BTreeSet::from(["gone".to_owned()]));
    // What the registry would have cached: every blob of both repositories.
    let repos: BTreeSet<(String, String)> =
        plan.manifests.union(&plan.layer_links).cloned().collect();
    for (repo, d) in &repos {
        redis.cache_blob(0, repo, d, 1);
    }
    let keep_keys = |snap: &BTreeMap<String, BTreeSet<String>>| -> Vec<String> {
        snap.keys()
            .filter(|k| k.starts_with("repository::keep"))
            .cloned()
            .collect()
    };
    redis.cache_blob(
        0,
        "keep",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        1,
    );
    let before = redis.snapshot(0);

    let url = format!("redis://evictor:pw@127.0.0.1:{}/0", redis.port);
    let (code, summary, stderr) = regsweep_json(&[
        "gc".as_ref(),
        store.root.as_os_str(),
        "-m".as_ref(),
        "--grace".as_ref(),
        "0s".as_ref(),
        "--delete".as_ref(),
        "--redis".as_ref(),
        url.as_ref(),
    ]);
    assert_eq!(code, 1, "{stderr}\n{summary}");
    let cache = &summary["cache"];
    assert_eq!(cache["from"], "--redis", "{cache}");
    assert!(
        cache["error"].as_str().unwrap().contains("sweep stopped"),
        "{cache}"
    );
    let left: BTreeSet<String> = cache["keys_left"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let blob_keys: BTreeSet<String> = plan.blobs.iter().map(|d| format!("blobs::{d}")).collect();
    assert_eq!(left, blob_keys, "the keys left are the swept blobs' hashes");
    assert!(
        summary["deleted"]["not_attempted"].as_u64().unwrap() >= 1,
        "{summary}"
    );

    let after = redis.snapshot(0);
    // The links' keys were evicted before the failure; the blobs' are still there; the kept
    // repository's are untouched.
    for (repo, d) in plan.manifests.union(&plan.layer_links) {
        assert!(!after.contains_key(&format!("repository::{repo}::blobs::{d}")));
    }
    for k in &blob_keys {
        assert!(after.contains_key(k), "{k}");
    }
    assert_eq!(keep_keys(&after), keep_keys(&before));
    assert_eq!(
        after.len(),
        before.len() - plan.manifests.len() - plan.layer_links.len() - 1,
        "only the link hashes and the emptied set went: {after:?}"
    );
    let text = regsweep()
        .args(["gc", "-m", "--grace", "0s"])
        .arg(&store.root)
        .output()
        .unwrap();
    assert!(text.status.success());
}

#[test]
fn an_in_memory_cache_is_named_and_the_registry_must_be_restarted() {
    let store = HandStore::new();
    store.image("gone", "gone-1", None);
    store.age_all(std::time::Duration::from_secs(86400));
    let config = config_for(&store, "  cache:\n    blobdescriptor: inmemory\n");
    for delete in [false, true] {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "gc".as_ref(),
            config.as_os_str(),
            "-m".as_ref(),
            "--grace".as_ref(),
            "0s".as_ref(),
        ];
        if delete {
            args.push("--delete".as_ref());
        }
        let (code, summary, stderr) = regsweep_json(&args);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(summary["cache"]["kind"], "inmemory", "{summary}");
        assert_eq!(summary["cache"]["restart_required"], true);
        let human = support::run(regsweep().args(["gc", "-m", "--grace", "0s"]).arg(&config));
        assert!(
            human.contains("restart the registry before it takes writes again"),
            "{human}"
        );
    }
}
