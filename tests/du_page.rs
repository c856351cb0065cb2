//! `du --html`: the page, rendered in Debian's chromium, shows exactly what `du --json` says of a
//! store the real registry wrote, makes no request, and its table sorts and filters.

mod support;

use serde_json::Value;
use std::path::Path;
use support::registry::Registry;
use support::scenario::build_store;
use support::{regsweep, regsweep_json, run};

/// `1.5 KiB` back to bytes (the page rounds to one decimal).
fn parse_human(text: &str) -> f64 {
    let (n, unit) = text.trim().split_once(' ').unwrap();
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    };
    n.parse::<f64>().unwrap() * scale
}

#[test]
fn the_page_in_chromium_shows_du_json_and_makes_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = build_store(dir.path(), Registry::start(dir.path()));
    let root = &s.registry.root;
    let page = dir.path().join("du.html");
    run(regsweep()
        .args(["du", "--no-cache", "--html"])
        .arg(&page)
        .arg(root));
    // A second run, for the JSON: the page must agree with it, not only with the report it was
    // drawn from.
    let (code, du, stderr) =
        regsweep_json(&["du".as_ref(), "--no-cache".as_ref(), root.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");

    let shot = dir.path().join("du.png");
    let seen = support::page::probe(&page, &shot, "app");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} bytes",
        png.len()
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::copy(&shot, shots.join("du-page.png")).unwrap();

    // No request but the page itself, no script error, and a policy that forbids any.
    assert_eq!(
        seen["requests"],
        serde_json::json!([seen["url"]]),
        "{seen:#}"
    );
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen:#}");
    let dom = &seen["dom"];
    assert!(
        dom["csp"]
            .as_str()
            .unwrap()
            .starts_with("default-src 'none'"),
        "{dom}"
    );

    assert_eq!(dom["storage"], du["storage"]);
    assert_eq!(dom["total_bytes"], du["total_bytes"]);
    assert_eq!(dom["blobs"], du["blobs"]);
    let rc = &du["reclaimable"];
    for (kind, field) in [
        ("unreferenced", "unreferenced_bytes"),
        ("untagged", "untagged_bytes"),
        ("uploads", "uploads_bytes"),
        ("multipart", "multipart_bytes"),
    ] {
        assert_eq!(dom["reclaimable"][kind], rc[field], "{kind}");
    }
    assert!(
        rc["untagged_bytes"].as_u64().unwrap() > 0
            && rc["unreferenced_bytes"].as_u64().unwrap() > 0
    );

    let repos = du["repositories"].as_array().unwrap();
    let rows = dom["rows"].as_array().unwrap();
    assert_eq!(dom["repositories"], repos.len());
    assert_eq!(rows.len(), repos.len());
    for (row, r) in rows.iter().zip(repos) {
        assert_eq!(row["name"], r["name"]);
        for k in [
            "tags",
            "manifests",
            "bytes",
            "exclusive_bytes",
            "shared_bytes",
        ] {
            assert_eq!(row[k], r[k], "{} {k}", r["name"]);
        }
        // The text people read says the same, to its one decimal.
        let shown = parse_human(row["bytes_text"].as_str().unwrap());
        let exact = r["bytes"].as_f64().unwrap();
        assert!((shown - exact).abs() <= exact * 0.05 + 0.5, "{row} vs {r}");
    }
    // Each repository's tags and largest blobs.
    let details = dom["details"].as_array().unwrap();
    assert_eq!(details.len(), repos.len());
    let mut shared_seen = false;
    for (d, r) in details.iter().zip(repos) {
        assert_eq!(d["repo"], r["name"]);
        let tags: Vec<Value> = r["tag_sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| serde_json::json!({"name": t["name"], "bytes": t["bytes"], "digest": t["digest"]}))
            .collect();
        assert_eq!(d["tags"], Value::Array(tags), "{}", r["name"]);
        let blobs = d["blobs"].as_array().unwrap();
        let expected = r["largest_blobs"].as_array().unwrap();
        assert_eq!(blobs.len(), expected.len());
        for (b, e) in blobs.iter().zip(expected) {
            assert_eq!(
                (&b["digest"], &b["bytes"], &b["shared_by"]),
                (&e["digest"], &e["bytes"], &e["shared_by"])
            );
            for name in e["shared_with"].as_array().unwrap() {
                shared_seen = true;
                assert!(
                    b["shared_with_text"]
                        .as_str()
                        .unwrap()
                        .contains(name.as_str().unwrap()),
                    "{b}"
                );
            }
        }
    }
    assert!(
        shared_seen,
        "the scenario has repositories sharing an image"
    );

    // The treemap: one tile per repository with bytes, its area in proportion to its bytes, the
    // exclusive part in proportion to its exclusive bytes.
    let tiles = dom["tiles"].as_array().unwrap();
    let with_bytes: Vec<&Value> = repos
        .iter()
        .filter(|r| r["bytes"].as_u64() > Some(0))
        .collect();
    assert_eq!(tiles.len(), with_bytes.len(), "{tiles:#?}");
    let per_byte = tiles[0]["area"].as_f64().unwrap() / tiles[0]["bytes"].as_f64().unwrap();
    for t in tiles {
        let r = repos.iter().find(|r| r["name"] == t["repo"]).unwrap();
        assert_eq!(
            (&t["bytes"], &t["exclusive_bytes"]),
            (&r["bytes"], &r["exclusive_bytes"])
        );
        let (bytes, exclusive) = (
            r["bytes"].as_f64().unwrap(),
            r["exclusive_bytes"].as_f64().unwrap(),
        );
        let area = t["area"].as_f64().unwrap();
        assert!((area / bytes / per_byte - 1.0).abs() < 0.01, "{t}");
        assert!(
            (t["exclusive_area"].as_f64().unwrap() - area * exclusive / bytes).abs()
                <= area * 0.01 + 1.0,
            "{t}"
        );
    }

    // Sorting: the page opens by exclusive bytes (du's order); a click on "bytes" sorts by bytes,
    // largest first, a second click smallest first; "repository" by name.
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let du_order: Vec<String> = repos
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names(&seen["order_initial"]), du_order);
    let bytes_of = |n: &String| {
        repos.iter().find(|r| r["name"] == n.as_str()).unwrap()["bytes"]
            .as_u64()
            .unwrap()
    };
    let first = names(&seen["order_bytes_first_click"]);
    assert!(
        first.windows(2).all(|w| bytes_of(&w[0]) >= bytes_of(&w[1])),
        "{first:?}"
    );
    let second = names(&seen["order_bytes_second_click"]);
    assert!(
        second
            .windows(2)
            .all(|w| bytes_of(&w[0]) <= bytes_of(&w[1])),
        "{second:?}"
    );
    let mut sorted = du_order.clone();
    sorted.sort();
    assert_eq!(names(&seen["order_name"]), sorted);
    // Filtering by "app" leaves the repositories whose name has it.
    let matching: Vec<String> = sorted
        .iter()
        .filter(|n| n.contains("app"))
        .cloned()
        .collect();
    assert!(!matching.is_empty() && matching.len() < sorted.len());
    assert_eq!(names(&seen["filtered_visible"]), matching);
    assert_eq!(
        seen["filtered_count_text"],
        format!("{} of {} shown", matching.len(), sorted.len())
    );
    assert_eq!(seen["tile_opened"], true);
}

#[test]
fn the_probe_sees_a_request_when_a_page_makes_one() {
    // The check above could pass by seeing nothing: a page that loads an image from a loopback
    // port shows that the probe records what a page asks for.
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/pixel.png",
        listener.local_addr().unwrap().port()
    );
    let page = dir.path().join("leaky.html");
    std::fs::write(
        &page,
        format!(
            "<!DOCTYPE html><html><body><img src=\"{url}\"><table id=\"repos\"><thead><tr><th data-type=\"text\">repository</th><th data-type=\"num\">bytes</th></tr></thead><tbody></tbody></table><input id=\"filter\"><span id=\"shown\"></span></body></html>"
        ),
    )
    .unwrap();
    drop(listener);
    let seen = support::page::probe(&page, &dir.path().join("leaky.png"), "");
    let requests = seen["requests"].as_array().unwrap();
    assert!(requests.iter().any(|r| r == url.as_str()), "{seen:#}");
}
