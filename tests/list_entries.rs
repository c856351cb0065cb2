//! List and index entries that do not say they are manifests, pushed into the real registry: a
//! Docker manifest list whose entries say `application/octet-stream` (as distribution's own test
//! helpers write them), an OCI index whose entries are `{"mediaType": "", "size": 0}` (as
//! `ocischema.FromDescriptors` writes them given digests only), and an index entry of a vendor
//! media type. The registry takes them and serves every child by digest; so must a sweep leave
//! them. Each repository has two generations: the first list's tag moved to the second, so that
//! `gc -m` has the first generation (list, children, their own layers) to free.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use support::push::{self, DOCKER_LIST, Desc, OCI_INDEX, Op};
use support::registry::Registry;
use support::{crawl, oci, regsweep, regsweep_json, regsweep_plan, run, skopeo_copy};

/// How a shape writes a list entry for a child.
struct Shape {
    repo: &'static str,
    list_type: &'static str,
    docker: bool,
    entry: fn(&Desc, &str) -> Value,
}

const SHAPES: [Shape; 3] = [
    Shape {
        repo: "octet/list",
        list_type: DOCKER_LIST,
        docker: true,
        entry: |d, arch| {
            json!({"mediaType": "application/octet-stream", "digest": d.digest, "size": d.size,
                   "platform": {"architecture": arch, "os": "linux"}})
        },
    },
    Shape {
        repo: "empty/index",
        list_type: OCI_INDEX,
        docker: false,
        entry: |d, _| json!({"mediaType": "", "digest": d.digest, "size": 0}),
    },
    Shape {
        repo: "vendor/index",
        list_type: OCI_INDEX,
        docker: false,
        entry: |d, arch| {
            json!({"mediaType": "application/vnd.example.image.manifest+json", "digest": d.digest,
                   "size": d.size, "platform": {"architecture": arch, "os": "linux"}})
        },
    },
];

/// Pushes one generation of `shape` (two platform images by digest, then the list under tag `v`);
/// returns the list's descriptor and the digests of everything the generation pushed.
fn generation(shape: &Shape, generation: &str, ops: &mut Vec<Op>) -> (Desc, BTreeSet<String>) {
    let first = ops.len();
    let mut entries = Vec::new();
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let seed = format!("{}-{generation}-{arch}", shape.repo);
        let child = push::image(shape.repo, &[&seed], arch, shape.docker, ops);
        entries.push((shape.entry)(&child, arch));
        children.push(child.digest);
    }
    let body = json!({"schemaVersion": 2, "mediaType": shape.list_type, "manifests": entries});
    let list = push::manifest(shape.repo, Some("v"), shape.list_type, &body, ops);
    let mut pushed: BTreeSet<String> = ops[first..]
        .iter()
        .filter_map(|op| match op {
            Op::Blob { data, .. } => Some(oci::sha256(data)),
            _ => None,
        })
        .collect();
    pushed.extend(children);
    pushed.insert(list.digest.clone());
    (list, pushed)
}

fn blob_on_disk(root: &Path, digest: &str) -> bool {
    let hex = &digest["sha256:".len()..];
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
    .exists()
}

/// `skopeo copy --all` of every shape's tag into an OCI layout: every platform pulls.
fn pull_every_platform(reg: &Registry, dir: &Path, when: &str) {
    for shape in &SHAPES {
        let dest = dir.join(format!("pulled-{when}-{}", shape.repo.replace('/', "-")));
        skopeo_copy(
            &reg.image(shape.repo, "v"),
            &format!("oci:{}:v", dest.display()),
            &["--all"],
        );
        let index: Value =
            serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"].as_array().map(Vec::len),
            Some(1),
            "{when}: {} pulled",
            shape.repo
        );
    }
}

#[test]
fn lists_whose_entries_do_not_say_they_are_manifests_keep_every_platform_after_gc_m() {
    let dir = tempfile::tempdir().unwrap();
    let reg_dir = dir.path().join("registry");
    let reg = Registry::start(&reg_dir);
    let root = reg.root.clone();
    let mut old = BTreeSet::new();
    let mut new = BTreeSet::new();
    let mut old_lists = Vec::new();
    for shape in &SHAPES {
        let mut ops = Vec::new();
        let (first, pushed_first) = generation(shape, "1", &mut ops);
        let (_, pushed_second) = generation(shape, "2", &mut ops);
        push::apply_all(&reg, &ops);
        old.extend(pushed_first);
        new.extend(pushed_second);
        old_lists.push((shape.repo, first));
    }
    // The registry serves every child by digest, whatever its entry says.
    for shape in &SHAPES {
        let list: Value = serde_json::from_slice(&reg.get_manifest(shape.repo, "v").body).unwrap();
        for e in list["manifests"].as_array().unwrap() {
            let d = e["digest"].as_str().unwrap();
            assert_eq!(reg.get_manifest(shape.repo, d).status, 200, "{d}");
        }
    }
    pull_every_platform(&reg, dir.path(), "before");
    let before = crawl::crawl(&reg);
    assert_eq!(before.len(), SHAPES.len());
    for view in before.values() {
        let manifests = view
            .served
            .iter()
            .filter(|s| s.1 == crawl::Answer::Manifest);
        assert_eq!(manifests.count(), 2, "both children answer: {view:?}");
    }

    // audit: clean (a size of 0 in an entry declares nothing; an undeclared child is no blob).
    let (code, report, stderr) = regsweep_json(&["audit".as_ref(), root.as_os_str()]);
    assert_eq!(code, 0, "audit: {report}\n{stderr}");
    assert_eq!(report["problems"], json!([]), "{report}");

    // The plan: the first generation goes whole, nothing of the second.
    let (plan, _) = regsweep_plan(&root, &["-m", "--grace", "0s"]);
    for (repo, list) in &old_lists {
        assert!(
            plan.manifests
                .contains(&(repo.to_string(), list.digest.clone())),
            "the untagged first list of {repo} is planned: {:?}",
            plan.manifests
        );
    }
    let planned_blobs: BTreeSet<String> = plan.blobs.iter().cloned().collect();
    let missing: Vec<&String> = old.difference(&planned_blobs).collect();
    assert!(
        missing.is_empty(),
        "every blob of the first generation is planned; not: {missing:?}"
    );
    let kept_wrongly: Vec<&String> = new.intersection(&planned_blobs).collect();
    assert!(
        kept_wrongly.is_empty(),
        "nothing of the tagged generation is planned: {kept_wrongly:?}"
    );

    drop(reg);
    run(regsweep()
        .arg("gc")
        .arg(&root)
        .args(["-m", "--delete", "--grace", "0s"]));
    let reg = Registry::start(&reg_dir);
    let after = crawl::crawl(&reg);
    let lost = crawl::lost(&before, &after);
    assert!(
        lost.is_empty(),
        "after gc -m --delete:\n{}",
        lost.join("\n")
    );
    pull_every_platform(&reg, dir.path(), "after");
    for d in &old {
        assert!(!blob_on_disk(&root, d), "{d} of the first generation went");
    }
    for d in &new {
        assert!(
            blob_on_disk(&root, d),
            "{d} of the tagged generation stayed"
        );
    }
    let (code, report, stderr) = regsweep_json(&["audit".as_ref(), root.as_os_str()]);
    assert_eq!(code, 0, "audit after the sweep: {report}\n{stderr}");
}
