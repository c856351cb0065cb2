//! The collector's steps, on any [`crate::storage::Storage`]: [`inventory`] (the parallel walk) →
//! [`catalog`] (each manifest read once, or answered by [`manifest_cache`]) → [`mark`] (roaring
//! bitmaps over interned blob ids) → [`plan`], strung together by [`analysis`]. [`recheck`] asks
//! whether the store changed since it was judged, and [`sweep`] is the only code above the seam that
//! deletes, removes folders or aborts uploads. [`retention`] judges tags for `prune-tags` ([`policy`], [`policy_judge`], [`pins`], [`pulls`] for a policy file), [`untagged_policy`] untagged manifests for `gc -m --policy`; [`cache`]
//! evicts what a sweep deleted from the registry's blob-descriptor cache; [`lock`], [`database_lock`] (a store a metadata database owns), [`plan_file`],
//! [`progress`] (the counts every job keeps, and the stop flag), [`referrers`], [`store_root`].

pub mod analysis;
pub mod cache;
pub mod catalog;
pub mod database_lock;
pub mod inventory;
pub mod lock;
// Maps its file (memmap2 cannot do that without `unsafe`); the module says why each use holds.
#[allow(unsafe_code)]
pub mod manifest_cache;
pub mod mark;
pub mod pins;
pub mod plan;
pub mod plan_file;
pub mod policy;
pub mod policy_judge;
pub mod progress;
pub mod pulls;
pub mod recheck;
pub mod referrers;
pub mod retention;
pub mod shard;
pub mod store_root;
pub mod sweep;
pub mod trash;
pub mod untagged_policy;
