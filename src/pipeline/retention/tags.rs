//! Which tags go, for `prune-tags`: rules (repository globs, tag patterns, keep the newest N, keep
//! those pushed within a window, only orphan referrer tags) judged against the tags of the matched
//! repositories, each tag kept (and why) or removed. Judges only; [`crate::pipeline::execute::sweep`] removes.

use crate::model::problem::Problem;
use crate::model::progress::Progress;
use crate::model::time::rfc3339;
use crate::pipeline::collect::inventory::Tag;
use crate::pipeline::collect::referrers;
use crate::pipeline::collect::walk;
use crate::pipeline::collect::{AnalysisError, unless_stopped};
use crate::pipeline::plan::file::{LineKind, TagLine};
use crate::storage::Storage;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Serialize;
use std::cmp::Reverse;
use std::time::{Duration, Instant, SystemTime};

/// A rule that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("--repo {pattern:?}: {message}")]
    Repo { pattern: String, message: String },
    #[error("at least one --repo is required (`**` names every repository): no rule, no removal")]
    NoRepo,
    #[error(
        "no rule says which tags go: give --tag, --keep-last, --older-than or \
         --orphan-referrer-tags, or --all-tags to remove every tag of the matched repositories"
    )]
    NoRule,
}

/// Which tags go.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Repositories the rules apply to: `*` is one path level, `**` any depth.
    pub repos: GlobSet,
    /// The `--repo` patterns, in the order of `repos`' globs (to name those that match nothing).
    pub repo_patterns: Vec<String>,
    /// Candidates: tags that match (all tags when absent)…
    pub tag: Option<Regex>,
    /// …and do not match this.
    pub keep_tag: Option<Regex>,
    /// Of the candidates, the N most recently pushed stay.
    pub keep_last: Option<usize>,
    /// Of the candidates, those pushed within this window stay.
    pub older_than: Option<Duration>,
    /// Candidates are only referrer tags whose subject the repository no longer holds (see
    /// [`crate::pipeline::collect::referrers`]).
    pub orphan_referrer_tags: bool,
}

impl Rules {
    /// Refuses rules that would remove every tag of the matched repositories without saying so:
    /// one of `--tag`, `--keep-last`, `--older-than`, `--orphan-referrer-tags`, or `all_tags`.
    pub fn require_a_rule(&self, all_tags: bool) -> Result<(), RuleError> {
        let any = self.tag.is_some()
            || self.keep_last.is_some()
            || self.older_than.is_some()
            || self.orphan_referrer_tags
            || all_tags;
        if any { Ok(()) } else { Err(RuleError::NoRule) }
    }

    /// Compiles the `--repo` globs.
    pub fn repo_globs(patterns: &[String]) -> Result<GlobSet, RuleError> {
        if patterns.is_empty() {
            return Err(RuleError::NoRepo);
        }
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            let glob = GlobBuilder::new(p.trim_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| RuleError::Repo {
                    pattern: p.clone(),
                    message: e.kind().to_string(),
                })?;
            set.add(glob);
        }
        set.build().map_err(|e| RuleError::Repo {
            pattern: patterns.join(" "),
            message: e.to_string(),
        })
    }
}

/// Why a tag stays or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Does not match `--tag`.
    NotCandidate,
    /// With `--orphan-referrer-tags`: not a referrer tag, or its subject is still there.
    NotOrphanReferrer,
    /// Matches `--keep-tag`.
    KeepTag,
    /// Among the `--keep-last` most recently pushed.
    KeepLast,
    /// Pushed within `--older-than`.
    Recent,
    /// Applying a reviewed plan: the plan does not list it.
    NotInPlan,
    /// A policy's rule (or pin, or no rule) keeps it: [`TagDecision::why`] says which and why.
    Policy,
    /// Removed.
    Remove,
}

impl Verdict {
    pub fn removed(self) -> bool {
        self == Verdict::Remove
    }

    pub fn words(self) -> &'static str {
        match self {
            Verdict::NotCandidate => "does not match --tag",
            Verdict::NotOrphanReferrer => "not a referrer tag whose subject is gone",
            Verdict::KeepTag => "matches --keep-tag",
            Verdict::KeepLast => "within --keep-last",
            Verdict::NotInPlan => "not in the plan",
            Verdict::Recent => "newer than --older-than",
            Verdict::Policy => "kept by the policy",
            Verdict::Remove => "",
        }
    }
}

/// One tag of a matched repository and what becomes of it.
#[derive(Debug, Clone)]
pub struct TagDecision {
    pub tag: Tag,
    pub verdict: Verdict,
    /// With a policy: the deciding rule and its reason (`rule "ci": not among the newest 5`).
    pub why: Option<String>,
}

/// A repository that a `--repo` glob matched.
#[derive(Debug, Clone)]
pub struct RepoDecisions {
    pub name: String,
    /// Newest first.
    pub tags: Vec<TagDecision>,
}

/// The decisions for a whole store.
#[derive(Debug)]
pub struct PrunePlan {
    pub repositories: Vec<RepoDecisions>,
    /// Repositories in the store (matched or not).
    pub repositories_total: usize,
    /// `--repo` patterns that matched no repository of the store.
    pub unmatched_repo_globs: Vec<String>,
    pub problems: Vec<Problem>,
    /// Listed tag links that had gone when read: the store moved under the walk.
    pub vanished: u64,
    pub elapsed: Duration,
}

/// Applies the rules to one repository's tags; `orphan` says whether a tag is a referrer tag whose
/// subject the repository no longer holds.
pub fn decide(
    rules: &Rules,
    tags: &[Tag],
    orphan: &dyn Fn(&Tag) -> bool,
    now: SystemTime,
) -> Vec<TagDecision> {
    let mut tags: Vec<Tag> = tags.to_vec();
    newest_first(&mut tags);
    let cutoff = rules
        .older_than
        .map(|d| crate::model::time::unix_seconds(now) - d.as_secs() as i64);
    let mut candidates = 0;
    tags.into_iter()
        .map(|tag| {
            let verdict = if rules.tag.as_ref().is_some_and(|r| !r.is_match(&tag.name)) {
                Verdict::NotCandidate
            } else if rules.orphan_referrer_tags && !orphan(&tag) {
                Verdict::NotOrphanReferrer
            } else if rules
                .keep_tag
                .as_ref()
                .is_some_and(|r| r.is_match(&tag.name))
            {
                Verdict::KeepTag
            } else {
                candidates += 1;
                if rules.keep_last.is_some_and(|n| candidates <= n) {
                    Verdict::KeepLast
                } else if cutoff.is_some_and(|c| tag.moved > c) {
                    Verdict::Recent
                } else {
                    Verdict::Remove
                }
            };
            TagDecision {
                tag,
                verdict,
                why: None,
            }
        })
        .collect()
}

/// Sorts tags newest first; ties by name, so that the result does not depend on listing order.
pub fn newest_first(tags: &mut [Tag]) {
    tags.sort_by(|a, b| (Reverse(a.moved), &a.name).cmp(&(Reverse(b.moved), &b.name)));
}

/// Walks the store and decides every tag of the matched repositories. Never deletes.
pub fn plan(
    storage: &dyn Storage,
    rules: &Rules,
    now: SystemTime,
    progress: &Progress,
) -> Result<PrunePlan, AnalysisError> {
    let start = Instant::now();
    let (repositories, problems, vanished) =
        unless_stopped(progress, walk::scan_repositories_only(storage, progress))?;
    let repositories_total = repositories.len();
    let mut matched = vec![false; rules.repo_patterns.len()];
    for r in &repositories {
        for i in rules.repos.matches(&r.name) {
            matched[i] = true;
        }
    }
    let unmatched_repo_globs = rules
        .repo_patterns
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(p, _)| p.clone())
        .collect();
    let repositories = repositories
        .into_iter()
        .filter(|r| rules.repos.is_match(&r.name))
        .map(|r| {
            // The walk read no blob table: `_layers` links are kept by digest.
            let blobs = crate::pipeline::collect::blob_table::BlobTable::default();
            let orphan = |t: &Tag| referrers::orphan_subject(&r, &blobs, t).is_some();
            RepoDecisions {
                tags: decide(rules, &r.tags, &orphan, now),
                name: r.name,
            }
        })
        .collect();
    Ok(PrunePlan {
        repositories,
        repositories_total,
        unmatched_repo_globs,
        problems,
        vanished,
        elapsed: start.elapsed(),
    })
}

/// What `prune-tags --policy` judges: the policy, the repositories it may touch (`--repo`; all
/// when `None`), pins and pull records.
pub struct PolicyRun<'a> {
    pub policy: &'a crate::pipeline::retention::policy::Policy,
    pub repos: Option<&'a Rules>,
    pub pins: &'a crate::pipeline::retention::pins::Pins,
    pub pulls: Option<&'a crate::pipeline::retention::pulls::Pulls>,
}

/// Walks the store and judges every tag by the policy. Never deletes.
pub fn plan_by_policy(
    storage: &dyn Storage,
    run: &PolicyRun,
    now: SystemTime,
    progress: &Progress,
) -> Result<PrunePlan, AnalysisError> {
    use crate::pipeline::retention::judge::judge;
    let start = Instant::now();
    let (repositories, problems, vanished) =
        unless_stopped(progress, walk::scan_repositories_only(storage, progress))?;
    let repositories_total = repositories.len();
    let mut matched = vec![false; run.repos.map_or(0, |r| r.repo_patterns.len())];
    let now_s = crate::model::time::unix_seconds(now);
    let mut out = Vec::new();
    for r in repositories {
        if let Some(rules) = run.repos {
            for i in rules.repos.matches(&r.name) {
                matched[i] = true;
            }
            if !rules.repos.is_match(&r.name) {
                continue;
            }
        }
        if !run
            .policy
            .rules
            .iter()
            .any(|rule| rule.selects_repository(&r.name))
        {
            continue;
        }
        let mut tags = r.tags;
        newest_first(&mut tags);
        let judged = judge(run.policy, &r.name, &tags, run.pins, run.pulls, now_s);
        let tags = tags
            .into_iter()
            .zip(judged)
            .map(|(tag, j)| TagDecision {
                tag,
                verdict: if j.keep {
                    Verdict::Policy
                } else {
                    Verdict::Remove
                },
                why: Some(match j.rule {
                    Some(rule) => format!("rule {rule:?}: {}", j.reason),
                    None => j.reason,
                }),
            })
            .collect();
        out.push(RepoDecisions { name: r.name, tags });
    }
    let unmatched_repo_globs = run.repos.map_or_else(Vec::new, |rules| {
        rules
            .repo_patterns
            .iter()
            .zip(&matched)
            .filter(|(_, m)| !**m)
            .map(|(p, _)| p.clone())
            .collect()
    });
    Ok(PrunePlan {
        repositories: out,
        repositories_total,
        unmatched_repo_globs,
        problems,
        vanished,
        elapsed: start.elapsed(),
    })
}

impl PrunePlan {
    /// The tags to remove, as plan items.
    pub fn items(&self) -> impl Iterator<Item = TagLine> + Clone {
        self.repositories.iter().flat_map(|r| {
            r.tags
                .iter()
                .filter(|d| d.verdict.removed())
                .map(|d| TagLine {
                    kind: LineKind::Tag,
                    repo: r.name.clone(),
                    tag: d.tag.name.to_string(),
                    digest: d.tag.current,
                    pushed: rfc3339(d.tag.moved),
                })
        })
    }

    pub fn removed(&self) -> usize {
        self.items().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn tag(name: &str, moved: i64) -> Tag {
        Tag {
            name: name.into(),
            current: None,
            moved,
            index: thin_vec::ThinVec::new(),
        }
    }

    fn rules(repos: &[&str]) -> Rules {
        let repos: Vec<String> = repos.iter().map(|s| s.to_string()).collect();
        Rules {
            repos: Rules::repo_globs(&repos).unwrap(),
            repo_patterns: repos.clone(),
            tag: None,
            keep_tag: None,
            keep_last: None,
            older_than: None,
            orphan_referrer_tags: false,
        }
    }

    fn removed(rules: &Rules, tags: &[Tag], now: i64) -> Vec<String> {
        let mut out: Vec<String> = decide(
            rules,
            tags,
            &|_| false,
            UNIX_EPOCH + Duration::from_secs(now as u64),
        )
        .into_iter()
        .filter(|d| d.verdict.removed())
        .map(|d| d.tag.name.to_string())
        .collect();
        out.sort();
        out
    }

    #[test]
    fn repo_globs_match_one_level_or_any_depth() {
        let one = rules(&["team/*"]).repos;
        assert!(one.is_match("team/app"));
        assert!(!one.is_match("team/x/tool"));
        assert!(!one.is_match("team"));
        let deep = rules(&["team/**"]).repos;
        assert!(deep.is_match("team/app") && deep.is_match("team/x/tool"));
        assert!(!deep.is_match("teams/app"));
        let all = rules(&["**"]).repos;
        assert!(all.is_match("a") && all.is_match("a/b/c"));
        assert!(matches!(Rules::repo_globs(&[]), Err(RuleError::NoRepo)));
        assert!(Rules::repo_globs(&["team/[".into()]).is_err());
    }

    #[test]
    fn rules_choose_candidates_then_keep_the_newest_and_the_recent() {
        let tags = [
            tag("a", 100),
            tag("b", 200),
            tag("c", 300),
            tag("latest", 50),
            tag("v1", 10),
        ];
        let mut r = rules(&["**"]);
        assert_eq!(removed(&r, &tags, 1000), ["a", "b", "c", "latest", "v1"]);
        r.keep_tag = Some(Regex::new("^(latest|v\\d+)$").unwrap());
        assert_eq!(removed(&r, &tags, 1000), ["a", "b", "c"]);
        r.keep_last = Some(2);
        assert_eq!(removed(&r, &tags, 1000), ["a"]);
        r.keep_last = None;
        r.older_than = Some(Duration::from_secs(750));
        // Pushed within 750 s of 1000: after 250.
        assert_eq!(removed(&r, &tags, 1000), ["a", "b"]);
        r.keep_last = Some(1);
        assert_eq!(removed(&r, &tags, 1000), ["a", "b"]);
        r.older_than = None;
        r.tag = Some(Regex::new("^[ab]$").unwrap());
        // Candidates are a and b only; the newest of them (b) stays.
        assert_eq!(removed(&r, &tags, 1000), ["a"]);
        // --keep-tag wins over --tag.
        r.keep_last = None;
        r.keep_tag = Some(Regex::new("a").unwrap());
        assert_eq!(removed(&r, &tags, 1000), ["b"]);
    }
}
