//! The `prune-tags` report: per matched repository, each tag kept (and why) or removed, and what a
//! deletion or a reviewed plan file did. Built from [`crate::pipeline::retention::tags::PrunePlan`].

use crate::model::problem::Problem;
use crate::model::text::{count, thousands};
use crate::model::time::rfc3339;
use crate::pipeline::execute::tags::TagsDeleted;
use crate::pipeline::retention::tags::PrunePlan;
use crate::report::{PlanWritten, WriteJson};
use serde::Serialize;
use std::io::Write;

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
    /// The store is owned by a metadata database (GitLab's `database-in-use` lock file): the
    /// layout does not say what is live, and nothing may be deleted offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_in_use: Option<crate::pipeline::guard::database_owner::DatabaseOwned>,
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
    /// What regsweep's trash holds as the run leaves it (absent when it is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash: Option<crate::pipeline::execute::trash::Held>,
    /// Where `--plan` wrote the plan, and the command that executes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<PlanWritten>,
    /// When a reviewed plan file was applied: how its tags fared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedTags>,
    /// With `--policy`: which, and what it judged with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySummary>,
    /// With `--explain`: every judged tag, what became of it, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decisions: Option<Vec<DecisionLine>>,
    /// Guards the policy run broke: nothing was deleted and no plan written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    pub elapsed_ms: u64,
}

/// The policy a run applied.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub path: String,
    pub format: crate::pipeline::retention::policy::Format,
    pub unit: crate::pipeline::retention::policy::Unit,
    pub rules: usize,
    pub pins: usize,
    /// Pulls read from the records, and the span they cover (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_records_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_records_to: Option<String>,
}

impl PolicySummary {
    /// The policy as a report names it: its file, its kind, how many rules, pins and pulls.
    pub fn of(
        policy: &crate::pipeline::retention::policy::Policy,
        pins: &crate::pipeline::retention::pins::Pins,
        pulls: Option<&crate::pipeline::retention::pulls::Pulls>,
    ) -> PolicySummary {
        let span = pulls.and_then(|p| p.span());
        PolicySummary {
            path: policy.path.clone(),
            format: policy.format,
            unit: policy.unit,
            rules: policy.rules.len(),
            pins: pins.references.len(),
            pulls: pulls.map(|p| p.pulls),
            pull_records_from: span.map(|s| crate::model::time::rfc3339(s.0)),
            pull_records_to: span.map(|s| crate::model::time::rfc3339(s.1)),
        }
    }
}

/// One tag's fate, for `--explain`.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionLine {
    pub repository: String,
    pub tag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<crate::model::digest::Digest>,
    pub pushed: String,
    pub removed: bool,
    pub why: String,
}

impl WriteJson for PruneReport {}

impl PruneReport {
    /// The report of `plan`, before any deletion.
    pub fn new(storage: &str, plan: &PrunePlan) -> PruneReport {
        let repositories: Vec<RepoCounts> = plan
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
            database_in_use: None,
            dry_run: true,
            repositories_total: plan.repositories_total,
            repositories_matched: repositories.len(),
            tags: repositories.iter().map(|r| r.tags).sum(),
            kept: repositories.iter().map(|r| r.kept).sum(),
            removed: repositories.iter().map(|r| r.removed).sum(),
            repositories,
            unmatched_repo_globs: plan.unmatched_repo_globs.clone(),
            problems: plan.problems.clone(),
            deleted: None,
            trash: None,
            applied: None,
            plan_file: None,
            policy: None,
            decisions: None,
            refused: Vec::new(),
            elapsed_ms: plan.elapsed.as_millis() as u64,
        }
    }

    /// Adds every tag's decision and reason (`--explain`).
    pub fn explain(&mut self, plan: &PrunePlan) {
        self.decisions = Some(
            plan.repositories
                .iter()
                .flat_map(|r| {
                    r.tags.iter().map(|d| DecisionLine {
                        repository: r.name.clone(),
                        tag: d.tag.name.to_string(),
                        digest: d.tag.current,
                        pushed: rfc3339(d.tag.moved),
                        removed: d.verdict.removed(),
                        why: d
                            .why
                            .clone()
                            .unwrap_or_else(|| d.verdict.words().to_owned()),
                    })
                })
                .collect(),
        );
    }
}

/// The human report: per matched repository, each tag kept (and why) or removed.
pub fn write_human(
    plan: &PrunePlan,
    report: &PruneReport,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    super::write_owner(out, report.database_in_use.as_ref())?;
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
            let reason = d.why.as_deref().unwrap_or(d.verdict.words());
            let (action, why) = if d.verdict.removed() {
                let shown = report.decisions.is_some() && !reason.is_empty();
                (
                    "remove",
                    if shown {
                        format!("  ({reason})")
                    } else {
                        String::new()
                    },
                )
            } else {
                ("keep  ", format!("  ({reason})"))
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
    if let Some(p) = &report.policy {
        let span = match (&p.pull_records_from, &p.pull_records_to) {
            (Some(a), Some(b)) => format!(
                ", {} pulls read, records from {a} to {b}",
                p.pulls.unwrap_or(0)
            ),
            _ => String::new(),
        };
        writeln!(
            out,
            "Policy {} ({}): {}, {} pinned{span}",
            p.path,
            p.format.words(),
            count(p.rules as u64, "rule", "rules"),
            thousands(p.pins as u64)
        )?;
    }
    for r in &report.refused {
        writeln!(out, "refused: {r}")?;
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
    if let Some(t) = &report.trash {
        super::trash::write_held(t, out)?;
    }
    match &report.deleted {
        None => writeln!(
            out,
            "Nothing was deleted (dry run). --delete removes these tags; `regsweep gc -m` then frees what only they kept."
        ),
        Some(d) => {
            writeln!(out, "Deleted {}.", count(d.tags, "tag", "tags"))?;
            if let Some(run) = &d.trash {
                super::trash::write_trashed(run, &report.storage, out)?;
            }
            for f in &d.failures {
                writeln!(out, "  failed: {}: {}", f.key, f.error)?;
            }
            if d.tags == 0 {
                return Ok(());
            }
            writeln!(
                out,
                "Run `regsweep gc -m` to free the manifests and blobs only these tags kept."
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(deleted: u64) -> String {
        let plan = PrunePlan {
            repositories: Vec::new(),
            repositories_total: 1,
            unmatched_repo_globs: Vec::new(),
            problems: Vec::new(),
            vanished: 0,
            elapsed: std::time::Duration::ZERO,
        };
        let mut report = PruneReport::new("/srv/registry", &plan);
        report.deleted = Some(TagsDeleted {
            tags: deleted,
            failures: Vec::new(),
            trash: None,
        });
        let mut out = Vec::new();
        write_human(&plan, &report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn gc_is_suggested_only_after_tags_were_deleted() {
        let none = rendered(0);
        assert!(none.contains("Deleted 0 tags."), "{none}");
        assert!(!none.contains("gc -m"), "{none}");
        let two = rendered(2);
        assert!(two.contains("Deleted 2 tags."), "{two}");
        assert!(two.contains("Run `regsweep gc -m`"), "{two}");
    }
}
