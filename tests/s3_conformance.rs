//! The conformance scenario again on S3: the real registry writes through its `s3` driver into a
//! loopback S3 server; regsweep reads the bucket both as `s3://bucket/prefix` and through the
//! registry's config.yml.

mod support;

use regsweep::storage::{Multipart, Storage};
use std::collections::BTreeSet;
use std::path::Path;
use support::scenario::build_store_on_s3;
use support::{
    PlanSets, assert_no_link_points_at_something_gone, diff, reference_dry_run, regsweep_json,
    regsweep_plan, run,
};

#[test]
fn on_s3_plans_match_the_reference_and_after_m_delete_every_tag_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, s) = build_store_on_s3(dir.path());
    // An interrupted push leaves an incomplete multipart upload that no object listing shows.
    let mp_key = "docker/registry/v2/repositories/team/app/_uploads/interrupted/data";
    let mp_id = s3.abandon_multipart("registry", &format!("store/{mp_key}"), 4096);
    let multipart = s3.storage("registry").multipart_uploads().unwrap();
    let ours_mp = multipart
        .iter()
        .find(|m| m.upload_id == mp_id)
        .expect("the library lists the abandoned multipart upload");
    assert_eq!((ours_mp.key.as_str(), ours_mp.size), (mp_key, 4096));
    let config = s.registry.config.clone();
    let endpoint = s3.endpoint();
    let url = Path::new("s3://registry/store");
    let by_url = |extra: &[&str]| {
        // Without the manifest cache: the requests below are counted as a first run makes them.
        let mut args = vec![
            "--endpoint-url",
            endpoint.as_str(),
            "--grace",
            "0s",
            "--no-cache",
        ];
        args.extend_from_slice(extra);
        regsweep_plan(url, &args)
    };

    // Plain: the reference's blobs, by URL and by config alike.
    let reference = reference_dry_run(&config, false);
    let (ours, summary) = by_url(&[]);
    assert!(!ours.blobs.is_empty());
    assert_eq!(
        ours.blobs,
        reference.blobs,
        "{}",
        diff(&ours.blobs, &reference.blobs)
    );
    let (by_config, _) = regsweep_plan(&config, &["--grace", "0s"]);
    assert_eq!(by_config, ours);
    assert!(ours.multipart.contains(&(mp_key.to_owned(), mp_id.clone())));
    assert_eq!(ours.multipart.len(), multipart.len());
    let mp_bytes: u64 = multipart.iter().map(|m| m.size).sum();
    assert_eq!(summary["multipart_uploads"]["eligible_bytes"], mp_bytes);
    assert_eq!(summary["multipart_uploads"]["count"], multipart.len());
    // (moto reports every upload as initiated in 2010; grace for multipart uploads is checked in
    // s3_faults.rs, through a proxy that dates them to now.)
    assert!(
        ours.layer_links
            .contains(&("orphan/layers".to_owned(), s.orphan.clone()))
    );

    // Requests: revision links are checked from their ETags, and each tag's current link is
    // resolved from its ETag and the tag's index, so the only GETs are manifests.
    let requests = &summary["s3"];
    let manifests = 7; // team/app's two images, the image in two repositories (read once), the nested
    // image, the index and its two children
    assert!(!s.tags.is_empty());
    assert_eq!(requests["get_requests"], manifests as u64, "{summary}");
    assert_eq!(requests["retries"], 0, "{summary}");
    // One list a blob shard (a small bucket fits one page each), one for the top-level repository
    // folders, one per top-level folder, one for the multipart uploads and one for each one's parts.
    let repos = [
        "team/app",
        "library/base",
        "mirror/base",
        "team/x/tool",
        "multi/app",
        "gone/img",
        "orphan/layers",
    ];
    let tops: BTreeSet<&str> = repos.iter().map(|r| r.split('/').next().unwrap()).collect();
    // One listing of docker/registry/v2/ checks that the prefix holds a store at all, and one of
    // docker/registry/lockfiles/ whether a metadata database owns it, and one of regsweep-trash/
    // for what the trash holds.
    let lists = 1
        + u64::from(regsweep::model::layout::BLOB_PARTITIONS)
        + 1
        + tops.len() as u64
        + 1
        + multipart.len() as u64
        + 1
        + 1;
    assert_eq!(requests["list_requests"], lists, "{summary}");
    assert_eq!(requests["delete_requests"], 0);

    // A bucket that is not there is an error naming it, never an empty store.
    let out = support::regsweep()
        .args([
            "gc",
            "s3://no-such-bucket/store",
            "--endpoint-url",
            &endpoint,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://no-such-bucket/store"));
    // A prefix of the bucket with no store under it (one level off) is an error too.
    let url_off = format!("{}/docker", url.to_string_lossy());
    let out = support::regsweep()
        .args(["audit", &url_off, "--endpoint-url", &endpoint])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds no registry store"), "{stderr}");

    // -m: the untagged image only; the reference also deletes the tagged index's children.
    let (ours_m, _) = by_url(&["-m"]);
    s.assert_untagged_plans(&ours, &ours_m, &reference_dry_run(&config, true));

    // du and audit read the bucket as they read a folder: a copy of the bucket on disk gives the same report.
    let copy = dir.path().join("copy");
    let storage = s3.storage("registry");
    for key in s3.keys("registry") {
        let mut data = Vec::new();
        storage
            .read_chunks(&key, &mut |c| data.extend_from_slice(c))
            .unwrap();
        let path = copy.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    let report = |command: &str, storage: &std::ffi::OsStr| {
        let args: Vec<&std::ffi::OsStr> = vec![
            command.as_ref(),
            storage,
            "--endpoint-url".as_ref(),
            endpoint.as_ref(),
        ];
        let args = if command == "audit" {
            [args, vec!["--verify-digests".as_ref()]].concat()
        } else {
            args
        };
        let (code, mut json, stderr) = regsweep_json(&args);
        json.as_object_mut().unwrap().remove("elapsed_ms");
        json.as_object_mut().unwrap().remove("storage");
        json.as_object_mut().unwrap().remove("s3");
        (code, json, stderr)
    };
    for command in ["du", "audit"] {
        let (code, mut on_s3, stderr) = report(command, url.as_os_str());
        assert_eq!(code, 0, "{command}: {on_s3:#}\n{stderr}");
        let (code, mut on_disk, stderr) = report(command, copy.as_os_str());
        if command == "du" {
            // Incomplete multipart uploads exist only in the bucket: du counts their parts there.
            let multipart = |r: &mut serde_json::Value| {
                r["reclaimable"]
                    .as_object_mut()
                    .unwrap()
                    .remove("multipart_bytes")
            };
            assert_eq!(multipart(&mut on_s3), Some(mp_bytes.into()));
            assert_eq!(multipart(&mut on_disk), Some(0.into()));
        }
        assert_eq!(code, 0, "{command}: {on_disk:#}\n{stderr}");
        assert_eq!(on_s3, on_disk, "{command}");
    }
    let (_, du, _) = report("du", url.as_os_str());
    assert_eq!(du["repositories"].as_array().unwrap().len(), repos.len());
    assert!(du["total_bytes"].as_u64().unwrap() > 0);

    // Plan, then apply the plan through the config; then every tag pulls back through the registry.
    let plan_file = dir.path().join("plan.ndjson");
    run(support::regsweep()
        .args(["gc", "-m", "--grace", "0s", "--plan"])
        .arg(&plan_file)
        .arg(&config));
    let out = run(support::regsweep()
        .arg("apply")
        .arg(&plan_file)
        .arg(&config)
        .args(["--force", "--json"]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        summary["deleted"]["blobs"],
        ours_m.blobs.len() as u64,
        "{summary}"
    );
    assert_eq!(
        summary["deleted"]["layer_links"],
        ours_m.layer_links.len() as u64
    );
    assert_eq!(summary["deleted"]["failures"].as_array().unwrap().len(), 0);
    assert!(
        summary["s3"]["delete_requests"].as_u64().unwrap() >= 3,
        "{summary}"
    );
    s.pull_every_tag(dir.path());
    let remaining = s3.keys("registry");
    for d in &ours_m.blobs {
        let data = format!(
            "docker/registry/v2/blobs/sha256/{}/{}/data",
            &d[7..9],
            &d[7..]
        );
        assert!(!remaining.contains(&data), "{d} still in the bucket");
    }
    assert_no_link_points_at_something_gone(&remaining);
    assert_eq!(summary["deleted"]["multipart_uploads"], multipart.len());
    assert_eq!(
        s3.storage("registry").multipart_uploads().unwrap(),
        Vec::new(),
        "every abandoned multipart upload was aborted"
    );
    assert_eq!(reference_dry_run(&config, false), PlanSets::default());
    assert_eq!(by_url(&["-m"]).0, PlanSets::default());

    // prune-tags on S3: `team/*` is one level, so only team/app's tag goes, every key of its folder.
    let tag_keys = |k: &BTreeSet<String>, repo: &str| -> Vec<String> {
        let folder = format!("docker/registry/v2/repositories/{repo}/_manifests/tags/");
        k.iter()
            .filter(|k| k.starts_with(&folder))
            .cloned()
            .collect()
    };
    assert!(!tag_keys(&remaining, "team/app").is_empty());
    let (code, pruned, stderr) = regsweep_json(&[
        "prune-tags".as_ref(),
        url.as_os_str(),
        "--endpoint-url".as_ref(),
        endpoint.as_ref(),
        "--repo".as_ref(),
        "team/*".as_ref(),
        "--all-tags".as_ref(),
        "--delete".as_ref(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("cannot tell"), "a bare URL warns: {stderr}");
    assert_eq!(pruned["removed"], 1, "{pruned}");
    assert_eq!(pruned["deleted"]["tags"], 1, "{pruned}");
    let after = s3.keys("registry");
    assert_eq!(tag_keys(&after, "team/app"), Vec::<String>::new());
    assert!(!tag_keys(&after, "team/x/tool").is_empty());
    let r = s
        .registry
        .http("GET", "/v2/team/app/manifests/v1", &[], &[]);
    assert_eq!(r.status, 404, "the pruned tag must not resolve");
    // What only that tag kept is now gc -m's to collect.
    assert!(!by_url(&["-m"]).0.manifests.is_empty());
}

#[test]
fn a_versioned_bucket_is_named_before_a_delete_with_the_lifecycle_rule_that_frees_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    let blob = b"a blob no manifest refers to";
    let digest = support::oci::sha256(blob);
    let hex = &digest["sha256:".len()..];
    for bucket in ["plain", "versioned"] {
        s3.create_bucket(bucket);
        s3.put_object(
            bucket,
            &format!(
                "store/docker/registry/v2/blobs/sha256/{}/{hex}/data",
                &hex[..2]
            ),
            blob,
        );
        s3.put_object(
            bucket,
            &format!("store/docker/registry/v2/repositories/r/_layers/sha256/{hex}/link"),
            digest.as_bytes(),
        );
    }
    let on = support::registry::http_to(
        s3.port,
        "PUT",
        "/versioned?versioning",
        &[],
        b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
    )
    .unwrap();
    assert_eq!(on.status, 200);
    support::next_second();
    let endpoint = s3.endpoint();
    let gc = |bucket: &str, json: bool| {
        let url = format!("s3://{bucket}/store");
        let mut cmd = support::regsweep();
        cmd.args(["gc", "--grace", "0s", "--endpoint-url", &endpoint, &url]);
        if json {
            cmd.arg("--json");
        }
        run(&mut cmd)
    };
    let summary: serde_json::Value = serde_json::from_str(&gc("versioned", true)).unwrap();
    let v = &summary["bucket_versioning"];
    assert_eq!(v["status"], "Enabled", "{summary}");
    assert!(
        v["advice"]
            .as_str()
            .unwrap()
            .contains("NoncurrentVersionExpiration")
    );
    assert_eq!(summary["blobs"]["eligible"], 1);
    let human = gc("versioned", false);
    assert!(
        human.contains("bucket versioning is Enabled") && human.contains("delete marker"),
        "{human}"
    );
    let summary: serde_json::Value = serde_json::from_str(&gc("plain", true)).unwrap();
    assert!(summary["bucket_versioning"].is_null(), "{summary}");
    assert_eq!(summary["blobs"]["eligible"], 1);
}

#[test]
fn delete_versions_removes_every_version_of_what_it_sweeps_and_the_dry_run_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    let orphan = b"a blob no manifest refers to";
    let digest = support::oci::sha256(orphan);
    let hex = &digest["sha256:".len()..];
    let data = format!(
        "store/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    );
    let link = format!("store/docker/registry/v2/repositories/r/_layers/sha256/{hex}/link");
    for bucket in ["marked", "purged"] {
        s3.create_bucket(bucket);
        let on = support::registry::http_to(
            s3.port,
            "PUT",
            &format!("/{bucket}?versioning"),
            &[],
            b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
        )
        .unwrap();
        assert_eq!(on.status, 200);
        // Written twice (an interrupted push retried): two versions of the data.
        s3.put_object(bucket, &data, orphan);
        s3.put_object(bucket, &data, orphan);
        s3.put_object(bucket, &link, digest.as_bytes());
    }
    support::next_second();
    let endpoint = s3.endpoint();
    let gc = |bucket: &str, extra: &[&str]| {
        let url = format!("s3://{bucket}/store");
        let mut cmd = support::regsweep();
        cmd.args([
            "gc",
            "--grace",
            "0s",
            "--json",
            "--endpoint-url",
            &endpoint,
            &url,
        ]);
        cmd.args(extra);
        serde_json::from_str::<serde_json::Value>(&run(&mut cmd)).unwrap()
    };
    // The store's versions; the lock object a deleting run writes and removes is not the store's.
    let store_versions = |bucket: &str| {
        let mut v = s3.versions(bucket);
        v.retain(|(k, _, _)| k.starts_with("store/docker/"));
        v
    };
    let count = |bucket: &str| {
        let v = store_versions(bucket);
        let markers = v.iter().filter(|(_, _, m)| *m).count();
        (v.len() - markers, markers)
    };
    assert_eq!(count("purged"), (3, 0));

    // The dry run names the choice, and deletes nothing.
    let plan = dir.path().join("plan.ndjson");
    let dry = gc(
        "purged",
        &["--delete-versions", "--plan", plan.to_str().unwrap()],
    );
    let v = &dry["bucket_versioning"];
    assert_eq!(
        (v["status"].as_str(), v["delete_versions"].as_bool()),
        (Some("Enabled"), Some(true))
    );
    assert!(
        v["advice"].as_str().unwrap().contains("cannot be restored"),
        "{v}"
    );
    assert!(
        dry["plan_file"]["apply"]
            .as_str()
            .unwrap()
            .ends_with("--delete-versions"),
        "{dry}"
    );
    assert_eq!(dry["blobs"]["eligible"], 1);
    assert_eq!(count("purged"), (3, 0));
    let mut human = support::regsweep();
    human.args([
        "gc",
        "--grace",
        "0s",
        "--delete-versions",
        "--endpoint-url",
        &endpoint,
        "s3://purged/store",
    ]);
    let human = run(&mut human);
    assert!(
        human.contains("bucket versioning is Enabled: --delete-versions"),
        "{human}"
    );
    // Without the option the advice offers it.
    let plain = gc("marked", &[]);
    assert_eq!(plain["bucket_versioning"]["delete_versions"], false);
    assert!(
        plain["bucket_versioning"]["advice"]
            .as_str()
            .unwrap()
            .contains("--delete-versions")
    );

    // A plain delete leaves every version and adds delete markers: nothing is freed.
    let marked = gc("marked", &["--delete", "--force"]);
    assert_eq!(marked["deleted"]["blobs"], 1, "{marked}");
    assert_eq!(count("marked"), (3, 2));
    assert!(s3.keys("marked").is_empty());

    // --delete-versions leaves nothing of what it swept: no version, no marker.
    let purged = gc("purged", &["--delete", "--force", "--delete-versions"]);
    assert_eq!(purged["deleted"]["blobs"], 1, "{purged}");
    assert_eq!(purged["s3"]["older_versions_deleted"], 1, "{purged}");
    assert_eq!(
        store_versions("purged"),
        Vec::<(String, String, bool)>::new(),
        "every version of the swept keys is gone"
    );
    // On a filesystem store the option is refused, naming the store.
    let fs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fs.path().join("docker/registry/v2/repositories")).unwrap();
    let out = support::regsweep()
        .args(["gc", "--delete-versions"])
        .arg(fs.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--delete-versions") && err.contains(&fs.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn listing_neighbouring_folders_as_one_range_lists_what_each_folder_holds_on_s3_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    s3.create_bucket("ranges");
    let fs_root = dir.path().join("fs");
    let repos = "docker/registry/v2/repositories/";
    // Folder names whose keys sort apart from their names (`a-b/` and `a.b/` before `a/`), a file
    // beside the folders, and a folder whose name is a prefix of another's.
    let keys = [
        "a-b/_layers/sha256/1/link",
        "a.b/_layers/sha256/2/link",
        "a/_layers/sha256/3/link",
        "a/_manifests/tags/t/current/link",
        "ab/_layers/sha256/4/link",
        "b/_layers/sha256/5/link",
    ];
    for k in keys.iter().chain(&["a0"]) {
        s3.put_object("ranges", &format!("store/{repos}{k}"), b"x");
        let p = fs_root.join(repos).join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }
    let on_s3 = s3.storage("ranges");
    let on_disk = regsweep::storage::fs::FsStorage::open(&fs_root).unwrap();
    for storage in [&on_s3 as &dyn Storage, &on_disk] {
        let mut folders = storage.child_folders(repos).unwrap();
        folders.sort_by(|a, b| a.bytes().chain([b'/']).cmp(b.bytes().chain([b'/'])));
        assert_eq!(
            folders,
            ["a-b", "a.b", "a", "ab", "b"],
            "{}",
            storage.describe()
        );
        for group in [&folders[..], &folders[1..3], &folders[2..3], &folders[3..]] {
            let mut got = BTreeSet::new();
            storage
                .list_below(
                    repos,
                    group,
                    Default::default(),
                    &mut |e| assert!(got.insert(e.key), "listed twice"),
                    &mut |n| panic!("{n:?}"),
                )
                .unwrap();
            let want: BTreeSet<String> = keys
                .iter()
                .filter(|k| group.iter().any(|f| k.starts_with(&format!("{f}/"))))
                .map(|k| format!("{repos}{k}"))
                .collect();
            assert_eq!(got, want, "{} {group:?}", storage.describe());
        }
    }
    // Through a range the S3 listing costs pages by keys: one page for all five folders.
    let before = on_s3.request_counts().unwrap().list_requests;
    let folders = ["a-b", "a.b", "a", "ab", "b"].map(String::from);
    on_s3
        .list_below(
            repos,
            &folders,
            Default::default(),
            &mut |_| {},
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(on_s3.request_counts().unwrap().list_requests - before, 1);
}

/// Keys of a namespace long enough for the S3 listing to split (5,000 and more keys after its
/// first 4 pages): 60 repositories under `big/`, one under a repository (`big/r05/sub`), a
/// repository named as the namespace (`big`), and small neighbours.
fn long_namespace() -> Vec<(String, Vec<u8>)> {
    let digest = |n: u64| format!("sha256:{n:064x}");
    let hex = |n: u64| format!("{n:064x}");
    let mut keys = Vec::new();
    let mut repo = |name: &str, seed: u64, layers: u64| {
        let at = |k: String| format!("docker/registry/v2/repositories/{name}/{k}");
        for i in 0..layers {
            let d = seed * 1000 + i;
            keys.push((
                at(format!("_layers/sha256/{}/link", hex(d))),
                digest(d).into_bytes(),
            ));
        }
        for i in 0..4 {
            let d = seed * 1000 + 900 + i;
            keys.push((
                at(format!("_manifests/revisions/sha256/{}/link", hex(d))),
                digest(d).into_bytes(),
            ));
        }
        let d = seed * 1000 + 903;
        keys.push((
            at("_manifests/tags/latest/current/link".into()),
            digest(d).into_bytes(),
        ));
        keys.push((
            at(format!(
                "_manifests/tags/latest/index/sha256/{}/link",
                hex(d)
            )),
            digest(d).into_bytes(),
        ));
    };
    repo("a", 1, 3);
    repo("big", 2, 3);
    for r in 0..60 {
        repo(&format!("big/r{r:02}"), 10 + r, 80);
    }
    repo("big/r05/sub", 90, 3);
    repo("zz", 91, 3);
    keys.sort();
    keys
}

#[test]
fn a_long_namespace_is_listed_in_parts_that_each_hold_whole_repositories_and_walk_as_on_disk() {
    use regsweep::model::progress::Progress;
    use regsweep::pipeline::collect::{inventory::Detail, walk};
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    s3.create_bucket("parts");
    let objects = long_namespace();
    let stored: Vec<(String, Vec<u8>)> = objects
        .iter()
        .map(|(k, v)| (format!("store/{k}"), v.clone()))
        .collect();
    s3.put_objects("parts", &stored);
    let fs_root = dir.path().join("fs");
    for (k, body) in &objects {
        let p = fs_root.join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let repos = "docker/registry/v2/repositories/";
    let on_s3 = s3.storage("parts");

    // The listing itself: every key once, in parts; a part's keys in order; no repository's own
    // keys (`…/_layers/…`) in two parts; parts begin only where the caller allows.
    let split_at = |f: &str| {
        f.strip_prefix(repos)
            .is_some_and(|n| !n.split('/').any(|c| c.starts_with('_')))
    };
    let mut seen = BTreeSet::new();
    let mut last_of_part: Vec<Option<String>> = Vec::new();
    let mut part_of_repo = std::collections::BTreeMap::new();
    let folders = ["a", "big", "zz"].map(String::from);
    let before = on_s3.request_counts().unwrap().list_requests;
    on_s3
        .list_below_in_parts(
            repos,
            &folders,
            Default::default(),
            &split_at,
            &mut |part, e| {
                if last_of_part.len() <= part {
                    last_of_part.resize(part + 1, None);
                }
                if let Some(last) = &last_of_part[part] {
                    assert!(e.key > *last, "part {part}: {} after {last}", e.key);
                }
                last_of_part[part] = Some(e.key.clone());
                let repo = e.key[..e.key.find("/_").unwrap()].to_owned();
                let first = *part_of_repo.entry(repo.clone()).or_insert(part);
                assert_eq!(first, part, "{repo} in parts {first} and {part}");
                assert!(seen.insert(e.key), "listed twice");
            },
            &mut |n| panic!("{n:?}"),
        )
        .unwrap();
    let want: BTreeSet<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(seen, want);
    assert!(
        last_of_part.len() > 1,
        "{} keys were listed in one part",
        want.len()
    );
    // Splitting costs a few pages (where to split, and the page each part ends in), not many.
    let pages = on_s3.request_counts().unwrap().list_requests - before;
    let floor = want.len().div_ceil(1000) as u64;
    assert!(
        pages <= floor + 2 * last_of_part.len() as u64 + 4,
        "{pages} list requests for {floor} pages"
    );

    // The walk over it: the same repositories as on disk.
    let on_disk = regsweep::storage::fs::FsStorage::open(&fs_root).unwrap();
    let shape = |storage: &dyn Storage| {
        let inv = walk::scan(storage, Detail::Targets, &Progress::new()).unwrap();
        assert!(inv.repositories.len() > 60, "{}", storage.describe());
        inv.repositories
            .iter()
            .map(|r| {
                let tags: Vec<_> = r
                    .tags
                    .iter()
                    .map(|t| (t.name.to_string(), t.current))
                    .collect();
                let revisions: Vec<_> = r.revisions.digests(&inv.blobs).collect();
                (
                    r.name.clone(),
                    revisions,
                    tags,
                    r.dangling_layer_links.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (s3_shape, disk_shape) = (shape(&on_s3), shape(&on_disk));
    assert_eq!(s3_shape.len(), 64);
    assert_eq!(s3_shape, disk_shape);
}
