//! The paged listing: ListObjectsV2 by prefix or key range, in order, stopping when asked.

use super::*;

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
                    .map_err(|e| sdk_error(prefix, &e))?
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
                crate::storage::in_order(prefix, key, previous)?;
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
}
