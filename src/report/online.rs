//! What an online run (`gc --online`) reports: its T0, its settle passes, what they put back and
//! why, and the repositories it left out.

use crate::model::text::{count, human_bytes};
use crate::pipeline::execute::heal::Healed;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

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
    pub restored: Restored,
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
pub struct Restored {
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
