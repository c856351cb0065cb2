//! The blob table: every blob the walk listed, as compact rows sorted by digest so that a digest's
//! index is its [`BlobId`], with its size and age where something told them; and the parallel
//! listing of the blob tree that fills it (16 partitions `blobs/sha256/0` … `f`).

use crate::model::digest::Digest;
use crate::model::layout::{self, BlobKey};
use crate::model::problem::{Problem, ProblemKind};
use crate::model::progress::{Count, Progress, Tally};
use crate::model::time::unix_seconds;
use crate::storage::{Entry, Lean, ListingNote, Storage, StorageError};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

/// Index of a blob in the [`BlobTable`].
pub type BlobId = u32;

/// An entry's modification time in Unix seconds; an entry listed without one counts as written now,
/// which holds it back under any grace period rather than making it look old.
pub(crate) fn modified_seconds(e: &Entry) -> i64 {
    unix_seconds(e.modified.unwrap_or_else(SystemTime::now))
}

/// What a blob written after the listing's snapshot counts as written at: the far future, which
/// holds it back under any grace window (the snapshot cannot say whether anything else needs it).
const AFTER_SNAPSHOT: i64 = u32::MAX as i64;

/// One blob as listed: its digest, and its size where something told it. The table keeps it as
/// 34 bytes: the digest less the two bytes its place tells, and a size slot (an atomic, so that
/// parallel readers of manifests can fill it); a size of 4 GiB or more is kept apart
/// ([`LARGE_SIZE`]), and the time apart ([`Times`]).
#[derive(Debug)]
struct BlobRow {
    digest: Digest,
    /// Bytes, or [`UNKNOWN_SIZE`], or [`LARGE_SIZE`].
    size: AtomicU32,
}

/// A blob as listed: its row, and its time slot (Unix seconds, see [`time_slot`], or
/// [`UNKNOWN_TIME`]).
type Listed = (BlobRow, u32);

impl BlobRow {
    /// A row for a listed blob, with its time slot; a size too large for the row goes to `large`.
    fn new(
        digest: Digest,
        size: u64,
        modified: Option<i64>,
        large: &mut Vec<(Digest, u64)>,
    ) -> Listed {
        let (slot, time) = match modified {
            Some(t) => (size_slot(size), time_slot(t)),
            None => (UNKNOWN_SIZE, UNKNOWN_TIME),
        };
        if slot == LARGE_SIZE {
            large.push((digest, size));
        }
        (
            BlobRow {
                digest,
                size: AtomicU32::new(slot),
            },
            time,
        )
    }
}

/// The blobs' modification times: one slot a blob where the listing told most of them (S3), else
/// only those learned since (a filesystem walk that stats no blob learns the few it judges), so
/// that a store of names only does not carry four bytes a blob it never fills.
#[derive(Debug)]
enum Times {
    /// By id.
    Every(Vec<AtomicU32>),
    /// The ids whose time is known.
    Learned(Mutex<HashMap<BlobId, u32>>),
}

impl Default for Times {
    fn default() -> Times {
        Times::Learned(Mutex::new(HashMap::new()))
    }
}

impl Times {
    /// The learned times' map (a panic elsewhere leaves it whole: every change is one call).
    fn lock(m: &Mutex<HashMap<BlobId, u32>>) -> std::sync::MutexGuard<'_, HashMap<BlobId, u32>> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: BlobId) -> u32 {
        match self {
            Times::Every(v) => v[id as usize].load(Ordering::Relaxed),
            Times::Learned(m) => Times::lock(m).get(&id).copied().unwrap_or(UNKNOWN_TIME),
        }
    }

    fn set(&self, id: BlobId, t: u32) {
        match self {
            Times::Every(v) => v[id as usize].store(t, Ordering::Relaxed),
            Times::Learned(m) if t == UNKNOWN_TIME => {
                Times::lock(m).remove(&id);
            }
            Times::Learned(m) => {
                Times::lock(m).insert(id, t);
            }
        }
    }

    fn raise(&self, id: BlobId, t: u32) {
        match self {
            Times::Every(v) => {
                v[id as usize].fetch_max(t, Ordering::Relaxed);
            }
            Times::Learned(m) => {
                let mut m = Times::lock(m);
                let slot = m.entry(id).or_insert(UNKNOWN_TIME);
                *slot = (*slot).max(t);
            }
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
/// (34 bytes a blob: the digest's last 30 bytes and a size slot; its time apart).
///
/// Lookups go through a radix index of the digests' first 16 bits (256 KiB whatever the store's
/// size), then a binary search over the few rows sharing them: a lookup touches two or three cache
/// lines where a binary search over the whole table would miss the cache twenty times. The same
/// index tells a row's first two bytes, which the row therefore does not keep.
///
/// Where the listing did not tell a blob's size and age, its size is first learned from the
/// descriptors that name it ([`BlobTable::declare_size`]), and only the blobs whose size or age the
/// answer needs are asked of the store ([`BlobTable::learn`]).
#[derive(Debug, Default)]
pub struct BlobTable {
    /// Each blob's digest but its first two bytes, by id.
    tails: Vec<[u8; 30]>,
    /// Each blob's size slot: bytes, or [`UNKNOWN_SIZE`], or [`LARGE_SIZE`].
    sizes: Vec<AtomicU32>,
    times: Times,
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
    fn from_sorted_shards(listed: Vec<Vec<Listed>>, large: Vec<(Digest, u64)>) -> BlobTable {
        let total: usize = listed.iter().map(Vec::len).sum();
        let known: usize = (listed.iter().flatten())
            .filter(|(_, t)| *t != UNKNOWN_TIME)
            .count();
        // A slot a blob where the listing told at least one time in eight.
        let mut every = (known * 8 >= total).then(|| Vec::with_capacity(total));
        let mut learned = HashMap::new();
        let mut starts = Vec::with_capacity((1 << 16) + 1);
        // Filled shard by shard as each listed one goes: the table and the listing are not both
        // whole at once.
        let mut tails = Vec::with_capacity(total);
        let mut sizes = Vec::with_capacity(total);
        let mut id = 0u32;
        for shard in listed {
            for (row, time) in shard {
                while starts.len() <= prefix16(&row.digest) {
                    starts.push(id);
                }
                match &mut every {
                    Some(v) => v.push(AtomicU32::new(time)),
                    None if time != UNKNOWN_TIME => {
                        learned.insert(id, time);
                    }
                    None => {}
                }
                tails.push(row.digest.0[2..].try_into().expect("30 bytes"));
                sizes.push(row.size);
                id += 1;
            }
        }
        starts.resize((1 << 16) + 1, id);
        BlobTable {
            times: match every {
                Some(v) => Times::Every(v),
                None => Times::Learned(Mutex::new(learned)),
            },
            sizes_listed: known == total,
            tails,
            sizes,
            starts,
            large: Mutex::new(large.into_iter().collect()),
        }
    }

    /// The table with `added` (digests it lacks, with their sizes) as blobs written after the
    /// listing ([`AFTER_SNAPSHOT`]). Ids change.
    pub(crate) fn with_added(self, added: Vec<(Digest, u64)>) -> BlobTable {
        let mut shards: Vec<Vec<Listed>> =
            (0..layout::BLOB_PARTITIONS).map(|_| Vec::new()).collect();
        for id in 0..self.len() as BlobId {
            let digest = self.digest(id);
            let size = AtomicU32::new(self.sizes[id as usize].load(Ordering::Relaxed));
            shards[(digest.0[0] >> 4) as usize]
                .push((BlobRow { digest, size }, self.times.get(id)));
        }
        let mut large: Vec<(Digest, u64)> = (self.large.into_inner())
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .collect();
        for (d, size) in added {
            let n = (d.0[0] >> 4) as usize;
            shards[n].push(BlobRow::new(d, size, Some(AFTER_SNAPSHOT), &mut large));
        }
        for s in &mut shards {
            s.sort_unstable_by_key(|r| r.0.digest);
            s.dedup_by_key(|r| r.0.digest);
        }
        BlobTable::from_sorted_shards(shards, large)
    }

    fn size_slot(&self, id: BlobId) -> &AtomicU32 {
        &self.sizes[id as usize]
    }

    /// The id of a digest, when the store holds its data.
    pub fn id(&self, d: &Digest) -> Option<BlobId> {
        let p = prefix16(d);
        let (start, end) = (*self.starts.get(p)?, self.starts[p + 1]);
        if start == end {
            return None;
        }
        let tail = &d.0[2..];
        self.tails[start as usize..end as usize]
            .binary_search_by(|t| t.as_slice().cmp(tail))
            .ok()
            .map(|i| start + i as BlobId)
    }

    pub fn len(&self) -> usize {
        self.tails.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn digest(&self, id: BlobId) -> Digest {
        // The row's first two bytes: the last radix bucket starting at or before it.
        let p = self.starts.partition_point(|&s| s <= id) - 1;
        let mut d = [0u8; 32];
        d[..2].copy_from_slice(&(p as u16).to_be_bytes());
        d[2..].copy_from_slice(&self.tails[id as usize]);
        Digest(d)
    }

    /// The blob's size: its data's where the listing or [`BlobTable::learn`] told it, else what a
    /// descriptor declared; 0 while neither did.
    pub fn size(&self, id: BlobId) -> u64 {
        self.known_size(id).unwrap_or(0)
    }

    /// The blob's size, when something told it.
    pub fn known_size(&self, id: BlobId) -> Option<u64> {
        match self.size_slot(id).load(Ordering::Relaxed) {
            UNKNOWN_SIZE => None,
            LARGE_SIZE => self.large_sizes().get(&self.digest(id)).copied(),
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
        let row = self.size_slot(id);
        let slot = size_slot(size);
        let set = |new: u32| {
            if only_unknown {
                row.compare_exchange(UNKNOWN_SIZE, new, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            } else {
                row.store(new, Ordering::Relaxed);
                true
            }
        };
        if slot == LARGE_SIZE {
            let mut large = self.large_sizes();
            if set(LARGE_SIZE) {
                large.insert(self.digest(id), size);
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
        let t = self.times.get(id);
        (t != UNKNOWN_TIME).then_some(t as i64)
    }

    /// Counts the blob as written no earlier than `second` (a link naming it was written then): its
    /// age is the newest of its data and the links that name it.
    pub fn written_at_least(&self, id: BlobId, second: i64) {
        self.times.raise(id, time_slot(second));
    }

    /// Learns the exact time of each blob whose data was written in the second of `cutoff` (whole
    /// seconds cannot tell whether before or after it), and counts one written after it in the
    /// second after ([`crate::model::time::seconds_against`]), so that comparing whole seconds
    /// with the cutoff's tells "written after it" exactly. A time the store cannot tell counts as
    /// after. Few blobs are asked about: those of one second, among `only` where it is given (the
    /// blobs whose times were learned since the last call).
    pub fn settle_at(
        &self,
        storage: &dyn Storage,
        cutoff: SystemTime,
        only: Option<&RoaringBitmap>,
    ) {
        let second = unix_seconds(cutoff);
        let slot = time_slot(second);
        let in_second = |&id: &BlobId| self.times.get(id) == slot;
        let todo: Vec<BlobId> = match only {
            Some(ids) => ids.iter().filter(in_second).collect(),
            None => (0..self.len() as BlobId).filter(in_second).collect(),
        };
        // A store of whole seconds would only say the same second again.
        if storage.times_to_the_second() {
            for id in todo {
                self.times.set(id, time_slot(second + 1));
            }
            return;
        }
        todo.par_iter().for_each(|&id| {
            let t = match storage.stat(&layout::blob_data(&self.digest(id))) {
                Ok(Some((_, Some(t)))) => crate::model::time::seconds_against(t, cutoff),
                // Gone since the listing: whoever judges it finds it gone.
                Err(e) if e.is_not_found() => return,
                _ => second + 1,
            };
            self.times.set(id, time_slot(t));
        });
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
    pub fn learn(
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
                "measuring {} that may be swept",
                crate::model::text::count(todo.len() as u64, "blob", "blobs")
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
                    self.times.set(id, t);
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

pub(crate) fn note_problem(n: ListingNote) -> Problem {
    Problem::at(ProblemKind::Unreadable, n.key, n.message)
}

pub(crate) fn scan_blobs(
    storage: &dyn Storage,
    lean: Lean,
    progress: &Progress,
) -> Result<(BlobTable, Vec<Problem>), StorageError> {
    type Shard = Result<(Vec<Listed>, Vec<(Digest, u64)>, Vec<Problem>), StorageError>;
    // Shard `n` holds exactly the digests whose first hex digit is `n`, so the sorted shards joined in
    // order are the sorted table.
    let shards: Vec<Shard> = (0..layout::BLOB_PARTITIONS)
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
            let prefix = layout::blob_partition(n);
            let result = storage.list_lean(&prefix, lean, &mut visit, &mut note);
            rows.sort_unstable_by_key(|r| r.0.digest);
            rows.dedup_by_key(|r| r.0.digest);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob table as a walk builds it, from (digest, size, modification time) as listed.
    fn table(rows: impl Iterator<Item = (Digest, u64, Option<i64>)>) -> BlobTable {
        let mut shards: Vec<Vec<Listed>> = (0..16).map(|_| Vec::new()).collect();
        let mut large = Vec::new();
        for (d, size, modified) in rows {
            shards[(d.0[0] >> 4) as usize].push(BlobRow::new(d, size, modified, &mut large));
        }
        for shard in &mut shards {
            shard.sort_unstable_by_key(|r| r.0.digest);
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
}
