//! `shard manifests` and `shard merge`: the manifest reading of a run split over N machines (a
//! Kubernetes Indexed Job, `examples/kubernetes/indexed-job.yaml`), each writing its part into a shared folder,
//! and the merge that checks every part is there, of this store, and of one N, and adds them to the
//! manifest cache the collecting run reads.

use crate::commands::outcome::{Error, Outcome};
use crate::commands::{CacheDir, Store};
use crate::model::progress::Progress;
use crate::model::shard::Shard;
use crate::pipeline::collect::AnalysisError;
use crate::pipeline::collect::manifest_cache::ManifestCache;
use crate::pipeline::collect::shard::read_share;
use crate::report::shard::{ManifestPart, Merged};
use crate::storage::Storage;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn part_dir(parts: &Path, shard: Shard) -> PathBuf {
    parts.join(format!("manifests-{}", shard.name()))
}

fn record_path(parts: &Path, shard: Shard) -> PathBuf {
    parts.join(format!("manifests-{}.json", shard.name()))
}

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error("{0}")]
    Parts(String),
}

/// Reads shard `shard`'s manifests into its part below `parts` (a new manifest cache), and records
/// the part.
pub fn manifests(
    storage: &dyn Storage,
    shard: Shard,
    parts: &Path,
    progress: &Progress,
) -> Result<ManifestPart, ShardError> {
    let dir = part_dir(parts, shard);
    let cache = ManifestCache::open(&dir);
    let share = read_share(storage, shard, progress, &cache)?;
    let report = cache.finish();
    if let Some(note) = report.notes.first() {
        return Err(ShardError::Parts(format!(
            "{}: the part could not be written: {note}",
            dir.display()
        )));
    }
    let part = ManifestPart {
        store: storage.identity(),
        shard: shard.index,
        shards: shard.count,
        roots: share.roots,
        read: report.read,
        entries: report.entries,
        time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    let path = record_path(parts, shard);
    let json = serde_json::to_vec_pretty(&part).expect("a part serializes");
    let failed = |e: std::io::Error| ShardError::Parts(format!("{}: {e}", path.display()));
    crate::model::atomic_file::Staged::create(&path, "a file")
        .map_err(failed)?
        .finish(|out| out.write_all(&json))
        .map_err(failed)?;
    Ok(part)
}

/// Merges every part below `parts` into `cache`, after checking that the parts are all there, of
/// the store named `store`, and cut by one N.
pub fn merge(store: &str, parts: &Path, cache: ManifestCache) -> Result<Merged, ShardError> {
    let refuse = |m: String| ShardError::Parts(format!("{}: {m}", parts.display()));
    let entries =
        std::fs::read_dir(parts).map_err(|e| refuse(format!("cannot read the folder: {e}")))?;
    let mut found: BTreeMap<u32, Vec<ManifestPart>> = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("manifests-") && name.ends_with(".json")) {
            continue;
        }
        let text = std::fs::read(e.path()).map_err(|err| refuse(format!("{name}: {err}")))?;
        let part: ManifestPart = serde_json::from_slice(&text)
            .map_err(|err| refuse(format!("{name}: not a shard's record: {err}")))?;
        if part.store != store {
            return Err(refuse(format!(
                "{name} is a part of {}, not of {store}",
                part.store
            )));
        }
        found.entry(part.shards).or_default().push(part);
    }
    let (count, mut list) = match found.len() {
        0 => return Err(refuse("no shard has written its part here".into())),
        1 => found.into_iter().next().expect("one"),
        _ => {
            return Err(refuse(format!(
                "parts of runs cut into different numbers of shards ({}); keep one run's parts",
                found
                    .keys()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    list.sort_by_key(|p| p.shard);
    let have: Vec<u32> = list.iter().map(|p| p.shard).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !have.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "shard(s) {} have not written their part; run them, then merge",
            missing.join(", ")
        )));
    }
    let (mut seen, mut all) = (HashSet::new(), HashSet::new());
    let mut added = 0;
    for p in &list {
        let shard = Shard {
            index: p.shard,
            count,
        };
        let part = ManifestCache::open(&part_dir(parts, shard));
        let digests = part.digests();
        let part_report = digests.len() as u64;
        all.extend(digests);
        if part_report != p.entries {
            return Err(refuse(format!(
                "shard {shard}'s part holds {part_report} entries, its record says {}",
                p.entries
            )));
        }
        added += cache.merge_from(&part, &mut seen);
    }
    let part_entries = all.len() as u64;
    Ok(Merged {
        store: store.to_owned(),
        shards: count,
        part_entries,
        added,
        cache: cache.finish(),
    })
}

/// `shard manifests`: this shard's part of the manifest reading, into `parts` (made when missing).
pub fn run_manifests(
    store: Store<'_>,
    shard: Shard,
    parts: &Path,
    progress: &Progress,
) -> Result<(ManifestPart, Outcome), Error> {
    std::fs::create_dir_all(parts)
        .map_err(|e| Error::failed(format!("creating {}", parts.display()), e))?;
    match manifests(store.storage, shard, parts, progress) {
        Err(ShardError::Analysis(e)) => Err(store.analysis(e)),
        other => Ok((other.map_err(Error::other)?, Outcome::Done)),
    }
}

/// `shard merge`: every part into the manifest cache in `cache` (or the default folder).
pub fn run_merge(
    store: Store<'_>,
    parts: &Path,
    cache: &CacheDir,
) -> Result<(Merged, Outcome), Error> {
    let cache = ManifestCache::open(&cache.required()?);
    let merged = merge(&store.storage.identity(), parts, cache).map_err(Error::other)?;
    Ok((merged, Outcome::Done))
}
