//! Hostile input: unknown manifest media types, manifest loops, symbolic-link loops, odd names,
//! truncated data and unreadable files. Each is named in the report (path, and digest where there is
//! one); where it leaves reachability unproven `--delete` refuses and the file set is unchanged;
//! the dry run still reports what it could.

mod support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::registry::Registry;
use support::store::HandStore;
use support::{files_ending, oci, skopeo_copy};

const DAY: Duration = Duration::from_secs(86_400);

/// Runs a command to its end, killing it (and failing) if it runs longer than `limit`: a walk that
/// loops must fail the test, not hang it.
fn bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{cmd:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `regsweep gc ROOT ARGS --json`, bounded; returns exit code, summary and stderr.
/// `gc ROOT ARGS --json` without the manifest cache: these tests damage manifests that earlier runs
/// read, and show what a run that must read them says (with the cache, a run knows what a damaged
/// manifest named without reading it; `audit` reads every one).
fn gc_in(cmd: Command, root: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut cmd = cmd;
    cmd.arg("gc")
        .arg(root)
        .args(args)
        .args(["--json", "--no-cache"]);
    let out = bounded(&mut cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), summary, stderr)
}

fn gc(root: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    gc_in(support::regsweep(), root, args)
}

/// Every file and symbolic link below `root` (relative paths), to show that nothing was deleted.
fn file_set(root: &Path) -> BTreeSet<String> {
    files_ending(root, "").into_iter().collect()
}

/// The problems of a summary as (kind, path) pairs.
fn problems(summary: &serde_json::Value) -> Vec<(String, String)> {
    summary["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems array: {summary}"))
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_owned(),
                p["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn problem_with<'a>(
    summary: &'a serde_json::Value,
    kind: &str,
    digest: &str,
) -> &'a serde_json::Value {
    summary["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind && p["digest"] == digest)
        .unwrap_or_else(|| panic!("no {kind} problem for {digest}: {summary}"))
}

/// A dry run names the problem and still plans the orphan; `--delete` refuses (exit 2, naming
/// `named` on stderr) and leaves every file where it was.
fn assert_refused_untouched(root: &Path, args: &[&str], named: &str) {
    let before = file_set(root);
    let mut delete: Vec<&str> = args.to_vec();
    delete.push("--delete");
    let (code, summary, stderr) = gc(root, &delete);
    assert_eq!(code, 2, "--delete must refuse: {stderr}");
    assert!(
        stderr.contains(named),
        "the refusal names {named}: {stderr}"
    );
    assert!(summary.get("deleted").is_none(), "{summary}");
    assert_eq!(file_set(root), before, "nothing may be deleted");
}

#[test]
fn an_unknown_manifest_media_type_is_named_and_stops_delete() {
    let s = HandStore::new();
    let (kept, _) = s.image("r", "kept", None);
    s.tag("r", "v1", &kept);
    let layer = s.blob(b"a layer of a manifest kind regsweep does not know");
    let future = serde_json::json!({
        "schemaVersion": 3,
        "mediaType": "application/vnd.example.future.manifest.v9+json",
        "parts": [{"digest": layer, "size": 49}],
    });
    let future = s.blob(future.to_string().as_bytes());
    s.revision("future", &future);
    s.tag("future", "latest", &future);
    let orphan = s.blob(b"orphan");
    s.age_all(DAY);

    let (code, summary, _) = gc(&s.root, &["--grace", "0s", "-m"]);
    assert_eq!(code, 0, "the dry run reports: {summary}");
    let p = problem_with(&summary, "corrupt_manifest", &future);
    let message = p["message"].as_str().unwrap();
    assert!(
        message.contains("application/vnd.example.future.manifest.v9+json"),
        "the message names the media type: {message}"
    );
    assert!(p["path"].as_str().unwrap().ends_with("/data"));
    assert_eq!(problems(&summary).len(), 1, "{summary}");
    assert!(
        summary["blobs"]["eligible"].as_u64().unwrap() >= 1,
        "the dry run still plans what it could: {summary}"
    );
    assert_refused_untouched(&s.root, &["--grace", "0s", "-m"], &future);
    assert!(s.blob_path(&orphan).exists());
    assert!(s.blob_path(&layer).exists());
}

#[test]
fn manifests_that_name_each_other_end_the_walk_and_are_named() {
    // Two indexes whose data lists the other. With honest digests such a loop cannot exist (each
    // digest would have to contain the other's), so the store's data is not what its names say: each
    // is named as corrupt and nothing is deleted.
    let s = HandStore::new();
    let (kept, _) = s.image("r", "kept", None);
    s.tag("r", "v1", &kept);
    let a = oci::sha256(b"name of index a");
    let b = oci::sha256(b"name of index b");
    let index = |child: &str| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": child, "size": 200},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": kept, "size": 300},
            ],
        })
        .to_string()
    };
    let hex = |d: &str| d["sha256:".len()..].to_owned();
    for (name, child) in [(&a, &b), (&b, &a)] {
        let h = hex(name);
        s.write(
            &format!("blobs/sha256/{}/{h}/data", &h[..2]),
            index(child).as_bytes(),
        );
        s.revision("loop", name);
    }
    s.tag("loop", "latest", &a);
    let orphan = s.blob(b"orphan");
    s.age_all(DAY);

    for args in [&["--grace", "0s"][..], &["--grace", "0s", "-m"]] {
        let (code, summary, _) = gc(&s.root, args);
        assert_eq!(code, 0, "{args:?}: {summary}");
        for d in [&a, &b] {
            let p = problem_with(&summary, "corrupt_manifest", d);
            assert!(
                p["message"].as_str().unwrap().contains("hash to"),
                "the message says the data is not its digest: {p}"
            );
        }
        assert_refused_untouched(&s.root, args, "hash to");
    }
    assert!(s.blob_path(&orphan).exists());
}

#[test]
fn symbolic_link_loops_are_not_followed_and_stop_delete() {
    let s = HandStore::new();
    let (kept, _) = s.image("r", "kept", None);
    s.tag("r", "v1", &kept);
    let orphan = s.blob(b"orphan");
    let v2 = s.root.join("docker/registry/v2");
    // A folder that links to its own parent, in the repositories tree and in the blob tree; and a
    // tag's current link that links to itself.
    let tag_dir = v2.join("repositories/r/_manifests/tags/loop");
    std::fs::create_dir_all(&tag_dir).unwrap();
    std::os::unix::fs::symlink("..", tag_dir.join("current")).unwrap();
    let shard = v2.join("blobs/sha256/cd");
    std::fs::create_dir_all(&shard).unwrap();
    std::os::unix::fs::symlink(".", shard.join("cd".repeat(32))).unwrap();
    let current = v2.join("repositories/r/_manifests/tags/self/current");
    std::fs::create_dir_all(&current).unwrap();
    std::os::unix::fs::symlink("link", current.join("link")).unwrap();
    s.age_all(DAY);

    let (code, summary, _) = gc(&s.root, &["--grace", "0s", "-m"]);
    assert_eq!(code, 0, "{summary}");
    let paths: Vec<String> = problems(&summary)
        .into_iter()
        .filter(|(k, _)| k == "unreadable")
        .map(|(_, p)| p)
        .collect();
    for named in [
        "tags/loop/current",
        &"cd".repeat(32),
        "tags/self/current/link",
    ] {
        assert!(
            paths.iter().any(|p| p.contains(named)),
            "{named} is named: {paths:?}"
        );
    }
    assert_eq!(
        summary["blobs"]["eligible"], 1,
        "the orphan is still planned: {summary}"
    );
    assert_refused_untouched(&s.root, &["--grace", "0s", "-m"], "refusing");
    assert!(s.blob_path(&orphan).exists());
}

#[test]
fn odd_names_are_kept_byte_for_byte_and_a_name_that_is_not_utf8_stops_delete() {
    use std::os::unix::ffi::OsStrExt;
    let s = HandStore::new();
    let names = [
        "a.b-c/d__e/f--g",
        "team/ünï cöde",
        "x/y z/quote\"and\\slash",
    ];
    let mut kept = Vec::new();
    let mut untagged = Vec::new();
    for (i, repo) in names.iter().enumerate() {
        let (m, blobs) = s.image(repo, &format!("kept {i}"), None);
        s.tag(repo, "V1.0_RC-1", &m);
        s.tag(repo, "tag with space\tand tab", &m);
        kept.push((m, blobs));
        untagged.push(s.image(repo, &format!("old {i}"), None));
    }
    let orphan = s.blob(b"orphan");
    // A folder name that is not UTF-8 cannot be named in a key: it is reported, not guessed at.
    let bad = s
        .root
        .join("docker/registry/v2/repositories/team")
        .join(OsStr::from_bytes(b"bad\xffname"));
    std::fs::create_dir_all(bad.join("_manifests/tags/t/current")).unwrap();
    std::fs::write(bad.join("_manifests/tags/t/current/link"), &kept[0].0).unwrap();
    s.age_all(DAY);

    let (code, summary, _) = gc(&s.root, &["--grace", "0s", "-m"]);
    assert_eq!(code, 0, "{summary}");
    let unreadable: Vec<(String, String)> = problems(&summary);
    assert_eq!(unreadable.len(), 1, "{summary}");
    assert_eq!(unreadable[0].0, "unreadable");
    assert!(
        unreadable[0].1.contains("bad\u{fffd}name"),
        "the path is named (lossily): {unreadable:?}"
    );
    assert_refused_untouched(&s.root, &["--grace", "0s", "-m"], "bad\u{fffd}name");

    std::fs::remove_dir_all(&bad).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan");
    let (code, summary, stderr) = gc(
        &s.root,
        &["--grace", "0s", "-m", "--plan", plan.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["repositories"], names.len(), "{summary}");
    assert_eq!(summary["tags"], 2 * names.len(), "{summary}");
    let planned = support::read_plan(&plan);
    let expected: BTreeSet<(String, String)> = names
        .iter()
        .zip(&untagged)
        .map(|(r, (m, _))| (r.to_string(), m.clone()))
        .collect();
    assert_eq!(
        planned.manifests, expected,
        "manifests planned by exact name"
    );

    // The human form this time: what was deleted, and the registry's cache, said plainly.
    let out = bounded(
        support::regsweep()
            .args(["gc", "--grace", "0s", "-m", "--delete"])
            .arg(&s.root),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("Deleted {} manifests", names.len())),
        "{stdout}"
    );
    assert!(stdout.contains("restart the registry"), "{stdout}");
    for (i, repo) in names.iter().enumerate() {
        let revision = |d: &str| {
            s.root.join(format!(
                "docker/registry/v2/repositories/{repo}/_manifests/revisions/sha256/{}/link",
                &d[7..]
            ))
        };
        assert!(
            revision(&kept[i].0).exists(),
            "{repo}: tagged revision kept"
        );
        assert!(
            !revision(&untagged[i].0).exists(),
            "{repo}: untagged revision gone"
        );
        for d in std::iter::once(&kept[i].0).chain(&kept[i].1) {
            assert!(s.blob_path(d).exists(), "{repo}: {d} kept");
        }
        assert!(!s.blob_path(&untagged[i].1[1]).exists());
    }
    assert!(!s.blob_path(&orphan).exists());
}

#[test]
fn odd_but_valid_names_pushed_through_the_registry_survive_a_sweep_and_pull_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let layout = |n: &str| dir.path().join("layouts").join(n);
    let oci_ref = |n: &str| format!("oci:{}:latest", layout(n).display());
    // Separators the grammar allows: '.', '_', '__', runs of '-'; tags of word characters, '.', '-'.
    let repo = "a.b-c/d__e/f---g.h_i";
    let kept = oci::single(&layout("kept"), &["odd kept"]);
    skopeo_copy(&oci_ref("kept"), &registry.image(repo, "V1.0_RC-1"), &[]);
    skopeo_copy(&oci_ref("kept"), &registry.image(repo, "_x.y-z"), &[]);
    let moved = oci::single(&layout("moved"), &["odd moved"]);
    skopeo_copy(&oci_ref("moved"), &registry.image(repo, "moving"), &[]);
    oci::single(&layout("now"), &["odd now"]);
    skopeo_copy(&oci_ref("now"), &registry.image(repo, "moving"), &[]);
    registry.set_read_only();

    let (code, summary, stderr) = gc(&registry.config, &["--grace", "0s", "-m", "--delete"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["deleted"]["manifests"], 1, "{summary}");
    let root = &registry.root;
    let blob = |d: &str| {
        root.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{}/data",
            &d[7..9],
            &d[7..]
        ))
    };
    assert!(
        !blob(&moved.layers[0]).exists(),
        "the moved-from image is swept"
    );
    assert!(blob(&kept.layers[0]).exists());
    for tag in ["V1.0_RC-1", "_x.y-z", "moving"] {
        let dest = format!(
            "oci:{}:pulled",
            dir.path().join(format!("pull-{tag}")).display()
        );
        skopeo_copy(&registry.image(repo, tag), &dest, &[]);
    }
}

#[test]
fn truncated_data_is_named_by_audit_a_truncated_layer_is_kept_and_a_truncated_manifest_stops_delete()
 {
    let s = HandStore::new();
    let (m, blobs) = s.image("r", "kept", None);
    s.tag("r", "v1", &m);
    let orphan = s.blob(b"orphan");
    // The layer loses its last bytes, as after a crash mid-write or a disk that filled up.
    let layer = &blobs[1];
    let data = std::fs::read(s.blob_path(layer)).unwrap();
    std::fs::write(s.blob_path(layer), &data[..data.len() / 2]).unwrap();
    s.age_all(DAY);

    // gc does not measure what a manifest keeps (kept bytes are as the descriptors declare them,
    // and a kept blob costs no stat on a cold disk); audit measures every blob and names it.
    let (code, summary, _) = gc(&s.root, &["--grace", "0s", "-m"]);
    assert_eq!(code, 0);
    assert_eq!(summary["problems"], serde_json::json!([]), "{summary}");
    let (code, audit, _) = support::regsweep_json(&[OsStr::new("audit"), s.root.as_os_str()]);
    assert_eq!(code, 1, "audit exits 1 on a problem: {audit}");
    let p = problem_with(&audit, "size_mismatch", layer);
    assert!(p["path"].as_str().unwrap().ends_with("/data"), "{p}");
    assert!(
        p["message"].as_str().unwrap().contains(&m),
        "names the manifest: {p}"
    );

    // The layer is named and kept, since a tag names it; the sweep deletes what is unreachable.
    let (code, summary, stderr) = gc(&s.root, &["--grace", "0s", "-m", "--delete"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["deleted"]["blobs"], 1, "{summary}");
    assert!(s.blob_path(layer).exists());
    assert!(!s.blob_path(&orphan).exists());

    // A truncated manifest can no longer say what it keeps: named as corrupt, nothing deleted.
    let (untagged, _) = s.image("r", "untagged", None);
    let orphan = s.blob(b"second orphan");
    let cache = tempfile::tempdir().unwrap();
    let with_cache = |delete: bool| {
        let mut cmd = support::regsweep();
        cmd.arg("gc")
            .arg(&s.root)
            .args(["--grace", "0s", "-m", "--json"]);
        cmd.arg("--cache-dir").arg(cache.path());
        if delete {
            cmd.arg("--delete");
        }
        let out = cmd.output().unwrap();
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), summary)
    };
    let (code, before) = with_cache(false);
    assert_eq!(code, Some(0));
    let manifest = std::fs::read(s.blob_path(&m)).unwrap();
    std::fs::write(s.blob_path(&m), &manifest[..manifest.len() - 10]).unwrap();
    s.age_all(DAY);
    // A run with the cache knows what the manifest named (its digest is its content's hash) and
    // reads none of it: the same plan as before the damage, which keeps the tagged image's blobs.
    let (code, cached) = with_cache(false);
    assert_eq!(code, Some(0));
    assert_eq!(cached["blobs"], before["blobs"], "{cached}");
    assert_eq!(cached["manifests"], before["manifests"], "{cached}");
    assert_eq!(cached["manifest_cache"]["hits"], 2, "{cached}");
    let (code, summary, _) = gc(&s.root, &["--grace", "0s", "-m"]);
    assert_eq!(code, 0);
    problem_with(&summary, "corrupt_manifest", &m);
    assert_refused_untouched(&s.root, &["--grace", "0s", "-m"], &m);
    assert!(s.blob_path(&orphan).exists());
    assert!(s.blob_path(&untagged).exists());
}

/// Whether this process runs as root, for whom permission bits do not make a file unreadable.
fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

const NOBODY: [&str; 4] = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];

/// The regsweep command as an unprivileged user: as root, through `setpriv` as nobody (the store
/// under `top` is then given to nobody, and the binary is copied into `top` when nobody cannot reach
/// it where cargo built it); otherwise as this user.
fn unprivileged(top: &Path) -> Command {
    if !is_root() {
        return support::regsweep();
    }
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
    support::run(
        Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(top.join("root")),
    );
    let plain = support::regsweep();
    let mut program = PathBuf::from(plain.get_program());
    let reachable = Command::new("setpriv")
        .args(NOBODY)
        .args(["test", "-x"])
        .arg(&program)
        .status()
        .unwrap()
        .success();
    if !reachable {
        let copy = top.join("regsweep");
        std::fs::copy(&program, &copy).unwrap();
        chmod(&copy, 0o755);
        program = copy;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(NOBODY).arg(program);
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn unreadable_files_and_folders_are_named_and_stop_delete() {
    // In /tmp, whatever TMPDIR says: every folder above the store must let nobody through.
    let top = tempfile::tempdir_in("/tmp").unwrap();
    let s = HandStore::at(&top.path().join("root"));
    let (tagged, _) = s.image("r", "tagged", None);
    s.tag("r", "v1", &tagged);
    let (other, _) = s.image("q", "other", None);
    s.tag("q", "v1", &other);
    let (third, _) = s.image("p", "third", None);
    s.tag("p", "v1", &third);
    let orphan = s.blob(b"orphan");
    s.age_all(DAY);
    let as_nobody = || unprivileged(top.path());
    let (code, clean, stderr) = gc_in(as_nobody(), &s.root, &["--grace", "0s"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(problems(&clean).len(), 0, "{clean}");

    let v2 = s.root.join("docker/registry/v2");
    let unreadable: Vec<PathBuf> = vec![
        s.blob_path(&tagged),
        v2.join(format!(
            "repositories/q/_manifests/revisions/sha256/{}/link",
            &other[7..]
        )),
        v2.join("repositories/p/_layers"),
    ];
    for p in &unreadable {
        chmod(p, 0o000);
    }
    let (code, summary, stderr) = gc_in(as_nobody(), &s.root, &["--grace", "0s"]);
    assert_eq!(code, 0, "the dry run reports: {stderr}");
    let named = problems(&summary);
    for p in &unreadable {
        let rel = p
            .strip_prefix(&s.root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            named
                .iter()
                .any(|(k, path)| k == "unreadable" && path.ends_with(&rel)),
            "{rel} is named unreadable: {named:?}"
        );
    }
    // The orphan, and what the unreadable manifest names (its config and layer, which look
    // unreferenced): a plan that --delete would refuse.
    assert_eq!(
        summary["blobs"]["eligible"], 3,
        "the dry run still plans: {summary}"
    );
    let before = file_set(&s.root);
    let (code, _, stderr) = gc_in(as_nobody(), &s.root, &["--grace", "0s", "--delete"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("refusing"), "{stderr}");
    assert_eq!(file_set(&s.root), before);

    for p in &unreadable {
        chmod(p, if p.is_dir() { 0o755 } else { 0o644 });
    }
    let (code, summary, stderr) = gc_in(as_nobody(), &s.root, &["--grace", "0s", "--delete"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["deleted"]["blobs"], 1, "{summary}");
    assert!(!s.blob_path(&orphan).exists());
}

#[test]
fn odd_names_on_s3_plan_and_sweep_exactly_as_on_disk() {
    let s = HandStore::new();
    // Characters that need care in S3 keys and URLs: '+', '%', spaces, quotes, non-ASCII, '&', '='.
    let names = ["plus+sign/re po", "per%cent/ünï", "amp&eq=/x'y\"z"];
    for (i, repo) in names.iter().enumerate() {
        let (m, _) = s.image(repo, &format!("kept {i}"), None);
        s.tag(repo, "t+1 %2F&", &m);
        s.image(repo, &format!("old {i}"), None);
    }
    s.blob(b"orphan");
    s.age_all(DAY);

    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    let loader = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/load_s3.py");
    support::run(
        Command::new("python3")
            .arg(loader)
            .arg(&s.root)
            .args([&s3.endpoint(), "odd", "store"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE"),
    );
    support::next_second();
    let url = Path::new("s3://odd/store");
    let endpoint = s3.endpoint();
    let s3_args = ["--endpoint-url", endpoint.as_str(), "--grace", "0s", "-m"];
    let (on_disk, disk_summary) = support::regsweep_plan(&s.root, &["--grace", "0s", "-m"]);
    let (on_s3, s3_summary) = support::regsweep_plan(url, &s3_args);
    assert_eq!(on_s3, on_disk);
    assert_eq!(on_disk.manifests.len(), names.len());
    assert_eq!(s3_summary["tags"], disk_summary["tags"]);
    assert_eq!(
        s3_summary["problems"],
        serde_json::json!([]),
        "{s3_summary}"
    );

    let (code, _, stderr) = gc(&s.root, &["--grace", "0s", "-m", "--delete"]);
    assert_eq!(code, 0, "{stderr}");
    let mut delete: Vec<&str> = s3_args.to_vec();
    delete.push("--delete");
    let (code, summary, stderr) = gc(url, &delete);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["deleted"]["manifests"], names.len(), "{summary}");
    assert_eq!(
        s3.keys("odd"),
        file_set(&s.root),
        "the bucket holds exactly the files the same sweep left on disk"
    );
}
