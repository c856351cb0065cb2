//! What some stores can do beyond the core of [`super::Storage`]: move objects (the trash), keep
//! versions of what a delete removes, hold incomplete multipart uploads, and lock. A store offers
//! each through an accessor of [`super::Storage`] (`moves`, `versions`, `multipart`, `lock`), so
//! that a caller asks once whether the store can, and a decorator answers for each one it wraps.

use super::{HeldLock, LockToken, MultipartUpload, StorageError};
use std::fmt;

/// Objects moved and written whole: what the trash needs.
pub trait Moves: Sync {
    /// Moves the object `from` to `to`, which must not exist ([`StorageError::Exists`] if it does:
    /// a move never overwrites), for the trash and its restore. `from` not there is
    /// [`StorageError::NotFound`]. Filesystem: a rename within the store's filesystem, no data
    /// copied. S3: a server-side copy, checked by size (and ETag where it is the content's MD5)
    /// before `from` is deleted, so that a crash leaves the object in one place or in both.
    /// Returns the object's size.
    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError>;

    /// As [`Moves::move_object`], leaving the folder that held `from` even when it is left empty
    /// (an online run's sweep: the registry makes a link's folders before it writes the link, so
    /// removing one could fail a push in flight). Stores without folders: the same move.
    fn move_object_keeping_folder(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        self.move_object(from, to)
    }

    /// Writes a small object whole, replacing what was there (the trash's run records).
    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError>;

    /// What moving one key to the trash costs on this store, in words: the requests or renames it
    /// takes and what stays billed (a dry run with `--trash` says it).
    fn move_cost(&self) -> &'static str;
}

/// Deletes that keep something: a bucket's versioning or soft delete. The trash hides a version
/// instead of copying it where the store keeps the version anyway.
pub trait Versions: Sync {
    /// What the store keeps of deleted objects: `Ok(None)` when versioning was never turned on and
    /// no soft delete holds them.
    fn versioning(&self) -> Result<Option<Versioning>, StorageError>;

    /// Where a delete keeps the data as an older version (an S3 bucket with versioning `Enabled`):
    /// the version `key` holds now, which the trash hides behind a delete marker instead of copying.
    /// `Ok(None)` where a delete keeps nothing the trash could use.
    fn kept_version(&self, key: &str) -> Result<Option<ObjectVersion>, StorageError> {
        let _ = key;
        Ok(None)
    }

    /// Hides `version`, the current version of `key`, behind a delete marker: the trash's move on a
    /// versioned bucket.
    fn hide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        let _ = version;
        Err(no_versions(key))
    }

    /// Makes `version` of `key` current again (its delete markers removed); a success when it is
    /// current already, [`StorageError::Exists`] when another version was written since.
    fn unhide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        let _ = version;
        Err(no_versions(key))
    }

    /// Deletes `version` of `key` for good (a purge of the trash).
    fn delete_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        let _ = version;
        Err(no_versions(key))
    }

    /// Every version of every key below the store's root and every delete marker, current or not,
    /// with its size and storage class: what the bucket holds and bills (`du --bucket`). One
    /// paged listing (S3: ListObjectVersions), which on an unversioned bucket gives each object
    /// once, as its current version.
    fn list_every_version(&self, visit: &mut dyn FnMut(ListedVersion)) -> Result<(), StorageError> {
        let _ = visit;
        Err(no_versions(""))
    }

    /// Whether [`Versions::list_every_version`] is answered here.
    fn lists_every_version(&self) -> bool {
        false
    }
}

/// One version of a key, or a delete marker, as a bucket-wide version listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    /// Relative to the store's root.
    pub key: String,
    pub version_id: Option<String>,
    /// 0 for a delete marker.
    pub size: u64,
    /// The key's current version (or a delete marker that hides it).
    pub latest: bool,
    pub delete_marker: bool,
    /// As the store names it (`STANDARD`, `GLACIER`, …), where the listing gives it.
    pub storage_class: Option<String>,
    /// When it was written, and its ETag (S3) or MD5 (GCS), as the listing gives them.
    pub modified: Option<std::time::SystemTime>,
    pub etag: Option<String>,
}

/// Incomplete multipart uploads (S3): the parts they hold cost money, and no object listing shows
/// them.
pub trait Multipart: Sync {
    /// Incomplete multipart uploads below the store's root, with the bytes their parts hold.
    fn multipart_uploads(&self) -> Result<Vec<MultipartUpload>, StorageError>;

    /// Aborts an incomplete multipart upload, freeing its parts. One that is already gone is a success.
    fn abort_multipart(&self, upload: &MultipartUpload) -> Result<(), StorageError>;
}

/// The store's exclusive lock for a deleting run ([`crate::pipeline::guard::lock`] decides when it
/// is stale).
pub trait Lock: Sync {
    /// Takes the lock, recording `record` (the holder) where the backend can. `Ok(Err(held))` when
    /// someone else holds it. The lock lasts until [`Lock::unlock`].
    fn try_lock(&self, record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError>;

    /// Removes a lock that was judged stale (only that one: a lock taken again since stays).
    fn break_lock(&self, held: &HeldLock) -> Result<(), StorageError>;

    /// Releases a lock taken by [`Lock::try_lock`].
    fn unlock(&self, token: LockToken) -> Result<(), StorageError>;
}

/// One version of an object, where deletes keep versions: what the trash records of an object it
/// hid instead of copying.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectVersion {
    pub version_id: String,
    pub size: u64,
    pub etag: Option<String>,
}

pub(crate) fn no_versions(key: &str) -> StorageError {
    StorageError::Other {
        key: key.to_owned(),
        message: "this store keeps no versions of deleted objects".to_owned(),
    }
}

/// What a store keeps of what a delete removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioning {
    pub state: VersioningState,
    /// Whether this store's deletes remove every version of a key (and its delete markers), so that
    /// the space comes back at once; otherwise it comes back only when a lifecycle rule expires the
    /// noncurrent versions.
    pub deletes_every_version: bool,
    /// What to do to get the space back, where the backend knows better than S3's advice (a GCS
    /// soft delete policy, an Azure soft delete).
    pub advice: Option<String>,
}

/// Which way the store keeps deleted objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersioningState {
    /// Versioning on: a delete leaves a noncurrent version (S3 `Enabled`, GCS object versioning).
    Enabled,
    /// S3 versioning suspended: older versions stay, new deletes keep nothing more.
    Suspended,
    /// Deleted objects stay, billed, for this many days (GCS soft delete, Azure blob soft delete).
    SoftDelete { days: u64 },
    /// A status this build does not know, as the service named it.
    Other(String),
}

impl VersioningState {
    /// S3's `GetBucketVersioning` status, as the service names it.
    pub fn of_s3(status: &str) -> VersioningState {
        match status {
            "Enabled" => VersioningState::Enabled,
            "Suspended" => VersioningState::Suspended,
            other => VersioningState::Other(other.to_owned()),
        }
    }
}

/// As the reports name it: `Enabled`, `Suspended`, `soft delete (7 days)`.
impl fmt::Display for VersioningState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersioningState::Enabled => f.write_str("Enabled"),
            VersioningState::Suspended => f.write_str("Suspended"),
            VersioningState::SoftDelete { days } => write!(f, "soft delete ({days} days)"),
            VersioningState::Other(s) => f.write_str(s),
        }
    }
}
