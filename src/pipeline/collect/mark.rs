//! Mark: every blob that a root reaches.
//!
//! Reaching a manifest marks its own data, its config and layers (foreign ones too, when present),
//! and, for a list or an index, each entry's own data. An entry is followed into what it references
//! where the registry could serve it as a manifest from the repository being marked (the registry's
//! own rule, and its 3.x collector's `manifestService.Exists`), whatever its descriptor says: the
//! repository links it (a revision link, or a `_layers` link, through which the registry also
//! resolves manifests), and either its media type is a manifest type or its data is a manifest (an
//! entry typed `application/octet-stream`, `""`, a vendor or a layer type, as tools and
//! distribution's own helpers write them). An entry that is neither stays a blob (BuildKit's cache
//! indexes list layers and a cache config). A child deleted through the API has lost its revision
//! link: the registry answers 404 for it, so only its own data is kept and its layers are freed, as
//! the reference does. Following too much keeps more, never less, so no blob that an image the
//! registry can serve needs is lost. Subjects are not followed downwards: a signature keeps nothing
//! of the image it signs. [`followed_children`] is that rule, and every command that judges
//! reachability (gc, du, audit, prune-tags, through the mark) asks it.
//!
//! Roots:
//! - by default, every manifest revision with a link, in every repository, plus every tag's target
//!   (the reference's roots, plus tag targets whose revision link is gone: keeping them costs nothing
//!   and a tag is a promise);
//! - with `delete_untagged`, per repository: the tags' targets, then every revision whose `subject` is
//!   a manifest already kept (OCI 1.1 referrers: signatures, SBOMs, attestations), transitively, and
//!   every revision whose data was written within the grace window (a push in progress writes an
//!   index's children before the tag). Revisions of the repository that stay unreached are untagged.
//!
//! Work is split over rayon by repository (whether an entry is followed depends on it); each task
//! keeps its own bitmap and the bitmaps are united once at the end.

use crate::model::digest::Digest;
use crate::model::manifest::Aliased;
use crate::pipeline::collect::blob_table::{BlobId, BlobTable};
use crate::pipeline::collect::catalog::{Catalog, Refs, State};
use crate::pipeline::collect::inventory::{Inventory, Repository, Revisions};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use std::collections::{HashMap, HashSet};

/// How to mark.
#[derive(Debug, Clone, Copy)]
pub struct MarkOptions {
    /// Only tags (and what they reach) keep manifests alive.
    pub delete_untagged: bool,
    /// Blobs modified after this Unix time are within the grace window.
    pub grace_cutoff: i64,
}

/// The result of marking.
#[derive(Debug, Default)]
pub struct Marks {
    /// Ids of the blobs that are reached.
    pub blobs: RoaringBitmap,
    /// Per repository (in inventory order), the revisions no root reaches; empty without
    /// `delete_untagged`.
    pub untagged: Vec<Vec<Digest>>,
    /// Untagged revisions kept only because they are within the grace window.
    pub manifests_held_by_grace: u64,
    /// Untagged revisions kept only because a retention policy keeps them (`gc -m --policy`), or
    /// because one it keeps reaches them.
    pub manifests_held_by_policy: u64,
}

impl Marks {
    /// The blobs with data that this mark did not reach: what nothing references (under the mark's
    /// options). `gc`'s plan sweeps them (past the grace window), `du` and `audit` weigh them.
    pub fn unreferenced(&self, inv: &Inventory) -> RoaringBitmap {
        let mut ids = RoaringBitmap::new();
        ids.insert_range(0..inv.blobs.len() as u32);
        ids -= &self.blobs;
        ids -= &inv.no_data;
        ids
    }
}

/// Marks what every revision reaches, with no grace window: what a plain `gc --grace 0s` keeps.
pub fn mark_every_revision(inv: &Inventory, catalog: &Catalog) -> Marks {
    mark(
        inv,
        catalog,
        MarkOptions {
            delete_untagged: false,
            grace_cutoff: i64::MAX,
        },
    )
}

/// Marks what the roots reach.
pub fn mark(inv: &Inventory, catalog: &Catalog, opts: MarkOptions) -> Marks {
    if opts.delete_untagged {
        mark_tagged(inv, catalog, opts, &[])
    } else {
        mark_all_revisions(inv, catalog)
    }
}

/// As [`mark`] with `delete_untagged`, and per repository (in inventory order; missing: none) the
/// untagged revisions a retention policy keeps as roots too, with everything they reach.
pub fn mark_keeping(
    inv: &Inventory,
    catalog: &Catalog,
    opts: MarkOptions,
    kept: &[Vec<Digest>],
) -> Marks {
    mark_tagged(inv, catalog, opts, kept)
}

/// The manifests a walk has kept: by blob id (a bitmap) where the store holds their data, by digest
/// for the few it does not.
#[derive(Default)]
struct Kept {
    ids: RoaringBitmap,
    missing: HashSet<Digest>,
}

impl Kept {
    /// Adds `d`; false when it was kept already.
    fn insert(&mut self, blobs: &BlobTable, d: Digest) -> bool {
        match blobs.id(&d) {
            Some(id) => self.ids.insert(id),
            None => self.missing.insert(d),
        }
    }

    fn contains(&self, blobs: &BlobTable, d: &Digest) -> bool {
        match blobs.id(d) {
            Some(id) => self.ids.contains(id),
            None => self.missing.contains(d),
        }
    }

    /// How many of `revisions` are kept: by id where the store holds them, as [`Kept::contains`]
    /// finds them, without turning each id into its digest and back.
    fn count_of(&self, revisions: &Revisions) -> usize {
        let stored = revisions.stored().iter();
        let unstored = revisions.unstored().iter();
        stored.filter(|&&id| self.ids.contains(id)).count()
            + unstored.filter(|d| self.missing.contains(*d)).count()
    }
}

/// The entries of a list or index (`refs`) that are followed as manifests in `repo`: those the
/// repository links, typed as manifests, or undeclared and whose data was not found to be no
/// manifest (a revision is always read as a manifest, so an undeclared entry that is a revision here
/// is followed whatever its media type).
pub fn followed_children<'a>(
    refs: Refs<'a>,
    repo: &'a Repository,
    catalog: &'a Catalog,
    blobs: &'a BlobTable,
) -> impl Iterator<Item = Digest> + 'a {
    let typed = refs
        .children
        .iter()
        .filter(|c| repo.holds_manifest(blobs, c));
    let undeclared = refs.undeclared.iter().filter(|c| {
        repo.holds_manifest(blobs, c) && catalog.state(blobs, c) != Some(State::NotManifest)
    });
    // An entry named by an alias the repository links is served through that link (the registry
    // resolves manifests through `_layers` links too): followed where its data is a manifest.
    let aliased = aliased_entries(refs, repo)
        .filter(move |(c, typed)| *typed || catalog.state(blobs, c) != Some(State::NotManifest));
    typed
        .chain(undeclared)
        .copied()
        .chain(aliased.map(|(c, _)| c))
}

/// The list or index entries of `refs` named by an alias that `repo` links, as the sha256 digest the
/// link holds, with whether the entry is typed as a manifest.
pub fn aliased_entries<'a>(
    refs: Refs<'a>,
    repo: &'a Repository,
) -> impl Iterator<Item = (Digest, bool)> + 'a {
    refs.aliased.iter().filter_map(|a| match a {
        Aliased::Child(alias, typed) => repo.resolve(alias).map(|d| (d, *typed)),
        _ => None,
    })
}

/// The blobs (config, layers, artifact blobs) `refs` names by an alias that `repo` links, as the
/// sha256 digest the link holds.
pub fn aliased_blobs<'a>(
    refs: Refs<'a>,
    repo: &'a Repository,
) -> impl Iterator<Item = Digest> + 'a {
    refs.aliased.iter().filter_map(|a| match a {
        Aliased::Blob(alias) | Aliased::Foreign(alias) => repo.resolve(alias),
        _ => None,
    })
}

/// The subject of `refs`, named by sha256 or by an alias `repo` links.
pub fn subject_in(refs: Refs<'_>, repo: &Repository) -> Option<Digest> {
    refs.subject.or_else(|| {
        refs.aliased.iter().find_map(|a| match a {
            Aliased::Subject(alias) => repo.resolve(alias),
            _ => None,
        })
    })
}

/// Walks from `start` in `repo`, adding every manifest reached to `kept` and every blob to `marks`.
/// With `referrers`, a manifest newly kept also keeps the revisions whose subject it is.
fn reach(
    start: Digest,
    repo: &Repository,
    catalog: &Catalog,
    blobs: &BlobTable,
    referrers: Option<&HashMap<Digest, Vec<Digest>>>,
    kept: &mut Kept,
    marks: &mut RoaringBitmap,
) {
    let mut stack = vec![start];
    while let Some(d) = stack.pop() {
        if !kept.insert(blobs, d) {
            continue;
        }
        if let Some(id) = blobs.id(&d) {
            marks.insert(id);
            if let Some(refs) = catalog.refs(id) {
                marks.extend(refs.blobs.iter().copied());
                marks.extend(aliased_blobs(refs, repo).filter_map(|b| blobs.id(&b)));
                // Every entry's own data is kept, whether or not it is followed.
                let entries = refs.children.iter().chain(refs.undeclared);
                marks.extend(entries.filter_map(|c| blobs.id(c)));
                marks.extend(aliased_entries(refs, repo).filter_map(|(c, _)| blobs.id(&c)));
                stack.extend(followed_children(refs, repo, catalog, blobs));
            }
        }
        if let Some(r) = referrers.and_then(|r| r.get(&d)) {
            stack.extend(r.iter().copied());
        }
    }
}

fn mark_all_revisions(inv: &Inventory, catalog: &Catalog) -> Marks {
    let blobs = inv
        .repositories
        .par_iter()
        .fold(RoaringBitmap::new, |mut marks, r| {
            let mut kept = Kept::default();
            let roots =
                (r.revisions.digests(&inv.blobs)).chain(r.tags.iter().filter_map(|t| t.current));
            for d in roots {
                reach(d, r, catalog, &inv.blobs, None, &mut kept, &mut marks);
            }
            marks
        })
        .reduce(RoaringBitmap::new, |a, b| a | b);
    Marks {
        blobs,
        untagged: vec![Vec::new(); inv.repositories.len()],
        manifests_held_by_grace: 0,
        manifests_held_by_policy: 0,
    }
}

/// Per repository (in inventory order), the blobs that its tags reach: their manifests, indexes'
/// children, configs and layers, and the referrers of what they keep.
pub fn tag_reach(inv: &Inventory, catalog: &Catalog) -> Vec<RoaringBitmap> {
    let opts = MarkOptions {
        delete_untagged: true,
        grace_cutoff: i64::MAX,
    };
    inv.repositories
        .par_iter()
        .map(|r| mark_repository(r, inv, catalog, opts, &[]).0)
        .collect()
}

/// Per repository (in inventory order), per tag (in the repository's tag order), the blobs that tag
/// reaches: the image it names, with referrers as [`tag_reach`] follows them. Empty for a tag whose
/// link is bad. The union over a repository's tags is its entry in [`tag_reach`].
pub fn reach_per_tag(inv: &Inventory, catalog: &Catalog) -> Vec<Vec<RoaringBitmap>> {
    inv.repositories
        .par_iter()
        .map(|repo| {
            let referrers = referrers_in(repo, inv, catalog);
            let image = |start: Digest| {
                let (mut kept, mut marks) = (Kept::default(), RoaringBitmap::new());
                let (blobs, refs) = (&inv.blobs, Some(&referrers));
                reach(start, repo, catalog, blobs, refs, &mut kept, &mut marks);
                marks
            };
            let tags = repo.tags.iter();
            tags.map(|t| t.current.map(image).unwrap_or_default())
                .collect()
        })
        .collect()
}

/// The revisions of `repo` by the subject they name.
fn referrers_in(
    repo: &Repository,
    inv: &Inventory,
    catalog: &Catalog,
) -> HashMap<Digest, Vec<Digest>> {
    let mut referrers: HashMap<Digest, Vec<Digest>> = HashMap::new();
    for &id in repo.revisions.stored() {
        if let Some(subject) = catalog.refs(id).and_then(|r| subject_in(r, repo)) {
            referrers
                .entry(subject)
                .or_default()
                .push(inv.blobs.digest(id));
        }
    }
    referrers
}

fn mark_tagged(
    inv: &Inventory,
    catalog: &Catalog,
    opts: MarkOptions,
    kept: &[Vec<Digest>],
) -> Marks {
    let per_repo: Vec<(RoaringBitmap, Vec<Digest>, u64, u64)> = inv
        .repositories
        .par_iter()
        .enumerate()
        .map(|(i, r)| {
            let kept = kept.get(i).map(Vec::as_slice).unwrap_or_default();
            mark_repository(r, inv, catalog, opts, kept)
        })
        .collect();
    let mut out = Marks::default();
    for (marks, untagged, by_grace, by_policy) in per_repo {
        out.blobs |= marks;
        out.untagged.push(untagged);
        out.manifests_held_by_grace += by_grace;
        out.manifests_held_by_policy += by_policy;
    }
    out
}

fn mark_repository(
    repo: &Repository,
    inv: &Inventory,
    catalog: &Catalog,
    opts: MarkOptions,
    policy_kept: &[Digest],
) -> (RoaringBitmap, Vec<Digest>, u64, u64) {
    let referrers = referrers_in(repo, inv, catalog);
    let (mut kept, mut marks) = (Kept::default(), RoaringBitmap::new());
    let reach_all = |roots: &mut dyn Iterator<Item = Digest>, kept: &mut Kept, marks: &mut _| {
        for root in roots {
            reach(
                root,
                repo,
                catalog,
                &inv.blobs,
                Some(&referrers),
                kept,
                marks,
            );
        }
    };
    let count_kept = |kept: &Kept| kept.count_of(&repo.revisions);
    reach_all(
        &mut repo.tags.iter().filter_map(|t| t.current),
        &mut kept,
        &mut marks,
    );
    let by_tags = count_kept(&kept);
    let recent = |&&id: &&BlobId| inv.blobs.modified(id) > opts.grace_cutoff;
    reach_all(
        &mut (repo.revisions.stored().iter())
            .filter(recent)
            .map(|&id| inv.blobs.digest(id)),
        &mut kept,
        &mut marks,
    );
    let by_grace = count_kept(&kept);
    reach_all(&mut policy_kept.iter().copied(), &mut kept, &mut marks);
    let (held, by_policy) = (by_grace - by_tags, count_kept(&kept) - by_grace);
    let untagged = (repo.revisions.digests(&inv.blobs))
        .filter(|r| !kept.contains(&inv.blobs, r))
        .collect();
    (marks, untagged, held as u64, by_policy as u64)
}
