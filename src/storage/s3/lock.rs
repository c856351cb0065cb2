//! The store's lock: an object written only if absent, renewed while held, deleted if still ours.

use super::*;
use crate::storage::remote::Renewed;

/// A lock this backend holds: the task that renews it, and the ETag it was written with.
pub(super) struct S3Lock {
    pub(super) renew: tokio::task::JoinHandle<()>,
    pub(super) etag: Option<String>,
}

/// Writes the lock object again every [`crate::storage::lock_record::RENEW_EVERY`], as long as it is
/// still ours (`If-Match` its ETag; same bytes, same ETag); the remote layer's loop
/// ([`crate::storage::remote::renew_lock`]) stops when it was broken or taken over.
pub(super) async fn renew_lock(
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    record: Vec<u8>,
    etag: Option<String>,
    counters: Arc<Counters>,
) {
    let Some(etag) = etag else { return };
    let location = format!("s3://{bucket}/{key}");
    let etag = Arc::new(std::sync::Mutex::new(etag));
    crate::storage::remote::renew_lock(location, etag, |etag| {
        counters.other.fetch_add(1, Ordering::Relaxed);
        let put = client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .if_match(&etag)
            .content_type("application/json")
            .body(record.clone().into())
            .send();
        async move {
            match put.await {
                Ok(_) => Renewed::Written(etag),
                Err(e) if matches!(http_status(&e), Some(412 | 404)) => Renewed::Lost,
                Err(_) => Renewed::Failed,
            }
        }
    })
    .await
}

impl S3Storage {
    /// The lock object as it is now: its bytes, ETag and last write, or `None` when there is none.
    pub(super) async fn read_lock(
        &self,
    ) -> Result<Option<(Vec<u8>, Option<String>, Option<SystemTime>)>, StorageError> {
        self.counters.other.fetch_add(1, Ordering::Relaxed);
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
            .map_err(|e| body_broke(LOCK_KEY, &e))?
            .into_bytes();
        Ok(Some((bytes.to_vec(), etag, modified)))
    }

    /// Deletes the lock object if it is still the one with `etag` (read, compare, delete: a lock
    /// taken again in between by another run stays).
    pub(super) async fn delete_lock_if(&self, etag: Option<&str>) -> Result<(), StorageError> {
        match self.read_lock().await? {
            Some((_, now, _)) if now.as_deref() == etag => {
                self.counters.other.fetch_add(1, Ordering::Relaxed);
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(self.full(LOCK_KEY))
                    .send()
                    .await
                    .map_err(|e| sdk_error(LOCK_KEY, &e))?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(super) fn lock_location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.full(LOCK_KEY))
    }
}
