//! A real S3 API server on loopback (moto's server, from PyPI's `moto[server]`), started as
//! `python3 -m moto.server` so that it does not depend on where pip put the `moto_server` script.

use super::registry::{free_port, http_to};
use regsweep::storage::Storage;
use regsweep::storage::s3::{S3Options, S3Storage};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running S3 server; stopped when dropped.
pub struct S3Server {
    pub port: u16,
    child: Child,
}

impl S3Server {
    pub fn start(log: &std::path::Path) -> S3Server {
        let port = free_port();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("python3 with moto[server] must be installed (pip install 'moto[server]')");
        let mut server = S3Server { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_to(port, "GET", "/", &[], &[]).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto_server exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts a multipart upload of `key` with one part of `part_size` bytes and leaves it incomplete,
    /// as an interrupted push does; returns its upload id. Uses boto3 (a dependency of moto).
    pub fn abandon_multipart(&self, bucket: &str, key: &str, part_size: usize) -> String {
        let script = format!(
            "import boto3\n\
             s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1',\n\
               aws_access_key_id='test', aws_secret_access_key='test')\n\
             u = s3.create_multipart_upload(Bucket='{bucket}', Key='{key}')['UploadId']\n\
             s3.upload_part(Bucket='{bucket}', Key='{key}', UploadId=u, PartNumber=1, Body=b'x' * {part_size})\n\
             print(u)\n",
            self.endpoint()
        );
        let out = super::run(
            Command::new("python3")
                .arg("-c")
                .arg(script)
                .env_remove("AWS_CA_BUNDLE")
                .env_remove("AWS_PROFILE"),
        );
        out.trim().to_owned()
    }

    /// The library's own backend on `bucket`, keys under `store/` (where the test registry writes).
    pub fn storage(&self, bucket: &str) -> S3Storage {
        S3Storage::open(S3Options {
            bucket: bucket.into(),
            prefix: "store/".into(),
            endpoint: Some(self.endpoint()),
            access_key: Some("test".into()),
            secret_key: Some("test".into()),
            region: Some("us-east-1".into()),
            max_in_flight: 4,
            ..S3Options::default()
        })
        .unwrap()
    }

    /// Every key of the store in `bucket` below `store/`, listed directly through the library's
    /// backend; the lock object a deleting run holds beside `docker/` is not the store's.
    pub fn keys(&self, bucket: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.storage(bucket)
            .list(
                "",
                &mut |e| {
                    if e.key != regsweep::storage::lock_record::LOCK_KEY {
                        out.insert(e.key);
                    }
                },
                &mut |n| panic!("{n:?}"),
            )
            .unwrap();
        out
    }

    /// Writes an object as any S3 client would (boto3, a dependency of moto).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        self.put_objects(bucket, &[(key.to_owned(), body.to_vec())]);
    }

    /// Writes objects as any S3 client would (boto3), in one process. Keys and bodies go through
    /// standard input as JSON, so a key may hold any character.
    pub fn put_objects(&self, bucket: &str, objects: &[(String, Vec<u8>)]) {
        let script = format!(
            "import boto3, json, sys\n\
             s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1',\n\
               aws_access_key_id='test', aws_secret_access_key='test')\n\
             for key, body in json.load(sys.stdin):\n\
             \x20   s3.put_object(Bucket='{bucket}', Key=key, Body=bytes(body))\n",
            self.endpoint()
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let json = serde_json::to_vec(objects).unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &json).unwrap();
        let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
        assert!(
            child.wait().unwrap().success(),
            "put_object {bucket}: {keys:?}"
        );
    }

    /// Every object version and delete marker in `bucket` (ListObjectVersions through boto3), as
    /// (key, version id, whether it is a delete marker).
    pub fn versions(&self, bucket: &str) -> Vec<(String, String, bool)> {
        let script = format!(
            "import boto3, json\n\
             s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1',\n\
               aws_access_key_id='test', aws_secret_access_key='test')\n\
             out = []\n\
             for page in s3.get_paginator('list_object_versions').paginate(Bucket='{bucket}'):\n\
             \x20   out += [(v['Key'], v['VersionId'], False) for v in page.get('Versions', [])]\n\
             \x20   out += [(m['Key'], m['VersionId'], True) for m in page.get('DeleteMarkers', [])]\n\
             print(json.dumps(out))\n",
            self.endpoint()
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
            "list_object_versions {bucket}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Turns versioning on for `bucket`.
    pub fn enable_versioning(&self, bucket: &str) {
        let on = http_to(
            self.port,
            "PUT",
            &format!("/{bucket}?versioning"),
            &[],
            b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
        )
        .unwrap();
        assert_eq!(on.status, 200, "versioning on for {bucket}");
    }

    pub fn create_bucket(&self, bucket: &str) {
        let r = http_to(self.port, "PUT", &format!("/{bucket}"), &[], &[]).unwrap();
        assert_eq!(r.status, 200, "create bucket {bucket}");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
