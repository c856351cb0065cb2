//! `du`: where the bytes are, per repository, and what collecting would free. Deletes nothing.
//!
//! Built on the same walk, catalog and marks as `gc`: a repository's `bytes` are the distinct blobs
//! its tags reach (manifests, indexes' children, configs, layers, and referrers of what they keep);
//! its `exclusive_bytes` are those that no other repository's tags reach, which is what deleting the
//! repository and collecting with `-m` would free. Store-wide, `reclaimable` splits what `gc
//! --grace 0s` frees (`unreferenced_bytes`), what `-m` frees on top of that (`untagged_bytes`), and
//! what `_uploads` folders hold (`uploads_bytes`), and on S3 the parts of incomplete multipart uploads
//! (`multipart_bytes`), which no object listing shows and which are billed all the same.

use crate::pipeline::analysis::{self, Multipart, StoreRead};
use crate::pipeline::inventory;
use crate::pipeline::mark;
use crate::pipeline::progress::{AnalysisError, Count, Progress};
use crate::report::du::{DuReport, Reclaimable, RepoUsage};
use crate::storage::Storage;
use roaring::RoaringBitmap;
use std::time::Instant;

/// Measures the store.
pub fn du(
    storage: &dyn Storage,
    progress: &Progress,
    cache: Option<&crate::pipeline::manifest_cache::ManifestCache>,
) -> Result<DuReport, AnalysisError> {
    let start = Instant::now();
    let StoreRead {
        inventory: mut inv,
        catalog: cat,
        multipart,
        multipart_error,
    } = analysis::read(
        storage,
        inventory::Detail::Targets,
        Multipart::Listed,
        progress,
        cache,
    )?;
    progress.phase("marking per repository", Count::ManifestsRead, None);
    let per_repo = mark::tag_reach(&inv, &cat);
    let plain = mark::mark_every_revision(&inv, &cat);
    let ids = inventory::to_measure(&inv, &plain.blobs);
    inventory::measure(storage, &mut inv, &ids, progress);
    progress.check()?;
    // Blobs reached from one repository only, and from two or more.
    let (mut once, mut twice) = (RoaringBitmap::new(), RoaringBitmap::new());
    for reach in &per_repo {
        twice |= &once & reach;
        once |= reach;
    }
    let tagged = once;
    let mut repositories: Vec<RepoUsage> = inv
        .repositories
        .iter()
        .zip(&per_repo)
        .map(|(r, reach)| RepoUsage {
            name: r.name.clone(),
            tags: r.tags.len() as u64,
            manifests: r.revisions.len() as u64,
            bytes: inv.blobs.bytes_of(reach),
            exclusive_bytes: inv.blobs.bytes_of(&(reach - &twice)),
        })
        .collect();
    repositories.sort_by(|a, b| {
        (b.exclusive_bytes, b.bytes, &a.name).cmp(&(a.exclusive_bytes, a.bytes, &b.name))
    });
    let total_bytes = inv.blobs.total_bytes();
    let multipart_bytes = multipart.iter().map(|u| u.size).sum();
    Ok(DuReport {
        database_in_use: None,
        storage: storage.describe(),
        blobs: inv.blobs.len() as u64 - inv.no_data.len(),
        total_bytes,
        reclaimable: Reclaimable {
            grace_seconds: 0,
            unreferenced_bytes: inv.blobs.bytes_of(&plain.unreferenced(&inv)),
            untagged_bytes: inv.blobs.bytes_of(&(&plain.blobs - &tagged)),
            uploads_bytes: inv
                .repositories
                .iter()
                .flat_map(|r| &r.uploads)
                .map(|u| u.size)
                .sum(),
            multipart_bytes,
        },
        repositories,
        problems: (inv.problems.len() + cat.problems.len()) as u64,
        multipart_error,
        elapsed_ms: start.elapsed().as_millis() as u64,
        manifest_cache: None,
        trash: None,
    })
}
