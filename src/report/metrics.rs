//! A run's figures in the Prometheus text exposition format, for node_exporter's textfile collector
//! (`--metrics-file`).
//!
//! Every sample carries the labels `command` (gc, apply, prune_tags, du, audit) and `storage` (the
//! STORAGE argument), so that files of several jobs can sit in one collector folder. What a store
//! holds and what the plan would free are gauges; what the run did (deletes, requests) are counters
//! of the run, named `…_total`. Sizes end in `_bytes`, times in `_seconds`. Each figure is the
//! number the `--json` report gives under the name the HELP text cites.
//!
//! [`MetricsOutput`] writes the file atomically: a temporary file beside it, renamed into place, so
//! that the collector never reads half a file.

use crate::model::atomic_file::Staged;
use crate::model::problem::{Problem, ProblemKind};
use crate::pipeline::execute::trash::{Held, RunRecord};
use crate::report::audit::AuditReport;
use crate::report::du::DuReport;
use crate::report::gc::GcReport;
use crate::report::prune_tags::PruneReport;
use crate::storage::RequestCounts;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

/// The figures of one run, in the order they were added.
#[derive(Debug)]
pub struct Metrics {
    labels: Vec<(String, String)>,
    families: Vec<Family>,
}

impl Metrics {
    /// Figures of `command` (its name as typed: `prune-tags` becomes `prune_tags`) on `storage`.
    pub fn new(command: &str, storage: &str) -> Metrics {
        Metrics {
            labels: vec![
                ("command".into(), command.replace('-', "_")),
                ("storage".into(), storage.into()),
            ],
            families: Vec::new(),
        }
    }

    fn add(&mut self, kind: Kind, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let name = format!("regsweep_{name}");
        let mut all = self.labels.clone();
        all.extend(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(f) => f.samples.push((all, value)),
            None => self.families.push(Family {
                name,
                help: help.to_owned(),
                kind,
                samples: vec![(all, value)],
            }),
        }
    }

    /// A gauge `regsweep_<name>`.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.add(Kind::Gauge, name, help, &[], value);
    }

    /// A gauge with labels of its own beside `command` and `storage`.
    pub fn gauge_with(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(Kind::Gauge, name, help, labels, value);
    }

    /// A gauge of a count or a size.
    fn gauge_n(&mut self, name: &str, help: &str, value: u64) {
        self.gauge(name, help, value as f64);
    }

    /// A counter of a count or a size.
    fn counter_n(&mut self, name: &str, help: &str, value: u64) {
        self.counter(name, help, value as f64);
    }

    /// A counter `regsweep_<name>`; `name` ends in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        debug_assert!(name.ends_with("_total"), "{name}");
        self.add(Kind::Counter, name, help, &[], value);
    }

    fn counter_with(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(name.ends_with("_total"), "{name}");
        self.add(Kind::Counter, name, help, labels, value);
    }

    /// `regsweep_last_success_time_seconds` of this command and storage in a metrics file's text
    /// (the file a run replaces).
    pub fn last_success_in(&self, text: &str) -> Option<f64> {
        let prefix = format!(
            "regsweep_last_success_time_seconds{{{}}} ",
            label_text(&self.labels)
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let kind = match f.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let help = f.help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(out, "# HELP {} {help}", f.name);
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (labels, value) in &f.samples {
                let _ = writeln!(
                    out,
                    "{}{{{}}} {}",
                    f.name,
                    label_text(labels),
                    number(*value)
                );
            }
        }
        out
    }

    /// Start and end (Unix seconds), duration and exit status of the run, and when a run of this
    /// command on this storage last succeeded (`last_success`: this run's end when it succeeded,
    /// otherwise what the previous file said).
    pub fn run(&mut self, start: f64, end: f64, exit: u8, last_success: Option<f64>) {
        self.gauge(
            "run_start_time_seconds",
            "When the run started, in Unix seconds.",
            start,
        );
        self.gauge(
            "run_end_time_seconds",
            "When the run ended, in Unix seconds.",
            end,
        );
        self.gauge(
            "run_duration_seconds",
            "How long the run took.",
            end - start,
        );
        self.gauge(
            "run_exit_status",
            "The run's exit status: 0 did all it was asked, 1 partly (deletes failed or stopped early, or audit found problems), 2 could not run or refused.",
            exit as f64,
        );
        if let Some(t) = last_success {
            self.gauge(
                "last_success_time_seconds",
                "When a run of this command on this storage last ended with exit status 0, in Unix seconds (carried over from the previous file by a run that failed).",
                t,
            );
        }
    }

    /// Problems by kind, every kind (0 where none), as `problems{kind}`.
    pub fn problems<'a>(&mut self, problems: impl Iterator<Item = &'a Problem>) {
        let mut by = std::collections::BTreeMap::new();
        for p in problems {
            *by.entry(p.kind).or_insert(0u64) += 1;
        }
        self.problem_counts(&by);
    }

    fn problem_counts(&mut self, by: &std::collections::BTreeMap<ProblemKind, u64>) {
        for kind in ProblemKind::ALL {
            self.gauge_with(
                "problems",
                "Problems found in the store, by kind (`problems` in --json).",
                &[("kind", kind.name())],
                by.get(&kind).copied().unwrap_or(0) as f64,
            );
        }
    }

    /// Requests by kind and retries, when the store is remote: `s3_…`, `gcs_…` or `azure_…`, as
    /// the service is named in --json.
    pub fn requests(&mut self, r: Option<&RequestCounts>) {
        let Some(r) = r else { return };
        let svc = r.service;
        let help = format!("Requests made to {svc}, by kind (`{svc}.<kind>_requests` in --json).");
        for (kind, n) in [
            ("list", r.list_requests),
            ("get", r.get_requests),
            ("delete", r.delete_requests),
        ] {
            self.counter_with(
                &format!("{svc}_requests_total"),
                &help,
                &[("kind", kind)],
                n as f64,
            );
        }
        self.counter(
            &format!("{svc}_retries_total"),
            &format!("Attempts beyond the first of each request (`{svc}.retries` in --json)."),
            r.retries as f64,
        );
        if svc == "s3" {
            self.counter(
                "s3_older_versions_deleted_total",
                "Noncurrent object versions and delete markers deleted with --delete-versions \
                 (`s3.older_versions_deleted` in --json).",
                r.older_versions_deleted as f64,
            );
        }
    }

    /// The figures of a `gc` or `apply` report.
    pub fn gc(&mut self, r: &GcReport) {
        self.gauge_n(
            "dry_run",
            "1 when nothing was to be deleted (`dry_run`).",
            r.dry_run as u64,
        );
        self.gauge_n(
            "repositories",
            "Repositories (`repositories`).",
            r.repositories,
        );
        self.gauge_n("tags", "Tags (`tags`).", r.tags);
        self.gauge_n(
            "manifests",
            "Manifest revisions (`manifests.total`).",
            r.manifests.total,
        );
        self.gauge_n(
            "manifests_eligible",
            "Untagged manifest revisions the plan removes (`manifests.eligible`).",
            r.manifests.eligible,
        );
        self.gauge_n(
            "manifests_held_by_grace",
            "Untagged manifest revisions kept by the grace window (`manifests.held_by_grace`).",
            r.manifests.held_by_grace,
        );
        self.gauge_n("blobs", "Blobs (`blobs.total`).", r.blobs.total);
        self.gauge_n(
            "blobs_bytes",
            "Bytes of all blobs (`blobs.total_bytes`).",
            r.blobs.total_bytes,
        );
        self.gauge_n(
            "blobs_marked",
            "Blobs a kept manifest reaches (`blobs.marked`).",
            r.blobs.marked,
        );
        self.gauge_n(
            "blobs_marked_bytes",
            "Bytes of the marked blobs (`blobs.marked_bytes`).",
            r.blobs.marked_bytes,
        );
        self.gauge_n(
            "blobs_eligible",
            "Blobs the plan deletes (`blobs.eligible`).",
            r.blobs.eligible,
        );
        self.gauge_n(
            "blobs_eligible_bytes",
            "Bytes of the blobs the plan deletes (`blobs.eligible_bytes`).",
            r.blobs.eligible_bytes,
        );
        self.gauge_n(
            "blobs_held_by_grace",
            "Unreferenced blobs kept by the grace window (`blobs.held_by_grace`).",
            r.blobs.held_by_grace,
        );
        self.gauge_n(
            "blobs_held_by_grace_bytes",
            "Bytes of the blobs kept by the grace window (`blobs.held_by_grace_bytes`).",
            r.blobs.held_by_grace_bytes,
        );
        self.gauge_n(
            "layer_links",
            "_layers links (`layer_links.total`).",
            r.layer_links.total,
        );
        self.gauge_n(
            "layer_links_eligible",
            "_layers links the plan removes (`layer_links.eligible`).",
            r.layer_links.eligible,
        );
        self.gauge_n(
            "uploads",
            "Uploads in progress or abandoned (`uploads.count`).",
            r.uploads.count,
        );
        self.gauge_n(
            "uploads_bytes",
            "Bytes of the uploads (`uploads.bytes`).",
            r.uploads.bytes,
        );
        self.gauge_n(
            "uploads_eligible",
            "Abandoned uploads the plan removes (`uploads.eligible`).",
            r.uploads.eligible,
        );
        self.gauge_n(
            "uploads_eligible_bytes",
            "Bytes of the uploads the plan removes (`uploads.eligible_bytes`).",
            r.uploads.eligible_bytes,
        );
        self.gauge_n(
            "multipart_uploads",
            "Incomplete S3 multipart uploads (`multipart_uploads.count`).",
            r.multipart_uploads.count,
        );
        self.gauge_n(
            "multipart_uploads_eligible",
            "Incomplete S3 multipart uploads the plan aborts (`multipart_uploads.eligible`).",
            r.multipart_uploads.eligible,
        );
        self.gauge_n(
            "multipart_uploads_eligible_bytes",
            "Bytes of the multipart uploads the plan aborts (`multipart_uploads.eligible_bytes`).",
            r.multipart_uploads.eligible_bytes,
        );
        self.gauge_n(
            "repositories_emptied",
            "Repositories the plan leaves empty and removes (`repositories_emptied`).",
            r.repositories_emptied,
        );
        self.gauge_n(
            "vanished",
            "Objects listed that were gone when read (`vanished`).",
            r.vanished,
        );
        self.problems(r.problems.iter());
        let d = r.deleted.clone().unwrap_or_default();
        self.counter_n(
            "deleted_manifests_total",
            "Manifest revisions deleted (`deleted.manifests`).",
            d.manifests,
        );
        self.counter_n(
            "deleted_tag_index_entries_total",
            "Tag index entries deleted (`deleted.tag_index_entries`).",
            d.tag_index_entries,
        );
        self.counter_n(
            "deleted_layer_links_total",
            "_layers links deleted (`deleted.layer_links`).",
            d.layer_links,
        );
        self.counter_n(
            "deleted_blobs_total",
            "Blobs deleted (`deleted.blobs`).",
            d.blobs,
        );
        self.counter_n(
            "deleted_blobs_bytes_total",
            "Bytes of the blobs deleted (`deleted.bytes`).",
            d.bytes,
        );
        self.counter_n(
            "deleted_uploads_total",
            "Uploads deleted (`deleted.uploads`).",
            d.uploads,
        );
        self.counter_n(
            "deleted_uploads_bytes_total",
            "Bytes of the uploads deleted (`deleted.upload_bytes`).",
            d.upload_bytes,
        );
        self.counter_n(
            "aborted_multipart_uploads_total",
            "Multipart uploads aborted (`deleted.multipart_uploads`).",
            d.multipart_uploads,
        );
        self.counter_n(
            "deleted_repositories_total",
            "Empty repositories removed (`deleted.repositories`).",
            d.repositories,
        );
        self.counter_n(
            "delete_failures_total",
            "Deletes that failed (`deleted.failures`).",
            d.failures.len() as u64,
        );
        self.counter_n(
            "deletes_not_attempted_total",
            "Deletes not attempted because the sweep stopped early (`deleted.not_attempted`).",
            d.not_attempted,
        );
        if let Some(o) = &r.online {
            self.counter_n(
                "online_settle_passes_total",
                "Heal passes an online run made (`online.settle_passes`).",
                o.settle_passes,
            );
            self.counter_n(
                "online_restored_objects_total",
                "Objects heal passes put back from the trash (`online.restored.objects`).",
                o.restored.objects,
            );
            self.counter_n(
                "online_restored_bytes_total",
                "Bytes heal passes put back (`online.restored.bytes`).",
                o.restored.bytes,
            );
            for (why, n) in &o.restored.by_reason {
                self.counter_with(
                    "online_restored_by_reason_total",
                    "Objects put back, by the kind of new link that needed them \
                     (`online.restored.by_reason`).",
                    &[("reason", why)],
                    *n as f64,
                );
            }
            self.gauge_n(
                "online_narrowed_repositories",
                "Repositories an online run left out because they changed during it \
                 (`online.narrowed_repositories`).",
                o.narrowed_repositories.len() as u64,
            );
        }
        if let Some(cache) = &r.cache {
            self.counter_n("cache_evicted_keys_total",
                "Keys evicted from the registry's redis blob-descriptor cache (`cache.evicted_keys`).",
                cache.evicted_keys,
            );
            self.counter_n("cache_evicted_set_members_total",
                "Set members evicted from the registry's redis blob-descriptor cache (`cache.evicted_set_members`).",
                cache.evicted_set_members,
            );
            self.gauge_n(
                "cache_keys_left",
                "Cache keys a sweep left that must be flushed by hand (`cache.keys_left`).",
                cache.keys_left.len() as u64,
            );
        }
        self.requests(r.requests.as_ref());
    }

    /// What the trash holds (`trash` in the reports' JSON, `regsweep trash list`), and what this
    /// run moved into it.
    pub fn trash(&mut self, held: Option<&Held>, moved: Option<&RunRecord>) {
        let h = held.cloned().unwrap_or(Held {
            runs: 0,
            objects: 0,
            bytes: 0,
            expired_runs: 0,
            next_expiry: None,
            empty_after: None,
            empty_after_unix: None,
            unexpiring_runs: 0,
        });
        self.gauge_n("trash_runs", "Runs in the trash (`trash.runs`).", h.runs);
        self.gauge_n(
            "trash_objects",
            "Objects the trash holds (`trash.objects`).",
            h.objects,
        );
        self.gauge_n(
            "trash_bytes",
            "Bytes the trash holds, outside the registry's keys (`trash.bytes`).",
            h.bytes,
        );
        self.gauge_n(
            "trash_expired_runs",
            "Runs past their window, which the next deleting run purges (`trash.expired_runs`).",
            h.expired_runs,
        );
        if let Some(t) = h.empty_after_unix {
            self.gauge(
                "trash_empty_after_timestamp_seconds",
                "When the last run's window ends (`trash.empty_after_unix`).",
                t as f64,
            );
        }
        if let Some(run) = moved {
            self.gauge_n(
                "trash_moved_objects",
                "Objects this run moved into the trash instead of deleting them \
                 (`deleted.trash.moved`).",
                run.moved,
            );
            self.gauge_n(
                "trash_moved_bytes",
                "Bytes of what this run moved into the trash (`deleted.trash.bytes`).",
                run.bytes,
            );
        }
    }

    /// The figures of a `du` report.
    pub fn du(&mut self, r: &DuReport) {
        self.gauge("blobs", "Blobs (`blobs`).", r.blobs as f64);
        self.gauge(
            "blobs_bytes",
            "Bytes of all blobs (`total_bytes`).",
            r.total_bytes as f64,
        );
        let rc = &r.reclaimable;
        for (kind, bytes) in [
            ("unreferenced", rc.unreferenced_bytes),
            ("untagged", rc.untagged_bytes),
            ("uploads", rc.uploads_bytes),
            ("multipart", rc.multipart_bytes),
        ] {
            self.gauge_with(
                "reclaimable_bytes",
                "Bytes gc would free, by what holds them (`reclaimable.<kind>_bytes`).",
                &[("kind", kind)],
                bytes as f64,
            );
        }
        self.gauge(
            "repositories",
            "Repositories (`repositories`, counted).",
            r.repositories.len() as f64,
        );
        for repo in &r.repositories {
            self.gauge_with(
                "repository_bytes",
                "Bytes a repository's tags reach (`repositories[].bytes`).",
                &[("repository", &repo.name)],
                repo.bytes as f64,
            );
        }
        for repo in &r.repositories {
            self.gauge_with(
                "repository_exclusive_bytes",
                "Bytes only this repository's tags reach (`repositories[].exclusive_bytes`).",
                &[("repository", &repo.name)],
                repo.exclusive_bytes as f64,
            );
        }
        self.gauge(
            "problems_found",
            "Problems met while measuring (`problems`); `regsweep audit` tells them by kind.",
            r.problems as f64,
        );
        if let Some(b) = &r.bucket {
            let reg = &b.registry;
            let mut categories = vec![
                ("live", reg.live_bytes),
                ("unreferenced", reg.unreferenced_bytes),
                ("untagged", reg.untagged_bytes),
                ("uploads", reg.uploads_bytes),
                ("links", reg.links_bytes),
                ("trash", b.trash.bytes),
                ("outside_layout", b.outside_layout.bytes),
            ];
            if let Some(v) = &b.noncurrent_versions {
                categories.push(("noncurrent_versions", v.bytes));
            }
            if let Some(m) = &b.multipart_uploads {
                categories.push(("multipart_uploads", m.bytes));
            }
            for (category, bytes) in categories {
                self.gauge_with(
                    "bucket_bytes",
                    "Every byte under the store's root, by category (`du --bucket`: `bucket`).",
                    &[("category", category)],
                    bytes as f64,
                );
            }
            if let Some(m) = &b.delete_markers {
                self.gauge(
                    "bucket_delete_markers",
                    "Delete markers under the store's root (`bucket.delete_markers.count`).",
                    m.count as f64,
                );
            }
            self.gauge(
                "bucket_total_bytes",
                "Bytes stored under the store's root, every version and part (`bucket.total_bytes`).",
                b.total_bytes as f64,
            );
            for (class, bytes) in &b.by_storage_class {
                self.gauge_with(
                    "bucket_storage_class_bytes",
                    "Bytes of every listed version by storage class (`bucket.by_storage_class`).",
                    &[("class", class)],
                    *bytes as f64,
                );
            }
        }
    }

    /// The figures of an `audit` report.
    pub fn audit(&mut self, r: &AuditReport) {
        let s = &r.summary;
        self.gauge_n(
            "repositories",
            "Repositories (`summary.repositories`).",
            s.repositories,
        );
        self.gauge_n("tags", "Tags (`summary.tags`).", s.tags);
        self.gauge_n(
            "manifests",
            "Manifest revisions (`summary.manifests`).",
            s.manifests,
        );
        self.gauge_n("blobs", "Blobs (`summary.blobs`).", s.blobs);
        self.gauge_n(
            "blobs_bytes",
            "Bytes of all blobs (`summary.blob_bytes`).",
            s.blob_bytes,
        );
        self.gauge_n(
            "orphan_blobs",
            "Blobs no manifest revision reaches (`summary.orphan_blobs`).",
            s.orphan_blobs,
        );
        self.gauge_n(
            "orphan_blobs_bytes",
            "Bytes of the orphan blobs (`summary.orphan_bytes`).",
            s.orphan_bytes,
        );
        self.gauge_n(
            "verified_blobs",
            "Blobs whose data was hashed (`summary.verified_blobs`).",
            s.verified_blobs,
        );
        self.gauge_n(
            "orphan_referrer_tags",
            "Referrer tags whose subject is gone (`orphan_referrer_tags`, counted).",
            r.orphan_referrer_tags.len() as u64,
        );
        self.problem_counts(&s.problems);
    }

    /// The figures of a `prune-tags` report (or of `apply` of a prune-tags plan).
    pub fn prune(&mut self, r: &PruneReport) {
        self.gauge_n(
            "dry_run",
            "1 when nothing was to be deleted (`dry_run`).",
            r.dry_run as u64,
        );
        self.gauge_n(
            "repositories",
            "Repositories (`repositories_total`).",
            r.repositories_total as u64,
        );
        self.gauge_n(
            "repositories_matched",
            "Repositories the rules matched (`repositories_matched`).",
            r.repositories_matched as u64,
        );
        self.gauge_n(
            "tags",
            "Tags of the matched repositories (`tags`).",
            r.tags as u64,
        );
        self.gauge_n("tags_kept", "Tags the rules keep (`kept`).", r.kept as u64);
        self.gauge_n(
            "tags_eligible",
            "Tags the plan removes (`removed`).",
            r.removed as u64,
        );
        self.problems(r.problems.iter());
        let (tags, failures) = r
            .deleted
            .as_ref()
            .map_or((0, 0), |d| (d.tags, d.failures.len() as u64));
        self.counter(
            "deleted_tags_total",
            "Tags removed (`deleted.tags`).",
            tags as f64,
        );
        self.counter(
            "delete_failures_total",
            "Deletes that failed (`deleted.failures`).",
            failures as f64,
        );
    }
}

/// Backslash, double quote and line feed escaped, as label values need.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// An integer without a fraction; anything else as Rust prints it.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// `k="v",…`, the values escaped.
fn label_text(labels: &[(String, String)]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    pairs.join(",")
}

/// Why a metrics file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the metrics file {path}: {message}")]
pub struct MetricsFileError {
    pub path: String,
    pub message: String,
}

/// A metrics file on its way (see [`Staged`]; the temporary name is one the textfile collector
/// ignores: it does not end in `.prom`): renamed into place by [`MetricsOutput::finish`], removed if
/// the run ends before.
#[derive(Debug)]
pub struct MetricsOutput(Staged);

impl MetricsOutput {
    /// Creates the temporary file now, so that an unwritable destination fails before any work.
    pub fn create(path: &Path) -> Result<MetricsOutput, MetricsFileError> {
        Staged::create(
            path,
            "a file (node_exporter's textfile collector reads *.prom)",
        )
        .map(MetricsOutput)
        .map_err(|message| MetricsFileError {
            path: path.display().to_string(),
            message: message.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// What the file there says now (the previous run's figures), if anything.
    pub fn previous(&self) -> Option<String> {
        std::fs::read_to_string(self.path()).ok()
    }

    /// Writes the figures and renames the file into place.
    pub fn finish(self, metrics: &Metrics) -> Result<(), MetricsFileError> {
        let path = self.path().display().to_string();
        self.0
            .finish(|out| out.write_all(metrics.render().as_bytes()))
            .map_err(|e| MetricsFileError {
                path,
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_carry_the_run_labels_escaped_and_families_are_declared_once() {
        let mut m = Metrics::new("prune-tags", "/srv/\"reg\"\\x");
        m.gauge("tags", "Tags.", 3.0);
        m.gauge_with("problems", "By kind.", &[("kind", "bad_link")], 0.0);
        m.gauge_with("problems", "By kind.", &[("kind", "unreadable")], 2.0);
        m.counter("deleted_tags_total", "Removed.\nline", 1.5);
        let text = m.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# HELP regsweep_tags Tags.");
        assert_eq!(lines[1], "# TYPE regsweep_tags gauge");
        assert_eq!(
            lines[2],
            r#"regsweep_tags{command="prune_tags",storage="/srv/\"reg\"\\x"} 3"#
        );
        assert_eq!(text.matches("# TYPE regsweep_problems gauge").count(), 1);
        assert!(text.contains(r#"kind="unreadable"} 2"#), "{text}");
        assert!(text.contains("# HELP regsweep_deleted_tags_total Removed.\\nline"));
        assert!(text.contains("# TYPE regsweep_deleted_tags_total counter"));
        assert!(text.contains("} 1.5\n"));
    }

    #[test]
    fn the_last_success_is_found_only_for_the_same_command_and_storage() {
        let mut m = Metrics::new("gc", "s3://b/p");
        m.run(100.0, 160.5, 0, Some(160.5));
        let text = m.render();
        assert!(
            text.contains(
                "regsweep_run_duration_seconds{command=\"gc\",storage=\"s3://b/p\"} 60.5"
            )
        );
        assert_eq!(m.last_success_in(&text), Some(160.5));
        assert_eq!(Metrics::new("du", "s3://b/p").last_success_in(&text), None);
        assert_eq!(Metrics::new("gc", "s3://b/q").last_success_in(&text), None);
    }

    #[test]
    fn the_file_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("regsweep.prom");
        let out = MetricsOutput::create(&path).unwrap();
        assert!(!path.exists(), "nothing at the destination before finish");
        drop(out);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the temporary file is removed"
        );
        let out = MetricsOutput::create(&path).unwrap();
        let mut m = Metrics::new("du", "/srv");
        m.gauge("blobs", "Blobs.", 7.0);
        out.finish(&m).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), m.render());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = MetricsOutput::create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
    }
}
