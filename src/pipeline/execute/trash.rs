//! The trash: a way back from every sweep.
//!
//! A deleting run given `--trash WINDOW` moves what it would delete to
//! `regsweep-trash/<run id>/<original key>`, beside `docker/` where the registry never looks,
//! instead of deleting it. The run's record, `regsweep-trash/<run id>/run.json` (the command, when,
//! when it expires, `open`), is written before the first move and rewritten `complete`, with what
//! moved, at the end. The journal of what moved from where is the trash itself: each object's key
//! below its run's folder is the key it came from, so a run killed at any instant (a rename is
//! atomic; an S3 move copies, checks, then deletes) leaves every object at its place, in the trash,
//! or (S3, killed between the copy and the delete) in both, and a restore finds it all.
//!
//! Restore moves each object back, blob data first, then `_layers` links, revision links, tag index
//! entries, tags' `current` links, and uploads, so that at no instant does a restored link name
//! missing data. An object whose place was written again since is never overwritten: when the
//! bytes there are the same (a content-addressed blob pushed again, a link to the same digest) the
//! trash's copy is discarded; otherwise the object stays in the trash and is named as a conflict.
//! A run is gone from the trash once everything in it is back.
//!
//! A run expires `WINDOW` after it was made; the next deleting run (trash or not) purges the runs
//! whose window has passed, and `regsweep trash purge` purges by hand. What a purge deletes is
//! deleted by [`crate::pipeline::execute::sweep`], the only code that deletes.

use crate::model::layout::{self, BlobKey, RepoKey};
use crate::model::problem::{Problem, ProblemKind};
use crate::model::time::{rfc3339, unix_seconds};
use crate::storage::trashing::{Trashing, VERSIONS};
use crate::storage::{ObjectVersion, Storage, StorageError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Where every run's trash lives, beside `docker/`.
pub const TRASH: &str = "regsweep-trash/";
/// A run's record, in its folder.
pub(super) const RECORD: &str = "run.json";
/// Where every key the trash holds came from: the registry's keys all start here. Anything else in
/// a run's folder (a record's temporary file left by a kill) is the record's, and goes with it.
const STORE: &str = "docker/";
/// A run's states: moving things, ended, and partly put back (a restore left conflicts).
const OPEN: &str = "open";
const COMPLETE: &str = "complete";
const PARTLY_RESTORED: &str = "partly restored";

/// What a run's record says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    /// The command that made it (`gc`, `apply`, `prune-tags`).
    pub command: String,
    pub created: String,
    pub created_unix: i64,
    pub expires: String,
    pub expires_unix: i64,
    /// `open` while the run moves things, `complete` once it ended.
    pub state: String,
    /// Objects moved and their bytes, when complete.
    pub moved: u64,
    pub bytes: u64,
    /// Of those, the objects hidden behind delete markers on a versioned bucket (their versions
    /// recorded below `versions/`, no data copied), and their bytes.
    #[serde(default)]
    pub hidden: u64,
    #[serde(default)]
    pub hidden_bytes: u64,
    /// An online run's part (`gc --online`): its T0 and its heal passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineRecord>,
}

/// What an online run records of itself (see [`super::heal`]): when it began by the store's own
/// clock, the windows it ran with, and where its heal passes stand.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnlineRecord {
    /// T0: the time the store gave the run's record when it was first written (RFC 3339).
    pub t0: String,
    pub t0_unix_nanos: u64,
    pub grace_seconds: u64,
    /// At least the registry's longest request: how far back each heal pass looks past the start
    /// of the pass before it.
    pub settle_seconds: u64,
    /// The next heal pass looks at links written since this (store time): T0 minus the grace
    /// window at first, then each pass's start minus the settle time.
    pub heal_since_unix_nanos: u64,
    /// Heal passes run over this run, and what they put back.
    pub passes: u64,
    pub restored: u64,
    pub restored_bytes: u64,
}

/// Whether `rest`, a key below a run's folder, records a hidden version.
fn is_version_record(rest: &str) -> bool {
    rest.strip_prefix(VERSIONS)
        .is_some_and(|r| r.starts_with(STORE))
}

/// A run that moves what it would delete into the trash.
#[derive(Debug, Clone)]
pub struct TrashRun {
    pub record: RunRecord,
}

/// The folder of run `id`.
pub fn run_folder(id: &str) -> String {
    format!("{TRASH}{id}/")
}

impl TrashRun {
    /// Opens a run: its record is written (`open`) before anything moves.
    pub fn open(
        storage: &dyn Storage,
        command: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<TrashRun, StorageError> {
        let created = unix_seconds(now);
        let expires = created + window.as_secs() as i64;
        // Seconds and the process id: two runs of one store are one at a time (the lock).
        let id = format!(
            "{}-{}",
            rfc3339(created).replace([':', '-'], ""),
            std::process::id()
        );
        let run = TrashRun {
            record: RunRecord {
                id,
                command: command.to_owned(),
                created: rfc3339(created),
                created_unix: created,
                expires: rfc3339(expires),
                expires_unix: expires,
                state: OPEN.into(),
                moved: 0,
                bytes: 0,
                hidden: 0,
                hidden_bytes: 0,
                online: None,
            },
        };
        run.write(storage)?;
        Ok(run)
    }

    /// The store's own time of this run's record, as last written: what an online run takes for
    /// T0 and for the start of each heal pass (no host clock is compared with the store's).
    pub fn store_time(&self, storage: &dyn Storage) -> Result<SystemTime, StorageError> {
        let key = format!("{}{RECORD}", run_folder(&self.record.id));
        match storage.modified(&key)? {
            Some(t) => Ok(t),
            None => storage
                .stat(&key)?
                .and_then(|(_, t)| t)
                .ok_or_else(|| StorageError::other(&key, "the store gives no time for it")),
        }
    }

    /// Writes the record again (an online run's passes).
    pub fn save(&self, storage: &dyn Storage) -> Result<(), StorageError> {
        self.write(storage)
    }

    fn write(&self, storage: &dyn Storage) -> Result<(), StorageError> {
        let key = format!("{}{RECORD}", run_folder(&self.record.id));
        let bytes = serde_json::to_vec_pretty(&self.record).expect("a record serializes");
        storage
            .moves()
            .ok_or_else(|| crate::storage::cannot_move(&key))?
            .write_object(&key, &bytes)
    }

    /// Where `key` goes in this run's trash.
    pub fn key_for(&self, key: &str) -> String {
        format!("{}{key}", run_folder(&self.record.id))
    }

    /// Marks the run complete, with what it moved.
    pub fn finish(
        &mut self,
        storage: &dyn Storage,
        (moved, bytes): (u64, u64),
        (hidden, hidden_bytes): (u64, u64),
    ) -> Result<(), StorageError> {
        self.record.state = COMPLETE.into();
        (self.record.moved, self.record.bytes) = (moved, bytes);
        (self.record.hidden, self.record.hidden_bytes) = (hidden, hidden_bytes);
        self.write(storage)
    }
}

/// One run in the trash, as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunSummary {
    pub id: String,
    /// From its record; `None` when the record is missing or unreadable (named in `problem`).
    pub command: Option<String>,
    pub created: Option<String>,
    pub expires: Option<String>,
    pub expires_unix: Option<i64>,
    /// `open` (still moving, or killed), `complete`, or `unknown`.
    pub state: String,
    /// Whether its window has passed.
    pub expired: bool,
    /// Objects held (not counting the record) and their bytes.
    pub objects: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Its record, when it could be read.
    #[serde(skip)]
    pub record: Option<RunRecord>,
}

/// Every run in the store's trash, oldest first: one listing of [`TRASH`], and a read of each
/// run's record.
pub fn list(storage: &dyn Storage, now: SystemTime) -> Result<Vec<RunSummary>, StorageError> {
    let mut runs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let listed = storage.list(
        TRASH,
        &mut |e| {
            let Some((id, rest)) = e.key[TRASH.len()..].split_once('/') else {
                return;
            };
            let run = runs.entry(id.to_owned()).or_default();
            if rest.starts_with(STORE) {
                run.0 += 1;
                run.1 += e.size;
            } else if is_version_record(rest) {
                // Its bytes are the hidden version's, which the run's record sums.
                run.0 += 1;
            }
        },
        &mut |_| {},
    );
    match listed {
        Err(e) if !e.is_not_found() => return Err(e),
        _ => {}
    }
    let now = unix_seconds(now);
    let mut out: Vec<RunSummary> = runs
        .into_iter()
        .map(|(id, (objects, bytes))| {
            let record = storage
                .read(&format!("{}{RECORD}", run_folder(&id)), 1 << 16)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<RunRecord>(&b).map_err(|e| e.to_string()));
            match record {
                Ok(r) => RunSummary {
                    id,
                    command: Some(r.command.clone()),
                    created: Some(r.created.clone()),
                    expires: Some(r.expires.clone()),
                    expires_unix: Some(r.expires_unix),
                    state: r.state.clone(),
                    expired: r.expires_unix <= now,
                    objects,
                    bytes: bytes + r.hidden_bytes,
                    problem: None,
                    record: Some(r),
                },
                Err(why) => RunSummary {
                    id,
                    command: None,
                    created: None,
                    expires: None,
                    expires_unix: None,
                    state: "unknown".into(),
                    // A run without its record never expires by itself: purge it by name.
                    expired: false,
                    objects,
                    bytes,
                    problem: Some(format!("its record {RECORD} cannot be read: {why}")),
                    record: None,
                },
            }
        })
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// What the trash holds, as the other commands' reports give it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Held {
    pub runs: u64,
    pub objects: u64,
    pub bytes: u64,
    /// Runs whose window has passed: the next deleting run purges them.
    pub expired_runs: u64,
    /// When the next run's window ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_expiry: Option<String>,
    /// When the last run's window ends: the trash is empty after the first deleting run past it,
    /// unless runs are added (or some never expire).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_after_unix: Option<i64>,
    /// Runs without a readable record, which never expire by themselves (purge them by id).
    pub unexpiring_runs: u64,
}

impl Held {
    /// What `runs` hold; `None` when the trash is empty.
    pub fn of(runs: &[RunSummary]) -> Option<Held> {
        if runs.is_empty() {
            return None;
        }
        let pending = || {
            runs.iter()
                .filter(|r| !r.expired)
                .filter_map(|r| r.expires_unix)
        };
        Some(Held {
            runs: runs.len() as u64,
            objects: runs.iter().map(|r| r.objects).sum(),
            bytes: runs.iter().map(|r| r.bytes).sum(),
            expired_runs: runs.iter().filter(|r| r.expired).count() as u64,
            next_expiry: pending().min().map(rfc3339),
            empty_after: pending().max().map(rfc3339),
            empty_after_unix: pending().max(),
            unexpiring_runs: runs.iter().filter(|r| r.expires_unix.is_none()).count() as u64,
        })
    }
}

/// `audit`'s check of each run: its record can be read, says the run ended, and names as many
/// objects and bytes as the run's folder holds (the keys are the journal; a record that disagrees
/// means objects were taken out or put in by hand, or a restore was cut off).
pub fn check(runs: &[RunSummary]) -> Vec<Problem> {
    let mut out = Vec::new();
    for r in runs {
        let path = format!("{}{RECORD}", run_folder(&r.id));
        let Some(record) = &r.record else {
            out.push(Problem::at(
                ProblemKind::TrashRun,
                path,
                format!(
                    "trash run {}: {}; it holds {} objects ({} bytes) and never expires by \
                     itself: `regsweep trash restore` puts them back, `regsweep trash purge` \
                     with its id drops them",
                    r.id,
                    r.problem.as_deref().unwrap_or("no record"),
                    r.objects,
                    r.bytes
                ),
            ));
            continue;
        };
        if record.state == OPEN {
            out.push(Problem::at(
                ProblemKind::TrashRun,
                path,
                format!(
                    "trash run {} ({}, {}) was cut off before it ended, or is running now: it \
                     holds {} objects ({} bytes) that it moved; `regsweep trash restore` puts \
                     them back",
                    r.id, record.command, record.created, r.objects, r.bytes
                ),
            ));
        } else if (record.moved, record.bytes) != (r.objects, r.bytes) {
            out.push(Problem::at(
                ProblemKind::TrashRun,
                path,
                format!(
                    "trash run {}: its record says {} objects ({} bytes), its folder holds {} \
                     ({} bytes): objects were taken out or put in by hand",
                    r.id, record.moved, record.bytes, r.objects, r.bytes
                ),
            ));
        }
    }
    out
}

/// Every key of run `id` (its record last), or an error naming the run when it holds nothing.
pub fn keys_of(storage: &dyn Storage, id: &str) -> Result<Vec<(String, u64)>, TrashError> {
    if id.is_empty() || id.contains('/') {
        return Err(TrashError::NoSuchRun(id.to_owned()));
    }
    let folder = run_folder(id);
    let mut keys = Vec::new();
    storage
        .list(&folder, &mut |e| keys.push((e.key, e.size)), &mut |_| {})
        .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })?;
    if keys.is_empty() {
        return Err(TrashError::NoSuchRun(id.to_owned()));
    }
    let record = format!("{folder}{RECORD}");
    keys.sort_by_key(|(k, _)| *k == record);
    Ok(keys)
}

/// Why a trash command could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrashError {
    #[error("no run {0:?} in the trash (`regsweep trash list` names the runs)")]
    NoSuchRun(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The order a restore puts objects back in: data before the links that name it, tags last.
pub(super) fn restore_step(original: &str) -> u8 {
    if let BlobKey::Data(_) = layout::parse_blob_key(original) {
        return 0;
    }
    match layout::parse_repo_key(original).map(|(_, k)| k) {
        Some(RepoKey::LayerLink(_)) => 1,
        Some(RepoKey::RevisionLink(_)) => 2,
        Some(RepoKey::TagIndexEntry(..)) => 3,
        Some(RepoKey::TagCurrent(_)) => 4,
        _ => 5,
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Restored {
    pub run: String,
    /// Objects moved back to their place.
    pub restored: u64,
    pub bytes: u64,
    /// Objects whose place held the same bytes again: the trash's copy is discarded.
    pub already_there: u64,
    /// Objects whose place was written again with other bytes: left in the trash, never overwritten.
    pub conflicts: Vec<String>,
    /// Objects that could not be moved, and why.
    pub failures: Vec<String>,
    /// Whether the run is gone from the trash (everything back).
    pub run_removed: bool,
}

/// Whether the object at `place` holds what the trash's `copy` holds: the same bytes for small
/// objects (links), the same size for blob data (its key is its content's digest).
fn same_object(storage: &dyn Storage, copy: &str, place: &str, size: u64) -> bool {
    const SMALL: u64 = 64 << 10;
    if size <= SMALL {
        return match (storage.read(copy, SMALL), storage.read(place, SMALL)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
    }
    matches!(layout::parse_blob_key(place), BlobKey::Data(_))
        && matches!(storage.stat(place), Ok(Some((n, _))) if n == size)
}

/// One object of a run, as a restore sees it.
pub(super) struct Item {
    /// Its key in the trash.
    pub(super) key: String,
    /// Where it came from.
    pub(super) original: String,
    pub(super) size: u64,
    /// `key` records a version hidden behind a delete marker, not the object itself.
    pub(super) hidden: bool,
}

impl Item {
    /// The object at `key` below a run's `folder` (its size `size`), or back `key` when it is
    /// not one of the registry's objects (the run's record, a record's temporary file).
    pub(super) fn of(folder: &str, key: String, size: u64) -> Result<Item, String> {
        let rest = &key[folder.len()..];
        let (original, hidden) = match rest.strip_prefix(VERSIONS) {
            Some(original) if original.starts_with(STORE) => (original.to_owned(), true),
            _ if rest.starts_with(STORE) => (rest.to_owned(), false),
            _ => return Err(key),
        };
        Ok(Item {
            key,
            original,
            size,
            hidden,
        })
    }
}

/// How an object went back.
pub(super) enum Back {
    Moved(u64),
    Unhidden(u64),
    /// Its place holds the same again: the trash's key is not needed.
    AlreadyThere,
    /// Its place was written again with other content: left in the trash.
    Conflict,
}

/// Moves `item` back, or makes its hidden version current again; never overwrites.
pub(super) fn put_back(storage: &dyn Storage, item: &Item) -> Result<Back, StorageError> {
    if !item.hidden {
        let moves = storage
            .moves()
            .ok_or_else(|| crate::storage::cannot_move(&item.key))?;
        return match moves.move_object(&item.key, &item.original) {
            Ok(size) => Ok(Back::Moved(size)),
            Err(StorageError::Exists { .. })
                if same_object(storage, &item.key, &item.original, item.size) =>
            {
                Ok(Back::AlreadyThere)
            }
            Err(StorageError::Exists { .. }) => Ok(Back::Conflict),
            Err(e) => Err(e),
        };
    }
    let version = read_version(storage, &item.key)?;
    let versions = crate::storage::versions_of(storage, &item.original)?;
    match versions.unhide_version(&item.original, &version) {
        Ok(()) => Ok(Back::Unhidden(version.size)),
        Err(StorageError::Exists { .. }) => {
            let now = versions
                .kept_version(&item.original)
                .or_else(|e| if e.is_not_found() { Ok(None) } else { Err(e) })?;
            let same = now.is_some_and(|v| {
                v.size == version.size && v.etag.is_some() && v.etag == version.etag
            });
            Ok(if same {
                Back::AlreadyThere
            } else {
                Back::Conflict
            })
        }
        Err(e) => Err(e),
    }
}

/// The version a run recorded at `key` (below its [`VERSIONS`] folder).
pub fn read_version(storage: &dyn Storage, key: &str) -> Result<ObjectVersion, StorageError> {
    crate::storage::trashing::read_version_record(storage, key)
}

/// Puts every object of run `id` back where it was (see the module's words), then deletes the trash
/// copies whose place holds them already, and the run's record once the run is empty
/// ([`crate::pipeline::execute::trash_purge::restore_trash_run`] removes the folders left empty).
pub fn restore(storage: &dyn Storage, id: &str) -> Result<Restored, TrashError> {
    let keys = keys_of(storage, id)?;
    let folder = run_folder(id);
    let record = format!("{folder}{RECORD}");
    let mut out = Restored {
        run: id.to_owned(),
        ..Restored::default()
    };
    let mut steps: BTreeMap<u8, Vec<Item>> = BTreeMap::new();
    let mut records = Vec::new();
    for (key, size) in keys {
        match Item::of(&folder, key, size) {
            Ok(item) => steps
                .entry(restore_step(&item.original))
                .or_default()
                .push(item),
            Err(key) => records.push(key),
        }
    }
    for items in steps.values() {
        let results: Vec<Result<Back, StorageError>> = items
            .par_iter()
            .map(|item| put_back(storage, item))
            .collect();
        // Trash keys no longer needed: copies whose place holds them already, and the records of
        // versions that are current again.
        let (mut duplicates, mut spent) = (Vec::new(), Vec::new());
        for (item, r) in items.iter().zip(results) {
            let Item { key, original, .. } = item;
            match r {
                Ok(Back::Moved(size)) | Ok(Back::Unhidden(size)) => {
                    out.restored += 1;
                    out.bytes += size;
                    if item.hidden {
                        spent.push(key.clone());
                    }
                }
                Ok(Back::AlreadyThere) => duplicates.push(key.clone()),
                Ok(Back::Conflict) => out.conflicts.push(format!(
                    "{original}: written again since the run, with other content; kept in the \
                     trash at {key}"
                )),
                Err(e) => out.failures.push(e.to_string()),
            }
        }
        for (r, key) in storage.delete(&duplicates).into_iter().zip(&duplicates) {
            match r {
                Ok(()) => out.already_there += 1,
                Err(e) => out.failures.push(format!("{key}: {e}")),
            }
        }
        for (r, key) in storage.delete(&spent).into_iter().zip(&spent) {
            if let Err(e) = r {
                out.failures.push(format!("{key}: {e}"));
            }
        }
    }
    if out.conflicts.is_empty() && out.failures.is_empty() {
        // The record last: a restore cut off before it leaves a run that still lists.
        records.sort_by_key(|k| *k == record);
        let gone = storage.delete(&records);
        out.run_removed = gone.iter().all(Result::is_ok);
    }
    if !out.run_removed {
        note_what_stays(storage, id)?;
    }
    Ok(out)
}

/// A run a restore could not empty: its record is rewritten to name what stays, so that `audit`'s
/// check holds (a run without a readable record keeps none).
fn note_what_stays(storage: &dyn Storage, id: &str) -> Result<(), TrashError> {
    let folder = run_folder(id);
    let key = format!("{folder}{RECORD}");
    let Some(mut record) = storage
        .read(&key, 1 << 16)
        .ok()
        .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
    else {
        return Ok(());
    };
    recount(storage, &mut record)?;
    record.state = PARTLY_RESTORED.into();
    TrashRun { record }.write(storage)?;
    Ok(())
}

/// Counts run `run`'s folder again and writes its record (after heal passes during its sweep).
pub fn recount_record(storage: &dyn Storage, run: &mut TrashRun) -> Result<(), StorageError> {
    recount(storage, &mut run.record).map_err(|e| match e {
        TrashError::Storage(e) => e,
        other => StorageError::other(&run.record.id, other),
    })?;
    run.write(storage)
}

/// Sets the record's counts to what its run's folder holds now (after a restore or a heal).
pub(super) fn recount(storage: &dyn Storage, record: &mut RunRecord) -> Result<(), TrashError> {
    let id = record.id.clone();
    let folder = run_folder(&id);
    let (mut moved, mut bytes, mut hidden, mut hidden_bytes) = (0, 0, 0, 0);
    for (k, size) in keys_of(storage, &id)? {
        let rest = &k[folder.len()..];
        if rest.starts_with(STORE) {
            (moved, bytes) = (moved + 1, bytes + size);
        } else if is_version_record(rest) {
            let size = read_version(storage, &k)?.size;
            (moved, bytes) = (moved + 1, bytes + size);
            (hidden, hidden_bytes) = (hidden + 1, hidden_bytes + size);
        }
    }
    (record.moved, record.bytes) = (moved, bytes);
    (record.hidden, record.hidden_bytes) = (hidden, hidden_bytes);
    Ok(())
}

/// A deleting run's trash: how long what it moves is kept, and which command it is.
#[derive(Debug, Clone, Copy)]
pub struct TrashOptions {
    pub window: Duration,
    pub command: &'static str,
}

/// Runs `sweep` on `storage`, or with `trash`, on the store whose deletes move into a new run's
/// trash (its record written before the first move, completed after the last, with what moved).
/// Returns what `sweep` returned, and the run's record.
pub fn sweeping<T>(
    storage: &dyn Storage,
    trash: Option<TrashOptions>,
    sweep: impl FnOnce(&dyn Storage) -> T,
) -> Result<(T, Option<RunRecord>), StorageError> {
    let Some(options) = trash else {
        return Ok((sweep(storage), None));
    };
    let mut run = TrashRun::open(storage, options.command, options.window, SystemTime::now())?;
    let out = sweeping_into(storage, &mut run, false, sweep)?;
    Ok((out, Some(run.record)))
}

/// Runs `sweep` on the store whose deletes move into the opened run `run`, then completes its
/// record with what moved. With `keep_folders` (an online run), folders the moves empty stay.
pub fn sweeping_into<T>(
    storage: &dyn Storage,
    run: &mut TrashRun,
    keep_folders: bool,
    sweep: impl FnOnce(&dyn Storage) -> T,
) -> Result<T, StorageError> {
    let mut trashing = Trashing::new(storage, run_folder(&run.record.id));
    if keep_folders {
        trashing = trashing.keeping_folders();
    }
    let out = sweep(&trashing);
    run.finish(storage, trashing.moved(), trashing.hidden())?;
    Ok(out)
}

/// Deletes the record of a run that moved nothing (an online run opens its run before it knows
/// whether anything will go).
pub fn drop_empty(storage: &dyn Storage, run: &TrashRun) -> Result<(), StorageError> {
    let key = format!("{}{RECORD}", run_folder(&run.record.id));
    match storage.delete(std::slice::from_ref(&key)).pop() {
        Some(Err(e)) if !e.is_not_found() => Err(e),
        _ => storage
            .remove_folder_if_empty(&run_folder(&run.record.id))
            .map(|_| ()),
    }
}

/// Which runs a purge takes.
#[derive(Debug, Clone)]
pub enum Which {
    Run(String),
    Expired,
    All,
}

/// The runs `which` names, as listed; an unknown run id is an error.
pub fn select(
    storage: &dyn Storage,
    which: &Which,
    now: SystemTime,
) -> Result<Vec<RunSummary>, TrashError> {
    let runs = list(storage, now)?;
    Ok(match which {
        Which::All => runs,
        Which::Expired => runs.into_iter().filter(|r| r.expired).collect(),
        Which::Run(id) => {
            let run: Vec<RunSummary> = runs.into_iter().filter(|r| &r.id == id).collect();
            if run.is_empty() {
                return Err(TrashError::NoSuchRun(id.clone()));
            }
            run
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::Digest;
    use crate::storage::mem::MemStorage;

    #[test]
    fn a_restore_puts_back_what_a_run_moved_and_never_overwrites_what_was_written_since() {
        let store = MemStorage::new();
        let d = Digest([7; 32]);
        let data = layout::blob_data(&d);
        let link = layout::layer_link("r", &d);
        let tag = layout::tag_current("r", "v1");
        store.put(&data, vec![1; 100_000]);
        store.put(&link, d.to_string());
        store.put(&tag, d.to_string());
        let before = store.keys();
        let mut run =
            TrashRun::open(&store, "gc", Duration::from_secs(3600), SystemTime::now()).unwrap();
        for k in [&tag, &link, &data] {
            crate::storage::Moves::move_object(&store, k, &run.key_for(k)).unwrap();
        }
        let listed = list(&store, SystemTime::now()).unwrap();
        assert_eq!(check(&listed).len(), 1, "an open run is named");
        let bytes: u64 = listed[0].bytes;
        run.finish(&store, (3, bytes), (0, 0)).unwrap();
        let listed = list(&store, SystemTime::now()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].objects, listed[0].state.as_str()),
            (3, "complete")
        );
        assert_eq!(
            check(&listed),
            vec![],
            "a complete run that holds what it moved"
        );
        let held = Held::of(&listed).unwrap();
        assert_eq!((held.runs, held.objects, held.bytes), (1, 3, bytes));
        assert_eq!(
            held.empty_after.as_deref(),
            Some(run.record.expires.as_str())
        );
        assert_eq!(Held::of(&[]), None);
        assert!(!listed[0].expired);
        assert!(list(&store, SystemTime::now() + Duration::from_secs(7200)).unwrap()[0].expired);

        // The tag was pushed again meanwhile, at another digest; the blob again with its bytes.
        store.put(&tag, Digest([8; 32]).to_string());
        store.put(&data, vec![1; 100_000]);
        let r = restore(&store, &run.record.id).unwrap();
        assert_eq!(r.restored, 1, "the link: {r:?}");
        assert_eq!(r.already_there, 1, "the blob: {r:?}");
        assert_eq!(r.conflicts.len(), 1, "the tag: {r:?}");
        assert!(!r.run_removed);
        assert_eq!(
            store.read(&tag, 100).unwrap(),
            Digest([8; 32]).to_string().as_bytes()
        );
        // The record names what stays, so the check still holds.
        let listed = list(&store, SystemTime::now()).unwrap();
        assert_eq!(
            (listed[0].objects, listed[0].state.as_str()),
            (1, "partly restored")
        );
        assert_eq!(check(&listed), vec![]);
        // An object taken out by hand is named.
        let kept = run.key_for(&tag);
        let tag_bytes = store.read(&kept, 100).unwrap();
        store.delete(std::slice::from_ref(&kept));
        let problems = check(&list(&store, SystemTime::now()).unwrap());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("taken out"), "{problems:?}");
        store.put(&kept, tag_bytes);

        // Once the tag is as it was, a second restore empties the run.
        store.delete(std::slice::from_ref(&tag));
        let r = restore(&store, &run.record.id).unwrap();
        assert_eq!((r.restored, r.run_removed), (1, true), "{r:?}");
        assert_eq!(store.keys(), before);
        assert!(matches!(
            restore(&store, &run.record.id),
            Err(TrashError::NoSuchRun(_))
        ));
    }
}
