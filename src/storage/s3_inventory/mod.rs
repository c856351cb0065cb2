//! An S3 Inventory as the listing of a store's blobs.
//!
//! At a billion blobs, listing `blobs/` is the run's largest cost in requests, and AWS already lists
//! the bucket daily into S3 Inventory. [`Inventoried`] wraps the store's own backend: listings below
//! `blobs/` are answered from the inventory's rows, everything else (the repositories' links, tags
//! and revisions, every read, every delete) goes to the store, so the references are always listed
//! fresh. Two rules keep it safe where a Distribution store differs from a data lake (its references
//! live in the same bucket, and new manifests reuse old blobs):
//! - the walk asks after every blob that a fresh link names and the inventory lacks
//!   ([`Storage::listing_snapshot`] tells it to), so a manifest pushed after the snapshot is read
//!   and what it reuses is kept; such blobs are never candidates;
//! - a blob is deleted (or moved to the trash) only after a fresh `HEAD` shows it is still the
//!   object the inventory listed: gone, resized, or rewritten since, it is left alone.
//!
//! The inventory's data files are checked against the manifest's MD5s, and a snapshot older than
//! the caller's limit is refused.

mod batch;
mod csv;
pub mod manifest;
mod orc;
mod parquet;

use crate::model::digest::Digest;
use crate::model::layout::{self, BlobKey};
use crate::storage::s3::{S3Options, S3Storage};
use crate::storage::{
    Entry, Lean, ListingNote, Lock, Moves, Multipart, ObjectVersion, Storage, StorageError,
    Versioning, Versions,
};
use manifest::{Format, Manifest};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// One object of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub size: u64,
    /// Last modification, Unix seconds.
    pub modified: i64,
    /// The object's current version (not an older version, not a delete marker).
    pub current: bool,
}

impl Row {
    fn not_current(key: String) -> Row {
        Row {
            key,
            size: 0,
            modified: 0,
            current: false,
        }
    }
}

/// Where an inventory's `manifest.json` is.
/// An inventory that cannot be used: unreadable, not an S3 Inventory, of another bucket, too old,
/// or with a data file that fails its MD5. The message names the manifest or the data file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InventoryError(pub String);

#[derive(Debug, Clone)]
pub enum Location {
    /// A local copy of the destination bucket (as `aws s3 sync` makes it): data files are found
    /// by their keys below a folder above the manifest.
    Local(PathBuf),
    S3 {
        bucket: String,
        key: String,
    },
}

impl Location {
    pub fn parse(url: &str) -> Result<Location, InventoryError> {
        match url.strip_prefix("s3://") {
            Some(rest) => match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Location::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }),
                _ => Err(InventoryError(format!(
                    "--inventory {url}: an S3 URL names a bucket and the manifest's key \
                     (s3://bucket/prefix/source-bucket/config/2024-01-01T01-00Z/manifest.json)"
                ))),
            },
            None => Ok(Location::Local(PathBuf::from(url))),
        }
    }
}

/// Reads the inventory's files.
enum Source {
    Local {
        manifest: PathBuf,
    },
    S3 {
        storage: Box<S3Storage>,
        bucket: String,
        key: String,
    },
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Local { manifest } => manifest.display().to_string(),
            Source::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        }
    }

    fn manifest(&self) -> Result<Vec<u8>, String> {
        match self {
            Source::Local { manifest } => std::fs::read(manifest)
                .map_err(|e| format!("--inventory {}: {e}", manifest.display())),
            Source::S3 { storage, key, .. } => storage
                .read(key, 256 << 20)
                .map_err(|e| format!("--inventory {}: {e}", self.name())),
        }
    }

    /// `manifest.checksum` beside the manifest, where there is one.
    fn checksum(&self) -> Result<Option<Vec<u8>>, String> {
        let found = |r: Result<Vec<u8>, StorageError>| match r {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        match self {
            Source::Local { manifest } => {
                let p = manifest.with_file_name("manifest.checksum");
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(format!("{}: {e}", p.display())),
                }
            }
            Source::S3 { storage, key, .. } => {
                let k = match key.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/manifest.checksum"),
                    None => "manifest.checksum".to_owned(),
                };
                found(storage.read(&k, 1024))
            }
        }
    }

    /// A data file, by its key in the destination bucket.
    fn data_file(&self, key: &str) -> Result<Vec<u8>, String> {
        match self {
            Source::Local { manifest } => {
                let found = manifest
                    .ancestors()
                    .skip(1)
                    .map(|dir| dir.join(key))
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        format!(
                            "{}: the data file {key} is in no folder above the manifest",
                            manifest.display()
                        )
                    })?;
                std::fs::read(&found).map_err(|e| format!("{}: {e}", found.display()))
            }
            Source::S3 {
                storage, bucket, ..
            } => storage
                .read(key, u64::MAX)
                .map_err(|e| format!("s3://{bucket}/{key}: {e}")),
        }
    }
}

/// What the inventory gave, for the reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListingSnapshot {
    /// The manifest's path or URL.
    pub manifest: String,
    pub format: &'static str,
    /// When the inventory's listing began (RFC 3339) and the same in Unix seconds.
    pub taken: String,
    pub taken_unix: i64,
    /// How old the snapshot was when this run read it.
    pub age_seconds: u64,
    pub data_files: usize,
    /// Rows the inventory lists (objects, and in a versioned bucket's inventory their older
    /// versions and delete markers), and the store's blobs among the current objects.
    pub objects: u64,
    pub blobs: u64,
    /// Blobs a fresh link named that the inventory did not list (written after it): found in the
    /// store, kept whatever else holds.
    pub blobs_after_snapshot: u64,
    /// Candidates left alone because a fresh `HEAD` showed them gone or changed since the snapshot.
    pub changed_since_snapshot: u64,
    /// Requests made to read the inventory (manifest and data files), when it is on S3.
    pub requests: u64,
}

/// A blob as the inventory lists it.
#[derive(Debug, Clone, Copy)]
struct Blob {
    digest: Digest,
    size: u64,
    modified: i64,
}

/// The store's backend with its blob listings answered from an S3 Inventory.
pub struct Inventoried {
    inner: Box<dyn Storage>,
    /// Sorted by digest (which is also the order of their keys).
    blobs: Vec<Blob>,
    snapshot: ListingSnapshot,
    after: AtomicU64,
    changed: AtomicU64,
}

/// How the inventory is reached and judged.
pub struct InventoryOptions {
    pub location: Location,
    /// The store's bucket and key prefix (empty or ending with `/`): the inventory must list that
    /// bucket, and only keys below the prefix are the store's.
    pub bucket: String,
    pub prefix: String,
    /// For an inventory on S3: the endpoint and credentials the store's own options give.
    pub s3: Option<S3Options>,
    /// The oldest snapshot accepted.
    pub max_age: Duration,
    pub now: SystemTime,
}

impl Inventoried {
    /// Reads and checks the inventory, and wraps `inner` (the store's own backend).
    pub fn open(
        inner: Box<dyn Storage>,
        opts: InventoryOptions,
    ) -> Result<Inventoried, InventoryError> {
        Inventoried::read(inner, opts).map_err(InventoryError)
    }

    fn read(inner: Box<dyn Storage>, opts: InventoryOptions) -> Result<Inventoried, String> {
        let source = match &opts.location {
            Location::Local(p) => Source::Local {
                manifest: p.clone(),
            },
            Location::S3 { bucket, key } => {
                let mut s3 = opts.s3.clone().unwrap_or_default();
                s3.bucket = bucket.clone();
                s3.prefix = String::new();
                s3.max_in_flight = s3.max_in_flight.max(1);
                Source::S3 {
                    storage: Box::new(S3Storage::open(s3).map_err(|e| e.to_string())?),
                    bucket: bucket.clone(),
                    key: key.clone(),
                }
            }
        };
        let name = source.name();
        let bytes = source.manifest()?;
        if let Some(sum) = source.checksum()? {
            let file = manifest::DataFile {
                key: format!("{name} (manifest.checksum)"),
                size: None,
                md5: String::from_utf8_lossy(&sum).trim().to_owned(),
            };
            manifest::check_md5(&file, &bytes)?;
        }
        let m = Manifest::parse(&name, &bytes)?;
        if m.source_bucket != opts.bucket {
            return Err(format!(
                "{name}: the inventory lists bucket {}, but the store is in bucket {}",
                m.source_bucket, opts.bucket
            ));
        }
        let age = opts.now.duration_since(m.taken).unwrap_or_default();
        if m.taken > opts.now + Duration::from_secs(300) {
            return Err(format!(
                "{name}: the inventory says it was taken at {}, in the future; this machine's clock \
                 or the manifest is wrong",
                humantime::format_rfc3339_seconds(m.taken)
            ));
        }
        if age > opts.max_age {
            return Err(format!(
                "{name}: the inventory was taken at {}, {} ago, longer ago than --inventory-max-age \
                 {}; use a newer one or raise the limit",
                humantime::format_rfc3339_seconds(m.taken),
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(opts.max_age)
            ));
        }
        // Only the store's blob data is kept from the rows: the rest of the bucket (the links, which
        // are listed fresh, other stores) is counted and never held.
        let blob_data = format!("{}{}", opts.prefix, layout::BLOBS);
        let objects = AtomicU64::new(0);
        let keep = |key: &str| {
            objects.fetch_add(1, Ordering::Relaxed);
            key.starts_with(&blob_data) && key.ends_with("/data")
        };
        let files: Vec<Result<Vec<Blob>, String>> = m
            .files
            .par_iter()
            .map(|f| {
                let bytes = source.data_file(&f.key)?;
                manifest::check_md5(f, &bytes)?;
                let rows = match m.format {
                    Format::Csv => csv::rows(&f.key, &bytes, &m.csv_columns, &keep),
                    Format::Parquet => parquet::rows(&f.key, bytes, &keep),
                    Format::Orc => orc::rows(&f.key, bytes, &keep),
                }?;
                let blobs = rows.into_iter().filter(|r| r.current).filter_map(|r| {
                    let key = r.key.strip_prefix(&opts.prefix)?;
                    match layout::parse_blob_key(key) {
                        BlobKey::Data(digest) => Some(Blob {
                            digest,
                            size: r.size,
                            modified: r.modified,
                        }),
                        BlobKey::Other => None,
                    }
                });
                Ok(blobs.collect())
            })
            .collect();
        let mut blobs = Vec::new();
        for f in files {
            blobs.extend(f?);
        }
        let objects = objects.into_inner();
        blobs.sort_unstable_by_key(|b| b.digest);
        blobs.dedup_by_key(|b| b.digest);
        let requests = match &source {
            Source::S3 { storage, .. } => storage.request_counts().map_or(0, |r| r.get_requests),
            Source::Local { .. } => 0,
        };
        let snapshot = ListingSnapshot {
            manifest: name,
            format: match m.format {
                Format::Csv => "CSV",
                Format::Orc => "ORC",
                Format::Parquet => "Parquet",
            },
            taken: humantime::format_rfc3339_seconds(m.taken).to_string(),
            taken_unix: crate::model::time::unix_seconds(m.taken),
            age_seconds: age.as_secs(),
            data_files: m.files.len(),
            objects,
            blobs: blobs.len() as u64,
            blobs_after_snapshot: 0,
            changed_since_snapshot: 0,
            requests,
        };
        Ok(Inventoried {
            inner,
            blobs,
            snapshot,
            after: AtomicU64::new(0),
            changed: AtomicU64::new(0),
        })
    }

    /// The inventory's blobs whose key starts with `prefix` (below `blobs/`), in key order.
    fn blobs_below(&self, prefix: &str) -> &[Blob] {
        let hex: String = match prefix.strip_prefix(layout::BLOBS) {
            // `ab/abcd…/` narrows by the folder, then by the digest.
            Some(rest) => {
                let mut parts = rest.split('/');
                let folder = parts.next().unwrap_or("");
                match parts.next().filter(|d| !d.is_empty()) {
                    Some(digest) if digest.starts_with(folder) => digest.to_owned(),
                    Some(_) => return &[],
                    None => folder.to_owned(),
                }
            }
            None if layout::BLOBS.starts_with(prefix) => String::new(),
            None => return &[],
        };
        let lower = |b: &Blob| {
            let h = b.digest.hex();
            h[..hex.len().min(h.len())] < *hex
        };
        let start = self.blobs.partition_point(lower);
        let len = self.blobs[start..].partition_point(|b| b.digest.hex().starts_with(&hex));
        &self.blobs[start..start + len]
    }

    fn listed(&self, d: &Digest) -> Option<&Blob> {
        self.blobs
            .binary_search_by_key(d, |b| b.digest)
            .ok()
            .map(|i| &self.blobs[i])
    }

    /// Whether the blob data at `key` may go: still the object the inventory listed. An error says
    /// why not (and counts it).
    fn still_as_listed(&self, key: &str) -> Result<(), StorageError> {
        let BlobKey::Data(d) = layout::parse_blob_key(key) else {
            return Ok(());
        };
        let refuse = |why: String| {
            self.changed.fetch_add(1, Ordering::Relaxed);
            Err(StorageError::Other {
                key: key.to_owned(),
                message: format!(
                    "{why}; not deleted (the inventory's snapshot is of {})",
                    self.snapshot.taken
                ),
            })
        };
        let Some(listed) = self.listed(&d) else {
            return refuse("written after the inventory's snapshot".into());
        };
        match self.inner.stat(key) {
            Ok(Some((size, modified))) => {
                let t = modified.map(crate::model::time::unix_seconds);
                if size != listed.size || t.is_some_and(|t| t > listed.modified) {
                    refuse(format!(
                        "changed since the inventory listed it ({} bytes at {}, now {size} bytes at {})",
                        listed.size,
                        listed.modified,
                        t.map_or("an unknown time".into(), |t| t.to_string())
                    ))
                } else {
                    Ok(())
                }
            }
            Ok(None) => Ok(()),
            Err(e) if e.is_not_found() => {
                self.changed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

impl Storage for Inventoried {
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        if !(prefix.starts_with(layout::BLOBS) || layout::BLOBS.starts_with(prefix)) {
            return self.inner.list(prefix, visit, note);
        }
        if !prefix.starts_with(layout::BLOBS) {
            // A prefix above `blobs/` (the store's root): the store's own keys but its blobs, then
            // the inventory's blobs, together.
            self.inner.list(
                prefix,
                &mut |e| {
                    if !e.key.starts_with(layout::BLOBS) {
                        visit(e)
                    }
                },
                note,
            )?;
        }
        for b in self.blobs_below(prefix) {
            visit(Entry {
                key: layout::blob_data(&b.digest),
                size: b.size,
                modified: Some(
                    SystemTime::UNIX_EPOCH + Duration::from_secs(b.modified.max(0) as u64),
                ),
                etag: None,
                content: None,
            });
        }
        Ok(())
    }

    fn list_lean(
        &self,
        prefix: &str,
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        if prefix.starts_with(layout::BLOBS) {
            return self.list(prefix, visit, note);
        }
        self.inner.list_lean(prefix, lean, visit, note)
    }

    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        if prefix.starts_with(layout::BLOBS) {
            for f in folders {
                self.list(&format!("{prefix}{f}/"), visit, note)?;
            }
            return Ok(());
        }
        self.inner.list_below(prefix, folders, lean, visit, note)
    }

    /// The repositories in parts as the bucket lists them; the blobs as [`Self::list_below`] does.
    fn list_below_in_parts(
        &self,
        prefix: &str,
        folders: &[String],
        lean: Lean,
        split_at: &dyn Fn(&str) -> bool,
        visit: &mut dyn FnMut(usize, Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        if prefix.starts_with(layout::BLOBS) {
            return self.list_below(prefix, folders, lean, &mut |e| visit(0, e), note);
        }
        self.inner
            .list_below_in_parts(prefix, folders, lean, split_at, visit, note)
    }

    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        let r = self.inner.stat(key);
        if let (Ok(_), BlobKey::Data(d)) = (&r, layout::parse_blob_key(key))
            && self.listed(&d).is_none()
        {
            self.after.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        if !prefix.starts_with(layout::BLOBS) {
            return self.inner.child_folders(prefix);
        }
        let mut dirs: Vec<String> = self
            .blobs_below(prefix)
            .iter()
            .filter_map(|b| {
                let key = layout::blob_data(&b.digest);
                let rest = key.strip_prefix(prefix)?;
                rest.split_once('/').map(|(d, _)| d.to_owned())
            })
            .collect();
        dirs.dedup();
        Ok(dirs)
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

    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let checked: Vec<Result<(), StorageError>> =
            keys.par_iter().map(|k| self.still_as_listed(k)).collect();
        let go: Vec<String> = keys
            .iter()
            .zip(&checked)
            .filter(|(_, c)| c.is_ok())
            .map(|(k, _)| k.clone())
            .collect();
        let mut done = self.inner.delete(&go).into_iter();
        checked
            .into_iter()
            .map(|c| match c {
                Ok(()) => done.next().unwrap_or(Ok(())),
                Err(e) => Err(e),
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn moves(&self) -> Option<&dyn Moves> {
        self.inner.moves().map(|_| self as &dyn Moves)
    }

    fn versions(&self) -> Option<&dyn Versions> {
        self.inner.versions().map(|_| self as &dyn Versions)
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        self.inner.multipart()
    }

    fn lock(&self) -> &dyn Lock {
        self.inner.lock()
    }

    fn wrapped(&self) -> Option<&dyn Storage> {
        Some(&*self.inner)
    }

    fn listing_snapshot(&self) -> Option<ListingSnapshot> {
        let mut s = self.snapshot.clone();
        s.blobs_after_snapshot = self.after.load(Ordering::Relaxed);
        s.changed_since_snapshot = self.changed.load(Ordering::Relaxed);
        Some(s)
    }
}

/// A move of blob data is a delete from where it was: it checks as a delete does.
impl Moves for Inventoried {
    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        self.still_as_listed(from)?;
        self.inner
            .moves()
            .ok_or_else(|| super::cannot_move(from))?
            .move_object(from, to)
    }

    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.inner
            .moves()
            .ok_or_else(|| super::cannot_move(key))?
            .write_object(key, bytes)
    }

    fn move_cost(&self) -> &'static str {
        self.inner.moves().map_or("", |m| m.move_cost())
    }
}

/// Hiding blob data behind a delete marker is a delete: it checks as a delete does.
impl Versions for Inventoried {
    fn versioning(&self) -> Result<Option<Versioning>, StorageError> {
        self.inner.versions().map_or(Ok(None), |v| v.versioning())
    }

    fn kept_version(&self, key: &str) -> Result<Option<ObjectVersion>, StorageError> {
        self.inner
            .versions()
            .map_or(Ok(None), |v| v.kept_version(key))
    }

    fn hide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        self.still_as_listed(key)?;
        crate::storage::versions_of(&*self.inner, key)?.hide_version(key, version)
    }

    fn unhide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        crate::storage::versions_of(&*self.inner, key)?.unhide_version(key, version)
    }

    fn delete_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        crate::storage::versions_of(&*self.inner, key)?.delete_version(key, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemStorage;

    fn wrapped(digests: &[Digest]) -> Inventoried {
        let mut blobs: Vec<Blob> = digests
            .iter()
            .map(|&digest| Blob {
                digest,
                size: 1,
                modified: 1,
            })
            .collect();
        blobs.sort_by_key(|b| b.digest);
        Inventoried {
            inner: Box::new(MemStorage::default()),
            blobs,
            snapshot: ListingSnapshot {
                manifest: "m".into(),
                format: "CSV",
                taken: String::new(),
                taken_unix: 0,
                age_seconds: 0,
                data_files: 1,
                objects: 0,
                blobs: 0,
                blobs_after_snapshot: 0,
                changed_since_snapshot: 0,
                requests: 0,
            },
            after: AtomicU64::new(0),
            changed: AtomicU64::new(0),
        }
    }

    #[test]
    fn shard_and_folder_listings_give_exactly_their_blobs() {
        let ds: Vec<Digest> = (0u8..=255).map(|i| Digest::of(&[i])).collect();
        let inv = wrapped(&ds);
        let keys = |prefix: &str| {
            let mut out = Vec::new();
            inv.list(prefix, &mut |e| out.push(e.key), &mut |_| {})
                .unwrap();
            out
        };
        let mut all = Vec::new();
        for n in 0..16u8 {
            let shard = keys(&layout::blob_partition(n));
            assert!(
                shard
                    .iter()
                    .all(|k| k.starts_with(&layout::blob_partition(n)))
            );
            all.extend(shard);
        }
        let mut expected: Vec<String> = ds.iter().map(layout::blob_data).collect();
        expected.sort();
        assert_eq!(all, expected, "the shards cover every blob once, in order");
        let one = &expected[7];
        let folder = &one[..one.len() - "data".len()];
        assert_eq!(keys(folder), vec![one.clone()]);
        assert_eq!(keys(layout::BLOBS).len(), 256);
    }
}
