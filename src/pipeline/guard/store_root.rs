//! Is STORAGE a registry's store at all? A path one level off, or a bucket prefix with nothing of the
//! registry under it, would otherwise list as an empty store: every command would succeed with zeros
//! and `audit` would call it healthy forever. A store is recognised by `docker/registry/v2/` holding
//! `repositories/` or `blobs/`; a genuine empty store (those folders there, nothing in them) passes.
//! On S3, where there are no folders, a bucket whose only trace of the registry is an incomplete
//! multipart upload under `docker/registry/v2/` (a first push cut off) is a store too: it has
//! something for `gc` to abort.

use crate::storage::{Storage, StorageError};

/// STORAGE holds no registry store.
#[derive(Debug, thiserror::Error)]
pub enum NotAStore {
    #[error(
        "{storage} holds no registry store: expected docker/registry/v2/ with repositories/ or \
         blobs/ under it{hint}"
    )]
    Empty { storage: String, hint: String },
    /// The listing's error is in the message, not a source: the report prints an error's
    /// chain, and it would say it twice.
    #[error("{storage}: cannot list docker/registry/v2/: {error}")]
    Unlistable {
        storage: String,
        error: StorageError,
    },
}

/// The levels of the store's layout, deepest first, with how far above them the root is.
const LEVELS: [(&[&str], &str); 3] = [
    (
        &["repositories", "blobs"],
        "docker/registry/v2 itself; pass the folder three levels up",
    ),
    (&["v2"], "docker/registry; pass the folder two levels up"),
    (&["registry"], "docker; pass the folder one level up"),
];

/// Checks that `storage` holds a registry store; the error names what was expected and, where the
/// top level shows it, which level STORAGE points at instead.
pub fn check(storage: &dyn Storage) -> Result<(), NotAStore> {
    let unlistable = |error| NotAStore::Unlistable {
        storage: storage.describe(),
        error,
    };
    let v2 = storage
        .child_folders("docker/registry/v2/")
        .map_err(unlistable)?;
    if v2.iter().any(|d| d == "repositories" || d == "blobs") {
        return Ok(());
    }
    let uploads = storage
        .multipart()
        .and_then(|m| m.multipart_uploads().ok())
        .unwrap_or_default();
    if uploads
        .iter()
        .any(|u| u.key.starts_with("docker/registry/v2/"))
    {
        return Ok(());
    }
    let top = storage.child_folders("").map_err(unlistable)?;
    let hint = LEVELS
        .iter()
        .find(|(names, _)| top.iter().any(|d| names.contains(&d.as_str())))
        .map_or_else(
            || {
                " (is this the registry's rootdirectory, or the bucket and prefix it uses?)"
                    .to_owned()
            },
            |(_, level)| format!(" (it looks like {level})"),
        );
    Err(NotAStore::Empty {
        storage: storage.describe(),
        hint,
    })
}
