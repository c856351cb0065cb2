//! Plan, then apply: `gc --plan FILE` in the day, `apply FILE STORAGE` in the maintenance window.
//!
//! A plan file ([`crate::pipeline::plan::file`]) starts with a header that records how the plan was made
//! (options, time) and what it was made from (a fingerprint of every tag and every manifest revision). `apply` analyses the
//! store again with the same options and deletes only what the file lists and the new analysis
//! still plans. It refuses, deleting nothing, when the tags or revisions changed since, or when a
//! listed item is no longer eligible (reachable again, or its data rewritten since the plan). Items
//! already gone are skipped, so an apply cut off and run again converges.

use crate::commands::gate::{self, CacheChoice, CacheRun, Gate, Safety};
use crate::commands::outcome::{Error, Outcome, Refusal};
use crate::commands::{CacheDir, Store};
use crate::model::digest::{AliasDigest, Digest};
use crate::model::progress::MaybeStopped;
use crate::model::progress::Progress;
use crate::model::time::rfc3339;
use crate::pipeline::analysis::{Analysis, GcOptions};
use crate::pipeline::collect::inventory;
use crate::pipeline::collect::manifest_cache::ManifestCache;
use crate::pipeline::guard::recheck::{Fingerprints, Refused, Since};
use crate::pipeline::plan::file::{GcState, PlanCommand, PlanFile, PlanFileError};
use crate::pipeline::plan::{Plan, PlanItem};
use crate::report::gc::{Applied, GcReport};
use crate::report::prune_tags::PruneReport;
use crate::report::{GcShown, PruneShown, Render, View};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The options to analyse with when applying a `gc` plan: the plan's, with the time now.
pub fn gc_options(gc: &GcState, now: std::time::SystemTime) -> GcOptions {
    GcOptions {
        delete_untagged: gc.delete_untagged,
        grace: Duration::from_secs(gc.grace_seconds),
        now,
    }
}

/// Why applying a plan was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    File(#[from] PlanFileError),
    /// The store's tags or revisions are not those the plan was made from.
    #[error(transparent)]
    Changed(Refused),
    #[error(
        "refusing to apply: {count} planned item(s) are no longer safe to delete since the plan was made at \
         {created}: {examples}; make a new plan with `regsweep gc --plan` and review it"
    )]
    NoLongerEligible {
        count: usize,
        created: String,
        examples: String,
    },
}

/// An item's identity, whatever its details.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Manifest(String, Digest),
    LayerLink(String, Digest),
    AliasLink(String, AliasDigest),
    Blob(Digest),
    Upload(String, String),
    Multipart(String, String),
    Repository(String),
}

fn key(item: &PlanItem) -> Key {
    match item {
        PlanItem::Manifest { repo, digest, .. } => Key::Manifest(repo.clone(), *digest),
        PlanItem::LayerLink { repo, digest } => Key::LayerLink(repo.clone(), *digest),
        PlanItem::AliasLink { repo, alias, .. } => Key::AliasLink(repo.clone(), alias.clone()),
        PlanItem::Blob { digest, .. } => Key::Blob(*digest),
        PlanItem::Upload { repo, id, .. } => Key::Upload(repo.clone(), id.clone()),
        PlanItem::Multipart { key, upload_id, .. } => {
            Key::Multipart(key.clone(), upload_id.clone())
        }
        PlanItem::Repository { repo } => Key::Repository(repo.clone()),
    }
}

/// Checks a plan file against a fresh analysis of the store (made with [`gc_options`]).
/// On success, returns the plan to sweep: the fresh plan's items that the file lists.
pub fn check(file: &PlanFile, analysis: &Analysis) -> Result<(Plan, Applied), ApplyError> {
    let header = &file.header;
    let h = header.gc.as_ref().expect("a gc plan has a gc header");
    let items: Vec<PlanItem> = file.items()?;
    let inv = &analysis.inventory;
    let state = Fingerprints::of(
        &inv.repositories,
        &inv.blobs,
        items.iter().filter_map(|i| match i {
            PlanItem::Manifest { repo, digest, .. } => Some((repo.as_str(), digest)),
            _ => None,
        }),
    );
    let then = Fingerprints {
        tags: h.tags,
        tags_fingerprint: h.tags_fingerprint,
        revisions: h.revisions,
        revisions_fingerprint: h.revisions_fingerprint,
    };
    if let Some(change) = state.change_since(&then) {
        let since = Since::Plan {
            created: header.created.clone(),
            command: "gc",
        };
        return Err(ApplyError::Changed(Refused::changed(change, since)));
    }

    let fresh: HashMap<Key, &PlanItem> = analysis.plan.items.iter().map(|i| (key(i), i)).collect();
    let repos: HashMap<&str, &inventory::Repository> = inv
        .repositories
        .iter()
        .map(|r| (r.name.as_str(), r))
        .collect();
    let present = |item: &PlanItem| -> bool {
        let repo = |name: &str| repos.get(name).copied();
        match item {
            PlanItem::Blob { digest, .. } => inv.blobs.id(digest).is_some(),
            PlanItem::Manifest {
                repo: r, digest, ..
            } => repo(r).is_some_and(|r| r.revisions.contains(&inv.blobs, digest)),
            PlanItem::LayerLink { repo: r, digest } => repo(r).is_some_and(|r| {
                r.dangling_layer_links.binary_search(digest).is_ok()
                    || inv
                        .blobs
                        .id(digest)
                        .is_some_and(|id| r.layer_links.binary_search(&id).is_ok())
            }),
            PlanItem::AliasLink { repo: r, alias, .. } => {
                repo(r).is_some_and(|r| r.resolve(alias).is_some())
            }
            PlanItem::Upload { repo: r, id, .. } => {
                repo(r).is_some_and(|r| r.uploads.iter().any(|u| &u.id == id))
            }
            PlanItem::Multipart { key, upload_id, .. } => analysis
                .multipart
                .iter()
                .any(|m| &m.key == key && &m.upload_id == upload_id),
            PlanItem::Repository { repo: r } => repo(r).is_some(),
        }
    };

    let mut listed = HashSet::new();
    let mut refused = Vec::new();
    let mut applied = Applied {
        planned: items.len() as u64,
        eligible: 0,
        already_gone: 0,
        new_since_plan: 0,
        no_longer_eligible: 0,
    };
    for item in &items {
        let k = key(item);
        match fresh.get(&k) {
            Some(PlanItem::Blob { digest, size }) => {
                let id = inv
                    .blobs
                    .id(digest)
                    .expect("a planned blob is in the inventory");
                let modified = inv.blobs.modified(id);
                let planned_size = match item {
                    PlanItem::Blob { size, .. } => *size,
                    _ => unreachable!("keys match kinds"),
                };
                if modified > header.created_unix || *size != planned_size {
                    refused.push(format!(
                        "{digest} was written again after the plan ({} bytes, modified {})",
                        size,
                        rfc3339(modified)
                    ));
                } else {
                    listed.insert(k);
                }
            }
            Some(_) => {
                listed.insert(k);
            }
            None if !present(item) => applied.already_gone += 1,
            None => refused.push(match item {
                PlanItem::Blob { digest, .. }
                    if inv
                        .blobs
                        .id(digest)
                        .is_some_and(|id| inv.blobs.modified(id) > header.created_unix) =>
                {
                    let id = inv.blobs.id(digest).expect("checked");
                    format!(
                        "{digest} was written again after the plan (modified {})",
                        rfc3339(inv.blobs.modified(id))
                    )
                }
                PlanItem::Repository { repo } => {
                    format!("repository {repo} would no longer be left empty")
                }
                _ => format!("{} is reachable again", describe(item)),
            }),
        }
    }
    if !refused.is_empty() {
        return Err(ApplyError::NoLongerEligible {
            count: refused.len(),
            created: header.created.clone(),
            examples: crate::model::text::first_few(&refused, 5),
        });
    }
    let mut plan = Plan {
        blobs_held_by_grace: analysis.plan.blobs_held_by_grace,
        bytes_held_by_grace: analysis.plan.bytes_held_by_grace,
        ..Plan::default()
    };
    for item in &analysis.plan.items {
        if listed.contains(&key(item)) {
            plan.items.push(item.clone());
        } else {
            applied.new_since_plan += 1;
        }
    }
    applied.eligible = plan.items.len() as u64;
    Ok((plan, applied))
}

/// An online apply's check: the fresh analysis's items that the file lists, whatever changed
/// since the plan (a writable registry always changes); what the file lists and the analysis no
/// longer plans is left out (counted in `no_longer_eligible`), never refused.
pub fn check_online(file: &PlanFile, analysis: &Analysis) -> (Plan, Applied) {
    let listed: HashSet<Key> = match file.items() {
        Ok(items) => items.iter().map(key).collect(),
        Err(_) => HashSet::new(),
    };
    let mut plan = Plan {
        blobs_held_by_grace: analysis.plan.blobs_held_by_grace,
        bytes_held_by_grace: analysis.plan.bytes_held_by_grace,
        ..Plan::default()
    };
    let mut applied = Applied {
        planned: listed.len() as u64,
        ..Applied::default()
    };
    for item in &analysis.plan.items {
        if listed.contains(&key(item)) {
            plan.items.push(item.clone());
        } else {
            applied.new_since_plan += 1;
        }
    }
    applied.eligible = plan.items.len() as u64;
    applied.no_longer_eligible = applied.planned - applied.eligible;
    (plan, applied)
}

fn describe(item: &PlanItem) -> String {
    match item {
        PlanItem::Manifest { repo, digest, .. } => format!("manifest {repo}@{digest}"),
        PlanItem::LayerLink { repo, digest } => format!("layer link {repo} → {digest}"),
        PlanItem::AliasLink {
            repo,
            alias,
            digest,
        } => format!("alias link {repo} {alias} → {digest}"),
        PlanItem::Blob { digest, .. } => format!("blob {digest}"),
        PlanItem::Upload { repo, id, .. } => format!("upload {repo}/{id}"),
        PlanItem::Multipart { key, upload_id, .. } => {
            format!("multipart upload {upload_id} of {key}")
        }
        PlanItem::Repository { repo } => format!("repository {repo}"),
    }
}

/// What `apply` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ApplyRun {
    pub plan: std::path::PathBuf,
    /// This machine's share of a sweep split over several (`--shard I/N`).
    pub shard: Option<crate::model::shard::Shard>,
    pub safety: Safety,
    pub cache: CacheChoice,
    pub manifests: CacheDir,
    /// `--online`: a gc plan applied while the registry stays writable.
    pub online: Option<crate::commands::online::OnlineOptions>,
}

/// What `apply` shows: a gc plan's report, or a prune-tags plan's.
pub enum ApplyShown {
    Gc(Box<GcShown>),
    PruneTags(Box<PruneShown>),
}

impl Render for ApplyShown {
    fn json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match self {
            ApplyShown::Gc(r) => r.json(out),
            ApplyShown::PruneTags(r) => r.json(out),
        }
    }
    fn human(&self, out: &mut dyn std::io::Write, view: &View) -> std::io::Result<()> {
        match self {
            ApplyShown::Gc(r) => r.human(out, view),
            ApplyShown::PruneTags(r) => r.human(out, view),
        }
    }
}

/// Reads the plan file, before the store is opened (a bad file fails at once, by name).
pub fn read_plan(run: &ApplyRun) -> Result<PlanFile, Error> {
    PlanFile::read(&run.plan).map_err(Error::other)
}

/// `apply`: the gate, then the plan's command: its tags removed as reviewed, or the store analysed
/// again and what the file lists and the analysis still plans swept.
pub fn run(
    store: Store<'_>,
    run: &ApplyRun,
    file: PlanFile,
    progress: &Progress,
) -> Result<(ApplyShown, Outcome), Error> {
    let storage = store.storage;
    let shown = run.plan.display();
    let mut cache = CacheRun::new(store.target, &run.cache)?;
    file.check_store(&storage.identity())
        .map_err(|e| Refusal::Plan(e.to_string()))?;
    if let Some(o) = &run.online {
        if file.header.command != PlanCommand::Gc {
            return Err(Refusal::Online(format!(
                "{shown} is a prune-tags plan; --online applies gc plans (removing tags loses no \
                 data: apply it without --online)"
            ))
            .into());
        }
        crate::commands::online::preflight(storage, store.arg, store.target, &cache, o)?;
    }
    // The shards of a sweep run at once, so they cannot each hold the store's lock: they check
    // what every deleting run checks, and the run over the whole plan that ends the sweep (it
    // skips what the shards deleted and removes emptied repositories) takes the lock.
    let _gate = if run.shard.is_some() {
        Gate::pass_unlocked(storage, store.arg, store.target, &run.safety)?
    } else {
        Gate::pass(storage, store.arg, store.target, &run.safety)?
    };
    let gc_state = match (file.header.command, &file.header.gc) {
        (PlanCommand::Gc, Some(gc)) => gc,
        (PlanCommand::Gc, None) => {
            return Err(Error::other(format!(
                "{shown}: a gc plan without its options in the header"
            )));
        }
        (PlanCommand::PruneTags, _) => {
            let lines = file.items().map_err(Error::other)?;
            let (plan, applied) = match crate::commands::prune_tags::from_reviewed(
                storage,
                &lines,
                &file.header.created,
                progress,
            ) {
                Ok(reviewed) => reviewed,
                Err(e) if e.stop().is_some() => return Err(Error::Stopped(e.to_string())),
                Err(e) => return Err(Refusal::Plan(format!("{shown}: {e}")).into()),
            };
            let mut report = PruneReport::new(&storage.describe(), &plan);
            report.applied = Some(applied);
            let trash = run.safety.trash_for("apply");
            let (shown, outcome) =
                crate::commands::prune_tags::remove(storage, plan, report, Some(trash), progress);
            return Ok((ApplyShown::PruneTags(Box::new(shown)), outcome));
        }
    };
    cache.check(true, run.safety.force)?;
    let grace = Duration::from_secs(gc_state.grace_seconds);
    let begun = match &run.online {
        Some(o) => {
            let window = run
                .safety
                .trash
                .unwrap_or(crate::commands::online::DEFAULT_WINDOW);
            Some(crate::commands::online::begin(storage, window, grace, o)?)
        }
        None => None,
    };
    let now = begun
        .as_ref()
        .map_or_else(std::time::SystemTime::now, |b| b.t0);
    let options = gc_options(gc_state, now);
    let manifests = run.manifests.open();
    let analysis =
        crate::pipeline::analysis::analyse(storage, &options, progress, manifests.as_ref());
    let mut analysis = analysis.map_err(|e| {
        if let Some(b) = &begun {
            let _ = crate::pipeline::execute::trash::drop_empty(storage, &b.run);
        }
        store.analysis(e)
    })?;
    let manifest_cache = manifests.map(ManifestCache::finish);
    let checked = match begun {
        // Online: what changed since the plan is left out, never refused.
        Some(_) => Ok(check_online(&file, &analysis)),
        None => check(&file, &analysis),
    };
    let (plan, applied) = checked.map_err(|e| Refusal::Plan(format!("{shown}: {e}")))?;
    analysis.plan = plan;
    if let Some(shard) = run.shard {
        analysis.plan.keep_shard(shard);
    }
    let mut report = GcReport::new(&storage.describe(), &options, &analysis);
    report.database_in_use = gate::database_owner(storage);
    report.applied = Some(applied);
    report.manifest_cache = manifest_cache;
    if let (Some(begun), Some(o)) = (begun, &run.online) {
        let (mut report, outcome) =
            crate::commands::online::sweep(storage, report, &analysis, begun, &cache, o, progress)?;
        report.trash = gate::trash_held(storage);
        report.requests = storage.request_counts();
        let shown = GcShown {
            report,
            plan: analysis.plan,
        };
        return Ok((ApplyShown::Gc(Box::new(shown)), outcome));
    }
    let trash = run.safety.trash_for("apply");
    let (shown, outcome) =
        crate::commands::gc::sweep(storage, report, analysis, true, trash, &cache, progress)?;
    Ok((ApplyShown::Gc(Box::new(shown)), outcome))
}
