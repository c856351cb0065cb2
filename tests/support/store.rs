//! Stores written file by file, for shapes the registry will not produce (bad links, corrupt
//! manifests, referrers, schema 1) and for setting modification times.

use regsweep::model::digest::Digest;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A store under a temporary root.
pub struct HandStore {
    pub root: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Default for HandStore {
    fn default() -> Self {
        Self::new()
    }
}

impl HandStore {
    pub fn new() -> HandStore {
        let dir = tempfile::tempdir().unwrap();
        HandStore {
            root: dir.path().join("root"),
            _dir: Some(dir),
        }
    }

    /// Writes into an existing store (to plant faults in one the registry wrote).
    pub fn at(root: &Path) -> HandStore {
        HandStore {
            root: root.to_path_buf(),
            _dir: None,
        }
    }

    fn v2(&self) -> PathBuf {
        self.root.join("docker/registry/v2")
    }

    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.v2().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    pub fn blob_path(&self, d: &str) -> PathBuf {
        let hex = &d["sha256:".len()..];
        self.v2()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Writes blob data; returns its digest.
    pub fn blob(&self, data: &[u8]) -> String {
        let d = Digest::of(data).to_string();
        let hex = &d["sha256:".len()..];
        self.write(&format!("blobs/sha256/{}/{hex}/data", &hex[..2]), data);
        d
    }

    /// Sets a blob's modification time to `age` ago.
    pub fn age_blob(&self, d: &str, age: Duration) {
        let f = std::fs::File::options()
            .write(true)
            .open(self.blob_path(d))
            .unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    pub fn layer_link(&self, repo: &str, d: &str) {
        self.write(
            &format!("repositories/{repo}/_layers/sha256/{}/link", &d[7..]),
            d.as_bytes(),
        );
    }

    pub fn revision(&self, repo: &str, d: &str) {
        self.write(
            &format!(
                "repositories/{repo}/_manifests/revisions/sha256/{}/link",
                &d[7..]
            ),
            d.as_bytes(),
        );
    }

    pub fn tag(&self, repo: &str, tag: &str, d: &str) {
        self.write(
            &format!("repositories/{repo}/_manifests/tags/{tag}/current/link"),
            d.as_bytes(),
        );
        self.write(
            &format!(
                "repositories/{repo}/_manifests/tags/{tag}/index/sha256/{}/link",
                &d[7..]
            ),
            d.as_bytes(),
        );
    }

    /// An OCI image manifest over a config and layers (all written as blobs, linked in `repo`), with an
    /// optional subject; returns (manifest, blobs it references).
    pub fn image(&self, repo: &str, seed: &str, subject: Option<&str>) -> (String, Vec<String>) {
        let (config_data, layer_data) = (
            format!("{{\"config-of\":\"{seed}\"}}"),
            format!("layer of {seed}"),
        );
        let config = self.blob(config_data.as_bytes());
        let layer = self.blob(layer_data.as_bytes());
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_data.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_data.len()}],
        });
        if let Some(s) = subject {
            m["subject"] = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": s, "size": 1});
        }
        let manifest = self.blob(m.to_string().as_bytes());
        for d in [&config, &layer] {
            self.layer_link(repo, d);
        }
        self.revision(repo, &manifest);
        (manifest, vec![config, layer])
    }

    /// Ages every blob by `age` (so that a zero-grace and a default-grace run agree).
    pub fn age_all(&self, age: Duration) {
        for f in super::files_ending(&self.v2().join("blobs"), "/data") {
            let p: &Path = &self.v2().join("blobs").join(f);
            let file = std::fs::File::options().write(true).open(p).unwrap();
            file.set_modified(SystemTime::now() - age).unwrap();
        }
    }
}
