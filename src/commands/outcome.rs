//! How a command ended, as values the binary maps to exit codes in one place: a command that ran
//! returns its report with an [`Outcome`]; one that could not run returns an [`Error`]. Nothing here
//! prints.

use crate::model::progress::{MaybeStopped, Stopped};
use crate::pipeline::collect::AnalysisError;
use crate::pipeline::guard::lock::LockError;
use crate::pipeline::guard::recheck::Refused;

/// How a command that ran (and has a report to show) ended.
#[derive(Debug)]
pub enum Outcome {
    /// It did all it was asked (audit: the store is clean).
    Done,
    /// It did part of it: deletes failed, an eviction failed, or audit found problems.
    Partial,
    /// A stop was asked for before it was done; the report says what was done.
    Stopped(String),
    /// It refused to delete after its report was made (the report shows why).
    Refused(Refusal),
}

impl Outcome {
    /// `Done`, or `Partial` when `partial`.
    pub fn partial_if(partial: bool) -> Outcome {
        if partial {
            Outcome::Partial
        } else {
            Outcome::Done
        }
    }
}

/// Why a command would not delete. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A metadata database owns the store (the message names the lock file).
    #[error("{0}")]
    DatabaseOwned(String),
    /// Whether a database owns the store could not be told.
    #[error("refusing to delete: {0}")]
    OwnerUnknown(String),
    #[error(
        "refusing to delete: {storage} does not put the registry in read-only mode, so it may \
         accept pushes while this deletes, and a push that reuses a layer being swept breaks its \
         image. Set storage.maintenance.readonly.enabled: true in {storage} and restart the \
         registry, then run again; or pass --force if nothing can push meanwhile."
    )]
    NotReadOnly { storage: String },
    /// `--online` cannot keep its promise on this registry (the message says why and what to do).
    #[error("refusing to collect online: {0}; nothing was moved")]
    Online(String),
    /// Another run holds the store's lock, or it looks abandoned.
    #[error(transparent)]
    Locked(LockError),
    #[error(
        "refusing to delete: the registry's blob-descriptor cache cannot be evicted: \
         {why}. Deleting without evicting it leaves the registry claiming that swept blobs \
         exist, so a push of the same image skips them and the image never pulls. Make \
         {address} reachable and writable (or name it with --redis URL), or pass --force to \
         delete anyway and then flush the cache by hand (or restart the registry with an empty one)."
    )]
    CacheUnreachable { why: String, address: String },
    #[error(
        "refusing to delete: the registry's blob-descriptor cache stopped answering after the \
         analysis: {why}; nothing was deleted"
    )]
    CacheStopped { why: String },
    /// A plan file made for another store, or one the store no longer matches.
    #[error("{0}")]
    Plan(String),
    /// A retention policy's guards.
    #[error("refusing: {}; nothing was deleted and no plan written", .0.join("; "))]
    Guards(Vec<String>),
    #[error(transparent)]
    Sweep(RefusedError),
    #[error(transparent)]
    Prune(PruneRefused),
}

/// Why a command did not run to a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It refused before doing anything.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A stop was asked for (SIGINT, SIGTERM) before it had anything to report.
    #[error("{0}")]
    Stopped(String),
    /// It failed: what it was doing, and why.
    #[error("{context}")]
    Failed {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// It failed, and the error says what it was doing.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// `source`, said to have happened while doing `context`.
    pub fn failed(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Failed {
            context: context.into(),
            source: source.into(),
        }
    }

    /// An error that names what it was about itself.
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Other(e.into())
    }

    /// An analysis that did not finish: stopped, or the store could not be listed (`storage`
    /// names it).
    pub fn analysis(e: AnalysisError, storage: &str) -> Error {
        if let Some(s) = e.stop() {
            return Error::Stopped(s.to_string());
        }
        match e {
            AnalysisError::Storage(e) => Error::failed(format!("cannot list {storage}"), e),
            AnalysisError::Stopped(s) => Error::Stopped(s.to_string()),
        }
    }
}

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

impl MaybeStopped for RefusedError {
    fn stop(&self) -> Option<Stopped> {
        match self {
            RefusedError::Recheck(r) => r.stop(),
            _ => None,
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
    /// The trash's run record could not be written (nothing moved), or completed.
    #[error("the trash: {0}")]
    Trash(#[from] crate::storage::StorageError),
}

impl MaybeStopped for PruneRefused {
    fn stop(&self) -> Option<Stopped> {
        match self {
            PruneRefused::Recheck(r) => r.stop(),
            _ => None,
        }
    }
}
