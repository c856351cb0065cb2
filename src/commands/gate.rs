//! The gate every deleting run passes, in one place: whether it may start, and what it holds while
//! it runs.
//!
//! In order: a store a metadata database owns is refused (no option passes it); then the registry's
//! read-only mode (a config that does not set it is refused unless `--force`; a bare path or URL
//! cannot tell, which is warned of); then the store's lock, held until the [`Gate`] is dropped;
//! then the trash runs past their window are purged; and, before a sweep, the registry's
//! blob-descriptor cache must be reachable to be evicted (or `--force`, which leaves the flushing to
//! the operator). A dry run passes no gate and holds nothing. Refusals are returned as
//! [`Refusal`]s; warnings go to [`crate::model::warning`].

use crate::commands::outcome::{Error, Refusal};
use crate::commands::target::Target;
use crate::model::text::human_bytes;
use crate::model::warning;
use crate::pipeline::execute::eviction::{CacheSpec, EvictionReport, Evictor, RedisSpec};
use crate::pipeline::execute::sweep::{AfterDelete, NoEviction};
use crate::pipeline::execute::trash::{self, Held, TrashOptions};
use crate::pipeline::execute::trash_purge::{Purged, purge_trash_runs};
use crate::pipeline::guard::database_owner::{self, DatabaseOwned};
use crate::pipeline::guard::lock::{self, Guard, LockError};
use crate::pipeline::plan::Plan;
use crate::storage::Storage;
use std::time::{Duration, SystemTime};

/// What the operator allowed a deleting run (`--force`, `--break-lock`, `--trash`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Safety {
    pub force: bool,
    pub break_lock: bool,
    pub trash: Option<Duration>,
    /// `--online`: the registry stays writable (no read-only check); what is swept goes into the
    /// trash and is healed ([`crate::commands::online`]).
    pub online: bool,
}

impl Safety {
    /// A deleting run's trash, when `--trash` was given.
    pub fn trash_for(&self, command: &'static str) -> Option<TrashOptions> {
        self.trash.map(|window| TrashOptions { window, command })
    }
}

/// What the operator said of the registry's blob-descriptor cache (`--redis`,
/// `--skip-cache-eviction`).
#[derive(Debug, Clone, Default)]
pub struct CacheChoice {
    pub redis: Option<String>,
    pub skip_eviction: bool,
}

/// A deleting run's gate, passed: the lock it holds (released when dropped). A dry run's holds
/// nothing.
pub struct Gate<'a> {
    _lock: Option<Guard<'a>>,
}

impl<'a> Gate<'a> {
    /// Nothing checked, nothing held: a dry run.
    pub fn open_dry() -> Gate<'a> {
        Gate { _lock: None }
    }

    /// The whole gate: the database owner and read-only checks, the lock, the expired trash
    /// purged.
    pub fn pass(
        storage: &'a dyn Storage,
        storage_arg: &str,
        target: &Target,
        safety: &Safety,
    ) -> Result<Gate<'a>, Error> {
        checks(storage, storage_arg, target, safety)?;
        let lock = lock_store(storage, safety.break_lock)?;
        purge_expired_trash(storage);
        Ok(Gate { _lock: Some(lock) })
    }

    /// `pass` when `delete`, else a dry run's gate.
    pub fn pass_if(
        delete: bool,
        storage: &'a dyn Storage,
        storage_arg: &str,
        target: &Target,
        safety: &Safety,
    ) -> Result<Gate<'a>, Error> {
        if delete {
            Gate::pass(storage, storage_arg, target, safety)
        } else {
            Ok(Gate::open_dry())
        }
    }

    /// The checks without the lock: for the shards of a sweep, which run at once and so cannot each
    /// hold the store's lock (the run over the whole plan that ends the sweep takes it).
    pub fn pass_unlocked(
        storage: &'a dyn Storage,
        storage_arg: &str,
        target: &Target,
        safety: &Safety,
    ) -> Result<Gate<'a>, Error> {
        checks(storage, storage_arg, target, safety)?;
        Ok(Gate::open_dry())
    }

    /// Only the store's lock: for the trash commands that move or delete.
    pub fn lock_only(storage: &'a dyn Storage, break_lock: bool) -> Result<Gate<'a>, Error> {
        Ok(Gate {
            _lock: Some(lock_store(storage, break_lock)?),
        })
    }
}

/// The checks before any deletion, lock aside: a store a metadata database owns is refused, then
/// the read-only check.
fn checks(
    storage: &dyn Storage,
    storage_arg: &str,
    target: &Target,
    safety: &Safety,
) -> Result<(), Refusal> {
    match database_owner::check(storage) {
        Ok(None) => {}
        Ok(Some(owned)) => return Err(Refusal::DatabaseOwned(owned.refusal())),
        Err(e) => return Err(Refusal::OwnerUnknown(e.to_string())),
    }
    if safety.online {
        return Ok(());
    }
    read_only(storage_arg, target, safety.force)
}

/// Refuses when STORAGE is a registry config that is not in read-only mode (unless `force`); warns
/// when it cannot tell.
fn read_only(storage: &str, target: &Target, force: bool) -> Result<(), Refusal> {
    match (target.readonly, force) {
        (Some(true), _) => Ok(()),
        (Some(false), false) => Err(Refusal::NotReadOnly {
            storage: storage.to_owned(),
        }),
        (Some(false), true) => {
            warning::emit(format!(
                "warning: {storage} is not in read-only mode; deleting anyway (--force)"
            ));
            Ok(())
        }
        (None, _) => {
            warning::emit(format!(
                "warning: {storage} is not a registry config.yml, so regsweep cannot tell \
                 whether the registry is in read-only mode; make sure nothing pushes while it deletes \
                 (name the config.yml to have this checked)"
            ));
            Ok(())
        }
    }
}

/// The store's lock; another run's is a refusal, a store that cannot be asked a failure.
fn lock_store(storage: &dyn Storage, break_lock: bool) -> Result<Guard<'_>, Error> {
    match lock::acquire(storage, break_lock) {
        Ok(guard) => Ok(guard),
        Err(e @ LockError::Storage { .. }) => Err(Error::other(e)),
        Err(e) => Err(Refusal::Locked(e).into()),
    }
}

/// Every online run still in the trash healed (a pass each), then the runs past their window
/// purged (none whose heal failed), and said.
fn purge_expired_trash(storage: &dyn Storage) {
    let unhealed = match crate::pipeline::execute::heal::heal_all(storage) {
        Ok((healed, failed)) => {
            if healed.objects > 0 {
                warning::emit(format!(
                    "healed the trash's online runs: put back {} ({}) that links written since \
                     they ran need",
                    crate::model::text::count(healed.objects, "object", "objects"),
                    human_bytes(healed.bytes)
                ));
            }
            failed
        }
        Err(e) => {
            warning::emit(format!(
                "warning: cannot heal the trash's online runs ({e}); no trash run is purged"
            ));
            return;
        }
    };
    match purge_expired(storage, SystemTime::now(), &unhealed) {
        Ok(None) => {}
        Ok(Some(p)) => {
            warning::emit(format!(
                "purged {} trash run(s) past their window ({} objects, {}): {}",
                p.runs.len(),
                p.objects,
                human_bytes(p.bytes),
                p.runs.join(", ")
            ));
            for f in &p.failures {
                warning::emit(format!("warning: trash purge: {}: {}", f.key, f.error));
            }
        }
        Err(e) => warning::emit(format!("warning: cannot purge the expired trash runs: {e}")),
    }
}

/// Purges the runs whose window has passed; `None` when there were none.
fn purge_expired(
    storage: &dyn Storage,
    now: SystemTime,
    unhealed: &[String],
) -> Result<Option<Purged>, trash::TrashError> {
    let expired: Vec<String> = trash::select(storage, &trash::Which::Expired, now)?
        .into_iter()
        .map(|r| r.id)
        .filter(|id| !unhealed.contains(id))
        .collect();
    if expired.is_empty() {
        return Ok(None);
    }
    Ok(Some(purge_trash_runs(storage, &expired)))
}

/// What a run knows of the registry's blob-descriptor cache, and what a deleting run does with it.
pub struct CacheRun {
    /// The cache, from --redis or the registry's config.yml; `None` when neither names one.
    pub spec: Option<CacheSpec>,
    /// STORAGE was not a config.yml and no --redis was given: whether a cache exists is unknown.
    pub unknown: bool,
    /// Why a deleting run does not evict (--skip-cache-eviction, or --force past a cache it cannot
    /// write); the sweep then records the keys left.
    not_evicting: Option<String>,
}

impl CacheRun {
    pub fn new(target: &Target, choice: &CacheChoice) -> Result<CacheRun, Error> {
        let spec = match &choice.redis {
            Some(url) => Some(CacheSpec::Redis(Box::new(
                RedisSpec::from_url(url).map_err(Error::other)?,
            ))),
            None => target.cache.clone(),
        };
        Ok(CacheRun {
            unknown: spec.is_none() && target.readonly.is_none(),
            spec,
            not_evicting: choice
                .skip_eviction
                .then(|| "eviction skipped (--skip-cache-eviction)".to_owned()),
        })
    }

    /// Before a deletion: the redis cache must be reachable and writable, unless `force`, which
    /// deletes and leaves the flushing to the operator.
    pub fn check(&mut self, delete: bool, force: bool) -> Result<(), Refusal> {
        if !delete || self.not_evicting.is_some() {
            return Ok(());
        }
        let (address, why) = match &self.spec {
            Some(CacheSpec::Redis(spec)) => match Evictor::connect(spec) {
                Ok(_) => return Ok(()),
                Err(why) => (spec.address(), why.to_string()),
            },
            Some(CacheSpec::Unusable { why }) => ("the redis cache".to_owned(), why.clone()),
            Some(CacheSpec::InMemory) | None => return Ok(()),
        };
        if force {
            warning::emit(format!(
                "warning: cannot evict the registry's blob-descriptor cache ({why}); \
                 deleting anyway (--force): flush {address} by hand before the registry takes writes"
            ));
            self.not_evicting = Some(format!("not evicted (--force): {why}"));
            return Ok(());
        }
        Err(Refusal::CacheUnreachable { why, address })
    }

    /// The evictor for a sweep: connected again (the analysis may have taken long), or recording.
    pub fn evictor(&self) -> Result<Option<Evictor>, Refusal> {
        if let Some(why) = &self.not_evicting {
            return Ok(Some(Evictor::recording(why.clone())));
        }
        match &self.spec {
            Some(CacheSpec::Redis(spec)) => {
                Evictor::connect(spec)
                    .map(Some)
                    .map_err(|why| Refusal::CacheStopped {
                        why: why.to_string(),
                    })
            }
            _ => Ok(None),
        }
    }

    /// What a dry run would evict, or what a sweep evicted.
    pub fn report(&self, plan: &Plan, swept: Option<Option<&Evictor>>) -> Option<EvictionReport> {
        let spec = self.spec.as_ref()?;
        Some(match swept {
            Some(evictor) => EvictionReport::after_delete(spec, plan, evictor),
            None => EvictionReport::dry_run(spec, plan),
        })
    }
}

/// What a sweep tells after each batch: the evictor, or no one.
pub fn after_delete(evictor: Option<&Evictor>) -> &dyn AfterDelete {
    match evictor {
        Some(e) => e,
        None => &NoEviction,
    }
}

/// Whether a metadata database owns the store, for a report's first line; a store whose owner
/// cannot be told is warned of (a deleting run has refused it already).
pub fn database_owner(storage: &dyn Storage) -> Option<DatabaseOwned> {
    database_owner::check(storage).unwrap_or_else(|e| {
        warning::emit(format!("warning: {e}"));
        None
    })
}

/// What the trash holds, for a report; a trash that cannot be listed is warned of.
pub fn trash_held(storage: &dyn Storage) -> Option<Held> {
    match trash::list(storage, SystemTime::now()) {
        Ok(runs) => Held::of(&runs),
        Err(e) => {
            warning::emit(format!("warning: the trash cannot be listed: {e}"));
            None
        }
    }
}
