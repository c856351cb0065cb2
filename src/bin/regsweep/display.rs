//! Progress on stderr, read from the run's [`Progress`] by a thread of its own: on a terminal a live
//! bar per phase (indicatif); otherwise a line when a phase starts and a heartbeat line with the
//! counts every `--progress-interval`; on SIGUSR1 the counts at once, in every mode. SIGINT and
//! SIGTERM ask the run to stop after the batch in flight; a second one ends it at once.

use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use regsweep::model::progress::{Count, Phase, Progress, Snapshot, signal_name};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How progress shows.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// A live display (stderr is a terminal).
    Live,
    /// Plain lines: one a phase, and a heartbeat every `interval` (stderr is a file or a pipe).
    Lines { interval: Duration },
    /// Nothing but what SIGUSR1 asks for (`--quiet`).
    Quiet,
}

/// Installs the signal handlers: SIGUSR1 sets the returned flag; SIGINT and SIGTERM set the run's
/// stop flag the first time and end the process at once (status 128 + the signal) the second.
pub fn install_signals(progress: &Progress) -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGUSR1, Arc::clone(&usr1))?;
    let armed = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // In this order: the exit only fires once a first signal has armed it.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&armed))?;
        signal_hook::flag::register_usize(sig, progress.stop_flag(), sig as usize)?;
        signal_hook::flag::register(sig, Arc::clone(&armed))?;
    }
    Ok(usr1)
}

/// The display thread; [`Display::finish`] ends it before the report is printed.
pub struct Display {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    pub fn start(progress: Arc<Progress>, mode: Mode, usr1: Arc<AtomicBool>) -> Display {
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let done = Arc::clone(&done);
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || show(&progress, mode, &usr1, &done))
                .ok()
        };
        Display { done, thread }
    }

    /// Shows the last counts and ends the display.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop();
    }
}

fn show(progress: &Progress, mode: Mode, usr1: &AtomicBool, done: &AtomicBool) {
    let tick = Duration::from_millis(100);
    let mut shown = 0;
    // The live bar and the index of the phase it shows.
    let mut bar: Option<(ProgressBar, usize)> = None;
    let mut next_beat = match mode {
        Mode::Lines { interval } => Some((Instant::now() + interval, interval)),
        _ => None,
    };
    let mut told_stop = false;
    loop {
        let last = done.load(Ordering::SeqCst);
        // Warnings first: one handed in before a phase began is said before it.
        for line in regsweep::model::warning::drain() {
            say(&bar, &format!("regsweep: {line}"));
        }
        let snap = progress.snapshot();
        for (i, phase) in snap.phases.iter().enumerate().skip(shown) {
            match mode {
                Mode::Live => {
                    if let Some((b, p)) = bar.take() {
                        update(&b, &snap.phases[p], &snap);
                        b.finish();
                    }
                    bar = Some((new_bar(phase), i));
                }
                Mode::Lines { .. } => eprintln!("{} {}", stamp(phase.started), phase.name),
                Mode::Quiet => {}
            }
        }
        if snap.phases.len() > shown {
            // What the phase before freed goes back to the system now.
            crate::arenas::trim();
        }
        shown = snap.phases.len();
        if let Some((b, p)) = &bar {
            update(b, &snap.phases[*p], &snap);
        }
        if let Some(signal) = progress.stop_requested().filter(|_| !told_stop) {
            told_stop = true;
            say(
                &bar,
                &format!(
                    "{} {}: stopping after the work in flight (a second signal ends at once)",
                    stamp(snap.elapsed),
                    signal_name(signal)
                ),
            );
        }
        if let Some((at, interval)) = &mut next_beat
            && Instant::now() >= *at
            && !last
        {
            eprintln!("{}", status_line(&snap));
            *at = Instant::now() + *interval;
        }
        if usr1.swap(false, Ordering::SeqCst) {
            say(&bar, &status_line(&snap));
        }
        if last {
            if let Some((b, p)) = bar.take() {
                let snap = progress.snapshot();
                update(&b, &snap.phases[p], &snap);
                b.finish();
            }
            return;
        }
        std::thread::park_timeout(tick);
    }
}

/// A line on stderr that does not tear a live bar.
fn say(bar: &Option<(ProgressBar, usize)>, line: &str) {
    match bar {
        Some((b, _)) => b.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

fn new_bar(phase: &Phase) -> ProgressBar {
    let unit = phase.count.unit();
    let template = if phase.total.is_some() {
        format!(
            "{{spinner}} [{{elapsed:>3}}] {{msg}} [{{bar:25}}] {{human_pos}}/{{human_len}} {unit} ({{rate}}, {{eta}} left)"
        )
    } else {
        format!("{{spinner}} [{{elapsed:>3}}] {{msg}}: {{human_pos}} {unit} ({{rate}})")
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", HumanCount(s.per_sec() as u64));
            },
        )
        .progress_chars("=> ");
    let b = ProgressBar::with_draw_target(phase.total, ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(phase.name.clone());
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

/// Shows phase `p` as `snap` has it (its total may have grown).
fn update(b: &ProgressBar, p: &Phase, snap: &Snapshot) {
    if let Some(total) = p.total {
        b.set_length(total);
    }
    b.set_position(snap.get(p.count).saturating_sub(p.base));
    let freed = snap.get(Count::BytesFreed);
    if p.count == Count::Deleted && freed > 0 {
        b.set_message(format!("{} ({} freed)", p.name, HumanBytes(freed)));
    }
}

/// `[  31.2s]`: the time since the run started.
fn stamp(t: Duration) -> String {
    format!("[{:>7.1}s]", t.as_secs_f64())
}

/// The counts at one instant, as one line: the current phase with its rate and, where its total is
/// known, how much is left; then every count so far.
pub fn status_line(snap: &Snapshot) -> String {
    let mut line = stamp(snap.elapsed);
    if let Some(p) = snap.phase() {
        let done = snap.phase_done();
        let secs = snap.elapsed.saturating_sub(p.started).as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        line.push(' ');
        line.push_str(&p.name);
        let rate = HumanCount(rate as u64);
        match p.total {
            Some(total) if total > 0 => {
                line.push_str(&format!(
                    ": {} of {} {} ({}%, {rate}/s",
                    HumanCount(done),
                    HumanCount(total),
                    p.count.unit(),
                    done * 100 / total
                ));
                if rate.0 > 0 && done < total {
                    let left = Duration::from_secs_f64((total - done) as f64 / rate.0 as f64);
                    line.push_str(&format!(
                        ", about {} left",
                        humantime::format_duration(Duration::from_secs(left.as_secs().max(1)))
                    ));
                }
                line.push(')');
            }
            // A phase that counts nothing of its own (marking): its name says it.
            _ if done == 0 => {}
            _ => line.push_str(&format!(
                ": {} {} ({rate}/s)",
                HumanCount(done),
                p.count.unit()
            )),
        }
    } else {
        line.push_str(" starting");
    }
    let counts: Vec<String> = snap
        .nonzero()
        .map(|(c, n)| {
            if c.is_bytes() {
                format!("{} {}", HumanBytes(n), c.verb())
            } else {
                format!("{} {} {}", HumanCount(n), c.unit(), c.verb())
            }
        })
        .collect();
    if !counts.is_empty() {
        line.push_str("; so far ");
        line.push_str(&counts.join(", "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_gives_the_phase_its_share_and_every_count_so_far() {
        let p = Progress::new();
        p.phase("listing blobs and repositories", Count::Listed, None);
        p.add(Count::Listed, 1234);
        p.phase("reading manifests", Count::ManifestsRead, Some(200));
        p.add(Count::ManifestsRead, 50);
        std::thread::sleep(Duration::from_millis(20));
        let line = status_line(&p.snapshot());
        assert!(line.starts_with('['), "{line}");
        assert!(
            line.contains("reading manifests: 50 of 200 manifests (25%, "),
            "{line}"
        );
        assert!(line.contains("left)"), "{line}");
        assert!(
            line.ends_with("; so far 1,234 objects listed, 50 manifests read"),
            "{line}"
        );
        let q = Progress::new();
        assert!(status_line(&q.snapshot()).ends_with("] starting"));
    }
}
