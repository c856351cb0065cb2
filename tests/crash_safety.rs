//! Crash safety: `gc -m --delete` killed with SIGKILL at many instants of its run on a generated
//! store. After every kill the store keeps every blob the tags need, no `_layers` link or tag index
//! entry points at something gone, and a second run finishes the job: the store ends exactly as one
//! uninterrupted run leaves it. A trashing run and its restore, and an online run followed by a
//! heal, are killed the same way.

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

/// The kill points are timed from a whole run's length: the tests of this file run one at a time,
/// so that one's runs do not slow the other's and move its kill points.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long the analysis of `root` takes: the median of three dry runs (a deleting run spends
/// this long before its first delete).
fn analysis_time(root: &Path) -> std::time::Duration {
    let mut times: Vec<std::time::Duration> = (0..3)
        .map(|_| {
            let start = Instant::now();
            run(regsweep()
                .arg("gc")
                .arg(root)
                .args(["-m", "--grace", "0s", "--json"]));
            start.elapsed()
        })
        .collect();
    times.sort();
    times[1]
}

/// Kill point `k` of `points`: spread from a little before the analysis ends to a little after
/// the whole run, so that most land while the sweep deletes.
fn kill_point(
    analysis: std::time::Duration,
    whole: std::time::Duration,
    k: usize,
    points: usize,
) -> std::time::Duration {
    let from = analysis.mul_f64(0.8).min(whole);
    from + (whole.mul_f64(1.1) - from).mul_f64(k as f64 / points as f64)
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
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // One generated store, copied afresh (sparse files stay sparse) for every kill point.
    let template = scratch();
    generator::generate(template.path(), 60, 10, 3, 21);
    // The whole run that times the kill points judges no blob written in its first second.
    support::next_second();
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
    let analysis = analysis_time(&root);
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
        let delay = kill_point(analysis, whole, k, points);
        let finished = kill_after(delete_run(&root), delay);

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

/// Every key of the store and of its trash: (keys at their place, keys in the trash by the
/// original key they hold).
fn keys_and_trash(root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let trashed = files_ending(&root.join("regsweep-trash"), "")
        .into_iter()
        .filter_map(|k| k.split_once('/').map(|(_, key)| key.to_owned()))
        .filter(|k| k != "run.json")
        .collect();
    (keys(root), trashed)
}

/// The runs in the trash of `root`: its folders that hold a file (a run killed before its record
/// was written, or a restore killed after its last delete, can leave an empty folder, which is no
/// run).
fn trash_runs(root: &Path) -> Vec<String> {
    let trash = root.join("regsweep-trash");
    std::fs::read_dir(&trash)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|id| !files_ending(&trash.join(id), "").is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `cmd`, kills it after `delay`; whether it had finished.
fn kill_after(mut cmd: std::process::Command, delay: std::time::Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    finished
}

fn restore_run(root: &Path, id: &str) -> std::process::Command {
    let mut cmd = regsweep();
    cmd.args(["trash", "restore"]).arg(root).arg(id);
    cmd
}

#[test]
fn a_trashing_run_or_a_restore_killed_at_any_instant_loses_nothing_and_the_restore_completes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let template = scratch();
    generator::generate(template.path(), 30, 8, 3, 22);
    support::next_second();
    let fresh = |dir: &Path| {
        let root = dir.join("root");
        copy_store(&template.path().join("root"), &root);
        root
    };
    let trashing = |root: &Path| {
        let mut cmd = delete_run(root);
        cmd.args(["--trash", "7d"]);
        cmd
    };
    // How long a whole trashing run and a whole restore take.
    let dir = scratch();
    let root = fresh(dir.path());
    let before = keys(&root);
    let analysis = analysis_time(&root);
    let start = Instant::now();
    run(&mut trashing(&root));
    let whole = start.elapsed();
    let (swept, in_trash) = keys_and_trash(&root);
    assert!(swept.len() < before.len() && !in_trash.is_empty());
    let runs = trash_runs(&root);
    assert_eq!(runs.len(), 1);
    let start = Instant::now();
    run(&mut restore_run(&root, &runs[0]));
    let whole_restore = start.elapsed();
    assert_eq!(keys(&root), before, "a whole restore gives back every key");

    let points = 24;
    let mut mid = 0;
    for k in 0..points {
        let dir = scratch();
        let root = fresh(dir.path());
        let delay = kill_point(analysis, whole, k, points);
        kill_after(trashing(&root), delay);
        // Every key is at its place or in the trash, never gone.
        let (now, trashed) = keys_and_trash(&root);
        let lost: Vec<&String> = before
            .iter()
            .filter(|k| !now.contains(*k) && !trashed.contains(*k))
            .collect();
        assert!(
            lost.is_empty(),
            "kill point {k} ({delay:?}): gone: {lost:?}"
        );
        assert_no_link_points_at_something_gone(&now);
        if now.len() < before.len() && now.len() > swept.len() {
            mid += 1;
        }
        // A restore, itself killed halfway at every other point, then run again, completes.
        for id in trash_runs(&root) {
            if k % 2 == 1 {
                kill_after(restore_run(&root, &id), whole_restore / 2);
                let (now, trashed) = keys_and_trash(&root);
                let lost = before
                    .iter()
                    .filter(|k| !now.contains(*k) && !trashed.contains(*k))
                    .count();
                assert_eq!(lost, 0, "kill point {k}, restore killed: keys gone");
                if !trash_runs(&root).contains(&id) {
                    continue; // it had finished
                }
            }
            run(&mut restore_run(&root, &id));
        }
        assert_eq!(
            keys(&root),
            before,
            "kill point {k} ({delay:?}): after the restore the store is as before the run"
        );
        assert!(
            trash_runs(&root).is_empty(),
            "kill point {k}: the trash is empty"
        );
    }
    eprintln!("{points} kill points over {whole:?}: {mid} mid-sweep");
    assert!(
        mid >= points / 8,
        "kill points should land while the sweep moves"
    );
}

/// `gc -m --delete --online` killed at many instants (in the analysis, mid-sweep, while it
/// settles): nothing is lost (every key is at its place or in the trash), and when the registry
/// then acknowledges a manifest the run was sweeping (its check found it before the move: a
/// revision link and a tag written now), one `trash heal` puts back all it needs.
#[test]
fn an_online_run_killed_at_any_instant_loses_nothing_an_acknowledgement_then_needs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let template = scratch();
    generator::generate(template.path(), 30, 8, 3, 23);
    support::next_second();
    let fresh = |dir: &Path| {
        let root = dir.join("root");
        copy_store(&template.path().join("root"), &root);
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n",
                root.display()
            ),
        )
        .unwrap();
        (root, config)
    };
    let online = |config: &Path| {
        let mut cmd = regsweep();
        cmd.arg("gc").arg(config).args([
            "-m", "--delete", "--online", "--grace", "0s", "--settle", "100ms",
        ]);
        cmd
    };
    let dir = scratch();
    let (root, config) = fresh(dir.path());
    let before = keys(&root);
    // An untagged image manifest the run sweeps, and what it names.
    let (plan, _) = regsweep_plan(&root, &["-m", "--grace", "0s"]);
    let (repo, m, names) = plan
        .manifests
        .iter()
        .find_map(|(repo, m)| {
            let body = std::fs::read(root.join(data_key(m))).ok()?;
            let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
            let names: Vec<String> = (json["layers"].as_array()?.iter())
                .chain([&json["config"]])
                .filter_map(|d| d["digest"].as_str().map(str::to_owned))
                .collect();
            Some((repo.clone(), m.clone(), names))
        })
        .expect("the plan sweeps an untagged image manifest");
    let analysis = analysis_time(&root);
    let start = Instant::now();
    run(&mut online(&config));
    let whole = start.elapsed();
    let repo_key = |rest: &str| root_key(&repo, rest);
    let points = 16;
    for k in 0..points {
        let dir = scratch();
        let (root, config) = fresh(dir.path());
        kill_after(online(&config), kill_point(analysis, whole, k, points));
        let (now, trashed) = keys_and_trash(&root);
        let lost: Vec<&String> = (before.iter())
            .filter(|key| !now.contains(*key) && !trashed.contains(*key))
            .collect();
        assert!(lost.is_empty(), "kill point {k}: gone: {lost:?}");
        assert_no_link_points_at_something_gone(&now);
        // The registry acknowledges m: its revision link, then a tag, written now.
        let hex = &m["sha256:".len()..];
        for rest in [
            format!("_manifests/revisions/sha256/{hex}/link"),
            format!("_manifests/tags/ack/index/sha256/{hex}/link"),
            "_manifests/tags/ack/current/link".to_owned(),
        ] {
            let path = root.join(repo_key(&rest));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &m).unwrap();
        }
        run(regsweep().args(["trash", "heal"]).arg(&config));
        assert!(
            root.join(data_key(&m)).is_file(),
            "kill point {k}: {m} back"
        );
        for d in &names {
            assert!(root.join(data_key(d)).is_file(), "kill point {k}: {d} back");
            let link = repo_key(&format!("_layers/sha256/{}/link", &d["sha256:".len()..]));
            assert!(root.join(&link).is_file(), "kill point {k}: {link} back");
        }
    }
}

/// A sweep longer than the settle time is healed during it (a pass every settle time), and the
/// run's record still counts what its trash holds (audit finds no trash problem).
#[test]
fn an_online_sweep_longer_than_its_settle_is_healed_during_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch();
    generator::generate(dir.path(), 30, 8, 3, 24);
    support::next_second();
    let root = dir.path().join("root");
    let config = dir.path().join("online.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n",
            root.display()
        ),
    )
    .unwrap();
    let out = run(regsweep().arg("gc").arg(&config).args([
        "-m", "--delete", "--online", "--grace", "0s", "--settle", "1ms", "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        summary["online"]["settle_passes"].as_u64().unwrap() > 2,
        "passes during the sweep too: {:#}",
        summary["online"]
    );
    let audit = regsweep()
        .arg("audit")
        .arg(&config)
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert!(audit.status.success(), "{report:#}");
}

/// A key inside repository `repo`'s folder.
fn root_key(repo: &str, rest: &str) -> String {
    format!("{V2}/repositories/{repo}/{rest}")
}
