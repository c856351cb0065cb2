//! A store that a metadata database owns.
//!
//! GitLab's container registry can keep what is live in a PostgreSQL metadata database instead of
//! in the layout. Once it does, it writes `docker/registry/lockfiles/database-in-use` (beside
//! `docker/registry/v2`, a small JSON `{"version":1}`) and refuses offline garbage collection
//! itself: the layout no longer says what is live (tags and manifests live in the database, and its
//! online collector removes blobs by its own review queues), so a mark over the layout could sweep
//! what the database still serves. Its sibling `filesystem-in-use` says the opposite (the layout is
//! the truth, as in every Distribution registry) and changes nothing here; a store holding both is
//! one GitLab's registry itself refuses to start on, and it is refused here too, since
//! `database-in-use` is there.
//!
//! Every deleting command refuses such a store, with no way past it (the fix is the database's
//! collector, or removing the file once the database is no longer used, which is the operator's
//! call); dry runs and reports say so on their first line.

use crate::storage::{Storage, StorageError};
use serde::Serialize;

/// The key GitLab's registry writes once its metadata database owns the store.
pub const DATABASE_IN_USE: &str = "docker/registry/lockfiles/database-in-use";

/// The store is owned by a metadata database.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DatabaseOwned {
    /// Where the lock file is (STORAGE and the key).
    pub path: String,
    /// What it means, for the operator.
    pub why: String,
}

impl DatabaseOwned {
    /// The refusal of a deleting command.
    pub fn refusal(&self) -> String {
        format!(
            "refusing to delete: {} exists: {}. No option deletes past it.",
            self.path, self.why
        )
    }

    /// The first line of a dry run or a report.
    pub fn warning(&self) -> String {
        format!(
            "WARNING: {} exists: {}. What follows is the layout's view, not the database's; \
             nothing may be deleted offline.",
            self.path, self.why
        )
    }
}

/// Why a store's owner could not be told.
#[derive(Debug, thiserror::Error)]
#[error("cannot tell whether a metadata database owns {storage}: listing {key}: {source}")]
pub struct Unknown {
    pub storage: String,
    pub key: String,
    #[source]
    pub source: StorageError,
}

/// The folder GitLab's registry keeps its lock files in.
const LOCKFILES: &str = "docker/registry/lockfiles/";

/// Whether `storage` is owned by a metadata database: one listing of the lock files' folder (a
/// list request, not a read, so that a dry run of an unchanged bucket stays list requests only).
/// Absent is `Ok(None)`, as is a folder of that name (GitLab's registry ignores one); a listing that
/// fails is an error (a deleting command must not take "cannot tell" for "no").
pub fn check(storage: &dyn Storage) -> Result<Option<DatabaseOwned>, Unknown> {
    let mut found = false;
    let listed = storage.list(
        LOCKFILES,
        &mut |e| found |= e.key == DATABASE_IN_USE,
        &mut |_| {},
    );
    match listed {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(source) => {
            return Err(Unknown {
                storage: storage.describe(),
                key: DATABASE_IN_USE.to_owned(),
                source,
            });
        }
    }
    Ok(found.then(|| DatabaseOwned {
        path: join(&storage.describe(), DATABASE_IN_USE),
        why: "GitLab's container registry keeps this store's metadata in its database, so the \
              layout does not say what is live and offline garbage collection would delete what \
              the database still serves; use the registry's online garbage collection, or remove \
              the file if the database is no longer in use"
            .to_owned(),
    }))
}

fn join(storage: &str, key: &str) -> String {
    if storage.ends_with('/') {
        format!("{storage}{key}")
    } else {
        format!("{storage}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemStorage;

    #[test]
    fn the_lock_file_is_found_and_named_and_its_absence_is_no_owner() {
        let store = MemStorage::new();
        assert_eq!(check(&store).unwrap(), None);
        store.put(
            "docker/registry/lockfiles/filesystem-in-use",
            b"{\"version\":1}",
        );
        assert_eq!(
            check(&store).unwrap(),
            None,
            "filesystem-in-use is no owner"
        );
        store.put(DATABASE_IN_USE, b"{\"version\":1}");
        let owned = check(&store).unwrap().expect("owned");
        assert!(
            owned
                .path
                .ends_with("/docker/registry/lockfiles/database-in-use")
        );
        assert!(owned.refusal().starts_with("refusing to delete: "));
        assert!(owned.warning().contains("database"));
        let folder = MemStorage::new();
        folder.put(&format!("{DATABASE_IN_USE}/x"), b"");
        assert_eq!(
            check(&folder).unwrap(),
            None,
            "a folder of that name is no lock"
        );
    }
}
