//! The command line, as clap derive structs whose doc comments are the help.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Garbage collector and auditor for container-registry storage (CNCF Distribution layout).
#[derive(Debug, Parser)]
#[command(name = "regsweep", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find (and with --delete, remove) blobs, links and manifests that nothing needs.
    ///
    /// A dry run unless --delete is given; both compute the same plan.
    Gc(GcArgs),
    /// Disk usage per repository (bytes its tags reach, and bytes only it reaches) and what gc
    /// would free. Deletes nothing.
    Du(DuArgs),
    /// Check the store's consistency: missing blobs, corrupt manifests, bad links, dangling tags,
    /// stale uploads, and with --verify-digests data that does not hash to its name. Deletes
    /// nothing. Exit status 0 when clean, 1 when problems were found, 2 when it could not run.
    Audit(AuditArgs),
    /// Remove tags by rule (repository glob, tag pattern, keep the newest N, keep the recent), so
    /// that `gc -m` can then free what only they kept.
    ///
    /// A dry run unless --delete is given. Only tags go: manifests and blobs are gc's business.
    PruneTags(PruneArgs),
    /// Delete what a reviewed plan file lists, after checking that the store has not moved on.
    ///
    /// A `gc --plan` file: the same tags and revisions, each item still eligible and not written again
    /// since. A `prune-tags --plan` file: each listed tag still names the manifest it named, pushed at
    /// the same time. Refuses, deleting nothing, otherwise, and refuses a plan that is cut short,
    /// edited, or made for another store.
    Apply(ApplyArgs),
    /// Write the store's tables (blobs, manifest references, links, tags, uploads) as Parquet into
    /// DIR, with plan.sql: gc's plan (without -m) as portable SQL over them, for DuckDB, Spark,
    /// Athena or Trino. Deletes nothing.
    Export(ExportArgs),
    /// A run split over machines (a Kubernetes Indexed Job): each shard reads its share of the
    /// manifests into a part, then one merge adds the parts to the manifest cache. The sweep is
    /// split with `apply --shard`.
    #[command(subcommand)]
    Shard(ShardCommand),
    /// The trash that deleting runs given --trash move into: list its runs, restore one, purge.
    #[command(subcommand)]
    Trash(TrashCommand),
    /// Print a shell completion script for bash, zsh or fish to stdout.
    ///
    /// bash: `regsweep completions bash > /etc/bash_completion.d/regsweep`;
    /// zsh: `regsweep completions zsh > "${fpath[1]}/_regsweep"`;
    /// fish: `regsweep completions fish > ~/.config/fish/completions/regsweep.fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout: `regsweep man | man -l -`.
    Man,
}

/// Progress on stderr and the metrics file, for a run that is watched or scheduled.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Progress and metrics")]
pub struct RunArgs {
    /// No progress on stderr (warnings and errors still go there; SIGUSR1 still prints the counts).
    #[arg(short, long)]
    pub quiet: bool,
    /// When stderr is not a terminal (cron, systemd, Kubernetes), print the counts this often
    /// (a heartbeat, so that a log shows the run moving). On a terminal the display is live.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_interval)]
    pub progress_interval: Duration,
    /// Write the run's figures to FILE in the Prometheus text format, atomically, for
    /// node_exporter's textfile collector (name it *.prom in the collector's folder).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The plan file written by `regsweep gc --plan FILE` or `regsweep prune-tags --plan FILE`.
    pub plan: PathBuf,
    /// The store the plan was made of: rootdirectory, config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL.
    pub storage: String,
    /// Delete only the items shard I of N owns (0-based; or N with the index from
    /// JOB_COMPLETION_INDEX), without taking the store's lock, so that shards run at once; then
    /// apply the plan once more without --shard, which deletes what is left and the emptied
    /// repositories.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Apply a gc plan while the registry stays writable, as `gc --online` sweeps: what the plan
    /// lists and a fresh analysis still plans is moved into the trash and healed; what changed
    /// since the plan is left out instead of refusing.
    #[arg(long, conflicts_with = "shard")]
    pub online: bool,
    #[command(flatten)]
    pub online_tuning: OnlineTuning,
    #[command(flatten)]
    pub safety: SafetyArgs,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub view: ViewArgs,
    // Sections with a heading of their own go last: a heading holds for every option after it.
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub manifest_cache: ManifestCacheArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
    #[command(flatten)]
    pub s3_delete: S3DeleteArgs,
}

/// How much of the plan the human output shows.
#[derive(Debug, clap::Args)]
pub struct ViewArgs {
    /// Repositories shown in the plan view, by bytes they lose.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Print every plan item, one a line, before the summary.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// Repositories the rules apply to (repeatable): `team/*` is one level, `team/**` any depth,
    /// `**` every repository. At least one is required.
    #[arg(long = "repo", value_name = "GLOB")]
    pub repos: Vec<String>,
    /// Candidates are the tags matching this regular expression (default: every tag)…
    #[arg(long, value_name = "REGEX")]
    pub tag: Option<regex::Regex>,
    /// …except those matching this one, which always stay (e.g. '^(latest|stable|v\d+\.\d+\.\d+)$').
    #[arg(long, value_name = "REGEX")]
    pub keep_tag: Option<regex::Regex>,
    /// Of the candidates in each repository, keep the N most recently pushed.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Of the candidates, keep those pushed within this window (30d, 12h); remove the older ones.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Candidates are only referrer tags (`sha256-<hex>`, cosign's `sha256-<hex>.sig/.att/.sbom`)
    /// whose subject manifest is no longer in the repository.
    #[arg(long)]
    pub orphan_referrer_tags: bool,
    /// Every tag of the matched repositories is a candidate. Without it, one of --tag, --keep-last,
    /// --older-than or --orphan-referrer-tags is required, so that no rule never means every tag.
    #[arg(long)]
    pub all_tags: bool,
    /// Judge tags by a retention policy file instead of the flags above: regsweep's rules (YAML or
    /// JSON), an ECR lifecycle policy as AWS writes it, or an `acr purge` command line. Rules by
    /// priority; the first rule that selects a tag decides it; what no rule selects is kept. --repo
    /// then limits the repositories (default: every one).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["tag", "keep_tag", "keep_last", "older_than", "orphan_referrer_tags", "all_tags"])]
    pub policy: Option<PathBuf>,
    /// Name, for every tag, the rule that decided it and why (in --json as `decisions`).
    #[arg(long, requires = "policy")]
    pub explain: bool,
    #[command(flatten)]
    pub policy_inputs: PolicyInputs,
    /// Delete the tags the plan lists. Without it nothing is deleted.
    #[arg(long)]
    pub delete: bool,
    #[command(flatten)]
    pub safety: SafetyArgs,
    /// Write the plan to FILE as NDJSON: a header line, then one tag a line. `regsweep apply FILE
    /// STORAGE` executes it later.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
    #[command(flatten)]
    pub s3_delete: S3DeleteArgs,
}

/// How an online run settles (`--online` is the command's own flag).
#[derive(Debug, clap::Args)]
pub struct OnlineTuning {
    /// With --online: wait this long after the sweep before each of the two heal passes. At least
    /// your longest request: the ingress or load balancer timeout.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, requires = "online")]
    pub settle: Duration,
    /// With --online and the registry's inmemory cache: a command (run with sh -c) that restarts
    /// every registry replica, run after the heal passes, then one more pass.
    #[arg(long, value_name = "CMD", requires = "online")]
    pub restart_command: Option<String>,
}

impl OnlineTuning {
    /// The library's online options, when `online`.
    pub fn options(&self, online: bool) -> Option<regsweep::commands::online::OnlineOptions> {
        online.then(|| regsweep::commands::online::OnlineOptions {
            settle: self.settle,
            restart_command: self.restart_command.clone(),
        })
    }
}

/// Options that guard --delete.
#[derive(Debug, clap::Args)]
pub struct SafetyArgs {
    /// Delete even though the registry's config.yml does not put it in read-only mode, or its redis
    /// blob-descriptor cache cannot be reached and written (then flush that cache by hand).
    #[arg(long)]
    pub force: bool,
    /// Remove the store's lock first if the deleting run that took it is gone (an S3 lock not
    /// renewed for 15 minutes, or held by a dead pid on this host). A live run's lock is never broken.
    #[arg(long)]
    pub break_lock: bool,
    /// Move what would be deleted into the store's trash (`regsweep-trash/` beside `docker/`, where
    /// the registry never looks) and keep it there for DURATION (7d, 24h), instead of deleting it.
    /// `regsweep trash restore STORAGE RUN` puts it back; the next deleting run purges runs whose
    /// window has passed. Filesystem: a rename, no data copied. S3, GCS and Azure: a server-side
    /// copy (CopyObject, a rewrite, Copy Blob), checked, then a delete of the original (requests,
    /// and storage until purged).
    #[arg(long, value_name = "DURATION", value_parser = parse_trash_window)]
    pub trash: Option<Duration>,
}

fn parse_trash_window(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(
            "a trash window of 0 would purge at once; leave --trash out \
                                 to delete"
                .into(),
        ),
        d => Ok(d),
    }
}

#[derive(Debug, Subcommand)]
pub enum TrashCommand {
    /// The runs in the trash: when, which command, what they hold, when each expires.
    List(TrashListArgs),
    /// Put everything a run moved back where it was, never overwriting what was written there
    /// since. Takes the store's lock.
    Restore(TrashRestoreArgs),
    /// Delete runs from the trash for good (a dry run unless --delete): one by its id, those past
    /// their window (--expired), or every one (--all).
    Purge(TrashPurgeArgs),
    /// Heal every online run (`gc --online`) still in the trash: put back what links written
    /// since it began need. Every deleting run does this before it purges. Takes the store's lock.
    Heal(TrashHealArgs),
}

#[derive(Debug, clap::Args)]
pub struct TrashHealArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// Remove the store's lock first if the run that took it is gone.
    #[arg(long)]
    pub break_lock: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
pub struct TrashListArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// Print the runs as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
pub struct TrashRestoreArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// The run's id, as `regsweep trash list` names it.
    pub run_id: String,
    /// Remove the store's lock first if the run that took it is gone.
    #[arg(long)]
    pub break_lock: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["run_id", "expired", "all"]))]
#[command(override_usage = "regsweep trash purge <STORAGE> <RUN_ID|--expired|--all> [OPTIONS]")]
pub struct TrashPurgeArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// The run's id, as `regsweep trash list` names it.
    pub run_id: Option<String>,
    /// Every run whose window has passed.
    #[arg(long)]
    pub expired: bool,
    /// Every run.
    #[arg(long)]
    pub all: bool,
    /// Purge them. Without it nothing is deleted.
    #[arg(long)]
    pub delete: bool,
    /// Remove the store's lock first if the run that took it is gone.
    #[arg(long)]
    pub break_lock: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum ShardCommand {
    /// Read the manifests shard I of N owns (revisions and tags' targets, with the entries of the
    /// lists and indexes it reads) into its part below PARTS. Deletes nothing.
    Manifests(ShardManifestsArgs),
    /// Check that every shard's part is in PARTS (one N, this store) and add them to the manifest
    /// cache the collecting run uses.
    Merge(ShardMergeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShardManifestsArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// Which shard: I/N (0-based), or N with the index from JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I/N")]
    pub shard: String,
    /// The folder the shards share for their parts (created if need be).
    #[arg(long, value_name = "DIR")]
    pub parts: PathBuf,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub inventory: S3InventoryArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
pub struct ShardMergeArgs {
    /// The store the parts were read from.
    pub storage: String,
    /// The folder holding the shards' parts.
    #[arg(long, value_name = "DIR")]
    pub parts: PathBuf,
    /// The manifest cache to add them to (default: the one every command uses).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// The folder for the tables and plan.sql: created if need be, and refused unless empty.
    pub dir: PathBuf,
    /// The grace window plan.sql applies (written into the `run` table as its cutoff).
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    pub grace: Duration,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub manifest_cache: ManifestCacheArgs,
    #[command(flatten)]
    pub inventory: S3InventoryArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
pub struct DuArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Repositories shown in the table, by exclusive bytes.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Also write the report as one self-contained HTML page (a treemap, a sortable table, each
    /// repository's tags and largest blobs) that makes no request when opened.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Append this run's figures to FILE (JSON Lines, created if need be) and report growth per
    /// repository over the recorded runs, with the date the store fills at the recent rate.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// What the store may hold, for the fill date (`500G`, `4TiB`, `2TB`, bytes); by default a
    /// filesystem store's own filesystem size and free space.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "history")]
    pub capacity: Option<u64>,
    /// Account for every byte stored under the store's root, each in one category: the registry's
    /// objects (live, unreferenced, untagged, uploads, links), older versions and delete markers,
    /// parts of incomplete multipart uploads, regsweep's trash and lock, and keys outside the
    /// registry's layout (never touched by any command). The store is listed once, by version
    /// (ListObjectVersions on S3), and that listing answers du's own.
    #[arg(long)]
    pub bucket: bool,
    /// With --bucket: what each category costs a month, from FILE: a YAML map of storage class to
    /// price per GiB-month (`STANDARD: 0.023`; `default:` for bytes whose class the store does not
    /// name; multipart parts are priced as STANDARD).
    #[arg(long, value_name = "FILE", requires = "bucket")]
    pub price: Option<PathBuf>,
    /// Largest blobs listed per repository, with who shares them.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub blobs_per_repo: usize,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub manifest_cache: ManifestCacheArgs,
    #[command(flatten)]
    pub inventory: S3InventoryArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The store: the registry's rootdirectory, its config.yml, s3://bucket/prefix, gs://bucket/prefix,
    /// or an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Hash every blob's data (streaming, in parallel) and report data whose sha256 is not its name.
    #[arg(long)]
    pub verify_digests: bool,
    /// Uploads untouched for longer than this are stale.
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    pub grace: Duration,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub manifest_cache: ManifestCacheArgs,
    #[command(flatten)]
    pub inventory: S3InventoryArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The store: the registry's rootdirectory (the folder holding docker/registry/v2), its
    /// config.yml, s3://bucket/prefix, gs://bucket/prefix, or an Azure Blob URL
    /// (https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix).
    pub storage: String,
    /// Untagged manifests are garbage too; children of tagged lists/indexes and referrers (subject)
    /// of kept manifests stay.
    #[arg(short = 'm', long)]
    pub delete_untagged: bool,
    /// With -m: collect only the untagged manifests a retention policy's rules expire (rules with
    /// status untagged or any; ECR's tagStatus untagged; acr purge --untagged). What no rule
    /// selects is kept. The file prune-tags --policy reads.
    #[arg(long, value_name = "FILE", requires = "delete_untagged")]
    pub policy: Option<PathBuf>,
    /// Name, for every untagged manifest the policy judged, the rule that decided it and why (in
    /// --json as `untagged_policy.decisions`).
    #[arg(long, requires = "policy")]
    pub explain: bool,
    #[command(flatten)]
    pub policy_inputs: PolicyInputs,
    /// Delete what the plan lists. Without it nothing is deleted.
    #[arg(long)]
    pub delete: bool,
    /// Hold back data written within this window (30m, 2h, 0s): a blob is old only when its data
    /// and every link naming it are.
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    pub grace: Duration,
    /// Collect while the registry stays writable (STORAGE must be its config.yml; its cache redis
    /// or none): what goes is moved into the trash (--trash, default 7d), never deleted, and put
    /// back when a link written since the run began needs it (heal passes after the sweep; every
    /// later deleting run and `regsweep trash heal` heal again before anything is purged).
    #[arg(long, requires = "delete")]
    pub online: bool,
    #[command(flatten)]
    pub online_tuning: OnlineTuning,
    #[command(flatten)]
    pub safety: SafetyArgs,
    /// Write the plan to FILE as NDJSON: a header line (store, options, time, item count and checksum,
    /// fingerprints of the tags and revisions), then one item per line. `regsweep apply FILE STORAGE`
    /// executes it later.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub view: ViewArgs,
    // Sections with a heading of their own go last: a heading holds for every option after it.
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub manifest_cache: ManifestCacheArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub inventory: S3InventoryArgs,
    #[command(flatten)]
    pub s3: RemoteArgs,
    #[command(flatten)]
    pub s3_delete: S3DeleteArgs,
}

/// What a retention policy (`--policy`) may need besides its file: pins and pull records.
#[derive(Debug, clap::Args)]
pub struct PolicyInputs {
    /// Image references that are never expired, as `kubectl get pods -A -o
    /// jsonpath='{..image}'` prints them (host optional, by tag or digest).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub keep_images: Option<PathBuf>,
    /// The registry's logs or saved notification events (repeatable; gzipped files too), for
    /// rules on pulls (a pull by tag counts for that tag, by digest for that manifest and every
    /// tag on it).
    #[arg(long = "pulls", value_name = "FILE", requires = "policy")]
    pub pulls: Vec<PathBuf>,
}

/// The registry's blob-descriptor cache, which a deleting run evicts what it deleted from.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Blob-descriptor cache")]
pub struct CacheArgs {
    /// The registry's redis cache, when STORAGE is not its config.yml (which names it):
    /// redis://[user:password@]host[:port][/db], rediss:// for TLS. Overrides the config's.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Do not evict the redis cache: you will flush it (or restart the registry with an empty one)
    /// before the registry takes writes again. The report lists the keys left.
    #[arg(long)]
    pub skip_cache_eviction: bool,
}

/// What manifests reference, kept between runs: a manifest is named by its content's hash, so what
/// one run learned from it holds for every later run, and a run over a store that changed little
/// reads only the new manifests. (`audit` reads every manifest, to check the store's data, and only
/// adds to the cache.)
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Manifest cache")]
pub struct ManifestCacheArgs {
    /// Where to keep what each manifest references between runs, so that a repeat run reads only
    /// new manifests (default: $XDG_CACHE_HOME/regsweep, else ~/.cache/regsweep). One file, shared
    /// by every command and store; safe to delete at any time.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Read every manifest from the store, and neither read nor write the manifest cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// Blobs listed from an S3 Inventory instead of the bucket (for a store in S3).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "S3 Inventory")]
pub struct S3InventoryArgs {
    /// List the store's blobs from this S3 Inventory (its manifest.json: s3://bucket/key or a
    /// local copy of the destination bucket) instead of the bucket; repositories are still listed
    /// fresh, blobs written after it are found through their links and kept, and each blob is
    /// checked against the bucket before it is deleted. CSV, ORC and Parquet; MD5s checked.
    #[arg(long, value_name = "URL")]
    pub inventory: Option<String>,
    /// Refuse an inventory taken longer ago than this.
    #[arg(long, value_name = "AGE", default_value = "3d", value_parser = parse_duration,
          requires = "inventory")]
    pub inventory_max_age: Duration,
}

/// Options for a store in S3, GCS or Azure: the request bounds apply to all three, the endpoint to
/// S3 and GCS (refused for Azure; a store on disk ignores them).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "S3")]
pub struct RemoteArgs {
    /// A non-AWS S3 endpoint (MinIO, Ceph, …); implies path-style addressing. Also read from
    /// AWS_ENDPOINT_URL. For a gs:// store, a GCS emulator's URL (as STORAGE_EMULATOR_HOST).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Requests in flight at most (1 or more).
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_in_flight: usize,
    /// Requests started per second at most (default: no cap; 1 or more). Protects a bucket the
    /// registry shares.
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..))]
    pub max_rps: Option<u32>,
}

/// What a delete does on a versioned S3 bucket.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "S3")]
pub struct S3DeleteArgs {
    /// On a versioned bucket, delete every version of each key the sweep deletes, and its delete
    /// markers, so the space comes back now (a plain delete only adds a delete marker). Deleted
    /// versions cannot be restored. The dry run names the bucket's versioning and this choice.
    #[arg(long)]
    pub delete_versions: bool,
}

/// A size: bytes, or a number with a unit: K, M, G, T, P and KiB … PiB are powers of 1024 (as
/// `df -h` prints them), KB … PB powers of 1000.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (say 500G, 4TiB, 2TB or a number of bytes)"))?;
    let power = |p: i32, base: f64| base.powi(p);
    let scale = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KIB" => power(1, 1024.0),
        "M" | "MIB" => power(2, 1024.0),
        "G" | "GIB" => power(3, 1024.0),
        "T" | "TIB" => power(4, 1024.0),
        "P" | "PIB" => power(5, 1024.0),
        "KB" => power(1, 1000.0),
        "MB" => power(2, 1000.0),
        "GB" => power(3, 1000.0),
        "TB" => power(4, 1000.0),
        "PB" => power(5, 1000.0),
        other => {
            return Err(format!(
                "{other:?} is not a unit of size (K, M, G, T, P, KiB … PiB, KB … PB)"
            ));
        }
    };
    let bytes = n * scale;
    if bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{s:?}: a capacity is at least one byte"));
    }
    Ok(bytes as u64)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d < Duration::from_millis(100) => Err(format!("{s:?} is shorter than 100ms")),
        d => Ok(d),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 30m, 2h or 0s: {e}"))
}

// The library's options, from the command line's (the library never sees clap).

impl From<&SafetyArgs> for regsweep::commands::gate::Safety {
    fn from(a: &SafetyArgs) -> Self {
        regsweep::commands::gate::Safety {
            force: a.force,
            break_lock: a.break_lock,
            trash: a.trash,
            online: false,
        }
    }
}

impl From<&CacheArgs> for regsweep::commands::gate::CacheChoice {
    fn from(a: &CacheArgs) -> Self {
        regsweep::commands::gate::CacheChoice {
            redis: a.redis.clone(),
            skip_eviction: a.skip_cache_eviction,
        }
    }
}

impl From<&ManifestCacheArgs> for regsweep::commands::CacheDir {
    fn from(a: &ManifestCacheArgs) -> Self {
        regsweep::commands::CacheDir {
            off: a.no_cache,
            dir: a.cache_dir.clone(),
        }
    }
}

impl From<&ViewArgs> for regsweep::report::View {
    fn from(a: &ViewArgs) -> Self {
        regsweep::report::View {
            top: a.top,
            list: a.list,
        }
    }
}

impl PolicyInputs {
    /// The policy file `policy` with these inputs.
    pub fn files(&self, policy: &std::path::Path) -> regsweep::commands::PolicyFiles {
        regsweep::commands::PolicyFiles {
            policy: policy.to_owned(),
            keep_images: self.keep_images.clone(),
            pulls: self.pulls.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_human_units() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1h").is_err());
    }

    #[test]
    fn gc_defaults_to_a_dry_run_with_two_hours_of_grace() {
        let cli = Cli::try_parse_from(["regsweep", "gc", "/srv"]).unwrap();
        let Command::Gc(a) = cli.command else {
            panic!("gc parses as gc")
        };
        assert!(!a.delete && !a.delete_untagged && !a.json);
        assert_eq!(a.grace, Duration::from_secs(7200));
        let cli =
            Cli::try_parse_from(["regsweep", "gc", "-m", "--delete", "--grace", "0s", "/srv"])
                .unwrap();
        let Command::Gc(a) = cli.command else {
            panic!("gc parses as gc")
        };
        assert!(a.delete && a.delete_untagged);
        assert_eq!(a.grace, Duration::ZERO);
    }

    #[test]
    fn prune_tags_takes_repeated_globs_and_compiles_its_patterns() {
        let cli = Cli::try_parse_from([
            "regsweep",
            "prune-tags",
            "/srv",
            "--repo",
            "team/*",
            "--repo",
            "ci/**",
            "--tag",
            "^[0-9a-f]{40}$",
            "--keep-last",
            "5",
            "--older-than",
            "30d",
        ])
        .unwrap();
        let Command::PruneTags(a) = cli.command else {
            panic!("prune-tags parses as prune-tags")
        };
        assert_eq!(a.repos, ["team/*", "ci/**"]);
        assert!(a.tag.unwrap().is_match(&"ab".repeat(20)));
        assert_eq!(a.keep_last, Some(5));
        assert_eq!(a.older_than, Some(Duration::from_secs(30 * 86400)));
        assert!(!a.delete && !a.safety.force);
        let bad = Cli::try_parse_from([
            "regsweep",
            "prune-tags",
            "/srv",
            "--repo",
            "a",
            "--tag",
            "(",
        ]);
        assert!(bad.unwrap_err().to_string().contains("--tag"));
    }
}
