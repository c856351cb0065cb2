//! The analysis: inventory → catalog → mark → plan, for every command that judges blobs (`gc`,
//! `apply`, and the reports that weigh them). It never deletes; [`crate::commands::gc::execute`] sweeps what it
//! planned, after the re-check. There is no dry-run flag below this point: what the dry run shows is
//! exactly what `--delete` executes.

use crate::model::problem::Problem;
use crate::model::progress::{Count, Progress};
use crate::pipeline::collect::blob_table::BlobId;
use crate::pipeline::collect::catalog::{self, Catalog};
use crate::pipeline::collect::inventory::{self, Inventory};
use crate::pipeline::collect::mark::{self, MarkOptions, Marks};
use crate::pipeline::collect::walk;
use crate::pipeline::collect::{AnalysisError, unless_stopped};
use crate::pipeline::plan::Plan;
use crate::pipeline::retention::untagged::{self, UntaggedPolicyReport, UntaggedRetention};
use crate::storage::{MultipartUpload, Storage};
use std::time::{Duration, Instant, SystemTime};

/// What to collect.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Untagged manifests are garbage too (`-m`).
    pub delete_untagged: bool,
    /// Blobs (and, with `delete_untagged`, manifests) written within this window are held back.
    pub grace: Duration,
    /// The time the grace window ends at (normally now).
    pub now: SystemTime,
}

impl GcOptions {
    /// The time after which data counts as recent: the grace window's start.
    pub fn cutoff_time(&self) -> SystemTime {
        self.now
            .checked_sub(self.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// [`GcOptions::cutoff_time`] in Unix seconds. Times in its own second are learned exactly
    /// before they are judged, so that whole seconds compared with it tell "written after it"
    /// exactly (see [`crate::model::time::seconds_against`]).
    pub fn grace_cutoff(&self) -> i64 {
        crate::model::time::unix_seconds(self.cutoff_time())
    }
}

/// Everything the analysis found.
#[derive(Debug)]
pub struct Analysis {
    pub inventory: Inventory,
    pub catalog: Catalog,
    pub marks: Marks,
    pub plan: Plan,
    /// Incomplete multipart uploads (S3), all of them; those past the grace window are in the plan.
    pub multipart: Vec<MultipartUpload>,
    /// Why multipart uploads could not be listed (they do not bear on what is reachable, so this
    /// does not stop a sweep).
    pub multipart_error: Option<String>,
    /// The bucket's versioning (S3): `Enabled` or `Suspended` means deletes leave versions behind;
    /// `Err` says why it could not be read.
    pub versioning: Result<Option<crate::storage::Versioning>, crate::storage::StorageError>,
    /// With `gc -m --policy`: what the policy made of the untagged manifests.
    pub untagged_policy: Option<UntaggedPolicyReport>,
    pub elapsed: Duration,
}

impl Analysis {
    /// Problems from the walk and from reading manifests.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.inventory
            .problems
            .iter()
            .chain(self.catalog.problems.iter())
    }
}

/// The store as read: the walk, and every manifest it found (each read once, or answered by the
/// manifest cache). Where every command that judges the store starts.
#[derive(Debug)]
pub struct StoreRead {
    pub inventory: Inventory,
    pub catalog: Catalog,
    /// Incomplete multipart uploads (S3), when asked for and listed.
    pub multipart: Vec<MultipartUpload>,
    /// Why they could not be listed.
    pub multipart_error: Option<String>,
}

/// Whether [`read`] lists incomplete multipart uploads too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Multipart {
    Listed,
    NotListed,
}

/// Walks the store and reads its manifests. Incomplete multipart uploads are listed beside the walk
/// (one listing of the whole bucket, which some S3 servers answer by scanning every object: seconds
/// that overlap the walk instead of following it). Fails when the store cannot be listed (see
/// [`crate::pipeline::collect::walk::scan`]), or when a stop was asked for.
pub fn read(
    storage: &dyn Storage,
    detail: inventory::Detail,
    multipart: Multipart,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<StoreRead, AnalysisError> {
    // On a filesystem the listing answers at once; on S3 a worker waits for it while the others walk.
    let (scan, multipart) = rayon::join(
        || walk::scan(storage, detail, progress),
        || match multipart {
            Multipart::Listed => storage
                .multipart()
                .map_or(Ok(Vec::new()), |m| m.multipart_uploads())
                .map_err(|e| e.to_string()),
            Multipart::NotListed => Ok(Vec::new()),
        },
    );
    let (multipart, multipart_error) = match multipart {
        Ok(m) => (m, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let inventory = unless_stopped(progress, scan)?;
    let catalog = catalog::read(storage, &inventory, progress, cache);
    progress.check()?;
    Ok(StoreRead {
        inventory,
        catalog,
        multipart,
        multipart_error,
    })
}

/// Computes the plan. Fails when the store cannot be listed (see [`crate::pipeline::collect::walk::scan`]), or when a
/// stop was asked for.
pub fn analyse(
    storage: &dyn Storage,
    options: &GcOptions,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<Analysis, AnalysisError> {
    analyse_retaining(storage, options, None, progress, cache)
}

/// As [`analyse`], keeping every manifest's references in the analysis's catalog for a caller that
/// reads them after the plan (`export`). [`analyse`] lets them go once the last mark is made: at a
/// million blobs they are 12 MB, a tenth of the peak.
pub fn analyse_keeping_references(
    storage: &dyn Storage,
    options: &GcOptions,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<Analysis, AnalysisError> {
    analyse_with(storage, options, None, progress, cache, true)
}

/// As [`analyse`]; with `delete_untagged` and a `retention` policy, the untagged manifests past the
/// grace window are judged by it, and only those it expires are planned (see
/// [`crate::pipeline::retention::untagged`]).
pub fn analyse_retaining(
    storage: &dyn Storage,
    options: &GcOptions,
    retention: Option<&UntaggedRetention>,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<Analysis, AnalysisError> {
    analyse_with(storage, options, retention, progress, cache, false)
}

fn analyse_with(
    storage: &dyn Storage,
    options: &GcOptions,
    retention: Option<&UntaggedRetention>,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
    keep_references: bool,
) -> Result<Analysis, AnalysisError> {
    let start = Instant::now();
    let versioning = storage.versions().map_or(Ok(None), |v| v.versioning());
    // What tags have pointed at matters only to the untagged manifests -m deletes (their tags'
    // index entries go with them).
    let detail = if options.delete_untagged {
        inventory::Detail::Names
    } else {
        inventory::Detail::Targets
    };
    let StoreRead {
        mut inventory,
        mut catalog,
        multipart,
        multipart_error,
    } = read(storage, detail, Multipart::Listed, progress, cache)?;
    // Whole seconds cannot tell what was written in the cutoff's own second before it from what
    // was written after: those few are asked of the store.
    let cutoff = options.cutoff_time();
    inventory.blobs.settle_at(storage, cutoff, None);
    walk::upload_times(storage, &mut inventory, cutoff);
    let marking = format!(
        "marking ({})",
        crate::model::text::count(catalog.len() as u64, "manifest", "manifests")
    );
    progress.phase(&marking, Count::ManifestsRead, None);
    let mark_options = MarkOptions {
        delete_untagged: options.delete_untagged,
        grace_cutoff: options.grace_cutoff(),
    };
    // Untagged revisions are judged by their data's age. Where the scan did not tell it (an
    // unknown age counts as written now), learn it for the revisions no tag reaches (a mark with no
    // grace window finds them) before the mark that judges them.
    let unknown_age = |&id: &BlobId| inventory.blobs.known_modified(id).is_none();
    if options.delete_untagged
        && (inventory.repositories.iter()).any(|r| r.revisions.stored().iter().any(unknown_age))
    {
        let no_grace = MarkOptions {
            grace_cutoff: i64::MAX,
            ..mark_options
        };
        let untagged: roaring::RoaringBitmap = mark::mark(&inventory, &catalog, no_grace)
            .untagged
            .iter()
            .flatten()
            .filter_map(|d| inventory.blobs.id(d))
            .collect();
        let learned = unknown_times(&inventory, &untagged);
        walk::measure(storage, &mut inventory, &untagged, progress);
        inventory.blobs.settle_at(storage, cutoff, Some(&learned));
        progress.check()?;
        progress.phase(&marking, Count::ManifestsRead, None);
    }
    let mut marks = mark::mark(&inventory, &catalog, mark_options);
    let mut untagged_policy = None;
    let mut policy_kept = None;
    if let (true, Some(retention)) = (options.delete_untagged, retention) {
        let now = crate::model::time::unix_seconds(options.now);
        let (kept, report) = untagged::judge(
            storage,
            &inventory,
            &catalog,
            &marks.untagged,
            retention,
            now,
        );
        marks = mark::mark_keeping(&inventory, &catalog, mark_options, &kept);
        untagged_policy = Some(report);
        policy_kept = Some(kept);
        progress.check()?;
    }
    let ids = walk::to_measure(&inventory, &marks.blobs);
    let learned = unknown_times(&inventory, &ids);
    walk::measure(storage, &mut inventory, &ids, progress);
    inventory.blobs.settle_at(storage, cutoff, Some(&learned));
    progress.check()?;
    // Link-aware grace: what would go is judged by the age of the links naming it too (a
    // re-push, a mount or a deduplicated upload writes links and no data). An untagged revision
    // whose link is young is a root again: mark once more.
    let would_go: roaring::RoaringBitmap = (0..inventory.blobs.len() as u32)
        .filter(|&id| {
            !marks.blobs.contains(id) && inventory.blobs.modified(id) <= options.grace_cutoff()
        })
        .collect();
    if walk::link_aware_times(storage, &inventory, &would_go, cutoff) > 0 && options.delete_untagged
    {
        marks = match &policy_kept {
            Some(kept) => mark::mark_keeping(&inventory, &catalog, mark_options, kept),
            None => mark::mark(&inventory, &catalog, mark_options),
        };
    }
    // The marks are made: what manifests reference is not asked again (but by export).
    if !keep_references {
        catalog.forget_references();
    }
    let candidates: Vec<usize> = (inventory.repositories.iter().zip(&marks.untagged))
        .enumerate()
        .filter(|(_, (r, untagged))| {
            crate::pipeline::plan::could_be_left_empty(r, untagged, options.grace_cutoff())
                && !(r.layer_links.is_empty()
                    && r.dangling_layer_links.is_empty()
                    && r.aliases.is_empty())
        })
        .map(|(i, _)| i)
        .collect();
    walk::layer_link_times(storage, &mut inventory, &candidates, cutoff);
    let mut plan = Plan::build(&inventory, &marks, options.grace_cutoff());
    let dead = walk::dead_layer_links(storage, &inventory, options.grace_cutoff());
    plan.add_dead_layer_links(&inventory, &dead);
    let dead = walk::dead_alias_links(storage, &inventory, options.grace_cutoff());
    plan.add_dead_alias_links(&inventory, &dead);
    plan.add_multipart(&multipart, options.grace_cutoff());
    progress.check()?;
    Ok(Analysis {
        inventory,
        catalog,
        marks,
        plan,
        multipart,
        multipart_error,
        versioning,
        untagged_policy,
        elapsed: start.elapsed(),
    })
}

/// Those of `ids` whose time the scan did not tell: the ones a measure learns.
fn unknown_times(
    inv: &crate::pipeline::collect::inventory::Inventory,
    ids: &roaring::RoaringBitmap,
) -> roaring::RoaringBitmap {
    ids.iter()
        .filter(|&id| inv.blobs.known_modified(id).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::Digest;
    use crate::model::layout;
    use crate::pipeline::plan::PlanItem;
    use crate::storage::mem::MemStorage;
    use std::collections::BTreeSet;

    const HOUR: Duration = Duration::from_secs(3600);

    /// Puts `bytes` as a blob written `age` ago; returns its digest.
    fn blob(store: &MemStorage, bytes: &[u8], age: Duration) -> Digest {
        let d = Digest::of(bytes);
        store.put_at(&layout::blob_data(&d), bytes, SystemTime::now() - age);
        d
    }

    /// An OCI image manifest of `config` and `layers` (each with its bytes, for the size).
    fn manifest(config: (&Digest, usize), layers: &[(&Digest, usize)]) -> Vec<u8> {
        let desc = |mt: &str, (d, size): (&Digest, usize)| serde_json::json!({"mediaType": mt, "digest": d.to_string(), "size": size});
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc("application/vnd.oci.image.config.v1+json", config),
            "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar", *l)).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    /// One repository: tag v1 names manifest `kept` (config + layer), an untagged revision `old`
    /// (config + a layer only it has), and two blobs nothing names, one written an hour ago and one
    /// just now. Returns (kept, old, old's layer, the old orphan, the new orphan).
    fn store() -> (MemStorage, [Digest; 5]) {
        let s = MemStorage::new();
        let day = 24 * HOUR;
        let config = blob(&s, b"{}", day);
        let layer = blob(&s, b"layer", day);
        let old_layer = blob(&s, b"old layer", day);
        let kept = blob(&s, &manifest((&config, 2), &[(&layer, 5)]), day);
        let old = blob(&s, &manifest((&config, 2), &[(&old_layer, 9)]), day);
        let orphan = blob(&s, b"orphan", day);
        let fresh = blob(&s, b"fresh", Duration::ZERO);
        let repo = "team/app";
        for d in [&config, &layer, &old_layer] {
            s.put_at(
                &layout::layer_link(repo, d),
                d.to_string(),
                SystemTime::now() - day,
            );
        }
        for d in [&kept, &old] {
            s.put_at(
                &layout::revision_link(repo, d),
                d.to_string(),
                SystemTime::now() - day,
            );
        }
        s.put_at(
            &layout::tag_current(repo, "v1"),
            kept.to_string(),
            SystemTime::now() - day,
        );
        (s, [kept, old, old_layer, orphan, fresh])
    }

    fn planned(a: &Analysis) -> BTreeSet<String> {
        (a.plan.items.iter())
            .map(|i| match i {
                PlanItem::Manifest { repo, digest, .. } => format!("manifest {repo}@{digest}"),
                PlanItem::LayerLink { repo, digest } => format!("link {repo} {digest}"),
                PlanItem::Blob { digest, .. } => format!("blob {digest}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn options(delete_untagged: bool, grace: Duration) -> GcOptions {
        GcOptions {
            delete_untagged,
            grace,
            now: SystemTime::now(),
        }
    }

    #[test]
    fn the_plan_sweeps_what_no_tag_reaches_past_the_grace_window() {
        let (s, [_kept, old, old_layer, orphan, fresh]) = store();
        let progress = Progress::new();

        // Without -m the untagged revision keeps its layer; the new orphan is within the hour.
        let a = analyse(&s, &options(false, HOUR), &progress, None).unwrap();
        assert_eq!(planned(&a), BTreeSet::from([format!("blob {orphan}")]));
        assert_eq!(a.plan.blobs_held_by_grace, 1);

        // With -m and no grace: the revision, its data, its own layer and that layer's link go too.
        let a = analyse(&s, &options(true, Duration::ZERO), &progress, None).unwrap();
        let want: BTreeSet<String> = [
            format!("manifest team/app@{old}"),
            format!("blob {old}"),
            format!("blob {old_layer}"),
            format!("link team/app {old_layer}"),
            format!("blob {orphan}"),
            format!("blob {fresh}"),
        ]
        .into();
        assert_eq!(planned(&a), want);
        assert!(a.multipart_error.is_none());
        // Only reads: the analysis deleted nothing.
        assert_eq!(s.calls(crate::storage::mem::Op::Delete), 0);
    }

    #[test]
    fn nothing_written_after_the_grace_windows_start_is_planned_in_its_own_second() {
        let s = MemStorage::new();
        // The run starts at a whole second and a quarter; blobs nothing names are written in that
        // second, before and after the start, and in the second before.
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_900_000_000_250);
        let at = |bytes: &[u8], millis: i64| {
            let d = Digest::of(bytes);
            let t = if millis >= 0 {
                start + Duration::from_millis(millis as u64)
            } else {
                start - Duration::from_millis((-millis) as u64)
            };
            s.put_at(&layout::blob_data(&d), bytes, t);
            d
        };
        let before = at(b"before, same second", -200);
        let earlier = at(b"the second before", -1_000);
        let after = at(b"after, same second", 500);
        let options = GcOptions {
            delete_untagged: false,
            grace: Duration::ZERO,
            now: start,
        };
        let a = analyse(&s, &options, &Progress::new(), None).unwrap();
        assert_eq!(
            planned(&a),
            BTreeSet::from([format!("blob {before}"), format!("blob {earlier}")])
        );
        assert_eq!(a.plan.blobs_held_by_grace, 1, "{after} is held");
        // A grace window of less than a second starts inside a second too.
        let options = GcOptions {
            grace: Duration::from_millis(500),
            now: start + Duration::from_millis(400),
            ..options
        };
        let a = analyse(&s, &options, &Progress::new(), None).unwrap();
        assert_eq!(
            planned(&a),
            BTreeSet::from([format!("blob {before}"), format!("blob {earlier}")])
        );
    }

    #[test]
    fn a_time_after_the_cutoff_never_counts_in_its_second() {
        use crate::model::time::seconds_against;
        let cutoff = SystemTime::UNIX_EPOCH + Duration::from_millis(100_250);
        let ms = |m: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(m);
        assert_eq!(seconds_against(ms(100_100), cutoff), 100);
        assert_eq!(seconds_against(ms(100_250), cutoff), 100);
        assert_eq!(seconds_against(ms(100_251), cutoff), 101);
        assert_eq!(seconds_against(ms(101_500), cutoff), 101);
        assert_eq!(seconds_against(ms(99_999), cutoff), 99);
        // A whole second in the cutoff's second (what a store of whole seconds gives for anything
        // written in it) cannot be told from after: after.
        assert_eq!(seconds_against(ms(100_000), cutoff), 101);
        assert_eq!(seconds_against(ms(99_000), cutoff), 99);
        assert_eq!(seconds_against(cutoff, cutoff), 100);
    }
}
