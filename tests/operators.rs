//! What an operator runs on a schedule: the metrics file (parsed by Python's prometheus_client, its
//! figures equal to the run's --json), progress on a stderr that is not a terminal (phase lines, a
//! heartbeat, the counts on SIGUSR1), a graceful stop on SIGTERM mid-sweep and an immediate one on
//! the second signal, completions and the man page, and the scheduling examples of `examples/` run
//! as written against a store.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::metrics::{Sample, parse_metrics};
use support::proxy::{Hold, Proxy};
use support::s3::S3Server;
use support::scenario::build_store_on_s3;
use support::{assert_no_link_points_at_something_gone, copy_of_demo, regsweep, run};

/// The JSON value a sample's HELP cites (the first `path` in backquotes), as a number: `a.b` walks
/// objects, `<kind>` is the sample's `kind` label, `repositories[].f` is the field of the
/// repository the `repository` label names, `problems` with a `kind` label counts the problems of
/// that kind; an array counts its elements, a boolean is 0 or 1, and what is absent is 0 (nothing
/// deleted in a dry run).
fn cited(json: &Value, s: &Sample) -> Option<f64> {
    let start = s.help.find('`')? + 1;
    let end = start + s.help[start..].find('`')?;
    let mut path = s.help[start..end].to_owned();
    if let Some(kind) = s.labels.get("kind") {
        path = path.replace("<kind>", kind);
    }
    let mut v = json;
    if let Some(field) = path.strip_prefix("repositories[].") {
        let name = &s.labels["repository"];
        let repo = json["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} is in the JSON report"));
        return Some(repo[field].as_f64().unwrap());
    }
    for part in path.split('.') {
        v = &v[part];
    }
    Some(match v {
        Value::Array(items) if path == "problems" && s.labels.contains_key("kind") => items
            .iter()
            .filter(|p| p["kind"] == s.labels["kind"].as_str())
            .count()
            as f64,
        Value::Array(items) => items.len() as f64,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Null => 0.0,
        Value::Number(n) => n.as_f64().unwrap(),
        other => panic!("{} cites {path}, which is {other}", s.family),
    })
}

/// Asserts that every sample carries the run's labels, follows the naming conventions and equals
/// the figure of the JSON report that its HELP cites, and that the run's own figures agree with its
/// exit status; returns the samples and how many were compared with the JSON.
fn assert_metrics_are_the_json(
    path: &Path,
    json: &Value,
    command: &str,
    storage: &str,
    exit: i32,
) -> (Vec<Sample>, usize) {
    let samples = parse_metrics(path);
    let mut compared = 0;
    for s in &samples {
        assert_eq!(s.labels["command"], command, "{s:?}");
        assert_eq!(s.labels["storage"], storage, "{s:?}");
        assert!(s.name.starts_with("regsweep_"), "{s:?}");
        if s.kind == "counter" {
            assert!(s.name.ends_with("_total"), "a counter's sample: {s:?}");
        }
        if let Some(want) = cited(json, s) {
            assert_eq!(s.value, want, "{} {:?} against the JSON", s.name, s.labels);
            compared += 1;
        }
    }
    let value = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} in {}", path.display()))
            .value
    };
    assert_eq!(value("regsweep_run_exit_status"), f64::from(exit));
    let (start, end) = (
        value("regsweep_run_start_time_seconds"),
        value("regsweep_run_end_time_seconds"),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(start <= end && end <= now + 1.0 && now - start < 3600.0);
    assert!((value("regsweep_run_duration_seconds") - (end - start)).abs() < 1e-3);
    if exit == 0 {
        assert_eq!(value("regsweep_last_success_time_seconds"), end);
    }
    (samples, compared)
}

/// Runs regsweep with `args` plus `--json --metrics-file FILE`: the exit code and the report.
fn with_metrics(args: &[&str], metrics: &Path) -> (i32, Value) {
    let out = regsweep()
        .args(args)
        .arg("--json")
        .arg("--metrics-file")
        .arg(metrics)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: no JSON report ({e}): {stderr}"));
    (out.status.code().unwrap(), json)
}

#[test]
fn the_metrics_file_parses_as_prometheus_text_and_its_figures_are_the_json_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = copy_of_demo(dir.path());
    let storage = config.to_str().unwrap();
    let prom = |name: &str| dir.path().join(name);

    // gc, a dry run: every figure equals the report's.
    let (code, json) = with_metrics(&["gc", storage, "-m", "--grace", "0s"], &prom("gc.prom"));
    assert_eq!(code, 0);
    let (samples, compared) =
        assert_metrics_are_the_json(&prom("gc.prom"), &json, "gc", storage, 0);
    assert!(compared >= 40, "only {compared} figures compared");
    let blobs_eligible = samples
        .iter()
        .find(|s| s.name == "regsweep_blobs_eligible")
        .unwrap();
    assert!(blobs_eligible.value > 0.0, "the demo store holds garbage");
    let kinds: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "regsweep_problems")
        .map(|s| s.labels["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.len(),
        regsweep::model::problem::ProblemKind::ALL.len(),
        "every problem kind, 0 where none: {kinds:?}"
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "regsweep_deleted_blobs_total" && s.value == 0.0),
        "a dry run deletes nothing and says so"
    );

    // du, audit, prune-tags (a dry run).
    let (code, json) = with_metrics(&["du", storage], &prom("du.prom"));
    assert_eq!(code, 0);
    let (samples, compared) =
        assert_metrics_are_the_json(&prom("du.prom"), &json, "du", storage, 0);
    assert!(compared >= 10, "only {compared}");
    assert!(
        samples
            .iter()
            .any(|s| s.name == "regsweep_repository_exclusive_bytes")
    );
    let (code, json) = with_metrics(&["audit", storage], &prom("audit.prom"));
    let (_, compared) =
        assert_metrics_are_the_json(&prom("audit.prom"), &json, "audit", storage, code);
    assert!(compared >= 15, "only {compared}");
    let prune = [
        "prune-tags",
        storage,
        "--repo",
        "team/**",
        "--all-tags",
        "--keep-tag",
        r"^v\d+$",
    ];
    let (code, json) = with_metrics(&prune, &prom("prune.prom"));
    assert_eq!(code, 0);
    let (_, compared) =
        assert_metrics_are_the_json(&prom("prune.prom"), &json, "prune_tags", storage, 0);
    assert!(compared >= 8, "only {compared}");

    // gc --delete: the deletes are counted as the report counts them.
    let (code, json) = with_metrics(
        &["gc", storage, "-m", "--grace", "0s", "--delete"],
        &prom("gc.prom"),
    );
    assert_eq!(code, 0);
    let (samples, _) = assert_metrics_are_the_json(&prom("gc.prom"), &json, "gc", storage, 0);
    let deleted = samples
        .iter()
        .find(|s| s.name == "regsweep_deleted_blobs_total")
        .unwrap();
    assert!(deleted.value > 0.0 && deleted.value == json["deleted"]["blobs"].as_f64().unwrap());
    let succeeded = samples
        .iter()
        .find(|s| s.name == "regsweep_last_success_time_seconds")
        .unwrap()
        .value;

    // A run that fails still writes its file: exit status 2, and the last success carried over.
    let out = regsweep()
        .args(["gc", storage, "--plan"])
        .arg(dir.path().join("no/such/folder/plan.ndjson"))
        .arg("--metrics-file")
        .arg(prom("gc.prom"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let samples = parse_metrics(&prom("gc.prom"));
    let value = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.value);
    assert_eq!(value("regsweep_run_exit_status"), Some(2.0));
    assert_eq!(value("regsweep_last_success_time_seconds"), Some(succeeded));
    assert_eq!(
        value("regsweep_blobs"),
        None,
        "no figures of a run that did not run"
    );

    // An unwritable metrics path fails before any work, naming it; no temporary file is left.
    let out = regsweep()
        .args(["gc", storage, "--metrics-file"])
        .arg(dir.path().join("no/such/folder/x.prom"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("cannot write the metrics file")
            && stderr.contains("no/such/folder/x.prom"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Reads a file that a running process writes to, until `found` holds for its text or `child`
/// exits (then the text as it is); at most 60 s.
fn wait_for(file: &Path, child: &mut Child, found: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if found(&text) || child.try_wait().unwrap().is_some() {
            return text;
        }
        assert!(Instant::now() < deadline, "not found in 60 s: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines that give the counts (heartbeats and SIGUSR1's): `… ; so far N objects listed, …`.
fn count_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("; so far ") && l.contains(" objects listed"))
        .collect()
}

/// A regsweep run on the bucket through `endpoint`, stderr to `err`, stdout piped.
fn spawn(endpoint: &str, args: &[&str], err: &Path) -> Child {
    regsweep()
        .args(args)
        .args(["--endpoint-url", endpoint, "s3://registry/store", "--json"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    let pid = child.id().to_string();
    let name = match sig {
        libc::SIGTERM => "-TERM",
        libc::SIGUSR1 => "-USR1",
        _ => panic!("signal {sig}"),
    };
    run(Command::new("kill").args([name, &pid]));
}

/// The first manifest read (blob data) of a run.
const MANIFEST_READ: &str = "^GET .*/blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}/data";

/// A proxy to `s3` that holds the first manifest read it forwards, with its files under `dir`.
fn holding_the_first_manifest_read(dir: &Path, s3: &S3Server) -> (Proxy, Hold) {
    let hold = Hold::new(dir);
    let proxy = Proxy::start_with(
        dir,
        &s3.endpoint(),
        &[
            "--no-faults",
            "--hold",
            MANIFEST_READ,
            "--hold-dir",
            hold.dir(),
        ],
    );
    (proxy, hold)
}

#[test]
fn with_stderr_in_a_file_a_run_prints_phases_and_heartbeats_and_sigusr1_prints_the_counts_at_once()
{
    let dir = tempfile::tempdir().unwrap();
    let (s3, _store) = build_store_on_s3(dir.path());

    // A heartbeat every 100 ms, while the first manifest read is held.
    let (proxy, hold) = holding_the_first_manifest_read(&dir.path().join("a"), &s3);
    let err = dir.path().join("heartbeat.err");
    let mut child = spawn(
        &proxy.endpoint(),
        // Without the manifest cache, so that the run reads a manifest to hold.
        &[
            "gc",
            "-m",
            "--grace",
            "0s",
            "--progress-interval",
            "100ms",
            "--no-cache",
        ],
        &err,
    );
    assert!(hold.wait(&mut child), "no manifest was read");
    let in_manifests = |t: &str| -> usize {
        count_lines(t)
            .iter()
            .filter(|l| l.contains("reading manifests"))
            .count()
    };
    let text = wait_for(&err, &mut child, |t| in_manifests(t) >= 3);
    hold.release();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.ends_with("] listing blobs and repositories")),
        "a line for the phase: {text}"
    );
    assert!(
        in_manifests(&text) >= 3,
        "heartbeats while the read was held: {text}"
    );
    for l in count_lines(&text) {
        if l.contains("reading manifests") {
            assert!(
                l.contains(" of ") && l.contains(" manifests ("),
                "with its total: {l}"
            );
        }
    }
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["blobs"]["eligible"].as_u64().unwrap() > 0);

    // --quiet: nothing on stderr until SIGUSR1 asks, then the counts at once.
    let (proxy, hold) = holding_the_first_manifest_read(&dir.path().join("b"), &s3);
    let err = dir.path().join("usr1.err");
    let mut child = spawn(
        &proxy.endpoint(),
        &["gc", "-m", "--grace", "0s", "--quiet", "--no-cache"],
        &err,
    );
    assert!(hold.wait(&mut child), "no manifest was read");
    assert_eq!(
        std::fs::read_to_string(&err).unwrap(),
        "",
        "--quiet is quiet"
    );
    signal(&child, libc::SIGUSR1);
    let text = wait_for(&err, &mut child, |t| !count_lines(t).is_empty());
    hold.release();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "SIGUSR1 does not end the run: {text}"
    );
    let lines = count_lines(&text);
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("reading manifests"), "{text}");
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["blobs"], plan["blobs"], "the same plan");
    assert_eq!(again["manifests"], plan["manifests"]);
}

#[test]
fn sigterm_mid_sweep_stops_after_the_batch_in_flight_and_a_second_signal_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, store) = build_store_on_s3(dir.path());
    let hold = Hold::new(dir.path());
    // The first two DeleteObjects are held: one for each signalled run.
    let proxy = Proxy::start_with(
        dir.path(),
        &s3.endpoint(),
        &[
            "--no-faults",
            "--hold",
            "^POST .*[?&]delete(=|&|$)",
            "--hold-count",
            "2",
            "--hold-dir",
            hold.dir(),
        ],
    );
    let gc = ["gc", "-m", "--delete", "--grace", "0s", "--break-lock"];
    let stopping = |t: &str| t.contains("SIGTERM: stopping after the work in flight");

    // Two signals: the second ends the run at once, while its delete is still on the wire.
    let err = dir.path().join("twice.err");
    let mut child = spawn(&proxy.endpoint(), &gc, &err);
    assert!(hold.wait(&mut child), "the sweep never started");
    signal(&child, libc::SIGTERM);
    let text = wait_for(&err, &mut child, stopping);
    assert!(stopping(&text), "{text}");
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "ended at once");
    hold.release();
    assert_no_link_points_at_something_gone(&s3.keys("registry"));

    // One signal: the batch in flight finishes, nothing more starts, exit 1 with the report.
    let before = s3.keys("registry");
    let err = dir.path().join("once.err");
    let prom = dir.path().join("gc.prom");
    let mut args = gc.to_vec();
    args.extend(["--metrics-file", prom.to_str().unwrap()]);
    let mut child = spawn(&proxy.endpoint(), &args, &err);
    assert!(hold.wait(&mut child), "the sweep never started");
    signal(&child, libc::SIGTERM);
    let text = wait_for(&err, &mut child, stopping);
    hold.release();
    let out = child.wait_with_output().unwrap();
    let text = format!("{text}{}", std::fs::read_to_string(&err).unwrap());
    assert_eq!(out.status.code(), Some(1), "{text}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let deleted = &report["deleted"];
    assert_eq!(deleted["stopped_by"], "SIGTERM", "{report}");
    assert!(deleted["not_attempted"].as_u64().unwrap() > 0, "{deleted}");
    let done = ["manifests", "tag_index_entries", "layer_links", "blobs"]
        .iter()
        .map(|k| deleted[k].as_u64().unwrap())
        .sum::<u64>();
    assert!(done > 0, "the batch in flight was finished: {deleted}");
    let after = s3.keys("registry");
    assert!(after.len() < before.len() && after.is_subset(&before));
    assert_no_link_points_at_something_gone(&after);
    store.pull_every_tag(&dir.path().join("pulled"));
    assert_metrics_are_the_json(&prom, &report, "gc", "s3://registry/store", 1);

    // The next run finishes the plan.
    let out = spawn(&proxy.endpoint(), &gc, &dir.path().join("last.err"))
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let (left, _) = support::regsweep_plan(
        Path::new("s3://registry/store"),
        &["--endpoint-url", &s3.endpoint(), "--grace", "0s", "-m"],
    );
    assert_eq!(
        left,
        support::PlanSets::default(),
        "nothing left to collect"
    );
    store.pull_every_tag(&dir.path().join("pulled-again"));
}

#[test]
fn completions_and_the_man_page_are_generated_from_the_options() {
    let bash = run(regsweep().args(["completions", "bash"]));
    for word in [
        "prune-tags",
        "--metrics-file",
        "--progress-interval",
        "--quiet",
    ] {
        assert!(bash.contains(word), "bash completes {word}");
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("regsweep.bash");
    std::fs::write(&script, &bash).unwrap();
    run(Command::new("bash").arg("-n").arg(&script));
    // Sourced, it registers the completion function for regsweep.
    let registered = run(Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p regsweep", script.display())));
    assert!(registered.contains("regsweep"), "{registered}");
    let zsh = run(regsweep().args(["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef regsweep") && zsh.contains("--metrics-file"));
    let fish = run(regsweep().args(["completions", "fish"]));
    assert!(fish.contains("complete -c regsweep") && fish.contains("metrics-file"));
    let out = regsweep().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));

    let man = run(regsweep().arg("man"));
    assert!(
        man.starts_with(".ie") || man.starts_with(".TH"),
        "roff: {}",
        &man[..40]
    );
    assert!(man.contains(".TH regsweep 1"));
    for section in [
        "REGSWEEP GC",
        "REGSWEEP DU",
        "REGSWEEP AUDIT",
        "REGSWEEP PRUNE-TAGS",
        "REGSWEEP APPLY",
        "EXIT STATUS",
        "SIGNALS",
    ] {
        assert!(
            man.contains(&format!(".SH \"{section}\"")) || man.contains(&format!(".SH {section}")),
            "{section}"
        );
    }
    assert!(man.contains("metrics\\-file"), "options are in the page");
}

/// Splits a systemd command line into words: whitespace separates, double and single quotes group,
/// `$$` is a dollar sign.
fn unit_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.replace("$$", "$").chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quotes: {line}");
    if in_word {
        words.push(word);
    }
    words
}

/// A unit file's sections, each a list of (key, value).
fn unit_sections(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_owned());
            sections.entry(name.to_owned()).or_default();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        let section = current
            .clone()
            .unwrap_or_else(|| panic!("{line} before a section"));
        sections
            .get_mut(&section)
            .unwrap()
            .push((k.trim().to_owned(), v.trim().to_owned()));
    }
    sections
}

fn get<'a>(
    sections: &'a BTreeMap<String, Vec<(String, String)>>,
    s: &str,
    k: &str,
) -> Vec<&'a str> {
    sections
        .get(s)
        .unwrap_or_else(|| panic!("[{s}]"))
        .iter()
        .filter(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Runs an example's regsweep command line against the demo store: the example's paths become the
/// test's (`paths`: example path → test path), and its metrics files must parse.
fn run_example(words: &[String], paths: &[(&str, &Path)], dir: &Path) {
    let fix = |w: &String| -> String {
        let mut w = w.clone();
        for (from, to) in paths {
            w = w.replace(from, to.to_str().unwrap());
        }
        w
    };
    let args: Vec<String> = words.iter().map(fix).collect();
    let out = regsweep().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    let i = args
        .iter()
        .position(|a| a == "--metrics-file")
        .expect("--metrics-file");
    let prom = PathBuf::from(&args[i + 1]);
    assert!(prom.starts_with(dir), "{prom:?}");
    let samples = parse_metrics(&prom);
    let exit = samples
        .iter()
        .find(|s| s.name == "regsweep_run_exit_status")
        .unwrap();
    assert_eq!(exit.value, 0.0);
}

#[test]
fn the_systemd_units_and_the_cronjob_parse_and_their_commands_run_as_written() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let dir = tempfile::tempdir().unwrap();
    let (root, config) = copy_of_demo(dir.path());
    let metrics = dir.path().join("textfile");
    std::fs::create_dir_all(&metrics).unwrap();

    // systemd: a oneshot service of two steps, prune-tags first; a persistent timer that starts it.
    let service =
        unit_sections(&std::fs::read_to_string(examples.join("systemd/regsweep.service")).unwrap());
    assert_eq!(get(&service, "Service", "Type"), ["oneshot"]);
    let steps = get(&service, "Service", "ExecStart");
    assert_eq!(steps.len(), 2, "{steps:?}");
    let steps: Vec<Vec<String>> = steps.iter().map(|l| unit_words(l)).collect();
    assert_eq!(steps[0][1], "prune-tags");
    assert_eq!(steps[1][1], "gc");
    for s in &steps {
        assert!(
            s[0].starts_with('/'),
            "systemd wants an absolute path: {s:?}"
        );
        assert!(s.contains(&"--delete".to_owned()) && s.contains(&"--metrics-file".to_owned()));
    }
    assert!(
        !get(&service, "Service", "TimeoutStartSec").is_empty(),
        "a deadline"
    );
    let timer =
        unit_sections(&std::fs::read_to_string(examples.join("systemd/regsweep.timer")).unwrap());
    assert_eq!(get(&timer, "Timer", "Unit"), ["regsweep.service"]);
    assert_eq!(get(&timer, "Timer", "Persistent"), ["true"]);
    assert_eq!(get(&timer, "Install", "WantedBy"), ["timers.target"]);
    let cache = dir.path().join("cache");
    let paths = [
        ("/etc/docker/registry/config.yml", config.as_path()),
        ("/var/lib/prometheus/node-exporter", metrics.as_path()),
        ("/var/cache/regsweep", cache.as_path()),
    ];
    for s in &steps {
        run_example(&s[1..], &paths, dir.path());
    }
    // gc keeps what manifests reference in the folder systemd makes for it (CacheDirectory=).
    assert_eq!(get(&service, "Service", "CacheDirectory"), ["regsweep"]);
    assert!(cache.join("manifests-v3").is_file());
    // Where systemd's own linter is installed, it finds nothing to say of either unit (it checks
    // every key and value, and that the ExecStart binary exists: here, the one under test).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let units = dir.path().join("units");
        std::fs::create_dir_all(&units).unwrap();
        let service = std::fs::read_to_string(examples.join("systemd/regsweep.service"))
            .unwrap()
            .replace("/usr/local/bin/regsweep", env!("CARGO_BIN_EXE_regsweep"));
        std::fs::write(units.join("regsweep.service"), service).unwrap();
        std::fs::copy(
            examples.join("systemd/regsweep.timer"),
            units.join("regsweep.timer"),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(units.join("regsweep.service"))
            .arg(units.join("regsweep.timer"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        let about_ours: Vec<&str> = said
            .lines()
            .filter(|l| l.contains("regsweep.service") || l.contains("regsweep.timer"))
            .collect();
        assert!(about_ours.is_empty(), "systemd-analyze verify: {said}");
    }

    // Kubernetes: a CronJob that never overlaps, with a deadline that SIGTERM enforces and time to
    // finish the batch in flight; its two steps run in order against the mounted config.
    let text = std::fs::read_to_string(examples.join("kubernetes/cronjob.yaml")).unwrap();
    let cron: Value = serde_norway::from_str(&text).expect("the CronJob parses as YAML");
    assert_eq!(cron["apiVersion"], "batch/v1");
    assert_eq!(cron["kind"], "CronJob");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let schedule = cron["spec"]["schedule"].as_str().unwrap();
    assert_eq!(
        schedule.split_whitespace().count(),
        5,
        "a cron schedule: {schedule}"
    );
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert!(job["activeDeadlineSeconds"].as_u64().unwrap() > 0);
    let pod = &job["template"]["spec"];
    assert!(matches!(
        pod["restartPolicy"].as_str(),
        Some("Never" | "OnFailure")
    ));
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() >= 60);
    let init = pod["initContainers"].as_array().unwrap();
    let main = pod["containers"].as_array().unwrap();
    assert_eq!((init.len(), main.len()), (1, 1));
    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mut mounted = BTreeMap::new();
    for c in init.iter().chain(main) {
        for m in c["volumeMounts"]
            .as_array()
            .expect("mounts (the YAML alias resolved)")
        {
            let name = m["name"].as_str().unwrap();
            assert!(volumes.contains(&name), "{name} is a volume of the pod");
            mounted.insert(m["mountPath"].as_str().unwrap().to_owned(), name.to_owned());
        }
    }
    assert_eq!(mounted["/etc/docker/registry"], "registry-config");
    let args = |c: &Value| -> Vec<String> {
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().expect("args are strings").to_owned())
            .collect()
    };
    let (first, second) = (args(&init[0]), args(&main[0]));
    assert_eq!(
        (first[0].as_str(), second[0].as_str()),
        ("prune-tags", "gc")
    );
    // The same demo store, reset, as the CronJob would find it.
    std::fs::remove_dir_all(&root).unwrap();
    copy_of_demo(dir.path());
    let cache = dir.path().join("pod-cache");
    let paths = [
        ("/etc/docker/registry/config.yml", config.as_path()),
        ("/metrics", metrics.as_path()),
        ("/cache", cache.as_path()),
    ];
    run_example(&first, &paths, dir.path());
    run_example(&second, &paths, dir.path());
    // gc keeps the manifest cache on a volume of its own, which lasts between runs.
    assert_eq!(mounted["/cache"], "manifest-cache");
    assert!(cache.join("manifests-v3").is_file());
}
