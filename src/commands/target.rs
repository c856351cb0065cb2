//! Where the store is: a folder, or the registry's own `config.yml`.
//!
//! Reading the registry's configuration means the operator names the store exactly as the registry
//! sees it, and lets later safety checks read `storage.maintenance.readonly`.

use crate::pipeline::execute::eviction::{CacheSpec, RedisSpec, RedisTls};
use crate::storage::azure::{AzureOptions, AzureStorage};
use crate::storage::fs::FsStorage;
use crate::storage::gcs::{GcsOptions, GcsStorage};
use crate::storage::s3::{S3Options, S3Storage};
use crate::storage::{Storage, StorageError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A store's address, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSpec {
    /// A local folder: the registry's `rootdirectory` (the one holding `docker/registry/v2`).
    Filesystem { root: PathBuf },
    /// A bucket and the key prefix of the store.
    S3(S3Options),
    /// A Google Cloud Storage bucket and the key prefix of the store.
    Gcs(GcsOptions),
    /// An Azure Blob Storage container and the prefix of the store.
    Azure(AzureOptions),
}

/// What the `STORAGE` argument resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub spec: StorageSpec,
    /// `storage.maintenance.readonly.enabled` when STORAGE was a registry config; `None` otherwise.
    pub readonly: Option<bool>,
    /// The registry's blob-descriptor cache, when STORAGE was a registry config that has one.
    pub cache: Option<CacheSpec>,
    /// `proxy.remoteurl` when STORAGE was the config of a pull-through cache.
    pub proxy: Option<String>,
}

/// Why STORAGE could not be resolved or opened.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read registry config: {message}")]
    Read { path: String, message: String },
    #[error("{path}: not a registry config: {message}")]
    Parse { path: String, message: String },
    #[error(
        "{path}: storage driver {driver:?} is not supported (supported: filesystem, s3, gcs, azure)"
    )]
    UnsupportedDriver { path: String, driver: String },
    #[error("{path}: no storage section with a supported driver (filesystem, s3, gcs, azure)")]
    NoStorage { path: String },
    #[error("{0}: no such folder or file")]
    NotFound(String),
    #[error("{0}: not an S3 address of the form s3://bucket/prefix")]
    BadS3Url(String),
    #[error("{0}: not a GCS address of the form gs://bucket/prefix")]
    BadGcsUrl(String),
    #[error(
        "{0}: not an Azure Blob address of the form https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix \
         (or, for an emulator, http://127.0.0.1:PORT/ACCOUNT/CONTAINER/prefix)"
    )]
    BadAzureUrl(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Deserialize)]
struct RegistryConfig {
    storage: Option<serde_norway::Mapping>,
    redis: Option<serde_norway::Value>,
    proxy: Option<serde_norway::Value>,
}

/// The registry's `redis` section: 2.8's (`addr`, `password`, `db`, timeouts, `tls.enabled`) and
/// 3.x's (go-redis options inline: `addrs`, `username`, `mastername`, …; `tls` with client
/// certificate and root CAs). Options that only tune the registry's pool do not matter here.
#[derive(Deserialize, Default)]
struct RedisSection {
    addr: Option<String>,
    addrs: Option<serde_norway::Value>,
    username: Option<String>,
    password: Option<String>,
    db: Option<i64>,
    mastername: Option<String>,
    dialtimeout: Option<serde_norway::Value>,
    readtimeout: Option<serde_norway::Value>,
    writetimeout: Option<serde_norway::Value>,
    tls: Option<RedisTlsSection>,
}

#[derive(Deserialize, Default)]
struct RedisTlsSection {
    enabled: Option<bool>,
    certificate: Option<String>,
    key: Option<String>,
    rootcas: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct FilesystemSection {
    rootdirectory: Option<String>,
}

#[derive(Deserialize)]
struct S3Section {
    bucket: String,
    region: Option<String>,
    regionendpoint: Option<String>,
    rootdirectory: Option<String>,
    accesskey: Option<String>,
    secretkey: Option<String>,
    forcepathstyle: Option<bool>,
    secure: Option<bool>,
}

/// The registry's `storage.gcs` section: `credentials` is a key file's JSON inline.
#[derive(Deserialize)]
struct GcsSection {
    bucket: String,
    keyfile: Option<String>,
    credentials: Option<serde_norway::Value>,
    rootdirectory: Option<String>,
}

/// The registry's `storage.azure` section: 2.8's `accountname`, `accountkey`, `container`,
/// `realm`; 3.x adds `rootdirectory`, `serviceurl`, `connectionstring` and `credentials`.
#[derive(Deserialize)]
struct AzureSection {
    accountname: Option<String>,
    accountkey: Option<String>,
    container: String,
    realm: Option<String>,
    rootdirectory: Option<String>,
    serviceurl: Option<String>,
    connectionstring: Option<String>,
    credentials: Option<AzureCredentialsSection>,
}

#[derive(Deserialize)]
struct AzureCredentialsSection {
    #[serde(rename = "type")]
    kind: Option<String>,
    clientid: Option<String>,
    tenantid: Option<String>,
    secret: Option<String>,
}

#[derive(Deserialize, Default)]
struct Maintenance {
    readonly: Option<ReadOnly>,
}

#[derive(Deserialize, Default)]
struct ReadOnly {
    #[serde(default)]
    enabled: bool,
}

/// The registry's default `rootdirectory` for the filesystem driver.
const DEFAULT_ROOT: &str = "/var/lib/registry";

/// Sections of `storage` that are settings, not drivers.
const NOT_DRIVERS: [&str; 5] = ["maintenance", "delete", "cache", "redirect", "tag"];

/// Resolves the STORAGE argument: a folder, or a registry config file.
pub fn resolve(arg: &str) -> Result<Target, ConfigError> {
    if let Some(rest) = arg.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ConfigError::BadS3Url(arg.to_owned()));
        }
        let opts = S3Options {
            bucket: bucket.to_owned(),
            prefix: key_prefix(prefix),
            ..S3Options::default()
        };
        return Ok(Target {
            spec: StorageSpec::S3(opts),
            readonly: None,
            cache: None,
            proxy: None,
        });
    }
    if let Some(rest) = arg.strip_prefix("gs://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ConfigError::BadGcsUrl(arg.to_owned()));
        }
        return Ok(Target {
            spec: StorageSpec::Gcs(GcsOptions {
                bucket: bucket.to_owned(),
                prefix: key_prefix(prefix),
                ..GcsOptions::default()
            }),
            readonly: None,
            cache: None,
            proxy: None,
        });
    }
    if arg.starts_with("https://") || arg.starts_with("http://") {
        return Ok(Target {
            spec: StorageSpec::Azure(azure_url(arg)?),
            readonly: None,
            cache: None,
            proxy: None,
        });
    }
    let path = Path::new(arg);
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(Target {
            spec: StorageSpec::Filesystem { root: path.into() },
            readonly: None,
            cache: None,
            proxy: None,
        }),
        Ok(_) => from_registry_config(path),
        Err(_) => Err(ConfigError::NotFound(arg.to_owned())),
    }
}

/// Reads a registry `config.yml`.
pub fn from_registry_config(path: &Path) -> Result<Target, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let parse_err = |e: serde_norway::Error| ConfigError::Parse {
        path: shown.clone(),
        message: e.to_string(),
    };
    let cfg: RegistryConfig = serde_norway::from_str(&text).map_err(parse_err)?;
    let storage = cfg.storage.ok_or_else(|| ConfigError::NoStorage {
        path: shown.clone(),
    })?;
    let section = |name: &str| storage.get(name).cloned();
    let readonly = match section("maintenance") {
        Some(v) => serde_norway::from_value::<Maintenance>(v)
            .map_err(parse_err)?
            .readonly
            .map(|r| r.enabled),
        None => None,
    }
    .unwrap_or(false);
    let cache = blob_descriptor_cache(section("cache"), cfg.redis);
    let proxy = cfg
        .proxy
        .as_ref()
        .and_then(|p| p.get("remoteurl"))
        .and_then(|u| u.as_str())
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    if let Some(fs) = section("filesystem") {
        let fs: FilesystemSection = if fs.is_null() {
            FilesystemSection {
                rootdirectory: None,
            }
        } else {
            serde_norway::from_value(fs).map_err(parse_err)?
        };
        let root = fs.rootdirectory.unwrap_or_else(|| DEFAULT_ROOT.to_owned());
        return Ok(Target {
            spec: StorageSpec::Filesystem { root: root.into() },
            readonly: Some(readonly),
            cache,
            proxy,
        });
    }
    if let Some(s3) = section("s3") {
        let s3: S3Section = serde_norway::from_value(s3).map_err(parse_err)?;
        let endpoint = s3.regionendpoint.filter(|e| !e.is_empty()).map(|e| {
            if e.contains("://") {
                e
            } else if s3.secure.unwrap_or(true) {
                format!("https://{e}")
            } else {
                format!("http://{e}")
            }
        });
        let opts = S3Options {
            bucket: s3.bucket,
            prefix: key_prefix(s3.rootdirectory.as_deref().unwrap_or("")),
            region: s3.region,
            endpoint,
            force_path_style: s3.forcepathstyle,
            access_key: s3.accesskey.filter(|k| !k.is_empty()),
            secret_key: s3.secretkey.filter(|k| !k.is_empty()),
            ..S3Options::default()
        };
        return Ok(Target {
            spec: StorageSpec::S3(opts),
            readonly: Some(readonly),
            cache,
            proxy,
        });
    }
    if let Some(gcs) = section("gcs") {
        let gcs: GcsSection = serde_norway::from_value(gcs).map_err(parse_err)?;
        let credentials_json = match gcs.credentials {
            None | Some(serde_norway::Value::Null) => None,
            Some(v) => Some(serde_json::to_string(&v).map_err(|e| ConfigError::Parse {
                path: shown.clone(),
                message: format!("storage.gcs.credentials: {e}"),
            })?),
        };
        return Ok(Target {
            spec: StorageSpec::Gcs(GcsOptions {
                bucket: gcs.bucket,
                prefix: key_prefix(gcs.rootdirectory.as_deref().unwrap_or("")),
                keyfile: gcs.keyfile.filter(|k| !k.is_empty()).map(PathBuf::from),
                credentials_json,
                ..GcsOptions::default()
            }),
            readonly: Some(readonly),
            cache,
            proxy,
        });
    }
    if let Some(azure) = section("azure") {
        let a: AzureSection = serde_norway::from_value(azure).map_err(parse_err)?;
        let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
        let credentials = a.credentials;
        let (kind, client_id, tenant_id, secret) = match credentials {
            Some(c) => (
                nonempty(c.kind),
                nonempty(c.clientid),
                nonempty(c.tenantid),
                nonempty(c.secret),
            ),
            None => (None, None, None, None),
        };
        return Ok(Target {
            spec: StorageSpec::Azure(AzureOptions {
                account: a.accountname.unwrap_or_default(),
                container: a.container,
                prefix: key_prefix(a.rootdirectory.as_deref().unwrap_or("")),
                account_key: nonempty(a.accountkey),
                connection_string: nonempty(a.connectionstring),
                credentials_type: kind,
                client_id,
                tenant_id,
                secret,
                service_url: nonempty(a.serviceurl),
                realm: nonempty(a.realm),
                ..AzureOptions::default()
            }),
            readonly: Some(readonly),
            cache,
            proxy,
        });
    }
    let driver = storage
        .keys()
        .filter_map(|k| k.as_str())
        .find(|k| !NOT_DRIVERS.contains(k));
    match driver {
        Some(d) => Err(ConfigError::UnsupportedDriver {
            path: shown,
            driver: d.to_owned(),
        }),
        None => Err(ConfigError::NoStorage { path: shown }),
    }
}

/// The blob-descriptor cache the registry uses, from `storage.cache` (`blobdescriptor`, or its old
/// name `layerinfo`) and the `redis` section. A redis cache whose section regsweep cannot use is
/// [`CacheSpec::Unusable`], saying why: a dry run reports it, and a deleting run refuses.
fn blob_descriptor_cache(
    cache: Option<serde_norway::Value>,
    redis: Option<serde_norway::Value>,
) -> Option<CacheSpec> {
    let cache = cache?;
    let kind = cache
        .get("blobdescriptor")
        .or_else(|| cache.get("layerinfo"))?
        .as_str()?;
    match kind {
        "inmemory" => Some(CacheSpec::InMemory),
        "redis" => Some(match redis_spec(redis) {
            Ok(spec) => CacheSpec::Redis(Box::new(spec)),
            Err(why) => CacheSpec::Unusable { why },
        }),
        _ => None,
    }
}

fn redis_spec(redis: Option<serde_norway::Value>) -> Result<RedisSpec, String> {
    let section: RedisSection = match redis {
        None => {
            return Err(
                "storage.cache.blobdescriptor is redis, but there is no redis section".into(),
            );
        }
        Some(v) => serde_norway::from_value(v).map_err(|e| format!("redis section: {e}"))?,
    };
    let mut addrs: Vec<String> = match section.addrs {
        None => Vec::new(),
        Some(serde_norway::Value::String(s)) => vec![s],
        Some(v) => serde_norway::from_value(v).map_err(|e| format!("redis.addrs: {e}"))?,
    };
    if let Some(a) = section.addr {
        addrs.insert(0, a);
    }
    addrs.retain(|a| !a.is_empty());
    addrs.dedup();
    if let Some(master) = section.mastername.filter(|m| !m.is_empty()) {
        return Err(format!(
            "redis.mastername {master:?} names a sentinel-managed master, which regsweep cannot evict from yet; name the master with --redis redis://HOST:PORT/DB"
        ));
    }
    let addr = match addrs.as_slice() {
        [] => return Err("the redis section names no addr (or addrs)".into()),
        [one] => one.clone(),
        many => {
            return Err(format!(
                "redis.addrs lists {} servers (a cluster), which regsweep cannot evict from yet",
                many.len()
            ));
        }
    };
    let (host, port) = crate::pipeline::execute::eviction::host_port(&addr)
        .map_err(|e| format!("redis.addr: {e}"))?;
    let duration = |v: Option<serde_norway::Value>, name: &str, default| match v {
        None => Ok(default),
        Some(v) => go_duration(&v).ok_or_else(|| format!("redis.{name}: {v:?} is not a duration")),
    };
    let tls = section.tls.unwrap_or_default();
    let roots: Vec<PathBuf> = tls
        .rootcas
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let tls_on = tls.enabled.unwrap_or(false)
        || tls.certificate.is_some()
        || tls.key.is_some()
        || !roots.is_empty();
    Ok(RedisSpec {
        host,
        port,
        db: section.db.unwrap_or(0),
        username: section.username.filter(|u| !u.is_empty()),
        password: section.password.filter(|p| !p.is_empty()),
        tls: tls_on.then(|| RedisTls {
            certificate: tls.certificate.map(PathBuf::from),
            key: tls.key.map(PathBuf::from),
            root_cas: roots,
        }),
        dial_timeout: duration(
            section.dialtimeout,
            "dialtimeout",
            crate::pipeline::execute::eviction::DIAL_TIMEOUT,
        )?,
        read_timeout: duration(
            section.readtimeout,
            "readtimeout",
            crate::pipeline::execute::eviction::READ_TIMEOUT,
        )?
        .max(duration(
            section.writetimeout,
            "writetimeout",
            crate::pipeline::execute::eviction::READ_TIMEOUT,
        )?),
        from: "config.yml",
    })
}

/// A Go duration as YAML holds it: a string (`10ms`, `1m30s`) or nanoseconds. Zero means the
/// client's default, as in Go.
fn go_duration(v: &serde_norway::Value) -> Option<std::time::Duration> {
    let d = match v {
        serde_norway::Value::Number(n) => std::time::Duration::from_nanos(n.as_u64()?),
        serde_norway::Value::String(s) => humantime::parse_duration(s).ok()?,
        _ => return None,
    };
    Some(if d.is_zero() {
        crate::pipeline::execute::eviction::READ_TIMEOUT
    } else {
        d
    })
}

/// An Azure Blob URL as the portal and azcopy show it, `https://ACCOUNT.blob.REALM/CONTAINER/prefix`,
/// or an emulator's path-style URL, `http://HOST:PORT/ACCOUNT/CONTAINER/prefix` (a host that is
/// an IP address or `localhost`).
fn azure_url(arg: &str) -> Result<AzureOptions, ConfigError> {
    let bad = || ConfigError::BadAzureUrl(arg.to_owned());
    let (scheme, rest) = arg.split_once("://").ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let path_style = hostname == "localhost"
        || hostname.parse::<std::net::IpAddr>().is_ok()
        || hostname.starts_with('[');
    let (account, service_url, rest) = if path_style {
        let mut segments = path.splitn(2, '/');
        let account = segments.next().filter(|a| !a.is_empty()).ok_or_else(bad)?;
        let rest = segments.next().unwrap_or("");
        (
            account.to_owned(),
            format!("{scheme}://{host}/{account}"),
            rest,
        )
    } else {
        let (account, realm) = hostname.split_once(".blob.").ok_or_else(bad)?;
        if account.is_empty() || realm.is_empty() {
            return Err(bad());
        }
        (account.to_owned(), format!("{scheme}://{host}"), path)
    };
    let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if container.is_empty() {
        return Err(bad());
    }
    Ok(AzureOptions {
        account,
        container: container.to_owned(),
        prefix: key_prefix(prefix),
        service_url: Some(service_url),
        ..AzureOptions::default()
    })
}

/// The key prefix of a store from a root directory: no leading `/`, a trailing `/` unless empty.
fn key_prefix(root: &str) -> String {
    let trimmed = root.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// Refuses a store that is no registry's store: a path one level off, or a prefix with nothing of
/// the registry under it ([`crate::pipeline::guard::store_root`]).
pub fn check_store_root(
    storage: &dyn Storage,
) -> Result<(), crate::pipeline::guard::store_root::NotAStore> {
    crate::pipeline::guard::store_root::check(storage)
}

/// A store as [`open_checked`] found it.
pub enum Opened {
    /// A registry's store.
    Store(Box<dyn Storage>),
    /// Where a registry's config says its store is, nothing of the registry yet (no
    /// `docker/registry/v2/`, or not even the root folder): an empty store, on which every command
    /// finds nothing.
    NothingStored(Box<dyn Storage>),
}

/// Why STORAGE could not be opened as a registry's store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    NotAStore(#[from] crate::pipeline::guard::store_root::NotAStore),
}

/// Opens the store `target` names and checks that it is a registry's store
/// ([`check_store_root`]). A store named by the registry's config that holds nothing of the
/// registry yet is an empty store (the config is the truth of where the store is); one named by a
/// bare path or URL is refused, since it may be one level off.
pub fn open_checked(target: &Target) -> Result<Opened, OpenError> {
    let from_config = target.readonly.is_some();
    if let (true, StorageSpec::Filesystem { root }) = (from_config, &target.spec)
        && !root.exists()
    {
        let shown = root.display().to_string();
        return Ok(Opened::NothingStored(Box::new(
            crate::storage::empty::NothingStored::named(shown.clone(), shown),
        )));
    }
    let store = open(&target.spec)?;
    match check_store_root(store.as_ref()) {
        Ok(()) => Ok(Opened::Store(store)),
        Err(crate::pipeline::guard::store_root::NotAStore::Empty { .. }) if from_config => {
            Ok(Opened::NothingStored(Box::new(
                crate::storage::empty::NothingStored::instead_of(store.as_ref()),
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens the store a spec names.
pub fn open(spec: &StorageSpec) -> Result<Box<dyn Storage>, ConfigError> {
    match spec {
        StorageSpec::Filesystem { root } => Ok(Box::new(FsStorage::open(root.clone())?)),
        StorageSpec::S3(opts) => Ok(Box::new(S3Storage::open(opts.clone())?)),
        StorageSpec::Gcs(opts) => Ok(Box::new(GcsStorage::open(opts.clone())?)),
        StorageSpec::Azure(opts) => Ok(Box::new(AzureStorage::open(opts.clone())?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<Target, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yml");
        std::fs::write(&p, text).unwrap();
        from_registry_config(&p)
    }

    #[test]
    fn reads_the_filesystem_root_and_read_only_mode() {
        let t = config(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/reg\n  delete:\n    enabled: true\n  \
             maintenance:\n    readonly:\n      enabled: true\nhttp:\n  addr: :5000\n",
        )
        .unwrap();
        assert_eq!(
            t.spec,
            StorageSpec::Filesystem {
                root: "/srv/reg".into()
            }
        );
        assert_eq!(t.readonly, Some(true));
        let t = config("storage:\n  filesystem:\n    rootdirectory: /x\n").unwrap();
        assert_eq!(t.readonly, Some(false));
    }

    #[test]
    fn reads_the_blob_descriptor_cache_of_registry_2_8_and_3() {
        let with = |cache: &str, redis: &str| {
            config(&format!(
                "storage:\n  filesystem:\n    rootdirectory: /x\n  cache:\n{cache}{redis}"
            ))
            .unwrap()
            .cache
        };
        // 2.8: addr, password, db, Go durations, tls.enabled.
        let Some(CacheSpec::Redis(r)) = with(
            "    blobdescriptor: redis\n",
            "redis:\n  addr: cache.internal:6380\n  password: pw\n  db: 3\n  dialtimeout: 10ms\n  \
             readtimeout: 1s\n  writetimeout: 2s\n  pool:\n    maxidle: 16\n  tls:\n    enabled: true\n",
        ) else {
            panic!("a redis cache")
        };
        assert_eq!((r.host.as_str(), r.port, r.db), ("cache.internal", 6380, 3));
        assert_eq!(r.password.as_deref(), Some("pw"));
        assert_eq!(r.dial_timeout, std::time::Duration::from_millis(10));
        assert_eq!(r.read_timeout, std::time::Duration::from_secs(2));
        assert_eq!(r.tls, Some(RedisTls::default()));
        assert_eq!(r.address(), "rediss://cache.internal:6380/3");
        // 3.x: addrs, username, TLS by certificates; `layerinfo` is the old name.
        let Some(CacheSpec::Redis(r)) = with(
            "    layerinfo: redis\n",
            "redis:\n  addrs: [10.0.0.5:6379]\n  username: reg\n  password: pw\n  tls:\n    \
             certificate: /c.pem\n    key: /k.pem\n    rootcas: [/ca.pem]\n",
        ) else {
            panic!("a redis cache")
        };
        assert_eq!((r.host.as_str(), r.port, r.db), ("10.0.0.5", 6379, 0));
        assert_eq!(r.username.as_deref(), Some("reg"));
        let tls = r.tls.unwrap();
        assert_eq!(tls.root_cas, [PathBuf::from("/ca.pem")]);
        assert_eq!(tls.certificate, Some(PathBuf::from("/c.pem")));
        assert_eq!(
            with("    blobdescriptor: inmemory\n", ""),
            Some(CacheSpec::InMemory)
        );
        assert_eq!(with("    blobdescriptor: \"\"\n", ""), None);
        for (redis, why) in [
            ("", "no redis section"),
            ("redis:\n  addrs: [a:1, b:2, c:3]\n", "cluster"),
            ("redis:\n  addrs: [a:1]\n  mastername: m\n", "sentinel"),
            ("redis:\n  addr: a:port\n", "not a port"),
            ("redis:\n  password: x\n", "no addr"),
        ] {
            match with("    blobdescriptor: redis\n", redis) {
                Some(CacheSpec::Unusable { why: w }) => assert!(w.contains(why), "{w}"),
                other => panic!("{redis}: {other:?}"),
            }
        }
    }

    #[test]
    fn names_the_file_when_the_config_is_unusable() {
        let e = config("storage:\n  swift:\n    container: b\n").unwrap_err();
        assert!(e.to_string().contains("\"swift\""), "{e}");
        assert!(e.to_string().contains("config.yml"), "{e}");
        let e = config("storage: [1, 2\n").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        let e = config("http:\n  addr: :5000\n").unwrap_err();
        assert!(matches!(e, ConfigError::NoStorage { .. }), "{e}");
    }

    #[test]
    fn reads_the_s3_section_as_the_registry_does() {
        let t = config(
            "storage:\n  s3:\n    bucket: reg\n    region: eu-west-1\n    regionendpoint: 127.0.0.1:9000\n    \
             rootdirectory: /store/v\n    accesskey: a\n    secretkey: b\n    secure: false\n",
        )
        .unwrap();
        let StorageSpec::S3(o) = t.spec else {
            panic!("not s3")
        };
        assert_eq!(o.bucket, "reg");
        assert_eq!(o.prefix, "store/v/");
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(o.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            (o.access_key.as_deref(), o.secret_key.as_deref()),
            (Some("a"), Some("b"))
        );
        assert_eq!(o.force_path_style, None);
    }

    #[test]
    fn reads_the_gcs_section_as_the_registry_does() {
        let t = config(
            "storage:\n  gcs:\n    bucket: reg\n    keyfile: /k.json\n    rootdirectory: /v\n",
        )
        .unwrap();
        let StorageSpec::Gcs(o) = t.spec else {
            panic!("not gcs")
        };
        assert_eq!((o.bucket.as_str(), o.prefix.as_str()), ("reg", "v/"));
        assert_eq!(o.keyfile, Some(PathBuf::from("/k.json")));
        let t = config(
            "storage:\n  gcs:\n    bucket: reg\n    credentials:\n      type: service_account\n      \
             client_email: a@b\n",
        )
        .unwrap();
        let StorageSpec::Gcs(o) = t.spec else {
            panic!("not gcs")
        };
        let json: serde_json::Value = serde_json::from_str(&o.credentials_json.unwrap()).unwrap();
        assert_eq!(json["client_email"], "a@b");
        assert!(matches!(resolve("gs:///x"), Err(ConfigError::BadGcsUrl(_))));
    }

    #[test]
    fn reads_the_azure_section_of_registry_2_8_and_3() {
        let t = config(
            "storage:\n  azure:\n    accountname: acct\n    accountkey: a2V5\n    container: reg\n    \
             realm: core.chinacloudapi.cn\n",
        )
        .unwrap();
        let StorageSpec::Azure(o) = t.spec else {
            panic!("not azure")
        };
        assert_eq!((o.account.as_str(), o.container.as_str()), ("acct", "reg"));
        assert_eq!(o.account_key.as_deref(), Some("a2V5"));
        assert_eq!(o.realm.as_deref(), Some("core.chinacloudapi.cn"));
        assert_eq!(o.prefix, "");
        let t = config(
            "storage:\n  azure:\n    accountname: acct\n    container: reg\n    rootdirectory: /r/\n    \
             serviceurl: https://acct.blob.core.windows.net\n    credentials:\n      type: client_secret\n      \
             clientid: c\n      tenantid: t\n      secret: s\n",
        )
        .unwrap();
        let StorageSpec::Azure(o) = t.spec else {
            panic!("not azure")
        };
        assert_eq!(o.prefix, "r/");
        assert_eq!(o.credentials_type.as_deref(), Some("client_secret"));
        assert_eq!(
            (
                o.client_id.as_deref(),
                o.tenant_id.as_deref(),
                o.secret.as_deref()
            ),
            (Some("c"), Some("t"), Some("s"))
        );
    }

    #[test]
    fn azure_urls_as_the_portal_and_the_emulator_write_them() {
        for (url, account, container, prefix, service) in [
            (
                "https://acct.blob.core.windows.net/reg",
                "acct",
                "reg",
                "",
                "https://acct.blob.core.windows.net",
            ),
            (
                "https://acct.blob.core.windows.net/reg/v/x/",
                "acct",
                "reg",
                "v/x/",
                "https://acct.blob.core.windows.net",
            ),
            (
                "http://127.0.0.1:10000/devstoreaccount1/reg/r",
                "devstoreaccount1",
                "reg",
                "r/",
                "http://127.0.0.1:10000/devstoreaccount1",
            ),
        ] {
            let StorageSpec::Azure(o) = resolve(url).unwrap().spec else {
                panic!("not azure")
            };
            assert_eq!(
                (
                    o.account.as_str(),
                    o.container.as_str(),
                    o.prefix.as_str(),
                    o.service_url.as_deref()
                ),
                (account, container, prefix, Some(service)),
                "{url}"
            );
        }
        for bad in [
            "https://example.com/reg",
            "https://acct.blob.core.windows.net/",
            "http://127.0.0.1:10000/devstoreaccount1",
        ] {
            assert!(
                matches!(resolve(bad), Err(ConfigError::BadAzureUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        for (url, bucket, prefix) in [
            ("s3://b", "b", ""),
            ("s3://b/", "b", ""),
            ("s3://b/x/y/", "b", "x/y/"),
            ("s3://b/r", "b", "r/"),
        ] {
            let StorageSpec::S3(o) = resolve(url).unwrap().spec else {
                panic!("not s3")
            };
            assert_eq!(
                (o.bucket.as_str(), o.prefix.as_str()),
                (bucket, prefix),
                "{url}"
            );
        }
        assert!(matches!(resolve("s3:///x"), Err(ConfigError::BadS3Url(_))));
    }

    #[test]
    fn a_folder_is_a_filesystem_root() {
        let dir = tempfile::tempdir().unwrap();
        let t = resolve(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(
            t.spec,
            StorageSpec::Filesystem {
                root: dir.path().into()
            }
        );
        assert_eq!(t.readonly, None);
        assert!(matches!(
            resolve("/no/such/place"),
            Err(ConfigError::NotFound(_))
        ));
    }
}
