//! Referrers kept as tags: registries without the OCI referrers API (distribution has none) hold
//! signatures, attestations and SBOMs under tags named after their subject's digest.
//!
//! - OCI 1.1's referrers tag schema: a tag `sha256-<hex>` holding an index of the referrers of the
//!   manifest `sha256:<hex>`;
//! - cosign: `sha256-<hex>.sig`, `.att` and `.sbom` tags holding the signature, attestation or SBOM of
//!   `sha256:<hex>`.
//!
//! Such a tag keeps its referrers alive like any tag. When its subject is no longer in the
//! repository (the image was deleted or collected), nothing can ever ask for those referrers again:
//! the tag is an *orphan referrer tag*. `audit` lists them and `prune-tags --orphan-referrer-tags`
//! removes them, so that `gc -m` frees the signatures of images that are gone. The subject counts as
//! present when the repository links it either way the registry resolves a manifest (a revision link
//! or a `_layers` link), so a tag is never called an orphan while its subject can still be pulled.

use crate::model::digest::Digest;
use crate::pipeline::collect::blob_table::BlobTable;
use crate::pipeline::collect::inventory::{Repository, Tag};

/// The suffixes cosign gives the tags it writes beside an image.
const COSIGN_SUFFIXES: [&str; 3] = [".sig", ".att", ".sbom"];

/// The subject a referrer tag is named after: `sha256-<hex>` or `sha256-<hex>.{sig,att,sbom}`.
pub fn tag_subject(tag: &str) -> Option<Digest> {
    let rest = tag.strip_prefix("sha256-")?;
    let hex = COSIGN_SUFFIXES
        .iter()
        .find_map(|s| rest.strip_suffix(s))
        .unwrap_or(rest);
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// The subject of `tag` of `repo` when it is a referrer tag whose subject the repository no longer
/// holds (an orphan); `None` for any other tag.
pub fn orphan_subject(repo: &Repository, blobs: &BlobTable, tag: &Tag) -> Option<Digest> {
    tag_subject(&tag.name).filter(|s| !repo.holds_manifest(blobs, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::collect::inventory::Revisions;

    #[test]
    fn referrer_tags_name_their_subject() {
        let hex = "ab".repeat(32);
        let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
        for suffix in ["", ".sig", ".att", ".sbom"] {
            assert_eq!(tag_subject(&format!("sha256-{hex}{suffix}")), Some(d));
        }
        for not in [
            format!("sha256-{hex}.txt"),
            format!("sha256-{}", &hex[1..]),
            format!("sha512-{hex}"),
            format!("sha256-{}", hex.to_uppercase()),
            "latest".to_owned(),
        ] {
            assert_eq!(tag_subject(&not), None, "{not}");
        }
    }

    #[test]
    fn a_referrer_tag_is_an_orphan_only_when_its_subject_is_not_linked() {
        let subject = Digest::of(b"image");
        let tag = |name: String| Tag {
            name: name.into(),
            ..Tag::default()
        };
        let sig = tag(format!("sha256-{}.sig", subject.hex()));
        let mut repo = Repository::default();
        let blobs = BlobTable::default();
        assert_eq!(orphan_subject(&repo, &blobs, &sig), Some(subject));
        assert_eq!(orphan_subject(&repo, &blobs, &tag("v1".into())), None);
        repo.revisions = Revisions::new(&blobs, [subject]);
        assert_eq!(orphan_subject(&repo, &blobs, &sig), None);
        repo.revisions = Revisions::default();
        repo.dangling_layer_links.push(subject);
        assert_eq!(orphan_subject(&repo, &blobs, &sig), None);
    }
}
