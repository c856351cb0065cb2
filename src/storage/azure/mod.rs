//! The Azure Blob Storage backend: a store is a container and a prefix (the registry's
//! `rootdirectory`), read over the Blob service's REST API.
//!
//! Listings are flat, 5000 blobs a page, with size, time, blob type and `Content-MD5`, so that a
//! link kept as a block blob whose MD5 is that of the digest in its key is not read. Azure has no
//! start-after, so neighbouring folders list one prefix each (the collector lists many shards at
//! once). Reads ask for at most the limit's bytes (`x-ms-range`). Deletes go 256 to a Blob Batch.
//! The lock is a create-only write (`If-None-Match: *`), renewed and released only at its ETag.
//!
//! Registry 2.8 named blobs with a leading `/` (`/docker/registry/v2/…`), 3.x without: the first
//! request finds which of the two holds the store, and refuses a container where both do.

pub mod auth;
mod batch;
mod listing;

mod client;

use super::http::{Http, Reply, Shared, encode, encode_path};
use super::remote::{Counters, Page, Renewed};
use super::{
    Entry, HeldLock, ListingNote, Lock, LockToken, Moves, Multipart, RequestCounts, Storage,
    StorageError, Versioning, VersioningState, Versions,
};
use crate::model::digest::Digest;
use bytes::Bytes;
pub use client::http_date;
use client::{Client, Condition, parse_http_date};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

/// The lock object's key, relative to the store's root (as on S3).
pub use super::lock_record::LOCK_KEY;

/// The Blob service version regsweep speaks (Blob Batch needs 2018-11-09 or later).
const VERSION: &str = "2021-08-06";

/// How to reach a container, as the registry's `storage.azure` section or a URL says it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AzureOptions {
    pub account: String,
    pub container: String,
    /// Key prefix of the store: empty or ending with `/` (3.x's `rootdirectory`).
    pub prefix: String,
    /// `accountkey` (base64).
    pub account_key: Option<String>,
    /// `connectionstring` (3.x), else `AZURE_STORAGE_CONNECTION_STRING` when no key is given.
    pub connection_string: Option<String>,
    /// `credentials.type`: `shared_key` (the default), `client_secret` or `default_credentials`.
    pub credentials_type: Option<String>,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub secret: Option<String>,
    /// `serviceurl`: the Blob service's URL; else `https://{account}.blob.{realm}`.
    pub service_url: Option<String>,
    /// `realm`: `core.windows.net` unless said (`core.chinacloudapi.cn`, …).
    pub realm: Option<String>,
    pub max_in_flight: usize,
    pub max_rps: Option<u32>,
}

/// A store in an Azure container.
#[derive(Debug)]
pub struct AzureStorage {
    http: Http,
    client: Arc<Client>,
    account: String,
    prefix: String,
    /// The prefix blob names carry: `prefix`, or `/` and `prefix` for a store registry 2.8 wrote.
    root: std::sync::OnceLock<String>,
    counters: Arc<Counters>,
    max_in_flight: usize,
    stop: super::remote::Stop,
}

/// A lock this backend holds: the task that renews it, and the ETag it last wrote.
struct AzureLock {
    renew: tokio::task::JoinHandle<()>,
    etag: Arc<std::sync::Mutex<String>>,
    name: String,
}

/// What Get Blob Properties says of a blob.
struct Head {
    size: u64,
    etag: Option<String>,
    modified: Option<SystemTime>,
    copy_status: Option<String>,
}

impl AzureStorage {
    /// Builds the client; no network access happens until the first request.
    pub fn open(opts: AzureOptions) -> Result<AzureStorage, StorageError> {
        let shown = format!("azure container {}", opts.container);
        if opts.container.is_empty() {
            return Err(StorageError::other(&shown, "no container named"));
        }
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let kind = opts.credentials_type.as_deref().unwrap_or("shared_key");
        let connection = match (&opts.connection_string, &opts.account_key, kind) {
            (Some(c), _, _) => Some(auth::ConnectionString::parse(c)?),
            (None, None, "shared_key") => var("AZURE_STORAGE_CONNECTION_STRING")
                .map(|c| auth::ConnectionString::parse(&c))
                .transpose()?,
            _ => None,
        };
        let connection = connection.unwrap_or_default();
        let account = Some(opts.account.clone())
            .filter(|a| !a.is_empty())
            .or(connection.account.clone())
            .or_else(|| var("AZURE_STORAGE_ACCOUNT"))
            .ok_or_else(|| {
                StorageError::other(
                    &shown,
                    "no storage account named (accountname, the URL's host, or AZURE_STORAGE_ACCOUNT)",
                )
            })?;
        let realm = opts.realm.as_deref().unwrap_or("core.windows.net");
        let service = opts
            .service_url
            .clone()
            .filter(|s| !s.is_empty())
            .or(connection.blob_endpoint.clone())
            .unwrap_or_else(|| format!("https://{account}.blob.{realm}"));
        let service = service.trim_end_matches('/').to_owned();
        let service_path = service
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_default();
        let credentials = match kind {
            "client_secret" => {
                let need = |v: &Option<String>, name: &str| {
                    v.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
                        StorageError::other(
                            &shown,
                            format!("credentials.type client_secret needs credentials.{name}"),
                        )
                    })
                };
                auth::Credentials::ClientSecret {
                    tenant: need(&opts.tenant_id, "tenantid")?,
                    client_id: need(&opts.client_id, "clientid")?,
                    secret: need(&opts.secret, "secret")?,
                }
            }
            "default_credentials" => auth::Credentials::entra_chain(),
            "shared_key" => match (&opts.account_key, &connection.key, &connection.sas) {
                (Some(k), _, _) | (None, Some(k), _) => auth::Credentials::shared_key(&account, k)?,
                (None, None, Some(sas)) => {
                    auth::Credentials::Sas(sas.trim_start_matches('?').to_owned())
                }
                (None, None, None) if account == auth::EMULATOR_ACCOUNT => {
                    auth::Credentials::shared_key(&account, auth::EMULATOR_KEY)?
                }
                (None, None, None) => auth::Credentials::default_chain(&account)?,
            },
            t => {
                return Err(StorageError::other(
                    &shown,
                    format!(
                        "credentials.type {t:?} is not one the registry knows (shared_key, \
                         client_secret, default_credentials)"
                    ),
                ));
            }
        };
        let http = Http::new(&shown, opts.max_in_flight, opts.max_rps)?;
        let client = Arc::new(Client {
            http: http.shared.clone(),
            signer: auth::Signer::new(credentials),
            service,
            service_path,
            container: opts.container,
        });
        Ok(AzureStorage {
            http,
            client,
            account,
            prefix: opts.prefix,
            root: Default::default(),
            counters: Default::default(),
            max_in_flight: opts.max_in_flight.max(1),
            stop: Default::default(),
        })
    }

    /// The prefix of the store's blob names, found on first use: registry 2.8 wrote
    /// `/docker/registry/v2/…`, 3.x writes `docker/registry/v2/…`. A container where both hold
    /// registry data is refused: which one the registry serves cannot be told from the storage,
    /// and a mark of one would sweep nothing of the other, nor protect it.
    fn root(&self) -> Result<&str, StorageError> {
        if let Some(r) = self.root.get() {
            return Ok(r);
        }
        let plain = self.prefix.clone();
        let slashed = format!("/{}", self.prefix);
        let (has_plain, has_slashed) = self.http.block_on(async {
            let a = self.any_below(&format!("{plain}docker/")).await?;
            let b = self.any_below(&format!("{slashed}docker/")).await?;
            Ok::<_, StorageError>((a, b))
        })?;
        let root = match (has_plain, has_slashed) {
            (true, true) => {
                return Err(StorageError::other(
                    &self.describe(),
                    format!(
                        "the container holds registry data twice: under {plain}docker/ (as \
                         registry 3.x names blobs) and under {slashed}docker/ (registry 2.8's \
                         leading '/'). Which one the registry serves cannot be told from the \
                         storage; move the other aside (or point rootdirectory at one) and run \
                         again"
                    ),
                ));
            }
            (false, true) => slashed,
            _ => plain,
        };
        Ok(self.root.get_or_init(|| root))
    }

    /// True when some blob's name starts with `prefix`.
    async fn any_below(&self, prefix: &str) -> Result<bool, StorageError> {
        self.counters.list.fetch_add(1, Ordering::Relaxed);
        let page = self.list_page(prefix, false, None, 1).await?;
        Ok(!page.blobs.is_empty())
    }

    fn full(&self, key: &str) -> Result<String, StorageError> {
        Ok(format!("{}{key}", self.root()?))
    }

    async fn list_page(
        &self,
        full_prefix: &str,
        delimiter: bool,
        marker: Option<&str>,
        max: usize,
    ) -> Result<listing::Page, StorageError> {
        let mut query = vec![
            ("restype", "container".to_owned()),
            ("comp", "list".to_owned()),
            ("prefix", full_prefix.to_owned()),
            ("maxresults", max.to_string()),
        ];
        if delimiter {
            query.push(("delimiter", "/".to_owned()));
        }
        if let Some(m) = marker {
            query.push(("marker", m.to_owned()));
        }
        let reply = self
            .client
            .call(
                full_prefix,
                http::Method::GET,
                None,
                &query,
                &[],
                Bytes::new(),
            )
            .await?;
        if reply.status == 404 {
            return Err(StorageError::other(
                &self.describe(),
                "no such container (or no permission to list it)",
            ));
        }
        if !reply.ok() {
            return Err(reply.error(full_prefix));
        }
        listing::Page::parse(&reply.body).map_err(|e| StorageError::other(full_prefix, e))
    }

    /// Lists the store's `prefix` flat, or one level with a delimiter (folders go to `dirs`).
    async fn list_async(
        &self,
        root: &str,
        prefix: &str,
        delimiter: bool,
        visit: &mut dyn FnMut(Entry),
        dirs: &mut Vec<String>,
    ) -> Result<(), StorageError> {
        let full_prefix = format!("{root}{prefix}");
        let fetch = |marker: Option<String>| {
            let full_prefix = &full_prefix;
            async move {
                let page = self
                    .list_page(full_prefix, delimiter, marker.as_deref(), 5000)
                    .await?;
                Ok(page_of(page, root, full_prefix))
            }
        };
        super::remote::list_pages(prefix, &self.stop, &self.counters.list, fetch, visit, dirs).await
    }

    /// The lock as it is now: its bytes, ETag and last write; `None` when there is none.
    async fn read_lock(
        &self,
        name: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>, Option<SystemTime>)>, StorageError> {
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        let reply = self
            .client
            .call(name, http::Method::GET, Some(name), &[], &[], Bytes::new())
            .await?;
        match reply.status {
            404 => Ok(None),
            _ if reply.ok() => Ok(Some((
                reply.body.to_vec(),
                reply.header("etag").map(str::to_owned),
                reply.header("last-modified").and_then(parse_http_date),
            ))),
            _ => Err(reply.error(name)),
        }
    }
}

/// A page of the Blob service's listing as the store's entries (names below `root`) and folders.
fn page_of(page: listing::Page, root: &str, full_prefix: &str) -> Page<'static> {
    let entries = page
        .blobs
        .into_iter()
        .filter_map(|blob| {
            let key = blob.name.strip_prefix(root)?.to_owned();
            Some(Entry {
                key,
                size: blob.size,
                modified: blob.modified,
                // Only a block blob put whole carries the MD5 of its content; an append blob (3.0
                // to 3.1.1 wrote links so) has none, and is read.
                etag: blob.content_md5.filter(|_| blob.block_blob),
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
        next: page.next_marker.filter(|m| !m.is_empty()),
        held: None,
    }
}

/// Writes the lock again every [`super::lock_record::RENEW_EVERY`] while its ETag is ours.
async fn renew_lock(
    client: Arc<Client>,
    name: String,
    record: Vec<u8>,
    etag: Arc<std::sync::Mutex<String>>,
) {
    let location = format!("{}/{name}", client.container);
    super::remote::renew_lock(location, etag, |current| {
        let (client, name, record) = (&client, &name, &record);
        async move {
            match client.put(name, record, Condition::Etag(&current)).await {
                Ok(Some(e)) => Renewed::Written(e),
                Ok(None) => Renewed::Lost,
                Err(_) => Renewed::Failed,
            }
        }
    })
    .await
}

impl Storage for AzureStorage {
    fn stop_listings_on(&self, flag: Arc<std::sync::atomic::AtomicUsize>) {
        self.stop.set(flag);
    }

    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let root = self.root()?;
        self.http
            .block_on(self.list_async(root, prefix, false, visit, &mut Vec::new()))
    }

    /// One prefix a folder, in their order: Azure lists from a prefix or a marker, never from a
    /// key, so a range of folders cannot be one listing.
    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        _lean: super::Lean,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let root = self.root()?;
        self.http.block_on(async {
            for folder in folders {
                let p = format!("{prefix}{folder}/");
                self.list_async(root, &p, false, visit, &mut Vec::new())
                    .await?;
            }
            Ok(())
        })
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let root = self.root()?;
        let mut dirs = Vec::new();
        self.http
            .block_on(self.list_async(root, prefix, true, &mut |_| {}, &mut dirs))?;
        Ok(super::sorted_dirs(dirs))
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        let name = self.full(key)?;
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let range = [("x-ms-range", super::http::read_range(limit))];
        let reply = self.http.block_on(self.client.call(
            key,
            http::Method::GET,
            Some(&name),
            &[],
            &range,
            Bytes::new(),
        ))?;
        super::http::ranged_read(key, limit, reply)
    }

    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        let name = self.full(key)?;
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        match self.http.block_on(self.client.head(&name))? {
            Some(h) => Ok(Some((h.size, h.modified))),
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        let name = self.full(key)?;
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let reply = self.http.block_on(self.client.stream(key, &name, chunk))?;
        match reply.status {
            404 => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
            _ if reply.ok() => Ok(()),
            _ => Err(reply.error(key)),
        }
    }

    /// A Blob Batch of up to 256 deletes a call; one result a key ("not found" is success).
    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let root = match self.root() {
            Ok(r) => r,
            Err(e) => return keys.iter().map(|_| Err(e.clone())).collect(),
        };
        let names: Vec<String> = keys.iter().map(|k| format!("{root}{k}")).collect();
        let target = batch::Target(self.client.clone());
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
        let root = self.root.get().unwrap_or(&self.prefix);
        format!(
            "{}/{}/{}",
            self.client.service,
            self.client.container,
            root.trim_end_matches('/')
        )
        .trim_end_matches('/')
        .to_owned()
    }

    fn parallelism(&self) -> usize {
        self.max_in_flight
    }

    fn times_to_the_second(&self) -> bool {
        true
    }

    fn request_counts(&self) -> Option<RequestCounts> {
        let attempts = self.http.shared.attempts.load(Ordering::Relaxed);
        Some(self.counters.counts("azure", attempts))
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

impl Moves for AzureStorage {
    /// Copy Blob within the account to a name that must be absent (`If-None-Match: *`), from the
    /// source at the ETag read (`x-ms-source-if-match`), waited for while pending, checked by size
    /// before the source is deleted at that ETag: a crash leaves the blob in one place or in both.
    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        let (src, dst) = (self.full(from)?, self.full(to)?);
        self.http.block_on(async {
            let c = &self.client;
            self.counters.other.fetch_add(2, Ordering::Relaxed);
            let (size, etag) = match c.head(&src).await? {
                Some(h) => (h.size, h.etag),
                None => {
                    return Err(StorageError::NotFound {
                        key: from.to_owned(),
                    });
                }
            };
            let source = format!(
                "{}{}",
                c.service_origin(),
                c.with_sas(&c.path(Some(&src)), &[])
            );
            let mut headers = vec![
                ("x-ms-copy-source", source),
                ("if-none-match", "*".to_owned()),
            ];
            if let Some(e) = &etag {
                headers.push(("x-ms-source-if-match", e.clone()));
            }
            self.counters.other.fetch_add(1, Ordering::Relaxed);
            let reply = c
                .call(
                    to,
                    http::Method::PUT,
                    Some(&dst),
                    &[],
                    &headers,
                    Bytes::new(),
                )
                .await?;
            let code = reply.header("x-ms-error-code").unwrap_or_default();
            match reply.status {
                404 => {
                    return Err(StorageError::NotFound {
                        key: from.to_owned(),
                    });
                }
                409 | 412 if code != "SourceConditionNotMet" => {
                    return Err(StorageError::Exists { key: to.to_owned() });
                }
                _ if !reply.ok() => return Err(reply.error(to)),
                _ => {}
            }
            let mut status = reply
                .header("x-ms-copy-status")
                .unwrap_or("success")
                .to_owned();
            let mut copied = None;
            for _ in 0..600 {
                if status != "pending" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                self.counters.other.fetch_add(1, Ordering::Relaxed);
                copied = c.head(&dst).await?;
                status = copied
                    .as_ref()
                    .and_then(|h| h.copy_status.clone())
                    .unwrap_or_else(|| "success".into());
            }
            if status != "success" {
                return Err(StorageError::other(
                    to,
                    format!("the copy of {from} ended {status:?}; the original stays"),
                ));
            }
            if copied.is_none() {
                self.counters.other.fetch_add(1, Ordering::Relaxed);
                copied = c.head(&dst).await?;
            }
            if copied.as_ref().map(|h| h.size) != Some(size) {
                return Err(StorageError::other(
                    to,
                    format!(
                        "the copy of {from} does not match it (size {size}; copy {:?}); the \
                         original stays",
                        copied.map(|h| h.size)
                    ),
                ));
            }
            self.counters.other.fetch_add(1, Ordering::Relaxed);
            c.delete_if(&src, etag.as_deref()).await?;
            Ok(size)
        })
    }

    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let name = self.full(key)?;
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        self.http
            .block_on(self.client.put(&name, bytes, Condition::None))
            .map(|_| ())
    }

    fn move_cost(&self) -> &'static str {
        "per key two property reads, a Copy Blob within the account, a read of the copy's \
         properties and the delete; the copies are billed until the run is purged"
    }
}

impl Versions for AzureStorage {
    /// Blob soft delete, from the account's Blob service properties: deleted blobs stay, billed,
    /// for its retention. (Blob versioning is an account setting the data plane does not show;
    /// a versioned account's writes answer with `x-ms-version-id`, which the lock's write checks.)
    fn versioning(&self) -> Result<Option<Versioning>, StorageError> {
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        let what = format!("{} (Blob service properties)", self.client.service);
        let query = [
            ("restype", "service".to_owned()),
            ("comp", "properties".to_owned()),
        ];
        let path = format!("{}/", self.client.service_path);
        let reply = self.http.block_on(self.client.send_path(
            &what,
            http::Method::GET,
            &path,
            &query,
            &[],
            Bytes::new(),
        ))?;
        if !reply.ok() {
            return Err(reply.error(&what));
        }
        let text = String::from_utf8_lossy(&reply.body);
        Ok(listing::soft_delete_days(&text).map(|days| Versioning {
            state: VersioningState::SoftDelete { days },
            deletes_every_version: false,
            advice: Some(format!(
                "the account's blob soft delete keeps each deleted blob, billed, for {days} days, \
                 after which the space comes back. To get it now, turn it off before the run: az \
                 storage account blob-service-properties update --account-name {} \
                 --enable-delete-retention false",
                self.account
            )),
        }))
    }
}

impl Lock for AzureStorage {
    fn try_lock(&self, record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        let name = self.full(LOCK_KEY)?;
        self.http.block_on(async {
            for _ in 0..5 {
                self.counters.other.fetch_add(1, Ordering::Relaxed);
                if let Some(etag) = self.client.put(&name, record, Condition::Absent).await? {
                    let etag = Arc::new(std::sync::Mutex::new(etag));
                    let renew = self.http.spawn(renew_lock(
                        self.client.clone(),
                        name.clone(),
                        record.to_vec(),
                        etag.clone(),
                    ));
                    return Ok(Ok(LockToken(Box::new(AzureLock { renew, etag, name }))));
                }
                if let Some((bytes, etag, modified)) = self.read_lock(&name).await? {
                    return Ok(Err(HeldLock {
                        location: format!("{}/{}/{name}", self.client.service, self.client.container),
                        record: Some(bytes),
                        renewed: modified,
                        expires: true,
                        etag,
                    }));
                }
            }
            Err(StorageError::other(
                LOCK_KEY,
                "the lock blob kept vanishing between writing and reading it; another client is deleting it",
            ))
        })
    }

    fn break_lock(&self, held: &HeldLock) -> Result<(), StorageError> {
        let name = self.full(LOCK_KEY)?;
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        self.http.block_on(
            self.client
                .delete_if(&name, Some(held.etag.as_deref().unwrap_or("*"))),
        )
    }

    fn unlock(&self, token: LockToken) -> Result<(), StorageError> {
        let lock = token
            .0
            .downcast::<AzureLock>()
            .map_err(|_| StorageError::other(LOCK_KEY, "not a lock of this store"))?;
        lock.renew.abort();
        let etag = lock.etag.lock().expect("not poisoned").clone();
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        self.http
            .block_on(self.client.delete_if(&lock.name, Some(&etag)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_both_ways() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_344_048);
        let s = http_date(t);
        assert_eq!(s, "Fri, 04 Dec 2026 00:27:28 GMT");
        assert_eq!(parse_http_date(&s), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn the_account_key_and_the_credentials_type_are_checked_when_opened() {
        let base = AzureOptions {
            account: "acct".into(),
            container: "c".into(),
            max_in_flight: 1,
            ..AzureOptions::default()
        };
        let e = AzureStorage::open(AzureOptions {
            account_key: Some("not base64!".into()),
            ..base.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
        let e = AzureStorage::open(AzureOptions {
            credentials_type: Some("client_secret".into()),
            ..base.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("tenantid"), "{e}");
        let e = AzureStorage::open(AzureOptions {
            credentials_type: Some("password".into()),
            ..base.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("password"), "{e}");
        let s = AzureStorage::open(AzureOptions {
            account_key: Some("a2V5".into()),
            service_url: Some("http://127.0.0.1:1/acct/".into()),
            ..base
        })
        .unwrap();
        assert_eq!(s.client.service_path, "/acct");
        assert_eq!(s.client.service_origin(), "http://127.0.0.1:1");
        assert_eq!(s.client.path(Some("/docker/a b")), "/acct/c//docker/a%20b");
    }
}
