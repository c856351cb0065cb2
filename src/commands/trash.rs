//! The trash's part in the deleting commands, and the `trash` commands (`list`, `restore`,
//! `purge`). What the trash is and how a restore goes is [`crate::pipeline::execute::trash`]; what a trashing
//! run sweeps with is [`crate::storage::trashing::Trashing`].

use crate::commands::gate::Gate;
use crate::commands::outcome::{Error, Outcome};
use crate::pipeline::execute::trash::{self, Restored, RunSummary, TrashError};
pub use crate::pipeline::execute::trash::{Which, select};
use crate::pipeline::execute::trash_purge::{self, Purged};
use crate::report::trash::{HealReport, PurgeReport, RestoreReport, TrashList};
use crate::storage::{Storage, StorageError};
use std::time::SystemTime;

pub fn list(storage: &dyn Storage, now: SystemTime) -> Result<TrashList, StorageError> {
    let runs = trash::list(storage, now)?;
    Ok(TrashList {
        storage: storage.describe(),
        objects: runs.iter().map(|r| r.objects).sum(),
        bytes: runs.iter().map(|r| r.bytes).sum(),
        runs,
    })
}

/// Purges `runs` (see [`crate::pipeline::execute::trash_purge::purge_trash_runs`]).
pub fn purge(storage: &dyn Storage, runs: &[RunSummary]) -> Purged {
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    trash_purge::purge_trash_runs(storage, &ids)
}

/// Restores run `id`.
pub fn restore(storage: &dyn Storage, id: &str) -> Result<Restored, TrashError> {
    trash_purge::restore_trash_run(storage, id)
}

/// `trash list`.
pub fn run_list(storage: &dyn Storage) -> Result<(TrashList, Outcome), Error> {
    Ok((
        list(storage, SystemTime::now()).map_err(Error::other)?,
        Outcome::Done,
    ))
}

/// `trash restore RUN`, holding the store's lock; `Partial` when something stayed in the trash.
pub fn run_restore(
    storage: &dyn Storage,
    id: &str,
    break_lock: bool,
) -> Result<(RestoreReport, Outcome), Error> {
    let _gate = Gate::lock_only(storage, break_lock)?;
    let restored = restore(storage, id).map_err(Error::other)?;
    let outcome =
        Outcome::partial_if(!restored.conflicts.is_empty() || !restored.failures.is_empty());
    let report = RestoreReport {
        storage: storage.describe(),
        restored,
    };
    Ok((report, outcome))
}

/// `trash purge`: the runs `which` names, purged when `delete` (holding the store's lock), else
/// listed; `Partial` when a purge failed.
pub fn run_purge(
    storage: &dyn Storage,
    which: &Which,
    delete: bool,
    break_lock: bool,
) -> Result<(PurgeReport, Outcome), Error> {
    let _gate = if delete {
        Gate::lock_only(storage, break_lock)?
    } else {
        Gate::open_dry()
    };
    let runs = select(storage, which, SystemTime::now()).map_err(Error::other)?;
    let purged = delete.then(|| purge(storage, &runs));
    let outcome = Outcome::partial_if(purged.as_ref().is_some_and(|p| !p.failures.is_empty()));
    let report = PurgeReport {
        storage: storage.describe(),
        dry_run: purged.is_none(),
        runs,
        purged,
    };
    Ok((report, outcome))
}

/// `trash heal`: a heal pass over every online run in the trash, holding the store's lock;
/// `Partial` when something needed could not be put back.
pub fn run_heal(storage: &dyn Storage, break_lock: bool) -> Result<(HealReport, Outcome), Error> {
    let _gate = Gate::lock_only(storage, break_lock)?;
    let (healed, unhealed) =
        crate::pipeline::execute::heal::heal_all(storage).map_err(Error::other)?;
    let outcome = Outcome::partial_if(
        !healed.conflicts.is_empty() || !healed.failures.is_empty() || !unhealed.is_empty(),
    );
    let report = HealReport {
        storage: storage.describe(),
        runs: healed.passes,
        healed,
        unhealed,
    };
    Ok((report, outcome))
}
