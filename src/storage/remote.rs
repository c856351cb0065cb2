//! What the three remote backends (S3, GCS, Azure) share beneath their own request code: the paged
//! listing with its order check and stop flag, the request counters, the renewal of a lock held as
//! a conditionally written object, the bearer-token cache and the retry policy (the ranged read,
//! an HTTP matter, is in [`super::http`]). Each backend fetches a page or writes its lock in its
//! own protocol; the loop around it, and what it promises, is written once here.

use super::{Entry, RequestCounts, StorageError};
use std::future::Future;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One retry policy for every remote backend (the S3 SDK's configuration and the HTTP client of GCS
/// and Azure): tries of one request at most, the first and its retries...
pub(crate) const MAX_ATTEMPTS: u32 = 8;
/// ...waiting this long before the first retry, doubling up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The flag a stop (a signal) sets, once a run hands it over ([`super::Storage::stop_listings_on`]):
/// a listing checks it before each page and ends with an error once it is set.
#[derive(Debug, Default)]
pub(crate) struct Stop(OnceLock<Arc<AtomicUsize>>);

impl Stop {
    pub(crate) fn set(&self, flag: Arc<AtomicUsize>) {
        let _ = self.0.set(flag);
    }

    /// An error naming `prefix` once a stop was asked for.
    pub(crate) fn check(&self, prefix: &str) -> Result<(), StorageError> {
        if self.0.get().is_some_and(|s| s.load(Ordering::Relaxed) != 0) {
            return Err(StorageError::Other {
                key: prefix.to_owned(),
                message: "listing stopped: a stop was asked for".to_owned(),
            });
        }
        Ok(())
    }
}

/// Requests a remote backend made, by kind; what [`super::Storage::request_counts`] reports.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) list: AtomicU64,
    pub(crate) get: AtomicU64,
    pub(crate) delete: AtomicU64,
    /// Requests that are not the store's own: the lock's, the bucket's or account's settings, tokens.
    pub(crate) other: AtomicU64,
    /// Requests of the trash (HEADs and copies of moves, its run records' writes), where the
    /// backend counts them apart.
    pub(crate) trash: AtomicU64,
    /// Noncurrent versions and delete markers deleted beyond the current ones.
    pub(crate) older_versions: AtomicU64,
    /// Every attempt sent, retries included, where the backend's client counts them here (the S3
    /// SDK's interceptor); the HTTP backends count theirs in their client.
    pub(crate) attempts: AtomicU64,
}

impl Counters {
    /// The counts, with `attempts` (every request sent, retries included) telling the retries.
    pub(crate) fn counts(&self, service: &'static str, attempts: u64) -> RequestCounts {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (list, get, delete) = (load(&self.list), load(&self.get), load(&self.delete));
        let sent = list + get + delete + load(&self.other) + load(&self.trash);
        RequestCounts {
            service,
            list_requests: list,
            get_requests: get,
            delete_requests: delete,
            retries: attempts.saturating_sub(sent),
            trash_requests: load(&self.trash),
            older_versions_deleted: load(&self.older_versions),
        }
    }
}

/// One page of a listing, as the backend read it.
pub(crate) struct Page<'a> {
    /// The objects, keys relative to the store's root, in the order the service gave them.
    pub(crate) entries: Vec<Entry>,
    /// With a delimiter: the folders of the level, by name.
    pub(crate) folders: Vec<String>,
    /// Where the next page starts (a continuation token, a marker); `None` on the last page.
    pub(crate) next: Option<String>,
    /// Held until the page was visited, where the backend bounds the pages in memory at once.
    pub(crate) held: Option<tokio::sync::SemaphorePermit<'a>>,
}

/// Lists page by page: `fetch` reads the page that starts at the token it is given (`None` for the
/// first). Before each page the stop flag is checked and the request counted; every key must sort
/// after the one before it, across pages too (object stores list in key order, so a key that does
/// not means the listing moved under the walk or the server pages wrongly, and keys may have been
/// skipped, which would make what they name look unreferenced). Each page's keys are checked before
/// any of them is visited.
pub(crate) async fn list_pages<'a, F, Fut>(
    prefix: &str,
    stop: &Stop,
    requests: &AtomicU64,
    mut fetch: F,
    visit: &mut dyn FnMut(Entry),
    folders: &mut Vec<String>,
) -> Result<(), StorageError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<'a>, StorageError>>,
{
    let mut token: Option<String> = None;
    let mut last: Option<String> = None;
    loop {
        stop.check(prefix)?;
        requests.fetch_add(1, Ordering::Relaxed);
        let page = fetch(token.take()).await?;
        let mut before = last.as_deref();
        for e in &page.entries {
            super::in_order(prefix, &e.key, before)?;
            before = Some(&e.key);
        }
        if let Some(e) = page.entries.last() {
            last = Some(e.key.clone());
        }
        page.entries.into_iter().for_each(&mut *visit);
        folders.extend(page.folders);
        drop(page.held);
        match page.next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(()),
        }
    }
}

/// A bearer token, fetched when first needed and kept until a minute before it expires; one fetch
/// at a time (the others wait for it and take what it got).
#[derive(Debug, Default)]
pub(crate) struct TokenCache(tokio::sync::Mutex<Option<(String, Instant)>>);

impl TokenCache {
    /// The `Authorization` header's value: the kept token while it is good, or the one `fetch`
    /// gets (with its lifetime).
    pub(crate) async fn bearer<F, Fut>(&self, fetch: F) -> Result<String, StorageError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, Duration), StorageError>>,
    {
        let mut cached = self.0.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(format!("Bearer {token}"));
        }
        let (token, lifetime) = fetch().await?;
        let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(60));
        let header = format!("Bearer {token}");
        *cached = Some((token, until));
        Ok(header)
    }
}

/// What writing a held lock again gave.
pub(crate) enum Renewed {
    /// Written; the tag (ETag, generation) it now has.
    Written(String),
    /// Not ours any more: broken, or taken over by another run.
    Lost,
    /// Not written this time (a failed request): tried again at the next turn.
    Failed,
}

/// Writes a held lock again every [`super::lock_record::RENEW_EVERY`], to show that its run is alive:
/// `write` writes it on the condition that it still has the tag it is given, the one in `tag`,
/// which then holds the new one (for the release, which deletes only that). Ends when the lock is
/// lost (a warning naming `location` says so) or when the task holding it is dropped.
pub(crate) async fn renew_lock<F, Fut>(
    location: String,
    tag: Arc<std::sync::Mutex<String>>,
    mut write: F,
) where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Renewed>,
{
    loop {
        tokio::time::sleep(super::lock_record::RENEW_EVERY).await;
        let current = tag.lock().expect("not poisoned").clone();
        match write(current).await {
            Renewed::Written(t) => *tag.lock().expect("not poisoned") = t,
            Renewed::Lost => {
                crate::model::warning::emit(format!(
                    "warning: the lock {location} was broken or replaced while this run held it"
                ));
                return;
            }
            Renewed::Failed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry {
        Entry {
            key: key.to_owned(),
            size: 1,
            modified: None,
            etag: None,
            content: None,
        }
    }

    fn pages(
        keys: Vec<Vec<&'static str>>,
    ) -> impl FnMut(Option<String>) -> std::future::Ready<Result<Page<'static>, StorageError>> {
        move |token: Option<String>| {
            let i: usize = token.map_or(0, |t| t.parse().unwrap());
            let last = i + 1 == keys.len();
            std::future::ready(Ok(Page {
                entries: keys[i].iter().map(|k| entry(k)).collect(),
                folders: vec![format!("f{i}")],
                next: (!last).then(|| (i + 1).to_string()),
                held: None,
            }))
        }
    }

    fn run(
        keys: Vec<Vec<&'static str>>,
        stop: &Stop,
    ) -> (Result<(), StorageError>, Vec<String>, Vec<String>, u64) {
        let requests = AtomicU64::new(0);
        let mut seen = Vec::new();
        let mut folders = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt.block_on(list_pages(
            "p/",
            stop,
            &requests,
            pages(keys),
            &mut |e| seen.push(e.key),
            &mut folders,
        ));
        (r, seen, folders, requests.into_inner())
    }

    #[test]
    fn pages_are_listed_in_order_counted_and_stopped() {
        let (r, seen, folders, requests) = run(
            vec![vec!["p/a", "p/b"], vec!["p/c"], vec![]],
            &Stop::default(),
        );
        r.unwrap();
        assert_eq!(seen, ["p/a", "p/b", "p/c"]);
        assert_eq!(folders, ["f0", "f1", "f2"]);
        assert_eq!(requests, 3);

        // A key that sorts before the last page's last key: refused, none of its page visited.
        let (r, seen, _, _) = run(
            vec![vec!["p/a", "p/c"], vec!["p/d", "p/b"]],
            &Stop::default(),
        );
        assert!(r.unwrap_err().to_string().contains("p/b"));
        assert_eq!(seen, ["p/a", "p/c"]);

        let stop = Stop::default();
        stop.set(Arc::new(AtomicUsize::new(2)));
        let (r, seen, _, requests) = run(vec![vec!["p/a"]], &stop);
        assert!(r.unwrap_err().to_string().contains("stop"));
        assert!(seen.is_empty());
        assert_eq!(requests, 0);
    }

    #[test]
    fn a_token_is_kept_until_a_minute_before_it_expires() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fetched = AtomicU64::new(0);
        let fetch = |lifetime: u64| {
            let fetched = &fetched;
            move || async move {
                let n = fetched.fetch_add(1, Ordering::Relaxed);
                Ok((format!("t{n}"), Duration::from_secs(lifetime)))
            }
        };
        let long = TokenCache::default();
        assert_eq!(rt.block_on(long.bearer(fetch(3600))).unwrap(), "Bearer t0");
        assert_eq!(rt.block_on(long.bearer(fetch(3600))).unwrap(), "Bearer t0");
        // A token that lives a minute or less is fetched again every time.
        let short = TokenCache::default();
        assert_eq!(rt.block_on(short.bearer(fetch(60))).unwrap(), "Bearer t1");
        assert_eq!(rt.block_on(short.bearer(fetch(60))).unwrap(), "Bearer t2");
        let failed = TokenCache::default();
        let e = rt.block_on(failed.bearer(|| async {
            Err::<(String, Duration), _>(StorageError::Denied {
                key: "token".into(),
                message: "no".into(),
            })
        }));
        assert!(matches!(e, Err(StorageError::Denied { .. })));
    }

    #[test]
    fn retries_are_the_attempts_beyond_the_requests_counted() {
        let c = Counters::default();
        c.list.fetch_add(3, Ordering::Relaxed);
        c.get.fetch_add(4, Ordering::Relaxed);
        c.other.fetch_add(1, Ordering::Relaxed);
        c.trash.fetch_add(2, Ordering::Relaxed);
        let n = c.counts("s3", 12);
        assert_eq!((n.list_requests, n.get_requests, n.retries), (3, 4, 2));
        assert_eq!(n.trash_requests, 2);
        assert_eq!(c.counts("s3", 5).retries, 0);
    }
}
