//! The store's lock as the object stores keep it: where it is, who holds it (the record a backend
//! writes into the lock and reads back), and how often it is renewed (see
//! [`crate::pipeline::guard::lock`] for the lock itself).

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// Who holds a lock: written into the lock (where the backend can), read back to name the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// When the holder started (RFC 3339), and the same as Unix seconds.
    pub started: String,
    pub started_unix: i64,
    /// The command line the holder runs.
    pub command: String,
}

impl Holder {
    /// Process `pid` of this host, started at `started`, running `command`.
    pub fn on_this_host(pid: u32, started: SystemTime, command: String) -> Holder {
        Holder {
            host: hostname(),
            pid,
            started: humantime::format_rfc3339_seconds(started).to_string(),
            started_unix: crate::model::time::unix_seconds(started),
            command,
        }
    }

    /// This process.
    pub fn this_process(now: SystemTime) -> Holder {
        Holder::on_this_host(
            std::process::id(),
            now,
            std::env::args().collect::<Vec<_>>().join(" "),
        )
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "held by pid {} on {} since {}, running `{}`",
            self.pid, self.host, self.started, self.command
        )
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The lock object's key on an object store, relative to the store's root: beside `docker/`,
/// outside the registry's keys.
pub const LOCK_KEY: &str = "regsweep.lock";

/// How often a held S3 lock is written again, to show that its run is alive.
pub const RENEW_EVERY: Duration = Duration::from_secs(60);
