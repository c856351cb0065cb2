//! The fault-injecting proxy (`fault_proxy.py`) between regsweep and the loopback S3 server, and
//! the folder through which it holds a chosen request until the test releases it.

use super::registry::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proxy {
    pub port: u16,
    stats: PathBuf,
    child: Child,
}

impl Proxy {
    pub fn start(dir: &Path, upstream: &str) -> Proxy {
        Proxy::start_with(dir, upstream, &[])
    }

    pub fn start_with(dir: &Path, upstream: &str, extra: &[&str]) -> Proxy {
        let port = free_port();
        let stats = dir.join("faults.json");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_proxy.py");
        let child = Command::new("python3")
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--upstream",
                upstream,
                "--stats",
            ])
            .arg(&stats)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the fault proxy did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Proxy { port, stats, child }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.stats).unwrap_or_default())
            .unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder where the proxy signals a held request (`held`) and the test releases it (`go`).
pub struct Hold(PathBuf);

impl Hold {
    pub fn new(dir: &Path) -> Hold {
        let hold = Hold(dir.join("hold"));
        std::fs::create_dir_all(&hold.0).unwrap();
        hold
    }

    /// The folder, for the proxy's --hold-dir.
    pub fn dir(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Waits until a request is held or `child` exits; true when a request is held.
    pub fn wait(&self, child: &mut Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if self.0.join("held").exists() {
                return true;
            }
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "no request held and no exit in 120 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Releases the held request and waits until the proxy has forwarded (or dropped) it.
    pub fn release(&self) {
        std::fs::write(self.0.join("go"), b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.0.join("held").exists() {
            assert!(Instant::now() < deadline, "the proxy did not release");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
