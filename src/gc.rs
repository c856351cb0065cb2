//! The `gc` job: inventory → catalog → mark → plan, then (only when asked) sweep.
//!
//! [`analyse`] computes the plan and never deletes; a dry run renders it. [`execute`] sweeps a plan
//! after checking that nothing in the analysis leaves reachability in doubt. There is no dry-run flag
//! below this point: what the dry run shows is exactly what `--delete` executes.

use crate::catalog::{self, Catalog};
use crate::inventory::{self, Inventory};
use crate::mark::{self, MarkOptions, Marks};
use crate::plan::Plan;
use crate::problem::Problem;
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

/// Phases, for progress output.
pub trait Progress: Sync {
    fn phase(&self, name: &str);
}

/// Progress that says nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str) {}
}

/// Computes the plan. Fails when the store cannot be listed (see [`inventory::scan`]).
pub fn analyse(
    storage: &dyn Storage,
    options: &GcOptions,
    progress: &dyn Progress,
) -> Result<Analysis, StorageError> {
    let start = Instant::now();
    progress.phase("walking blobs and repositories");
    let inventory = inventory::scan(storage)?;
    progress.phase(&format!(
        "reading manifests ({} blobs, {} repositories)",
        inventory.blobs.len(),
        inventory.repositories.len()
    ));
    let catalog = catalog::read(storage, &inventory);
    progress.phase(&format!("marking ({} manifests)", catalog.len()));
    let marks = mark::mark(
        &inventory,
        &catalog,
        MarkOptions {
            delete_untagged: options.delete_untagged,
            grace_cutoff: options.grace_cutoff(),
        },
    );
    let mut plan = Plan::build(&inventory, &marks, options.grace_cutoff());
    let (multipart, multipart_error) = match storage.multipart_uploads() {
        Ok(m) => (m, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    plan.add_multipart(&multipart, options.grace_cutoff());
    Ok(Analysis {
        inventory,
        catalog,
        marks,
        plan,
        multipart,
        multipart_error,
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
}

/// Sweeps the analysed plan, unless a problem makes reachability uncertain.
pub fn execute(
    storage: &dyn Storage,
    analysis: &Analysis,
    progress: &dyn Progress,
) -> Result<Deleted, RefusedError> {
    let problems: Vec<&Problem> = analysis.problems().collect();
    if let Some(first) = problems.first() {
        return Err(RefusedError::Problems {
            count: problems.len(),
            first: first.to_string(),
        });
    }
    progress.phase(&format!("sweeping {} items", analysis.plan.items.len()));
    Ok(sweep::sweep(storage, &analysis.plan))
}
