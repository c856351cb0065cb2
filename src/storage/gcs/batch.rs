//! Deletes by the JSON API's batch endpoint: up to 100 `DELETE`s in one `multipart/mixed` POST to
//! `/batch/storage/v1`, authorized once (the outer request's `Authorization` applies to every
//! part), one status a part in the answer. A part that was throttled or failed on the server's
//! side (429, 5xx), or that the answer leaves out, is sent again on its own, with the backoff
//! every single request has; a server without the batch endpoint gets every delete on its own (the
//! driver, [`crate::storage::multipart::delete`], is Azure's too).

use super::{auth, call, encode};
use crate::storage::StorageError;
use crate::storage::http::Shared;
use crate::storage::multipart::{self, Batcher, Part};
use bytes::Bytes;

/// Parts a batch takes at most (the JSON API's limit).
pub const MAX: usize = 100;

/// Where the deletes go.
#[derive(Clone)]
pub struct Target {
    pub http: std::sync::Arc<Shared>,
    pub tokens: std::sync::Arc<auth::Tokens>,
    pub base: String,
    pub bucket: String,
}

impl Batcher for Target {
    const MAX: usize = MAX;

    async fn batch(
        &self,
        keys: &[String],
        names: &[String],
    ) -> Result<Option<Vec<Part>>, StorageError> {
        one_batch(self, keys, names).await
    }

    async fn one(&self, key: String, name: String) -> Result<(), StorageError> {
        let url = super::object_url(&self.base, &self.bucket, &name);
        let reply = call(
            &self.http,
            &self.tokens,
            &key,
            http::Method::DELETE,
            &url,
            &[],
            Bytes::new(),
        )
        .await?;
        if reply.ok() || reply.status == 404 {
            Ok(())
        } else {
            Err(reply.error(&key))
        }
    }
}

/// `Ok(None)` when the server takes no batches.
async fn one_batch(
    t: &Target,
    keys: &[String],
    names: &[String],
) -> Result<Option<Vec<Part>>, StorageError> {
    let boundary = multipart::boundary();
    let requests: Vec<(String, Vec<(&str, String)>)> = names
        .iter()
        .map(|name| {
            let line = format!(
                "DELETE /storage/v1/b/{}/o/{}",
                encode(&t.bucket),
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
        &t.http,
        &t.tokens,
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
    let answer_boundary =
        multipart::answer_boundary(reply.header("content-type")).ok_or_else(|| {
            StorageError::other(&what, "the batch's answer names no multipart boundary")
        })?;
    let answer = String::from_utf8_lossy(&reply.body);
    Ok(Some(statuses(keys, &answer, &answer_boundary)))
}

/// Each part's result; throttled, failed on the server's side or missing parts are to be sent
/// again.
fn statuses(keys: &[String], answer: &str, boundary: &str) -> Vec<Part> {
    let mut out: Vec<Part> = keys.iter().map(|_| Part::Again).collect();
    for a in multipart::answers(answer, boundary) {
        let Some(key) = keys.get(a.index) else {
            continue;
        };
        out[a.index] = Part::of(a.status, || {
            let message = a
                .text
                .find('{')
                .and_then(|at| serde_json::from_str::<serde_json::Value>(&a.text[at..]).ok())
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .or_else(|| {
                    let last = a.text.lines().rev().find(|l| !l.trim().is_empty())?;
                    (last.trim() != a.status_line).then(|| last.trim().chars().take(200).collect())
                })
                .unwrap_or_default();
            StorageError::other(key, format!("{} {message}", a.status_line).trim())
        });
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
        assert!(matches!(r[0], Part::Done) && matches!(r[1], Part::Done));
        assert!(matches!(r[2], Part::Again));
        let Part::Failed(e) = &r[3] else {
            panic!("a 403 fails for good: {:?}", r[3]);
        };
        let e = e.to_string();
        assert!(
            e.starts_with("d: HTTP/1.1 403 Forbidden") && e.contains("storage.objects.delete"),
            "{e}"
        );
        assert!(matches!(r[4], Part::Again), "a part left out");
    }
}
