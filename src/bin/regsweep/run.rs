//! Runs a parsed command line: resolves STORAGE once, calls the library, renders to stdout.

use crate::cli::{
    ApplyArgs, AuditArgs, CacheArgs, Cli, Command, DuArgs, ExportArgs, GcArgs, ManifestCacheArgs,
    PruneArgs, RunArgs, S3Args, SafetyArgs, ShardCommand, ShardManifestsArgs, ShardMergeArgs,
    TrashCommand, TrashListArgs, TrashPurgeArgs, TrashRestoreArgs, ViewArgs,
};
use crate::display::{Display, Mode};
use anyhow::Context;
use regsweep::commands::config::{StorageSpec, Target};
use regsweep::commands::gc::{self, GcOptions};
use regsweep::model::progress::Progress;
use regsweep::pipeline::collect::AnalysisError;
use regsweep::pipeline::collect::manifest_cache::ManifestCache;
use regsweep::pipeline::execute::eviction::{CacheReport, CacheSpec, Evictor, RedisSpec};
use regsweep::pipeline::execute::trash::TrashOptions;
use regsweep::pipeline::plan::file::{PlanCommand, PlanFile, PlanHeader, PlanOutput};
use regsweep::report::WriteJson;
use regsweep::report::metrics::{Metrics, MetricsOutput};
use regsweep::storage::Storage;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The job ran and did all it was asked.
    Success = 0,
    /// The job ran, but some deletes failed (gc), or problems were found (audit).
    Partial = 1,
    /// The job could not run, or refused to delete.
    Error = 2,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// One run of a command on a store: its progress and display, and its metrics file.
struct Job {
    progress: Arc<Progress>,
    display: Option<Display>,
    metrics: Metrics,
    out: Option<MetricsOutput>,
    started: SystemTime,
}

impl Job {
    /// Starts the run: the metrics file's temporary file first (an unwritable path fails before
    /// any work), then the signal handlers and the progress display.
    fn start(command: &str, storage: &str, args: &RunArgs) -> anyhow::Result<Job> {
        let out = args
            .metrics_file
            .as_deref()
            .map(MetricsOutput::create)
            .transpose()?;
        let progress = Arc::new(Progress::new());
        let usr1 = crate::display::install_signals(&progress)
            .context("cannot install the signal handlers")?;
        let mode = if args.quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Lines {
                interval: args.progress_interval,
            }
        };
        Ok(Job {
            display: Some(Display::start(Arc::clone(&progress), mode, usr1)),
            progress,
            metrics: Metrics::new(command, storage),
            out,
            started: SystemTime::now(),
        })
    }

    /// Ends the progress display (before a report or a last word).
    fn end_display(&mut self) {
        if let Some(d) = self.display.take() {
            d.finish();
        }
    }

    /// Writes a report to stdout, flushed, after the progress display has ended.
    fn print(
        &mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        self.end_display();
        print(write)
    }

    /// Ends the run: the error said, the metrics file written; the exit status.
    fn end(mut self, result: anyhow::Result<Exit>) -> Exit {
        self.end_display();
        let exit = match result {
            Ok(exit) => exit,
            Err(e) => {
                eprintln!("regsweep: {e:#}");
                Exit::Error
            }
        };
        let Some(out) = self.out.take() else {
            return exit;
        };
        let seconds = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let end = seconds(SystemTime::now());
        let last_success = if exit == Exit::Success {
            Some(end)
        } else {
            out.previous()
                .and_then(|text| self.metrics.last_success_in(&text))
        };
        self.metrics
            .run(seconds(self.started), end, exit as u8, last_success);
        match out.finish(&self.metrics) {
            Ok(()) => exit,
            Err(e) => {
                eprintln!("regsweep: {e}");
                Exit::Error
            }
        }
    }
}

/// An analysis's result: stopped by a signal is said here and exits 1; a listing that failed is an
/// error naming the store.
fn analysed<T>(
    job: &mut Job,
    result: Result<T, AnalysisError>,
    storage: &dyn Storage,
) -> anyhow::Result<Result<T, Exit>> {
    match result {
        Ok(t) => Ok(Ok(t)),
        Err(AnalysisError::Stopped(s)) => {
            job.end_display();
            eprintln!("regsweep: {s}");
            Ok(Err(Exit::Partial))
        }
        Err(AnalysisError::Storage(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot list {}", storage.describe())))
        }
    }
}

pub fn run(cli: Cli) -> Exit {
    let (name, storage, args) = match &cli.command {
        Command::Gc(a) => ("gc", &a.storage, &a.run),
        Command::Du(a) => ("du", &a.storage, &a.run),
        Command::Audit(a) => ("audit", &a.storage, &a.run),
        Command::Export(a) => ("export", &a.storage, &a.run),
        Command::Shard(ShardCommand::Manifests(a)) => ("shard manifests", &a.storage, &a.run),
        Command::Shard(ShardCommand::Merge(a)) => ("shard merge", &a.storage, &a.run),
        Command::PruneTags(a) => ("prune-tags", &a.storage, &a.run),
        Command::Apply(a) => ("apply", &a.storage, &a.run),
        Command::Trash(TrashCommand::List(a)) => ("trash list", &a.storage, &a.run),
        Command::Trash(TrashCommand::Restore(a)) => ("trash restore", &a.storage, &a.run),
        Command::Trash(TrashCommand::Purge(a)) => ("trash purge", &a.storage, &a.run),
        Command::Completions { shell } => return completions(*shell),
        Command::Man => return man(),
    };
    let mut job = match Job::start(name, storage, args) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("regsweep: {e:#}");
            return Exit::Error;
        }
    };
    let result = match cli.command {
        Command::Gc(args) => gc(args, &mut job),
        Command::Du(args) => du(args, &mut job),
        Command::Audit(args) => audit(args, &mut job),
        Command::Export(args) => export(args, &mut job),
        Command::Shard(ShardCommand::Manifests(args)) => shard_manifests(args, &mut job),
        Command::Shard(ShardCommand::Merge(args)) => shard_merge(args, &mut job),
        Command::PruneTags(args) => prune_tags(args, &mut job),
        Command::Apply(args) => apply(args, &mut job),
        Command::Trash(TrashCommand::List(args)) => trash_list(args, &mut job),
        Command::Trash(TrashCommand::Restore(args)) => trash_restore(args, &mut job),
        Command::Trash(TrashCommand::Purge(args)) => trash_purge(args, &mut job),
        Command::Completions { .. } | Command::Man => unreachable!("handled above"),
    };
    job.end(result)
}

/// `regsweep completions SHELL`.
fn completions(shell: clap_complete::Shell) -> Exit {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "regsweep", &mut std::io::stdout());
    Exit::Success
}

/// The sections of the manual page that no option carries.
const MAN_TAIL: &str = r#".SH "EXIT STATUS"
.TP
0
The run did all it was asked (audit: the store is clean).
.TP
1
The run did part of it: deletes failed, a signal stopped it (the report says what was deleted and what was not attempted), or audit found problems.
.TP
2
The run could not run, or refused to delete (nothing was deleted).
.SH SIGNALS
.TP
SIGUSR1
Print the current counts on stderr at once.
.TP
SIGINT, SIGTERM
Stop after the delete batch in flight (an analysis stops before deleting anything); exit status 1. A second signal ends the run at once; the store stays safe, and the next run finishes the plan.
"#;

/// `regsweep man`: the page of the whole command, then one section a subcommand.
fn man() -> Exit {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut out = Vec::new();
    let rendered = clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .and_then(|()| {
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = sub.get_name();
                writeln!(out, ".SH \"REGSWEEP {}\"", name.to_uppercase())?;
                let sub = sub
                    .clone()
                    .bin_name(format!("regsweep {name}"))
                    .display_name(format!("regsweep-{name}"));
                let man = clap_mangen::Man::new(sub);
                man.render_synopsis_section(&mut out)?;
                man.render_description_section(&mut out)?;
                man.render_options_section(&mut out)?;
            }
            out.write_all(MAN_TAIL.as_bytes())
        });
    match rendered.and_then(|()| print(|w| w.write_all(&out)).map_err(std::io::Error::other)) {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("regsweep: cannot write the manual page: {e}");
            Exit::Error
        }
    }
}

/// Before a deletion: refuses when STORAGE is a registry config that is not in read-only mode
/// (unless --force); warns when it cannot tell. The message says how to proceed.
fn read_only_check(storage: &str, target: &Target, safety: &SafetyArgs) -> Result<(), String> {
    match (target.readonly, safety.force) {
        (Some(true), _) => Ok(()),
        (Some(false), false) => Err(format!(
            "refusing to delete: {storage} does not put the registry in read-only mode, so it may \
             accept pushes while this deletes, and a push that reuses a layer being swept breaks its \
             image. Set storage.maintenance.readonly.enabled: true in {storage} and restart the \
             registry, then run again; or pass --force if nothing can push meanwhile."
        )),
        (Some(false), true) => {
            eprintln!(
                "regsweep: warning: {storage} is not in read-only mode; deleting anyway (--force)"
            );
            Ok(())
        }
        (None, _) => {
            eprintln!(
                "regsweep: warning: {storage} is not a registry config.yml, so regsweep cannot tell \
                 whether the registry is in read-only mode; make sure nothing pushes while it deletes \
                 (name the config.yml to have this checked)"
            );
            Ok(())
        }
    }
}

/// Resolves STORAGE, applies the S3 options, opens the store, and sizes the thread pool to it.
fn open_storage(
    arg: &str,
    s3: &S3Args,
    delete_versions: bool,
    job: &Job,
) -> anyhow::Result<(Target, Box<dyn Storage>)> {
    let mut target = regsweep::commands::config::resolve(arg)?;
    match &mut target.spec {
        StorageSpec::S3(opts) => {
            if s3.endpoint_url.is_some() {
                opts.endpoint = s3.endpoint_url.clone();
            }
            opts.max_in_flight = s3.max_in_flight;
            opts.max_rps = s3.max_rps;
            opts.delete_versions = delete_versions;
            crate::arenas::tune_for_s3();
        }
        StorageSpec::Gcs(opts) if !delete_versions => {
            if s3.endpoint_url.is_some() {
                opts.endpoint = s3.endpoint_url.clone();
            }
            opts.max_in_flight = s3.max_in_flight;
            opts.max_rps = s3.max_rps;
            crate::arenas::tune_for_s3();
        }
        StorageSpec::Azure(opts) if !delete_versions => {
            opts.max_in_flight = s3.max_in_flight;
            opts.max_rps = s3.max_rps;
            crate::arenas::tune_for_s3();
        }
        _ if delete_versions => anyhow::bail!(
            "--delete-versions is for a store in a versioned S3 bucket; {arg} is not in S3"
        ),
        _ => {}
    }
    let storage = regsweep::commands::config::open(&target.spec)?;
    storage.stop_listings_on(job.progress.stop_flag());
    regsweep::pipeline::guard::store_root::check(storage.as_ref())?;
    // Remote backends wait on the network: more threads than cores keep requests in flight.
    // RAYON_NUM_THREADS, when set, wins (rayon reads it itself).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(storage.parallelism())
            .build_global();
    }
    Ok((target, storage))
}

/// With `--inventory`: the store's backend with its blobs listed from the S3 Inventory, which is
/// read and checked here (bucket, age, checksums) before any work.
fn with_inventory(
    arg: &str,
    target: &Target,
    storage: Box<dyn Storage>,
    args: &crate::cli::InventoryArgs,
) -> anyhow::Result<Box<dyn Storage>> {
    use regsweep::storage::inventory::{Inventoried, Location, Options};
    let Some(url) = &args.inventory else {
        return Ok(storage);
    };
    let StorageSpec::S3(s3) = &target.spec else {
        anyhow::bail!("--inventory {url}: S3 Inventory lists an S3 bucket, and {arg} is not in S3");
    };
    let opts = Options {
        location: Location::parse(url).map_err(anyhow::Error::msg)?,
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone(),
        s3: Some(s3.clone()),
        max_age: args.inventory_max_age,
        now: SystemTime::now(),
    };
    let listed = Inventoried::open(storage, opts).map_err(anyhow::Error::msg)?;
    Ok(Box::new(listed))
}

/// `--shard I/N`, or `--shard N` with the index a Kubernetes Indexed Job gives each pod.
fn shard_of(spec: &str) -> anyhow::Result<regsweep::model::shard::Shard> {
    use regsweep::model::shard::{INDEX_VARIABLE, Shard};
    let index = std::env::var(INDEX_VARIABLE).ok();
    Shard::parse(spec, index.as_deref()).map_err(anyhow::Error::msg)
}

fn shard_manifests(args: ShardManifestsArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let shard = shard_of(&args.shard)?;
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    std::fs::create_dir_all(&args.parts)
        .with_context(|| format!("creating {}", args.parts.display()))?;
    use regsweep::commands::shard::{ShardError, manifests};
    let part = match manifests(storage.as_ref(), shard, &args.parts, &job.progress) {
        Err(ShardError::Analysis(e)) => match analysed(job, Err(e), storage.as_ref())? {
            Ok(part) => part,
            Err(exit) => return Ok(exit),
        },
        other => other?,
    };
    job.print(|out| {
        if args.json {
            part.write_json(out)
        } else {
            part.write_human(out)
        }
    })?;
    Ok(Exit::Success)
}

fn shard_merge(args: ShardMergeArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let Some(dir) =
        (args.cache_dir.clone()).or_else(regsweep::pipeline::collect::manifest_cache::default_dir)
    else {
        anyhow::bail!(
            "no folder for the manifest cache: give --cache-dir (neither HOME nor XDG_CACHE_HOME is set)"
        );
    };
    let cache = ManifestCache::open(&dir);
    let merged = regsweep::commands::shard::merge(&storage.identity(), &args.parts, cache)?;
    job.print(|out| {
        if args.json {
            merged.write_json(out)
        } else {
            merged.write_human(out)
        }
    })?;
    Ok(Exit::Success)
}

/// Whether a metadata database owns the store, for a report's first line; a store whose owner
/// cannot be told is warned of here (a deleting run has refused it already).
fn database_owner(
    storage: &dyn Storage,
) -> Option<regsweep::pipeline::guard::database_owner::DatabaseOwned> {
    regsweep::pipeline::guard::database_owner::check(storage).unwrap_or_else(|e| {
        eprintln!("regsweep: warning: {e}");
        None
    })
}

/// What the trash holds, for a report; a trash that cannot be listed is warned of.
fn trash_held(storage: &dyn Storage) -> Option<regsweep::pipeline::execute::trash::Held> {
    match regsweep::pipeline::execute::trash::list(storage, SystemTime::now()) {
        Ok(runs) => regsweep::pipeline::execute::trash::Held::of(&runs),
        Err(e) => {
            eprintln!("regsweep: warning: the trash cannot be listed: {e}");
            None
        }
    }
}

/// What every deleting run does before it analyses: a store a metadata database owns is refused
/// (no option passes it), then the read-only check, then the store's lock, held
/// until the guard is dropped; nothing when `delete` is false (a dry run). `Ok(Err(exit))` when it
/// must not go on (the message is printed).
fn prepare_delete<'a>(
    delete: bool,
    arg: &str,
    target: &Target,
    storage: &'a dyn Storage,
    safety: &SafetyArgs,
) -> anyhow::Result<Result<Option<regsweep::pipeline::guard::lock::Guard<'a>>, Exit>> {
    if !delete {
        return Ok(Ok(None));
    }
    if let Err(exit) = delete_checks(arg, target, storage, safety) {
        return Ok(Err(exit));
    }
    match regsweep::pipeline::guard::lock::acquire(storage, safety.break_lock) {
        Ok(guard) => {
            purge_expired_trash(storage)?;
            Ok(Ok(Some(guard)))
        }
        Err(e @ regsweep::pipeline::guard::lock::LockError::Storage { .. }) => Err(e.into()),
        Err(e) => {
            eprintln!("regsweep: {e}");
            Ok(Err(Exit::Error))
        }
    }
}

/// The checks before any deletion, lock aside: a store a metadata database owns is refused, then
/// the read-only check. `Err(exit)` when it must not go on (the message is printed).
fn delete_checks(
    arg: &str,
    target: &Target,
    storage: &dyn Storage,
    safety: &SafetyArgs,
) -> Result<(), Exit> {
    match regsweep::pipeline::guard::database_owner::check(storage) {
        Ok(None) => {}
        Ok(Some(owned)) => {
            eprintln!("regsweep: {}", owned.refusal());
            return Err(Exit::Error);
        }
        Err(e) => {
            eprintln!("regsweep: refusing to delete: {e}");
            return Err(Exit::Error);
        }
    }
    if let Err(message) = read_only_check(arg, target, safety) {
        eprintln!("regsweep: {message}");
        return Err(Exit::Error);
    }
    Ok(())
}

/// A deleting run's trash, when --trash was given.
fn trash_options(safety: &SafetyArgs, command: &'static str) -> Option<TrashOptions> {
    safety.trash.map(|window| TrashOptions { window, command })
}

/// What every deleting run does once it holds the lock: the trash runs past their window are
/// purged, and that is said.
fn purge_expired_trash(storage: &dyn Storage) -> anyhow::Result<()> {
    match regsweep::commands::trash::purge_expired(storage, SystemTime::now()) {
        Ok(None) => {}
        Ok(Some(p)) => {
            eprintln!(
                "regsweep: purged {} trash run(s) past their window ({} objects, {}): {}",
                p.runs.len(),
                p.objects,
                regsweep::model::text::human_bytes(p.bytes),
                p.runs.join(", ")
            );
            for f in &p.failures {
                eprintln!("regsweep: warning: trash purge: {}: {}", f.key, f.error);
            }
        }
        Err(e) => eprintln!("regsweep: warning: cannot purge the expired trash runs: {e}"),
    }
    Ok(())
}

/// What a run knows of the registry's blob-descriptor cache, and what a deleting run does with it.
struct CacheRun {
    /// The cache, from --redis or the registry's config.yml; `None` when neither names one.
    spec: Option<CacheSpec>,
    /// STORAGE was not a config.yml and no --redis was given: whether a cache exists is unknown.
    unknown: bool,
    /// Why a deleting run does not evict (--skip-cache-eviction, or --force past a cache it cannot
    /// write); the sweep then records the keys left.
    not_evicting: Option<String>,
}

impl CacheRun {
    fn new(target: &Target, args: &CacheArgs) -> anyhow::Result<CacheRun> {
        let spec = match &args.redis {
            Some(url) => Some(CacheSpec::Redis(Box::new(
                RedisSpec::from_url(url).map_err(anyhow::Error::msg)?,
            ))),
            None => target.cache.clone(),
        };
        Ok(CacheRun {
            unknown: spec.is_none() && target.readonly.is_none(),
            spec,
            not_evicting: args
                .skip_cache_eviction
                .then(|| "eviction skipped (--skip-cache-eviction)".to_owned()),
        })
    }

    /// Before a deletion: checks that the redis cache can be reached and written. Refuses (the
    /// message printed, `Err(exit)`) when it cannot, unless --force, which deletes and leaves the
    /// flushing to the operator.
    fn check(&mut self, delete: bool, safety: &SafetyArgs) -> Result<(), Exit> {
        if !delete || self.not_evicting.is_some() {
            return Ok(());
        }
        let (address, why) = match &self.spec {
            Some(CacheSpec::Redis(spec)) => match Evictor::connect(spec) {
                Ok(_) => return Ok(()),
                Err(why) => (spec.address(), why),
            },
            Some(CacheSpec::Unusable { why }) => ("the redis cache".to_owned(), why.clone()),
            Some(CacheSpec::InMemory) | None => return Ok(()),
        };
        if safety.force {
            eprintln!(
                "regsweep: warning: cannot evict the registry's blob-descriptor cache ({why}); \
                 deleting anyway (--force): flush {address} by hand before the registry takes writes"
            );
            self.not_evicting = Some(format!("not evicted (--force): {why}"));
            return Ok(());
        }
        eprintln!(
            "regsweep: refusing to delete: the registry's blob-descriptor cache cannot be evicted: \
             {why}. Deleting without evicting it leaves the registry claiming that swept blobs \
             exist, so a push of the same image skips them and the image never pulls. Make \
             {address} reachable and writable (or name it with --redis URL), or pass --force to \
             delete anyway and then flush the cache by hand (or restart the registry with an empty one)."
        );
        Err(Exit::Error)
    }

    /// The evictor for a sweep: connected again (the analysis may have taken long), or recording.
    fn evictor(&self) -> Result<Option<Evictor>, String> {
        if let Some(why) = &self.not_evicting {
            return Ok(Some(Evictor::recording(why.clone())));
        }
        match &self.spec {
            Some(CacheSpec::Redis(spec)) => Evictor::connect(spec).map(Some),
            _ => Ok(None),
        }
    }
}

/// Writes a report to stdout, flushed.
fn print(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write(&mut out).context("writing to stdout")?;
    out.flush().context("writing to stdout")
}

/// The manifest cache a run uses, unless `--no-cache` (or no folder for it is known, which is said).
fn manifest_cache(args: &ManifestCacheArgs) -> Option<ManifestCache> {
    if args.no_cache {
        return None;
    }
    match args
        .cache_dir
        .clone()
        .or_else(regsweep::pipeline::collect::manifest_cache::default_dir)
    {
        Some(dir) => Some(ManifestCache::open(&dir)),
        None => {
            eprintln!(
                "regsweep: warning: no folder for the manifest cache (neither HOME nor \
                 XDG_CACHE_HOME is set, and no --cache-dir): every manifest is read from the store"
            );
            None
        }
    }
}

fn du(args: DuArgs, job: &mut Job) -> anyhow::Result<Exit> {
    use regsweep::report::du_history;
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    if let Some(page) = &args.html {
        let folder = page.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(folder) = folder.filter(|f| !f.is_dir()) {
            anyhow::bail!(
                "--html {}: there is no folder {}",
                page.display(),
                folder.display()
            );
        }
    }
    // A damaged history stops the run before the work, by name.
    let recorded = match &args.history {
        Some(path) => Some(du_history::read(path, &storage.describe())?),
        None => None,
    };
    let manifests = manifest_cache(&args.manifest_cache);
    let result = regsweep::commands::du::du(
        storage.as_ref(),
        args.blobs_per_repo,
        &job.progress,
        manifests.as_ref(),
    );
    let read_at = SystemTime::now();
    let mut report = match analysed(job, result, storage.as_ref())? {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    report.manifest_cache = manifests.map(ManifestCache::finish);
    report.database_in_use = database_owner(storage.as_ref());
    report.trash = trash_held(storage.as_ref());
    if let (Some(path), Some(mut runs)) = (&args.history, recorded) {
        let room = store_room(&target, args.capacity, report.total_bytes)?;
        let run = report.recorded(read_at, room);
        du_history::append(path, &run)?;
        runs.push(run);
        report.history = du_history::growth(path, &runs);
    }
    if let Some(path) = &args.html {
        write_page(path, &report)?;
    }
    job.metrics.du(&report);
    job.metrics.trash(report.trash.as_ref(), None);
    job.metrics.requests(storage.request_counts().as_ref());
    job.print(|out| {
        if args.json {
            report.write_json(out)
        } else {
            report.write_human(out, args.top)?;
            match &args.html {
                Some(p) => writeln!(out, "page written to {}", p.display()),
                None => Ok(()),
            }
        }
    })?;
    Ok(Exit::Success)
}

/// Where the store's bytes may go: `--capacity` less what it holds, or its filesystem's size and
/// free space; `None` for a bucket without `--capacity`.
fn store_room(
    target: &Target,
    capacity: Option<u64>,
    total_bytes: u64,
) -> anyhow::Result<Option<regsweep::report::du_history::Room>> {
    use regsweep::report::du_history::Room;
    if let Some(capacity_bytes) = capacity {
        let available_bytes = capacity_bytes.saturating_sub(total_bytes);
        return Ok(Some(Room {
            capacity_bytes,
            available_bytes,
        }));
    }
    match &target.spec {
        StorageSpec::Filesystem { root } => {
            let fs = rustix::fs::statvfs(root).with_context(|| {
                format!(
                    "reading the size of the filesystem holding {}",
                    root.display()
                )
            })?;
            Ok(Some(Room {
                capacity_bytes: fs.f_blocks * fs.f_frsize,
                available_bytes: fs.f_bavail * fs.f_frsize,
            }))
        }
        _ => Ok(None),
    }
}

/// Writes the du page to `path` through a temporary file beside it, so that a reader never sees half
/// a page.
fn write_page(
    path: &std::path::Path,
    report: &regsweep::report::du::DuReport,
) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--html {}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        regsweep::report::du_page::write_page(report, &mut f)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing the page {}", path.display()))
}

fn export(args: ExportArgs, job: &mut Job) -> anyhow::Result<Exit> {
    // Before any work: a folder that holds something is refused (nothing is overwritten).
    match std::fs::read_dir(&args.dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => anyhow::bail!(
            "{}: the folder is not empty; export writes into an empty or new folder",
            args.dir.display()
        ),
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::Error::new(e).context(args.dir.display().to_string())),
    }
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let options = regsweep::commands::gc::GcOptions {
        delete_untagged: false,
        grace: args.grace,
        now: SystemTime::now(),
    };
    let manifests = manifest_cache(&args.manifest_cache);
    let result = regsweep::commands::export::export(
        storage.as_ref(),
        &args.dir,
        &options,
        &job.progress,
        manifests.as_ref(),
    );
    let exported = match result {
        Err(regsweep::commands::export::ExportError::Analysis(e)) => {
            match analysed(job, Err(e), storage.as_ref())? {
                Ok(exported) => exported,
                Err(exit) => return Ok(exit),
            }
        }
        other => other?,
    };
    if let Some(m) = manifests {
        m.finish();
    }
    job.print(|out| {
        if args.json {
            exported.write_json(out)
        } else {
            exported.write_human(out)
        }
    })?;
    Ok(Exit::Success)
}

fn audit(args: AuditArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    let options = regsweep::commands::audit::AuditOptions {
        verify_digests: args.verify_digests,
        grace: args.grace,
        now: SystemTime::now(),
    };
    let manifests = manifest_cache(&args.manifest_cache).map(ManifestCache::for_audit);
    let result = regsweep::commands::audit::audit(
        storage.as_ref(),
        &options,
        &job.progress,
        manifests.as_ref(),
    );
    let mut report = match analysed(job, result, storage.as_ref())? {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    report.manifest_cache = manifests.map(ManifestCache::finish);
    report.database_in_use = database_owner(storage.as_ref());
    job.metrics.audit(&report);
    job.metrics.trash(report.trash.as_ref(), None);
    job.metrics.requests(storage.request_counts().as_ref());
    job.print(|out| {
        if args.json {
            report.write_json(out)
        } else {
            report.write_human(out)
        }
    })?;
    Ok(if report.problems.is_empty() {
        Exit::Success
    } else {
        Exit::Partial
    })
}

/// A policy file with its pins and pull records, read before any work so that a bad file fails
/// at once, by name.
fn read_policy(
    path: &std::path::Path,
    inputs: &crate::cli::PolicyInputs,
) -> anyhow::Result<(
    regsweep::pipeline::retention::policy::Policy,
    regsweep::pipeline::retention::pins::Pins,
    Option<regsweep::pipeline::retention::pulls::Pulls>,
)> {
    let policy = regsweep::pipeline::retention::policy::Policy::read(path)?;
    let pins = match &inputs.keep_images {
        Some(f) => regsweep::pipeline::retention::pins::Pins::read(f)?,
        None => Default::default(),
    };
    let pulls = if inputs.pulls.is_empty() {
        None
    } else {
        Some(regsweep::pipeline::retention::pulls::Pulls::read(
            &inputs.pulls,
        )?)
    };
    if policy.on_pulls() && pulls.is_none() {
        eprintln!(
            "regsweep: warning: {} has rules on pulls and no --pulls records were given: \
             those rules keep everything they select",
            path.display()
        );
    }
    Ok((policy, pins, pulls))
}

fn gc(args: GcArgs, job: &mut Job) -> anyhow::Result<Exit> {
    // Before any work: an unwritable plan path fails now, not after the listing.
    let plan_out = args.plan.as_deref().map(PlanOutput::create).transpose()?;
    let retention = match &args.policy {
        Some(path) => {
            let (policy, pins, pulls) = read_policy(path, &args.policy_inputs)?;
            Some(regsweep::pipeline::retention::untagged::UntaggedRetention {
                policy,
                pins,
                pulls,
            })
        }
        None => None,
    };
    let (target, storage) =
        open_storage(&args.storage, &args.s3, args.s3_delete.delete_versions, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    let mut cache = CacheRun::new(&target, &args.cache)?;
    let _lock = match prepare_delete(
        args.delete,
        &args.storage,
        &target,
        storage.as_ref(),
        &args.safety,
    )? {
        Ok(guard) => guard,
        Err(exit) => return Ok(exit),
    };
    if let Err(exit) = cache.check(args.delete, &args.safety) {
        return Ok(exit);
    }
    let options = GcOptions {
        delete_untagged: args.delete_untagged,
        grace: args.grace,
        now: SystemTime::now(),
    };
    let manifests = manifest_cache(&args.manifest_cache);
    let result = gc::analyse_retaining(
        storage.as_ref(),
        &options,
        retention.as_ref(),
        &job.progress,
        manifests.as_ref(),
    );
    let analysis = match analysed(job, result, storage.as_ref())? {
        Ok(a) => a,
        Err(exit) => return Ok(exit),
    };
    let mut report = regsweep::report::gc::GcReport::new(&storage.describe(), &options, &analysis);
    if let (false, Some(p)) = (args.explain, &mut report.untagged_policy) {
        p.decisions.clear();
    }
    report.database_in_use = database_owner(storage.as_ref());
    report.manifest_cache = manifests.map(ManifestCache::finish);
    if let (false, Some(window)) = (args.delete, args.safety.trash) {
        let versioned = report
            .bucket_versioning
            .as_ref()
            .is_some_and(|v| v.status == "Enabled");
        let bytes = report.blobs.eligible_bytes + report.uploads.eligible_bytes;
        report.trash_plan = Some(regsweep::report::trash::TrashPlan::new(
            &report.storage,
            versioned,
            window,
            options.now,
            (analysis.plan.items.len() as u64, bytes),
        ));
    }
    if let Some(out) = plan_out {
        let header = regsweep::commands::apply::gc_header(
            &storage.identity(),
            &options,
            &analysis.inventory,
            &analysis.plan,
        );
        report.plan_file = Some(plan_written(
            out.path(),
            &args.storage,
            args.s3_delete.delete_versions,
        ));
        out.finish(header, analysis.plan.items.iter())?;
    }
    sweep_and_render(
        job,
        report,
        storage.as_ref(),
        &analysis,
        args.delete,
        trash_options(&args.safety, "gc"),
        &cache,
        args.json,
        &args.view,
    )
}

/// Where a plan went and how to execute it, for the report.
fn plan_written(
    path: &std::path::Path,
    storage: &str,
    delete_versions: bool,
) -> regsweep::report::PlanWritten {
    let versions = if delete_versions {
        " --delete-versions"
    } else {
        ""
    };
    regsweep::report::PlanWritten {
        path: path.display().to_string(),
        apply: format!("regsweep apply {} {storage}{versions}", path.display()),
    }
}

fn apply(args: ApplyArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let shard = args.shard.as_deref().map(shard_of).transpose()?;
    let file = PlanFile::read(&args.plan)?;
    let (target, storage) =
        open_storage(&args.storage, &args.s3, args.s3_delete.delete_versions, job)?;
    let mut cache = CacheRun::new(&target, &args.cache)?;
    if let Err(e) = file.check_store(&storage.identity()) {
        eprintln!("regsweep: {e}");
        return Ok(Exit::Error);
    }
    // The shards of a sweep run at once, so they cannot each hold the store's lock: they check
    // what every deleting run checks, and the run over the whole plan that ends the sweep (it
    // skips what the shards deleted and removes emptied repositories) takes the lock.
    let _lock = if shard.is_some() {
        if let Err(exit) = delete_checks(&args.storage, &target, storage.as_ref(), &args.safety) {
            return Ok(exit);
        }
        None
    } else {
        match prepare_delete(true, &args.storage, &target, storage.as_ref(), &args.safety)? {
            Ok(guard) => guard,
            Err(exit) => return Ok(exit),
        }
    };
    let gc_state = match (file.header.command, &file.header.gc) {
        (PlanCommand::Gc, Some(gc)) => gc,
        (PlanCommand::Gc, None) => {
            anyhow::bail!(
                "{}: a gc plan without its options in the header",
                args.plan.display()
            )
        }
        (PlanCommand::PruneTags, _) => {
            let lines = file.items()?;
            let (plan, applied) = match regsweep::commands::prune_tags::from_reviewed(
                storage.as_ref(),
                &lines,
                &file.header.created,
                &job.progress,
            ) {
                Ok(reviewed) => reviewed,
                Err(e) if e.stopped() => {
                    eprintln!("regsweep: {e}");
                    return Ok(Exit::Partial);
                }
                Err(e) => {
                    eprintln!("regsweep: {}: {e}", args.plan.display());
                    return Ok(Exit::Error);
                }
            };
            let mut report =
                regsweep::report::prune_tags::PruneReport::new(&storage.describe(), &plan);
            report.applied = Some(applied);
            let trash = trash_options(&args.safety, "apply");
            return delete_tags_and_render(
                job,
                &plan,
                report,
                storage.as_ref(),
                Some(trash),
                args.json,
            );
        }
    };
    if let Err(exit) = cache.check(true, &args.safety) {
        return Ok(exit);
    }
    let options = regsweep::commands::apply::gc_options(gc_state, SystemTime::now());
    let manifests = manifest_cache(&args.manifest_cache);
    let result = gc::analyse(
        storage.as_ref(),
        &options,
        &job.progress,
        manifests.as_ref(),
    );
    let mut analysis = match analysed(job, result, storage.as_ref())? {
        Ok(a) => a,
        Err(exit) => return Ok(exit),
    };
    let manifest_cache = manifests.map(ManifestCache::finish);
    let (plan, applied) = match regsweep::commands::apply::check(&file, &analysis) {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!("regsweep: {}: {e}", args.plan.display());
            return Ok(Exit::Error);
        }
    };
    analysis.plan = plan;
    if let Some(shard) = shard {
        analysis.plan.keep_shard(shard);
    }
    let mut report = regsweep::report::gc::GcReport::new(&storage.describe(), &options, &analysis);
    report.database_in_use = database_owner(storage.as_ref());
    report.applied = Some(applied);
    report.manifest_cache = manifest_cache;
    sweep_and_render(
        job,
        report,
        storage.as_ref(),
        &analysis,
        true,
        trash_options(&args.safety, "apply"),
        &cache,
        args.json,
        &args.view,
    )
}

/// Sweeps the analysed plan when `delete`, then renders the report; the exit status says how it went.
#[allow(clippy::too_many_arguments)]
fn sweep_and_render(
    job: &mut Job,
    mut report: regsweep::report::gc::GcReport,
    storage: &dyn Storage,
    analysis: &gc::Analysis,
    delete: bool,
    trash: Option<TrashOptions>,
    cache: &CacheRun,
    json: bool,
    view: &ViewArgs,
) -> anyhow::Result<Exit> {
    let mut exit = Exit::Success;
    let mut refused = None;
    if delete {
        let evictor = match cache.evictor() {
            Ok(e) => e,
            Err(why) => {
                eprintln!(
                    "regsweep: refusing to delete: the registry's blob-descriptor cache stopped \
                     answering after the analysis: {why}; nothing was deleted"
                );
                return Ok(Exit::Error);
            }
        };
        let after: &dyn regsweep::pipeline::execute::sweep::AfterDelete = match &evictor {
            Some(e) => e,
            None => &regsweep::pipeline::execute::sweep::NoOne,
        };
        match gc::execute(storage, analysis, &job.progress, after, trash) {
            Ok(deleted) => {
                if !deleted.failures.is_empty() || deleted.not_attempted > 0 {
                    exit = Exit::Partial;
                }
                let something = deleted.blobs + deleted.manifests + deleted.layer_links > 0;
                report = report.with_deleted(deleted);
                if cache.unknown && something {
                    report.notice = Some(regsweep::report::gc::CACHE_NOTICE.to_owned());
                }
            }
            Err(e) => refused = Some(e),
        }
        if evictor.as_ref().is_some_and(Evictor::failed) {
            exit = Exit::Partial;
        }
        if let Some(spec) = &cache.spec {
            let r = CacheReport::after_delete(spec, &analysis.plan, evictor.as_ref());
            report.cache = Some(r);
        }
    } else if let Some(spec) = &cache.spec {
        report.cache = Some(CacheReport::dry_run(spec, &analysis.plan));
    }
    // The trash as the run leaves it (expired runs purged, this run's moves in).
    report.trash = trash_held(storage);
    report.requests = storage.request_counts();
    report.inventory = storage.listing_snapshot();
    job.metrics.gc(&report);
    let moved = report.deleted.as_ref().and_then(|d| d.trash.as_ref());
    job.metrics.trash(report.trash.as_ref(), moved);
    job.print(|out| {
        if json {
            report.write_json(out)
        } else {
            if view.list {
                regsweep::report::gc::write_plan_list(&analysis.plan, out)?;
            }
            report.write_human(out, view.top)
        }
    })?;
    if let Some(e) = refused {
        eprintln!("regsweep: {e}");
        exit = if e.stopped() {
            Exit::Partial
        } else {
            Exit::Error
        };
    }
    Ok(exit)
}

fn prune_tags(args: PruneArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let plan_out = args.plan.as_deref().map(PlanOutput::create).transpose()?;
    let rules = regsweep::pipeline::retention::tags::Rules {
        repos: if args.policy.is_some() && args.repos.is_empty() {
            regsweep::pipeline::retention::tags::Rules::repo_globs(&["**".to_owned()])?
        } else {
            regsweep::pipeline::retention::tags::Rules::repo_globs(&args.repos)?
        },
        repo_patterns: args.repos.clone(),
        tag: args.tag,
        keep_tag: args.keep_tag,
        keep_last: args.keep_last,
        older_than: args.older_than,
        orphan_referrer_tags: args.orphan_referrer_tags,
    };
    let policy = match &args.policy {
        Some(path) => Some(read_policy(path, &args.policy_inputs)?),
        None => {
            rules.require_a_rule(args.all_tags)?;
            None
        }
    };
    let (target, storage) =
        open_storage(&args.storage, &args.s3, args.s3_delete.delete_versions, job)?;
    let _lock = match prepare_delete(
        args.delete,
        &args.storage,
        &target,
        storage.as_ref(),
        &args.safety,
    )? {
        Ok(guard) => guard,
        Err(exit) => return Ok(exit),
    };
    let result = match &policy {
        Some((policy, pins, pulls)) => regsweep::pipeline::retention::tags::plan_by_policy(
            storage.as_ref(),
            &regsweep::pipeline::retention::tags::PolicyRun {
                policy,
                repos: (!args.repos.is_empty()).then_some(&rules),
                pins,
                pulls: pulls.as_ref(),
            },
            SystemTime::now(),
            &job.progress,
        ),
        None => regsweep::pipeline::retention::tags::plan(
            storage.as_ref(),
            &rules,
            SystemTime::now(),
            &job.progress,
        ),
    };
    let plan = match analysed(job, result, storage.as_ref())? {
        Ok(p) => p,
        Err(exit) => return Ok(exit),
    };
    for glob in &plan.unmatched_repo_globs {
        eprintln!("regsweep: warning: --repo {glob:?} matches no repository of the store");
    }
    let mut report = regsweep::report::prune_tags::PruneReport::new(&storage.describe(), &plan);
    report.database_in_use = database_owner(storage.as_ref());
    if let Some((policy, pins, pulls)) = &policy {
        if args.explain {
            report.explain(&plan);
        }
        let span = pulls.as_ref().and_then(|p| p.span());
        report.policy = Some(regsweep::report::prune_tags::PolicySummary {
            path: policy.path.clone(),
            format: policy.format,
            unit: policy.unit,
            rules: policy.rules.len(),
            pins: pins.references.len(),
            pulls: pulls.as_ref().map(|p| p.pulls),
            pull_records_from: span.map(|s| regsweep::model::time::rfc3339(s.0)),
            pull_records_to: span.map(|s| regsweep::model::time::rfc3339(s.1)),
        });
        let counts: Vec<(String, usize, usize)> = report
            .repositories
            .iter()
            .map(|r| (r.name.clone(), r.tags, r.removed))
            .collect();
        report.refused = regsweep::pipeline::retention::judge::guards(policy, &counts)
            .iter()
            .map(|b| b.to_string())
            .collect();
        if !report.refused.is_empty() {
            job.print(|out| {
                if args.json {
                    report.write_json(out)
                } else {
                    regsweep::report::prune_tags::write_human(&plan, &report, out)
                }
            })?;
            eprintln!(
                "regsweep: refusing: {}; nothing was deleted and no plan written",
                report.refused.join("; ")
            );
            return Ok(Exit::Error);
        }
    }
    if let Some(out) = plan_out {
        let header = PlanHeader::new(
            PlanCommand::PruneTags,
            &storage.identity(),
            SystemTime::now(),
            None,
        );
        report.plan_file = Some(plan_written(
            out.path(),
            &args.storage,
            args.s3_delete.delete_versions,
        ));
        out.finish(header, plan.items())?;
    }
    let delete = args
        .delete
        .then(|| trash_options(&args.safety, "prune-tags"));
    delete_tags_and_render(job, &plan, report, storage.as_ref(), delete, args.json)
}

/// Removes the planned tags when `delete`, then renders the report; the exit status says how it went.
fn delete_tags_and_render(
    job: &mut Job,
    plan: &regsweep::pipeline::retention::tags::PrunePlan,
    mut report: regsweep::report::prune_tags::PruneReport,
    storage: &dyn Storage,
    delete: Option<Option<TrashOptions>>,
    json: bool,
) -> anyhow::Result<Exit> {
    let mut exit = Exit::Success;
    let mut refused = None;
    if let Some(trash) = delete {
        match regsweep::commands::prune_tags::execute(storage, plan, &job.progress, trash) {
            Ok(deleted) => {
                if !deleted.failures.is_empty() {
                    exit = Exit::Partial;
                }
                report.dry_run = false;
                report.deleted = Some(deleted);
            }
            Err(e) => refused = Some(e),
        }
    }
    report.trash = trash_held(storage);
    job.metrics.prune(&report);
    let moved = report.deleted.as_ref().and_then(|d| d.trash.as_ref());
    job.metrics.trash(report.trash.as_ref(), moved);
    job.metrics.requests(storage.request_counts().as_ref());
    job.print(|out| {
        if json {
            report.write_json(out)
        } else {
            regsweep::report::prune_tags::write_human(plan, &report, out)
        }
    })?;
    if let Some(e) = refused {
        eprintln!("regsweep: {e}");
        exit = if e.stopped() {
            Exit::Partial
        } else {
            Exit::Error
        };
    }
    Ok(exit)
}

fn trash_list(args: TrashListArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let list = regsweep::commands::trash::list(storage.as_ref(), SystemTime::now())?;
    job.print(|out| {
        if args.json {
            list.write_json(out)
        } else {
            regsweep::report::trash::write_list(&list, out)
        }
    })?;
    Ok(Exit::Success)
}

/// The store's lock for a trash command that moves or deletes; `Err(exit)` when another run holds it.
fn trash_lock<'a>(
    storage: &'a dyn Storage,
    break_lock: bool,
) -> anyhow::Result<Result<regsweep::pipeline::guard::lock::Guard<'a>, Exit>> {
    match regsweep::pipeline::guard::lock::acquire(storage, break_lock) {
        Ok(guard) => Ok(Ok(guard)),
        Err(e @ regsweep::pipeline::guard::lock::LockError::Storage { .. }) => Err(e.into()),
        Err(e) => {
            eprintln!("regsweep: {e}");
            Ok(Err(Exit::Error))
        }
    }
}

fn trash_restore(args: TrashRestoreArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let _lock = match trash_lock(storage.as_ref(), args.break_lock)? {
        Ok(guard) => guard,
        Err(exit) => return Ok(exit),
    };
    let restored = regsweep::commands::trash::restore(storage.as_ref(), &args.run_id)?;
    let report = regsweep::report::trash::RestoreReport {
        storage: storage.describe(),
        restored,
    };
    job.print(|out| {
        if args.json {
            report.write_json(out)
        } else {
            report.write_human(out)
        }
    })?;
    let r = &report.restored;
    Ok(if r.conflicts.is_empty() && r.failures.is_empty() {
        Exit::Success
    } else {
        Exit::Partial
    })
}

fn trash_purge(args: TrashPurgeArgs, job: &mut Job) -> anyhow::Result<Exit> {
    use regsweep::commands::trash::Which;
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let which = match (&args.run_id, args.expired) {
        (Some(id), _) => Which::Run(id.clone()),
        (None, true) => Which::Expired,
        (None, false) => Which::All,
    };
    let _lock = if args.delete {
        match trash_lock(storage.as_ref(), args.break_lock)? {
            Ok(guard) => Some(guard),
            Err(exit) => return Ok(exit),
        }
    } else {
        None
    };
    let runs = regsweep::commands::trash::select(storage.as_ref(), &which, SystemTime::now())?;
    let purged = args
        .delete
        .then(|| regsweep::commands::trash::purge(storage.as_ref(), &runs));
    let report = regsweep::report::trash::PurgeReport {
        storage: storage.describe(),
        dry_run: purged.is_none(),
        runs,
        purged,
    };
    job.print(|out| {
        if args.json {
            report.write_json(out)
        } else {
            report.write_human(out)
        }
    })?;
    Ok(match &report.purged {
        Some(p) if !p.failures.is_empty() => Exit::Partial,
        _ => Exit::Success,
    })
}
