//! `du`: where the bytes are, per repository, and what collecting would free. Deletes nothing.
//!
//! Built on the same walk, catalog and marks as `gc`: a repository's `bytes` are the distinct blobs
//! its tags reach (manifests, indexes' children, configs, layers, and referrers of what they keep);
//! its `exclusive_bytes` are those that no other repository's tags reach, which is what deleting the
//! repository and collecting with `-m` would free. Store-wide, `reclaimable` splits what `gc
//! --grace 0s` frees (`unreferenced_bytes`), what `-m` frees on top of that (`untagged_bytes`), and
//! what `_uploads` folders hold (`uploads_bytes`), and on S3 the parts of incomplete multipart uploads
//! (`multipart_bytes`), which no object listing shows and which are billed all the same.

use crate::commands::gate;
use crate::commands::outcome::{Error, Outcome};
use crate::commands::target::{StorageSpec, Target};
use crate::commands::{CacheDir, Store};
use crate::model::atomic_file::Staged;
use crate::model::progress::{Count, Progress};
use crate::pipeline::analysis::{self, Multipart, StoreRead};
use crate::pipeline::collect::AnalysisError;
use crate::pipeline::collect::bucket::{self, BlobUse};
use crate::pipeline::collect::catalog::Catalog;
use crate::pipeline::collect::inventory;
use crate::pipeline::collect::inventory::Inventory;
use crate::pipeline::collect::manifest_cache::ManifestCache;
use crate::pipeline::collect::mark;
use crate::pipeline::collect::walk;
use crate::report::du::{BlobUsage, DuReport, Reclaimable, RepoUsage, SHARED_NAMES, TagUsage};
use crate::report::du_history::{self, Room};
use crate::storage::Storage;
use rayon::prelude::*;
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::time::{Instant, SystemTime};

/// Measures the store; per repository, its `blobs_per_repo` largest blobs are listed.
pub fn du(
    storage: &dyn Storage,
    blobs_per_repo: usize,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<DuReport, AnalysisError> {
    du_accounting(storage, blobs_per_repo, false, progress, cache)
}

/// [`du`]; with `bucket`, every byte under the store's root accounted for too
/// ([`crate::pipeline::collect::bucket`]).
pub fn du_accounting(
    storage: &dyn Storage,
    blobs_per_repo: usize,
    bucket: bool,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<DuReport, AnalysisError> {
    if !bucket {
        return measure(storage, blobs_per_repo, None, progress, cache);
    }
    progress.phase("listing every object and version", Count::Listed, None);
    let listing = bucket::list_all(storage)?;
    progress.check()?;
    if listing.of_versions {
        // The version listing's current objects answer the analysis's listings: one pass.
        let once = crate::storage::listed_once::ListedOnce::new(storage, listing.current());
        measure(&once, blobs_per_repo, Some(listing), progress, cache)
    } else {
        measure(storage, blobs_per_repo, Some(listing), progress, cache)
    }
}

/// The measure of [`du`], with `listing` (`--bucket`) accounted for too.
fn measure(
    storage: &dyn Storage,
    blobs_per_repo: usize,
    listing: Option<bucket::Listing>,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<DuReport, AnalysisError> {
    let start = Instant::now();
    let StoreRead {
        inventory: mut inv,
        catalog: cat,
        multipart,
        multipart_error,
    } = analysis::read(
        storage,
        inventory::Detail::Targets,
        Multipart::Listed,
        progress,
        cache,
    )?;
    progress.phase("marking per repository", Count::ManifestsRead, None);
    let per_repo = mark::tag_reach(&inv, &cat);
    let plain = mark::mark_every_revision(&inv, &cat);
    let ids = walk::to_measure(&inv, &plain.blobs);
    walk::measure(storage, &mut inv, &ids, progress);
    progress.check()?;
    // Blobs reached from one repository only, and from two or more.
    let (mut once, mut twice) = (RoaringBitmap::new(), RoaringBitmap::new());
    for reach in &per_repo {
        twice |= &once & reach;
        once |= reach;
    }
    let tagged = once;
    let tag_sizes = tag_sizes(&inv, &cat);
    let mut largest = largest_blobs(&inv, &per_repo, blobs_per_repo);
    let mut repositories: Vec<RepoUsage> = inv
        .repositories
        .iter()
        .zip(&per_repo)
        .zip(tag_sizes)
        .zip(largest.iter_mut())
        .map(|(((r, reach), tag_sizes), largest)| {
            let bytes = inv.blobs.bytes_of(reach);
            let exclusive_bytes = inv.blobs.bytes_of(&(reach - &twice));
            RepoUsage {
                name: r.name.clone(),
                tags: r.tags.len() as u64,
                manifests: r.revisions.len() as u64,
                bytes,
                exclusive_bytes,
                shared_bytes: bytes - exclusive_bytes,
                tag_sizes,
                largest_blobs: std::mem::take(largest),
            }
        })
        .collect();
    repositories.sort_by(|a, b| {
        (b.exclusive_bytes, b.bytes, &a.name).cmp(&(a.exclusive_bytes, a.bytes, &b.name))
    });
    let total_bytes = inv.blobs.total_bytes();
    let multipart_bytes = multipart.iter().map(|u| u.size).sum();
    let unreferenced = plain.unreferenced(&inv);
    let untagged = &plain.blobs - &tagged;
    let bucket = if let Some(listing) = listing {
        let blob_use = |d: &crate::model::digest::Digest| {
            let id = inv.blobs.id(d)?;
            Some(if unreferenced.contains(id) {
                BlobUse::Unreferenced
            } else if untagged.contains(id) {
                BlobUse::Untagged
            } else {
                BlobUse::Live
            })
        };
        Some(bucket::account_listed(storage, listing, &blob_use).map_err(AnalysisError::Storage)?)
    } else {
        None
    };
    Ok(DuReport {
        database_in_use: None,
        storage: storage.describe(),
        time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        blobs: inv.blobs.len() as u64 - inv.no_data.len(),
        total_bytes,
        reclaimable: Reclaimable {
            grace_seconds: 0,
            unreferenced_bytes: inv.blobs.bytes_of(&unreferenced),
            untagged_bytes: inv.blobs.bytes_of(&untagged),
            uploads_bytes: inv
                .repositories
                .iter()
                .flat_map(|r| &r.uploads)
                .map(|u| u.size)
                .sum(),
            multipart_bytes,
        },
        repositories,
        problems: (inv.problems.len() + cat.problems.len()) as u64,
        multipart_error,
        elapsed_ms: start.elapsed().as_millis() as u64,
        manifest_cache: None,
        trash: None,
        history: None,
        page: None,
        s3_inventory: storage.listing_snapshot(),
        bucket,
    })
}

/// Per repository, its tags with the bytes each one's image reaches.
fn tag_sizes(inv: &Inventory, cat: &Catalog) -> Vec<Vec<TagUsage>> {
    let per_tag = mark::reach_per_tag(inv, cat);
    let repos = inv.repositories.iter().zip(per_tag);
    repos
        .map(|(r, reaches)| {
            let tags = r.tags.iter().zip(reaches);
            tags.map(|(t, reach)| TagUsage {
                name: t.name.to_string(),
                digest: t.current.map(|d| d.to_string()),
                bytes: inv.blobs.bytes_of(&reach),
            })
            .collect()
        })
        .collect()
}

/// Per repository, the `n` largest blobs its tags reach (by size, then digest), each with the other
/// repositories whose tags reach it.
fn largest_blobs(inv: &Inventory, per_repo: &[RoaringBitmap], n: usize) -> Vec<Vec<BlobUsage>> {
    let blobs = &inv.blobs;
    let chosen: Vec<Vec<u32>> = per_repo
        .par_iter()
        .map(|reach| {
            let mut ids: Vec<u32> = reach.iter().collect();
            let key = |id: &u32| (std::cmp::Reverse(blobs.size(*id)), blobs.digest(*id));
            if ids.len() > n {
                ids.select_nth_unstable_by_key(n, key);
                ids.truncate(n);
            }
            ids.sort_by_key(key);
            ids
        })
        .collect();
    let wanted: RoaringBitmap = chosen.iter().flatten().copied().collect();
    // Who reaches each chosen blob, in inventory order.
    let mut holders: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, reach) in per_repo.iter().enumerate() {
        for id in reach & &wanted {
            holders.entry(id).or_default().push(i);
        }
    }
    let name = |i: &usize| inv.repositories[*i].name.clone();
    for held in holders.values_mut() {
        held.sort_by(|a, b| inv.repositories[*a].name.cmp(&inv.repositories[*b].name));
    }
    chosen
        .iter()
        .enumerate()
        .map(|(me, ids)| {
            let usage = |id: &u32| {
                let others = || holders[id].iter().filter(|i| **i != me);
                BlobUsage {
                    digest: blobs.digest(*id).to_string(),
                    bytes: blobs.size(*id),
                    shared_by: others().count() as u64,
                    shared_with: others().take(SHARED_NAMES).map(name).collect(),
                }
            };
            ids.iter().map(usage).collect()
        })
        .collect()
}

/// What `du` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct DuRun {
    pub blobs_per_repo: usize,
    /// The page to write (`--html`).
    pub html: Option<std::path::PathBuf>,
    /// The history file to read and append to (`--history`).
    pub history: Option<std::path::PathBuf>,
    /// The store's capacity in bytes (`--capacity`), for the fill date.
    pub capacity: Option<u64>,
    /// Account for every byte under the store's root (`--bucket`).
    pub bucket: bool,
    /// Prices per storage class and GiB-month (`--price FILE`).
    pub price: Option<std::path::PathBuf>,
    pub manifests: CacheDir,
}

/// `du`: the measure, the history appended, the page written.
pub fn run(
    store: Store<'_>,
    run: &DuRun,
    progress: &Progress,
) -> Result<(DuReport, Outcome), Error> {
    let storage = store.storage;
    if let Some(page) = &run.html {
        let folder = page.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(folder) = folder.filter(|f| !f.is_dir()) {
            return Err(Error::other(format!(
                "--html {}: there is no folder {}",
                page.display(),
                folder.display()
            )));
        }
    }
    // A price table that cannot be read stops the run before the work, by name.
    let price = match &run.price {
        Some(path) => Some(read_price(path)?),
        None => None,
    };
    // A damaged history stops the run before the work, by name.
    let recorded = match &run.history {
        Some(path) => Some(du_history::read(path, &storage.describe()).map_err(Error::other)?),
        None => None,
    };
    let manifests = run.manifests.open();
    let result = du_accounting(
        storage,
        run.blobs_per_repo,
        run.bucket,
        progress,
        manifests.as_ref(),
    );
    let read_at = SystemTime::now();
    let mut report = result.map_err(|e| store.analysis(e))?;
    report.manifest_cache = manifests.map(ManifestCache::finish);
    if let (Some(b), Some(price)) = (report.bucket.as_mut(), &price) {
        let path = run
            .price
            .as_deref()
            .expect("a price table was read")
            .display();
        b.monthly_cost = Some(
            b.priced(price)
                .map_err(|e| Error::other(format!("--price {path}: {e}")))?,
        );
    }
    report.database_in_use = gate::database_owner(storage);
    report.trash = gate::trash_held(storage);
    if let (Some(path), Some(mut runs)) = (&run.history, recorded) {
        let room = store_room(store.target, run.capacity, report.total_bytes)?;
        let recorded = report.recorded(read_at, room);
        du_history::append(path, &recorded).map_err(Error::other)?;
        runs.push(recorded);
        report.history = du_history::growth(path, &runs);
    }
    if let Some(path) = &run.html {
        write_page(path, &report)?;
        report.page = Some(path.display().to_string());
    }
    Ok((report, Outcome::Done))
}

/// Where the store's bytes may go: `capacity` less what it holds, or its filesystem's size and
/// free space; `None` for a bucket without a capacity.
fn store_room(
    target: &Target,
    capacity: Option<u64>,
    total_bytes: u64,
) -> Result<Option<Room>, Error> {
    if let Some(capacity_bytes) = capacity {
        let available_bytes = capacity_bytes.saturating_sub(total_bytes);
        return Ok(Some(Room {
            capacity_bytes,
            available_bytes,
        }));
    }
    match &target.spec {
        StorageSpec::Filesystem { root } => {
            let fs = rustix::fs::statvfs(root).map_err(|e| {
                Error::failed(
                    format!(
                        "reading the size of the filesystem holding {}",
                        root.display()
                    ),
                    e,
                )
            })?;
            Ok(Some(Room {
                capacity_bytes: fs.f_blocks * fs.f_frsize,
                available_bytes: fs.f_bavail * fs.f_frsize,
            }))
        }
        _ => Ok(None),
    }
}

/// Writes the du page to `path` whole (a temporary file beside it, renamed into place), so that a
/// reader never sees half a page.
fn write_page(path: &std::path::Path, report: &DuReport) -> Result<(), Error> {
    if path.file_name().is_none() {
        return Err(Error::other(format!(
            "--html {}: not a file name",
            path.display()
        )));
    }
    let context = || format!("writing the page {}", path.display());
    let staged = Staged::create(path, "a file").map_err(|e| Error::failed(context(), e))?;
    staged
        .finish(|out| crate::report::du_page::write_page(report, out))
        .map_err(|e| Error::failed(context(), e))
}

/// A price table: storage class → price per GiB-month, every price a number of 0 or more.
fn read_price(path: &std::path::Path) -> Result<std::collections::BTreeMap<String, f64>, Error> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::other(format!("--price {shown}: cannot read it: {e}")))?;
    let table: std::collections::BTreeMap<String, f64> = serde_norway::from_str(&text).map_err(|e| {
        Error::other(format!(
            "--price {shown}: not a map of storage class to price per GiB-month (STANDARD: 0.023): {e}"
        ))
    })?;
    if table.is_empty() {
        return Err(Error::other(format!("--price {shown}: no prices in it")));
    }
    if let Some((class, p)) = table.iter().find(|(_, p)| !(p.is_finite() && **p >= 0.0)) {
        return Err(Error::other(format!(
            "--price {shown}: {class}: {p} is not a price"
        )));
    }
    Ok(table)
}
