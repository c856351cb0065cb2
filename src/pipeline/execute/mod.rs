//! Execute: the only code above the storage seam that deletes, removes folders, aborts uploads,
//! moves to the trash, hides or unhides versions (`tests/layers.rs` checks it by room). [`sweep`]
//! executes a `gc` plan in its safe order, [`trash`] keeps and restores what a sweep moved, [`heal`] puts back
//! what links written during an online run need, and
//! [`eviction`] tells the registry's blob-descriptor cache what went.

pub mod eviction;
pub mod heal;
pub mod sweep;
pub mod tags;
pub mod trash;
pub mod trash_purge;
