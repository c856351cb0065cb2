//! Deletes by the JSON API's batch endpoint: up to 100 `DELETE`s in one `multipart/mixed` POST to
//! `/batch/storage/v1`, authorized once (the outer request's `Authorization` applies to every
//! part), one status a part in the answer. A part that was throttled or failed on the server's
//! side (429, 5xx), or that the answer leaves out, is sent again on its own, with the backoff
//! every single request has; a server without the batch endpoint gets every delete on its own.

use super::{auth, call, encode, other};
use crate::storage::http::Shared;
use crate::storage::{StorageError, multipart};
use bytes::Bytes;

/// Parts a batch takes at most (the JSON API's limit).
pub const MAX: usize = 100;

/// Where the deletes go.
pub struct Target<'a> {
    pub http: &'a std::sync::Arc<Shared>,
    pub tokens: &'a std::sync::Arc<auth::Tokens>,
    pub base: &'a str,
    pub bucket: &'a str,
}

/// Deletes `names` (the objects of `keys`), one result a key; "not found" is success. Returns
/// the results and the number of requests made.
pub async fn delete(
    t: &Target<'_>,
    keys: &[String],
    names: &[String],
) -> (Vec<Result<(), StorageError>>, u64) {
    let mut out = Vec::with_capacity(keys.len());
    let mut requests = 0;
    for (keys, names) in keys.chunks(MAX).zip(names.chunks(MAX)) {
        requests += 1;
        let mut results = match one_batch(t, keys, names).await {
            Ok(Some(results)) => results,
            Ok(None) => keys.iter().map(|_| Err(retry())).collect(),
            Err(e) => keys.iter().map(|_| Err(e.clone())).collect(),
        };
        let again: Vec<usize> = (0..keys.len())
            .filter(|&i| matches!(&results[i], Err(e) if is_retry(e)))
            .collect();
        requests += again.len() as u64;
        for (i, r) in again.iter().zip(one_by_one(t, keys, names, &again).await) {
            results[*i] = r;
        }
        out.extend(results);
    }
    (out, requests)
}

const RETRY: &str = "to be sent again on its own";

fn retry() -> StorageError {
    other("", RETRY)
}

fn is_retry(e: &StorageError) -> bool {
    matches!(e, StorageError::Other { key, message } if key.is_empty() && message == RETRY)
}

/// `Ok(None)` when the server takes no batches.
async fn one_batch(
    t: &Target<'_>,
    keys: &[String],
    names: &[String],
) -> Result<Option<Vec<Result<(), StorageError>>>, StorageError> {
    let boundary = multipart::boundary();
    let requests: Vec<(String, Vec<(&str, String)>)> = names
        .iter()
        .map(|name| {
            let line = format!(
                "DELETE /storage/v1/b/{}/o/{}",
                encode(t.bucket),
                encode(name)
            );
            (line, Vec::new())
        })
        .collect();
    let body = Bytes::from(multipart::body(&boundary, &requests));
    let url = format!("{}/batch/storage/v1", t.base);
    let what = format!("{} (a batch of {} deletes)", keys[0], keys.len());
    let headers = [(
        "content-type",
        format!("multipart/mixed; boundary={boundary}"),
    )];
    let reply = call(
        t.http,
        t.tokens,
        &what,
        http::Method::POST,
        &url,
        &headers,
        body,
    )
    .await?;
    if reply.status == 401 || reply.status == 403 {
        return Err(reply.error(&what));
    }
    if !reply.ok() {
        return Ok(None);
    }
    let answer_boundary = multipart::answer_boundary(reply.header("content-type"))
        .ok_or_else(|| other(&what, "the batch's answer names no multipart boundary"))?;
    let answer = String::from_utf8_lossy(&reply.body);
    Ok(Some(statuses(keys, &answer, &answer_boundary)))
}

/// Each part's result; throttled, failed on the server's side or missing parts are marked to be
/// sent again.
fn statuses(keys: &[String], answer: &str, boundary: &str) -> Vec<Result<(), StorageError>> {
    let mut out: Vec<Result<(), StorageError>> = keys.iter().map(|_| Err(retry())).collect();
    for a in multipart::answers(answer, boundary) {
        let Some(key) = keys.get(a.index) else {
            continue;
        };
        out[a.index] = match a.status {
            200..=299 | 404 => Ok(()),
            429 | 500..=599 => Err(retry()),
            _ => {
                let message = a
                    .text
                    .find('{')
                    .and_then(|at| serde_json::from_str::<serde_json::Value>(&a.text[at..]).ok())
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .or_else(|| {
                        let last = a.text.lines().rev().find(|l| !l.trim().is_empty())?;
                        (last.trim() != a.status_line)
                            .then(|| last.trim().chars().take(200).collect())
                    })
                    .unwrap_or_default();
                Err(other(key, format!("{} {message}", a.status_line).trim()))
            }
        };
    }
    out
}

/// The deletes of `which`, each on its own, as many in flight as the bound allows.
async fn one_by_one(
    t: &Target<'_>,
    keys: &[String],
    names: &[String],
    which: &[usize],
) -> Vec<Result<(), StorageError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (slot, &i) in which.iter().enumerate() {
        let (http, tokens) = (t.http.clone(), t.tokens.clone());
        let url = super::object_url(t.base, t.bucket, &names[i]);
        let key = keys[i].clone();
        tasks.spawn(async move {
            let reply = call(
                &http,
                &tokens,
                &key,
                http::Method::DELETE,
                &url,
                &[],
                Bytes::new(),
            )
            .await;
            let result = match reply {
                Ok(r) if r.ok() || r.status == 404 => Ok(()),
                Ok(r) => Err(r.error(&key)),
                Err(e) => Err(e),
            };
            (slot, result)
        });
    }
    let mut out: Vec<Result<(), StorageError>> = which
        .iter()
        .map(|&i| Err(other(&keys[i], "the delete did not finish")))
        .collect();
    while let Some(done) = tasks.join_next().await {
        if let Ok((slot, r)) = done {
            out[slot] = r;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_and_missing_parts_are_sent_again_and_errors_keep_the_servers_message() {
        let keys: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let answer = "--b\r\nContent-Type: application/http\r\nContent-ID: <response-0>\r\n\r\n\
                      HTTP/1.1 204 No Content\r\n\r\n\
                      --b\r\nContent-ID: <response-1>\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n\
                      --b\r\nContent-ID: <response-2>\r\n\r\nHTTP/1.1 429 Too Many Requests\r\n\r\n\
                      --b\r\nContent-ID: <response-3>\r\n\r\nHTTP/1.1 403 Forbidden\r\n\
                      Content-Type: application/json\r\n\r\n{\"error\":{\"code\":403,\"message\":\
                      \"x lacks storage.objects.delete\"}}\r\n--b--\r\n";
        let r = statuses(&keys, answer, "b");
        assert!(r[0].is_ok() && r[1].is_ok());
        assert!(is_retry(r[2].as_ref().unwrap_err()));
        let e = r[3].as_ref().unwrap_err().to_string();
        assert!(
            e.starts_with("d: HTTP/1.1 403 Forbidden") && e.contains("storage.objects.delete"),
            "{e}"
        );
        assert!(is_retry(r[4].as_ref().unwrap_err()), "a part left out");
    }
}
