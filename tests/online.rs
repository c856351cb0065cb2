//! `gc --online` against the real registry while it takes pushes (issue 44, ONLINE.md §2).
//!
//! Each race is forced, not waited for: the registry runs under strace, which holds one request
//! at the open of one path (a manifest's revision link: the PUT has verified what the manifest
//! references and not yet written the link that acknowledges it; a `_layers` link: a mount has
//! checked the source and not yet linked). A collector runs inside that hold. After the hold the
//! registry answers the push 201; the registry is then restarted (a fresh process, no strace) and
//! every acknowledged tag is pulled with skopeo, which checks every digest, and audited.
//!
//! The same interleavings with a plain `--delete --force` lose the image: the tests show it, so
//! that the online runs' passing is not luck of timing.

mod support;

use regsweep::storage::Storage;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use support::oci;
use support::redis::RedisServer;
use support::registry::Registry;
use support::{regsweep, regsweep_json, skopeo_copy, try_skopeo_copy};

/// How long strace holds the request: long enough for a collector run on a tiny store.
const HOLD: Duration = Duration::from_secs(6);

/// The registry's cache in a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cache {
    Off,
    Redis,
}

/// The image a scenario pushes, deletes, and pushes again while the collector runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Image {
    /// One platform: the held request is its manifest's PUT (races R1 and R4).
    Single,
    /// Two platforms: the children are pushed again first, the held request is the index's PUT
    /// (race R6).
    Multi,
    /// One platform left untagged by moving its tag (its revision link stays), then pointed at
    /// again (race R5: the PUT rewrites the revision link the sweep moves).
    Retagged,
}

struct Scenario {
    dir: tempfile::TempDir,
    redis: Option<RedisServer>,
    layout: PathBuf,
    /// The manifest (or index) digest pushed.
    top: String,
    /// Blobs every pull needs, for the assertions on the store.
    blobs: Vec<String>,
}

impl Scenario {
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn storage_extra(&self) -> String {
        match self.redis {
            Some(_) => "  cache:\n    blobdescriptor: redis\n".to_owned(),
            None => String::new(),
        }
    }

    fn extra(&self) -> String {
        match &self.redis {
            Some(r) => format!("redis:\n  addr: 127.0.0.1:{}\n  db: 0\n", r.port),
            None => String::new(),
        }
    }

    /// The registry on this scenario's root, run by `wrapper`.
    fn registry(&self, wrapper: &[String]) -> Registry {
        Registry::start_held(
            self.dir.path(),
            &self.storage_extra(),
            &self.extra(),
            wrapper,
        )
    }

    fn source(&self) -> String {
        format!("oci:{}:latest", self.layout.display())
    }

    fn all(&self) -> &'static [&'static str] {
        &["--all"]
    }
}

/// Every file below `root` made `age` old: the store is old garbage a push can reuse.
fn age_everything(root: &Path, age: Duration) {
    let when = SystemTime::now() - age;
    for entry in walk(root) {
        std::fs::File::options()
            .write(true)
            .open(&entry)
            .and_then(|f| f.set_modified(when))
            .unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A registry holding `app/img:v1` pushed, then deleted through the API and aged three hours:
/// garbage, every byte of which the push the test makes next reuses.
fn scenario(image: Image, cache: Cache) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let redis = (cache == Cache::Redis).then(|| RedisServer::start(dir.path(), None, &[]));
    let layout = dir.path().join("layout");
    let (top, blobs) = match image {
        Image::Single | Image::Retagged => {
            let img = oci::single(&layout, &["online-base", "online-app"]);
            let mut blobs = img.layers.clone();
            blobs.extend([img.config.clone(), img.manifest.clone()]);
            (img.manifest, blobs)
        }
        Image::Multi => {
            let (index, images) = oci::multi(
                &layout,
                &[
                    ("amd64", &["online-base", "online-amd64"]),
                    ("arm64", &["online-arm64"]),
                ],
            );
            let mut blobs = vec![index.clone()];
            for img in images {
                blobs.extend(img.layers.clone());
                blobs.extend([img.config.clone(), img.manifest.clone()]);
            }
            (index, blobs)
        }
    };
    let s = Scenario {
        dir,
        redis,
        layout,
        top,
        blobs,
    };
    {
        let reg = s.registry(&[]);
        skopeo_copy(&s.source(), &reg.image("app/img", "v1"), s.all());
        // The repository keeps another image: it is not left empty.
        let keep = s.dir.path().join("keep");
        oci::single(&keep, &["online-keep"]);
        let keep = format!("oci:{}:latest", keep.display());
        skopeo_copy(&keep, &reg.image("app/img", "keep"), &[]);
        if image == Image::Retagged {
            skopeo_copy(&keep, &reg.image("app/img", "v1"), &[]);
        } else {
            reg.delete_manifest("app/img", &s.top);
        }
    }
    age_everything(&s.root(), Duration::from_secs(3 * 3600));
    s
}

/// strace holding every open of `path` for [`HOLD`].
fn hold(path: &Path) -> Vec<String> {
    vec![
        "strace".into(),
        "-f".into(),
        "-qq".into(),
        "-o".into(),
        "/dev/null".into(),
        "-P".into(),
        path.display().to_string(),
        "-e".into(),
        "trace=openat".into(),
        "-e".into(),
        format!("inject=openat:delay_enter={}", HOLD.as_micros()),
    ]
}

fn revision_link(root: &Path, repo: &str, digest: &str) -> PathBuf {
    root.join(format!(
        "docker/registry/v2/repositories/{repo}/_manifests/revisions/sha256/{}/link",
        digest.trim_start_matches("sha256:")
    ))
}

/// The push of the scenario's image, started; returns when the registry holds its last manifest
/// PUT (the registry's log shows every request before it answered, and the PUT has had time to
/// reach the hold).
fn push_held(s: &Scenario, reg: &Registry) -> std::thread::JoinHandle<Result<(), String>> {
    let log = s.dir.path().join("registry.log");
    let before = std::fs::read_to_string(&log).unwrap_or_default().len();
    let (src, dst) = (s.source(), reg.image("app/img", "v1"));
    let pusher = std::thread::spawn(move || try_skopeo_copy(&src, &dst, &["--all"]));
    // Every blob is HEADed (and, for an index, each child manifest PUT) before the held PUT.
    let children = s.blobs.len().saturating_sub(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let answered = text[before.min(text.len())..]
            .lines()
            .filter(|l| l.contains("response completed"))
            .count();
        if answered >= children.min(3) {
            break;
        }
        assert!(
            !pusher.is_finished(),
            "the push ended before the registry held it"
        );
        assert!(
            Instant::now() < deadline,
            "the push did not reach the registry"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !pusher.is_finished(),
        "the push was not held: the race was not forced"
    );
    pusher
}

/// Runs one forced interleaving: the push held between its check and its link, a collector run
/// (`args`) inside the hold, the push answered, the registry restarted. Returns whether the
/// acknowledged tag pulls (every platform), the collector's summary, and the registry's root.
fn race(
    image: Image,
    cache: Cache,
    args: &[&str],
) -> (Result<(), String>, serde_json::Value, Scenario) {
    let s = scenario(image, cache);
    let summary;
    {
        let held = revision_link(&s.root(), "app/img", &s.top);
        let reg = s.registry(&hold(&held));
        let pusher = push_held(&s, &reg);
        // `apply …`: a plan made by a dry run before the push, applied inside the hold.
        let mut cmd: Vec<std::ffi::OsString> = match args.first() {
            Some(&"apply") => {
                let plan = s.dir.path().join("plan.ndjson");
                let out = regsweep()
                    .arg("gc")
                    .arg(s.config())
                    .args(["-m", "--grace", "1h", "--plan"])
                    .arg(&plan)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                vec!["apply".into(), plan.into(), s.config().into()]
            }
            _ => vec!["gc".into(), s.config().into()],
        };
        let rest = if args.first() == Some(&"apply") {
            &args[1..]
        } else {
            args
        };
        cmd.extend(rest.iter().map(Into::into));
        let started = Instant::now();
        let (code, json, stderr) =
            regsweep_json(&cmd.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
        assert!(code == 0, "gc {args:?} exited {code}:\n{stderr}\n{json:#}");
        summary = json;
        let pushed = pusher.join().unwrap();
        assert!(
            pushed.is_ok(),
            "the held push must be acknowledged (201): {pushed:?}"
        );
        // The premise: the collector's sweep ran while the push was held.
        assert!(
            summary["deleted"]["blobs"].as_u64().unwrap_or(0) > 0,
            "the collector swept nothing inside the hold (after {:?}): {summary:#}",
            started.elapsed()
        );
    }
    let reg = s.registry(&[]);
    let dest = format!("oci:{}:pulled", s.dir.path().join("pulled").display());
    let pulled = try_skopeo_copy(&reg.image("app/img", "v1"), &dest, &["--all"]);
    drop(reg);
    (pulled, summary, s)
}

fn online_args() -> Vec<&'static str> {
    vec![
        "-m", "--delete", "--online", "--grace", "1h", "--settle", "8s",
    ]
}

/// What an online run must leave: the acknowledged tag pulls, audit finds nothing missing, the
/// report says what was put back and why.
fn assert_healed(pulled: Result<(), String>, summary: &serde_json::Value, s: &Scenario) {
    assert!(
        pulled.is_ok(),
        "the acknowledged tag must pull after an online run: {pulled:?}\n{summary:#}"
    );
    let online = &summary["online"];
    assert!(
        online["restored"]["objects"].as_u64().unwrap() >= 1,
        "the settle must have put objects back: {online:#}"
    );
    assert_eq!(online["settle_passes"].as_u64(), Some(2), "{online:#}");
    let reasons = online["restored"]["by_reason"].as_object().unwrap();
    assert!(
        reasons.contains_key("revision link") || reasons.contains_key("tag"),
        "restored for a new revision or tag: {reasons:?}"
    );
    for d in &s.blobs {
        let data = s.root().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{}/data",
            &d[7..9],
            &d[7..]
        ));
        assert!(data.is_file(), "{d} must be back in place");
    }
    let audit = regsweep()
        .arg("audit")
        .arg(s.config())
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert!(
        audit.status.success(),
        "audit must find nothing missing after the online run: {report:#}"
    );
}

#[test]
fn a_manifest_put_held_between_its_check_and_its_link_is_healed_cache_off() {
    let (pulled, summary, s) = race(Image::Single, Cache::Off, &online_args());
    assert_healed(pulled, &summary, &s);
}

#[test]
fn a_manifest_put_held_between_its_check_and_its_link_is_healed_with_redis() {
    let (pulled, summary, s) = race(Image::Single, Cache::Redis, &online_args());
    assert_healed(pulled, &summary, &s);
    assert!(
        summary["cache"]["evicted_keys"].as_u64().unwrap_or(0) > 0,
        "the redis cache was evicted: {:#}",
        summary["cache"]
    );
}

#[test]
fn an_index_put_after_its_children_is_healed() {
    let (pulled, summary, s) = race(Image::Multi, Cache::Off, &online_args());
    assert_healed(pulled, &summary, &s);
}

#[test]
fn a_tag_pointed_again_at_an_untagged_manifest_is_healed() {
    let (pulled, summary, s) = race(Image::Retagged, Cache::Off, &online_args());
    assert_healed(pulled, &summary, &s);
    assert!(
        summary["deleted"]["manifests"].as_u64().unwrap() >= 1,
        "the untagged revision was swept inside the hold: {summary:#}"
    );
}

#[test]
fn a_plan_applied_online_inside_the_hold_is_healed() {
    let (pulled, summary, s) = race(
        Image::Single,
        Cache::Off,
        &["apply", "--online", "--settle", "8s"],
    );
    assert_healed(pulled, &summary, &s);
    assert!(
        summary["applied"]["eligible"].as_u64().unwrap() > 0,
        "{summary:#}"
    );
}

#[test]
fn the_same_race_without_online_loses_the_image() {
    for (image, cache) in [(Image::Single, Cache::Off), (Image::Multi, Cache::Redis)] {
        let (pulled, summary, s) = race(
            image,
            cache,
            &["-m", "--delete", "--force", "--grace", "1h"],
        );
        assert!(
            pulled.is_err(),
            "{image:?}/{cache:?}: a plain --delete inside the hold must lose the acknowledged image \
             (or this test forces nothing): {summary:#}"
        );
        let audit = regsweep().arg("audit").arg(s.config()).output().unwrap();
        assert!(!audit.status.success(), "audit must name what is missing");
    }
}

#[test]
fn a_mount_held_before_its_link_is_healed() {
    // Race R3: an old blob nothing references is mounted into another repository; the mount's
    // check finds it, the collector moves it, then the mount links it and the manifest that
    // uses it is pushed.
    let s = scenario(Image::Single, Cache::Off);
    let layer = oci::sha256(&oci::layer("online-app", 4096).0);
    let link = s.root().join(format!(
        "docker/registry/v2/repositories/other/img/_layers/sha256/{}/link",
        &layer[7..]
    ));
    let summary;
    {
        let reg = s.registry(&hold(&link));
        let port = reg.port;
        let path = format!("/v2/other/img/blobs/uploads/?mount={layer}&from=app/img");
        let mount = std::thread::spawn(move || {
            support::registry::http_to(port, "POST", &path, &[], &[]).map(|r| r.status)
        });
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!mount.is_finished(), "the mount was not held");
        let (code, json, stderr) = regsweep_json(&[
            "gc".as_ref(),
            s.config().as_os_str(),
            "-m".as_ref(),
            "--delete".as_ref(),
            "--online".as_ref(),
            "--grace".as_ref(),
            "1h".as_ref(),
            "--settle".as_ref(),
            "8s".as_ref(),
        ]);
        assert_eq!(code, 0, "{stderr}\n{json:#}");
        summary = json;
        assert_eq!(
            mount.join().unwrap().unwrap(),
            201,
            "the mount is acknowledged"
        );
        assert!(summary["deleted"]["blobs"].as_u64().unwrap() > 0);
    }
    // The layer the mount linked is back; a manifest using it is accepted and pulls.
    let data = s.root().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &layer[7..9],
        &layer[7..]
    ));
    assert!(
        data.is_file(),
        "the mounted layer must be back: {:#}",
        summary["online"]
    );
    assert_eq!(
        summary["online"]["restored"]["by_reason"]["layer link"].as_u64(),
        Some(1),
        "{:#}",
        summary["online"]
    );
    let reg = s.registry(&[]);
    let r = reg.get_blob("other/img", &layer);
    assert_eq!(
        r.status, 200,
        "the mounted layer pulls from its new repository"
    );
}

#[test]
fn a_run_killed_before_its_settle_is_healed_by_the_next_run() {
    let s = scenario(Image::Single, Cache::Off);
    {
        let held = revision_link(&s.root(), "app/img", &s.top);
        let reg = s.registry(&hold(&held));
        let pusher = push_held(&s, &reg);
        let mut gc = regsweep()
            .arg("gc")
            .arg(s.config())
            .args([
                "-m", "--delete", "--online", "--grace", "1h", "--settle", "1h",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed once its sweep is done (the trash run's record is complete), before any pass.
        let trash = s.root().join("regsweep-trash");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !walk_if(&trash).iter().any(|p| {
            p.ends_with("run.json")
                && std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"complete\""))
        }) {
            assert!(Instant::now() < deadline, "the online run did not sweep");
            std::thread::sleep(Duration::from_millis(50));
        }
        Command::new("kill")
            .args(["-KILL", &gc.id().to_string()])
            .status()
            .unwrap();
        gc.wait().unwrap();
        assert!(pusher.join().unwrap().is_ok(), "the push is acknowledged");
    }
    let reg = s.registry(&[]);
    let dest = format!("oci:{}:lost", s.dir.path().join("pulled").display());
    assert!(
        try_skopeo_copy(&reg.image("app/img", "v1"), &dest, &[]).is_err(),
        "killed before its settle, the run has not healed yet (or nothing was forced)"
    );
    // The next deleting run heals every online run in the trash before anything else.
    let out = regsweep()
        .arg("gc")
        .arg(s.config())
        .args([
            "-m", "--delete", "--online", "--grace", "1h", "--settle", "1s",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("healed the trash's online runs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = format!("oci:{}:healed", s.dir.path().join("pulled").display());
    assert_eq!(
        try_skopeo_copy(&reg.image("app/img", "v1"), &dest, &[]),
        Ok(())
    );
}

fn walk_if(dir: &Path) -> Vec<PathBuf> {
    if dir.is_dir() { walk(dir) } else { Vec::new() }
}

/// A config.yml for `root` with `extra` lines under `storage:` and `top` top-level sections.
fn config(dir: &Path, name: &str, root: &Path, storage_extra: &str, top: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n{storage_extra}{top}",
            root.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn online_refuses_what_it_cannot_keep_its_promise_on_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = support::copy_of_demo(dir.path());
    let before = walk(&root).len();
    let cases: [(&str, PathBuf, &str); 3] = [
        (
            "inmemory",
            config(
                dir.path(),
                "inmemory.yml",
                &root,
                "  cache:\n    blobdescriptor: inmemory\n",
                "",
            ),
            "inmemory",
        ),
        (
            "proxy",
            config(
                dir.path(),
                "proxy.yml",
                &root,
                "",
                "proxy:\n  remoteurl: https://registry-1.docker.io\n",
            ),
            "pull-through cache",
        ),
        ("a bare folder", root.clone(), "not a registry config.yml"),
    ];
    for (what, target, says) in cases {
        let out = regsweep()
            .arg("gc")
            .arg(&target)
            .args([
                "-m", "--delete", "--online", "--grace", "0s", "--settle", "1s",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains(says), "{what}: {stderr}");
        assert!(
            !root.join("regsweep-trash").exists(),
            "{what}: nothing moved"
        );
        assert_eq!(walk(&root).len(), before, "{what}: nothing moved");
    }
    // --online is a deleting mode: without --delete clap says so.
    let out = regsweep()
        .arg("gc")
        .arg(&root)
        .arg("--online")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--delete"));
}

#[test]
fn an_inmemory_cache_is_accepted_with_a_restart_command_run_after_the_settle() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = support::copy_of_demo(dir.path());
    let cfg = config(
        dir.path(),
        "inmemory.yml",
        &root,
        "  cache:\n    blobdescriptor: inmemory\n",
        "",
    );
    let marker = dir.path().join("restarted");
    let metrics = dir.path().join("gc.prom");
    let cmd = format!("touch {}", marker.display());
    let (code, json, stderr) = regsweep_json(&[
        "gc".as_ref(),
        cfg.as_os_str(),
        "-m".as_ref(),
        "--delete".as_ref(),
        "--online".as_ref(),
        "--grace".as_ref(),
        "0s".as_ref(),
        "--settle".as_ref(),
        "1s".as_ref(),
        "--restart-command".as_ref(),
        cmd.as_ref(),
        "--metrics-file".as_ref(),
        metrics.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // The metrics file says the same, as Prometheus parses it.
    let samples = support::metrics::parse_metrics(&metrics);
    let value = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(value("regsweep_online_settle_passes_total"), 3.0);
    assert_eq!(value("regsweep_online_restored_objects_total"), 0.0);
    assert_eq!(value("regsweep_online_narrowed_repositories"), 0.0);
    assert!(marker.exists(), "the restart command ran");
    assert_eq!(json["online"]["restart"], "ran");
    assert_eq!(
        json["online"]["settle_passes"].as_u64(),
        Some(3),
        "two passes, then one after the restart"
    );
    // Nothing was deleted: what went is in the trash, and the run records its T0 and passes.
    let moved = json["deleted"]["trash"]["moved"].as_u64().unwrap();
    assert!(moved > 0);
    let run = json["online"]["trash_run"].as_str().unwrap();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join(format!("regsweep-trash/{run}/run.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["online"]["passes"].as_u64(), Some(3));
    assert!(record["online"]["t0_unix_nanos"].as_u64().unwrap() > 0);
}

/// Run E1 on S3 (moto, the registry's own s3 driver): with an `inmemory` cache, an image pushed
/// again after the sweep is acknowledged with no object written, since the cache vouches for what
/// went. An online run (given the command that restarts the registry) puts back what the new
/// revision and tag need, runs the restart after its passes, and the image pulls; a plain run
/// loses it.
#[test]
fn on_s3_a_push_through_a_stale_inmemory_cache_is_healed() {
    for online in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
        s3.create_bucket("reg");
        let cache = "  cache:\n    blobdescriptor: inmemory\n";
        let start = || Registry::start_s3_with(dir.path(), &s3, "reg", cache);
        let layout = dir.path().join("layout");
        let img = oci::single(&layout, &["s3-base", "s3-app"]);
        let src = format!("oci:{}:latest", layout.display());
        let mut reg = start();
        skopeo_copy(&src, &reg.image("app/img", "v1"), &[]);
        let keep = dir.path().join("keep");
        oci::single(&keep, &["s3-keep"]);
        skopeo_copy(
            &format!("oci:{}:latest", keep.display()),
            &reg.image("app/img", "keep"),
            &[],
        );
        reg.delete_manifest("app/img", &img.manifest);
        // S3 keeps whole seconds: what was written in T0's second is held back.
        std::thread::sleep(Duration::from_millis(1100));
        let config = dir.path().join("config.yml");
        let marker = dir.path().join("restart-asked");
        let mut gc = regsweep();
        gc.arg("gc")
            .arg(&config)
            .args(["-m", "--delete", "--grace", "0s", "--json"]);
        if online {
            gc.args(["--online", "--settle", "4s", "--restart-command"])
                .arg(format!("touch {}", marker.display()));
        } else {
            gc.arg("--force");
        }
        let gc = gc
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if online {
            // The sweep is over when the run's record says complete.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let records: Vec<String> = s3
                    .keys("reg")
                    .into_iter()
                    .filter(|k| k.ends_with("/run.json"))
                    .collect();
                let complete = records.iter().any(|k| {
                    let storage = s3.storage("reg");
                    let k = k.trim_start_matches("store/");
                    storage
                        .read(k, 1 << 16)
                        .is_ok_and(|b| String::from_utf8_lossy(&b).contains("\"complete\""))
                });
                if complete {
                    break;
                }
                assert!(Instant::now() < deadline, "the online run did not sweep");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let out = if online {
            // Pushed again while the cache still vouches for what went: acknowledged.
            skopeo_copy(&src, &reg.image("app/img", "v1"), &[]);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !marker.exists() {
                assert!(Instant::now() < deadline, "the restart command did not run");
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(reg);
            reg = start();
            gc.wait_with_output().unwrap()
        } else {
            let out = gc.wait_with_output().unwrap();
            skopeo_copy(&src, &reg.image("app/img", "v1"), &[]);
            drop(reg);
            reg = start();
            out
        };
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert!(
            out.status.success(),
            "online {online}: {}\n{summary:#}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            summary["deleted"]["blobs"].as_u64().unwrap() >= 3,
            "{summary:#}"
        );
        let dest = format!("oci:{}:pulled", dir.path().join("pulled").display());
        let pulled = try_skopeo_copy(&reg.image("app/img", "v1"), &dest, &[]);
        if online {
            assert_eq!(pulled, Ok(()), "{summary:#}");
            let o = &summary["online"];
            assert_eq!(o["restart"], "ran", "{o:#}");
            assert_eq!(o["settle_passes"].as_u64(), Some(3), "{o:#}");
            // The manifest's data is what the cache made the registry skip writing (run E1).
            assert!(o["restored"]["objects"].as_u64().unwrap() >= 1, "{o:#}");
            assert!(
                o["restored"]["by_reason"]["revision link"]
                    .as_u64()
                    .unwrap()
                    >= 1
            );
            let data = format!(
                "docker/registry/v2/blobs/sha256/{}/{}/data",
                &img.manifest[7..9],
                &img.manifest[7..]
            );
            let back = s3.storage("reg").read(&data, 1 << 20);
            let keys: Vec<String> = s3
                .keys("reg")
                .into_iter()
                .filter(|k| k.contains("blobs"))
                .collect();
            assert!(
                back.is_ok(),
                "the manifest's data is back: {data}: {back:?}\n{keys:#?}"
            );
        } else {
            assert!(
                pulled.is_err(),
                "a plain run must lose the image here (run E1)"
            );
        }
    }
}

/// What a load worker last did to one repository.
#[derive(Clone, Debug)]
enum Last {
    Pushed { image: usize },
    Untagged,
}

/// Whether `repo:v` serves manifest `digest` and every blob it (and its children) names, through
/// the registry's API: what a pull reads, without writing anything.
fn serves(port: u16, repo: &str, digest: &str) -> bool {
    let get = |path: &str, accept: &str| {
        support::registry::http_to(port, "GET", path, &[("Accept", accept)], &[]).ok()
    };
    let accept =
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
    let Some(r) = get(&format!("/v2/{repo}/manifests/v"), accept) else {
        return false;
    };
    if r.status != 200 || oci::sha256(&r.body) != digest {
        return false;
    }
    let m: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let mut blobs: Vec<String> = Vec::new();
    for d in m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&m["config"]])
    {
        if let Some(d) = d["digest"].as_str() {
            blobs.push(d.to_owned());
        }
    }
    blobs.iter().all(|d| {
        support::registry::http_to(port, "HEAD", &format!("/v2/{repo}/blobs/{d}"), &[], &[])
            .is_ok_and(|r| r.status == 200)
    })
}

/// The bounded load test: pushers re-push and untag images whose content is old garbage in the
/// store (one push in four copies from another repository: a mount), the registry's opens and
/// stats slowed by strace, `gc -m --delete --online` back to back. Then one heal and a restart:
/// every tag whose last push was acknowledged pulls. Failed pushes are counted and printed, as is
/// the transient window (acknowledged → served). `REGSWEEP_ONLINE_LOAD_SECONDS` (default 40) sets
/// how long the load runs (BENCHMARKS.md's figures come from a longer run).
#[test]
fn under_load_no_acknowledged_tag_is_lost() {
    let seconds: u64 = std::env::var("REGSWEEP_ONLINE_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    const WORKERS: usize = 3;
    const REPOS: usize = 2;
    const IMAGES: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let layouts: Vec<(String, String)> = (0..IMAGES)
        .map(|k| {
            let path = dir.path().join(format!("img{k}"));
            let img = oci::single(
                &path,
                &["load-base", &format!("load-{k}-a"), &format!("load-{k}-b")],
            );
            (format!("oci:{}:latest", path.display()), img.manifest)
        })
        .collect();
    let repo = |w: usize, j: usize| format!("w{w}/t{j}");
    let root = dir.path().join("root");
    {
        let reg = Registry::start_held(dir.path(), "", "", &[]);
        for w in 0..WORKERS {
            for j in 0..REPOS {
                let (src, digest) = &layouts[(w + j) % IMAGES];
                skopeo_copy(src, &reg.image(&repo(w, j), "v"), &[]);
                reg.delete_manifest(&repo(w, j), digest);
            }
        }
    }
    age_everything(&root, Duration::from_secs(3 * 3600));
    let latency: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=openat,newfstatat",
        "-e",
        "inject=openat,newfstatat:delay_enter=10000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let reg = Registry::start_held(dir.path(), "", "", &latency);
    let port = reg.port;
    let config = dir.path().join("config.yml");
    let end = Instant::now() + Duration::from_secs(seconds);
    let lasts: Vec<std::sync::Mutex<Vec<Option<Last>>>> = (0..WORKERS)
        .map(|_| std::sync::Mutex::new(vec![None; REPOS]))
        .collect();
    let windows = std::sync::Mutex::new(Vec::<Duration>::new());
    let (pushed, failed, untagged) = (
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    );
    let mut runs: Vec<(i32, serde_json::Value)> = Vec::new();
    std::thread::scope(|scope| {
        for w in 0..WORKERS {
            let (lasts, windows, layouts) = (&lasts, &windows, &layouts);
            let (pushed, failed, untagged) = (&pushed, &failed, &untagged);
            scope.spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1);
                let mut next = |n: u64| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % n
                };
                let image = |port: u16, r: &str| format!("docker://127.0.0.1:{port}/{r}:v");
                for _ in 0..400 {
                    if Instant::now() > end {
                        break;
                    }
                    let j = next(REPOS as u64) as usize;
                    let last = lasts[w].lock().unwrap()[j].clone();
                    if let (Some(Last::Pushed { image: k, .. }), 0) = (&last, next(2)) {
                        let r = support::registry::http_to(
                            port,
                            "DELETE",
                            &format!("/v2/{}/manifests/{}", repo(w, j), layouts[*k].1),
                            &[],
                            &[],
                        );
                        if r.is_ok_and(|r| r.status == 202) {
                            lasts[w].lock().unwrap()[j] = Some(Last::Untagged);
                            untagged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        continue;
                    }
                    let k = next(IMAGES as u64) as usize;
                    // One push in four copies from another worker's repository (a mount) when
                    // that one serves the same image.
                    let from = (next(4) == 0).then(|| {
                        let other = (w + 1) % WORKERS;
                        let l = lasts[other].lock().unwrap()[0].clone();
                        matches!(l, Some(Last::Pushed { image, .. }) if image == k)
                            .then(|| image(port, &repo(other, 0)))
                    });
                    let src = from.flatten().unwrap_or_else(|| layouts[k].0.clone());
                    let out = Command::new("timeout")
                        .args(["60", "skopeo", "--insecure-policy", "copy", "--quiet"])
                        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
                        .arg(&src)
                        .arg(image(port, &repo(w, j)))
                        .output()
                        .unwrap();
                    if out.status.success() {
                        let at = Instant::now();
                        lasts[w].lock().unwrap()[j] = Some(Last::Pushed { image: k });
                        pushed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // The transient window: until the registry serves it whole, while this
                        // worker leaves the repository alone (bounded).
                        let deadline = at + Duration::from_secs(60);
                        while !serves(port, &repo(w, j), &layouts[k].1) {
                            if Instant::now() > deadline {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        windows.lock().unwrap().push(at.elapsed());
                    } else {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        eprintln!(
                            "push failed (reported, not hidden): {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        );
                    }
                }
            });
        }
        // The collector, back to back while the load runs (a breath between runs that moved
        // nothing, which have no settle).
        for _ in 0..200 {
            if Instant::now() > end {
                break;
            }
            let out = regsweep()
                .arg("gc")
                .arg(&config)
                .args([
                    "-m", "--delete", "--online", "--grace", "10s", "--settle", "3s",
                ])
                .arg("--json")
                .output()
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if json["online"].is_null() {
                std::thread::sleep(Duration::from_millis(500));
            }
            if out.status.code() != Some(0) {
                eprintln!(
                    "gc exited {:?}: {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .filter(|l| !l.starts_with('['))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            runs.push((out.status.code().unwrap_or(-1), json));
        }
    });
    drop(reg);
    // A final heal, then the registry restarted as a fresh process.
    let heal = regsweep()
        .arg("trash")
        .arg("heal")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        heal.status.success(),
        "{}",
        String::from_utf8_lossy(&heal.stderr)
    );
    let reg = Registry::start_held(dir.path(), "", "", &[]);
    let mut unpullable = Vec::new();
    let mut acknowledged = 0;
    for (w, lasts) in lasts.iter().enumerate() {
        for (j, last) in lasts.lock().unwrap().iter().enumerate() {
            if let Some(Last::Pushed { image, .. }) = last {
                acknowledged += 1;
                let dest = format!("oci:{}:w{w}t{j}", dir.path().join("pulled").display());
                if try_skopeo_copy(&reg.image(&repo(w, j), "v"), &dest, &[]).is_err()
                    || !serves(reg.port, &repo(w, j), &layouts[*image].1)
                {
                    unpullable.push(repo(w, j));
                }
            }
        }
    }
    let restored: u64 = (runs.iter())
        .filter_map(|(_, j)| j["online"]["restored"]["objects"].as_u64())
        .sum();
    let moved: u64 = (runs.iter())
        .filter_map(|(_, j)| j["deleted"]["trash"]["moved"].as_u64())
        .sum();
    let mut w = windows.into_inner().unwrap();
    w.sort();
    let pct = |p: usize| {
        w.get((w.len() * p / 100).min(w.len().saturating_sub(1)))
            .copied()
    };
    eprintln!(
        "online load, {seconds}s, {WORKERS} pushers: {} pushes acknowledged, {} failed, {} untags; \
         {} gc runs (exit codes {:?}), {moved} objects moved, {restored} put back; \
         {acknowledged} tags acknowledged at the end, {} unpullable; window acknowledged→served: \
         median {:?}, p95 {:?}, max {:?}",
        pushed.into_inner(),
        failed.into_inner(),
        untagged.into_inner(),
        runs.len(),
        runs.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        unpullable.len(),
        pct(50),
        pct(95),
        w.last()
    );
    assert!(unpullable.is_empty(), "tags lost: {unpullable:?}");
    assert!(runs.len() >= 2, "the collector ran back to back");
    assert!(
        runs.iter().all(|(c, _)| [0, 1].contains(c)),
        "every collector run ran: {:?}",
        runs.iter()
            .map(|(c, j)| (c, j["online"].clone()))
            .collect::<Vec<_>>()
    );
    assert!(moved > 0, "the collector moved garbage under load");
    let audit = regsweep().arg("audit").arg(&config).output().unwrap();
    assert!(
        audit.status.success(),
        "audit after the load: {}",
        String::from_utf8_lossy(&audit.stdout)
    );
}
