//! A requests-per-second cap shared by the remote backends (S3, GCS, Azure): request starts are
//! spaced evenly, so that a run cannot flood a bucket or container the registry shares.

use std::time::{Duration, Instant};

/// Spaces request starts evenly to honour a requests-per-second cap.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    /// A pacer for `rps` request starts a second; `None` for 0 (no cap).
    pub fn per_second(rps: u32) -> Option<Pacer> {
        (rps > 0).then(|| Pacer {
            interval: Duration::from_secs_f64(1.0 / f64::from(rps)),
            next: Instant::now().into(),
        })
    }

    /// Waits until the next request may start.
    pub async fn wait(&self) {
        let start = {
            let mut next = self.next.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + self.interval;
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }
}
