//! The walk: what a store holds, read from listings plus the few small links that must be opened.
//!
//! Two parallel walks over known shards, side by side, each with local state merged once at the end
//! (the repositories' walk holds what it lists until the blob table is there):
//! - the blob tree, over 16 shards `blobs/sha256/0` … `f` (each 16 of its 256 folders). A blob's digest is its folder name
//!   and its size and age come from the listing: no blob is opened. The result is the [`BlobTable`], a
//!   table of digests sorted so that a digest's index is its compact [`BlobId`];
//! - the repositories, one shard per top-level folder of `repositories/`. Keys are classified by
//!   [`crate::model::layout`]. Tag `current` links and revision links are then read in parallel: the tag's to
//!   learn its target, the revision's to check that it names its own folder (the registry resolves a
//!   revision through that content, so a bad one must be reported, never guessed around).
//!
//! Anything odd becomes a [`Problem`] and the walk goes on.

use crate::model::digest::{AliasDigest, Digest};
use crate::model::layout::{self, RepoKey};
use crate::model::problem::Problem;
use crate::model::progress::{Count, Progress, Tally};
use crate::model::time::unix_seconds;
use crate::pipeline::collect::blob_table::{
    self, BlobId, BlobTable, modified_seconds, note_problem,
};
use crate::pipeline::collect::inventory::{
    Detail, Inventory, Repository, Revisions, Tag, Upload, sorted_set,
};
use crate::pipeline::collect::links::{self, LinkOutcome, LinkToRead};
use crate::pipeline::collect::snapshot;
use crate::storage::{Entry, Lean, Storage, StorageError};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

/// The blobs whose size and age a judgement needs when `kept` are the blobs it keeps: every blob
/// it does not keep (what a plan may sweep, what a report counts as reclaimable), and the kept
/// ones no descriptor declared a size for.
pub fn to_measure(inv: &Inventory, kept: &RoaringBitmap) -> RoaringBitmap {
    let mut ids = RoaringBitmap::new();
    ids.insert_range(0..inv.blobs.len() as u32);
    ids -= kept;
    ids.extend(kept.iter().filter(|&id| inv.blobs.known_size(id).is_none()));
    ids
}

/// Learns the size and age of the blobs `ids` where the scan did not tell them ([`Detail::Names`]):
/// blobs found to have no data go to [`Inventory::no_data`], blobs that could not be measured are
/// problems.
pub fn measure(
    storage: &dyn Storage,
    inv: &mut Inventory,
    ids: &RoaringBitmap,
    progress: &Progress,
) {
    let (gone, problems) = inv.blobs.learn(storage, ids, progress);
    inv.no_data |= gone;
    if !problems.is_empty() {
        inv.problems.extend(problems);
        inv.problems
            .sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    }
}

/// Reads a store's inventory.
///
/// A listing that fails as a whole (no credentials, no bucket, an unreadable shard folder) ends the
/// scan with that error: an inventory missing a shard would make its blobs look unreferenced or its
/// repositories' blobs look orphaned, so no plan may be made from it. Problems with single entries are
/// collected and the scan goes on.
///
/// Once a stop is asked for (see [`Progress::check`]) it lists and reads no more and returns what it
/// has, which the caller must drop.
pub fn scan(
    storage: &dyn Storage,
    detail: Detail,
    progress: &Progress,
) -> Result<Inventory, StorageError> {
    progress.phase("listing blobs and repositories", Count::Listed, None);
    let lean = detail.lean();
    let soon = BlobsSoon::default();
    // Side by side where the store allows it ([`Storage::lists_side_by_side`]), else the blobs
    // first.
    let (blob_scan, repo_scan) = if !storage.lists_side_by_side() {
        let (table, problems) = blob_table::scan_blobs(storage, lean, progress)?;
        let _ = soon.0.set(Some(table));
        (
            Ok(problems),
            scan_repositories(storage, &soon, lean, progress),
        )
    } else {
        std::thread::scope(|s| {
            let blob_side = s.spawn(|| {
                // Sets `soon` however the listing ends, a panic included: the repositories' walk may
                // wait for it.
                let mut settled = Settle(&soon, None);
                let scanned = blobs_listed(storage, lean, progress);
                let (table, result) = match scanned {
                    Ok((table, problems)) => (Some(table), Ok(problems)),
                    Err(e) => (None, Err(e)),
                };
                settled.1 = table;
                drop(settled);
                result
            });
            let repos = scan_repositories(storage, &soon, lean, progress);
            let blobs = blob_side
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (blobs, repos)
        })
    };
    let mut problems = blob_scan?;
    let (mut repositories, repo_problems, vanished) = repo_scan?;
    let mut blobs = (soon.0.into_inner().flatten()).expect("the blob listing ended well");
    if storage.listing_snapshot().is_some() {
        blobs = snapshot::add_blobs_after_snapshot(storage, blobs, &mut repositories, progress)?;
    }
    problems.extend(repo_problems);
    problems.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Ok(Inventory {
        blobs,
        repositories,
        problems,
        vanished,
        no_data: RoaringBitmap::new(),
    })
}

/// The blob table while the repositories' walk runs beside the blob tree's listing: not set while
/// the blob tree is listed, then the table, or `None` when its listing failed.
#[derive(Default)]
struct BlobsSoon(std::sync::OnceLock<Option<BlobTable>>);

/// Sets a [`BlobsSoon`] to what it holds when dropped (`None` unless given the table).
struct Settle<'a>(&'a BlobsSoon, Option<BlobTable>);

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        let _ = self.0.0.set(self.1.take());
    }
}

/// The most repository entries the walks of all shards hold, together, while the blob table is
/// not there yet to take them in (a few hundred bytes each); past it a shard's walk waits.
const HELD_AT_MOST: usize = 16_384;

/// Lists the blob tree in a pool of its own, so that it ends whatever the global pool's threads
/// are doing: the repositories' walk, on the global pool, may wait for it.
fn blobs_listed(
    storage: &dyn Storage,
    lean: Lean,
    progress: &Progress,
) -> Result<(BlobTable, Vec<Problem>), StorageError> {
    let threads = storage
        .parallelism()
        .clamp(1, usize::from(layout::BLOB_PARTITIONS));
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("blobs-{i}"))
        .build()
    {
        Ok(pool) => pool.install(|| blob_table::scan_blobs(storage, lean, progress)),
        Err(e) => Err(StorageError::Other {
            key: layout::BLOBS.to_owned(),
            message: format!("no threads to list the blob tree with: {e}"),
        }),
    }
}

/// Reads only the repositories (their tags, revisions and links), not the blob tree: for jobs that
/// never weigh blobs, like `prune-tags`. Every `_layers` link then counts as dangling, since no blob
/// table was read to resolve it; the caller must not judge layer links from this. Also returns how
/// many listed links had gone when read.
pub fn scan_repositories_only(
    storage: &dyn Storage,
    progress: &Progress,
) -> Result<(Vec<Repository>, Vec<Problem>, u64), StorageError> {
    let soon = BlobsSoon::default();
    let _ = soon.0.set(Some(BlobTable::default()));
    let (repositories, mut problems, vanished) =
        scan_repositories(storage, &soon, Lean::default(), progress)?;
    problems.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Ok((repositories, problems, vanished))
}

/// Learns when the newest `_layers` link (alias links included) of each repository in `repos`
/// (indices into `inv.repositories`) was written, where the listing did not say or said a time in the second of
/// `cutoff` (the grace window's start; whole seconds cannot tell whether before or after it): each
/// link's time is asked of the store, and one after the cutoff counts in the second after
/// ([`crate::model::time::seconds_against`]). A link whose time cannot be learned counts as written
/// now, which keeps it under any grace.
pub fn layer_link_times(
    storage: &dyn Storage,
    inv: &mut Inventory,
    repos: &[usize],
    cutoff: SystemTime,
) {
    let second = unix_seconds(cutoff);
    let newest: Vec<(usize, i64)> = repos
        .par_iter()
        .filter(|&&r| {
            let repo = &inv.repositories[r];
            // A listing's times are of the sha256 links only: alias links are asked after. A
            // store of whole seconds would only say the cutoff's second again: after it.
            let settle = !storage.times_to_the_second() && repo.layer_links_newest == Some(second);
            repo.layer_links_newest.is_none() || settle || !repo.aliases.is_empty()
        })
        .map(|&r| {
            let repo = &inv.repositories[r];
            let links = repo
                .layer_links
                .iter()
                .map(|&id| layout::layer_link(&repo.name, &inv.blobs.digest(id)))
                .chain(
                    (repo.dangling_layer_links.iter()).map(|d| layout::layer_link(&repo.name, d)),
                )
                .chain((repo.aliases.iter()).map(|(a, _)| layout::alias_link(&repo.name, a)));
            let now = unix_seconds(SystemTime::now()).max(second + 1);
            let newest = links
                .map(|link| {
                    let t = match storage.modified(&link) {
                        Ok(Some(t)) => Some(t),
                        Ok(None) => storage.stat(&link).ok().flatten().and_then(|(_, t)| t),
                        // A folder without its link (or a link gone since): nothing written.
                        Err(e) if e.is_not_found() => return i64::MIN,
                        Err(_) => None,
                    };
                    t.map_or(now, |t| crate::model::time::seconds_against(t, cutoff))
                })
                .max()
                .unwrap_or(i64::MIN);
            (r, newest)
        })
        .collect();
    for (r, t) in newest {
        inv.repositories[r].layer_links_newest = Some(t);
    }
    if storage.times_to_the_second() {
        for &r in repos {
            let newest = &mut inv.repositories[r].layer_links_newest;
            if *newest == Some(second) {
                *newest = Some(second + 1);
            }
        }
    }
}

/// Link-aware grace: a blob's age is the newest of its data and every link naming it. Each link of
/// the blobs `ids` (their `_layers` links in every repository, and the revision links of those that
/// are revisions) is asked of the store, and a link written after `cutoff` makes its blob as young
/// as the link (a re-push, a mount or a deduplicated upload writes a link and no data). A link
/// whose time cannot be learned counts as written now; a link that is not there counts for
/// nothing. Returns how many blobs became younger than the cutoff.
pub fn link_aware_times(
    storage: &dyn Storage,
    inv: &Inventory,
    ids: &RoaringBitmap,
    cutoff: SystemTime,
) -> u64 {
    if ids.is_empty() {
        return 0;
    }
    let second = unix_seconds(cutoff);
    let now = unix_seconds(SystemTime::now()).max(second + 1);
    // Where the listing told every link's time and the newest is older than the cutoff's
    // second, no link of that kind in the repository is young: nothing to ask (a store of whole
    // seconds cannot tell the cutoff's own second apart).
    let all_older = |newest: Option<i64>| newest.is_some_and(|t| t < second);
    // Each link as (repository, blob, whether a revision link), its key made only when asked:
    // a garbage-heavy store has many, and their keys would be most of the memory this step holds.
    let links: Vec<(u32, BlobId, bool)> = (inv.repositories.iter().enumerate())
        .flat_map(|(r, repo)| {
            let (skip_layers, skip_revisions) = (
                all_older(repo.layer_links_newest),
                all_older(repo.revision_links_newest),
            );
            let layers = (repo.layer_links.iter())
                .filter(move |_| !skip_layers)
                .filter(|&&id| ids.contains(id))
                .map(move |&id| (r as u32, id, false));
            let revisions = (repo.revisions.stored().iter())
                .filter(move |_| !skip_revisions)
                .filter(|&&id| ids.contains(id))
                .map(move |&id| (r as u32, id, true));
            layers.chain(revisions)
        })
        .collect();
    let young: Vec<(BlobId, i64)> = links
        .par_iter()
        .filter_map(|&(r, id, revision)| {
            let (name, d) = (&inv.repositories[r as usize].name, inv.blobs.digest(id));
            let link = if revision {
                layout::revision_link(name, &d)
            } else {
                layout::layer_link(name, &d)
            };
            let t = match storage.stat(&link) {
                Ok(Some((_, Some(t)))) => crate::model::time::seconds_against(t, cutoff),
                Ok(None) => return None,
                Err(e) if e.is_not_found() => return None,
                _ => now,
            };
            (t > second).then_some((id, t))
        })
        .collect();
    let mut younger = RoaringBitmap::new();
    for (id, t) in young {
        if inv.blobs.modified(id) <= second {
            younger.insert(id);
        }
        inv.blobs.written_at_least(id, t);
    }
    younger.len()
}

/// Learns the exact times of the uploads whose newest file was written in the second of `cutoff`
/// (the grace window's start), listing their folders again: one written after the cutoff counts in
/// the second after ([`crate::model::time::seconds_against`]). An upload that cannot be listed again
/// counts likewise, which keeps it.
pub fn upload_times(storage: &dyn Storage, inv: &mut Inventory, cutoff: SystemTime) {
    let second = unix_seconds(cutoff);
    let whole = storage.times_to_the_second();
    for repo in &mut inv.repositories {
        let name = repo.name.clone();
        for u in repo.uploads.iter_mut().filter(|u| u.modified == second) {
            if whole {
                u.modified = second + 1;
                continue;
            }
            let prefix = layout::upload_folder(&name, &u.id);
            let mut newest = None;
            let listed = storage.list(
                &prefix,
                &mut |e| newest = newest.max(e.modified),
                &mut |_| {},
            );
            u.modified = match (listed, newest) {
                (Ok(()), Some(t)) => crate::model::time::seconds_against(t, cutoff),
                _ => second + 1,
            };
        }
    }
}

/// The `_layers` links that name a blob with no data, confirmed with the store one by one (there
/// are few): the link is there (a folder without its `link`, which the registry leaves when a blob
/// is deleted through its API, is no link), it was written before `cutoff` (Unix seconds), and the
/// data is still not there (it may have been written since the listing). Such a link can serve
/// nothing (the registry answers 404 for it); the registry's own collector leaves them when it
/// removes their data. As (index into `inv.repositories`, digest).
pub fn dead_layer_links(
    storage: &dyn Storage,
    inv: &Inventory,
    cutoff: i64,
) -> Vec<(usize, Digest)> {
    let named: Vec<(usize, Digest)> = (inv.repositories.iter().enumerate())
        .flat_map(|(i, r)| r.dangling_layer_links.iter().map(move |d| (i, *d)))
        .collect();
    named
        .into_par_iter()
        .filter(|(i, d)| {
            let link = layout::layer_link(&inv.repositories[*i].name, d);
            names_gone_data(storage, &link, d, cutoff)
        })
        .collect()
}

/// Whether the link `link` is there, was written before `cutoff` (Unix seconds), and names data
/// `d` that is not there: asked of the store, link and data, one at a time.
fn names_gone_data(storage: &dyn Storage, link: &str, d: &Digest, cutoff: i64) -> bool {
    let old = match storage.stat(link) {
        Ok(Some((_, Some(t)))) => unix_seconds(t) <= cutoff,
        // Not there, or of unknown age: not planned.
        _ => false,
    };
    old && storage
        .stat(&layout::blob_data(d))
        .is_err_and(|e| e.is_not_found())
}

/// The alias links (`_layers/sha512/<hex>/link`) whose sha256 digest has no data, confirmed as
/// [`dead_layer_links`] confirms those: the link is there and older than `cutoff`, the data still
/// absent. As (index into `inv.repositories`, alias, digest).
pub fn dead_alias_links(
    storage: &dyn Storage,
    inv: &Inventory,
    cutoff: i64,
) -> Vec<(usize, AliasDigest, Digest)> {
    let named: Vec<(usize, AliasDigest, Digest)> = (inv.repositories.iter().enumerate())
        .flat_map(|(i, r)| {
            (r.aliases.iter())
                .filter(|(_, d)| inv.blobs.id(d).is_none())
                .map(move |(a, d)| (i, a.clone(), *d))
        })
        .collect();
    named
        .into_par_iter()
        .filter(|(i, a, d)| {
            let link = layout::alias_link(&inv.repositories[*i].name, a);
            names_gone_data(storage, &link, d, cutoff)
        })
        .collect()
}

#[derive(Default)]
struct RepoBuilder {
    /// Revisions by blob id, and those whose manifest the store has no data for.
    revisions: Vec<BlobId>,
    unstored_revisions: Vec<Digest>,
    tags: BTreeMap<String, Tag>,
    layer_links: Vec<BlobId>,
    dangling_layer_links: Vec<Digest>,
    /// The newest link time listed, and whether a link was listed without one.
    layer_links_newest: Option<i64>,
    layer_link_time_unknown: bool,
    /// The same of revision links.
    revision_links_newest: Option<i64>,
    revision_link_time_unknown: bool,
    uploads: BTreeMap<String, Upload>,
    /// Revisions whose link must be read to be checked (all of them, unless an ETag vouched).
    unverified: Vec<Digest>,
    /// Alias links read in passing, with the digest they hold, and those still to be read.
    aliases: Vec<(AliasDigest, Digest)>,
    unread_aliases: Vec<AliasDigest>,
    /// Tags whose `current/link` was listed without its content, with its ETag where the listing
    /// gave one: read, unless the ETag says which of the tag's index entries it names.
    current: Vec<(String, Option<String>)>,
}

/// The repositories a listing is inside of, and those it has left.
///
/// A listing visits each folder's keys together (the storage contract: a depth-first walk, or keys
/// in sorted order), and a repository's keys are all below its own folder, so once a key of
/// another repository comes that is not below a repository's folder, that repository's keys are
/// all listed and it is finished at once: the builders alive at a time are the chain of nested
/// repositories the listing is in, not every repository of a shard (one top-level folder can hold
/// thousands).
struct Repositories {
    /// The repositories the listing is inside of, each nested in the one before it.
    open: Vec<(String, RepoBuilder)>,
    finished: Vec<Finished>,
    /// What the caller does without.
    lean: Lean,
}

impl Repositories {
    /// The builder of repository `name`, after finishing every open repository the listing left
    /// to reach it.
    fn enter(&mut self, storage: &dyn Storage, name: &str) -> &mut RepoBuilder {
        while let Some((top, _)) = self.open.last() {
            if within(name, top) {
                break;
            }
            let (top, b) = self.open.pop().expect("looked at just before");
            self.finished.push(finish(storage, top, b, self.lean));
        }
        if self.open.last().is_none_or(|(top, _)| top != name) {
            self.open.push((name.to_owned(), RepoBuilder::default()));
        }
        &mut self.open.last_mut().expect("pushed just before").1
    }

    /// Finishes the repositories still open: the listing has ended.
    fn close(mut self, storage: &dyn Storage) -> Vec<Finished> {
        while let Some((name, b)) = self.open.pop() {
            self.finished.push(finish(storage, name, b, self.lean));
        }
        self.finished
    }
}

/// Whether repository `name` is `folder`'s own or nested below it.
fn within(name: &str, folder: &str) -> bool {
    name.strip_prefix(folder)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Takes in the entries `waiting` (each with its part) once the blob table is there, and counts
/// them off `held`; where the blob listing failed (`None`) the scan fails with it and they go.
fn take_in(
    storage: &dyn Storage,
    parts: &mut [Repositories],
    problems: &mut Vec<Problem>,
    table: &Option<BlobTable>,
    waiting: &mut Vec<(usize, Entry)>,
    held: &std::sync::atomic::AtomicUsize,
) {
    held.fetch_sub(waiting.len(), Relaxed);
    for (part, e) in waiting.drain(..) {
        if let Some(table) = table {
            classify(storage, &mut parts[part], problems, table, e);
        }
    }
}

fn classify(
    storage: &dyn Storage,
    repos: &mut Repositories,
    problems: &mut Vec<Problem>,
    blobs: &BlobTable,
    e: Entry,
) {
    let Some((name, kind)) = layout::parse_repo_key(&e.key) else {
        return;
    };
    let b = repos.enter(storage, name);
    match kind {
        RepoKey::LayerLink(d) => {
            match e.modified {
                Some(t) => {
                    let t = unix_seconds(t);
                    b.layer_links_newest = Some(b.layer_links_newest.map_or(t, |n| n.max(t)));
                }
                None => b.layer_link_time_unknown = true,
            }
            match blobs.id(&d) {
                Some(id) => b.layer_links.push(id),
                None => b.dangling_layer_links.push(d),
            }
        }
        RepoKey::RevisionLink(d) => {
            match blobs.id(&d) {
                Some(id) => b.revisions.push(id),
                None => b.unstored_revisions.push(d),
            }
            match e.modified {
                Some(t) => {
                    let t = unix_seconds(t);
                    b.revision_links_newest = Some(b.revision_links_newest.map_or(t, |n| n.max(t)));
                }
                None => b.revision_link_time_unknown = true,
            }
            if let Some(content) = &e.content {
                match links::check_link(content, &e.key, name, Some(d), None) {
                    LinkOutcome::Bad(p) | LinkOutcome::Names(_, Some(p)) => problems.push(p),
                    LinkOutcome::Names(_, None) | LinkOutcome::Vanished => {}
                }
            } else if !e.etag.is_some_and(|etag| storage.link_proven(&etag, &d)) {
                b.unverified.push(d);
            }
        }
        RepoKey::TagCurrent(tag) => {
            let t = b.tags.entry(tag.to_owned()).or_default();
            t.moved = modified_seconds(&e);
            match &e.content {
                Some(content) => match links::check_link(content, &e.key, name, None, Some(tag)) {
                    LinkOutcome::Names(d, note) => {
                        t.current = Some(d);
                        problems.extend(note);
                    }
                    LinkOutcome::Bad(p) => problems.push(p),
                    LinkOutcome::Vanished => {}
                },
                None => b.current.push((tag.to_owned(), e.etag.clone())),
            }
        }
        RepoKey::AliasLink(a) => match &e.content {
            Some(content) => match links::check_link(content, &e.key, name, None, None) {
                LinkOutcome::Names(d, note) => {
                    b.aliases.push((a, d));
                    problems.extend(note);
                }
                LinkOutcome::Bad(p) => problems.push(p),
                LinkOutcome::Vanished => {}
            },
            None => b.unread_aliases.push(a),
        },
        RepoKey::TagIndexEntry(tag, d) => b.tags.entry(tag.to_owned()).or_default().index.push(d),
        RepoKey::Upload { id, .. } => {
            let u = b.uploads.entry(id.to_owned()).or_default();
            u.size += e.size;
            u.modified = u.modified.max(modified_seconds(&e));
        }
        RepoKey::Other => {}
    }
}

type RepoScan = (Vec<Repository>, Vec<Problem>, u64);

/// A repository as the listing finished it, with the links still to be read: revisions whose link
/// must be checked, tags (by index) whose current link was not read in passing, and alias links.
type Finished = (Repository, Vec<Digest>, Vec<usize>, Vec<AliasDigest>);

/// Turns a builder into its compact, sorted repository as soon as the listing has left its folder
/// ([`Repositories`]), so that few builders exist at a time.
///
/// Where the caller does without tags' index entries ([`Lean::no_tag_index`]) and the listing gave
/// them anyway (S3), they are dropped once they told where the tags point: at a million blobs they
/// are 7 MB that only `gc -m` and `prune-tags` use.
fn finish(storage: &dyn Storage, name: String, b: RepoBuilder, lean: Lean) -> Finished {
    let layer_links = sorted_set(b.layer_links);
    let mut tags: Vec<Tag> = b
        .tags
        .into_iter()
        .map(|(name, mut t)| {
            t.name = name.into();
            let mut index = std::mem::take(&mut t.index);
            index.sort_unstable();
            index.dedup();
            index.shrink_to_fit();
            t.index = index;
            t
        })
        .collect();
    // A tag's link names one of the digests its index lists (the registry writes both when the tag
    // moves): where the storage says the listing proved the link holds one of them, the listing has
    // said where the tag points, and the link need not be read. Anything else (no proof, or a link
    // naming what its index does not) is read.
    let mut current = Vec::new();
    for (name, etag) in &b.current {
        let i = tags
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .expect("tag was recorded with its link");
        let named = etag.as_deref().and_then(|etag| {
            tags[i]
                .index
                .iter()
                .find(|d| storage.link_proven(etag, d))
                .copied()
        });
        match named {
            Some(d) => tags[i].current = Some(d),
            None => current.push(i),
        }
    }
    if lean.no_tag_index {
        for t in &mut tags {
            t.index = thin_vec::ThinVec::new();
        }
    }
    let uploads = b
        .uploads
        .into_iter()
        .map(|(id, mut u)| {
            u.id = id;
            u
        })
        .collect();
    let aliases = sorted_set(b.aliases);
    let repo = Repository {
        name,
        revisions: Revisions::from_parts(b.revisions, b.unstored_revisions),
        tags,
        layer_links,
        dangling_layer_links: sorted_set(b.dangling_layer_links),
        layer_links_newest: b.layer_links_newest.filter(|_| !b.layer_link_time_unknown),
        revision_links_newest: b
            .revision_links_newest
            .filter(|_| !b.revision_link_time_unknown),
        uploads,
        aliases,
    };
    (repo, b.unverified, current, b.unread_aliases)
}

fn scan_repositories(
    storage: &dyn Storage,
    blobs: &BlobsSoon,
    lean: Lean,
    progress: &Progress,
) -> Result<RepoScan, StorageError> {
    let held = std::sync::atomic::AtomicUsize::new(0);
    let mut problems = Vec::new();
    let mut tops = storage.child_folders(layout::REPOSITORIES)?;
    // Shards of neighbouring folders, in the order their keys sort (`a-b/` before `a/`), a few per
    // thread: a backend that lists by pages lists each shard as one range.
    tops.sort_by(|a, b| a.bytes().chain([b'/']).cmp(b.bytes().chain([b'/'])));
    let per_shard = tops.len().div_ceil(storage.parallelism().max(1) * 4).max(1);
    // A shard's repositories, what it listed before the blob table was there, and its problems.
    type Shard = Result<(Vec<Repositories>, Vec<(usize, Entry)>, Vec<Problem>), StorageError>;
    let shards: Vec<Shard> = tops
        .par_chunks(per_shard)
        .map(|folders| {
            // One state a part of the listing: a part holds whole repositories.
            let mut parts: Vec<Repositories> = Vec::new();
            let mut problems = Vec::new();
            if progress.stop_requested().is_some() {
                return Ok((Vec::new(), Vec::new(), problems));
            }
            let mut notes = Vec::new();
            let mut listed = Tally::new(progress, Count::Listed);
            // Entries listed before the blob table is there, taken in once it is.
            let mut waiting: Vec<(usize, Entry)> = Vec::new();
            let result = storage.list_below_in_parts(
                layout::REPOSITORIES,
                folders,
                lean,
                // Split only at folders of names, so that each repository stays in one part.
                &layout::names_folder,
                &mut |part, e| {
                    listed.one();
                    while parts.len() <= part {
                        parts.push(Repositories {
                            open: Vec::new(),
                            finished: Vec::new(),
                            lean,
                        });
                    }
                    if waiting.is_empty()
                        && let Some(table) = blobs.0.get()
                    {
                        if let Some(table) = table {
                            classify(storage, &mut parts[part], &mut problems, table, e);
                        }
                        return;
                    }
                    waiting.push((part, e));
                    let table = if held.fetch_add(1, Relaxed) < HELD_AT_MOST {
                        blobs.0.get()
                    } else {
                        Some(blobs.0.wait())
                    };
                    if let Some(table) = table {
                        take_in(
                            storage,
                            &mut parts,
                            &mut problems,
                            table,
                            &mut waiting,
                            &held,
                        );
                    }
                },
                &mut |n| notes.push(note_problem(n)),
            );
            problems.extend(notes);
            result.map(|()| (parts, waiting, problems))
        })
        .collect();
    // A shard done before the blob table is there hands back what it holds rather than wait for
    // the table on a thread that other shards' walks need.
    let table = blobs.0.wait();
    type Done = Result<(Vec<Finished>, Vec<Problem>), StorageError>;
    let shards: Vec<Done> = shards
        .into_par_iter()
        .map(|shard| {
            let (mut parts, mut waiting, mut problems) = shard?;
            take_in(
                storage,
                &mut parts,
                &mut problems,
                table,
                &mut waiting,
                &held,
            );
            let finished = parts.into_iter().flat_map(|r| r.close(storage)).collect();
            Ok((finished, problems))
        })
        .collect();

    let mut finished: Vec<Finished> = Vec::new();
    for shard in shards {
        let (f, p) = shard?;
        finished.extend(f);
        problems.extend(p);
    }
    finished.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    // A repository finished twice was listed in two parts (a backend breaking the contract that a
    // listing keeps a folder's keys together): each part would lack links the other holds, and a
    // manifest or layer could look unreferenced. Nothing may be judged from such a scan.
    if let Some(w) = finished.windows(2).find(|w| w[0].0.name == w[1].0.name) {
        return Err(StorageError::Other {
            key: format!("{}{}/", layout::REPOSITORIES, w[0].0.name),
            message: "the listing returned this repository's keys in two parts, not together; \
                      no plan can be made from it"
                .to_owned(),
        });
    }

    let mut repos = Vec::with_capacity(finished.len());
    let mut to_read = Vec::new();
    for (i, (repo, unverified, current, aliases)) in finished.into_iter().enumerate() {
        for digest in unverified {
            to_read.push(LinkToRead::Revision { repo: i, digest });
        }
        for alias in aliases {
            to_read.push(LinkToRead::Alias { repo: i, alias });
        }
        for tag in current {
            to_read.push(LinkToRead::Tag { repo: i, tag });
        }
        repos.push(repo);
    }

    if progress.stop_requested().is_some() {
        return Ok((repos, problems, 0));
    }
    if !to_read.is_empty() {
        progress.phase(
            &format!(
                "reading tag and revision links ({})",
                crate::model::text::count(repos.len() as u64, "repository", "repositories")
            ),
            Count::LinksRead,
            Some(to_read.len() as u64),
        );
    }
    let read = progress.each(&to_read, Count::LinksRead, |l| {
        links::read_link(storage, l, &repos)
    });
    let mut vanished = 0;
    for (l, result) in to_read.iter().zip(read) {
        // Not read because a stop was asked for (the caller drops it all): the tag stays
        // unresolved meanwhile.
        let result = result.unwrap_or(LinkOutcome::Vanished);
        match (result, l) {
            (LinkOutcome::Names(d, note), LinkToRead::Tag { repo, tag }) => {
                repos[*repo].tags[*tag].current = Some(d);
                problems.extend(note);
            }
            (LinkOutcome::Names(_, note), LinkToRead::Revision { .. }) => problems.extend(note),
            (LinkOutcome::Names(d, note), LinkToRead::Alias { repo, alias }) => {
                repos[*repo].aliases.push((alias.clone(), d));
                problems.extend(note);
            }
            (LinkOutcome::Vanished, _) => vanished += 1,
            (LinkOutcome::Bad(p), _) => problems.push(p),
        }
    }
    for r in &mut repos {
        r.aliases.sort_unstable();
        r.aliases.dedup();
    }
    // A tag whose current link vanished or is bad stays listed with no target (`current: None`); a bad
    // one is also a problem, which keeps --delete from running.
    Ok((repos, problems, vanished))
}

#[cfg(test)]
mod tests;
