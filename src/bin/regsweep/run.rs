//! Runs a parsed command line: resolves STORAGE once, calls the command in the library, renders its
//! report to stdout, and maps how it ended to an exit code ([`crate::exit`]).

use crate::cli::{
    ApplyArgs, AuditArgs, Cli, Command, DuArgs, ExportArgs, GcArgs, PruneArgs, RemoteArgs, RunArgs,
    ShardCommand, ShardManifestsArgs, ShardMergeArgs, TrashCommand, TrashHealArgs, TrashListArgs,
    TrashPurgeArgs, TrashRestoreArgs,
};
use crate::display::{Display, Mode};
use crate::exit::Exit;
use anyhow::Context;
use regsweep::commands::outcome::{Error, Outcome};
use regsweep::commands::target::{Opened, StorageSpec, Target};
use regsweep::commands::{self, Store};
use regsweep::model::progress::Progress;
use regsweep::report::metrics::{Metrics, MetricsOutput};
use regsweep::report::{Render, View};
use regsweep::storage::Storage;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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

    /// Ends the progress display (before a report or a last word), and says the warnings it had
    /// not shown yet.
    fn end_display(&mut self) {
        if let Some(d) = self.display.take() {
            d.finish();
        }
        say_warnings();
    }

    /// How a command ended: its report rendered to stdout (after the display has ended) and what
    /// its outcome says on stderr; or what stopped it. `metrics` records the report first.
    fn finish<R: Render>(
        &mut self,
        result: Result<(R, Outcome), Error>,
        json: bool,
        view: View,
        metrics: impl FnOnce(&mut Metrics, &R),
    ) -> anyhow::Result<Exit> {
        let (report, outcome) = match result {
            Ok(ran) => ran,
            Err(e) => {
                self.end_display();
                let (exit, line) = Exit::of_error(e);
                eprintln!("regsweep: {line}");
                return Ok(exit);
            }
        };
        metrics(&mut self.metrics, &report);
        self.end_display();
        print(|out| report.render(out, json, &view))?;
        let (exit, line) = Exit::of(outcome);
        if let Some(line) = line {
            eprintln!("regsweep: {line}");
        }
        Ok(exit)
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

/// The library's warnings not yet shown, on stderr.
fn say_warnings() {
    for line in regsweep::model::warning::drain() {
        eprintln!("regsweep: {line}");
    }
}

/// A command's error, for `?` where the binary itself goes on (a bad argument before any work).
fn failed(e: Error) -> anyhow::Error {
    anyhow::Error::new(e)
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
        Command::Trash(TrashCommand::Heal(a)) => ("trash heal", &a.storage, &a.run),
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
        Command::Trash(TrashCommand::Heal(args)) => trash_heal(args, &mut job),
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

/// Resolves STORAGE, applies the remote stores' options, opens the store, and sizes the thread
/// pool to it. An endpoint for an Azure store, whose URL names its service, is refused (a
/// filesystem store takes the remote options and ignores them, as the same command line may name
/// a bucket or a copy of it on disk).
fn open_storage(
    arg: &str,
    s3: &RemoteArgs,
    delete_versions: bool,
    job: &Job,
) -> anyhow::Result<(Target, Box<dyn Storage>)> {
    let mut target = regsweep::commands::target::resolve(arg)?;
    if let (Some(url), StorageSpec::Azure(_)) = (&s3.endpoint_url, &target.spec) {
        anyhow::bail!(
            "--endpoint-url {url} names an S3 or GCS endpoint, and {arg} is in Azure, whose URL \
             names its service (http://HOST:PORT/ACCOUNT/CONTAINER/prefix)"
        );
    }
    crate::arenas::tune();
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
    let storage = match regsweep::commands::target::open_checked(&target)? {
        Opened::Store(s) => s,
        Opened::NothingStored(s) => {
            regsweep::model::warning::emit(format!(
                "note: nothing stored yet: {} holds no docker/registry/v2/, as before a \
                 registry's first push; this run finds nothing to do",
                s.describe()
            ));
            s
        }
    };
    storage.stop_listings_on(job.progress.stop_flag());
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
    args: &crate::cli::S3InventoryArgs,
) -> anyhow::Result<Box<dyn Storage>> {
    use regsweep::storage::s3_inventory::{Inventoried, InventoryOptions, Location};
    let Some(url) = &args.inventory else {
        return Ok(storage);
    };
    let StorageSpec::S3(s3) = &target.spec else {
        anyhow::bail!("--inventory {url}: S3 Inventory lists an S3 bucket, and {arg} is not in S3");
    };
    let opts = InventoryOptions {
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

/// Writes a report to stdout, flushed.
fn print(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write(&mut out).context("writing to stdout")?;
    out.flush().context("writing to stdout")
}

/// The store named by STORAGE, opened, as a command is given it.
fn store<'a>(arg: &'a str, target: &'a Target, storage: &'a dyn Storage) -> Store<'a> {
    Store {
        arg,
        target,
        storage,
    }
}

fn gc(args: GcArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let run = commands::gc::GcRun {
        delete_untagged: args.delete_untagged,
        grace: args.grace,
        delete: args.delete,
        explain: args.explain,
        plan: args.plan.clone(),
        delete_versions: args.s3_delete.delete_versions,
        safety: regsweep::commands::gate::Safety {
            online: args.online,
            ..(&args.safety).into()
        },
        cache: (&args.cache).into(),
        manifests: (&args.manifest_cache).into(),
        online: args.online_tuning.options(args.online),
    };
    let policy = args.policy.as_deref().map(|p| args.policy_inputs.files(p));
    let inputs = commands::gc::GcInputs::read(&run, policy.as_ref()).map_err(failed)?;
    let (target, storage) =
        open_storage(&args.storage, &args.s3, args.s3_delete.delete_versions, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    let at = store(&args.storage, &target, storage.as_ref());
    let result = commands::gc::run(at, &run, inputs, &job.progress);
    job.finish(result, args.json, (&args.view).into(), |m, r| {
        gc_metrics(m, r)
    })
}

/// What a gc (or apply) run records: its figures and the trash, this run's moves included.
fn gc_metrics(m: &mut Metrics, r: &regsweep::report::GcShown) {
    m.gc(&r.report);
    let moved = r.report.deleted.as_ref().and_then(|d| d.trash.as_ref());
    m.trash(r.report.trash.as_ref(), moved);
}

/// What a prune-tags (or apply) run records: its figures, the trash, and its requests.
fn prune_metrics(
    m: &mut Metrics,
    r: &regsweep::report::PruneShown,
    requests: Option<&regsweep::storage::RequestCounts>,
) {
    m.prune(&r.report);
    let moved = r.report.deleted.as_ref().and_then(|d| d.trash.as_ref());
    m.trash(r.report.trash.as_ref(), moved);
    m.requests(requests);
}

fn apply(args: ApplyArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let run = commands::apply::ApplyRun {
        plan: args.plan.clone(),
        shard: args.shard.as_deref().map(shard_of).transpose()?,
        safety: regsweep::commands::gate::Safety {
            online: args.online,
            ..(&args.safety).into()
        },
        cache: (&args.cache).into(),
        manifests: (&args.manifest_cache).into(),
        online: args.online_tuning.options(args.online),
    };
    let file = commands::apply::read_plan(&run).map_err(failed)?;
    let (target, storage) =
        open_storage(&args.storage, &args.s3, args.s3_delete.delete_versions, job)?;
    let at = store(&args.storage, &target, storage.as_ref());
    let result = commands::apply::run(at, &run, file, &job.progress);
    let requests = storage.request_counts();
    job.finish(result, args.json, (&args.view).into(), |m, r| match r {
        commands::apply::ApplyShown::Gc(r) => gc_metrics(m, r),
        commands::apply::ApplyShown::PruneTags(r) => prune_metrics(m, r, requests.as_ref()),
    })
}

fn prune_tags(args: PruneArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let run = commands::prune_tags::PruneRun {
        repos: args.repos.clone(),
        tag: args.tag.clone(),
        keep_tag: args.keep_tag.clone(),
        keep_last: args.keep_last,
        older_than: args.older_than,
        orphan_referrer_tags: args.orphan_referrer_tags,
        all_tags: args.all_tags,
        explain: args.explain,
        delete: args.delete,
        plan: args.plan.clone(),
        delete_versions: args.s3_delete.delete_versions,
        safety: (&args.safety).into(),
    };
    let policy = args.policy.as_deref().map(|p| args.policy_inputs.files(p));
    let inputs = commands::prune_tags::PruneInputs::read(&run, policy.as_ref()).map_err(failed)?;
    let (target, storage) =
        open_storage(&args.storage, &args.s3, args.s3_delete.delete_versions, job)?;
    let at = store(&args.storage, &target, storage.as_ref());
    let result = commands::prune_tags::run(at, &run, inputs, &job.progress);
    let guarded = matches!(
        &result,
        Ok((_, Outcome::Refused(commands::outcome::Refusal::Guards(_))))
    );
    let requests = storage.request_counts();
    job.finish(result, args.json, View::default(), |m, r| {
        // A run its policy's guards refused records nothing of its own.
        if !guarded {
            prune_metrics(m, r, requests.as_ref());
        }
    })
}

fn du(args: DuArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    let run = commands::du::DuRun {
        blobs_per_repo: args.blobs_per_repo,
        html: args.html.clone(),
        history: args.history.clone(),
        capacity: args.capacity,
        manifests: (&args.manifest_cache).into(),
        bucket: args.bucket,
        price: args.price.clone(),
    };
    let at = store(&args.storage, &target, storage.as_ref());
    let result = commands::du::run(at, &run, &job.progress);
    let requests = storage.request_counts();
    let view = View {
        top: args.top,
        list: false,
    };
    job.finish(result, args.json, view, |m, r| {
        m.du(r);
        m.trash(r.trash.as_ref(), None);
        m.requests(requests.as_ref());
    })
}

fn audit(args: AuditArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    let run = commands::audit::AuditRun {
        verify_digests: args.verify_digests,
        grace: args.grace,
        manifests: (&args.manifest_cache).into(),
    };
    let at = store(&args.storage, &target, storage.as_ref());
    let result = commands::audit::run(at, &run, &job.progress);
    let requests = storage.request_counts();
    job.finish(result, args.json, View::default(), |m, r| {
        m.audit(r);
        m.trash(r.trash.as_ref(), None);
        m.requests(requests.as_ref());
    })
}

fn export(args: ExportArgs, job: &mut Job) -> anyhow::Result<Exit> {
    commands::export::check_folder(&args.dir).map_err(failed)?;
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    let at = store(&args.storage, &target, storage.as_ref());
    let manifests = (&args.manifest_cache).into();
    let result = commands::export::run(at, &args.dir, args.grace, &manifests, &job.progress);
    job.finish(result, args.json, View::default(), |_, _| {})
}

fn shard_manifests(args: ShardManifestsArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let shard = shard_of(&args.shard)?;
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let storage = with_inventory(&args.storage, &target, storage, &args.inventory)?;
    let at = store(&args.storage, &target, storage.as_ref());
    let result = commands::shard::run_manifests(at, shard, &args.parts, &job.progress);
    job.finish(result, args.json, View::default(), |_, _| {})
}

fn shard_merge(args: ShardMergeArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let at = store(&args.storage, &target, storage.as_ref());
    let cache = commands::CacheDir {
        off: false,
        dir: args.cache_dir.clone(),
    };
    let result = commands::shard::run_merge(at, &args.parts, &cache);
    job.finish(result, args.json, View::default(), |_, _| {})
}

fn trash_list(args: TrashListArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let result = commands::trash::run_list(storage.as_ref());
    job.finish(result, args.json, View::default(), |_, _| {})
}

fn trash_restore(args: TrashRestoreArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let result = commands::trash::run_restore(storage.as_ref(), &args.run_id, args.break_lock);
    job.finish(result, args.json, View::default(), |_, _| {})
}

fn trash_purge(args: TrashPurgeArgs, job: &mut Job) -> anyhow::Result<Exit> {
    use regsweep::commands::trash::Which;
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let which = match (&args.run_id, args.expired) {
        (Some(id), _) => Which::Run(id.clone()),
        (None, true) => Which::Expired,
        (None, false) => Which::All,
    };
    let result = commands::trash::run_purge(storage.as_ref(), &which, args.delete, args.break_lock);
    job.finish(result, args.json, View::default(), |_, _| {})
}

fn trash_heal(args: TrashHealArgs, job: &mut Job) -> anyhow::Result<Exit> {
    let (_target, storage) = open_storage(&args.storage, &args.s3, false, job)?;
    let result = commands::trash::run_heal(storage.as_ref(), args.break_lock);
    job.finish(result, args.json, View::default(), |_, _| {})
}
