//! A shard's share of reading manifests: the run lists the store as every run does, and reads only
//! the manifests its shard owns ([`Shard::holds`]) among the revisions and tag targets, with the
//! entries of the lists and indexes it reads. What it learns goes into a manifest cache of its own,
//! which a final step merges into the cache the collecting run uses; that run then reads only what
//! no shard read (entries whose index another shard read, manifests pushed since).

use crate::model::progress::Progress;
use crate::model::shard::Shard;
use crate::pipeline::collect::catalog;
use crate::pipeline::collect::inventory::Detail;
use crate::pipeline::collect::manifest_cache::ManifestCache;
use crate::pipeline::collect::walk;
use crate::pipeline::collect::{AnalysisError, unless_stopped};
use crate::storage::Storage;

/// What a shard read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShareRead {
    /// Revisions and tag targets the shard owns (each manifest once).
    pub roots: u64,
    /// Manifests the catalog holds after the shard's reads (its roots and what they list).
    pub manifests: u64,
}

/// Reads shard `shard`'s manifests into `cache`.
pub fn read_share(
    storage: &dyn Storage,
    shard: Shard,
    progress: &Progress,
    cache: &ManifestCache,
) -> Result<ShareRead, AnalysisError> {
    let mut inv = unless_stopped(progress, walk::scan(storage, Detail::Targets, progress))?;
    let mut roots = std::collections::BTreeSet::new();
    for r in &mut inv.repositories {
        r.revisions.retain(&inv.blobs, |d| shard.holds(d));
        roots.extend(r.revisions.digests(&inv.blobs));
        for t in &mut r.tags {
            t.current = t.current.filter(|d| shard.holds(d));
            roots.extend(t.current);
        }
    }
    let cat = catalog::read(storage, &inv, progress, Some(cache));
    progress.check()?;
    Ok(ShareRead {
        roots: roots.len() as u64,
        manifests: cat.len() as u64,
    })
}
