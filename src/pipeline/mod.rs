//! The collector's steps on any [`crate::storage::Storage`], in five rooms whose imports point one
//! way (`tests/layers.rs` checks it): [`collect`] (the walk, each manifest read once, the mark) →
//! [`plan`] (what nothing reaches, and the plan files that carry it) → [`retention`] (rules that
//! let tags and untagged manifests go) and [`guard`] (whether a deleting run may go on: the lock, a
//! store a database owns, the re-check) and [`execute`] (the only code above the seam that
//! deletes, moves, hides or unhides), strung together by [`analysis`] on top. Progress counts and
//! the stop flag are [`crate::model::progress`].

pub mod analysis;
pub mod collect;
pub mod execute;
pub mod guard;
pub mod plan;
pub mod retention;
