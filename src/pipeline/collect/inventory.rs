//! The walk: what a store holds, read from listings plus the few small links that must be opened.
//!
//! Two parallel walks over known shards, each with local state merged once at the end:
//! - the blob tree, over 16 shards `blobs/sha256/0` … `f` (each 16 of its 256 folders). A blob's digest is its folder name
//!   and its size and age come from the listing: no blob is opened. The result is the [`BlobTable`], a
//!   table of digests sorted so that a digest's index is its compact [`BlobId`];
//! - the repositories, one shard per top-level folder of `repositories/`. Keys are classified by
//!   [`crate::model::layout`]. Tag `current` links and revision links are then read in parallel: the tag's to
//!   learn its target, the revision's to check that it names its own folder (the registry resolves a
//!   revision through that content, so a bad one must be reported, never guessed around).
//!
//! Anything odd becomes a [`Problem`] and the walk goes on.

use crate::model::digest::Digest;
use crate::model::layout::{self, BlobKey, RepoKey};
use crate::model::problem::{Problem, ProblemKind};
use crate::model::progress::{Count, Progress, Tally};
pub use crate::model::time::unix_seconds;
use crate::storage::{Entry, Lean, ListingNote, Storage, StorageError};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

/// Index of a blob in the [`BlobTable`].
pub type BlobId = u32;

/// An entry's modification time in Unix seconds; an entry listed without one counts as written now,
/// which holds it back under any grace period rather than making it look old.
fn modified_seconds(e: &Entry) -> i64 {
    unix_seconds(e.modified.unwrap_or_else(SystemTime::now))
}

/// One blob: its digest, and its size and modification time where something told them (slots
/// that can be filled after the walk: atomics, so that parallel readers of manifests can fill them).
/// 40 bytes: a size of 4 GiB or more is kept apart ([`LARGE_SIZE`]).
#[derive(Debug)]
struct BlobRow {
    digest: Digest,
    /// Bytes, or [`UNKNOWN_SIZE`], or [`LARGE_SIZE`].
    size: AtomicU32,
    /// Unix seconds (see [`time_slot`]), or [`UNKNOWN_TIME`].
    time: AtomicU32,
}

impl BlobRow {
    /// A row for a listed blob; a size too large for the row goes to `large`.
    fn new(
        digest: Digest,
        size: u64,
        modified: Option<i64>,
        large: &mut Vec<(Digest, u64)>,
    ) -> BlobRow {
        let (slot, time) = match modified {
            Some(t) => (size_slot(size), time_slot(t)),
            None => (UNKNOWN_SIZE, UNKNOWN_TIME),
        };
        if slot == LARGE_SIZE {
            large.push((digest, size));
        }
        BlobRow {
            digest,
            size: AtomicU32::new(slot),
            time: AtomicU32::new(time),
        }
    }
}

/// What a size slot holds before anything told the blob's size.
const UNKNOWN_SIZE: u32 = u32::MAX;
/// What a size slot holds for a blob of `LARGE_SIZE` bytes or more, whose size is in
/// [`BlobTable`]'s `large` map (layers of 4 GiB are rare; every row carrying 8 bytes for them would
/// cost 4 bytes a blob).
const LARGE_SIZE: u32 = u32::MAX - 1;

/// A size as a size slot holds it.
fn size_slot(size: u64) -> u32 {
    u32::try_from(size).map_or(LARGE_SIZE, |s| s.min(LARGE_SIZE))
}

/// What a time slot holds before anything told the blob's modification time.
const UNKNOWN_TIME: u32 = 0;

/// A modification time as a time slot holds it: Unix seconds, clamped to 1970-01-01T00:00:01 …
/// 2106 (a time before 1970 is as old as 1970 for every grace window).
fn time_slot(t: i64) -> u32 {
    t.clamp(1, u32::MAX as i64) as u32
}

/// Every blob in the store, sorted by digest, so that a digest's position is its [`BlobId`]
/// (40 bytes a blob: the digest, a size and a time slot).
///
/// The rows stay in the sorted shards the walk produced (shard `n` holds the digests starting with
/// hex digit `n`), so the table is never copied into one array: a row's shard is found from the id
/// by the shards' offsets. Lookups go through a radix index of the digests' first 16 bits (256 KiB
/// whatever the store's size), then a binary search over the few rows sharing them: a lookup touches
/// two or three cache lines where a binary search over the whole table would miss the cache twenty
/// times.
///
/// Where the listing did not tell a blob's size and age, its size is first learned from the
/// descriptors that name it ([`BlobTable::declare_size`]), and only the blobs whose size or age the
/// answer needs are asked of the store ([`BlobTable::learn`]).
#[derive(Debug, Default)]
pub struct BlobTable {
    shards: Vec<Vec<BlobRow>>,
    /// `offsets[n]` is the id of shard `n`'s first row; one more entry holds the total.
    offsets: Vec<u32>,
    /// `starts[p]` is the first id whose digest's first 16 bits are at least `p`; 65,537 entries.
    starts: Vec<u32>,
    /// True when the listing told every blob's size (an S3 listing, a filesystem walk that stats):
    /// the sizes are the data's, and can be checked against descriptors.
    sizes_listed: bool,
    /// The sizes of the blobs whose slot says [`LARGE_SIZE`]. A slot is set to it only with this
    /// lock held and the size inserted under the same lock, so a reader that sees the mark finds
    /// the size.
    large: Mutex<HashMap<Digest, u64>>,
}

fn prefix16(d: &Digest) -> usize {
    u16::from_be_bytes([d.0[0], d.0[1]]) as usize
}

impl BlobTable {
    /// Takes shards that each are sorted, without duplicates, and that cover increasing ranges of
    /// digests.
    fn from_sorted_shards(shards: Vec<Vec<BlobRow>>, large: Vec<(Digest, u64)>) -> BlobTable {
        let mut offsets = Vec::with_capacity(shards.len() + 1);
        let mut starts = Vec::with_capacity((1 << 16) + 1);
        let mut id = 0u32;
        let mut sizes_listed = true;
        for shard in &shards {
            offsets.push(id);
            for row in shard {
                while starts.len() <= prefix16(&row.digest) {
                    starts.push(id);
                }
                sizes_listed &= row.time.load(Ordering::Relaxed) != UNKNOWN_TIME;
                id += 1;
            }
        }
        offsets.push(id);
        starts.resize((1 << 16) + 1, id);
        BlobTable {
            shards,
            offsets,
            starts,
            sizes_listed,
            large: Mutex::new(large.into_iter().collect()),
        }
    }

    /// The table with `added` (digests it lacks, with their sizes) as blobs written after the
    /// listing ([`AFTER_SNAPSHOT`]). Ids change.
    fn with_added(self, added: Vec<(Digest, u64)>) -> BlobTable {
        let mut large: Vec<(Digest, u64)> = (self.large.into_inner())
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .collect();
        let mut shards = self.shards;
        shards.resize_with(layout::BLOB_SHARDS as usize, Vec::new);
        for (d, size) in added {
            let n = (d.0[0] >> 4) as usize;
            shards[n].push(BlobRow::new(d, size, Some(AFTER_SNAPSHOT), &mut large));
        }
        for s in &mut shards {
            s.sort_unstable_by_key(|r| r.digest);
            s.dedup_by_key(|r| r.digest);
        }
        BlobTable::from_sorted_shards(shards, large)
    }

    fn row(&self, id: BlobId) -> &BlobRow {
        let n = self.offsets.partition_point(|&o| o <= id) - 1;
        &self.shards[n][(id - self.offsets[n]) as usize]
    }

    /// The id of a digest, when the store holds its data.
    pub fn id(&self, d: &Digest) -> Option<BlobId> {
        let p = prefix16(d);
        let (start, end) = (*self.starts.get(p)?, self.starts[p + 1]);
        if start == end {
            return None;
        }
        let n = self.offsets.partition_point(|&o| o <= start) - 1;
        let base = self.offsets[n];
        let rows = &self.shards[n][(start - base) as usize..(end - base) as usize];
        rows.binary_search_by(|r| r.digest.cmp(d))
            .ok()
            .map(|i| start + i as BlobId)
    }

    pub fn len(&self) -> usize {
        self.offsets.last().map_or(0, |&n| n as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn digest(&self, id: BlobId) -> Digest {
        self.row(id).digest
    }

    /// The blob's size: its data's where the listing or [`BlobTable::learn`] told it, else what a
    /// descriptor declared; 0 while neither did.
    pub fn size(&self, id: BlobId) -> u64 {
        self.known_size(id).unwrap_or(0)
    }

    /// The blob's size, when something told it.
    pub fn known_size(&self, id: BlobId) -> Option<u64> {
        let row = self.row(id);
        match row.size.load(Ordering::Relaxed) {
            UNKNOWN_SIZE => None,
            LARGE_SIZE => self.large_sizes().get(&row.digest).copied(),
            s => Some(u64::from(s)),
        }
    }

    fn large_sizes(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, u64>> {
        // A panic elsewhere while the lock was held leaves a whole map: every insert is one call.
        self.large.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets blob `id`'s size slot to `size`: always, or with `only_unknown` only where nothing
    /// told its size yet.
    fn set_size(&self, id: BlobId, size: u64, only_unknown: bool) {
        let row = self.row(id);
        let slot = size_slot(size);
        let set = |new: u32| {
            if only_unknown {
                (row.size)
                    .compare_exchange(UNKNOWN_SIZE, new, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            } else {
                row.size.store(new, Ordering::Relaxed);
                true
            }
        };
        if slot == LARGE_SIZE {
            let mut large = self.large_sizes();
            if set(LARGE_SIZE) {
                large.insert(row.digest, size);
            }
        } else {
            set(slot);
        }
    }

    /// True when every size is the data's own, as listed (so it can be checked against what
    /// descriptors declare).
    pub fn sizes_listed(&self) -> bool {
        self.sizes_listed
    }

    /// Records what a descriptor (or a read of the whole manifest) says blob `id` measures, where
    /// nothing told its size yet.
    pub fn declare_size(&self, id: BlobId, size: u64) {
        self.set_size(id, size, true);
    }

    /// Modification time of the blob's data, in Unix seconds; a time never learned counts as the
    /// far future, which holds the blob back under any grace window (callers learn the times of the
    /// blobs they judge: [`BlobTable::learn`]).
    pub fn modified(&self, id: BlobId) -> i64 {
        self.known_modified(id).unwrap_or(i64::MAX)
    }

    /// Modification time of the blob's data, when it was learned.
    pub fn known_modified(&self, id: BlobId) -> Option<i64> {
        let t = self.row(id).time.load(Ordering::Relaxed);
        (t != UNKNOWN_TIME).then_some(t as i64)
    }

    /// Sum of the sizes of the blobs `ids` (as [`BlobTable::size`] tells them).
    pub fn bytes_of(&self, ids: &RoaringBitmap) -> u64 {
        ids.iter().map(|id| self.size(id)).sum()
    }

    /// Sum of all blobs' sizes (as [`BlobTable::size`] tells them).
    pub fn total_bytes(&self) -> u64 {
        (0..self.len() as BlobId).map(|id| self.size(id)).sum()
    }

    /// Asks the store for the size and age of the blobs in `ids` whose time was never learned, in
    /// parallel (on a filesystem, a `stat` each: only the blobs the answer needs, never every
    /// blob). Returns the ids whose data was not there (a blob folder left without its `data`, which
    /// is no blob: callers leave it out of what they judge), and a problem for each blob that could
    /// not be asked about (it keeps counting as written now, so no grace window lets it go).
    fn learn(
        &self,
        storage: &dyn Storage,
        ids: &RoaringBitmap,
        progress: &Progress,
    ) -> (RoaringBitmap, Vec<Problem>) {
        let todo: Vec<BlobId> = ids
            .iter()
            .filter(|&id| self.known_modified(id).is_none())
            .collect();
        if todo.is_empty() {
            return (RoaringBitmap::new(), Vec::new());
        }
        progress.phase(
            &format!(
                "measuring {} blobs that may be swept",
                crate::model::text::thousands(todo.len() as u64)
            ),
            Count::Measured,
            Some(todo.len() as u64),
        );
        let results = progress.each(&todo, Count::Measured, |&id| {
            let key = layout::blob_data(&self.digest(id));
            match storage.stat(&key) {
                Ok(Some((size, modified))) => {
                    self.set_size(id, size, false);
                    let t = modified.map_or(UNKNOWN_TIME, |t| time_slot(unix_seconds(t)));
                    self.row(id).time.store(t, Ordering::Relaxed);
                    Ok(None)
                }
                Ok(None) => Ok(None),
                Err(e) if e.is_not_found() => Ok(Some(id)),
                Err(e) => Err(Box::new(Problem::at(
                    ProblemKind::Unreadable,
                    &key,
                    e.to_string(),
                ))),
            }
        });
        let (mut gone, mut problems) = (RoaringBitmap::new(), Vec::new());
        // A blob not measured because a stop was asked for keeps counting as written now.
        for r in results.into_iter().flatten() {
            match r {
                Ok(Some(id)) => {
                    gone.insert(id);
                }
                Ok(None) => {}
                Err(p) => problems.push(*p),
            }
        }
        (gone, problems)
    }
}

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

/// A tag of a repository.
#[derive(Debug, Clone, Default)]
pub struct Tag {
    pub name: String,
    /// What `current/link` names; `None` when it is missing or bad (a problem says which).
    pub current: Option<Digest>,
    /// Modification time of `current/link`: when the tag last moved (Unix seconds).
    pub moved: i64,
    /// Every digest under `index/`: what the tag has pointed at. Empty where the scan did not walk
    /// tags' index folders ([`Detail::Targets`]).
    pub index: Vec<Digest>,
}

/// An upload in progress (or abandoned) under `_uploads/<id>/`.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub id: String,
    /// Bytes held by all its files.
    pub size: u64,
    /// Latest modification time of its files (Unix seconds).
    pub modified: i64,
}

/// One repository: what its folders hold.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    pub name: String,
    /// Manifest revisions that have a `link`, sorted.
    pub revisions: Vec<Digest>,
    /// Tags, sorted by name.
    pub tags: Vec<Tag>,
    /// `_layers` links to blobs the store holds, sorted.
    pub layer_links: Vec<BlobId>,
    /// `_layers` links to blobs the store has no data for, sorted.
    pub dangling_layer_links: Vec<Digest>,
    /// When the newest `_layers` link was written (Unix seconds), where the listing told every link's
    /// time (S3); `None` when it did not (a filesystem walk knows links by their folders' names) or
    /// there are none. See [`layer_link_times`].
    pub layer_links_newest: Option<i64>,
    pub uploads: Vec<Upload>,
}

impl Inventory {
    /// Manifest revisions: (repository, digest) pairs with a revision link. The one count of
    /// "manifests" every command reports (a manifest two repositories hold counts twice).
    pub fn manifest_revisions(&self) -> u64 {
        self.repositories
            .iter()
            .map(|r| r.revisions.len() as u64)
            .sum()
    }

    pub fn tags(&self) -> u64 {
        self.repositories.iter().map(|r| r.tags.len() as u64).sum()
    }
}

impl Repository {
    /// Whether the repository links `d` either way the registry resolves a manifest through: a
    /// revision link, or a `_layers` link (releases before 2.1 linked manifests there, and a manifest
    /// mounted from another repository arrives as a blob). Only then can the registry serve `d` as a
    /// manifest from this repository.
    pub fn holds_manifest(&self, blobs: &BlobTable, d: &Digest) -> bool {
        self.revisions.binary_search(d).is_ok()
            || match blobs.id(d) {
                Some(id) => self.layer_links.binary_search(&id).is_ok(),
                None => self.dangling_layer_links.binary_search(d).is_ok(),
            }
    }
}

/// Everything the walk learned.
#[derive(Debug, Default)]
pub struct Inventory {
    pub blobs: BlobTable,
    /// Repositories sorted by name.
    pub repositories: Vec<Repository>,
    pub problems: Vec<Problem>,
    /// Objects that were listed and had gone when read (a store that moves under the walk).
    pub vanished: u64,
    /// Blobs listed by their folders whose `data` turned out not to be there when measured
    /// ([`BlobTable::learn`]): no blobs, left out of every plan.
    pub no_data: RoaringBitmap,
}

/// How much a scan learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Blobs' names, and size and age only where the listing tells them at no cost (S3): a
    /// filesystem walk then stats no blob, and the caller learns the size and age of the few it
    /// judges ([`BlobTable::learn`]; kept blobs measure what their descriptors declare).
    Names,
    /// As [`Detail::Names`], and tags as far as where they point: on a filesystem their `index/`
    /// folders are not walked, so [`Tag::index`] may be empty (what a tag has pointed at matters
    /// only to the untagged manifests `gc -m` deletes).
    Targets,
    /// Every blob's size and age, from its data, and every tag's index (`audit`, which checks them).
    Sizes,
}

impl Detail {
    fn lean(self) -> Lean {
        Lean {
            unstated_blobs: self != Detail::Sizes,
            no_tag_index: self == Detail::Targets,
        }
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
    let (mut blobs, mut problems) = scan_blobs(storage, detail, progress)?;
    let (mut repositories, repo_problems, vanished) =
        scan_repositories(storage, &blobs, detail.lean(), progress)?;
    if storage.listing_snapshot().is_some() {
        blobs = add_blobs_after_snapshot(storage, blobs, &mut repositories, progress)?;
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

/// What a blob written after the listing's snapshot counts as written at: the far future, which
/// holds it back under any grace window (the snapshot cannot say whether anything else needs it).
const AFTER_SNAPSHOT: i64 = u32::MAX as i64;

/// Where the blob tree was listed from a snapshot (an S3 Inventory): adds to the table every blob
/// that a fresh link (revision, tag, `_layers`) names, that the snapshot lacks and that the store
/// holds, so that a manifest pushed after the snapshot is read and what it references is kept.
/// Such blobs count as written in the far future: never candidates. A blob the store cannot be
/// asked about ends the scan, since a manifest left unread could make what it reuses look unused.
fn add_blobs_after_snapshot(
    storage: &dyn Storage,
    blobs: BlobTable,
    repos: &mut [Repository],
    progress: &Progress,
) -> Result<BlobTable, StorageError> {
    let mut absent: Vec<Digest> = Vec::new();
    for r in repos.iter() {
        absent.extend(r.dangling_layer_links.iter().copied());
        absent.extend(
            r.revisions
                .iter()
                .filter(|d| blobs.id(d).is_none())
                .copied(),
        );
        for t in &r.tags {
            absent.extend(
                t.current
                    .iter()
                    .chain(&t.index)
                    .filter(|d| blobs.id(d).is_none()),
            );
        }
    }
    absent.sort_unstable();
    absent.dedup();
    if absent.is_empty() {
        return Ok(blobs);
    }
    progress.phase(
        &format!(
            "asking after {} linked blobs written after the inventory",
            crate::model::text::thousands(absent.len() as u64)
        ),
        Count::Measured,
        Some(absent.len() as u64),
    );
    let found: Vec<Result<Option<(Digest, u64)>, StorageError>> = absent
        .par_iter()
        .map(|d| match storage.stat(&layout::blob_data(d)) {
            Ok(Some((size, _))) => Ok(Some((*d, size))),
            Ok(None) => Ok(Some((*d, 0))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        })
        .collect();
    let mut added = Vec::new();
    for f in found {
        added.extend(f?);
    }
    if added.is_empty() {
        return Ok(blobs);
    }
    // Layer links by digest while the ids change.
    let links: Vec<Vec<Digest>> = repos
        .iter()
        .map(|r| r.layer_links.iter().map(|&id| blobs.digest(id)).collect())
        .collect();
    let table = blobs.with_added(added);
    for (r, links) in repos.iter_mut().zip(links) {
        let mut ids: Vec<BlobId> = links.iter().filter_map(|d| table.id(d)).collect();
        let (now_held, dangling): (Vec<Digest>, Vec<Digest>) =
            std::mem::take(&mut r.dangling_layer_links)
                .into_iter()
                .partition(|d| table.id(d).is_some());
        ids.extend(now_held.iter().filter_map(|d| table.id(d)));
        ids.sort_unstable();
        r.layer_links = ids;
        r.dangling_layer_links = dangling;
    }
    Ok(table)
}

/// Reads only the repositories (their tags, revisions and links), not the blob tree: for jobs that
/// never weigh blobs, like `prune-tags`. Every `_layers` link then counts as dangling, since no blob
/// table was read to resolve it; the caller must not judge layer links from this. Also returns how
/// many listed links had gone when read.
pub fn scan_repositories_only(
    storage: &dyn Storage,
    progress: &Progress,
) -> Result<(Vec<Repository>, Vec<Problem>, u64), StorageError> {
    let (repositories, mut problems, vanished) =
        scan_repositories(storage, &BlobTable::default(), Lean::default(), progress)?;
    problems.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Ok((repositories, problems, vanished))
}

/// Learns when the newest `_layers` link of each repository in `repos` (indices into
/// `inv.repositories`) was written, where the listing did not say: each link's time is asked of the
/// store. A link whose time cannot be learned counts as written now, which keeps it under any grace.
pub fn layer_link_times(storage: &dyn Storage, inv: &mut Inventory, repos: &[usize]) {
    let newest: Vec<(usize, i64)> = repos
        .par_iter()
        .filter(|&&r| inv.repositories[r].layer_links_newest.is_none())
        .map(|&r| {
            let repo = &inv.repositories[r];
            let digests = repo
                .layer_links
                .iter()
                .map(|&id| inv.blobs.digest(id))
                .chain(repo.dangling_layer_links.iter().copied());
            let now = unix_seconds(SystemTime::now());
            let newest = digests
                .map(
                    |d| match storage.modified(&layout::layer_link(&repo.name, &d)) {
                        Ok(Some(t)) => unix_seconds(t),
                        _ => now,
                    },
                )
                .max()
                .unwrap_or(i64::MIN);
            (r, newest)
        })
        .collect();
    for (r, t) in newest {
        inv.repositories[r].layer_links_newest = Some(t);
    }
}

fn note_problem(n: ListingNote) -> Problem {
    Problem::at(ProblemKind::Unreadable, n.key, n.message)
}

fn scan_blobs(
    storage: &dyn Storage,
    detail: Detail,
    progress: &Progress,
) -> Result<(BlobTable, Vec<Problem>), StorageError> {
    type Shard = Result<(Vec<BlobRow>, Vec<(Digest, u64)>, Vec<Problem>), StorageError>;
    // Shard `n` holds exactly the digests whose first hex digit is `n`, so the sorted shards joined in
    // order are the sorted table.
    let shards: Vec<Shard> = (0..layout::BLOB_SHARDS)
        .into_par_iter()
        .map(|n| {
            let (mut rows, mut large, mut problems) = (Vec::new(), Vec::new(), Vec::new());
            if progress.stop_requested().is_some() {
                return Ok((rows, large, problems));
            }
            let mut listed = Tally::new(progress, Count::Listed);
            let mut visit = |e: Entry| {
                listed.one();
                if let BlobKey::Data(digest) = layout::parse_blob_key(&e.key) {
                    let modified = e.modified.map(unix_seconds);
                    rows.push(BlobRow::new(digest, e.size, modified, &mut large));
                }
            };
            let mut note = |n| problems.push(note_problem(n));
            let prefix = layout::blob_shard(n);
            let result = storage.list_lean(&prefix, detail.lean(), &mut visit, &mut note);
            rows.sort_unstable_by_key(|r| r.digest);
            rows.dedup_by_key(|r| r.digest);
            rows.shrink_to_fit();
            result.map(|()| (rows, large, problems))
        })
        .collect();
    let mut rows = Vec::with_capacity(shards.len());
    let (mut large, mut problems) = (Vec::new(), Vec::new());
    for shard in shards {
        let (r, l, p) = shard?;
        rows.push(r);
        large.extend(l);
        problems.extend(p);
    }
    Ok((BlobTable::from_sorted_shards(rows, large), problems))
}

/// A link whose content must be read (by index of its repository): a revision link, to check that
/// it names its own folder, or a tag's current link (by index in the repository's tags).
enum LinkToRead {
    Revision { repo: usize, digest: Digest },
    Tag { repo: usize, tag: usize },
}

#[derive(Default)]
struct RepoBuilder {
    revisions: Vec<Digest>,
    tags: BTreeMap<String, Tag>,
    layer_links: Vec<BlobId>,
    dangling_layer_links: Vec<Digest>,
    /// The newest link time listed, and whether a link was listed without one.
    layer_links_newest: Option<i64>,
    layer_link_time_unknown: bool,
    uploads: BTreeMap<String, Upload>,
    /// Revisions whose link must be read to be checked (all of them, unless an ETag vouched).
    unverified: Vec<Digest>,
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
            b.revisions.push(d);
            if let Some(content) = &e.content {
                match check_link(content, &e.key, name, Some(d), None) {
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
                Some(content) => match check_link(content, &e.key, name, None, Some(tag)) {
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
/// must be checked, and tags (by index) whose current link was not read in passing.
type Finished = (Repository, Vec<Digest>, Vec<usize>);

/// Turns a builder into its compact, sorted repository as soon as the listing has left its folder
/// ([`Repositories`]), so that few builders exist at a time.
///
/// Where the caller does without tags' index entries ([`Lean::no_tag_index`]) and the listing gave
/// them anyway (S3), they are dropped once they told where the tags point: at a million blobs they
/// are 7 MB that only `gc -m` and `prune-tags` use.
fn finish(storage: &dyn Storage, name: String, b: RepoBuilder, lean: Lean) -> Finished {
    let sorted = |mut v: Vec<Digest>| {
        v.sort_unstable();
        v.dedup();
        v.shrink_to_fit();
        v
    };
    let mut layer_links = b.layer_links;
    layer_links.sort_unstable();
    layer_links.dedup();
    layer_links.shrink_to_fit();
    let mut tags: Vec<Tag> = b
        .tags
        .into_iter()
        .map(|(name, mut t)| {
            t.name = name;
            t.index = sorted(t.index);
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
            .binary_search_by(|t| t.name.cmp(name))
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
            t.index = Vec::new();
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
    let repo = Repository {
        name,
        revisions: sorted(b.revisions),
        tags,
        layer_links,
        dangling_layer_links: sorted(b.dangling_layer_links),
        layer_links_newest: b.layer_links_newest.filter(|_| !b.layer_link_time_unknown),
        uploads,
    };
    (repo, b.unverified, current)
}

fn scan_repositories(
    storage: &dyn Storage,
    blobs: &BlobTable,
    lean: Lean,
    progress: &Progress,
) -> Result<RepoScan, StorageError> {
    let mut problems = Vec::new();
    let mut tops = storage.list_dirs(layout::REPOSITORIES)?;
    // Shards of neighbouring folders, in the order their keys sort (`a-b/` before `a/`), a few per
    // thread: a backend that lists by pages lists each shard as one range.
    tops.sort_by(|a, b| a.bytes().chain([b'/']).cmp(b.bytes().chain([b'/'])));
    let per_shard = tops.len().div_ceil(storage.parallelism().max(1) * 4).max(1);
    type Shard = Result<(Vec<Finished>, Vec<Problem>), StorageError>;
    let shards: Vec<Shard> = tops
        .par_chunks(per_shard)
        .map(|folders| {
            let mut repos = Repositories {
                open: Vec::new(),
                finished: Vec::new(),
                lean,
            };
            let mut problems = Vec::new();
            if progress.stop_requested().is_some() {
                return Ok((Vec::new(), problems));
            }
            let mut notes = Vec::new();
            let mut listed = Tally::new(progress, Count::Listed);
            let result = storage.list_folders(
                layout::REPOSITORIES,
                folders,
                lean,
                &mut |e| {
                    listed.one();
                    classify(storage, &mut repos, &mut problems, blobs, e)
                },
                &mut |n| notes.push(note_problem(n)),
            );
            problems.extend(notes);
            result.map(|()| (repos.close(storage), problems))
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
    for (i, (repo, unverified, current)) in finished.into_iter().enumerate() {
        for digest in unverified {
            to_read.push(LinkToRead::Revision { repo: i, digest });
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
                "reading tag and revision links ({} repositories)",
                crate::model::text::thousands(repos.len() as u64)
            ),
            Count::LinksRead,
            Some(to_read.len() as u64),
        );
    }
    let read = progress.each(&to_read, Count::LinksRead, |l| {
        read_link(storage, l, &repos)
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
            (LinkOutcome::Vanished, _) => vanished += 1,
            (LinkOutcome::Bad(p), _) => problems.push(p),
        }
    }
    // A tag whose current link vanished or is bad stays listed with no target (`current: None`); a bad
    // one is also a problem, which keeps --delete from running.
    Ok((repos, problems, vanished))
}

/// The most a link file may hold: `sha256:` and 64 hex digits, with room for a newline or two.
const LINK_LIMIT: u64 = 256;

/// What reading a link gave.
enum LinkOutcome {
    /// The link names this digest (for a revision link: its own folder's); with a problem to
    /// report when it holds the digest more than once, which the link still names.
    Names(Digest, Option<Problem>),
    /// It was listed and is gone now.
    Vanished,
    Bad(Problem),
}

fn read_link(storage: &dyn Storage, l: &LinkToRead, repos: &[Repository]) -> LinkOutcome {
    let (repo, key, revision, tag) = match *l {
        LinkToRead::Revision { repo, digest } => {
            let name = &repos[repo].name;
            (
                name,
                layout::revision_link(name, &digest),
                Some(digest),
                None,
            )
        }
        LinkToRead::Tag { repo, tag } => {
            let (name, tag) = (&repos[repo].name, &repos[repo].tags[tag].name);
            (name, layout::tag_current(name, tag), None, Some(tag))
        }
    };
    let bytes = match storage.read(&key, LINK_LIMIT) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return LinkOutcome::Vanished,
        Err(StorageError::TooLarge { .. }) => {
            return LinkOutcome::Bad(
                Problem::at(
                    ProblemKind::BadLink,
                    &key,
                    "link file is too large to hold a digest",
                )
                .repo(repo),
            );
        }
        Err(e) => {
            return LinkOutcome::Bad(
                Problem::at(ProblemKind::Unreadable, &key, e.to_string()).repo(repo),
            );
        }
    };
    check_link(&bytes, &key, repo, revision, tag.map(String::as_str))
}

/// The digest a link holds more than once in a row (`sha256:…sha256:…`), and how many times.
fn repeated_digest(text: &str) -> Option<(Digest, usize)> {
    const ONE: usize = "sha256:".len() + 64;
    let text = text.trim();
    if text.len() <= ONE || !text.len().is_multiple_of(ONE) || !text.is_ascii() {
        return None;
    }
    let first = &text[..ONE];
    let d = Digest::parse(first).ok()?;
    (0..text.len() / ONE)
        .all(|i| &text[i * ONE..(i + 1) * ONE] == first)
        .then_some((d, text.len() / ONE))
}

/// Checks a link's content: a digest, and for a revision link its own folder's.
fn check_link(
    bytes: &[u8],
    key: &str,
    repo: &str,
    revision: Option<Digest>,
    tag: Option<&str>,
) -> LinkOutcome {
    let mut problem = if bytes.len() > LINK_LIMIT as usize {
        Problem::at(
            ProblemKind::BadLink,
            key,
            "link file is too large to hold a digest",
        )
    } else {
        let text = String::from_utf8_lossy(bytes);
        let (parsed, note) = match repeated_digest(&text) {
            Some((d, times)) => (
                Ok(d),
                Some(
                    Problem::at(
                        ProblemKind::RepeatedLink,
                        key,
                        format!(
                            "the link holds {d} {times} times over (a retried write of registry \
                             3.0 to 3.1.1 on Azure); it is taken to name {d}, which is kept. \
                             Rewrite it to hold the digest once: the registry cannot read it"
                        ),
                    )
                    .repo(repo),
                ),
            ),
            None => (Digest::parse(&text), None),
        };
        let note = note.map(|mut n| {
            if let Some(tag) = tag {
                n = n.tag(tag);
            }
            n
        });
        match (parsed, revision) {
            (Ok(d), Some(folder)) if d == folder => {
                return LinkOutcome::Names(d, note.map(|n| n.digest(folder)));
            }
            (Ok(d), None) => return LinkOutcome::Names(d, note),
            (Ok(d), Some(folder)) => Problem::at(
                ProblemKind::BadLink,
                key,
                format!("revision link names {d}, not its folder's digest {folder}"),
            ),
            (Err(e), _) => Problem::at(ProblemKind::BadLink, key, format!("link content is {e}")),
        }
    }
    .repo(repo);
    if let Some(folder) = revision {
        problem = problem.digest(folder);
    }
    if let Some(tag) = tag {
        problem = problem.tag(tag);
    }
    LinkOutcome::Bad(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_holding_its_digest_twice_names_it_and_says_so() {
        let d = Digest::of(b"x");
        let twice = format!("{d}{d}");
        let key = "docker/registry/v2/repositories/r/_manifests/tags/t/current/link";
        match check_link(twice.as_bytes(), key, "r", None, Some("t")) {
            LinkOutcome::Names(named, Some(p)) => {
                assert_eq!(named, d);
                assert_eq!(p.kind, ProblemKind::RepeatedLink);
                assert!(!p.kind.blocks_delete());
                assert_eq!(p.tag.as_deref(), Some("t"));
                assert!(p.message.contains("2 times"), "{}", p.message);
            }
            _ => panic!("a doubled link names its digest"),
        }
        assert!(matches!(
            check_link(twice.as_bytes(), key, "r", Some(d), None),
            LinkOutcome::Names(_, Some(_))
        ));
        // Two different digests, or a digest and a half, are bad links.
        let e = Digest::of(b"y");
        for bad in [format!("{d}{e}"), format!("{d}{}", &d.to_string()[..30])] {
            assert!(
                matches!(
                    check_link(bad.as_bytes(), key, "r", None, None),
                    LinkOutcome::Bad(_)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            check_link(d.to_string().as_bytes(), key, "r", None, None),
            LinkOutcome::Names(_, None)
        ));
    }

    /// A blob table as a walk builds it, from (digest, size, modification time) as listed.
    fn table(rows: impl Iterator<Item = (Digest, u64, Option<i64>)>) -> BlobTable {
        let mut shards: Vec<Vec<BlobRow>> = (0..16).map(|_| Vec::new()).collect();
        let mut large = Vec::new();
        for (d, size, modified) in rows {
            shards[(d.0[0] >> 4) as usize].push(BlobRow::new(d, size, modified, &mut large));
        }
        for shard in &mut shards {
            shard.sort_unstable_by_key(|r| r.digest);
        }
        BlobTable::from_sorted_shards(shards, large)
    }

    #[test]
    fn blob_table_finds_every_digest_and_only_those() {
        let digests: Vec<Digest> = (0..5000u32).map(|i| Digest::of(&i.to_le_bytes())).collect();
        let table = table((digests.iter().enumerate()).map(|(i, d)| (*d, i as u64, Some(0))));
        assert_eq!(table.len(), digests.len());
        for (i, d) in digests.iter().enumerate() {
            let id = table.id(d).expect("present digest found");
            assert_eq!((table.digest(id), table.size(id)), (*d, i as u64));
        }
        for i in 5000..6000u32 {
            assert_eq!(table.id(&Digest::of(&i.to_le_bytes())), None);
        }
        assert_eq!(BlobTable::default().id(&digests[0]), None);
    }

    #[test]
    fn sizes_of_4_gib_and_more_are_kept_whole() {
        let sizes = [
            0,
            1,
            u32::MAX as u64 - 2,
            u32::MAX as u64 - 1,
            u32::MAX as u64,
            5 << 30,
            u64::MAX - 1,
        ];
        let digests: Vec<Digest> = (0..sizes.len() as u32 * 2)
            .map(|i| Digest::of(&i.to_le_bytes()))
            .collect();
        // The first half listed with their sizes, the second half listed by name only.
        let table = table(digests.iter().enumerate().map(|(i, d)| match sizes.get(i) {
            Some(&s) => (*d, s, Some(1)),
            None => (*d, 0, None),
        }));
        let (listed, named) = digests.split_at(sizes.len());
        for (d, &size) in listed.iter().zip(&sizes) {
            let id = table.id(d).unwrap();
            assert_eq!(table.known_size(id), Some(size));
            // A declared size never overrides a listed one.
            table.declare_size(id, 7);
            assert_eq!(table.known_size(id), Some(size));
        }
        for (d, &size) in named.iter().zip(&sizes) {
            let id = table.id(d).unwrap();
            assert_eq!(table.known_size(id), None);
            table.declare_size(id, size);
            table.declare_size(id, 7);
            assert_eq!(table.known_size(id), Some(size), "declared first wins");
            table.set_size(id, 9 << 30, false);
            assert_eq!(table.known_size(id), Some(9 << 30), "measured");
        }
    }

    use crate::storage::mem::MemStorage;

    /// Repositories nested in each other, in the order a sorted listing and a depth-first walk
    /// both give: `n/0x` before `n`'s own keys, `n/b` (and `n/b/c` within it) after.
    const NESTED: [&str; 5] = ["n", "n/0x", "n/b", "n/b/c", "n-1"];

    /// Puts repository `repo` with one blob of its name's bytes, linked as its revision and as
    /// its layer; returns the blob's digest.
    fn put_repository(s: &MemStorage, repo: &str) -> Digest {
        let d = Digest::of(repo.as_bytes());
        s.put(&layout::blob_data(&d), repo.as_bytes().to_vec());
        s.put(&layout::revision_link(repo, &d), d.to_string().into_bytes());
        s.put(&layout::layer_link(repo, &d), d.to_string().into_bytes());
        d
    }

    fn nested_store() -> MemStorage {
        let s = MemStorage::new();
        for (i, repo) in NESTED.iter().enumerate() {
            let d = put_repository(&s, repo);
            s.put(
                &layout::tag_current(repo, &format!("t{i}")),
                d.to_string().into_bytes(),
            );
        }
        s
    }

    #[test]
    fn nested_repositories_each_keep_their_own_links() {
        let s = nested_store();
        let inv = scan(&s, Detail::Targets, &Progress::new()).unwrap();
        assert!(inv.problems.is_empty(), "{:?}", inv.problems);
        let mut names: Vec<&str> = NESTED.to_vec();
        names.sort_unstable();
        let got: Vec<&str> = inv.repositories.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(got, names);
        for r in &inv.repositories {
            let d = Digest::of(r.name.as_bytes());
            let i = NESTED.iter().position(|n| *n == r.name).unwrap();
            assert_eq!(r.revisions, vec![d], "{}", r.name);
            assert_eq!(r.layer_links, vec![inv.blobs.id(&d).unwrap()], "{}", r.name);
            let tags: Vec<(&str, Option<Digest>)> = r
                .tags
                .iter()
                .map(|t| (t.name.as_str(), t.current))
                .collect();
            assert_eq!(
                tags,
                vec![(format!("t{i}").as_str(), Some(d))],
                "{}",
                r.name
            );
        }
    }

    /// A store whose listings break the contract: the revision links of the first folder listed
    /// come after every other folder's keys, so that its repository arrives in two parts.
    struct Split(MemStorage);

    impl Storage for Split {
        fn list(
            &self,
            prefix: &str,
            visit: &mut dyn FnMut(Entry),
            note: &mut dyn FnMut(ListingNote),
        ) -> Result<(), StorageError> {
            self.0.list(prefix, visit, note)
        }
        fn list_folders(
            &self,
            prefix: &str,
            folders: &[String],
            lean: Lean,
            visit: &mut dyn FnMut(Entry),
            note: &mut dyn FnMut(ListingNote),
        ) -> Result<(), StorageError> {
            let mut all = Vec::new();
            self.0
                .list_folders(prefix, folders, lean, &mut |e| all.push(e), note)?;
            let first = format!("{prefix}{}/_manifests/revisions/", folders[0]);
            let (late, early): (Vec<Entry>, Vec<Entry>) =
                all.into_iter().partition(|e| e.key.starts_with(&first));
            early.into_iter().chain(late).for_each(visit);
            Ok(())
        }
        fn parallelism(&self) -> usize {
            1
        }
        fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.0.list_dirs(prefix)
        }
        fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
            self.0.read(key, limit)
        }
        fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
            self.0.read_chunks(key, chunk)
        }
        fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
            self.0.delete(keys)
        }
        fn try_lock(
            &self,
            record: &[u8],
        ) -> Result<Result<crate::storage::LockToken, crate::storage::HeldLock>, StorageError>
        {
            self.0.try_lock(record)
        }
        fn break_lock(&self, held: &crate::storage::HeldLock) -> Result<(), StorageError> {
            self.0.break_lock(held)
        }
        fn unlock(&self, token: crate::storage::LockToken) -> Result<(), StorageError> {
            self.0.unlock(token)
        }
        fn describe(&self) -> String {
            "split".to_owned()
        }
    }

    #[test]
    fn a_repository_listed_in_two_parts_is_refused() {
        // Five top-level folders, listed two to a shard with one thread: `r0` and `r2` each come
        // in two parts.
        let s = MemStorage::new();
        for repo in ["r0", "r1", "r2", "r3", "r4"] {
            put_repository(&s, repo);
        }
        let whole = scan(&s, Detail::Targets, &Progress::new()).unwrap();
        assert_eq!(whole.repositories.len(), 5);
        let e = scan(&Split(s), Detail::Targets, &Progress::new()).unwrap_err();
        assert_eq!(e.key(), format!("{}r0/", layout::REPOSITORIES), "{e}");
        assert!(e.to_string().contains("two parts"), "{e}");
    }
}
