//! regsweep: a garbage collector and auditor for container-registry storage.
//!
//! The library is in layers, one directory each, and every import points to its own layer or one
//! below (README's "Layout of the code"; `tests/layers.rs` checks it from the source):
//! [`model`] (digests, the store's keys, manifest formats, problems: no I/O) →
//! [`storage`] (the seam between the collector and where the store lives) →
//! [`pipeline`] (walk, read, mark, plan, re-check, sweep: the only code above the seam that
//! deletes) → [`report`] (what a run found, as JSON, as text and as Prometheus metrics) →
//! [`commands`] (`gc`, `apply`, `prune-tags`, `du`, `audit`: a command is a pipeline run that ends in
//! a report). The binary (`src/bin/regsweep/`) parses, opens the store, calls a command, renders and
//! maps the outcome to an exit code.
#![deny(unsafe_code)]

pub mod commands;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod storage;
