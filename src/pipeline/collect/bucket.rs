//! `du --bucket`: every byte stored under the store's root, each in exactly one category.
//!
//! What the store itself holds is read by one listing of every version (S3: ListObjectVersions;
//! where the store keeps no versions, every object as listed) and of the incomplete multipart
//! uploads with their parts. Each byte then has one home:
//! - a current object of the registry's layout: its blob data split as `du` splits it (live,
//!   unreferenced, untagged), its links and tags (`links_bytes`), its uploads (`uploads_bytes`);
//! - regsweep's own objects (the trash's runs, the lock), with the older versions a trash run hid
//!   on a versioned bucket instead of copying them (they count once, here);
//! - every other older version (`noncurrent_versions`), and every delete marker (no bytes);
//! - the parts of incomplete multipart uploads, whoever started them;
//! - current objects whose key is not of the layout's shape (`outside_layout`, with examples), which
//!   no command ever touches.
//!
//! The categories sum to `total_bytes`, which is the sum of the sizes the store's own listings give
//! (every version, every part).

use crate::model::digest::Digest;
use crate::model::layout::{self, BlobKey, RepoKey};
use crate::storage::{ListedVersion, Storage, StorageError};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// Where the trash keeps its runs, and regsweep's lock: regsweep's own keys.
const TRASH: &str = "regsweep-trash/";
/// How many keys outside the layout are named.
const EXAMPLES: usize = 20;

/// What a blob's data is to the registry (as `du` found it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobUse {
    /// A tag reaches it.
    Live,
    /// Nothing references it: `gc` frees it.
    Unreferenced,
    /// Only untagged manifests reach it: `gc -m` frees it.
    Untagged,
}

/// Objects and their bytes.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Count {
    pub count: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// The registry's own current objects.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RegistryBytes {
    pub objects: u64,
    pub live_bytes: u64,
    pub unreferenced_bytes: u64,
    pub untagged_bytes: u64,
    pub uploads_bytes: u64,
    /// `_layers` links, revision links, tag links and index entries.
    pub links_bytes: u64,
}

impl RegistryBytes {
    fn total(&self) -> u64 {
        self.live_bytes
            + self.unreferenced_bytes
            + self.untagged_bytes
            + self.uploads_bytes
            + self.links_bytes
    }
}

/// Keys under the store's root that are not the registry's layout.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outside {
    pub count: u64,
    pub bytes: u64,
    /// Keys relative to the root, at most 20, first in key order.
    pub examples: Vec<String>,
}

/// Every byte under the store's root, by category (JSON field `bucket`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Bucket {
    /// Whether the store keeps older versions (a versioned bucket): the version categories are
    /// absent where it does not.
    pub versions_kept: bool,
    /// The current objects, whatever their category.
    pub current: Count,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_versions: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_markers: Option<Count>,
    /// Incomplete multipart uploads and the bytes of their parts (absent where the store has none
    /// of the kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipart_uploads: Option<Count>,
    pub outside_layout: Outside,
    /// regsweep's trash runs and lock, with the versions the trash hid.
    pub trash: Count,
    pub registry: RegistryBytes,
    /// Bytes of every listed version by storage class (multipart parts aside), where the listing
    /// names classes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_storage_class: BTreeMap<String, u64>,
    pub total_bytes: u64,
    /// What this store cannot show (a filesystem keeps no versions and no multipart uploads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// With `--price`: what each category costs a month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_cost: Option<MonthlyCost>,
    /// Bytes by category and storage class (`""` where the listing names none), for the prices.
    #[serde(skip)]
    pub by_category_class: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

/// What each category costs a month, at the prices given (`--price FILE`: per storage class, per
/// GiB-month).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MonthlyCost {
    pub by_category: BTreeMap<String, f64>,
    pub total: f64,
}

/// The storage class multipart parts are billed in (S3 bills parts as the upload's class, which
/// the listing does not give: Standard unless the price table says otherwise).
pub const PARTS_CLASS: &str = "STANDARD";

impl Bucket {
    /// Prices every category: `price` gives a class's price per GiB-month (`default` for bytes
    /// whose class the store does not name). A class with no price is an error naming it.
    pub fn priced(&self, price: &BTreeMap<String, f64>) -> Result<MonthlyCost, String> {
        let mut cost = MonthlyCost::default();
        for (category, classes) in &self.by_category_class {
            let mut sum = 0.0;
            for (class, bytes) in classes {
                let rate = match price.get(class.as_str()).or_else(|| price.get("default")) {
                    Some(r) => *r,
                    None if class.is_empty() => {
                        return Err(
                            "no price for bytes without a storage class: add `default`".into()
                        );
                    }
                    None => return Err(format!("no price for storage class {class}")),
                };
                sum += *bytes as f64 / (1u64 << 30) as f64 * rate;
            }
            cost.total += sum;
            cost.by_category.insert((*category).to_owned(), sum);
        }
        Ok(cost)
    }
}

impl Bucket {
    /// The sum of the categories (each byte once): equal to `total_bytes`.
    pub fn categories_sum(&self) -> u64 {
        self.registry.total()
            + self.noncurrent_versions.map_or(0, |c| c.bytes)
            + self.multipart_uploads.map_or(0, |c| c.bytes)
            + self.outside_layout.bytes
            + self.trash.bytes
    }
}

/// Where a current key belongs.
enum Home {
    Blob(Digest),
    Links,
    Uploads,
    Trash,
    Outside,
}

fn home(key: &str) -> Home {
    if key.starts_with(TRASH) || key == crate::storage::lock_record::LOCK_KEY {
        return Home::Trash;
    }
    if key.starts_with(layout::BLOBS) {
        return match layout::parse_blob_key(key) {
            BlobKey::Data(d) if key == layout::blob_data(&d) => Home::Blob(d),
            _ => Home::Outside,
        };
    }
    match layout::parse_repo_key(key) {
        Some((_, RepoKey::Upload { .. })) => Home::Uploads,
        Some((
            _,
            RepoKey::LayerLink(_)
            | RepoKey::AliasLink(_)
            | RepoKey::RevisionLink(_)
            | RepoKey::TagCurrent(_)
            | RepoKey::TagIndexEntry(..),
        )) => Home::Links,
        _ => Home::Outside,
    }
}

/// The (key, version id) pairs the trash hid on a versioned bucket: read from its runs' version
/// records (`regsweep-trash/<run>/versions/<key>`).
fn hidden_by_trash(storage: &dyn Storage, records: &[String]) -> HashSet<(String, String)> {
    use rayon::prelude::*;
    records
        .par_iter()
        .filter_map(|record| {
            let rest = record.strip_prefix(TRASH)?;
            let (_, rest) = rest.split_once('/')?;
            let key = rest.strip_prefix(crate::storage::trashing::VERSIONS)?;
            let v = crate::storage::trashing::read_version_record(storage, record).ok()?;
            Some((key.to_owned(), v.version_id))
        })
        .collect()
}

/// What the store holds under its root, as one listing of every version gives it (or, where the
/// store lists no versions, every object).
pub struct Listing {
    pub versions: Vec<ListedVersion>,
    /// The listing was of versions (S3's ListObjectVersions, GCS's generations): its current
    /// objects can stand in for the plain listing (see [`crate::storage::listed_once`]).
    pub of_versions: bool,
    /// The store keeps older versions (versioning on).
    pub versions_kept: bool,
}

impl Listing {
    /// The current objects, as a plain listing gives them, in key order.
    pub fn current(&self) -> Vec<crate::storage::Entry> {
        let mut out: Vec<crate::storage::Entry> = self
            .versions
            .iter()
            .filter(|v| v.latest && !v.delete_marker)
            .map(|v| crate::storage::Entry {
                key: v.key.clone(),
                size: v.size,
                modified: v.modified,
                etag: v.etag.clone(),
                content: None,
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// Lists every version under the store's root (one listing), or every object where the store
/// lists no versions.
pub fn list_all(storage: &dyn Storage) -> Result<Listing, StorageError> {
    let mut listed: Vec<ListedVersion> = Vec::new();
    let (of_versions, versions_kept) = match storage.versions().filter(|v| v.lists_every_version())
    {
        Some(v) => {
            v.list_every_version(&mut |e| listed.push(e))?;
            (true, v.versioning()?.is_some())
        }
        None => {
            let mut entries = Vec::new();
            storage.list("", &mut |e| entries.push(e), &mut |_| {})?;
            // A filesystem's listing knows some files by name only (a `_layers` link by its
            // folder): those are asked their size.
            use rayon::prelude::*;
            listed = entries
                .into_par_iter()
                .map(|e| {
                    let size = match e.modified {
                        Some(_) => Ok(e.size),
                        None => storage.stat(&e.key).map(|s| s.map_or(0, |(n, _)| n)),
                    };
                    size.map(|size| ListedVersion {
                        key: e.key,
                        version_id: None,
                        size,
                        latest: true,
                        delete_marker: false,
                        storage_class: None,
                        modified: e.modified,
                        etag: e.etag,
                    })
                })
                .collect::<Result<_, _>>()?;
            (false, false)
        }
    };
    Ok(Listing {
        versions: listed,
        of_versions,
        versions_kept,
    })
}

/// Accounts for every byte under the store's root; `blob_use` says what each blob's data is to
/// the registry (data `du` did not see, written since, counts as live).
pub fn account(
    storage: &dyn Storage,
    blob_use: &dyn Fn(&Digest) -> Option<BlobUse>,
) -> Result<Bucket, StorageError> {
    account_listed(storage, list_all(storage)?, blob_use)
}

/// [`account`] of a listing made before.
pub fn account_listed(
    storage: &dyn Storage,
    listing: Listing,
    blob_use: &dyn Fn(&Digest) -> Option<BlobUse>,
) -> Result<Bucket, StorageError> {
    let Listing {
        versions: mut listed,
        versions_kept,
        ..
    } = listing;
    let records: Vec<String> = listed
        .iter()
        .filter(|v| v.latest && !v.delete_marker)
        .filter(|v| {
            v.key.starts_with(TRASH)
                && v.key[TRASH.len()..]
                    .split_once('/')
                    .is_some_and(|(_, rest)| rest.starts_with(crate::storage::trashing::VERSIONS))
        })
        .map(|v| v.key.clone())
        .collect();
    let hidden = if versions_kept {
        hidden_by_trash(storage, &records)
    } else {
        HashSet::new()
    };
    let mut b = Bucket {
        versions_kept,
        noncurrent_versions: versions_kept.then(Count::default),
        delete_markers: versions_kept.then(Count::default),
        ..Bucket::default()
    };
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let mut classes: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
    let mut priced = |category: &'static str, v: &ListedVersion| {
        let class = v.storage_class.clone().unwrap_or_default();
        *classes
            .entry(category)
            .or_default()
            .entry(class)
            .or_default() += v.size;
    };
    for v in &listed {
        if v.delete_marker {
            if let Some(c) = b.delete_markers.as_mut() {
                c.add(0);
            }
            continue;
        }
        b.total_bytes += v.size;
        if let Some(class) = &v.storage_class {
            *b.by_storage_class.entry(class.clone()).or_default() += v.size;
        }
        if !v.latest {
            let trash = v.key.starts_with(TRASH)
                || v.key == crate::storage::lock_record::LOCK_KEY
                || v.version_id
                    .as_ref()
                    .is_some_and(|id| hidden.contains(&(v.key.clone(), id.clone())));
            match (trash, b.noncurrent_versions.as_mut()) {
                (true, _) => {
                    b.trash.add(v.size);
                    priced("trash", v);
                }
                (false, Some(c)) => {
                    c.add(v.size);
                    priced("noncurrent_versions", v);
                }
                // A store that lists no versions lists no older ones: counted as current.
                (false, None) => b.current.add(v.size),
            }
            continue;
        }
        b.current.add(v.size);
        match home(&v.key) {
            Home::Trash => {
                b.trash.add(v.size);
                priced("trash", v);
            }
            Home::Outside => {
                b.outside_layout.count += 1;
                b.outside_layout.bytes += v.size;
                if b.outside_layout.examples.len() < EXAMPLES {
                    b.outside_layout.examples.push(v.key.clone());
                }
                priced("outside_layout", v);
            }
            Home::Links => {
                b.registry.objects += 1;
                b.registry.links_bytes += v.size;
                priced("links", v);
            }
            Home::Uploads => {
                b.registry.objects += 1;
                b.registry.uploads_bytes += v.size;
                priced("uploads", v);
            }
            Home::Blob(d) => {
                b.registry.objects += 1;
                let (bytes, category) = match blob_use(&d).unwrap_or(BlobUse::Live) {
                    BlobUse::Live => (&mut b.registry.live_bytes, "live"),
                    BlobUse::Unreferenced => (&mut b.registry.unreferenced_bytes, "unreferenced"),
                    BlobUse::Untagged => (&mut b.registry.untagged_bytes, "untagged"),
                };
                *bytes += v.size;
                priced(category, v);
            }
        }
    }
    if let Some(m) = storage.multipart() {
        let mut c = Count::default();
        for u in m.multipart_uploads()? {
            c.add(u.size);
        }
        b.total_bytes += c.bytes;
        *classes
            .entry("multipart_uploads")
            .or_default()
            .entry(PARTS_CLASS.to_owned())
            .or_default() += c.bytes;
        b.multipart_uploads = Some(c);
    }
    b.by_category_class = classes;
    match storage.versions() {
        None => {
            b.note = Some(
                "this store keeps no older versions and no multipart uploads: every file under \
                 its root, as listed"
                    .to_owned(),
            )
        }
        Some(v) if !v.lists_every_version() => {
            b.note = Some(
                "older versions and soft-deleted objects of this store are not listed yet: its \
                 current objects, as listed"
                    .to_owned(),
            )
        }
        Some(_) => {}
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_find_one_home_each() {
        let d = Digest::of(b"x");
        assert!(matches!(home(&layout::blob_data(&d)), Home::Blob(_)));
        assert!(matches!(
            home("docker/registry/v2/blobs/sha256/notes.txt"),
            Home::Outside
        ));
        assert!(matches!(home(&layout::layer_link("a/b", &d)), Home::Links));
        assert!(matches!(home(&layout::tag_current("a", "v1")), Home::Links));
        assert!(matches!(
            home("docker/registry/v2/repositories/a/_uploads/u1/data"),
            Home::Uploads
        ));
        assert!(matches!(home("regsweep-trash/r/run.json"), Home::Trash));
        assert!(matches!(home("regsweep.lock"), Home::Trash));
        assert!(matches!(home("backups/2026.tar"), Home::Outside));
        assert!(matches!(
            home("docker/registry/v2/repositories/a/_manifests/revisions/sha256/zz/link"),
            Home::Outside
        ));
    }
}
