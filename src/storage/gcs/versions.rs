//! Every generation of a versioned bucket's objects, live and noncurrent (`du --bucket`).

use super::*;

/// A page of every generation (`versions=true`): a generation with `timeDeleted` is noncurrent.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerationList {
    #[serde(default)]
    items: Vec<Generation>,
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Generation {
    name: String,
    size: Option<String>,
    generation: Option<String>,
    time_deleted: Option<String>,
    storage_class: Option<String>,
    updated: Option<String>,
    md5_hash: Option<String>,
}

impl GcsStorage {
    /// Every generation below the store's root, live or noncurrent (1000 a page).
    pub(super) async fn every_generation(
        &self,
        visit: &mut dyn FnMut(ListedVersion),
    ) -> Result<(), StorageError> {
        let url = format!(
            "{}/storage/v1/b/{}/o?prefix={}&versions=true&maxResults=1000&fields={}",
            self.base,
            encode(&self.bucket),
            encode(&self.prefix),
            encode(
                "nextPageToken,items(name,size,generation,timeDeleted,storageClass,updated,md5Hash)"
            )
        );
        let mut token: Option<String> = None;
        loop {
            self.stop.check("")?;
            self.counters.list.fetch_add(1, Ordering::Relaxed);
            let page_url = match &token {
                Some(t) => format!("{url}&pageToken={}", encode(t)),
                None => url.clone(),
            };
            let reply = self
                .call("", http::Method::GET, &page_url, &[], Bytes::new())
                .await?;
            if !reply.ok() {
                return Err(reply.error(""));
            }
            let page: GenerationList = serde_json::from_slice(&reply.body)
                .map_err(|e| StorageError::other("", format!("not an object listing: {e}")))?;
            for g in page.items {
                let Some(key) = g.name.strip_prefix(&self.prefix) else {
                    continue;
                };
                visit(ListedVersion {
                    key: key.to_owned(),
                    version_id: g.generation,
                    size: g.size.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0),
                    latest: g.time_deleted.is_none(),
                    delete_marker: false,
                    storage_class: g.storage_class,
                    modified: g
                        .updated
                        .as_deref()
                        .and_then(|u| humantime::parse_rfc3339_weak(u.trim_end_matches('Z')).ok()),
                    etag: g.md5_hash,
                });
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }
}
