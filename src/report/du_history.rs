//! `du --history FILE`: each run appends its figures as one JSON line (JSON Lines: `jq`, DuckDB's
//! `read_json`, pandas' `read_json(lines=True)` read it as it is), and the report shows, from the
//! recorded runs, how each repository grew and when the store fills at the recent rate.
//!
//! A line that does not parse, a last line cut short, or a line recorded for another store stops
//! the run with the file and line named: a history is never restarted behind the operator's back.

use crate::model::text::{count, human_bytes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The rate the fill date uses is measured over the recorded runs of this many days before the
/// newest one (and always over at least the run before it).
pub const RECENT_DAYS: u64 = 30;
const DAY: f64 = 86_400.0;

/// One run, as a line of the history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// When the run read the store (RFC 3339, UTC, milliseconds).
    pub time: String,
    pub storage: String,
    pub blobs: u64,
    pub total_bytes: u64,
    /// What `gc -m --grace 0s` would free then (unreferenced and untagged bytes).
    pub reclaimable_bytes: u64,
    /// What the store may hold (`--capacity`, or its filesystem's size), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
    /// Room left then: the capacity less the store's bytes, or the filesystem's free space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    pub repositories: BTreeMap<String, RepoFigures>,
}

/// One repository's figures in a recorded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFigures {
    pub bytes: u64,
    pub exclusive_bytes: u64,
    pub tags: u64,
    pub manifests: u64,
}

/// Where the store's bytes may go, and how much room is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub capacity_bytes: u64,
    pub available_bytes: u64,
}

/// Why a history file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "history {path} is damaged at line {line}: {reason} (move it away to start a new history, or mend the line)"
    )]
    Damaged {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "history {path} line {line} records {recorded}, not {storage}: give this store its own history file"
    )]
    OtherStore {
        path: PathBuf,
        line: usize,
        recorded: String,
        storage: String,
    },
}

/// Reads the runs recorded in `path` for `storage`; none when the file does not exist yet.
pub fn read(path: &Path, storage: &str) -> Result<Vec<Recorded>, HistoryError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HistoryError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let damaged = |line: usize, reason: String| HistoryError::Damaged {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let text = String::from_utf8(text).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        damaged(line, "not UTF-8 text".into())
    })?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut runs = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
        let line = i + 1;
        let Some(body) = raw.strip_suffix('\n') else {
            return Err(damaged(
                line,
                "the last line is cut short (no newline ends it): a run was stopped while writing it".into(),
            ));
        };
        if body.trim().is_empty() {
            continue;
        }
        let run: Recorded = serde_json::from_str(body)
            .map_err(|e| damaged(line, format!("not a recorded run: {e}")))?;
        if humantime::parse_rfc3339(&run.time).is_err() {
            return Err(damaged(
                line,
                format!("time {:?} is not RFC 3339", run.time),
            ));
        }
        if run.storage != storage {
            return Err(HistoryError::OtherStore {
                path: path.to_path_buf(),
                line,
                recorded: run.storage,
                storage: storage.to_string(),
            });
        }
        runs.push(run);
    }
    Ok(runs)
}

/// Appends `run` to `path` (created if need be) as one line, synced.
pub fn append(path: &Path, run: &Recorded) -> Result<(), HistoryError> {
    let io = |source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_vec(run).expect("a recorded run serializes");
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    f.write_all(&line).map_err(io)?;
    f.sync_data().map_err(io)
}

/// What the recorded runs show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Growth {
    pub file: String,
    pub runs: usize,
    /// The first recorded run.
    pub since: String,
    /// The runs the recent rate is measured over: from `recent_since` to the newest.
    pub recent_since: String,
    pub recent_runs: usize,
    pub total: Change,
    /// Per repository of the newest run, sorted by bytes gained over the recorded runs, most first.
    pub repositories: Vec<RepoGrowth>,
    /// When the store fills at the recent rate; absent where no capacity is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<Fill>,
}

/// A figure's change over the recorded runs and its recent rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub first_bytes: u64,
    pub last_bytes: u64,
    /// `last_bytes - first_bytes`.
    pub change_bytes: i64,
    /// Over the recent runs, per day; absent with a single run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_bytes_per_day: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoGrowth {
    pub name: String,
    /// Bytes its tags reach, first (0 for a repository the first run did not have) and now.
    #[serde(flatten)]
    pub bytes: Change,
    /// The bytes it reached in each recorded run, oldest first (0 where it was absent).
    pub series: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fill {
    pub capacity_bytes: u64,
    pub available_bytes: u64,
    /// The date (RFC 3339) the room left is used up at the store's recent rate; absent when the
    /// store is not growing or the history has one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<f64>,
}

/// Growth over `runs` (oldest first, the current run last).
pub fn growth(file: &Path, runs: &[Recorded]) -> Option<Growth> {
    let last = runs.last()?;
    let times: Vec<SystemTime> = runs
        .iter()
        .map(|r| humantime::parse_rfc3339(&r.time).expect("times were checked on reading"))
        .collect();
    let newest = *times.last()?;
    let window = Duration::from_secs(RECENT_DAYS * 86_400);
    let recent = (0..runs.len())
        .find(|i| newest.duration_since(times[*i]).unwrap_or_default() <= window)
        .unwrap_or(runs.len() - 1)
        .min(runs.len().saturating_sub(2));
    let span_days = newest
        .duration_since(times[recent])
        .unwrap_or_default()
        .as_secs_f64()
        / DAY;
    let change = |series: &[u64]| {
        let (first, last) = (series[0], series[series.len() - 1]);
        let rate = (span_days > 0.0).then(|| (last as f64 - series[recent] as f64) / span_days);
        Change {
            first_bytes: first,
            last_bytes: last,
            change_bytes: last as i64 - first as i64,
            recent_bytes_per_day: rate,
        }
    };
    let totals: Vec<u64> = runs.iter().map(|r| r.total_bytes).collect();
    let total = change(&totals);
    let mut repositories: Vec<RepoGrowth> = last
        .repositories
        .keys()
        .map(|name| {
            let series: Vec<u64> = runs
                .iter()
                .map(|r| r.repositories.get(name).map_or(0, |f| f.bytes))
                .collect();
            RepoGrowth {
                name: name.clone(),
                bytes: change(&series),
                series,
            }
        })
        .collect();
    repositories
        .sort_by(|a, b| (b.bytes.change_bytes, &a.name).cmp(&(a.bytes.change_bytes, &b.name)));
    let fill = match (last.capacity_bytes, last.available_bytes) {
        (Some(capacity_bytes), Some(available_bytes)) => {
            let days = total
                .recent_bytes_per_day
                .filter(|r| *r > 0.0)
                .map(|rate| available_bytes as f64 / rate);
            let date = days.map(|d| {
                let at = newest + Duration::from_secs_f64((d * DAY).min(1e12));
                humantime::format_rfc3339_seconds(at).to_string()
            });
            Some(Fill {
                capacity_bytes,
                available_bytes,
                date,
                days,
            })
        }
        _ => None,
    };
    Some(Growth {
        file: file.display().to_string(),
        runs: runs.len(),
        since: runs[0].time.clone(),
        recent_since: runs[recent].time.clone(),
        recent_runs: runs.len() - recent,
        total,
        repositories,
        fill,
    })
}

fn signed(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", human_bytes(n.unsigned_abs()))
}

/// A rate per day as `+1.2 GiB/day`.
pub fn per_day(rate: f64) -> String {
    format!("{}/day", signed(rate.round() as i64))
}

impl Growth {
    /// The terminal's lines: the store's growth, the `top` repositories that grew most, the fill date.
    pub fn write_human(&self, out: &mut dyn Write, top: usize) -> std::io::Result<()> {
        let rate = |c: &Change| c.recent_bytes_per_day.map_or("-".to_string(), per_day);
        if self.runs == 1 {
            return writeln!(
                out,
                "history: this run is the first recorded in {}; growth and the fill date show from the next one",
                self.file
            );
        }
        writeln!(
            out,
            "history: {} recorded in {} since {}; the recent rate is over the {} since {}",
            count(self.runs as u64, "run", "runs"),
            self.file,
            self.since,
            count(self.recent_runs as u64, "run", "runs"),
            self.recent_since
        )?;
        writeln!(
            out,
            "  store: {} → {} ({}), {}",
            human_bytes(self.total.first_bytes),
            human_bytes(self.total.last_bytes),
            signed(self.total.change_bytes),
            rate(&self.total)
        )?;
        let grew: Vec<&RepoGrowth> = self
            .repositories
            .iter()
            .filter(|r| r.bytes.change_bytes != 0)
            .take(top)
            .collect();
        for r in &grew {
            writeln!(
                out,
                "  {}: {} → {} ({}), {}",
                r.name,
                human_bytes(r.bytes.first_bytes),
                human_bytes(r.bytes.last_bytes),
                signed(r.bytes.change_bytes),
                rate(&r.bytes)
            )?;
        }
        if grew.is_empty() {
            writeln!(out, "  no repository changed size over the recorded runs")?;
        }
        match &self.fill {
            Some(f) => match (&f.date, f.days) {
                (Some(date), Some(days)) => writeln!(
                    out,
                    "  full on {date} (in {days:.1} days) at {}: {} left of {}",
                    rate(&self.total),
                    human_bytes(f.available_bytes),
                    human_bytes(f.capacity_bytes)
                )?,
                _ => writeln!(
                    out,
                    "  no fill date: the store is not growing over the recent runs ({} left of {})",
                    human_bytes(f.available_bytes),
                    human_bytes(f.capacity_bytes)
                )?,
            },
            None => writeln!(
                out,
                "  no fill date: give --capacity SIZE (the store's own size is known only on a filesystem)"
            )?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(time: &str, total: u64, repos: &[(&str, u64)], room: Option<(u64, u64)>) -> Recorded {
        Recorded {
            time: time.into(),
            storage: "/srv/registry".into(),
            blobs: 1,
            total_bytes: total,
            reclaimable_bytes: 0,
            capacity_bytes: room.map(|r| r.0),
            available_bytes: room.map(|r| r.1),
            repositories: repos
                .iter()
                .map(|(n, b)| {
                    let f = RepoFigures {
                        bytes: *b,
                        exclusive_bytes: *b,
                        tags: 1,
                        manifests: 1,
                    };
                    (n.to_string(), f)
                })
                .collect(),
        }
    }

    #[test]
    fn the_fill_date_is_the_room_left_at_the_rate_of_the_recent_runs() {
        let runs = [
            // Outside the 30 days before the newest run: not in the recent rate.
            run("2026-01-01T00:00:00.000Z", 0, &[("a", 0)], None),
            run("2026-03-01T00:00:00.000Z", 1000, &[("a", 1000)], None),
            run(
                "2026-03-11T00:00:00.000Z",
                3000,
                &[("a", 1000), ("b", 2000)],
                Some((10_000, 7000)),
            ),
        ];
        let g = growth(Path::new("h.jsonl"), &runs).unwrap();
        assert_eq!(g.recent_runs, 2);
        assert_eq!(g.total.recent_bytes_per_day, Some(200.0));
        assert_eq!(g.total.change_bytes, 3000);
        let fill = g.fill.unwrap();
        assert_eq!(fill.days, Some(35.0));
        assert_eq!(fill.date.as_deref(), Some("2026-04-15T00:00:00Z"));
        assert_eq!(g.repositories[0].name, "b");
        assert_eq!(g.repositories[0].series, vec![0, 0, 2000]);
        assert_eq!(g.repositories[1].bytes.change_bytes, 1000);
        assert_eq!(g.repositories[1].bytes.recent_bytes_per_day, Some(0.0));
    }

    #[test]
    fn a_shrinking_store_has_no_fill_date_and_one_run_has_no_rate() {
        let shrinking = [
            run(
                "2026-03-01T00:00:00.000Z",
                5000,
                &[("a", 5000)],
                Some((9000, 4000)),
            ),
            run(
                "2026-03-02T00:00:00.000Z",
                4000,
                &[("a", 4000)],
                Some((9000, 5000)),
            ),
        ];
        let g = growth(Path::new("h"), &shrinking).unwrap();
        assert_eq!(g.total.recent_bytes_per_day, Some(-1000.0));
        assert_eq!(g.fill.as_ref().unwrap().date, None);
        let one = growth(Path::new("h"), &shrinking[..1]).unwrap();
        assert_eq!(one.total.recent_bytes_per_day, None);
        assert!(growth(Path::new("h"), &[]).is_none());
    }

    #[test]
    fn a_damaged_or_foreign_history_is_named() {
        let dir = std::env::temp_dir().join(format!("regsweep-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        let good = run("2026-03-01T00:00:00.000Z", 1, &[], None);
        append(&path, &good).unwrap();
        assert_eq!(read(&path, "/srv/registry").unwrap(), vec![good.clone()]);
        let err = read(&path, "/elsewhere").unwrap_err().to_string();
        assert!(
            err.contains("line 1 records /srv/registry, not /elsewhere"),
            "{err}"
        );
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"time\":\"2026-03-02");
        std::fs::write(&path, &text).unwrap();
        let err = read(&path, "/srv/registry").unwrap_err().to_string();
        assert!(
            err.contains("damaged at line 2") && err.contains("cut short"),
            "{err}"
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let err = read(&path, "/srv/registry").unwrap_err().to_string();
        assert!(
            err.contains("damaged at line 2: not a recorded run"),
            "{err}"
        );
        assert!(read(&dir.join("absent"), "/x").unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
