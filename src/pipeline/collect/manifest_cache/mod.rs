//! What manifests reference, kept between runs.
//!
//! A manifest never changes: it is named by the hash of its bytes. What a run learned from one (its
//! kind, the digests it names with the sizes its descriptors declare, its subject, its own length)
//! therefore holds for every later run, on every store, and a nightly run over a store that gained a
//! few images needs to read only those. The cache is one file, memory-mapped, shared by every command
//! and every store a user runs against:
//!
//! ```text
//! header   48 bytes: magic "RSWPMC01", version u32 (2), 0 u32, count u64, records length u64,
//!          index crc32 u32, 0 u32, header crc32 u32 (over the 40 bytes before it), 0 u32
//! index    count × (digest [32], record offset u64), sorted by digest
//! records  each: payload length u32, crc32 of digest and payload u32, payload
//! ```
//!
//! All integers are little-endian. A payload is a manifest's kind (or "not a manifest", with the
//! reason), its length, and its references ([`Cached`]).
//!
//! It can make no sweep unsafe: only manifests whose bytes hashed to their digest are cached, a record
//! is used only when its checksum (which covers the digest it is filed under) holds and it decodes
//! whole, and a file whose header or index does not check out is ignored and rebuilt, with a note. A
//! damaged or missing entry costs a read of the manifest, never a wrong answer. It is written at the
//! end of a run that read manifests it lacked: a new file beside the old one (the old records, then
//! the new ones), renamed over it, so a run that is cut off leaves the old file, and two runs at once
//! leave one of theirs. Deleting it at any time is safe.

use crate::model::digest::Digest;
use memmap2::Mmap;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

// The file's mapping (memmap2 cannot map without `unsafe`); the module says why each use holds.
#[allow(unsafe_code)]
mod mapped;
mod record;

pub use crate::pipeline::collect::manifest_cache::record::Cached;
use crate::pipeline::collect::manifest_cache::record::{decode, encode};

const MAGIC: &[u8; 8] = b"RSWPMC01";
/// 3: references by a sha512 or sha384 digest are aliases, kept with the manifest; version 2 held
/// such a manifest as not understood, which a run must not trust. 2: every list or index entry is
/// a child (typed or undeclared) and an entry's size 0 declares nothing; version 1 kept entries of
/// other media types as plain blobs.
const VERSION: u32 = 3;
const HEADER: usize = 48;
const ENTRY: usize = 40;
/// The cache file's name in the cache folder (the version is in it, so a future format starts its
/// own file instead of rejecting this one).
pub const FILE_NAME: &str = "manifests-v3";

/// What a run did with the cache, for reports.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ManifestCacheStats {
    /// The cache file.
    pub path: String,
    /// Manifests answered from the cache (not read from the store).
    pub hits: u64,
    /// Manifests read from the store (the cache lacked them, or, for `audit`, always).
    pub read: u64,
    /// Manifests read from the store and added.
    pub added: u64,
    /// Entries in the cache after the run.
    pub entries: u64,
    /// What went wrong with it (a damaged or foreign file, an entry that failed its check, a file
    /// that could not be written); none of it changes a result.
    pub notes: Vec<String>,
}

impl ManifestCacheStats {
    /// One line of figures, and a note for each thing that went wrong.
    pub fn write_human(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use crate::model::text::thousands;
        writeln!(
            out,
            "  manifest cache {} from the cache, {} read from the store, {} added ({})",
            thousands(self.hits),
            thousands(self.read),
            thousands(self.added),
            self.path
        )?;
        for n in &self.notes {
            writeln!(out, "Note: manifest cache: {n}.")?;
        }
        Ok(())
    }
}

/// The cache for one run: the file as it was when the run began, and what the run adds.
pub struct ManifestCache {
    path: PathBuf,
    map: Option<Mmap>,
    /// False for a run that reads every manifest and only adds to the cache ([`ManifestCache::for_audit`]).
    lookups: bool,
    count: usize,
    records_start: usize,
    records_len: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Digests whose entries failed their check: dropped when the file is written again.
    damaged: Mutex<Vec<Digest>>,
    /// New records, spilled to a file beside the cache as they come (so that a first run over a large
    /// store holds none of them in memory), each after its digest.
    spill: Mutex<SpillState>,
    notes: Mutex<Vec<String>>,
}

/// Where the run's new records stand.
enum SpillState {
    /// Nothing added yet: the spill file is made by the first addition.
    NotStarted,
    Open(Spill),
    /// The spill could not be made or written: nothing more is added this run (a note says why).
    Failed,
}

/// The run's new records: in the spill file each is its digest, then the record as the cache file
/// holds it (payload length, checksum, payload).
struct Spill {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
    /// Records appended.
    count: u64,
}

/// A digest's first 8 bytes, in the digests' order.
fn digest_prefix(d: &Digest) -> u64 {
    u64::from_be_bytes(d.0[..8].try_into().expect("8 bytes"))
}

/// What the spill holds at `at`: a digest, and the record after it (its payload's length).
fn spilled_at(file: &File, at: u64) -> std::io::Result<(Digest, u32)> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 36];
    file.read_exact_at(&mut head, at)?;
    let d = Digest(head[..32].try_into().expect("32 bytes"));
    Ok((
        d,
        u32::from_le_bytes(head[32..].try_into().expect("4 bytes")),
    ))
}

/// Each spilled record's digest's first 8 bytes (the order the records are sorted in; the whole
/// digest is read from the spill where two are alike) and its offset in the spill, read from the
/// spill once the run is done with manifests (16 bytes a record, held only while the cache is
/// written).
fn spilled_entries(file: &File, len: u64) -> std::io::Result<Vec<(u64, u64)>> {
    use std::io::{BufReader, Read};
    let mut input = BufReader::new(file);
    input.seek(SeekFrom::Start(0))?;
    let mut entries = Vec::new();
    let mut at = 0u64;
    let mut head = [0u8; 40];
    while at < len {
        input.read_exact(&mut head)?;
        let d = Digest(head[..32].try_into().expect("32 bytes"));
        let payload = u32::from_le_bytes(head[32..36].try_into().expect("4 bytes"));
        entries.push((digest_prefix(&d), at));
        input.seek_relative(i64::from(payload))?;
        at += 40 + u64::from(payload);
    }
    Ok(entries)
}

/// A spilled digest as found by [`spilled_at`] (none where the spill cannot be read: the write
/// that follows fails on the same read).
fn spilled_digest(file: &File, at: u64) -> Digest {
    spilled_at(file, at).map_or(Digest([0; 32]), |(d, _)| d)
}

/// Sorts the spill's entries by digest and drops a digest's later records (a manifest two threads
/// read at once): sorted by the prefix kept in memory, and by the whole digest where prefixes tie.
fn sort_spilled(entries: &mut Vec<(u64, u64)>, file: &File) {
    entries.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| spilled_digest(file, a.1).cmp(&spilled_digest(file, b.1)))
            .then(a.1.cmp(&b.1))
    });
    entries.dedup_by(|b, a| a.0 == b.0 && spilled_digest(file, a.1) == spilled_digest(file, b.1));
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl ManifestCache {
    /// The cache in `dir`. Never fails: a missing file is an empty cache, and a file that cannot be
    /// read or does not check out is ignored (a note says why) and replaced when the run writes.
    pub fn open(dir: &Path) -> ManifestCache {
        let path = dir.join(FILE_NAME);
        let mut cache = ManifestCache {
            path,
            map: None,
            lookups: true,
            count: 0,
            records_start: HEADER,
            records_len: 0,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            damaged: Mutex::new(Vec::new()),
            spill: Mutex::new(SpillState::NotStarted),
            notes: Mutex::new(Vec::new()),
        };
        let file = match File::open(&cache.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return cache,
            Err(e) => {
                cache.note(format!("{}: {e}; not used", cache.path.display()));
                return cache;
            }
        };
        let map = match mapped::map(&file) {
            Ok(m) => m,
            Err(e) => {
                cache.note(format!("{}: {e}; not used", cache.path.display()));
                return cache;
            }
        };
        match Self::check(&map) {
            Ok((count, records_len)) => {
                cache.count = count;
                cache.records_start = HEADER + count * ENTRY;
                cache.records_len = records_len;
                cache.map = Some(map);
                cache.forget(0, cache.records_start);
            }
            Err(why) => cache.note(format!(
                "{}: {why}; ignored, and rebuilt from the manifests read",
                cache.path.display()
            )),
        }
        cache
    }

    /// The cache for a run that checks the store's own data (`audit`): it reads every manifest,
    /// whatever the cache holds (a manifest damaged in the store since a run cached it must be
    /// found), and adds the ones the cache lacks.
    pub fn for_audit(mut self) -> ManifestCache {
        self.lookups = false;
        self
    }

    /// Checks the header and the index: `(count, records length)`.
    fn check(map: &[u8]) -> Result<(usize, usize), String> {
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err("not a regsweep manifest cache".into());
        }
        let field = |at| u32_at(map, at).expect("within the header");
        if field(8) != VERSION {
            return Err(format!("format version {} is not {VERSION}", field(8)));
        }
        if field(40) != crc(&[&map[..40]]) {
            return Err("its header fails its checksum".into());
        }
        let count = u64_at(map, 16).expect("within the header") as usize;
        let records_len = u64_at(map, 24).expect("within the header") as usize;
        let index_end = count
            .checked_mul(ENTRY)
            .and_then(|n| n.checked_add(HEADER))
            .filter(|&e| e.checked_add(records_len) == Some(map.len()))
            .ok_or("its length is not what its header says (truncated?)")?;
        if field(32) != crc(&[&map[HEADER..index_end]]) {
            return Err("its index fails its checksum".into());
        }
        Ok((count, records_len))
    }

    fn note(&self, text: String) {
        self.notes.lock().expect("notes lock").push(text);
    }

    /// Gives back the pages of `start..end` of the mapping to the kernel: they stay in the page
    /// cache, and a later look faults them in again, but they no longer count against this process.
    fn forget(&self, start: usize, end: usize) {
        if let Some(map) = &self.map {
            let end = end.min(map.len());
            if start < end {
                mapped::forget(map, start, end);
            }
        }
    }

    /// Lets go of the pages the lookups so far touched (see `ManifestCache::forget`): called
    /// between batches, so that the mapping never holds more than a batch's pages.
    pub fn release(&self) {
        if let Some(map) = &self.map {
            self.forget(0, map.len());
        }
    }

    /// The index entry for `d`: the record's offset.
    fn find(&self, d: &Digest) -> Option<usize> {
        let map = self.map.as_ref()?;
        let digest_at = |i: usize| &map[HEADER + i * ENTRY..HEADER + i * ENTRY + 32];
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match digest_at(mid).cmp(&d.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return u64_at(map, HEADER + mid * ENTRY + 32).map(|o| o as usize);
                }
            }
        }
        None
    }

    /// Every digest the cache has an entry for (checked when it is read with [`ManifestCache::get`]).
    pub fn digests(&self) -> Vec<Digest> {
        let Some(map) = &self.map else {
            return Vec::new();
        };
        (0..self.count)
            .filter_map(|i| {
                let at = HEADER + i * ENTRY;
                let bytes: [u8; 32] = map.get(at..at + 32)?.try_into().ok()?;
                Some(Digest(bytes))
            })
            .collect()
    }

    /// Adds every entry of `other` that checks out and that neither this cache nor `added` (the
    /// digests merged so far) holds; returns how many it added.
    pub fn merge_from(
        &self,
        other: &ManifestCache,
        added_before: &mut std::collections::HashSet<Digest>,
    ) -> u64 {
        let mut added = 0;
        for d in other.digests() {
            if self.find(&d).is_some() || !added_before.insert(d) {
                continue;
            }
            if let Some(c) = other.lookup(&d) {
                self.put(&d, &c);
                added += 1;
            }
        }
        added
    }

    /// What the cache holds for `d`, when it holds an entry that checks out.
    pub fn get(&self, d: &Digest) -> Option<Cached> {
        let found = self.lookup(d);
        if found.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    fn lookup(&self, d: &Digest) -> Option<Cached> {
        if !self.lookups {
            return None;
        }
        let offset = self.find(d)?;
        let map = self.map.as_ref()?;
        let records = &map[self.records_start..];
        let decoded = (|| {
            let len = u32_at(records, offset)? as usize;
            let sum = u32_at(records, offset + 4)?;
            let payload = records.get(offset + 8..(offset + 8).checked_add(len)?)?;
            (crc(&[&d.0, payload]) == sum).then_some(())?;
            decode(payload)
        })();
        match decoded {
            Some(c) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(c)
            }
            None => {
                self.note(format!(
                    "{}: the entry for {d} fails its check; read from the store instead",
                    self.path.display()
                ));
                self.damaged.lock().expect("damaged lock").push(*d);
                None
            }
        }
    }

    /// Adds what reading `d` gave (its bytes hashed to `d`). A spill that cannot be written is a
    /// note, and the run goes on without adding.
    pub fn put(&self, d: &Digest, c: &Cached) {
        if !self.lookups && self.find(d).is_some() {
            return;
        }
        let payload = encode(c);
        let mut state = self.spill.lock().expect("spill lock");
        if matches!(*state, SpillState::NotStarted) {
            *state = match self.start_spill() {
                Ok(s) => SpillState::Open(s),
                Err(e) => {
                    self.note(format!("not written: {e}"));
                    SpillState::Failed
                }
            };
        }
        let SpillState::Open(s) = &mut *state else {
            return;
        };
        if let Err(e) = s.append(d, &payload) {
            self.note(format!("not written: {}: {e}", s.path.display()));
            let _ = std::fs::remove_file(&s.path);
            *state = SpillState::Failed;
        }
    }

    fn start_spill(&self) -> std::io::Result<Spill> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let path = dir.join(format!(".{FILE_NAME}.{}.new", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Spill {
            path,
            out: BufWriter::new(file),
            len: 0,
            count: 0,
        })
    }

    /// Writes the cache again when the run added to it or found an entry damaged (the old entries
    /// that checked out, then the new), and tells what the run did with it.
    pub fn finish(self) -> ManifestCacheStats {
        let hits = self.hits.load(Ordering::Relaxed);
        let read = self.misses.load(Ordering::Relaxed);
        let mut notes = self.notes.into_inner().expect("notes lock");
        let mut damaged = self.damaged.into_inner().expect("damaged lock");
        damaged.sort_unstable();
        damaged.dedup();
        let spill = match self.spill.into_inner().expect("spill lock") {
            SpillState::Open(s) => Some(s),
            SpillState::NotStarted | SpillState::Failed => None,
        };
        let added = spill.as_ref().map_or(0, |s| s.count);
        let mut entries = self.count as u64;
        if added > 0 || !damaged.is_empty() {
            let spill_path = spill.as_ref().map(|s| s.path.clone());
            match write_merged(
                &self.path,
                self.map.as_deref(),
                self.count,
                self.records_start,
                self.records_len,
                &damaged,
                spill,
            ) {
                Ok(n) => entries = n,
                Err(e) => notes.push(format!("not written: {e}")),
            }
            if let Some(p) = spill_path {
                let _ = std::fs::remove_file(p);
            }
        }
        ManifestCacheStats {
            path: self.path.display().to_string(),
            hits,
            read,
            added,
            entries,
            notes,
        }
    }
}

impl Spill {
    /// Appends `d` and its record: its payload's length, the checksum of `d` and the payload, the
    /// payload.
    fn append(&mut self, d: &Digest, payload: &[u8]) -> std::io::Result<()> {
        let sum = crc(&[&d.0, payload]);
        self.out.write_all(&d.0)?;
        self.out.write_all(&(payload.len() as u32).to_le_bytes())?;
        self.out.write_all(&sum.to_le_bytes())?;
        self.out.write_all(payload)?;
        self.count += 1;
        self.len += 32 + 8 + payload.len() as u64;
        Ok(())
    }
}

/// Writes the merged cache to a temporary file beside `path` and renames it into place; returns
/// the entries it holds. The old entries (less the damaged, and those a new read replaced) and the
/// new ones are merged as the index is written, and the new records follow the old in digest
/// order: nothing but the spill's 16 bytes a record is held in memory.
fn write_merged(
    path: &Path,
    old: Option<&[u8]>,
    old_count: usize,
    records_start: usize,
    records_len: usize,
    damaged: &[Digest],
    spill: Option<Spill>,
) -> Result<u64, String> {
    let shown = |e: std::io::Error, p: &Path| format!("{}: {e}", p.display());
    let (new, spill_file) = match spill {
        Some(s) => {
            let file = s
                .out
                .into_inner()
                .map_err(|e| shown(e.into_error(), &s.path))?;
            let mut entries = spilled_entries(&file, s.len).map_err(|e| shown(e, &s.path))?;
            sort_spilled(&mut entries, &file);
            (entries, Some(file))
        }
        None => (Vec::new(), None),
    };
    let old_len = old.map_or(0, |_| records_len) as u64;
    let old_entry = |i: usize| -> (Digest, u64) {
        let m = old.expect("old entries come with the old file");
        let at = HEADER + i * ENTRY;
        let d = Digest(m[at..at + 32].try_into().expect("32 bytes"));
        (d, u64_at(m, at + 32).expect("within the index"))
    };
    let old_n = if old.is_some() { old_count } else { 0 };
    let dir = path.parent().unwrap_or(Path::new("."));
    let staged =
        crate::model::atomic_file::Staged::create(path, "a file").map_err(|e| shown(e, path))?;
    let tmp = staged.temporary().to_owned();
    let mut count = 0u64;
    let result = staged.finish_file(|file| {
        let mut out = BufWriter::new(file);
        out.write_all(&[0u8; HEADER])?;
        let mut index_crc = crc32fast::Hasher::new();
        let mut entry = |out: &mut BufWriter<File>, d: &Digest, off: u64| -> std::io::Result<()> {
            index_crc.update(&d.0);
            index_crc.update(&off.to_le_bytes());
            out.write_all(&d.0)?;
            out.write_all(&off.to_le_bytes())?;
            count += 1;
            Ok(())
        };
        // The index: old and new entries merged by digest, a new record replacing an old one.
        let (mut i, mut j) = (0, 0);
        let mut new_at = old_len;
        let next_new = |j: usize| -> std::io::Result<Option<(Digest, u32)>> {
            match (new.get(j), &spill_file) {
                (Some(&(_, at)), Some(f)) => spilled_at(f, at).map(Some),
                _ => Ok(None),
            }
        };
        let mut pending = next_new(0)?;
        loop {
            let o = (i < old_n).then(|| old_entry(i));
            match (o, pending) {
                (Some(o), Some((d, len))) if d <= o.0 => {
                    if d == o.0 {
                        i += 1;
                    }
                    entry(&mut out, &d, new_at)?;
                    new_at += 8 + u64::from(len);
                    j += 1;
                    pending = next_new(j)?;
                }
                (Some(o), _) => {
                    if damaged.binary_search(&o.0).is_err() {
                        entry(&mut out, &o.0, o.1)?;
                    }
                    i += 1;
                }
                (None, Some((d, len))) => {
                    entry(&mut out, &d, new_at)?;
                    new_at += 8 + u64::from(len);
                    j += 1;
                    pending = next_new(j)?;
                }
                (None, None) => break,
            }
        }
        let index_crc = index_crc.finalize();
        // The records: the old ones as they were, then the new in the index's order.
        if let Some(m) = old {
            out.write_all(&m[records_start..records_start + records_len])?;
        }
        if let Some(f) = &spill_file {
            use std::os::unix::fs::FileExt;
            let mut record = Vec::new();
            for &(_, at) in &new {
                let (_, len) = spilled_at(f, at)?;
                record.resize(8 + len as usize, 0);
                f.read_exact_at(&mut record, at + 32)?;
                out.write_all(&record)?;
            }
        }
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&count.to_le_bytes());
        header[24..32].copy_from_slice(&new_at.to_le_bytes());
        header[32..36].copy_from_slice(&index_crc.to_le_bytes());
        let sum = crc(&[&header[..40]]);
        header[40..44].copy_from_slice(&sum.to_le_bytes());
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.flush()?;
        Ok(file)
    });
    remove_stale_temporaries(dir);
    match result {
        Ok(()) => Ok(count),
        Err(e) => Err(shown(e, &tmp)),
    }
}

/// Removes the spills and temporary files of runs that were cut off (a kill leaves them): those of
/// this cache's name untouched for a day.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(&format!(".{FILE_NAME}."))
            && (name.ends_with(".new") || name.ends_with(".tmp") || name.contains(".tmp-"));
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if ours && old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The cache folder a run uses when not told: `$XDG_CACHE_HOME/regsweep`, else
/// `$HOME/.cache/regsweep`; `None` when neither is set.
pub fn default_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| from("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("regsweep"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::AliasDigest;
    use crate::model::manifest::{Aliased, Child, Manifest, ManifestKind};

    fn d(i: u32) -> Digest {
        Digest::of(&i.to_le_bytes())
    }

    fn alias(c: char) -> AliasDigest {
        AliasDigest::parse(&format!("sha512:{}", c.to_string().repeat(128))).unwrap()
    }

    fn sample(i: u32) -> Cached {
        Cached::Manifest {
            size: 500 + i as u64,
            manifest: Manifest {
                kind: ManifestKind::OciIndex,
                blobs: vec![d(i + 1)],
                foreign: vec![d(i + 2)],
                children: vec![Child::Manifest(d(i + 3)), Child::Undeclared(d(i + 4))],
                subject: Some(d(i + 5)),
                declared: vec![(d(i + 1), 7), (d(i + 3), 9), (d(i + 9), 11)],
                aliased: vec![
                    Aliased::Blob(alias('a')),
                    Aliased::Foreign(alias('b')),
                    Aliased::Child(alias('c'), true),
                    Aliased::Child(alias('d'), false),
                    Aliased::Subject(alias('e')),
                ],
            },
        }
    }

    #[test]
    fn payloads_round_trip_and_reject_anything_cut_or_padded() {
        for c in [
            sample(1),
            Cached::NotManifest {
                size: 3,
                reason: "not valid manifest JSON".into(),
            },
        ] {
            let p = encode(&c);
            assert_eq!(decode(&p), Some(c));
            for cut in 0..p.len() {
                assert_eq!(decode(&p[..cut]), None, "cut at {cut}");
            }
            let mut padded = p.clone();
            padded.push(0);
            assert_eq!(decode(&padded), None);
        }
    }

    #[test]
    fn entries_written_by_one_run_are_found_by_the_next_and_damage_is_survived() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ManifestCache::open(dir.path());
        assert_eq!(cache.get(&d(0)), None);
        for i in (0..100).step_by(10) {
            cache.put(&d(i), &sample(i));
        }
        let r = cache.finish();
        assert_eq!((r.hits, r.added, r.entries), (0, 10, 10));
        assert!(r.notes.is_empty(), "{:?}", r.notes);

        // A second run finds them all, and adds to them.
        let cache = ManifestCache::open(dir.path());
        for i in (0..100).step_by(10) {
            assert_eq!(cache.get(&d(i)), Some(sample(i)));
        }
        assert_eq!(cache.get(&d(5)), None);
        cache.put(&d(5), &sample(5));
        let r = cache.finish();
        assert_eq!((r.hits, r.added, r.entries), (10, 1, 11));
        let cache = ManifestCache::open(dir.path());
        assert_eq!(cache.get(&d(5)), Some(sample(5)));
        assert_eq!(cache.get(&d(90)), Some(sample(90)));
        drop(cache);

        // A byte flipped in a record: that entry is a miss (with a note), the others still hold,
        // and the next write drops it.
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let cache = ManifestCache::open(dir.path());
        let found = (0..100).filter(|&i| cache.get(&d(i)).is_some()).count();
        assert_eq!(found, 10, "one of eleven entries is damaged");
        let r = cache.finish();
        assert_eq!(r.entries, 10);
        assert!(
            r.notes.iter().any(|n| n.contains("fails its check")),
            "{:?}",
            r.notes
        );

        // A truncated file and a foreign one are ignored whole, with a note, and rebuilt.
        let bytes = std::fs::read(&path).unwrap();
        for broken in [
            bytes[..bytes.len() - 1].to_vec(),
            b"GIF89a not a cache".to_vec(),
        ] {
            std::fs::write(&path, &broken).unwrap();
            let cache = ManifestCache::open(dir.path());
            assert_eq!(cache.get(&d(0)), None);
            cache.put(&d(0), &sample(0));
            let r = cache.finish();
            assert_eq!(r.entries, 1);
            assert!(
                r.notes.iter().any(|n| n.contains("ignored")),
                "{:?}",
                r.notes
            );
            assert_eq!(ManifestCache::open(dir.path()).get(&d(0)), Some(sample(0)));
        }
    }

    #[test]
    fn a_cache_folder_that_cannot_be_written_is_a_note_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let cache = ManifestCache::open(&file.join("below"));
        cache.put(&d(1), &sample(1));
        cache.put(&d(2), &sample(2));
        let r = cache.finish();
        assert_eq!((r.added, r.entries), (0, 0));
        assert_eq!(r.read, 0, "nothing was looked up");
        let written: Vec<_> = r
            .notes
            .iter()
            .filter(|n| n.contains("not written"))
            .collect();
        assert_eq!(written.len(), 1, "said once: {:?}", r.notes);
        assert!(
            written[0].contains("a-file"),
            "names the path: {:?}",
            r.notes
        );
    }
}
