//! The commands: each runs the pipeline on a store and ends in a report. [`gc`] (analyse, then sweep
//! after the re-check), [`apply`] (a reviewed plan file against the store as it is now),
//! [`prune_tags`] (tags by retention rules), [`du`] (where the bytes are), [`audit`] (what is broken),
//! [`trash`] (a way back from every sweep), and [`config`] (what the user named, opened as a storage).

pub mod apply;
pub mod audit;
pub mod config;
pub mod du;
pub mod export;
pub mod gc;
pub mod prune_tags;
pub mod shard;
pub mod trash;
