//! The `gc` job: the analysis ([`crate::pipeline::analysis`]: inventory → catalog → mark → plan), then (only
//! when asked) the sweep. [`analyse`] computes the plan and never deletes; a dry run renders it.
//! [`execute`] sweeps a plan after checking that nothing in the analysis leaves reachability in doubt
//! and that the store is still as analysed ([`crate::pipeline::guard::recheck`]).

use crate::model::problem::Problem;
use crate::model::progress::Progress;
pub use crate::pipeline::analysis::{Analysis, GcOptions, analyse, analyse_retaining};
use crate::pipeline::execute::sweep::{self, Deleted};
use crate::pipeline::guard::recheck::{self, Judged, Refused, Since};
use crate::storage::Storage;

/// Why a sweep did not start.
#[derive(Debug, thiserror::Error)]
pub enum RefusedError {
    #[error(
        "refusing to delete: {count} problem(s) leave it unproven what the store still needs, the first: {first}"
    )]
    Problems { count: usize, first: String },
    /// The store is not as it was analysed (or could not be listed again to tell).
    #[error(transparent)]
    Recheck(#[from] Refused),
    /// The trash's run record could not be written (nothing moved), or completed.
    #[error("the trash: {0}")]
    Trash(#[from] crate::storage::StorageError),
}

impl RefusedError {
    /// True when a stop was asked for (the run ends as cut off, not as refused).
    pub fn stopped(&self) -> bool {
        matches!(self, RefusedError::Recheck(Refused::Stopped(_)))
    }
}

/// Sweeps the analysed plan, unless a problem makes reachability uncertain or the store's tags and
/// revisions are no longer those the plan was made from.
///
/// Just before deleting, the repositories are listed once more and their tags and revisions compared
/// with the analysis ([`crate::pipeline::guard::recheck`]): a push or a tag move that landed during the walk (a registry not in read-only
/// mode, an S3 listing that moved under the walk) refuses the sweep instead of deleting blobs that the
/// new tag may need. What lands after this check is what read-only mode exists for.
///
/// With `trash`, what the plan deletes is moved into a new trash run instead
/// ([`crate::pipeline::execute::trash::sweeping`]); incomplete S3 multipart uploads, which cannot be moved,
/// are left (counted in [`Deleted::multipart_kept`]).
pub fn execute(
    storage: &dyn Storage,
    analysis: &Analysis,
    progress: &Progress,
    after: &dyn sweep::AfterDelete,
    trash: Option<crate::pipeline::execute::trash::TrashOptions>,
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
    recheck::none_vanished(analysis.inventory.vanished)?;
    if analysis.plan.items.is_empty() {
        return Ok(Deleted::default());
    }
    let judged = Judged::whole_store(&analysis.inventory.repositories);
    recheck::recheck(storage, progress, &judged, Since::Analysis)?;
    let kept_plan;
    let (plan, multipart_kept) = if trash.is_some() {
        let mut p = analysis.plan.clone();
        p.items
            .retain(|i| !matches!(i, crate::pipeline::plan::PlanItem::Multipart { .. }));
        let kept = (analysis.plan.items.len() - p.items.len()) as u64;
        kept_plan = p;
        (&kept_plan, kept)
    } else {
        (&analysis.plan, 0)
    };
    let (mut deleted, run) = crate::pipeline::execute::trash::sweeping(storage, trash, |s| {
        sweep::sweep_telling(s, plan, after, progress)
    })?;
    deleted.trash = run;
    deleted.multipart_kept = multipart_kept;
    Ok(deleted)
}
