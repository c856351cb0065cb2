//! DeleteObjects: up to 1,000 keys a request, with Content-MD5 where the server wants it.

use super::*;

/// Keys one DeleteObjects request takes at most.
pub(super) const DELETE_OBJECTS_MAX: usize = 1000;

/// DeleteObjects must carry a checksum of its body. The SDK sends a CRC32 (`x-amz-checksum-crc32`);
/// S3 accepts it, but servers built before flexible checksums (older MinIO and Ceph RGW) answer 400
/// "Missing required header for this request: Content-MD5", and some reject the CRC32 headers. Every
/// S3 API server accepts `Content-MD5`, the checksum the operation was defined with: it replaces the
/// CRC32 here, before the request is signed.
pub(super) fn content_md5_instead_of_crc32(request: &mut aws_sdk_s3::config::http::HttpRequest) {
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

impl S3Storage {
    pub(super) async fn delete_keys(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let objects = keys.iter().map(|k| (k.as_str(), None)).collect::<Vec<_>>();
        self.delete_objects(&objects).await
    }

    /// One DeleteObjects request for up to 1000 objects (a key relative to the store, and a version
    /// or the current one), with a result for each.
    pub(super) async fn delete_objects(
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
            Err(e) => {
                return objects
                    .iter()
                    .map(|(k, _)| Err(StorageError::other(k, &e)))
                    .collect();
            }
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
                            Some(msg) => Err(StorageError::other(k, msg.trim())),
                            None => Ok(()),
                        },
                    )
                    .collect()
            }
            Err(e) => {
                let msg = describe(&e);
                objects
                    .iter()
                    .map(|(k, _)| Err(StorageError::other(k, &msg)))
                    .collect()
            }
        }
    }
}
