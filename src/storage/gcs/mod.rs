//! The Google Cloud Storage backend: a store is a bucket and a prefix (the registry's
//! `rootdirectory`), read over GCS's JSON API.
//!
//! Listings are flat (no delimiter), 1000 objects a page, with size, update time and `md5Hash`, so
//! that a link whose MD5 is that of the digest in its key is not read; neighbouring folders list as
//! one key range (`startOffset`/`endOffset`). Reads ask for at most the limit's bytes (`Range`).
//! The lock is a create-only write (`ifGenerationMatch=0`), renewed and released only while its
//! generation is the one written.

pub mod auth;
mod batch;
mod versions;

use super::http::{Http, Reply, Shared, encode, request};
use super::remote::{Counters, Page, Renewed};
use super::{
    Entry, HeldLock, ListedVersion, ListingNote, Lock, LockToken, Moves, Multipart, RequestCounts,
    Storage, StorageError, Versioning, VersioningState, Versions,
};
use crate::model::digest::Digest;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

/// The lock object's key, relative to the store's root (as on S3).
pub use super::lock_record::LOCK_KEY;

/// How to reach a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GcsOptions {
    pub bucket: String,
    /// Key prefix of the store: empty or ending with `/`.
    pub prefix: String,
    /// `keyfile`: a service-account key file.
    pub keyfile: Option<std::path::PathBuf>,
    /// `credentials`: the key file's JSON inline (from a registry config).
    pub credentials_json: Option<String>,
    /// Another endpoint than Google's (an emulator); `STORAGE_EMULATOR_HOST` otherwise.
    pub endpoint: Option<String>,
    pub max_in_flight: usize,
    pub max_rps: Option<u32>,
}

/// A store in a GCS bucket.
#[derive(Debug)]
pub struct GcsStorage {
    http: Http,
    base: String,
    bucket: String,
    prefix: String,
    tokens: Arc<auth::Tokens>,
    counters: Arc<Counters>,
    max_in_flight: usize,
    stop: super::remote::Stop,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectList {
    #[serde(default)]
    items: Vec<Object>,
    #[serde(default)]
    prefixes: Vec<String>,
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    name: String,
    size: Option<String>,
    md5_hash: Option<String>,
    updated: Option<String>,
    generation: Option<String>,
}

impl Object {
    fn size(&self) -> u64 {
        self.size
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
    fn updated(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(self.updated.as_deref()?.trim_end_matches('Z')).ok()
    }
}

/// A lock this backend holds: the task that renews it, and the generation it last wrote.
struct GcsLock {
    renew: tokio::task::JoinHandle<()>,
    generation: Arc<std::sync::Mutex<String>>,
}

impl GcsStorage {
    /// Builds the client; no network access happens until the first request.
    pub fn open(opts: GcsOptions) -> Result<GcsStorage, StorageError> {
        let shown = format!("gs://{}", opts.bucket);
        let emulator = opts
            .endpoint
            .clone()
            .or_else(|| std::env::var("STORAGE_EMULATOR_HOST").ok())
            .filter(|e| !e.is_empty());
        let (base, credentials) = match emulator {
            Some(host) if host.contains("://") => (
                host.trim_end_matches('/').to_owned(),
                auth::Credentials::None,
            ),
            Some(host) => (format!("http://{host}"), auth::Credentials::None),
            None => (
                "https://storage.googleapis.com".to_owned(),
                match (&opts.credentials_json, &opts.keyfile) {
                    (Some(json), _) => {
                        auth::Credentials::from_json("storage.gcs.credentials", json.as_bytes())?
                    }
                    (None, Some(path)) => auth::Credentials::from_file(path)?,
                    (None, None) => auth::Credentials::default_chain()?,
                },
            ),
        };
        Ok(GcsStorage {
            http: Http::new(&shown, opts.max_in_flight, opts.max_rps)?,
            base,
            bucket: opts.bucket,
            prefix: opts.prefix,
            tokens: Arc::new(auth::Tokens::new(credentials)),
            counters: Default::default(),
            max_in_flight: opts.max_in_flight.max(1),
            stop: Default::default(),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn object_url(&self, key: &str) -> String {
        object_url(&self.base, &self.bucket, &self.full(key))
    }

    fn shared(&self) -> &Shared {
        &self.http.shared
    }

    /// Sends `method url` with `headers` and `body`, authorized.
    async fn call(
        &self,
        key: &str,
        method: http::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, StorageError> {
        call(self.shared(), &self.tokens, key, method, url, headers, body).await
    }

    /// Lists `prefix` flat, or one level with `delimiter` (folders go to `dirs`), or only the keys
    /// from `range.0` (inclusive) to `range.1` (exclusive), full keys.
    async fn list_async(
        &self,
        prefix: &str,
        delimiter: bool,
        range: Option<(&str, &str)>,
        visit: &mut dyn FnMut(Entry),
        dirs: &mut Vec<String>,
    ) -> Result<(), StorageError> {
        let full_prefix = self.full(prefix);
        let mut url = format!(
            "{}/storage/v1/b/{}/o?prefix={}&maxResults=1000&fields={}",
            self.base,
            encode(&self.bucket),
            encode(&full_prefix),
            encode("nextPageToken,prefixes,items(name,size,md5Hash,updated)")
        );
        if delimiter {
            url.push_str("&delimiter=%2F");
        }
        if let Some((from, to)) = range {
            url.push_str(&format!(
                "&startOffset={}&endOffset={}",
                encode(from),
                encode(to)
            ));
        }
        let fetch = |token: Option<String>| {
            let page_url = match &token {
                Some(t) => format!("{url}&pageToken={}", encode(t)),
                None => url.clone(),
            };
            let full_prefix = &full_prefix;
            async move {
                let reply = self
                    .call(prefix, http::Method::GET, &page_url, &[], Bytes::new())
                    .await?;
                if reply.status == 404 {
                    return Err(StorageError::other(
                        &format!("gs://{}", self.bucket),
                        "no such bucket (or no permission to list it)",
                    ));
                }
                if !reply.ok() {
                    return Err(reply.error(prefix));
                }
                let page: ObjectList = serde_json::from_slice(&reply.body).map_err(|e| {
                    StorageError::other(prefix, format!("not an object listing: {e}"))
                })?;
                Ok(self.page_of(page, full_prefix))
            }
        };
        super::remote::list_pages(prefix, &self.stop, &self.counters.list, fetch, visit, dirs).await
    }

    /// A page of the JSON API's object listing as the store's entries and folders.
    fn page_of(&self, page: ObjectList, full_prefix: &str) -> Page<'static> {
        let entries = page
            .items
            .iter()
            .filter_map(|obj| {
                let key = obj.name.strip_prefix(&self.prefix)?;
                Some(Entry {
                    key: key.to_owned(),
                    size: obj.size(),
                    modified: obj.updated(),
                    etag: obj.md5_hash.clone(),
                    content: None,
                })
            })
            .collect();
        let folders = page
            .prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(full_prefix))
            .map(|name| name.trim_end_matches('/').to_owned())
            .collect();
        Page {
            entries,
            folders,
            next: page.next_page_token.filter(|t| !t.is_empty()),
            held: None,
        }
    }

    /// An object's metadata; `None` when it is not there.
    async fn metadata(&self, key: &str) -> Result<Option<Object>, StorageError> {
        let reply = self
            .call(
                key,
                http::Method::GET,
                &self.object_url(key),
                &[],
                Bytes::new(),
            )
            .await?;
        match reply.status {
            404 => Ok(None),
            _ if reply.ok() => serde_json::from_slice(&reply.body)
                .map(Some)
                .map_err(|e| StorageError::other(key, format!("not object metadata: {e}"))),
            _ => Err(reply.error(key)),
        }
    }

    /// Writes `bytes` to `key` (a multipart upload, which carries the precondition on every
    /// server); with `if_generation`, only when the object's generation is that (`0`: absent).
    /// `Ok(None)` when the precondition failed; the new generation otherwise.
    async fn upload(
        &self,
        key: &str,
        bytes: &[u8],
        if_generation: Option<&str>,
    ) -> Result<Option<String>, StorageError> {
        upload(
            self.shared(),
            &self.tokens,
            &self.base,
            &self.bucket,
            &self.full(key),
            bytes,
            if_generation,
        )
        .await
    }

    /// The lock as it is now: its bytes, generation and last write; `None` when there is none.
    async fn read_lock(
        &self,
    ) -> Result<Option<(Vec<u8>, Option<String>, Option<SystemTime>)>, StorageError> {
        self.counters.other.fetch_add(2, Ordering::Relaxed);
        let Some(meta) = self.metadata(LOCK_KEY).await? else {
            return Ok(None);
        };
        let url = format!(
            "{}?alt=media&ifGenerationMatch={}",
            self.object_url(LOCK_KEY),
            meta.generation.as_deref().unwrap_or("0")
        );
        let reply = self
            .call(LOCK_KEY, http::Method::GET, &url, &[], Bytes::new())
            .await?;
        match reply.status {
            404 | 412 => Ok(None),
            _ if reply.ok() => Ok(Some((
                reply.body.to_vec(),
                meta.generation.clone(),
                meta.updated(),
            ))),
            _ => Err(reply.error(LOCK_KEY)),
        }
    }

    /// Deletes `key` if its generation is still `generation`: a lock taken again since stays.
    async fn delete_if(&self, key: &str, generation: Option<&str>) -> Result<(), StorageError> {
        let mut url = self.object_url(key);
        if let Some(g) = generation {
            url.push_str(&format!("?ifGenerationMatch={g}"));
        }
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        let reply = self
            .call(key, http::Method::DELETE, &url, &[], Bytes::new())
            .await?;
        match reply.status {
            404 | 412 => Ok(()),
            _ if reply.ok() => Ok(()),
            _ => Err(reply.error(key)),
        }
    }
}

fn object_url(base: &str, bucket: &str, name: &str) -> String {
    format!("{base}/storage/v1/b/{}/o/{}", encode(bucket), encode(name))
}

async fn call(
    http: &Shared,
    tokens: &auth::Tokens,
    key: &str,
    method: http::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Reply, StorageError> {
    let authorization = tokens.header(http).await?;
    let make = || authorized(method.clone(), url, headers, body.clone(), &authorization);
    http.send(key, &make).await
}

/// A request with `headers` and, where there is one, the `Authorization` header.
fn authorized(
    method: http::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    authorization: &Option<String>,
) -> Result<http::Request<super::http::Body>, StorageError> {
    let mut all: Vec<(&str, String)> = headers.to_vec();
    if let Some(a) = authorization {
        all.push(("authorization", a.clone()));
    }
    request(method, url, &all, body)
}

async fn upload(
    http: &Shared,
    tokens: &auth::Tokens,
    base: &str,
    bucket: &str,
    name: &str,
    bytes: &[u8],
    if_generation: Option<&str>,
) -> Result<Option<String>, StorageError> {
    let boundary = "regsweep-part-boundary";
    let meta = serde_json::json!({ "name": name, "contentType": "application/octet-stream" });
    let mut body = format!(
        "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n\
         --{boundary}\r\ncontent-type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut url = format!(
        "{base}/upload/storage/v1/b/{}/o?uploadType=multipart&name={}",
        encode(bucket),
        encode(name)
    );
    if let Some(g) = if_generation {
        url.push_str(&format!("&ifGenerationMatch={g}"));
    }
    let reply = call(
        http,
        tokens,
        name,
        http::Method::POST,
        &url,
        &[(
            "content-type",
            format!("multipart/related; boundary={boundary}"),
        )],
        body.into(),
    )
    .await?;
    match reply.status {
        412 => Ok(None),
        _ if reply.ok() => {
            let o: Object = serde_json::from_slice(&reply.body)
                .map_err(|e| StorageError::other(name, format!("not object metadata: {e}")))?;
            Ok(Some(o.generation.unwrap_or_default()))
        }
        _ => Err(reply.error(name)),
    }
}

/// Writes the lock again every [`super::lock_record::RENEW_EVERY`] while its generation is ours.
async fn renew_lock(
    http: Arc<Shared>,
    tokens: Arc<auth::Tokens>,
    base: String,
    bucket: String,
    name: String,
    record: Vec<u8>,
    generation: Arc<std::sync::Mutex<String>>,
) {
    let location = format!("gs://{bucket}/{name}");
    super::remote::renew_lock(location, generation, |current| {
        let (http, tokens, base, bucket, name, record) =
            (&http, &tokens, &base, &bucket, &name, &record);
        async move {
            match upload(http, tokens, base, bucket, name, record, Some(&current)).await {
                Ok(Some(g)) => Renewed::Written(g),
                Ok(None) => Renewed::Lost,
                Err(_) => Renewed::Failed,
            }
        }
    })
    .await
}

impl Storage for GcsStorage {
    fn stop_listings_on(&self, flag: Arc<std::sync::atomic::AtomicUsize>) {
        self.stop.set(flag);
    }

    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.http
            .block_on(self.list_async(prefix, false, None, visit, &mut Vec::new()))
    }

    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        _lean: super::Lean,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (folders.first(), folders.last()) else {
            return Ok(());
        };
        // From the first folder's keys to just after the last's (`0` follows `/`); keys of other
        // folders that sort in between are not visited.
        let from = self.full(&format!("{prefix}{first}/"));
        let to = self.full(&format!("{prefix}{last}0"));
        let mut keep = super::only_folders(prefix, folders, visit);
        self.http.block_on(self.list_async(
            prefix,
            false,
            Some((&from, &to)),
            &mut keep,
            &mut Vec::new(),
        ))
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut dirs = Vec::new();
        self.http
            .block_on(self.list_async(prefix, true, None, &mut |_| {}, &mut dirs))?;
        Ok(super::sorted_dirs(dirs))
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}?alt=media", self.object_url(key));
        let range = [("range", super::http::read_range(limit))];
        let reply =
            self.http
                .block_on(self.call(key, http::Method::GET, &url, &range, Bytes::new()))?;
        super::http::ranged_read(key, limit, reply)
    }

    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        match self.http.block_on(self.metadata(key))? {
            Some(o) => Ok(Some((o.size(), o.updated()))),
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}?alt=media", self.object_url(key));
        let reply = self.http.block_on(async {
            let authorization = self.tokens.header(self.shared()).await?;
            let make = || authorized(http::Method::GET, &url, &[], Bytes::new(), &authorization);
            self.shared().stream(key, &make, chunk).await
        })?;
        match reply.status {
            404 => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
            _ if reply.ok() => Ok(()),
            _ => Err(reply.error(key)),
        }
    }

    /// JSON batches of up to 100 deletes a request; one result a key ("not found" is success).
    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let names: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        let target = batch::Target {
            http: self.http.shared.clone(),
            tokens: self.tokens.clone(),
            base: self.base.clone(),
            bucket: self.bucket.clone(),
        };
        let (results, requests) = self
            .http
            .block_on(crate::storage::multipart::delete(&target, keys, &names));
        self.counters.delete.fetch_add(requests, Ordering::Relaxed);
        results
    }

    fn max_delete_keys(&self) -> usize {
        batch::MAX
    }

    fn link_proven(&self, etag: &str, digest: &Digest) -> bool {
        super::md5_base64_is_of(etag, digest)
    }

    fn describe(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }

    fn parallelism(&self) -> usize {
        self.max_in_flight
    }

    fn request_counts(&self) -> Option<RequestCounts> {
        let attempts = self.http.shared.attempts.load(Ordering::Relaxed);
        Some(self.counters.counts("gcs", attempts))
    }

    fn moves(&self) -> Option<&dyn Moves> {
        Some(self)
    }

    fn versions(&self) -> Option<&dyn Versions> {
        Some(self)
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        None
    }

    fn lock(&self) -> &dyn Lock {
        self
    }
}

impl Moves for GcsStorage {
    /// A rewrite (server-side, in as many calls as GCS takes for a large object) of the source's
    /// generation, to a name that must be absent (`ifGenerationMatch=0`), checked by size and MD5
    /// before the source is deleted at that generation: a crash leaves the object in one place or
    /// in both.
    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        self.http.block_on(async {
            self.counters.other.fetch_add(2, Ordering::Relaxed);
            let src = self
                .metadata(from)
                .await?
                .ok_or_else(|| StorageError::NotFound {
                    key: from.to_owned(),
                })?;
            if self.metadata(to).await?.is_some() {
                return Err(StorageError::Exists { key: to.to_owned() });
            }
            let generation = src.generation.clone().unwrap_or_default();
            let url = format!(
                "{}/rewriteTo/b/{}/o/{}?ifGenerationMatch=0&sourceGeneration={generation}",
                self.object_url(from),
                encode(&self.bucket),
                encode(&self.full(to))
            );
            let mut token: Option<String> = None;
            let copied: Object = loop {
                let call_url = match &token {
                    Some(t) => format!("{url}&rewriteToken={}", encode(t)),
                    None => url.clone(),
                };
                self.counters.other.fetch_add(1, Ordering::Relaxed);
                let reply = self
                    .call(to, http::Method::POST, &call_url, &[], Bytes::new())
                    .await?;
                match reply.status {
                    404 => {
                        return Err(StorageError::NotFound {
                            key: from.to_owned(),
                        });
                    }
                    412 => return Err(StorageError::Exists { key: to.to_owned() }),
                    _ if !reply.ok() => return Err(reply.error(to)),
                    _ => {}
                }
                let r: serde_json::Value = serde_json::from_slice(&reply.body)
                    .map_err(|e| StorageError::other(to, format!("not a rewrite response: {e}")))?;
                if r["done"].as_bool() == Some(true) {
                    break serde_json::from_value(r["resource"].clone()).map_err(|e| {
                        StorageError::other(to, format!("not object metadata: {e}"))
                    })?;
                }
                token = r["rewriteToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    return Err(StorageError::other(
                        to,
                        "a rewrite neither done nor with a token to go on",
                    ));
                }
            };
            if copied.size() != src.size() || copied.md5_hash != src.md5_hash {
                return Err(StorageError::other(
                    to,
                    format!(
                        "the copy of {from} does not match it (size {}, MD5 {:?}; copy {}, {:?}); \
                         the original stays",
                        src.size(),
                        src.md5_hash,
                        copied.size(),
                        copied.md5_hash
                    ),
                ));
            }
            self.delete_if(from, Some(&generation)).await?;
            Ok(src.size())
        })
    }

    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        self.http
            .block_on(self.upload(key, bytes, None))
            .map(|_| ())
    }

    fn move_cost(&self) -> &'static str {
        "per key two metadata reads, a rewrite (a copy made by GCS, no data through regsweep) \
         and the delete; the copies are billed until the run is purged"
    }
}

impl Versions for GcsStorage {
    /// Every generation, live and noncurrent (`versions=true`); GCS has no delete markers.
    fn list_every_version(&self, visit: &mut dyn FnMut(ListedVersion)) -> Result<(), StorageError> {
        self.http.block_on(self.every_generation(visit))
    }

    fn lists_every_version(&self) -> bool {
        true
    }

    /// Object versioning, and soft delete (on by default for new buckets, 7 days): either way a
    /// delete keeps the bytes, billed, for a while.
    fn versioning(&self) -> Result<Option<Versioning>, StorageError> {
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        let url = format!(
            "{}/storage/v1/b/{}?fields=versioning,softDeletePolicy",
            self.base,
            encode(&self.bucket)
        );
        let what = format!("gs://{}", self.bucket);
        let reply =
            self.http
                .block_on(self.call(&what, http::Method::GET, &url, &[], Bytes::new()))?;
        if !reply.ok() {
            return Err(reply.error(&what));
        }
        let v: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| StorageError::other(&what, format!("not bucket metadata: {e}")))?;
        Ok(bucket_retention(&self.bucket, &v))
    }
}

impl Lock for GcsStorage {
    fn try_lock(&self, record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        self.http.block_on(async {
            for _ in 0..5 {
                self.counters.other.fetch_add(1, Ordering::Relaxed);
                let created = self.upload(LOCK_KEY, record, Some("0")).await?;
                if let Some(generation) = created {
                    let generation = Arc::new(std::sync::Mutex::new(generation));
                    let renew = self.http.spawn(renew_lock(
                        self.http.shared.clone(),
                        self.tokens.clone(),
                        self.base.clone(),
                        self.bucket.clone(),
                        self.full(LOCK_KEY),
                        record.to_vec(),
                        generation.clone(),
                    ));
                    return Ok(Ok(LockToken(Box::new(GcsLock { renew, generation }))));
                }
                if let Some((bytes, generation, modified)) = self.read_lock().await? {
                    return Ok(Err(HeldLock {
                        location: format!("gs://{}/{}", self.bucket, self.full(LOCK_KEY)),
                        record: Some(bytes),
                        renewed: modified,
                        expires: true,
                        etag: generation,
                    }));
                }
            }
            Err(StorageError::other(
                LOCK_KEY,
                "the lock object kept vanishing between writing and reading it; another client is deleting it",
            ))
        })
    }

    fn break_lock(&self, held: &HeldLock) -> Result<(), StorageError> {
        self.http
            .block_on(self.delete_if(LOCK_KEY, Some(held.etag.as_deref().unwrap_or("0"))))
    }

    fn unlock(&self, token: LockToken) -> Result<(), StorageError> {
        let lock = token
            .0
            .downcast::<GcsLock>()
            .map_err(|_| StorageError::other(LOCK_KEY, "not a lock of this store"))?;
        lock.renew.abort();
        let generation = lock.generation.lock().expect("not poisoned").clone();
        self.http
            .block_on(self.delete_if(LOCK_KEY, Some(&generation)))
    }
}

/// What a bucket keeps of deleted objects: noncurrent versions (versioning) or soft-deleted
/// objects (a soft delete policy with a retention of more than 0 s).
fn bucket_retention(bucket: &str, v: &serde_json::Value) -> Option<Versioning> {
    let versioned = v["versioning"]["enabled"].as_bool() == Some(true);
    let soft: u64 = v["softDeletePolicy"]["retentionDurationSeconds"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v["softDeletePolicy"]["retentionDurationSeconds"].as_u64())
        .unwrap_or(0);
    if versioned {
        return Some(Versioning {
            state: VersioningState::Enabled,
            deletes_every_version: false,
            advice: Some(format!(
                "on a bucket with object versioning a delete keeps the object as a noncurrent \
                 version: the space comes back when they are deleted. Add a lifecycle rule to \
                 gs://{bucket} for the store's prefix: Delete when isLive is false and \
                 daysSinceNoncurrentTime is 1"
            )),
        });
    }
    (soft > 0).then(|| Versioning {
        state: VersioningState::SoftDelete {
            days: soft / 86_400,
        },
        deletes_every_version: false,
        advice: Some(format!(
            "the bucket's soft delete policy keeps each deleted object, billed, for {} days, \
             after which the space comes back. To get it now, turn soft delete off before the \
             run: gcloud storage buckets update gs://{bucket} --clear-soft-delete",
            soft / 86_400
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_delete_and_versioning_are_what_a_bucket_keeps() {
        let v = serde_json::json!({"softDeletePolicy": {"retentionDurationSeconds": "604800",
            "effectiveTime": "2024-03-01T00:00:00Z"}});
        let r = bucket_retention("b", &v).unwrap();
        assert_eq!(r.state.to_string(), "soft delete (7 days)");
        assert!(r.advice.unwrap().contains("--clear-soft-delete"));
        let off = serde_json::json!({"softDeletePolicy": {"retentionDurationSeconds": "0"}});
        assert!(bucket_retention("b", &off).is_none());
        assert!(bucket_retention("b", &serde_json::json!({})).is_none());
        let v = serde_json::json!({"versioning": {"enabled": true}});
        assert_eq!(
            bucket_retention("b", &v).unwrap().state,
            VersioningState::Enabled
        );
    }

    #[test]
    fn a_link_is_proven_by_the_md5_of_its_digest() {
        let s = GcsStorage::open(GcsOptions {
            bucket: "b".into(),
            endpoint: Some("127.0.0.1:1".into()),
            max_in_flight: 1,
            ..GcsOptions::default()
        })
        .unwrap();
        let d = Digest::from_hex(&"a".repeat(64)).unwrap();
        use base64::Engine as _;
        use md5::Digest as _;
        let sum = md5::Md5::digest(d.to_string().as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(sum);
        assert!(s.link_proven(&b64, &d));
        assert!(!s.link_proven("AAAAAAAAAAAAAAAAAAAAAA==", &d));
    }
}
