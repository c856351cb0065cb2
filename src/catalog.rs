//! The manifests of a store, each read once and parsed into blob ids.
//!
//! Starting from every revision and every tag target, manifests are read in parallel rounds: a round
//! reads what is not known yet, and the children of lists and indexes it finds form the next round.
//! Each manifest is read once whatever number of repositories hold it. Layers are never read.
//! References are kept as [`BlobId`]s (4 bytes each) where the store holds the blob, and as digests
//! only when it does not.

use crate::digest::Digest;
use crate::inventory::{BlobId, Inventory};
use crate::layout;
use crate::manifest::{self, MAX_MANIFEST_BYTES, ManifestKind};
use crate::problem::{Problem, ProblemKind};
use crate::storage::{Storage, StorageError};
use rayon::prelude::*;

/// A parsed manifest's references, borrowed from the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Refs<'a> {
    pub kind: ManifestKind,
    /// Config, layers and artifact blobs (foreign layers included) that the store holds.
    pub blobs: &'a [BlobId],
    /// Referenced blobs the store does not hold, with whether the reference is a foreign layer.
    pub absent: &'a [(Digest, bool)],
    /// Child manifests (of lists and indexes).
    pub children: &'a [Digest],
    pub subject: Option<Digest>,
}

/// What reading a manifest gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Parsed(ManifestKind),
    /// The store holds no data for this digest.
    Missing,
    /// The data is there but is not a manifest the collector understands.
    Corrupt,
}

/// One manifest: its state and where its references sit in the catalog's shared arrays.
#[derive(Debug, Clone, Copy)]
struct Slot {
    state: State,
    blobs: (u32, u32),
    absent: (u32, u32),
    /// Children, then the subject when `has_subject`, in `digest_refs`.
    children: (u32, u32),
    has_subject: bool,
}

/// Every manifest reachable from a revision or a tag, compactly: a sorted digest column, one small
/// slot each, and the references of all manifests in three shared arrays (a manifest with four
/// layers costs about 70 bytes, not a map entry and three allocations).
#[derive(Debug, Default)]
pub struct Catalog {
    digests: Vec<Digest>,
    slots: Vec<Slot>,
    blob_refs: Vec<BlobId>,
    digest_refs: Vec<Digest>,
    absent: Vec<(Digest, bool)>,
    pub problems: Vec<Problem>,
}

impl Catalog {
    /// How many manifests were read (parsed, missing or corrupt).
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// What reading `d` gave, when it was read.
    pub fn state(&self, d: &Digest) -> Option<State> {
        Some(self.slots[self.digests.binary_search(d).ok()?].state)
    }

    /// The parsed references of `d`, when it is a manifest the collector understands.
    pub fn refs(&self, d: &Digest) -> Option<Refs<'_>> {
        let slot = &self.slots[self.digests.binary_search(d).ok()?];
        let State::Parsed(kind) = slot.state else {
            return None;
        };
        let range = |(start, len): (u32, u32)| start as usize..(start + len) as usize;
        let children = range(slot.children);
        Some(Refs {
            kind,
            blobs: &self.blob_refs[range(slot.blobs)],
            absent: &self.absent[range(slot.absent)],
            children: &self.digest_refs[children.clone()],
            subject: slot.has_subject.then(|| self.digest_refs[children.end]),
        })
    }

    /// Every manifest read, with what reading it gave, in digest order.
    pub fn iter(&self) -> impl Iterator<Item = (&Digest, State)> {
        self.digests.iter().zip(self.slots.iter().map(|s| s.state))
    }

    fn push(&mut self, r: Read) {
        let span = |start: usize, len: usize| (start as u32, len as u32);
        let slot = Slot {
            state: r.state,
            blobs: span(self.blob_refs.len(), r.blobs.len()),
            absent: span(self.absent.len(), r.absent.len()),
            children: span(self.digest_refs.len(), r.children.len()),
            has_subject: r.subject.is_some(),
        };
        self.blob_refs.extend(r.blobs);
        self.absent.extend(r.absent);
        self.digest_refs.extend(r.children);
        self.digest_refs.extend(r.subject);
        self.digests.push(r.digest);
        self.slots.push(slot);
    }

    /// Sorts the digest column (with its slots) for lookups.
    fn index(&mut self) {
        let mut order: Vec<u32> = (0..self.digests.len() as u32).collect();
        order.sort_unstable_by_key(|&i| self.digests[i as usize]);
        self.digests = order.iter().map(|&i| self.digests[i as usize]).collect();
        self.slots = order.iter().map(|&i| self.slots[i as usize]).collect();
    }
}

/// How many manifests a parallel batch reads before its results join the catalog: enough to keep
/// every thread busy, few enough that the parsed batch stays small next to the catalog.
const BATCH: usize = 4096;

/// Reads every manifest that the inventory's revisions and tags reach.
pub fn read(storage: &dyn Storage, inv: &Inventory) -> Catalog {
    let mut round: Vec<Digest> = inv
        .repositories
        .iter()
        .flat_map(|r| {
            r.revisions
                .iter()
                .copied()
                .chain(r.tags.iter().filter_map(|t| t.current))
        })
        .collect();
    let mut catalog = Catalog::default();
    while !round.is_empty() {
        round.par_sort_unstable();
        round.dedup();
        let first_new = catalog.digests.len();
        for batch in round.chunks(BATCH) {
            let results: Vec<Read> = batch
                .par_iter()
                .map(|d| read_one(storage, inv, d))
                .collect();
            for mut r in results {
                catalog.problems.extend(r.problem.take().map(|p| *p));
                catalog.push(r);
            }
        }
        // Children not read yet form the next round.
        let mut next: Vec<Digest> = catalog.slots[first_new..]
            .iter()
            .flat_map(|s| {
                let (start, len) = s.children;
                catalog.digest_refs[start as usize..(start + len) as usize]
                    .iter()
                    .copied()
            })
            .collect();
        catalog.index();
        next.retain(|c| catalog.digests.binary_search(c).is_err());
        round = next;
    }
    catalog.problems.sort_by(|a, b| a.path.cmp(&b.path));
    catalog
}

/// One manifest as read, before it joins the catalog.
struct Read {
    digest: Digest,
    state: State,
    blobs: Vec<BlobId>,
    absent: Vec<(Digest, bool)>,
    children: Vec<Digest>,
    subject: Option<Digest>,
    problem: Option<Box<Problem>>,
}

impl Read {
    fn without_refs(digest: Digest, state: State, problem: Option<Problem>) -> Read {
        Read {
            digest,
            state,
            blobs: Vec::new(),
            absent: Vec::new(),
            children: Vec::new(),
            subject: None,
            problem: problem.map(Box::new),
        }
    }
}

fn read_one(storage: &dyn Storage, inv: &Inventory, d: &Digest) -> Read {
    if inv.blobs.id(d).is_none() {
        return Read::without_refs(*d, State::Missing, None);
    }
    let key = layout::blob_data(d);
    let bytes = match storage.read(&key, MAX_MANIFEST_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Read::without_refs(*d, State::Missing, None),
        Err(StorageError::TooLarge { .. }) => {
            let p = Problem::at(
                ProblemKind::CorruptManifest,
                key,
                format!("manifest {d} is larger than {MAX_MANIFEST_BYTES} bytes: not a manifest"),
            );
            return Read::without_refs(*d, State::Corrupt, Some(p.digest(*d)));
        }
        Err(e) => {
            let p = Problem::at(
                ProblemKind::Unreadable,
                key,
                format!("manifest {d} could not be read: {e}"),
            );
            return Read::without_refs(*d, State::Corrupt, Some(p.digest(*d)));
        }
    };
    match manifest::parse(&bytes) {
        Ok(m) => {
            let mut r = Read::without_refs(*d, State::Parsed(m.kind), None);
            r.children = m.children;
            r.subject = m.subject;
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
        Err(e) => {
            let p = Problem::at(
                ProblemKind::CorruptManifest,
                key,
                format!("manifest {d}: {e}"),
            );
            Read::without_refs(*d, State::Corrupt, Some(p.digest(*d)))
        }
    }
}
