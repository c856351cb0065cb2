//! `gc -m --policy` on a store the real registry wrote, tags moved by real pushes so that the older
//! manifests are untagged, push times set through the revision links' modification times: AWS's
//! documented untagged rule ("expire untagged images older than 14 days") collects just those, a
//! count rule keeps the newest, an untagged multi-arch index is judged as one image and keeps its
//! platform manifests, pins hold, a policy with no untagged rule keeps them all, and after
//! `--delete` what the policy kept still pulls.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use support::registry::Registry;
use support::{oci, read_plan, regsweep, run, skopeo_copy};

const DAY: u64 = 86_400;

fn revision_link(root: &Path, repo: &str, digest: &str) -> PathBuf {
    root.join("docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/revisions/sha256")
        .join(digest.trim_start_matches("sha256:"))
        .join("link")
}

fn age(path: &Path, days: u64) {
    assert!(path.exists(), "{} is missing", path.display());
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(days * DAY))
        .unwrap();
}

fn current(root: &Path, repo: &str, tag: &str) -> String {
    let link = root
        .join("docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/tags")
        .join(tag)
        .join("current/link");
    std::fs::read_to_string(link).unwrap().trim().to_owned()
}

/// Pushes a single-platform image as `repo:latest` and ages its revision link; its digest.
fn push_single(registry: &Registry, layouts: &Path, repo: &str, name: &str, days: u64) -> String {
    let dir = layouts.join(name);
    oci::single(&dir, &["base", name]);
    skopeo_copy(
        &format!("oci:{}:latest", dir.display()),
        &registry.image(repo, "latest"),
        &[],
    );
    let d = current(&registry.root, repo, "latest");
    age(&revision_link(&registry.root, repo, &d), days);
    d
}

/// `gc -m --grace 0s --policy FILE --explain` and `extra`: the planned manifests and the summary.
fn planned(
    root: &Path,
    policy: &Path,
    extra: &[&str],
) -> (BTreeSet<(String, String)>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.ndjson");
    let out = run(regsweep()
        .arg("gc")
        .arg(root)
        .args(["-m", "--grace", "0s", "--explain", "--json", "--policy"])
        .arg(policy)
        .arg("--plan")
        .arg(&plan)
        .args(extra));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    (read_plan(&plan).manifests, summary)
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(r, d)| (r.to_string(), d.to_string()))
        .collect()
}

fn decision<'a>(summary: &'a serde_json::Value, repo: &str, digest: &str) -> &'a serde_json::Value {
    summary["untagged_policy"]["decisions"]
        .as_array()
        .unwrap_or_else(|| panic!("--explain gives decisions: {summary}"))
        .iter()
        .find(|d| d["repository"] == repo && d["digest"] == digest)
        .unwrap_or_else(|| panic!("no decision for {repo}@{digest}: {summary}"))
}

/// Whether `reference` pulls through the registry (into an OCI layout at `into`).
fn pulls(reference: &str, into: &Path) -> Result<(), String> {
    std::fs::create_dir_all(into).unwrap();
    let dest = format!("oci:{}:x", into.display());
    support::try_skopeo_copy(&format!("docker://{reference}"), &dest, &[])
}

#[test]
fn gc_m_with_a_policy_collects_only_the_untagged_manifests_its_rules_expire() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let root = registry.root.clone();
    let layouts = dir.path().join("layouts");
    // app:latest moved three times: d1 (40 days), d2 (30), d3 (10) are untagged, d4 is the tag.
    let d1 = push_single(&registry, &layouts, "app", "u1", 40);
    let d2 = push_single(&registry, &layouts, "app", "u2", 30);
    let d3 = push_single(&registry, &layouts, "app", "u3", 10);
    let d4 = push_single(&registry, &layouts, "app", "u4", 0);
    // multi:latest was a two-platform index 20 days ago, then moved to a single image.
    let m = layouts.join("m1");
    let (index, children) = oci::multi(
        &m,
        &[("amd64", &["base", "ma"]), ("arm64", &["base", "mb"])],
    );
    skopeo_copy(
        &format!("oci:{}:latest", m.display()),
        &registry.image("multi", "latest"),
        &["--all"],
    );
    assert_eq!(current(&root, "multi", "latest"), index);
    for d in std::iter::once(&index).chain(children.iter().map(|c| &c.manifest)) {
        age(&revision_link(&root, "multi", d), 20);
    }
    let m2 = push_single(&registry, &layouts, "multi", "m2", 0);
    assert_ne!(m2, index);
    let host = registry.image("app", "x");
    let host = host
        .trim_start_matches("docker://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();

    // AWS's example: expire untagged images older than 14 days.
    let ecr = dir.path().join("untagged.json");
    std::fs::write(
        &ecr,
        r#"{"rules": [{"rulePriority": 1, "description": "Expire images older than 14 days",
          "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                        "countUnit": "days", "countNumber": 14},
          "action": {"type": "expire"}}]}"#,
    )
    .unwrap();
    let (manifests, summary) = planned(&root, &ecr, &[]);
    let (a, b) = (&children[0].manifest, &children[1].manifest);
    assert_eq!(
        manifests,
        pairs(&[
            ("app", &d1),
            ("app", &d2),
            ("multi", &index),
            ("multi", a),
            ("multi", b)
        ]),
        "{summary}"
    );
    let p = &summary["untagged_policy"];
    assert_eq!(p["format"], "ecr_lifecycle");
    // The index is judged as one image; its platform manifests follow it.
    assert_eq!(
        (p["judged"].as_u64(), p["expired"].as_u64()),
        (Some(4), Some(3)),
        "{p}"
    );
    assert_eq!(p["followers"], 2);
    let kept = decision(&summary, "app", &d3);
    assert_eq!(kept["keep"], true);
    assert_eq!(kept["rule"], "Expire images older than 14 days");
    assert!(
        kept["reason"].as_str().unwrap().contains("within"),
        "{kept}"
    );
    assert!(
        decision(&summary, "app", &d1)["reason"]
            .as_str()
            .unwrap()
            .contains("before")
    );
    assert_eq!(summary["manifests"]["eligible"], 5);

    // Without the policy, -m collects every untagged manifest, d3 too.
    let (all, _) = support::regsweep_plan(&root, &["-m", "--grace", "0s"]);
    assert!(all.manifests.contains(&("app".into(), d3.clone())));
    assert!(!all.manifests.contains(&("app".into(), d4.clone())));

    // Keep the newest untagged image of each repository: d3 in app, the index (and so its
    // platform manifests) in multi.
    let newest = dir.path().join("newest.yml");
    std::fs::write(
        &newest,
        "rules:\n  - name: last untagged\n    status: untagged\n    keep: {newest: 1}\n",
    )
    .unwrap();
    let (manifests, summary) = planned(&root, &newest, &[]);
    assert_eq!(manifests, pairs(&[("app", &d1), ("app", &d2)]), "{summary}");
    assert_eq!(summary["manifests"]["held_by_policy"], 4, "{summary}");

    // A pin by digest keeps d1 against the rule.
    let pins = dir.path().join("images.txt");
    std::fs::write(&pins, format!("{host}/app@{d1}\n")).unwrap();
    let (manifests, summary) = planned(&root, &ecr, &["--keep-images", pins.to_str().unwrap()]);
    assert!(
        !manifests.contains(&("app".into(), d1.clone())),
        "{summary}"
    );
    assert!(manifests.contains(&("app".into(), d2.clone())));
    assert!(
        decision(&summary, "app", &d1)["reason"]
            .as_str()
            .unwrap()
            .starts_with("pinned (app@")
    );

    // A policy that says nothing of untagged manifests keeps them all.
    let tagged_only = dir.path().join("tagged.yml");
    std::fs::write(
        &tagged_only,
        "rules:\n  - tags: ['v*']\n    keep: {newest: 3}\n",
    )
    .unwrap();
    let (manifests, summary) = planned(&root, &tagged_only, &[]);
    assert!(manifests.is_empty(), "{manifests:?}");
    assert_eq!(
        decision(&summary, "app", &d1)["reason"],
        "no rule selects it"
    );

    // --policy without -m is refused by name.
    let out = regsweep()
        .arg("gc")
        .arg(&root)
        .arg("--policy")
        .arg(&ecr)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--delete-untagged"));

    // Deleting by AWS's rule: d3 and both tags still pull, d1 and the old index do not.
    run(regsweep()
        .arg("gc")
        .arg(&root)
        .args(["-m", "--grace", "0s", "--delete", "--force", "--policy"])
        .arg(&ecr));
    assert!(!revision_link(&root, "app", &d1).exists());
    assert!(!revision_link(&root, "multi", a).exists());
    let pulled = dir.path().join("pulled");
    for (i, reference) in [
        format!("{host}/app@{d3}"),
        format!("{host}/app:latest"),
        format!("{host}/multi:latest"),
    ]
    .iter()
    .enumerate()
    {
        if let Err(e) = pulls(reference, &pulled.join(i.to_string())) {
            panic!("{reference} does not pull: {e}");
        }
    }
    assert!(pulls(&format!("{host}/app@{d1}"), &pulled.join("gone")).is_err());
    assert!(pulls(&format!("{host}/multi@{index}"), &pulled.join("gone2")).is_err());
}
