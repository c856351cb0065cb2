//! `audit`: what is broken in a store. Finds, never repairs, never deletes.
//!
//! On top of what the walk and the catalog report (`bad_link`, `corrupt_manifest`, `unreadable`):
//! - `_layers` and tag index links are read (the walk knows them by name only) and checked like
//!   revision links: a digest, and their folder's;
//! - `missing_blob`: a manifest that a tag reaches (through indexes too) that has no data, or that
//!   names a config or layer with no data (foreign layers, which carry `urls`, excepted); a link
//!   (`_layers` or revision) to a blob with no data;
//! - `dangling_tag`: a tag whose current link names no revision of its repository, or that has none;
//! - `stale_upload`: an `_uploads/<id>/` folder untouched for longer than the grace period;
//! - `digest_mismatch`, with `verify_digests`: blob data whose sha256 is not its name, hashed in
//!   parallel while streaming.
//!
//! Orphan blobs are counted in the summary: they are `gc`'s business, not a fault.

use crate::model::digest::Digest;
use crate::model::layout;
use crate::model::manifest::Aliased;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::progress::{Count, Progress};
use crate::model::time::unix_seconds;
use crate::pipeline::analysis::{self, Multipart, StoreRead};
use crate::pipeline::collect::AnalysisError;
use crate::pipeline::collect::catalog::{Catalog, State};
use crate::pipeline::collect::inventory::{self, Inventory};
use crate::pipeline::collect::mark;
use crate::pipeline::collect::referrers;
use crate::pipeline::execute::trash;
use crate::report::audit::{AuditReport, AuditSummary, OrphanReferrerTag};
use crate::storage::{Storage, StorageError};
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct AuditOptions {
    /// Hash every blob's data and compare it with its name.
    pub verify_digests: bool,
    /// Uploads untouched for longer than this are stale.
    pub grace: Duration,
    pub now: SystemTime,
}

/// Audits the store.
pub fn audit(
    storage: &dyn Storage,
    options: &AuditOptions,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<AuditReport, AnalysisError> {
    let start = Instant::now();
    let StoreRead {
        inventory: inv,
        catalog: cat,
        ..
    } = analysis::read(
        storage,
        inventory::Detail::Sizes,
        Multipart::NotListed,
        progress,
        cache,
    )?;
    let mut problems: Vec<Problem> = inv.problems.clone();
    problems.extend(cat.problems.iter().cloned());
    let (link_problems, no_link) = check_name_links(storage, &inv, progress);
    problems.extend(link_problems);
    progress.check()?;
    progress.phase("following tags", Count::ManifestsRead, None);
    problems.extend(missing_blobs(&inv, &cat, &no_link));
    problems.extend(dangling_tags(&inv));
    problems.extend(stale_uploads(&inv, options));
    let mut verified = 0;
    if options.verify_digests {
        progress.phase(
            &format!("hashing {} blobs", inv.blobs.len()),
            Count::Hashed,
            Some(inv.blobs.len() as u64),
        );
        let (p, n) = verify_digests(storage, &inv, progress);
        progress.check()?;
        problems.extend(p);
        verified = n;
    }
    // The trash: each run's record against what its folder holds.
    let trash_runs = trash::list(storage, options.now).unwrap_or_else(|e| {
        problems.push(Problem::at(
            ProblemKind::Unreadable,
            trash::TRASH,
            format!("the trash cannot be listed: {e}"),
        ));
        Vec::new()
    });
    problems.extend(trash::check(&trash_runs));
    problems.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    problems.dedup();

    let plain = mark::mark_every_revision(&inv, &cat);
    let mut summary = AuditSummary {
        repositories: inv.repositories.len() as u64,
        tags: inv.repositories.iter().map(|r| r.tags.len() as u64).sum(),
        manifests: inv.manifest_revisions(),
        blobs: inv.blobs.len() as u64,
        blob_bytes: inv.blobs.total_bytes(),
        verified_blobs: verified,
        ..AuditSummary::default()
    };
    let orphans = plain.unreferenced(&inv);
    summary.orphan_blobs = orphans.len();
    summary.orphan_bytes = inv.blobs.bytes_of(&orphans);
    for p in &problems {
        *summary.problems.entry(p.kind).or_default() += 1;
    }
    Ok(AuditReport {
        database_in_use: None,
        storage: storage.describe(),
        summary,
        problems,
        orphan_referrer_tags: orphan_referrer_tags(&inv),
        elapsed_ms: start.elapsed().as_millis() as u64,
        manifest_cache: None,
        trash: trash::Held::of(&trash_runs),
        s3_inventory: storage.listing_snapshot(),
    })
}

/// Reads every `_layers` link and tag index link and checks that it names its folder's digest.
/// Also returns the `_layers` folders that hold no link (the registry leaves one when a blob is
/// deleted through its API, and its pull-through cache when an entry expires), as (index into
/// `inv.repositories`, digest): they are no link, and name nothing.
fn check_name_links(
    storage: &dyn Storage,
    inv: &Inventory,
    progress: &Progress,
) -> (Vec<Problem>, HashSet<(usize, Digest)>) {
    let mut links: Vec<(usize, Option<usize>, Digest)> = Vec::new();
    for (i, r) in inv.repositories.iter().enumerate() {
        for &id in &r.layer_links {
            links.push((i, None, inv.blobs.digest(id)));
        }
        links.extend(r.dangling_layer_links.iter().map(|d| (i, None, *d)));
        for (t, tag) in r.tags.iter().enumerate() {
            links.extend(tag.index.iter().map(|d| (i, Some(t), *d)));
        }
    }
    progress.phase(
        "reading _layers and tag index links",
        Count::LinksRead,
        Some(links.len() as u64),
    );
    let checked = progress.each(&links, Count::LinksRead, |&(i, t, d)| {
        let repo = &inv.repositories[i];
        let tag = t.map(|t| repo.tags[t].name.as_str());
        let key = match tag {
            Some(tag) => layout::tag_index_entry(&repo.name, tag, &d),
            None => layout::layer_link(&repo.name, &d),
        };
        let problem = |kind, message: String| {
            let p = Problem::at(kind, &key, message).repo(&repo.name).digest(d);
            Some(match tag {
                Some(tag) => p.tag(tag),
                None => p,
            })
        };
        let found = match storage.read(&key, 256) {
            Ok(bytes) => match Digest::parse(&String::from_utf8_lossy(&bytes)) {
                Ok(named) if named == d => None,
                Ok(named) => problem(
                    ProblemKind::BadLink,
                    format!("link names {named}, not its folder's digest {d}"),
                ),
                Err(e) => problem(ProblemKind::BadLink, format!("link content is {e}")),
            },
            // Listed by its folder, and the folder holds no link: not a link at all.
            Err(e) if e.is_not_found() => return (None, t.is_none().then_some((i, d))),
            Err(StorageError::TooLarge { .. }) => problem(
                ProblemKind::BadLink,
                "link file is too large to hold a digest".into(),
            ),
            Err(e) => problem(ProblemKind::Unreadable, e.to_string()),
        };
        (found, None)
    });
    let mut problems = Vec::new();
    let mut no_link = HashSet::new();
    for (problem, absent) in checked.into_iter().flatten() {
        problems.extend(problem);
        no_link.extend(absent);
    }
    (problems, no_link)
}

/// Blobs named by what tags reach, or by links, that have no data (a `_layers` folder in `no_link`
/// holds no link, and names nothing).
fn missing_blobs(
    inv: &Inventory,
    cat: &Catalog,
    no_link: &HashSet<(usize, Digest)>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, r) in inv.repositories.iter().enumerate() {
        let mut seen: HashSet<Digest> = HashSet::new();
        for t in &r.tags {
            let Some(target) = t.current else { continue };
            let mut stack = vec![target];
            while let Some(m) = stack.pop() {
                if !seen.insert(m) {
                    continue;
                }
                let data = layout::blob_data(&m);
                match cat.state(&inv.blobs, &m) {
                    Some(State::Missing) | None => out.push(
                        Problem::at(
                            ProblemKind::MissingBlob,
                            data,
                            format!("manifest {m}, reached from tag {}, has no data", t.name),
                        )
                        .repo(&r.name)
                        .tag(&t.name)
                        .digest(m),
                    ),
                    Some(State::Corrupt | State::NotManifest) => {}
                    Some(State::Parsed(_)) => {
                        let id = inv.blobs.id(&m).expect("parsed manifests have data");
                        let refs = cat.refs(id).expect("parsed");
                        for &(b, foreign) in refs.absent {
                            if foreign || !seen.insert(b) {
                                continue;
                            }
                            out.push(
                                Problem::at(
                                    ProblemKind::MissingBlob,
                                    &data,
                                    format!(
                                        "manifest {m} (tag {}) names blob {b}, which has no data",
                                        t.name
                                    ),
                                )
                                .repo(&r.name)
                                .tag(&t.name)
                                .digest(b),
                            );
                        }
                        // A reference by an alias the repository does not link cannot be served;
                        // one it links to data that is gone is a missing blob.
                        for a in refs.aliased {
                            if matches!(a, Aliased::Subject(_)) {
                                continue;
                            }
                            let why = match r.resolve(a.alias()) {
                                None => format!(
                                    "manifest {m} (tag {}) names {}, which this repository has no \
                                     alias link for: the registry cannot serve it",
                                    t.name,
                                    a.alias()
                                ),
                                Some(d) if inv.blobs.id(&d).is_none() => format!(
                                    "manifest {m} (tag {}) names {}, whose data {d} is gone",
                                    t.name,
                                    a.alias()
                                ),
                                Some(_) => continue,
                            };
                            out.push(
                                Problem::at(ProblemKind::MissingBlob, &data, why)
                                    .repo(&r.name)
                                    .tag(&t.name),
                            );
                        }
                        let followed: Vec<Digest> =
                            mark::followed_children(refs, r, cat, &inv.blobs).collect();
                        // An entry not followed is a blob of the list: its data must be there.
                        let entries = refs.children.iter().chain(refs.undeclared);
                        for e in entries {
                            if inv.blobs.id(e).is_some() || followed.contains(e) || !seen.insert(*e)
                            {
                                continue;
                            }
                            out.push(
                                Problem::at(
                                    ProblemKind::MissingBlob,
                                    &data,
                                    format!(
                                        "manifest {m} (tag {}) lists {e}, which has no data",
                                        t.name
                                    ),
                                )
                                .repo(&r.name)
                                .tag(&t.name)
                                .digest(*e),
                            );
                        }
                        stack.extend(followed);
                    }
                }
            }
        }
        for d in &r.dangling_layer_links {
            if no_link.contains(&(i, *d)) {
                continue;
            }
            out.push(
                Problem::at(
                    ProblemKind::MissingBlob,
                    layout::layer_link(&r.name, d),
                    format!("_layers link to {d}, which has no data"),
                )
                .repo(&r.name)
                .digest(*d),
            );
        }
        for (a, d) in &r.aliases {
            if inv.blobs.id(d).is_none() {
                out.push(
                    Problem::at(
                        ProblemKind::MissingBlob,
                        layout::alias_link(&r.name, a),
                        format!("alias link {a} names {d}, which has no data"),
                    )
                    .repo(&r.name)
                    .digest(*d),
                );
            }
        }
        for d in r.revisions.unstored() {
            out.push(
                Problem::at(
                    ProblemKind::MissingBlob,
                    layout::revision_link(&r.name, d),
                    format!("revision link to manifest {d}, which has no data"),
                )
                .repo(&r.name)
                .digest(*d),
            );
        }
    }
    out
}

fn orphan_referrer_tags(inv: &Inventory) -> Vec<OrphanReferrerTag> {
    let mut out = Vec::new();
    for r in &inv.repositories {
        for t in &r.tags {
            if let Some(subject) = referrers::orphan_subject(r, &inv.blobs, t) {
                out.push(OrphanReferrerTag {
                    repo: r.name.clone(),
                    tag: t.name.to_string(),
                    subject,
                });
            }
        }
    }
    out
}

/// Tags whose current link names no revision of their repository.
fn dangling_tags(inv: &Inventory) -> Vec<Problem> {
    let mut out = Vec::new();
    for r in &inv.repositories {
        for t in &r.tags {
            let key = layout::tag_current(&r.name, &t.name);
            let message = match t.current {
                Some(d) if r.revisions.contains(&inv.blobs, &d) => continue,
                Some(d) => format!(
                    "tag {} names {d}, which is no revision of {}",
                    t.name, r.name
                ),
                // A current link that is there but bad is already a bad_link.
                None if t.moved != 0 => continue,
                None => format!("tag {} has no current link", t.name),
            };
            let p = Problem::at(ProblemKind::DanglingTag, key, message)
                .repo(&r.name)
                .tag(&t.name);
            out.push(match t.current {
                Some(d) => p.digest(d),
                None => p,
            });
        }
    }
    out
}

fn stale_uploads(inv: &Inventory, options: &AuditOptions) -> Vec<Problem> {
    let cutoff = unix_seconds(options.now) - options.grace.as_secs() as i64;
    let mut out = Vec::new();
    for r in &inv.repositories {
        for u in r.uploads.iter().filter(|u| u.modified <= cutoff) {
            let key = layout::upload_folder(&r.name, &u.id);
            let age = Duration::from_secs((unix_seconds(options.now) - u.modified).max(0) as u64);
            let message = format!(
                "upload {} holds {} bytes and was last written {} ago",
                u.id,
                u.size,
                humantime::format_duration(age)
            );
            out.push(Problem::at(ProblemKind::StaleUpload, key, message).repo(&r.name));
        }
    }
    out
}

/// Hashes every blob's data, streaming, in parallel; returns the mismatches and how many were hashed.
fn verify_digests(
    storage: &dyn Storage,
    inv: &Inventory,
    progress: &Progress,
) -> (Vec<Problem>, u64) {
    use sha2::Digest as _;
    let results = progress.each(0..inv.blobs.len() as u32, Count::Hashed, |id| {
        let d = inv.blobs.digest(id);
        let key = layout::blob_data(&d);
        let mut hasher = sha2::Sha256::new();
        let read = storage.read_chunks(&key, &mut |c| {
            progress.add(Count::BytesHashed, c.len() as u64);
            hasher.update(c)
        });
        match read {
            Ok(()) => {
                let got = Digest(hasher.finalize().into());
                (got != d).then(|| {
                    Problem::at(
                        ProblemKind::DigestMismatch,
                        key,
                        format!("data hashes to {got}, not to its name {d}"),
                    )
                    .digest(d)
                })
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => Some(Problem::at(ProblemKind::Unreadable, key, e.to_string()).digest(d)),
        }
    });
    let hashed: Vec<Option<Problem>> = results.into_iter().flatten().collect();
    let n = hashed.len() as u64;
    (hashed.into_iter().flatten().collect(), n)
}

/// What `audit` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct AuditRun {
    pub verify_digests: bool,
    pub grace: Duration,
    pub manifests: crate::commands::CacheDir,
}

/// `audit`: every check; `Partial` when a problem was found.
pub fn run(
    store: crate::commands::Store<'_>,
    run: &AuditRun,
    progress: &Progress,
) -> Result<(AuditReport, crate::commands::outcome::Outcome), crate::commands::outcome::Error> {
    use crate::pipeline::collect::manifest_cache::ManifestCache;
    let options = AuditOptions {
        verify_digests: run.verify_digests,
        grace: run.grace,
        now: SystemTime::now(),
    };
    let manifests = run.manifests.open().map(ManifestCache::for_audit);
    let mut report = audit(store.storage, &options, progress, manifests.as_ref())
        .map_err(|e| store.analysis(e))?;
    report.manifest_cache = manifests.map(ManifestCache::finish);
    report.database_in_use = crate::commands::gate::database_owner(store.storage);
    let outcome = crate::commands::outcome::Outcome::partial_if(!report.problems.is_empty());
    Ok((report, outcome))
}
