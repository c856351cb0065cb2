//! The `gc` job: inventory → catalog → mark → plan, then (only when asked) sweep.
//!
//! [`analyse`] computes the plan and never deletes; a dry run renders it. [`execute`] sweeps a plan
//! after checking that nothing in the analysis leaves reachability in doubt. There is no dry-run flag
//! below this point: what the dry run shows is exactly what `--delete` executes.

use crate::catalog::{self, Catalog};
use crate::digest::Digest;
use crate::inventory::{self, Inventory, Repository};
use crate::mark::{self, MarkOptions, Marks};
use crate::plan::Plan;
use crate::problem::Problem;
use crate::progress::{AnalysisError, Count, Progress, Stopped};
use crate::report::GcReport;
use crate::storage::{MultipartUpload, Storage, StorageError};
use crate::sweep::{self, Deleted};
use std::time::{Duration, Instant, SystemTime};

/// What to collect.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Untagged manifests are garbage too (`-m`).
    pub delete_untagged: bool,
    /// Blobs (and, with `delete_untagged`, manifests) written within this window are held back.
    pub grace: Duration,
    /// The time the grace window ends at (normally now).
    pub now: SystemTime,
}

impl GcOptions {
    /// Unix seconds after which data counts as recent.
    pub fn grace_cutoff(&self) -> i64 {
        inventory::unix_seconds(self.now) - self.grace.as_secs() as i64
    }
}

/// Everything the analysis found.
#[derive(Debug)]
pub struct Analysis {
    pub inventory: Inventory,
    pub catalog: Catalog,
    pub marks: Marks,
    pub plan: Plan,
    /// Incomplete multipart uploads (S3), all of them; those past the grace window are in the plan.
    pub multipart: Vec<MultipartUpload>,
    /// Why multipart uploads could not be listed (they do not bear on what is reachable, so this
    /// does not stop a sweep).
    pub multipart_error: Option<String>,
    /// The bucket's versioning (S3): `Enabled` or `Suspended` means deletes leave versions behind;
    /// `Err` says why it could not be read.
    pub versioning: Result<Option<crate::storage::Versioning>, String>,
    pub elapsed: Duration,
}

impl Analysis {
    /// Problems from the walk and from reading manifests.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.inventory
            .problems
            .iter()
            .chain(self.catalog.problems.iter())
    }

    /// The report of this analysis (before any sweep).
    pub fn report(&self, storage: &str, options: &GcOptions) -> GcReport {
        GcReport::new(storage, options, self)
    }
}

/// Computes the plan. Fails when the store cannot be listed (see [`inventory::scan`]), or when a
/// stop was asked for.
pub fn analyse(
    storage: &dyn Storage,
    options: &GcOptions,
    progress: &Progress,
    cache: Option<&crate::manifest_cache::ManifestCache>,
) -> Result<Analysis, AnalysisError> {
    let start = Instant::now();
    let versioning = storage.versioning().map_err(|e| e.to_string());
    // What tags have pointed at matters only to the untagged manifests -m deletes (their tags'
    // index entries go with them).
    let detail = if options.delete_untagged {
        inventory::Detail::Names
    } else {
        inventory::Detail::Targets
    };
    let mut inventory = progress.unless_stopped(inventory::scan(storage, detail, progress))?;
    let catalog = catalog::read(storage, &inventory, progress, cache);
    progress.check()?;
    let marking = format!(
        "marking ({} manifests)",
        crate::report::thousands(catalog.len() as u64)
    );
    progress.phase(&marking, Count::ManifestsRead, None);
    let mark_options = MarkOptions {
        delete_untagged: options.delete_untagged,
        grace_cutoff: options.grace_cutoff(),
    };
    // Untagged revisions are judged by their data's age. Where the scan did not tell it (an
    // unknown age counts as written now), learn it for the revisions no tag reaches (a mark with no
    // grace window finds them) before the mark that judges them.
    let unknown_age = |d: &Digest| {
        inventory
            .blobs
            .id(d)
            .is_some_and(|id| inventory.blobs.known_modified(id).is_none())
    };
    if options.delete_untagged
        && (inventory.repositories.iter()).any(|r| r.revisions.iter().any(unknown_age))
    {
        let no_grace = MarkOptions {
            grace_cutoff: i64::MAX,
            ..mark_options
        };
        let untagged: roaring::RoaringBitmap = mark::mark(&inventory, &catalog, no_grace)
            .untagged
            .iter()
            .flatten()
            .filter_map(|d| inventory.blobs.id(d))
            .collect();
        inventory::measure(storage, &mut inventory, &untagged, progress);
        progress.check()?;
        progress.phase(&marking, Count::ManifestsRead, None);
    }
    let marks = mark::mark(&inventory, &catalog, mark_options);
    let ids = inventory::to_measure(&inventory, &marks.blobs);
    inventory::measure(storage, &mut inventory, &ids, progress);
    progress.check()?;
    let candidates: Vec<usize> = (inventory.repositories.iter().zip(&marks.untagged))
        .enumerate()
        .filter(|(_, (r, untagged))| {
            crate::plan::could_be_left_empty(r, untagged, options.grace_cutoff())
                && !(r.layer_links.is_empty() && r.dangling_layer_links.is_empty())
        })
        .map(|(i, _)| i)
        .collect();
    inventory::layer_link_times(storage, &mut inventory, &candidates);
    let mut plan = Plan::build(&inventory, &marks, options.grace_cutoff());
    let (multipart, multipart_error) = match storage.multipart_uploads() {
        Ok(m) => (m, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    plan.add_multipart(&multipart, options.grace_cutoff());
    progress.check()?;
    Ok(Analysis {
        inventory,
        catalog,
        marks,
        plan,
        multipart,
        multipart_error,
        versioning,
        elapsed: start.elapsed(),
    })
}

/// Why a sweep did not start.
#[derive(Debug, thiserror::Error)]
pub enum RefusedError {
    #[error(
        "refusing to delete: {count} problem(s) leave it unproven what the store still needs, the first: {first}"
    )]
    Problems { count: usize, first: String },
    #[error(
        "refusing to delete: {0} object(s) that the walk listed had gone when read, so the store \
         changed under the walk; put the registry in read-only mode and run again"
    )]
    Vanished(u64),
    #[error(
        "refusing to delete: the store changed while it was analysed ({0}); nothing was deleted. \
         Put the registry in read-only mode and run again"
    )]
    Moved(String),
    #[error("refusing to delete: the tags and revisions could not be listed again: {0}")]
    Recheck(StorageError),
    #[error("{0}")]
    Stopped(Stopped),
}

/// Sweeps the analysed plan, unless a problem makes reachability uncertain or the store's tags and
/// revisions are no longer those the plan was made from.
///
/// Just before deleting, the repositories are listed once more and their tags and revisions compared
/// with the analysis: a push or a tag move that landed during the walk (a registry not in read-only
/// mode, an S3 listing that moved under the walk) refuses the sweep instead of deleting blobs that the
/// new tag may need. What lands after this check is what read-only mode exists for.
pub fn execute(
    storage: &dyn Storage,
    analysis: &Analysis,
    progress: &Progress,
    after: &dyn sweep::AfterDelete,
) -> Result<Deleted, RefusedError> {
    let problems: Vec<&Problem> = analysis
        .problems()
        .filter(|p| p.kind.blocks_delete())
        .collect();
    if let Some(first) = problems.first() {
        return Err(RefusedError::Problems {
            count: problems.len(),
            first: first.to_string(),
        });
    }
    if analysis.inventory.vanished > 0 {
        return Err(RefusedError::Vanished(analysis.inventory.vanished));
    }
    if analysis.plan.items.is_empty() {
        return Ok(Deleted::default());
    }
    progress.phase("listing tags and revisions again", Count::Listed, None);
    let now = inventory::scan_repositories_only(storage, progress);
    progress.check().map_err(RefusedError::Stopped)?;
    let (now, _) = now.map_err(RefusedError::Recheck)?;
    if let Some(change) = first_change(&analysis.inventory.repositories, &now) {
        return Err(RefusedError::Moved(change));
    }
    Ok(sweep::sweep_telling(
        storage,
        &analysis.plan,
        after,
        progress,
    ))
}

/// The first difference in tags (name and target) or revisions between two walks of the
/// repositories, in words; `None` when they agree.
pub fn first_change(before: &[Repository], after: &[Repository]) -> Option<String> {
    let names = |rs: &[Repository]| -> Vec<String> { rs.iter().map(|r| r.name.clone()).collect() };
    if let Some(name) = diff(&names(before), &names(after)) {
        return Some(name.describe("repository", |n| n.clone()));
    }
    for (b, a) in before.iter().zip(after) {
        let tags = |r: &Repository| -> Vec<(String, Option<Digest>)> {
            r.tags.iter().map(|t| (t.name.clone(), t.current)).collect()
        };
        if let Some(t) = diff(&tags(b), &tags(a)) {
            let moved = |x: &(String, Option<Digest>), other: &Repository| {
                let now = other.tags.iter().find(|t| t.name == x.0)?;
                Some((x.1, now.current))
            };
            let name_of = |d: Option<Digest>| d.map_or("nothing".to_owned(), |d| d.to_string());
            let tag_moved = match &t {
                Change::Removed(x) => moved(x, a),
                Change::Added(x) => moved(x, b).map(|(now, was)| (was, now)),
            };
            if let Some((was, now)) = tag_moved {
                let tag = match &t {
                    Change::Removed(x) | Change::Added(x) => &x.0,
                };
                return Some(format!(
                    "tag {}:{tag} moved from {} to {}",
                    b.name,
                    name_of(was),
                    name_of(now)
                ));
            }
            return Some(t.describe("tag", |(tag, target)| {
                format!("{}:{tag} naming {}", b.name, name_of(*target))
            }));
        }
        if let Some(d) = diff(&b.revisions, &a.revisions) {
            return Some(d.describe("manifest revision", |d| format!("{}@{d}", b.name)));
        }
    }
    None
}

/// An element in one sorted list and not in the other.
enum Change<T> {
    Added(T),
    Removed(T),
}

impl<T> Change<T> {
    fn describe(&self, what: &str, name: impl Fn(&T) -> String) -> String {
        match self {
            Change::Added(x) => format!("new {what} {}", name(x)),
            Change::Removed(x) => format!("{what} {} is gone", name(x)),
        }
    }
}

/// The first element of the sorted lists `before` and `after` that only one holds.
fn diff<T: Ord + Clone>(before: &[T], after: &[T]) -> Option<Change<T>> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (before.get(i), after.get(j)) {
            (None, None) => return None,
            (Some(b), None) => return Some(Change::Removed(b.clone())),
            (None, Some(a)) => return Some(Change::Added(a.clone())),
            (Some(b), Some(a)) => match b.cmp(a) {
                std::cmp::Ordering::Equal => (i, j) = (i + 1, j + 1),
                std::cmp::Ordering::Less => return Some(Change::Removed(b.clone())),
                std::cmp::Ordering::Greater => return Some(Change::Added(a.clone())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Tag;

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn repo(name: &str, tags: &[(&str, char)], revisions: &[char]) -> Repository {
        Repository {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(t, c)| Tag {
                    name: (*t).into(),
                    current: Some(d(*c)),
                    ..Tag::default()
                })
                .collect(),
            revisions: revisions.iter().map(|c| d(*c)).collect(),
            ..Repository::default()
        }
    }

    #[test]
    fn the_first_change_between_two_walks_is_named() {
        let before = vec![repo("a", &[("v1", '1')], &['1']), repo("b", &[], &['2'])];
        assert_eq!(first_change(&before, &before.clone()), None);
        let moved = vec![repo("a", &[("v1", '3')], &['1']), repo("b", &[], &['2'])];
        assert_eq!(
            first_change(&before, &moved).unwrap(),
            format!("tag a:v1 moved from {} to {}", d('1'), d('3'))
        );
        let pushed = vec![
            repo("a", &[("v1", '1')], &['1']),
            repo("b", &[], &['2', '4']),
        ];
        assert_eq!(
            first_change(&before, &pushed).unwrap(),
            format!("new manifest revision b@{}", d('4'))
        );
        let tagged = vec![
            repo("a", &[("v0", '5'), ("v1", '1')], &['1']),
            repo("b", &[], &['2']),
        ];
        assert_eq!(
            first_change(&before, &tagged).unwrap(),
            format!("new tag a:v0 naming {}", d('5'))
        );
        let gone = vec![repo("a", &[("v1", '1')], &['1'])];
        assert_eq!(
            first_change(&before, &gone).unwrap(),
            "repository b is gone"
        );
    }
}
