//! The walk: what a store holds, read from listings plus the few small links that must be opened.
//!
//! Two parallel walks over known shards, each with local state merged once at the end:
//! - the blob tree, over 16 shards `blobs/sha256/0` … `f` (each 16 of its 256 folders). A blob's digest is its folder name
//!   and its size and age come from the listing: no blob is opened. The result is the [`BlobTable`], a
//!   table of digests sorted so that a digest's index is its compact [`BlobId`];
//! - the repositories, one shard per top-level folder of `repositories/`. Keys are classified by
//!   [`crate::layout`]. Tag `current` links and revision links are then read in parallel: the tag's to
//!   learn its target, the revision's to check that it names its own folder (the registry resolves a
//!   revision through that content, so a bad one must be reported, never guessed around).
//!
//! Anything odd becomes a [`Problem`] and the walk goes on.

use crate::digest::Digest;
use crate::layout::{self, BlobKey, RepoKey};
use crate::problem::{Problem, ProblemKind};
use crate::storage::{Entry, ListingNote, Storage, StorageError};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

/// Index of a blob in the [`BlobTable`].
pub type BlobId = u32;

/// Seconds since the Unix epoch (what the collector keeps of a modification time).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Every blob in the store: digests sorted, with size and modification time, as parallel columns.
#[derive(Debug, Default)]
pub struct BlobTable {
    digests: Vec<Digest>,
    sizes: Vec<u64>,
    modified: Vec<i64>,
}

impl BlobTable {
    /// Builds the table from unsorted rows.
    pub fn from_rows(mut rows: Vec<(Digest, u64, i64)>) -> BlobTable {
        rows.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rows.dedup_by(|a, b| a.0 == b.0);
        let mut t = BlobTable {
            digests: Vec::with_capacity(rows.len()),
            sizes: Vec::with_capacity(rows.len()),
            modified: Vec::with_capacity(rows.len()),
        };
        for (d, s, m) in rows {
            t.digests.push(d);
            t.sizes.push(s);
            t.modified.push(m);
        }
        t
    }

    /// The id of a digest, when the store holds its data.
    pub fn id(&self, d: &Digest) -> Option<BlobId> {
        self.digests.binary_search(d).ok().map(|i| i as BlobId)
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn digest(&self, id: BlobId) -> Digest {
        self.digests[id as usize]
    }

    pub fn size(&self, id: BlobId) -> u64 {
        self.sizes[id as usize]
    }

    /// Modification time of the blob's data, in Unix seconds.
    pub fn modified(&self, id: BlobId) -> i64 {
        self.modified[id as usize]
    }

    /// Sum of all blobs' sizes.
    pub fn total_bytes(&self) -> u64 {
        self.sizes.iter().sum()
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
    /// Every digest under `index/`: what the tag has pointed at.
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
    /// `_layers` links, sorted.
    pub layer_links: Vec<Digest>,
    pub uploads: Vec<Upload>,
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
}

/// Reads a store's inventory.
///
/// A listing that fails as a whole (no credentials, no bucket, an unreadable shard folder) ends the
/// scan with that error: an inventory missing a shard would make its blobs look unreferenced or its
/// repositories' blobs look orphaned, so no plan may be made from it. Problems with single entries are
/// collected and the scan goes on.
pub fn scan(storage: &dyn Storage) -> Result<Inventory, StorageError> {
    let (blobs, mut problems) = scan_blobs(storage)?;
    let (repositories, repo_problems, vanished) = scan_repositories(storage)?;
    problems.extend(repo_problems);
    problems.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Ok(Inventory {
        blobs,
        repositories,
        problems,
        vanished,
    })
}

fn note_problem(n: ListingNote) -> Problem {
    Problem::at(ProblemKind::Unreadable, n.key, n.message)
}

fn scan_blobs(storage: &dyn Storage) -> Result<(BlobTable, Vec<Problem>), StorageError> {
    type Shard = Result<(Vec<(Digest, u64, i64)>, Vec<Problem>), StorageError>;
    let shards: Vec<Shard> = (0..layout::BLOB_SHARDS)
        .into_par_iter()
        .map(|byte| {
            let (mut rows, mut problems) = (Vec::new(), Vec::new());
            let result = storage.list(
                &layout::blob_shard(byte),
                &mut |e: Entry| {
                    if let BlobKey::Data(d) = layout::parse_blob_key(&e.key) {
                        rows.push((d, e.size, unix_seconds(e.modified)));
                    }
                },
                &mut |n| problems.push(note_problem(n)),
            );
            result.map(|()| (rows, problems))
        })
        .collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for shard in shards {
        let (r, p) = shard?;
        rows.extend(r);
        problems.extend(p);
    }
    Ok((BlobTable::from_rows(rows), problems))
}

/// A link whose content must be read: a revision link or a tag's current link.
struct LinkToRead {
    repo: usize,
    key: String,
    /// For a revision: the digest its folder names.
    revision: Option<Digest>,
    /// For a tag: its index in the repository's tag list, and its name.
    tag: Option<(usize, String)>,
}

#[derive(Default)]
struct RepoBuilder {
    revisions: Vec<Digest>,
    tags: BTreeMap<String, Tag>,
    layer_links: Vec<Digest>,
    uploads: BTreeMap<String, Upload>,
    /// Keys of revision links and of tags' current links, to be read.
    revision_keys: Vec<(Digest, String, Option<String>)>,
    current_keys: Vec<(String, String)>,
}

fn classify(builders: &mut HashMap<String, RepoBuilder>, e: Entry) {
    let Some((name, kind)) = layout::parse_repo_key(&e.key) else {
        return;
    };
    let b = builders.entry(name.to_owned()).or_default();
    match kind {
        RepoKey::LayerLink(d) => b.layer_links.push(d),
        RepoKey::RevisionLink(d) => {
            b.revisions.push(d);
            b.revision_keys.push((d, e.key.clone(), e.etag.clone()));
        }
        RepoKey::TagCurrent(tag) => {
            let t = b.tags.entry(tag.to_owned()).or_default();
            t.moved = unix_seconds(e.modified);
            b.current_keys.push((tag.to_owned(), e.key.clone()));
        }
        RepoKey::TagIndexEntry(tag, d) => b.tags.entry(tag.to_owned()).or_default().index.push(d),
        RepoKey::Upload { id, .. } => {
            let u = b.uploads.entry(id.to_owned()).or_default();
            u.size += e.size;
            u.modified = u.modified.max(unix_seconds(e.modified));
        }
        RepoKey::Other => {}
    }
}

type RepoScan = (Vec<Repository>, Vec<Problem>, u64);

fn scan_repositories(storage: &dyn Storage) -> Result<RepoScan, StorageError> {
    let mut problems = Vec::new();
    let tops = storage.list_dirs(layout::REPOSITORIES)?;
    type Shard = Result<(HashMap<String, RepoBuilder>, Vec<Problem>), StorageError>;
    let shards: Vec<Shard> = tops
        .par_iter()
        .map(|top| {
            let (mut builders, mut problems) = (HashMap::new(), Vec::new());
            let prefix = format!("{}{top}/", layout::REPOSITORIES);
            let result = storage.list(&prefix, &mut |e| classify(&mut builders, e), &mut |n| {
                problems.push(note_problem(n))
            });
            result.map(|()| (builders, problems))
        })
        .collect();

    let mut builders: Vec<(String, RepoBuilder)> = Vec::new();
    for shard in shards {
        let (b, p) = shard?;
        builders.extend(b);
        problems.extend(p);
    }
    builders.sort_by(|a, b| a.0.cmp(&b.0));

    let mut repos = Vec::with_capacity(builders.len());
    let mut to_read = Vec::new();
    for (i, (name, mut b)) in builders.into_iter().enumerate() {
        b.revisions.sort_unstable();
        b.revisions.dedup();
        b.layer_links.sort_unstable();
        b.layer_links.dedup();
        let tag_names: Vec<String> = b.tags.keys().cloned().collect();
        for (d, key, etag) in b.revision_keys {
            if etag.is_some_and(|etag| etag_matches_link(&etag, &d)) {
                continue;
            }
            to_read.push(LinkToRead {
                repo: i,
                key,
                revision: Some(d),
                tag: None,
            });
        }
        for (tag, key) in b.current_keys {
            let t = tag_names
                .binary_search(&tag)
                .expect("tag was recorded with its key");
            to_read.push(LinkToRead {
                repo: i,
                key,
                revision: None,
                tag: Some((t, tag)),
            });
        }
        let tags = b
            .tags
            .into_iter()
            .map(|(name, mut t)| {
                t.name = name;
                t.index.sort_unstable();
                t
            })
            .collect();
        let uploads = b
            .uploads
            .into_iter()
            .map(|(id, mut u)| {
                u.id = id;
                u
            })
            .collect();
        repos.push(Repository {
            name,
            revisions: b.revisions,
            tags,
            layer_links: b.layer_links,
            uploads,
        });
    }

    let read: Vec<(usize, Option<usize>, LinkOutcome)> = to_read
        .par_iter()
        .map(|l| {
            (
                l.repo,
                l.tag.as_ref().map(|t| t.0),
                read_link(storage, l, &repos[l.repo].name),
            )
        })
        .collect();
    let mut vanished = 0;
    for (repo, tag, result) in read {
        match (result, tag) {
            (LinkOutcome::Names(d), Some(t)) => repos[repo].tags[t].current = Some(d),
            (LinkOutcome::Names(_), None) => {}
            (LinkOutcome::Vanished, _) => vanished += 1,
            (LinkOutcome::Bad(p), _) => problems.push(p),
        }
    }
    // A tag whose current link vanished or is bad stays listed with no target (`current: None`); a bad
    // one is also a problem, which keeps --delete from running.
    Ok((repos, problems, vanished))
}

/// What reading a link gave.
enum LinkOutcome {
    /// The link names this digest (for a revision link: its own folder's).
    Names(Digest),
    /// It was listed and is gone now.
    Vanished,
    Bad(Problem),
}

/// The ETag of a single-part object is the MD5 of its content; a link whose ETag is the MD5 of
/// `sha256:<hex>` therefore holds exactly that, without being read.
fn etag_matches_link(etag: &str, d: &Digest) -> bool {
    use md5::Digest as _;
    let sum = md5::Md5::digest(d.to_string().as_bytes());
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    etag.trim_matches('"') == hex
}

fn read_link(storage: &dyn Storage, l: &LinkToRead, repo: &str) -> LinkOutcome {
    let bytes = match storage.read(&l.key, 256) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return LinkOutcome::Vanished,
        Err(StorageError::TooLarge { .. }) => {
            return LinkOutcome::Bad(
                Problem::at(
                    ProblemKind::BadLink,
                    &l.key,
                    "link file is too large to hold a digest",
                )
                .repo(repo),
            );
        }
        Err(e) => {
            return LinkOutcome::Bad(
                Problem::at(ProblemKind::Unreadable, &l.key, e.to_string()).repo(repo),
            );
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut problem = match (Digest::parse(&text), l.revision) {
        (Ok(d), Some(folder)) if d == folder => return LinkOutcome::Names(d),
        (Ok(d), None) => return LinkOutcome::Names(d),
        (Ok(d), Some(folder)) => Problem::at(
            ProblemKind::BadLink,
            &l.key,
            format!("revision link names {d}, not its folder's digest {folder}"),
        ),
        (Err(e), _) => Problem::at(ProblemKind::BadLink, &l.key, format!("link content is {e}")),
    }
    .repo(repo);
    if let Some(folder) = l.revision {
        problem = problem.digest(folder);
    }
    if let Some((_, tag)) = &l.tag {
        problem = problem.tag(tag);
    }
    LinkOutcome::Bad(problem)
}
