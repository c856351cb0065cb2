//! Server-side copies, in parts for objects over 5 GiB.

use super::*;

/// The largest object one `CopyObject` copies.
pub(super) const COPY_OBJECT_MAX: u64 = 5 << 30;
/// The part a copy in parts copies at once, unless the object needs larger ones: S3 takes parts of
/// 5 MiB to 5 GiB, 10,000 at most, so 512 MiB parts reach 5,000 GiB and S3's largest object (5 TiB)
/// takes parts of 525 MiB.
pub(super) const COPY_PART: u64 = 512 << 20;
pub(super) const COPY_PART_MIN: u64 = 5 << 20;
pub(super) const COPY_PARTS_MAX: u64 = 10_000;

/// The part size a copy in parts of `size` bytes uses, given the largest single copy `limit`.
pub(super) fn copy_part(size: u64, limit: u64) -> u64 {
    COPY_PART
        .min(limit)
        .max(COPY_PART_MIN)
        .max(size.div_ceil(COPY_PARTS_MAX))
}

/// The size a HeadObject gives.
pub(super) fn length(o: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> u64 {
    o.content_length().unwrap_or(0).max(0) as u64
}

/// A key as `x-amz-copy-source` takes it: percent-encoded but for `/` and the unreserved characters.
pub(super) fn copy_source_key(key: &str) -> String {
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

impl S3Storage {
    /// Copies `source` (`bucket/key`, as CopyObject takes it) of `size` bytes to `to` in parts of
    /// [`COPY_PART`] (UploadPartCopy, each only while the source's ETag is `etag`), then completes
    /// the upload; an upload that fails is aborted, so that no parts are left to bill.
    pub(super) async fn copy_in_parts(
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
            .map_err(|e| sdk_error(to, &e))?;
        let id = upload
            .upload_id()
            .ok_or_else(|| StorageError::other(to, "CreateMultipartUpload gave no upload id"))?
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
                    copied = Err(sdk_error(to, &e));
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
                .map_err(|e| sdk_error(to, &e));
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
}
