//! The `gc` job: the analysis ([`crate::pipeline::analysis`]: inventory → catalog → mark → plan), then (only
//! when asked) the sweep. [`analyse`] computes the plan and never deletes; a dry run renders it.
//! [`execute`] sweeps a plan after checking that nothing in the analysis leaves reachability in doubt
//! and that the store is still as analysed ([`crate::pipeline::guard::recheck`]).

use crate::commands::gate::{self, CacheChoice, CacheRun, Gate, Safety};
use crate::commands::online;
use crate::commands::outcome::{Error, Outcome, Refusal, RefusedError};
use crate::commands::{CacheDir, PolicyFiles, Store, plan_output, plan_written};
use crate::model::problem::Problem;
use crate::model::progress::MaybeStopped;
use crate::model::progress::Progress;
pub use crate::pipeline::analysis::{Analysis, GcOptions, analyse, analyse_retaining};
use crate::pipeline::collect::manifest_cache::ManifestCache;
use crate::pipeline::execute::eviction::Evictor;
use crate::pipeline::execute::sweep::{self, Deleted};
use crate::pipeline::execute::trash::TrashOptions;
use crate::pipeline::guard::recheck::{self, Judged, Since};
use crate::pipeline::plan::file::PlanOutput;
use crate::pipeline::retention::untagged::UntaggedRetention;
use crate::report::GcShown;
use crate::report::gc::GcReport;
use crate::report::trash::TrashPlan;
use crate::storage::Storage;
use std::time::SystemTime;

/// Sweeps the analysed plan, unless a problem makes reachability uncertain or the store's tags and
/// revisions are no longer those the plan was made from.
///
/// Just before deleting, the repositories are listed once more and their tags and revisions compared
/// with the analysis ([`crate::pipeline::guard::recheck`]): a push or a tag move that landed during the walk (a registry not in read-only
/// mode, an S3 listing that moved under the walk) refuses the sweep instead of deleting blobs that the
/// new tag may need. What lands after this check is what read-only mode exists for.
///
/// With `trash`, what the plan deletes is moved into a new trash run instead
/// ([`crate::pipeline::execute::trash::sweeping`]); incomplete S3 multipart uploads, which cannot be moved,
/// are left (counted in [`Deleted::multipart_kept`]).
pub fn execute(
    storage: &dyn Storage,
    analysis: &Analysis,
    progress: &Progress,
    after: &dyn sweep::AfterDelete,
    trash: Option<crate::pipeline::execute::trash::TrashOptions>,
) -> Result<Deleted, RefusedError> {
    let problems: Vec<&Problem> = analysis
        .problems()
        .filter(|p| p.kind.blocks_delete())
        .collect();
    if let Some(first) = problems.first() {
        return Err(RefusedError::Problems {
            count: problems.len(),
            first: first.to_string(),
        });
    }
    recheck::none_vanished(analysis.inventory.vanished)?;
    if analysis.plan.items.is_empty() {
        return Ok(Deleted::default());
    }
    let judged = Judged::whole_store(&analysis.inventory.repositories, &analysis.inventory.blobs);
    recheck::recheck(storage, progress, &judged, Since::Analysis)?;
    let kept_plan;
    let (plan, multipart_kept) = if trash.is_some() {
        let mut p = analysis.plan.clone();
        p.items
            .retain(|i| !matches!(i, crate::pipeline::plan::PlanItem::Multipart { .. }));
        let kept = (analysis.plan.items.len() - p.items.len()) as u64;
        kept_plan = p;
        (&kept_plan, kept)
    } else {
        (&analysis.plan, 0)
    };
    let (mut deleted, run) = crate::pipeline::execute::trash::sweeping(storage, trash, |s| {
        sweep::sweep_telling(s, plan, after, progress)
    })?;
    deleted.trash = run;
    deleted.multipart_kept = multipart_kept;
    Ok(deleted)
}

/// The header of a `gc` plan of `storage` (its [`crate::storage::Storage::identity`]).
pub fn gc_header(
    storage: &str,
    options: &GcOptions,
    inv: &crate::pipeline::collect::inventory::Inventory,
    plan: &crate::pipeline::plan::Plan,
) -> crate::pipeline::plan::file::PlanHeader {
    let state = crate::pipeline::guard::recheck::Fingerprints::of(
        &inv.repositories,
        &inv.blobs,
        plan.manifests(),
    );
    crate::pipeline::plan::file::PlanHeader::new(
        crate::pipeline::plan::file::PlanCommand::Gc,
        storage,
        options.now,
        Some(crate::pipeline::plan::file::GcState {
            delete_untagged: options.delete_untagged,
            grace_seconds: options.grace.as_secs(),
            tags: state.tags,
            tags_fingerprint: state.tags_fingerprint,
            revisions: state.revisions,
            revisions_fingerprint: state.revisions_fingerprint,
        }),
    )
}

/// What `gc` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct GcRun {
    pub delete_untagged: bool,
    pub grace: std::time::Duration,
    pub delete: bool,
    /// Keep the policy's decision per manifest in the report (`--explain`).
    pub explain: bool,
    /// Where the plan file goes (`--plan`).
    pub plan: Option<std::path::PathBuf>,
    /// `--delete-versions`, for the command that applies a plan file.
    pub delete_versions: bool,
    pub safety: Safety,
    pub cache: CacheChoice,
    pub manifests: CacheDir,
    /// `--online`: collect while the registry stays writable ([`crate::commands::online`]).
    pub online: Option<crate::commands::online::OnlineOptions>,
}

/// What `gc` reads before it opens the store, so that a bad file or path fails at once: the plan
/// file's place (an unwritable one fails now, not after the listing), and the retention policy.
pub struct GcInputs {
    plan_out: Option<PlanOutput>,
    retention: Option<UntaggedRetention>,
}

impl GcInputs {
    pub fn read(run: &GcRun, policy: Option<&PolicyFiles>) -> Result<GcInputs, Error> {
        let plan_out = plan_output(run.plan.as_deref())?;
        let retention = match policy {
            Some(files) => {
                let (policy, pins, pulls) = files.read()?;
                Some(UntaggedRetention {
                    policy,
                    pins,
                    pulls,
                })
            }
            None => None,
        };
        Ok(GcInputs {
            plan_out,
            retention,
        })
    }
}

/// `gc`: the gate when deleting, the analysis, the plan file, then the sweep when asked.
pub fn run(
    store: Store<'_>,
    run: &GcRun,
    inputs: GcInputs,
    progress: &Progress,
) -> Result<(GcShown, Outcome), Error> {
    let storage = store.storage;
    let mut cache = CacheRun::new(store.target, &run.cache)?;
    let online = run.online.as_ref().filter(|_| run.delete);
    if let Some(o) = online {
        online::preflight(storage, store.arg, store.target, &cache, o)?;
    }
    let _gate = Gate::pass_if(run.delete, storage, store.arg, store.target, &run.safety)?;
    cache.check(run.delete, run.safety.force)?;
    // An online run's T0 is the store's own time, taken before anything is listed.
    let begun = match online {
        Some(o) => {
            let window = run.safety.trash.unwrap_or(online::DEFAULT_WINDOW);
            Some(online::begin(storage, window, run.grace, o)?)
        }
        None => None,
    };
    let options = GcOptions {
        delete_untagged: run.delete_untagged,
        grace: run.grace,
        now: begun.as_ref().map_or_else(SystemTime::now, |b| b.t0),
    };
    let manifests = run.manifests.open();
    let analysis = analyse_retaining(
        storage,
        &options,
        inputs.retention.as_ref(),
        progress,
        manifests.as_ref(),
    )
    .map_err(|e| {
        if let Some(b) = &begun {
            // Nothing moved: the run's record goes.
            let _ = crate::pipeline::execute::trash::drop_empty(storage, &b.run);
        }
        store.analysis(e)
    })?;
    let mut report = GcReport::new(&storage.describe(), &options, &analysis);
    if let (false, Some(p)) = (run.explain, &mut report.untagged_policy) {
        p.decisions.clear();
    }
    report.database_in_use = gate::database_owner(storage);
    report.manifest_cache = manifests.map(ManifestCache::finish);
    if let (false, Some(window)) = (run.delete, run.safety.trash) {
        let cost = storage.moves().map_or(
            "none: this store cannot move objects, so --delete --trash would fail",
            |m| m.move_cost(),
        );
        let bytes = report.blobs.eligible_bytes + report.uploads.eligible_bytes;
        report.trash_plan = Some(TrashPlan::new(
            cost,
            window,
            options.now,
            (analysis.plan.items.len() as u64, bytes),
        ));
    }
    if let Some(out) = inputs.plan_out {
        let header = gc_header(
            &storage.identity(),
            &options,
            &analysis.inventory,
            &analysis.plan,
        );
        report.plan_file = Some(plan_written(out.path(), store.arg, run.delete_versions));
        out.finish(header, analysis.plan.items.iter())
            .map_err(Error::other)?;
    }
    if let (Some(begun), Some(o)) = (begun, online) {
        let (report, outcome) =
            online::sweep(storage, report, &analysis, begun, &cache, o, progress)?;
        let mut report = report;
        report.trash = gate::trash_held(storage);
        report.requests = storage.request_counts();
        report.s3_inventory = storage.listing_snapshot();
        let shown = GcShown {
            report,
            plan: analysis.plan,
        };
        return Ok((shown, outcome));
    }
    let trash = run.safety.trash_for("gc");
    sweep(
        storage, report, analysis, run.delete, trash, &cache, progress,
    )
}

/// Sweeps the analysed plan when `delete` (evicting what goes from the registry's cache), then
/// completes the report; the outcome says how it went.
pub(crate) fn sweep(
    storage: &dyn Storage,
    mut report: GcReport,
    analysis: Analysis,
    delete: bool,
    trash: Option<TrashOptions>,
    cache: &CacheRun,
    progress: &Progress,
) -> Result<(GcShown, Outcome), Error> {
    let mut outcome = Outcome::Done;
    if delete {
        let evictor = cache.evictor()?;
        match execute(
            storage,
            &analysis,
            progress,
            gate::after_delete(evictor.as_ref()),
            trash,
        ) {
            Ok(deleted) => {
                if !deleted.failures.is_empty() || deleted.not_attempted > 0 {
                    outcome = Outcome::Partial;
                }
                let something = deleted.blobs + deleted.manifests + deleted.layer_links > 0;
                report = report.with_deleted(deleted);
                if cache.unknown && something {
                    report.notice = Some(crate::report::gc::CACHE_NOTICE.to_owned());
                }
            }
            Err(e) if e.stop().is_some() => outcome = Outcome::Stopped(e.to_string()),
            Err(e) => outcome = Outcome::Refused(Refusal::Sweep(e)),
        }
        if evictor.as_ref().is_some_and(Evictor::failed) && matches!(outcome, Outcome::Done) {
            outcome = Outcome::Partial;
        }
        report.cache = cache.report(&analysis.plan, Some(evictor.as_ref()));
    } else {
        report.cache = cache.report(&analysis.plan, None);
    }
    // The trash as the run leaves it (expired runs purged, this run's moves in).
    report.trash = gate::trash_held(storage);
    report.requests = storage.request_counts();
    report.s3_inventory = storage.listing_snapshot();
    Ok((
        GcShown {
            report,
            plan: analysis.plan,
        },
        outcome,
    ))
}
