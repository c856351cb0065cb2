//! `du --history`: three runs with images pushed through the real registry between them record
//! growth for the repositories that grew and a fill date; a damaged history stops the run by name.

mod support;

use serde_json::Value;
use std::path::Path;
use support::oci;
use support::registry::Registry;
use support::{regsweep, regsweep_json, skopeo_copy};

fn du(root: &Path, history: &Path, extra: &[&str]) -> Value {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["du".as_ref(), "--no-cache".as_ref(), "--history".as_ref()];
    args.push(history.as_os_str());
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.push(root.as_os_str());
    let (code, report, stderr) = regsweep_json(&args);
    assert_eq!(code, 0, "{stderr}");
    report
}

fn push(reg: &Registry, dir: &Path, name: &str, repo: &str, tag: &str) {
    let layout = dir.join(name);
    let seed = format!("{name}-layer");
    oci::single(&layout, &[&seed]);
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &reg.image(repo, tag),
        &[],
    );
}

#[test]
fn three_runs_show_who_grew_and_when_the_store_fills() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(dir.path());
    let root = reg.root.clone();
    let history = dir.path().join("du-history.jsonl");
    push(&reg, dir.path(), "a1", "team/grows", "v1");
    push(&reg, dir.path(), "s1", "team/still", "v1");
    let capacity = "10MiB";
    let first = du(&root, &history, &["--capacity", capacity]);
    push(&reg, dir.path(), "a2", "team/grows", "v2");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = du(&root, &history, &["--capacity", capacity]);
    push(&reg, dir.path(), "a3", "team/grows", "v3");
    push(&reg, dir.path(), "n1", "team/new", "v1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let third = du(&root, &history, &["--capacity", capacity]);

    // The file: one JSON line per run, each with the run's own figures.
    let lines: Vec<Value> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, report) in lines.iter().zip([&first, &second, &third]) {
        assert_eq!(line["total_bytes"], report["total_bytes"]);
        for r in report["repositories"].as_array().unwrap() {
            assert_eq!(
                line["repositories"][r["name"].as_str().unwrap()]["bytes"],
                r["bytes"]
            );
        }
    }
    assert!(first.get("history").is_some_and(|h| h["runs"] == 1));

    let g = &third["history"];
    assert_eq!(g["runs"], 3, "{g:#}");
    let bytes = |report: &Value, name: &str| -> i64 {
        report["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map_or(0, |r| r["bytes"].as_i64().unwrap())
    };
    let growth = |name: &str| {
        g["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    for name in ["team/grows", "team/still", "team/new"] {
        let r = growth(name);
        let change = bytes(&third, name) - bytes(&first, name);
        assert_eq!(r["change_bytes"], change, "{name}: {r}");
        let series: Vec<i64> = [&first, &second, &third]
            .iter()
            .map(|rep| bytes(rep, name))
            .collect();
        assert_eq!(r["series"], serde_json::json!(series), "{name}");
    }
    assert!(growth("team/grows")["change_bytes"].as_i64().unwrap() > 0);
    assert!(growth("team/new")["change_bytes"].as_i64().unwrap() > 0);
    assert_eq!(growth("team/still")["change_bytes"], 0);
    // Those that grew come first.
    let order: Vec<&str> = g["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(order.last(), Some(&"team/still"));

    // The fill date: the room left at the rate between the oldest and newest run (all within the
    // last 30 days), worked out here from the file itself.
    let time = |l: &Value| humantime::parse_rfc3339(l["time"].as_str().unwrap()).unwrap();
    let days = time(&lines[2])
        .duration_since(time(&lines[0]))
        .unwrap()
        .as_secs_f64()
        / 86_400.0;
    let total = |l: &Value| l["total_bytes"].as_f64().unwrap();
    let rate = (total(&lines[2]) - total(&lines[0])) / days;
    assert!(rate > 0.0);
    let fill = &g["fill"];
    let available = 10.0 * 1024.0 * 1024.0 - total(&lines[2]);
    assert_eq!(fill["capacity_bytes"], 10 * 1024 * 1024);
    assert_eq!(fill["available_bytes"].as_f64().unwrap(), available);
    let expected_days = available / rate;
    assert!(
        (fill["days"].as_f64().unwrap() - expected_days).abs() < expected_days * 1e-6,
        "{fill}"
    );
    let date = humantime::parse_rfc3339(fill["date"].as_str().unwrap()).unwrap();
    let expected = time(&lines[2]) + std::time::Duration::from_secs_f64(expected_days * 86_400.0);
    let off = date
        .duration_since(expected)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap();
    assert!(off.as_secs() <= 1, "{fill}");

    // The terminal and the page say it too.
    let out = support::run(
        regsweep()
            .args(["du", "--no-cache", "--capacity", capacity, "--html"])
            .arg(dir.path().join("p.html"))
            .arg("--history")
            .arg(&history)
            .arg(&root),
    );
    assert!(
        out.contains("history: 4 runs recorded in")
            && out.contains("team/grows:")
            && out.contains("full on "),
        "{out}"
    );
    let html = std::fs::read_to_string(dir.path().join("p.html")).unwrap();
    assert!(
        html.contains("id=\"fill-date\"") && html.contains("class=\"num growth\""),
        "the page has a fill date and a growth column"
    );

    // Without --capacity, a filesystem store's own filesystem gives the room.
    let fs = du(&root, &history, &[]);
    let fill = &fs["history"]["fill"];
    assert!(fill["capacity_bytes"].as_u64().unwrap() > fill["available_bytes"].as_u64().unwrap());
}

#[test]
fn a_damaged_history_is_named_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = support::copy_of_demo(dir.path());
    let history = dir.path().join("h.jsonl");
    du(&root, &history, &[]);
    let mut text = std::fs::read_to_string(&history).unwrap();
    text.push_str("{\"time\": \"2026-");
    std::fs::write(&history, &text).unwrap();
    let args: Vec<&std::ffi::OsStr> = vec![
        "du".as_ref(),
        "--history".as_ref(),
        history.as_os_str(),
        root.as_os_str(),
    ];
    let (code, _, stderr) = regsweep_json(&args);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!(
            "history {} is damaged at line 2",
            history.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&history).unwrap(),
        text,
        "the file is not rewritten"
    );
    // Another store's history is refused by name too.
    let other = dir.path().join("other");
    support::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&root)
            .arg(&other),
    );
    text.truncate(text.rfind('{').unwrap());
    std::fs::write(&history, &text).unwrap();
    let args: Vec<&std::ffi::OsStr> = vec![
        "du".as_ref(),
        "--history".as_ref(),
        history.as_os_str(),
        other.as_os_str(),
    ];
    let (code, _, stderr) = regsweep_json(&args);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("line 1 records")
            && stderr.contains("give this store its own history file"),
        "{stderr}"
    );
}
