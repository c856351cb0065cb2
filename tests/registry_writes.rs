//! What the real registry writes itself, read right: a registry that has stored nothing yet is an
//! empty store when its config names it (and a bare path with nothing of the registry under it is
//! still refused); the `_layers` folder a blob deleted through the API leaves without its link is
//! no link; the `_layers` links its own garbage-collect leaves naming data it removed are planned
//! away.

mod support;

use std::ffi::OsStr;
use std::process::Command;
use support::registry::Registry;
use support::{oci, regsweep_json, run, skopeo_copy, try_skopeo_copy};

/// `regsweep ARGS --json` for a store given as a path.
fn json(args: &[&str], store: &std::path::Path) -> (i32, serde_json::Value, String) {
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.insert(1, store.as_os_str());
    regsweep_json(&all)
}

#[test]
fn a_registry_that_has_stored_nothing_yet_is_an_empty_store_by_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    // The registry answers, and has written nothing of a store yet.
    assert!(registry.catalog().is_empty());
    assert!(!registry.root.join("docker/registry/v2").exists());
    for args in [
        &["gc", "--grace", "0s"][..],
        &["gc", "-m", "--grace", "0s"],
        &["du"],
        &["audit"],
    ] {
        let (code, report, stderr) = json(args, &registry.config);
        assert_eq!(code, 0, "{args:?} on the config: {stderr}");
        assert!(stderr.contains("nothing stored yet"), "{args:?}: {stderr}");
        assert_eq!(
            report["storage"],
            registry.root.display().to_string(),
            "{args:?}"
        );
    }
    let (_, report, _) = json(&["gc", "-m", "--grace", "0s"], &registry.config);
    assert_eq!(report["blobs"]["total"], 0, "{report}");
    assert_eq!(report["repositories"], 0, "{report}");
    // A deleting run, in read-only mode as an operator's schedule runs it, succeeds too.
    let (code, _, stderr) = json(
        &["gc", "-m", "--delete", "--force", "--grace", "0s"],
        &registry.config,
    );
    assert_eq!(code, 0, "{stderr}");

    // The same folder named as a bare path is refused: it may be one level off.
    let (code, _, stderr) = json(&["gc"], &registry.root);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no registry store"), "{stderr}");

    // A config whose rootdirectory does not exist yet (a registry never started) is empty too.
    let config = dir.path().join("unstarted.yml");
    let absent = dir.path().join("not-yet");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n",
            absent.display()
        ),
    )
    .unwrap();
    let (code, report, stderr) = json(&["gc", "--grace", "0s"], &config);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["storage"], absent.display().to_string());
    assert!(!absent.exists(), "an empty store is not created");
}

#[test]
fn a_registry_on_s3_that_has_stored_nothing_yet_is_an_empty_store_by_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    s3.create_bucket("registry");
    let registry = Registry::start_s3(dir.path(), &s3, "registry");
    assert!(registry.catalog().is_empty());
    let (code, report, stderr) = json(&["gc", "-m", "--grace", "0s"], &registry.config);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("nothing stored yet"), "{stderr}");
    assert_eq!(report["blobs"]["total"], 0, "{report}");
    // The bucket's prefix named as a URL is refused.
    let (code, _, stderr) = regsweep_json(&[
        OsStr::new("gc"),
        OsStr::new("s3://registry/store"),
        OsStr::new("--endpoint-url"),
        OsStr::new(&s3.endpoint()),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no registry store"), "{stderr}");
}

/// The problems of an audit's report, as (kind, path).
fn problems(report: &serde_json::Value) -> Vec<(String, String)> {
    report["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems array: {report}"))
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("").to_owned(),
                p["path"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_layers_folder_without_its_link_is_no_link_and_links_to_removed_data_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let layout = dir.path().join("layout");
    let image = oci::single(&layout, &["base", "app"]);
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &registry.image("app", "1"),
        &[],
    );
    // A blob pushed on its own and deleted through the API: its link goes, its folder stays.
    let deleted = registry.push_blob("app", b"pushed, then deleted through the API");
    let r = registry.http("DELETE", &format!("/v2/app/blobs/{deleted}"), &[], &[]);
    assert_eq!(r.status, 202, "DELETE blob");
    let layers = registry
        .root
        .join("docker/registry/v2/repositories/app/_layers/sha256");
    let deleted_folder = layers.join(deleted.trim_start_matches("sha256:"));
    assert!(deleted_folder.is_dir() && !deleted_folder.join("link").exists());
    // A blob pushed on its own and left: nothing refers to it but its link.
    let left = registry.push_blob("app", b"pushed and left");

    // The registry's own collector removes both blobs' data, and leaves the link of the second.
    run(Command::new("docker-registry")
        .env_remove("AWS_CA_BUNDLE")
        .args(["garbage-collect"])
        .arg(&registry.config));
    let data = |d: &str| {
        let hex = d.trim_start_matches("sha256:");
        registry.root.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    };
    assert!(!data(&deleted).exists() && !data(&left).exists());
    let left_link = layers.join(left.trim_start_matches("sha256:")).join("link");
    assert!(left_link.is_file());
    assert_eq!(
        registry.get_blob("app", &left).status,
        404,
        "the link serves nothing"
    );

    // The folder without a link is no problem; the link to removed data is one.
    let (code, report, stderr) = json(&["audit"], &registry.config);
    assert_eq!(code, 1, "{stderr}");
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "missing_blob");
    assert!(
        found[0]
            .1
            .ends_with(&format!("{}/link", left.trim_start_matches("sha256:"))),
        "{found:?}"
    );

    // gc plans the dead link (and not the folder without one), sweeps it, and the store is whole.
    let (code, report, stderr) = json(&["gc", "--grace", "0s"], &registry.config);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["layer_links"]["eligible"], 1, "{report}");
    let (code, _, stderr) = json(
        &["gc", "--grace", "0s", "--delete", "--force"],
        &registry.config,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!left_link.exists());
    let (code, report, stderr) = json(&["audit"], &registry.config);
    assert_eq!(code, 0, "{stderr} {report}");
    // The image is whole, and a second run finds nothing more to do.
    try_skopeo_copy(
        &registry.image("app", "1"),
        &format!("oci:{}:pulled", dir.path().join("pulled").display()),
        &[],
    )
    .unwrap();
    assert!(image.layers.iter().all(|l| data(l).exists()));
    let (code, report, stderr) = json(&["gc", "--grace", "0s"], &registry.config);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["layer_links"]["eligible"], 0, "{report}");
}

#[test]
fn a_blob_written_half_a_second_after_a_run_starts_is_not_planned() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let layout = dir.path().join("layout");
    oci::single(&layout, &["base"]);
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &registry.image("app", "1"),
        &[],
    );
    let late = registry.push_blob("app", b"written after the run started");
    let hex = late.trim_start_matches("sha256:");
    let data = registry.root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    // Start early in a second, and date the blob half a second later: the same second as the
    // run's start, after it.
    let mut waited = 0;
    let start = loop {
        let now = std::time::SystemTime::now();
        let into = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        if into < 150 || waited > 150 {
            break now;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    };
    std::fs::File::options()
        .write(true)
        .open(&data)
        .unwrap()
        .set_modified(start + std::time::Duration::from_millis(500))
        .unwrap();
    let (code, report, stderr) = json(&["gc", "--grace", "0s", "--no-cache"], &registry.root);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["blobs"]["eligible"], 0, "{report}");
    assert_eq!(report["blobs"]["held_by_grace"], 1, "{report}");
    // Once its time has passed, it is planned.
    std::fs::File::options()
        .write(true)
        .open(&data)
        .unwrap()
        .set_modified(start - std::time::Duration::from_secs(1))
        .unwrap();
    let (_, report, _) = json(&["gc", "--grace", "0s", "--no-cache"], &registry.root);
    assert_eq!(report["blobs"]["eligible"], 1, "{report}");
}

/// `sha512:<hex>` of `data`.
fn sha512(data: &[u8]) -> String {
    use sha2::Digest as _;
    let hex: String = sha2::Sha512::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha512:{hex}")
}

/// A descriptor of `data` named by `digest`.
fn descriptor(media_type: &str, data: &[u8], digest: &str) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": data.len()})
}

/// Pulls `reference` of `repo` as a client that checks every digest does: the manifest, and every
/// blob and child it names by the digest it names it with, each body hashed with that algorithm.
fn pull(registry: &Registry, repo: &str, reference: &str, digest: Option<&str>) {
    let r = registry.get_manifest(repo, reference);
    assert_eq!(r.status, 200, "GET manifest {repo}:{reference}");
    if let Some(d) = digest {
        assert_eq!(
            named(&r.body, d),
            d,
            "{repo}:{reference} hashes to its digest"
        );
    }
    let m: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    for desc in m["manifests"].as_array().into_iter().flatten() {
        let d = desc["digest"].as_str().unwrap();
        pull(registry, repo, d, Some(d));
    }
    let blobs = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(m.get("config"));
    for desc in blobs {
        let d = desc["digest"].as_str().unwrap();
        let r = registry.get_blob(repo, d);
        assert_eq!(r.status, 200, "GET blob {repo}@{d}");
        assert_eq!(named(&r.body, d), d, "{repo}@{d} hashes to its digest");
    }
}

/// `data`'s digest by the algorithm `like` names.
fn named(data: &[u8], like: &str) -> String {
    if like.starts_with("sha512:") {
        sha512(data)
    } else {
        oci::sha256(data)
    }
}

#[test]
fn blobs_uploaded_and_named_by_sha512_are_kept_through_their_aliases_and_collected_when_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    // An image whose config and layer were uploaded by sha512 and which names them so, tagged v1;
    // an index naming it by sha512 (its bytes uploaded as a sha512 blob), tagged idx.
    let put = |repo: &str, data: &[u8]| {
        let d = sha512(data);
        registry.push_blob_as(repo, data, &d);
        d
    };
    let image = |repo: &str, seed: &str| {
        let layer = format!("layer of {seed}").repeat(20).into_bytes();
        let config = serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}, "seed": seed})
        .to_string()
        .into_bytes();
        let (l, c) = (put(repo, &layer), put(repo, &config));
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": oci_manifest,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config, &c),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer, &l)]}),
        )
        .unwrap()
    };
    let v1 = image("app", "kept");
    assert_eq!(
        registry.put_manifest("app", "v1", oci_manifest, &v1).status,
        201
    );
    let child = put("app", &v1);
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor(oci_manifest, &v1, &child)]}))
    .unwrap();
    let index_type = "application/vnd.oci.image.index.v1+json";
    assert_eq!(
        registry
            .put_manifest("app", "idx", index_type, &index)
            .status,
        201
    );
    // Garbage: an image pushed the same way and deleted, a blob uploaded by sha512 and left, and a
    // repository that holds only such a blob.
    let old = image("app", "untagged");
    assert_eq!(
        registry
            .put_manifest("app", "old", oci_manifest, &old)
            .status,
        201
    );
    registry.delete_manifest("app", &oci::sha256(&old));
    let junk = put("app", b"uploaded by sha512, never named");
    let lonely = put("lonely", b"the only blob of its repository");
    pull(&registry, "app", "v1", None);
    pull(&registry, "app", "idx", None);

    // Nothing is called corrupt, and only the garbage is planned.
    let (code, report, stderr) = json(&["audit"], &registry.config);
    assert_eq!(code, 0, "{stderr}\n{report}");
    let (code, report, stderr) = json(&["gc", "-m", "--grace", "0s"], &registry.config);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        report["problems"].as_array().is_none_or(Vec::is_empty),
        "{report}"
    );
    // The old image's manifest, config and layer, the junk blob and the lonely one.
    assert_eq!(report["blobs"]["eligible"], 5, "{report}");
    // Each of the four blobs uploaded by sha512 has its sha256 link and its alias link (the deleted
    // manifest, put by tag, has none).
    assert_eq!(report["layer_links"]["eligible"], 8, "{report}");

    let (code, report, stderr) = json(
        &["gc", "-m", "--grace", "0s", "--delete", "--force"],
        &registry.config,
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let repos = registry.root.join("docker/registry/v2/repositories");
    assert!(
        !repos.join("lonely").exists(),
        "the emptied repository is gone"
    );
    let alias_folder = |repo: &str, d: &str| {
        repos
            .join(repo)
            .join("_layers/sha512")
            .join(d.trim_start_matches("sha512:"))
    };
    assert!(
        !alias_folder("app", &junk).exists(),
        "the junk's alias link is gone"
    );
    assert!(
        alias_folder("app", &child).exists(),
        "the child's alias link stays"
    );
    let _ = lonely;

    // Restarted, the registry serves every tag by every digest it was pushed with.
    drop(registry);
    let registry = Registry::start(dir.path());
    pull(&registry, "app", "v1", None);
    pull(&registry, "app", "idx", None);
    let r = registry.get_manifest("app", &child);
    assert_eq!(r.status, 200, "the child by its sha512 digest");
    // A repository left with only an alias link, its data and sha256 link gone (as the registry's
    // own collector and a delete through the API leave it): audit names it, gc empties it.
    let stray = sha512(b"stray");
    registry.push_blob_as("stray", b"stray", &stray);
    let stray256 = oci::sha256(b"stray");
    let hex = stray256.trim_start_matches("sha256:");
    std::fs::remove_dir_all(repos.join("stray/_layers/sha256")).unwrap();
    std::fs::remove_dir_all(registry.root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}",
        &hex[..2]
    )))
    .unwrap();
    let (code, report, _) = json(&["audit"], &registry.config);
    assert_eq!(code, 1, "{report}");
    let (code, report, stderr) = json(
        &["gc", "-m", "--grace", "0s", "--delete", "--force"],
        &registry.config,
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert!(!repos.join("stray").exists(), "{report}");
    // The next runs find nothing to do and nothing wrong.
    let (code, report, stderr) = json(
        &["gc", "-m", "--grace", "0s", "--delete", "--force"],
        &registry.config,
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["blobs"]["eligible"], 0, "{report}");
    assert_eq!(report["layer_links"]["eligible"], 0, "{report}");
    let (code, _, stderr) = json(&["audit"], &registry.config);
    assert_eq!(code, 0, "{stderr}");
}
