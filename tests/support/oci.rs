//! Writing OCI image layouts for skopeo to push: real gzip'd tar layers, configs with diff_ids,
//! manifests and indexes, all content-addressed.

use flate2::{Compression, write::GzEncoder};
use std::io::Write;
use std::path::Path;

pub fn sha256(data: &[u8]) -> String {
    regsweep::model::digest::Digest::of(data).to_string()
}

fn put_blob(dir: &Path, data: &[u8]) -> (String, usize) {
    let d = sha256(data);
    let path = dir.join("blobs/sha256").join(&d["sha256:".len()..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    (d, data.len())
}

/// A gzip'd tar holding one file whose content derives from `seed`; returns (gz bytes, diff id).
pub fn layer(seed: &str, size: usize) -> (Vec<u8>, String) {
    let content: Vec<u8> = seed.bytes().cycle().take(size).collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, format!("file-{seed}"), content.as_slice())
        .unwrap();
    let raw = tar.into_inner().unwrap();
    let diff_id = sha256(&raw);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// The digests of one image written to a layout.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: String,
    pub manifest_size: usize,
    pub config: String,
    pub layers: Vec<String>,
}

/// Writes an image's blobs (not its index.json entry) into the layout at `dir`.
pub fn write_image(dir: &Path, arch: &str, layer_seeds: &[&str]) -> Image {
    let layers: Vec<(Vec<u8>, String)> = layer_seeds.iter().map(|s| layer(s, 4096)).collect();
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.1.as_str()).collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}
    });
    let (config_digest, config_size) = put_blob(dir, config.to_string().as_bytes());
    let mut layer_descs = Vec::new();
    let mut layer_digests = Vec::new();
    for (gz, _) in &layers {
        let (d, size) = put_blob(dir, gz);
        layer_descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size
        }));
        layer_digests.push(d);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layer_descs,
    });
    let (m, size) = put_blob(dir, manifest.to_string().as_bytes());
    Image {
        manifest: m,
        manifest_size: size,
        config: config_digest,
        layers: layer_digests,
    }
}

fn write_index_json(dir: &Path, media_type: &str, digest: &str, size: usize) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// A layout at `dir` holding one single-platform image, referenced as `latest`.
pub fn single(dir: &Path, layer_seeds: &[&str]) -> Image {
    let img = write_image(dir, "amd64", layer_seeds);
    write_index_json(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &img.manifest,
        img.manifest_size,
    );
    img
}

/// A layout at `dir` holding a multi-platform index (referenced as `latest`) over one image per
/// architecture; returns the index digest and the platform images.
pub fn multi(dir: &Path, arches: &[(&str, &[&str])]) -> (String, Vec<Image>) {
    let images: Vec<Image> = arches
        .iter()
        .map(|(arch, seeds)| write_image(dir, arch, seeds))
        .collect();
    let manifests: Vec<serde_json::Value> = arches
        .iter()
        .zip(&images)
        .map(|((arch, _), img)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": img.manifest, "size": img.manifest_size,
                "platform": {"architecture": arch, "os": "linux"}
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests
    });
    let (d, size) = put_blob(dir, index.to_string().as_bytes());
    write_index_json(dir, "application/vnd.oci.image.index.v1+json", &d, size);
    (d, images)
}
