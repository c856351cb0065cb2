//! The HTTP client of the REST backends (GCS's JSON API, Azure's Blob API): hyper's pooled client
//! over rustls, run on a tokio runtime the backend owns, as the S3 backend runs the AWS SDK.
//!
//! Requests in flight are bounded by a semaphore and request starts spaced by an optional
//! requests-per-second cap. Throttling (429, 503), other 5xx, 408 and dropped connections are
//! retried with exponential backoff and jitter (honouring `Retry-After`), at most
//! `MAX_ATTEMPTS` tries (the remote layer's one retry policy); every attempt is counted so that
//! retries show in the report.

use super::StorageError;
use super::pace::Pacer;
use super::remote::{FIRST_BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A request's body, whole.
pub type Body = http_body_util::Full<Bytes>;

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Body,
>;

/// How long one attempt may take, from its start to the end of its response's headers.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header's value as text, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// True for a 2xx status.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// An error naming `key`, the status and the start of the body (where servers say why).
    pub fn error(&self, key: &str) -> StorageError {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(400)]);
        StorageError::of_status(
            key,
            self.status,
            format!("HTTP {}: {}", self.status, text.trim()),
        )
    }
}

/// What the backend shares with its background tasks (a lock's renewal).
pub struct Shared {
    client: Client,
    in_flight: tokio::sync::Semaphore,
    pacer: Option<Pacer>,
    /// Every attempt sent, first tries and retries alike.
    pub attempts: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// The runtime and the client.
#[derive(Debug)]
pub struct Http {
    runtime: tokio::runtime::Runtime,
    pub shared: Arc<Shared>,
}

impl Http {
    /// A client for `max_in_flight` requests at once, `max_rps` request starts a second at most.
    /// `what` names the store in the error (no network access happens here).
    pub fn new(
        what: &str,
        max_in_flight: usize,
        max_rps: Option<u32>,
    ) -> Result<Http, StorageError> {
        let fail = |m: String| StorageError::Other {
            key: what.to_owned(),
            message: m,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| fail(format!("no TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector({
                let mut c = hyper_util::client::legacy::connect::HttpConnector::new();
                c.enforce_http(false);
                c.set_connect_timeout(Some(Duration::from_secs(10)));
                c.set_nodelay(true);
                c
            });
        let client = {
            let _guard = runtime.enter();
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(max_in_flight.max(1))
                .build(https)
        };
        Ok(Http {
            runtime,
            shared: Arc::new(Shared {
                client,
                in_flight: tokio::sync::Semaphore::new(max_in_flight.max(1)),
                pacer: max_rps.and_then(Pacer::per_second),
                attempts: AtomicU64::new(0),
            }),
        })
    }

    /// Runs `f` to its end on the backend's runtime (from a collector thread).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Starts `f` on the backend's runtime, to run on its own (a lock's renewal).
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(f)
    }
}

impl Shared {
    /// Sends the request `make` builds (again for each retry) and reads the response whole.
    /// Statuses are the caller's to judge, except those retried; `key` names the object in errors.
    pub async fn send(
        &self,
        key: &str,
        make: &(dyn Fn() -> Result<http::Request<Body>, StorageError> + Sync),
    ) -> Result<Reply, StorageError> {
        let (response, _permit) = self.send_head(key, make).await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| transport(key, &e))?
            .to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// Sends a request and streams its body to `chunk` (blob data of any size) when the status is
    /// 2xx; otherwise the reply is returned whole for the caller to judge.
    pub async fn stream(
        &self,
        key: &str,
        make: &(dyn Fn() -> Result<http::Request<Body>, StorageError> + Sync),
        chunk: &mut dyn FnMut(&[u8]),
    ) -> Result<Reply, StorageError> {
        let (response, _permit) = self.send_head(key, make).await?;
        let (parts, mut body) = response.into_parts();
        let status = parts.status.as_u16();
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| transport(key, &e))?;
            if let Some(data) = frame.data_ref() {
                if (200..300).contains(&status) {
                    chunk(data);
                } else {
                    kept.extend_from_slice(data);
                }
            }
        }
        Ok(Reply {
            status,
            headers: parts.headers,
            body: kept.into(),
        })
    }

    /// Sends until a status that is not retried comes back (or the tries run out), holding a
    /// place among the requests in flight; the place is returned with the response, for its body.
    async fn send_head(
        &self,
        key: &str,
        make: &(dyn Fn() -> Result<http::Request<Body>, StorageError> + Sync),
    ) -> Result<
        (
            http::Response<hyper::body::Incoming>,
            tokio::sync::SemaphorePermit<'_>,
        ),
        StorageError,
    > {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("semaphore is never closed");
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(p) = &self.pacer {
                p.wait().await;
            }
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let sent = tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.request(make()?)).await;
            let wait = match sent {
                Ok(Ok(r)) if !retried(r.status().as_u16()) || attempt >= MAX_ATTEMPTS => {
                    return Ok((r, permit));
                }
                Ok(Ok(r)) => retry_after(r.headers()).unwrap_or_else(|| backoff(attempt)),
                Ok(Err(e)) if attempt >= MAX_ATTEMPTS => return Err(transport(key, &e)),
                Err(_) if attempt >= MAX_ATTEMPTS => {
                    return Err(StorageError::Other {
                        key: key.to_owned(),
                        message: format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs()),
                    });
                }
                Ok(Err(_)) | Err(_) => backoff(attempt),
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Statuses worth another try: throttling, timeouts and the server's own failures.
fn retried(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds, as throttled servers send it (at most 30 s is honoured).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

/// [`FIRST_BACKOFF`] doubling to at most [`MAX_BACKOFF`], with jitter so that many threads do not
/// retry together.
fn backoff(attempt: u32) -> Duration {
    let cap = FIRST_BACKOFF
        .saturating_mul(1 << attempt.min(7))
        .min(MAX_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    cap.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

fn transport(key: &str, e: &(dyn std::error::Error + 'static)) -> StorageError {
    let mut message = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cur = c.source();
    }
    StorageError::Transport {
        key: key.to_owned(),
        message,
    }
}

/// Percent-encodes `s` for a URL path segment or a query value (everything but RFC 3986's
/// unreserved characters).
pub fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Like [`encode`], but keeping `/` (a blob name as a URL path).
pub fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// A request with `body` and the given headers.
pub fn request(
    method: http::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<http::Request<Body>, StorageError> {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Body::new(body)).map_err(|e| StorageError::Other {
        key: url.to_owned(),
        message: format!("cannot build the request: {e}"),
    })
}

/// Posts a form (`application/x-www-form-urlencoded`), as token endpoints take it.
pub async fn post_form(http: &Shared, url: &str, body: String) -> Result<Reply, StorageError> {
    let body = Bytes::from(body);
    let post = || {
        request(
            http::Method::POST,
            url,
            &[(
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            body.clone(),
        )
    };
    http.send(url, &post).await
}

/// A form's body from its pairs, values percent-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Range` of a read of at most `limit` bytes: one byte past the limit tells a larger object
/// without reading it whole.
pub(crate) fn read_range(limit: u64) -> String {
    format!("bytes=0-{limit}")
}

/// What the answer to a ranged read ([`read_range`]) of `key` says: its bytes; not found; empty
/// (an empty object has no byte 0, so the range is not satisfiable); larger than `limit`; or the
/// service's error.
pub(crate) fn ranged_read(key: &str, limit: u64, reply: Reply) -> Result<Vec<u8>, StorageError> {
    match reply.status {
        404 => Err(StorageError::NotFound {
            key: key.to_owned(),
        }),
        416 => Ok(Vec::new()),
        _ if reply.ok() && reply.body.len() as u64 > limit => Err(StorageError::TooLarge {
            key: key.to_owned(),
            limit,
        }),
        _ if reply.ok() => Ok(reply.body.to_vec()),
        _ => Err(reply.error(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_retries_only_what_may_pass() {
        assert!(backoff(1) <= Duration::from_millis(200));
        assert!(backoff(1) >= Duration::from_millis(100));
        assert!(backoff(20) <= Duration::from_secs(10));
        assert!(backoff(20) >= Duration::from_secs(5));
        assert!(retried(503) && retried(429) && !retried(404) && !retried(412));
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    }

    #[test]
    fn encodes_names_as_url_segments() {
        assert_eq!(encode("a/b c+d"), "a%2Fb%20c%2Bd");
        assert_eq!(
            encode_path("docker/registry/v2/ü x"),
            "docker/registry/v2/%C3%BC%20x"
        );
    }
}
