//! The S3 backend: a store is a bucket and a prefix (the registry's `rootdirectory`).
//!
//! It reads the layout as keys: flat listings (no delimiter, 1000 keys a page) carry size,
//! last-modified and ETag, so no blob is ever HEADed; only links and manifests are read. Deletes use
//! DeleteObjects, 1000 keys a request, with a result per key.
//!
//! The backend owns a tokio runtime; the collector calls it from rayon threads, each call blocking on
//! its own request(s), except a batch of manifest reads ([`Storage::read_each`]), whose requests all
//! wait in the runtime, driven from one thread. Requests in flight are bounded by a semaphore, and
//! an optional pacer spaces request starts to a requests-per-second cap, so a run cannot flood a
//! bucket the registry shares.
//! Throttling (503 SlowDown), 5xx and dropped connections are retried by the SDK's standard retry
//! strategy with exponential backoff; an interceptor counts attempts so retries show in the report.
//!
//! One file per group of operations, each adding its methods to [`S3Storage`]: `list` (the paged
//! listing, and the repositories' in parts side by side), `object` (GET and HEAD), `delete`
//! (DeleteObjects), `copy` (server-side copies, in parts past 5 GiB), `versions` (a versioned
//! bucket), `multipart` (incomplete uploads) and `lock` (the store's lock object); this file holds
//! the client, its counters and the [`Storage`] implementation that calls them.

use crate::model::digest::Digest;

mod copy;
mod delete;
mod list;
mod lock;
mod multipart;
mod object;
mod versions;

use copy::{COPY_OBJECT_MAX, copy_source_key, length};
use delete::DELETE_OBJECTS_MAX;
use lock::{S3Lock, renew_lock};
use versions::VersionEntry;

use super::pace::Pacer;
use super::remote::Counters;
use super::{
    Entry, HeldLock, Lean, ListedVersion, ListingNote, Lock, LockToken, Moves, Multipart,
    MultipartUpload, ObjectVersion, ReadResult, RequestCounts, Storage, StorageError, Versioning,
    VersioningState, Versions,
};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use std::sync::Arc;
use std::sync::atomic::Ordering;
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

pub use crate::storage::lock_record::LOCK_KEY;

/// List pages in flight at once, at most (within `--max-in-flight`). A page of 1,000 keys is about
/// half a megabyte while it is read and parsed, against well under a kilobyte for a link or a
/// manifest; listings are about 1% of a walk's requests (2,648 of 254,648 at 1M blobs), so more of
/// them at once would buy seconds and cost a page of memory each.
const LISTS_IN_FLIGHT: usize = 16;

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
    stop: crate::storage::remote::Stop,
    delete_versions: bool,
    copy_object_max: u64,
    /// The bucket's versioning status once read: `Some(None)` when it was never turned on.
    status: std::sync::OnceLock<Option<String>>,
}

/// The HTTP status an SDK error came back with, if it got that far.
fn http_status<E>(e: &aws_sdk_s3::error::SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// An SDK error as the seam's error, by kind: no answer (transport), denied, throttled, or another;
/// its message is [`describe`]'s.
fn sdk_error<E>(key: &str, e: &aws_sdk_s3::error::SdkError<E>) -> StorageError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
    let message = describe(e);
    if matches!(
        e,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
    ) {
        return StorageError::Transport {
            key: key.to_owned(),
            message,
        };
    }
    match e.code() {
        Some(
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AllAccessDisabled"
            | "ExpiredToken",
        ) => StorageError::Denied {
            key: key.to_owned(),
            message,
        },
        Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded") => {
            StorageError::Throttled {
                key: key.to_owned(),
                message,
            }
        }
        _ => StorageError::of_status(key, http_status(e).unwrap_or(0), message),
    }
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

/// An object's body that broke off while it was read (GET, the lock's read, a streamed read).
fn body_broke(key: &str, e: &aws_sdk_s3::primitives::ByteStreamError) -> StorageError {
    StorageError::Transport {
        key: key.to_owned(),
        message: describe(e),
    }
}

impl S3Storage {
    /// Builds the client. Fails only when the options cannot make one (no network access happens).
    pub fn open(opts: S3Options) -> Result<S3Storage, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| StorageError::other(&opts.bucket, e))?;
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
                        .with_max_attempts(crate::storage::remote::MAX_ATTEMPTS)
                        .with_initial_backoff(crate::storage::remote::FIRST_BACKOFF)
                        .with_max_backoff(crate::storage::remote::MAX_BACKOFF),
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

    /// The key range that holds the neighbouring `folders` of `prefix` (full keys, both ends
    /// excluded): from just before the first folder's keys to just after the last's (`0` follows
    /// `/`). Keys of other folders that sort in between (`a-b/` sorts before `a/`) are in it too,
    /// for the caller to leave out. `None` for no folders.
    fn range_of(&self, prefix: &str, folders: &[String]) -> Option<(String, String)> {
        let (first, last) = (folders.first()?, folders.last()?);
        Some((
            self.full(&format!("{prefix}{first}")),
            self.full(&format!("{prefix}{last}0")),
        ))
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
        self.stop.set(flag);
    }

    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.runtime.block_on(self.list_flat(prefix, None, visit))
    }

    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        _lean: Lean,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let Some((after, before)) = self.range_of(prefix, folders) else {
            return Ok(());
        };
        let mut keep = super::only_folders(prefix, folders, visit);
        self.runtime
            .block_on(self.list_flat(prefix, Some((&after, &before)), &mut keep))
    }

    /// Long ranges split at folder boundaries and listed side by side (`list.rs`).
    fn list_below_in_parts(
        &self,
        prefix: &str,
        folders: &[String],
        _lean: Lean,
        split_at: &dyn Fn(&str) -> bool,
        visit: &mut dyn FnMut(usize, Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let Some((after, before)) = self.range_of(prefix, folders) else {
            return Ok(());
        };
        let wanted = super::in_folders(prefix, folders);
        self.runtime.block_on(self.list_parts(
            prefix,
            (&after, &before),
            split_at,
            &mut |part, e| {
                if wanted(&e.key) {
                    visit(part, e)
                }
            },
        ))
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut dirs = Vec::new();
        self.runtime
            .block_on(self.list_folders_async(prefix, &mut dirs))?;
        Ok(super::sorted_dirs(dirs))
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.runtime.block_on(self.read_async(key, limit))
    }

    /// All of them from one thread, the requests in flight waiting in the runtime rather than each
    /// in a thread of its own (v1m at 128 in flight: 4,000 -> 4,830 manifests a second, 77 -> 58
    /// CPU-seconds; one such thread a core was slower, 4,170 a second, on 2 cores shared with the
    /// server).
    fn read_each(&self, keys: &[String], limit: u64, done: &(dyn Fn(usize, ReadResult) + Sync)) {
        use futures_util::stream::{self, StreamExt};
        let reads = stream::iter(keys.iter().enumerate())
            .map(|(i, k)| async move { (i, self.read_async(k, limit).await) })
            .buffer_unordered(self.max_in_flight.max(1));
        self.runtime.block_on(reads.for_each(|(i, r)| {
            done(i, r);
            std::future::ready(())
        }));
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
            while let Some(bytes) = out.body.try_next().await.map_err(|e| body_broke(key, &e))? {
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

    fn max_delete_keys(&self) -> usize {
        DELETE_OBJECTS_MAX
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

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }

    fn parallelism(&self) -> usize {
        self.max_in_flight
    }

    fn times_to_the_second(&self) -> bool {
        true
    }

    fn request_counts(&self) -> Option<RequestCounts> {
        let attempts = self.counters.attempts.load(Ordering::Relaxed);
        Some(self.counters.counts("s3", attempts))
    }

    fn moves(&self) -> Option<&dyn Moves> {
        Some(self)
    }

    fn versions(&self) -> Option<&dyn Versions> {
        Some(self)
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        Some(self)
    }

    fn lock(&self) -> &dyn Lock {
        self
    }
}

impl Moves for S3Storage {
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
                    .map_err(|e| sdk_error(to, &e))?;
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
                return Err(StorageError::other(
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
                .map_err(|e| sdk_error(key, &e))
        })
    }

    fn move_cost(&self) -> &'static str {
        // The status was read by the run's analysis; unknown (not read, or a failed read) is taken
        // as a bucket whose deletes keep nothing, as the trash's own move takes it.
        if matches!(self.status.get(), Some(Some(s)) if s == "Enabled") {
            "per key a HEAD, a small version record and a delete (its marker hides the version; no \
             data copied); the bytes are billed as noncurrent versions until the run is purged"
        } else {
            "per key two HEADs, a CopyObject, a HEAD of the copy and the delete (about four \
             requests more than a delete); the copies are billed until the run is purged"
        }
    }
}

impl Versions for S3Storage {
    fn list_every_version(&self, visit: &mut dyn FnMut(ListedVersion)) -> Result<(), StorageError> {
        self.runtime.block_on(self.every_version(visit))
    }

    fn lists_every_version(&self) -> bool {
        true
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
                    StorageError::other(
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

    fn versioning(&self) -> Result<Option<Versioning>, StorageError> {
        let status = self.runtime.block_on(self.status())?;
        Ok(status.map(|status| Versioning {
            state: VersioningState::of_s3(&status),
            deletes_every_version: self.delete_versions,
            advice: None,
        }))
    }
}

impl Multipart for S3Storage {
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
                        .map_err(|e| sdk_error("(multipart uploads)", &e))?
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
                Err(e) => Err(sdk_error(&upload.key, &e)),
            }
        })
    }
}

impl Lock for S3Storage {
    /// Creates the lock object beside `docker/` with `If-None-Match: *`, so that of two runs only
    /// one creates it, then reads it back (a server that ignores the condition lets a second writer
    /// replace it: the read shows whose it is). While held, a task writes it again every
    /// [`crate::storage::lock_record::RENEW_EVERY`] (`If-Match` its ETag), so that its age shows the run is alive.
    fn try_lock(&self, record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        self.runtime.block_on(async {
            // A lock released between our write and our read is tried again, a few times.
            for _ in 0..5 {
                self.counters.other.fetch_add(1, Ordering::Relaxed);
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
                    Err(e) => return Err(sdk_error(LOCK_KEY, &e)),
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
            Err(StorageError::other(
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
            .map_err(|_| StorageError::other(LOCK_KEY, "not a lock of this store"))?;
        lock.renew.abort();
        self.runtime
            .block_on(self.delete_lock_if(lock.etag.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::base64;
    use super::copy::{COPY_OBJECT_MAX, COPY_PART, COPY_PART_MIN, COPY_PARTS_MAX, copy_part};

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
