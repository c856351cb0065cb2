//! The `audit` report: what the store holds, what is broken in it, and the referrer tags whose subject
//! is gone. Built by [`crate::commands::audit`].

use crate::model::digest::Digest;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::text::{count, human_bytes, thousands};
use crate::report::WriteJson;
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts of what the store holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditSummary {
    pub repositories: u64,
    pub tags: u64,
    /// Manifest revisions, as `gc` and `du` count them (a manifest in two repositories counts twice).
    pub manifests: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Blobs that nothing references (what `gc --grace 0s` would collect).
    pub orphan_blobs: u64,
    pub orphan_bytes: u64,
    /// Blobs hashed (with `--verify-digests`).
    pub verified_blobs: u64,
    pub problems: BTreeMap<ProblemKind, u64>,
}

/// A referrer tag (`sha256-<hex>`, or cosign's `.sig`/`.att`/`.sbom`) whose subject manifest the
/// repository no longer holds: garbage for `prune-tags --orphan-referrer-tags`, not a fault.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrphanReferrerTag {
    pub repo: String,
    pub tag: String,
    pub subject: Digest,
}

/// The `audit` report.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub storage: String,
    /// The store is owned by a metadata database (GitLab's `database-in-use` lock file): the
    /// layout does not say what is live, and nothing may be deleted offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_in_use: Option<crate::pipeline::guard::database_owner::DatabaseOwned>,
    pub summary: AuditSummary,
    pub problems: Vec<Problem>,
    pub orphan_referrer_tags: Vec<OrphanReferrerTag>,
    pub elapsed_ms: u64,
    /// What the run took from and added to the manifest cache (absent with `--no-cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_cache: Option<crate::pipeline::collect::manifest_cache::ManifestCacheStats>,
    /// What regsweep's trash holds (absent when it is empty); its runs are checked above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash: Option<crate::pipeline::execute::trash::Held>,
    /// Where the blobs were listed from an S3 Inventory (`--inventory`): the snapshot and what it
    /// saved and held back (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "inventory")]
    pub s3_inventory: Option<crate::storage::s3_inventory::ListingSnapshot>,
}

impl WriteJson for AuditReport {}

impl AuditReport {
    pub fn write_human(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        super::write_owner(out, self.database_in_use.as_ref())?;
        super::write_snapshot(out, self.s3_inventory.as_ref())?;
        for p in &self.problems {
            let kind = serde_json::to_value(p.kind).unwrap_or_default();
            writeln!(out, "{:<17} {}", kind.as_str().unwrap_or("?"), p)?;
        }
        let s = &self.summary;
        writeln!(
            out,
            "{}, {}, {}, {} ({}); {} ({}) that nothing references, for gc (at --grace 0s)",
            count(s.repositories, "repository", "repositories"),
            count(s.tags, "tag", "tags"),
            count(s.manifests, "manifest", "manifests"),
            count(s.blobs, "blob", "blobs"),
            human_bytes(s.blob_bytes),
            count(s.orphan_blobs, "blob", "blobs"),
            human_bytes(s.orphan_bytes)
        )?;
        if s.verified_blobs > 0 {
            writeln!(
                out,
                "{} hashed against their names",
                count(s.verified_blobs, "blob", "blobs")
            )?;
        }
        if let Some(c) = &self.manifest_cache {
            c.write_human(out)?;
        }
        if let Some(t) = &self.trash {
            super::trash::write_held(t, out)?;
        }
        for o in &self.orphan_referrer_tags {
            writeln!(
                out,
                "orphan referrer tag {}:{} (its subject {} is no longer in the repository)",
                o.repo, o.tag, o.subject
            )?;
        }
        if !self.orphan_referrer_tags.is_empty() {
            writeln!(
                out,
                "{}: `regsweep prune-tags --repo '**' --orphan-referrer-tags` \
                 removes them, then `gc -m` frees what they kept",
                count(
                    self.orphan_referrer_tags.len() as u64,
                    "orphan referrer tag",
                    "orphan referrer tags"
                )
            )?;
        }
        if self.problems.is_empty() {
            writeln!(out, "no problems found")
        } else {
            let counts: Vec<String> = s
                .problems
                .iter()
                .map(|(k, n)| {
                    let k = serde_json::to_value(k).unwrap_or_default();
                    format!("{} {}", thousands(*n), k.as_str().unwrap_or("?"))
                })
                .collect();
            writeln!(
                out,
                "{}: {}",
                count(self.problems.len() as u64, "problem", "problems"),
                counts.join(", ")
            )
        }
    }
}
