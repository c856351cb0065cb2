//! Parsing manifests into what they reference.
//!
//! Only the fields that name other blobs are read: `config`, `layers[]` (with whether the layer has
//! `urls`, i.e. is foreign and may be absent by design), `manifests[]` (children of lists and indexes),
//! `blobs[]` (OCI artifact manifests), `subject` (OCI 1.1 referrers) and schema 1's `fsLayers[].blobSum`.
//! The kind comes from `mediaType` when present, else from the fields (OCI allows it to be absent).
//!
//! The entries of a list or index are not always manifests: BuildKit's registry cache lists its layer
//! blobs and an `application/vnd.buildkit.cacheconfig.v0` config there. As the registry does, an entry
//! is a child manifest only when its `mediaType` is a manifest or index type ([`Child::Manifest`]);
//! an entry of any other media type is a plain blob (kept, never parsed, never a problem); an entry
//! with no or an empty `mediaType` is [`Child::Untyped`]: the collector decides from the store whether
//! it is a manifest (see `catalog` and `mark`).
//! An unknown media type, or a reference that is not a valid sha256 digest, is an error: the collector
//! cannot prove what such a manifest keeps alive, so it must not sweep on a guess.

use crate::model::digest::Digest;
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
    /// Entries of a list or index that are (or may be) manifests; entries of other media types
    /// are in `blobs`.
    pub children: Vec<Child>,
    /// The manifest this one refers to (signatures, SBOMs).
    pub subject: Option<Digest>,
    /// Every descriptor that states a size (config, layers, blobs, children; not the subject), with
    /// that size: what the blob's data must measure.
    pub declared: Vec<(Digest, i64)>,
}

/// An entry of a list or index that may be a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// Its `mediaType` is a manifest or index type.
    Manifest(Digest),
    /// It has no (or an empty) `mediaType`: a manifest if the store holds it as one.
    Untyped(Digest),
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
    };
    let mut declare = |d: Digest, desc: &Descriptor| {
        if let Some(size) = desc.size {
            m.declared.push((d, size));
        }
        d
    };
    let mut blobs = Vec::new();
    let mut foreign = Vec::new();
    let mut children = Vec::new();
    if let Some(c) = &raw.config {
        blobs.push(declare(digest("config", &c.digest)?, c));
    }
    for l in raw.layers.iter().flatten() {
        let d = declare(digest("layers", &l.digest)?, l);
        if l.urls.as_ref().is_some_and(|u| !u.is_empty()) {
            foreign.push(d);
        } else {
            blobs.push(d);
        }
    }
    for b in raw.blobs.iter().flatten() {
        blobs.push(declare(digest("blobs", &b.digest)?, b));
    }
    for c in raw.manifests.iter().flatten() {
        let d = declare(digest("manifests", &c.digest)?, c);
        match c.media_type.as_deref() {
            None | Some("") => children.push(Child::Untyped(d)),
            Some(mt) if is_manifest_media_type(mt) => children.push(Child::Manifest(d)),
            Some(_) => blobs.push(d),
        }
    }
    m.blobs = blobs;
    m.foreign = foreign;
    m.children = children;
    for l in raw.fs_layers.iter().flatten() {
        m.blobs.push(digest("fsLayers", &l.blob_sum)?);
    }
    if let Some(s) = &raw.subject {
        m.subject = Some(digest("subject", &s.digest)?);
    }
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
                vec![Child::Untyped(dg('d')), Child::Untyped(dg('e'))]
            );
            assert!(m.blobs.is_empty());
        }
    }

    #[test]
    fn index_entries_are_children_only_when_typed_as_manifests() {
        // A BuildKit registry cache: layer blobs and a cache config listed as index entries, beside
        // a real platform manifest, a nested index, and an entry with an empty media type.
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10,
              "annotations":{{"buildkit/createdat":"2024-01-01T00:00:00Z"}}}},
            {{"mediaType":"application/vnd.buildkit.cacheconfig.v0","digest":"{}","size":11}},
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","size":12}},
            {{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{}","size":13}},
            {{"mediaType":"","digest":"{}","size":14}}]}}"#,
            d('1'),
            d('2'),
            d('3'),
            d('4'),
            d('5')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(m.blobs, vec![dg('1'), dg('2')]);
        assert_eq!(
            m.children,
            vec![
                Child::Manifest(dg('3')),
                Child::Manifest(dg('4')),
                Child::Untyped(dg('5'))
            ]
        );
        let sizes: Vec<i64> = m.declared.iter().map(|(_, s)| *s).collect();
        assert_eq!(sizes, vec![10, 11, 12, 13, 14]);
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
