//! Sweep: executes a `gc` [`Plan`] (tag removal for `prune-tags` is [`super::tags`], the trash's
//! deletes [`super::trash_purge`]).
//!
//! Order, so that a run cut off at any instant never leaves a link to missing data:
//! 1. tag index entries of untagged manifests;
//! 2. their revision links (only for a manifest whose index entries all went);
//! 3. `_layers` links of swept blobs;
//! 4. blob data (only for a blob whose links all went, and that is not the data of a revision whose
//!    link could not be deleted);
//! 5. abandoned uploads: every file of the upload's folder, then the empty folder. Nothing links to
//!    an upload, so its place in the order does not matter; last keeps the blob sweep first;
//! 6. incomplete S3 multipart uploads: aborted;
//! 7. repositories left empty: their own folders, then their folder when nothing (no nested
//!    repository) is left in it, then parent folders left empty. Nothing links to a folder, and a
//!    repository any of whose deletes failed is left alone.
//!
//! A failure is recorded with its key and the sweep goes on with what stays safe; the next run plans
//! whatever is left. Each step deletes in batches of the keys one delete call takes
//! ([`Storage::max_delete_keys`]), batches in parallel.
//!
//! After each batch of links or blobs is gone, [`AfterDelete`] hears of it (the registry's
//! blob-descriptor cache is evicted there, see [`crate::pipeline::execute::eviction`]): after, so that a read in between
//! cannot put a key back for something still there. When it answers that the sweep must stop (the
//! cache went away), no further batch is started: what was not attempted stays, as after a crash.

use crate::model::digest::{AliasDigest, Digest};
use crate::model::layout;
use crate::model::progress::{Count, Progress};
use crate::pipeline::plan::{Plan, PlanItem};
use crate::storage::{Storage, StorageError};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// A key that could not be deleted (or a folder that could not be removed), and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub key: String,
    #[serde(serialize_with = "as_text")]
    pub error: FailureReason,
}

/// Why a key or folder stayed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FailureReason {
    /// The store refused or failed the operation.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A repository's own folder holds files the plan did not list.
    #[error("still holds files the plan did not list; the repository stays in the catalog")]
    NotEmpty,
    /// An upload's folder holds something the listing could not vouch for.
    #[error("upload left in place: {0}")]
    UploadLeftInPlace(String),
}

fn as_text<S: serde::Serializer>(why: &FailureReason, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(why)
}

impl Failure {
    pub(crate) fn storage(key: impl Into<String>, e: StorageError) -> Failure {
        Failure {
            key: key.into(),
            error: FailureReason::Storage(e),
        }
    }
}

/// What a sweep deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deleted {
    pub manifests: u64,
    pub tag_index_entries: u64,
    pub layer_links: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub uploads: u64,
    pub upload_bytes: u64,
    pub multipart_uploads: u64,
    pub multipart_bytes: u64,
    /// Repositories left empty whose folders were removed.
    pub repositories: u64,
    /// Keys not attempted because the sweep stopped (see [`AfterDelete`], or a stop asked for by a
    /// signal); the next run plans them.
    pub not_attempted: u64,
    /// The signal that stopped the sweep early (`SIGTERM`, `SIGINT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    pub failures: Vec<Failure>,
    /// With `--trash`: the run that holds what was "deleted" (moved, and restorable until it
    /// expires).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash: Option<crate::pipeline::execute::trash::RunRecord>,
    /// Incomplete multipart uploads a trashing run left (they cannot be moved).
    #[serde(skip_serializing_if = "is_zero")]
    pub multipart_kept: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Told of what a sweep deleted, batch by batch, as soon as it is gone.
pub trait AfterDelete: Sync {
    /// Links deleted: manifest revision links and `_layers` links, as (repository, digest). False
    /// stops the sweep.
    fn links_deleted(&self, links: &[(&str, &Digest)]) -> bool;
    /// Blob data deleted. False stops the sweep.
    fn blobs_deleted(&self, blobs: &[&Digest]) -> bool;
}

/// Nobody to tell.
pub struct NoEviction;

impl AfterDelete for NoEviction {
    fn links_deleted(&self, _: &[(&str, &Digest)]) -> bool {
        true
    }
    fn blobs_deleted(&self, _: &[&Digest]) -> bool {
        true
    }
}

/// Deletes `keys` in parallel batches, recording each failure; returns the indices of those that failed.
pub(crate) fn delete_all(
    storage: &dyn Storage,
    keys: &[String],
    failures: &mut Vec<Failure>,
) -> HashSet<usize> {
    let unwatched = Progress::new();
    let stop = Stop::new(&unwatched);
    delete_batches(storage, keys, failures, &stop, &|_| true).0
}

/// Whether a sweep must start no new batch: something it told answered so, or a stop was asked for.
struct Stop<'a> {
    told: AtomicBool,
    progress: &'a Progress,
}

impl<'a> Stop<'a> {
    fn new(progress: &'a Progress) -> Stop<'a> {
        Stop {
            told: AtomicBool::new(false),
            progress,
        }
    }

    fn now(&self) -> bool {
        self.told.load(Ordering::SeqCst) || self.progress.stop_requested().is_some()
    }
}

/// Deletes `keys` in parallel batches of [`Storage::max_delete_keys`] keys, recording each failure, and calls `after` with
/// the indices each batch deleted; once `after` answers false (or a stop is asked for) no batch
/// starts. Returns the indices not deleted (failed or not attempted) and how many were not attempted.
fn delete_batches(
    storage: &dyn Storage,
    keys: &[String],
    failures: &mut Vec<Failure>,
    stop: &Stop,
    after: &(dyn Fn(&[usize]) -> bool + Sync),
) -> (HashSet<usize>, HashSet<usize>) {
    let batch = storage.max_delete_keys().max(1);
    let results: Vec<(usize, Option<Failure>)> = keys
        .par_chunks(batch)
        .enumerate()
        .flat_map_iter(|(b, chunk)| {
            let base = b * batch;
            if stop.now() {
                return (base..base + chunk.len()).map(|i| (i, None)).collect();
            }
            let mut done = Vec::with_capacity(chunk.len());
            let mut failed = Vec::new();
            for (i, r) in storage.delete(chunk).into_iter().enumerate() {
                match r {
                    Ok(()) => done.push(base + i),
                    Err(e) => {
                        failed.push((base + i, Some(Failure::storage(e.key().to_owned(), e))))
                    }
                }
            }
            stop.progress.add(Count::Deleted, done.len() as u64);
            if !done.is_empty() && !after(&done) {
                stop.told.store(true, Ordering::SeqCst);
            }
            failed
        })
        .collect();
    let mut failed = HashSet::new();
    let mut skipped = HashSet::new();
    for (i, f) in results {
        failed.insert(i);
        match f {
            Some(f) => failures.push(f),
            None => {
                skipped.insert(i);
            }
        }
    }
    (failed, skipped)
}

/// Executes the plan, telling no one.
pub fn sweep(storage: &dyn Storage, plan: &Plan) -> Deleted {
    sweep_telling(storage, plan, &NoEviction, &Progress::new())
}

/// Executes the plan, telling `after` of each batch of links and blobs gone, and counting into
/// `progress`; once a stop is asked for there, no new batch starts (what was not attempted is
/// counted in [`Deleted::not_attempted`], and [`Deleted::stopped_by`] names the signal).
pub fn sweep_telling(
    storage: &dyn Storage,
    plan: &Plan,
    after: &dyn AfterDelete,
    progress: &Progress,
) -> Deleted {
    let mut out = Deleted::default();
    let stop = Stop::new(progress);
    let deletes = plan
        .items
        .iter()
        .map(|i| match i {
            PlanItem::Manifest { tags, .. } => 1 + tags.len() as u64,
            _ => 1,
        })
        .sum::<u64>();
    progress.phase(
        &format!(
            "sweeping {} items",
            crate::model::text::thousands(plan.items.len() as u64)
        ),
        Count::Deleted,
        Some(deletes),
    );
    sweep_steps(storage, plan, after, &stop, &mut out);
    if out.not_attempted > 0 {
        out.stopped_by = progress
            .stop_requested()
            .map(crate::model::progress::signal_name);
    }
    out
}

/// The steps of the sweep, in order, into `out`; a stop leaves the rest counted as not attempted.
fn sweep_steps(
    storage: &dyn Storage,
    plan: &Plan,
    after: &dyn AfterDelete,
    stop: &Stop,
    out: &mut Deleted,
) {
    // 1. Tag index entries, remembering which manifest each belongs to.
    let manifests: Vec<(&str, &Digest, &[String])> = plan
        .items
        .iter()
        .filter_map(|i| match i {
            PlanItem::Manifest { repo, digest, tags } => {
                Some((repo.as_str(), digest, tags.as_slice()))
            }
            _ => None,
        })
        .collect();
    let mut owners = Vec::new();
    let mut keys = Vec::new();
    for (m, (repo, d, tags)) in manifests.iter().enumerate() {
        for tag in *tags {
            owners.push(m);
            keys.push(layout::tag_index_entry(repo, tag, d));
        }
    }
    let (failed, skipped) = delete_batches(storage, &keys, &mut out.failures, stop, &|_| true);
    out.tag_index_entries = (keys.len() - failed.len()) as u64;
    out.not_attempted += skipped.len() as u64;
    let blocked: HashSet<usize> = failed.iter().map(|i| owners[*i]).collect();
    // A manifest held back only because a stop cut its index entries short: its revision link is
    // not attempted either.
    let failed_owners: HashSet<usize> = failed.difference(&skipped).map(|i| owners[*i]).collect();
    out.not_attempted += blocked.difference(&failed_owners).count() as u64;

    // 2. Revision links.
    let ready: Vec<usize> = (0..manifests.len())
        .filter(|m| !blocked.contains(m))
        .collect();
    let keys: Vec<String> = ready
        .iter()
        .map(|m| layout::revision_link(manifests[*m].0, manifests[*m].1))
        .collect();
    let tell = |done: &[usize]| {
        let links: Vec<(&str, &Digest)> = done
            .iter()
            .map(|i| (manifests[ready[*i]].0, manifests[ready[*i]].1))
            .collect();
        after.links_deleted(&links)
    };
    let (failed, skipped) = delete_batches(storage, &keys, &mut out.failures, stop, &tell);
    out.manifests = (keys.len() - failed.len()) as u64;
    out.not_attempted += skipped.len() as u64;
    // Data of a manifest whose revision link is still there (or was never attempted) must stay.
    let mut keep_data: HashSet<Digest> = blocked.iter().map(|m| *manifests[*m].1).collect();
    keep_data.extend(failed.iter().map(|i| *manifests[ready[*i]].1));

    // 3. Layer links, and alias links (by the sha256 digest they hold).
    let aliases: Vec<(&str, &AliasDigest, &Digest)> = plan.alias_links().collect();
    let links: Vec<(&str, &Digest)> = (plan.layer_links())
        .chain(aliases.iter().map(|(repo, _, d)| (*repo, *d)))
        .collect();
    let keys: Vec<String> = (plan.layer_links())
        .map(|(repo, d)| layout::layer_link(repo, d))
        .chain(
            aliases
                .iter()
                .map(|(repo, a, _)| layout::alias_link(repo, a)),
        )
        .collect();
    let tell = |done: &[usize]| {
        let gone: Vec<(&str, &Digest)> = done.iter().map(|i| links[*i]).collect();
        after.links_deleted(&gone)
    };
    let (failed, skipped) = delete_batches(storage, &keys, &mut out.failures, stop, &tell);
    out.layer_links = (keys.len() - failed.len()) as u64;
    out.not_attempted += skipped.len() as u64;
    keep_data.extend(failed.iter().map(|i| *links[*i].1));

    // 4. Blob data.
    let blobs: Vec<(&Digest, u64)> = plan
        .blobs()
        .filter(|(d, _)| !keep_data.contains(d))
        .collect();
    let keys: Vec<String> = blobs.iter().map(|(d, _)| layout::blob_data(d)).collect();
    let tell = |done: &[usize]| {
        let gone: Vec<&Digest> = done.iter().map(|i| blobs[*i].0).collect();
        stop.progress
            .add(Count::BytesFreed, done.iter().map(|i| blobs[*i].1).sum());
        after.blobs_deleted(&gone)
    };
    let (failed, skipped) = delete_batches(storage, &keys, &mut out.failures, stop, &tell);
    out.not_attempted += skipped.len() as u64;
    for (i, (_, size)) in blobs.iter().enumerate() {
        if !failed.contains(&i) {
            out.blobs += 1;
            out.bytes += size;
        }
    }
    if stop.now() {
        out.not_attempted += plan
            .items
            .iter()
            .filter(|i| {
                matches!(
                    i,
                    PlanItem::Upload { .. }
                        | PlanItem::Multipart { .. }
                        | PlanItem::Repository { .. }
                )
            })
            .count() as u64;
        return;
    }

    // 5. Uploads, one folder at a time (each holds a few files).
    for (repo, id, size) in plan.uploads() {
        if stop.now() {
            out.not_attempted += 1;
            continue;
        }
        if sweep_upload(storage, &layout::upload_folder(repo, id), &mut out.failures) {
            out.uploads += 1;
            out.upload_bytes += size;
            stop.progress.add(Count::Deleted, 1);
            stop.progress.add(Count::BytesFreed, size);
        }
    }

    // 6. Multipart uploads.
    for (key, upload_id, size) in plan.multipart() {
        if stop.now() {
            out.not_attempted += 1;
            continue;
        }
        stop.progress.add(Count::Deleted, 1);
        let upload = crate::storage::MultipartUpload {
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            initiated: None,
            size,
        };
        let aborted = match storage.multipart() {
            Some(m) => m.abort_multipart(&upload),
            // A store that holds no multipart uploads has none to abort: the plan's came from
            // another store, which `apply` refuses before it gets here.
            None => Err(crate::storage::StorageError::Other {
                key: upload.key.clone(),
                message: "this store holds no multipart uploads".into(),
            }),
        };
        match aborted {
            Ok(()) => {
                out.multipart_uploads += 1;
                out.multipart_bytes += size;
            }
            Err(e) => out.failures.push(Failure::storage(
                format!("{key} (multipart upload {upload_id})"),
                e,
            )),
        }
    }

    // 7. Repositories left empty, unless one of their own deletes failed.
    let failed_repos: HashSet<&str> = out
        .failures
        .iter()
        .filter_map(|f| layout::parse_repo_key(&f.key).map(|(repo, _)| repo))
        .collect();
    let mut removed = 0;
    let mut failures = Vec::new();
    for repo in plan.repositories() {
        if stop.now() {
            out.not_attempted += 1;
            continue;
        }
        stop.progress.add(Count::Deleted, 1);
        if failed_repos.contains(repo) {
            continue;
        }
        match remove_repository(storage, repo) {
            Ok(()) => removed += 1,
            Err(f) => failures.push(f),
        }
    }
    out.repositories = removed;
    out.failures.extend(failures);
}

/// Removes a repository's own folders, which its deletes left empty, then its folder and the
/// parents that this leaves empty; a folder that still holds something (a nested repository)
/// stays, and so do its parents.
fn remove_repository(storage: &dyn Storage, repo: &str) -> Result<(), Failure> {
    let folder = layout::repository_folder(repo);
    for own in layout::REPOSITORY_OWN {
        let own = format!("{folder}{own}");
        if !storage
            .remove_empty_folders(&own)
            .map_err(|e| Failure::storage(own.clone(), e))?
        {
            return Err(Failure {
                key: own,
                error: FailureReason::NotEmpty,
            });
        }
    }
    let mut folder = folder;
    while folder.len() > layout::REPOSITORIES.len() {
        match storage.remove_folder_if_empty(&folder) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(Failure::storage(folder, e)),
        }
        let parent = folder[..folder.len() - 1].rfind('/').map_or(0, |i| i + 1);
        folder.truncate(parent);
    }
    Ok(())
}

/// Deletes every object below an upload's folder, then the folder. An entry the listing could not
/// vouch for (a symbolic link, an unreadable folder) leaves the whole upload in place.
fn sweep_upload(storage: &dyn Storage, folder: &str, failures: &mut Vec<Failure>) -> bool {
    let mut keys = Vec::new();
    let mut notes = Vec::new();
    let listed = storage.list(folder, &mut |e| keys.push(e.key), &mut |n| notes.push(n));
    if let Err(e) = listed {
        failures.push(Failure::storage(folder, e));
        return false;
    }
    if let Some(n) = notes.into_iter().next() {
        failures.push(Failure {
            key: n.key,
            error: FailureReason::UploadLeftInPlace(n.message),
        });
        return false;
    }
    let before = failures.len();
    delete_all(storage, &keys, failures);
    if failures.len() > before {
        return false;
    }
    if let Err(e) = storage.remove_empty_folders(folder) {
        failures.push(Failure::storage(folder, e));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::{MemStorage, Op};

    fn d(n: u8) -> Digest {
        Digest([n; 32])
    }

    /// Three unreferenced blobs of repository `r`, each with its `_layers` link, planned for sweeping.
    fn three_swept_blobs(store: &MemStorage) -> Plan {
        let mut plan = Plan::default();
        for n in 1..=3 {
            store.put(&layout::blob_data(&d(n)), vec![n; 10]);
            store.put(&layout::layer_link("r", &d(n)), d(n).to_string());
            plan.items.push(PlanItem::LayerLink {
                repo: "r".into(),
                digest: d(n),
            });
            plan.items.push(PlanItem::Blob {
                digest: d(n),
                size: 10,
            });
        }
        plan
    }

    #[test]
    fn a_link_that_could_not_be_deleted_keeps_its_blob_and_the_rest_is_swept() {
        let store = MemStorage::new().with_delete_batch(1);
        let plan = three_swept_blobs(&store);
        // The second delete call (one layer link: calls are one key each) fails.
        store.fail_call(Op::Delete, 2);
        let out = sweep(&store, &plan);
        assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
        let failed = &out.failures[0];
        assert!(
            matches!(failed.error, FailureReason::Storage(_)),
            "{failed:?}"
        );
        let (_, kind) = layout::parse_repo_key(&failed.key).expect("a repository key failed");
        let kept = match kind {
            layout::RepoKey::LayerLink(d) => d,
            other => panic!("not a layer link: {other:?}"),
        };
        assert_eq!((out.layer_links, out.blobs, out.bytes), (2, 2, 20));
        // What is left: exactly the failed link and the data it names.
        let left = store.keys();
        assert_eq!(
            left,
            vec![layout::blob_data(&kept), layout::layer_link("r", &kept)]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        // Six keys, one call each, and the failed one is not tried again.
        assert_eq!(store.calls(Op::Delete), 5);
    }

    #[test]
    fn deletes_go_in_batches_of_what_the_store_takes_a_call() {
        for (batch, calls) in [(1, 6), (2, 4), (1000, 2)] {
            let store = MemStorage::new().with_delete_batch(batch);
            let plan = three_swept_blobs(&store);
            let out = sweep(&store, &plan);
            assert!(out.failures.is_empty(), "{:?}", out.failures);
            assert!(store.keys().is_empty(), "{:?}", store.keys());
            // Links, then blobs: each step's keys in batches of `batch`.
            assert_eq!(store.calls(Op::Delete), calls, "batch {batch}");
        }
    }
}
