//! S3 faults: with a fault-injecting proxy between regsweep and the loopback S3 server (throttling,
//! 500s, connections dropped after the request took effect, slow responses), a dry run plans exactly
//! what it plans without faults, and `--delete` either completes or stops with a clear error and
//! converges when run again; nothing a tag needs is ever deleted.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::registry::{Registry, free_port};
use support::s3::S3Server;
use support::scenario::build_store;
use support::{PlanSets, assert_no_link_points_at_something_gone, regsweep, regsweep_plan};

struct Proxy {
    port: u16,
    stats: std::path::PathBuf,
    child: Child,
}

impl Proxy {
    fn start(dir: &Path, upstream: &str) -> Proxy {
        let port = free_port();
        let stats = dir.join("faults.json");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_proxy.py");
        let child = Command::new("python3")
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--upstream",
                upstream,
                "--stats",
            ])
            .arg(&stats)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the fault proxy did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Proxy { port, stats, child }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.stats).unwrap_or_default())
            .unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn through_a_faulty_connection_plans_match_and_deletes_converge_without_losing_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&dir.path().join("moto.log"));
    s3.create_bucket("registry");
    let s = build_store(dir.path(), Registry::start_s3(dir.path(), &s3, "registry"));
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
        let pulls = dir.path().join(format!("pull-{runs}"));
        std::fs::create_dir_all(&pulls).unwrap();
        s.pull_every_tag(&pulls);
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
