//! Problems found in a store: what is broken, where, and in words.
//!
//! Problems arrive as values and never stop a walk. Nearly every kind leaves the collector unsure of
//! what some manifest or tag keeps alive, so it forbids `--delete` (the dry run still reports); the
//! few that say only that a kept blob's data is damaged ([`ProblemKind::blocks_delete`]) are reported
//! and do not stop a sweep, which never touches what a manifest names.

use crate::model::digest::Digest;
use serde::Serialize;

/// The kinds of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A link file whose content is not `sha256:<64 hex>` or not its folder's digest.
    BadLink,
    /// A manifest revision whose data does not parse as a known manifest.
    CorruptManifest,
    /// A key or object that could not be read or listed (permissions, I/O errors, symbolic links).
    Unreadable,
    /// A manifest that a tag reaches, or a link, names a blob the store has no data for.
    MissingBlob,
    /// A tag whose current link names no revision of its repository (or that has no current link).
    DanglingTag,
    /// Blob data whose sha256 is not its name (`audit --verify-digests`).
    DigestMismatch,
    /// An upload older than the grace period (`audit`).
    StaleUpload,
    /// Blob data whose size is not the size a manifest's descriptor gives for it (truncated or
    /// rewritten data).
    SizeMismatch,
    /// A run in regsweep's trash whose record cannot be read, that was cut off before it ended, or
    /// whose record does not match what its folder holds (`audit`).
    TrashRun,
    /// A link that holds its digest more than once (`sha256:…sha256:…`: registry 3.0 to 3.1.1 on
    /// Azure wrote links as append blobs, and a retried append doubled them). What it names is
    /// kept; the registry itself cannot read it.
    RepeatedLink,
}

impl ProblemKind {
    /// Every kind, in order.
    pub const ALL: [ProblemKind; 10] = [
        ProblemKind::BadLink,
        ProblemKind::CorruptManifest,
        ProblemKind::Unreadable,
        ProblemKind::MissingBlob,
        ProblemKind::DanglingTag,
        ProblemKind::DigestMismatch,
        ProblemKind::StaleUpload,
        ProblemKind::SizeMismatch,
        ProblemKind::TrashRun,
        ProblemKind::RepeatedLink,
    ];

    /// The name the JSON reports use (`bad_link`, …).
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::BadLink => "bad_link",
            ProblemKind::CorruptManifest => "corrupt_manifest",
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::MissingBlob => "missing_blob",
            ProblemKind::DanglingTag => "dangling_tag",
            ProblemKind::DigestMismatch => "digest_mismatch",
            ProblemKind::StaleUpload => "stale_upload",
            ProblemKind::SizeMismatch => "size_mismatch",
            ProblemKind::TrashRun => "trash_run",
            ProblemKind::RepeatedLink => "repeated_link",
        }
    }

    /// Whether this problem leaves it unproven what the store still needs, so that nothing may be
    /// deleted until it is fixed. Damaged data of a blob that a manifest names does not: that blob
    /// is kept like any other referenced blob. Nor does a trash run's: the trash lies outside the
    /// registry's keys.
    pub fn blocks_delete(self) -> bool {
        !matches!(
            self,
            ProblemKind::DigestMismatch
                | ProblemKind::SizeMismatch
                | ProblemKind::StaleUpload
                | ProblemKind::TrashRun
                | ProblemKind::RepeatedLink
        )
    }
}

/// One problem, with every coordinate that applies.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The file or key.
    pub path: String,
    /// What is wrong, as a sentence.
    pub message: String,
}

impl Problem {
    /// A problem at `path` with no repository, tag or digest.
    pub fn at(kind: ProblemKind, path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            repo: None,
            tag: None,
            digest: None,
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn repo(mut self, repo: &str) -> Problem {
        self.repo = Some(repo.to_owned());
        self
    }

    pub fn tag(mut self, tag: &str) -> Problem {
        self.tag = Some(tag.to_owned());
        self
    }

    pub fn digest(mut self, d: Digest) -> Problem {
        self.digest = Some(d);
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_named_as_the_json_names_it() {
        for kind in ProblemKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
    }
}
