//! Guard rails a new user falls through: a STORAGE that is not a registry store is an error, never
//! an empty success.

mod support;

use regsweep::storage::Storage;
use std::path::Path;
use support::regsweep;

/// Runs `regsweep ARGS`; returns the exit code and stderr.
fn exit_and_stderr<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String) {
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

/// A copy of the demo store in a temporary folder.
fn demo_copy(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("root");
    support::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo"))
            .arg(&root),
    );
    root
}

/// The deleting commands, each of which must take the lock: gc --delete, prune-tags --delete, apply.
fn deleting_runs(storage: &str, extra: &[&str], plan: &Path) -> Vec<Vec<String>> {
    let mut runs = vec![
        vec!["gc", storage, "--delete", "--grace", "0s", "-m"],
        vec![
            "prune-tags",
            storage,
            "--repo",
            "**",
            "--all-tags",
            "--delete",
        ],
        vec!["apply", plan.to_str().unwrap(), storage],
    ];
    for r in &mut runs {
        r.extend_from_slice(extra);
    }
    runs.into_iter()
        .map(|r| r.into_iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn on_a_filesystem_a_deleting_run_is_refused_while_another_holds_the_lock_and_a_dry_run_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_copy(dir.path());
    let store = root.to_str().unwrap();
    let plan = dir.path().join("plan.ndjson");
    let (code, stderr) = exit_and_stderr(&[
        "gc",
        store,
        "-m",
        "--grace",
        "0s",
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let files_before = support::files_ending(&root, "");

    // This test process holds the lock, as a deleting run in another terminal would.
    let storage = regsweep::storage::fs::FsStorage::open(&root).unwrap();
    let guard = regsweep::pipeline::guard::lock::acquire(&storage, false).unwrap();
    // No lock file: the flock is on the store's own folder.
    assert_eq!(support::files_ending(&root, ""), files_before);
    let me = format!(
        "pid {} on {}",
        std::process::id(),
        regsweep::pipeline::guard::lock::hostname()
    );
    for args in deleting_runs(store, &[], &plan) {
        let (code, stderr) = exit_and_stderr(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("another deleting run holds the lock") && stderr.contains(&me),
            "{args:?} names the holder: {stderr}"
        );
        // A live holder's flock is never broken.
        let mut breaking = args.clone();
        breaking.push("--break-lock".into());
        let (code, stderr) = exit_and_stderr(&breaking);
        assert_eq!(code, 2, "{breaking:?}: {stderr}");
        assert!(stderr.contains("not stale"), "{stderr}");
    }
    assert_eq!(
        support::files_ending(&root, ""),
        files_before,
        "a refused run deletes nothing"
    );
    // Dry runs take no lock.
    for args in [
        vec!["gc", store, "-m", "--grace", "0s"],
        vec!["du", store],
        vec!["prune-tags", store, "--repo", "**", "--all-tags"],
    ] {
        let (code, stderr) = exit_and_stderr(&args);
        assert_eq!(code, 0, "{args:?} while the lock is held: {stderr}");
    }

    // Released, the same run goes ahead (and a second process could take the lock after it).
    drop(guard);
    let args = &deleting_runs(store, &[], &plan)[2];
    let (code, stderr) = exit_and_stderr(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    assert_ne!(support::files_ending(&root, ""), files_before);
    let again = regsweep::pipeline::guard::lock::acquire(&storage, false);
    assert!(again.is_ok(), "the run released its lock");
}

/// A loopback S3 server holding the demo store in `bucket` (under `store/`), and a plan of it
/// (`gc -m --grace 0s --plan`) at `dir/plan_name`.
fn demo_on_s3(
    dir: &Path,
    bucket: &str,
    plan_name: &str,
) -> (support::s3::S3Server, std::path::PathBuf) {
    let s3 = support::s3::S3Server::start(&dir.join(format!("moto-{bucket}.log")));
    let endpoint = s3.endpoint();
    support::run(
        std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/load_s3.py"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo"))
            .args([endpoint.as_str(), bucket, "store"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_CA_BUNDLE"),
    );
    support::next_second();
    let plan = dir.join(plan_name);
    let url = format!("s3://{bucket}/store");
    let (code, stderr) = exit_and_stderr(&[
        "gc",
        &url,
        "-m",
        "--grace",
        "0s",
        "--plan",
        plan.to_str().unwrap(),
        "--endpoint-url",
        &endpoint,
    ]);
    assert_eq!(code, 0, "{stderr}");
    (s3, plan)
}

#[test]
fn on_s3_the_lock_is_an_object_beside_docker_a_stale_one_is_broken_only_with_break_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, plan) = demo_on_s3(dir.path(), "locks", "plan.ndjson");
    let endpoint = s3.endpoint();
    let url = "s3://locks/store";
    let s3_args = ["--endpoint-url", endpoint.as_str()];
    // The store's keys (without the lock object).
    let store_keys = || s3.keys("locks");
    let keys_before = store_keys();
    let lock_key = "store/regsweep.lock";
    let storage = s3.storage("locks");
    // The lock object's bytes, read through the library's backend (its keys are below store/).
    let lock_object = || match storage.read("regsweep.lock", 4096) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("{e}"),
    };

    // Held by this process: an object beside docker/, naming host, pid and start.
    let guard = regsweep::pipeline::guard::lock::acquire(&storage, false).unwrap();
    let held = lock_object().expect("the lock object exists while held");
    let record: serde_json::Value = serde_json::from_slice(&held).unwrap();
    assert_eq!(record["pid"], std::process::id());
    assert_eq!(record["host"], regsweep::pipeline::guard::lock::hostname());
    assert!(record["started"].is_string() && record["command"].is_string());
    // A second taker through the library is refused too (the conditional write fails).
    let second = regsweep::pipeline::guard::lock::acquire(&storage, false)
        .err()
        .unwrap()
        .to_string();
    assert!(second.contains("holds the lock"), "{second}");

    let me = format!(
        "pid {} on {}",
        std::process::id(),
        regsweep::pipeline::guard::lock::hostname()
    );
    for args in deleting_runs(url, &s3_args, &plan) {
        let (code, stderr) = exit_and_stderr(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("holds the lock") && stderr.contains(&me) && stderr.contains(lock_key),
            "{args:?}: {stderr}"
        );
        // Renewed just now and its pid alive: not stale, so not broken.
        let mut breaking = args.clone();
        breaking.push("--break-lock".into());
        let (code, stderr) = exit_and_stderr(&breaking);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("not stale"), "{stderr}");
    }
    let (code, stderr) =
        exit_and_stderr(&["gc", url, "--grace", "0s", "--endpoint-url", &endpoint]);
    assert_eq!(code, 0, "a dry run takes no lock: {stderr}");
    drop(guard);
    assert_eq!(lock_object(), None, "released: the object is gone");
    assert!(store_keys() == keys_before, "a refused run deletes nothing");

    // A lock left by a run that died on this host (its pid is not running) is stale.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let record = serde_json::json!({
        "host": regsweep::pipeline::guard::lock::hostname(), "pid": dead_pid, "started": "2026-01-01T00:00:00Z",
        "started_unix": 1767225600, "command": "regsweep gc --delete"
    });
    s3.put_object("locks", lock_key, record.to_string().as_bytes());
    let gc = &deleting_runs(url, &s3_args, &plan)[0];
    let (code, stderr) = exit_and_stderr(gc);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("looks abandoned")
            && stderr.contains("--break-lock")
            && stderr.contains(&format!("pid {dead_pid} is not running")),
        "{stderr}"
    );
    assert!(store_keys() == keys_before, "a refused run deletes nothing");
    let mut breaking = gc.clone();
    breaking.push("--break-lock".into());
    let (code, stderr) = exit_and_stderr(&breaking);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("breaking the stale lock"), "{stderr}");
    assert!(store_keys() != keys_before, "the run went ahead");
    assert_eq!(lock_object(), None, "and released its own lock");
}

/// The lock file GitLab's registry writes once its metadata database owns the store.
const DATABASE_IN_USE: &str = "docker/registry/lockfiles/database-in-use";

/// Every deleting command refuses a store a database owns (exit 2, naming the file, with or without
/// --force, nothing deleted); every dry run and report names it on its first line and in its JSON.
fn assert_database_owned_store_is_refused(
    storage: &str,
    extra: &[&str],
    plan: &Path,
    keys: &dyn Fn() -> Vec<String>,
) {
    let before = keys();
    for mut args in deleting_runs(storage, extra, plan) {
        for force in [false, true] {
            if force {
                args.push("--force".into());
            }
            let (code, stderr) = exit_and_stderr(&args);
            assert_eq!(code, 2, "{args:?}: {stderr}");
            assert!(
                stderr.contains("refusing to delete")
                    && stderr.contains(DATABASE_IN_USE)
                    && stderr.contains("database"),
                "{args:?} names the lock file and why: {stderr}"
            );
        }
    }
    assert_eq!(keys(), before, "a refused run deletes nothing");
    for args in [
        vec!["gc", storage, "-m", "--grace", "0s"],
        vec!["du", storage],
        vec!["audit", storage],
        vec!["prune-tags", storage, "--repo", "**", "--all-tags"],
    ] {
        let mut args: Vec<&str> = args;
        args.extend_from_slice(extra);
        let out = regsweep().args(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let first = stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("WARNING: ") && first.contains(DATABASE_IN_USE),
            "{args:?}: the first line names the lock file: {stdout}"
        );
        args.push("--json");
        let out = regsweep().args(&args).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        let path = v["database_in_use"]["path"].as_str().unwrap_or_default();
        assert!(path.ends_with(DATABASE_IN_USE), "{args:?}: {v}");
    }
    assert_eq!(keys(), before, "dry runs delete nothing");
}

#[test]
fn a_store_that_gitlabs_metadata_database_owns_is_never_swept_on_a_filesystem_or_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_copy(dir.path());
    let store = root.to_str().unwrap();
    let plan = dir.path().join("plan.ndjson");
    let make_plan = [
        "gc",
        store,
        "-m",
        "--grace",
        "0s",
        "--plan",
        plan.to_str().unwrap(),
    ];
    let (code, stderr) = exit_and_stderr(&make_plan);
    assert_eq!(code, 0, "{stderr}");
    // The sibling lock says the layout is the truth: no refusal.
    let lockfiles = root.join("docker/registry/lockfiles");
    std::fs::create_dir_all(&lockfiles).unwrap();
    std::fs::write(lockfiles.join("filesystem-in-use"), b"{\"version\":1}").unwrap();
    let (code, stdout) = {
        let out = regsweep().args(["du", store]).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0));
    assert!(!stdout.contains("WARNING"), "{stdout}");
    std::fs::write(root.join(DATABASE_IN_USE), b"{\"version\":1}").unwrap();
    let keys = || support::files_ending(&root, "");
    assert_database_owned_store_is_refused(store, &[], &plan, &keys);

    let (s3, plan) = demo_on_s3(dir.path(), "owned", "s3-plan.ndjson");
    let endpoint = s3.endpoint();
    let url = "s3://owned/store";
    let s3_args = ["--endpoint-url", endpoint.as_str()];
    s3.put_object(
        "owned",
        &format!("store/{DATABASE_IN_USE}"),
        b"{\"version\":1}",
    );
    let keys = || s3.keys("owned").into_iter().collect();
    assert_database_owned_store_is_refused(url, &s3_args, &plan, &keys);
}

#[test]
fn apply_refuses_a_plan_cut_short_edited_or_made_for_another_store_and_executes_a_reviewed_prune_plan()
 {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_copy(dir.path());
    let other = dir.path().join("other");
    support::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&root)
            .arg(&other),
    );
    let store = root.to_str().unwrap();
    let plan = dir.path().join("gc.ndjson");
    let out = support::run(
        regsweep()
            .args(["gc", store, "-m", "--grace", "0s", "--plan"])
            .arg(&plan),
    );
    assert!(
        out.contains(&format!("Plan written to {}", plan.display()))
            && out.contains(&format!("regsweep apply {} {store}", plan.display())),
        "the dry run says where the plan went and how to apply it: {out}"
    );
    let text = std::fs::read_to_string(&plan).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["items"], lines.len() - 1);
    assert_eq!(
        header["storage"],
        std::fs::canonicalize(&root).unwrap().to_str().unwrap()
    );
    // The human view says what goes: the repositories that lose most, and with --list every item.
    let listed =
        support::run(regsweep().args(["gc", store, "-m", "--grace", "0s", "--list", "--top", "1"]));
    let by_repo = listed.split("by repository").nth(1).expect("a plan view");
    assert!(
        by_repo.contains("team/app") && by_repo.contains("1 manifest, 2 layer links, 1 upload"),
        "{listed}"
    );
    assert!(
        by_repo.contains("… 2 more repositories"),
        "--top 1 folds the rest: {listed}"
    );
    for line in &lines[1..] {
        let item: serde_json::Value = serde_json::from_str(line).unwrap();
        let named = item["digest"]
            .as_str()
            .or(item["id"].as_str())
            .or(item["repo"].as_str())
            .unwrap();
        assert!(
            listed.lines().any(|l| l
                .starts_with(item["kind"].as_str().unwrap().replace('_', " ").as_str())
                && l.contains(named)),
            "--list names {line}: {listed}"
        );
    }
    let files_before = support::files_ending(&root, "");
    let apply = |plan: &Path, store: &Path| {
        exit_and_stderr(&["apply".as_ref(), plan.as_os_str(), store.as_os_str()])
    };

    // Cut at a line boundary (a copy that stopped short).
    let cut = dir.path().join("cut.ndjson");
    std::fs::write(&cut, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    let (code, stderr) = apply(&cut, &root);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "announces {} items but the file holds {}",
            lines.len() - 1,
            lines.len() - 3
        )) && stderr.contains("cut.ndjson"),
        "{stderr}"
    );
    // An item edited after review.
    let edited = dir.path().join("edited.ndjson");
    let blob_line = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"blob\""))
        .unwrap();
    let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    changed[blob_line] = changed[blob_line].replace("\"size\":", "\"size\":1");
    std::fs::write(&edited, changed.join("\n") + "\n").unwrap();
    let (code, stderr) = apply(&edited, &root);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("checksum"), "{stderr}");
    // Made for another store (a copy of the same files).
    let (code, stderr) = apply(&plan, &other);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("made for")
            && stderr.contains(other.file_name().unwrap().to_str().unwrap()),
        "{stderr}"
    );
    assert_eq!(support::files_ending(&root, ""), files_before);
    assert_eq!(support::files_ending(&other, ""), files_before);
    // The same store by another path is the same store.
    let (code, stderr) = apply(&plan, &root.join("docker/.."));
    assert_eq!(code, 0, "{stderr}");
    assert_ne!(support::files_ending(&root, ""), files_before);

    // A reviewed prune-tags plan: apply removes the tags it lists, and only while they are as reviewed.
    let tags = dir.path().join("tags.ndjson");
    support::run(
        regsweep()
            .args([
                "prune-tags",
                store,
                "--repo",
                "team/**",
                "--all-tags",
                "--keep-tag",
                "^v1$",
                "--plan",
            ])
            .arg(&tags),
    );
    let listed: Vec<serde_json::Value> = std::fs::read_to_string(&tags)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (repo, tag) = (
        listed[0]["repo"].as_str().unwrap(),
        listed[0]["tag"].as_str().unwrap(),
    );
    let current = root.join(format!(
        "docker/registry/v2/repositories/{repo}/_manifests/tags/{tag}/current/link"
    ));
    // Pushed again since the review (same manifest, a new push time): refused.
    let reviewed_at = std::fs::metadata(&current).unwrap().modified().unwrap();
    let touch = |t: std::time::SystemTime| {
        std::fs::File::options()
            .write(true)
            .open(&current)
            .unwrap()
            .set_modified(t)
            .unwrap()
    };
    touch(reviewed_at + std::time::Duration::from_secs(60));
    let (code, stderr) = apply(&tags, &root);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{repo}:{tag} was")) && stderr.contains("moved since"),
        "{stderr}"
    );
    assert!(current.exists());
    touch(reviewed_at);
    let tags_before = support::files_ending(&root, "/current/link");
    let (code, stderr) = apply(&tags, &root);
    assert_eq!(code, 0, "{stderr}");
    let tags_after = support::files_ending(&root, "/current/link");
    assert_eq!(tags_before.len() - 1, tags_after.len());
    assert!(!current.exists(), "the reviewed tag is gone");
    // Run again: already gone, nothing else touched.
    let (code, summary, stderr) =
        support::regsweep_json(&["apply".as_ref(), tags.as_os_str(), root.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["applied"]["already_gone"], 1);
    assert_eq!(support::files_ending(&root, "/current/link"), tags_after);
}

#[test]
fn an_unwritable_plan_path_fails_before_the_store_is_even_reached() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: had regsweep gone to the store first, it would fail on that.
    let port = support::registry::free_port().to_string();
    let endpoint = format!("http://127.0.0.1:{port}");
    let missing = dir.path().join("no/such/folder/plan.ndjson");
    let folder = dir.path().to_path_buf();
    for plan in [&missing, &folder] {
        for command in [
            vec!["gc", "s3://bucket/store", "--endpoint-url", &endpoint],
            vec![
                "prune-tags",
                "s3://bucket/store",
                "--endpoint-url",
                &endpoint,
                "--repo",
                "**",
                "--all-tags",
            ],
        ] {
            let mut args: Vec<&std::ffi::OsStr> = command.iter().map(|a| a.as_ref()).collect();
            args.extend(["--plan".as_ref(), plan.as_os_str()]);
            let (code, stderr) = exit_and_stderr(&args);
            assert_eq!(code, 2, "{stderr}");
            assert!(
                stderr.contains(&plan.display().to_string())
                    && stderr.contains("cannot write the plan")
                    && !stderr.contains(&port),
                "{command:?}: {stderr}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file is left behind"
    );
}

#[test]
fn zero_requests_in_flight_or_a_second_is_refused_not_taken_as_one_or_as_no_cap() {
    // Nothing listens on this port: the refusal comes before the store is reached.
    let endpoint = format!("http://127.0.0.1:{}", support::registry::free_port());
    for (option, value) in [("--max-in-flight", "0"), ("--max-rps", "0")] {
        let (code, stderr) = exit_and_stderr(&[
            "gc",
            "s3://bucket/store",
            "--endpoint-url",
            &endpoint,
            option,
            value,
        ]);
        assert_eq!(code, 2, "{option} {value}: {stderr}");
        assert!(
            stderr.contains(option) && stderr.contains("0 is not in 1.."),
            "{option} {value}: {stderr}"
        );
    }
}
