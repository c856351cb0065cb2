//! The manifests of a store, each read once and parsed into blob ids.
//!
//! Starting from every revision and every tag target, manifests are read in parallel rounds: a round
//! reads what is not known yet, and the entries of lists and indexes it finds form the next round.
//! An entry is read only when some repository links it (a revision or a `_layers` link): the registry
//! serves a manifest from a repository only through those, and `mark` follows an entry only where it
//! is linked, so an entry linked nowhere (deleted through the API) is never followed and need not be
//! read. Entries typed as manifests are read strictly (data that is not a manifest is a problem);
//! the others ([`Child::Undeclared`]: no media type, `application/octet-stream`, vendor and layer
//! types) leniently and only up to the largest manifest the registry takes (data that is not a
//! manifest is just a blob, [`State::NotManifest`]), unless a typed entry or a root names the same
//! digest. An undeclared entry that is a revision somewhere is read as that revision, so whatever
//! its descriptor says, a manifest the registry could serve is parsed and can be followed.
//! Each manifest is read once whatever number of repositories hold it. Layers are never read.
//! References are kept as [`BlobId`]s (4 bytes each) where the store holds the blob, and as digests
//! only when it does not.

use crate::model::digest::{AliasDigest, Digest};
use crate::model::layout;
use crate::model::manifest::{self, Aliased, Child, MAX_MANIFEST_BYTES, Manifest, ManifestKind};
use crate::model::problem::{Problem, ProblemKind};
use crate::model::progress::{Count, Progress};
use crate::pipeline::collect::blob_table::{BlobId, BlobTable};
use crate::pipeline::collect::inventory::Inventory;
use crate::pipeline::collect::manifest_cache::{Cached, ManifestCache};
use crate::storage::{Storage, StorageError};
use rayon::prelude::*;
use roaring::RoaringBitmap;

/// A parsed manifest's references, borrowed from the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Refs<'a> {
    pub kind: ManifestKind,
    /// Config, layers and artifact blobs (foreign layers included) that the store holds.
    pub blobs: &'a [BlobId],
    /// Referenced blobs the store does not hold, with whether the reference is a foreign layer.
    pub absent: &'a [(Digest, bool)],
    /// Entries of a list or index typed as manifests.
    pub children: &'a [Digest],
    /// Entries of a list or index whose media type does not say manifest (manifests only where the
    /// store holds them as such: see [`State::NotManifest`]).
    pub undeclared: &'a [Digest],
    pub subject: Option<Digest>,
    /// References by an alias digest (sha512), which each repository resolves through its alias
    /// links ([`crate::pipeline::collect::inventory::Repository::resolve`]).
    pub aliased: &'a [Aliased],
}

/// What reading a manifest gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Parsed(ManifestKind),
    /// The store holds no data for this digest.
    Missing,
    /// The data is there but is not a manifest the collector understands.
    Corrupt,
    /// Read only as an undeclared list or index entry, and not a manifest: a plain blob (no problem).
    NotManifest,
}

/// One manifest: its state and where its references sit in the catalog's shared arrays; 12 bytes,
/// 16 with its id. Most manifests reference blobs only, and fewer than 65,535 of them: what the
/// others reference too (absent blobs, list or index entries, a subject, aliases, a longer list of
/// blobs) is in a [`Rare`] apart.
#[derive(Debug, Clone, Copy)]
struct Slot {
    state: State,
    /// How many blobs, or [`MANY`] (the count is the [`Rare`]'s).
    blobs_len: u16,
    /// Where its blobs start in `blob_refs`.
    blobs_start: u32,
    /// Its [`Rare`] in `rare`, or [`NO_RARE`].
    rare: u32,
}

const _: () = assert!(std::mem::size_of::<(BlobId, Slot)>() == 16);

const NO_RARE: u32 = u32::MAX;
/// A slot's blob count that says the count is its [`Rare`]'s.
const MANY: u16 = u16::MAX;

/// What a manifest references besides blobs the store holds.
#[derive(Debug, Clone, Copy, Default)]
struct Rare {
    /// The blob count, where the slot's is [`MANY`].
    blobs_len: u32,
    absent: (u32, u32),
    /// Typed children, then `undeclared` undeclared ones, then the subject when `has_subject`, in
    /// `digest_refs`.
    children: (u32, u32),
    undeclared: u32,
    has_subject: bool,
    aliased: (u32, u32),
}

/// Every manifest reachable from a revision or a tag, compactly: one small slot each, keyed by the
/// manifest's [`BlobId`] and sorted, and the references of all manifests in three shared arrays (a
/// manifest with four layers costs about 50 bytes, not a map entry and three allocations).
/// Manifests the store has no data for are listed apart, by digest.
#[derive(Debug, Default)]
pub struct Catalog {
    slots: Vec<(BlobId, Slot)>,
    rare: Vec<Rare>,
    missing: Vec<Digest>,
    blob_refs: Vec<BlobId>,
    digest_refs: Vec<Digest>,
    absent: Vec<(Digest, bool)>,
    aliased: Vec<Aliased>,
    /// Slots of undeclared index entries whose data is no manifest.
    not_manifests: usize,
    /// Set by [`Catalog::forget_references`]: the slots and references are gone, and only the
    /// counts, the missing manifests and the problems are left.
    forgotten: Option<usize>,
    pub problems: Vec<Problem>,
}

impl Catalog {
    /// How many manifests were read (parsed, missing or corrupt; not the undeclared index entries
    /// that turned out to be plain blobs).
    pub fn len(&self) -> usize {
        match self.forgotten {
            Some(n) => n,
            None => self.slots.len() + self.missing.len() - self.not_manifests,
        }
    }

    /// Lets every manifest's slot and references go, keeping the counts, the missing manifests and
    /// the problems: for a caller done marking. Asking for a manifest's state or references after
    /// this is a bug and panics (an answer of "not read" would make reachable blobs look
    /// unreachable).
    pub fn forget_references(&mut self) {
        let n = self.len();
        self.slots = Vec::new();
        self.rare = Vec::new();
        self.blob_refs = Vec::new();
        self.digest_refs = Vec::new();
        self.absent = Vec::new();
        self.aliased = Vec::new();
        self.forgotten = Some(n);
    }

    fn check_kept(&self) {
        assert!(
            self.forgotten.is_none(),
            "a manifest's references were asked for after the catalog let them go"
        );
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What a slot references besides blobs the store holds (nothing, for most manifests).
    fn rare(&self, slot: &Slot) -> Rare {
        self.rare
            .get(slot.rare as usize)
            .copied()
            .unwrap_or_default()
    }

    /// A slot's list or index entries: those typed as manifests, and the undeclared ones.
    fn entries(&self, slot: &Slot) -> (&[Digest], &[Digest]) {
        let rare = self.rare(slot);
        let start = rare.children.0 as usize;
        let typed_end = start + rare.children.1 as usize;
        let undeclared_end = typed_end + rare.undeclared as usize;
        (
            &self.digest_refs[start..typed_end],
            &self.digest_refs[typed_end..undeclared_end],
        )
    }

    fn slot(&self, id: BlobId) -> Option<&Slot> {
        self.check_kept();
        let i = self.slots.binary_search_by_key(&id, |s| s.0).ok()?;
        Some(&self.slots[i].1)
    }

    /// What reading the manifest `d` gave, when it was read.
    pub fn state(&self, blobs: &BlobTable, d: &Digest) -> Option<State> {
        self.check_kept();
        match blobs.id(d) {
            Some(id) => self.slot(id).map(|s| s.state),
            None => self.missing.binary_search(d).ok().map(|_| State::Missing),
        }
    }

    /// The parsed references of the manifest whose data is blob `id`, when it was read and is a
    /// manifest the collector understands.
    pub fn refs(&self, id: BlobId) -> Option<Refs<'_>> {
        let slot = self.slot(id)?;
        let State::Parsed(kind) = slot.state else {
            return None;
        };
        let range = |(start, len): (u32, u32)| start as usize..(start + len) as usize;
        let rare = self.rare(slot);
        let blobs_len = match slot.blobs_len {
            MANY => rare.blobs_len,
            n => u32::from(n),
        };
        let (children, undeclared) = self.entries(slot);
        Some(Refs {
            kind,
            blobs: &self.blob_refs[range((slot.blobs_start, blobs_len))],
            absent: &self.absent[range(rare.absent)],
            children,
            undeclared,
            subject: rare.has_subject.then(|| {
                let after_entries = (rare.children.0 + rare.children.1 + rare.undeclared) as usize;
                self.digest_refs[after_entries]
            }),
            aliased: &self.aliased[range(rare.aliased)],
        })
    }

    /// Every manifest read that the store holds data for, by blob id, with what reading it gave;
    /// then [`Catalog::missing`] lists the others.
    pub fn iter(&self) -> impl Iterator<Item = (BlobId, State)> + '_ {
        self.check_kept();
        self.slots.iter().map(|(id, s)| (*id, s.state))
    }

    /// Manifests named by a revision, a tag or an index that the store has no data for.
    pub fn missing(&self) -> &[Digest] {
        &self.missing
    }

    fn push(&mut self, r: Read) {
        let id = r.id;
        let span = |start: usize, len: usize| (start as u32, len as u32);
        let many = r.blobs.len() >= usize::from(MANY);
        let rare = Rare {
            blobs_len: r.blobs.len() as u32,
            absent: span(self.absent.len(), r.absent.len()),
            children: span(self.digest_refs.len(), r.children.len()),
            undeclared: r.undeclared.len() as u32,
            has_subject: r.subject.is_some(),
            aliased: span(self.aliased.len(), r.aliased.len()),
        };
        let plain = !many
            && r.absent.is_empty()
            && r.children.is_empty()
            && r.undeclared.is_empty()
            && r.subject.is_none()
            && r.aliased.is_empty();
        let slot = Slot {
            state: r.state,
            blobs_start: self.blob_refs.len() as u32,
            blobs_len: if many { MANY } else { r.blobs.len() as u16 },
            rare: if plain {
                NO_RARE
            } else {
                self.rare.push(rare);
                self.rare.len() as u32 - 1
            },
        };
        self.aliased.extend(r.aliased);
        self.blob_refs.extend(r.blobs);
        self.absent.extend(r.absent);
        self.digest_refs.extend(r.children);
        self.digest_refs.extend(r.undeclared);
        self.digest_refs.extend(r.subject);
        self.not_manifests += usize::from(r.state == State::NotManifest);
        self.slots.push((id, slot));
    }

    /// Sorts for lookups, in place.
    fn index(&mut self) {
        self.slots.sort_unstable_by_key(|s| s.0);
        self.missing.sort_unstable();
    }

    fn contains(&self, blobs: &BlobTable, d: &Digest) -> bool {
        self.state(blobs, d).is_some()
    }
}

/// The manifests a round reads: those named by a revision, a tag or a typed entry (read strictly)
/// and the rest (undeclared entries, read leniently).
#[derive(Default)]
struct Round {
    strict: RoaringBitmap,
    lenient: RoaringBitmap,
}

impl Round {
    fn push(&mut self, id: BlobId, strict: bool) {
        if strict {
            self.strict.insert(id);
        } else {
            self.lenient.insert(id);
        }
    }

    fn is_empty(&self) -> bool {
        self.strict.is_empty() && self.lenient.is_empty()
    }
}

/// How many manifests a parallel batch reads before its results join the catalog: enough to keep
/// every thread busy, few enough that the parsed batch stays small next to the catalog.
const BATCH: usize = 4096;

/// Reads every manifest that the inventory's revisions and tags reach.
///
/// Once a stop is asked for it reads no more and returns what it has, which the caller must drop.
///
/// With a `cache`, a manifest it holds is not read (what it references is what it referenced when a
/// run read it, since its digest is its content's hash), and each manifest read is added to it.
pub fn read(
    storage: &dyn Storage,
    inv: &Inventory,
    progress: &Progress,
    cache: Option<&ManifestCache>,
) -> Catalog {
    let mut catalog = Catalog::default();
    // Every blob some repository links (revision or `_layers`): only those can be served as a
    // manifest, so only those children are read.
    let mut linked = RoaringBitmap::new();
    for r in &inv.repositories {
        linked.extend(r.layer_links.iter().copied());
        linked.extend(r.revisions.stored().iter().copied());
    }
    // What each alias stands for in some repository: an entry named by an alias is read as the
    // data its alias links hold (the mark resolves it per repository).
    let mut aliases: std::collections::HashMap<&AliasDigest, Vec<Digest>> =
        std::collections::HashMap::new();
    for r in &inv.repositories {
        for (a, d) in &r.aliases {
            aliases.entry(a).or_default().push(*d);
        }
    }
    // A round is the ids to read strictly and those to read leniently, as bitmaps (about 4 bits a
    // blob of the store, where a list of (id, strict) took 8 bytes a manifest); a manifest the store
    // has no data for is recorded as missing at once.
    let mut round = Round::default();
    for r in &inv.repositories {
        for &id in r.revisions.stored() {
            round.push(id, true);
        }
        catalog.missing.extend(r.revisions.unstored());
        for d in r.tags.iter().filter_map(|t| t.current.as_ref()) {
            match inv.blobs.id(d) {
                Some(id) => round.push(id, true),
                None => catalog.missing.push(*d),
            }
        }
    }
    // Undeclared entries read leniently whose data was no manifest: what the problem would be, should a
    // typed entry name the same digest.
    let mut not_manifests: Vec<(BlobId, Problem)> = Vec::new();
    progress.phase(
        &format!(
            "reading manifests ({}, {})",
            crate::model::text::count(inv.blobs.len() as u64, "blob", "blobs"),
            crate::model::text::count(inv.repositories.len() as u64, "repository", "repositories")
        ),
        Count::ManifestsRead,
        Some(0),
    );
    while !round.is_empty() {
        // A digest named both ways is read strictly.
        round.lenient -= &round.strict;
        progress.add_total(round.strict.len() + round.lenient.len());
        let first_new = catalog.slots.len();
        let all = &round.strict | &round.lenient;
        let mut ids = all.iter();
        loop {
            let batch: Vec<(BlobId, bool)> = (ids.by_ref().take(BATCH))
                .map(|id| (id, round.strict.contains(id)))
                .collect();
            if batch.is_empty() {
                break;
            }
            if progress.stop_requested().is_some() {
                return catalog;
            }
            let results = read_batch(storage, inv, &batch, cache, progress);
            if let Some(c) = cache {
                c.release();
            }
            for mut r in results {
                let problems = std::mem::take(&mut r.problems);
                if r.state == State::NotManifest {
                    not_manifests.extend(problems.into_iter().map(|p| (r.id, p)));
                } else {
                    catalog.problems.extend(problems);
                }
                catalog.push(r);
            }
        }
        // Children not read yet form the next round.
        drop(all);
        round = Round::default();
        let mut children: Vec<(Digest, bool)> = catalog.slots[first_new..]
            .iter()
            .flat_map(|(_, s)| {
                let (typed, undeclared) = catalog.entries(s);
                let typed = typed.iter().map(|d| (*d, true));
                typed.chain(undeclared.iter().map(|d| (*d, false)))
            })
            .collect();
        for (_, s) in &catalog.slots[first_new..] {
            let aliased = catalog.rare(s).aliased;
            let range = aliased.0 as usize..(aliased.0 + aliased.1) as usize;
            for a in &catalog.aliased[range] {
                if let Aliased::Child(a, typed) = a {
                    let named = aliases.get(a).into_iter().flatten();
                    children.extend(named.map(|d| (*d, *typed)));
                }
            }
        }
        catalog.index();
        for (c, strict) in children {
            let Some(id) = inv.blobs.id(&c) else {
                // Only a typed child can be a missing manifest; an undeclared one is a missing blob.
                if strict && !catalog.contains(&inv.blobs, &c) {
                    catalog.missing.push(c);
                }
                continue;
            };
            let fits = strict || inv.blobs.size(id) <= MAX_MANIFEST_BYTES;
            if linked.contains(id) && fits && catalog.slot(id).is_none() {
                round.push(id, strict);
            }
        }
        catalog.missing.sort_unstable();
        catalog.missing.dedup();
    }
    // A typed entry naming data that an undeclared entry's read found to be no manifest: a problem
    // after all.
    let mut typed_children: Vec<BlobId> = catalog
        .slots
        .iter()
        .flat_map(|(_, s)| catalog.entries(s).0)
        .filter_map(|d| inv.blobs.id(d))
        .collect();
    typed_children.sort_unstable();
    for (id, p) in not_manifests {
        if typed_children.binary_search(&id).is_ok() {
            let i = catalog
                .slots
                .binary_search_by_key(&id, |s| s.0)
                .expect("read");
            if catalog.slots[i].1.state == State::NotManifest {
                catalog.slots[i].1.state = State::Corrupt;
                catalog.not_manifests -= 1;
            }
            catalog.problems.push(p);
        }
    }
    catalog.missing.sort_unstable();
    catalog.missing.dedup();
    catalog.problems.sort_by(|a, b| a.path.cmp(&b.path));
    // A damaged layer that many manifests share is one problem.
    catalog.problems.dedup_by(|a, b| {
        a.kind == ProblemKind::SizeMismatch && a.kind == b.kind && a.path == b.path
    });
    catalog
}

/// One manifest as read, before it joins the catalog.
struct Read {
    /// The manifest's blob id.
    id: BlobId,
    state: State,
    blobs: Vec<BlobId>,
    absent: Vec<(Digest, bool)>,
    children: Vec<Digest>,
    undeclared: Vec<Digest>,
    subject: Option<Digest>,
    aliased: Vec<Aliased>,
    /// What is wrong with it (a corrupt manifest, or descriptor sizes that disagree with data).
    problems: Vec<Problem>,
}

impl Read {
    fn without_refs(id: BlobId, state: State, problem: Option<Problem>) -> Read {
        Read {
            id,
            state,
            blobs: Vec::new(),
            absent: Vec::new(),
            children: Vec::new(),
            undeclared: Vec::new(),
            subject: None,
            aliased: Vec::new(),
            problems: problem.into_iter().collect(),
        }
    }
}

/// Every descriptor of manifest `d` whose size is not that of the blob data the store holds.
fn size_mismatches(inv: &Inventory, d: &Digest, declared: &[(Digest, i64)]) -> Vec<Problem> {
    declared
        .iter()
        .filter_map(|(b, size)| {
            let id = inv.blobs.id(b)?;
            let actual = inv.blobs.size(id);
            (u64::try_from(*size).ok() != Some(actual)).then(|| {
                Problem::at(
                    ProblemKind::SizeMismatch,
                    layout::blob_data(b),
                    format!(
                        "blob {b} holds {actual} bytes but manifest {d} says {size}: its data is \
                     truncated or rewritten (kept, since the manifest names it)"
                    ),
                )
                .digest(*b)
            })
        })
        .collect()
}

/// Reads a batch of manifests (`(id, strict)`), in the batch's order: what the cache holds from it,
/// the rest from the store all at once ([`Storage::read_each`]).
fn read_batch(
    storage: &dyn Storage,
    inv: &Inventory,
    batch: &[(BlobId, bool)],
    cache: Option<&ManifestCache>,
    progress: &Progress,
) -> Vec<Read> {
    let mut reads: Vec<Option<Read>> = batch
        .par_iter()
        .map(|&(id, strict)| {
            let r = cached(inv, id, cache)?;
            progress.add(Count::ManifestsRead, 1);
            Some(lenient(r, strict))
        })
        .collect();
    let unread: Vec<usize> = (0..batch.len()).filter(|&i| reads[i].is_none()).collect();
    let keys: Vec<String> = (unread.iter())
        .map(|&i| layout::blob_data(&inv.blobs.digest(batch[i].0)))
        .collect();
    let slots: Vec<std::sync::OnceLock<Read>> =
        unread.iter().map(|_| std::sync::OnceLock::new()).collect();
    storage.read_each(&keys, MAX_MANIFEST_BYTES, &|j, result| {
        let (id, strict) = batch[unread[j]];
        let r = lenient(from_bytes(inv, id, &keys[j], result, cache), strict);
        progress.add(Count::ManifestsRead, 1);
        let _ = slots[j].set(r);
    });
    for ((i, slot), key) in unread.into_iter().zip(slots).zip(&keys) {
        // A backend that gave no result for a key: a manifest not read, which keeps --delete off.
        reads[i] = Some(slot.into_inner().unwrap_or_else(|| {
            let id = batch[i].0;
            let d = inv.blobs.digest(id);
            let p = Problem::at(
                ProblemKind::Unreadable,
                key,
                format!("manifest {d} was not read: the store gave no result for it"),
            );
            Read::without_refs(id, State::Corrupt, Some(p.digest(d)))
        }));
    }
    reads.into_iter().flatten().collect()
}

/// A manifest read not `strict` (an undeclared index entry) whose data is no manifest is
/// [`State::NotManifest`], not corrupt, with the problem it would be kept aside.
fn lenient(mut r: Read, strict: bool) -> Read {
    let not_manifest = |p: &Problem| p.kind == ProblemKind::CorruptManifest;
    if !strict && r.state == State::Corrupt && r.problems.iter().all(not_manifest) {
        r.state = State::NotManifest;
    }
    r
}

fn corrupt(id: BlobId, d: &Digest, key: &str, why: &str) -> Read {
    let p = Problem::at(
        ProblemKind::CorruptManifest,
        key,
        format!("manifest {d}: {why}"),
    );
    Read::without_refs(id, State::Corrupt, Some(p.digest(*d)))
}

/// What the manifest cache holds of blob `id`, as a read.
fn cached(inv: &Inventory, id: BlobId, cache: Option<&ManifestCache>) -> Option<Read> {
    let d = &inv.blobs.digest(id);
    match cache?.get(d)? {
        Cached::Manifest { size, manifest } => {
            inv.blobs.declare_size(id, size);
            Some(parsed(inv, id, d, manifest))
        }
        Cached::NotManifest { size, reason } => {
            inv.blobs.declare_size(id, size);
            Some(corrupt(id, d, &layout::blob_data(d), &reason))
        }
    }
}

/// What the store gave for blob `id`'s data (`key`), checked against its digest and parsed, and
/// kept in the cache where it is what its digest names.
fn from_bytes(
    inv: &Inventory,
    id: BlobId,
    key: &str,
    result: crate::storage::ReadResult,
    cache: Option<&ManifestCache>,
) -> Read {
    let d = &inv.blobs.digest(id);
    let corrupt = |why: &str| corrupt(id, d, key, why);
    let bytes = match result {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Read::without_refs(id, State::Missing, None),
        Err(StorageError::TooLarge { .. }) => {
            let p = Problem::at(
                ProblemKind::CorruptManifest,
                key,
                format!("manifest {d} is larger than {MAX_MANIFEST_BYTES} bytes: not a manifest"),
            );
            return Read::without_refs(id, State::Corrupt, Some(p.digest(*d)));
        }
        Err(e) => {
            let p = Problem::at(
                ProblemKind::Unreadable,
                key,
                format!("manifest {d} could not be read: {e}"),
            );
            return Read::without_refs(id, State::Corrupt, Some(p.digest(*d)));
        }
    };
    let actual = Digest::of(&bytes);
    inv.blobs.declare_size(id, bytes.len() as u64);
    if actual != *d {
        let p = Problem::at(
            ProblemKind::CorruptManifest,
            key,
            format!(
                "manifest {d}: its {} bytes hash to {actual}, so the data was truncated or \
                 rewritten and what it keeps alive cannot be known",
                bytes.len()
            ),
        );
        return Read::without_refs(id, State::Corrupt, Some(p.digest(*d)));
    }
    // The data is what its digest names: what it holds can be kept for every later run.
    let size = bytes.len() as u64;
    match manifest::parse(&bytes) {
        Ok(manifest) => {
            if let Some(c) = cache {
                c.put(
                    d,
                    &Cached::Manifest {
                        size,
                        manifest: manifest.clone(),
                    },
                );
            }
            parsed(inv, id, d, manifest)
        }
        Err(e) => {
            let reason = e.to_string();
            if let Some(c) = cache {
                c.put(
                    d,
                    &Cached::NotManifest {
                        size,
                        reason: reason.clone(),
                    },
                );
            }
            corrupt(&reason)
        }
    }
}

/// A manifest's references, as blob ids where the store holds them.
fn parsed(inv: &Inventory, id: BlobId, d: &Digest, m: Manifest) -> Read {
    let mut r = Read::without_refs(id, State::Parsed(m.kind), None);
    // Where the scan measured every blob, what descriptors declare is checked against the data;
    // where it did not, it is the size of the blobs they name ([`BlobTable::declare_size`], which
    // never overwrites a measured size).
    if inv.blobs.sizes_listed() {
        r.problems = size_mismatches(inv, d, &m.declared);
    } else {
        for (b, size) in &m.declared {
            if let (Some(id), Ok(size)) = (inv.blobs.id(b), u64::try_from(*size)) {
                inv.blobs.declare_size(id, size);
            }
        }
    }
    for c in m.children {
        match c {
            Child::Manifest(c) => r.children.push(c),
            Child::Undeclared(c) => r.undeclared.push(c),
        }
    }
    r.subject = m.subject;
    r.aliased = m.aliased;
    let tagged = m
        .blobs
        .iter()
        .map(|b| (b, false))
        .chain(m.foreign.iter().map(|b| (b, true)));
    for (b, foreign) in tagged {
        match inv.blobs.id(b) {
            Some(id) => r.blobs.push(id),
            None => r.absent.push((*b, foreign)),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::ManifestKind;

    #[test]
    fn a_slot_keeps_any_number_of_blobs_and_a_forgotten_catalog_refuses_to_answer() {
        let mut catalog = Catalog::default();
        let counts = [0usize, 3, usize::from(MANY) - 1, usize::from(MANY), 70_000];
        for (id, &n) in counts.iter().enumerate() {
            let mut r =
                Read::without_refs(id as BlobId, State::Parsed(ManifestKind::OciManifest), None);
            r.blobs = (0..n as BlobId).map(|b| b * 7 + id as BlobId).collect();
            if id == 1 {
                r.children = vec![Digest::of(b"child")];
            }
            catalog.push(r);
        }
        catalog.index();
        for (id, &n) in counts.iter().enumerate() {
            let refs = catalog.refs(id as BlobId).expect("parsed");
            assert_eq!(refs.blobs.len(), n, "manifest {id}");
            assert!(
                refs.blobs
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == i as BlobId * 7 + id as BlobId)
            );
            assert_eq!(refs.children.len(), usize::from(id == 1));
        }
        assert_eq!(catalog.len(), counts.len());
        catalog.forget_references();
        assert_eq!(
            catalog.len(),
            counts.len(),
            "the count outlives the references"
        );
        let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| catalog.refs(0)));
        assert!(asked.is_err(), "references asked for after they went");
    }
}
