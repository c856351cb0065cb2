//! `gc --online`: collect while the registry stays writable, and lose nothing it acknowledged.
//!
//! The registry checks that what a push references exists, then writes the link that records the
//! reference, with no lock between; a sweep that deletes in between, or a blob-descriptor cache that
//! still vouches for what was swept, makes it acknowledge an image whose objects are gone. So an
//! online run never deletes: it moves into a trash the registry never reads, and then heals
//! ([`crate::pipeline::execute::heal`]): what any link written since the run began needs comes
//! back from the trash. In order:
//!
//! 1. **Preflight** ([`preflight`]): STORAGE must be the registry's config.yml; its cache must be
//!    redis (evicted per batch and before each heal pass) or none, or `inmemory` with a restart
//!    command; a pull-through cache and a store that cannot move objects are refused. Read-only mode
//!    is not asked for.
//! 2. **T0**: the run's trash record is written first, and the time the store gives it is T0; the
//!    analysis judges ages against T0 (its grace window counts back from the store's clock) with
//!    link-aware grace (a blob is old only when its data and every link naming it are).
//! 3. **Sweep into the trash**, tag index entries, revisions, `_layers` links, then data; the
//!    re-check narrows (repositories that changed since the analysis are left out, with the
//!    digests they name) instead of refusing.
//! 4. **Settle**: `--settle` after the sweep, the cache evicted again and a heal pass; a second
//!    pass `--settle` later; with an `inmemory` cache, the restart command and one more pass.
//! 5. Every later deleting run, and `regsweep trash heal`, heal each online run still in the
//!    trash before any run is purged.

use crate::commands::gate::CacheRun;
use crate::commands::outcome::{Error, Refusal};
use crate::commands::target::Target;
use crate::model::progress::{MaybeStopped, Progress, Stopped};
use crate::model::warning;
use crate::pipeline::analysis::Analysis;
use crate::pipeline::execute::eviction::{CacheSpec, Evictor};
use crate::pipeline::execute::heal::{self, Healed, unix_nanos};
use crate::pipeline::execute::sweep::AfterDelete;
use crate::pipeline::execute::trash::{OnlineRecord, TrashRun};
use crate::pipeline::plan::{Plan, PlanItem};
pub use crate::report::trash::{OnlineReport, OnlineRestored};
use crate::storage::{Storage, StorageError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The settle time when `--settle` is not given.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(600);
/// The trash window when `--online` is given without `--trash`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Heal passes after the sweep (one more after a restart command).
const SETTLE_PASSES: u32 = 2;

/// What `--online` was given.
#[derive(Debug, Clone, Default)]
pub struct OnlineOptions {
    /// At least the registry's longest request (the load balancer's or ingress's timeout).
    pub settle: Duration,
    /// Restarts every registry replica (an `inmemory` cache forgets only that way); run through
    /// `sh -c` after the settle passes, then one more pass.
    pub restart_command: Option<String>,
}

/// Refuses an online run whose promise this registry cannot keep (nothing is moved then).
pub fn preflight(
    storage: &dyn Storage,
    storage_arg: &str,
    target: &Target,
    cache: &CacheRun,
    options: &OnlineOptions,
) -> Result<(), Refusal> {
    if target.readonly.is_none() {
        return Err(Refusal::Online(format!(
            "{storage_arg} is not a registry config.yml: an online run reads the registry's \
             config to know its blob-descriptor cache and whether it is a pull-through cache; \
             name the config.yml the registry runs with"
        )));
    }
    if let Some(url) = &target.proxy {
        return Err(Refusal::Online(format!(
            "{storage_arg} configures a pull-through cache (proxy.remoteurl {url}), which writes \
             tags without a client's push; collect it offline"
        )));
    }
    match (&cache.spec, &options.restart_command) {
        (Some(CacheSpec::InMemory), None) => {
            return Err(Refusal::Online(format!(
                "{storage_arg} gives the registry an inmemory blob-descriptor cache, which goes on \
                 vouching for what was swept until the registry restarts; switch it to redis (or \
                 off), or pass --restart-command CMD that restarts every replica"
            )));
        }
        (Some(CacheSpec::Unusable { why }), _) => {
            return Err(Refusal::Online(format!(
                "the registry's redis cache cannot be evicted: {why}"
            )));
        }
        _ => {}
    }
    if storage.moves().is_none() {
        return Err(Refusal::Online(format!(
            "{} cannot move objects, and an online run moves what it sweeps into the trash",
            storage.describe()
        )));
    }
    Ok(())
}

/// An online run, begun: its trash run (record written, T0 taken from the store) and its report.
pub struct Begun {
    pub run: TrashRun,
    pub t0: SystemTime,
    pub report: OnlineReport,
}

/// Opens the run's trash and takes T0 from the store's clock (the record's time).
pub fn begin(
    storage: &dyn Storage,
    window: Duration,
    grace: Duration,
    options: &OnlineOptions,
) -> Result<Begun, Error> {
    let failed = |e: StorageError| Error::failed("cannot write the online run's trash record", e);
    let mut run = TrashRun::open(storage, "gc", window, SystemTime::now()).map_err(failed)?;
    let t0 = run.store_time(storage).map_err(failed)?;
    let since = t0.checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    run.record.online = Some(OnlineRecord {
        t0: humantime::format_rfc3339_millis(t0).to_string(),
        t0_unix_nanos: unix_nanos(t0),
        grace_seconds: grace.as_secs(),
        settle_seconds: options.settle.as_secs(),
        heal_since_unix_nanos: unix_nanos(since),
        ..OnlineRecord::default()
    });
    run.save(storage).map_err(failed)?;
    let report = OnlineReport {
        t0: humantime::format_rfc3339_millis(t0).to_string(),
        trash_run: run.record.id.clone(),
        window_seconds: window.as_secs(),
        settle_seconds: options.settle.as_secs(),
        ..OnlineReport::default()
    };
    Ok(Begun { run, t0, report })
}

/// Lists the repositories again and leaves out of `plan` those that changed since the analysis,
/// with every digest they name now; returns their names and how many digests.
pub fn narrow(
    storage: &dyn Storage,
    analysis: &Analysis,
    plan: &mut Plan,
    progress: &Progress,
) -> Result<(Vec<String>, u64), Error> {
    let now =
        crate::pipeline::guard::recheck::relist(storage, progress).map_err(|e| match e.stop() {
            Some(s) => Error::Stopped(s.to_string()),
            None => Error::other(e),
        })?;
    let (names, digests) = crate::pipeline::guard::recheck::changed_since(
        &analysis.inventory.repositories,
        &analysis.inventory.blobs,
        &now.repositories,
    );
    let repos = names.iter().map(String::as_str).collect();
    plan.narrow(&repos, &digests);
    Ok((names, digests.len() as u64))
}

/// Tells the cache again that everything the plan moved is gone: an in-flight miss → stat → set
/// may have put a key back since the batch's eviction.
fn evict_again(evictor: Option<&Evictor>, plan: &Plan) {
    let Some(evictor) = evictor else {
        return;
    };
    let links: Vec<(&str, &crate::model::digest::Digest)> = plan
        .items
        .iter()
        .filter_map(|i| match i {
            PlanItem::Manifest { repo, digest, .. } | PlanItem::LayerLink { repo, digest } => {
                Some((repo.as_str(), digest))
            }
            _ => None,
        })
        .collect();
    let blobs: Vec<&crate::model::digest::Digest> = plan.blobs().map(|(d, _)| d).collect();
    for chunk in links.chunks(1000) {
        evictor.links_deleted(chunk);
    }
    for chunk in blobs.chunks(1000) {
        evictor.blobs_deleted(chunk);
    }
}

/// Waits `d`, a stop cutting it short.
fn wait(d: Duration, progress: &Progress) -> Result<(), Stopped> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        progress.check()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(200)));
    }
    progress.check()
}

/// The settle: each pass `settle` after the last, the cache evicted again, then a heal pass over
/// this run; with a restart command, it runs after the passes, then one more pass. A stop ends it
/// early: the next deleting run, or `regsweep trash heal`, heals what is left.
pub fn settle(
    storage: &dyn Storage,
    begun: &mut Begun,
    plan: &Plan,
    evictor: Option<&Evictor>,
    options: &OnlineOptions,
    progress: &Progress,
) -> Result<(), Stopped> {
    let pass = |begun: &mut Begun| -> Result<(), Stopped> {
        progress.phase(
            &format!(
                "settling: waiting {} before a heal pass",
                humantime::format_duration(options.settle)
            ),
            crate::model::progress::Count::Listed,
            None,
        );
        wait(options.settle, progress)?;
        evict_again(evictor, plan);
        match heal::recorded_pass(storage, &mut begun.run) {
            Ok(healed) => begun.report.heard(healed),
            Err(e) => begun.report.failures.push(format!("heal pass: {e}")),
        }
        Ok(())
    };
    for _ in 0..SETTLE_PASSES {
        pass(begun)?;
    }
    if let Some(cmd) = &options.restart_command {
        let status = std::process::Command::new("sh").arg("-c").arg(cmd).status();
        begun.report.restart = Some(match status {
            Ok(s) if s.success() => "ran".to_owned(),
            Ok(s) => format!("`{cmd}` failed: {s}"),
            Err(e) => format!("`{cmd}` could not run: {e}"),
        });
        pass(begun)?;
    }
    Ok(())
}

/// The online sweep of `analysis`: narrowed by the re-check, moved into the begun run's trash
/// (each batch evicted from the cache), then settled. The report gains `deleted` (what moved) and
/// `online`.
pub fn sweep(
    storage: &dyn Storage,
    mut report: crate::report::gc::GcReport,
    analysis: &Analysis,
    mut begun: Begun,
    cache: &CacheRun,
    options: &OnlineOptions,
    progress: &Progress,
) -> Result<
    (
        crate::report::gc::GcReport,
        crate::commands::outcome::Outcome,
    ),
    Error,
> {
    use crate::commands::outcome::{Outcome, RefusedError};
    let drop_run = |run: &TrashRun| {
        if let Err(e) = crate::pipeline::execute::trash::drop_empty(storage, run) {
            warning::emit(format!(
                "warning: cannot remove the empty trash run {}: {e}",
                run.record.id
            ));
        }
    };
    // A link read while the registry writes it (its filesystem driver before 3.1 writes in place:
    // an empty read) or a tag whose revision a DELETE is taking away are what a writable registry
    // shows in passing: the repository is left out of this run (the heal covers what the link, once
    // written, needs). Anything else that leaves reachability unproven refuses, as offline.
    let (passing, problems): (Vec<_>, Vec<_>) = (analysis.problems())
        .filter(|p| p.kind.blocks_delete())
        .partition(|p| {
            matches!(
                p.kind,
                crate::model::problem::ProblemKind::BadLink
                    | crate::model::problem::ProblemKind::DanglingTag
            ) && p.repo.is_some()
        });
    if let Some(first) = problems.first() {
        drop_run(&begun.run);
        let refused = RefusedError::Problems {
            count: problems.len(),
            first: first.to_string(),
        };
        return Ok((report, Outcome::Refused(Refusal::Sweep(refused))));
    }
    let evictor = cache.evictor()?;
    let mut plan = analysis.plan.clone();
    // Multipart uploads cannot be moved; and a repository's folders are left in place, since the
    // registry creates a link's folders before it writes the link, so removing an empty folder
    // could fail a push in flight (the next offline run removes them).
    let multipart_kept = analysis.plan.multipart().count() as u64;
    plan.items
        .retain(|i| !matches!(i, PlanItem::Multipart { .. } | PlanItem::Repository { .. }));
    if !plan.items.is_empty() {
        let (names, digests) = match narrow(storage, analysis, &mut plan, progress) {
            Ok(n) => n,
            Err(e) => {
                drop_run(&begun.run);
                return Err(e);
            }
        };
        begun.report.narrowed_repositories = names;
        begun.report.narrowed_digests = digests;
    }
    if !passing.is_empty() {
        let repos: std::collections::HashSet<&str> =
            passing.iter().filter_map(|p| p.repo.as_deref()).collect();
        let digests: std::collections::HashSet<_> =
            passing.iter().filter_map(|p| p.digest).collect();
        plan.narrow(&repos, &digests);
        for r in repos {
            if !begun.report.narrowed_repositories.iter().any(|n| n == r) {
                begun.report.narrowed_repositories.push(r.to_owned());
            }
        }
        begun.report.narrowed_digests += digests.len() as u64;
    }
    let after = crate::commands::gate::after_delete(evictor.as_ref());
    // During a sweep longer than the settle time, a heal pass every settle time, so that an image
    // pushed meanwhile is not left unpullable until the sweep ends.
    let snapshot = begun.run.clone();
    let since = begun.t0.checked_sub(grace_of(&begun)).unwrap_or(UNIX_EPOCH);
    let done = AtomicBool::new(false);
    let (swept, during) = std::thread::scope(|scope| {
        let sweeping = scope.spawn(|| {
            let swept = crate::pipeline::execute::trash::sweeping_into(
                storage,
                &mut begun.run,
                true,
                |s| crate::pipeline::execute::sweep::sweep_telling(s, &plan, after, progress),
            );
            done.store(true, Ordering::SeqCst);
            swept
        });
        let mut during = Healed::default();
        loop {
            let end = Instant::now() + options.settle;
            while !done.load(Ordering::SeqCst) && Instant::now() < end {
                std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
            }
            if done.load(Ordering::SeqCst) {
                break;
            }
            evict_again(evictor.as_ref(), &plan);
            match heal::pass(storage, &snapshot, since) {
                Ok(h) => during.add(h),
                Err(e) => during
                    .failures
                    .push(format!("heal pass during the sweep: {e}")),
            }
        }
        (sweeping.join().expect("the sweep does not panic"), during)
    });
    let mut deleted =
        swept.map_err(|e| Error::failed("cannot complete the trash run's record", e))?;
    if during.objects + during.already_there > 0 {
        // The record counts what the sweep moved; what the passes put back is no longer held.
        crate::pipeline::execute::trash::recount_record(storage, &mut begun.run)
            .map_err(|e| Error::failed("cannot count the trash run again", e))?;
    }
    begun.report.heard(during);
    deleted.multipart_kept = multipart_kept;
    let moved = begun.run.record.moved;
    let mut outcome =
        Outcome::partial_if(!deleted.failures.is_empty() || deleted.not_attempted > 0);
    if let Some(s) = &deleted.stopped_by {
        outcome = Outcome::Stopped(s.clone());
    }
    if moved == 0 {
        drop_run(&begun.run);
    } else if let Err(stop) = settle(
        storage,
        &mut begun,
        &plan,
        evictor.as_ref(),
        options,
        progress,
    ) {
        begun.report.failures.push(format!(
            "the settle was stopped ({stop}); `regsweep trash heal` or the next deleting run heals this run"
        ));
        outcome = Outcome::Stopped(stop.to_string());
    }
    deleted.trash = Some(begun.run.record.clone());
    if matches!(outcome, Outcome::Done)
        && (begun.report.partial() || evictor.as_ref().is_some_and(Evictor::failed))
    {
        outcome = Outcome::Partial;
    }
    report = report.with_deleted(deleted);
    report.cache = cache.report(&plan, Some(evictor.as_ref()));
    report.online = Some(begun.report);
    Ok((report, outcome))
}

/// The grace window the run began with.
fn grace_of(begun: &Begun) -> Duration {
    Duration::from_secs(
        begun
            .run
            .record
            .online
            .as_ref()
            .map_or(0, |o| o.grace_seconds),
    )
}
