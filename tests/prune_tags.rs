//! `prune-tags` on stores written by the real registry, with tag times the test sets: each rule alone
//! and combined, then `prune-tags --delete` followed by `gc -m --delete`, after which every kept tag
//! pulls through the registry and what only the removed tags reached is gone.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use support::oci::{self, Image};
use support::registry::Registry;
use support::{regsweep, run, skopeo_copy};

const DAY: u64 = 86400;

/// A tag the test pushed: its repository, name, the image, and how long ago it was pushed.
struct Pushed {
    repo: &'static str,
    tag: &'static str,
    manifest: String,
    age: Duration,
}

struct TagStore {
    registry: Registry,
    pushed: Vec<Pushed>,
    /// Each layout's image, by the name of the layout.
    images: BTreeMap<&'static str, Image>,
    /// The blobs of the multi-platform index `other/svc:s2` (index, children, configs, layers).
    multi: BTreeSet<String>,
}

fn current_link(root: &Path, repo: &str, tag: &str) -> PathBuf {
    root.join("docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/tags")
        .join(tag)
        .join("current/link")
}

/// Pushes the tags, then sets each tag's `current/link` time to when the test says it was pushed.
///
/// `ci/app`: c1…c5 (distinct images on a shared base), `latest` on c5's image, `v1.0.0` on c1's;
/// `ci/tools/lint`: n1…n3; `other/svc`: s1, and s2 a multi-platform index.
fn build(dir: &Path) -> TagStore {
    let registry = Registry::start(dir);
    let layouts = dir.join("layouts");
    let mut images = BTreeMap::new();
    let mut pushed = Vec::new();
    let mut push = |repo: &'static str, tag: &'static str, layout: &'static str, days: f64| {
        let img = images
            .entry(layout)
            .or_insert_with(|| oci::single(&layouts.join(layout), &["base", layout]))
            .clone();
        let src = format!("oci:{}:latest", layouts.join(layout).display());
        skopeo_copy(&src, &registry.image(repo, tag), &[]);
        pushed.push(Pushed {
            repo,
            tag,
            manifest: img.manifest,
            age: Duration::from_secs_f64(days * DAY as f64),
        });
    };
    for (tag, days) in [
        ("c1", 10.0),
        ("c2", 8.0),
        ("c3", 6.0),
        ("c4", 4.0),
        ("c5", 2.0),
    ] {
        push("ci/app", tag, tag, days);
    }
    push("ci/app", "latest", "c5", 1.0);
    push("ci/app", "v1.0.0", "c1", 30.0);
    for (tag, days) in [("n1", 20.0), ("n2", 15.0), ("n3", 1.0)] {
        push("ci/tools/lint", tag, tag, days);
    }
    push("other/svc", "s1", "s1", 40.0);

    let (index, platforms) = oci::multi(
        &layouts.join("s2"),
        &[("amd64", &["s2-amd64"]), ("arm64", &["s2-arm64"])],
    );
    skopeo_copy(
        &format!("oci:{}:latest", layouts.join("s2").display()),
        &registry.image("other/svc", "s2"),
        &["--all"],
    );
    let mut multi: BTreeSet<String> = [index.clone()].into();
    for p in &platforms {
        multi.insert(p.manifest.clone());
        multi.insert(p.config.clone());
        multi.extend(p.layers.iter().cloned());
    }
    pushed.push(Pushed {
        repo: "other/svc",
        tag: "s2",
        manifest: index,
        age: Duration::from_secs(3600),
    });

    let now = SystemTime::now();
    for p in &pushed {
        let file = std::fs::File::options()
            .write(true)
            .open(current_link(&registry.root, p.repo, p.tag))
            .unwrap();
        file.set_modified(now - p.age).unwrap();
    }
    TagStore {
        registry,
        pushed,
        images,
        multi,
    }
}

/// Runs a dry run with `rules`; returns the removed `repo:tag`s read from the plan file, checking
/// each plan item against what the test pushed, and the JSON summary.
fn removed(s: &TagStore, rules: &[&str]) -> (BTreeSet<String>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.ndjson");
    let out = run(regsweep()
        .arg("prune-tags")
        .arg(&s.registry.root)
        .args(rules)
        .arg("--all-tags")
        .arg("--plan")
        .arg(&plan)
        .arg("--json"));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["dry_run"], true);
    let mut names = BTreeSet::new();
    let text = std::fs::read_to_string(&plan).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["command"], "prune-tags");
    assert_eq!(header["items"], summary["removed"]);
    for line in text.lines().skip(1) {
        let item: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(item["kind"], "tag");
        let (repo, tag) = (
            item["repo"].as_str().unwrap(),
            item["tag"].as_str().unwrap(),
        );
        let p = s
            .pushed
            .iter()
            .find(|p| p.repo == repo && p.tag == tag)
            .unwrap_or_else(|| panic!("plan names {repo}:{tag}, which was never pushed"));
        assert_eq!(item["digest"], p.manifest.as_str(), "{repo}:{tag}");
        let pushed = humantime::parse_rfc3339(item["pushed"].as_str().unwrap()).unwrap();
        let age = SystemTime::now().duration_since(pushed).unwrap();
        assert!(
            age.abs_diff(p.age) < Duration::from_secs(120),
            "{repo}:{tag}: pushed {:?} ago by the plan, {:?} by the test",
            age,
            p.age
        );
        names.insert(format!("{repo}:{tag}"));
    }
    assert_eq!(summary["removed"], names.len());
    (names, summary)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_rule_alone_and_combined_removes_exactly_the_tags_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(dir.path());
    let ci_app = ["c1", "c2", "c3", "c4", "c5", "latest", "v1.0.0"].map(|t| format!("ci/app:{t}"));
    let lint = ["n1", "n2", "n3"].map(|t| format!("ci/tools/lint:{t}"));

    // --repo alone: every tag of the repositories it matches; `*` is one level, `**` any depth.
    let (r, summary) = removed(&s, &["--repo", "ci/*"]);
    assert_eq!(r, ci_app.iter().cloned().collect());
    assert_eq!(summary["repositories_total"], 3);
    assert_eq!(summary["repositories_matched"], 1);
    let (r, _) = removed(&s, &["--repo", "ci/**"]);
    assert_eq!(r, ci_app.iter().chain(&lint).cloned().collect());
    let (r, _) = removed(&s, &["--repo", "other/svc", "--repo", "ci/tools/*"]);
    let expected: BTreeSet<String> = lint
        .iter()
        .cloned()
        .chain(["other/svc:s1".into(), "other/svc:s2".into()])
        .collect();
    assert_eq!(r, expected);

    // --tag alone: only the candidates it matches.
    let (r, _) = removed(&s, &["--repo", "**", "--tag", r"^c\d$"]);
    assert_eq!(
        r,
        set(&[
            "ci/app:c1",
            "ci/app:c2",
            "ci/app:c3",
            "ci/app:c4",
            "ci/app:c5"
        ])
    );

    // --keep-tag alone.
    let (r, _) = removed(
        &s,
        &["--repo", "ci/*", "--keep-tag", r"^(latest|v\d+\.\d+\.\d+)$"],
    );
    assert_eq!(
        r,
        set(&[
            "ci/app:c1",
            "ci/app:c2",
            "ci/app:c3",
            "ci/app:c4",
            "ci/app:c5"
        ])
    );

    // --keep-last counts per repository, newest first.
    let (r, summary) = removed(&s, &["--repo", "**", "--keep-last", "2"]);
    assert_eq!(
        r,
        set(&[
            "ci/app:c1",
            "ci/app:c2",
            "ci/app:c3",
            "ci/app:c4",
            "ci/app:v1.0.0",
            "ci/tools/lint:n1"
        ])
    );
    let per_repo: BTreeMap<String, (u64, u64)> = summary["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                (r["kept"].as_u64().unwrap(), r["removed"].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(per_repo["ci/app"], (2, 5));
    assert_eq!(per_repo["ci/tools/lint"], (2, 1));
    assert_eq!(per_repo["other/svc"], (2, 0));

    // --older-than alone: what was pushed within the window stays.
    let (r, _) = removed(&s, &["--repo", "**", "--older-than", "5d"]);
    assert_eq!(
        r,
        set(&[
            "ci/app:c1",
            "ci/app:c2",
            "ci/app:c3",
            "ci/app:v1.0.0",
            "ci/tools/lint:n1",
            "ci/tools/lint:n2",
            "other/svc:s1"
        ])
    );

    // Combined: candidates are c2…c5 and n1…n3; the newest of each repository stays, and so does
    // whatever is younger than 7 days.
    let (r, _) = removed(
        &s,
        &[
            "--repo",
            "ci/**",
            "--tag",
            r"^[cn]\d$",
            "--keep-tag",
            "^c1$",
            "--keep-last",
            "1",
            "--older-than",
            "7d",
        ],
    );
    assert_eq!(
        r,
        set(&["ci/app:c2", "ci/tools/lint:n1", "ci/tools/lint:n2"])
    );

    // --keep-tag wins over everything: the oldest tag, outside --keep-last and --older-than.
    let (r, _) = removed(
        &s,
        &[
            "--repo",
            "**",
            "--keep-tag",
            "^(v1.0.0|s1)$",
            "--keep-last",
            "1",
            "--older-than",
            "1h",
        ],
    );
    assert!(!r.contains("ci/app:v1.0.0") && !r.contains("other/svc:s1"));
    assert!(r.contains("ci/app:c1") && r.contains("ci/tools/lint:n1"));
    let (r, _) = removed(&s, &["--repo", "**", "--keep-tag", "."]);
    assert!(r.is_empty(), "{r:?}");

    // No --repo, no removal: it refuses to run.
    let out = regsweep()
        .arg("prune-tags")
        .arg(&s.registry.root)
        .args(["--keep-last", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repo"));
    // A dry run deletes nothing.
    for p in &s.pushed {
        assert!(current_link(&s.registry.root, p.repo, p.tag).exists());
    }
}

fn blob_exists(root: &Path, digest: &str) -> bool {
    let hex = &digest["sha256:".len()..];
    root.join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
        .exists()
}

#[test]
fn after_prune_then_gc_m_kept_tags_pull_and_what_only_removed_tags_reached_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(dir.path());
    let root = &s.registry.root;
    let config = s.registry.config.clone();
    let rules = [
        "--repo",
        "**",
        "--keep-tag",
        r"^v\d+\.\d+\.\d+$",
        "--keep-last",
        "1",
    ];

    // The registry's config does not put it in read-only mode: --delete refuses and deletes nothing.
    let out = regsweep()
        .arg("prune-tags")
        .arg(&config)
        .args(rules)
        .arg("--all-tags")
        .arg("--delete")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("read-only") && stderr.contains("--force"),
        "{stderr}"
    );
    for p in &s.pushed {
        assert!(
            current_link(root, p.repo, p.tag).exists(),
            "{}:{}",
            p.repo,
            p.tag
        );
    }

    let out = run(regsweep()
        .arg("prune-tags")
        .arg(&config)
        .args(rules)
        .arg("--all-tags")
        .args(["--delete", "--force", "--json"]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["dry_run"], false);
    let gone = [
        "ci/app:c1",
        "ci/app:c2",
        "ci/app:c3",
        "ci/app:c4",
        "ci/app:c5",
    ]
    .into_iter()
    .chain(["ci/tools/lint:n1", "ci/tools/lint:n2", "other/svc:s1"])
    .collect::<BTreeSet<_>>();
    assert_eq!(summary["deleted"]["tags"], gone.len());
    assert_eq!(summary["deleted"]["failures"].as_array().unwrap().len(), 0);
    for p in &s.pushed {
        let folder = current_link(root, p.repo, p.tag);
        let folder = folder.parent().unwrap().parent().unwrap();
        let name = format!("{}:{}", p.repo, p.tag);
        assert_eq!(folder.exists(), !gone.contains(name.as_str()), "{name}");
    }

    // gc -m refuses the same way without --force, then frees what only the removed tags kept.
    let out = regsweep()
        .arg("gc")
        .arg(&config)
        .args(["-m", "--delete", "--grace", "0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(blob_exists(root, &s.images["c2"].layers[1]));
    run(regsweep()
        .arg("gc")
        .arg(&config)
        .args(["-m", "--delete", "--force", "--grace", "0s", "--json"]));

    // c2…c4, n1, n2 and s1 were only reached by removed tags: their images are gone. c1's image is
    // kept by v1.0.0 and c5's by latest (removing a tag never removes what another tag names).
    for name in ["c2", "c3", "c4", "n1", "n2", "s1"] {
        let img = &s.images[name];
        for d in std::iter::once(&img.manifest).chain([&img.config, &img.layers[1]]) {
            assert!(!blob_exists(root, d), "{name}: {d} should be gone");
        }
    }
    for name in ["c1", "c5", "n3"] {
        let img = &s.images[name];
        for d in std::iter::once(&img.manifest)
            .chain([&img.config])
            .chain(&img.layers)
        {
            assert!(blob_exists(root, d), "{name}: {d} must stay");
        }
    }
    for d in &s.multi {
        assert!(blob_exists(root, d), "other/svc:s2: {d} must stay");
    }

    // Every kept tag pulls (skopeo checks each blob's digest); a removed tag does not.
    let pulls = dir.path().join("pulls");
    std::fs::create_dir_all(&pulls).unwrap();
    for (i, (repo, tag, all)) in [
        ("ci/app", "latest", false),
        ("ci/app", "v1.0.0", false),
        ("ci/tools/lint", "n3", false),
        ("other/svc", "s2", true),
    ]
    .into_iter()
    .enumerate()
    {
        let dest = format!("oci:{}:pulled", pulls.join(format!("p{i}")).display());
        let extra: &[&str] = if all { &["--all"] } else { &[] };
        skopeo_copy(&s.registry.image(repo, tag), &dest, extra);
    }
    let r = s.registry.http("GET", "/v2/ci/app/manifests/c2", &[], &[]);
    assert_eq!(r.status, 404, "a removed tag must not resolve");
}
