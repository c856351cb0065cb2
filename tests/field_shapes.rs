//! Stores that real CI systems write, pushed through the real registry: buildx images with
//! attestations, BuildKit registry caches (OCI index, Docker list and image-manifest forms), cosign
//! signature and attestation tags (re-signed, moved, orphaned), OCI 1.1 artifacts with
//! `artifactType`, the empty config and `subject` (untagged, chained, on a platform child), the
//! referrers tag fallback, helm charts, Windows foreign layers, zstd layers, nested indexes, an index
//! whose child is linked only as a blob, Docker manifest lists, `data` fields and annotations,
//! manifests and indexes with no `mediaType`, and an index whose child was deleted through the API;
//! with the usual garbage mixed in (a tag overwritten, manifests deleted, an orphan blob).
//!
//! The expected plans come from the test's own model of the registry's rule, read from the files
//! (it shares no code with regsweep). After `prune-tags --orphan-referrer-tags` and `gc -m --delete`,
//! the registry is restarted and every tag, and everything it names that the registry serves, is
//! fetched and hashed.

mod support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use support::registry::Registry;
use support::{PlanSets, diff, oci, regsweep, regsweep_json, regsweep_plan, run};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A descriptor of something pushed.
#[derive(Clone)]
struct Desc {
    media_type: String,
    digest: String,
    size: usize,
}

impl Desc {
    /// The descriptor of `body`, a document of `media_type`.
    fn of(media_type: &str, body: &[u8]) -> Desc {
        Desc {
            media_type: media_type.into(),
            digest: oci::sha256(body),
            size: body.len(),
        }
    }

    /// The descriptor a JSON descriptor (an index entry) gives.
    fn from_json(v: &Value) -> Desc {
        Desc {
            media_type: v["mediaType"].as_str().unwrap().into(),
            digest: v["digest"].as_str().unwrap().into(),
            size: v["size"].as_u64().unwrap() as usize,
        }
    }

    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }

    /// The descriptor with extra fields (platform, annotations, artifactType…).
    fn with(&self, extra: Value) -> Value {
        let mut v = self.json();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn hex(&self) -> &str {
        &self.digest["sha256:".len()..]
    }
}

struct Pusher<'a> {
    reg: &'a Registry,
}

impl Pusher<'_> {
    fn blob(&self, repo: &str, media_type: &str, data: &[u8]) -> Desc {
        let d = Desc::of(media_type, data);
        assert_eq!(self.reg.push_blob(repo, data), d.digest);
        d
    }

    /// Pushes a JSON document as a blob.
    fn json_blob(&self, repo: &str, media_type: &str, doc: Value) -> Desc {
        self.blob(repo, media_type, doc.to_string().as_bytes())
    }

    /// Puts a manifest (by tag, or by its digest when `tag` is None); asserts the registry took it.
    fn manifest(&self, repo: &str, tag: Option<&str>, media_type: &str, body: &Value) -> Desc {
        let bytes = serde_json::to_vec_pretty(body).unwrap();
        let d = Desc::of(media_type, &bytes);
        let r = self
            .reg
            .put_manifest(repo, tag.unwrap_or(&d.digest), media_type, &bytes);
        assert_eq!(
            r.status,
            201,
            "PUT {repo}:{tag:?} ({media_type}) refused: {}",
            String::from_utf8_lossy(&r.body)
        );
        d
    }

    fn tag(&self, repo: &str, tag: &str, d: &Desc, body: &Value) {
        let got = self.manifest(repo, Some(tag), &d.media_type, body);
        assert_eq!(got.digest, d.digest);
    }

    /// A gzip'd tar layer and a config, pushed; an image manifest (OCI or Docker) put by digest.
    fn image(&self, repo: &str, seed: &str, arch: &str, docker: bool) -> (Desc, Value) {
        let (gz, diff_id) = oci::layer(seed, 2048);
        let layer_type = if docker {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else {
            OCI_LAYER
        };
        let layer = self.blob(repo, layer_type, &gz);
        let config = json!({"architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}});
        let config_type = if docker {
            "application/vnd.docker.container.image.v1+json"
        } else {
            "application/vnd.oci.image.config.v1+json"
        };
        let config = self.blob(repo, config_type, config.to_string().as_bytes());
        let mt = if docker {
            DOCKER_MANIFEST
        } else {
            OCI_MANIFEST
        };
        let body = json!({"schemaVersion": 2, "mediaType": mt,
            "config": config.json(), "layers": [layer.json()]});
        (self.manifest(repo, None, mt, &body), body)
    }

    fn platform(&self, repo: &str, seed: &str, arch: &str, docker: bool) -> Value {
        let (d, _) = self.image(repo, seed, arch, docker);
        d.with(json!({"platform": {"architecture": arch, "os": "linux"}}))
    }

    /// An OCI artifact: empty config, one layer, `artifactType`, optional subject; put by digest.
    fn artifact(
        &self,
        repo: &str,
        artifact_type: &str,
        content: &str,
        subject: Option<&Desc>,
    ) -> Desc {
        let empty = self.blob(repo, EMPTY, b"{}");
        let layer = self.blob(repo, "application/spdx+json", content.as_bytes());
        let mut body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type, "config": empty.json(),
            "layers": [layer.json()],
            "annotations": {"org.opencontainers.image.created": "2026-11-01T00:00:00Z"}});
        if let Some(s) = subject {
            body["subject"] = s.json();
        }
        self.manifest(repo, None, OCI_MANIFEST, &body)
    }

    /// A buildx attestation manifest for `of`: in-toto layers, an index entry for it.
    fn attestation(&self, repo: &str, of: &Desc, seed: &str) -> Value {
        let config = self.json_blob(
            repo,
            "application/vnd.oci.image.config.v1+json",
            json!({"architecture": "unknown", "os": "unknown", "config": {},
                "rootfs": {"type": "layers", "diff_ids": []}}),
        );
        let prov = self.json_blob(
            repo,
            "application/vnd.in-toto+json",
            json!({"_type": "https://in-toto.io/Statement/v0.1", "seed": seed,
                "predicateType": "https://slsa.dev/provenance/v0.2",
                "subject": [{"name": "x", "digest": {"sha256": of.hex()}}]}),
        );
        let sbom = self.json_blob(
            repo,
            "application/vnd.in-toto+json",
            json!({"_type": "https://in-toto.io/Statement/v0.1", "seed": seed,
                "predicateType": "https://spdx.dev/Document"}),
        );
        let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.json(),
        "layers": [
            prov.with(json!({"annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}})),
            sbom.with(json!({"annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}})),
        ]});
        let d = self.manifest(repo, None, OCI_MANIFEST, &body);
        d.with(
            json!({"platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.digest": of.digest,
                            "vnd.docker.reference.type": "attestation-manifest"}}),
        )
    }

    /// A buildx build: an OCI index of two platforms and their attestations, tagged.
    fn buildx(&self, repo: &str, tag: &str, seed: &str) -> Desc {
        let amd = self.platform(repo, &format!("{seed}-amd64"), "amd64", false);
        let arm = self.platform(repo, &format!("{seed}-arm64"), "arm64", false);
        let att_amd = self.attestation(repo, &Desc::from_json(&amd), &format!("{seed}-amd64"));
        let att_arm = self.attestation(repo, &Desc::from_json(&arm), &format!("{seed}-arm64"));
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [amd, arm, att_amd, att_arm]});
        self.manifest(repo, Some(tag), OCI_INDEX, &body)
    }

    /// A BuildKit registry cache in its index form (OCI index or Docker list): layer blobs and the
    /// cache config as entries.
    fn cache_index(&self, repo: &str, tag: &str, seed: &str, docker: bool) -> Desc {
        let layer_type = if docker {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else {
            OCI_LAYER
        };
        let mut entries = Vec::new();
        let mut records = Vec::new();
        for i in 0..3 {
            let (gz, diff_id) = oci::layer(&format!("{seed}-cache-{i}"), 1024);
            let l = self.blob(repo, layer_type, &gz);
            records.push(json!({"blob": l.digest, "parent": i - 1}));
            entries.push(l.with(json!({"annotations": {
                "buildkit/createdat": "2026-11-01T00:00:00Z",
                "containerd.io/uncompressed": diff_id}})));
        }
        let config = self.json_blob(
            repo,
            CACHE_CONFIG,
            json!({"layers": records, "records": [{"digest": "sha256:0"}], "seed": seed}),
        );
        entries.push(config.json());
        let mt = if docker { DOCKER_LIST } else { OCI_INDEX };
        let body = json!({"schemaVersion": 2, "mediaType": mt, "manifests": entries});
        self.manifest(repo, Some(tag), mt, &body)
    }

    /// BuildKit's `image-manifest=true` cache: an image manifest whose config is the cache config.
    fn cache_manifest(&self, repo: &str, tag: &str, seed: &str) -> Desc {
        let (gz, _) = oci::layer(&format!("{seed}-imgcache"), 1024);
        let l = self.blob(repo, OCI_LAYER, &gz);
        let config = self.json_blob(
            repo,
            CACHE_CONFIG,
            json!({"layers": [{"blob": l.digest, "parent": -1}], "seed": seed}),
        );
        let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config.json(), "layers": [l.json()]});
        self.manifest(repo, Some(tag), OCI_MANIFEST, &body)
    }

    /// A cosign signature (`.sig`) or attestation (`.att`) tag for `of`, with `n` signatures.
    fn cosign(&self, repo: &str, of: &Desc, suffix: &str, seeds: &[&str]) -> Desc {
        let config = self.json_blob(
            repo,
            "application/vnd.oci.image.config.v1+json",
            json!({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers",
                "diff_ids": []}, "seeds": seeds}),
        );
        let layers: Vec<Value> = seeds
            .iter()
            .map(|s| {
                if suffix == ".sig" {
                    let payload = json!({"critical": {"image": {"docker-manifest-digest": of.digest},
                        "type": "cosign container image signature"}, "optional": {"seed": s}});
                    self.blob(
                        repo,
                        "application/vnd.dev.cosign.simplesigning.v1+json",
                        payload.to_string().as_bytes(),
                    )
                    .with(json!({"annotations": {"dev.cosignproject.cosign/signature": format!("MEUC{s}")}}))
                } else {
                    let payload = json!({"payloadType": "application/vnd.in-toto+json",
                        "payload": format!("eyJ{s}"), "signatures": [{"sig": s}]});
                    self.blob(
                        repo,
                        "application/vnd.dsse.envelope.v1+json",
                        payload.to_string().as_bytes(),
                    )
                    .with(json!({"annotations": {"predicateType": "https://slsa.dev/provenance/v0.2"}}))
                }
            })
            .collect();
        let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config.json(), "layers": layers});
        let tag = format!("sha256-{}{suffix}", of.hex());
        self.manifest(repo, Some(&tag), OCI_MANIFEST, &body)
    }

    /// The OCI 1.1 referrers tag fallback: `sha256-<hex>` holding an index of `of`'s referrers.
    fn referrers_tag(&self, repo: &str, of: &Desc, referrers: &[(Desc, &str)]) -> Desc {
        let manifests: Vec<Value> = referrers
            .iter()
            .map(|(d, t)| d.with(json!({"artifactType": t})))
            .collect();
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        let tag = format!("sha256-{}", of.hex());
        self.manifest(repo, Some(&tag), OCI_INDEX, &body)
    }

    /// A helm chart; `media_type_field` says whether the manifest names its media type.
    fn helm(&self, repo: &str, version: &str, media_type_field: bool) -> Desc {
        let config = self.json_blob(
            repo,
            "application/vnd.cncf.helm.config.v1+json",
            json!({"name": "mychart", "version": version, "apiVersion": "v2"}),
        );
        let (tgz, _) = oci::layer(&format!("chart-{version}"), 1500);
        let chart = self.blob(
            repo,
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            &tgz,
        );
        let prov = self.blob(
            repo,
            "application/vnd.cncf.helm.chart.provenance.v1.prov",
            format!("-----BEGIN PGP SIGNED MESSAGE-----\nname: mychart\nversion: {version}\n")
                .as_bytes(),
        );
        let mut body = json!({"schemaVersion": 2, "config": config.json(),
            "layers": [chart.json(), prov.json()],
            "annotations": {"org.opencontainers.image.title": "mychart"}});
        if media_type_field {
            body["mediaType"] = json!(OCI_MANIFEST);
        }
        self.manifest(repo, Some(version), OCI_MANIFEST, &body)
    }
}

// ---------------------------------------------------------------------------------------------
// The test's own model of the registry's rule, read from the store's files.

struct Model {
    /// hex → size of every blob's data.
    blobs: BTreeMap<String, u64>,
    repos: BTreeMap<String, RepoFiles>,
}

#[derive(Default)]
struct RepoFiles {
    revisions: BTreeSet<String>,
    layers: BTreeSet<String>,
    /// tag → hex of its current link.
    tags: BTreeMap<String, String>,
}

const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

fn read_dir_names(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Model {
    fn read(root: &Path) -> Model {
        let v2 = root.join("docker/registry/v2");
        let mut blobs = BTreeMap::new();
        for shard in read_dir_names(&v2.join("blobs/sha256")) {
            for hex in read_dir_names(&v2.join("blobs/sha256").join(&shard)) {
                let data = v2.join("blobs/sha256").join(&shard).join(&hex).join("data");
                if let Ok(m) = std::fs::metadata(&data) {
                    blobs.insert(hex, m.len());
                }
            }
        }
        let mut repos = BTreeMap::new();
        let repo_root = v2.join("repositories");
        for f in support::files_ending(&repo_root, "/link") {
            let path = repo_root.join(&f);
            let parts: Vec<&str> = f.split('/').collect();
            let at = |name: &str| parts.iter().position(|p| *p == name);
            let (name, rest) = if let Some(i) = at("_manifests") {
                (parts[..i].join("/"), &parts[i..])
            } else if let Some(i) = at("_layers") {
                (parts[..i].join("/"), &parts[i..])
            } else {
                continue;
            };
            let r: &mut RepoFiles = repos.entry(name).or_default();
            match rest {
                ["_layers", "sha256", hex, "link"] => {
                    r.layers.insert(hex.to_string());
                }
                ["_manifests", "revisions", "sha256", hex, "link"] => {
                    r.revisions.insert(hex.to_string());
                }
                ["_manifests", "tags", tag, "current", "link"] => {
                    let content = std::fs::read_to_string(&path).unwrap();
                    r.tags
                        .insert(tag.to_string(), content["sha256:".len()..].to_owned());
                }
                _ => {}
            }
        }
        Model { blobs, repos }
    }

    fn json(&self, root: &Path, hex: &str) -> Option<Value> {
        if *self.blobs.get(hex)? > 4 << 20 {
            return None;
        }
        let p = root.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ));
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    }

    /// What reaching manifest `hex` in `repo` keeps: (blobs marked, entries followed as manifests,
    /// subject).
    fn refs(
        &self,
        root: &Path,
        repo: &RepoFiles,
        hex: &str,
    ) -> (Vec<String>, Vec<String>, Option<String>) {
        let Some(m) = self.json(root, hex) else {
            return (vec![], vec![], None);
        };
        let strip = |v: &Value| v["digest"].as_str().unwrap()["sha256:".len()..].to_owned();
        let mut blobs = Vec::new();
        let mut follow = Vec::new();
        if m.get("config").is_some() {
            blobs.push(strip(&m["config"]));
        }
        for key in ["layers", "blobs"] {
            for l in m[key].as_array().into_iter().flatten() {
                blobs.push(strip(l));
            }
        }
        for e in m["manifests"].as_array().into_iter().flatten() {
            let d = strip(e);
            blobs.push(d.clone());
            let mt = e["mediaType"].as_str().unwrap_or("");
            let linked = repo.revisions.contains(&d) || repo.layers.contains(&d);
            // The registry's rule: typed as a manifest, or whatever the entry says, data that is
            // one (a manifest's layers and an index's entries are descriptors with digests).
            let descriptors = |c: &Value, key: &str| {
                c[key]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|d| d["digest"].is_string()))
            };
            let is_manifest = MANIFEST_TYPES.contains(&mt)
                || self.json(root, &d).is_some_and(|c| {
                    c["schemaVersion"] == 2
                        && (descriptors(&c, "layers") || descriptors(&c, "manifests"))
                });
            if linked && is_manifest {
                follow.push(d);
            }
        }
        let subject = m.get("subject").map(strip);
        (blobs, follow, subject)
    }

    /// Marks from `roots` in `repo`; with `referrers`, revisions whose subject is kept are kept.
    fn reach(
        &self,
        root: &Path,
        repo: &RepoFiles,
        roots: Vec<String>,
        referrers: bool,
        kept: &mut BTreeSet<String>,
        marked: &mut BTreeSet<String>,
    ) {
        let mut stack = roots;
        loop {
            while let Some(m) = stack.pop() {
                if !kept.insert(m.clone()) {
                    continue;
                }
                marked.insert(m.clone());
                let (blobs, follow, _) = self.refs(root, repo, &m);
                marked.extend(blobs);
                stack.extend(follow);
            }
            if !referrers {
                return;
            }
            for rev in &repo.revisions {
                let subject = self.refs(root, repo, rev).2;
                if !kept.contains(rev) && subject.is_some_and(|s| kept.contains(&s)) {
                    stack.push(rev.clone());
                }
            }
            if stack.is_empty() {
                return;
            }
        }
    }

    /// The plan regsweep must make (grace 0).
    fn plan(&self, root: &Path, untagged: bool) -> PlanSets {
        let mut marked = BTreeSet::new();
        let mut sets = PlanSets::default();
        for (name, r) in &self.repos {
            let mut kept = BTreeSet::new();
            let mut roots: Vec<String> = r.tags.values().cloned().collect();
            if !untagged {
                roots.extend(r.revisions.iter().cloned());
            }
            self.reach(root, r, roots, untagged, &mut kept, &mut marked);
            if untagged {
                for rev in r.revisions.difference(&kept) {
                    sets.manifests
                        .insert((name.clone(), format!("sha256:{rev}")));
                }
            }
        }
        for hex in self.blobs.keys().filter(|h| !marked.contains(*h)) {
            sets.blobs.insert(format!("sha256:{hex}"));
        }
        for (name, r) in &self.repos {
            for hex in r.layers.iter().filter(|h| !marked.contains(*h)) {
                sets.layer_links
                    .insert((name.clone(), format!("sha256:{hex}")));
            }
        }
        sets
    }

    /// Referrer tags whose subject the repository no longer links.
    fn orphan_referrer_tags(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (name, r) in &self.repos {
            for tag in r.tags.keys() {
                let Some(rest) = tag.strip_prefix("sha256-") else {
                    continue;
                };
                let hex = rest.split('.').next().unwrap();
                if !r.revisions.contains(hex) && !r.layers.contains(hex) {
                    out.insert((name.clone(), tag.clone()));
                }
            }
        }
        out
    }
}

fn assert_plan(root: &Path, args: &[&str], expected: &PlanSets, what: &str) {
    let (ours, _) = regsweep_plan(root, args);
    assert_eq!(
        ours.blobs,
        expected.blobs,
        "{what}: blobs\n{}",
        diff(&ours.blobs, &expected.blobs)
    );
    assert_eq!(
        ours.manifests,
        expected.manifests,
        "{what}: manifests\n{}",
        diff(&ours.manifests, &expected.manifests)
    );
    assert_eq!(
        ours.layer_links,
        expected.layer_links,
        "{what}: layer links\n{}",
        diff(&ours.layer_links, &expected.layer_links)
    );
}

/// Fetches `reference` of `repo` as a manifest, checks it hashes to its digest, and fetches (and
/// hashes) everything it names that the model says the registry serves from `repo`; returns the
/// number of objects checked.
fn verify_served(reg: &Registry, model: &Model, root: &Path, repo: &str, reference: &str) -> usize {
    let r = reg.get_manifest(repo, reference);
    assert_eq!(r.status, 200, "GET {repo}:{reference} after the sweep");
    let digest = r.header("docker-content-digest").unwrap().to_owned();
    assert_eq!(
        oci::sha256(&r.body),
        digest,
        "{repo}:{reference} hashes to its digest"
    );
    let files = &model.repos[repo];
    let (blobs, follow, _) = model.refs(root, files, &digest["sha256:".len()..]);
    let m: Value = serde_json::from_slice(&r.body).unwrap();
    let foreign: BTreeSet<String> = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l.get("urls").is_some())
        .map(|l| l["digest"].as_str().unwrap()["sha256:".len()..].to_owned())
        .collect();
    let mut checked = 1;
    for b in blobs {
        if follow.contains(&b) || foreign.contains(&b) {
            continue;
        }
        let d = format!("sha256:{b}");
        if files.layers.contains(&b) {
            let r = reg.get_blob(repo, &d);
            assert_eq!(r.status, 200, "GET blob {repo}@{d} (named by {reference})");
            assert_eq!(oci::sha256(&r.body), d, "blob {d} hashes to its digest");
        } else {
            // An entry the repository does not serve (a child deleted through the API): its own
            // data is kept, as the reference keeps it.
            let data = root.join(format!(
                "docker/registry/v2/blobs/sha256/{}/{b}/data",
                &b[..2]
            ));
            assert!(
                data.exists(),
                "{d}, named by {repo}:{reference}, kept on disk"
            );
        }
        checked += 1;
    }
    for child in follow {
        checked += verify_served(reg, model, root, repo, &format!("sha256:{child}"));
    }
    checked
}

#[test]
fn every_shape_that_todays_clients_push_is_kept_whole_and_its_garbage_freed() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n";
    let reg = Registry::start_extra(dir.path(), extra);
    let p = Pusher { reg: &reg };

    // buildx with provenance and SBOM attestations; the tag overwritten by a second build.
    p.buildx("ci/app", "latest", "build1");
    p.buildx("ci/app", "latest", "build2");
    p.blob("ci/app", OCI_LAYER, b"an orphan blob pushed on its own");

    // BuildKit registry caches: OCI index, Docker list, image manifest; the OCI one overwritten.
    p.cache_index("ci/cache", "buildcache", "c1", false);
    p.cache_index("ci/cache", "buildcache", "c2", false);
    p.cache_index("ci/cache", "buildcache-docker", "c3", true);
    p.cache_manifest("ci/cache", "buildcache-img", "c4");

    // cosign: image v1 signed and attested, re-signed; then v1 moves to a new image, the old one
    // is deleted through the API (its .sig/.att tags become orphans), and the new one is signed.
    let (old, old_body) = p.image("signed/app", "signed-old", "amd64", false);
    p.tag("signed/app", "v1", &old, &old_body);
    p.cosign("signed/app", &old, ".sig", &["s1"]);
    p.cosign("signed/app", &old, ".att", &["a1"]);
    p.cosign("signed/app", &old, ".sig", &["s1", "s2"]);
    let (new, new_body) = p.image("signed/app", "signed-new", "amd64", false);
    p.tag("signed/app", "v1", &new, &new_body);
    reg.delete_manifest("signed/app", &old.digest);
    p.cosign("signed/app", &new, ".sig", &["s3"]);

    // OCI 1.1 artifacts: an SBOM of a multi-arch index, a signature of the SBOM (chained), an
    // attestation on a platform child (kept through its subject only), the referrers tag fallback;
    // and an image deleted through the API whose SBOM and referrers tag are left behind.
    let amd = p.platform("art/app", "art-amd64", "amd64", false);
    let arm = p.platform("art/app", "art-arm64", "arm64", false);
    let amd_desc = Desc::from_json(&amd);
    let index = p.manifest(
        "art/app",
        Some("v1"),
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, arm]}),
    );
    let sbom = p.artifact(
        "art/app",
        "application/spdx+json",
        "sbom of v1",
        Some(&index),
    );
    p.artifact(
        "art/app",
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "signature of the sbom",
        Some(&sbom),
    );
    p.artifact(
        "art/app",
        "application/vnd.in-toto+json",
        "attestation of amd64",
        Some(&amd_desc),
    );
    p.referrers_tag(
        "art/app",
        &index,
        &[(sbom.clone(), "application/spdx+json")],
    );
    let (gone, gone_body) = p.image("art/app", "art-gone", "amd64", false);
    p.tag("art/app", "old", &gone, &gone_body);
    let gone_sbom = p.artifact(
        "art/app",
        "application/spdx+json",
        "sbom of old",
        Some(&gone),
    );
    p.referrers_tag("art/app", &gone, &[(gone_sbom, "application/spdx+json")]);
    reg.delete_manifest("art/app", &gone.digest);

    // Helm charts, with and without the manifest's mediaType.
    p.helm("charts/mychart", "0.1.0", true);
    p.helm("charts/mychart", "0.2.0", false);

    // A Windows image with a foreign layer: `urls`, and no blob in the store.
    let (gz, _) = oci::layer("win-base", 2048);
    let foreign = Desc {
        media_type: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".into(),
        digest: oci::sha256(b"windows base layer, never pushed"),
        size: 123_456,
    };
    let win_layer = p.blob(
        "win/app",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        &gz,
    );
    let win_config = p.blob(
        "win/app",
        "application/vnd.docker.container.image.v1+json",
        br#"{"architecture":"amd64","os":"windows","os.version":"10.0.20348.2113","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    p.manifest(
        "win/app",
        Some("ltsc2022"),
        DOCKER_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": win_config.json(),
            "layers": [foreign.with(json!({"urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/x"]})),
                       win_layer.json()]}),
    );

    // zstd layers; an index of an index; an index whose child is linked only as a blob; a Docker
    // manifest list; a manifest with annotations and a `data` field; a manifest and an index with
    // no mediaType (and an untyped entry).
    let zstd = p.blob(
        "misc/app",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        b"\x28\xb5\x2f\xfd zstd frame",
    );
    let zcfg = p.blob(
        "misc/app",
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    p.manifest(
        "misc/app",
        Some("zstd"),
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": zcfg.json(), "layers": [zstd.json()]}),
    );
    let inner = p.manifest(
        "misc/app",
        None,
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            p.platform("misc/app", "nested-amd64", "amd64", false),
            p.platform("misc/app", "nested-arm64", "arm64", false)]}),
    );
    p.manifest(
        "misc/app",
        Some("nested"),
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [inner.json()]}),
    );
    let (gz, diff_id) = oci::layer("blob-child", 2048);
    let bc_layer = p.blob("misc/app", OCI_LAYER, &gz);
    let bc_config = p.blob(
        "misc/app",
        "application/vnd.oci.image.config.v1+json",
        json!({"architecture": "s390x", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
            .to_string()
            .as_bytes(),
    );
    let bc_body = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": bc_config.json(), "layers": [bc_layer.json()]}))
    .unwrap();
    let bc = p.blob("misc/app", OCI_MANIFEST, &bc_body);
    p.manifest(
        "misc/app",
        Some("blobchild"),
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            bc.with(json!({"platform": {"architecture": "s390x", "os": "linux"}}))]}),
    );
    p.manifest(
        "misc/app",
        Some("dockerlist"),
        DOCKER_LIST,
        &json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
            p.platform("misc/app", "dl-amd64", "amd64", true),
            p.platform("misc/app", "dl-arm64", "arm64", true)]}),
    );
    let (gz, _) = oci::layer("with-data", 64);
    let data_layer = p.blob("misc/app", OCI_LAYER, &gz);
    let data_cfg = p.blob("misc/app", "application/vnd.oci.image.config.v1+json", br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"note":"data"}"#);
    p.manifest(
        "misc/app",
        Some("data"),
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": data_cfg.with(json!({"data": "e30=", "annotations": {"x": "y"}})),
            "layers": [data_layer.with(json!({"annotations": {"org.opencontainers.image.title": "data.tgz"}}))],
            "annotations": {"org.opencontainers.image.source": "https://example.com/src"}}),
    );
    let (nomt_child, _) = p.image("misc/app", "nomt-child", "riscv64", false);
    let nomt_cfg = p.blob(
        "misc/app",
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"ppc64le","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let nomt_manifest = p.manifest(
        "misc/app",
        None,
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "config": nomt_cfg.json(), "layers": []}),
    );
    p.manifest(
        "misc/app",
        Some("nomt"),
        OCI_INDEX,
        &json!({"schemaVersion": 2, "manifests": [
            {"digest": nomt_child.digest, "size": nomt_child.size},
            {"digest": nomt_manifest.digest, "size": nomt_manifest.size, "mediaType": ""}]}),
    );

    // An index [A, B] whose child B is deleted through the API: B's layers are garbage.
    let a = p.platform("deleted/child", "dc-a", "amd64", false);
    let b = p.platform("deleted/child", "dc-b", "arm64", false);
    let b_digest = b["digest"].as_str().unwrap().to_owned();
    p.manifest(
        "deleted/child",
        Some("v1"),
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [a, b]}),
    );
    reg.delete_manifest("deleted/child", &b_digest);

    let root = reg.root.clone();
    let model = Model::read(&root);
    assert!(model.repos.len() >= 8, "every repository was written");

    // audit: healthy (exit 0), and the orphan referrer tags listed.
    let (code, audit, stderr) = regsweep_json(&["audit".as_ref(), root.as_os_str()]);
    assert_eq!(code, 0, "audit on a healthy store: {audit:#}\n{stderr}");
    let listed: BTreeSet<(String, String)> = audit["orphan_referrer_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["repo"].as_str().unwrap().into(),
                o["tag"].as_str().unwrap().into(),
            )
        })
        .collect();
    let orphans = model.orphan_referrer_tags();
    assert_eq!(
        orphans.len(),
        3,
        "old .sig, old .att and the gone image's referrers tag"
    );
    assert_eq!(listed, orphans);
    let human = run(regsweep().arg("audit").arg(&root));
    assert!(human.contains("no problems found"), "{human}");
    assert!(
        human.contains("orphan referrer tag signed/app:sha256-"),
        "{human}"
    );

    // The plans equal the model's, plain and -m.
    let plain = model.plan(&root, false);
    let untagged = model.plan(&root, true);
    assert_plan(&root, &["--grace", "0s"], &plain, "plain");
    assert_plan(&root, &["--grace", "0s", "-m"], &untagged, "-m");
    // Each kind of garbage is in the -m plan: the overwritten build and cache, the orphan blob,
    // the deleted child's layers, the re-signed signature; and no cache layer of a live tag.
    let b_refs = model
        .refs(
            &root,
            &model.repos["deleted/child"],
            &b_digest["sha256:".len()..],
        )
        .0;
    assert!(!b_refs.is_empty());
    for l in &b_refs {
        assert!(
            plain.blobs.contains(&format!("sha256:{l}")),
            "B's blob {l} freed in plain mode"
        );
    }
    assert!(
        !plain.blobs.contains(&b_digest),
        "B's own data is kept, as the reference keeps it"
    );
    assert!(untagged.manifests.iter().any(|(r, _)| r == "ci/cache"));
    assert!(untagged.manifests.iter().any(|(r, _)| r == "ci/app"));
    assert!(
        untagged.manifests.iter().any(|(r, _)| r == "signed/app"),
        "the first signature"
    );
    assert!(
        !plain.blobs.contains(&bc_layer.digest),
        "the blob-linked child's layer is kept"
    );

    // Orphan referrer tags go, then gc -m frees what only they kept.
    let out = run(regsweep().args(["prune-tags"]).arg(&root).args([
        "--repo",
        "**",
        "--orphan-referrer-tags",
        "--delete",
        "--json",
    ]));
    let pruned: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pruned["removed"], 3, "{pruned:#}");
    let model = Model::read(&root);
    assert!(model.orphan_referrer_tags().is_empty());
    let untagged = model.plan(&root, true);
    assert_plan(
        &root,
        &["--grace", "0s", "-m"],
        &untagged,
        "-m after pruning",
    );
    assert!(
        untagged
            .manifests
            .iter()
            .filter(|(r, _)| r == "signed/app")
            .count()
            >= 3,
        "the old image's signatures and attestation are garbage now"
    );
    let out = run(regsweep()
        .args(["gc"])
        .arg(&root)
        .args(["--grace", "0s", "-m", "--delete", "--json"]));
    let swept: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(swept["deleted"]["failures"], json!([]), "{swept:#}");
    assert_eq!(
        swept["deleted"]["blobs"].as_u64().unwrap() as usize,
        untagged.blobs.len()
    );
    for d in &untagged.blobs {
        let hex = &d["sha256:".len()..];
        let data = root.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}",
            &hex[..2]
        ));
        assert!(!data.exists(), "garbage {d} is gone from disk");
    }

    // The registry restarted (a fresh blob cache): every tag and all it names is served whole.
    drop(reg);
    let reg = Registry::start_extra(dir.path(), extra);
    let model = Model::read(&root);
    let mut checked = 0;
    for (name, r) in &model.repos {
        for tag in r.tags.keys() {
            checked += verify_served(&reg, &model, &root, name, tag);
        }
    }
    // Kept referrers reached through their subject only: the attestation of the amd64 child and
    // the signature of the SBOM.
    for (name, r) in &model.repos {
        for rev in &r.revisions {
            checked += verify_served(&reg, &model, &root, name, &format!("sha256:{rev}"));
        }
    }
    assert!(checked > 60, "{checked} objects fetched and hashed");
    let r = reg.get_manifest("deleted/child", &b_digest);
    assert_eq!(r.status, 404, "B stays deleted");
    // skopeo pulls the multi-arch images, attestations included.
    let out = dir.path().join("pulled");
    for (repo, tag) in [
        ("ci/app", "latest"),
        ("art/app", "v1"),
        ("misc/app", "dockerlist"),
    ] {
        support::skopeo_copy(
            &reg.image(repo, tag),
            &format!("oci:{}:{}", out.display(), tag),
            &["--all"],
        );
    }
    // And nothing is left to collect.
    let (after, _) = regsweep_plan(&root, &["--grace", "0s", "-m"]);
    assert!(
        after.blobs.is_empty() && after.manifests.is_empty(),
        "{after:?}"
    );
}

/// regsweep's plain plan (grace 0) for `reg`'s store, asserted equal to the reference's dry run.
fn plain_plan_equals_the_reference(reg: &Registry) -> PlanSets {
    let reference = support::reference_dry_run(&reg.config, false);
    let (ours, _) = regsweep_plan(&reg.root, &["--grace", "0s"]);
    assert_eq!(
        ours.blobs,
        reference.blobs,
        "{}",
        diff(&ours.blobs, &reference.blobs)
    );
    ours
}

#[test]
fn a_child_deleted_from_an_index_frees_exactly_its_layers_as_the_reference_does() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(dir.path());
    let p = Pusher { reg: &reg };
    let (a, _) = p.image("team/multi", "a-layer", "amd64", false);
    let (b, _) = p.image("team/multi", "b-layer", "arm64", false);
    let b_json: Value =
        serde_json::from_slice(&reg.get_manifest("team/multi", &b.digest).body).unwrap();
    p.manifest(
        "team/multi",
        Some("v1"),
        OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            a.with(json!({"platform": {"architecture": "amd64", "os": "linux"}})),
            b.with(json!({"platform": {"architecture": "arm64", "os": "linux"}}))]}),
    );
    // A second repository holds B too, untagged.
    p.image("team/other", "b-layer", "arm64", false);
    reg.delete_manifest("team/multi", &b.digest);
    assert_eq!(reg.get_manifest("team/multi", &b.digest).status, 404);

    let b_blobs: BTreeSet<String> = [&b_json["config"], &b_json["layers"][0]]
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    // Plain mode keeps B whole for team/other's revision, as the reference does.
    let ours = plain_plan_equals_the_reference(&reg);
    assert!(
        ours.blobs.is_empty(),
        "B is a revision of team/other: {ours:?}"
    );
    // With -m, team/other's B is untagged, and team/multi's index no longer serves B: B's config
    // and layer go (its own data stays, named by the index).
    let (ours_m, _) = regsweep_plan(&reg.root, &["--grace", "0s", "-m"]);
    assert_eq!(ours_m.blobs, b_blobs, "{}", diff(&ours_m.blobs, &b_blobs));
    let other_b = BTreeSet::from([("team/other".to_owned(), b.digest.clone())]);
    assert_eq!(ours_m.manifests, other_b);
    // Without team/other's revision, plain mode frees exactly B's config and layer too.
    reg.delete_manifest("team/other", &b.digest);
    let ours = plain_plan_equals_the_reference(&reg);
    assert_eq!(ours.blobs, b_blobs, "exactly B's config and layer");
    run(regsweep()
        .arg("gc")
        .arg(&reg.root)
        .args(["--grace", "0s", "-m", "--delete"]));
    drop(reg);
    let reg = Registry::start(dir.path());
    support::skopeo_copy(
        &reg.image("team/multi", "v1"),
        &format!("oci:{}:v1", dir.path().join("pulled").display()),
        &["--override-arch", "amd64"],
    );
    assert_eq!(reg.get_manifest("team/multi", &b.digest).status, 404);
}

/// Runs the oras client (PyPI's `oras`) to push `content` as an artifact, with a subject.
fn oras_push(dir: &Path, target: &str, content: &str, artifact_type: &str, subject: &Desc) {
    let file = dir.join(format!("{}.json", oci::sha256(content.as_bytes())));
    std::fs::write(&file, content).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oras_push.py");
    run(std::process::Command::new("python3")
        .arg(script)
        .arg(target)
        .arg(&file)
        .arg(artifact_type)
        .arg(&subject.media_type)
        .arg(&subject.digest)
        .arg(subject.size.to_string()));
}

fn podman(args: &[&str], storage: &Path) -> String {
    let root = storage.join("root");
    let runroot = storage.join("run");
    run(std::process::Command::new("podman")
        .arg("--root")
        .arg(&root)
        .arg("--runroot")
        .arg(&runroot)
        .args(["--storage-driver", "vfs"])
        .args(args))
}

#[test]
fn images_lists_and_artifacts_pushed_by_real_clients_survive_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(dir.path());
    let p = Pusher { reg: &reg };
    let host = format!("127.0.0.1:{}", reg.port);
    // skopeo: two images with gzip layers and one with zstd, from OCI layouts the test writes.
    let images: [(&str, &[&str], &[&str]); 3] = [
        ("amd64", &["rc-amd64"], &[]),
        ("arm64", &["rc-arm64"], &[]),
        ("zstd", &["rc-zstd"], &["--dest-compress-format", "zstd"]),
    ];
    for (tag, seeds, extra) in images {
        let layout = dir.path().join(format!("layout-{tag}"));
        oci::single(&layout, seeds);
        support::skopeo_copy(
            &format!("oci:{}:latest", layout.display()),
            &reg.image("real/app", tag),
            extra,
        );
    }
    let zstd_manifest: Value =
        serde_json::from_slice(&reg.get_manifest("real/app", "zstd").body).unwrap();
    assert!(
        zstd_manifest["layers"][0]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("+zstd"),
        "skopeo wrote zstd layers: {zstd_manifest}"
    );
    // podman: a Docker manifest list over both, pushed with --all.
    let storage = dir.path().join("podman");
    let list = format!("localhost/regsweep-list-{}", reg.port);
    podman(&["manifest", "create", &list], &storage);
    for arch in ["amd64", "arm64"] {
        podman(
            &[
                "manifest",
                "add",
                "--tls-verify=false",
                &list,
                &format!("docker://{host}/real/app:{arch}"),
            ],
            &storage,
        );
    }
    podman(
        &[
            "manifest",
            "push",
            "--all",
            "--format",
            "v2s2",
            "--tls-verify=false",
            &list,
            &format!("docker://{host}/real/app:list"),
        ],
        &storage,
    );
    let list_resp = reg.get_manifest("real/app", "list");
    let list_json: Value = serde_json::from_slice(&list_resp.body).unwrap();
    assert_eq!(
        list_json["mediaType"], DOCKER_LIST,
        "podman pushed a Docker list"
    );
    // oras: an SBOM of the list and a signature of the SBOM (subjects), a second SBOM of an image
    // that is then deleted through the API.
    let list_desc = Desc::of(DOCKER_LIST, &list_resp.body);
    oras_push(
        dir.path(),
        &format!("{host}/real/app:sbom"),
        "{\"spdx\":\"list\"}",
        "application/spdx+json",
        &list_desc,
    );
    let sbom_resp = reg.get_manifest("real/app", "sbom");
    let sbom = Desc::of(OCI_MANIFEST, &sbom_resp.body);
    oras_push(
        dir.path(),
        &format!("{host}/real/app:sbom-sig"),
        "{\"sig\":1}",
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        &sbom,
    );
    let (gone, gone_body) = p.image("real/app", "rc-gone", "amd64", false);
    p.tag("real/app", "gone", &gone, &gone_body);
    oras_push(
        dir.path(),
        &format!("{host}/real/app:gone-sbom"),
        "{\"spdx\":\"gone\"}",
        "application/spdx+json",
        &gone,
    );
    reg.delete_manifest("real/app", &gone.digest);
    // The list's second child (the image added second, converted by podman), deleted through the
    // API with the image it was made from: its layers are garbage.
    let arm64_image: Value =
        serde_json::from_slice(&reg.get_manifest("real/app", "arm64").body).unwrap();
    let arm64_layer = arm64_image["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let arm64_image_digest = reg
        .get_manifest("real/app", "arm64")
        .header("docker-content-digest")
        .unwrap()
        .to_owned();
    reg.delete_manifest("real/app", &arm64_image_digest);
    let arm64 = list_json["manifests"][1]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    reg.delete_manifest("real/app", &arm64);

    let root = reg.root.clone();
    let model = Model::read(&root);
    let (code, audit, stderr) = regsweep_json(&["audit".as_ref(), root.as_os_str()]);
    assert_eq!(code, 0, "audit: {audit:#}\n{stderr}");
    let plain = model.plan(&root, false);
    let untagged = model.plan(&root, true);
    assert!(
        plain.blobs.contains(&arm64_layer),
        "the deleted child's layer is garbage: {plain:?}"
    );
    assert_plan(&root, &["--grace", "0s"], &plain, "plain");
    assert_plan(&root, &["--grace", "0s", "-m"], &untagged, "-m");
    run(regsweep()
        .arg("gc")
        .arg(&root)
        .args(["--grace", "0s", "-m", "--delete"]));
    drop(reg);
    let reg = Registry::start(dir.path());
    let model = Model::read(&root);
    for (name, r) in &model.repos {
        for tag in r.tags.keys() {
            verify_served(&reg, &model, &root, name, tag);
        }
    }
    support::skopeo_copy(
        &reg.image("real/app", "list"),
        &format!("oci:{}:list", dir.path().join("pulled").display()),
        &["--override-arch", "amd64"],
    );
}
