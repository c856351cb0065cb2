//! Crash safety: `gc -m --delete` killed with SIGKILL at many instants of its run on a generated
//! store. After every kill the store keeps every blob the tags need, no `_layers` link or tag index
//! entry points at something gone, and a second run finishes the job: the store ends exactly as one
//! uninterrupted run leaves it.

#[path = "../fixtures/generator.rs"]
mod generator;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;
use support::{
    assert_no_link_points_at_something_gone, files_ending, regsweep, regsweep_plan, run,
};

const V2: &str = "docker/registry/v2";

/// Every file of the store, as keys (`docker/registry/v2/...`).
fn keys(root: &Path) -> BTreeSet<String> {
    files_ending(&root.join(V2), "")
        .into_iter()
        .map(|k| format!("{V2}/{k}"))
        .collect()
}

fn blob_data_keys(keys: &BTreeSet<String>) -> BTreeSet<String> {
    keys.iter()
        .filter(|k| k.starts_with(&format!("{V2}/blobs/")) && k.ends_with("/data"))
        .cloned()
        .collect()
}

fn data_key(digest: &str) -> String {
    let hex = &digest["sha256:".len()..];
    format!("{V2}/blobs/sha256/{}/{hex}/data", &hex[..2])
}

/// Copies a generated store: files with no blocks on disk (the generator's sparse layers) are
/// recreated at their length without reading terabytes of holes; the rest are copied. Times are kept.
fn copy_store(from: &Path, to: &Path) {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            copy_store(&src, &dst);
            continue;
        }
        if meta.blocks() == 0 {
            std::fs::File::create(&dst)
                .unwrap()
                .set_len(meta.len())
                .unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
        let file = std::fs::File::options().write(true).open(&dst).unwrap();
        file.set_modified(meta.modified().unwrap()).unwrap();
    }
}

/// A scratch folder, in memory where the machine has /dev/shm: the test makes and removes a few
/// hundred thousand small folders, which a journaled disk makes slow.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

fn delete_run(root: &Path) -> std::process::Command {
    let mut cmd = regsweep();
    cmd.arg("gc")
        .arg(root)
        .args(["-m", "--delete", "--grace", "0s", "--json"]);
    cmd
}

#[test]
fn gc_delete_killed_at_any_instant_leaves_the_store_intact_and_the_next_run_finishes() {
    // One generated store, copied afresh (sparse files stay sparse) for every kill point.
    let template = scratch();
    generator::generate(template.path(), 60, 10, 3, 21);
    let fresh = |dir: &Path| {
        let root = dir.join("root");
        copy_store(&template.path().join("root"), &root);
        root
    };

    // The pristine store: what a dry run plans, what must stay, and how long a whole run takes.
    let dir = scratch();
    let root = fresh(dir.path());
    let before = keys(&root);
    let (plan, _) = regsweep_plan(&root, &["-m", "--grace", "0s"]);
    assert!(plan.blobs.len() > 100, "the shape should hold garbage");
    let planned: BTreeSet<String> = plan.blobs.iter().map(|d| data_key(d)).collect();
    let must_stay: BTreeSet<String> = blob_data_keys(&before)
        .difference(&planned)
        .cloned()
        .collect();
    let start = Instant::now();
    run(&mut delete_run(&root));
    let whole = start.elapsed();
    let after_one_run = keys(&root);
    assert_eq!(
        blob_data_keys(&after_one_run),
        must_stay,
        "an uninterrupted run sweeps exactly the plan"
    );

    // Kill points spread over the whole run, from start-up to the end of the sweep.
    let points = 48;
    let (mut mid_sweep, mut before_sweep, mut after_sweep) = (0, 0, 0);
    for k in 0..points {
        let dir = scratch();
        let root = fresh(dir.path());
        let delay = whole.mul_f64(k as f64 / points as f64 * 1.1);
        let mut child = delete_run(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();

        let now = keys(&root);
        let data = blob_data_keys(&now);
        let missing: Vec<&String> = must_stay.difference(&data).collect();
        assert!(
            missing.is_empty(),
            "kill point {k} ({delay:?}): blobs the tags need are gone: {missing:?}"
        );
        assert_no_link_points_at_something_gone(&now);
        // How far the sweep got, in files deleted (links, manifests, blobs, uploads).
        let deleted = before.len() - now.len();
        match deleted {
            _ if finished => after_sweep += 1,
            0 => before_sweep += 1,
            _ => mid_sweep += 1,
        }

        // The next run finishes the job: the store ends as one whole run leaves it.
        run(&mut delete_run(&root));
        assert_eq!(
            keys(&root),
            after_one_run,
            "kill point {k} ({delay:?}): the second run must converge"
        );
    }
    eprintln!(
        "{points} kill points over {whole:?}: {before_sweep} before the first delete, {mid_sweep} mid-sweep, \
         {after_sweep} after the run ended"
    );
    assert_eq!(before_sweep + mid_sweep + after_sweep, points);
    assert!(
        mid_sweep >= points / 8,
        "most kill points should land while the sweep deletes"
    );
}
