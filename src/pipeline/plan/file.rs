//! Plan files: what `gc --plan` and `prune-tags --plan` write and `apply` executes.
//!
//! NDJSON: a header line, then one item a line. The header says which command made the plan, for
//! which store, when, and how many items follow with a sha256 over their lines, so that a plan cut
//! short, edited, or made for another store is refused by name instead of half-applied. A `gc` plan's
//! header also records how the plan was made and what it was made from (see [`GcState`]).
//!
//! A plan is written to a temporary file beside its destination, created before the analysis (an
//! unwritable path fails at once, not after an hour of listing) and renamed into place when
//! complete, so no reader ever sees half a plan.

use crate::model::atomic_file::Staged;
use crate::model::digest::Digest;
use crate::model::time::{rfc3339, unix_seconds};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::Path;

/// The version this regsweep writes and reads.
pub const VERSION: u32 = 2;

/// The command a plan was made by, and so what its items are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanCommand {
    /// Items are [`crate::pipeline::plan::PlanItem`]s.
    Gc,
    /// Items are tags ([`TagLine`]).
    PruneTags,
}

/// What a `gc` plan was made with and from: its options, and counts and fingerprints of every tag
/// and of the manifest revisions it keeps (see [`crate::pipeline::guard::recheck::Fingerprints`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcState {
    pub delete_untagged: bool,
    pub grace_seconds: u64,
    pub tags: u64,
    pub tags_fingerprint: Digest,
    pub revisions: u64,
    pub revisions_fingerprint: Digest,
}

/// The `kind` of a plan file's line that is not a `gc` item (those are spelled by
/// [`crate::pipeline::plan::PlanItem`]'s variants, in the same field): the header, or a `prune-tags`
/// tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Header,
    Tag,
}

/// The first line of a plan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHeader {
    /// Always [`LineKind::Header`].
    pub kind: LineKind,
    pub version: u32,
    pub command: PlanCommand,
    /// When the plan was made (RFC 3339), and the same as Unix seconds.
    pub created: String,
    pub created_unix: i64,
    /// The store it was made for ([`crate::storage::Storage::identity`]).
    pub storage: String,
    /// Item lines that follow, and a sha256 over them (each line with its newline).
    pub items: u64,
    pub items_sha256: Digest,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<GcState>,
}

impl PlanHeader {
    /// A header for `command`'s plan of `storage`, made at `now`; items and checksum are filled in
    /// when the plan is written.
    pub fn new(
        command: PlanCommand,
        storage: &str,
        now: std::time::SystemTime,
        gc: Option<GcState>,
    ) -> PlanHeader {
        PlanHeader {
            kind: LineKind::Header,
            version: VERSION,
            command,
            created: rfc3339(unix_seconds(now)),
            created_unix: unix_seconds(now),
            storage: storage.to_owned(),
            items: 0,
            items_sha256: Digest([0; 32]),
            gc,
        }
    }
}

/// A `prune-tags` plan item: a tag to remove, as it was when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagLine {
    /// Always [`LineKind::Tag`] (a line of another kind does not parse as a tag).
    pub kind: LineKind,
    pub repo: String,
    pub tag: String,
    /// The manifest the tag named (`None`: a tag whose `current/link` was missing).
    pub digest: Option<Digest>,
    /// When the tag was last pushed (RFC 3339).
    pub pushed: String,
}

/// Why a plan file cannot be written, read or used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("{path}: cannot write the plan: {message}")]
    Write { path: String, message: String },
    #[error("{path}: cannot read the plan: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: not a regsweep plan: {message}")]
    Format {
        path: String,
        line: usize,
        message: String,
    },
    #[error(
        "{path}: refusing the plan: its header announces {announced} items but the file holds {found}; \
         it was cut short or added to. Copy it again, or make a new plan"
    )]
    Incomplete {
        path: String,
        announced: u64,
        found: u64,
    },
    #[error(
        "{path}: refusing the plan: its items do not match the checksum in its header; the file was \
         edited or damaged after it was made. Make a new plan"
    )]
    Checksum { path: String },
    #[error(
        "{path}: refusing the plan: it was made for {made_for}, not {storage}. Apply it to the store it \
         was made for, or make a new plan of this one"
    )]
    OtherStore {
        path: String,
        made_for: String,
        storage: String,
    },
}

/// An item as its plan-file line (JSON and a newline), into `line`: what the checksum covers and
/// what is written.
pub fn item_line<T: Serialize>(item: &T, line: &mut Vec<u8>) {
    line.clear();
    serde_json::to_writer(&mut *line, item).expect("plan items serialize");
    line.push(b'\n');
}

/// A plan file on its way (see [`Staged`]): renamed into place by [`PlanOutput::finish`], removed
/// if the run ends before.
#[derive(Debug)]
pub struct PlanOutput(Staged);

impl PlanOutput {
    /// Creates the temporary file now, so that an unwritable destination fails before any work.
    pub fn create(path: &Path) -> Result<PlanOutput, PlanFileError> {
        Staged::create(path, "a file")
            .map(PlanOutput)
            .map_err(|message| PlanFileError::Write {
                path: path.display().to_string(),
                message: message.to_string(),
            })
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes the header (with the items' count and checksum) and the items, and renames the file
    /// into place.
    pub fn finish<T: Serialize>(
        self,
        mut header: PlanHeader,
        items: impl Iterator<Item = T> + Clone,
    ) -> Result<(), PlanFileError> {
        use sha2::Digest as _;
        let mut sha = sha2::Sha256::new();
        let mut count = 0;
        let mut line = Vec::new();
        for item in items.clone() {
            item_line(&item, &mut line);
            sha.update(&line);
            count += 1;
        }
        header.items = count;
        header.items_sha256 = Digest(sha.finalize().into());
        let path = self.path().display().to_string();
        self.0
            .finish(|out| {
                serde_json::to_writer(&mut *out, &header)?;
                out.write_all(b"\n")?;
                for item in items {
                    item_line(&item, &mut line);
                    out.write_all(&line)?;
                }
                Ok(())
            })
            .map_err(|e| PlanFileError::Write {
                path,
                message: e.to_string(),
            })
    }
}

/// A plan file, read back and checked against its header: item lines as written.
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub header: PlanHeader,
    /// (line number, text) of every item.
    lines: Vec<(usize, String)>,
    path: String,
}

impl PlanFile {
    /// Reads and checks a plan file: a header of this version, as many items as it announces, and
    /// their checksum.
    pub fn read(path: &Path) -> Result<PlanFile, PlanFileError> {
        let shown = path.display().to_string();
        if path.is_dir() {
            return Err(PlanFileError::Read {
                path: shown,
                message: "is a folder, not a plan file (`regsweep apply PLAN STORAGE` takes the plan first)"
                    .into(),
            });
        }
        let file = std::fs::File::open(path).map_err(|e| PlanFileError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let format = |line: usize, message: String| PlanFileError::Format {
            path: shown.clone(),
            line,
            message,
        };
        let mut reader = std::io::BufReader::new(file).lines();
        let first = reader
            .next()
            .ok_or_else(|| format(1, "the file is empty".into()))?
            .map_err(|e| format(1, e.to_string()))?;
        let value: serde_json::Value = serde_json::from_str(&first).map_err(|e| {
            format(
                1,
                format!("no header line ({e}); plans are made with `regsweep gc --plan FILE` or `regsweep prune-tags --plan FILE`"),
            )
        })?;
        let kind = value
            .get("kind")
            .and_then(|k| LineKind::deserialize(k).ok());
        if kind != Some(LineKind::Header) {
            return Err(format(
                1,
                "no header line; plans are made with `regsweep gc --plan FILE` or `regsweep prune-tags --plan FILE`".into(),
            ));
        }
        if value["version"] != VERSION {
            return Err(format(
                1,
                format!(
                    "plan version {}, this regsweep reads version {VERSION}; make a new plan",
                    value["version"]
                ),
            ));
        }
        let header: PlanHeader =
            serde_json::from_value(value).map_err(|e| format(1, e.to_string()))?;
        use sha2::Digest as _;
        let mut sha = sha2::Sha256::new();
        let mut lines = Vec::new();
        for (i, line) in reader.enumerate() {
            let line = line.map_err(|e| format(i + 2, e.to_string()))?;
            sha.update(line.as_bytes());
            sha.update(b"\n");
            lines.push((i + 2, line));
        }
        if lines.len() as u64 != header.items {
            return Err(PlanFileError::Incomplete {
                path: shown,
                announced: header.items,
                found: lines.len() as u64,
            });
        }
        if Digest(sha.finalize().into()) != header.items_sha256 {
            return Err(PlanFileError::Checksum { path: shown });
        }
        Ok(PlanFile {
            header,
            lines,
            path: shown,
        })
    }

    /// Refuses a plan made for another store than `identity`.
    pub fn check_store(&self, identity: &str) -> Result<(), PlanFileError> {
        if self.header.storage == identity {
            return Ok(());
        }
        Err(PlanFileError::OtherStore {
            path: self.path.clone(),
            made_for: self.header.storage.clone(),
            storage: identity.to_owned(),
        })
    }

    /// The items, parsed as `T`.
    pub fn items<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, PlanFileError> {
        self.lines
            .iter()
            .map(|(n, l)| {
                serde_json::from_str(l).map_err(|e| PlanFileError::Format {
                    path: self.path.clone(),
                    line: *n,
                    message: e.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan::PlanItem;

    fn gc_header() -> PlanHeader {
        let d = Digest([9; 32]);
        PlanHeader::new(
            PlanCommand::Gc,
            "/srv",
            std::time::SystemTime::now(),
            Some(GcState {
                delete_untagged: true,
                grace_seconds: 0,
                tags: 2,
                tags_fingerprint: d,
                revisions: 3,
                revisions_fingerprint: d,
            }),
        )
    }

    #[test]
    fn a_plan_round_trips_and_a_cut_edited_or_foreign_plan_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.ndjson");
        let items: Vec<PlanItem> = (0..3u8)
            .map(|i| PlanItem::Blob {
                digest: Digest([i; 32]),
                size: u64::from(i) + 1,
            })
            .collect();
        PlanOutput::create(&path)
            .unwrap()
            .finish(gc_header(), items.iter())
            .unwrap();
        let back = PlanFile::read(&path).unwrap();
        assert_eq!(back.header.items, 3);
        assert_eq!(back.header.gc, gc_header().gc);
        assert_eq!(back.items::<PlanItem>().unwrap(), items);
        back.check_store("/srv").unwrap();
        let other = back.check_store("/elsewhere").unwrap_err().to_string();
        assert!(other.contains("made for /srv, not /elsewhere"), "{other}");
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let text = std::fs::read_to_string(&path).unwrap();
        let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, &cut).unwrap();
        let err = PlanFile::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("announces 3 items but the file holds 2"),
            "{err}"
        );
        std::fs::write(&path, text.replace("\"size\":2", "\"size\":20")).unwrap();
        let err = PlanFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        let items_only: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, items_only).unwrap();
        let err = PlanFile::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("plan.ndjson:1") && err.contains("no header"),
            "{err}"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(
            PlanFile::read(&path)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let swapped = PlanFile::read(dir.path()).unwrap_err().to_string();
        assert!(swapped.contains("takes the plan first"), "{swapped}");
    }

    #[test]
    fn an_unwritable_destination_fails_at_create_and_an_unfinished_plan_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/folder/plan.ndjson");
        let err = PlanOutput::create(&missing).unwrap_err().to_string();
        assert!(err.contains("no/such/folder/plan.ndjson"), "{err}");
        let err = PlanOutput::create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a folder"), "{err}");
        let out = PlanOutput::create(&dir.path().join("plan.ndjson")).unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
