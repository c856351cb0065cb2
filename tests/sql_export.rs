//! `export`: the tables as Parquet and plan.sql, run in two real SQL engines (DuckDB out of core,
//! Spark SQL in local mode on Java), give exactly the plan `regsweep gc --plan` writes, item for
//! item, on the demo store, generated stores, and the conformance scenario the real registry
//! writes; at grace 0s and at a grace window that holds everything back.

#[path = "../fixtures/generator.rs"]
mod generator;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::registry::Registry;
use support::scenario::build_store;
use support::{copy_of_demo, regsweep, run};

/// A plan item as plan.sql returns it: kind, repository, name, upload id, size.
type Item = (String, String, String, String, u64);

/// The items of a `gc --plan` file, in plan.sql's terms.
fn plan_items(path: &Path) -> BTreeSet<Item> {
    let mut out = BTreeSet::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        let size = v["size"].as_u64().unwrap_or(0);
        let item = match v["kind"].as_str().unwrap() {
            "header" => continue,
            "blob" => (
                "blob".into(),
                String::new(),
                s("digest"),
                String::new(),
                size,
            ),
            "layer_link" => (
                "layer_link".into(),
                s("repo"),
                s("digest"),
                String::new(),
                0,
            ),
            "upload" => ("upload".into(), s("repo"), s("id"), String::new(), size),
            "multipart" => (
                "multipart".into(),
                String::new(),
                s("key"),
                s("upload_id"),
                size,
            ),
            "repository" => (
                "repository".into(),
                s("repo"),
                String::new(),
                String::new(),
                0,
            ),
            other => panic!("a plan without -m has no {other} items: {line}"),
        };
        out.insert(item);
    }
    out
}

/// plan.sql's rows in `engine`, per export folder.
fn sql_items(engine: &str, dirs: &[PathBuf]) -> BTreeMap<String, BTreeSet<Item>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/run_plan_sql.py");
    let out = run(Command::new("python3").arg(script).arg(engine).args(dirs));
    let mut by_dir: BTreeMap<String, BTreeSet<Item>> = dirs
        .iter()
        .map(|d| (d.display().to_string(), BTreeSet::new()))
        .collect();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let item = (
            s("kind"),
            s("repository"),
            s("name"),
            s("upload_id"),
            v["size"].as_u64().unwrap(),
        );
        assert!(
            by_dir.get_mut(&s("dir")).unwrap().insert(item.clone()),
            "{engine}: {item:?} twice"
        );
    }
    by_dir
}

#[test]
fn the_sql_plan_in_duckdb_and_spark_is_regsweeps_plan() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores: Vec<PathBuf> = Vec::new();
    let demo = dir.path().join("demo");
    std::fs::create_dir_all(&demo).unwrap();
    stores.push(copy_of_demo(&demo).0);
    for (i, (repos, seed)) in [(12u64, 5u64), (30, 17)].iter().enumerate() {
        let out = dir.path().join(format!("gen-{i}"));
        generator::generate(&out, *repos, 6, 3, *seed);
        stores.push(out.join("root"));
    }
    let scenario = dir.path().join("scenario");
    std::fs::create_dir_all(&scenario).unwrap();
    let s = build_store(&scenario, Registry::start(&scenario));
    stores.push(s.registry.root.clone());

    let mut expected: BTreeMap<String, BTreeSet<Item>> = BTreeMap::new();
    let mut dirs = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for grace in ["0s", "1h"] {
            let plan = dir.path().join(format!("plan-{i}-{grace}.ndjson"));
            run(regsweep()
                .arg("gc")
                .arg(store)
                .args(["--grace", grace, "--no-cache", "--plan"])
                .arg(&plan));
            let items = plan_items(&plan);
            if grace == "0s" {
                assert!(!items.is_empty(), "{}: a plan to compare", store.display());
            }
            let out = dir.path().join(format!("export-{i}-{grace}"));
            let summary = run(regsweep()
                .arg("export")
                .arg(store)
                .arg(&out)
                .args(["--grace", grace, "--json"]));
            let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
            assert_eq!(
                summary["plan_items"],
                items.len() as u64,
                "{}: {summary}",
                store.display()
            );
            for table in ["blobs", "refs", "links", "tags", "run"] {
                assert!(out.join(format!("{table}.parquet")).is_file());
            }
            expected.insert(out.display().to_string(), items);
            dirs.push(out);
        }
    }
    for engine in ["duckdb", "spark"] {
        let got = sql_items(engine, &dirs);
        for (d, items) in &expected {
            let theirs = &got[d];
            let missing: Vec<_> = items.difference(theirs).collect();
            let extra: Vec<_> = theirs.difference(items).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{engine} on {d}: missing {missing:?}, extra {extra:?}"
            );
        }
    }

    // A folder that holds something is refused before any work, and left as it was.
    let out = regsweep()
        .arg("export")
        .arg(&stores[0])
        .arg(&dirs[0])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&dirs[0].display().to_string()) && err.contains("not empty"),
        "{err}"
    );
}
