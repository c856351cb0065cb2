//! An in-memory store: what the collector does with a store's answers (a delete that fails halfway,
//! a store that changes before the deletes, a plan), tested without a disk or a server.
//!
//! It keeps objects in a sorted map, counts the calls made of each operation, and fails the k-th
//! call of an operation when told to (as a flaky backend would), so that a test can say "the second
//! delete call fails" and check what the sweep then leaves. It has no folders: like S3, a "folder"
//! is a key prefix, and removing empty ones has nothing to do.

use super::{
    DELETE_BATCH, Entry, HeldLock, ListingNote, Lock, LockToken, Moves, Multipart, Storage,
    StorageError, Versions,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

/// An operation of the [`Storage`] seam, for counting calls and injecting failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    List,
    ListDirs,
    Read,
    Stat,
    Delete,
    Move,
    Write,
    RemoveFolders,
    AbortMultipart,
    Lock,
}

#[derive(Debug, Clone)]
struct Object {
    bytes: Vec<u8>,
    modified: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, Object>,
    calls: HashMap<Op, u64>,
    /// (operation, the call that fails, counted from 1).
    faults: Vec<(Op, u64)>,
    locked: bool,
}

/// A store held in memory. See the module's documentation.
#[derive(Debug)]
pub struct MemStorage {
    state: Mutex<State>,
    delete_batch: usize,
}

impl Default for MemStorage {
    fn default() -> Self {
        MemStorage::new()
    }
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage {
            state: Mutex::new(State::default()),
            delete_batch: DELETE_BATCH,
        }
    }

    /// The same store, deleting at most `n` keys a call (so that a small store takes many calls).
    pub fn with_delete_batch(mut self, n: usize) -> MemStorage {
        self.delete_batch = n.max(1);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes an object, modified now.
    pub fn put(&self, key: &str, bytes: impl Into<Vec<u8>>) {
        self.put_at(key, bytes, SystemTime::now());
    }

    /// Writes an object with the given modification time.
    pub fn put_at(&self, key: &str, bytes: impl Into<Vec<u8>>, modified: SystemTime) {
        let object = Object {
            bytes: bytes.into(),
            modified,
        };
        self.state().objects.insert(key.to_owned(), object);
    }

    /// Every key held, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.state().objects.keys().cloned().collect()
    }

    /// Calls made so far of `op` (a failed call counts).
    pub fn calls(&self, op: Op) -> u64 {
        self.state().calls.get(&op).copied().unwrap_or(0)
    }

    /// Makes the `nth` call of `op` from now on (1 = the next one) fail as a whole: a delete call
    /// then fails for every key it was given, any other call returns an error.
    pub fn fail_call(&self, op: Op, nth: u64) {
        let mut s = self.state();
        let at = s.calls.get(&op).copied().unwrap_or(0) + nth.max(1);
        s.faults.push((op, at));
    }

    /// Counts a call of `op`; an error naming `key` when it is one that was told to fail.
    fn call(&self, op: Op, key: &str) -> Result<std::sync::MutexGuard<'_, State>, StorageError> {
        self.counted(op).map_err(|message| StorageError::Other {
            key: key.to_owned(),
            message,
        })
    }

    /// Counts a call of `op`; the injected failure's message when it is one that was told to fail.
    fn counted(&self, op: Op) -> Result<std::sync::MutexGuard<'_, State>, String> {
        let mut s = self.state();
        let n = s.calls.entry(op).or_insert(0);
        *n += 1;
        let n = *n;
        if s.faults.contains(&(op, n)) {
            return Err(format!("injected failure of call {n} of {op:?}"));
        }
        Ok(s)
    }
}

impl State {
    /// The objects whose keys start with `prefix`, in key order.
    fn below<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Object)> {
        self.objects
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }
}

fn entry(key: &str, o: &Object) -> Entry {
    Entry {
        key: key.to_owned(),
        size: o.bytes.len() as u64,
        modified: Some(o.modified),
        etag: None,
        content: None,
    }
}

impl Storage for MemStorage {
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        // Collected first: `visit` may call back into the store.
        let listed: Vec<Entry> = {
            let s = self.call(Op::List, prefix)?;
            s.below(prefix).map(|(k, o)| entry(k, o)).collect()
        };
        listed.into_iter().for_each(visit);
        Ok(())
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let s = self.call(Op::ListDirs, prefix)?;
        let mut dirs: Vec<String> = s
            .below(prefix)
            .filter_map(|(k, _)| k[prefix.len()..].split_once('/').map(|(d, _)| d.to_owned()))
            .collect();
        dirs.sort();
        dirs.dedup();
        Ok(dirs)
    }

    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        let s = self.call(Op::Stat, key)?;
        match s.objects.get(key) {
            Some(o) => Ok(Some((o.bytes.len() as u64, Some(o.modified)))),
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        let s = self.call(Op::Read, key)?;
        match s.objects.get(key) {
            Some(o) if o.bytes.len() as u64 > limit => Err(StorageError::TooLarge {
                key: key.to_owned(),
                limit,
            }),
            Some(o) => Ok(o.bytes.clone()),
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        let bytes = self.read(key, u64::MAX)?;
        chunk(&bytes);
        Ok(())
    }

    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        Ok(self.stat(key)?.and_then(|(_, t)| t))
    }

    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        match self.counted(Op::Delete) {
            Ok(mut s) => keys
                .iter()
                .map(|k| {
                    s.objects.remove(k);
                    Ok(())
                })
                .collect(),
            // A failed call fails every key it was given.
            Err(message) => keys
                .iter()
                .map(|k| {
                    Err(StorageError::Other {
                        key: k.clone(),
                        message: message.clone(),
                    })
                })
                .collect(),
        }
    }

    fn max_delete_keys(&self) -> usize {
        self.delete_batch
    }

    fn remove_empty_folders(&self, prefix: &str) -> Result<bool, StorageError> {
        self.call(Op::RemoveFolders, prefix).map(|_| true)
    }

    fn remove_folder_if_empty(&self, prefix: &str) -> Result<bool, StorageError> {
        self.call(Op::RemoveFolders, prefix).map(|_| true)
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn parallelism(&self) -> usize {
        2
    }

    fn moves(&self) -> Option<&dyn Moves> {
        Some(self)
    }

    fn versions(&self) -> Option<&dyn Versions> {
        None
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        Some(self)
    }

    fn lock(&self) -> &dyn Lock {
        self
    }
}

impl Moves for MemStorage {
    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        let mut s = self.call(Op::Move, from)?;
        // A source that is gone is not found, whatever the target: a delete through the trash of
        // a key moved before is a success.
        if !s.objects.contains_key(from) {
            return Err(StorageError::NotFound {
                key: from.to_owned(),
            });
        }
        if s.objects.contains_key(to) {
            return Err(StorageError::Exists { key: to.to_owned() });
        }
        let object = s.objects.remove(from).expect("checked above");
        let size = object.bytes.len() as u64;
        s.objects.insert(to.to_owned(), object);
        Ok(size)
    }

    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let mut s = self.call(Op::Write, key)?;
        let object = Object {
            bytes: bytes.to_vec(),
            modified: SystemTime::now(),
        };
        s.objects.insert(key.to_owned(), object);
        Ok(())
    }

    fn move_cost(&self) -> &'static str {
        "one move a key, in memory"
    }
}

impl Multipart for MemStorage {
    fn multipart_uploads(&self) -> Result<Vec<super::MultipartUpload>, StorageError> {
        Ok(Vec::new())
    }

    fn abort_multipart(&self, upload: &super::MultipartUpload) -> Result<(), StorageError> {
        self.call(Op::AbortMultipart, &upload.key).map(|_| ())
    }
}

impl Lock for MemStorage {
    fn try_lock(&self, record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        let mut s = self.call(Op::Lock, "lock")?;
        if s.locked {
            return Ok(Err(HeldLock {
                location: self.describe(),
                record: None,
                renewed: None,
                expires: false,
                etag: None,
            }));
        }
        s.locked = true;
        let _ = record;
        Ok(Ok(LockToken(Box::new(()))))
    }

    fn break_lock(&self, _held: &HeldLock) -> Result<(), StorageError> {
        self.call(Op::Lock, "lock")?.locked = false;
        Ok(())
    }

    fn unlock(&self, _token: LockToken) -> Result<(), StorageError> {
        self.call(Op::Lock, "lock")?.locked = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_each_gives_every_key_its_own_result_once() {
        let store = MemStorage::new();
        store.put("a", "alpha");
        store.put("c", "a longer object");
        let keys: Vec<String> = ["a", "b", "c", "a"].map(String::from).to_vec();
        let got: Vec<std::sync::Mutex<Vec<ReadOutcome>>> =
            keys.iter().map(|_| Default::default()).collect();
        store.read_each(&keys, 8, &|i, r| {
            got[i].lock().unwrap().push(match r {
                Ok(bytes) => ReadOutcome::Bytes(bytes),
                Err(e) if e.is_not_found() => ReadOutcome::Missing,
                Err(StorageError::TooLarge { .. }) => ReadOutcome::TooLarge,
                Err(e) => panic!("{e}"),
            })
        });
        let got: Vec<Vec<ReadOutcome>> = got.into_iter().map(|m| m.into_inner().unwrap()).collect();
        assert_eq!(
            got,
            vec![
                vec![ReadOutcome::Bytes(b"alpha".to_vec())],
                vec![ReadOutcome::Missing],
                vec![ReadOutcome::TooLarge],
                vec![ReadOutcome::Bytes(b"alpha".to_vec())],
            ]
        );
    }

    #[derive(Debug, PartialEq)]
    enum ReadOutcome {
        Bytes(Vec<u8>),
        Missing,
        TooLarge,
    }
}
