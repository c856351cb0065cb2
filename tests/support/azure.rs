//! A real Azure Blob service on loopback: Azurite (npm `azurite`, installed by .ci/run into
//! `target/ci-npm` of the checkout), blob service only, in memory, with the emulator's
//! well-known account. Requests the tests send themselves (create a container, put a blob as
//! an older registry named it) are signed with regsweep's own Shared Key signer.

use super::registry::{free_port, http_to};
use regsweep::storage::azure::auth::{Credentials, EMULATOR_ACCOUNT, EMULATOR_KEY, Signer, ToSign};
use regsweep::storage::azure::{AzureOptions, AzureStorage};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Azurite; stopped when dropped.
pub struct AzureServer {
    pub port: u16,
    child: Child,
    signer: Signer,
}

/// `azurite-blob` from the checkout's npm folder, else from PATH.
fn binary() -> String {
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/ci-npm/node_modules/.bin/azurite-blob");
    if local.exists() {
        return local.display().to_string();
    }
    "azurite-blob".into()
}

impl AzureServer {
    pub fn start(log: &std::path::Path) -> AzureServer {
        let port = free_port();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(binary())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("azurite-blob must be installed (npm install --prefix target/ci-npm azurite, see .ci/run)");
        let signer = Signer::new(Credentials::shared_key(EMULATOR_ACCOUNT, EMULATOR_KEY).unwrap());
        let mut server = AzureServer {
            port,
            child,
            signer,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_to(port, "GET", "/", &[], &[]).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("azurite exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "azurite did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The Blob service's URL (path style, as the emulator serves it).
    pub fn service_url(&self) -> String {
        format!("http://127.0.0.1:{}/{EMULATOR_ACCOUNT}", self.port)
    }

    /// Sends a request signed with the emulator's key; `path` below the account, encoded.
    pub fn signed(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> super::registry::Response {
        let path = format!("/{EMULATOR_ACCOUNT}{path}");
        let date = regsweep::storage::azure::http_date(std::time::SystemTime::now());
        let mut all: Vec<(&str, String)> =
            headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        all.push(("x-ms-date", date));
        all.push(("x-ms-version", "2021-08-06".into()));
        all.push(("content-length", body.len().to_string()));
        let q: Vec<(&str, String)> = query.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let auth = self
            .signer
            .shared_key(&ToSign {
                method,
                path: &path,
                query: &q,
                headers: &all,
            })
            .unwrap();
        all.retain(|(k, _)| *k != "content-length");
        all.push(("authorization", auth));
        let mut target = path.clone();
        if !query.is_empty() {
            let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            target.push('?');
            target.push_str(&qs.join("&"));
        }
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http_to(self.port, method, &target, &refs, body).unwrap()
    }

    pub fn create_container(&self, container: &str) {
        let r = self.signed(
            "PUT",
            &format!("/{container}"),
            &[("restype", "container")],
            &[],
            &[],
        );
        assert_eq!(
            r.status,
            201,
            "create container {container}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// Writes a block blob named `name` exactly (a leading `/` kept, as registry 2.8 wrote).
    pub fn put_blob(&self, container: &str, name: &str, bytes: &[u8]) {
        let path = format!(
            "/{container}/{}",
            regsweep::storage::http::encode_path(name)
        );
        let r = self.signed("PUT", &path, &[], &[("x-ms-blob-type", "BlockBlob")], bytes);
        assert_eq!(r.status, 201, "put {name}");
    }

    /// Writes an append blob holding `bytes`, as registry 3.0 to 3.1.1 wrote links.
    pub fn put_append_blob(&self, container: &str, name: &str, bytes: &[u8]) {
        let path = format!(
            "/{container}/{}",
            regsweep::storage::http::encode_path(name)
        );
        let r = self.signed("PUT", &path, &[], &[("x-ms-blob-type", "AppendBlob")], &[]);
        assert_eq!(r.status, 201, "create append blob {name}");
        let r = self.signed("PUT", &path, &[("comp", "appendblock")], &[], bytes);
        assert_eq!(r.status, 201, "append to {name}");
    }

    /// Turns blob soft delete on for `days`.
    pub fn enable_soft_delete(&self, days: u32) {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties>\
             <DeleteRetentionPolicy><Enabled>true</Enabled><Days>{days}</Days>\
             </DeleteRetentionPolicy></StorageServiceProperties>"
        );
        let r = self.signed(
            "PUT",
            "/",
            &[("comp", "properties"), ("restype", "service")],
            &[("content-type", "application/xml")],
            body.as_bytes(),
        );
        assert_eq!(
            r.status,
            202,
            "set service properties: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// The store at `prefix` (empty or ending with `/`) in `container`.
    pub fn storage(&self, container: &str, prefix: &str) -> AzureStorage {
        self.storage_via(container, prefix, self.port)
    }

    /// The same store, reached through `port` on loopback (a proxy in front of the emulator).
    pub fn storage_via(&self, container: &str, prefix: &str, port: u16) -> AzureStorage {
        AzureStorage::open(AzureOptions {
            account: EMULATOR_ACCOUNT.into(),
            container: container.into(),
            prefix: prefix.into(),
            account_key: Some(EMULATOR_KEY.into()),
            service_url: Some(format!("http://127.0.0.1:{port}/{EMULATOR_ACCOUNT}")),
            max_in_flight: 16,
            ..AzureOptions::default()
        })
        .unwrap()
    }
}

impl Drop for AzureServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
