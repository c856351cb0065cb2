//! The signed client: Shared Key, SAS or Entra ID requests to the Blob service, and HTTP dates.

use super::*;

/// What requests need, shared with the lock's renewal.
#[derive(Debug)]
pub(super) struct Client {
    pub(super) http: Arc<Shared>,
    pub(super) signer: auth::Signer,
    /// The Blob service's URL, no trailing `/` (for the emulator: `http://host:port/account`).
    pub(super) service: String,
    /// The service URL's path (`/account` for the emulator, empty on Azure).
    pub(super) service_path: String,
    pub(super) container: String,
}

/// How a write is conditioned.
pub(super) enum Condition<'a> {
    None,
    /// Only when no blob is there (`If-None-Match: *`).
    Absent,
    /// Only when the blob's ETag is this one.
    Etag(&'a str),
}

impl Client {
    /// Sends a request to the container (`blob: None`) or to one blob (its full name), signed
    /// for each attempt. `query` pairs are decoded values.
    pub(super) async fn call(
        &self,
        key: &str,
        method: http::Method,
        blob: Option<&str>,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, StorageError> {
        self.send_path(key, method, &self.path(blob), query, headers, body)
            .await
    }

    /// Sends a request to `path` (percent-encoded, below the service's origin).
    pub(super) async fn send_path(
        &self,
        key: &str,
        method: http::Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, StorageError> {
        let url = format!("{}{}", self.service_origin(), self.with_sas(path, query));
        let bearer = self.signer.bearer(&self.http).await?;
        let make = || {
            let r = Signed {
                method: method.clone(),
                path,
                query,
                headers,
            };
            self.signed(&r, &url, body.clone(), &bearer)
        };
        self.http.send(key, &make).await
    }

    /// The scheme and host of the service URL.
    pub(super) fn service_origin(&self) -> &str {
        &self.service[..self.service.len() - self.service_path.len()]
    }

    /// The URL path of the container or of one of its blobs, percent-encoded.
    pub(super) fn path(&self, blob: Option<&str>) -> String {
        match blob {
            Some(b) => format!(
                "{}/{}/{}",
                self.service_path,
                encode(&self.container),
                encode_path(b)
            ),
            None => format!("{}/{}", self.service_path, encode(&self.container)),
        }
    }

    /// Writes a block blob; `Ok(None)` when the condition failed, its ETag otherwise.
    pub(super) async fn put(
        &self,
        name: &str,
        bytes: &[u8],
        condition: Condition<'_>,
    ) -> Result<Option<String>, StorageError> {
        let mut headers = vec![
            ("x-ms-blob-type", "BlockBlob".to_owned()),
            ("content-type", "application/octet-stream".to_owned()),
        ];
        match condition {
            Condition::None => {}
            Condition::Absent => headers.push(("if-none-match", "*".to_owned())),
            Condition::Etag(e) => headers.push(("if-match", e.to_owned())),
        }
        let reply = self
            .call(
                name,
                http::Method::PUT,
                Some(name),
                &[],
                &headers,
                Bytes::copy_from_slice(bytes),
            )
            .await?;
        match reply.status {
            // An existing blob under If-None-Match: * is 409 (BlobAlreadyExists) on Azure, 412
            // on some servers; a changed ETag is 412.
            409 | 412 => Ok(None),
            _ if reply.ok() => Ok(Some(reply.header("etag").unwrap_or_default().to_owned())),
            _ => Err(reply.error(name)),
        }
    }

    /// A blob's properties; `None` when it is not there.
    pub(super) async fn head(&self, name: &str) -> Result<Option<Head>, StorageError> {
        let reply = self
            .call(name, http::Method::HEAD, Some(name), &[], &[], Bytes::new())
            .await?;
        match reply.status {
            404 => Ok(None),
            _ if reply.ok() => Ok(Some(Head {
                size: reply
                    .header("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0),
                etag: reply.header("etag").map(str::to_owned),
                modified: reply.header("last-modified").and_then(parse_http_date),
                copy_status: reply.header("x-ms-copy-status").map(str::to_owned),
            })),
            _ => Err(reply.error(name)),
        }
    }

    /// Deletes a blob (and its snapshots) if its ETag is still `etag`.
    pub(super) async fn delete_if(
        &self,
        name: &str,
        etag: Option<&str>,
    ) -> Result<(), StorageError> {
        let mut headers = vec![("x-ms-delete-snapshots", "include".to_owned())];
        if let Some(e) = etag {
            headers.push(("if-match", e.to_owned()));
        }
        let reply = self
            .call(
                name,
                http::Method::DELETE,
                Some(name),
                &[],
                &headers,
                Bytes::new(),
            )
            .await?;
        match reply.status {
            404 | 412 => Ok(()),
            _ if reply.ok() => Ok(()),
            _ => Err(reply.error(name)),
        }
    }
}

/// An HTTP date (`Fri, 04 Dec 2026 00:27:28 GMT`), as `x-ms-date` takes it.
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // humantime gives `2026-12-04T00:27:28Z`.
    let iso = humantime::format_rfc3339_seconds(
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    )
    .to_string();
    let (y, m, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = DAYS[((secs / 86_400) % 7) as usize];
    let month = MONTHS[m.parse::<usize>().unwrap_or(1) - 1];
    format!("{weekday}, {d} {month} {y} {} GMT", &iso[11..19])
}

/// Reads an HTTP date (`Last-Modified`).
pub(super) fn parse_http_date(s: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = s.split_whitespace().skip(1);
    let (d, m, y, t) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let month = MONTHS.iter().position(|x| *x == m)? + 1;
    humantime::parse_rfc3339(&format!("{y}-{month:02}-{:0>2}T{t}Z", d)).ok()
}

impl Client {
    /// Streams a blob's bytes to `chunk`.
    pub(super) async fn stream(
        &self,
        key: &str,
        name: &str,
        chunk: &mut dyn FnMut(&[u8]),
    ) -> Result<Reply, StorageError> {
        let path = self.path(Some(name));
        let url = format!("{}{}", self.service_origin(), self.with_sas(&path, &[]));
        let bearer = self.signer.bearer(&self.http).await?;
        let make = || {
            let r = Signed {
                method: http::Method::GET,
                path: &path,
                query: &[],
                headers: &[],
            };
            self.signed(&r, &url, Bytes::new(), &bearer)
        };
        self.http.stream(key, &make, chunk).await
    }

    /// `path` with the query (values encoded) and the SAS token, if any.
    pub(super) fn with_sas(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if let Some(sas) = self.signer.sas() {
            q.push(sas.to_owned());
        }
        if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", q.join("&"))
        }
    }

    /// The request `r` to `url`, dated and signed for this attempt.
    pub(super) fn signed(
        &self,
        r: &Signed,
        url: &str,
        body: Bytes,
        bearer: &Option<String>,
    ) -> Result<http::Request<crate::storage::http::Body>, StorageError> {
        let mut all: Vec<(&str, String)> = r.headers.to_vec();
        all.push(("x-ms-date", http_date(SystemTime::now())));
        all.push(("x-ms-version", VERSION.to_owned()));
        if r.method != http::Method::GET && r.method != http::Method::HEAD {
            all.push(("content-length", body.len().to_string()));
        }
        if let Some(b) = bearer {
            all.push(("authorization", b.clone()));
        } else if let Some(a) = self.signer.shared_key(&auth::ToSign {
            method: r.method.as_str(),
            path: r.path,
            query: r.query,
            headers: &all,
        }) {
            all.push(("authorization", a));
        }
        crate::storage::http::request(r.method.clone(), url, &all, body)
    }
}

/// What a request is, before it is dated and signed.
pub(super) struct Signed<'a> {
    pub(super) method: http::Method,
    pub(super) path: &'a str,
    pub(super) query: &'a [(&'a str, String)],
    pub(super) headers: &'a [(&'a str, String)],
}
