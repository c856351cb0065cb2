//! The `prune-tags` job: remove tags by rule, so that `gc -m` can then free what only they kept.
//!
//! Only tags go: a removed tag's `_manifests/tags/<tag>/` folder (its index entries first, its
//! `current` link last, so that a run cut off leaves a tag that is either whole or still named by its
//! `current` link, and the next run finishes it). Manifests and blobs are `gc`'s business. Which tags
//! go is [`crate::pipeline::retention::tags`]'s judgement; the report is [`crate::report::prune_tags`].

use crate::model::progress::{Count, Progress};
use crate::model::time::rfc3339;
use crate::pipeline::collect::inventory::Tag;
use crate::pipeline::execute::tags::{self, TagsDeleted};
use crate::pipeline::guard::recheck::{self, Judged, JudgedRepo, Refused, Relisted, Since};
use crate::pipeline::retention::tags::{
    PrunePlan, RepoDecisions, TagDecision, Verdict, newest_first,
};
use crate::report::prune_tags::AppliedTags;
use crate::storage::Storage;
use std::time::Instant;

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
    /// The trash's run record could not be written (nothing moved), or completed.
    #[error("the trash: {0}")]
    Trash(#[from] crate::storage::StorageError),
}

impl PruneRefused {
    /// True when a stop was asked for (the run ends as cut off, not as refused).
    pub fn stopped(&self) -> bool {
        matches!(self, PruneRefused::Recheck(Refused::Stopped(_)))
    }
}

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
        &format!("removing {} tags", removed.len()),
        Count::Deleted,
        Some(removed.len() as u64),
    );
    let (mut deleted, run) = crate::pipeline::execute::trash::sweeping(storage, trash, |s| {
        tags::remove_tags(s, &removed, progress)
    })?;
    deleted.trash = run;
    Ok(deleted)
}
