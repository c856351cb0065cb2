//! A store whose deletes move into a trash folder instead: what a run with `--trash` sweeps with.
//!
//! Every call goes to the store it wraps, except [`Storage::delete`], which moves each key to
//! `<folder><key>` ([`super::Moves::move_object`]: a rename on a filesystem, a checked copy then a
//! delete on S3) or, where a delete keeps the data as an older version (a versioned bucket), writes
//! the version's id, size and ETag to `<folder>versions/<key>` and then hides the key behind a
//! delete marker ([`super::Versions::hide_version`]: no data copied), and
//! [`Multipart::abort_multipart`], which refuses (an incomplete multipart upload is no object; it
//! cannot be moved, so a trashing run leaves it). The sweep above it is the same code
//! whether it deletes or trashes: its order, re-checks and crash safety hold for both.

use super::{
    Entry, ListingNote, Lock, Moves, Multipart, MultipartUpload, Storage, StorageError, Versions,
    cannot_move,
};
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Leave the folders a move empties (an online run: see
    /// [`super::Moves::move_object_keeping_folder`]).
    keep_folders: bool,
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
            keep_folders: false,
        }
    }

    /// The same, leaving the folders its moves empty.
    pub fn keeping_folders(mut self) -> Trashing<'a> {
        self.keep_folders = true;
        self
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
        let moves = self.inner.moves().ok_or_else(|| cannot_move(key))?;
        let versions = self.inner.versions();
        let kept = match versions {
            Some(v) => v.kept_version(key)?.map(|version| (v, version)),
            None => None,
        };
        let Some((versions, version)) = kept else {
            let to = format!("{}{key}", self.folder);
            return if self.keep_folders {
                moves.move_object_keeping_folder(key, &to)
            } else {
                moves.move_object(key, &to)
            };
        };
        let record = serde_json::to_vec(&version).expect("a version serializes");
        moves.write_object(&format!("{}{VERSIONS}{key}", self.folder), &record)?;
        versions.hide_version(key, &version)?;
        self.hidden.fetch_add(1, Ordering::Relaxed);
        self.hidden_bytes.fetch_add(version.size, Ordering::Relaxed);
        Ok(version.size)
    }
}

impl Storage for Trashing<'_> {
    fn wrapped(&self) -> Option<&dyn Storage> {
        Some(self.inner)
    }

    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.inner.list(prefix, visit, note)
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.child_folders(prefix)
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.inner.read(key, limit)
    }

    fn read_each(
        &self,
        keys: &[String],
        limit: u64,
        done: &(dyn Fn(usize, crate::storage::ReadResult) + Sync),
    ) {
        self.inner.read_each(keys, limit, done)
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        self.inner.read_chunks(key, chunk)
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

    fn max_delete_keys(&self) -> usize {
        MOVE_BATCH
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn moves(&self) -> Option<&dyn Moves> {
        self.inner.moves()
    }

    fn versions(&self) -> Option<&dyn Versions> {
        self.inner.versions()
    }

    /// Uploads are listed, and an abort refuses: an incomplete multipart upload is no object, so
    /// it cannot be moved to the trash.
    fn multipart(&self) -> Option<&dyn Multipart> {
        self.inner.multipart().map(|_| self as &dyn Multipart)
    }

    fn lock(&self) -> &dyn Lock {
        self.inner.lock()
    }
}

impl Multipart for Trashing<'_> {
    fn multipart_uploads(&self) -> Result<Vec<MultipartUpload>, StorageError> {
        self.inner
            .multipart()
            .map_or(Ok(Vec::new()), |m| m.multipart_uploads())
    }

    fn abort_multipart(&self, upload: &MultipartUpload) -> Result<(), StorageError> {
        Err(StorageError::Other {
            key: upload.key.clone(),
            message: "an incomplete multipart upload cannot be moved to the trash; left as it is \
                      (a run without --trash aborts it)"
                .into(),
        })
    }
}

/// The version a trash run recorded at `key` (below its [`VERSIONS`] folder): the id, size and
/// ETag of the version it hid.
pub fn read_version_record(
    storage: &dyn Storage,
    key: &str,
) -> Result<super::ObjectVersion, StorageError> {
    let bytes = storage.read(key, 1 << 16)?;
    serde_json::from_slice(&bytes).map_err(|e| StorageError::Other {
        key: key.to_owned(),
        message: format!("is not a version record: {e}"),
    })
}
