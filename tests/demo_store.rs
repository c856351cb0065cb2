//! The built-in demo store: its plan equals the reference's, and a sweep of a copy leaves nothing.

mod support;

use support::{PlanSets, copy_of_demo, diff, reference_dry_run, regsweep_plan, run};

#[test]
fn the_demo_store_plan_equals_the_reference_and_a_sweep_leaves_nothing_to_collect() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = copy_of_demo(dir.path());
    let reference = reference_dry_run(&config, false);
    let (ours, summary) = regsweep_plan(&config, &["--grace", "0s"]);
    assert!(
        !ours.blobs.is_empty(),
        "the demo store is meant to hold garbage"
    );
    assert_eq!(
        ours.blobs,
        reference.blobs,
        "{}",
        diff(&ours.blobs, &reference.blobs)
    );
    assert_eq!(summary["blobs"]["eligible"], ours.blobs.len() as u64);

    let (ours_m, _) = regsweep_plan(&config, &["-m", "--grace", "0s"]);
    assert_eq!(ours_m.manifests.len(), 1, "{:?}", ours_m.manifests);
    assert!(ours_m.blobs.is_superset(&ours.blobs));

    run(support::regsweep()
        .args(["gc", "-m", "--delete", "--grace", "0s"])
        .arg(&config));
    assert_eq!(reference_dry_run(&config, false), PlanSets::default());
    let (after, _) = regsweep_plan(&config, &["-m", "--grace", "0s"]);
    assert_eq!(after, PlanSets::default());
}
