//! Deletes by Blob Batch: up to 256 signed `DELETE`s in one `multipart/mixed` request, one
//! status a blob in the answer. A server without batches (an older emulator, a gateway) gets
//! the deletes one by one, as many in flight as the bound allows.

use super::{Client, http_date};
use crate::storage::{StorageError, multipart};
use bytes::Bytes;
use std::sync::Arc;
use std::time::SystemTime;

/// Subrequests a batch takes at most.
pub const MAX: usize = 256;

/// Deletes `names` (the blobs of `keys`), one result a key; "not found" is success.
pub async fn delete(
    client: &Arc<Client>,
    keys: &[String],
    names: &[String],
) -> Vec<Result<(), StorageError>> {
    let mut out = Vec::with_capacity(keys.len());
    for (keys, names) in keys.chunks(MAX).zip(names.chunks(MAX)) {
        match one_batch(client, keys, names).await {
            Ok(Some(results)) => out.extend(results),
            Ok(None) => out.extend(one_by_one(client, keys, names).await),
            Err(e) => out.extend(keys.iter().map(|_| Err(e.clone()))),
        }
    }
    out
}

/// `Ok(None)` when the server takes no batches.
async fn one_batch(
    client: &Client,
    keys: &[String],
    names: &[String],
) -> Result<Option<Vec<Result<(), StorageError>>>, StorageError> {
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

/// Each subrequest's result from the batch's answer, by `Content-ID` (or by place).
fn statuses(keys: &[String], answer: &str, boundary: &str) -> Vec<Result<(), StorageError>> {
    let mut out: Vec<Result<(), StorageError>> = keys
        .iter()
        .map(|k| {
            Err(StorageError::Other {
                key: k.clone(),
                message: "the batch's answer has no status for this delete".into(),
            })
        })
        .collect();
    for a in multipart::answers(answer, boundary) {
        let Some(key) = keys.get(a.index) else {
            continue;
        };
        out[a.index] = match a.status {
            200..=299 | 404 => Ok(()),
            _ => {
                let code = a
                    .text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .starts_with("x-ms-error-code:")
                            .then(|| l[16..].trim().to_owned())
                    })
                    .unwrap_or_default();
                Err(StorageError::Other {
                    key: key.clone(),
                    message: format!("{} {code}", a.status_line).trim().to_owned(),
                })
            }
        };
    }
    out
}

async fn one_by_one(
    client: &Arc<Client>,
    keys: &[String],
    names: &[String],
) -> Vec<Result<(), StorageError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let (client, name, key) = (client.clone(), name.clone(), keys[i].clone());
        tasks.spawn(async move {
            let r = client.delete_if(&name, None).await;
            (
                i,
                r.map_err(|e| StorageError::Other {
                    key,
                    message: e.to_string(),
                }),
            )
        });
    }
    let mut out: Vec<Result<(), StorageError>> = keys
        .iter()
        .map(|k| {
            Err(StorageError::Other {
                key: k.clone(),
                message: "the delete did not finish".into(),
            })
        })
        .collect();
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, r)) = done {
            out[i] = r;
        }
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
        assert!(r[0].is_ok() && r[1].is_ok());
        let e = r[2].as_ref().unwrap_err().to_string();
        assert!(
            e.starts_with("c: HTTP/1.1 403") && e.contains("AuthorizationFailure"),
            "{e}"
        );
        let r = statuses(
            &keys,
            "--r\r\nContent-ID: 0\r\n\r\nHTTP/1.1 202 Accepted\r\n--r--",
            "r",
        );
        assert!(r[0].is_ok() && r[1].is_err() && r[2].is_err());
    }
}
