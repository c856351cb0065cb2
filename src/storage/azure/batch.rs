//! Deletes by Blob Batch: up to 256 signed `DELETE`s in one `multipart/mixed` request, one
//! status a blob in the answer. A part that was throttled or failed on the server's side (429,
//! 5xx), or that the answer leaves out, is sent again on its own; a server without batches (an
//! older emulator, a gateway) gets every delete on its own, as many in flight as the bound allows
//! (the driver, [`crate::storage::multipart::delete`], is GCS's too).

use super::{Client, http_date};
use crate::storage::StorageError;
use crate::storage::multipart::{self, Batcher, Part};
use bytes::Bytes;
use std::sync::Arc;
use std::time::SystemTime;

/// Subrequests a batch takes at most.
pub const MAX: usize = 256;

/// Where the deletes go.
#[derive(Clone)]
pub struct Target(pub Arc<Client>);

impl Batcher for Target {
    const MAX: usize = MAX;

    async fn batch(
        &self,
        keys: &[String],
        names: &[String],
    ) -> Result<Option<Vec<Part>>, StorageError> {
        one_batch(&self.0, keys, names).await
    }

    async fn one(&self, key: String, name: String) -> Result<(), StorageError> {
        self.0
            .delete_if(&name, None)
            .await
            .map_err(|e| StorageError::Other {
                key,
                message: e.to_string(),
            })
    }
}

/// `Ok(None)` when the server takes no batches.
async fn one_batch(
    client: &Client,
    keys: &[String],
    names: &[String],
) -> Result<Option<Vec<Part>>, StorageError> {
    let boundary = multipart::boundary();
    let bearer = client.signer.bearer(&client.http).await?;
    let mut requests = Vec::with_capacity(names.len());
    for name in names {
        let path = client.path(Some(name));
        let target = client.with_sas(&path, &[]);
        let mut headers = vec![
            ("x-ms-date", http_date(SystemTime::now())),
            ("x-ms-delete-snapshots", "include".to_owned()),
            ("content-length", "0".to_owned()),
        ];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.clone()));
        } else if let Some(a) = client.signer.shared_key(&super::auth::ToSign {
            method: "DELETE",
            path: &path,
            query: &[],
            headers: &headers,
        }) {
            headers.push(("authorization", a));
        }
        requests.push((format!("DELETE {target}"), headers));
    }
    let body = multipart::body(&boundary, &requests);
    let query = [
        ("restype", "container".to_owned()),
        ("comp", "batch".to_owned()),
    ];
    let headers = [(
        "content-type",
        format!("multipart/mixed; boundary={boundary}"),
    )];
    let path = client.path(None);
    let what = format!("{} (a batch of {} deletes)", keys[0], keys.len());
    let body = Bytes::from(body);
    let reply = client
        .send_path(&what, http::Method::POST, &path, &query, &headers, body)
        .await?;
    if reply.status == 403 {
        return Err(reply.error(&what));
    }
    if !reply.ok() {
        return Ok(None);
    }
    let answer_boundary =
        multipart::answer_boundary(reply.header("content-type")).ok_or_else(|| {
            StorageError::Other {
                key: what.clone(),
                message: "the batch's answer names no multipart boundary".into(),
            }
        })?;
    Ok(Some(statuses(
        keys,
        &String::from_utf8_lossy(&reply.body),
        &answer_boundary,
    )))
}

/// Each subrequest's result from the batch's answer, by `Content-ID` (or by place); throttled,
/// failed on the server's side or missing parts are to be sent again.
fn statuses(keys: &[String], answer: &str, boundary: &str) -> Vec<Part> {
    let mut out: Vec<Part> = keys.iter().map(|_| Part::Again).collect();
    for a in multipart::answers(answer, boundary) {
        let Some(key) = keys.get(a.index) else {
            continue;
        };
        out[a.index] = Part::of(a.status, || {
            let code = a
                .text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("x-ms-error-code:")
                        .then(|| l[16..].trim().to_owned())
                })
                .unwrap_or_default();
            StorageError::Other {
                key: key.clone(),
                message: format!("{} {code}", a.status_line).trim().to_owned(),
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_by_content_id() {
        let keys = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let answer = "--r\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nHTTP/1.1 404 \
                      The specified blob does not exist.\r\nx-ms-error-code: BlobNotFound\r\n\r\n\
                      --r\r\nContent-Type: application/http\r\nContent-ID: 0\r\n\r\nHTTP/1.1 202 \
                      Accepted\r\n\r\n--r\r\nContent-ID: 2\r\n\r\nHTTP/1.1 403 Forbidden\r\n\
                      x-ms-error-code: AuthorizationFailure\r\n\r\n--r--\r\n";
        let r = statuses(&keys, answer, "r");
        assert!(matches!(r[0], Part::Done) && matches!(r[1], Part::Done));
        let Part::Failed(e) = &r[2] else {
            panic!("a 403 fails for good: {:?}", r[2]);
        };
        let e = e.to_string();
        assert!(
            e.starts_with("c: HTTP/1.1 403") && e.contains("AuthorizationFailure"),
            "{e}"
        );
        let r = statuses(
            &keys,
            "--r\r\nContent-ID: 0\r\n\r\nHTTP/1.1 202 Accepted\r\n--r--",
            "r",
        );
        // Parts the answer leaves out are sent again on their own.
        assert!(
            matches!(r[0], Part::Done)
                && matches!(r[1], Part::Again)
                && matches!(r[2], Part::Again)
        );
    }
}
