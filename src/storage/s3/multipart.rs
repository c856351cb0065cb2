//! Incomplete multipart uploads: their parts' sizes.

use super::*;

impl S3Storage {
    /// Bytes in the parts of a multipart upload (ListParts, 1000 parts a page).
    pub(super) async fn parts_size(&self, u: &MultipartUpload) -> Result<u64, StorageError> {
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
                    Err(e) => return Err(sdk_error(&u.key, &e)),
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
}
