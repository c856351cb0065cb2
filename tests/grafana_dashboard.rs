//! `examples/grafana/regsweep-dashboard.json` imports as it is and shows what the metrics file has:
//! a dashboard for import (its data source an input, every panel and query on it, ids unique), and
//! every metric a query names, with the `command` it selects and the labels its legend shows, is in
//! the metrics file of a real `du` and `gc` run as prometheus_client parses it.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use support::metrics::{Sample, parse_metrics};
use support::{copy_of_demo, regsweep, run};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/grafana/regsweep-dashboard.json"
);

/// Each metric an expression names, with the `command="…"` its selector gives (if any).
fn selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("regsweep_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let after = &tail[end..];
        let command = after
            .strip_prefix('{')
            .and_then(|s| s.split('}').next())
            .and_then(|sel| sel.split("command=\"").nth(1))
            .and_then(|s| s.split('"').next())
            .map(str::to_owned);
        out.push((name, command));
        rest = after;
    }
    out
}

#[test]
fn the_grafana_dashboard_imports_and_queries_only_what_the_metrics_file_has() {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap())
        .expect("the dashboard is JSON");
    let inputs = dashboard["__inputs"]
        .as_array()
        .expect("__inputs for import");
    assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
        && i["type"] == "datasource"
        && i["pluginId"] == "prometheus"));
    assert!(dashboard["uid"].is_string() && dashboard["schemaVersion"].as_u64() >= Some(36));
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 6, "{} panels", panels.len());
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");

    // A real du and gc write their metrics files.
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = copy_of_demo(dir.path());
    let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for command in ["du", "gc"] {
        let file = dir.path().join(format!("{command}.prom"));
        run(regsweep()
            .arg(command)
            .arg(&store)
            .arg("--metrics-file")
            .arg(&file));
        samples.insert(command.into(), parse_metrics(&file));
    }
    let has = |metric: &str, command: Option<&str>| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|(c, _)| command.is_none_or(|want| want == c.as_str()))
            .flat_map(|(_, s)| s)
            .filter(|s| s.name == metric)
            .collect()
    };

    let mut exprs: Vec<(String, String)> = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap().to_owned();
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        assert!(p["gridPos"]["w"].as_u64() > Some(0), "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            let expr = t["expr"].as_str().unwrap().to_owned();
            // The labels its legend shows are on the samples it selects.
            let legend = t["legendFormat"].as_str().unwrap_or_default();
            for (metric, command) in selectors(&expr) {
                let found = has(&metric, command.as_deref());
                assert!(
                    !found.is_empty(),
                    "panel {title:?}: {metric} (command {command:?}) is in no metrics file"
                );
                for label in legend
                    .split("{{")
                    .skip(1)
                    .filter_map(|s| s.split("}}").next())
                {
                    assert!(
                        found.iter().all(|s| s.labels.contains_key(label.trim())),
                        "panel {title:?}: {metric} has no label {label}"
                    );
                }
            }
            exprs.push((title.clone(), expr));
        }
    }
    let named: BTreeSet<String> = exprs
        .iter()
        .flat_map(|(_, e)| selectors(e))
        .map(|(m, _)| m)
        .collect();
    for wanted in [
        "regsweep_repository_bytes",
        "regsweep_reclaimable_bytes",
        "regsweep_last_success_time_seconds",
    ] {
        assert!(named.contains(wanted), "the dashboard shows {wanted}");
    }
    let variable = &dashboard["templating"]["list"][0];
    assert_eq!(variable["name"], "storage");
    let query = variable["query"]["query"].as_str().unwrap();
    for (metric, _) in selectors(query) {
        assert!(!has(&metric, None).is_empty(), "{query}");
    }
    assert!(exprs.iter().all(|(_, e)| e.contains("$storage")));
}
