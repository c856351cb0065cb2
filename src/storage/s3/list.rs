//! The paged listing: ListObjectsV2 by prefix or key range, each page read here and walked by the
//! remote layer's driver ([`crate::storage::remote::list_pages`]: order, stop, count).

use super::*;
use crate::storage::remote::{Page, list_pages};

impl S3Storage {
    /// Lists `prefix`: every key (or with `delimiter`, the keys and folders of one level), or with
    /// `range`, only the keys after `range.0` and before `range.1` (full keys).
    pub(super) async fn list_async(
        &self,
        prefix: &str,
        delimiter: bool,
        range: Option<(&str, &str)>,
        visit: &mut dyn FnMut(Entry),
        dirs: &mut Vec<String>,
    ) -> Result<(), StorageError> {
        let full_prefix = self.full(prefix);
        let fetch = |token: Option<String>| {
            let full_prefix = &full_prefix;
            async move {
                let mut req = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(full_prefix)
                    .max_keys(1000)
                    .set_continuation_token(token);
                if delimiter {
                    req = req.delimiter("/");
                }
                if let Some((after, _)) = range {
                    req = req.start_after(after);
                }
                // Held until the page is visited: its memory is what the bound is for.
                let held = (self.listing.acquire().await).expect("semaphore is never closed");
                let page = {
                    let _permit = self.admit().await;
                    req.send().await.map_err(|e| sdk_error(prefix, &e))?
                };
                Ok(self.page_of(page, full_prefix, range, held))
            }
        };
        list_pages(prefix, &self.stop, &self.counters.list, fetch, visit, dirs).await
    }

    /// A ListObjectsV2 page as the store's entries and folders; a key at or past the range's end
    /// ends the listing there.
    fn page_of<'a>(
        &self,
        page: aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
        full_prefix: &str,
        range: Option<(&str, &str)>,
        held: tokio::sync::SemaphorePermit<'a>,
    ) -> Page<'a> {
        let mut entries = Vec::with_capacity(page.contents().len());
        let mut ended = false;
        for obj in page.contents() {
            if let (Some((_, before)), Some(key)) = (range, obj.key())
                && key >= before
            {
                ended = true;
                break;
            }
            let Some(key) = obj.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                continue;
            };
            entries.push(Entry {
                key: key.to_owned(),
                size: obj.size().unwrap_or(0).max(0) as u64,
                modified: obj
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok()),
                etag: obj.e_tag().map(str::to_owned),
                content: None,
            });
        }
        let folders = page
            .common_prefixes()
            .iter()
            .filter_map(|cp| cp.prefix().and_then(|p| p.strip_prefix(full_prefix)))
            .map(|name| name.trim_end_matches('/').to_owned())
            .collect();
        let next = match page.next_continuation_token() {
            Some(t) if !ended && page.is_truncated() == Some(true) => Some(t.to_owned()),
            _ => None,
        };
        Page {
            entries,
            folders,
            next,
            held: Some(held),
        }
    }
}
