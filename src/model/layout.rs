//! The Distribution storage layout: building keys and telling what a listed key is.
//!
//! Keys are relative to the store's root (the registry's `rootdirectory`) and use `/` on every backend.
//! Parsing works on keys alone, so a filesystem walk and an S3 listing feed the same code. A repository
//! name ends at its first component that starts with `_` (`_manifests`, `_layers`, `_uploads`):
//! components of a name never do, which is what lets `a` and `a/b` both be repositories.

use crate::model::digest::{AliasDigest, Digest};

/// Prefix of all blob data.
pub const BLOBS: &str = "docker/registry/v2/blobs/sha256/";
/// Prefix of all repositories.
pub const REPOSITORIES: &str = "docker/registry/v2/repositories/";

/// How many listing shards the blob tree is split into: one per first hex digit.
///
/// Sixteen keeps every core (and, on S3, sixteen listing streams) busy while a small bucket still
/// costs only sixteen list requests; 256 shards would cost 256 requests however small the store.
pub const BLOB_PARTITIONS: u8 = 16;

/// The listing prefix of blob shard `n` (`0..BLOB_PARTITIONS`): `blobs/sha256/a`, which covers the
/// folders `a0/` … `af/`.
pub fn blob_partition(n: u8) -> String {
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

/// The folder of a tag (with its trailing `/`): everything the tag is.
pub fn tag_folder(repo: &str, tag: &str) -> String {
    format!("{REPOSITORIES}{repo}/_manifests/tags/{tag}/")
}

/// The folder of an upload (with its trailing `/`): its data, `startedat` and hash states.
pub fn upload_folder(repo: &str, id: &str) -> String {
    format!("{REPOSITORIES}{repo}/_uploads/{id}/")
}

/// A repository's folder (with its trailing `/`). It may hold nested repositories besides its own
/// reserved folders ([`REPOSITORY_OWN`]).
pub fn repository_folder(repo: &str) -> String {
    format!("{REPOSITORIES}{repo}/")
}

/// True for a folder below [`REPOSITORIES`] (a key ending in `/`) whose every component is a
/// name (none starts with `_`): a repository's or a namespace's folder, which holds whole
/// repositories, never a folder inside a repository's own ([`REPOSITORY_OWN`]).
pub fn names_folder(folder: &str) -> bool {
    folder
        .strip_prefix(REPOSITORIES)
        .is_some_and(|names| !names.split('/').any(|c| c.starts_with('_')))
}

/// The folders a repository owns; anything else in its folder belongs to a nested repository.
pub const REPOSITORY_OWN: [&str; 3] = ["_layers/", "_manifests/", "_uploads/"];

/// The key of a tag's `current` link.
pub fn tag_current(repo: &str, tag: &str) -> String {
    format!("{REPOSITORIES}{repo}/_manifests/tags/{tag}/current/link")
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
    /// `_layers/sha512/<hex>/link` (or sha384): an alias, which holds the sha256 digest the data
    /// is stored under.
    AliasLink(AliasDigest),
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

/// A repository's alias link: `_layers/<algorithm>/<hex>/link`, holding `sha256:<hex>`.
pub fn alias_link(repo: &str, a: &AliasDigest) -> String {
    format!(
        "{REPOSITORIES}{repo}/_layers/{}/{}/link",
        a.algorithm(),
        a.hex()
    )
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
        ["_layers", algorithm, hex, "link"] => {
            AliasDigest::from_parts(algorithm, hex).map_or(RepoKey::Other, RepoKey::AliasLink)
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

/// What a folder of the layout holds, as far as the collector is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// One file whose size and age matter: a blob's `data`.
    Stat(&'static str),
    /// One small file whose content matters: a revision's `link` (checked against its folder).
    Read(&'static str),
    /// One file whose folder's name says all (the digest it links): `_layers` and tag index links. A
    /// folder left without its link by an interrupted delete only costs a delete of a key already gone.
    Name(&'static str),
    /// A tag's folder: `current/link` (content and age) and `index/sha256/` (digest folders).
    Tag,
}

/// The tag folder's current link, below the tag's folder.
pub const TAG_CURRENT: &str = "current/link";
/// The tag folder's index of digest folders, below the tag's folder.
pub const TAG_INDEX: &str = "index/sha256";

/// For a folder `dir` (a key ending with `/`) and the name of a folder in it, what that child holds
/// when the layout says it holds just that:
/// - a digest folder of the blob tree (`blobs/sha256/ab/<hex>/`): `data`, stat it;
/// - a digest folder of a repository's `_manifests/revisions/sha256/`: `link`, read it;
/// - a digest folder of `_layers/sha256/` or of a tag's `index/sha256/`: `link`, known by name;
/// - a folder of `_manifests/tags/`: a tag.
///
/// A filesystem listing uses it to reach those files through their folders without opening the
/// folders: the shortcut that makes a walk cost about one system call per blob.
pub fn folder_leaf(dir: &str, child: &str) -> Option<Leaf> {
    if let Some(rest) = dir.strip_prefix(BLOBS) {
        let b = rest.as_bytes();
        let shard = b.len() == 3 && b[2] == b'/' && b[..2].iter().all(u8::is_ascii_hexdigit);
        return (shard && Digest::from_hex(child).is_some()).then_some(Leaf::Stat("data"));
    }
    let rest = dir.strip_prefix(REPOSITORIES)?;
    let inner = &rest[find_reserved_component(rest)?..];
    let parts: Vec<&str> = inner.split('/').collect();
    let digest = Digest::from_hex(child).is_some();
    match parts.as_slice() {
        ["_layers", "sha256", ""] | ["_manifests", "tags", _, "index", "sha256", ""] => {
            digest.then_some(Leaf::Name("link"))
        }
        ["_manifests", "revisions", "sha256", ""] => digest.then_some(Leaf::Read("link")),
        ["_layers", algorithm, ""] if AliasDigest::from_parts(algorithm, child).is_some() => {
            Some(Leaf::Read("link"))
        }
        ["_manifests", "tags", ""] => Some(Leaf::Tag),
        _ => None,
    }
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
    fn folder_leaves_are_known_only_where_the_layout_puts_them() {
        let hex = "a".repeat(64);
        assert_eq!(
            folder_leaf(&format!("{BLOBS}ab/"), &hex),
            Some(Leaf::Stat("data"))
        );
        assert_eq!(folder_leaf(&format!("{BLOBS}ab/"), "zz"), None);
        assert_eq!(folder_leaf(&format!("{BLOBS}abc/"), &hex), None);
        assert_eq!(folder_leaf(BLOBS, "ab"), None);
        let repo = format!("{REPOSITORIES}team/sha256/");
        for (inner, leaf) in [
            ("_layers/sha256/", Leaf::Name("link")),
            ("_manifests/revisions/sha256/", Leaf::Read("link")),
            ("_manifests/tags/sha256/index/sha256/", Leaf::Name("link")),
        ] {
            let dir = format!("{repo}{inner}");
            assert_eq!(folder_leaf(&dir, &hex), Some(leaf), "{dir}");
            assert_eq!(folder_leaf(&dir, "current"), None, "{dir}");
        }
        let tags = format!("{repo}_manifests/tags/");
        assert_eq!(folder_leaf(&tags, &hex), Some(Leaf::Tag));
        assert_eq!(folder_leaf(&tags, "latest"), Some(Leaf::Tag));
        assert_eq!(folder_leaf(&format!("{tags}latest/"), "current"), None);
        // A repository named like a digest folder is not one.
        for dir in [
            "team/sha256/",
            "team/_manifests/",
            "team/_manifests/revisions/",
            "team/_uploads/sha256/",
        ] {
            assert_eq!(
                folder_leaf(&format!("{REPOSITORIES}{dir}"), &hex),
                None,
                "{dir}"
            );
        }
    }

    #[test]
    fn names_folders_are_repositories_and_namespaces_never_a_repositorys_own() {
        assert!(names_folder(&format!("{REPOSITORIES}mirror/")));
        assert!(names_folder(&format!("{REPOSITORIES}mirror/library/img1/")));
        assert!(!names_folder(&format!(
            "{REPOSITORIES}mirror/library/img1/_layers/"
        )));
        assert!(!names_folder(&format!("{REPOSITORIES}a/_manifests/tags/")));
        assert!(!names_folder("docker/registry/v2/blobs/sha256/ab/"));
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
