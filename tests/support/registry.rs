//! The real registry (`docker-registry serve`) on a loopback port with a temporary root.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry; stopped when dropped.
pub struct Registry {
    pub root: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    child: Child,
}

/// An HTTP response: status, headers (lower-case names) and body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry whose filesystem root is `dir/root`, with deletes enabled.
    pub fn start(dir: &Path) -> Registry {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let section = format!("  filesystem:\n    rootdirectory: {}\n", root.display());
        Registry::start_with(dir, &section, root)
    }

    /// Starts a registry on S3: a bucket of the loopback S3 server, keys under `store/`.
    pub fn start_s3(dir: &Path, s3: &super::s3::S3Server, bucket: &str) -> Registry {
        let section = format!(
            "  s3:\n    bucket: {bucket}\n    region: us-east-1\n    regionendpoint: {}\n    \
             rootdirectory: /store\n    accesskey: test\n    secretkey: test\n    forcepathstyle: true\n    \
             secure: false\n    v4auth: true\n",
            s3.endpoint()
        );
        Registry::start_with(dir, &section, dir.join("no-local-root"))
    }

    /// As [`Registry::start_s3`], with `storage_extra` (lines under `storage:`, such as a cache)
    /// and logging every request.
    pub fn start_s3_with(
        dir: &Path,
        s3: &super::s3::S3Server,
        bucket: &str,
        storage_extra: &str,
    ) -> Registry {
        let section = format!(
            "  s3:\n    bucket: {bucket}\n    region: us-east-1\n    regionendpoint: {}\n    \
             rootdirectory: /store\n    accesskey: test\n    secretkey: test\n    forcepathstyle: true\n    \
             secure: false\n    v4auth: true\n{storage_extra}",
            s3.endpoint()
        );
        Registry::start_configured(dir, &section, "", dir.join("no-local-root"), "info")
    }

    /// Starts a registry with the given `storage:` driver section (indented by two spaces).
    pub fn start_with(dir: &Path, storage_section: &str, root: PathBuf) -> Registry {
        Registry::start_configured(dir, storage_section, "", root, "warn")
    }

    /// Starts a registry whose filesystem root is `dir/root`, with deletes enabled and `extra`
    /// (top-level YAML sections) added to its config.
    pub fn start_extra(dir: &Path, extra: &str) -> Registry {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let section = format!("  filesystem:\n    rootdirectory: {}\n", root.display());
        Registry::start_configured(dir, &section, extra, root, "warn")
    }

    /// Starts a registry whose filesystem root is `dir/root`, caching blob descriptors in the redis
    /// server described by `redis_section` (the top-level `redis:` section, without its title).
    pub fn start_redis_cached(dir: &Path, redis_section: &str) -> Registry {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let section = format!(
            "  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: redis\n",
            root.display()
        );
        Registry::start_configured(
            dir,
            &section,
            &format!("redis:\n{redis_section}"),
            root,
            "warn",
        )
    }

    /// Starts a registry on `dir/root` that logs every request (`level: info`) to `dir/registry.log`:
    /// the records pulls are read from.
    pub fn start_logging(dir: &Path) -> Registry {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let section = format!("  filesystem:\n    rootdirectory: {}\n", root.display());
        Registry::start_configured(dir, &section, "", root, "info")
    }

    fn start_configured(
        dir: &Path,
        storage_section: &str,
        extra: &str,
        root: PathBuf,
        level: &str,
    ) -> Registry {
        Registry::start_wrapped(dir, storage_section, extra, root, level, &[])
    }

    /// Starts a registry on `dir/root` (keeping what it holds), with `extra` top-level sections,
    /// logging requests, and run by `wrapper` (a command line the registry's own is appended to,
    /// such as strace holding one path's opens).
    pub fn start_held(
        dir: &Path,
        storage_extra: &str,
        extra: &str,
        wrapper: &[String],
    ) -> Registry {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let section = format!(
            "  filesystem:\n    rootdirectory: {}\n{storage_extra}",
            root.display()
        );
        Registry::start_wrapped(dir, &section, extra, root, "info", wrapper)
    }

    /// The registry's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn start_wrapped(
        dir: &Path,
        storage_section: &str,
        extra: &str,
        root: PathBuf,
        level: &str,
        wrapper: &[String],
    ) -> Registry {
        let port = free_port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: {level}\nstorage:\n{storage_section}  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{extra}"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("docker-registry");
                c
            }
            None => Command::new("docker-registry"),
        };
        // A process group of its own, so that dropping the registry also ends what a wrapper runs
        // (killing `strace` leaves the registry it traces running).
        let child = command
            .process_group(0)
            .env_remove("AWS_CA_BUNDLE")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry must be installed (apt-get install docker-registry)");
        let mut reg = Registry {
            root,
            config,
            port,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reg.try_http("GET", "/v2/", &[], &[])
                && r.status == 200
            {
                break;
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!(
                    "registry exited early ({status}); see {}",
                    dir.join("registry.log").display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "registry did not answer on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Writes `storage.maintenance.readonly.enabled: true` into the config, as an operator does
    /// before a maintenance window (the running registry keeps serving pulls).
    pub fn set_read_only(&self) {
        let config = std::fs::read_to_string(&self.config).unwrap();
        let config = config.replacen(
            "storage:\n",
            "storage:\n  maintenance:\n    readonly:\n      enabled: true\n",
            1,
        );
        std::fs::write(&self.config, config).unwrap();
    }

    /// The repositories `GET /v2/_catalog` lists.
    pub fn catalog(&self) -> Vec<String> {
        let r = self.http("GET", "/v2/_catalog?n=1000", &[], &[]);
        assert_eq!(r.status, 200, "GET /v2/_catalog");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    }

    /// `docker://127.0.0.1:PORT/repo:tag`
    pub fn image(&self, repo: &str, tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo}:{tag}", self.port)
    }

    fn try_http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        http_to(self.port, method, path, headers, body)
    }

    /// Sends one request to the registry's API.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_http(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Puts a manifest under `reference` (a tag or its digest); returns the response.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.http(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            body,
        )
    }

    /// Gets a manifest by tag or digest, accepting every manifest type (so that a Docker schema 2
    /// manifest is not converted to schema 1).
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Response {
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json";
        self.http(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", accept)],
            &[],
        )
    }

    /// Gets a blob of a repository.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Response {
        self.http("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], &[])
    }

    /// Deletes a manifest through the API.
    pub fn delete_manifest(&self, repo: &str, digest: &str) {
        let r = self.http(
            "DELETE",
            &format!("/v2/{repo}/manifests/{digest}"),
            &[],
            &[],
        );
        assert_eq!(r.status, 202, "DELETE manifest {repo}@{digest}");
    }

    /// Starts an upload; returns its id and the path to continue it at.
    fn start_upload(&self, repo: &str) -> (String, String) {
        let r = self.http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
        assert_eq!(r.status, 202, "POST upload");
        let id = r
            .header("docker-upload-uuid")
            .expect("upload uuid")
            .to_owned();
        let location = r.header("location").expect("location");
        let path = location
            .split_once(&format!("127.0.0.1:{}", self.port))
            .map_or(location, |p| p.1);
        (id, path.to_owned())
    }

    /// Starts an upload, sends part of a blob, and abandons it; returns the upload's id.
    pub fn abandon_upload(&self, repo: &str, data: &[u8]) -> String {
        let (id, path) = self.start_upload(repo);
        let r = self.http(
            "PATCH",
            &path,
            &[("Content-Type", "application/octet-stream")],
            data,
        );
        assert_eq!(r.status, 202, "PATCH upload");
        id
    }

    /// Pushes a blob on its own (no manifest refers to it): the repository gets a `_layers` link.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = super::oci::sha256(data);
        self.push_blob_as(repo, data, &d);
        d
    }

    /// Pushes a blob under `digest`, of either algorithm the registry takes (a sha512 upload gets
    /// an alias link beside its sha256 one).
    pub fn push_blob_as(&self, repo: &str, data: &[u8], d: &str) {
        let (_, path) = self.start_upload(repo);
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = self.http(
            "PUT",
            &format!("{path}{sep}digest={d}"),
            &[("Content-Type", "application/octet-stream")],
            data,
        );
        assert_eq!(r.status, 201, "PUT blob {d}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one HTTP/1.1 request to a loopback port and reads the status, headers and body.
pub fn http_to(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
        port,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..split]);
    let head = text.as_ref();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {head}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    Ok(Response {
        status,
        headers,
        body,
    })
}
