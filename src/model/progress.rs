//! What a run has done so far, for whoever shows it (a live display, heartbeat lines, a status dump
//! on SIGUSR1), and whether the run was asked to stop.
//!
//! The jobs count into [`Progress`] with relaxed atomics and never print; the binary reads
//! [`Progress::snapshot`] from a thread of its own. A phase names what the run is doing and which
//! count measures it, with a total where one is known (manifests to read, keys to delete).
//!
//! A stop request (SIGINT, SIGTERM) is a flag the jobs look at between units of work: an analysis
//! stops with [`Stopped`] and its partial results are dropped; a sweep starts no new batch, and its
//! report says what it deleted and what it did not attempt.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The counts a run keeps, run-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Objects (files, S3 keys) listed.
    Listed,
    /// Small link files read (tags' `current/link`, revision links).
    LinksRead,
    /// Manifests read and parsed.
    ManifestsRead,
    /// Blobs whose size and age were asked of the store (the ones that may be swept).
    Measured,
    /// Keys deleted (links, blob data, upload files), uploads removed, folders removed.
    Deleted,
    /// Bytes of blob data and uploads deleted.
    BytesFreed,
    /// Blobs whose data was hashed (`audit --verify-digests`).
    Hashed,
    /// Bytes hashed.
    BytesHashed,
}

impl Count {
    const ALL: [Count; 8] = [
        Count::Listed,
        Count::LinksRead,
        Count::ManifestsRead,
        Count::Measured,
        Count::Deleted,
        Count::BytesFreed,
        Count::Hashed,
        Count::BytesHashed,
    ];

    /// The unit, as a plural noun ("manifests"); bytes are [`Count::is_bytes`].
    pub fn unit(self) -> &'static str {
        match self {
            Count::Listed => "objects",
            Count::LinksRead => "links",
            Count::ManifestsRead => "manifests",
            Count::Deleted => "deletes",
            Count::BytesFreed | Count::BytesHashed => "bytes",
            Count::Hashed | Count::Measured => "blobs",
        }
    }

    /// What the count says in a status line ("listed", "read", …).
    pub fn verb(self) -> &'static str {
        match self {
            Count::Listed => "listed",
            Count::LinksRead | Count::ManifestsRead => "read",
            Count::Deleted => "done",
            Count::Measured => "measured",
            Count::BytesFreed => "freed",
            Count::Hashed | Count::BytesHashed => "hashed",
        }
    }

    pub fn is_bytes(self) -> bool {
        matches!(self, Count::BytesFreed | Count::BytesHashed)
    }
}

/// A phase of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    pub name: String,
    /// The count that measures it.
    pub count: Count,
    /// How much of `count` the phase has to do, where known.
    pub total: Option<u64>,
    /// When it started, from the start of the run.
    pub started: Duration,
    /// The value of `count` when it started.
    pub base: u64,
}

/// What a run has done at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub elapsed: Duration,
    /// Every phase so far, the current one last.
    pub phases: Vec<Phase>,
    counts: [u64; Count::ALL.len()],
}

impl Snapshot {
    pub fn get(&self, c: Count) -> u64 {
        self.counts[c as usize]
    }

    /// The current phase, if one started.
    pub fn phase(&self) -> Option<&Phase> {
        self.phases.last()
    }

    /// How much of its count the current phase has done.
    pub fn phase_done(&self) -> u64 {
        self.phase()
            .map_or(0, |p| self.get(p.count).saturating_sub(p.base))
    }

    /// The counts that are not zero, in a fixed order.
    pub fn nonzero(&self) -> impl Iterator<Item = (Count, u64)> + '_ {
        Count::ALL
            .iter()
            .map(|&c| (c, self.get(c)))
            .filter(|&(_, n)| n > 0)
    }
}

/// A run's progress, shared between the job (which counts) and its display (which reads).
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    phases: Mutex<Vec<Phase>>,
    counts: [AtomicU64; Count::ALL.len()],
    /// The signal that asked the run to stop, 0 while none did. A signal handler stores it.
    stop: Arc<AtomicUsize>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// A run starting now that nothing will ask to stop (until [`Progress::stop_flag`] is set).
    pub fn new() -> Progress {
        Progress {
            started: Instant::now(),
            phases: Mutex::new(Vec::new()),
            counts: Default::default(),
            stop: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The flag a signal handler sets to the signal's number to ask the run to stop.
    pub fn stop_flag(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.stop)
    }

    /// Starts a phase measured by `count`, with its total where known.
    pub fn phase(&self, name: &str, count: Count, total: Option<u64>) {
        let phase = Phase {
            name: name.to_owned(),
            count,
            total,
            started: self.started.elapsed(),
            base: self.get(count),
        };
        self.phases.lock().expect("progress lock").push(phase);
    }

    /// Adds to the current phase's total (work found as it goes, like a manifest's children).
    pub fn add_total(&self, n: u64) {
        if let Some(p) = self.phases.lock().expect("progress lock").last_mut() {
            p.total = Some(p.total.unwrap_or(0) + n);
        }
    }

    pub fn add(&self, c: Count, n: u64) {
        if n > 0 {
            self.counts[c as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, c: Count) -> u64 {
        self.counts[c as usize].load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Snapshot {
        let phases = self.phases.lock().expect("progress lock").clone();
        Snapshot {
            elapsed: self.started.elapsed(),
            phases,
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
        }
    }

    /// Runs `f` on each item in parallel and counts one `count` for each, in the items' order;
    /// once a stop is asked for, the items not started yet are not run: `None`.
    pub fn each<I, R>(
        &self,
        items: I,
        count: Count,
        f: impl Fn(I::Item) -> R + Sync + Send,
    ) -> Vec<Option<R>>
    where
        I: rayon::iter::IntoParallelIterator,
        R: Send,
    {
        use rayon::iter::ParallelIterator;
        items
            .into_par_iter()
            .map(|item| {
                if self.stop_requested().is_some() {
                    return None;
                }
                let r = f(item);
                self.add(count, 1);
                Some(r)
            })
            .collect()
    }

    /// The signal that asked the run to stop, if one did.
    pub fn stop_requested(&self) -> Option<usize> {
        match self.stop.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// `Err(Stopped)` once a stop was asked for: for analyses, between phases and after a phase
    /// that may have been cut short.
    pub fn check(&self) -> Result<(), Stopped> {
        match self.stop_requested() {
            None => Ok(()),
            Some(signal) => Err(Stopped { signal }),
        }
    }
}

/// Counts into a [`Progress`] from one thread, adding to the shared count every so often rather
/// than once an item; what is left is added when it is dropped.
pub struct Tally<'a> {
    progress: &'a Progress,
    count: Count,
    pending: u64,
}

impl<'a> Tally<'a> {
    pub fn new(progress: &'a Progress, count: Count) -> Tally<'a> {
        Tally {
            progress,
            count,
            pending: 0,
        }
    }

    pub fn one(&mut self) {
        self.pending += 1;
        if self.pending == 256 {
            self.progress.add(self.count, self.pending);
            self.pending = 0;
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.progress.add(self.count, self.pending);
    }
}

/// The run was asked to stop (SIGINT, SIGTERM) before it had anything to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped by {} before anything was deleted", signal_name(*signal))]
pub struct Stopped {
    pub signal: usize,
}

/// An error that may be a stop asked for rather than a failure: "was it a stop?" is asked of every
/// error a run can end with this one way, so that a stopped run ends as cut off, never as failed or
/// refused.
pub trait MaybeStopped {
    /// The stop, when the error is one.
    fn stop(&self) -> Option<Stopped>;
}

/// `SIGTERM`, `SIGINT`, or `signal N`.
pub fn signal_name(signal: usize) -> String {
    match signal as i32 {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_counts_from_where_its_count_stood_and_its_total_grows() {
        let p = Progress::new();
        p.phase("walking", Count::Listed, None);
        p.add(Count::Listed, 10);
        p.phase("reading manifests", Count::ManifestsRead, Some(3));
        p.add(Count::ManifestsRead, 2);
        p.add_total(4);
        let s = p.snapshot();
        assert_eq!(s.phases.len(), 2);
        assert_eq!(s.phase().unwrap().total, Some(7));
        assert_eq!(s.phase_done(), 2);
        assert_eq!(s.get(Count::Listed), 10);
        let nonzero: Vec<_> = s.nonzero().collect();
        assert_eq!(
            nonzero,
            [(Count::Listed, 10), (Count::ManifestsRead, 2)],
            "zero counts are left out"
        );
        p.phase("listing again", Count::Listed, None);
        p.add(Count::Listed, 5);
        assert_eq!(p.snapshot().phase_done(), 5, "from the count at its start");
    }

    #[test]
    fn a_tally_adds_what_it_holds_when_dropped_and_a_stop_is_seen() {
        let p = Progress::new();
        {
            let mut t = Tally::new(&p, Count::Listed);
            for _ in 0..300 {
                t.one();
            }
            assert_eq!(p.get(Count::Listed), 256, "added in steps");
        }
        assert_eq!(p.get(Count::Listed), 300);
        assert!(p.check().is_ok());
        p.stop_flag()
            .store(libc::SIGTERM as usize, Ordering::SeqCst);
        let e = p.check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "stopped by SIGTERM before anything was deleted"
        );
    }
}
