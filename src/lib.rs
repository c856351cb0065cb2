//! regsweep: a garbage collector and auditor for container-registry storage.
//!
//! The modules are in layers, each importing only from its own layer or those below it (README's
//! "Layout of the code"; `tests/layers.rs` checks it):
//! model ([`digest`], [`layout`], [`manifest`], [`problem`], [`time`], [`text`], [`staged`]) →
//! [`storage`] (the seam between the collector and where the store lives) →
//! pipeline ([`inventory`] → [`catalog`] → [`mark`] → [`plan`], strung together by [`analysis`];
//! [`recheck`] and [`sweep`], the only code above the seam that deletes; [`cache`], [`lock`],
//! [`plan_file`], [`progress`], [`manifest_cache`], [`referrers`], [`store_root`]) →
//! [`report`] → commands ([`gc`], [`apply`], [`prune`], [`du`], [`audit`], [`config`]) →
//! outputs ([`metrics`]).
#![deny(unsafe_code)]

pub mod analysis;
pub mod apply;
pub mod audit;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod digest;
pub mod du;
pub mod gc;
pub mod inventory;
pub mod layout;
pub mod lock;
pub mod manifest;
// Maps its file (memmap2 cannot do that without `unsafe`); the module says why each use holds.
#[allow(unsafe_code)]
pub mod manifest_cache;
pub mod mark;
pub mod metrics;
pub mod plan;
pub mod plan_file;
pub mod problem;
pub mod progress;
pub mod prune;
pub mod recheck;
pub mod referrers;
pub mod report;
pub mod staged;
pub mod storage;
pub mod store_root;
pub mod sweep;
pub mod text;
pub mod time;
