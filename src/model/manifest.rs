//! Parsing manifests into what they reference.
//!
//! Only the fields that name other blobs are read: `config`, `layers[]` (with whether the layer has
//! `urls`, i.e. is foreign and may be absent by design), `manifests[]` (children of lists and indexes),
//! `blobs[]` (OCI artifact manifests), `subject` (OCI 1.1 referrers) and schema 1's `fsLayers[].blobSum`.
//! The kind comes from `mediaType` when present, else from the fields (OCI allows it to be absent).
//!
//! The entries of a list or index are not always manifests (BuildKit's registry cache lists its layer
//! blobs and an `application/vnd.buildkit.cacheconfig.v0` config there), and what an entry's
//! `mediaType` says is not always true: the registry never checks it, distribution's own test helpers
//! describe children as `application/octet-stream`, `ocischema.FromDescriptors` writes `""` with size
//! 0, tools write vendor types. The registry serves an entry as a manifest whenever the repository
//! holds it as one, and its 3.x collector follows it then (`manifestService.Exists`). So an entry
//! whose `mediaType` is a manifest or index type is [`Child::Manifest`] (it must be one), and every
//! other entry, whatever it says, is [`Child::Undeclared`]: a manifest where the store holds it as one
//! in the repository being marked, a plain blob otherwise (see `catalog` and `mark`).
//!
//! A list or index entry that declares a size of 0 (or none) declares nothing: the registry accepts
//! it, so it is not a size to check the data against.
//! A reference by a sha512 (or sha384) digest is an alias ([`Aliased`]): the registry stores the
//! blob under its sha256 digest and resolves the alias per repository, through the alias link the
//! upload wrote; the mark resolves it the same way.
//!
//! An unknown media type, or a reference that is no digest of a known algorithm, is an error: the
//! collector cannot prove what such a manifest keeps alive, so it must not sweep on a guess.

use crate::model::digest::{AliasDigest, Digest};
use serde::Deserialize;

/// Manifests are small; the reference registry refuses ones over 4 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The kinds of manifest the collector follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    DockerV2,
    DockerList,
    OciManifest,
    OciIndex,
    OciArtifact,
    SchemaV1,
}

/// What a manifest references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub kind: ManifestKind,
    /// Config and layers (and artifact blobs): plain blobs.
    pub blobs: Vec<Digest>,
    /// Layers that carry `urls`: foreign layers, which may legitimately be absent from the store.
    pub foreign: Vec<Digest>,
    /// Entries of a list or index: every one, typed as a manifest or not.
    pub children: Vec<Child>,
    /// The manifest this one refers to (signatures, SBOMs).
    pub subject: Option<Digest>,
    /// Every descriptor that states a size (config, layers, blobs, children; not the subject), with
    /// that size: what the blob's data must measure. A list or index entry of size 0 states none.
    pub declared: Vec<(Digest, i64)>,
    /// The references by an alias (a sha512 or sha384 digest), in the manifest's order.
    pub aliased: Vec<Aliased>,
}

/// A reference by an alias digest, and what it is in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aliased {
    /// A config, layer or artifact blob.
    Blob(AliasDigest),
    /// A layer that carries `urls` (foreign).
    Foreign(AliasDigest),
    /// A list or index entry, typed as a manifest or not (see [`Child`]).
    Child(AliasDigest, bool),
    /// The subject.
    Subject(AliasDigest),
}

impl Aliased {
    pub fn alias(&self) -> &AliasDigest {
        match self {
            Aliased::Blob(a) | Aliased::Foreign(a) | Aliased::Child(a, _) | Aliased::Subject(a) => {
                a
            }
        }
    }
}

/// An entry of a list or index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// Its `mediaType` is a manifest or index type: it must be a manifest.
    Manifest(Digest),
    /// Its `mediaType` does not say it is a manifest (absent, empty, `application/octet-stream`, a
    /// vendor or a layer type): a manifest where the repository holds it as one, else a blob.
    Undeclared(Digest),
}

/// Whether a media type names a manifest or an index (what an index entry must say to be followed
/// as a child manifest).
pub fn is_manifest_media_type(media_type: &str) -> bool {
    kind_of_media_type(media_type).is_some()
}

fn kind_of_media_type(media_type: &str) -> Option<ManifestKind> {
    use ManifestKind::*;
    Some(match media_type {
        "application/vnd.docker.distribution.manifest.v2+json" => DockerV2,
        "application/vnd.docker.distribution.manifest.list.v2+json" => DockerList,
        "application/vnd.oci.image.manifest.v1+json" => OciManifest,
        "application/vnd.oci.image.index.v1+json" => OciIndex,
        "application/vnd.oci.artifact.manifest.v1+json" => OciArtifact,
        "application/vnd.docker.distribution.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v1+prettyjws" => SchemaV1,
        _ => return None,
    })
}

/// Why a manifest could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("not valid manifest JSON: {0}")]
    Json(String),
    #[error("unknown manifest media type {0:?}")]
    UnknownMediaType(String),
    #[error("no field that identifies a manifest kind (config, layers, manifests, fsLayers)")]
    Unrecognised,
    #[error("bad digest in {field}: {value:?}")]
    BadReference { field: &'static str, value: String },
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    urls: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct FsLayer {
    #[serde(rename = "blobSum")]
    blob_sum: String,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    blobs: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<Vec<FsLayer>>,
}

fn kind_of(raw: &Raw) -> Result<ManifestKind, ManifestError> {
    use ManifestKind::*;
    if let Some(mt) = raw.media_type.as_deref() {
        return kind_of_media_type(mt)
            .ok_or_else(|| ManifestError::UnknownMediaType(mt.to_owned()));
    }
    if raw.manifests.is_some() {
        Ok(OciIndex)
    } else if raw.config.is_some() || raw.layers.is_some() {
        Ok(OciManifest)
    } else if raw.schema_version == Some(1) && raw.fs_layers.is_some() {
        Ok(SchemaV1)
    } else {
        Err(ManifestError::Unrecognised)
    }
}

fn digest(field: &'static str, value: &str) -> Result<Digest, ManifestError> {
    Digest::parse(value).map_err(|_| ManifestError::BadReference {
        field,
        value: value.chars().take(100).collect(),
    })
}

/// A reference: by sha256, or by an alias digest.
enum Reference {
    Sha256(Digest),
    Alias(AliasDigest),
}

fn reference(field: &'static str, value: &str) -> Result<Reference, ManifestError> {
    match AliasDigest::parse(value) {
        Some(a) => Ok(Reference::Alias(a)),
        None => digest(field, value).map(Reference::Sha256),
    }
}

/// Parses a manifest's bytes.
pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let kind = kind_of(&raw)?;
    let mut m = Manifest {
        kind,
        blobs: Vec::new(),
        foreign: Vec::new(),
        children: Vec::new(),
        subject: None,
        declared: Vec::new(),
        aliased: Vec::new(),
    };
    // `entry`: a list or index entry, whose size 0 declares nothing. A reference by an alias
    // declares nothing checkable (the data's sha256 is learned through the repository).
    let mut declared = Vec::new();
    let mut declare = |d: Digest, desc: &Descriptor, entry: bool| {
        if let Some(size) = desc.size.filter(|&s| !(entry && s == 0)) {
            declared.push((d, size));
        }
        d
    };
    if let Some(c) = &raw.config {
        match reference("config", &c.digest)? {
            Reference::Sha256(d) => m.blobs.push(declare(d, c, false)),
            Reference::Alias(a) => m.aliased.push(Aliased::Blob(a)),
        }
    }
    for l in raw.layers.iter().flatten() {
        let foreign = l.urls.as_ref().is_some_and(|u| !u.is_empty());
        match (reference("layers", &l.digest)?, foreign) {
            (Reference::Sha256(d), true) => m.foreign.push(declare(d, l, false)),
            (Reference::Sha256(d), false) => m.blobs.push(declare(d, l, false)),
            (Reference::Alias(a), true) => m.aliased.push(Aliased::Foreign(a)),
            (Reference::Alias(a), false) => m.aliased.push(Aliased::Blob(a)),
        }
    }
    for b in raw.blobs.iter().flatten() {
        match reference("blobs", &b.digest)? {
            Reference::Sha256(d) => m.blobs.push(declare(d, b, false)),
            Reference::Alias(a) => m.aliased.push(Aliased::Blob(a)),
        }
    }
    for c in raw.manifests.iter().flatten() {
        let typed = c.media_type.as_deref().is_some_and(is_manifest_media_type);
        match reference("manifests", &c.digest)? {
            Reference::Sha256(d) => {
                let d = declare(d, c, true);
                m.children.push(if typed {
                    Child::Manifest(d)
                } else {
                    Child::Undeclared(d)
                });
            }
            Reference::Alias(a) => m.aliased.push(Aliased::Child(a, typed)),
        }
    }
    for l in raw.fs_layers.iter().flatten() {
        m.blobs.push(digest("fsLayers", &l.blob_sum)?);
    }
    if let Some(s) = &raw.subject {
        match reference("subject", &s.digest)? {
            Reference::Sha256(d) => m.subject = Some(d),
            Reference::Alias(a) => m.aliased.push(Aliased::Subject(a)),
        }
    }
    m.declared = declared;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn dg(c: char) -> Digest {
        Digest::parse(&d(c)).unwrap()
    }

    #[test]
    fn docker_schema2_references_config_and_layers() {
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{{"mediaType":"x","size":1,"digest":"{}"}},
            "layers":[{{"size":2,"digest":"{}"}},{{"size":3,"digest":"{}","urls":["https://x"]}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::DockerV2);
        assert_eq!(m.blobs, vec![dg('a'), dg('b')]);
        assert_eq!(m.foreign, vec![dg('c')]);
        assert!(m.children.is_empty());
        assert_eq!(m.declared, vec![(dg('a'), 1), (dg('b'), 2), (dg('c'), 3)]);
    }

    #[test]
    fn oci_manifest_without_media_type_and_with_subject() {
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}"}},"layers":[],"subject":{{"digest":"{}"}}}}"#,
            d('1'),
            d('2')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        assert_eq!(m.blobs, vec![dg('1')]);
        assert_eq!(m.subject, Some(dg('2')));
    }

    #[test]
    fn lists_and_indexes_reference_their_children() {
        for (mt, kind) in [
            (
                "\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\",",
                ManifestKind::DockerList,
            ),
            (
                "\"mediaType\":\"application/vnd.oci.image.index.v1+json\",",
                ManifestKind::OciIndex,
            ),
            ("", ManifestKind::OciIndex),
        ] {
            let j = format!(
                r#"{{"schemaVersion":2,{mt}"manifests":[{{"digest":"{}","platform":{{"os":"linux"}}}},{{"digest":"{}"}}]}}"#,
                d('d'),
                d('e')
            );
            let m = parse(j.as_bytes()).unwrap();
            assert_eq!(m.kind, kind);
            assert_eq!(
                m.children,
                vec![Child::Undeclared(dg('d')), Child::Undeclared(dg('e'))]
            );
            assert!(m.blobs.is_empty());
        }
    }

    #[test]
    fn index_entries_are_manifests_when_typed_so_and_undeclared_otherwise() {
        // A BuildKit registry cache (layer blobs and a cache config as entries) beside a platform
        // manifest, a nested index, an empty media type, `application/octet-stream` (distribution's
        // test helpers) and a vendor type: only the media type decides which must be manifests;
        // the store decides what the others are.
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10,
              "annotations":{{"buildkit/createdat":"2024-01-01T00:00:00Z"}}}},
            {{"mediaType":"application/vnd.buildkit.cacheconfig.v0","digest":"{}","size":11}},
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","size":12}},
            {{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{}","size":13}},
            {{"mediaType":"","digest":"{}","size":14}},
            {{"mediaType":"application/octet-stream","digest":"{}","size":15}},
            {{"mediaType":"application/vnd.example.thing+json","digest":"{}","size":16}}]}}"#,
            d('1'),
            d('2'),
            d('3'),
            d('4'),
            d('5'),
            d('6'),
            d('7')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert!(m.blobs.is_empty(), "entries are children, not blobs");
        assert_eq!(
            m.children,
            vec![
                Child::Undeclared(dg('1')),
                Child::Undeclared(dg('2')),
                Child::Manifest(dg('3')),
                Child::Manifest(dg('4')),
                Child::Undeclared(dg('5')),
                Child::Undeclared(dg('6')),
                Child::Undeclared(dg('7'))
            ]
        );
        let sizes: Vec<i64> = m.declared.iter().map(|(_, s)| *s).collect();
        assert_eq!(sizes, vec![10, 11, 12, 13, 14, 15, 16]);
    }

    #[test]
    fn an_entry_of_size_zero_or_none_declares_no_size() {
        // What `ocischema.FromDescriptors` writes when given digests only.
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"","digest":"{}","size":0}},{{"digest":"{}"}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":7}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(m.declared, vec![(dg('c'), 7)]);
        assert_eq!(m.children.len(), 3);
        // A layer that says 0 bytes still says something (an empty layer exists).
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":2}},"layers":[{{"digest":"{}","size":0}}]}}"#,
            d('d'),
            d('e')
        );
        assert_eq!(
            parse(j.as_bytes()).unwrap().declared,
            vec![(dg('d'), 2), (dg('e'), 0)]
        );
    }

    #[test]
    fn schema1_references_fs_layers() {
        let j = format!(
            r#"{{"schemaVersion":1,"name":"x","tag":"t","architecture":"amd64",
            "fsLayers":[{{"blobSum":"{}"}},{{"blobSum":"{}"}}],"history":[],"signatures":[]}}"#,
            d('f'),
            d('f')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::SchemaV1);
        assert_eq!(m.blobs, vec![dg('f'), dg('f')]);
    }

    #[test]
    fn references_by_sha512_are_aliases() {
        let a = format!("sha512:{}", "ab".repeat(64));
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{a}","size":7}},
            {{"digest":"{}","size":3}}],"subject":{{"digest":"{a}"}}}}"#,
            d('c')
        );
        let m = parse(j.as_bytes()).unwrap();
        let alias = AliasDigest::parse(&a).unwrap();
        assert_eq!(
            m.aliased,
            vec![
                Aliased::Child(alias.clone(), true),
                Aliased::Subject(alias.clone())
            ]
        );
        assert_eq!(m.children, vec![Child::Undeclared(dg('c'))]);
        assert_eq!(m.declared, vec![(dg('c'), 3)]);
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{a}","size":2}},"layers":[{{"digest":"{a}","urls":["u"]}},{{"digest":"{}"}}]}}"#,
            d('e')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(
            m.aliased,
            vec![Aliased::Blob(alias.clone()), Aliased::Foreign(alias)]
        );
        assert_eq!(m.blobs, vec![dg('e')]);
        // Not a digest of a known algorithm, or not its length: refused.
        for bad in [
            "sha512:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "SHA512:ab",
        ] {
            let j = format!(r#"{{"config":{{"digest":"{bad}"}},"layers":[]}}"#);
            assert!(parse(j.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_prove() {
        assert!(matches!(parse(b"{not json"), Err(ManifestError::Json(_))));
        assert!(matches!(parse(b""), Err(ManifestError::Json(_))));
        assert_eq!(
            parse(br#"{"mediaType":"application/x-unknown","layers":[]}"#),
            Err(ManifestError::UnknownMediaType(
                "application/x-unknown".into()
            ))
        );
        assert_eq!(
            parse(br#"{"schemaVersion":2}"#),
            Err(ManifestError::Unrecognised)
        );
        assert!(matches!(
            parse(br#"{"config":{"digest":"sha256:short"},"layers":[]}"#),
            Err(ManifestError::BadReference {
                field: "config",
                ..
            })
        ));
    }
}
