//! GCS and Azure end to end. Debian's registry has neither driver, so the store is built by the
//! real registry on a filesystem, copied into fake-gcs-server and Azurite under the object names
//! each driver writes (Azure both as registry 3.x names blobs and with 2.8's leading `/`), planned
//! there (the plan must equal the one on disk), swept with `--delete`, and copied back to a
//! filesystem that the real registry serves: every tag must still pull.

mod support;

use regsweep::storage::{Moves, Storage};
use std::path::Path;
use support::registry::Registry;
use support::scenario::build_store;
use support::{files_ending, regsweep_plan, run};

/// Every object of `storage` written below `root` as a file.
fn copy_back(storage: &dyn Storage, root: &Path) -> usize {
    let mut keys = Vec::new();
    storage
        .list("docker/", &mut |e| keys.push(e.key), &mut |_| {})
        .unwrap();
    for key in &keys {
        let mut data = Vec::new();
        storage
            .read_chunks(key, &mut |c| data.extend_from_slice(c))
            .unwrap();
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    keys.len()
}

#[test]
fn a_store_copied_into_gcs_and_azure_plans_as_on_disk_and_every_tag_pulls_after_delete() {
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("built");
    std::fs::create_dir_all(&built).unwrap();
    let mut s = build_store(&built, Registry::start(&built));
    let root = s.registry.root.clone();
    let (on_disk, _) = regsweep_plan(&root, &["--grace", "0s"]);
    assert!(!on_disk.blobs.is_empty() && !on_disk.uploads.is_empty());

    let gcs = support::gcs::GcsServer::start(&dir.path().join("gcs.log"));
    gcs.create_bucket("registry");
    let azure = support::azure::AzureServer::start(&dir.path().join("azurite.log"));
    azure.create_container("reg-v3");
    azure.create_container("reg-v28");
    let files = files_ending(&root, "");
    assert!(files.iter().all(|f| f.starts_with("docker/registry/v2/")));
    let gcs_store = gcs.storage("registry", "store/");
    let v3 = azure.storage("reg-v3", "store/");
    for f in &files {
        let bytes = std::fs::read(root.join(f)).unwrap();
        gcs_store.write_object(f, &bytes).unwrap();
        v3.write_object(f, &bytes).unwrap();
        azure.put_blob("reg-v28", &format!("/{f}"), &bytes);
    }
    support::next_second();

    let gcs_url = "gs://registry/store".to_owned();
    let v3_url = format!("{}/reg-v3/store", azure.service_url());
    let v28_url = format!("{}/reg-v28", azure.service_url());
    let endpoint = gcs.endpoint();
    let stores: [(&str, &str, Vec<&str>); 3] = [
        ("gcs", &gcs_url, vec!["--endpoint-url", &endpoint]),
        ("azure", &v3_url, vec![]),
        ("azure 2.8", &v28_url, vec![]),
    ];
    // The registry's config.yml with a gcs or an azure section names the same stores.
    let gcs_config = dir.path().join("gcs.yml");
    std::fs::write(
        &gcs_config,
        "version: 0.1\nstorage:\n  gcs:\n    bucket: registry\n    rootdirectory: /store\n  \
         maintenance:\n    readonly:\n      enabled: true\n",
    )
    .unwrap();
    let azure_config = dir.path().join("azure.yml");
    std::fs::write(
        &azure_config,
        format!(
            "version: 0.1\nstorage:\n  azure:\n    accountname: {}\n    accountkey: {}\n    \
             container: reg-v3\n    rootdirectory: store\n    serviceurl: {}\n    credentials:\n      \
             type: shared_key\n  maintenance:\n    readonly:\n      enabled: true\n",
            regsweep::storage::azure::auth::EMULATOR_ACCOUNT,
            regsweep::storage::azure::auth::EMULATOR_KEY,
            azure.service_url()
        ),
    )
    .unwrap();
    for (name, config) in [("gcs", &gcs_config), ("azure", &azure_config)] {
        let plan = dir.path().join(format!("{name}.plan"));
        run(support::regsweep()
            .env("STORAGE_EMULATOR_HOST", &endpoint)
            .arg("gc")
            .arg(config)
            .args(["--grace", "0s", "--plan"])
            .arg(&plan));
        assert_eq!(
            support::read_plan(&plan),
            on_disk,
            "{name}: gc {}",
            config.display()
        );
    }

    for (name, url, extra) in &stores {
        let mut args = extra.clone();
        args.extend(["--grace", "0s"]);
        let (plan, summary) = regsweep_plan(Path::new(url), &args);
        assert_eq!(
            plan, on_disk,
            "{name}: the plan differs from the one on disk"
        );
        let service = name.split(' ').next().unwrap();
        assert!(
            summary[service]["list_requests"].as_u64() > Some(0)
                && summary[service]["retries"] == 0
                && summary.get("s3").is_none(),
            "{name}: requests reported under {service:?}: {summary}"
        );
        let mut delete = extra.clone();
        delete.extend(["--grace", "0s", "--delete", "--force"]);
        // On GCS the sweep goes to the trash (a rewrite and a delete a key), which keeps its
        // moves outside the registry's keys: the plan after it is as empty.
        if *name == "gcs" {
            delete.extend(["--trash", "1d"]);
        }
        run(support::regsweep().arg("gc").arg(url).args(&delete));
        let (after, _) = regsweep_plan(Path::new(url), &args);
        assert!(
            after.blobs.is_empty() && after.manifests.is_empty() && after.uploads.is_empty(),
            "{name}: a second plan after --delete finds more: {after:?}"
        );
    }

    // Each swept store, copied back to a filesystem, serves every tag through the real registry.
    let v28 = azure.storage("reg-v28", "");
    let swept: [(&str, &dyn Storage); 3] =
        [("gcs", &gcs_store), ("azure", &v3), ("azure 2.8", &v28)];
    for (i, (name, storage)) in swept.into_iter().enumerate() {
        let back = dir.path().join(format!("back-{i}"));
        let copied = copy_back(storage, &back.join("root"));
        assert!(
            copied < files.len(),
            "{name}: the sweep deleted nothing ({copied} of {} objects left)",
            files.len()
        );
        s.registry = Registry::start(&back);
        s.pull_every_tag(&back.join("pulls"));
    }

    // A container where both 3.x's names and 2.8's leading '/' hold registry data is refused:
    // which one the registry serves cannot be told, and a sweep of one would not protect the other.
    azure.put_blob("reg-v3", "/store/docker/registry/v2/repositories/x/y", b"z");
    let out = support::regsweep()
        .args(["gc", &v3_url, "--grace", "0s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("holds registry data twice")
            && stderr.contains("store/docker/")
            && stderr.contains("/store/docker/"),
        "{stderr}"
    );
}
