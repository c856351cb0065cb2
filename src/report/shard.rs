//! What the sharded steps did: a shard's reading of manifests, and the merge of the shards' parts.

use serde::{Deserialize, Serialize};

/// A shard's part, as it records it beside the part's manifest cache
/// (`{parts}/manifests-{I}-of-{N}.json`), and as it reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestPart {
    /// The store's identity ([`crate::storage::Storage::identity`]): parts of another store are
    /// refused by the merge.
    pub store: String,
    pub shard: u32,
    pub shards: u32,
    /// Revisions and tag targets the shard owns.
    pub roots: u64,
    /// Manifests read from the store by this shard, and entries in its part of the cache.
    pub read: u64,
    pub entries: u64,
    /// When the part was written (RFC 3339).
    pub time: String,
}

impl crate::report::WriteJson for ManifestPart {}

impl ManifestPart {
    pub fn write_human(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use crate::model::text::thousands;
        writeln!(
            out,
            "Shard {}/{} of {}: {} it owns, {} read from the store, {} entries in its part.",
            self.shard,
            self.shards,
            self.store,
            crate::model::text::count(self.roots, "manifest", "manifests"),
            thousands(self.read),
            thousands(self.entries)
        )
    }
}

/// What merging the parts into the manifest cache did.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub store: String,
    pub shards: u32,
    /// Entries of the parts together (a manifest two shards read counts once).
    pub part_entries: u64,
    /// Entries added to the cache (the rest it held already).
    pub added: u64,
    pub cache: crate::pipeline::collect::manifest_cache::ManifestCacheStats,
}

impl crate::report::WriteJson for Merged {}

impl Merged {
    pub fn write_human(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use crate::model::text::thousands;
        writeln!(
            out,
            "Merged {} shards of {}: {} entries, {} new to the cache at {} ({} entries now).",
            self.shards,
            self.store,
            thousands(self.part_entries),
            thousands(self.added),
            self.cache.path,
            thousands(self.cache.entries)
        )
    }
}
