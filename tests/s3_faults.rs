//! S3 faults: with a fault-injecting proxy between regsweep and the loopback S3 server (throttling,
//! 500s, connections dropped after the request took effect, slow responses), a dry run plans exactly
//! what it plans without faults, and `--delete` either completes or stops with a clear error and
//! converges when run again; nothing a tag needs is ever deleted. The same proxy holds chosen
//! requests so that a test can change the bucket while a run is in flight (a tag moved between the
//! walk and the sweep, listings in pages of three), or kill the run while its DeleteObjects is on the
//! wire.

mod support;

use regsweep::storage::Multipart;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::proxy::{Hold, Proxy};
use support::s3::S3Server;
use support::scenario::build_store_on_s3;
use support::{PlanSets, assert_no_link_points_at_something_gone, regsweep, regsweep_plan};

#[test]
fn through_a_faulty_connection_plans_match_and_deletes_converge_without_losing_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, s) = build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    let direct = s3.endpoint();
    let proxy = Proxy::start(dir.path(), &direct);
    let via = proxy.endpoint();
    let plan = |endpoint: &str, extra: &[&str]| {
        let mut args = vec!["--endpoint-url", endpoint, "--grace", "0s", "-m"];
        args.extend_from_slice(extra);
        regsweep_plan(url, &args)
    };

    // A dry run through the faults plans exactly what a dry run without them plans.
    let (clean, _) = plan(&direct, &[]);
    assert!(!clean.blobs.is_empty());
    let (faulty, summary) = plan(&via, &[]);
    assert_eq!(faulty, clean);
    assert!(
        summary["s3"]["retries"].as_u64().unwrap() > 0,
        "the proxy should have made the client retry: {summary}"
    );

    // --delete through the faults, as many runs as it takes (bounded): each either completes or
    // stops with an error naming what failed; none loses a tag.
    let mut runs = 0;
    loop {
        runs += 1;
        let out = regsweep()
            .args([
                "gc",
                "-m",
                "--delete",
                "--grace",
                "0s",
                "--json",
                "--endpoint-url",
                &via,
            ])
            .arg(url)
            .output()
            .unwrap();
        let code = out.status.code().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(code == 0 || code == 1 || code == 2, "{stderr}");
        if code != 0 {
            let summary: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            assert!(
                !stderr.is_empty()
                    || summary["deleted"]["failures"]
                        .as_array()
                        .is_some_and(|f| !f.is_empty()),
                "a run that did not finish says why"
            );
        }
        assert_no_link_points_at_something_gone(&s3.keys("registry"));
        s.pull_every_tag(&dir.path().join(format!("pull-{runs}")));
        if code == 0 {
            break;
        }
        assert!(runs < 5, "no convergence after {runs} runs: {stderr}");
    }
    let (left, _) = plan(&direct, &[]);
    assert_eq!(left, PlanSets::default(), "nothing left to collect");

    let stats = proxy.stats();
    for kind in ["throttled", "server_error", "dropped", "slow"] {
        assert!(
            stats[kind].as_u64().unwrap_or(0) > 0,
            "no {kind} fault was injected: {stats}"
        );
    }
    eprintln!("faults injected over one dry run and {runs} delete run(s): {stats}");
}

/// The first page (no continuation token) of a listing of the repositories folder's top level: a
/// deleting run makes it once for its analysis and once more just before it deletes.
const SECOND_REPOSITORIES_LISTING: &str = "^GET (?!.*continuation-token)(?=.*list-type=2)(?=.*delimiter=/)(?=.*prefix=store/docker/registry/v2/repositories/(&|$))";

/// Moves team/app:v1 back to the image it was first pushed as (PUT of that manifest through the
/// registry).
fn move_team_app_v1(dir: &Path, s: &support::scenario::Store) {
    let a = &s.moved_from.manifest;
    let bytes = std::fs::read(
        dir.join("layouts/a/blobs/sha256")
            .join(&a["sha256:".len()..]),
    )
    .unwrap();
    let r = s.registry.http(
        "PUT",
        "/v2/team/app/manifests/v1",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &bytes,
    );
    assert_eq!(r.status, 201, "tag moved through the registry");
}

/// `gc -m --delete` through `endpoint`. With `--break-lock`: a run killed before it leaves its S3
/// lock behind, and the next run (on this host, the dead pid's) breaks it as the operator would.
fn gc_via(endpoint: &str, url: &Path) -> Command {
    let mut cmd = regsweep();
    cmd.args([
        "gc",
        "-m",
        "--delete",
        "--break-lock",
        "--grace",
        "0s",
        "--json",
        "--endpoint-url",
        endpoint,
    ])
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_tag_moved_between_the_walk_and_the_sweep_stops_the_sweep_and_the_next_run_converges() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, s) = build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    let hold = Hold::new(dir.path());
    // The second listing of the repositories folder is the check gc makes after its analysis, just
    // before it deletes: hold its first page, and move a tag meanwhile. Listings come in pages of
    // three.
    let proxy = Proxy::start_with(
        dir.path(),
        &s3.endpoint(),
        &[
            "--no-faults",
            "--page-size",
            "3",
            "--hold",
            SECOND_REPOSITORIES_LISTING,
            "--hold-from",
            "2",
            "--hold-dir",
            hold.dir(),
        ],
    );

    let before = s3.keys("registry");
    let mut child = gc_via(&proxy.endpoint(), url).spawn().unwrap();
    assert!(
        hold.wait(&mut child),
        "gc never listed the repositories again"
    );
    // team/app:v1 moves back to the image it was first pushed as, which the analysis found
    // untagged and planned for deletion.
    move_team_app_v1(dir.path(), &s);
    let moved = s3.keys("registry");
    hold.release();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("changed while it was analysed") && stderr.contains("team/app:v1"),
        "the refusal names the moved tag: {stderr}"
    );
    assert_eq!(s3.keys("registry"), moved, "nothing was deleted");
    assert!(moved.is_superset(&before));

    // Run again (no change this time): the moved tag is a root now, and everything pulls.
    let out = gc_via(&proxy.endpoint(), url).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_link_points_at_something_gone(&s3.keys("registry"));
    s.pull_every_tag(&dir.path().join("pulled"));
    let (left, _) = regsweep_plan(
        url,
        &["--endpoint-url", &s3.endpoint(), "--grace", "0s", "-m"],
    );
    assert_eq!(left, PlanSets::default(), "nothing left to collect");
    let stats = proxy.stats();
    assert_eq!(stats["held"], 1, "{stats}");
}

#[test]
fn killed_while_each_delete_batch_is_on_the_wire_the_bucket_stays_whole_and_runs_converge() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, s) = build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    let hold = Hold::new(dir.path());
    // Every DeleteObjects is held; the run that sent it is killed (SIGKILL) while it waits; then
    // the request is forwarded (it takes effect with nobody to hear the answer) or, every second
    // time, dropped (it never arrives). Listings come in pages of three, so the sweep makes many
    // small steps.
    let proxy = Proxy::start_with(
        dir.path(),
        &s3.endpoint(),
        &[
            "--no-faults",
            "--page-size",
            "3",
            "--hold",
            "^POST .*[?&]delete(=|&|$)",
            "--hold-count",
            "1000",
            "--drop-alternate",
            "--hold-dir",
            hold.dir(),
        ],
    );
    let (first_plan, _) = regsweep_plan(
        url,
        &["--endpoint-url", &s3.endpoint(), "--grace", "0s", "-m"],
    );
    assert!(!first_plan.blobs.is_empty());

    let mut kills = 0;
    let mut seen: Vec<BTreeSet<String>> = Vec::new();
    loop {
        let mut child = gc_via(&proxy.endpoint(), url).spawn().unwrap();
        if !hold.wait(&mut child) {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        hold.release();
        let keys = s3.keys("registry");
        assert_no_link_points_at_something_gone(&keys);
        s.pull_every_tag(&dir.path().join(format!("pull-{kills}")));
        seen.push(keys);
        assert!(kills < 40, "no convergence after {kills} killed runs");
    }
    let (left, _) = regsweep_plan(
        url,
        &["--endpoint-url", &s3.endpoint(), "--grace", "0s", "-m"],
    );
    assert_eq!(left, PlanSets::default(), "nothing left to collect");
    let stats = proxy.stats();
    eprintln!("killed {kills} runs mid-DeleteObjects: {stats}");
    assert!(kills >= 4, "the sweep took at least four batches: {kills}");
    assert!(stats["held_dropped"].as_u64().unwrap() >= 2, "{stats}");
    // The forwarded batches made progress: the bucket shrank across the kills.
    assert!(seen.windows(2).any(|w| w[1].len() < w[0].len()));
}

#[test]
fn a_listing_out_of_order_is_an_error_naming_the_prefix_and_nothing_is_planned_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _s) = build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    let proxy = Proxy::start_with(
        dir.path(),
        &s3.endpoint(),
        &["--no-faults", "--page-size", "3", "--disorder-pages"],
    );
    let before = s3.keys("registry");
    let out = gc_via(&proxy.endpoint(), url).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("out of order") && stderr.contains("came after"),
        "the error says the listing is out of order: {stderr}"
    );
    assert!(out.stdout.is_empty(), "no plan from a listing that moved");
    assert_eq!(s3.keys("registry"), before, "nothing was deleted");
}

#[test]
fn an_incomplete_multipart_upload_is_held_by_the_grace_window_and_aborted_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&dir.path().join("moto.log"));
    s3.create_bucket("registry");
    let key = "docker/registry/v2/repositories/r/_uploads/interrupted/data";
    let id = s3.abandon_multipart("registry", &format!("store/{key}"), 8192);
    let url = Path::new("s3://registry/store");
    // moto dates every upload to 2010; the proxy dates this one to when it started, as S3 would.
    let proxy = Proxy::start_with(
        dir.path(),
        &s3.endpoint(),
        &["--no-faults", "--initiated-now"],
    );
    let via = proxy.endpoint();
    let (held, summary) = regsweep_plan(url, &["--endpoint-url", &via, "--grace", "1h"]);
    assert!(
        held.multipart.is_empty(),
        "a fresh upload is held: {held:?}"
    );
    assert_eq!(summary["multipart_uploads"]["count"], 1, "{summary}");
    assert_eq!(summary["multipart_uploads"]["bytes"], 8192, "{summary}");
    assert_eq!(summary["multipart_uploads"]["eligible"], 0, "{summary}");

    // Initiated times have whole seconds: past the second it started in, a zero grace plans it.
    std::thread::sleep(Duration::from_millis(1500));
    let (due, summary) = regsweep_plan(url, &["--endpoint-url", &via, "--grace", "0s"]);
    let expected: BTreeSet<(String, String)> = [(key.to_owned(), id)].into();
    assert_eq!(due.multipart, expected);
    assert_eq!(summary["multipart_uploads"]["eligible_bytes"], 8192);

    let out = regsweep()
        .args([
            "gc",
            "--delete",
            "--grace",
            "1h",
            "--json",
            "--endpoint-url",
            &via,
        ])
        .arg(url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        s3.storage("registry").multipart_uploads().unwrap().len(),
        1,
        "held, not aborted"
    );
    let out = regsweep()
        .args([
            "gc",
            "--delete",
            "--grace",
            "0s",
            "--json",
            "--endpoint-url",
            &via,
        ])
        .arg(url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        s3.storage("registry")
            .multipart_uploads()
            .unwrap()
            .is_empty(),
        "aborted"
    );
}

#[test]
fn a_tag_pushed_while_prune_tags_runs_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, s) = build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    let hold = Hold::new(dir.path());
    let proxy = Proxy::start_with(
        dir.path(),
        &s3.endpoint(),
        &[
            "--no-faults",
            "--hold",
            SECOND_REPOSITORIES_LISTING,
            "--hold-from",
            "2",
            "--hold-dir",
            hold.dir(),
        ],
    );
    let prune = || {
        let mut cmd = regsweep();
        cmd.args([
            "prune-tags",
            "--repo",
            "team/app",
            "--all-tags",
            "--delete",
            "--json",
        ])
        .args(["--endpoint-url", &proxy.endpoint()])
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };
    // team/app:v1 is the only tag of team/app, and --repo alone removes every tag it matches; it is
    // pushed again while the run is between its plan and its deletes.
    let mut child = prune().spawn().unwrap();
    assert!(
        hold.wait(&mut child),
        "prune-tags never listed the repositories again"
    );
    move_team_app_v1(dir.path(), &s);
    let before = s3.keys("registry");
    hold.release();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tags changed") && stderr.contains("team/app:v1"),
        "the refusal names the tag: {stderr}"
    );
    assert_eq!(s3.keys("registry"), before, "nothing was deleted");
    s.pull_every_tag(&dir.path().join("pulled"));

    // With nothing pushed meanwhile, the next run removes the tag.
    let out = prune().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let current = "docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link";
    assert!(before.contains(current));
    assert!(!s3.keys("registry").contains(current));
}

#[test]
fn deletes_pass_a_server_that_requires_content_md5_and_knows_no_flexible_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, s) = build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    let proxy = Proxy::start_with(dir.path(), &s3.endpoint(), &["--strict-checksums"]);
    // The proxy is as strict as those servers: a DeleteObjects without Content-MD5 is refused.
    let body = b"<Delete><Object><Key>store/nothing</Key></Object></Delete>";
    let refused = support::registry::http_to(
        proxy.port,
        "POST",
        "/registry?delete",
        &[("Content-Type", "application/xml")],
        body,
    )
    .unwrap();
    assert_eq!(refused.status, 400);
    assert!(String::from_utf8_lossy(&refused.body).contains("Content-MD5"));

    let (planned, _) = regsweep_plan(
        url,
        &["--endpoint-url", &s3.endpoint(), "--grace", "0s", "-m"],
    );
    assert!(!planned.blobs.is_empty());
    let out = gc_via(&proxy.endpoint(), url).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["deleted"]["blobs"], planned.blobs.len() as u64);
    assert_eq!(summary["deleted"]["failures"], serde_json::json!([]));
    let stats = proxy.stats();
    assert!(stats["md5_checked"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["rejected"], 1, "only the test's own request: {stats}");
    let (after, _) = regsweep_plan(
        url,
        &["--endpoint-url", &s3.endpoint(), "--grace", "0s", "-m"],
    );
    assert_eq!(after, PlanSets::default());
    s.pull_every_tag(dir.path());
}

#[test]
fn etags_that_are_not_md5s_make_links_be_read_and_the_plan_stays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _s) = build_store_on_s3(dir.path());
    let url = Path::new("s3://registry/store");
    // As under SSE-KMS or SSE-C, or after a multipart upload: no ETag is the MD5 of its object.
    let proxy = Proxy::start_with(dir.path(), &s3.endpoint(), &["--opaque-etags"]);
    // Without the manifest cache: the GETs are counted as a first run makes them.
    let plan = |endpoint: &str| {
        regsweep_plan(
            url,
            &[
                "--endpoint-url",
                endpoint,
                "--grace",
                "0s",
                "-m",
                "--no-cache",
            ],
        )
    };
    let (direct, direct_summary) = plan(&s3.endpoint());
    let (opaque, summary) = plan(&proxy.endpoint());
    assert!(!direct.blobs.is_empty());
    assert_eq!(opaque, direct);
    assert!(
        summary["problems"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    // Each revision link and each tag's current link, vouched for by its ETag before, is now
    // read: one GET each.
    let gets = |s: &serde_json::Value| s["s3"]["get_requests"].as_u64().unwrap();
    assert_eq!(
        gets(&summary) - gets(&direct_summary),
        summary["manifests"]["total"].as_u64().unwrap() + summary["tags"].as_u64().unwrap(),
        "{summary}\n{direct_summary}"
    );
    // And the tags point where reading them says: the plan headers' fingerprints of every tag and
    // its target agree.
    let tags = |endpoint: &str| {
        let plan = dir.path().join("tags.ndjson");
        support::run(
            regsweep()
                .args([
                    "gc",
                    "s3://registry/store",
                    "--endpoint-url",
                    endpoint,
                    "--plan",
                ])
                .arg(&plan),
        );
        let text = std::fs::read_to_string(&plan).unwrap();
        let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        (header["tags"].clone(), header["tags_fingerprint"].clone())
    };
    let (read, listed) = (tags(&proxy.endpoint()), tags(&s3.endpoint()));
    assert!(read.0.as_u64().unwrap() > 0);
    assert_eq!(
        listed, read,
        "tags resolved from the listing equal tags read"
    );
}
