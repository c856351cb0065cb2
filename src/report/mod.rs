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
    owner: Option<&crate::pipeline::database_lock::DatabaseOwned>,
) -> io::Result<()> {
    match owner {
        Some(o) => writeln!(out, "{}", o.warning()),
        None => Ok(()),
    }
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
