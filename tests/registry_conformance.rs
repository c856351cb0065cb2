//! Conformance against the real registry: stores written by `docker-registry serve` from skopeo
//! pushes, compared with `docker-registry garbage-collect --dry-run`, swept, and pulled back.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use support::registry::Registry;
use support::scenario::build_store;
use support::{
    PlanSets, assert_no_link_points_at_something_gone, diff, files_ending, reference_dry_run,
    regsweep_plan, run, skopeo_copy,
};

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

fn blob_size(root: &Path, digest: &str) -> u64 {
    let hex = &digest["sha256:".len()..];
    let p = root
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    std::fs::metadata(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .len()
}

#[test]
fn plans_match_the_reference_where_it_is_right_and_keep_every_platform_where_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = build_store(dir.path(), Registry::start(dir.path()));
    let config = &s.registry.config;
    let root = &s.registry.root;

    // Plain: the same blobs as the reference, no manifests.
    let reference = reference_dry_run(config, false);
    let (ours, summary) = regsweep_plan(config, &["--grace", "0s"]);
    assert_eq!(
        ours.blobs,
        reference.blobs,
        "{}",
        diff(&ours.blobs, &reference.blobs)
    );
    assert!(ours.manifests.is_empty() && reference.manifests.is_empty());
    let expected_garbage = set([&s.deleted.manifest, &s.deleted.config, &s.orphan])
        .into_iter()
        .chain(s.deleted.layers.iter().cloned())
        .collect::<BTreeSet<_>>();
    assert_eq!(
        ours.blobs,
        expected_garbage,
        "{}",
        diff(&ours.blobs, &expected_garbage)
    );
    // The layers-only repository the reference never visits: its link goes with the blob.
    assert!(
        ours.layer_links
            .contains(&("orphan/layers".to_owned(), s.orphan.clone())),
        "{:?}",
        ours.layer_links
    );
    assert!(
        ours.layer_links
            .contains(&("gone/img".to_owned(), s.deleted.layers[0].clone()))
    );
    let bytes: u64 = ours.blobs.iter().map(|d| blob_size(root, d)).sum();
    assert_eq!(summary["blobs"]["eligible"], ours.blobs.len() as u64);
    assert_eq!(summary["blobs"]["eligible_bytes"], bytes);
    assert_eq!(summary["manifests"]["eligible"], 0);
    assert_eq!(summary["repositories"], 7, "{summary}");
    assert_eq!(summary["uploads"]["count"], 1);
    assert_eq!(summary["uploads"]["eligible"], 1);
    let uploads = files_ending(
        &root.join("docker/registry/v2/repositories/team/app/_uploads"),
        "/startedat",
    );
    let id = uploads[0].trim_end_matches("/startedat").to_owned();
    assert_eq!(ours.uploads, [("team/app".to_owned(), id)].into());

    // Addressed by folder instead of config: the same plan.
    let (by_root, _) = regsweep_plan(root, &["--grace", "0s"]);
    assert_eq!(by_root, ours);

    // Default grace (2h): everything was just written, so nothing is planned and all of it is held.
    let (held, summary) = regsweep_plan(config, &[]);
    assert!(
        held.blobs.is_empty() && held.layer_links.is_empty() && held.uploads.is_empty(),
        "{held:?}"
    );
    assert_eq!(summary["uploads"]["eligible"], 0);
    assert_eq!(summary["blobs"]["held_by_grace"], ours.blobs.len() as u64);

    // -m: exactly the untagged image goes; the reference's -m also deletes the tagged index's children.
    let (ours_m, summary_m) = regsweep_plan(config, &["-m", "--grace", "0s"]);
    s.assert_untagged_plans(&ours, &ours_m, &reference_dry_run(config, true));
    assert_eq!(summary_m["manifests"]["eligible"], 1);
}

#[test]
fn after_m_delete_every_tag_pulls_and_nothing_is_left_to_collect() {
    let dir = tempfile::tempdir().unwrap();
    let s = build_store(dir.path(), Registry::start(dir.path()));
    let config = &s.registry.config;
    let root = &s.registry.root;
    let (planned, _) = regsweep_plan(config, &["-m", "--grace", "0s"]);
    assert_eq!(planned.uploads.len(), 1);
    let planned_upload = planned.uploads.first().unwrap().clone();

    // In read-only mode by its config, the store is swept without --force.
    s.registry.set_read_only();
    let out = run(support::regsweep()
        .args(["gc", "-m", "--delete", "--grace", "0s", "--json"])
        .arg(config));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let deleted = &summary["deleted"];
    assert_eq!(deleted["blobs"], planned.blobs.len() as u64, "{summary}");
    assert_eq!(deleted["manifests"], planned.manifests.len() as u64);
    assert_eq!(deleted["layer_links"], planned.layer_links.len() as u64);
    assert_eq!(deleted["failures"].as_array().unwrap().len(), 0);
    // The config names no blob-descriptor cache, so the registry has none: nothing to evict or
    // restart for.
    assert!(
        summary["notice"].is_null() && summary["cache"].is_null(),
        "{summary}"
    );
    for d in &planned.blobs {
        let hex = &d["sha256:".len()..];
        assert!(
            !root
                .join("docker/registry/v2/blobs/sha256")
                .join(&hex[..2])
                .join(hex)
                .exists(),
            "{d} still there"
        );
    }

    // Every tag, every platform, pulls back with all its blobs verified by skopeo.
    s.pull_every_tag(dir.path());
    let keys: BTreeSet<String> = files_ending(root, "").into_iter().collect();
    assert_no_link_points_at_something_gone(&keys);

    // Nothing left for the reference, nor for us.
    let reference = reference_dry_run(config, false);
    assert_eq!(
        reference,
        PlanSets::default(),
        "the reference still finds garbage"
    );
    let (again, _) = regsweep_plan(config, &["-m", "--grace", "0s"]);
    assert_eq!(again, PlanSets::default());

    // The abandoned upload went, folder and all; the orphan's link went with its blob.
    assert_eq!(deleted["uploads"], 1, "{summary}");
    assert!(
        !root
            .join("docker/registry/v2/repositories/team/app/_uploads")
            .join(&planned_upload.1)
            .exists()
    );
    assert!(
        !root
            .join("docker/registry/v2/repositories/orphan/layers/_layers/sha256")
            .join(&s.orphan[7..])
            .exists()
    );

    // The repositories left with nothing (the deleted image's, the orphan blob's) are gone from
    // the registry's catalog: it lists exactly those that still hold a tag.
    assert_eq!(
        planned.repositories,
        set(["gone/img", "orphan/layers"]),
        "{planned:?}"
    );
    assert_eq!(deleted["repositories"], 2, "{summary}");
    let tagged: BTreeSet<String> = s.tags.iter().map(|(repo, _, _)| repo.to_string()).collect();
    assert_eq!(
        s.registry.catalog().into_iter().collect::<BTreeSet<_>>(),
        tagged
    );
    assert!(!root.join("docker/registry/v2/repositories/gone").exists());
}

#[test]
fn an_emptied_repository_leaves_the_catalog_and_a_nested_live_one_stays_and_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let layout = |name: &str| dir.path().join("layouts").join(name);
    let oci_ref = |name: &str| format!("oci:{}:latest", layout(name).display());
    // `nest` and `nest/inner` share a base layer: once `nest`'s image is deleted, its link to that
    // layer (which `nest/inner` keeps) is all that holds `nest` in the catalog.
    let outer = support::oci::single(&layout("outer"), &["shared-base", "outer-only"]);
    skopeo_copy(&oci_ref("outer"), &registry.image("nest", "v1"), &[]);
    support::oci::single(&layout("inner"), &["shared-base", "inner-only"]);
    skopeo_copy(&oci_ref("inner"), &registry.image("nest/inner", "v1"), &[]);
    support::oci::single(&layout("solo"), &["solo"]);
    skopeo_copy(&oci_ref("solo"), &registry.image("solo", "v1"), &[]);
    registry.delete_manifest("nest", &outer.manifest);
    assert_eq!(registry.catalog(), ["nest", "nest/inner", "solo"]);

    let (planned, _) = regsweep_plan(&registry.config, &["-m", "--grace", "0s"]);
    assert_eq!(planned.repositories, set(["nest"]));
    // The shared layer stays; `nest`'s link to it goes with the repository.
    assert!(!planned.blobs.contains(&outer.layers[0]));
    assert!(
        planned
            .layer_links
            .contains(&("nest".to_owned(), outer.layers[0].clone()))
    );
    registry.set_read_only();
    let out = run(support::regsweep()
        .args(["gc", "-m", "--delete", "--grace", "0s", "--json"])
        .arg(&registry.config));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["deleted"]["repositories"], 1, "{summary}");
    assert_eq!(registry.catalog(), ["nest/inner", "solo"]);
    let tags = registry.http("GET", "/v2/nest/tags/list", &[], &[]);
    assert_eq!(tags.status, 404);
    let nest = registry.root.join("docker/registry/v2/repositories/nest");
    assert!(nest.join("inner/_manifests").is_dir());
    assert!(!nest.join("_layers").exists() && !nest.join("_manifests").exists());
    for repo in ["nest/inner", "solo"] {
        let dest = format!(
            "oci:{}:pulled",
            dir.path().join(repo.replace('/', "-")).display()
        );
        skopeo_copy(&registry.image(repo, "v1"), &dest, &[]);
    }
}
