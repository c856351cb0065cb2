//! The store's lock: one deleting run at a time.
//!
//! Two runs that delete from the same store at once would each sweep the whole plan, each report the
//! full deletion, and the loser would find its objects gone and blame a push. Every deleting run
//! (`gc --delete`, `apply`, `prune-tags --delete`) therefore takes the store's lock before it
//! analyses, and holds it until it is done; dry runs take none.
//!
//! How a backend locks is its own business ([`crate::storage::Lock::try_lock`]): a filesystem takes
//! an advisory `flock` on the store's own folder (no new file; the kernel drops it with the process,
//! so it is never stale); S3, GCS and Azure create an object beside `docker/` with a conditional
//! write (if absent) and renew it while the run lasts. Both hold a [`Holder`] record, so that a refusal names who holds the lock.

pub use crate::storage::lock_record::{Holder, RENEW_EVERY, hostname};
use crate::storage::{HeldLock, LockToken, Storage, StorageError};
use std::time::{Duration, SystemTime};

/// A lock not renewed for this long belongs to a run that is gone (S3 renews every
/// [`RENEW_EVERY`]); `--break-lock` may then remove it.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "refusing to delete: another deleting run holds the lock on {store} ({held}); wait for it to finish. \
         Two deleting runs at once would both sweep the same plan"
    )]
    Held { store: String, held: String },
    #[error(
        "refusing to delete: the lock on {store} looks abandoned ({held}, {why}); run again with --break-lock \
         to remove it, after making sure that run is gone"
    )]
    Stale {
        store: String,
        held: String,
        why: String,
    },
    #[error("refusing to break the lock on {store}: it is not stale ({held}); {why}")]
    NotStale {
        store: String,
        held: String,
        why: String,
    },
    #[error("cannot lock {store}: {source}")]
    Storage {
        store: String,
        #[source]
        source: StorageError,
    },
}

/// A lock held; dropping it releases it.
pub struct Guard<'a> {
    storage: &'a dyn Storage,
    token: Option<LockToken>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take()
            && let Err(e) = self.storage.lock().unlock(token)
        {
            crate::model::warning::emit(format!("warning: could not release the lock: {e}"));
        }
    }
}

/// Why a held lock may be broken, or `None` when it may not.
fn stale(held: &HeldLock, holder: Option<&Holder>, now: SystemTime) -> Option<String> {
    if !held.expires {
        return None;
    }
    if let Some(h) = holder
        && h.host == hostname()
        && !pid_alive(h.pid)
    {
        return Some(format!("pid {} is not running on this host", h.pid));
    }
    let age = held
        .renewed
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default();
    (age > STALE_AFTER).then(|| {
        format!(
            "not renewed for {}, longer than {}",
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            humantime::format_duration(STALE_AFTER)
        )
    })
}

fn pid_alive(pid: u32) -> bool {
    match rustix::process::Pid::from_raw(pid as i32) {
        Some(p) => !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

/// Takes `storage`'s lock for a deleting run. With `break_stale`, a lock whose run is gone is removed
/// first; a live one never is.
pub fn acquire(storage: &dyn Storage, break_stale: bool) -> Result<Guard<'_>, LockError> {
    let now = SystemTime::now();
    let me = Holder::this_process(now);
    let record = serde_json::to_vec(&me).expect("a holder serializes");
    let store = storage.describe();
    let storage_error = |source| LockError::Storage {
        store: store.clone(),
        source,
    };
    let mut broke = false;
    loop {
        let held = match storage.lock().try_lock(&record).map_err(storage_error)? {
            Ok(token) => {
                return Ok(Guard {
                    storage,
                    token: Some(token),
                });
            }
            Err(held) => held,
        };
        let holder: Option<Holder> = held
            .record
            .as_deref()
            .and_then(|r| serde_json::from_slice(r).ok());
        let shown = match (&holder, &held.record) {
            (Some(h), _) => format!("{}; lock: {}", h.describe(), held.location),
            (None, Some(r)) => format!(
                "lock {} holds {:?}",
                held.location,
                String::from_utf8_lossy(&r[..r.len().min(200)])
            ),
            (None, None) => format!("lock {}", held.location),
        };
        match stale(&held, holder.as_ref(), now) {
            Some(why) if break_stale && !broke => {
                crate::model::warning::emit(format!(
                    "breaking the stale lock on {store} ({shown}, {why})"
                ));
                storage.lock().break_lock(&held).map_err(storage_error)?;
                broke = true;
            }
            Some(why) if !break_stale => {
                return Err(LockError::Stale {
                    store,
                    held: shown,
                    why,
                });
            }
            None if break_stale => {
                let why = if held.expires {
                    format!(
                        "it was renewed within the last {}; if you are sure its run is gone, delete {} by hand",
                        humantime::format_duration(STALE_AFTER),
                        held.location
                    )
                } else {
                    "the kernel releases this lock when its process ends, so its holder is alive"
                        .into()
                };
                return Err(LockError::NotStale {
                    store,
                    held: shown,
                    why,
                });
            }
            _ => return Err(LockError::Held { store, held: shown }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(expires: bool, age_secs: u64) -> HeldLock {
        HeldLock {
            location: "x".into(),
            record: None,
            renewed: Some(SystemTime::now() - Duration::from_secs(age_secs)),
            expires,
            etag: None,
        }
    }

    #[test]
    fn only_an_expiring_lock_left_unrenewed_or_held_by_a_dead_local_pid_is_stale() {
        let now = SystemTime::now();
        assert!(stale(&held(true, 60), None, now).is_none());
        assert!(stale(&held(true, 3600), None, now).is_some());
        assert!(stale(&held(false, 3600), None, now).is_none());
        let mut dead = Holder::this_process(now);
        dead.pid = i32::MAX as u32;
        let why = stale(&held(true, 0), Some(&dead), now).unwrap();
        assert!(why.contains("not running"), "{why}");
        let mut elsewhere = dead.clone();
        elsewhere.host = format!("{}-other", hostname());
        assert!(stale(&held(true, 0), Some(&elsewhere), now).is_none());
        assert!(stale(&held(true, 0), Some(&Holder::this_process(now)), now).is_none());
    }
}
