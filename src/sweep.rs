//! Sweep: the only code that deletes. It executes a [`Plan`].
//!
//! Order, so that a run cut off at any instant never leaves a link to missing data:
//! 1. tag index entries of untagged manifests;
//! 2. their revision links (only for a manifest whose index entries all went);
//! 3. `_layers` links of swept blobs;
//! 4. blob data (only for a blob whose links all went, and that is not the data of a revision whose
//!    link could not be deleted);
//! 5. abandoned uploads: every file of the upload's folder, then the empty folder. Nothing links to
//!    an upload, so its place in the order does not matter; last keeps the blob sweep first;
//! 6. incomplete S3 multipart uploads: aborted.
//!
//! A failure is recorded with its key and the sweep goes on with what stays safe; the next run plans
//! whatever is left. Each step deletes in batches of [`BATCH`] keys, batches in parallel.

use crate::digest::Digest;
use crate::layout;
use crate::plan::{Plan, PlanItem};
use crate::storage::Storage;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;

/// Keys per delete request (S3's DeleteObjects limit).
pub const BATCH: usize = 1000;

/// A key that could not be deleted.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub key: String,
    pub error: String,
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
    pub failures: Vec<Failure>,
}

/// Deletes `keys` in parallel batches, recording each failure; returns the indices of those that failed.
pub(crate) fn delete_all(
    storage: &dyn Storage,
    keys: &[String],
    failures: &mut Vec<Failure>,
) -> HashSet<usize> {
    let results: Vec<(usize, Failure)> = keys
        .par_chunks(BATCH)
        .enumerate()
        .flat_map_iter(|(b, chunk)| {
            let results = storage.delete(chunk);
            results.into_iter().enumerate().filter_map(move |(i, r)| {
                r.err().map(|e| {
                    (
                        b * BATCH + i,
                        Failure {
                            key: e.key().to_owned(),
                            error: e.to_string(),
                        },
                    )
                })
            })
        })
        .collect();
    let mut failed = HashSet::new();
    for (i, f) in results {
        failed.insert(i);
        failures.push(f);
    }
    failed
}

/// Executes the plan.
pub fn sweep(storage: &dyn Storage, plan: &Plan) -> Deleted {
    let mut out = Deleted::default();

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
    let failed = delete_all(storage, &keys, &mut out.failures);
    out.tag_index_entries = (keys.len() - failed.len()) as u64;
    let blocked: HashSet<usize> = failed.iter().map(|i| owners[*i]).collect();

    // 2. Revision links.
    let ready: Vec<usize> = (0..manifests.len())
        .filter(|m| !blocked.contains(m))
        .collect();
    let keys: Vec<String> = ready
        .iter()
        .map(|m| layout::revision_link(manifests[*m].0, manifests[*m].1))
        .collect();
    let failed = delete_all(storage, &keys, &mut out.failures);
    out.manifests = (keys.len() - failed.len()) as u64;
    // Data of a manifest whose revision link is still there (or was never attempted) must stay.
    let mut keep_data: HashSet<Digest> = blocked.iter().map(|m| *manifests[*m].1).collect();
    keep_data.extend(failed.iter().map(|i| *manifests[ready[*i]].1));

    // 3. Layer links.
    let links: Vec<(&str, &Digest)> = plan.layer_links().collect();
    let keys: Vec<String> = links
        .iter()
        .map(|(repo, d)| layout::layer_link(repo, d))
        .collect();
    let failed = delete_all(storage, &keys, &mut out.failures);
    out.layer_links = (keys.len() - failed.len()) as u64;
    keep_data.extend(failed.iter().map(|i| *links[*i].1));

    // 4. Blob data.
    let blobs: Vec<(&Digest, u64)> = plan
        .blobs()
        .filter(|(d, _)| !keep_data.contains(d))
        .collect();
    let keys: Vec<String> = blobs.iter().map(|(d, _)| layout::blob_data(d)).collect();
    let failed = delete_all(storage, &keys, &mut out.failures);
    for (i, (_, size)) in blobs.iter().enumerate() {
        if !failed.contains(&i) {
            out.blobs += 1;
            out.bytes += size;
        }
    }

    // 5. Uploads, one folder at a time (each holds a few files).
    for (repo, id, size) in plan.uploads() {
        if sweep_upload(storage, &layout::upload_folder(repo, id), &mut out.failures) {
            out.uploads += 1;
            out.upload_bytes += size;
        }
    }

    // 6. Multipart uploads.
    for (key, upload_id, size) in plan.multipart() {
        let upload = crate::storage::MultipartUpload {
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            initiated: None,
            size,
        };
        match storage.abort_multipart(&upload) {
            Ok(()) => {
                out.multipart_uploads += 1;
                out.multipart_bytes += size;
            }
            Err(e) => out.failures.push(Failure {
                key: format!("{key} (multipart upload {upload_id})"),
                error: e.to_string(),
            }),
        }
    }
    out
}

/// Deletes every object below an upload's folder, then the folder. An entry the listing could not
/// vouch for (a symbolic link, an unreadable folder) leaves the whole upload in place.
fn sweep_upload(storage: &dyn Storage, folder: &str, failures: &mut Vec<Failure>) -> bool {
    let mut keys = Vec::new();
    let mut notes = Vec::new();
    let listed = storage.list(folder, &mut |e| keys.push(e.key), &mut |n| notes.push(n));
    if let Err(e) = listed {
        failures.push(Failure {
            key: folder.to_owned(),
            error: e.to_string(),
        });
        return false;
    }
    if let Some(n) = notes.into_iter().next() {
        failures.push(Failure {
            key: n.key,
            error: format!("upload left in place: {}", n.message),
        });
        return false;
    }
    let before = failures.len();
    delete_all(storage, &keys, failures);
    if failures.len() > before {
        return false;
    }
    if let Err(e) = storage.remove_empty_folders(folder) {
        failures.push(Failure {
            key: folder.to_owned(),
            error: e.to_string(),
        });
    }
    true
}
