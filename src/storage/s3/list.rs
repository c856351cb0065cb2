//! The paged listing: ListObjectsV2 by prefix or key range.
//!
//! A delimited listing (one level's folders) is walked by the remote layer's driver
//! ([`crate::storage::remote::list_pages`]); a flat one is read here, page after page, in key
//! order. A listing in parts ([`Storage::list_below_in_parts`]: the walk of the repositories) goes
//! the same way until it has shown it is long ([`SPLIT_AFTER_PAGES`]) while list requests are free
//! to take more: then the rest of its range is split at folders that delimited listings name and
//! the caller accepts ([`S3Storage::split_places`]), and the parts are listed side by side, each
//! key handed on with its part's number; a part that runs long splits in turn. Each part's keys
//! are checked to sort after the one before. Without it, a namespace holding a third of a store's
//! repositories is listed one page after another long after the rest of the walk is done (v1m:
//! the listing took 45 s, in parts 12 s).

use super::*;
use crate::storage::remote::{Page, list_pages};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use futures_util::future::{join, join_all};
use tokio::sync::mpsc;

/// Pages a flat listing reads one after another before it looks for places to split the rest.
const SPLIT_AFTER_PAGES: u32 = 4;
/// Parts the rest of a long listing is split into, the first of them the listing going on.
const SPLIT_INTO: usize = 8;
/// Times a part may split again (each time after twice as many pages).
const SPLIT_DEPTH: u32 = 3;
/// Folder levels looked through for places to split (a repository under `mirror/library/` is
/// three levels below the folder of the range).
const PLACE_LEVELS: usize = 4;
/// Pages of one folder's child folders read to find places, at most.
const SPLIT_PAGES: u32 = 64;
/// Parts of one listing, at most.
const MAX_PARTS: usize = 64;
/// Pages read and not yet visited, of all parts of a listing together (each part holds one more
/// while it waits to hand it on).
const PAGES_WAITING: usize = 16;

/// Which keys a flat listing visits: those after `after` (the request's start-after), not before
/// `from`, and before `end`; all full keys.
#[derive(Clone, Default)]
struct Bounds {
    after: Option<String>,
    from: Option<String>,
    end: Option<String>,
}

/// A part of a split listing: its keys, and where it goes on (the first part, already begun).
struct Part {
    bounds: Bounds,
    token: Option<String>,
}

/// Where the parts send their pages as they are read, each with its part's number.
type Pages = mpsc::Sender<(usize, Result<Vec<Entry>, StorageError>)>;

/// What the parts of one listing share.
struct Lister<'a> {
    storage: &'a S3Storage,
    prefix: &'a str,
    full_prefix: &'a str,
    split_at: &'a dyn Fn(&str) -> bool,
    /// Parts numbered so far.
    parts: std::cell::Cell<usize>,
}

impl Lister<'_> {
    /// Lists one part (numbered `id`), page by page into `pages`; an error is sent as the part's
    /// last page. A part that has run long (twice as many pages a level deeper, up to
    /// [`SPLIT_DEPTH`] levels and [`MAX_PARTS`] parts) may split in turn: its first part goes on
    /// as `id`, the others are numbered anew.
    fn list_part(
        &self,
        part: Part,
        id: usize,
        pages: Pages,
        depth: u32,
    ) -> futures_util::future::LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            let s = self.storage;
            let Part { bounds, mut token } = part;
            let mut read = 0;
            let mut tried = false;
            loop {
                let page = s
                    .read_page(self.prefix, self.full_prefix, &bounds, token.take())
                    .await;
                let (entries, next) = match page {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = pages.send((id, Err(e))).await;
                        return;
                    }
                };
                read += 1;
                let last = entries.last().map(|e| s.full(&e.key));
                if pages.send((id, Ok(entries))).await.is_err() {
                    return;
                }
                let Some(next) = next else { return };
                if let Some(last) = last.filter(|_| {
                    !tried
                        && depth < SPLIT_DEPTH
                        && read >= SPLIT_AFTER_PAGES << depth
                        && self.parts.get() + SPLIT_INTO <= MAX_PARTS
                }) && let Some(parts) = s
                    .split(self.prefix, &bounds, &next, &last, self.split_at)
                    .await
                {
                    tried = true;
                    if !parts.is_empty() {
                        let reading = parts.into_iter().enumerate().map(|(i, p)| {
                            let number = if i == 0 {
                                id
                            } else {
                                self.parts.replace(self.parts.get() + 1)
                            };
                            self.list_part(p, number, pages.clone(), depth + 1)
                        });
                        join_all(reading.collect::<Vec<_>>()).await;
                        return;
                    }
                }
                token = Some(next);
            }
        })
    }
}

/// Checks that every key handed on sorts after the one before it, across pages (of one part).
struct InOrder<'p> {
    prefix: &'p str,
    last: Option<String>,
}

impl InOrder<'_> {
    fn check(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let mut before = self.last.as_deref();
        for e in entries {
            crate::storage::in_order(self.prefix, &e.key, before)?;
            before = Some(&e.key);
        }
        if let Some(e) = entries.last() {
            self.last = Some(e.key.clone());
        }
        Ok(())
    }
}

impl S3Storage {
    /// Lists the folders of one level below `prefix` (by name) into `dirs`.
    pub(super) async fn list_folders_async(
        &self,
        prefix: &str,
        dirs: &mut Vec<String>,
    ) -> Result<(), StorageError> {
        let full_prefix = self.full(prefix);
        let fetch = |token: Option<String>| {
            let full_prefix = &full_prefix;
            async move {
                // Held until the page is visited: its memory is what the bound is for.
                let held = (self.listing.acquire().await).expect("semaphore is never closed");
                let page = self
                    .list_request(prefix, full_prefix, true, None, token)
                    .await?;
                let (entries, _) = self.entries_of(&page, &Bounds::default());
                let folders = page
                    .common_prefixes()
                    .iter()
                    .filter_map(|cp| cp.prefix().and_then(|p| p.strip_prefix(full_prefix)))
                    .map(|name| name.trim_end_matches('/').to_owned())
                    .collect();
                Ok(Page {
                    entries,
                    folders,
                    next: next_token(&page, false),
                    held: Some(held),
                })
            }
        };
        list_pages(
            prefix,
            &self.stop,
            &self.counters.list,
            fetch,
            &mut |_| {},
            dirs,
        )
        .await
    }

    /// Lists every key under `prefix` or, with `range`, only the keys after `range.0` and before
    /// `range.1` (full keys), visiting them in key order, one page after another.
    pub(super) async fn list_flat(
        &self,
        prefix: &str,
        range: Option<(&str, &str)>,
        visit: &mut dyn FnMut(Entry),
    ) -> Result<(), StorageError> {
        let full_prefix = self.full(prefix);
        let bounds = Bounds {
            after: range.map(|r| r.0.to_owned()),
            from: None,
            end: range.map(|r| r.1.to_owned()),
        };
        let mut order = InOrder { prefix, last: None };
        let mut token = None;
        loop {
            token = self
                .visit_page(
                    prefix,
                    &full_prefix,
                    &bounds,
                    token,
                    &mut order,
                    &mut *visit,
                )
                .await?;
            if token.is_none() {
                return Ok(());
            }
        }
    }

    /// Lists the keys after `range.0` and before `range.1` (full keys) as [`Self::list_flat`]
    /// does, but in parts once the listing runs long: `visit` is given each key with its part's
    /// number; a part's keys come in key order, and a part begins only at a folder (a key relative
    /// to the store, ending in `/`) that `split_at` accepts.
    pub(super) async fn list_parts(
        &self,
        prefix: &str,
        range: (&str, &str),
        split_at: &dyn Fn(&str) -> bool,
        visit: &mut dyn FnMut(usize, Entry),
    ) -> Result<(), StorageError> {
        let full_prefix = self.full(prefix);
        let bounds = Bounds {
            after: Some(range.0.to_owned()),
            from: None,
            end: Some(range.1.to_owned()),
        };
        let mut order = InOrder { prefix, last: None };
        let mut token = None;
        let mut read = 0;
        let mut tried = false;
        let parts = loop {
            token = self
                .visit_page(prefix, &full_prefix, &bounds, token, &mut order, &mut |e| {
                    visit(0, e)
                })
                .await?;
            read += 1;
            let Some(next) = &token else {
                return Ok(());
            };
            if let Some(last) = order
                .last
                .as_deref()
                .filter(|_| read >= SPLIT_AFTER_PAGES && !tried)
                && let Some(parts) = self
                    .split(prefix, &bounds, next, &self.full(last), split_at)
                    .await
            {
                tried = true;
                if !parts.is_empty() {
                    break parts;
                }
            }
        };
        let lister = Lister {
            storage: self,
            prefix,
            full_prefix: &full_prefix,
            split_at,
            parts: std::cell::Cell::new(parts.len()),
        };
        let (pages, mut arriving) = mpsc::channel(PAGES_WAITING);
        let reading = {
            let lister = &lister;
            join_all(parts.into_iter().enumerate().map(move |(i, part)| {
                // The first part goes on with the keys part 0 began.
                lister.list_part(part, i, pages.clone(), 1)
            }))
        };
        let visiting = async {
            // Each part's last key, for the order check (part 0's from the pages before).
            let mut orders: Vec<InOrder> = Vec::new();
            orders.push(order);
            while let Some((part, entries)) = arriving.recv().await {
                let entries: Vec<Entry> = entries?;
                while orders.len() <= part {
                    orders.push(InOrder { prefix, last: None });
                }
                orders[part].check(&entries)?;
                entries.into_iter().for_each(|e| visit(part, e));
            }
            Ok(())
        };
        // Every part ended (the channel closed with the last sender), or the visit ended in an
        // error, after which each part stops at its next page, the channel closed.
        join(reading, visiting).await.1
    }

    /// Splits the rest of a listing (`bounds`, going on at `token`, `last` the last key read,
    /// full) where the list requests in flight leave room for more ([`SPLIT_INTO`]` / 2` places
    /// free): the parts between places found after `last` and before the end, the first of them
    /// the listing going on up to the first place; none where no places are found. `None` (not
    /// tried) while the walk's other listings keep the requests busy: splitting would only hold
    /// more pages.
    async fn split(
        &self,
        prefix: &str,
        bounds: &Bounds,
        token: &str,
        last: &str,
        split_at: &dyn Fn(&str) -> bool,
    ) -> Option<Vec<Part>> {
        if self.listing.available_permits() < SPLIT_INTO / 2 {
            return None;
        }
        let Some(limit) = bounds.end.clone() else {
            return Some(Vec::new());
        };
        let places = self.split_places(prefix, last, &limit, split_at).await;
        let Some(place) = places.first() else {
            return Some(Vec::new());
        };
        let first = Part {
            bounds: Bounds {
                end: Some(place.clone()),
                ..bounds.clone()
            },
            token: Some(token.to_owned()),
        };
        let later = places.iter().enumerate().map(|(i, place)| Part {
            bounds: Bounds {
                // A key may be the place itself (a folder marker): start just before it, and
                // leave the keys between (`a-b/…` before `a/`) to the part before.
                after: Some(place[..place.len() - 1].to_owned()),
                from: Some(place.clone()),
                end: places.get(i + 1).cloned().or_else(|| bounds.end.clone()),
            },
            token: None,
        });
        Some(std::iter::once(first).chain(later).collect())
    }

    /// Reads one page of the listing's first part and visits it; returns the next page's token.
    async fn visit_page(
        &self,
        prefix: &str,
        full_prefix: &str,
        bounds: &Bounds,
        token: Option<String>,
        order: &mut InOrder<'_>,
        visit: &mut dyn FnMut(Entry),
    ) -> Result<Option<String>, StorageError> {
        // Held until the page is visited: its memory is what the bound is for.
        let (page, held) = self
            .list_page(prefix, full_prefix, false, bounds.after.as_deref(), token)
            .await?;
        let (entries, ended) = self.entries_of(&page, bounds);
        order.check(&entries)?;
        entries.into_iter().for_each(visit);
        drop(held);
        Ok(next_token(&page, ended))
    }

    /// One page of a part: its entries within `bounds` and the next page's token.
    async fn read_page(
        &self,
        prefix: &str,
        full_prefix: &str,
        bounds: &Bounds,
        token: Option<String>,
    ) -> Result<(Vec<Entry>, Option<String>), StorageError> {
        let (page, _place) = self
            .list_page(prefix, full_prefix, false, bounds.after.as_deref(), token)
            .await?;
        let (entries, ended) = self.entries_of(&page, bounds);
        Ok((entries, next_token(&page, ended)))
    }

    /// Up to [`SPLIT_INTO`]` - 1` places (full folder keys, ending in `/`, sorted) after `last` and
    /// before `limit` to split a listing at, spread over the child folders of one folder: the
    /// folder both keys share, or where it has none to split at, the folder `last` is in, level by
    /// level down. Only folders `split_at` accepts (relative to the store) are places or looked
    /// into. A delimited listing that fails gives no places (the listing goes on in one part and
    /// meets the failure itself if it lasts).
    async fn split_places(
        &self,
        prefix: &str,
        last: &str,
        limit: &str,
        split_at: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        let accepted = |folder: &str| folder.strip_prefix(&self.prefix).is_some_and(split_at);
        let mut folder = common_folder(last, limit).to_owned();
        for _ in 0..PLACE_LEVELS {
            let Ok(children) = self.child_folders_after(prefix, &folder, last, limit).await else {
                return Vec::new();
            };
            let places: Vec<&String> = children
                .iter()
                .filter(|c| c.as_str() > last && accepted(c))
                .collect();
            if places.len() >= SPLIT_INTO {
                return (1..SPLIT_INTO)
                    .map(|i| places[i * places.len() / SPLIT_INTO].clone())
                    .collect();
            }
            if !places.is_empty() {
                return places.into_iter().cloned().collect();
            }
            // Nothing to split at on this level: one level down, in the folder `last` is in.
            match children.into_iter().find(|c| last.starts_with(c.as_str())) {
                Some(c) if accepted(&c) => folder = c,
                _ => break,
            }
        }
        Vec::new()
    }

    /// The child folders of `folder` (full keys) that hold keys after `last` and sort before
    /// `limit`, from at most [`SPLIT_PAGES`] pages.
    async fn child_folders_after(
        &self,
        prefix: &str,
        folder: &str,
        last: &str,
        limit: &str,
    ) -> Result<Vec<String>, StorageError> {
        let after = last.starts_with(folder).then_some(last);
        let mut found = Vec::new();
        let mut token = None;
        for _ in 0..SPLIT_PAGES {
            let (page, _) = self.list_page(prefix, folder, true, after, token).await?;
            for p in page.common_prefixes().iter().filter_map(|cp| cp.prefix()) {
                if p >= limit {
                    return Ok(found);
                }
                found.push(p.to_owned());
            }
            match next_token(&page, false) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(found)
    }

    /// A page of a listing read here (not through [`list_pages`], which checks and counts
    /// itself): once no stop was asked for, counted, with a place among the list pages in flight,
    /// which the caller holds as long as the page's memory should count ([`LISTS_IN_FLIGHT`]).
    async fn list_page(
        &self,
        prefix: &str,
        full_prefix: &str,
        delimiter: bool,
        after: Option<&str>,
        token: Option<String>,
    ) -> Result<(ListObjectsV2Output, tokio::sync::SemaphorePermit<'_>), StorageError> {
        self.stop.check(prefix)?;
        self.counters.list.fetch_add(1, Ordering::Relaxed);
        let place = (self.listing.acquire().await).expect("semaphore is never closed");
        let page = self
            .list_request(prefix, full_prefix, delimiter, after, token)
            .await?;
        Ok((page, place))
    }

    /// One ListObjectsV2 request (1,000 keys at most) for the keys under `full_prefix`, after
    /// `after` or from the continuation `token`; errors name `prefix`.
    async fn list_request(
        &self,
        prefix: &str,
        full_prefix: &str,
        delimiter: bool,
        after: Option<&str>,
        token: Option<String>,
    ) -> Result<ListObjectsV2Output, StorageError> {
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
        if let Some(after) = after {
            req = req.start_after(after);
        }
        let _permit = self.admit().await;
        req.send().await.map_err(|e| sdk_error(prefix, &e))
    }

    /// A page's objects within `bounds` as the store's entries, and whether a key at or past the
    /// end was met (the listing ends there).
    fn entries_of(&self, page: &ListObjectsV2Output, bounds: &Bounds) -> (Vec<Entry>, bool) {
        let mut entries = Vec::with_capacity(page.contents().len());
        for obj in page.contents() {
            let Some(full) = obj.key() else { continue };
            if bounds.end.as_deref().is_some_and(|end| full >= end) {
                return (entries, true);
            }
            if bounds.from.as_deref().is_some_and(|from| full < from) {
                continue;
            }
            let Some(key) = full.strip_prefix(&self.prefix) else {
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
        (entries, false)
    }
}

/// Where the page after `page` starts; `None` when it was the last or the range `ended`.
fn next_token(page: &ListObjectsV2Output, ended: bool) -> Option<String> {
    match page.next_continuation_token() {
        Some(t) if !ended && !t.is_empty() && page.is_truncated() == Some(true) => {
            Some(t.to_owned())
        }
        _ => None,
    }
}

/// The longest folder (ending in `/`, or the bucket's root `""`) that both keys start with.
fn common_folder<'a>(a: &'a str, b: &str) -> &'a str {
    let same = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    match a.as_bytes()[..same].iter().rposition(|&c| c == b'/') {
        Some(i) => &a[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_folder_is_where_a_split_looks_first() {
        assert_eq!(
            common_folder(
                "r/repositories/mirror/library/a/_layers/x",
                "r/repositories/mirror0"
            ),
            "r/repositories/"
        );
        assert_eq!(
            common_folder("r/blobs/sha256/0a/0abc/data", "r/blobs/sha256/1"),
            "r/blobs/sha256/"
        );
        assert_eq!(common_folder("a/b", "c"), "");
    }
}
