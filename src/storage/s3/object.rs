//! GET and HEAD: an object's bytes (ranged), its size and ETag.

use super::*;

impl S3Storage {
    /// Starts a GET of a store object (the caller holds its place among the requests in flight while
    /// it reads the body); counted as a get.
    pub(super) async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StorageError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        self.send_get(key).await
    }

    /// A whole object of at most `limit` bytes, holding a place among the requests in flight.
    pub(super) async fn read_async(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
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
            .map_err(|e| body_broke(key, &e))?
            .into_bytes();
        if bytes.len() as u64 > limit {
            return Err(StorageError::TooLarge {
                key: key.to_owned(),
                limit,
            });
        }
        Ok(bytes.to_vec())
    }

    /// Sends a GET of `key`; a missing key is [`StorageError::NotFound`]. Counting is the caller's.
    pub(super) async fn send_get(
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
            Err(e) => Err(sdk_error(key, &e)),
        }
    }

    /// An object's size and ETag (HEAD); `None` when it is not there. Counted as the trash's.
    pub(super) async fn head(
        &self,
        key: &str,
    ) -> Result<Option<(u64, Option<String>)>, StorageError> {
        self.counters.trash.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .head_object(key)
            .await?
            .map(|o| (length(&o), o.e_tag().map(str::to_owned))))
    }

    /// HeadObject; [`StorageError::NotFound`] when the key is not there.
    pub(super) async fn head_present(
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
    pub(super) async fn head_object(
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
            Err(e) => Err(sdk_error(key, &e)),
        }
    }
}
