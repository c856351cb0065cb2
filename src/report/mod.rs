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
    s: Option<&crate::storage::s3_inventory::ListingSnapshot>,
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

/// What the human rendering of a report may be asked for: how many of the largest to show
/// (`--top`), and the plan item by item (`--list`).
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    pub top: usize,
    pub list: bool,
}

/// A command's report as the binary shows it: `--json`, or a summary for people. Every command's
/// result is one; the binary renders it and nothing else.
pub trait Render {
    fn json(&self, out: &mut dyn Write) -> io::Result<()>;
    fn human(&self, out: &mut dyn Write, view: &View) -> io::Result<()>;

    /// `json` when asked for, else `human`.
    fn render(&self, out: &mut dyn Write, json: bool, view: &View) -> io::Result<()> {
        if json {
            self.json(out)
        } else {
            self.human(out, view)
        }
    }
}

/// `Render` for a report whose human form needs no view.
macro_rules! render_plain {
    ($($t:ty),* $(,)?) => {$(
        impl Render for $t {
            fn json(&self, out: &mut dyn Write) -> io::Result<()> {
                self.write_json(out)
            }
            fn human(&self, out: &mut dyn Write, _view: &View) -> io::Result<()> {
                self.write_human(out)
            }
        }
    )*};
}

render_plain!(
    audit::AuditReport,
    shard::ManifestPart,
    shard::Merged,
    trash::RestoreReport,
    trash::PurgeReport,
    trash::HealReport,
);

impl Render for trash::TrashList {
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_json(out)
    }
    fn human(&self, out: &mut dyn Write, _view: &View) -> io::Result<()> {
        trash::write_list(self, out)
    }
}

impl Render for du::DuReport {
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_json(out)
    }
    fn human(&self, out: &mut dyn Write, view: &View) -> io::Result<()> {
        self.write_human(out, view.top)?;
        match &self.page {
            Some(p) => writeln!(out, "page written to {p}"),
            None => Ok(()),
        }
    }
}

/// A gc (or apply) report with the plan it was made from, for `--list`.
pub struct GcShown {
    pub report: gc::GcReport,
    pub plan: crate::pipeline::plan::Plan,
}

impl Render for GcShown {
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        self.report.write_json(out)
    }
    fn human(&self, out: &mut dyn Write, view: &View) -> io::Result<()> {
        if view.list {
            gc::write_plan_list(&self.plan, out)?;
        }
        self.report.write_human(out, view.top)
    }
}

/// A prune-tags (or apply) report with the plan it judged.
pub struct PruneShown {
    pub report: prune_tags::PruneReport,
    pub plan: crate::pipeline::retention::tags::PrunePlan,
}

impl Render for PruneShown {
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        self.report.write_json(out)
    }
    fn human(&self, out: &mut dyn Write, _view: &View) -> io::Result<()> {
        prune_tags::write_human(&self.plan, &self.report, out)
    }
}
