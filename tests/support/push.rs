//! Pushes through the registry's HTTP API, as values: a blob upload, a cross-repository mount, a
//! manifest put by tag or digest, a manifest deleted by digest. A store is built by applying a list
//! of them, and a failing store is printed as that list (the pushes that rebuild it).

use super::oci::sha256;
use super::registry::Registry;
use serde_json::{Value, json};

/// One request (or upload) against the registry's API.
#[derive(Debug, Clone)]
pub enum Op {
    /// `POST` + `PUT` an upload of `data` into `repo`.
    Blob { repo: String, data: Vec<u8> },
    /// `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`.
    Mount {
        repo: String,
        from: String,
        digest: String,
    },
    /// `PUT /v2/<repo>/manifests/<reference>`.
    Manifest {
        repo: String,
        reference: String,
        media_type: String,
        body: Vec<u8>,
    },
    /// `DELETE /v2/<repo>/manifests/<digest>`.
    Delete { repo: String, digest: String },
}

impl Op {
    /// Sends it; `Err` with the registry's answer when it refuses.
    pub fn apply(&self, reg: &Registry) -> Result<(), String> {
        let refused = |what: &str, r: super::registry::Response| {
            Err(format!(
                "{what}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ))
        };
        match self {
            Op::Blob { repo, data } => {
                reg.push_blob(repo, data);
                Ok(())
            }
            Op::Mount { repo, from, digest } => {
                let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
                let r = reg.http("POST", &path, &[], &[]);
                if r.status == 201 {
                    Ok(())
                } else {
                    refused("mount", r)
                }
            }
            Op::Manifest {
                repo,
                reference,
                media_type,
                body,
            } => {
                let r = reg.put_manifest(repo, reference, media_type, body);
                if r.status == 201 {
                    Ok(())
                } else {
                    refused("put", r)
                }
            }
            Op::Delete { repo, digest } => {
                let path = format!("/v2/{repo}/manifests/{digest}");
                let r = reg.http("DELETE", &path, &[], &[]);
                if r.status == 202 {
                    Ok(())
                } else {
                    refused("delete", r)
                }
            }
        }
    }

    /// The request, as a line a person can replay.
    pub fn describe(&self) -> String {
        match self {
            Op::Blob { repo, data } => format!(
                "upload {} bytes to {repo} ({}){}",
                data.len(),
                sha256(data),
                if data.starts_with(b"{") {
                    format!(": {}", String::from_utf8_lossy(data))
                } else {
                    String::new()
                }
            ),
            Op::Mount { repo, from, digest } => format!("mount {digest} from {from} into {repo}"),
            Op::Manifest {
                repo,
                reference,
                media_type,
                body,
            } => format!(
                "PUT /v2/{repo}/manifests/{reference} ({media_type}, {}): {}",
                sha256(body),
                String::from_utf8_lossy(body)
            ),
            Op::Delete { repo, digest } => format!("DELETE /v2/{repo}/manifests/{digest}"),
        }
    }
}

/// A descriptor of something pushed.
#[derive(Debug, Clone)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Desc {
    pub fn of(media_type: &str, body: &[u8]) -> Desc {
        Desc {
            media_type: media_type.to_owned(),
            digest: sha256(body),
            size: body.len(),
        }
    }

    pub fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The ops that push one image (a gzip'd tar layer per seed, a config for `arch`) into `repo`, its
/// manifest put by digest; the manifest's descriptor.
pub fn image(repo: &str, seeds: &[&str], arch: &str, docker: bool, ops: &mut Vec<Op>) -> Desc {
    let (layer_type, config_type, mt) = if docker {
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.container.image.v1+json",
            DOCKER_MANIFEST,
        )
    } else {
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.config.v1+json",
            OCI_MANIFEST,
        )
    };
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for seed in seeds {
        let (gz, diff_id) = super::oci::layer(seed, 1024);
        layers.push(Desc::of(layer_type, &gz).json());
        diff_ids.push(diff_id);
        ops.push(Op::Blob {
            repo: repo.to_owned(),
            data: gz,
        });
    }
    let config = json!({"architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}})
    .to_string()
    .into_bytes();
    let config_desc = Desc::of(config_type, &config);
    ops.push(Op::Blob {
        repo: repo.to_owned(),
        data: config,
    });
    let body = json!({"schemaVersion": 2, "mediaType": mt,
        "config": config_desc.json(), "layers": layers});
    manifest(repo, None, mt, &body, ops)
}

/// The op that puts `body` into `repo` under `tag` (by its digest when `None`); its descriptor.
pub fn manifest(
    repo: &str,
    tag: Option<&str>,
    media_type: &str,
    body: &Value,
    ops: &mut Vec<Op>,
) -> Desc {
    let bytes = serde_json::to_vec(body).unwrap();
    let d = Desc::of(media_type, &bytes);
    ops.push(Op::Manifest {
        repo: repo.to_owned(),
        reference: tag.map_or_else(|| d.digest.clone(), str::to_owned),
        media_type: media_type.to_owned(),
        body: bytes,
    });
    d
}

/// Applies every op, asserting the registry takes each.
pub fn apply_all(reg: &Registry, ops: &[Op]) {
    for op in ops {
        if let Err(e) = op.apply(reg) {
            panic!("{}: {e}", op.describe());
        }
    }
}
