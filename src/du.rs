//! `du`: where the bytes are, per repository, and what collecting would free. Deletes nothing.
//!
//! Built on the same walk, catalog and marks as `gc`: a repository's `bytes` are the distinct blobs
//! its tags reach (manifests, indexes' children, configs, layers, and referrers of what they keep);
//! its `exclusive_bytes` are those that no other repository's tags reach, which is what deleting the
//! repository and collecting with `-m` would free. Store-wide, `reclaimable` splits what `gc
//! --grace 0s` frees (`unreferenced_bytes`), what `-m` frees on top of that (`untagged_bytes`), and
//! what `_uploads` folders hold (`uploads_bytes`), and on S3 the parts of incomplete multipart uploads
//! (`multipart_bytes`), which no object listing shows and which are billed all the same.

use crate::catalog;
use crate::inventory::{self, BlobTable};
use crate::mark;
use crate::progress::{AnalysisError, Count, Progress};
use crate::storage::Storage;
use crate::text::{count, human_bytes};
use roaring::RoaringBitmap;
use serde::Serialize;
use std::time::Instant;

/// One repository's usage.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RepoUsage {
    pub name: String,
    pub tags: u64,
    /// Manifest revisions (tagged or not).
    pub manifests: u64,
    /// Distinct blobs its tags reach.
    pub bytes: u64,
    /// Of those, the ones no other repository's tags reach.
    pub exclusive_bytes: u64,
}

/// What collecting would free, at `--grace 0s` (`grace_seconds`, always 0: what is unreachable now,
/// however recent; `gc`'s default grace holds back the last two hours).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reclaimable {
    pub grace_seconds: u64,
    /// Blobs nothing references: what `gc` frees.
    pub unreferenced_bytes: u64,
    /// Blobs only untagged manifests reference: what `gc -m` frees beyond `gc`.
    pub untagged_bytes: u64,
    /// What `_uploads` folders hold.
    pub uploads_bytes: u64,
    /// What the parts of incomplete S3 multipart uploads under the store hold (0 on a filesystem).
    pub multipart_bytes: u64,
}

/// The `du` report.
#[derive(Debug, Clone, Serialize)]
pub struct DuReport {
    pub storage: String,
    pub blobs: u64,
    /// All blob data.
    pub total_bytes: u64,
    pub reclaimable: Reclaimable,
    /// Sorted by exclusive bytes, then bytes, largest first.
    pub repositories: Vec<RepoUsage>,
    /// Problems the walk met (`audit` lists them); sizes may be short where they are.
    pub problems: u64,
    /// Why incomplete multipart uploads could not be listed (their bytes then count as 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipart_error: Option<String>,
    pub elapsed_ms: u64,
    /// What the run took from and added to the manifest cache (absent with `--no-cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_cache: Option<crate::manifest_cache::CacheReport>,
}

impl crate::report::WriteJson for DuReport {}

fn bytes_of(blobs: &BlobTable, ids: &RoaringBitmap) -> u64 {
    ids.iter().map(|id| blobs.size(id)).sum()
}

/// Measures the store.
pub fn du(
    storage: &dyn Storage,
    progress: &Progress,
    cache: Option<&crate::manifest_cache::ManifestCache>,
) -> Result<DuReport, AnalysisError> {
    let start = Instant::now();
    let mut inv = progress.unless_stopped(inventory::scan(
        storage,
        inventory::Detail::Targets,
        progress,
    ))?;
    let cat = catalog::read(storage, &inv, progress, cache);
    progress.check()?;
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
            bytes: bytes_of(&inv.blobs, reach),
            exclusive_bytes: bytes_of(&inv.blobs, &(reach - &twice)),
        })
        .collect();
    repositories.sort_by(|a, b| {
        (b.exclusive_bytes, b.bytes, &a.name).cmp(&(a.exclusive_bytes, a.bytes, &b.name))
    });
    let total_bytes = inv.blobs.total_bytes();
    let referenced = bytes_of(&inv.blobs, &plain.blobs);
    let (multipart_bytes, multipart_error) = match storage.multipart_uploads() {
        Ok(m) => (m.iter().map(|u| u.size).sum(), None),
        Err(e) => (0, Some(e.to_string())),
    };
    Ok(DuReport {
        storage: storage.describe(),
        blobs: inv.blobs.len() as u64 - inv.no_data.len(),
        total_bytes,
        reclaimable: Reclaimable {
            grace_seconds: 0,
            unreferenced_bytes: total_bytes - referenced,
            untagged_bytes: bytes_of(&inv.blobs, &(&plain.blobs - &tagged)),
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
    })
}

impl DuReport {
    /// A table of the `top` repositories by exclusive bytes, then the store's totals.
    pub fn write_human(&self, out: &mut dyn std::io::Write, top: usize) -> std::io::Result<()> {
        let width = self
            .repositories
            .iter()
            .take(top)
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max("repository".len());
        writeln!(
            out,
            "{:<width$}  {:>6}  {:>9}  {:>10}  {:>10}",
            "repository", "tags", "manifests", "bytes", "exclusive"
        )?;
        for r in self.repositories.iter().take(top) {
            writeln!(
                out,
                "{:<width$}  {:>6}  {:>9}  {:>10}  {:>10}",
                r.name,
                r.tags,
                r.manifests,
                human_bytes(r.bytes),
                human_bytes(r.exclusive_bytes)
            )?;
        }
        if self.repositories.len() > top {
            writeln!(
                out,
                "… {} more (--top N shows more)",
                count(
                    (self.repositories.len() - top) as u64,
                    "repository",
                    "repositories"
                )
            )?;
        }
        let rc = &self.reclaimable;
        writeln!(
            out,
            "total: {} in {}, {}",
            human_bytes(self.total_bytes),
            count(self.blobs, "blob", "blobs"),
            count(self.repositories.len() as u64, "repository", "repositories")
        )?;
        writeln!(
            out,
            "reclaimable now, at --grace 0s: {} unreferenced (gc), {} more held only by untagged manifests (gc -m), {} in uploads",
            human_bytes(rc.unreferenced_bytes),
            human_bytes(rc.untagged_bytes),
            human_bytes(rc.uploads_bytes)
        )?;
        writeln!(
            out,
            "             (gc's default --grace 2h holds back what was written in the last two hours; its dry run says how much)"
        )?;
        if rc.multipart_bytes > 0 {
            writeln!(
                out,
                "             {} in incomplete S3 multipart uploads (gc aborts them)",
                human_bytes(rc.multipart_bytes)
            )?;
        }
        if let Some(e) = &self.multipart_error {
            writeln!(out, "multipart uploads could not be listed: {e}")?;
        }
        if let Some(c) = &self.manifest_cache {
            c.write_human(out)?;
        }
        if self.problems > 0 {
            writeln!(
                out,
                "{} met on the way; `regsweep audit` lists them",
                count(self.problems, "problem", "problems")
            )?;
        }
        Ok(())
    }
}
