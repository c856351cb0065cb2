//! A store whose deletes move into a trash folder instead: what a run with `--trash` sweeps with.
//!
//! Every call goes to the store it wraps, except [`Storage::delete`], which moves each key to
//! `<folder><key>` ([`Storage::move_object`]: a rename on a filesystem, a checked copy then a delete
//! on S3) or, where a delete keeps the data as an older version (a versioned bucket), writes the
//! version's id, size and ETag to `<folder>versions/<key>` and then hides the key behind a delete
//! marker ([`Storage::hide_version`]: no data copied), and [`Storage::abort_multipart`], which refuses (an incomplete multipart upload is no
//! object; it cannot be moved, so a trashing run leaves it). The sweep above it is the same code
//! whether it deletes or trashes: its order, re-checks and crash safety hold for both.

use super::{
    Entry, HeldLock, Lean, ListingNote, LockToken, MultipartUpload, ObjectVersion, RequestCounts,
    Storage, StorageError, Versioning,
};
use crate::model::digest::Digest;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Moves run in parallel batches of this many keys (each move is its own call).
const MOVE_BATCH: usize = 16;

/// Below a run's folder, where the versions it hid are recorded (each under its key).
pub const VERSIONS: &str = "versions/";

/// `inner`, with deletes turned into moves below `folder`.
pub struct Trashing<'a> {
    inner: &'a dyn Storage,
    folder: String,
    moved: AtomicU64,
    bytes: AtomicU64,
    /// Of those, the objects hidden behind delete markers, and their bytes.
    hidden: AtomicU64,
    hidden_bytes: AtomicU64,
}

impl<'a> Trashing<'a> {
    /// `folder` ends with `/` and lies outside the registry's keys.
    pub fn new(inner: &'a dyn Storage, folder: String) -> Trashing<'a> {
        Trashing {
            inner,
            folder,
            moved: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            hidden: AtomicU64::new(0),
            hidden_bytes: AtomicU64::new(0),
        }
    }

    /// Objects moved so far, and their bytes.
    pub fn moved(&self) -> (u64, u64) {
        (
            self.moved.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    /// Of those, the objects hidden as older versions, and their bytes.
    pub fn hidden(&self) -> (u64, u64) {
        (
            self.hidden.load(Ordering::Relaxed),
            self.hidden_bytes.load(Ordering::Relaxed),
        )
    }

    /// Moves one key, or records and hides its version; its bytes.
    fn trash(&self, key: &str) -> Result<u64, StorageError> {
        let Some(version) = self.inner.kept_version(key)? else {
            return self
                .inner
                .move_object(key, &format!("{}{key}", self.folder));
        };
        let record = serde_json::to_vec(&version).expect("a version serializes");
        self.inner
            .write_object(&format!("{}{VERSIONS}{key}", self.folder), &record)?;
        self.inner.hide_version(key, &version)?;
        self.hidden.fetch_add(1, Ordering::Relaxed);
        self.hidden_bytes.fetch_add(version.size, Ordering::Relaxed);
        Ok(version.size)
    }
}

impl Storage for Trashing<'_> {
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.inner.list(prefix, visit, note)
    }

    fn list_lean(
        &self,
        prefix: &str,
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.inner.list_lean(prefix, lean, visit, note)
    }

    fn list_folders(
        &self,
        prefix: &str,
        folders: &[String],
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.inner.list_folders(prefix, folders, lean, visit, note)
    }

    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        self.inner.stat(key)
    }

    fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list_dirs(prefix)
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.inner.read(key, limit)
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        self.inner.read_chunks(key, chunk)
    }

    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        self.inner.modified(key)
    }

    /// Each key moved to the trash; one already gone is a success, as a delete's is.
    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        keys.iter()
            .map(|k| match self.trash(k) {
                Ok(size) => {
                    self.moved.fetch_add(1, Ordering::Relaxed);
                    self.bytes.fetch_add(size, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e),
            })
            .collect()
    }

    fn delete_batch(&self) -> usize {
        MOVE_BATCH
    }

    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        self.inner.move_object(from, to)
    }

    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.inner.write_object(key, bytes)
    }

    fn kept_version(&self, key: &str) -> Result<Option<ObjectVersion>, StorageError> {
        self.inner.kept_version(key)
    }

    fn hide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        self.inner.hide_version(key, version)
    }

    fn unhide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        self.inner.unhide_version(key, version)
    }

    fn delete_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        self.inner.delete_version(key, version)
    }

    fn link_proven(&self, etag: &str, digest: &Digest) -> bool {
        self.inner.link_proven(etag, digest)
    }

    fn remove_empty_folders(&self, prefix: &str) -> Result<bool, StorageError> {
        self.inner.remove_empty_folders(prefix)
    }

    fn remove_folder_if_empty(&self, prefix: &str) -> Result<bool, StorageError> {
        self.inner.remove_folder_if_empty(prefix)
    }

    fn versioning(&self) -> Result<Option<Versioning>, StorageError> {
        self.inner.versioning()
    }

    fn multipart_uploads(&self) -> Result<Vec<MultipartUpload>, StorageError> {
        self.inner.multipart_uploads()
    }

    fn abort_multipart(&self, upload: &MultipartUpload) -> Result<(), StorageError> {
        Err(StorageError::Other {
            key: upload.key.clone(),
            message: "an incomplete multipart upload cannot be moved to the trash; left as it is \
                      (a run without --trash aborts it)"
                .into(),
        })
    }

    fn try_lock(&self, record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        self.inner.try_lock(record)
    }

    fn break_lock(&self, held: &HeldLock) -> Result<(), StorageError> {
        self.inner.break_lock(held)
    }

    fn unlock(&self, token: LockToken) -> Result<(), StorageError> {
        self.inner.unlock(token)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }

    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }

    fn request_counts(&self) -> Option<RequestCounts> {
        self.inner.request_counts()
    }
}
