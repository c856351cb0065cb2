//! regsweep's OCI image, as `packaging/image/build` makes it on a machine that reaches Debian's
//! archive and no image registry: two builds give one digest; pushed into the real registry with
//! skopeo and pulled back it is unchanged; unpacked, it runs as its non-root user under `chroot`
//! (so this test runs as root) and plans the demo store as the binary outside does; the Kubernetes
//! examples name it.

mod support;

use std::path::Path;
use std::process::Command;
use support::registry::Registry;
use support::{run, skopeo_copy};

const UID: u32 = 65532;

/// Builds the image into `out` from the binary under test; returns the build's summary.
fn build(out: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/image/build");
    let printed = run(Command::new(script)
        .arg(out)
        .env("REGSWEEP_BINARY", env!("CARGO_BIN_EXE_regsweep")));
    serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"))
}

/// The JSON document `digest` names in the layout at `dir`.
fn blob(dir: &Path, digest: &str) -> serde_json::Value {
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn manifest_digest(dir: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn the_image_builds_the_same_twice_travels_through_a_registry_and_runs_as_its_user() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test unpacks the image and runs it under chroot: run it as root"
    );
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let built = build(&one);
    build(&two);
    let digest = manifest_digest(&one);
    assert_eq!(digest, manifest_digest(&two), "two builds, one image");
    assert_eq!(built["manifest"], digest.as_str());
    let version = env!("CARGO_PKG_VERSION");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        version
    );

    // The config: non-root, the entrypoint, the labels.
    let manifest = blob(&one, &digest);
    let config = blob(&one, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["User"], format!("{UID}:{UID}"));
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/regsweep"])
    );
    let labels = &config["config"]["Labels"];
    for label in ["source", "version", "revision", "licenses", "description"] {
        assert!(
            labels[format!("org.opencontainers.image.{label}")].is_string(),
            "{label}: {labels}"
        );
    }
    assert_eq!(labels["org.opencontainers.image.version"], version);
    // One layer, holding what a run needs and nothing else.
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    let files: Vec<&str> = built["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libgcc_s.so.1",
            "lib/x86_64-linux-gnu/libm.so.6",
            "lib64/ld-linux-x86-64.so.2",
            "usr/local/bin/regsweep",
            "usr/share/doc/ca-certificates/copyright",
            "usr/share/doc/libc6/copyright",
        ]
    );

    // Pushed into the real registry and pulled back, digest unchanged.
    let registry = Registry::start(&dir.path().join("registry"));
    let pushed = registry.image("tools/regsweep", version);
    let extra = ["--preserve-digests"];
    skopeo_copy(&format!("oci:{}:{version}", one.display()), &pushed, &extra);
    let back = dir.path().join("back");
    skopeo_copy(
        &pushed,
        &format!("oci:{}:{version}", back.display()),
        &extra,
    );
    assert_eq!(manifest_digest(&back), digest, "pulled back unchanged");

    // Unpacked and run under chroot as the image's user, against a copy of the demo store.
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(
            back.join("blobs/sha256")
                .join(layer.trim_start_matches("sha256:")),
        )
        .arg("-C")
        .arg(&rootfs));
    let (demo, _) = support::copy_of_demo(dir.path());
    let inside = rootfs.join("store");
    run(Command::new("cp").arg("-a").arg(&demo).arg(&inside));
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{UID}:{UID}"))
        .arg(&inside));
    let chroot = |args: &[&str]| {
        let out = Command::new("chroot")
            .arg(format!("--userspec={UID}:{UID}"))
            .arg(&rootfs)
            .arg("/usr/local/bin/regsweep")
            .args(args)
            .env("HOME", "/home/regsweep")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(chroot(&["--version"]).trim(), format!("regsweep {version}"));
    let gc = ["gc", "-m", "--grace", "0s", "--no-cache", "--json"];
    let in_image: serde_json::Value =
        serde_json::from_str(&chroot(&[&gc[..1], &["/store"], &gc[1..]].concat())).unwrap();
    let out = support::regsweep()
        .args(&gc[..1])
        .arg(&demo)
        .args(&gc[1..])
        .output()
        .unwrap();
    let outside: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for part in [
        "blobs",
        "manifests",
        "layer_links",
        "uploads",
        "by_repository",
        "tags",
    ] {
        assert_eq!(in_image[part], outside[part], "{part}");
    }
    // The image's user owns nothing it should not: it ran as that uid.
    let meta = std::fs::metadata(rootfs.join("home/regsweep")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), UID);
}

#[test]
fn the_kubernetes_examples_name_the_image_the_build_makes() {
    let version = env!("CARGO_PKG_VERSION");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes");
    let mut seen = 0;
    for file in ["cronjob.yaml", "indexed-job.yaml"] {
        let text = std::fs::read_to_string(examples.join(file)).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc = serde_json::Value::deserialize(doc).unwrap();
            let spec = match doc["kind"].as_str() {
                Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                Some("Job") => &doc["spec"]["template"]["spec"],
                _ => continue,
            };
            let containers = spec["containers"]
                .as_array()
                .into_iter()
                .chain(spec["initContainers"].as_array())
                .flatten();
            for c in containers {
                seen += 1;
                let image = c["image"].as_str().unwrap();
                assert!(
                    image.ends_with(&format!("/regsweep:{version}")),
                    "{file}: {image} is not the image packaging/image/build makes"
                );
                let security = &c["securityContext"];
                assert_eq!(security["readOnlyRootFilesystem"], true, "{file}: {c}");
                assert_eq!(security["allowPrivilegeEscalation"], false, "{file}: {c}");
            }
        }
    }
    assert!(seen >= 4, "the examples' containers were read: {seen}");
}

use serde::Deserialize as _;
