//! The heal: what makes a sweep safe while the registry takes pushes (`gc --online`).
//!
//! The registry writes a link only after it checked that what the link needs exists: a `_layers`
//! link after the upload's or the mount's check, a revision link after the manifest's references
//! were verified, a tag after its revision. No lock spans the check and the write, so a sweep can
//! move an object between the two, and a blob-descriptor cache can vouch for an object that is
//! gone. But every reference the registry acknowledged is a link written after its check. A heal
//! pass lists the links written since a moment (T0 minus the grace window at first), walks what
//! each needs as the mark walks it (a tag: its revision; a revision: the manifest's data, its
//! children's revisions, its config's and layers' `_layers` links and data; a `_layers` link: the
//! data), and puts back from one trash run whatever of that the run holds: data first, then
//! `_layers` links, revisions, tag index entries and tags, as a restore orders them. Nothing is
//! overwritten (a place written again keeps what is there).
//!
//! A link whose content cannot be read (the registry's filesystem driver before 3.1 writes in
//! place, so a link can read empty) is not followed in this pass; it stays new, and the next pass
//! walks it.

use crate::model::digest::{AliasDigest, Digest};
use crate::model::layout::{self, RepoKey};
use crate::model::manifest::{self, Aliased, Child, MAX_MANIFEST_BYTES};
use crate::pipeline::execute::trash::{Back, Item, TrashRun, put_back, restore_step, run_folder};
use crate::storage::{Storage, StorageError};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why an object was put back: the kind of new link that needed it.
pub const BY_TAG: &str = "tag";
pub const BY_REVISION: &str = "revision link";
pub const BY_LAYER_LINK: &str = "layer link";

/// What heal passes put back.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Healed {
    /// Passes run.
    pub passes: u64,
    /// Links written since the pass's moment (what was walked).
    pub new_links: u64,
    /// Objects put back, and their bytes.
    pub objects: u64,
    pub bytes: u64,
    /// Objects needed whose place held them again (a push wrote the same bytes): the trash's
    /// copy is dropped.
    pub already_there: u64,
    /// Objects put back, by the kind of new link that needed them.
    pub by_reason: BTreeMap<String, u64>,
    /// Objects needed whose place was written again with other content (left in the trash).
    pub conflicts: Vec<String>,
    /// What could not be read or put back, and why.
    pub failures: Vec<String>,
}

impl Healed {
    pub fn add(&mut self, other: Healed) {
        self.passes += other.passes;
        self.new_links += other.new_links;
        self.objects += other.objects;
        self.bytes += other.bytes;
        self.already_there += other.already_there;
        for (k, v) in other.by_reason {
            *self.by_reason.entry(k).or_default() += v;
        }
        self.conflicts.extend(other.conflicts);
        self.failures.extend(other.failures);
    }
}

/// `t` in nanoseconds since the Unix epoch (0 before it).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64)
}

/// What a run's trash holds, by the key each object came from.
fn held(storage: &dyn Storage, id: &str) -> Result<HashMap<String, Item>, StorageError> {
    let folder = run_folder(id);
    let mut out = HashMap::new();
    storage
        .list(
            &folder,
            &mut |e| {
                if let Ok(item) = Item::of(&folder, e.key, e.size) {
                    out.insert(item.original.clone(), item);
                }
            },
            &mut |_| {},
        )
        .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })?;
    Ok(out)
}

/// A link written since the pass's moment, and what it is.
enum NewLink {
    Tag { repo: String, tag: String },
    Revision { repo: String, digest: Digest },
    Layer { digest: Digest },
    Alias { repo: String, alias: AliasDigest },
}

/// The links under `repositories/` written after `since`. Where the listing gives no time (a
/// filesystem's listing reads links without a stat), the store is asked; a link whose time
/// cannot be learned counts as new.
fn new_links(storage: &dyn Storage, since: SystemTime) -> Result<Vec<NewLink>, StorageError> {
    let mut listed: Vec<(String, Option<SystemTime>)> = Vec::new();
    storage
        .list(
            layout::REPOSITORIES,
            &mut |e| {
                if e.modified.is_some_and(|t| t < since) || !e.key.ends_with("/link") {
                    return;
                }
                listed.push((e.key, e.modified));
            },
            &mut |_| {},
        )
        .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })?;
    let fresh: Vec<String> = listed
        .into_par_iter()
        .filter(|(key, t)| {
            t.is_some()
                || match storage.modified(key) {
                    Ok(Some(t)) => t >= since,
                    Err(e) if e.is_not_found() => false,
                    _ => true,
                }
        })
        .map(|(key, _)| key)
        .collect();
    Ok(fresh
        .iter()
        .filter_map(|key| {
            let (repo, kind) = layout::parse_repo_key(key)?;
            let repo = repo.to_owned();
            Some(match kind {
                RepoKey::TagCurrent(tag) => NewLink::Tag {
                    repo,
                    tag: tag.to_owned(),
                },
                RepoKey::TagIndexEntry(_, digest) | RepoKey::RevisionLink(digest) => {
                    NewLink::Revision { repo, digest }
                }
                RepoKey::LayerLink(digest) => NewLink::Layer { digest },
                RepoKey::AliasLink(alias) => NewLink::Alias { repo, alias },
                _ => return None,
            })
        })
        .collect())
}

/// One pass's walk: what it needs from the trash, and why.
struct Walk<'a> {
    storage: &'a dyn Storage,
    held: &'a HashMap<String, Item>,
    /// Needed keys the trash holds, with the reason of the first link that needed each.
    needed: HashMap<String, &'static str>,
    /// (repository, manifest) already walked.
    walked: HashSet<(String, Digest)>,
    /// Objects put back at once (a hidden manifest version, to read it).
    early: Vec<(String, &'static str)>,
    failures: Vec<String>,
}

impl Walk<'_> {
    fn need(&mut self, key: String, why: &'static str) {
        if self.held.contains_key(&key) {
            self.needed.entry(key).or_insert(why);
        }
    }

    /// The content of `key`: at its place, else this run's trash copy (a hidden version is put
    /// back first). `None` when neither is there or it cannot be read.
    fn read(&mut self, key: &str, limit: u64, why: &'static str) -> Option<Vec<u8>> {
        match self.storage.read(key, limit) {
            Ok(b) => return Some(b),
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                self.failures.push(e.to_string());
                return None;
            }
        }
        let item = self.held.get(key)?;
        let from = if item.hidden {
            match put_back(self.storage, item) {
                Ok(Back::Moved(_) | Back::Unhidden(_) | Back::AlreadyThere) => {
                    self.early.push((key.to_owned(), why));
                    key
                }
                Ok(Back::Conflict) => return None,
                Err(e) => {
                    self.failures.push(e.to_string());
                    return None;
                }
            }
        } else {
            item.key.as_str()
        };
        match self.storage.read(from, limit) {
            Ok(b) => Some(b),
            Err(e) => {
                self.failures.push(e.to_string());
                None
            }
        }
    }

    /// The digest a link holds.
    fn link(&mut self, key: &str, why: &'static str) -> Option<Digest> {
        let bytes = self.read(key, 1024, why)?;
        Digest::parse(std::str::from_utf8(&bytes).ok()?.trim()).ok()
    }

    /// A blob of `repo`: its `_layers` link and its data.
    fn blob(&mut self, repo: &str, d: &Digest, why: &'static str) {
        self.need(layout::layer_link(repo, d), why);
        self.need(layout::blob_data(d), why);
    }

    /// What manifest `m` of `repo` needs, as the mark walks it.
    fn manifest(&mut self, repo: &str, m: &Digest, why: &'static str) {
        if !self.walked.insert((repo.to_owned(), *m)) {
            return;
        }
        let data = layout::blob_data(m);
        self.need(data.clone(), why);
        self.need(layout::revision_link(repo, m), why);
        let Some(bytes) = self.read(&data, MAX_MANIFEST_BYTES, why) else {
            return;
        };
        // What cannot be parsed was never verified by the registry as a manifest: nothing more.
        let Ok(parsed) = manifest::parse(&bytes) else {
            return;
        };
        for d in parsed.blobs.iter().chain(&parsed.foreign) {
            self.blob(repo, d, why);
        }
        for child in &parsed.children {
            match child {
                Child::Manifest(c) => self.manifest(repo, c, why),
                Child::Undeclared(c) => {
                    let revision = layout::revision_link(repo, c);
                    let is_manifest = self.held.contains_key(&revision)
                        || matches!(self.storage.stat(&revision), Ok(Some(_)));
                    if is_manifest {
                        self.manifest(repo, c, why);
                    } else {
                        self.blob(repo, c, why);
                    }
                }
            }
        }
        for a in &parsed.aliased {
            if let Aliased::Blob(alias) | Aliased::Foreign(alias) | Aliased::Child(alias, _) = a {
                self.alias(repo, alias, why);
            }
        }
    }

    /// An alias link of `repo` and the data it names.
    fn alias(&mut self, repo: &str, alias: &AliasDigest, why: &'static str) {
        let link = layout::alias_link(repo, alias);
        self.need(link.clone(), why);
        if let Some(d) = self.link(&link, why) {
            self.need(layout::blob_data(&d), why);
        }
    }
}

/// One heal pass over trash run `run`: the links written since `since` (store time), walked, and
/// what they need put back from the run's trash. A run whose trash holds nothing lists nothing.
pub fn pass(
    storage: &dyn Storage,
    run: &TrashRun,
    since: SystemTime,
) -> Result<Healed, StorageError> {
    let held = held(storage, &run.record.id)?;
    let mut out = Healed {
        passes: 1,
        ..Healed::default()
    };
    if held.is_empty() {
        return Ok(out);
    }
    let links = new_links(storage, since)?;
    out.new_links = links.len() as u64;
    let mut walk = Walk {
        storage,
        held: &held,
        needed: HashMap::new(),
        walked: HashSet::new(),
        early: Vec::new(),
        failures: Vec::new(),
    };
    for link in &links {
        match link {
            NewLink::Tag { repo, tag } => {
                let current = layout::tag_current(repo, tag);
                if let Some(m) = walk.link(&current, BY_TAG) {
                    walk.need(layout::tag_index_entry(repo, tag, &m), BY_TAG);
                    walk.manifest(repo, &m, BY_TAG);
                }
            }
            NewLink::Revision { repo, digest } => walk.manifest(repo, digest, BY_REVISION),
            NewLink::Layer { digest } => walk.need(layout::blob_data(digest), BY_LAYER_LINK),
            NewLink::Alias { repo, alias } => walk.alias(repo, alias, BY_LAYER_LINK),
        }
    }
    let Walk {
        needed,
        early,
        failures,
        ..
    } = walk;
    out.failures = failures;
    for (key, why) in early {
        let size = held.get(&key).map_or(0, |i| i.size);
        out.objects += 1;
        out.bytes += size;
        *out.by_reason.entry(why.to_owned()).or_default() += 1;
    }
    let mut steps: BTreeMap<u8, Vec<(&Item, &'static str)>> = BTreeMap::new();
    for (key, why) in &needed {
        let item = &held[key];
        steps
            .entry(restore_step(&item.original))
            .or_default()
            .push((item, why));
    }
    for items in steps.values() {
        let results: Vec<_> = items
            .par_iter()
            .map(|(item, _)| put_back(storage, item))
            .collect();
        let mut duplicates = Vec::new();
        for ((item, why), r) in items.iter().zip(results) {
            match r {
                Ok(Back::Moved(size) | Back::Unhidden(size)) => {
                    out.objects += 1;
                    out.bytes += size;
                    *out.by_reason.entry((*why).to_owned()).or_default() += 1;
                    if item.hidden {
                        duplicates.push(item.key.clone());
                    }
                }
                Ok(Back::AlreadyThere) => {
                    out.already_there += 1;
                    duplicates.push(item.key.clone());
                }
                Ok(Back::Conflict) => out.conflicts.push(format!(
                    "{}: needed by a {why} written since the run, but written again with other \
                     content; kept in the trash at {}",
                    item.original, item.key
                )),
                Err(e) => out.failures.push(format!("{}: {e}", item.original)),
            }
        }
        for (r, key) in storage.delete(&duplicates).into_iter().zip(&duplicates) {
            if let Err(e) = r {
                out.failures.push(format!("{key}: {e}"));
            }
        }
    }
    Ok(out)
}

/// A heal pass over an online run, recorded in its record: it looks at links written since the
/// record's `heal_since` (T0 minus the grace window at first), and the next pass will look from
/// this pass's start (store time, the record's rewrite) minus the settle time.
pub fn recorded_pass(storage: &dyn Storage, run: &mut TrashRun) -> Result<Healed, StorageError> {
    let Some(online) = run.record.online.clone() else {
        return Ok(Healed::default());
    };
    // The record written at the pass's start gives the store's time of it.
    run.save(storage)?;
    let started = run.store_time(storage)?;
    let since = UNIX_EPOCH + Duration::from_nanos(online.heal_since_unix_nanos);
    let healed = pass(storage, run, since)?;
    let settle = Duration::from_secs(online.settle_seconds);
    let next = unix_nanos(started.checked_sub(settle).unwrap_or(UNIX_EPOCH));
    // Objects put back, and trash copies dropped because their place holds them again.
    if healed.objects > 0 || healed.already_there > 0 {
        crate::pipeline::execute::trash::recount_record(storage, run)?;
    }
    if let Some(o) = run.record.online.as_mut() {
        o.heal_since_unix_nanos = o.heal_since_unix_nanos.max(next);
        o.passes += 1;
        o.restored += healed.objects;
        o.restored_bytes += healed.bytes;
    }
    run.save(storage)?;
    Ok(healed)
}

/// Heals every online run the trash still holds (a pass each, recorded in its record): what the
/// gate does before it purges, and `regsweep trash heal`. Returns what was put back, and the runs
/// whose pass failed (never purged in this invocation).
pub fn heal_all(storage: &dyn Storage) -> Result<(Healed, Vec<String>), StorageError> {
    let runs = super::trash::list(storage, SystemTime::now())?;
    let mut total = Healed::default();
    let mut failed = Vec::new();
    for summary in runs {
        let Some(record) = summary.record.filter(|r| r.online.is_some()) else {
            continue;
        };
        let mut run = TrashRun { record };
        match recorded_pass(storage, &mut run) {
            Ok(healed) => total.add(healed),
            Err(e) => {
                crate::model::warning::emit(format!(
                    "warning: cannot heal trash run {}: {e}; it is not purged",
                    run.record.id
                ));
                failed.push(run.record.id.clone());
            }
        }
    }
    Ok((total, failed))
}
