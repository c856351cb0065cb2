//! The `gc` report: one plain struct, rendered as JSON or as a short human summary.

use crate::model::problem::Problem;
use crate::model::text::{count, human_bytes, thousands};
use crate::pipeline::analysis::{Analysis, GcOptions};
use crate::pipeline::execute::sweep::Deleted;
use crate::report::{PlanWritten, WriteJson};
use crate::storage::{RequestCounts, Versioning};
use serde::Serialize;
use std::io::{self, Write};

impl WriteJson for GcReport {}

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
    /// Untagged revisions kept by a retention policy (`--policy`), or because one it keeps
    /// reaches them.
    pub held_by_policy: u64,
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

/// What one repository loses to the plan.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RepoLoss {
    pub name: String,
    /// Untagged manifest revisions removed.
    pub manifests: u64,
    /// `_layers` links removed.
    pub layer_links: u64,
    /// Abandoned uploads removed.
    pub uploads: u64,
    /// Bytes of the swept blobs it linked (layers and its manifests' data) and of its uploads. A
    /// blob that several repositories link counts in each.
    pub bytes: u64,
}

/// Swept blobs that no repository links (a push cut off, links removed by hand or by a past gc).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Unlinked {
    pub blobs: u64,
    pub bytes: u64,
}

/// Per repository, what the plan takes; largest first.
fn losses(a: &Analysis) -> (Vec<RepoLoss>, Unlinked, u64) {
    use std::collections::{BTreeMap, HashMap, HashSet};
    let swept: HashMap<&crate::model::digest::Digest, u64> = a.plan.blobs().collect();
    let mut attributed: HashSet<&crate::model::digest::Digest> = HashSet::new();
    let mut by: BTreeMap<String, RepoLoss> = BTreeMap::new();
    fn entry<'m>(by: &'m mut BTreeMap<String, RepoLoss>, name: &str) -> &'m mut RepoLoss {
        by.entry(name.to_owned()).or_insert_with(|| RepoLoss {
            name: name.to_owned(),
            manifests: 0,
            layer_links: 0,
            uploads: 0,
            bytes: 0,
        })
    }
    for (repo, d) in a.plan.manifests() {
        let e = entry(&mut by, repo);
        e.manifests += 1;
        if let Some(size) = swept.get(d) {
            e.bytes += size;
            attributed.insert(d);
        }
    }
    let aliases = a.plan.alias_links().map(|(repo, _, d)| (repo, d));
    for (repo, d) in a.plan.layer_links().chain(aliases) {
        let e = entry(&mut by, repo);
        e.layer_links += 1;
        if let Some(size) = swept.get(d) {
            e.bytes += size;
            attributed.insert(d);
        }
    }
    for (repo, _, size) in a.plan.uploads() {
        let e = entry(&mut by, repo);
        e.uploads += 1;
        e.bytes += size;
    }
    let mut unlinked = Unlinked::default();
    for (d, size) in &swept {
        if !attributed.contains(d) {
            unlinked.blobs += 1;
            unlinked.bytes += size;
        }
    }
    let emptied = a.plan.repositories().count() as u64;
    let mut losses: Vec<RepoLoss> = by.into_values().collect();
    losses.sort_by(|x, y| y.bytes.cmp(&x.bytes).then_with(|| x.name.cmp(&y.name)));
    (losses, unlinked, emptied)
}

/// Request counts as `{"<service>": {…}}`, flattened into the report.
fn by_service<S: serde::Serializer>(r: &Option<RequestCounts>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(None)?;
    if let Some(r) = r {
        map.serialize_entry(r.service, r)?;
    }
    map.end()
}

/// The summary of a `gc` run.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    pub storage: String,
    /// The store is owned by a metadata database (GitLab's `database-in-use` lock file): the
    /// layout does not say what is live, and nothing may be deleted offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_in_use: Option<crate::pipeline::guard::database_owner::DatabaseOwned>,
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
    /// Per repository, what the plan removes, largest first (only repositories that lose something).
    pub by_repository: Vec<RepoLoss>,
    /// Swept blobs that no repository links.
    pub unlinked: Unlinked,
    /// Repositories that hold nothing once the plan is done (no tag, revision, link or upload): the
    /// plan removes them, so that they leave the registry's catalog (`repository` items).
    pub repositories_emptied: u64,
    pub problems: Vec<Problem>,
    /// Objects that disappeared between listing and reading.
    pub vanished: u64,
    pub elapsed_ms: u64,
    /// Requests made, when the store is remote: under the service's name (`s3`, `gcs`, `azure`).
    #[serde(flatten, serialize_with = "by_service")]
    pub requests: Option<RequestCounts>,
    /// Where the blobs were listed from an S3 Inventory (`--inventory`): the snapshot and what it
    /// saved and held back (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "inventory")]
    pub s3_inventory: Option<crate::storage::s3_inventory::ListingSnapshot>,
    /// What the run took from and added to the manifest cache (absent with `--no-cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_cache: Option<crate::pipeline::collect::manifest_cache::ManifestCacheStats>,
    /// A dry run given `--trash`: what the moves would cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash_plan: Option<super::trash::TrashPlan>,
    /// What regsweep's trash holds as the run leaves it (absent when it is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash: Option<crate::pipeline::execute::trash::Held>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deleted>,
    /// When a plan file was applied: how its items fared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
    /// Where `--plan` wrote the plan, and the command that executes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<PlanWritten>,
    /// A versioned bucket (S3), where deleting frees nothing by itself: its state and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_versioning: Option<BucketVersioning>,
    /// The registry's blob-descriptor cache: what the plan has cached, what a sweep evicted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::pipeline::execute::eviction::EvictionReport>,
    /// What the operator must do after a sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// `--online`: T0, the heal passes, what they put back and why, what was left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<super::trash::OnlineReport>,
    /// With `-m --policy`: what the policy made of the untagged manifests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged_policy: Option<crate::pipeline::retention::untagged::UntaggedPolicyReport>,
}

/// A bucket whose versioning keeps what regsweep deletes.
#[derive(Debug, Clone, Serialize)]
pub struct BucketVersioning {
    /// `Enabled`, `Suspended`, or `unknown` when it could not be read.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `--delete-versions`: a delete removes every version of the key and its delete markers.
    pub delete_versions: bool,
    pub advice: String,
}

impl BucketVersioning {
    fn of(
        v: &Result<Option<Versioning>, crate::storage::StorageError>,
    ) -> Option<BucketVersioning> {
        let rule = "the space comes back when the noncurrent versions expire. Add a lifecycle rule to \
            the bucket for the store's prefix: NoncurrentVersionExpiration {NoncurrentDays: 1} and \
            Expiration {ExpiredObjectDeleteMarker: true}; or run with --delete-versions, which \
            deletes every version of each key it deletes (that cannot be undone)";
        match v {
            Ok(None) => None,
            Ok(Some(v)) if v.deletes_every_version => Some(BucketVersioning {
                status: v.state.to_string(),
                error: None,
                delete_versions: true,
                advice: "--delete-versions: every version of each key deleted, and its delete \
                    markers, are deleted too, so the space comes back now; deleted versions cannot \
                    be restored"
                    .into(),
            }),
            Ok(Some(v)) => Some(BucketVersioning {
                status: v.state.to_string(),
                error: None,
                delete_versions: false,
                advice: v.advice.clone().unwrap_or_else(|| {
                    format!("on a versioned bucket a delete only adds a delete marker: {rule}")
                }),
            }),
            Err(e) => Some(BucketVersioning {
                status: "unknown".into(),
                error: Some(e.to_string()),
                delete_versions: false,
                advice: format!(
                    "what the store keeps of deleted objects could not be read (S3: \
                     s3:GetBucketVersioning; GCS: storage.buckets.get; Azure: the Blob service's \
                     properties). If it keeps them (versioning, soft delete), a delete frees the \
                     space only later; on a versioned S3 bucket a delete only adds a delete marker: \
                     {rule}"
                ),
            }),
        }
    }
}

/// Said after a sweep that deleted something when regsweep does not know the registry's cache
/// (STORAGE was a path or an S3 URL, and no --redis named one).
pub const CACHE_NOTICE: &str = "a running registry caches blob descriptors (in memory or in redis) and may still \
claim deleted blobs exist, so a later push can skip them and break the image: restart the registry (and flush its \
redis blob cache, if it uses one) before it accepts pushes again";

impl GcReport {
    pub fn new(storage: &str, options: &GcOptions, a: &Analysis) -> GcReport {
        let inv = &a.inventory;
        let total_revisions = inv.manifest_revisions();
        let eligible_manifests = a.plan.manifests().count() as u64;
        let marked_bytes = inv.blobs.bytes_of(&a.marks.blobs);
        let uploads = inv.repositories.iter().flat_map(|r| &r.uploads);
        let (by_repository, unlinked, repositories_emptied) = losses(a);
        GcReport {
            storage: storage.to_owned(),
            database_in_use: None,
            dry_run: true,
            delete_untagged: options.delete_untagged,
            grace_seconds: options.grace.as_secs(),
            repositories: inv.repositories.len() as u64,
            tags: inv.tags(),
            manifests: ManifestCounts {
                total: total_revisions,
                marked: total_revisions - eligible_manifests,
                eligible: eligible_manifests,
                held_by_grace: a.marks.manifests_held_by_grace,
                held_by_policy: a.marks.manifests_held_by_policy,
            },
            blobs: BlobCounts {
                total: inv.blobs.len() as u64 - inv.no_data.len(),
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
                    .map(|r| {
                        (r.layer_links.len() + r.dangling_layer_links.len() + r.aliases.len())
                            as u64
                    })
                    .sum(),
                // Alias links (`_layers/sha512/`) count as the `_layers` links they are.
                eligible: (a.plan.layer_links().count() + a.plan.alias_links().count()) as u64,
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
            by_repository,
            unlinked,
            repositories_emptied,
            problems: a.problems().cloned().collect(),
            vanished: inv.vanished,
            elapsed_ms: a.elapsed.as_millis() as u64,
            requests: None,
            s3_inventory: None,
            manifest_cache: None,
            trash_plan: None,
            trash: None,
            deleted: None,
            applied: None,
            plan_file: None,
            bucket_versioning: BucketVersioning::of(&a.versioning),
            cache: None,
            notice: None,
            online: None,
            untagged_policy: a.untagged_policy.clone(),
        }
    }

    /// Records a sweep's result.
    pub fn with_deleted(mut self, deleted: Deleted) -> GcReport {
        self.dry_run = false;
        self.deleted = Some(deleted);
        self
    }

    /// The human summary; `top` repositories are shown in the plan view.
    pub fn write_human(&self, out: &mut dyn Write, top: usize) -> io::Result<()> {
        super::write_owner(out, self.database_in_use.as_ref())?;
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
        super::write_snapshot(out, self.s3_inventory.as_ref())?;
        writeln!(
            out,
            "  repositories  {}, {}",
            thousands(self.repositories),
            count(self.tags, "tag", "tags")
        )?;
        let m = &self.manifests;
        writeln!(
            out,
            "  manifests     {} total, {} marked, {} eligible",
            thousands(m.total),
            thousands(m.marked),
            thousands(m.eligible)
        )?;
        let b = &self.blobs;
        writeln!(
            out,
            "  blobs         {} total ({}), {} marked ({}), {} eligible ({})",
            thousands(b.total),
            human_bytes(b.total_bytes),
            thousands(b.marked),
            human_bytes(b.marked_bytes),
            thousands(b.eligible),
            human_bytes(b.eligible_bytes)
        )?;
        if let Some(p) = &self.untagged_policy {
            write_untagged_policy(out, p, m.held_by_policy)?;
        }
        if b.held_by_grace > 0 || m.held_by_grace > 0 {
            writeln!(
                out,
                "  grace         {} ({}) and {} too recent to collect",
                count(b.held_by_grace, "blob", "blobs"),
                human_bytes(b.held_by_grace_bytes),
                count(m.held_by_grace, "manifest", "manifests")
            )?;
        }
        writeln!(
            out,
            "  layer links   {} total, {} eligible",
            thousands(self.layer_links.total),
            thousands(self.layer_links.eligible)
        )?;
        if self.uploads.count > 0 {
            writeln!(
                out,
                "  uploads       {} in _uploads ({}), {} abandoned ({}) eligible",
                thousands(self.uploads.count),
                human_bytes(self.uploads.bytes),
                thousands(self.uploads.eligible),
                human_bytes(self.uploads.eligible_bytes)
            )?;
        }
        if self.multipart_uploads.count > 0 {
            let m = &self.multipart_uploads;
            writeln!(
                out,
                "  multipart     {} ({}), {} older than grace ({}) eligible",
                count(
                    m.count,
                    "incomplete S3 multipart upload",
                    "incomplete S3 multipart uploads"
                ),
                human_bytes(m.bytes),
                thousands(m.eligible),
                human_bytes(m.eligible_bytes)
            )?;
        }
        if let Some(e) = &self.multipart_error {
            writeln!(out, "  multipart     could not be listed: {e}")?;
        }
        self.write_losses(out, top)?;
        for p in &self.problems {
            writeln!(out, "  problem       {p}")?;
        }
        if let Some(a) = &self.applied {
            writeln!(
                out,
                "  plan file     {}: {} still eligible, {} already gone; {} new since the plan left alone",
                count(a.planned, "item", "items"),
                thousands(a.eligible),
                thousands(a.already_gone),
                thousands(a.new_since_plan)
            )?;
            if a.no_longer_eligible > 0 {
                writeln!(
                    out,
                    "  left out      {} the plan lists that the store no longer lets go (--online)",
                    count(a.no_longer_eligible, "item", "items")
                )?;
            }
        }
        if let Some(p) = &self.plan_file {
            p.write_human(out)?;
        }
        if let Some(c) = &self.cache {
            c.write_human(out, self.dry_run)?;
        }
        if let (None, Some(t)) = (&self.deleted, &self.trash_plan) {
            t.write_human(out)?;
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
                    "Deleted {}, {}, {}, {} ({}), {} ({}); {}.",
                    count(d.manifests, "manifest", "manifests"),
                    count(d.tag_index_entries, "tag index entry", "tag index entries"),
                    count(d.layer_links, "layer link", "layer links"),
                    count(d.blobs, "blob", "blobs"),
                    human_bytes(d.bytes),
                    count(d.uploads, "upload", "uploads"),
                    human_bytes(d.upload_bytes),
                    count(d.failures.len() as u64, "failure", "failures")
                )?;
                if let Some(run) = &d.trash {
                    super::trash::write_trashed(run, &self.storage, out)?;
                }
                if let Some(o) = &self.online {
                    o.write_human(out)?;
                }
                if d.multipart_kept > 0 {
                    writeln!(
                        out,
                        "Left {} (a trash cannot hold them; a run without --trash aborts them).",
                        count(d.multipart_kept, "multipart upload", "multipart uploads")
                    )?;
                }
                if d.repositories > 0 {
                    writeln!(
                        out,
                        "Removed {} left empty.",
                        count(d.repositories, "repository", "repositories")
                    )?;
                }
                if d.multipart_uploads > 0 {
                    writeln!(
                        out,
                        "Aborted {} ({}).",
                        count(d.multipart_uploads, "multipart upload", "multipart uploads"),
                        human_bytes(d.multipart_bytes)
                    )?;
                }
                for f in &d.failures {
                    writeln!(out, "  failed        {}: {}", f.key, f.error)?;
                }
                if d.not_attempted > 0 {
                    let by = d
                        .stopped_by
                        .as_ref()
                        .map_or(String::new(), |s| format!(" by {s}"));
                    writeln!(
                        out,
                        "Stopped early{by}: {} not attempted; the next run plans them.",
                        count(d.not_attempted, "delete", "deletes")
                    )?;
                }
            }
        }
        if let Some(r) = &self.requests {
            writeln!(
                out,
                "  requests      {} list, {} get, {} delete, {} retries",
                thousands(r.list_requests),
                thousands(r.get_requests),
                thousands(r.delete_requests),
                thousands(r.retries)
            )?;
            if r.older_versions_deleted > 0 {
                writeln!(
                    out,
                    "  versions      {} older versions and delete markers deleted (--delete-versions)",
                    thousands(r.older_versions_deleted)
                )?;
            }
        }
        if let Some(c) = &self.manifest_cache {
            c.write_human(out)?;
        }
        if let Some(t) = &self.trash {
            super::trash::write_held(t, out)?;
        }
        if let Some(v) = &self.bucket_versioning {
            writeln!(
                out,
                "Note: bucket versioning is {}: {}.",
                v.status, v.advice
            )?;
        }
        if let Some(a) = self.cache.as_ref().and_then(|c| c.advice.as_ref()) {
            writeln!(out, "Note: {a}.")?;
        }
        if let Some(n) = &self.notice {
            writeln!(out, "Note: {n}.")?;
        }
        Ok(())
    }

    /// The plan view: the repositories that lose the most bytes, with what they lose.
    fn write_losses(&self, out: &mut dyn Write, top: usize) -> io::Result<()> {
        let rows = &self.by_repository;
        if rows.is_empty() && self.unlinked.blobs == 0 {
            return Ok(());
        }
        let verb = if self.dry_run { "loses" } else { "lost" };
        writeln!(
            out,
            "  by repository (what each {verb}; a blob linked from several counts in each):"
        )?;
        let width = rows
            .iter()
            .take(top)
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max("(linked by no repository)".len());
        for r in rows.iter().take(top) {
            let mut what = Vec::new();
            if r.manifests > 0 {
                what.push(count(r.manifests, "manifest", "manifests"));
            }
            if r.layer_links > 0 {
                what.push(count(r.layer_links, "layer link", "layer links"));
            }
            if r.uploads > 0 {
                what.push(count(r.uploads, "upload", "uploads"));
            }
            writeln!(
                out,
                "    {:>10}  {:<width$}  {}",
                human_bytes(r.bytes),
                r.name,
                what.join(", ")
            )?;
        }
        if rows.len() > top {
            let rest = &rows[top..];
            writeln!(
                out,
                "    {:>10}  … {} more {} (--top N shows more, --list every item)",
                human_bytes(rest.iter().map(|r| r.bytes).sum()),
                thousands(rest.len() as u64),
                if rest.len() == 1 {
                    "repository"
                } else {
                    "repositories"
                }
            )?;
        }
        if self.unlinked.blobs > 0 {
            writeln!(
                out,
                "    {:>10}  {:<width$}  {}",
                human_bytes(self.unlinked.bytes),
                "(linked by no repository)",
                count(self.unlinked.blobs, "blob", "blobs")
            )?;
        }
        if self.repositories_emptied > 0 {
            writeln!(
                out,
                "    {} left with nothing (no tag, manifest, link or upload), removed from the catalog",
                count(self.repositories_emptied, "repository", "repositories")
            )?;
        }
        Ok(())
    }
}

/// Every item of a plan, one a line, for `--list`.
pub fn write_plan_list(plan: &crate::pipeline::plan::Plan, out: &mut dyn Write) -> io::Result<()> {
    use crate::pipeline::plan::PlanItem;
    for item in &plan.items {
        match item {
            PlanItem::Manifest { repo, digest, tags } if tags.is_empty() => {
                writeln!(out, "manifest    {repo}@{digest}")?
            }
            PlanItem::Manifest { repo, digest, tags } => writeln!(
                out,
                "manifest    {repo}@{digest}  (in the history of tag {})",
                tags.join(", ")
            )?,
            PlanItem::LayerLink { repo, digest } => {
                writeln!(out, "layer link  {repo} -> {digest}")?
            }
            PlanItem::AliasLink {
                repo,
                alias,
                digest,
            } => writeln!(out, "alias link  {repo} {alias} -> {digest}")?,
            PlanItem::Blob { digest, size } => {
                writeln!(out, "blob        {digest}  {}", human_bytes(*size))?
            }
            PlanItem::Upload { repo, id, size } => writeln!(
                out,
                "upload      {repo}/_uploads/{id}  {}",
                human_bytes(*size)
            )?,
            PlanItem::Multipart {
                key,
                upload_id,
                size,
            } => writeln!(
                out,
                "multipart   {key} (upload {upload_id})  {}",
                human_bytes(*size)
            )?,
            PlanItem::Repository { repo } => writeln!(
                out,
                "repository  {repo}  (left empty: its folders go, nested repositories stay)"
            )?,
        }
    }
    Ok(())
}

/// What applying a plan file will do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    /// Items in the plan file.
    pub planned: u64,
    /// Of those, still eligible: what is deleted.
    pub eligible: u64,
    /// Of those, gone already (an earlier apply, or someone else).
    pub already_gone: u64,
    /// Garbage the new analysis found that the file does not list: left alone, it was not reviewed.
    pub new_since_plan: u64,
    /// `apply --online`: listed items the new analysis no longer plans (reachable again, written
    /// again, or gone), left out instead of refusing.
    #[serde(skip_serializing_if = "is_zero")]
    pub no_longer_eligible: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The policy's lines: its counts, and with `--explain` one line per judged manifest.
fn write_untagged_policy(
    out: &mut dyn Write,
    p: &crate::pipeline::retention::untagged::UntaggedPolicyReport,
    held: u64,
) -> io::Result<()> {
    writeln!(
        out,
        "  policy        {} ({}): of {} past grace, {} kept, {} expire",
        p.path,
        p.format.words(),
        count(p.judged, "untagged manifest", "untagged manifests"),
        thousands(p.kept),
        thousands(p.expired)
    )?;
    if let (Some(from), Some(to)) = (&p.pulls_from, &p.pulls_to) {
        writeln!(out, "                pull records from {from} to {to}")?;
    }
    if p.followers > 0 {
        writeln!(
            out,
            "                {} follow the image that holds them (index children, referrers): \
             {} kept with it",
            count(p.followers, "untagged manifest", "untagged manifests"),
            thousands(held.saturating_sub(p.kept))
        )?;
    }
    for d in &p.decisions {
        let why = match &d.rule {
            Some(rule) => format!("rule {rule:?}: {}", d.reason),
            None => d.reason.clone(),
        };
        writeln!(
            out,
            "    {:<6} {}@{}  {}  ({why})",
            if d.keep { "keep" } else { "expire" },
            d.repository,
            d.digest,
            d.pushed.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}
