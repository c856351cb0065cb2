//! The `du` report: per repository, the bytes its tags reach and those only it reaches; store-wide,
//! what collecting would free. Built by [`crate::commands::du`].

use crate::model::text::{count, human_bytes};
use crate::report::WriteJson;
use crate::report::du_history::{Recorded, RepoFigures, Room};
use serde::Serialize;

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
    /// The rest: blobs another repository's tags reach too (`bytes - exclusive_bytes`).
    pub shared_bytes: u64,
    /// Each tag, by name, with the bytes its image reaches.
    pub tag_sizes: Vec<TagUsage>,
    /// The largest blobs its tags reach, largest first (`du --blobs-per-repo`, 5 unless told).
    pub largest_blobs: Vec<BlobUsage>,
}

/// One tag and what its image holds.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TagUsage {
    pub name: String,
    /// The manifest it names; `None` where its link is missing or bad.
    pub digest: Option<String>,
    /// Distinct blobs its image reaches: manifests, configs, layers, referrers.
    pub bytes: u64,
}

/// One of a repository's largest blobs and who else holds it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BlobUsage {
    pub digest: String,
    pub bytes: u64,
    /// How many other repositories' tags reach it.
    pub shared_by: u64,
    /// Their names, sorted; the first [`SHARED_NAMES`] of them.
    pub shared_with: Vec<String>,
}

/// How many names of the repositories sharing a blob a report lists.
pub const SHARED_NAMES: usize = 20;

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
    /// When the run finished reading the store (RFC 3339, UTC).
    pub time: String,
    /// The store is owned by a metadata database (GitLab's `database-in-use` lock file): the
    /// layout does not say what is live, and nothing may be deleted offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_in_use: Option<crate::pipeline::guard::database_owner::DatabaseOwned>,
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
    pub manifest_cache: Option<crate::pipeline::collect::manifest_cache::ManifestCacheStats>,
    /// What `--history` recorded: growth per repository and the fill date (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<crate::report::du_history::Growth>,
    /// Where `--html` wrote the page (not part of `--json`).
    #[serde(skip)]
    pub page: Option<String>,
    /// What regsweep's trash holds, beside the registry's keys and not counted in `total_bytes`
    /// (absent when it is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash: Option<crate::pipeline::execute::trash::Held>,
    /// Where the blobs were listed from an S3 Inventory (`--inventory`): the snapshot and what it
    /// saved and held back (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "inventory")]
    pub s3_inventory: Option<crate::storage::s3_inventory::ListingSnapshot>,
    /// `--bucket`: every byte under the store's root, by category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<crate::pipeline::collect::bucket::Bucket>,
}

impl WriteJson for DuReport {}

impl DuReport {
    /// This run's line of a `--history` file.
    pub fn recorded(&self, at: std::time::SystemTime, room: Option<Room>) -> Recorded {
        let rc = &self.reclaimable;
        Recorded {
            time: humantime::format_rfc3339_millis(at).to_string(),
            storage: self.storage.clone(),
            blobs: self.blobs,
            total_bytes: self.total_bytes,
            reclaimable_bytes: rc.unreferenced_bytes + rc.untagged_bytes,
            capacity_bytes: room.map(|r| r.capacity_bytes),
            available_bytes: room.map(|r| r.available_bytes),
            repositories: self
                .repositories
                .iter()
                .map(|r| {
                    let figures = RepoFigures {
                        bytes: r.bytes,
                        exclusive_bytes: r.exclusive_bytes,
                        tags: r.tags,
                        manifests: r.manifests,
                    };
                    (r.name.clone(), figures)
                })
                .collect(),
        }
    }

    /// A table of the `top` repositories by exclusive bytes, then the store's totals.
    pub fn write_human(&self, out: &mut dyn std::io::Write, top: usize) -> std::io::Result<()> {
        super::write_owner(out, self.database_in_use.as_ref())?;
        super::write_snapshot(out, self.s3_inventory.as_ref())?;
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
        if let Some(t) = &self.trash {
            super::trash::write_held(t, out)?;
        }
        if let Some(g) = &self.history {
            g.write_human(out, top)?;
        }
        if let Some(b) = &self.bucket {
            write_bucket(b, out)?;
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

/// `du --bucket`'s table: each category's bytes and share of the total, and what frees it.
fn write_bucket(
    b: &crate::pipeline::collect::bucket::Bucket,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let total = b.total_bytes;
    let share = |bytes: u64| {
        if total == 0 {
            0.0
        } else {
            bytes as f64 * 100.0 / total as f64
        }
    };
    writeln!(
        out,
        "every byte under the store's root (--bucket): {}",
        human_bytes(total)
    )?;
    let mut row = |what: &str, bytes: u64, why: &str| {
        writeln!(
            out,
            "  {what:<20} {:>10} {:>6.1}%  {why}",
            human_bytes(bytes),
            share(bytes)
        )
    };
    let r = &b.registry;
    row("live", r.live_bytes, "what the tags reach")?;
    row("unreferenced", r.unreferenced_bytes, "gc frees it")?;
    row("untagged", r.untagged_bytes, "gc -m frees it")?;
    row("uploads", r.uploads_bytes, "gc frees abandoned ones")?;
    row("links and tags", r.links_bytes, "the registry's own")?;
    if let Some(v) = &b.noncurrent_versions {
        row(
            "older versions",
            v.bytes,
            &format!(
                "{}; a lifecycle rule frees them (NoncurrentVersionExpiration)",
                count(v.count, "version", "versions")
            ),
        )?;
    }
    if let Some(m) = &b.delete_markers {
        row(
            "delete markers",
            0,
            &format!(
                "{}; ExpiredObjectDeleteMarker removes them",
                count(m.count, "marker", "markers")
            ),
        )?;
    }
    if let Some(m) = &b.multipart_uploads {
        row(
            "multipart parts",
            m.bytes,
            &format!(
                "{}; gc aborts them (or an AbortIncompleteMultipartUpload rule)",
                count(m.count, "incomplete upload", "incomplete uploads")
            ),
        )?;
    }
    row(
        "regsweep's trash",
        b.trash.bytes,
        "purged when its runs expire",
    )?;
    let o = &b.outside_layout;
    let example = o
        .examples
        .first()
        .map_or(String::new(), |e| format!(", e.g. {e}"));
    row(
        "outside the layout",
        o.bytes,
        &format!(
            "{}{example}: never touched; delete by hand what you know",
            count(o.count, "key", "keys")
        ),
    )?;
    if !b.by_storage_class.is_empty() {
        let classes: Vec<String> = (b.by_storage_class.iter())
            .map(|(c, n)| format!("{c} {}", human_bytes(*n)))
            .collect();
        writeln!(out, "  by storage class: {}", classes.join(", "))?;
    }
    if let Some(n) = &b.note {
        writeln!(out, "  ({n})")?;
    }
    if let Some(c) = &b.monthly_cost {
        let money = |v: f64| {
            if v >= 1.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.6}")
            }
        };
        let parts: Vec<String> = (c.by_category.iter())
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| format!("{k} {}", money(*v)))
            .collect();
        writeln!(
            out,
            "  a month, at the prices given: {} ({})",
            money(c.total),
            parts.join(", ")
        )?;
    }
    let mut frees = vec![
        format!("gc {}", human_bytes(r.unreferenced_bytes + r.uploads_bytes)),
        format!("gc -m {} more", human_bytes(r.untagged_bytes)),
    ];
    if let Some(v) = &b.noncurrent_versions {
        frees.push(format!("a lifecycle rule {}", human_bytes(v.bytes)));
    }
    if let Some(m) = b.multipart_uploads.filter(|m| m.bytes > 0) {
        frees.push(format!(
            "aborting multipart uploads {}",
            human_bytes(m.bytes)
        ));
    }
    if o.bytes > 0 {
        frees.push(format!(
            "deleting foreign keys by hand {}",
            human_bytes(o.bytes)
        ));
    }
    writeln!(
        out,
        "The registry's live images are {:.1}% of what is stored; {} would free the rest.",
        share(r.live_bytes),
        frees.join(", ")
    )
}
