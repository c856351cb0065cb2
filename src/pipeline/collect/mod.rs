//! Collect: what the store holds and what its tags reach. [`inventory`] is the parallel walk,
//! [`catalog`] reads each manifest once (or has it answered by [`manifest_cache`]), [`mark`] follows
//! roots down to every blob, [`referrers`] reads referrer tags, [`shard`] is one machine's share
//! of the manifest reading, and [`bucket`] accounts for every byte under the store's root.
//! Nothing here deletes.

use crate::model::progress::{MaybeStopped, Progress, Stopped};
use crate::storage::StorageError;

pub mod blob_table;
pub mod bucket;
pub mod catalog;
pub mod inventory;
pub mod links;
pub mod manifest_cache;
pub mod mark;
pub mod referrers;
pub mod shard;
pub mod snapshot;
pub mod walk;

/// Why an analysis did not finish: the store could not be listed, or a stop was asked for.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

impl MaybeStopped for AnalysisError {
    fn stop(&self) -> Option<Stopped> {
        match self {
            AnalysisError::Stopped(s) => Some(*s),
            AnalysisError::Storage(_) => None,
        }
    }
}

/// What a job's listing gave, unless a stop was asked for (which may have cut the listing short
/// with an error): then `Stopped`.
pub fn unless_stopped<T>(
    progress: &Progress,
    r: Result<T, StorageError>,
) -> Result<T, AnalysisError> {
    progress.check()?;
    Ok(r?)
}
