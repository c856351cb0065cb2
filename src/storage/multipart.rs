//! Batched requests as `multipart/mixed` (GCS's JSON batch and Azure's Blob Batch speak the same
//! shape): a body of `application/http` parts, one request each, numbered by `Content-ID`; and the
//! answer's parts, one status each, found again by their `Content-ID` (`0`, `<0>` or
//! `<response-0>`) or else by their place. And the one batch-delete driver both backends use
//! ([`delete`]), so that they resend and count alike.

use crate::storage::StorageError;
use std::future::Future;
use std::time::SystemTime;

/// What became of one delete of a batch.
#[derive(Debug)]
pub enum Part {
    /// Deleted, or not there ("not found" is success).
    Done,
    /// Throttled (429), failed on the server's side (5xx), or left out of the answer: to be sent
    /// again on its own.
    Again,
    /// Refused for good (a 403, a bad name): the error names the key.
    Failed(StorageError),
}

impl Part {
    /// A part's status: 2xx and 404 done, 429 and 5xx again, anything else `failed()`.
    pub fn of(status: u16, failed: impl FnOnce() -> StorageError) -> Part {
        match status {
            200..=299 | 404 => Part::Done,
            429 | 500..=599 => Part::Again,
            _ => Part::Failed(failed()),
        }
    }
}

/// A backend that deletes in batches.
pub trait Batcher: Clone + Send + Sync + 'static {
    /// Deletes a batch takes at most.
    const MAX: usize;

    /// One batch (at most [`Batcher::MAX`] deletes): a part a key, or `None` when the server takes
    /// no batches.
    fn batch(
        &self,
        keys: &[String],
        names: &[String],
    ) -> impl Future<Output = Result<Option<Vec<Part>>, StorageError>> + Send;

    /// One delete on its own, with the backoff every single request has ("not found" is success).
    fn one(
        &self,
        key: String,
        name: String,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Deletes `names` (the objects of `keys`) in batches, one result a key. A part throttled, failed
/// on the server's side or left out of the answer is sent again on its own, as many in flight as
/// the bound allows; a server without batches gets every delete on its own. Returns the results
/// and the requests made (a batch counts one, each delete sent on its own one more).
pub async fn delete<B: Batcher>(
    b: &B,
    keys: &[String],
    names: &[String],
) -> (Vec<Result<(), StorageError>>, u64) {
    let mut out = Vec::with_capacity(keys.len());
    let mut requests = 0;
    for (keys, names) in keys.chunks(B::MAX).zip(names.chunks(B::MAX)) {
        requests += 1;
        let parts: Vec<Part> = match b.batch(keys, names).await {
            Ok(Some(mut parts)) => {
                parts.resize_with(keys.len(), || Part::Again);
                parts
            }
            Ok(None) => keys.iter().map(|_| Part::Again).collect(),
            Err(e) => keys.iter().map(|_| Part::Failed(e.clone())).collect(),
        };
        let mut results: Vec<Result<(), StorageError>> = Vec::with_capacity(keys.len());
        let mut again = tokio::task::JoinSet::new();
        for (i, part) in parts.into_iter().enumerate() {
            results.push(match part {
                Part::Done => Ok(()),
                Part::Failed(e) => Err(e),
                Part::Again => {
                    requests += 1;
                    let (b, key, name) = (b.clone(), keys[i].clone(), names[i].clone());
                    again.spawn(async move { (i, b.one(key, name).await) });
                    Err(StorageError::Other {
                        key: keys[i].clone(),
                        message: "the delete did not finish".into(),
                    })
                }
            });
        }
        while let Some(done) = again.join_next().await {
            if let Ok((i, r)) = done {
                results[i] = r;
            }
        }
        out.extend(results);
    }
    (out, requests)
}

/// A boundary no object name can hold (it never appears in a request line or header we write).
pub fn boundary() -> String {
    format!(
        "batch_regsweep_{:x}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

/// Builds a batch's body: each request is its request line and headers (no body).
pub fn body(boundary: &str, requests: &[(String, Vec<(&str, String)>)]) -> String {
    let mut out = String::new();
    for (i, (line, headers)) in requests.iter().enumerate() {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: \
             binary\r\nContent-ID: {i}\r\n\r\n{line} HTTP/1.1\r\n"
        ));
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        // The blank line that ends the request's headers, then the CRLF that belongs to the next
        // delimiter (RFC 2046): without it a strict server reads a request cut short.
        out.push_str("\r\n\r\n");
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

/// The boundary an answer's `Content-Type` names.
pub fn answer_boundary(content_type: Option<&str>) -> Option<String> {
    content_type?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
}

/// One subrequest's answer.
pub struct Answer<'a> {
    /// The request it answers: by `Content-ID`, else by place.
    pub index: usize,
    pub status: u16,
    /// `HTTP/1.1 404 Not Found`, as sent.
    pub status_line: &'a str,
    /// The whole part (headers and body), for a backend's error details.
    pub text: &'a str,
}

/// The answers in `answer` (the batch's body), in the order sent back.
pub fn answers<'a>(answer: &'a str, boundary: &str) -> Vec<Answer<'a>> {
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    let parts = answer
        .split(delimiter.as_str())
        .skip(1)
        .filter(|p| !p.starts_with("--"));
    for (place, part) in parts.enumerate() {
        let mut id = None;
        let mut status_line = None;
        for line in part.lines() {
            if id.is_none()
                && line.len() > 11
                && line.is_char_boundary(11)
                && line[..11].eq_ignore_ascii_case("content-id:")
            {
                let v = line[11..]
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>');
                id = v.trim_start_matches("response-").parse::<usize>().ok();
            }
            if status_line.is_none() && line.starts_with("HTTP/1.") {
                status_line = Some(line.trim());
            }
        }
        let Some(status_line) = status_line else {
            continue;
        };
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        out.push(Answer {
            index: id.unwrap_or(place),
            status,
            status_line,
            text: part,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_by_content_id_in_each_form_or_by_place() {
        let answer = "--r\r\nContent-Type: application/http\r\nContent-ID: <response-1>\r\n\r\n\
                      HTTP/1.1 404 Not Found\r\n\r\n{\"error\":{\"message\":\"No such object\"}}\r\n\
                      --r\r\ncontent-id: 0\r\n\r\nHTTP/1.1 202 Accepted\r\n\r\n\
                      --r\r\nContent-ID: <2>\r\n\r\nHTTP/1.1 403 Forbidden\r\n\r\n\
                      --r\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n--r--\r\n";
        let a = answers(answer, "r");
        let got: Vec<(usize, u16)> = a.iter().map(|a| (a.index, a.status)).collect();
        assert_eq!(got, [(1, 404), (0, 202), (2, 403), (3, 204)]);
        assert_eq!(a[2].status_line, "HTTP/1.1 403 Forbidden");
        assert!(a[0].text.contains("No such object"));
    }

    #[test]
    fn a_body_numbers_its_requests_and_the_boundary_is_read_back() {
        let b = body(
            "xyz",
            &[
                ("DELETE /a".into(), vec![("x-h", "1".into())]),
                ("DELETE /b".into(), vec![]),
            ],
        );
        assert!(
            b.starts_with("--xyz\r\n") && b.ends_with("--xyz--\r\n"),
            "{b}"
        );
        assert!(
            b.contains("Content-ID: 0\r\n\r\nDELETE /a HTTP/1.1\r\nx-h: 1\r\n\r\n\r\n--xyz\r\n")
        );
        assert!(b.contains("Content-ID: 1\r\n\r\nDELETE /b HTTP/1.1\r\n\r\n\r\n--xyz--"));
        assert_eq!(
            answer_boundary(Some("multipart/mixed; boundary=\"batch_x\"")).as_deref(),
            Some("batch_x")
        );
        assert_eq!(answer_boundary(Some("application/json")), None);
    }
}
