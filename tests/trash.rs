//! A way back from every sweep, through the real registry: on a filesystem and on S3 (moto, an
//! unversioned and a versioned bucket), the conformance store is swept with `gc -m --delete --grace
//! 0s --trash 7d`; the registry, restarted, serves only what was kept; `trash restore` puts every
//! key back with its bytes, and the registry, restarted again, serves every tag and every swept
//! manifest. `prune-tags --delete --trash 7d` of every tag, then a restore, brings every tag back.
//! A run whose window has passed is purged by the next deleting run, and its bytes go.

mod support;

use regsweep::storage::{Moves, Multipart, Storage};
use std::collections::BTreeMap;
use std::path::Path;
use support::registry::Registry;
use support::{crawl, regsweep, regsweep_json};

/// Every key of the store (the S3 lock object aside) with the sha256 of its bytes.
fn snapshot(storage: &dyn Storage) -> BTreeMap<String, String> {
    let mut keys = Vec::new();
    storage
        .list("", &mut |e| keys.push(e.key), &mut |n| panic!("{n:?}"))
        .unwrap();
    keys.into_iter()
        .filter(|k| k != regsweep::storage::s3::LOCK_KEY)
        .map(|k| {
            let bytes = storage.read(&k, u64::MAX).unwrap();
            (k, support::oci::sha256(&bytes))
        })
        .collect()
}

/// The (repository, digest) of every manifest revision in a snapshot.
fn revisions(keys: &BTreeMap<String, String>) -> Vec<(String, String)> {
    keys.keys()
        .filter_map(|k| {
            let rest = k.strip_prefix("docker/registry/v2/repositories/")?;
            let (repo, tail) = rest.split_once("/_manifests/revisions/sha256/")?;
            let hex = tail.strip_suffix("/link")?;
            Some((repo.to_owned(), format!("sha256:{hex}")))
        })
        .collect()
}

/// Runs regsweep; asserts the exit status; returns stdout and stderr.
fn ok(args: &[&str], extra: &[&str]) -> (String, String) {
    let out = regsweep().args(args).args(extra).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{args:?}:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The ids of the runs in the trash.
fn runs(storage_arg: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["trash".as_ref(), "list".as_ref()];
    args.push(storage_arg.as_ref());
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (code, v, stderr) = regsweep_json(&args);
    assert_eq!(code, 0, "trash list: {stderr}");
    v["runs"].as_array().unwrap().clone()
}

/// du, audit and gc's dry run (and their metrics) say what the trash holds; audit finds each run's
/// record as its folder is.
fn assert_reports_show_the_trash(storage_arg: &str, extra: &[&str], objects: u64, bytes: u64) {
    let metrics = tempfile::NamedTempFile::new().unwrap();
    let metrics_arg = metrics.path().to_str().unwrap();
    for command in ["du", "audit", "gc"] {
        let mut args: Vec<&std::ffi::OsStr> = vec![command.as_ref(), storage_arg.as_ref()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        args.extend(["--metrics-file", metrics_arg].map(std::ffi::OsStr::new));
        let (code, v, stderr) = regsweep_json(&args);
        assert_eq!(code, 0, "{command}: {stderr}\n{v}");
        let t = &v["trash"];
        assert_eq!(
            (
                t["runs"].as_u64(),
                t["objects"].as_u64(),
                t["bytes"].as_u64()
            ),
            (Some(1), Some(objects), Some(bytes)),
            "{command}: {v}"
        );
        assert_eq!(t["expired_runs"], 0);
        assert!(t["empty_after"].is_string(), "{t}");
        let text = std::fs::read_to_string(metrics.path()).unwrap();
        assert!(
            text.contains(&format!("regsweep_trash_bytes{{command=\"{command}\"")),
            "{text}"
        );
        let sample = text
            .lines()
            .find(|l| l.starts_with("regsweep_trash_bytes{"))
            .unwrap();
        assert!(sample.ends_with(&format!(" {bytes}")), "{sample}");
    }
    let (human, _) = ok(&["gc", storage_arg], extra);
    assert!(
        human.contains(&format!("trash: 1 run, {objects} objects"))
            && human.contains("empty after"),
        "{human}"
    );
}

/// The whole round trip on one store. `start` starts the registry on it.
fn round_trip(
    dir: &Path,
    storage_arg: &str,
    extra: &[&str],
    storage: &dyn Storage,
    start: &dyn Fn() -> Registry,
    versions: Option<&dyn Fn() -> Vec<(String, String, bool)>>,
) {
    let store = support::scenario::build_store(dir, start());
    let before_crawl = crawl::crawl(&store.registry);
    drop(store);
    support::next_second();
    let before = snapshot(storage);

    // A dry run with --trash says what the moves would cost on this store.
    let mut args: Vec<&std::ffi::OsStr> = ["gc", storage_arg, "-m", "--grace", "0s"]
        .map(std::ffi::OsStr::new)
        .to_vec();
    args.extend(["--trash", "7d"].map(std::ffi::OsStr::new));
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (code, v, stderr) = regsweep_json(&args);
    assert_eq!(code, 0, "{stderr}");
    let cost = v["trash_plan"]["cost"].as_str().unwrap_or_default();
    let expected = match (storage_arg.starts_with("s3://"), versions.is_some()) {
        (false, _) => "rename",
        (true, false) => "CopyObject",
        (true, true) => "version record",
    };
    assert!(cost.contains(expected), "{v}");
    assert!(v["trash_plan"]["items"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(snapshot(storage), before, "a dry run moves nothing");

    // The sweep moves, and the registry serves only what was kept.
    let (stdout, _) = ok(
        &[
            "gc",
            storage_arg,
            "-m",
            "--delete",
            "--grace",
            "0s",
            "--trash",
            "7d",
        ],
        extra,
    );
    assert!(stdout.contains("Moved to the trash"), "{stdout}");
    let swept = snapshot(storage);
    let gone: Vec<&String> = before.keys().filter(|k| !swept.contains_key(*k)).collect();
    assert!(!gone.is_empty(), "the sweep took something");
    let listed = runs(storage_arg, extra);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let run = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["state"], "complete");
    assert_eq!(listed[0]["command"], "gc");
    assert_eq!(listed[0]["objects"].as_u64(), Some(gone.len() as u64));
    let mut moved_bytes = 0;
    for k in &gone {
        let (copy, record) = (
            format!("regsweep-trash/{run}/{k}"),
            format!("regsweep-trash/{run}/versions/{k}"),
        );
        if versions.is_some() {
            // Hidden behind a delete marker, its version recorded: no copy of the data.
            assert!(!swept.contains_key(&copy), "{k} is not copied");
            let v: serde_json::Value =
                serde_json::from_slice(&storage.read(&record, 4096).unwrap()).unwrap();
            moved_bytes += v["size"].as_u64().unwrap();
        } else {
            assert!(swept.contains_key(&copy), "{k} is in the trash");
            moved_bytes += storage.stat(&copy).unwrap().unwrap().0;
        }
    }
    if let Some(versions) = versions {
        let listed = versions();
        for k in &gone {
            let key = format!("store/{k}");
            assert!(
                listed.iter().any(|(v, _, marker)| *v == key && *marker),
                "{k} is behind a delete marker"
            );
        }
    }
    assert_eq!(listed[0]["bytes"].as_u64(), Some(moved_bytes));
    assert_reports_show_the_trash(storage_arg, extra, gone.len() as u64, moved_bytes);
    let reg = start();
    let after_crawl = crawl::crawl(&reg);
    let lost = crawl::lost(&before_crawl, &after_crawl);
    assert!(
        lost.is_empty(),
        "the sweep kept what tags serve:\n{}",
        lost.join("\n")
    );
    let untagged: Vec<(String, String)> = revisions(&before)
        .into_iter()
        .filter(|r| !revisions(&swept).contains(r))
        .collect();
    assert!(!untagged.is_empty(), "-m swept an untagged manifest");
    for (repo, d) in &untagged {
        assert_eq!(reg.get_manifest(repo, d).status, 404, "{repo}@{d} swept");
    }
    drop(reg);

    // Restore: every key back with its bytes; the registry serves all it served.
    let (stdout, _) = ok(&["trash", "restore", storage_arg, &run], extra);
    assert!(
        stdout.contains("The run is gone from the trash"),
        "{stdout}"
    );
    assert_eq!(snapshot(storage), before, "the store is as before the run");
    assert!(runs(storage_arg, extra).is_empty());
    let reg = start();
    let restored = crawl::crawl(&reg);
    assert_eq!(restored, before_crawl, "every tag serves what it served");
    for (repo, d) in &untagged {
        assert_eq!(
            reg.get_manifest(repo, d).status,
            200,
            "{repo}@{d} served again"
        );
    }
    drop(reg);

    // Every tag removed into the trash, then back.
    let (pruned, _) = ok(
        &[
            "prune-tags",
            storage_arg,
            "--repo",
            "**",
            "--all-tags",
            "--delete",
            "--trash",
            "7d",
        ],
        extra,
    );
    let reg = start();
    // (moto's versioned listing may still name a tag whose links are gone; none resolves.)
    let left = crawl::crawl(&reg);
    assert!(
        left.values().all(|v| v.digest.is_empty()),
        "no tag is left: {left:?}\n{pruned}"
    );
    drop(reg);
    let run = runs(storage_arg, extra)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&["trash", "restore", storage_arg, &run], extra);
    assert_eq!(snapshot(storage), before);
    let reg = start();
    assert_eq!(crawl::crawl(&reg), before_crawl, "every tag is back");
    drop(reg);

    // A run past its window is purged by the next deleting run, and its bytes go.
    ok(
        &[
            "gc",
            storage_arg,
            "--delete",
            "--grace",
            "0s",
            "--trash",
            "1s",
        ],
        extra,
    );
    let held = runs(storage_arg, extra);
    assert_eq!(held.len(), 1);
    assert!(held[0]["bytes"].as_u64().unwrap() > 0);
    // The versions it hid, as its records name them (key, version id).
    let hidden: Vec<(String, String)> = expiring_versions(storage, held[0]["id"].as_str().unwrap());
    assert_eq!(hidden.is_empty(), versions.is_none());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(runs(storage_arg, extra)[0]["expired"], true);
    let (_, stderr) = ok(
        &["gc", storage_arg, "--delete", "--grace", "0s", "-m"],
        extra,
    );
    assert!(
        stderr.contains("purged 1 trash run(s) past their window"),
        "{stderr}"
    );
    assert!(runs(storage_arg, extra).is_empty());
    assert!(
        !snapshot(storage)
            .keys()
            .any(|k| k.starts_with("regsweep-trash/")),
        "the trash holds nothing"
    );
    if let Some(versions) = versions {
        let listed = versions();
        for (key, id) in &hidden {
            assert!(
                !listed.iter().any(|(k, v, _)| k == key && v == id),
                "the version {id} of {key} the run hid is gone with the purge"
            );
        }
    }
}

/// The versions trash run `run` hid, from its records: (bucket key, version id).
fn expiring_versions(storage: &dyn Storage, run: &str) -> Vec<(String, String)> {
    let folder = format!("regsweep-trash/{run}/versions/");
    let mut keys = Vec::new();
    storage
        .list(&folder, &mut |e| keys.push(e.key), &mut |_| {})
        .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
        .unwrap();
    keys.iter()
        .map(|k| {
            let v: serde_json::Value =
                serde_json::from_slice(&storage.read(k, 4096).unwrap()).unwrap();
            (
                format!("store/{}", &k[folder.len()..]),
                v["version_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn on_a_filesystem_a_trashed_sweep_and_a_trashed_prune_are_restored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let reg_dir = dir.path().join("registry");
    let root = reg_dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let storage = regsweep::storage::fs::FsStorage::open(&root).unwrap();
    let start = || Registry::start(&reg_dir);
    round_trip(
        dir.path(),
        root.to_str().unwrap(),
        &[],
        &storage,
        &start,
        None,
    );

    // A trash that is a link to elsewhere (another filesystem) is refused, and nothing moves.
    let orphan = b"an orphan blob for the trash to refuse";
    let d = support::oci::sha256(orphan);
    let hex = &d["sha256:".len()..];
    let blob = root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}",
        &hex[..2]
    ));
    std::fs::create_dir_all(&blob).unwrap();
    std::fs::write(blob.join("data"), orphan).unwrap();
    let mut fake = root.clone();
    fake.push("regsweep-trash");
    let _ = std::fs::remove_dir_all(&fake);
    if std::path::Path::new("/dev/shm").is_dir() {
        let before = snapshot(&storage);
        let other = tempfile::tempdir_in("/dev/shm").unwrap();
        std::os::unix::fs::symlink(other.path(), &fake).unwrap();
        let out = regsweep()
            .arg("gc")
            .arg(&root)
            .args(["-m", "--delete", "--grace", "0s", "--trash", "7d"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("regsweep-trash") && stderr.contains("symbolic link"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_dir(other.path()).unwrap().count(),
            0,
            "nothing written there"
        );
        let _ = std::fs::remove_file(&fake);
        assert_eq!(
            snapshot(&storage),
            before,
            "nothing left the store: {stderr}"
        );
    }

    // audit checks each run's record against its folder.
    let store_arg = root.to_str().unwrap();
    ok(
        &[
            "gc", store_arg, "--delete", "--grace", "0s", "--trash", "7d",
        ],
        &[],
    );
    let run = runs(store_arg, &[])[0]["id"].as_str().unwrap().to_owned();
    let folder = root.join("regsweep-trash").join(&run);
    let trashed = folder.join(blob.strip_prefix(&root).unwrap()).join("data");
    assert_eq!(std::fs::read(&trashed).unwrap(), orphan);
    let audit = |what: &str| {
        let (code, v, stderr) = regsweep_json(&["audit".as_ref(), root.as_os_str()]);
        let named: Vec<serde_json::Value> = v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "trash_run")
            .cloned()
            .collect();
        (code, named, format!("{what}: {stderr}\n{v}"))
    };
    let (code, named, why) = audit("a complete run");
    assert_eq!((code, named.len()), (0, 0), "{why}");
    std::fs::remove_file(&trashed).unwrap();
    let (code, named, why) = audit("an object taken out");
    assert_eq!((code, named.len()), (1, 1), "{why}");
    assert!(
        named[0]["message"].as_str().unwrap().contains(&run),
        "{why}"
    );
    std::fs::write(&trashed, orphan).unwrap();
    std::fs::write(folder.join("run.json"), b"{ not a record").unwrap();
    let (code, named, why) = audit("a damaged record");
    assert_eq!((code, named.len()), (1, 1), "{why}");
    assert!(
        named[0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be read"),
        "{why}"
    );
}

#[test]
fn on_s3_unversioned_and_versioned_a_trashed_sweep_and_prune_are_restored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    let endpoint = s3.endpoint();
    for (bucket, versioned) in [("plain", false), ("versioned", true)] {
        s3.create_bucket(bucket);
        if versioned {
            s3.enable_versioning(bucket);
        }
        let sub = dir.path().join(bucket);
        std::fs::create_dir_all(&sub).unwrap();
        let storage = s3.storage(bucket);
        let start = || Registry::start_s3(&sub, &s3, bucket);
        let url = format!("s3://{bucket}/store");
        let versions = || s3.versions(bucket);
        round_trip(
            &sub,
            &url,
            &["--endpoint-url", endpoint.as_str()],
            &storage,
            &start,
            versioned.then_some(&versions as &dyn Fn() -> Vec<(String, String, bool)>),
        );
    }
}

#[test]
fn on_s3_an_object_over_the_copy_limit_moves_in_parts_and_back() {
    use regsweep::storage::s3::{S3Options, S3Storage};
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    s3.create_bucket("big");
    // The limit lowered from S3's 5 GiB to 6 MiB, which is then also the part: a 12 MiB object
    // takes two parts.
    let storage = S3Storage::open(S3Options {
        bucket: "big".into(),
        prefix: "store/".into(),
        endpoint: Some(s3.endpoint()),
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        region: Some("us-east-1".into()),
        max_in_flight: 4,
        copy_object_max: Some(6 << 20),
        ..S3Options::default()
    })
    .unwrap();
    let body: Vec<u8> = (0..12u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let key = "docker/registry/v2/blobs/sha256/ab/abcd/data";
    s3.put_object("big", &format!("store/{key}"), &body);
    let trashed = format!("regsweep-trash/run/{key}");
    assert_eq!(
        storage.move_object(key, &trashed).unwrap(),
        body.len() as u64
    );
    assert!(storage.read(key, 1).unwrap_err().is_not_found());
    assert_eq!(
        support::oci::sha256(&storage.read(&trashed, u64::MAX).unwrap()),
        support::oci::sha256(&body)
    );
    let mut etags = Vec::new();
    storage
        .list("regsweep-trash/", &mut |e| etags.push(e.etag), &mut |_| {})
        .unwrap();
    assert_eq!(etags.len(), 1);
    assert!(
        etags[0]
            .as_deref()
            .is_some_and(|e| e.trim_matches('"').ends_with("-2")),
        "copied in two parts: {etags:?}"
    );
    assert_eq!(
        storage.move_object(&trashed, key).unwrap(),
        body.len() as u64
    );
    assert_eq!(storage.read(key, u64::MAX).unwrap(), body);
    assert!(
        storage.multipart_uploads().unwrap().is_empty(),
        "no upload is left behind"
    );
    // A move onto a key that is there is refused, in parts as in one copy.
    s3.put_object("big", &format!("store/{trashed}"), b"other");
    assert!(matches!(
        storage.move_object(key, &trashed),
        Err(regsweep::storage::StorageError::Exists { .. })
    ));
    assert_eq!(storage.read(key, u64::MAX).unwrap(), body);
}
