//! The trash's deletes: purging expired or named runs (with the versions they hid on a versioned
//! bucket), and the deletes a restore makes. The trash's bookkeeping is [`super::trash`].

use crate::pipeline::execute::sweep::{Failure, delete_all};
use crate::storage::{Storage, StorageError};
use rayon::prelude::*;
use serde::Serialize;

/// What purging trash runs deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Purged {
    /// The runs gone from the trash.
    pub runs: Vec<String>,
    pub objects: u64,
    pub bytes: u64,
    pub failures: Vec<Failure>,
}

/// Deletes trash runs `ids` whole (their objects, then their records, then their folders): the
/// space comes back, and they can no longer be restored.
pub fn purge_trash_runs(storage: &dyn Storage, ids: &[String]) -> Purged {
    let mut out = Purged::default();
    for id in ids {
        let keys = match crate::pipeline::execute::trash::keys_of(storage, id) {
            Ok(k) => k,
            Err(crate::pipeline::execute::trash::TrashError::NoSuchRun(_)) => continue,
            Err(crate::pipeline::execute::trash::TrashError::Storage(e)) => {
                out.failures.push(Failure::storage(id.clone(), e));
                continue;
            }
        };
        let before = out.failures.len();
        // A version the run hid goes for good first; its record in the trash after it.
        let (keys, records) = purge_hidden_versions(storage, id, keys, &mut out);
        let (names, sizes): (Vec<String>, Vec<u64>) = keys.into_iter().unzip();
        // The record is the last key: a purge cut off leaves a run that still lists.
        let failed = delete_all(storage, &names, &mut out.failures);
        for (i, size) in sizes.iter().enumerate() {
            // The version records were counted with their versions; the run's record is last.
            if !failed.contains(&i) && i >= records && i + 1 < names.len() {
                out.objects += 1;
                out.bytes += size;
            }
        }
        if out.failures.len() == before {
            let folder = crate::pipeline::execute::trash::run_folder(id);
            if let Err(e) = storage.remove_empty_folders(&folder) {
                out.failures.push(Failure::storage(folder, e));
            }
            out.runs.push(id.clone());
        }
    }
    let _ = storage.remove_folder_if_empty(crate::pipeline::execute::trash::TRASH);
    out
}

/// Deletes for good each version run `id` hid (recorded below its `versions/` folder), counting
/// the version's bytes; returns the keys left to delete, first the records of the versions deleted
/// and how many they are (a record whose version could not be deleted stays, its failure named).
fn purge_hidden_versions(
    storage: &dyn Storage,
    id: &str,
    keys: Vec<(String, u64)>,
    out: &mut Purged,
) -> (Vec<(String, u64)>, usize) {
    let versions = format!(
        "{}{}",
        crate::pipeline::execute::trash::run_folder(id),
        crate::storage::trashing::VERSIONS
    );
    let (hidden, rest): (Vec<_>, Vec<_>) = keys
        .into_iter()
        .partition(|(k, _)| k.starts_with(&versions));
    let results: Vec<Result<u64, StorageError>> = hidden
        .par_iter()
        .map(|(key, _)| {
            let version = crate::pipeline::execute::trash::read_version(storage, key)?;
            let original = &key[versions.len()..];
            crate::storage::versions_of(storage, original)?.delete_version(original, &version)?;
            Ok(version.size)
        })
        .collect();
    let mut left = Vec::with_capacity(rest.len() + hidden.len());
    for ((key, _), r) in hidden.into_iter().zip(results) {
        match r {
            Ok(size) => {
                out.objects += 1;
                out.bytes += size;
                left.push((key, 0));
            }
            Err(e) => out.failures.push(Failure::storage(key, e)),
        }
    }
    let records = left.len();
    left.extend(rest);
    (left, records)
}

/// Restores trash run `id` ([`crate::pipeline::execute::trash::restore`]): the trash's copies of what is back
/// in place, and the run's record once it is empty, are deleted here, and the folders left empty.
pub fn restore_trash_run(
    storage: &dyn Storage,
    id: &str,
) -> Result<crate::pipeline::execute::trash::Restored, crate::pipeline::execute::trash::TrashError>
{
    let restored = crate::pipeline::execute::trash::restore(storage, id)?;
    if restored.run_removed {
        let _ = storage.remove_empty_folders(&crate::pipeline::execute::trash::run_folder(id));
        let _ = storage.remove_folder_if_empty(crate::pipeline::execute::trash::TRASH);
    }
    Ok(restored)
}
