//! The Distribution storage layout: building keys and telling what a listed key is.
//!
//! Keys are relative to the store's root (the registry's `rootdirectory`) and use `/` on every backend.
//! Parsing works on keys alone, so a filesystem walk and an S3 listing feed the same code. A repository
//! name ends at its first component that starts with `_` (`_manifests`, `_layers`, `_uploads`):
//! components of a name never do, which is what lets `a` and `a/b` both be repositories.

use crate::digest::Digest;

/// Prefix of all blob data.
pub const BLOBS: &str = "docker/registry/v2/blobs/sha256/";
/// Prefix of all repositories.
pub const REPOSITORIES: &str = "docker/registry/v2/repositories/";

/// How many listing shards the blob tree is split into: one per first hex digit.
///
/// Sixteen keeps every core (and, on S3, sixteen listing streams) busy while a small bucket still
/// costs only sixteen list requests; 256 shards would cost 256 requests however small the store.
pub const BLOB_SHARDS: u8 = 16;

/// The listing prefix of blob shard `n` (`0..BLOB_SHARDS`): `blobs/sha256/a`, which covers the
/// folders `a0/` … `af/`.
pub fn blob_shard(n: u8) -> String {
    format!("{BLOBS}{n:x}")
}

/// The key of a blob's data.
pub fn blob_data(d: &Digest) -> String {
    let hex = d.hex();
    format!("{BLOBS}{}/{hex}/data", &hex[..2])
}

/// The key of a repository's `_layers` link for `d`.
pub fn layer_link(repo: &str, d: &Digest) -> String {
    format!("{REPOSITORIES}{repo}/_layers/sha256/{}/link", d.hex())
}

/// The key of a manifest revision link.
pub fn revision_link(repo: &str, d: &Digest) -> String {
    format!(
        "{REPOSITORIES}{repo}/_manifests/revisions/sha256/{}/link",
        d.hex()
    )
}

/// The key of a tag's index entry for `d`.
pub fn tag_index_entry(repo: &str, tag: &str, d: &Digest) -> String {
    format!(
        "{REPOSITORIES}{repo}/_manifests/tags/{tag}/index/sha256/{}/link",
        d.hex()
    )
}

/// What a key under `blobs/sha256/` is.
#[derive(Debug, PartialEq, Eq)]
pub enum BlobKey {
    /// `xx/<hex>/data` with `xx` the first two characters of `hex`.
    Data(Digest),
    /// Anything else under the blob tree (stray files, odd names).
    Other,
}

/// Classifies a key of the blob tree (the full key, starting with [`BLOBS`]).
pub fn parse_blob_key(key: &str) -> BlobKey {
    let Some(rest) = key.strip_prefix(BLOBS) else {
        return BlobKey::Other;
    };
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(shard), Some(hex), Some("data"), None) if hex.get(..2) == Some(shard) => {
            Digest::from_hex(hex).map_or(BlobKey::Other, BlobKey::Data)
        }
        _ => BlobKey::Other,
    }
}

/// What a key under `repositories/` is.
#[derive(Debug, PartialEq, Eq)]
pub enum RepoKey<'a> {
    /// `_layers/sha256/<hex>/link`
    LayerLink(Digest),
    /// `_manifests/revisions/sha256/<hex>/link`
    RevisionLink(Digest),
    /// `_manifests/tags/<tag>/current/link`
    TagCurrent(&'a str),
    /// `_manifests/tags/<tag>/index/sha256/<hex>/link`
    TagIndexEntry(&'a str, Digest),
    /// `_uploads/<id>/<rest>`
    Upload { id: &'a str, rest: &'a str },
    /// Any other key inside a repository (for example a link folder whose name is not a digest).
    Other,
}

/// Splits a repository key into the repository name and what the key is. `None` when the key holds no
/// `_` component, that is, lies outside every repository's own folders.
pub fn parse_repo_key(key: &str) -> Option<(&str, RepoKey<'_>)> {
    let rest = key.strip_prefix(REPOSITORIES)?;
    let split = find_reserved_component(rest)?;
    let name = &rest[..split - 1];
    let inner = &rest[split..];
    let parts: Vec<&str> = inner.split('/').collect();
    let kind = match parts.as_slice() {
        ["_layers", "sha256", hex, "link"] => {
            Digest::from_hex(hex).map_or(RepoKey::Other, RepoKey::LayerLink)
        }
        ["_manifests", "revisions", "sha256", hex, "link"] => {
            Digest::from_hex(hex).map_or(RepoKey::Other, RepoKey::RevisionLink)
        }
        ["_manifests", "tags", tag, "current", "link"] => RepoKey::TagCurrent(tag),
        ["_manifests", "tags", tag, "index", "sha256", hex, "link"] => {
            Digest::from_hex(hex).map_or(RepoKey::Other, |d| RepoKey::TagIndexEntry(tag, d))
        }
        ["_uploads", id, ..] if parts.len() > 2 => {
            let rest = &inner["_uploads/".len() + id.len() + 1..];
            RepoKey::Upload { id, rest }
        }
        _ => RepoKey::Other,
    };
    Some((name, kind))
}

/// Byte offset of the first path component that starts with `_`, when it is not the first component.
fn find_reserved_component(rest: &str) -> Option<usize> {
    let mut offset = 0;
    for (i, comp) in rest.split('/').enumerate() {
        if comp.starts_with('_') {
            return (i > 0).then_some(offset);
        }
        offset += comp.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn builds_and_parses_keys_of_nested_repositories() {
        let x = d('a');
        let k = layer_link("team/x/tool", &x);
        assert_eq!(
            parse_repo_key(&k),
            Some(("team/x/tool", RepoKey::LayerLink(x)))
        );
        let k = revision_link("a", &x);
        assert_eq!(parse_repo_key(&k), Some(("a", RepoKey::RevisionLink(x))));
        let k = format!("{REPOSITORIES}a/b/_manifests/tags/v1.0/current/link");
        assert_eq!(
            parse_repo_key(&k),
            Some(("a/b", RepoKey::TagCurrent("v1.0")))
        );
        let k = tag_index_entry("a/b", "latest", &x);
        assert_eq!(
            parse_repo_key(&k),
            Some(("a/b", RepoKey::TagIndexEntry("latest", x)))
        );
    }

    #[test]
    fn parses_upload_keys_and_rejects_keys_outside_repositories() {
        let k = format!("{REPOSITORIES}r/_uploads/1234-abcd/hashstates/sha256/0");
        assert_eq!(
            parse_repo_key(&k),
            Some((
                "r",
                RepoKey::Upload {
                    id: "1234-abcd",
                    rest: "hashstates/sha256/0"
                }
            ))
        );
        assert_eq!(parse_repo_key(&format!("{REPOSITORIES}r/readme")), None);
        assert_eq!(parse_repo_key(&format!("{REPOSITORIES}_odd/x")), None);
        assert_eq!(parse_repo_key("docker/registry/v2/blobs/x"), None);
    }

    #[test]
    fn a_revision_folder_whose_name_is_not_a_digest_is_other() {
        let k = format!("{REPOSITORIES}r/_manifests/revisions/sha256/zz/link");
        assert_eq!(parse_repo_key(&k), Some(("r", RepoKey::Other)));
    }

    #[test]
    fn blob_keys_must_sit_in_their_shard() {
        let x = d('b');
        assert_eq!(parse_blob_key(&blob_data(&x)), BlobKey::Data(x));
        let wrong_shard = format!("{BLOBS}aa/{}/data", x.hex());
        assert_eq!(parse_blob_key(&wrong_shard), BlobKey::Other);
        let not_data = format!("{BLOBS}bb/{}/other", x.hex());
        assert_eq!(parse_blob_key(&not_data), BlobKey::Other);
    }
}
