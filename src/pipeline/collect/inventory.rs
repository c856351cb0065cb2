//! What the walk learned, as values: the [`Inventory`] of a store (its [`BlobTable`] and its
//! repositories, with their tags, revisions, `_layers` links and uploads) and how much a scan
//! learns ([`Detail`]). [`super::walk`] fills it.

use crate::model::digest::{AliasDigest, Digest};
use crate::model::problem::Problem;
use crate::pipeline::collect::blob_table::{BlobId, BlobTable};
use crate::storage::Lean;
use roaring::RoaringBitmap;

/// A tag of a repository.
#[derive(Debug, Clone, Default)]
pub struct Tag {
    /// Inline up to 24 bytes (most tags): no allocation of its own.
    pub name: compact_str::CompactString,
    /// What `current/link` names; `None` when it is missing or bad (a problem says which).
    pub current: Option<Digest>,
    /// Modification time of `current/link`: when the tag last moved (Unix seconds).
    pub moved: i64,
    /// Every digest under `index/`: what the tag has pointed at. Empty where the scan did not walk
    /// tags' index folders ([`Detail::Targets`]). A thin vector (8 bytes, none allocated while
    /// empty): a tag is 80 bytes, not 96.
    pub index: thin_vec::ThinVec<Digest>,
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
    /// Manifest revisions that have a `link`.
    pub revisions: Revisions,
    /// Tags, sorted by name.
    pub tags: Vec<Tag>,
    /// `_layers` links to blobs the store holds, sorted.
    pub layer_links: Vec<BlobId>,
    /// `_layers` links to blobs the store has no data for, sorted.
    pub dangling_layer_links: Vec<Digest>,
    /// When the newest `_layers` link was written (Unix seconds), where the listing told every link's
    /// time (S3); `None` when it did not (a filesystem walk knows links by their folders' names) or
    /// there are none. See [`crate::pipeline::collect::walk::layer_link_times`].
    pub layer_links_newest: Option<i64>,
    /// When the newest revision link was written, where the listing told every one's time (as
    /// `layer_links_newest`): link-aware grace asks the store only where it did not.
    pub revision_links_newest: Option<i64>,
    pub uploads: Vec<Upload>,
    /// Alias links (`_layers/sha512/<hex>/link`): each alias with the sha256 digest it holds,
    /// sorted by alias. The registry resolves a reference by the alias through it.
    pub aliases: Vec<(AliasDigest, Digest)>,
}

/// A repository's manifest revisions (digests with a revision link), in digest order: as ids of the
/// blob table where the store holds the manifest's data (4 bytes a revision, not 32: 7 MB at a
/// million blobs), as digests where it does not. Read through the table that gave the ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revisions {
    stored: Vec<BlobId>,
    unstored: Vec<Digest>,
}

impl Revisions {
    /// The revisions `digests` names (any order, repeats allowed), by `blobs`' ids.
    pub fn new(blobs: &BlobTable, digests: impl IntoIterator<Item = Digest>) -> Revisions {
        let (mut stored, mut unstored) = (Vec::new(), Vec::new());
        for d in digests {
            match blobs.id(&d) {
                Some(id) => stored.push(id),
                None => unstored.push(d),
            }
        }
        Revisions::from_parts(stored, unstored)
    }

    /// From revisions already split by whether `blobs` holds them (any order, repeats allowed).
    pub fn from_parts(stored: Vec<BlobId>, unstored: Vec<Digest>) -> Revisions {
        Revisions {
            stored: sorted_set(stored),
            unstored: sorted_set(unstored),
        }
    }

    pub fn len(&self) -> usize {
        self.stored.len() + self.unstored.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The revisions whose manifest the store holds, as ids (sorted, so in digest order).
    pub fn stored(&self) -> &[BlobId] {
        &self.stored
    }

    /// The revisions whose manifest the store has no data for (sorted).
    pub fn unstored(&self) -> &[Digest] {
        &self.unstored
    }

    pub fn contains(&self, blobs: &BlobTable, d: &Digest) -> bool {
        match blobs.id(d) {
            Some(id) => self.stored.binary_search(&id).is_ok(),
            None => self.unstored.binary_search(d).is_ok(),
        }
    }

    /// Every revision's digest, sorted.
    pub fn digests<'a>(&'a self, blobs: &'a BlobTable) -> impl Iterator<Item = Digest> + 'a {
        let mut stored = self.stored.iter().map(|&id| blobs.digest(id)).peekable();
        let mut unstored = self.unstored.iter().copied().peekable();
        std::iter::from_fn(move || match (stored.peek(), unstored.peek()) {
            (Some(a), Some(b)) if b < a => unstored.next(),
            (Some(_), _) => stored.next(),
            (None, _) => unstored.next(),
        })
    }

    /// Keeps the revisions whose digest `keep` accepts.
    pub fn retain(&mut self, blobs: &BlobTable, mut keep: impl FnMut(&Digest) -> bool) {
        self.stored.retain(|&id| keep(&blobs.digest(id)));
        self.unstored.retain(|d| keep(d));
    }
}

/// `v` sorted, each value once, and holding no more room than that takes: how a finished
/// repository keeps what its listing gave in any order.
pub(crate) fn sorted_set<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v.shrink_to_fit();
    v
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
    /// The sha256 digest the alias link for `a` holds, where the repository has one.
    pub fn resolve(&self, a: &AliasDigest) -> Option<Digest> {
        let i = self.aliases.binary_search_by(|(x, _)| x.cmp(a)).ok()?;
        Some(self.aliases[i].1)
    }

    pub fn holds_manifest(&self, blobs: &BlobTable, d: &Digest) -> bool {
        self.revisions.contains(blobs, d)
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
    pub(crate) fn lean(self) -> Lean {
        Lean {
            unstated_blobs: self != Detail::Sizes,
            no_tag_index: self == Detail::Targets,
        }
    }
}
