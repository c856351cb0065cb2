//! regsweep: a garbage collector and auditor for container-registry storage.
//!
//! The pipeline shows in the modules, data flowing one way:
//! [`layout`] (keys) → [`inventory`] (the walk) → [`catalog`] (manifests, via [`manifest`]) →
//! [`mark`] → [`plan`] → [`sweep`] → [`report`]. [`gc`] strings them together; [`storage`] is the seam
//! between the collector and where the store lives, and [`config`] resolves what the user named;
//! [`cache`] evicts what a sweep deleted from the registry's blob-descriptor cache, and
//! [`manifest_cache`] keeps what manifests reference between runs.
#![deny(unsafe_code)]

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
pub mod time;
