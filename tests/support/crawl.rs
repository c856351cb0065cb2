//! What a registry serves, as a client finds it: from every tag, through the HTTP API only.
//!
//! For each repository of the catalog and each of its tags: GET the tag's manifest; then, for every
//! descriptor of every manifest reached (config, layers, list and index entries, artifact blobs; not
//! `subject`, which a client pulling the tag does not fetch), try it as a manifest (`GET
//! /v2/<repo>/manifests/<digest>`, every manifest media type accepted), else as a blob (`HEAD
//! /v2/<repo>/blobs/<digest>`), and record what answered 200 with the right digest. A manifest
//! served is crawled in turn. Nothing here knows the storage layout or regsweep's rules: it is the
//! registry's own answer, so a sweep is judged by what a client could pull before and after.

use super::oci::sha256;
use super::registry::Registry;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How an object answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    Manifest,
    Blob,
}

/// What one tag serves: the digest it resolves to, and every object reached from it that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagView {
    pub digest: String,
    pub served: BTreeSet<(String, Answer)>,
}

/// Per (repository, tag), what it serves.
pub type Crawl = BTreeMap<(String, String), TagView>;

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.artifact.manifest.v1+json, */*";

/// The tags of `repo` (none when the registry knows none).
fn tags(reg: &Registry, repo: &str) -> Vec<String> {
    let r = reg.http("GET", &format!("/v2/{repo}/tags/list?n=10000"), &[], &[]);
    if r.status != 200 {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

/// A manifest by tag or digest: its digest and parsed body, when served whole.
fn manifest(reg: &Registry, repo: &str, reference: &str) -> Option<(String, Value)> {
    let r = reg.http(
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT)],
        &[],
    );
    if r.status != 200 {
        return None;
    }
    let digest = sha256(&r.body);
    if reference.starts_with("sha256:") && digest != reference {
        return None;
    }
    if r.header("docker-content-digest") != Some(digest.as_str()) {
        return None;
    }
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    Some((digest, body))
}

fn blob_answers(reg: &Registry, repo: &str, digest: &str) -> bool {
    let r = reg.http("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], &[]);
    r.status == 200 && r.header("docker-content-digest") == Some(digest)
}

/// The digests a manifest's descriptors name (not its subject).
fn descriptors(m: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |d: &Value| {
        if let Some(s) = d["digest"].as_str() {
            out.push(s.to_owned());
        }
    };
    if m.get("config").is_some() {
        push(&m["config"]);
    }
    for key in ["layers", "manifests", "blobs"] {
        for d in m[key].as_array().into_iter().flatten() {
            push(d);
        }
    }
    for l in m["fsLayers"].as_array().into_iter().flatten() {
        if let Some(s) = l["blobSum"].as_str() {
            out.push(s.to_owned());
        }
    }
    out
}

/// Crawls one tag.
fn crawl_tag(reg: &Registry, repo: &str, tag: &str) -> TagView {
    let Some((digest, body)) = manifest(reg, repo, tag) else {
        return TagView {
            digest: String::new(),
            served: BTreeSet::new(),
        };
    };
    let mut served = BTreeSet::new();
    let mut seen = BTreeSet::from([digest.clone()]);
    let mut queue = vec![body];
    while let Some(m) = queue.pop() {
        for d in descriptors(&m) {
            if !seen.insert(d.clone()) {
                continue;
            }
            if let Some((_, child)) = manifest(reg, repo, &d) {
                served.insert((d, Answer::Manifest));
                queue.push(child);
            } else if blob_answers(reg, repo, &d) {
                served.insert((d, Answer::Blob));
            }
        }
    }
    TagView { digest, served }
}

/// Crawls every tag of every repository the catalog lists.
pub fn crawl(reg: &Registry) -> Crawl {
    let mut out = Crawl::new();
    for repo in reg.catalog() {
        for tag in tags(reg, &repo) {
            let view = crawl_tag(reg, &repo, &tag);
            out.insert((repo.clone(), tag), view);
        }
    }
    out
}

/// Where `after` serves less than (or other than) `before`, one line each; empty when every tag
/// serves what it served.
pub fn lost(before: &Crawl, after: &Crawl) -> Vec<String> {
    let mut out = Vec::new();
    for ((repo, tag), b) in before {
        let Some(a) = after.get(&(repo.clone(), tag.clone())) else {
            out.push(format!("{repo}:{tag} is no longer listed"));
            continue;
        };
        if a.digest != b.digest {
            out.push(format!(
                "{repo}:{tag} resolved to {:?}, now {:?}",
                b.digest, a.digest
            ));
        }
        for (d, how) in b.served.difference(&a.served) {
            out.push(format!("{repo}:{tag}: {d} answered as {how:?}, now not"));
        }
    }
    out
}
