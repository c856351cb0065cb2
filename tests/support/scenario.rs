//! The conformance scenario: a store built through the real registry by skopeo pushes and API calls.

use super::oci::{self, Image};
use super::registry::Registry;
use super::{PlanSets, diff, skopeo_copy};
use std::collections::BTreeSet;
use std::path::Path;

/// A store built through the registry, with what the test knows of it.
pub struct Store {
    pub registry: Registry,
    /// Tag `v1` of `team/app` pointed here first, then moved to a Docker-format image.
    pub moved_from: Image,
    /// The platform images of the tagged index `multi/app:latest`.
    pub platforms: Vec<Image>,
    /// Deleted through the API from `gone/img`.
    pub deleted: Image,
    /// A blob pushed to `orphan/layers` with no manifest.
    pub orphan: String,
    /// The tags that must pull after any sweep, and whether they are multi-arch.
    pub tags: Vec<(&'static str, &'static str, bool)>,
}

/// Builds the scenario through `registry`; `dir` holds the OCI layouts the test writes.
/// A loopback S3 server with a bucket `registry`, and the scenario's store pushed into it (under
/// `store/`) by the registry's own s3 driver.
pub fn build_store_on_s3(dir: &Path) -> (super::s3::S3Server, Store) {
    let s3 = super::s3::S3Server::start(&dir.join("moto.log"));
    s3.create_bucket("registry");
    let store = build_store(dir, Registry::start_s3(dir, &s3, "registry"));
    super::next_second();
    (s3, store)
}

pub fn build_store(dir: &Path, registry: Registry) -> Store {
    let layouts = dir.join("layouts");
    let layout = |name: &str| layouts.join(name);
    let oci_ref = |name: &str| format!("oci:{}:latest", layout(name).display());

    let a = oci::single(&layout("a"), &["base", "a-only"]);
    skopeo_copy(&oci_ref("a"), &registry.image("team/app", "v1"), &[]);
    oci::single(&layout("b"), &["base", "b-only"]);
    skopeo_copy(
        &oci_ref("b"),
        &registry.image("team/app", "v1"),
        &["--format", "v2s2"],
    );

    oci::single(&layout("c"), &["shared-image"]);
    skopeo_copy(
        &oci_ref("c"),
        &registry.image("library/base", "latest"),
        &[],
    );
    skopeo_copy(&oci_ref("c"), &registry.image("mirror/base", "latest"), &[]);

    oci::single(&layout("d"), &["nested"]);
    skopeo_copy(&oci_ref("d"), &registry.image("team/x/tool", "1.0"), &[]);

    let (_, platforms) = oci::multi(
        &layout("m"),
        &[("amd64", &["m-amd64"]), ("arm64", &["m-arm64"])],
    );
    skopeo_copy(
        &oci_ref("m"),
        &registry.image("multi/app", "latest"),
        &["--all"],
    );

    let deleted = oci::single(&layout("f"), &["to-be-deleted"]);
    skopeo_copy(&oci_ref("f"), &registry.image("gone/img", "t"), &[]);
    registry.delete_manifest("gone/img", &deleted.manifest);

    registry.abandon_upload(
        "team/app",
        b"the first bytes of an upload that never finished",
    );
    let orphan = registry.push_blob("orphan/layers", b"a blob no manifest refers to");

    Store {
        registry,
        moved_from: a,
        platforms,
        deleted,
        orphan,
        tags: vec![
            ("team/app", "v1", false),
            ("library/base", "latest", false),
            ("mirror/base", "latest", false),
            ("team/x/tool", "1.0", false),
            ("multi/app", "latest", true),
        ],
    }
}

impl Store {
    /// The scenario's `-m` expectations. Beyond the plain plan, ours removes exactly the untagged image
    /// (not its base layer, which the image the tag moved to shares). The reference's `-m` removes, in
    /// addition, exactly the tagged index's untagged children with their configs and layers: that is
    /// where it breaks the image and we differ.
    pub fn assert_untagged_plans(
        &self,
        plain: &PlanSets,
        ours_m: &PlanSets,
        reference_m: &PlanSets,
    ) {
        let a = &self.moved_from;
        let expected: BTreeSet<(String, String)> =
            [("team/app".to_owned(), a.manifest.clone())].into();
        assert_eq!(ours_m.manifests, expected);
        let untagged: BTreeSet<String> = [&a.manifest, &a.config, &a.layers[1]]
            .into_iter()
            .cloned()
            .collect();
        let expected: BTreeSet<String> = plain.blobs.union(&untagged).cloned().collect();
        assert_eq!(ours_m.blobs, expected, "{}", diff(&ours_m.blobs, &expected));
        assert!(
            !ours_m.blobs.contains(&a.layers[0]),
            "the shared base layer must stay"
        );

        let children: BTreeSet<(String, String)> = self
            .platforms
            .iter()
            .map(|p| ("multi/app".to_owned(), p.manifest.clone()))
            .collect();
        let extra: BTreeSet<_> = reference_m
            .manifests
            .difference(&ours_m.manifests)
            .cloned()
            .collect();
        assert_eq!(extra, children);
        assert!(ours_m.manifests.is_subset(&reference_m.manifests));
        let children_blobs: BTreeSet<String> = self
            .platforms
            .iter()
            .flat_map(|p| std::iter::once(p.config.clone()).chain(p.layers.clone()))
            .collect();
        let extra: BTreeSet<String> = reference_m
            .blobs
            .difference(&ours_m.blobs)
            .cloned()
            .collect();
        assert_eq!(extra, children_blobs, "{}", diff(&extra, &children_blobs));
        assert!(ours_m.blobs.is_subset(&reference_m.blobs));
    }

    /// Pulls every tag (every platform of multi-arch ones) into OCI layouts under `dir` (made if it is
    /// not there): skopeo verifies every blob's digest, so a pull that succeeds proves the image is
    /// whole.
    pub fn pull_every_tag(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for (i, (repo, tag, all)) in self.tags.iter().enumerate() {
            let dest = format!("oci:{}:pulled", dir.join(format!("pull-{i}")).display());
            let extra: &[&str] = if *all { &["--all"] } else { &[] };
            skopeo_copy(&self.registry.image(repo, tag), &dest, extra);
        }
    }
}
