//! Retention: which tags and untagged manifests rules let go. [`tags`] judges tags for
//! `prune-tags`, [`untagged`] untagged manifests for `gc -m --policy`; [`policy`] reads a policy
//! file (regsweep's rules, ECR lifecycle JSON, `acr purge` lines), [`judge`] applies it, [`pins`]
//! and [`pulls`] are what it keeps for. Judges only: [`super::execute`] removes.

pub mod judge;
pub mod pins;
pub mod policy;
pub mod pulls;
pub mod tags;
pub mod untagged;
