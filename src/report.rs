//! The `gc` report: one plain struct, rendered as JSON or as a short human summary.

use crate::gc::{Analysis, GcOptions};
use crate::problem::Problem;
use crate::storage::RequestCounts;
use crate::sweep::Deleted;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Debug, Clone, Serialize)]
pub struct ManifestCounts {
    /// Revisions (repository, digest) with a link.
    pub total: u64,
    /// Revisions that stay.
    pub marked: u64,
    /// Untagged revisions planned for deletion (only with `-m`).
    pub eligible: u64,
    /// Untagged revisions kept because their data is within the grace window.
    pub held_by_grace: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobCounts {
    pub total: u64,
    pub total_bytes: u64,
    pub marked: u64,
    pub marked_bytes: u64,
    pub eligible: u64,
    pub eligible_bytes: u64,
    pub held_by_grace: u64,
    pub held_by_grace_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkCounts {
    pub total: u64,
    pub eligible: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadCounts {
    /// `_uploads/<id>/` folders, in progress or abandoned.
    pub count: u64,
    pub bytes: u64,
    /// Those untouched for longer than the grace window: planned for deletion.
    pub eligible: u64,
    pub eligible_bytes: u64,
}

/// The summary of a `gc` run.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    pub storage: String,
    pub dry_run: bool,
    pub delete_untagged: bool,
    pub grace_seconds: u64,
    pub repositories: u64,
    pub tags: u64,
    pub manifests: ManifestCounts,
    pub blobs: BlobCounts,
    pub layer_links: LinkCounts,
    /// Uploads in progress or abandoned; those older than the grace window are collected.
    pub uploads: UploadCounts,
    /// Incomplete S3 multipart uploads under the store's prefix; those older than the grace window
    /// are aborted.
    pub multipart_uploads: UploadCounts,
    /// Why multipart uploads could not be listed, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipart_error: Option<String>,
    pub problems: Vec<Problem>,
    /// Objects that disappeared between listing and reading.
    pub vanished: u64,
    pub elapsed_ms: u64,
    /// Requests made, when the store is remote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<RequestCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deleted>,
    /// When a plan file was applied: how its items fared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<crate::apply::Applied>,
    /// Where `--plan` wrote the plan, and the command that executes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<PlanWritten>,
    /// What the operator must do after a sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// Where a plan file went, and how to execute it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanWritten {
    pub path: String,
    /// The command that executes it, after review.
    pub apply: String,
}

impl PlanWritten {
    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Plan written to {}; review it, then `{}` executes it.",
            self.path, self.apply
        )
    }
}

/// Said after every sweep that deleted something.
pub const CACHE_NOTICE: &str = "a running registry caches blob descriptors (in memory or in redis) and may still \
claim deleted blobs exist, so a later push can skip them and break the image: restart the registry (and flush its \
redis blob cache, if it uses one) before it accepts pushes again";

impl GcReport {
    pub fn new(storage: &str, options: &GcOptions, a: &Analysis) -> GcReport {
        let inv = &a.inventory;
        let total_revisions: u64 = inv
            .repositories
            .iter()
            .map(|r| r.revisions.len() as u64)
            .sum();
        let eligible_manifests = a.plan.manifests().count() as u64;
        let marked_bytes: u64 = a.marks.blobs.iter().map(|id| inv.blobs.size(id)).sum();
        let uploads = inv.repositories.iter().flat_map(|r| &r.uploads);
        GcReport {
            storage: storage.to_owned(),
            dry_run: true,
            delete_untagged: options.delete_untagged,
            grace_seconds: options.grace.as_secs(),
            repositories: inv.repositories.len() as u64,
            tags: inv.repositories.iter().map(|r| r.tags.len() as u64).sum(),
            manifests: ManifestCounts {
                total: total_revisions,
                marked: total_revisions - eligible_manifests,
                eligible: eligible_manifests,
                held_by_grace: a.marks.manifests_held_by_grace,
            },
            blobs: BlobCounts {
                total: inv.blobs.len() as u64,
                total_bytes: inv.blobs.total_bytes(),
                marked: a.marks.blobs.len(),
                marked_bytes,
                eligible: a.plan.blobs().count() as u64,
                eligible_bytes: a.plan.blob_bytes(),
                held_by_grace: a.plan.blobs_held_by_grace,
                held_by_grace_bytes: a.plan.bytes_held_by_grace,
            },
            layer_links: LinkCounts {
                total: inv
                    .repositories
                    .iter()
                    .map(|r| (r.layer_links.len() + r.dangling_layer_links.len()) as u64)
                    .sum(),
                eligible: a.plan.layer_links().count() as u64,
            },
            uploads: UploadCounts {
                count: uploads.clone().count() as u64,
                bytes: uploads.map(|u| u.size).sum(),
                eligible: a.plan.uploads().count() as u64,
                eligible_bytes: a.plan.uploads().map(|u| u.2).sum(),
            },
            multipart_uploads: UploadCounts {
                count: a.multipart.len() as u64,
                bytes: a.multipart.iter().map(|m| m.size).sum(),
                eligible: a.plan.multipart().count() as u64,
                eligible_bytes: a.plan.multipart().map(|m| m.2).sum(),
            },
            multipart_error: a.multipart_error.clone(),
            problems: a.problems().cloned().collect(),
            vanished: inv.vanished,
            elapsed_ms: a.elapsed.as_millis() as u64,
            s3: None,
            deleted: None,
            applied: None,
            plan_file: None,
            notice: None,
        }
    }

    /// Records a sweep's result.
    pub fn with_deleted(mut self, deleted: Deleted) -> GcReport {
        self.dry_run = false;
        if deleted.blobs + deleted.manifests + deleted.layer_links + deleted.tag_index_entries > 0 {
            self.notice = Some(CACHE_NOTICE.to_owned());
        }
        self.deleted = Some(deleted);
        self
    }

    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)
    }

    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let mode = if self.dry_run { "dry run" } else { "delete" };
        let untagged = if self.delete_untagged {
            "untagged manifests collected"
        } else {
            "untagged manifests kept"
        };
        writeln!(
            out,
            "regsweep gc {} ({mode}; {untagged}; grace {})",
            self.storage,
            humantime::format_duration(std::time::Duration::from_secs(self.grace_seconds))
        )?;
        writeln!(
            out,
            "  repositories  {}, tags {}",
            self.repositories, self.tags
        )?;
        let m = &self.manifests;
        writeln!(
            out,
            "  manifests     {} total, {} marked, {} eligible",
            m.total, m.marked, m.eligible
        )?;
        let b = &self.blobs;
        writeln!(
            out,
            "  blobs         {} total ({}), {} marked ({}), {} eligible ({})",
            b.total,
            human_bytes(b.total_bytes),
            b.marked,
            human_bytes(b.marked_bytes),
            b.eligible,
            human_bytes(b.eligible_bytes)
        )?;
        if b.held_by_grace > 0 || m.held_by_grace > 0 {
            writeln!(
                out,
                "  grace         {} blobs ({}) and {} manifests too recent to collect",
                b.held_by_grace,
                human_bytes(b.held_by_grace_bytes),
                m.held_by_grace
            )?;
        }
        writeln!(
            out,
            "  layer links   {} total, {} eligible",
            self.layer_links.total, self.layer_links.eligible
        )?;
        if self.uploads.count > 0 {
            writeln!(
                out,
                "  uploads       {} in _uploads ({}), {} abandoned ({}) eligible",
                self.uploads.count,
                human_bytes(self.uploads.bytes),
                self.uploads.eligible,
                human_bytes(self.uploads.eligible_bytes)
            )?;
        }
        if self.multipart_uploads.count > 0 {
            let m = &self.multipart_uploads;
            writeln!(
                out,
                "  multipart     {} incomplete S3 multipart uploads ({}), {} older than grace ({}) eligible",
                m.count,
                human_bytes(m.bytes),
                m.eligible,
                human_bytes(m.eligible_bytes)
            )?;
        }
        if let Some(e) = &self.multipart_error {
            writeln!(out, "  multipart     could not be listed: {e}")?;
        }
        for p in &self.problems {
            writeln!(out, "  problem       {p}")?;
        }
        if let Some(a) = &self.applied {
            writeln!(
                out,
                "  plan file     {} items: {} still eligible, {} already gone; {} new since the plan left alone",
                a.planned, a.eligible, a.already_gone, a.new_since_plan
            )?;
        }
        if let Some(p) = &self.plan_file {
            p.write_human(out)?;
        }
        match &self.deleted {
            None if self.problems.iter().all(|p| !p.kind.blocks_delete()) => writeln!(
                out,
                "Nothing was deleted (dry run). --delete executes this same plan."
            )?,
            None => writeln!(
                out,
                "Nothing was deleted (dry run). --delete refuses until the problems are fixed."
            )?,
            Some(d) => {
                writeln!(
                    out,
                    "Deleted {} manifests, {} tag index entries, {} layer links, {} blobs ({}), {} uploads ({}); {} failures.",
                    d.manifests,
                    d.tag_index_entries,
                    d.layer_links,
                    d.blobs,
                    human_bytes(d.bytes),
                    d.uploads,
                    human_bytes(d.upload_bytes),
                    d.failures.len()
                )?;
                if d.multipart_uploads > 0 {
                    writeln!(
                        out,
                        "Aborted {} multipart uploads ({}).",
                        d.multipart_uploads,
                        human_bytes(d.multipart_bytes)
                    )?;
                }
                for f in &d.failures {
                    writeln!(out, "  failed        {}: {}", f.key, f.error)?;
                }
            }
        }
        if let Some(r) = &self.s3 {
            writeln!(
                out,
                "  requests      {} list, {} get, {} delete, {} retries",
                r.list_requests, r.get_requests, r.delete_requests, r.retries
            )?;
        }
        if let Some(n) = &self.notice {
            writeln!(out, "Note: {n}.")?;
        }
        Ok(())
    }
}

/// Sizes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
