//! `--inventory`: the blob listing from an S3 Inventory, on the conformance scenario that the real
//! registry writes into a loopback S3 server (moto). The inventories are written as AWS delivers
//! them (tests/support/s3_inventory.py: gzipped CSV with URL-encoded keys, ORC, Parquet, with a
//! manifest.json of MD5s), from a listing of every object version of the bucket.

mod support;

use regsweep::storage::Storage;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::scenario::build_store_on_s3;
use support::{diff, oci, regsweep, regsweep_plan, run, skopeo_copy};

const URL: &str = "s3://registry/store";

/// Writes an inventory of bucket `registry` into bucket `inventory` (and below `local`) under
/// `prefix`; returns the manifest's key.
fn write_inventory(
    endpoint: &str,
    local: &Path,
    format: &str,
    prefix: &str,
    extra: &[&str],
) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/s3_inventory.py");
    let out = run(Command::new("python3")
        .arg(script)
        .args([endpoint, "registry", "inventory", prefix, format])
        .arg(local)
        .args(extra));
    out.trim().to_owned()
}

/// The requests in moto's log after byte `from` that list keys below `blobs/`.
fn blob_listings(log: &Path, from: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap();
    text[from..]
        .lines()
        .filter(|l| is_listing(l))
        .filter(|l| l.contains("blobs%2F") || l.contains("blobs/") || l.contains("%2Fblobs"))
        .map(str::to_owned)
        .collect()
}

/// A ListObjects request to the store's bucket, as moto logs it.
fn is_listing(line: &str) -> bool {
    (line.contains("GET /registry?") || line.contains("GET /registry/?"))
        && line.contains("prefix=")
}

fn listings(log: &Path, from: usize) -> usize {
    let text = std::fs::read_to_string(log).unwrap();
    text[from..].lines().filter(|l| is_listing(l)).count()
}

fn log_len(log: &Path) -> usize {
    std::fs::metadata(log).unwrap().len() as usize
}

/// `regsweep ARGS --json`: exit code, report, stderr.
fn json_run(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = regsweep().args(args).arg("--json").output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn without(mut v: serde_json::Value, keys: &[&str]) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

#[test]
fn inventories_in_three_formats_plan_as_a_listing_and_keep_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, s) = build_store_on_s3(dir.path());
    s3.create_bucket("inventory");
    let log = dir.path().join("moto.log");
    let endpoint = s3.endpoint();
    let local = dir.path().join("inventory-bucket");
    let base: Vec<&str> = vec!["--endpoint-url", &endpoint, "--grace", "0s", "--no-cache"];
    let plan_with = |extra: &[&str]| {
        let mut args = base.clone();
        args.extend_from_slice(extra);
        regsweep_plan(Path::new(URL), &args)
    };

    let (listed, listed_summary) = plan_with(&[]);
    assert!(
        listed.blobs.contains(&s.deleted.config) && !listed.blobs.is_empty(),
        "the listing's plan collects the deleted image: {listed:?}"
    );
    let store_blobs = s3
        .keys("registry")
        .iter()
        .filter(|k| k.starts_with("docker/registry/v2/blobs/") && k.ends_with("/data"))
        .count() as u64;

    // Rows the inventory holds that are no objects: an older version and a delete marker of keys
    // in the blob tree. Taken as blobs, they would be planned.
    let ghost = |n: u8| {
        let hex = format!("{:02x}", n).repeat(32);
        format!(
            "store/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        )
    };
    let (old_version, marker) = (
        format!("{},10,false,false", ghost(0xab)),
        format!("{},0,true,true", ghost(0xcd)),
    );
    let extra = ["--extra-row", &old_version, "--extra-row", &marker];

    let mut manifests = Vec::new();
    for (format, name) in [("CSV", "CSV"), ("ORC", "ORC"), ("PARQUET", "Parquet")] {
        let key = write_inventory(&endpoint, &local, format, &format!("inv-{format}"), &extra);
        let url = format!("s3://inventory/{key}");
        let before = log_len(&log);
        let (plan, summary) = plan_with(&["--inventory", &url]);
        assert_eq!(
            plan,
            listed,
            "{format}: the same plan as a listing\n{}",
            diff(&plan.blobs, &listed.blobs)
        );
        let blob_lists = blob_listings(&log, before);
        assert!(
            blob_lists.is_empty(),
            "{format}: no listing below blobs/: {blob_lists:?}"
        );
        assert!(
            listings(&log, before) > 0,
            "{format}: the repositories are listed"
        );
        let inv = &summary["inventory"];
        assert_eq!(inv["format"], name, "{summary}");
        assert_eq!(inv["blobs"], store_blobs, "{format}: {inv}");
        assert_eq!(inv["data_files"], 2, "{inv}");
        assert!(inv["age_seconds"].as_u64().unwrap() < 600, "{inv}");
        assert!(
            inv["requests"].as_u64().unwrap() >= 3,
            "manifest, checksum, files: {inv}"
        );
        assert!(
            summary["s3"]["list_requests"].as_u64().unwrap()
                < listed_summary["s3"]["list_requests"].as_u64().unwrap(),
            "{format}: fewer LIST requests\n{}\n{}",
            summary["s3"],
            listed_summary["s3"]
        );
        manifests.push(key);
    }

    // Blank lines in a CSV file hold no record: the same plan.
    let blank = write_inventory(
        &endpoint,
        &local,
        "CSV",
        "inv-blank",
        &[&extra[..], &["--blank-lines"]].concat(),
    );
    let (plan, summary) = plan_with(&["--inventory", &format!("s3://inventory/{blank}")]);
    assert_eq!(
        plan,
        listed,
        "blank lines\n{}",
        diff(&plan.blobs, &listed.blobs)
    );
    assert_eq!(summary["inventory"]["blobs"], store_blobs, "{summary}");

    // A local copy of the destination bucket serves as well.
    let local_manifest = local.join(&manifests[2]);
    let (plan, _) = plan_with(&["--inventory", local_manifest.to_str().unwrap()]);
    assert_eq!(plan, listed, "from a local copy");

    // du and audit read the same store through the inventory.
    let inv_url = format!("s3://inventory/{}", manifests[0]);
    for command in ["du", "audit"] {
        let mut args = vec![command, URL, "--endpoint-url", &endpoint, "--no-cache"];
        let (_, plain, e1) = json_run(&args);
        args.extend(["--inventory", &inv_url]);
        let (_, inventoried, e2) = json_run(&args);
        assert_eq!(inventoried["inventory"]["format"], "CSV", "{command}: {e2}");
        let strip = ["elapsed_ms", "time", "inventory"];
        assert_eq!(
            without(inventoried, &strip),
            without(plain, &strip),
            "{command}: the same report\n{e1}\n{e2}"
        );
    }

    refusals(&s3, &local, dir.path());

    // After the snapshot: the deleted image is pushed again elsewhere (its blobs are in the
    // inventory, its new links are not), a new image with a new layer, and a blob with no manifest.
    let layouts = dir.path().join("layouts");
    let oci_ref = |name: &str| format!("oci:{}:latest", layouts.join(name).display());
    skopeo_copy(&oci_ref("f"), &s.registry.image("late/reuse", "t"), &[]);
    let new = oci::single(&layouts.join("late"), &["late-layer"]);
    skopeo_copy(&oci_ref("late"), &s.registry.image("late/new", "t"), &[]);
    let orphan = s
        .registry
        .push_blob("late/orphan", b"a blob written after the snapshot");
    support::next_second();

    let (now_listed, _) = plan_with(&[]);
    assert!(
        now_listed.blobs.contains(&orphan),
        "at grace 0s a listing collects the new orphan"
    );
    assert!(!now_listed.blobs.contains(&s.deleted.config));
    let (planned, summary) = plan_with(&["--inventory", &inv_url]);
    let mut expected = now_listed.blobs.clone();
    expected.remove(&orphan);
    assert_eq!(
        planned.blobs,
        expected,
        "the snapshot's plan is the listing's less the blob written since\n{}",
        diff(&planned.blobs, &expected)
    );
    for kept in [&s.deleted.config, &new.config, &new.manifest, &orphan] {
        assert!(!planned.blobs.contains(kept), "{kept} is kept");
    }
    assert!(
        summary["inventory"]["blobs_after_snapshot"]
            .as_u64()
            .unwrap()
            >= 4,
        "the new image's manifest, config and layer and the orphan were asked after: {}",
        summary["inventory"]
    );

    // A candidate rewritten after the snapshot is left alone by the sweep; the rest goes.
    let changed = planned.blobs.iter().next().unwrap().clone();
    let changed_key = format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &changed[7..9],
        &changed[7..]
    );
    let body = s3.storage("registry").read(&changed_key, u64::MAX).unwrap();
    s3.put_object("registry", &format!("store/{changed_key}"), &body);
    support::next_second();
    let (code, deleted, stderr) = json_run(&[
        "gc",
        URL,
        "--endpoint-url",
        &endpoint,
        "--grace",
        "0s",
        "--no-cache",
        "--inventory",
        &inv_url,
        "--delete",
    ]);
    assert_eq!(
        deleted["inventory"]["changed_since_snapshot"], 1,
        "exit {code}: {deleted}\n{stderr}"
    );
    let keys: BTreeSet<String> = s3.keys("registry");
    assert!(keys.contains(&changed_key), "the rewritten blob stays");
    for d in planned.blobs.iter().filter(|d| **d != changed) {
        let key = format!(
            "docker/registry/v2/blobs/sha256/{}/{}/data",
            &d[7..9],
            &d[7..]
        );
        assert!(!keys.contains(&key), "{d} was swept");
    }
    let orphan_key = format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &orphan[7..9],
        &orphan[7..]
    );
    assert!(keys.contains(&orphan_key), "the blob written since stays");
    let pulls = dir.path().join("pulls");
    s.pull_every_tag(&pulls);
    for (i, repo) in ["late/reuse", "late/new"].iter().enumerate() {
        let dest = format!("oci:{}:pulled", pulls.join(format!("late-{i}")).display());
        skopeo_copy(&s.registry.image(repo, "t"), &dest, &[]);
    }
}

/// A damaged data file, a snapshot past the age limit, another bucket's inventory and a store not
/// in S3 are refused before any work, each by name.
fn refusals(s3: &support::s3::S3Server, local: &Path, dir: &Path) {
    let endpoint = &s3.endpoint();
    let gc = |inventory: &str, extra: &[&str]| {
        let out = regsweep()
            .args([
                "gc",
                URL,
                "--endpoint-url",
                endpoint,
                "--inventory",
                inventory,
            ])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let damaged = write_inventory(endpoint, local, "CSV", "damaged", &[]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local.join(&damaged)).unwrap()).unwrap();
    let file = manifest["files"][0]["key"].as_str().unwrap();
    let mut bytes = std::fs::read(local.join(file)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(local.join(file), bytes).unwrap();
    let (code, err) = gc(local.join(&damaged).to_str().unwrap(), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(file) && err.contains("MD5"), "{err}");

    let ten_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 10 * 86_400_000;
    let old = write_inventory(
        endpoint,
        local,
        "CSV",
        "old",
        &["--taken-ms", &ten_days_ago.to_string()],
    );
    let old_url = format!("s3://inventory/{old}");
    let (code, err) = gc(&old_url, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&old_url) && err.contains("--inventory-max-age"),
        "{err}"
    );
    let (code, err) = gc(&old_url, &["--inventory-max-age", "30d", "--grace", "0s"]);
    assert_eq!(code, Some(0), "a raised limit accepts it: {err}");

    let (code, err) = gc("s3://inventory/no/such/manifest.json", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s3://inventory/no/such/manifest.json"),
        "{err}"
    );

    // A store in the inventory's bucket, which the inventory does not list.
    s3.put_object(
        "inventory",
        "store/docker/registry/v2/repositories/a/_uploads/u/data",
        b"x",
    );
    let other = regsweep()
        .args([
            "gc",
            "s3://inventory/store",
            "--endpoint-url",
            endpoint,
            "--inventory",
            &old_url,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{err}");
    assert!(
        err.contains("lists bucket registry") && err.contains("bucket inventory"),
        "{err}"
    );

    let folder = dir.join("not-s3");
    std::fs::create_dir_all(folder.join("docker/registry/v2/repositories")).unwrap();
    let out = regsweep()
        .arg("gc")
        .arg(&folder)
        .args(["--inventory", &old_url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not in S3"), "{err}");
}
