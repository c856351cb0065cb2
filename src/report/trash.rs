//! The trash commands' reports: the runs listed, a restore, a purge, a heal; the line a deleting
//! report gives its trash run; and what an online run reports of its heal passes.

use crate::model::text::{count, human_bytes};
use crate::pipeline::execute::heal::Healed;
use crate::pipeline::execute::trash::{Held, Restored, RunRecord, RunSummary};
use crate::pipeline::execute::trash_purge::Purged;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// `regsweep trash list`.
#[derive(Debug, Clone, Serialize)]
pub struct TrashList {
    pub storage: String,
    pub runs: Vec<RunSummary>,
    pub objects: u64,
    pub bytes: u64,
}

impl super::WriteJson for TrashList {}

/// `regsweep trash list`: a line a run, then the totals.
pub fn write_list(list: &TrashList, out: &mut dyn Write) -> io::Result<()> {
    if list.runs.is_empty() {
        return writeln!(out, "The trash of {} is empty.", list.storage);
    }
    for r in &list.runs {
        write_run(r, out)?;
    }
    writeln!(
        out,
        "{} in the trash of {}: {}, {}.",
        count(list.runs.len() as u64, "run", "runs"),
        list.storage,
        count(list.objects, "object", "objects"),
        human_bytes(list.bytes)
    )
}

fn write_run(r: &RunSummary, out: &mut dyn Write) -> io::Result<()> {
    let expiry = match (&r.expires, r.expired) {
        (Some(e), true) => format!("expired {e}"),
        (Some(e), false) => format!("until {e}"),
        (None, _) => "no expiry".into(),
    };
    writeln!(
        out,
        "{}  {:<10} {:<8} {:>9} {:>10}  {}{}",
        r.id,
        r.command.as_deref().unwrap_or("?"),
        r.state,
        count(r.objects, "object", "objects"),
        human_bytes(r.bytes),
        expiry,
        r.problem
            .as_ref()
            .map_or(String::new(), |p| format!(" ({p})"))
    )
}

/// `regsweep trash restore`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub storage: String,
    #[serde(flatten)]
    pub restored: Restored,
}

impl super::WriteJson for RestoreReport {}

impl RestoreReport {
    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.restored;
        writeln!(
            out,
            "Restored run {} of {}: {} back in place ({}), {} there already.",
            r.run,
            self.storage,
            count(r.restored, "object", "objects"),
            human_bytes(r.bytes),
            count(r.already_there, "object", "objects")
        )?;
        for c in &r.conflicts {
            writeln!(out, "  conflict      {c}")?;
        }
        for f in &r.failures {
            writeln!(out, "  failed        {f}")?;
        }
        if r.run_removed {
            writeln!(out, "The run is gone from the trash.")
        } else {
            writeln!(
                out,
                "The run stays in the trash with what could not be put back; run the restore \
                 again once the conflicts are resolved."
            )
        }
    }
}

/// `regsweep trash heal`: what heal passes over the trash's online runs put back.
#[derive(Debug, Clone, Serialize)]
pub struct HealReport {
    pub storage: String,
    /// Online runs healed (one pass each).
    pub runs: u64,
    #[serde(flatten)]
    pub healed: crate::pipeline::execute::heal::Healed,
    /// Runs whose pass failed.
    pub unhealed: Vec<String>,
}

impl super::WriteJson for HealReport {}

impl HealReport {
    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let h = &self.healed;
        if self.runs == 0 && self.unhealed.is_empty() {
            return writeln!(
                out,
                "No online run in the trash of {}: nothing to heal.",
                self.storage
            );
        }
        writeln!(
            out,
            "Healed {} of {}: {} written since they began, {} put back ({}).",
            count(self.runs, "online run", "online runs"),
            self.storage,
            count(h.new_links, "link", "links"),
            count(h.objects, "object", "objects"),
            human_bytes(h.bytes)
        )?;
        for (why, n) in &h.by_reason {
            writeln!(out, "  {n:>8} needed by a new {why}")?;
        }
        for c in &h.conflicts {
            writeln!(out, "  conflict      {c}")?;
        }
        for f in &h.failures {
            writeln!(out, "  failed        {f}")?;
        }
        for r in &self.unhealed {
            writeln!(out, "  not healed    run {r}")?;
        }
        Ok(())
    }
}

/// `regsweep trash purge`.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub storage: String,
    pub dry_run: bool,
    /// The runs it takes, as listed before.
    pub runs: Vec<RunSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged: Option<Purged>,
}

impl super::WriteJson for PurgeReport {}

impl PurgeReport {
    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.runs.is_empty() {
            return writeln!(
                out,
                "No run of the trash of {} is to purge (`regsweep trash list` names the runs).",
                self.storage
            );
        }
        for r in &self.runs {
            write_run(r, out)?;
        }
        let (objects, bytes) = self
            .runs
            .iter()
            .fold((0, 0), |(o, b), r| (o + r.objects, b + r.bytes));
        match &self.purged {
            None => writeln!(
                out,
                "Would purge {} ({}, {}); nothing was deleted (dry run). --delete purges them.",
                count(self.runs.len() as u64, "run", "runs"),
                count(objects, "object", "objects"),
                human_bytes(bytes)
            ),
            Some(p) => {
                writeln!(
                    out,
                    "Purged {} ({}, {}); {}.",
                    count(p.runs.len() as u64, "run", "runs"),
                    count(p.objects, "object", "objects"),
                    human_bytes(p.bytes),
                    count(p.failures.len() as u64, "failure", "failures")
                )?;
                for f in &p.failures {
                    writeln!(out, "  failed        {}: {}", f.key, f.error)?;
                }
                Ok(())
            }
        }
    }
}

/// The line a deleting run's report gives its trash run: where it went and how to get it back.
pub fn write_trashed(run: &RunRecord, storage: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Moved to the trash, not deleted: run {} ({}, {}), kept until {}; \
         `regsweep trash restore {storage} {}` puts it back.",
        run.id,
        count(run.moved, "object", "objects"),
        human_bytes(run.bytes),
        run.expires,
        run.id
    )
}

/// The line the other reports give what the trash holds.
pub fn write_held(h: &Held, out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "trash: {}, {} ({}) in regsweep-trash/, beside the registry's keys and not counted above",
        count(h.runs, "run", "runs"),
        count(h.objects, "object", "objects"),
        human_bytes(h.bytes)
    )?;
    if let Some(at) = &h.empty_after {
        write!(out, "; empty after {at}")?;
    }
    if h.expired_runs > 0 {
        write!(
            out,
            "; {} past its window (the next deleting run purges it)",
            count(h.expired_runs, "run", "runs")
        )?;
    }
    if h.unexpiring_runs > 0 {
        write!(
            out,
            "; {} without a readable record never expire (`regsweep trash purge` by id)",
            count(h.unexpiring_runs, "run", "runs")
        )?;
    }
    writeln!(out, "; `regsweep trash list` names the runs")
}

/// What a dry run given `--trash` says the trash would cost: where the plan's deletes would go,
/// until when, and the requests or renames a move takes on this store.
#[derive(Debug, Clone, Serialize)]
pub struct TrashPlan {
    pub window_seconds: u64,
    /// When the run's trash would expire, were it made now.
    pub until: String,
    /// The plan's items (each one or more keys) and the bytes of their blobs and uploads.
    pub items: u64,
    pub bytes: u64,
    /// What moving one key costs here, in words.
    pub cost: String,
}

impl TrashPlan {
    /// `cost`: what moving one key costs on the store ([`crate::storage::Moves::move_cost`]).
    pub fn new(
        cost: &str,
        window: std::time::Duration,
        now: std::time::SystemTime,
        (items, bytes): (u64, u64),
    ) -> TrashPlan {
        let created = crate::model::time::unix_seconds(now);
        TrashPlan {
            window_seconds: window.as_secs(),
            until: crate::model::time::rfc3339(created + window.as_secs() as i64),
            items,
            bytes,
            cost: cost.to_owned(),
        }
    }

    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "With --trash, --delete would move the plan's {} ({}) to regsweep-trash/, kept until \
             {}: {}.",
            count(self.items, "item", "items"),
            human_bytes(self.bytes),
            self.until,
            self.cost
        )
    }
}

// What an online run (`gc --online`) reports: its T0, its settle passes, what they put back and
// why, and the repositories it left out.

/// What an online run reports (`--json` field `online`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OnlineReport {
    /// T0: the store's time when the run began (its trash record's write).
    pub t0: String,
    /// The trash run that holds what was swept.
    pub trash_run: String,
    pub window_seconds: u64,
    pub settle_seconds: u64,
    pub settle_passes: u64,
    /// What the heal passes put back, and why.
    pub restored: OnlineRestored,
    /// Repositories that changed between the analysis and the sweep: left out of this run.
    pub narrowed_repositories: Vec<String>,
    /// Digests left out with them (what the changed repositories name now).
    pub narrowed_digests: u64,
    /// The restart command, when it ran, and how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Objects needed by new links whose place was written again with other content.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// Objects put back by heal passes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OnlineRestored {
    pub objects: u64,
    pub bytes: u64,
    /// By the kind of new link that needed them: `tag`, `revision link`, `layer link`.
    pub by_reason: BTreeMap<String, u64>,
}

impl OnlineReport {
    /// Adds what heal passes did.
    pub fn heard(&mut self, healed: Healed) {
        self.settle_passes += healed.passes;
        self.restored.objects += healed.objects;
        self.restored.bytes += healed.bytes;
        for (why, n) in healed.by_reason {
            *self.restored.by_reason.entry(why).or_default() += n;
        }
        self.conflicts.extend(healed.conflicts);
        self.failures.extend(healed.failures);
    }

    /// Whether something stayed undone (a conflict, a failure, a restart that failed).
    pub fn partial(&self) -> bool {
        !self.conflicts.is_empty()
            || !self.failures.is_empty()
            || self.restart.as_ref().is_some_and(|r| r != "ran")
    }
}

impl OnlineReport {
    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Online: T0 {} (the store's clock); {} after the sweep, {} apart; trash run {} kept {}.",
            self.t0,
            count(self.settle_passes, "heal pass", "heal passes"),
            humantime::format_duration(std::time::Duration::from_secs(self.settle_seconds)),
            self.trash_run,
            humantime::format_duration(std::time::Duration::from_secs(self.window_seconds)),
        )?;
        if self.restored.objects == 0 {
            writeln!(
                out,
                "  restored      nothing: no link written since T0 needed what was moved"
            )?;
        } else {
            let why: Vec<String> = (self.restored.by_reason.iter())
                .map(|(k, n)| format!("{n} needed by a new {k}"))
                .collect();
            writeln!(
                out,
                "  restored      {} ({}) that pushes during the run use again: {}",
                count(self.restored.objects, "object", "objects"),
                human_bytes(self.restored.bytes),
                why.join(", ")
            )?;
        }
        if !self.narrowed_repositories.is_empty() {
            writeln!(
                out,
                "  left out      {} changed during the run, and {} they name (the next run judges them): {}",
                count(
                    self.narrowed_repositories.len() as u64,
                    "repository",
                    "repositories"
                ),
                count(self.narrowed_digests, "digest", "digests"),
                self.narrowed_repositories.join(", ")
            )?;
        }
        if let Some(r) = &self.restart {
            writeln!(out, "  restart       {r}")?;
        }
        for c in &self.conflicts {
            writeln!(out, "  conflict      {c}")?;
        }
        for f in &self.failures {
            writeln!(out, "  failed        {f}")?;
        }
        Ok(())
    }
}
