//! What the real registry writes itself, read right: a registry that has stored nothing yet is an
//! empty store when its config names it (and a bare path with nothing of the registry under it is
//! still refused).

mod support;

use std::ffi::OsStr;
use support::registry::Registry;
use support::regsweep_json;

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
