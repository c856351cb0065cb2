//! Test support: the real registry on loopback, OCI layouts written by the test, skopeo, the
//! reference collector, and the regsweep binary.
#![allow(dead_code)]

pub mod azure;
pub mod crawl;
pub mod gcs;
pub mod metrics;
pub mod oci;
pub mod page;
pub mod proxy;
pub mod push;
pub mod redis;
pub mod registry;
pub mod s3;
pub mod scenario;
pub mod store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A copy of the built-in demo store under `dir`, and a config.yml beside it that puts it in
/// read-only mode: (root, config).
pub fn copy_of_demo(dir: &Path) -> (PathBuf, PathBuf) {
    let root = dir.join("root");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    run(Command::new("cp").arg("-a").arg(&demo).arg(&root));
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  maintenance:\n    readonly:\n      enabled: true\n  filesystem:\n    rootdirectory: {}\n",
            root.display()
        ),
    )
    .unwrap();
    (root, config)
}

/// Waits until the clock is in a later second than when called. A store that keeps whole seconds
/// (S3, Azure) cannot tell what was written in a run's first second from what was written just
/// before it, and holds both back under `--grace 0s`: a test that writes a store and plans it at once
/// waits for the second to pass first.
pub fn next_second() {
    let second = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let start = second(std::time::SystemTime::now());
    for _ in 0..200 {
        if second(std::time::SystemTime::now()) > start {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `skopeo copy` with TLS checks off for the loopback registry.
pub fn skopeo_copy(src: &str, dst: &str, extra: &[&str]) {
    if let Err(e) = try_skopeo_copy(src, dst, extra) {
        panic!("skopeo copy {src} {dst} failed:\n{e}");
    }
}

/// `skopeo copy` (TLS checks off both ways) that may fail: `Err(stderr)`. skopeo checks every
/// digest it pulls, so success means the image is whole.
pub fn try_skopeo_copy(src: &str, dst: &str, extra: &[&str]) -> Result<(), String> {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .args([src, dst])
        .output()
        .unwrap_or_else(|e| panic!("cannot start skopeo: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What a collector plans, as sets of digests (and repository/digest pairs for manifests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanSets {
    pub blobs: BTreeSet<String>,
    pub manifests: BTreeSet<(String, String)>,
    pub layer_links: BTreeSet<(String, String)>,
    /// Abandoned uploads (repository, id).
    pub uploads: BTreeSet<(String, String)>,
    /// Incomplete S3 multipart uploads (key, upload id).
    pub multipart: BTreeSet<(String, String)>,
    /// Repositories left empty, removed.
    pub repositories: BTreeSet<String>,
}

/// Runs `docker-registry garbage-collect --dry-run [-m] CONFIG` and reads what it would delete.
pub fn reference_dry_run(config: &Path, untagged: bool) -> PlanSets {
    let mut cmd = Command::new("docker-registry");
    cmd.env_remove("AWS_CA_BUNDLE")
        .args(["garbage-collect", "--dry-run"]);
    if untagged {
        cmd.arg("-m");
    }
    let out = run(cmd.arg(config));
    let mut sets = PlanSets::default();
    let mut repo = String::new();
    for line in out.lines() {
        if let Some(d) = line.strip_prefix("blob eligible for deletion: ") {
            sets.blobs.insert(d.trim().to_owned());
        } else if let Some(d) = line.strip_prefix("manifest eligible for deletion: ") {
            sets.manifests.insert((repo.clone(), d.trim().to_owned()));
        } else if !line.trim().is_empty() && !line.contains(':') && !line.contains(' ') {
            repo = line.trim().to_owned();
        }
    }
    sets
}

/// The cache folder every test's runs share (`XDG_CACHE_HOME`), as the runs of one user do: the
/// suite's stores then also exercise the manifest cache, warm where stores repeat.
pub fn shared_cache_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache-home")
}

/// The regsweep binary, with the credentials of the loopback S3 server in its environment and the
/// suite's shared cache folder. `REGSWEEP_UNDER_TEST=/path/to/regsweep` runs another build instead
/// (an older commit's, to show what a test catches).
pub fn regsweep() -> Command {
    let bin = std::env::var_os("REGSWEEP_UNDER_TEST")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_regsweep").into());
    let mut cmd = Command::new(bin);
    cmd.env("XDG_CACHE_HOME", shared_cache_home())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_CA_BUNDLE");
    cmd
}

/// Runs `regsweep gc STORAGE ARGS --plan FILE --json` and returns the plan's sets and the summary.
///
/// On a filesystem store (a folder) it runs twice, with the shared manifest cache and with
/// `--no-cache`, and asserts that both plan and report the same: on every store the suite builds,
/// the cache changes nothing but what is read. The `--no-cache` run's summary is returned.
pub fn regsweep_plan(storage: &Path, args: &[&str]) -> (PlanSets, serde_json::Value) {
    let once = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let plan_path = dir.path().join("plan.ndjson");
        let out = run(regsweep()
            .arg("gc")
            .arg(storage)
            .args(args)
            .args(extra)
            .arg("--plan")
            .arg(&plan_path)
            .arg("--json"));
        let summary: serde_json::Value =
            serde_json::from_str(&out).expect("--json prints one JSON object");
        (read_plan(&plan_path), summary)
    };
    if !storage.is_dir() {
        return once(&[]);
    }
    let (cached_plan, mut cached) = once(&[]);
    let (plan, summary) = once(&["--no-cache"]);
    assert!(
        cached["manifest_cache"]["path"].is_string() && summary.get("manifest_cache").is_none(),
        "{cached}\n{summary}"
    );
    assert_eq!(
        cached_plan, plan,
        "the same plan with the cache and without"
    );
    let object = cached.as_object_mut().unwrap();
    object.remove("manifest_cache");
    // When it ran and where its plan went differ; nothing else may.
    for k in ["elapsed_ms", "plan_file"] {
        object.insert(k.into(), summary[k].clone());
    }
    assert_eq!(
        cached, summary,
        "the same report with the cache and without"
    );
    (plan, summary)
}

/// Reads an NDJSON plan file into sets.
pub fn read_plan(path: &Path) -> PlanSets {
    let mut sets = PlanSets::default();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        match v["kind"].as_str().unwrap() {
            "blob" => {
                assert!(v["size"].is_u64(), "blob item without size: {line}");
                sets.blobs.insert(s("digest"));
            }
            "manifest" => {
                sets.manifests.insert((s("repo"), s("digest")));
            }
            "layer_link" => {
                sets.layer_links.insert((s("repo"), s("digest")));
            }
            "header" => {
                assert_eq!(v["version"], 2, "plan header: {line}");
                assert_eq!(v["command"], "gc", "plan header: {line}");
            }
            "multipart" => {
                assert!(v["size"].is_u64(), "multipart item without size: {line}");
                sets.multipart.insert((s("key"), s("upload_id")));
            }
            "upload" => {
                assert!(v["size"].is_u64(), "upload item without size: {line}");
                sets.uploads.insert((s("repo"), s("id")));
            }
            "repository" => {
                sets.repositories.insert(s("repo"));
            }
            other => panic!("unknown plan item kind {other}"),
        }
    }
    sets
}

/// Every file below `dir` whose path ends with `suffix`, relative to `dir`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel.ends_with(suffix) {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

/// Prints a readable difference of two sets in an assertion message.
pub fn diff<T: Ord + std::fmt::Debug>(ours: &BTreeSet<T>, theirs: &BTreeSet<T>) -> String {
    let only_ours: Vec<_> = ours.difference(theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(ours).collect();
    format!("only in ours: {only_ours:#?}\nonly in theirs: {only_theirs:#?}")
}

/// Runs regsweep with `args` plus `--json`; returns the exit code, the parsed summary and stderr.
pub fn regsweep_json(args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value, String) {
    let out = regsweep().args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), summary, stderr)
}

/// Asserts that no `_layers` link, revision link or tag index entry names blob data that is gone,
/// and that every tag index entry names a revision that is there. `keys` are store keys
/// (`docker/registry/v2/...`), from a folder or a bucket alike.
pub fn assert_no_link_points_at_something_gone(keys: &BTreeSet<String>) {
    for k in keys
        .iter()
        .filter(|k| k.ends_with("/link") && !k.contains("/current/"))
    {
        let parts: Vec<&str> = k.split('/').collect();
        let hex = parts[parts.len() - 2];
        let data = format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]);
        assert!(keys.contains(&data), "{k} points at missing blob data");
        if let Some(t) = parts.iter().position(|p| *p == "tags") {
            let revision = format!("{}/revisions/sha256/{hex}/link", parts[..t].join("/"));
            assert!(
                keys.contains(&revision),
                "{k}: tag index entry names a revision that is gone"
            );
        }
    }
}
