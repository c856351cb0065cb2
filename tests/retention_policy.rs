//! `prune-tags --policy` on stores the real registry wrote, push times set through the tag links'
//! modification times: AWS's documented lifecycle example gives the tags AWS says, `--explain`
//! names the deciding rule, pins hold, the guards refuse; pulls read from the real registry's own
//! log after real pulls (skopeo) drive `sinceImagePulled`, and records that do not cover the
//! window refuse to expire.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};
use support::oci;
use support::registry::Registry;
use support::{regsweep, run, skopeo_copy};

const DAY: u64 = 86_400;

fn push(registry: &Registry, layouts: &Path, repo: &str, layout: &str, tags: &[&str], days: u64) {
    let dir = layouts.join(layout);
    oci::single(&dir, &["base", layout]);
    for tag in tags {
        skopeo_copy(
            &format!("oci:{}:latest", dir.display()),
            &registry.image(repo, tag),
            &[],
        );
        let link = registry
            .root
            .join("docker/registry/v2/repositories")
            .join(repo)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link");
        std::fs::File::options()
            .write(true)
            .open(&link)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(days * DAY))
            .unwrap();
    }
}

/// `prune-tags --policy` as a dry run with `extra`: the removed `repo:tag`s and the summary.
fn judged(root: &Path, policy: &Path, extra: &[&str]) -> (BTreeSet<String>, serde_json::Value) {
    let out = run(regsweep()
        .arg("prune-tags")
        .arg(root)
        .arg("--policy")
        .arg(policy)
        .args(["--explain", "--json"])
        .args(extra));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let removed = summary["decisions"]
        .as_array()
        .expect("--explain gives decisions")
        .iter()
        .filter(|d| d["removed"] == true)
        .map(|d| {
            format!(
                "{}:{}",
                d["repository"].as_str().unwrap(),
                d["tag"].as_str().unwrap()
            )
        })
        .collect();
    (removed, summary)
}

fn why(summary: &serde_json::Value, repo: &str, tag: &str) -> String {
    summary["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["repository"] == repo && d["tag"] == tag)
        .unwrap_or_else(|| panic!("no decision for {repo}:{tag}: {summary}"))["why"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const ECR_EXAMPLE_A: &str = r#"{"rules": [
  {"rulePriority": 1, "description": "Rule 1",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["prod*"],
                 "countType": "imageCountMoreThan", "countNumber": 1},
   "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "Rule 2",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["beta*"],
                 "countType": "imageCountMoreThan", "countNumber": 1},
   "action": {"type": "expire"}}]}"#;

#[test]
fn an_ecr_policy_expires_what_aws_says_explains_it_holds_pins_and_the_guards_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let layouts = dir.path().join("layouts");
    // AWS's example A: image A [beta-1, prod-1] 10 days, B [beta-2, prod-2] 9 days, C [beta-3] 8.
    push(&registry, &layouts, "app", "a", &["beta-1", "prod-1"], 10);
    push(&registry, &layouts, "app", "b", &["beta-2", "prod-2"], 9);
    push(&registry, &layouts, "app", "c", &["beta-3"], 8);
    let root = registry.root.clone();
    let ecr = dir.path().join("lifecycle.json");
    std::fs::write(&ecr, ECR_EXAMPLE_A).unwrap();

    let (removed, summary) = judged(&root, &ecr, &[]);
    assert_eq!(
        removed,
        set(&["app:beta-1", "app:prod-1"]),
        "only image A expires"
    );
    assert_eq!(summary["policy"]["format"], "ecr_lifecycle");
    assert_eq!(summary["policy"]["unit"], "image");
    assert!(why(&summary, "app", "prod-1").starts_with("rule \"Rule 1\": not among the newest 1"));
    // B matched Rule 1's tags and was kept there: Rule 2 cannot expire it.
    assert!(why(&summary, "app", "beta-2").starts_with("rule \"Rule 1\": newest 1 of 1"));
    assert!(why(&summary, "app", "beta-3").starts_with("rule \"Rule 2\""));

    // A pin on one tag of image A keeps the image, both tags, against every rule.
    let pins = dir.path().join("images.txt");
    std::fs::write(
        &pins,
        format!(
            "{} nginx:1.25\n",
            registry
                .image("app", "beta-1")
                .trim_start_matches("docker://")
        ),
    )
    .unwrap();
    let (removed, summary) = judged(&root, &ecr, &["--keep-images", pins.to_str().unwrap()]);
    assert!(removed.is_empty(), "{removed:?}");
    assert!(why(&summary, "app", "prod-1").starts_with("pinned (app:beta-1"));

    // A policy that would empty a repository refuses: no plan, nothing deleted.
    let all = dir.path().join("all.yml");
    std::fs::write(&all, "rules:\n  - name: everything\n    expire: true\n").unwrap();
    let plan = dir.path().join("refused.plan");
    let out = regsweep()
        .args(["prune-tags"])
        .arg(&root)
        .arg("--policy")
        .arg(&all)
        .arg("--plan")
        .arg(&plan)
        .arg("--delete")
        .arg("--force")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("every tag of app") && stderr.contains("max_removed_share"),
        "{stderr}"
    );
    assert!(!plan.exists() || std::fs::read_to_string(&plan).unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(root.join("docker/registry/v2/repositories/app/_manifests/tags"))
            .unwrap()
            .count(),
        5
    );

    // Deleting by the ECR policy removes image A's tags; the rest still pull.
    run(regsweep()
        .arg("prune-tags")
        .arg(&root)
        .arg("--policy")
        .arg(&ecr)
        .args(["--delete", "--force"]));
    for tag in ["beta-2", "prod-2", "beta-3"] {
        skopeo_copy(
            &registry.image("app", tag),
            &format!(
                "oci:{}:x",
                dir.path().join(format!("pulled-{tag}")).display()
            ),
            &[],
        );
    }
    let gone = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--tls-verify=false"])
        .arg(registry.image("app", "prod-1"))
        .output()
        .unwrap();
    assert!(!gone.status.success(), "app:prod-1 was expired");
}

#[test]
fn pulls_from_the_registry_log_drive_since_image_pulled_and_an_uncovered_window_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_logging(dir.path());
    let layouts = dir.path().join("layouts");
    push(&registry, &layouts, "web", "w1", &["v1"], 40);
    push(&registry, &layouts, "web", "w2", &["v2"], 40);
    push(&registry, &layouts, "web", "w3", &["v3"], 2);
    // A real pull of v1 through the registry.
    skopeo_copy(
        &registry.image("web", "v1"),
        &format!("oci:{}:x", dir.path().join("pulled").display()),
        &[],
    );
    let log = dir.path().join("registry.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("/v2/web/manifests/v1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the registry logged no pull"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ecr = dir.path().join("pulled.json");
    std::fs::write(
        &ecr,
        r#"{"rules":[{"rulePriority":1,"description":"not pulled for 30 days",
          "selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"sinceImagePulled",
          "countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#,
    )
    .unwrap();
    let native = dir.path().join("pulled.yml");
    std::fs::write(
        &native,
        "rules:\n  - name: in use\n    keep: {pulled_within: 30d}\nmax_removed_share: 0.9\n",
    )
    .unwrap();
    let log_arg = log.to_str().unwrap().to_owned();

    // The log began minutes ago: it cannot tell who was not pulled for 30 days.
    for policy in [&ecr, &native] {
        let (removed, summary) = judged(&registry.root, policy, &["--pulls", &log_arg]);
        assert!(removed.is_empty(), "{removed:?}");
        assert!(
            why(&summary, "web", "v2").contains("the pull records begin at"),
            "{summary}"
        );
        assert!(summary["policy"]["pulls"].as_u64() >= Some(1));
    }

    // With last month's rotated log (gzipped, as logrotate leaves it) the window is covered.
    let old = SystemTime::now() - Duration::from_secs(35 * DAY);
    let line = format!(
        "time=\"{}\" level=info msg=\"response completed\" http.request.method=GET \
         http.request.uri=\"/v2/\" http.response.status=200\n",
        humantime::format_rfc3339_seconds(old)
    );
    let rotated = dir.path().join("registry.log.1.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, line.as_bytes()).unwrap();
    std::fs::write(&rotated, gz.finish().unwrap()).unwrap();
    let rotated_arg = rotated.to_str().unwrap().to_owned();
    for policy in [&ecr, &native] {
        let (removed, summary) = judged(
            &registry.root,
            policy,
            &["--pulls", &log_arg, "--pulls", &rotated_arg],
        );
        assert_eq!(removed, set(&["web:v2"]), "{summary}");
        assert!(
            why(&summary, "web", "v1").contains("last pulled"),
            "{summary}"
        );
        // Never pulled but pushed two days ago: the push time stands in.
        assert!(
            why(&summary, "web", "v3").contains("never pulled"),
            "{summary}"
        );
    }
}
