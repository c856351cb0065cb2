//! One thread or many, the same answer: gc, du, audit and prune-tags print the same reports when the
//! collector runs on a single thread as when it runs on many (only the time they took differs).

#[path = "../fixtures/generator.rs"]
mod generator;
mod support;

use support::regsweep;

/// The report without what is allowed to differ between two runs made a moment apart: how long each
/// took, when it ran (du's `time`), and how long ago an upload was last written (a second may tick
/// between the runs; the upload itself and its bytes must still be the same).
fn without_times(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::String(s) => {
            if let Some(at) = s.find("last written ") {
                s.truncate(at + "last written ".len());
            }
        }
        serde_json::Value::Object(map) => {
            map.retain(|k, _| k != "elapsed_ms" && k != "time");
            for x in map.values_mut() {
                *x = without_times(x.take());
            }
        }
        serde_json::Value::Array(items) => {
            for x in items.iter_mut() {
                *x = without_times(x.take());
            }
        }
        _ => {}
    }
    v
}

#[test]
fn one_thread_and_many_give_the_same_reports_for_gc_du_audit_and_prune_tags() {
    let dir = tempfile::tempdir().unwrap();
    generator::generate(dir.path(), 24, 8, 3, 17);
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["gc", root, "--grace", "0s", "--no-cache", "--json"],
        &["gc", root, "--grace", "0s", "-m", "--no-cache", "--json"],
        &["du", root, "--no-cache", "--json"],
        &["audit", root, "--grace", "0s", "--no-cache", "--json"],
        &[
            "prune-tags",
            root,
            "--repo",
            "**",
            "--keep-last",
            "2",
            "--json",
        ],
    ];
    for args in commands {
        // The report and the exit status (audit's is 1 where it finds problems).
        let report = |threads: &str| -> (serde_json::Value, Option<i32>) {
            let out = regsweep()
                .env("RAYON_NUM_THREADS", threads)
                .args(args)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!(
                    "{args:?}: {e}: {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            (without_times(json), out.status.code())
        };
        let (one, one_exit) = report("1");
        let (many, many_exit) = report("8");
        assert_eq!(one_exit, many_exit, "{args:?}");
        assert!(
            one.as_object().is_some_and(|o| o.len() > 3),
            "{args:?}: a report: {one}"
        );
        assert_eq!(one, many, "{args:?}");
    }
}
