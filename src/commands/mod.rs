//! The commands: each runs the pipeline on a store and ends in a report. [`gc`] (analyse, then sweep
//! after the re-check), [`apply`] (a reviewed plan file against the store as it is now),
//! [`prune_tags`] (tags by retention rules), [`du`] (where the bytes are), [`audit`] (what is broken),
//! [`online`] (`gc --online`: trash, settle and heal while the registry stays writable),
//! [`trash`] (a way back from every sweep), and [`target`] (what the user named, opened as a storage).
//! Every deleting run passes [`gate`] first; how a command ended is [`outcome`].

pub mod apply;
pub mod audit;
pub mod du;
pub mod export;
pub mod gate;
pub mod gc;
pub mod online;
pub mod outcome;
pub mod prune_tags;
pub mod shard;
pub mod target;
pub mod trash;

use crate::commands::outcome::Error;
use crate::commands::target::Target;
use crate::model::warning;
use crate::pipeline::collect::manifest_cache::{self, ManifestCache};
use crate::pipeline::retention::pins::Pins;
use crate::pipeline::retention::policy::Policy;
use crate::pipeline::retention::pulls::Pulls;
use crate::report::PlanWritten;
use crate::storage::Storage;
use std::path::{Path, PathBuf};

/// A store as a command is given it: what the user named (STORAGE), what that resolved to, and the
/// store opened.
#[derive(Clone, Copy)]
pub struct Store<'a> {
    pub arg: &'a str,
    pub target: &'a Target,
    pub storage: &'a dyn Storage,
}

impl Store<'_> {
    /// A failed listing or a stop, as the command's error.
    pub(crate) fn analysis(&self, e: crate::pipeline::collect::AnalysisError) -> Error {
        Error::analysis(e, &self.storage.describe())
    }
}

/// Where the manifest cache lives (`--cache-dir`), or that it is off (`--no-cache`).
#[derive(Debug, Clone, Default)]
pub struct CacheDir {
    pub off: bool,
    pub dir: Option<PathBuf>,
}

impl CacheDir {
    /// The manifest cache a run uses, unless it is off (or no folder for it is known, which is
    /// warned of).
    pub fn open(&self) -> Option<ManifestCache> {
        if self.off {
            return None;
        }
        match self.dir.clone().or_else(manifest_cache::default_dir) {
            Some(dir) => Some(ManifestCache::open(&dir)),
            None => {
                warning::emit(
                    "warning: no folder for the manifest cache (neither HOME nor \
                     XDG_CACHE_HOME is set, and no --cache-dir): every manifest is read from the store",
                );
                None
            }
        }
    }

    /// The folder, which must be known.
    pub(crate) fn required(&self) -> Result<PathBuf, Error> {
        self.dir.clone().or_else(manifest_cache::default_dir).ok_or_else(|| {
            Error::other(
                "no folder for the manifest cache: give --cache-dir (neither HOME nor XDG_CACHE_HOME is set)",
            )
        })
    }
}

/// A retention policy file with what it keeps for (`--keep-images`, `--pulls`).
#[derive(Debug, Clone, Default)]
pub struct PolicyFiles {
    pub policy: PathBuf,
    pub keep_images: Option<PathBuf>,
    pub pulls: Vec<PathBuf>,
}

impl PolicyFiles {
    /// The policy with its pins and pull records, read before any work so that a bad file fails
    /// at once, by name.
    pub fn read(&self) -> Result<(Policy, Pins, Option<Pulls>), Error> {
        let policy = Policy::read(&self.policy).map_err(Error::other)?;
        let pins = match &self.keep_images {
            Some(f) => Pins::read(f).map_err(Error::other)?,
            None => Default::default(),
        };
        let pulls = if self.pulls.is_empty() {
            None
        } else {
            Some(Pulls::read(&self.pulls).map_err(Error::other)?)
        };
        if policy.on_pulls() && pulls.is_none() {
            warning::emit(format!(
                "warning: {} has rules on pulls and no --pulls records were given: \
                 those rules keep everything they select",
                self.policy.display()
            ));
        }
        Ok((policy, pins, pulls))
    }
}

/// The plan file's place, made now so that an unwritable one fails before any work.
fn plan_output(
    path: Option<&Path>,
) -> Result<Option<crate::pipeline::plan::file::PlanOutput>, Error> {
    path.map(crate::pipeline::plan::file::PlanOutput::create)
        .transpose()
        .map_err(Error::other)
}

/// Where a plan went and how to execute it, for the report.
fn plan_written(path: &Path, storage: &str, delete_versions: bool) -> PlanWritten {
    let versions = if delete_versions {
        " --delete-versions"
    } else {
        ""
    };
    PlanWritten {
        path: path.display().to_string(),
        apply: format!("regsweep apply {} {storage}{versions}", path.display()),
    }
}
