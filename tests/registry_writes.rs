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
