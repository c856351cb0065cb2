//! The store of a registry that has stored nothing yet: its config names a root (a folder, a
//! bucket prefix) where no `docker/registry/v2/` exists yet, as before the first push. Every
//! command runs on it as on any empty store and finds nothing, so that a schedule set up before
//! the first push succeeds. Only a registry's config makes a store this: a bare path with nothing
//! of the registry under it is refused instead, since it may be one level off.

use super::{
    Entry, HeldLock, ListingNote, Lock, LockToken, Moves, Multipart, Storage, StorageError,
    Versions,
};
use std::sync::Mutex;

/// A store with nothing in it, named as the registry's config names it.
#[derive(Debug)]
pub struct NothingStored {
    described: String,
    identity: String,
    locked: Mutex<bool>,
}

impl NothingStored {
    /// In place of `store`, which holds nothing of the registry.
    pub fn instead_of(store: &dyn Storage) -> NothingStored {
        NothingStored::named(store.describe(), store.identity())
    }

    /// Described and identified as given (a root folder that does not exist yet).
    pub fn named(described: String, identity: String) -> NothingStored {
        NothingStored {
            described,
            identity,
            locked: Mutex::new(false),
        }
    }
}

impl Storage for NothingStored {
    fn list(
        &self,
        _prefix: &str,
        _visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        Ok(())
    }

    fn child_folders(&self, _prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn read(&self, key: &str, _limit: u64) -> Result<Vec<u8>, StorageError> {
        Err(StorageError::NotFound {
            key: key.to_owned(),
        })
    }

    fn read_chunks(&self, key: &str, _chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        Err(StorageError::NotFound {
            key: key.to_owned(),
        })
    }

    fn stat(
        &self,
        key: &str,
    ) -> Result<Option<(u64, Option<std::time::SystemTime>)>, StorageError> {
        Err(StorageError::NotFound {
            key: key.to_owned(),
        })
    }

    /// Nothing is there, so every key is already gone: a success.
    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        keys.iter().map(|_| Ok(())).collect()
    }

    fn describe(&self) -> String {
        self.described.clone()
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn moves(&self) -> Option<&dyn Moves> {
        None
    }

    fn versions(&self) -> Option<&dyn Versions> {
        None
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        None
    }

    fn lock(&self) -> &dyn Lock {
        self
    }
}

/// Held by this process only: there is nowhere to write a lock, and nothing for another run to
/// delete.
impl Lock for NothingStored {
    fn try_lock(&self, _record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        let mut locked = self.locked.lock().expect("not poisoned");
        if *locked {
            return Ok(Err(HeldLock {
                location: self.described.clone(),
                record: None,
                renewed: None,
                expires: false,
                etag: None,
            }));
        }
        *locked = true;
        Ok(Ok(LockToken(Box::new(()))))
    }

    fn break_lock(&self, _held: &HeldLock) -> Result<(), StorageError> {
        *self.locked.lock().expect("not poisoned") = false;
        Ok(())
    }

    fn unlock(&self, _token: LockToken) -> Result<(), StorageError> {
        *self.locked.lock().expect("not poisoned") = false;
        Ok(())
    }
}
