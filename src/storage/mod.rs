//! The storage seam: the only thing the collector knows about where the store lives.
//!
//! It is deliberately small and blocking, in the project's own types: list a prefix flat (paging and
//! folders hidden), list the child "folders" of a prefix (to find shards), read a small object, and
//! delete a batch of keys with one result per key; what only some stores can do (move objects, keep
//! versions, hold multipart uploads) and the lock are capabilities a store hands out
//! ([`Moves`], [`Versions`], [`Multipart`], [`Lock`]). Backends own their concurrency (the S3 backend its runtime and request bound);
//! the collector drives them from rayon threads, hence `Sync`. The remote backends share their
//! listing loop, counters, lock renewal, token cache and retry policy (`remote.rs`).
//!
//! Keys are relative to the store's root directory, `/`-separated, and never start with `/`.

pub mod azure;
mod capability;
pub mod empty;
pub mod fs;
pub mod gcs;
pub mod http;
pub mod listed_once;
pub mod lock_record;
pub mod mem;
mod multipart;
mod pace;
mod remote;
pub mod s3;
pub mod s3_inventory;
pub mod trashing;

pub use capability::{
    ListedVersion, Lock, Moves, Multipart, ObjectVersion, Versioning, VersioningState, Versions,
};

use crate::model::digest::Digest;
use std::time::SystemTime;

/// One object found by a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The full key, relative to the store's root.
    pub key: String,
    /// Size in bytes (0 when `modified` is `None`).
    pub size: u64,
    /// Last modification time; `None` when the backend learned only that the object exists (a
    /// filesystem listing does not stat link files whose folder name is all they say, see
    /// [`crate::model::layout::folder_leaf`]).
    pub modified: Option<SystemTime>,
    /// What the backend's listing says of the object's content where it says something (an S3
    /// ETag); opaque to the collector, which asks [`Storage::link_proven`] what it proves.
    pub etag: Option<String>,
    /// The object's bytes, when the backend read them while listing (small link files that a
    /// filesystem walk reads in passing, see [`crate::model::layout::Leaf`]).
    pub content: Option<Vec<u8>>,
}

/// What a listing may leave out ([`Storage::list_lean`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lean {
    /// Blob data is named, without its size and time (`modified: None`): the caller learns the few
    /// it needs with [`Storage::stat`].
    pub unstated_blobs: bool,
    /// Tags' `index/` folders (what each tag has pointed at) are not walked: the tag's
    /// `current/link`, which says where it points, is all the caller needs.
    pub no_tag_index: bool,
}

/// Why a storage operation failed, always naming the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist (for example it vanished between listing and reading).
    #[error("{key}: not found")]
    NotFound { key: String },
    /// The object is larger than the caller allows reading.
    #[error("{key}: larger than {limit} bytes")]
    TooLarge { key: String, limit: u64 },
    /// The key names a symbolic link, which the collector never follows.
    #[error("{key}: is a symbolic link; regsweep never follows links out of the store")]
    Symlink { key: String },
    /// A move's target is there already (a move never overwrites).
    #[error("{key}: already exists; not overwritten")]
    Exists { key: String },
    /// The service refused the credentials or the permission (401, 403, `AccessDenied`): asking
    /// again will not help.
    #[error("{key}: {message}")]
    Denied { key: String, message: String },
    /// The service asked to slow down (429, 503, `SlowDown`), and the retries ran out.
    #[error("{key}: {message}")]
    Throttled { key: String, message: String },
    /// No answer came: the connection was refused, reset or timed out, or TLS failed. The message
    /// carries the whole chain of causes.
    #[error("{key}: {message}")]
    Transport { key: String, message: String },
    /// Any other failure of the backend.
    #[error("{key}: {message}")]
    Other { key: String, message: String },
}

impl StorageError {
    /// The key the error is about.
    pub fn key(&self) -> &str {
        match self {
            StorageError::NotFound { key }
            | StorageError::TooLarge { key, .. }
            | StorageError::Symlink { key }
            | StorageError::Exists { key }
            | StorageError::Denied { key, .. }
            | StorageError::Throttled { key, .. }
            | StorageError::Transport { key, .. }
            | StorageError::Other { key, .. } => key,
        }
    }

    /// A failure of the backend by its HTTP status: denied (401, 403), throttled (429, 503), or
    /// another.
    pub fn of_status(key: &str, status: u16, message: String) -> StorageError {
        let key = key.to_owned();
        match status {
            401 | 403 => StorageError::Denied { key, message },
            429 | 503 => StorageError::Throttled { key, message },
            _ => StorageError::Other { key, message },
        }
    }

    /// Any other failure of the backend about `key`, said in `message`.
    pub fn other(key: &str, message: impl std::fmt::Display) -> StorageError {
        StorageError::Other {
            key: key.to_owned(),
            message: message.to_string(),
        }
    }

    /// True when the object is simply not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// An incomplete multipart upload (S3): the parts it holds cost money, and no object listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    /// The key it would have written, relative to the store's root.
    pub key: String,
    pub upload_id: String,
    /// When it was initiated.
    pub initiated: Option<SystemTime>,
    /// Bytes in its parts.
    pub size: u64,
}

/// What a backend found odd while listing, without stopping the listing.
#[derive(Debug, Clone)]
pub struct ListingNote {
    pub key: String,
    pub message: String,
}

/// A lock held by someone else, as the backend found it (see [`crate::pipeline::guard::lock`]).
#[derive(Debug, Clone)]
pub struct HeldLock {
    /// Where the lock is: a path or an `s3://` URL.
    pub location: String,
    /// The holder's record ([`crate::pipeline::guard::lock::Holder`] as JSON), where the backend could learn it.
    pub record: Option<Vec<u8>>,
    /// When the lock was last written.
    pub renewed: Option<SystemTime>,
    /// True when the lock outlives a holder that dies (an object), so that it can go stale; false
    /// when the system releases it with its process (a `flock`).
    pub expires: bool,
    /// The lock object's ETag, so that breaking it removes only the one that was judged stale.
    pub etag: Option<String>,
}

/// A lock this process holds; given back to [`Lock::unlock`].
pub struct LockToken(pub Box<dyn std::any::Any + Send>);

impl std::fmt::Debug for LockToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockToken")
    }
}

/// A store of objects addressed by key: a small core every backend answers, and the capabilities
/// some have ([`Storage::moves`], [`Storage::versions`], [`Storage::multipart`], [`Storage::lock`]).
///
/// A decorator (a store wrapping another, as [`trashing::Trashing`] and
/// [`s3_inventory::Inventoried`] do) names the store it wraps in [`Storage::wrapped`]: every method
/// with a default is then answered by that store unless the decorator says otherwise, so that a
/// refinement (a leaner listing, a stop flag, a count) is never lost on the way. What changes the
/// store or says what it can do has no default: each backend and each decorator answers the core's
/// reads and deletes and every capability itself, so that a new capability cannot pass a decorator
/// unseen (a decorator that checks deletes, as `Inventoried` does, must check the new way too).
pub trait Storage: Sync {
    /// Calls `visit` for every object whose key starts with `prefix`, in no particular order but
    /// one: a folder's keys come together (a depth-first walk, or keys in sorted order), so that once
    /// a key outside a folder follows keys inside it, no key of that folder comes again. The scan
    /// finishes a repository as soon as the listing leaves its folder, and refuses a repository it
    /// was given in two parts. The same holds for [`Storage::list_lean`] and
    /// [`Storage::list_below`].
    /// Problems with single entries (unreadable folders, symbolic links) go to `note` and the listing
    /// goes on; an error is returned only when the listing as a whole failed.
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError>;

    /// The names of the immediate children "folders" of `prefix` (which ends with `/`): the next key
    /// component of every key below it that has one more `/`. Empty when nothing is there.
    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Reads a whole object of at most `limit` bytes.
    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError>;

    /// Reads each of `keys` as [`Storage::read`] does, and gives `done` each key's index and result
    /// as it arrives: in any order, from any thread, once each. By default a thread of the pool a
    /// read; a backend that keeps many requests in flight without a thread each (S3) overrides it.
    fn read_each(&self, keys: &[String], limit: u64, done: &(dyn Fn(usize, ReadResult) + Sync)) {
        use rayon::prelude::*;
        keys.par_iter()
            .enumerate()
            .for_each(|(i, k)| done(i, self.read(k, limit)));
    }

    /// Streams a whole object of any size to `chunk`, piece by piece (for hashing blob data).
    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError>;

    /// Deletes objects. Returns one result per key, in order; a key that is already gone is a success,
    /// so that a run that was cut off converges when repeated.
    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>>;

    /// A short human description (`/srv/registry`, `s3://bucket/prefix`).
    fn describe(&self) -> String;

    /// Objects moved and written whole (the trash); `None` where the store cannot.
    fn moves(&self) -> Option<&dyn Moves>;

    /// Deletes that keep older versions (a versioned bucket, a soft delete); `None` where a delete
    /// keeps nothing by the store's nature (a filesystem).
    fn versions(&self) -> Option<&dyn Versions>;

    /// Incomplete multipart uploads (S3); `None` where there are none by the store's nature.
    fn multipart(&self) -> Option<&dyn Multipart>;

    /// The store's exclusive lock for a deleting run.
    fn lock(&self) -> &dyn Lock;

    /// The store a decorator wraps, which answers every method with a default that the decorator
    /// does not; `None` for a backend.
    fn wrapped(&self) -> Option<&dyn Storage> {
        None
    }

    /// Like [`Storage::list`], but leaving out what `lean` says the caller does without, where
    /// learning it costs a call per object (a filesystem's `stat` or folder read). Backends whose
    /// listings tell everything at no cost list as [`Storage::list`] does.
    fn list_lean(
        &self,
        prefix: &str,
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        match self.wrapped() {
            Some(inner) => inner.list_lean(prefix, lean, visit, note),
            None => self.list(prefix, visit, note),
        }
    }

    /// Lists every key below the given folders of `prefix` (which ends with `/`), as
    /// [`Storage::list_lean`] would list each `{prefix}{folder}/` in turn. The folders are names
    /// [`Storage::child_folders`] gave, in the order their keys sort (by `{folder}/`) and next to each
    /// other in that order. Backends whose listings return many keys a call (S3: 1000 a page) list
    /// them as one range, so that many small folders cost pages by their keys, not one page each.
    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        if let Some(inner) = self.wrapped() {
            return inner.list_below(prefix, folders, lean, visit, note);
        }
        for f in folders {
            self.list_lean(&format!("{prefix}{f}/"), lean, visit, note)?;
        }
        Ok(())
    }

    /// Lists as [`Storage::list_below`] does, but a backend may list the range in parts side by
    /// side once it runs long, each key given to `visit` with its part's number (from 0): a part's
    /// keys come as `list_below` gives them, and a part begins only at a folder (a key relative
    /// to the store, ending in `/`) that `split_at` accepts. `split_at` must refuse every folder
    /// inside one it refuses: a refused folder's keys are then never in two parts. By default one
    /// part, the store's own [`Storage::list_below`] (a decorator that lists through it keeps
    /// what it does there).
    fn list_below_in_parts(
        &self,
        prefix: &str,
        folders: &[String],
        lean: Lean,
        split_at: &dyn Fn(&str) -> bool,
        visit: &mut dyn FnMut(usize, Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let _ = split_at;
        self.list_below(prefix, folders, lean, &mut |e| visit(0, e), note)
    }

    /// An object's size and last modification time. [`StorageError::NotFound`] when it is not
    /// there; `Ok(None)` when the backend cannot tell (its listings always do).
    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        self.wrapped().map_or(Ok(None), |inner| inner.stat(key))
    }

    /// Makes listings end early with an error once `flag` is not zero (a stop asked for by a
    /// signal): a listing of a large store takes long, and nothing listed after a stop is used.
    fn stop_listings_on(&self, flag: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        if let Some(inner) = self.wrapped() {
            inner.stop_listings_on(flag)
        }
    }

    /// When an object was last written, for the few objects a listing gives no time for (a filesystem
    /// walk knows `_layers` links by their folders' names). `Ok(None)` when the backend cannot tell.
    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        self.wrapped().map_or(Ok(None), |inner| inner.modified(key))
    }

    /// The most keys one [`Storage::delete`] call takes well (a request's limit where the backend
    /// makes requests): callers delete in batches of this size, batches in parallel.
    fn max_delete_keys(&self) -> usize {
        self.wrapped()
            .map_or(DELETE_BATCH, |inner| inner.max_delete_keys())
    }

    /// True when what a listing said of a link file (its [`Entry::etag`]) proves that it holds
    /// exactly `digest` (`sha256:<hex>`), so that it need not be read. False where the backend cannot
    /// tell, and for anything that is not such proof: the caller then reads the link.
    fn link_proven(&self, etag: &str, digest: &Digest) -> bool {
        self.wrapped()
            .is_some_and(|inner| inner.link_proven(etag, digest))
    }

    /// Removes the folders below `prefix` (which ends with `/`), and its own, that hold nothing, so that
    /// no empty folder is left to look like a tag. Never removes a file. True when `prefix` itself is
    /// gone (or was never there), false when something is left in it. Stores without folders (S3)
    /// have nothing to do: true.
    fn remove_empty_folders(&self, prefix: &str) -> Result<bool, StorageError> {
        self.wrapped()
            .map_or(Ok(true), |inner| inner.remove_empty_folders(prefix))
    }

    /// Removes the folder `prefix` (which ends with `/`) when it holds nothing, not what is below it.
    /// True when it is gone (or was never there), false when it still holds something. Stores without
    /// folders (S3) have nothing to remove: true.
    fn remove_folder_if_empty(&self, prefix: &str) -> Result<bool, StorageError> {
        self.wrapped()
            .map_or(Ok(true), |inner| inner.remove_folder_if_empty(prefix))
    }

    /// When the blob tree's listings come from a snapshot of the store (an S3 Inventory) rather
    /// than from the store itself: when it was taken and what it held (the report's `inventory`).
    /// Blobs written after it are not listed, so the walk asks after every blob a fresh link names
    /// that the listing lacks.
    fn listing_snapshot(&self) -> Option<s3_inventory::ListingSnapshot> {
        self.wrapped().and_then(|inner| inner.listing_snapshot())
    }

    /// What names this store however it was reached (an absolute path, `s3://bucket/prefix`): plan
    /// files record it, and `apply` refuses a plan made for another store.
    fn identity(&self) -> String {
        self.wrapped()
            .map_or_else(|| self.describe(), |inner| inner.identity())
    }

    /// How many calls the backend serves well at once: the collector sizes its thread pool to it.
    fn parallelism(&self) -> usize {
        match self.wrapped() {
            Some(inner) => inner.parallelism(),
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    /// True when the blob tree may be listed while the repositories are (a filesystem): nothing the
    /// two listings share can run out while one of them waits. False where a listing holds one of
    /// a few request places while its visitor runs (S3), which a visitor that waits for the other
    /// listing could hold them all.
    fn lists_side_by_side(&self) -> bool {
        self.wrapped()
            .is_some_and(|inner| inner.lists_side_by_side())
    }

    /// True when the store keeps object times in whole seconds (S3's `LastModified`, Azure's
    /// `Last-Modified`): a time in a given second says nothing finer, so asking again cannot tell
    /// before from after within it.
    fn times_to_the_second(&self) -> bool {
        self.wrapped()
            .is_some_and(|inner| inner.times_to_the_second())
    }

    /// Requests made so far, for backends that make requests.
    fn request_counts(&self) -> Option<RequestCounts> {
        self.wrapped().and_then(|inner| inner.request_counts())
    }
}

/// The error of a move asked of a store that cannot move objects.
pub(crate) fn cannot_move(key: &str) -> StorageError {
    StorageError::Other {
        key: key.to_owned(),
        message: "this store cannot move objects (no trash here)".to_owned(),
    }
}

/// [`Storage::versions`], or an error naming `key` where the store keeps no versions.
pub(crate) fn versions_of<'a>(
    storage: &'a dyn Storage,
    key: &str,
) -> Result<&'a dyn Versions, StorageError> {
    storage
        .versions()
        .ok_or_else(|| capability::no_versions(key))
}

/// What reading one object gave ([`Storage::read_each`]).
pub type ReadResult = Result<Vec<u8>, StorageError>;

/// Keys a delete call takes unless the backend says otherwise ([`Storage::max_delete_keys`]).
pub const DELETE_BATCH: usize = 1000;

/// Wraps `visit` to pass on only keys below `prefix` in one of `folders` (a range listing of
/// neighbouring folders also meets keys of folders that sort between them).
pub(crate) fn only_folders<'a>(
    prefix: &'a str,
    folders: &[String],
    visit: &'a mut dyn FnMut(Entry),
) -> impl FnMut(Entry) + 'a {
    let wanted = in_folders(prefix, folders);
    move |e: Entry| {
        if wanted(&e.key) {
            visit(e);
        }
    }
}

/// Whether a key is below one of `folders` of `prefix` (see [`only_folders`]).
pub(crate) fn in_folders<'a>(prefix: &'a str, folders: &[String]) -> impl Fn(&str) -> bool + 'a {
    let mut wanted: Vec<String> = folders.to_vec();
    wanted.sort_unstable();
    move |key: &str| {
        let folder = key[prefix.len().min(key.len())..]
            .split_once('/')
            .map(|(f, _)| f);
        key.starts_with(prefix)
            && folder.is_some_and(|f| wanted.binary_search_by(|w| w.as_str().cmp(f)).is_ok())
    }
}

/// Fails when `key` does not sort after `before`: flat listings of object stores return names in
/// ascending order across pages, and a name that does not means the listing moved under the walk.
pub(crate) fn in_order(prefix: &str, key: &str, before: Option<&str>) -> Result<(), StorageError> {
    match before {
        Some(before) if key <= before => Err(StorageError::Other {
            key: prefix.to_owned(),
            message: format!(
                "the listing is out of order ({key:?} came after {before:?}): the bucket changed \
                 under the walk or the server pages wrongly"
            ),
        }),
        _ => Ok(()),
    }
}

/// Folder names a delimited listing found, sorted once each (pages may repeat a prefix).
pub(crate) fn sorted_dirs(mut dirs: Vec<String>) -> Vec<String> {
    dirs.sort();
    dirs.dedup();
    dirs
}

/// True when `md5_base64` (GCS's `md5Hash`, Azure's `Content-MD5`) is the MD5 of `sha256:<hex>`:
/// the link holds exactly that digest and need not be read.
pub(crate) fn md5_base64_is_of(md5_base64: &str, digest: &Digest) -> bool {
    use base64::Engine as _;
    use md5::Digest as _;
    let sum = md5::Md5::digest(digest.to_string().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sum) == md5_base64
}

/// Requests a remote backend has made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// The service the requests went to (`s3`, `gcs`, `azure`): the key `--json` reports them under.
    #[serde(skip)]
    pub service: &'static str,
    pub list_requests: u64,
    pub get_requests: u64,
    pub delete_requests: u64,
    /// Attempts beyond the first of each request (throttling, 5xx, dropped connections).
    pub retries: u64,
    /// Requests the trash made (HEADs and copies of moves, writes of its run records).
    #[serde(skip_serializing_if = "is_zero")]
    pub trash_requests: u64,
    /// Object versions deleted beyond the current ones (noncurrent versions and delete markers),
    /// when deletes remove every version of a key.
    #[serde(skip_serializing_if = "is_zero")]
    pub older_versions_deleted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
