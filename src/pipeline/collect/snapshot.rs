//! Blobs written after a listing's snapshot (an S3 Inventory): the fresh links name them, the
//! snapshot does not list them, so they are asked after one by one and kept under any grace.

use crate::model::digest::Digest;
use crate::model::layout::{self};
use crate::model::progress::{Count, Progress};
use crate::pipeline::collect::blob_table::{BlobId, BlobTable};
use crate::pipeline::collect::inventory::{Repository, Revisions};
use crate::storage::{Storage, StorageError};
use rayon::prelude::*;

/// Where the blob tree was listed from a snapshot (an S3 Inventory): adds to the table every blob
/// that a fresh link (revision, tag, `_layers`) names, that the snapshot lacks and that the store
/// holds, so that a manifest pushed after the snapshot is read and what it references is kept.
/// Such blobs count as written in the far future: never candidates. A blob the store cannot be
/// asked about ends the scan, since a manifest left unread could make what it reuses look unused.
pub(crate) fn add_blobs_after_snapshot(
    storage: &dyn Storage,
    blobs: BlobTable,
    repos: &mut [Repository],
    progress: &Progress,
) -> Result<BlobTable, StorageError> {
    let mut absent: Vec<Digest> = Vec::new();
    for r in repos.iter() {
        absent.extend(r.dangling_layer_links.iter().copied());
        absent.extend(r.revisions.unstored().iter().copied());
        for t in &r.tags {
            absent.extend(
                t.current
                    .iter()
                    .chain(&t.index)
                    .filter(|d| blobs.id(d).is_none()),
            );
        }
    }
    absent.sort_unstable();
    absent.dedup();
    if absent.is_empty() {
        return Ok(blobs);
    }
    progress.phase(
        &format!(
            "asking after {} written after the inventory",
            crate::model::text::count(absent.len() as u64, "linked blob", "linked blobs")
        ),
        Count::Measured,
        Some(absent.len() as u64),
    );
    let found: Vec<Result<Option<(Digest, u64)>, StorageError>> = absent
        .par_iter()
        .map(|d| match storage.stat(&layout::blob_data(d)) {
            Ok(Some((size, _))) => Ok(Some((*d, size))),
            Ok(None) => Ok(Some((*d, 0))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        })
        .collect();
    let mut added = Vec::new();
    for f in found {
        added.extend(f?);
    }
    if added.is_empty() {
        return Ok(blobs);
    }
    // Layer links and revisions by digest while the ids change.
    let links: Vec<Vec<Digest>> = repos
        .iter()
        .map(|r| r.layer_links.iter().map(|&id| blobs.digest(id)).collect())
        .collect();
    let revisions: Vec<Vec<Digest>> = (repos.iter())
        .map(|r| r.revisions.digests(&blobs).collect())
        .collect();
    let table = blobs.with_added(added);
    for ((r, links), revisions) in repos.iter_mut().zip(links).zip(revisions) {
        let mut ids: Vec<BlobId> = links.iter().filter_map(|d| table.id(d)).collect();
        let (now_held, dangling): (Vec<Digest>, Vec<Digest>) =
            std::mem::take(&mut r.dangling_layer_links)
                .into_iter()
                .partition(|d| table.id(d).is_some());
        ids.extend(now_held.iter().filter_map(|d| table.id(d)));
        ids.sort_unstable();
        r.layer_links = ids;
        r.dangling_layer_links = dangling;
        r.revisions = Revisions::new(&table, revisions);
    }
    Ok(table)
}
