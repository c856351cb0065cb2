//! The S3 backend: a store is a bucket and a prefix (the registry's `rootdirectory`).
//!
//! It reads the layout as keys: flat listings (no delimiter, 1000 keys a page) carry size,
//! last-modified and ETag, so no blob is ever HEADed; only links and manifests are read. Deletes use
//! DeleteObjects, 1000 keys a request, with a result per key.
//!
//! The backend owns a tokio runtime; the collector calls it from rayon threads, each call blocking on
//! its own request(s). Requests in flight are bounded by a semaphore, and an optional pacer spaces
//! request starts to a requests-per-second cap, so a run cannot flood a bucket the registry shares.
//! Throttling (503 SlowDown), 5xx and dropped connections are retried by the SDK's standard retry
//! strategy with exponential backoff; an interceptor counts attempts so retries show in the report.

use crate::model::digest::Digest;

use super::pace::Pacer;
use super::{
    Entry, HeldLock, Lean, ListingNote, LockToken, MultipartUpload, ObjectVersion, RequestCounts,
    Storage, StorageError, Versioning,
};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// How to reach a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Options {
    pub bucket: String,
    /// Key prefix of the store: the registry's `rootdirectory` without its leading `/`; empty or
    /// ending with `/`.
    pub prefix: String,
    pub region: Option<String>,
    /// A non-AWS endpoint (MinIO, Ceph, a local server); implies path-style unless `force_path_style`
    /// says otherwise.
    pub endpoint: Option<String>,
    pub force_path_style: Option<bool>,
    /// Static credentials (from a registry config); otherwise aws-config's default chain.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// Requests started per second at most (`None`: no cap).
    pub max_rps: Option<u32>,
    /// On a versioned bucket, a delete removes every version of the key and its delete markers
    /// (`--delete-versions`), instead of adding a delete marker that frees nothing.
    pub delete_versions: bool,
    /// The largest object the trash moves with one CopyObject; a larger one is copied in parts
    /// (UploadPartCopy). `None`: S3's limit, 5 GiB.
    pub copy_object_max: Option<u64>,
}

#[derive(Debug, Default)]
struct Counters {
    list: AtomicU64,
    get: AtomicU64,
    delete: AtomicU64,
    /// Requests on the lock object (not the store's): kept apart so they do not count as retries.
    lock: AtomicU64,
    /// Requests about the bucket itself (its versioning), kept apart likewise.
    bucket: AtomicU64,
    attempts: AtomicU64,
    /// Noncurrent versions and delete markers deleted with `delete_versions`.
    older_versions: AtomicU64,
    /// Requests of the trash: HEADs and copies of moves, and its run records' writes.
    trash: AtomicU64,
}

/// One version of a key, or a delete marker on it, as ListObjectVersions gives it.
#[derive(Debug, Clone)]
struct VersionEntry {
    id: String,
    marker: bool,
    latest: bool,
}

/// Counts every attempt the SDK makes (first tries and retries alike).
#[derive(Debug)]
struct CountAttempts(Arc<Counters>);

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "regsweep-count-attempts"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The lock object's key, relative to the store's root: beside `docker/`, outside the registry's keys.
pub const LOCK_KEY: &str = "regsweep.lock";

/// Keys one DeleteObjects request takes at most.
const DELETE_OBJECTS_MAX: usize = 1000;

/// List pages in flight at once, at most (within `--max-in-flight`). A page of 1,000 keys is about
/// half a megabyte while it is read and parsed, against well under a kilobyte for a link or a
/// manifest; listings are about 1% of a walk's requests (2,648 of 254,648 at 1M blobs), so more of
/// them at once would buy seconds and cost a page of memory each.
const LISTS_IN_FLIGHT: usize = 16;

/// A lock this backend holds: the task that renews it, and the ETag it was written with.
struct S3Lock {
    renew: tokio::task::JoinHandle<()>,
    etag: Option<String>,
}

/// Writes the lock object again every [`super::holder::RENEW_EVERY`], as long as it is still ours
/// (`If-Match` its ETag; same bytes, same ETag). Stops when it was broken or taken over.
async fn renew_lock(
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    record: Vec<u8>,
    etag: Option<String>,
    counters: Arc<Counters>,
) {
    let Some(etag) = etag else { return };
    loop {
        tokio::time::sleep(super::holder::RENEW_EVERY).await;
        counters.lock.fetch_add(1, Ordering::Relaxed);
        let put = client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .if_match(&etag)
            .content_type("application/json")
            .body(record.clone().into())
            .send()
            .await;
        if let Err(e) = put
            && matches!(http_status(&e), Some(412 | 404))
        {
            crate::model::warning::emit(format!(
                "warning: the lock s3://{bucket}/{key} was broken or replaced while this run held it"
            ));
            return;
        }
    }
}

/// A store in an S3 bucket.
#[derive(Debug)]
pub struct S3Storage {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    in_flight: tokio::sync::Semaphore,
    /// Places for list pages among those in flight ([`LISTS_IN_FLIGHT`]).
    listing: tokio::sync::Semaphore,
    max_in_flight: usize,
    pacer: Option<Pacer>,
    counters: Arc<Counters>,
    /// Set by [`Storage::stop_listings_on`].
    stop: std::sync::OnceLock<Arc<std::sync::atomic::AtomicUsize>>,
    delete_versions: bool,
    copy_object_max: u64,
    /// The bucket's versioning status once read: `Some(None)` when it was never turned on.
    status: std::sync::OnceLock<Option<String>>,
}

fn other(key: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Other {
        key: key.to_owned(),
        message: e.to_string(),
    }
}

/// The HTTP status an SDK error came back with, if it got that far.
fn http_status<E>(e: &aws_sdk_s3::error::SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The full message of an SDK error, with its source chain (the SDK's Display is terse).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl S3Storage {
    /// Builds the client. Fails only when the options cannot make one (no network access happens).
    pub fn open(opts: S3Options) -> Result<S3Storage, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| other(&opts.bucket, e))?;
        let counters = Arc::new(Counters::default());
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        let client = runtime.block_on(async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(region) = &opts.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            let sdk = loader.load().await;
            let mut b = aws_sdk_s3::config::Builder::from(&sdk)
                .retry_config(
                    aws_sdk_s3::config::retry::RetryConfig::standard()
                        .with_max_attempts(8)
                        .with_initial_backoff(Duration::from_millis(100))
                        .with_max_backoff(Duration::from_secs(10)),
                )
                .timeout_config(
                    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .operation_attempt_timeout(Duration::from_secs(120))
                        .build(),
                )
                .interceptor(CountAttempts(counters.clone()))
                // Checksums only where an operation requires one: the servers that predate the SDK's
                // flexible checksums (older MinIO, Ceph RGW, some S3-compatible services) reject or
                // mishandle the CRC32 headers it would otherwise send on every request.
                .request_checksum_calculation(
                    aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                )
                // Nor `x-amz-checksum-mode` on reads: what regsweep reads it checks itself (links
                // against their folder, manifests against their digest).
                .response_checksum_validation(
                    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                );
            if sdk.region().is_none() {
                b = b.region(aws_config::Region::new("us-east-1"));
            }
            if let Some(url) = &endpoint {
                b = b.endpoint_url(url);
            }
            b = b.force_path_style(opts.force_path_style.unwrap_or(endpoint.is_some()));
            if let (Some(ak), Some(sk)) = (&opts.access_key, &opts.secret_key) {
                b = b.credentials_provider(aws_sdk_s3::config::Credentials::new(
                    ak,
                    sk,
                    None,
                    None,
                    "registry-config",
                ));
            }
            aws_sdk_s3::Client::from_conf(b.build())
        });
        let pacer = opts.max_rps.and_then(Pacer::per_second);
        Ok(S3Storage {
            runtime,
            client,
            bucket: opts.bucket,
            prefix: opts.prefix,
            in_flight: tokio::sync::Semaphore::new(opts.max_in_flight.max(1)),
            listing: tokio::sync::Semaphore::new(LISTS_IN_FLIGHT.min(opts.max_in_flight.max(1))),
            max_in_flight: opts.max_in_flight.max(1),
            pacer,
            counters,
            stop: Default::default(),
            delete_versions: opts.delete_versions,
            copy_object_max: opts.copy_object_max.unwrap_or(COPY_OBJECT_MAX),
            status: Default::default(),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Waits for a place among the requests in flight and for the pacer.
    async fn admit(&self) -> tokio::sync::SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("semaphore is never closed");
        if let Some(p) = &self.pacer {
            p.wait().await;
        }
        permit
    }

    /// Lists `prefix`: every key (or with `delimiter`, the keys and folders of one level), or with
    /// `range`, only the keys after `range.0` and before `range.1` (full keys).
    async fn list_async(
        &self,
        prefix: &str,
        delimiter: bool,
        range: Option<(&str, &str)>,
        visit: &mut dyn FnMut(Entry),
        dirs: &mut Vec<String>,
    ) -> Result<(), StorageError> {
        let full_prefix = self.full(prefix);
        let mut token: Option<String> = None;
        // S3 lists keys in ascending order across pages; a key that does not sort after the one
        // before it means the listing moved under the walk (or the server pages wrongly), and keys
        // may then have been skipped, which would make what they name look unreferenced.
        let mut last: Option<String> = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .max_keys(1000);
            if delimiter {
                req = req.delimiter("/");
            }
            if let Some((after, _)) = range {
                req = req.start_after(after);
            }
            if self
                .stop
                .get()
                .is_some_and(|s| s.load(Ordering::Relaxed) != 0)
            {
                return Err(other(prefix, "listing stopped: a stop was asked for"));
            }
            // Held until the page is visited: its memory is what the bound is for.
            let _page = (self.listing.acquire().await).expect("semaphore is never closed");
            let page = {
                let _permit = self.admit().await;
                self.counters.list.fetch_add(1, Ordering::Relaxed);
                req.set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| other(prefix, describe(&e)))?
            };
            // The key before this one: borrowed within the page, carried over between pages.
            let mut previous = last.as_deref();
            for obj in page.contents() {
                if let (Some((_, before)), Some(key)) = (range, obj.key())
                    && key >= before
                {
                    return Ok(());
                }
                let Some(key) = obj.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                super::in_order(prefix, key, previous)?;
                previous = Some(key);
                let modified = obj
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok());
                visit(Entry {
                    key: key.to_owned(),
                    size: obj.size().unwrap_or(0).max(0) as u64,
                    modified,
                    etag: obj.e_tag().map(str::to_owned),
                    content: None,
                });
            }
            last = previous.map(str::to_owned);
            for cp in page.common_prefixes() {
                if let Some(name) = cp.prefix().and_then(|p| p.strip_prefix(&full_prefix)) {
                    dirs.push(name.trim_end_matches('/').to_owned());
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => return Ok(()),
            }
        }
    }

    /// Starts a GET of a store object (the caller holds its place among the requests in flight while
    /// it reads the body); counted as a get.
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StorageError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        self.send_get(key).await
    }

    /// Sends a GET of `key`; a missing key is [`StorageError::NotFound`]. Counting is the caller's.
    async fn send_get(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StorageError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(o) => Ok(o),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(StorageError::NotFound {
                    key: key.to_owned(),
                })
            }
            Err(e) => Err(other(key, describe(&e))),
        }
    }

    /// An object's size and ETag (HEAD); `None` when it is not there. Counted as the trash's.
    async fn head(&self, key: &str) -> Result<Option<(u64, Option<String>)>, StorageError> {
        self.counters.trash.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .head_object(key)
            .await?
            .map(|o| (length(&o), o.e_tag().map(str::to_owned))))
    }

    /// HeadObject; [`StorageError::NotFound`] when the key is not there.
    async fn head_present(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, StorageError> {
        self.head_object(key)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                key: key.to_owned(),
            })
    }

    /// HeadObject; `None` when the key is not there.
    async fn head_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(other(key, describe(&e))),
        }
    }

    /// Bytes in the parts of a multipart upload (ListParts, 1000 parts a page).
    async fn parts_size(&self, u: &MultipartUpload) -> Result<u64, StorageError> {
        let mut size = 0;
        let mut marker: Option<String> = None;
        loop {
            let page = {
                let _permit = self.admit().await;
                self.counters.list.fetch_add(1, Ordering::Relaxed);
                match self
                    .client
                    .list_parts()
                    .bucket(&self.bucket)
                    .key(self.full(&u.key))
                    .upload_id(&u.upload_id)
                    .set_part_number_marker(marker.take())
                    .send()
                    .await
                {
                    Ok(p) => p,
                    // Completed or aborted since it was listed: it holds nothing any more.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.code() == Some("NoSuchUpload")) =>
                    {
                        return Ok(0);
                    }
                    Err(e) => return Err(other(&u.key, describe(&e))),
                }
            };
            size += page
                .parts()
                .iter()
                .map(|p| p.size().unwrap_or(0).max(0) as u64)
                .sum::<u64>();
            match page.next_part_number_marker() {
                Some(m) if page.is_truncated() == Some(true) => marker = Some(m.to_owned()),
                _ => return Ok(size),
            }
        }
    }

    /// The lock object as it is now: its bytes, ETag and last write, or `None` when there is none.
    async fn read_lock(
        &self,
    ) -> Result<Option<(Vec<u8>, Option<String>, Option<SystemTime>)>, StorageError> {
        self.counters.lock.fetch_add(1, Ordering::Relaxed);
        let o = match self.send_get(LOCK_KEY).await {
            Ok(o) => o,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = o.e_tag().map(str::to_owned);
        let modified = o
            .last_modified()
            .and_then(|t| SystemTime::try_from(*t).ok());
        let bytes = o
            .body
            .collect()
            .await
            .map_err(|e| other(LOCK_KEY, describe(&e)))?
            .into_bytes();
        Ok(Some((bytes.to_vec(), etag, modified)))
    }

    /// Deletes the lock object if it is still the one with `etag` (read, compare, delete: a lock
    /// taken again in between by another run stays).
    async fn delete_lock_if(&self, etag: Option<&str>) -> Result<(), StorageError> {
        match self.read_lock().await? {
            Some((_, now, _)) if now.as_deref() == etag => {
                self.counters.lock.fetch_add(1, Ordering::Relaxed);
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(self.full(LOCK_KEY))
                    .send()
                    .await
                    .map_err(|e| other(LOCK_KEY, describe(&e)))?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn lock_location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.full(LOCK_KEY))
    }

    async fn delete_keys(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let objects = keys.iter().map(|k| (k.as_str(), None)).collect::<Vec<_>>();
        self.delete_objects(&objects).await
    }

    /// One DeleteObjects request for up to 1000 objects (a key relative to the store, and a version
    /// or the current one), with a result for each.
    async fn delete_objects(
        &self,
        objects: &[(&str, Option<&str>)],
    ) -> Vec<Result<(), StorageError>> {
        let identifiers: Result<Vec<ObjectIdentifier>, _> = objects
            .iter()
            .map(|(k, version)| {
                ObjectIdentifier::builder()
                    .key(self.full(k))
                    .set_version_id(version.map(str::to_owned))
                    .build()
            })
            .collect();
        let request =
            identifiers.and_then(|o| Delete::builder().set_objects(Some(o)).quiet(true).build());
        let request = match request {
            Ok(r) => r,
            Err(e) => return objects.iter().map(|(k, _)| Err(other(k, &e))).collect(),
        };
        let _permit = self.admit().await;
        self.counters.delete.fetch_add(1, Ordering::Relaxed);
        match self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(request)
            .customize()
            .mutate_request(content_md5_instead_of_crc32)
            .send()
            .await
        {
            Ok(out) => {
                let failed: std::collections::HashMap<(&str, Option<&str>), String> = out
                    .errors()
                    .iter()
                    .filter_map(|e| {
                        let msg = format!(
                            "{} {}",
                            e.code().unwrap_or("error"),
                            e.message().unwrap_or("")
                        );
                        e.key().map(|k| ((k, e.version_id()), msg))
                    })
                    .collect();
                objects
                    .iter()
                    .map(
                        |(k, version)| match failed.get(&(self.full(k).as_str(), *version)) {
                            Some(msg) => Err(other(k, msg.trim())),
                            None => Ok(()),
                        },
                    )
                    .collect()
            }
            Err(e) => {
                let msg = describe(&e);
                objects.iter().map(|(k, _)| Err(other(k, &msg))).collect()
            }
        }
    }

    /// Copies `source` (`bucket/key`, as CopyObject takes it) of `size` bytes to `to` in parts of
    /// [`COPY_PART`] (UploadPartCopy, each only while the source's ETag is `etag`), then completes
    /// the upload; an upload that fails is aborted, so that no parts are left to bill.
    async fn copy_in_parts(
        &self,
        source: &str,
        to: &str,
        size: u64,
        etag: Option<&str>,
    ) -> Result<(), StorageError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let full = self.full(to);
        self.counters.trash.fetch_add(1, Ordering::Relaxed);
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| other(to, describe(&e)))?;
        let id = upload
            .upload_id()
            .ok_or_else(|| other(to, "CreateMultipartUpload gave no upload id"))?
            .to_owned();
        let part = copy_part(size, self.copy_object_max);
        let mut parts = Vec::new();
        let mut copied: Result<(), StorageError> = Ok(());
        for (i, start) in (0..size).step_by(part as usize).enumerate() {
            let end = (start + part).min(size) - 1;
            self.counters.trash.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .client
                .upload_part_copy()
                .bucket(&self.bucket)
                .key(&full)
                .upload_id(&id)
                .part_number(i as i32 + 1)
                .copy_source(source)
                .copy_source_range(format!("bytes={start}-{end}"))
                .set_copy_source_if_match(etag.map(str::to_owned))
                .send()
                .await;
            match sent {
                Ok(out) => parts.push(
                    CompletedPart::builder()
                        .part_number(i as i32 + 1)
                        .set_e_tag(
                            out.copy_part_result()
                                .and_then(|r| r.e_tag())
                                .map(str::to_owned),
                        )
                        .build(),
                ),
                Err(e) => {
                    copied = Err(other(to, describe(&e)));
                    break;
                }
            }
        }
        if copied.is_ok() {
            self.counters.trash.fetch_add(1, Ordering::Relaxed);
            copied = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&full)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| other(to, describe(&e)));
        }
        if copied.is_err() {
            self.counters.trash.fetch_add(1, Ordering::Relaxed);
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&full)
                .upload_id(&id)
                .send()
                .await;
        }
        copied
    }

    /// Every version of `key` and every delete marker on it (ListObjectVersions, 1000 a page).
    async fn versions_of(&self, key: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .version_entries(key)
            .await?
            .into_iter()
            .map(|v| v.id)
            .collect())
    }

    /// Every version of `key` and every delete marker on it, as listed.
    async fn version_entries(&self, key: &str) -> Result<Vec<VersionEntry>, StorageError> {
        let full = self.full(key);
        let mut versions = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = {
                let _permit = self.admit().await;
                self.counters.list.fetch_add(1, Ordering::Relaxed);
                self.client
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .prefix(&full)
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(id_marker.take())
                    .send()
                    .await
                    .map_err(|e| other(key, describe(&e)))?
            };
            // The prefix also matches longer keys: only the key itself counts.
            let entry = |id: Option<&str>, marker, latest: Option<bool>| {
                Some(VersionEntry {
                    id: id?.to_owned(),
                    marker,
                    latest: latest == Some(true),
                })
            };
            versions.extend(
                page.versions()
                    .iter()
                    .filter(|v| v.key() == Some(full.as_str()))
                    .filter_map(|v| entry(v.version_id(), false, v.is_latest())),
            );
            versions.extend(
                page.delete_markers()
                    .iter()
                    .filter(|m| m.key() == Some(full.as_str()))
                    .filter_map(|m| entry(m.version_id(), true, m.is_latest())),
            );
            if page.is_truncated() != Some(true) {
                return Ok(versions);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Ok(versions);
            }
        }
    }

    /// Deletes every version of each key and every delete marker on it, so that nothing of the key
    /// is left to hold space. A key's result is an error when any of its versions could not be
    /// listed or deleted (what was deleted stays deleted; the next run finds the rest). A key with no
    /// versions left is already gone: a success.
    fn delete_every_version(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        use rayon::prelude::*;
        // One listing a key, spread over the collector's threads (sized to the requests in flight).
        let listed: Vec<Result<Vec<String>, StorageError>> = keys
            .par_iter()
            .map(|k| self.runtime.block_on(self.versions_of(k)))
            .collect();
        let mut results: Vec<Result<(), StorageError>> = Vec::with_capacity(keys.len());
        let mut objects: Vec<(usize, &str, &str)> = Vec::new();
        for (i, (key, versions)) in keys.iter().zip(&listed).enumerate() {
            match versions {
                Ok(v) => {
                    results.push(Ok(()));
                    objects.extend(v.iter().map(|id| (i, key.as_str(), id.as_str())));
                }
                Err(e) => results.push(Err(other(key, e))),
            }
        }
        let outcomes = self.runtime.block_on(async {
            let mut out = Vec::with_capacity(objects.len());
            for chunk in objects.chunks(DELETE_OBJECTS_MAX) {
                let batch: Vec<(&str, Option<&str>)> =
                    chunk.iter().map(|(_, k, id)| (*k, Some(*id))).collect();
                out.extend(self.delete_objects(&batch).await);
            }
            out
        });
        let mut deleted = 0u64;
        for ((i, _, _), outcome) in objects.iter().zip(outcomes) {
            match outcome {
                Ok(()) => deleted += 1,
                Err(e) => {
                    if results[*i].is_ok() {
                        results[*i] = Err(e);
                    }
                }
            }
        }
        // Each key had one current version (or a marker); the rest were older.
        let current = results.iter().filter(|r| r.is_ok()).count() as u64;
        self.counters
            .older_versions
            .fetch_add(deleted.saturating_sub(current), Ordering::Relaxed);
        results
    }

    /// The bucket's versioning status (GetBucketVersioning), read once.
    async fn status(&self) -> Result<Option<String>, StorageError> {
        if let Some(s) = self.status.get() {
            return Ok(s.clone());
        }
        let _permit = self.admit().await;
        self.counters.bucket.fetch_add(1, Ordering::Relaxed);
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| other(&format!("s3://{}", self.bucket), describe(&e)))?;
        let status = out.status().map(|s| s.as_str().to_owned());
        Ok(self.status.get_or_init(|| status).clone())
    }
}

/// DeleteObjects must carry a checksum of its body. The SDK sends a CRC32 (`x-amz-checksum-crc32`);
/// S3 accepts it, but servers built before flexible checksums (older MinIO and Ceph RGW) answer 400
/// "Missing required header for this request: Content-MD5", and some reject the CRC32 headers. Every
/// S3 API server accepts `Content-MD5`, the checksum the operation was defined with: it replaces the
/// CRC32 here, before the request is signed.
fn content_md5_instead_of_crc32(request: &mut aws_sdk_s3::config::http::HttpRequest) {
    use md5::Digest as _;
    let Some(body) = request.body().bytes() else {
        return;
    };
    let md5 = base64(&md5::Md5::digest(body));
    let headers = request.headers_mut();
    let checksums: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| {
            name.starts_with("x-amz-checksum-") || name == "x-amz-sdk-checksum-algorithm"
        })
        .collect();
    for name in checksums {
        headers.remove(name);
    }
    headers.insert("Content-MD5", md5);
}

/// The largest object one `CopyObject` copies.
const COPY_OBJECT_MAX: u64 = 5 << 30;
/// The part a copy in parts copies at once, unless the object needs larger ones: S3 takes parts of
/// 5 MiB to 5 GiB, 10,000 at most, so 512 MiB parts reach 5,000 GiB and S3's largest object (5 TiB)
/// takes parts of 525 MiB.
const COPY_PART: u64 = 512 << 20;
const COPY_PART_MIN: u64 = 5 << 20;
const COPY_PARTS_MAX: u64 = 10_000;

/// The part size a copy in parts of `size` bytes uses, given the largest single copy `limit`.
fn copy_part(size: u64, limit: u64) -> u64 {
    COPY_PART
        .min(limit)
        .max(COPY_PART_MIN)
        .max(size.div_ceil(COPY_PARTS_MAX))
}

/// The size a HeadObject gives.
fn length(o: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> u64 {
    o.content_length().unwrap_or(0).max(0) as u64
}

/// A key as `x-amz-copy-source` takes it: percent-encoded but for `/` and the unreserved characters.
fn copy_source_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Storage for S3Storage {
    fn stop_listings_on(&self, flag: Arc<std::sync::atomic::AtomicUsize>) {
        let _ = self.stop.set(flag);
    }

    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.runtime
            .block_on(self.list_async(prefix, false, None, visit, &mut Vec::new()))
    }

    fn list_folders(
        &self,
        prefix: &str,
        folders: &[String],
        _lean: Lean,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (folders.first(), folders.last()) else {
            return Ok(());
        };
        // From just before the first folder's keys to just after the last's (`0` follows `/`).
        // Keys of other folders that sort in between (`a-b/` sorts before `a/`) are not visited.
        let after = self.full(&format!("{prefix}{first}"));
        let before = self.full(&format!("{prefix}{last}0"));
        let mut keep = super::only_folders(prefix, folders, visit);
        self.runtime.block_on(self.list_async(
            prefix,
            false,
            Some((&after, &before)),
            &mut keep,
            &mut Vec::new(),
        ))
    }

    fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut dirs = Vec::new();
        self.runtime
            .block_on(self.list_async(prefix, true, None, &mut |_| {}, &mut dirs))?;
        Ok(super::sorted_dirs(dirs))
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.runtime.block_on(async {
            let _permit = self.admit().await;
            let out = self.get_object(key).await?;
            if out.content_length().unwrap_or(0) as u64 > limit {
                return Err(StorageError::TooLarge {
                    key: key.to_owned(),
                    limit,
                });
            }
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| other(key, describe(&e)))?
                .into_bytes();
            if bytes.len() as u64 > limit {
                return Err(StorageError::TooLarge {
                    key: key.to_owned(),
                    limit,
                });
            }
            Ok(bytes.to_vec())
        })
    }

    /// HeadObject (a listing gives the same, so the walk never asks).
    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        self.runtime.block_on(async {
            let _permit = self.admit().await;
            self.counters.get.fetch_add(1, Ordering::Relaxed);
            let o = self.head_present(key).await?;
            let modified = o
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok());
            Ok(Some((length(&o), modified)))
        })
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        self.runtime.block_on(async {
            let _permit = self.admit().await;
            let mut out = self.get_object(key).await?;
            while let Some(bytes) = out
                .body
                .try_next()
                .await
                .map_err(|e| other(key, describe(&e)))?
            {
                chunk(&bytes);
            }
            Ok(())
        })
    }

    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        if self.delete_versions {
            // An unread or unreadable status counts as versioned: listing the versions of an
            // unversioned key finds its one (`null`) version, so that path is right either way.
            let versioned = self
                .runtime
                .block_on(self.status())
                .map_or(true, |s| s.is_some());
            if versioned {
                return self.delete_every_version(keys);
            }
        }
        // Callers hand out batches of `delete_batch()` keys from several threads at once; a longer
        // list is split here and sent batch after batch.
        self.runtime.block_on(async {
            let mut out = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(DELETE_OBJECTS_MAX) {
                out.extend(self.delete_keys(chunk).await);
            }
            out
        })
    }

    fn delete_batch(&self) -> usize {
        DELETE_OBJECTS_MAX
    }

    /// HEAD of both keys, `CopyObject` (over 5 GiB, a multipart upload of `UploadPartCopy` parts),
    /// a HEAD of the copy (its size, and its ETag where the source's is a single-part MD5), then
    /// the source's delete: a crash before the delete leaves the object in both places, never in
    /// none.
    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        self.runtime.block_on(async {
            let _permit = self.admit().await;
            let (size, etag) = self
                .head(from)
                .await?
                .ok_or_else(|| StorageError::NotFound {
                    key: from.to_owned(),
                })?;
            if self.head(to).await?.is_some() {
                return Err(StorageError::Exists { key: to.to_owned() });
            }
            let source = format!("{}/{}", self.bucket, copy_source_key(&self.full(from)));
            let in_parts = size > self.copy_object_max;
            if in_parts {
                self.copy_in_parts(&source, to, size, etag.as_deref())
                    .await?;
            } else {
                self.counters.trash.fetch_add(1, Ordering::Relaxed);
                self.client
                    .copy_object()
                    .bucket(&self.bucket)
                    .key(self.full(to))
                    .copy_source(source)
                    .send()
                    .await
                    .map_err(|e| other(to, describe(&e)))?;
            }
            let copied = self.head(to).await?;
            // A copy in parts has a multipart ETag; its parts were copied only while the source's
            // ETag was the one read (x-amz-copy-source-if-match).
            let single_part = |e: &Option<String>| e.as_deref().is_some_and(|e| !e.contains('-'));
            let verified = match &copied {
                Some((n, e)) => *n == size && (in_parts || !single_part(&etag) || *e == etag),
                None => false,
            };
            if !verified {
                return Err(other(
                    to,
                    format!(
                        "the copy of {from} does not match it (size {size}, ETag {etag:?}; copy \
                         {copied:?}); the original stays"
                    ),
                ));
            }
            self.delete_keys(&[from.to_owned()])
                .await
                .pop()
                .unwrap_or(Ok(()))
                .map(|()| size)
        })
    }

    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.runtime.block_on(async {
            let _permit = self.admit().await;
            self.counters.trash.fetch_add(1, Ordering::Relaxed);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.full(key))
                .body(bytes.to_vec().into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| other(key, describe(&e)))
        })
    }

    /// On a bucket whose versioning is `Enabled`, a HEAD: the current version's id, size and ETag.
    /// A suspended bucket's deletes overwrite the `null` version, so it keeps nothing.
    fn kept_version(&self, key: &str) -> Result<Option<ObjectVersion>, StorageError> {
        self.runtime.block_on(async {
            if self.status().await?.as_deref() != Some("Enabled") {
                return Ok(None);
            }
            let _permit = self.admit().await;
            self.counters.trash.fetch_add(1, Ordering::Relaxed);
            let o = self.head_present(key).await?;
            Ok(o.version_id()
                .filter(|v| *v != "null")
                .map(|v| ObjectVersion {
                    version_id: v.to_owned(),
                    size: length(&o),
                    etag: o.e_tag().map(str::to_owned),
                }))
        })
    }

    /// A DeleteObject without a version: the bucket puts a delete marker over `version`, which
    /// stays (with `--delete-versions` too: this is the trash's move, not a delete).
    fn hide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        let _ = version;
        self.runtime.block_on(async {
            let _permit = self.admit().await;
            self.delete_keys(&[key.to_owned()])
                .await
                .pop()
                .unwrap_or(Ok(()))
        })
    }

    /// Lists the key's versions: `version` current already is a success; a version written after
    /// it is [`StorageError::Exists`] (never hidden); otherwise the key's delete markers are
    /// deleted, which makes it, the newest version, current again.
    fn unhide_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        self.runtime.block_on(async {
            let entries = self.version_entries(key).await?;
            // ListObjectVersions gives a key's versions newest first: those before ours were
            // written after it.
            let versions: Vec<&VersionEntry> = entries.iter().filter(|e| !e.marker).collect();
            let ours = versions
                .iter()
                .position(|e| e.id == version.version_id)
                .ok_or_else(|| {
                    other(
                        key,
                        format!(
                            "its version {} is gone (a lifecycle rule on noncurrent versions, or \
                             a delete by version); nothing to put back",
                            version.version_id
                        ),
                    )
                })?;
            if versions[ours].latest {
                return Ok(());
            }
            if ours > 0 {
                return Err(StorageError::Exists {
                    key: key.to_owned(),
                });
            }
            // Ours is the newest version: without the delete markers, it is current.
            let markers: Vec<(&str, Option<&str>)> = entries
                .iter()
                .filter(|e| e.marker)
                .map(|e| (key, Some(e.id.as_str())))
                .collect();
            let _permit = self.admit().await;
            self.counters.trash.fetch_add(1, Ordering::Relaxed);
            self.delete_objects(&markers)
                .await
                .into_iter()
                .find(Result::is_err)
                .unwrap_or(Ok(()))
        })
    }

    /// Deletes `version` of the key for good, then the delete markers left when no version is.
    fn delete_version(&self, key: &str, version: &ObjectVersion) -> Result<(), StorageError> {
        self.runtime.block_on(async {
            {
                let _permit = self.admit().await;
                let gone = self
                    .delete_objects(&[(key, Some(version.version_id.as_str()))])
                    .await;
                if let Some(Err(e)) = gone.into_iter().next() {
                    return Err(e);
                }
            }
            let entries = self.version_entries(key).await?;
            if entries.iter().all(|e| e.marker) && !entries.is_empty() {
                let markers: Vec<(&str, Option<&str>)> =
                    entries.iter().map(|e| (key, Some(e.id.as_str()))).collect();
                let _permit = self.admit().await;
                if let Some(Err(e)) = self.delete_objects(&markers).await.into_iter().next() {
                    return Err(e);
                }
            }
            Ok(())
        })
    }

    /// The ETag of an object put in one part without SSE-KMS or SSE-C is the MD5 of its content, so
    /// a link whose ETag is the MD5 of `sha256:<hex>` holds exactly that. Any other ETag (a multipart
    /// upload's `…-N`, an encrypted object's) proves nothing, and the link is read.
    fn link_proven(&self, etag: &str, digest: &Digest) -> bool {
        use md5::Digest as _;
        let sum = md5::Md5::digest(digest.to_string().as_bytes());
        let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
        etag.trim_matches('"') == hex
    }

    fn versioning(&self) -> Result<Option<Versioning>, StorageError> {
        let status = self.runtime.block_on(self.status())?;
        Ok(status.map(|status| Versioning {
            status,
            deletes_every_version: self.delete_versions,
            advice: None,
        }))
    }

    fn multipart_uploads(&self) -> Result<Vec<MultipartUpload>, StorageError> {
        self.runtime.block_on(async {
            let mut out = Vec::new();
            let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
            loop {
                let page = {
                    let _permit = self.admit().await;
                    self.counters.list.fetch_add(1, Ordering::Relaxed);
                    self.client
                        .list_multipart_uploads()
                        .bucket(&self.bucket)
                        .prefix(&self.prefix)
                        .set_key_marker(key_marker.take())
                        .set_upload_id_marker(id_marker.take())
                        .send()
                        .await
                        .map_err(|e| other("(multipart uploads)", describe(&e)))?
                };
                for u in page.uploads() {
                    let (Some(key), Some(id)) = (
                        u.key().and_then(|k| k.strip_prefix(&self.prefix)),
                        u.upload_id(),
                    ) else {
                        continue;
                    };
                    out.push(MultipartUpload {
                        key: key.to_owned(),
                        upload_id: id.to_owned(),
                        initiated: u.initiated().and_then(|t| SystemTime::try_from(*t).ok()),
                        size: 0,
                    });
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                key_marker = page.next_key_marker().map(str::to_owned);
                id_marker = page.next_upload_id_marker().map(str::to_owned);
                if key_marker.is_none() {
                    break;
                }
            }
            for u in &mut out {
                u.size = self.parts_size(u).await?;
            }
            Ok(out)
        })
    }

    fn abort_multipart(&self, upload: &MultipartUpload) -> Result<(), StorageError> {
        self.runtime.block_on(async {
            let _permit = self.admit().await;
            self.counters.delete.fetch_add(1, Ordering::Relaxed);
            match self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(self.full(&upload.key))
                .upload_id(&upload.upload_id)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => Ok(()),
                Err(e) => Err(other(&upload.key, describe(&e))),
            }
        })
    }

    /// Creates the lock object beside `docker/` with `If-None-Match: *`, so that of two runs only
    /// one creates it, then reads it back (a server that ignores the condition lets a second writer
    /// replace it: the read shows whose it is). While held, a task writes it again every
    /// [`super::holder::RENEW_EVERY`] (`If-Match` its ETag), so that its age shows the run is alive.
    fn try_lock(&self, record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        self.runtime.block_on(async {
            // A lock released between our write and our read is tried again, a few times.
            for _ in 0..5 {
                self.counters.lock.fetch_add(1, Ordering::Relaxed);
                let put = self
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(self.full(LOCK_KEY))
                    .if_none_match("*")
                    .content_type("application/json")
                    .body(record.to_vec().into())
                    .send()
                    .await;
                let created = match put {
                    Ok(out) => out.e_tag().map(str::to_owned),
                    // 412 Precondition Failed: it exists; 409: a concurrent conditional write won.
                    Err(e) if matches!(http_status(&e), Some(412 | 409)) => None,
                    Err(e) => return Err(other(LOCK_KEY, describe(&e))),
                };
                let found = self.read_lock().await?;
                match found {
                    Some((bytes, etag, _)) if created.is_some() && bytes == record => {
                        let etag = etag.or(created);
                        let renew = self.runtime.spawn(renew_lock(
                            self.client.clone(),
                            self.bucket.clone(),
                            self.full(LOCK_KEY),
                            record.to_vec(),
                            etag.clone(),
                            self.counters.clone(),
                        ));
                        return Ok(Ok(LockToken(Box::new(S3Lock { renew, etag }))));
                    }
                    Some((bytes, etag, modified)) => {
                        return Ok(Err(HeldLock {
                            location: self.lock_location(),
                            record: Some(bytes),
                            renewed: modified,
                            expires: true,
                            etag,
                        }));
                    }
                    None => continue,
                }
            }
            Err(other(
                LOCK_KEY,
                "the lock object kept vanishing between writing and reading it; another client is deleting it",
            ))
        })
    }

    fn break_lock(&self, held: &HeldLock) -> Result<(), StorageError> {
        self.runtime
            .block_on(self.delete_lock_if(held.etag.as_deref()))
    }

    fn unlock(&self, token: LockToken) -> Result<(), StorageError> {
        let lock = token
            .0
            .downcast::<S3Lock>()
            .map_err(|_| other(LOCK_KEY, "not a lock of this store"))?;
        lock.renew.abort();
        self.runtime
            .block_on(self.delete_lock_if(lock.etag.as_deref()))
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }

    fn parallelism(&self) -> usize {
        self.max_in_flight
    }

    fn request_counts(&self) -> Option<RequestCounts> {
        let c = &self.counters;
        let (list, get, delete) = (
            c.list.load(Ordering::Relaxed),
            c.get.load(Ordering::Relaxed),
            c.delete.load(Ordering::Relaxed),
        );
        let attempts = c.attempts.load(Ordering::Relaxed);
        Some(RequestCounts {
            service: "s3",
            list_requests: list,
            get_requests: get,
            delete_requests: delete,
            retries: attempts.saturating_sub(
                list + get
                    + delete
                    + c.lock.load(Ordering::Relaxed)
                    + c.bucket.load(Ordering::Relaxed)
                    + c.trash.load(Ordering::Relaxed),
            ),
            trash_requests: c.trash.load(Ordering::Relaxed),
            older_versions_deleted: c.older_versions.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{COPY_OBJECT_MAX, COPY_PART, COPY_PART_MIN, COPY_PARTS_MAX, base64, copy_part};

    #[test]
    fn a_copy_in_parts_stays_within_s3s_part_limits() {
        let limit = COPY_OBJECT_MAX;
        assert_eq!(copy_part(6 << 30, limit), COPY_PART);
        // S3's largest object: 10,000 parts of 512 MiB fall short, so the parts grow.
        let largest = 5u64 << 40;
        let part = copy_part(largest, limit);
        assert!(largest.div_ceil(part) <= COPY_PARTS_MAX && part <= 5 << 30);
        // A lowered limit is the part, never below S3's 5 MiB.
        assert_eq!(copy_part(12 << 20, 6 << 20), 6 << 20);
        assert_eq!(copy_part(12 << 20, 1 << 20), COPY_PART_MIN);
    }

    #[test]
    fn base64_pads_as_content_md5_needs() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // The MD5 of nothing, as S3 documents Content-MD5.
        use md5::Digest as _;
        assert_eq!(base64(&md5::Md5::digest(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
