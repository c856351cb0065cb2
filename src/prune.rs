//! The `prune-tags` job: remove tags by rule, so that `gc -m` can then free what only they kept.
//!
//! Only tags go: a removed tag's `_manifests/tags/<tag>/` folder (its index entries first, its
//! `current` link last, so that a run cut off leaves a tag that is either whole or still named by its
//! `current` link, and the next run finishes it). Manifests and blobs are `gc`'s business.

use crate::digest::Digest;
use crate::inventory::{self, Tag};
use crate::problem::Problem;
use crate::progress::{AnalysisError, Count, Progress};
use crate::recheck::{self, Judged, JudgedRepo, Refused, Relisted, Since};
use crate::referrers;
use crate::storage::Storage;
use crate::sweep::{self, TagsDeleted};
use crate::text::{count, thousands};
use crate::time::rfc3339;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Serialize;
use std::cmp::Reverse;
use std::io::Write;
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
    /// [`crate::referrers`]).
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
    /// Removed.
    Remove,
}

impl Verdict {
    pub fn removed(self) -> bool {
        self == Verdict::Remove
    }

    fn words(self) -> &'static str {
        match self {
            Verdict::NotCandidate => "does not match --tag",
            Verdict::NotOrphanReferrer => "not a referrer tag whose subject is gone",
            Verdict::KeepTag => "matches --keep-tag",
            Verdict::KeepLast => "within --keep-last",
            Verdict::NotInPlan => "not in the plan",
            Verdict::Recent => "newer than --older-than",
            Verdict::Remove => "",
        }
    }
}

/// One tag of a matched repository and what becomes of it.
#[derive(Debug, Clone)]
pub struct TagDecision {
    pub tag: Tag,
    pub verdict: Verdict,
}

/// A repository that a `--repo` glob matched.
#[derive(Debug, Clone)]
pub struct RepoDecisions {
    pub name: String,
    /// Newest first.
    pub tags: Vec<TagDecision>,
}

/// A plan item: a tag to remove.
#[derive(Debug, Clone, Serialize)]
pub struct TagItem<'a> {
    pub kind: &'static str,
    pub repo: &'a str,
    pub tag: &'a str,
    pub digest: Option<Digest>,
    pub pushed: String,
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
        .map(|d| inventory::unix_seconds(now) - d.as_secs() as i64);
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
            TagDecision { tag, verdict }
        })
        .collect()
}

/// Sorts tags newest first; ties by name, so that the result does not depend on listing order.
fn newest_first(tags: &mut [Tag]) {
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
        progress.unless_stopped(inventory::scan_repositories_only(storage, progress))?;
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
            let blobs = inventory::BlobTable::default();
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

impl PrunePlan {
    /// The tags to remove, as plan items.
    pub fn items(&self) -> impl Iterator<Item = TagItem<'_>> + Clone {
        self.repositories.iter().flat_map(|r| {
            r.tags
                .iter()
                .filter(|d| d.verdict.removed())
                .map(|d| TagItem {
                    kind: "tag",
                    repo: &r.name,
                    tag: &d.tag.name,
                    digest: d.tag.current,
                    pushed: rfc3339(d.tag.moved),
                })
        })
    }

    pub fn removed(&self) -> usize {
        self.items().count()
    }

    /// The report, before any deletion.
    pub fn report(&self, storage: &str) -> PruneReport {
        let repositories: Vec<RepoCounts> = self
            .repositories
            .iter()
            .map(|r| {
                let removed = r.tags.iter().filter(|d| d.verdict.removed()).count();
                RepoCounts {
                    name: r.name.clone(),
                    tags: r.tags.len(),
                    kept: r.tags.len() - removed,
                    removed,
                }
            })
            .collect();
        PruneReport {
            storage: storage.to_owned(),
            dry_run: true,
            repositories_total: self.repositories_total,
            repositories_matched: repositories.len(),
            tags: repositories.iter().map(|r| r.tags).sum(),
            kept: repositories.iter().map(|r| r.kept).sum(),
            removed: repositories.iter().map(|r| r.removed).sum(),
            repositories,
            unmatched_repo_globs: self.unmatched_repo_globs.clone(),
            problems: self.problems.clone(),
            deleted: None,
            applied: None,
            plan_file: None,
            elapsed_ms: self.elapsed.as_millis() as u64,
        }
    }
}

/// Tag counts of one matched repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepoCounts {
    pub name: String,
    pub tags: usize,
    pub kept: usize,
    pub removed: usize,
}

/// The `--json` summary.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub storage: String,
    pub dry_run: bool,
    pub repositories_total: usize,
    pub repositories_matched: usize,
    pub tags: usize,
    pub kept: usize,
    pub removed: usize,
    pub repositories: Vec<RepoCounts>,
    /// `--repo` patterns that matched no repository (a typo is not "nothing to do").
    pub unmatched_repo_globs: Vec<String>,
    pub problems: Vec<Problem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<TagsDeleted>,
    /// Where `--plan` wrote the plan, and the command that executes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<crate::report::PlanWritten>,
    /// When a reviewed plan file was applied: how its tags fared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedTags>,
    pub elapsed_ms: u64,
}

impl crate::report::WriteJson for PruneReport {}

impl PruneReport {}

/// The human report: per matched repository, each tag kept (and why) or removed.
pub fn write_human(
    plan: &PrunePlan,
    report: &PruneReport,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for r in plan.repositories.iter().filter(|r| !r.tags.is_empty()) {
        let removed = r.tags.iter().filter(|d| d.verdict.removed()).count();
        writeln!(
            out,
            "{}: {} kept, {} removed",
            r.name,
            thousands((r.tags.len() - removed) as u64),
            thousands(removed as u64)
        )?;
        for d in &r.tags {
            let digest = d.tag.current.map_or_else(
                || "(no current link)".to_owned(),
                |d| {
                    let s = d.to_string();
                    s[..19].to_owned()
                },
            );
            let (action, why) = if d.verdict.removed() {
                ("remove", String::new())
            } else {
                ("keep  ", format!("  ({})", d.verdict.words()))
            };
            writeln!(
                out,
                "  {action} {:<24} {digest}  {}{why}",
                d.tag.name,
                rfc3339(d.tag.moved)
            )?;
        }
    }
    for p in &report.problems {
        writeln!(out, "problem: {p}")?;
    }
    writeln!(
        out,
        "{} of {} matched: {}, {} kept, {} removed",
        thousands(report.repositories_matched as u64),
        count(
            report.repositories_total as u64,
            "repository",
            "repositories"
        ),
        count(report.tags as u64, "tag", "tags"),
        thousands(report.kept as u64),
        thousands(report.removed as u64)
    )?;
    if let Some(a) = &report.applied {
        writeln!(
            out,
            "Plan file: {}: {} still as reviewed, {} already gone.",
            count(a.planned, "tag", "tags"),
            thousands(a.eligible),
            thousands(a.already_gone)
        )?;
    }
    if let Some(p) = &report.plan_file {
        p.write_human(out)?;
    }
    match &report.deleted {
        None => writeln!(
            out,
            "Nothing was deleted (dry run). --delete removes these tags; `regsweep gc -m` then frees what only they kept."
        ),
        Some(d) => {
            writeln!(out, "Deleted {}.", count(d.tags, "tag", "tags"))?;
            for f in &d.failures {
                writeln!(out, "  failed: {}: {}", f.key, f.error)?;
            }
            writeln!(
                out,
                "Run `regsweep gc -m` to free the manifests and blobs only these tags kept."
            )
        }
    }
}

/// Why a deletion did not start.
#[derive(Debug, thiserror::Error)]
pub enum PruneRefused {
    #[error(
        "refusing to delete: {count} problem(s) in the store, the first: {first}; fix them (see `regsweep audit`) and run again"
    )]
    Problems { count: usize, first: String },
    /// The store is not as the tags were judged (or could not be listed again to tell).
    #[error(transparent)]
    Recheck(#[from] Refused),
    #[error(
        "refusing to apply: {count} tag(s) of the plan moved since it was made at {created}: {examples}; \
         nothing was deleted. Make a new plan with `regsweep prune-tags --plan` and review it"
    )]
    Reviewed {
        count: usize,
        created: String,
        examples: String,
    },
}

impl PruneRefused {
    /// True when a stop was asked for (the run ends as cut off, not as refused).
    pub fn stopped(&self) -> bool {
        matches!(self, PruneRefused::Recheck(Refused::Stopped(_)))
    }
}

/// How a reviewed `prune-tags` plan fared against the store as it is now.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedTags {
    /// Tags in the plan file.
    pub planned: u64,
    /// Of those, still as reviewed: what is removed.
    pub eligible: u64,
    /// Of those, gone already (an earlier apply, or someone else).
    pub already_gone: u64,
}

/// The plan that removes exactly the tags of a reviewed plan file (`lines`, made at `created`), from
/// the store as it is now: every other tag of their repositories stays (`not in the plan`). Refuses
/// when a listed tag names another manifest, or was pushed again, since the plan; a listed tag that
/// is gone is skipped, so an apply cut off and run again converges. [`execute`] then re-checks as
/// for `prune-tags --delete`.
pub fn from_reviewed(
    storage: &dyn Storage,
    lines: &[crate::plan_file::TagLine],
    created: &str,
    progress: &Progress,
) -> Result<(PrunePlan, AppliedTags), PruneRefused> {
    use std::collections::{BTreeMap, BTreeSet};
    let start = Instant::now();
    let Relisted {
        repositories: now,
        problems,
    } = recheck::relist(storage, progress)?;
    let repositories_total = now.len();
    let mut listed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut applied = AppliedTags {
        planned: lines.len() as u64,
        eligible: 0,
        already_gone: 0,
    };
    let mut moved = Vec::new();
    for line in lines {
        let found = now
            .binary_search_by(|r| r.name.as_str().cmp(&line.repo))
            .ok()
            .and_then(|i| now[i].tags.iter().find(|t| t.name == line.tag));
        match found {
            None => applied.already_gone += 1,
            Some(t) if t.current == line.digest && rfc3339(t.moved) == line.pushed => {
                applied.eligible += 1;
                listed.entry(&line.repo).or_default().insert(&line.tag);
            }
            Some(t) => moved.push(format!(
                "{}:{} was {} pushed {} and is now {} pushed {}",
                line.repo,
                line.tag,
                line.digest.map_or("nothing".into(), |d| d.to_string()),
                line.pushed,
                t.current.map_or("nothing".into(), |d| d.to_string()),
                rfc3339(t.moved)
            )),
        }
    }
    if !moved.is_empty() {
        return Err(PruneRefused::Reviewed {
            count: moved.len(),
            created: created.to_owned(),
            examples: crate::text::first_few(&moved, 5),
        });
    }
    let repositories = now
        .into_iter()
        .filter_map(|r| {
            let names = listed.get(r.name.as_str())?;
            let mut tags = r.tags;
            newest_first(&mut tags);
            let tags: Vec<TagDecision> = tags
                .into_iter()
                .map(|tag| TagDecision {
                    verdict: if names.contains(tag.name.as_str()) {
                        Verdict::Remove
                    } else {
                        Verdict::NotInPlan
                    },
                    tag,
                })
                .collect();
            Some(RepoDecisions { name: r.name, tags })
        })
        .collect();
    Ok((
        PrunePlan {
            repositories,
            repositories_total,
            unmatched_repo_globs: Vec::new(),
            problems,
            vanished: 0,
            elapsed: start.elapsed(),
        },
        applied,
    ))
}

/// Removes the planned tags: each tag's index entries, then its `current` link, then its folder.
///
/// Just before, the repositories are listed again ([`crate::recheck`]): when a tag of a matched
/// repository was pushed, moved or re-pushed since the plan was made, or listed links vanished during
/// the walk, nothing is deleted (a tag pushed during the walk could otherwise be removed as old).
///
/// A stop asked for before the deletes start refuses them; once started, the few deletes a tag
/// takes are finished.
pub fn execute(
    storage: &dyn Storage,
    plan: &PrunePlan,
    progress: &Progress,
) -> Result<TagsDeleted, PruneRefused> {
    if let Some(first) = plan.problems.first() {
        return Err(PruneRefused::Problems {
            count: plan.problems.len(),
            first: first.to_string(),
        });
    }
    recheck::none_vanished(plan.vanished)?;
    let judged = Judged::tags_of(
        plan.repositories
            .iter()
            .map(|r| JudgedRepo {
                name: &r.name,
                tags: r.tags.iter().map(|d| &d.tag).collect(),
                revisions: None,
            })
            .collect(),
    );
    recheck::recheck(storage, progress, &judged, Since::Analysis)?;
    let removed: Vec<(&str, &Tag)> = plan
        .repositories
        .iter()
        .flat_map(|r| {
            r.tags
                .iter()
                .filter(|d| d.verdict.removed())
                .map(move |d| (r.name.as_str(), &d.tag))
        })
        .collect();
    progress.phase(
        &format!("removing {} tags", removed.len()),
        Count::Deleted,
        Some(removed.len() as u64),
    );
    Ok(sweep::remove_tags(storage, &removed, progress))
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
            index: vec![],
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
        .map(|d| d.tag.name)
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
