//! The `prune-tags` job: remove tags by rule, so that `gc -m` can then free what only they kept.
//!
//! Only tags go: a removed tag's `_manifests/tags/<tag>/` folder (its index entries first, its
//! `current` link last, so that a run cut off leaves a tag that is either whole or still named by its
//! `current` link, and the next run finishes it). Manifests and blobs are `gc`'s business. Which tags
//! go is [`crate::pipeline::retention::tags`]'s judgement; the report is [`crate::report::prune_tags`].

use crate::commands::gate::{self, Gate, Safety};
use crate::commands::outcome::{Error, Outcome, PruneRefused, Refusal};
use crate::commands::{PolicyFiles, Store, plan_output, plan_written};
use crate::model::progress::MaybeStopped;
use crate::model::progress::{Count, Progress};
use crate::model::time::rfc3339;
use crate::model::warning;
use crate::pipeline::collect::inventory::Tag;
use crate::pipeline::execute::tags::{self, TagsDeleted};
use crate::pipeline::execute::trash::TrashOptions;
use crate::pipeline::guard::recheck::{self, Judged, JudgedRepo, Relisted, Since};
use crate::pipeline::plan::file::{PlanCommand, PlanHeader, PlanOutput};
use crate::pipeline::retention::judge;
use crate::pipeline::retention::pins::Pins;
use crate::pipeline::retention::policy::Policy;
use crate::pipeline::retention::pulls::Pulls;
use crate::pipeline::retention::tags::{self as retention, PolicyRun, Rules};
use crate::pipeline::retention::tags::{
    PrunePlan, RepoDecisions, TagDecision, Verdict, newest_first,
};
use crate::report::PruneShown;
use crate::report::prune_tags::AppliedTags;
use crate::report::prune_tags::{PolicySummary, PruneReport};
use crate::storage::Storage;
use std::time::Instant;
use std::time::SystemTime;

/// The plan that removes exactly the tags of a reviewed plan file (`lines`, made at `created`), from
/// the store as it is now: every other tag of their repositories stays (`not in the plan`). Refuses
/// when a listed tag names another manifest, or was pushed again, since the plan; a listed tag that
/// is gone is skipped, so an apply cut off and run again converges. [`execute`] then re-checks as
/// for `prune-tags --delete`.
pub fn from_reviewed(
    storage: &dyn Storage,
    lines: &[crate::pipeline::plan::file::TagLine],
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
            examples: crate::model::text::first_few(&moved, 5),
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
                    why: None,
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
/// Just before, the repositories are listed again ([`crate::pipeline::guard::recheck`]): when a tag of a matched
/// repository was pushed, moved or re-pushed since the plan was made, or listed links vanished during
/// the walk, nothing is deleted (a tag pushed during the walk could otherwise be removed as old).
///
/// A stop asked for before the deletes start refuses them; once started, the few deletes a tag
/// takes are finished.
///
/// With `trash`, the tags' files are moved into a new trash run instead of deleted.
pub fn execute(
    storage: &dyn Storage,
    plan: &PrunePlan,
    progress: &Progress,
    trash: Option<crate::pipeline::execute::trash::TrashOptions>,
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
        &format!(
            "removing {}",
            crate::model::text::count(removed.len() as u64, "tag", "tags")
        ),
        Count::Deleted,
        Some(removed.len() as u64),
    );
    let (mut deleted, run) = crate::pipeline::execute::trash::sweeping(storage, trash, |s| {
        tags::remove_tags(s, &removed, progress)
    })?;
    deleted.trash = run;
    Ok(deleted)
}

/// What `prune-tags` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct PruneRun {
    /// `--repo` globs.
    pub repos: Vec<String>,
    pub tag: Option<regex::Regex>,
    pub keep_tag: Option<regex::Regex>,
    pub keep_last: Option<usize>,
    pub older_than: Option<std::time::Duration>,
    pub orphan_referrer_tags: bool,
    /// `--all-tags`: the rules may remove every tag of the matched repositories.
    pub all_tags: bool,
    pub explain: bool,
    pub delete: bool,
    pub plan: Option<std::path::PathBuf>,
    pub delete_versions: bool,
    pub safety: Safety,
}

/// What `prune-tags` reads before it opens the store: the plan file's place, the rules, and the
/// policy files.
pub struct PruneInputs {
    plan_out: Option<PlanOutput>,
    rules: Rules,
    policy: Option<(Policy, Pins, Option<Pulls>)>,
}

impl PruneInputs {
    pub fn read(run: &PruneRun, policy: Option<&PolicyFiles>) -> Result<PruneInputs, Error> {
        let plan_out = plan_output(run.plan.as_deref())?;
        let repos = if policy.is_some() && run.repos.is_empty() {
            Rules::repo_globs(&["**".to_owned()])
        } else {
            Rules::repo_globs(&run.repos)
        }
        .map_err(Error::other)?;
        let rules = Rules {
            repos,
            repo_patterns: run.repos.clone(),
            tag: run.tag.clone(),
            keep_tag: run.keep_tag.clone(),
            keep_last: run.keep_last,
            older_than: run.older_than,
            orphan_referrer_tags: run.orphan_referrer_tags,
        };
        let policy = match policy {
            Some(files) => Some(files.read()?),
            None => {
                rules.require_a_rule(run.all_tags).map_err(Error::other)?;
                None
            }
        };
        Ok(PruneInputs {
            plan_out,
            rules,
            policy,
        })
    }
}

/// `prune-tags`: the gate when deleting, the judgement, the policy's guards, the plan file, then
/// the tags removed when asked.
pub fn run(
    store: Store<'_>,
    run: &PruneRun,
    inputs: PruneInputs,
    progress: &Progress,
) -> Result<(PruneShown, Outcome), Error> {
    let storage = store.storage;
    let _gate = Gate::pass_if(run.delete, storage, store.arg, store.target, &run.safety)?;
    let rules = &inputs.rules;
    let result = match &inputs.policy {
        Some((policy, pins, pulls)) => retention::plan_by_policy(
            storage,
            &PolicyRun {
                policy,
                repos: (!run.repos.is_empty()).then_some(rules),
                pins,
                pulls: pulls.as_ref(),
            },
            SystemTime::now(),
            progress,
        ),
        None => retention::plan(storage, rules, SystemTime::now(), progress),
    };
    let plan = result.map_err(|e| store.analysis(e))?;
    for glob in &plan.unmatched_repo_globs {
        warning::emit(format!(
            "warning: --repo {glob:?} matches no repository of the store"
        ));
    }
    let mut report = PruneReport::new(&storage.describe(), &plan);
    report.database_in_use = gate::database_owner(storage);
    if let Some((policy, pins, pulls)) = &inputs.policy {
        if run.explain {
            report.explain(&plan);
        }
        report.policy = Some(PolicySummary::of(policy, pins, pulls.as_ref()));
        let counts: Vec<(String, usize, usize)> = report
            .repositories
            .iter()
            .map(|r| (r.name.clone(), r.tags, r.removed))
            .collect();
        report.refused = judge::guards(policy, &counts)
            .iter()
            .map(|b| b.to_string())
            .collect();
        if !report.refused.is_empty() {
            let refusal = Refusal::Guards(report.refused.clone());
            return Ok((PruneShown { report, plan }, Outcome::Refused(refusal)));
        }
    }
    if let Some(out) = inputs.plan_out {
        let header = PlanHeader::new(
            PlanCommand::PruneTags,
            &storage.identity(),
            SystemTime::now(),
            None,
        );
        report.plan_file = Some(plan_written(out.path(), store.arg, run.delete_versions));
        out.finish(header, plan.items()).map_err(Error::other)?;
    }
    let delete = run.delete.then(|| run.safety.trash_for("prune-tags"));
    Ok(remove(storage, plan, report, delete, progress))
}

/// Removes the planned tags when `delete` (into the trash when it says so), then completes the
/// report; the outcome says how it went.
pub(crate) fn remove(
    storage: &dyn Storage,
    plan: PrunePlan,
    mut report: PruneReport,
    delete: Option<Option<TrashOptions>>,
    progress: &Progress,
) -> (PruneShown, Outcome) {
    let mut outcome = Outcome::Done;
    if let Some(trash) = delete {
        match execute(storage, &plan, progress, trash) {
            Ok(deleted) => {
                if !deleted.failures.is_empty() {
                    outcome = Outcome::Partial;
                }
                report.dry_run = false;
                report.deleted = Some(deleted);
            }
            Err(e) if e.stop().is_some() => outcome = Outcome::Stopped(e.to_string()),
            Err(e) => outcome = Outcome::Refused(Refusal::Prune(e)),
        }
    }
    report.trash = gate::trash_held(storage);
    (PruneShown { report, plan }, outcome)
}
