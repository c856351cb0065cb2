//! Differential: on generated stores of several seeds and shapes, the collector's plan equals the
//! generator's own bookkeeping of what is garbage: the same blobs and manifest revisions, not only
//! as many.

#[path = "../fixtures/generator.rs"]
mod generator;
mod support;

use support::regsweep_plan;

#[test]
fn plans_equal_the_generators_expected_result_on_several_seeds_and_shapes() {
    for (seed, repos, images, layers) in
        [(1, 12, 10, 3), (2, 30, 4, 1), (3, 5, 25, 5), (4, 40, 10, 2)]
    {
        let dir = tempfile::tempdir().unwrap();
        let (expected, sets) =
            generator::generate_with_sets(dir.path(), repos, images, layers, seed);
        let root = dir.path().join("root");
        for (args, key) in [
            (&["--grace", "0s"][..], "plain"),
            (&["--grace", "0s", "-m"], "untagged"),
        ] {
            let (plan, summary) = regsweep_plan(&root, args);
            let want = &expected[key];
            let shape = format!("seed {seed}, {repos}x{images}x{layers}, {key}");
            assert_eq!(summary["blobs"]["total"], expected["blobs"], "{shape}");
            assert_eq!(
                summary["manifests"]["total"], expected["revisions"],
                "{shape}"
            );
            assert_eq!(
                plan.blobs.len() as u64,
                want["blobs"].as_u64().unwrap(),
                "{shape}"
            );
            assert_eq!(summary["blobs"]["eligible_bytes"], want["bytes"], "{shape}");
            assert_eq!(
                plan.manifests.len() as u64,
                want["manifests"].as_u64().unwrap(),
                "{shape}"
            );
            assert!(
                want["blobs"].as_u64().unwrap() > 0,
                "{shape}: the shape should hold garbage"
            );
            // The planned sets are the generator's sets.
            let (blobs, manifests) = match key {
                "plain" => (&sets.plain_blobs, &Default::default()),
                _ => (&sets.untagged_blobs, &sets.untagged_manifests),
            };
            assert_eq!(&plan.blobs, blobs, "{shape}: planned blobs");
            assert_eq!(&plan.manifests, manifests, "{shape}: planned manifests");
        }
    }
}
