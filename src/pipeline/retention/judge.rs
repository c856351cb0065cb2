//! Applies a [`Policy`] to a repository: what each rule selects (tags, or ECR's images), decided by
//! the first rule that selects it, kept or expired with the reason; pins first, never expired;
//! rules on pulls that the records do not cover keep everything they select. Then the guards over
//! the whole run. Judges only: [`crate::pipeline::execute::sweep`] removes.

use crate::model::digest::Digest;
use crate::model::time::rfc3339;
use crate::pipeline::collect::inventory::Tag;
use crate::pipeline::retention::pins::Pins;
use crate::pipeline::retention::policy::{Policy, Rule, Status, Unit};
use crate::pipeline::retention::pulls::Pulls;
use std::cmp::Reverse;
use std::time::Duration;

/// Pull records older than this at their newest do not cover a window that ends now.
pub const STALE_PULLS: Duration = Duration::from_secs(86_400);

/// What a rule (or a pin) made of one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub keep: bool,
    /// The deciding rule's name; `None` for a pin or where no rule selects.
    pub rule: Option<String>,
    pub reason: String,
}

/// Something a rule judges: one tag (regsweep's rules, ACR) or an image with all its tags (ECR).
struct Candidate {
    tags: Vec<usize>,
    names: Vec<String>,
    digest: Option<Digest>,
    pushed: i64,
    pulled: Option<i64>,
    decided: Option<Judgement>,
}

/// Judges the tags of `repo`; one judgement a tag, in the order of `tags`.
pub fn judge(
    policy: &Policy,
    repo: &str,
    tags: &[Tag],
    pins: &Pins,
    pulls: Option<&Pulls>,
    now: i64,
) -> Vec<Judgement> {
    let mut units = tagged_units(policy, tags);
    decide(policy, repo, &mut units, pins, pulls, now);
    let mut out = vec![not_selected(); tags.len()];
    for u in units {
        if let Some(j) = u.decided {
            for i in u.tags {
                out[i] = j.clone();
            }
        }
    }
    out
}

/// Judges the untagged manifests of `repo` (`untagged`: digest and push time, the time of its
/// revision link), for `gc -m --policy`; one judgement each, in their order. The tags stand beside
/// them as they do in `prune-tags`, so that a rule on `any` counts tagged and untagged together;
/// their judgements are dropped (gc removes no tag).
pub fn judge_untagged(
    policy: &Policy,
    repo: &str,
    tags: &[Tag],
    untagged: &[(Digest, i64)],
    pins: &Pins,
    pulls: Option<&Pulls>,
    now: i64,
) -> Vec<Judgement> {
    let mut units = tagged_units(policy, tags);
    let first = units.len();
    units.extend(untagged.iter().map(|&(d, pushed)| Candidate {
        tags: Vec::new(),
        names: Vec::new(),
        digest: Some(d),
        pushed,
        pulled: None,
        decided: None,
    }));
    decide(policy, repo, &mut units, pins, pulls, now);
    units
        .drain(first..)
        .map(|u| u.decided.unwrap_or_else(not_selected))
        .collect()
}

fn not_selected() -> Judgement {
    Judgement {
        keep: true,
        rule: None,
        reason: "no rule selects it".into(),
    }
}

/// What the policy judges of `tags`: each tag, or each image with all its tags.
fn tagged_units(policy: &Policy, tags: &[Tag]) -> Vec<Candidate> {
    let mut units: Vec<Candidate> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let same = match policy.unit {
            Unit::Tag => None,
            Unit::Image => t
                .current
                .and_then(|d| units.iter_mut().find(|u| u.digest == Some(d))),
        };
        match same {
            Some(u) => {
                u.tags.push(i);
                u.names.push(t.name.to_string());
                u.pushed = u.pushed.max(t.moved);
            }
            None => units.push(Candidate {
                tags: vec![i],
                names: vec![t.name.to_string()],
                digest: t.current,
                pushed: t.moved,
                pulled: None,
                decided: None,
            }),
        }
    }
    units
}

/// Pins first, then the rules in order, each deciding what it selects and no earlier one decided.
fn decide(
    policy: &Policy,
    repo: &str,
    units: &mut [Candidate],
    pins: &Pins,
    pulls: Option<&Pulls>,
    now: i64,
) {
    for u in units.iter_mut() {
        if let Some(p) = pulls {
            u.pulled = p.last(repo, &u.names, u.digest.as_ref());
        }
        let pinned = u
            .names
            .iter()
            .find(|n| pins.tag(repo, n))
            .map(|n| format!("{repo}:{n}"))
            .or_else(|| {
                u.digest
                    .filter(|d| pins.digest(repo, d))
                    .map(|d| format!("{repo}@{d}"))
            });
        if let Some(pin) = pinned {
            u.decided = Some(Judgement {
                keep: true,
                rule: None,
                reason: format!("pinned ({pin} is in use)"),
            });
        }
    }
    for rule in &policy.rules {
        if rule.selects_repository(repo) {
            apply(policy, rule, units, pulls, now);
        }
    }
}

fn selects(policy: &Policy, rule: &Rule, u: &Candidate) -> bool {
    let tagged = !u.names.is_empty();
    match rule.status {
        Status::Untagged => return !tagged,
        Status::Tagged if !tagged => return false,
        _ => {}
    }
    let included = match policy.unit {
        Unit::Tag => {
            rule.tags.is_empty()
                || u.names
                    .first()
                    .is_some_and(|n| rule.tags.iter().any(|p| p.is_match(n)))
        }
        // ECR: every pattern matches one of the image's tags.
        Unit::Image => rule
            .tags
            .iter()
            .all(|p| u.names.iter().any(|n| p.is_match(n))),
    };
    included
        && !rule
            .exclude_tags
            .iter()
            .any(|p| u.names.iter().any(|n| p.is_match(n)))
}

fn apply(policy: &Policy, rule: &Rule, units: &mut [Candidate], pulls: Option<&Pulls>, now: i64) {
    let mut chosen: Vec<usize> = (0..units.len())
        .filter(|&i| selects(policy, rule, &units[i]))
        .filter(|&i| policy.counts_decided || units[i].decided.is_none())
        .collect();
    let key = |u: &Candidate| {
        (
            Reverse(u.pushed),
            u.names.first().cloned().unwrap_or_default(),
            u.digest,
        )
    };
    chosen.sort_by_key(|&i| key(&units[i]));
    let mut by_pull = chosen.clone();
    by_pull.sort_by_key(|&i| {
        let u = &units[i];
        (Reverse(u.pulled.unwrap_or(u.pushed)), key(u))
    });
    let uncovered = rule
        .keep
        .on_pulls()
        .then(|| coverage(rule, pulls, now))
        .flatten();
    let k = &rule.keep;
    for (rank, &i) in chosen.iter().enumerate() {
        if units[i].decided.is_some() {
            continue;
        }
        let u = &units[i];
        let pull_rank = by_pull.iter().position(|&j| j == i).unwrap_or(usize::MAX);
        let last_pull = u.pulled.unwrap_or(u.pushed);
        let pulled_words = match u.pulled {
            Some(t) => format!("last pulled {}", rfc3339(t)),
            None => format!("never pulled in the records, pushed {}", rfc3339(u.pushed)),
        };
        let mut kept = None;
        let mut failed = Vec::new();
        if k.all {
            kept = Some("the rule keeps all it selects".to_owned());
        }
        if let Some(n) = k.newest {
            if rank < n {
                kept.get_or_insert(format!("newest {} of {n} by push", rank + 1));
            } else {
                failed.push(format!("not among the newest {n} (number {})", rank + 1));
            }
        }
        if let Some(n) = k.most_recently_pulled {
            if pull_rank < n {
                kept.get_or_insert(format!(
                    "among the {n} most recently pulled ({pulled_words})"
                ));
            } else {
                failed.push(format!(
                    "not among the {n} most recently pulled ({pulled_words})"
                ));
            }
        }
        if let Some(d) = k.pushed_within {
            let since = now - d.as_secs() as i64;
            if u.pushed > since {
                kept.get_or_insert(format!(
                    "pushed {} within {}",
                    rfc3339(u.pushed),
                    humantime::format_duration(d)
                ));
            } else {
                failed.push(format!(
                    "pushed {}, before {}",
                    rfc3339(u.pushed),
                    rfc3339(since)
                ));
            }
        }
        if let Some(d) = k.pulled_within {
            let since = now - d.as_secs() as i64;
            if last_pull > since {
                kept.get_or_insert(format!(
                    "{pulled_words}, within {}",
                    humantime::format_duration(d)
                ));
            } else {
                failed.push(format!(
                    "{pulled_words}, not within {}",
                    humantime::format_duration(d)
                ));
            }
        }
        let judgement = match (kept, &uncovered) {
            (Some(why), _) => Judgement {
                keep: true,
                rule: Some(rule.name.clone()),
                reason: why,
            },
            (None, Some(gap)) => Judgement {
                keep: true,
                rule: Some(rule.name.clone()),
                reason: format!("kept: {gap}"),
            },
            (None, None) => Judgement {
                keep: false,
                rule: Some(rule.name.clone()),
                reason: if failed.is_empty() {
                    "the rule expires all it selects".into()
                } else {
                    failed.join("; ")
                },
            },
        };
        units[i].decided = Some(judgement);
    }
}

/// Why the pull records cannot tell for this rule, or `None` when they cover its window.
fn coverage(rule: &Rule, pulls: Option<&Pulls>, now: i64) -> Option<String> {
    let Some((from, to)) = pulls.and_then(Pulls::span) else {
        return Some("the rule judges by pulls and no pull records were given (--pulls)".into());
    };
    if to < now - STALE_PULLS.as_secs() as i64 {
        return Some(format!(
            "the pull records end at {}, more than a day before this run",
            rfc3339(to)
        ));
    }
    if let Some(d) = rule.keep.pulled_within {
        let since = now - d.as_secs() as i64;
        if from > since {
            return Some(format!(
                "the pull records begin at {}, after the rule's window begins ({})",
                rfc3339(from),
                rfc3339(since)
            ));
        }
    }
    None
}

/// A guard the run would break.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Breach {
    #[error(
        "the policy would remove every tag of {repos} (allow_emptying_repositories: true in the \
         policy allows it)"
    )]
    Emptied { repos: String },
    #[error(
        "the policy would remove {removed} of {total} tags, more than its max_removed_share of \
         {share} (raise it in the policy to allow it)"
    )]
    Share {
        removed: usize,
        total: usize,
        share: f64,
    },
}

/// The guards over a whole run: (repository, tags, removed) for each judged repository.
pub fn guards(policy: &Policy, repos: &[(String, usize, usize)]) -> Vec<Breach> {
    let mut out = Vec::new();
    let emptied: Vec<String> = repos
        .iter()
        .filter(|(_, tags, removed)| *tags > 0 && tags == removed)
        .map(|(r, _, _)| r.clone())
        .collect();
    if !emptied.is_empty() && !policy.allow_emptying_repositories {
        out.push(Breach::Emptied {
            repos: crate::model::text::first_few(&emptied, 5),
        });
    }
    let total: usize = repos.iter().map(|r| r.1).sum();
    let removed: usize = repos.iter().map(|r| r.2).sum();
    if total > 0 && removed as f64 > policy.max_removed_share * total as f64 {
        out.push(Breach::Share {
            removed,
            total,
            share: policy.max_removed_share,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn d(n: u8) -> Digest {
        Digest::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
    }

    /// An image: tags on one manifest, pushed `days` ago.
    fn image(n: u8, tags: &[&str], days: i64) -> Vec<Tag> {
        tags.iter()
            .map(|t| Tag {
                name: (*t).into(),
                current: Some(d(n)),
                moved: NOW - days * DAY,
                index: thin_vec::ThinVec::new(),
            })
            .collect()
    }

    fn removed(policy: &str, tags: &[Tag]) -> Vec<String> {
        let p = Policy::parse("p", policy).unwrap();
        let j = judge(&p, "repo", tags, &Pins::default(), None, NOW);
        let mut out: Vec<String> = tags
            .iter()
            .zip(&j)
            .filter(|(_, j)| !j.keep)
            .map(|(t, _)| t.name.to_string())
            .collect();
        out.sort();
        out
    }

    /// AWS's "Filtering on multiple rules", example A: rule 1 expires A (prod, keep 1); rule 2
    /// (beta, keep 1) would mark A and B, but B matched rule 1's tags: only A expires.
    #[test]
    fn ecr_multiple_rules_example_a() {
        let tags = [
            image(1, &["beta-1", "prod-1"], 10),
            image(2, &["beta-2", "prod-2"], 9),
            image(3, &["beta-3"], 8),
        ]
        .concat();
        let policy = r#"{"rules":[
          {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged",
           "tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
          {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged",
           "tagPatternList":["beta*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
        assert_eq!(removed(policy, &tags), ["beta-1", "prod-1"]);
    }

    /// Example B: the same repository with C also tagged prod-3; rule 1 (prod, keep 1) marks A
    /// and B; rule 2 (beta, keep 1) sees all three, and C is newest: A and B expire.
    #[test]
    fn ecr_multiple_rules_example_b() {
        let tags = [
            image(1, &["beta-1", "prod-1"], 10),
            image(2, &["beta-2", "prod-2"], 9),
            image(3, &["beta-3", "prod-3"], 8),
        ]
        .concat();
        let policy = r#"{"rules":[
          {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged",
           "tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
          {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged",
           "tagPatternList":["beta*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
        assert_eq!(
            removed(policy, &tags),
            ["beta-1", "beta-2", "prod-1", "prod-2"]
        );
    }

    /// AWS's "Filtering on multiple tags in a single rule": alpha* and beta* select only the
    /// images with both (C and F); by age (older than 5 days) C expires; by count (keep 1) C too.
    #[test]
    fn ecr_multiple_tags_in_one_rule() {
        let tags = [
            image(1, &["alpha-1"], 12),
            image(2, &["beta-1"], 11),
            image(3, &["alpha-2", "beta-2"], 10),
            image(4, &["alpha-3"], 4),
            image(5, &["beta-3"], 3),
            image(6, &["alpha-4", "beta-4"], 2),
        ]
        .concat();
        let by = |count: &str| {
            format!(
                r#"{{"rules":[{{"rulePriority":1,"selection":{{"tagStatus":"tagged",
                "tagPatternList":["alpha*","beta*"],{count}}},"action":{{"type":"expire"}}}}]}}"#
            )
        };
        let age = by(r#""countType":"sinceImagePushed","countUnit":"days","countNumber":5"#);
        assert_eq!(removed(&age, &tags), ["alpha-2", "beta-2"]);
        let count = by(r#""countType":"imageCountMoreThan","countNumber":1"#);
        assert_eq!(removed(&count, &tags), ["alpha-2", "beta-2"]);
    }

    /// AWS's "Filtering on all images": tagStatus any, keep 1: everything but the newest image.
    #[test]
    fn ecr_any_keeps_the_newest_image() {
        let tags = [
            image(1, &["alpha-1"], 4),
            image(3, &["alpha-2"], 2),
            image(4, &["git-hash"], 1),
        ]
        .concat();
        let any = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
            "countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
        assert_eq!(removed(any, &tags), ["alpha-1", "alpha-2"]);
    }

    /// Untagged manifests beside the tags: a rule on `any` counts both (the tagged image is the
    /// newest, so every untagged one goes), an untagged rule keeps the newest by push, and a tagged
    /// rule selects none of them.
    #[test]
    fn untagged_manifests_are_counted_with_the_tags_by_any_rules() {
        let tags = image(9, &["latest"], 0);
        let untagged = [
            (d(1), NOW - 3 * DAY),
            (d(2), NOW - DAY),
            (d(3), NOW - 2 * DAY),
        ];
        let kept = |policy: &str| -> Vec<bool> {
            let p = Policy::parse("p", policy).unwrap();
            judge_untagged(&p, "repo", &tags, &untagged, &Pins::default(), None, NOW)
                .iter()
                .map(|j| j.keep)
                .collect()
        };
        let any = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
            "countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
        assert_eq!(kept(any), [false, false, false]);
        let two = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
            "countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}"#;
        assert_eq!(kept(two), [false, true, false]);
        let newest = "rules:\n  - status: untagged\n    keep: {newest: 2}\n";
        assert_eq!(kept(newest), [false, true, true]);
        let tagged = "rules:\n  - tags: ['*']\n    expire: true\n";
        assert_eq!(kept(tagged), [true, true, true]);
        let p = Policy::parse("p", newest).unwrap();
        let pins = Pins::parse(
            "reg:5000/repo@sha256:0101010101010101010101010101010101010101010101010101010101010101",
        )
        .unwrap();
        let j = judge_untagged(&p, "repo", &tags, &untagged, &pins, None, NOW);
        assert!(j[0].keep && j[0].reason.starts_with("pinned"), "{j:?}");
    }

    /// Azure's `acr purge --filter 'hello-world:.*' --ago 1d --keep 2`: tags older than a day
    /// go, except the two most recent.
    #[test]
    fn acr_purge_keeps_the_latest_and_the_recent() {
        let tags = [
            image(1, &["v1"], 5),
            image(2, &["v2"], 4),
            image(3, &["v3"], 3),
            image(4, &["v4"], 2),
            image(5, &["v5"], 0),
        ]
        .concat();
        let p = Policy::parse("p", "acr purge --filter 'repo:.*' --ago 1d --keep 2").unwrap();
        let j = judge(&p, "repo", &tags, &Pins::default(), None, NOW);
        let gone: Vec<&str> = tags
            .iter()
            .zip(&j)
            .filter(|(_, j)| !j.keep)
            .map(|(t, _)| t.name.as_str())
            .collect();
        assert_eq!(gone, ["v1", "v2", "v3"]);
        assert!(
            j[4].keep && j[4].reason.contains("newest 1 of 2"),
            "{:?}",
            j[4]
        );
        assert!(j[0].reason.contains("not among the newest 2"), "{:?}", j[0]);
        let other = judge(&p, "other", &tags, &Pins::default(), None, NOW);
        assert!(other.iter().all(|j| j.keep && j.rule.is_none()));
    }

    #[test]
    fn the_first_rule_that_selects_a_tag_decides_and_pins_win_over_every_rule() {
        let tags = [
            image(1, &["latest"], 30),
            image(2, &["ci-1"], 20),
            image(3, &["ci-2"], 10),
            image(4, &["ci-3"], 1),
            image(5, &["v1.0"], 40),
        ]
        .concat();
        let policy = "rules:\n  - name: keep latest\n    tags: [latest]\n    keep: all\n  \
                      - name: ci\n    tags: ['ci-*']\n    keep: {newest: 1}\n  \
                      - name: old\n    expire: true\n    exclude_tags: ['/^v\\d/']\n\
                      allow_emptying_repositories: true\nmax_removed_share: 1\n";
        let p = Policy::parse("p", policy).unwrap();
        let j = judge(&p, "repo", &tags, &Pins::default(), None, NOW);
        let names = |keep: bool| -> Vec<&str> {
            tags.iter()
                .zip(&j)
                .filter(|(_, j)| j.keep == keep)
                .map(|(t, _)| t.name.as_str())
                .collect()
        };
        assert_eq!(names(false), ["ci-1", "ci-2"]);
        assert_eq!(j[0].rule.as_deref(), Some("keep latest"));
        assert_eq!(j[1].rule.as_deref(), Some("ci"));
        assert_eq!(
            j[4].rule, None,
            "v1.0 is excluded by the last rule: no rule selects it"
        );
        let pins = Pins::parse(&format!("reg.example:5000/repo:ci-1 repo@{}", d(3))).unwrap();
        let j = judge(&p, "repo", &tags, &pins, None, NOW);
        assert!(
            j[1].keep && j[1].reason.contains("pinned (repo:ci-1"),
            "{:?}",
            j[1]
        );
        assert!(
            j[2].keep && j[2].reason.contains("pinned (repo@sha256:03"),
            "{:?}",
            j[2]
        );
    }

    #[test]
    fn rules_on_pulls_refuse_without_records_that_cover_their_window() {
        let tags = [image(1, &["a"], 40), image(2, &["b"], 40)].concat();
        let policy = "rules:\n  - keep: {pulled_within: 30d}\n";
        let p = Policy::parse("p", policy).unwrap();
        let j = judge(&p, "repo", &tags, &Pins::default(), None, NOW);
        assert!(
            j.iter()
                .all(|j| j.keep && j.reason.contains("no pull records"))
        );
        let mut pulls = Pulls::default();
        pulls.record("repo", Some("a"), None, NOW - 2 * DAY);
        pulls.cover(NOW - 10 * DAY);
        pulls.cover(NOW - 3_600);
        let j = judge(&p, "repo", &tags, &Pins::default(), Some(&pulls), NOW);
        // Pulled within the window is known; not pulled is not, before the records begin.
        assert!(j[0].keep && j[0].reason.contains("last pulled"), "{j:?}");
        assert!(j[1].keep && j[1].reason.contains("begin at"), "{j:?}");
        pulls.cover(NOW - 31 * DAY);
        let j = judge(&p, "repo", &tags, &Pins::default(), Some(&pulls), NOW);
        assert!(
            j[0].keep && j[0].reason.contains("last pulled"),
            "{:?}",
            j[0]
        );
        assert!(
            !j[1].keep && j[1].reason.contains("not within 30days"),
            "{:?}",
            j[1]
        );
    }

    #[test]
    fn guards_name_emptied_repositories_and_a_share_too_large() {
        let p = Policy::parse("p", "rules:\n  - expire: true\n").unwrap();
        let b = guards(&p, &[("a".into(), 2, 2), ("b".into(), 4, 0)]);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].to_string().contains("every tag of a"));
        let b = guards(&p, &[("a".into(), 2, 1), ("b".into(), 4, 3)]);
        assert!(
            matches!(
                b[..],
                [Breach::Share {
                    removed: 4,
                    total: 6,
                    ..
                }]
            ),
            "{b:?}"
        );
        assert!(guards(&p, &[("a".into(), 4, 2)]).is_empty());
    }
}
