//! `gc -m --policy FILE`: which untagged manifests a retention policy lets go. Without a policy,
//! `-m` collects every untagged manifest past the grace window; with one, only those a rule
//! expires. What no rule selects is kept, as in `prune-tags`, so a policy with no rule on untagged
//! manifests keeps them all. The grace window holds on top of the policy.
//!
//! The policy judges images, not their parts: an untagged manifest that another untagged one holds
//! (a platform manifest of an index, a signature or SBOM whose subject is one) is not judged on its
//! own but follows what holds it, kept with it ([`crate::pipeline::collect::mark::mark_keeping`] reaches
//! it) or collected with it. A count rule so counts an untagged multi-arch image once.
//!
//! An untagged manifest's push time is its revision link's modification time (one stat or HEAD a
//! candidate, for the candidates only).

use crate::model::digest::Digest;
use crate::model::layout;
use crate::model::time::rfc3339;
use crate::pipeline::collect::catalog::Catalog;
use crate::pipeline::collect::inventory::{Inventory, Repository};
use crate::pipeline::collect::mark::followed_children;
use crate::pipeline::retention::judge::{self, Judgement};
use crate::pipeline::retention::pins::Pins;
use crate::pipeline::retention::policy::{Format, Policy};
use crate::pipeline::retention::pulls::Pulls;
use crate::storage::Storage;
use rayon::prelude::*;
use serde::Serialize;

/// A policy for untagged manifests, with what it may need.
#[derive(Debug)]
pub struct UntaggedRetention {
    pub policy: Policy,
    pub pins: Pins,
    pub pulls: Option<Pulls>,
}

/// What the policy made of one untagged manifest.
#[derive(Debug, Clone, Serialize)]
pub struct UntaggedDecision {
    pub repository: String,
    pub digest: Digest,
    /// When its revision link was written (RFC 3339); absent where it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    pub keep: bool,
    /// The deciding rule; absent for a pin, where no rule selects it, or where its time is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub reason: String,
}

/// What `gc -m --policy` reports of the policy.
#[derive(Debug, Clone, Serialize)]
pub struct UntaggedPolicyReport {
    pub path: String,
    pub format: Format,
    /// Untagged manifests past the grace window that the policy judged.
    pub judged: u64,
    /// Of those, kept by a rule, a pin, or because no rule selects them.
    pub kept: u64,
    /// Of those, let go by a rule.
    pub expired: u64,
    /// Untagged manifests that follow one that holds them (index children, referrers) instead of
    /// being judged.
    pub followers: u64,
    /// The span the pull records cover (RFC 3339), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulls_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulls_to: Option<String>,
    /// One decision per judged manifest, repository by repository (kept by `gc --explain`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<UntaggedDecision>,
}

/// Judges `untagged` (per repository, in inventory order: the revisions no tag, referrer or grace
/// window keeps). Returns, per repository, the revisions the policy keeps, and the report.
pub fn judge(
    storage: &dyn Storage,
    inv: &Inventory,
    catalog: &Catalog,
    untagged: &[Vec<Digest>],
    retention: &UntaggedRetention,
    now: i64,
) -> (Vec<Vec<Digest>>, UntaggedPolicyReport) {
    let per_repo: Vec<(Vec<Digest>, Vec<UntaggedDecision>, u64)> = (inv.repositories.par_iter())
        .zip(untagged.par_iter())
        .map(|(repo, all)| {
            let revs = heads(repo, inv, catalog, all);
            let followers = (all.len() - revs.len()) as u64;
            if revs.is_empty() {
                return (Vec::new(), Vec::new(), followers);
            }
            let times: Vec<Result<i64, String>> = revs
                .par_iter()
                .map(|d| pushed(storage, &repo.name, d))
                .collect();
            let known: Vec<(Digest, i64)> = (revs.iter().zip(&times))
                .filter_map(|(d, t)| t.as_ref().ok().map(|&t| (*d, t)))
                .collect();
            let mut judged = judge::judge_untagged(
                &retention.policy,
                &repo.name,
                &repo.tags,
                &known,
                &retention.pins,
                retention.pulls.as_ref(),
                now,
            )
            .into_iter();
            let mut kept = Vec::new();
            let mut decisions = Vec::new();
            for (d, t) in revs.iter().zip(times) {
                let (pushed, j) = match t {
                    Ok(t) => (Some(rfc3339(t)), judged.next().expect("one judgement each")),
                    Err(why) => (
                        None,
                        Judgement {
                            keep: true,
                            rule: None,
                            reason: why,
                        },
                    ),
                };
                if j.keep {
                    kept.push(*d);
                }
                decisions.push(UntaggedDecision {
                    repository: repo.name.clone(),
                    digest: *d,
                    pushed,
                    keep: j.keep,
                    rule: j.rule,
                    reason: j.reason,
                });
            }
            (kept, decisions, followers)
        })
        .collect();
    let span = retention.pulls.as_ref().and_then(Pulls::span);
    let mut report = UntaggedPolicyReport {
        path: retention.policy.path.clone(),
        format: retention.policy.format,
        judged: 0,
        kept: 0,
        expired: 0,
        followers: 0,
        pulls_from: span.map(|s| rfc3339(s.0)),
        pulls_to: span.map(|s| rfc3339(s.1)),
        decisions: Vec::new(),
    };
    let mut kept = Vec::with_capacity(per_repo.len());
    for (k, decisions, followers) in per_repo {
        report.followers += followers;
        report.judged += decisions.len() as u64;
        report.kept += k.len() as u64;
        report.decisions.extend(decisions);
        kept.push(k);
    }
    report.expired = report.judged - report.kept;
    (kept, report)
}

/// The untagged revisions of `repo` that no other untagged one holds: what the policy judges.
fn heads(
    repo: &Repository,
    inv: &Inventory,
    catalog: &Catalog,
    untagged: &[Digest],
) -> Vec<Digest> {
    let refs = |d: &Digest| inv.blobs.id(d).and_then(|id| catalog.refs(id));
    let mut held: std::collections::HashSet<Digest> = std::collections::HashSet::new();
    for u in untagged {
        if let Some(r) = refs(u) {
            held.extend(followed_children(r, repo, catalog, &inv.blobs));
            if crate::pipeline::collect::mark::subject_in(r, repo)
                .is_some_and(|s| repo.revisions.contains(&inv.blobs, &s))
            {
                held.insert(*u);
            }
        }
    }
    untagged
        .iter()
        .filter(|u| !held.contains(u))
        .copied()
        .collect()
}

/// When `d`'s revision link in `repo` was written, or why that is not known (then it is kept).
fn pushed(storage: &dyn Storage, repo: &str, d: &Digest) -> Result<i64, String> {
    let key = layout::revision_link(repo, d);
    match storage.stat(&key) {
        Ok(Some((_, Some(t)))) => Ok(crate::model::time::unix_seconds(t)),
        Ok(Some((_, None))) => Err(format!(
            "kept: the store does not tell when {key} was written"
        )),
        Ok(None) => Err(format!("kept: {key} is gone since the listing")),
        Err(e) => Err(format!("kept: {key} could not be read: {e}")),
    }
}
