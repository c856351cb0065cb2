//! The registry's blob-descriptor cache (`storage.cache.blobdescriptor`), evicted after a sweep.
//!
//! A registry that caches blob descriptors answers from its cache that a blob exists, without
//! looking at the store. After a sweep the cache still names the swept blobs: a client pushing the
//! same image again is told its layers (and the manifest's own data) are there, skips them, and the
//! image it "pushed" never pulls. So every deleting run evicts exactly what it deleted, with the keys
//! the registry writes (`registry/storage/cache/redis/redis.go`, the same in 2.8 and 3.x):
//!
//! - a hash `blobs::<digest>` per blob: deleted for each swept blob (layers, configs and manifests);
//! - a set `repository::<name>::blobs` of the digests a repository links, and a hash
//!   `repository::<name>::blobs::<digest>`: for each removed link (a `_layers` link or a manifest
//!   revision link), the digest leaves the set and the hash is deleted.
//!
//! Keys are evicted batch by batch after the sweep deleted the objects, in one pipeline a batch. A
//! deleting run checks first that the cache can be reached and written ([`Evictor::connect`]), and
//! refuses to start otherwise; a cache that fails halfway stops the sweep, and the report names the
//! keys left. A registry caching `inmemory` cannot be reached from outside: it must be restarted.

use crate::model::digest::Digest;
use crate::pipeline::execute::sweep::AfterDelete;
use crate::pipeline::plan::Plan;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Redis commands sent in one pipeline when counting what the cache holds.
const PIPELINE: usize = 1000;

/// What the registry caches blob descriptors in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSpec {
    Redis(Box<RedisSpec>),
    /// In the registry's memory: nothing to evict from outside, the registry must be restarted.
    InMemory,
    /// Redis, configured in a way regsweep cannot address (a cluster, sentinels, a bad section).
    Unusable {
        why: String,
    },
}

/// A redis server to evict from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSpec {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: Option<RedisTls>,
    pub dial_timeout: Duration,
    pub read_timeout: Duration,
    /// Where the settings came from: `config.yml` or `--redis`.
    pub from: &'static str,
}

/// TLS to the redis server: client certificate and roots (the system's when none are named).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub root_cas: Vec<PathBuf>,
}

/// Default timeouts, as the registry's client has them (go-redis: 5 s to dial, 3 s to read).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the registry's blob-descriptor cache cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// `--redis` (or the config's `redis:` section) does not name a cache.
    #[error("{0}")]
    BadAddress(String),
    /// The cache could not be reached, or not written.
    #[error("{0}")]
    Unreachable(String),
}

impl RedisSpec {
    /// From a URL: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS.
    pub fn from_url(url: &str) -> Result<RedisSpec, CacheError> {
        RedisSpec::parse_url(url).map_err(CacheError::BadAddress)
    }

    fn parse_url(url: &str) -> Result<RedisSpec, String> {
        let bad = |why: &str| {
            format!("--redis {url:?}: {why} (expected redis://[user:password@]host[:port][/db])")
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("redis://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("rediss://") {
            (true, r)
        } else {
            return Err(bad("not a redis:// or rediss:// URL"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    Some(percent_decode(user)).filter(|u| !u.is_empty()),
                    Some(percent_decode(pass)),
                ),
                None => (Some(percent_decode(u)).filter(|u| !u.is_empty()), None),
            },
        };
        let (host, port) = host_port(hostport).map_err(|e| bad(&e))?;
        let db = match path.trim_end_matches('/') {
            "" => 0,
            d => d
                .parse()
                .map_err(|_| bad(&format!("{d:?} is not a db number")))?,
        };
        Ok(RedisSpec {
            host,
            port,
            db,
            username,
            password,
            tls: tls.then(RedisTls::default),
            dial_timeout: DIAL_TIMEOUT,
            read_timeout: READ_TIMEOUT,
            from: "--redis",
        })
    }

    /// The server as a URL without its password: `redis://127.0.0.1:6379/2`.
    pub fn address(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}/{}", self.port, self.db)
    }

    fn client(&self) -> Result<redis::Client, String> {
        let addr = match &self.tls {
            None => redis::ConnectionAddr::Tcp(self.host.clone(), self.port),
            Some(_) => redis::ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            },
        };
        let mut settings = redis::RedisConnectionInfo::default().set_db(self.db);
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        let info = redis::IntoConnectionInfo::into_connection_info(addr)
            .map_err(|e| e.to_string())?
            .set_redis_settings(settings);
        let certs = self
            .tls
            .as_ref()
            .filter(|t| t.certificate.is_some() || t.key.is_some() || !t.root_cas.is_empty());
        match certs {
            None => redis::Client::open(info).map_err(|e| e.to_string()),
            Some(t) => {
                let read =
                    |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
                let client_tls = match (&t.certificate, &t.key) {
                    (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                        client_cert: read(c)?,
                        client_key: read(k)?,
                    }),
                    _ => None,
                };
                let mut roots = Vec::new();
                for r in &t.root_cas {
                    roots.extend(read(r)?);
                    roots.push(b'\n');
                }
                let certs = redis::TlsCertificates {
                    client_tls,
                    root_cert: (!roots.is_empty()).then_some(roots),
                };
                redis::Client::build_with_tls(info, certs).map_err(|e| e.to_string())
            }
        }
    }
}

/// `host:port`, `host` (port 6379), `[::1]:6379`.
pub(crate) fn host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: no closing ]"))?;
        (h, p.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?}: no host"));
    }
    let port = match port {
        None => 6379,
        Some(p) => p
            .parse()
            .map_err(|_| format!("{s:?}: {p:?} is not a port"))?,
    };
    Ok((host.to_owned(), port))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The keys the registry keeps for a blob.
pub fn blob_key(d: &Digest) -> String {
    format!("blobs::{d}")
}

/// The set of digests a repository links.
pub fn repository_set(repo: &str) -> String {
    format!("repository::{repo}::blobs")
}

/// The hash the registry keeps for a blob linked from a repository.
pub fn repository_blob_key(repo: &str, d: &Digest) -> String {
    format!("repository::{repo}::blobs::{d}")
}

/// What the cache holds of a plan: keys to delete and set members to remove.
fn targets(plan: &Plan) -> (Vec<String>, Vec<(String, String)>) {
    let mut keys: Vec<String> = plan.blobs().map(|(d, _)| blob_key(d)).collect();
    let mut members = Vec::new();
    for (repo, d) in plan.manifests().chain(plan.layer_links()) {
        keys.push(repository_blob_key(repo, d));
        members.push((repository_set(repo), d.to_string()));
    }
    // The registry caches a blob uploaded by an alias under the alias too.
    for (repo, a, _) in plan.alias_links() {
        keys.push(format!("blobs::{a}"));
        keys.push(format!("repository::{repo}::blobs::{a}"));
        members.push((repository_set(repo), a.to_string()));
    }
    (keys, members)
}

/// What a run did (or a dry run would do) to the registry's blob-descriptor cache.
#[derive(Debug, Clone, Serialize)]
pub struct EvictionReport {
    /// `redis`, `inmemory`, or `unusable` (redis that regsweep cannot address).
    pub kind: &'static str,
    /// The redis server, without its password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Where its settings came from: `config.yml` or `--redis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'static str>,
    /// Whether it answered (a dry run reads, a deleting run also writes); `None` when not tried.
    pub reachable: Option<bool>,
    /// Keys the plan addresses: a `blobs::` hash per swept blob, a repository hash per removed link.
    pub keys: u64,
    /// Set members the plan addresses: a digest in `repository::<name>::blobs` per removed link.
    pub set_members: u64,
    /// Of those keys, how many were evicted (a dry run: how many are cached now and would be).
    pub evicted_keys: u64,
    pub evicted_set_members: u64,
    /// Keys (and `set member` pairs) of deleted things that may still be cached: eviction failed or
    /// was not done. Empty when the cache is clean.
    pub keys_left: Vec<String>,
    /// Why eviction did not happen or stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The registry must be restarted before it takes writes again (an in-memory cache, or one that
    /// could not be evicted).
    pub restart_required: bool,
    /// What the operator still has to do, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl EvictionReport {
    fn new(kind: &'static str, plan: &Plan) -> EvictionReport {
        let (keys, members) = targets(plan);
        EvictionReport {
            kind,
            address: None,
            from: None,
            reachable: None,
            keys: keys.len() as u64,
            set_members: members.len() as u64,
            evicted_keys: 0,
            evicted_set_members: 0,
            keys_left: Vec::new(),
            error: None,
            restart_required: false,
            advice: None,
        }
    }

    /// The report of a dry run: for redis, how much of the plan is cached now (read only).
    pub fn dry_run(spec: &CacheSpec, plan: &Plan) -> EvictionReport {
        match spec {
            CacheSpec::InMemory => EvictionReport::in_memory(plan),
            CacheSpec::Unusable { why } => {
                let mut r = EvictionReport::new("unusable", plan);
                r.error = Some(why.clone());
                r.advice = Some(format!(
                    "--delete will refuse: {why}; pass --force to delete anyway, then flush the \
                     cache by hand or restart the registry with an empty one"
                ));
                r
            }
            CacheSpec::Redis(s) => {
                let mut r = EvictionReport::new("redis", plan);
                r.address = Some(s.address());
                r.from = Some(s.from);
                match Evictor::open(s).and_then(|e| e.cached(plan)) {
                    Ok((keys, members)) => {
                        r.reachable = Some(true);
                        r.evicted_keys = keys;
                        r.evicted_set_members = members;
                    }
                    Err(e) => {
                        r.reachable = Some(false);
                        r.advice = Some(format!(
                            "--delete will refuse until {} answers (or with --force, after which \
                             the cache must be flushed by hand)",
                            s.address()
                        ));
                        r.error = Some(e);
                    }
                }
                r
            }
        }
    }

    fn in_memory(plan: &Plan) -> EvictionReport {
        let mut r = EvictionReport::new("inmemory", plan);
        r.restart_required = true;
        r.advice = Some(
            "the registry caches blob descriptors in its memory (storage.cache.blobdescriptor: \
             inmemory), which regsweep cannot reach: restart the registry before it takes writes \
             again, or pushes of swept layers are skipped and their images do not pull"
                .into(),
        );
        r
    }

    /// The report of a deleting run's cache, once the sweep is done.
    pub fn after_delete(
        spec: &CacheSpec,
        plan: &Plan,
        evictor: Option<&Evictor>,
    ) -> EvictionReport {
        if let CacheSpec::InMemory = spec {
            return EvictionReport::in_memory(plan);
        }
        let mut r = EvictionReport::new(
            match spec {
                CacheSpec::Redis(_) => "redis",
                _ => "unusable",
            },
            plan,
        );
        if let CacheSpec::Redis(s) = spec {
            r.address = Some(s.address());
            r.from = Some(s.from);
        }
        if let Some(e) = evictor {
            let e = e.lock();
            r.reachable = Some(e.conn.is_some());
            r.evicted_keys = e.evicted_keys;
            r.evicted_set_members = e.evicted_set_members;
            r.keys_left = e.keys_left.clone();
            r.error = e.error.clone();
        }
        if !r.keys_left.is_empty() {
            r.restart_required = true;
            let flush = match spec {
                CacheSpec::Redis(s) => {
                    format!("redis-cli -h {} -p {} -n {} FLUSHDB", s.host, s.port, s.db)
                }
                _ => "flush the registry's redis cache".into(),
            };
            r.advice = Some(format!(
                "{} of deleted things may still be cached, so the registry may claim swept blobs \
                 exist: delete them (all listed in --json's cache.keys_left) or flush the cache \
                 ({flush}), and restart the registry, before it takes writes again",
                crate::model::text::count(r.keys_left.len() as u64, "key", "keys")
            ));
        }
        r
    }
}

impl EvictionReport {
    /// The cache's lines of the human summary (its advice goes last, see [`EvictionReport::advice`]).
    pub fn write_human(&self, out: &mut dyn std::io::Write, dry_run: bool) -> std::io::Result<()> {
        use crate::model::text::count;
        let name = match (&self.address, self.from) {
            (Some(a), Some(from)) => format!("{} (from {from})", a),
            _ => format!("{} blob-descriptor cache", self.kind),
        };
        let keys = count(self.keys, "key", "keys");
        let members = count(self.set_members, "set member", "set members");
        match (self.kind, self.reachable, dry_run) {
            ("redis", Some(true), true) => writeln!(
                out,
                "  cache         {name}: {} of {keys} and {} of {members} cached now; --delete evicts what it deletes",
                crate::model::text::thousands(self.evicted_keys),
                crate::model::text::thousands(self.evicted_set_members),
            )?,
            ("redis", Some(true), false) => writeln!(
                out,
                "  cache         {name}: evicted {} and {} (of {keys} and {members} addressed)",
                count(self.evicted_keys, "key", "keys"),
                count(self.evicted_set_members, "set member", "set members"),
            )?,
            _ => writeln!(
                out,
                "  cache         {name}: {keys} and {members} addressed"
            )?,
        }
        if let Some(e) = &self.error {
            writeln!(out, "  cache         {e}")?;
        }
        if !self.keys_left.is_empty() {
            writeln!(
                out,
                "  cache         left: {}",
                crate::model::text::first_few(&self.keys_left, 3)
            )?;
        }
        Ok(())
    }
}

/// Evicts a sweep's deletions from a redis blob-descriptor cache, batch by batch; or, without a
/// connection, records the keys left for the report. One lock: batches evict one at a time.
pub struct Evictor(Mutex<Evicting>);

#[derive(Default)]
struct Evicting {
    /// `None` for an evictor that only records.
    conn: Option<redis::Connection>,
    evicted_keys: u64,
    evicted_set_members: u64,
    keys_left: Vec<String>,
    /// Why keys were left: eviction not done, or failed.
    error: Option<String>,
    /// Eviction failed halfway: the sweep was stopped.
    failed: bool,
}

impl Evictor {
    fn lock(&self) -> std::sync::MutexGuard<'_, Evicting> {
        self.0.lock().expect("not poisoned")
    }

    fn open(spec: &RedisSpec) -> Result<Evictor, String> {
        let client = spec.client()?;
        let conn = client
            .get_connection_with_timeout(spec.dial_timeout)
            .map_err(|e| format!("{}: {e}", spec.address()))?;
        conn.set_read_timeout(Some(spec.read_timeout))
            .and_then(|_| conn.set_write_timeout(Some(spec.read_timeout)))
            .map_err(|e| format!("{}: {e}", spec.address()))?;
        Ok(Evictor(Mutex::new(Evicting {
            conn: Some(conn),
            ..Evicting::default()
        })))
    }

    /// Connects and checks that the cache can be written (a probe key is set and deleted): what a
    /// deleting run needs before it deletes anything.
    pub fn connect(spec: &RedisSpec) -> Result<Evictor, CacheError> {
        Evictor::open_written(spec).map_err(CacheError::Unreachable)
    }

    fn open_written(spec: &RedisSpec) -> Result<Evictor, String> {
        let e = Evictor::open(spec)?;
        let probe = format!("regsweep:probe:{}", std::process::id());
        redis::pipe()
            .cmd("SET")
            .arg(&probe)
            .arg("1")
            .arg("EX")
            .arg(60)
            .ignore()
            .cmd("DEL")
            .arg(&probe)
            .ignore()
            .exec(e.lock().conn.as_mut().expect("open"))
            .map_err(|err| format!("{}: cannot write: {err}", spec.address()))?;
        Ok(e)
    }

    /// An evictor that evicts nothing and records every key as left: for a run told not to evict
    /// (or forced past an unreachable cache), so that the report says what to flush.
    pub fn recording(why: String) -> Evictor {
        Evictor(Mutex::new(Evicting {
            error: Some(why),
            ..Evicting::default()
        }))
    }

    /// True when eviction failed halfway and stopped the sweep.
    pub fn failed(&self) -> bool {
        self.lock().failed
    }

    /// How many of the plan's keys and set members are cached now (reads only).
    fn cached(&self, plan: &Plan) -> Result<(u64, u64), String> {
        let (keys, members) = targets(plan);
        let mut guard = self.lock();
        let conn = guard.conn.as_mut().expect("open");
        let (mut k, mut m) = (0u64, 0u64);
        for chunk in keys.chunks(PIPELINE) {
            let mut p = redis::pipe();
            for key in chunk {
                p.cmd("EXISTS").arg(key);
            }
            let found: Vec<u64> = p.query(conn).map_err(|e| e.to_string())?;
            k += found.iter().sum::<u64>();
        }
        for chunk in members.chunks(PIPELINE) {
            let mut p = redis::pipe();
            for (set, member) in chunk {
                p.cmd("SISMEMBER").arg(set).arg(member);
            }
            let found: Vec<u64> = p.query(conn).map_err(|e| e.to_string())?;
            m += found.iter().sum::<u64>();
        }
        Ok((k, m))
    }

    /// Runs one batch's pipeline; on failure records its keys as left and the error. False once
    /// eviction has failed: the sweep stops. Without a connection, records the keys and goes on.
    fn evict(&self, keys: Vec<String>, members: Vec<(String, String)>) -> bool {
        let mut guard = self.lock();
        let e = &mut *guard;
        let result = match e.conn.as_mut() {
            Some(conn) if !e.failed => {
                let mut p = redis::pipe();
                for (set, member) in &members {
                    p.cmd("SREM").arg(set).arg(member);
                }
                for key in &keys {
                    p.cmd("DEL").arg(key);
                }
                Some(p.query::<Vec<u64>>(conn))
            }
            _ => None,
        };
        match result {
            Some(Ok(counts)) => {
                let (m, k) = counts.split_at(members.len());
                e.evicted_set_members += m.iter().sum::<u64>();
                e.evicted_keys += k.iter().sum::<u64>();
                return true;
            }
            Some(Err(err)) => {
                e.error = Some(format!("eviction failed, sweep stopped: {err}"));
                e.failed = true;
            }
            None => {}
        }
        e.keys_left.extend(keys);
        e.keys_left
            .extend(members.iter().map(|(s, m)| format!("{s} {m}")));
        !e.failed
    }
}

impl AfterDelete for Evictor {
    fn links_deleted(&self, links: &[(&str, &Digest)]) -> bool {
        let keys = links
            .iter()
            .map(|(r, d)| repository_blob_key(r, d))
            .collect();
        let members = links
            .iter()
            .map(|(r, d)| (repository_set(r), d.to_string()))
            .collect();
        self.evict(keys, members)
    }

    fn blobs_deleted(&self, blobs: &[&Digest]) -> bool {
        self.evict(blobs.iter().map(|d| blob_key(d)).collect(), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_name_host_port_db_and_credentials() {
        let s = RedisSpec::from_url("redis://:s%40cret@127.0.0.1:6390/3").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.db), ("127.0.0.1", 6390, 3));
        assert_eq!(s.password.as_deref(), Some("s@cret"));
        assert_eq!(s.username, None);
        assert_eq!(s.address(), "redis://127.0.0.1:6390/3");
        let s = RedisSpec::from_url("rediss://ops:pw@cache.internal").unwrap();
        assert_eq!((s.port, s.db), (6379, 0));
        assert_eq!(s.username.as_deref(), Some("ops"));
        assert!(s.tls.is_some());
        assert_eq!(s.address(), "rediss://cache.internal:6379/0");
        let s = RedisSpec::from_url("redis://[::1]:7000").unwrap();
        assert_eq!(s.address(), "redis://[::1]:7000/0");
        for bad in ["http://x", "redis://", "redis://h:port", "redis://h/x"] {
            assert!(RedisSpec::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_the_registrys() {
        let d = Digest::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(blob_key(&d), format!("blobs::sha256:{}", "ab".repeat(32)));
        assert_eq!(repository_set("a/b"), "repository::a/b::blobs");
        assert_eq!(
            repository_blob_key("a/b", &d),
            format!("repository::a/b::blobs::sha256:{}", "ab".repeat(32))
        );
    }
}
