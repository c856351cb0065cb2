//! Guard rails a new user falls through: a STORAGE that is not a registry store is an error, never
//! an empty success.

mod support;

use std::path::Path;
use support::regsweep;

/// Runs `regsweep ARGS`; returns the exit code and stderr.
fn exit_and_stderr(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = regsweep().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_path_that_holds_no_store_is_an_error_for_every_command_naming_the_level_meant() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let cases = [
        (demo.join("docker/registry/v2"), "three levels up"),
        (demo.join("docker/registry"), "two levels up"),
        (demo.join("docker"), "one level up"),
        (empty.clone(), "rootdirectory"),
        (Path::new("/etc").to_path_buf(), "rootdirectory"),
    ];
    let plan = dir.path().join("plan.ndjson");
    for (path, hint) in &cases {
        let commands: [Vec<&std::ffi::OsStr>; 4] = [
            vec!["gc".as_ref(), path.as_os_str()],
            vec!["du".as_ref(), path.as_os_str()],
            vec!["audit".as_ref(), path.as_os_str()],
            vec![
                "prune-tags".as_ref(),
                path.as_os_str(),
                "--repo".as_ref(),
                "**".as_ref(),
                "--all-tags".as_ref(),
            ],
        ];
        for args in commands {
            let (code, stderr) = exit_and_stderr(&args);
            assert_eq!(code, 2, "{args:?} must fail: {stderr}");
            assert!(
                stderr.contains("holds no registry store")
                    && stderr.contains("docker/registry/v2/")
                    && stderr.contains(hint),
                "{args:?}: {stderr}"
            );
        }
        let (code, _) = exit_and_stderr(&[
            "gc".as_ref(),
            path.as_os_str(),
            "--plan".as_ref(),
            plan.as_os_str(),
        ]);
        assert_eq!(code, 2);
        assert!(
            !plan.exists(),
            "no plan is written for a path that holds no store"
        );
    }
    // A genuine empty store (the folders there, nothing in them) is a success with zeros.
    std::fs::create_dir_all(empty.join("docker/registry/v2/repositories")).unwrap();
    std::fs::create_dir_all(empty.join("docker/registry/v2/blobs")).unwrap();
    let (code, summary, stderr) = support::regsweep_json(&["gc".as_ref(), empty.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["blobs"]["total"], 0);
    let (code, _, stderr) = support::regsweep_json(&["audit".as_ref(), empty.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn prune_tags_with_no_rule_refuses_and_a_glob_that_matches_nothing_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    support::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo"))
            .arg(&root),
    );
    let tags_before = support::files_ending(&root, "/current/link");
    // No rule: refused, whatever --delete says, and nothing is removed.
    for extra in [&[][..], &["--delete".as_ref(), "--force".as_ref()][..]] {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "prune-tags".as_ref(),
            root.as_os_str(),
            "--repo".as_ref(),
            "**".as_ref(),
        ];
        args.extend_from_slice(extra);
        let (code, stderr) = exit_and_stderr(&args);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("--all-tags"), "{stderr}");
        // --keep-tag alone still leaves every other tag a candidate: no rule either.
        args.extend([
            std::ffi::OsStr::new("--keep-tag"),
            std::ffi::OsStr::new("^v1$"),
        ]);
        assert_eq!(exit_and_stderr(&args).0, 2);
    }
    assert_eq!(support::files_ending(&root, "/current/link"), tags_before);
    // --all-tags says it; a glob that matches nothing is named on stderr and in --json.
    let (code, summary, stderr) = support::regsweep_json(&[
        "prune-tags".as_ref(),
        root.as_os_str(),
        "--repo".as_ref(),
        "team/**".as_ref(),
        "--repo".as_ref(),
        "taem/*".as_ref(),
        "--all-tags".as_ref(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["removed"], 2, "{summary:#}");
    assert_eq!(
        summary["unmatched_repo_globs"],
        serde_json::json!(["taem/*"])
    );
    assert!(
        stderr.contains("\"taem/*\" matches no repository"),
        "{stderr}"
    );
}
