//! What a run found, as a plain struct per command, and its renderers: JSON (`--json`, through
//! [`WriteJson`]), a human summary, and Prometheus metrics ([`metrics`]). Reports are built from the
//! pipeline's results and never do I/O on the store.

pub mod audit;
pub mod du;
pub mod du_history;
pub mod du_page;
pub mod gc;
pub mod metrics;
pub mod prune_tags;
pub mod shard;
pub mod tables;
pub mod trash;
pub mod treemap;

use serde::Serialize;
use std::io::{self, Write};

/// A report written as `--json` prints it: pretty JSON and a newline. Every command's report.
pub trait WriteJson: Serialize {
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)
    }
}

/// The first line of a human report on a store that a metadata database owns, when it is one.
pub fn write_owner(
    out: &mut dyn Write,
    owner: Option<&crate::pipeline::guard::database_owner::DatabaseOwned>,
) -> io::Result<()> {
    match owner {
        Some(o) => writeln!(out, "{}", o.warning()),
        None => Ok(()),
    }
}

/// The line that says a run's blobs were listed from an S3 Inventory, and how old it was.
pub fn write_snapshot(
    out: &mut dyn Write,
    s: Option<&crate::storage::inventory::ListingSnapshot>,
) -> io::Result<()> {
    let Some(s) = s else { return Ok(()) };
    writeln!(
        out,
        "  inventory     {} blobs listed from {} ({}, taken {}, {} old); {} written since, found \
         through their links, kept{}",
        crate::model::text::thousands(s.blobs),
        s.manifest,
        s.format,
        s.taken,
        humantime::format_duration(std::time::Duration::from_secs(s.age_seconds)),
        crate::model::text::thousands(s.blobs_after_snapshot),
        if s.changed_since_snapshot > 0 {
            format!(
                "; {} changed since and left alone",
                crate::model::text::thousands(s.changed_since_snapshot)
            )
        } else {
            String::new()
        }
    )
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
