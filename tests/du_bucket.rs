//! `du --bucket` (issue 45): every byte under the store's root in exactly one category, checked
//! against the provider's own API. On moto, a bucket the real registry's s3 driver filled: keys
//! overwritten and deleted (older versions, delete markers), keys that are not the registry's,
//! an incomplete multipart upload with its part, and a trash run that hid versions. boto3's
//! list_object_versions, list_multipart_uploads and list_parts give the independent count.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::registry::Registry;
use support::{oci, regsweep, skopeo_copy};

/// What boto3 counts under `prefix`: versions (key, version id, size, latest), delete markers,
/// and multipart uploads with the bytes of their parts; and the trash's version records' ids.
fn provider_counts(endpoint: &str, bucket: &str, prefix: &str) -> Value {
    let script = format!(
        r#"
import boto3, json
s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1',
                  aws_access_key_id='test', aws_secret_access_key='test')
versions, markers = [], 0
for page in s3.get_paginator('list_object_versions').paginate(Bucket='{bucket}', Prefix='{prefix}'):
    versions += [[v['Key'][len('{prefix}'):], v['VersionId'], v['Size'], v['IsLatest']] for v in page.get('Versions', [])]
    markers += len(page.get('DeleteMarkers', []))
uploads, parts = 0, 0
for u in s3.list_multipart_uploads(Bucket='{bucket}', Prefix='{prefix}').get('Uploads', []):
    uploads += 1
    parts += sum(p['Size'] for p in s3.list_parts(Bucket='{bucket}', Key=u['Key'], UploadId=u['UploadId']).get('Parts', []))
hidden = []
for key, vid, size, latest in versions:
    if latest and key.startswith('regsweep-trash/') and '/versions/' in key:
        record = json.loads(s3.get_object(Bucket='{bucket}', Key='{prefix}' + key)['Body'].read())
        hidden.append([key.split('/versions/', 1)[1], record['version_id']])
print(json.dumps({{'versions': versions, 'markers': markers, 'uploads': uploads, 'parts': parts, 'hidden': hidden}}))
"#
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn du_bucket(storage: &str, endpoint: &str) -> Value {
    let out = regsweep()
        .args([
            "du",
            storage,
            "--bucket",
            "--json",
            "--endpoint-url",
            endpoint,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The categories sum to the total, each byte once.
fn assert_sums(b: &Value) {
    let r = &b["registry"];
    let sum = n(&r["live_bytes"])
        + n(&r["unreferenced_bytes"])
        + n(&r["untagged_bytes"])
        + n(&r["uploads_bytes"])
        + n(&r["links_bytes"])
        + b["noncurrent_versions"]["bytes"].as_u64().unwrap_or(0)
        + b["multipart_uploads"]["bytes"].as_u64().unwrap_or(0)
        + n(&b["outside_layout"]["bytes"])
        + n(&b["trash"]["bytes"]);
    assert_eq!(
        sum,
        n(&b["total_bytes"]),
        "the categories sum to the total: {b:#}"
    );
}

/// A bucket the registry filled: two images pushed, a tag moved, one image deleted, garbage
/// collected into the trash; keys that are not the registry's; an incomplete multipart upload.
fn fill(dir: &Path, s3: &support::s3::S3Server, bucket: &str, versioned: bool) {
    s3.create_bucket(bucket);
    if versioned {
        s3.enable_versioning(bucket);
    }
    let sub = dir.join(bucket);
    std::fs::create_dir_all(&sub).unwrap();
    let reg = Registry::start_s3(&sub, s3, bucket);
    let a = sub.join("a");
    let img_a = oci::single(&a, &["bucket-base", "bucket-a"]);
    let b = sub.join("b");
    oci::single(&b, &["bucket-base", "bucket-b"]);
    let src = |p: &Path| format!("oci:{}:latest", p.display());
    skopeo_copy(&src(&a), &reg.image("app", "v1"), &[]);
    skopeo_copy(&src(&b), &reg.image("app", "v2"), &[]);
    // v1 moved onto b's image (its link overwritten), then a's manifest deleted.
    skopeo_copy(&src(&b), &reg.image("app", "v1"), &[]);
    reg.delete_manifest("app", &img_a.manifest);
    drop(reg);
    s3.put_object(bucket, "store/backups/2026-11.tar", &[7u8; 3000]);
    s3.put_object(
        bucket,
        "store/docker/registry/v2/blobs/sha256/notes.txt",
        b"why these blobs are here",
    );
    s3.abandon_multipart(
        bucket,
        "store/docker/registry/v2/blobs/sha256/zz/big/data",
        6 << 20,
    );
    support::next_second();
    // A deleting run into the trash: on a versioned bucket it hides versions instead of copying.
    let out = regsweep()
        .args([
            "gc",
            &format!("s3://{bucket}/store"),
            "-m",
            "--delete",
            "--force",
        ])
        .args([
            "--grace",
            "0s",
            "--trash",
            "7d",
            "--endpoint-url",
            &s3.endpoint(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_byte_of_a_bucket_is_in_one_category_and_the_provider_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(&dir.path().join("moto.log"));
    let endpoint = s3.endpoint();
    for (bucket, versioned) in [("versioned", true), ("plain", false)] {
        fill(dir.path(), &s3, bucket, versioned);
        let report = du_bucket(&format!("s3://{bucket}/store"), &endpoint);
        let b = &report["bucket"];
        let p = provider_counts(&endpoint, bucket, "store/");
        let versions = p["versions"].as_array().unwrap();
        let hidden: std::collections::BTreeSet<(String, String)> = (p["hidden"].as_array())
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect();
        let listed_bytes: u64 = versions.iter().map(|v| n(&v[2])).sum();
        assert_eq!(
            n(&b["total_bytes"]),
            listed_bytes + n(&p["parts"]),
            "{bucket}: the total is every version and every part: {b:#}"
        );
        assert_sums(b);
        assert_eq!(
            (
                n(&b["multipart_uploads"]["count"]),
                n(&b["multipart_uploads"]["bytes"])
            ),
            (n(&p["uploads"]), n(&p["parts"])),
            "{bucket}"
        );
        assert_eq!(n(&p["parts"]), 6 << 20);
        // Outside the layout: the two keys the test put there, by name.
        let outside = &b["outside_layout"];
        assert_eq!(n(&outside["count"]), 2, "{bucket}: {outside:#}");
        assert_eq!(n(&outside["bytes"]), 3000 + 24);
        let examples: Vec<&str> = (outside["examples"].as_array().unwrap().iter())
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(
            examples,
            [
                "backups/2026-11.tar",
                "docker/registry/v2/blobs/sha256/notes.txt"
            ]
        );
        // The trash: its current keys, and the versions it hid, once.
        let is_trash = |key: &str| key.starts_with("regsweep-trash/") || key == "regsweep.lock";
        let trash_bytes: u64 = versions
            .iter()
            .filter(|v| {
                let key = v[0].as_str().unwrap();
                is_trash(key)
                    || hidden.contains(&(key.to_owned(), v[1].as_str().unwrap().to_owned()))
            })
            .map(|v| n(&v[2]))
            .sum();
        assert_eq!(n(&b["trash"]["bytes"]), trash_bytes, "{bucket}: {b:#}");
        assert!(
            trash_bytes > 0,
            "{bucket}: the trash holds the collected garbage"
        );
        let current: u64 = versions
            .iter()
            .filter(|v| v[3] == true)
            .map(|v| n(&v[2]))
            .sum();
        assert_eq!(n(&b["current"]["bytes"]), current, "{bucket}");
        if versioned {
            let noncurrent: Vec<&Value> = versions
                .iter()
                .filter(|v| v[3] == false)
                .filter(|v| {
                    let key = v[0].as_str().unwrap();
                    !is_trash(key)
                        && !hidden.contains(&(key.to_owned(), v[1].as_str().unwrap().to_owned()))
                })
                .collect();
            assert!(
                !noncurrent.is_empty(),
                "a tag was overwritten: older versions"
            );
            assert_eq!(
                (
                    n(&b["noncurrent_versions"]["count"]),
                    n(&b["noncurrent_versions"]["bytes"])
                ),
                (
                    noncurrent.len() as u64,
                    noncurrent.iter().map(|v| n(&v[2])).sum::<u64>()
                ),
                "{bucket}"
            );
            assert!(n(&p["markers"]) > 0, "the delete left markers");
            assert_eq!(n(&b["delete_markers"]["count"]), n(&p["markers"]));
            assert!(
                !hidden.is_empty(),
                "the trash hid versions instead of copying"
            );
        } else {
            assert!(b.get("noncurrent_versions").is_none(), "{b:#}");
            assert!(b.get("delete_markers").is_none(), "{b:#}");
            assert_eq!(p["markers"], 0);
        }
        // The registry's blob data splits as du splits it.
        let r = &b["registry"];
        assert_eq!(
            n(&r["unreferenced_bytes"]),
            n(&report["reclaimable"]["unreferenced_bytes"]),
            "{bucket}"
        );
        assert_eq!(
            n(&r["untagged_bytes"]),
            n(&report["reclaimable"]["untagged_bytes"]),
            "{bucket}"
        );
        assert!(n(&r["live_bytes"]) > 0 && n(&r["links_bytes"]) > 0);
        // Priced: every category at its class's price, and the total their sum.
        let price = dir.path().join("price.yml");
        std::fs::write(&price, "STANDARD: 0.023\n").unwrap();
        let priced = regsweep()
            .args(["du", &format!("s3://{bucket}/store"), "--bucket", "--json"])
            .args(["--endpoint-url", &endpoint, "--price"])
            .arg(&price)
            .output()
            .unwrap();
        assert!(
            priced.status.success(),
            "{}",
            String::from_utf8_lossy(&priced.stderr)
        );
        let priced: Value = serde_json::from_slice(&priced.stdout).unwrap();
        let cost = &priced["bucket"]["monthly_cost"];
        let expected = n(&b["total_bytes"]) as f64 / (1u64 << 30) as f64 * 0.023;
        let total = cost["total"].as_f64().unwrap();
        assert!(
            (total - expected).abs() < 1e-12,
            "{bucket}: {cost:#} against {expected}"
        );
        let by: f64 = (cost["by_category"].as_object().unwrap().values())
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((by - total).abs() < 1e-12, "{cost:#}");
        // One pass: the version listing answers du's own listings, so --bucket lists no more
        // than du does (S3's requests, from the metrics file).
        let list_requests = |extra: &[&str]| {
            let prom = dir.path().join(format!("{bucket}-{}.prom", extra.len()));
            let out = regsweep()
                .args([
                    "du",
                    &format!("s3://{bucket}/store"),
                    "--endpoint-url",
                    &endpoint,
                ])
                .args(extra)
                .arg("--metrics-file")
                .arg(&prom)
                .output()
                .unwrap();
            assert!(out.status.success());
            support::metrics::parse_metrics(&prom)
                .iter()
                .find(|s| {
                    s.name == "regsweep_s3_requests_total"
                        && s.labels.get("kind").map(String::as_str) == Some("list")
                })
                .expect("list requests")
                .value
        };
        let (plain, with_bucket) = (list_requests(&[]), list_requests(&["--bucket"]));
        assert!(
            with_bucket <= plain,
            "{bucket}: du --bucket made {with_bucket} list requests, du {plain}"
        );
        // The human table ends with the auditor's sentence.
        let human = regsweep()
            .args([
                "du",
                &format!("s3://{bucket}/store"),
                "--bucket",
                "--endpoint-url",
                &endpoint,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&human.stdout);
        assert!(
            text.contains("The registry's live images are") && text.contains("outside the layout"),
            "{text}"
        );
    }
}

#[test]
fn on_a_filesystem_bucket_counts_every_file_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = support::copy_of_demo(dir.path());
    std::fs::create_dir_all(root.join("backups")).unwrap();
    std::fs::write(root.join("backups/x.tar"), [1u8; 500]).unwrap();
    std::fs::write(
        root.join("docker/registry/v2/blobs/sha256/notes.txt"),
        b"notes",
    )
    .unwrap();
    let metrics = dir.path().join("du.prom");
    let page = dir.path().join("du.html");
    let out = regsweep()
        .arg("du")
        .arg(&root)
        .args(["--bucket", "--json", "--metrics-file"])
        .arg(&metrics)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success());
    // The page shows the same split: each category's row carries its bytes.
    let html = std::fs::read_to_string(&page).unwrap();
    let row = |category: &str| -> u64 {
        let start = html
            .find(&format!("<tr data-category=\"{category}\">"))
            .unwrap_or_else(|| panic!("no row {category} on the page"));
        let rest = &html[start..];
        let at = rest.find("data-bytes=\"").unwrap() + "data-bytes=\"".len();
        rest[at..at + rest[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    // The metrics file has the categories as series, which sum to the total.
    let samples = support::metrics::parse_metrics(&metrics);
    let by_category: f64 = (samples.iter())
        .filter(|s| s.name == "regsweep_bucket_bytes")
        .map(|s| s.value)
        .sum();
    let total = (samples.iter())
        .find(|s| s.name == "regsweep_bucket_total_bytes")
        .expect("regsweep_bucket_total_bytes")
        .value;
    assert_eq!(by_category, total);
    // A price table that is no map, or lacks a class, is refused by name.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "x\n").unwrap();
    let refused = regsweep()
        .arg("du")
        .arg(&root)
        .args(["--bucket", "--price"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("bad.yml"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &report["bucket"];
    let files = support::files_ending(&root, "");
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).unwrap().len())
        .sum();
    assert_eq!(n(&b["current"]["count"]), files.len() as u64);
    assert_eq!(n(&b["total_bytes"]), bytes);
    assert_sums(b);
    assert_eq!(n(&b["outside_layout"]["count"]), 2);
    assert_eq!(n(&b["outside_layout"]["bytes"]), 505);
    assert_eq!(row("outside_layout"), 505);
    assert_eq!(row("live"), n(&b["registry"]["live_bytes"]));
    assert_eq!(row("links"), n(&b["registry"]["links_bytes"]));
    assert_eq!(row("total"), n(&b["total_bytes"]));
    assert!(html.contains("<code>backups/x.tar</code>"));
    assert!(b["note"].as_str().unwrap().contains("no older versions"));
    assert!(b.get("noncurrent_versions").is_none());
    assert_eq!(
        n(&b["registry"]["unreferenced_bytes"]),
        n(&report["reclaimable"]["unreferenced_bytes"])
    );
}
