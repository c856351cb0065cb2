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
use std::collections::{HashMap, HashSet};

/// A parsed manifest, its references resolved against the blob table.
#[derive(Debug, Clone)]
pub struct Refs {
    pub kind: ManifestKind,
    /// Config, layers and artifact blobs (foreign layers included) that the store holds.
    pub blobs: Vec<BlobId>,
    /// Referenced blobs the store does not hold, with whether the reference is a foreign layer.
    pub absent: Vec<(Digest, bool)>,
    /// Child manifests (of lists and indexes).
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
}

/// What reading a manifest gave.
#[derive(Debug, Clone)]
pub enum Entry {
    Parsed(Refs),
    /// The store holds no data for this digest.
    Missing,
    /// The data is there but is not a manifest the collector understands.
    Corrupt,
}

/// Every manifest reachable from a revision or a tag.
#[derive(Debug, Default)]
pub struct Catalog {
    pub manifests: HashMap<Digest, Entry>,
    pub problems: Vec<Problem>,
}

impl Catalog {
    /// The parsed references of `d`, when it is a manifest the collector understands.
    pub fn refs(&self, d: &Digest) -> Option<&Refs> {
        match self.manifests.get(d) {
            Some(Entry::Parsed(r)) => Some(r),
            _ => None,
        }
    }
}

/// Reads every manifest that the inventory's revisions and tags reach.
pub fn read(storage: &dyn Storage, inv: &Inventory) -> Catalog {
    let mut wanted: HashSet<Digest> = HashSet::new();
    for r in &inv.repositories {
        wanted.extend(r.revisions.iter().copied());
        wanted.extend(r.tags.iter().filter_map(|t| t.current));
    }
    let mut catalog = Catalog::default();
    let mut round: Vec<Digest> = wanted.into_iter().collect();
    while !round.is_empty() {
        round.sort_unstable();
        let results: Vec<(Digest, Entry, Option<Problem>)> = round
            .par_iter()
            .map(|d| read_one(storage, inv, d))
            .collect();
        let mut next = HashSet::new();
        for (d, entry, problem) in results {
            if let Entry::Parsed(refs) = &entry {
                next.extend(refs.children.iter().copied());
            }
            catalog.problems.extend(problem);
            catalog.manifests.insert(d, entry);
        }
        next.retain(|c| !catalog.manifests.contains_key(c));
        round = next.into_iter().collect();
    }
    catalog.problems.sort_by(|a, b| a.path.cmp(&b.path));
    catalog
}

fn read_one(
    storage: &dyn Storage,
    inv: &Inventory,
    d: &Digest,
) -> (Digest, Entry, Option<Problem>) {
    if inv.blobs.id(d).is_none() {
        return (*d, Entry::Missing, None);
    }
    let key = layout::blob_data(d);
    let bytes = match storage.read(&key, MAX_MANIFEST_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return (*d, Entry::Missing, None),
        Err(StorageError::TooLarge { .. }) => {
            let p = Problem::at(
                ProblemKind::CorruptManifest,
                key,
                format!("manifest {d} is larger than {MAX_MANIFEST_BYTES} bytes: not a manifest"),
            );
            return (*d, Entry::Corrupt, Some(p.digest(*d)));
        }
        Err(e) => {
            let p = Problem::at(
                ProblemKind::Unreadable,
                key,
                format!("manifest {d} could not be read: {e}"),
            );
            return (*d, Entry::Corrupt, Some(p.digest(*d)));
        }
    };
    match manifest::parse(&bytes) {
        Ok(m) => {
            let mut refs = Refs {
                kind: m.kind,
                blobs: Vec::with_capacity(m.blobs.len() + m.foreign.len()),
                absent: Vec::new(),
                children: m.children,
                subject: m.subject,
            };
            let tagged = m
                .blobs
                .iter()
                .map(|b| (b, false))
                .chain(m.foreign.iter().map(|b| (b, true)));
            for (b, foreign) in tagged {
                match inv.blobs.id(b) {
                    Some(id) => refs.blobs.push(id),
                    None => refs.absent.push((*b, foreign)),
                }
            }
            (*d, Entry::Parsed(refs), None)
        }
        Err(e) => {
            let p = Problem::at(
                ProblemKind::CorruptManifest,
                key,
                format!("manifest {d}: {e}"),
            );
            (*d, Entry::Corrupt, Some(p.digest(*d)))
        }
    }
}
