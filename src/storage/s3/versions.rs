//! A versioned bucket: the versions and delete markers of a key, and the bucket's status.

use super::*;

/// One version of a key, or a delete marker on it, as ListObjectVersions gives it.
#[derive(Debug, Clone)]
pub(super) struct VersionEntry {
    pub(super) id: String,
    pub(super) marker: bool,
    pub(super) latest: bool,
}

impl S3Storage {
    /// Every version of `key` and every delete marker on it (ListObjectVersions, 1000 a page).
    pub(super) async fn versions_of(&self, key: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .version_entries(key)
            .await?
            .into_iter()
            .map(|v| v.id)
            .collect())
    }

    /// Every page of ListObjectVersions below `prefix` (relative to the store's root), 1000
    /// versions a page, each handed to `on_page`. With `stoppable`, a stop asked for ends it.
    async fn version_pages(
        &self,
        prefix: &str,
        stoppable: bool,
        on_page: &mut dyn FnMut(
            &aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput,
        ),
    ) -> Result<(), StorageError> {
        let full = self.full(prefix);
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            if stoppable {
                self.stop.check(prefix)?;
            }
            let page = {
                let _permit = self.admit().await;
                self.counters.list.fetch_add(1, Ordering::Relaxed);
                self.client
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .prefix(&full)
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(id_marker.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error(prefix, &e))?
            };
            on_page(&page);
            if page.is_truncated() != Some(true) {
                return Ok(());
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Ok(());
            }
        }
    }

    /// Every version of `key` and every delete marker on it, as listed.
    pub(super) async fn version_entries(
        &self,
        key: &str,
    ) -> Result<Vec<VersionEntry>, StorageError> {
        let full = self.full(key);
        let mut versions = Vec::new();
        // The prefix also matches longer keys: only the key itself counts.
        let entry = |id: Option<&str>, marker, latest: Option<bool>| {
            Some(VersionEntry {
                id: id?.to_owned(),
                marker,
                latest: latest == Some(true),
            })
        };
        self.version_pages(key, false, &mut |page| {
            versions.extend(
                page.versions()
                    .iter()
                    .filter(|v| v.key() == Some(full.as_str()))
                    .filter_map(|v| entry(v.version_id(), false, v.is_latest())),
            );
            versions.extend(
                page.delete_markers()
                    .iter()
                    .filter(|m| m.key() == Some(full.as_str()))
                    .filter_map(|m| entry(m.version_id(), true, m.is_latest())),
            );
        })
        .await?;
        Ok(versions)
    }

    /// Every version and delete marker below the store's root.
    pub(super) async fn every_version(
        &self,
        visit: &mut dyn FnMut(ListedVersion),
    ) -> Result<(), StorageError> {
        let root = self.full("");
        let relative = |k: Option<&str>| {
            k.and_then(|k| k.strip_prefix(root.as_str()))
                .map(str::to_owned)
        };
        let time = |t: Option<&aws_sdk_s3::primitives::DateTime>| {
            t.and_then(|t| std::time::SystemTime::try_from(*t).ok())
        };
        self.version_pages("", true, &mut |page| {
            for v in page.versions() {
                let Some(key) = relative(v.key()) else {
                    continue;
                };
                visit(ListedVersion {
                    key,
                    version_id: v.version_id().map(str::to_owned),
                    size: v.size().unwrap_or(0).max(0) as u64,
                    latest: v.is_latest() == Some(true),
                    delete_marker: false,
                    storage_class: v.storage_class().map(|c| c.as_str().to_owned()),
                    modified: time(v.last_modified()),
                    etag: v.e_tag().map(str::to_owned),
                });
            }
            for m in page.delete_markers() {
                let Some(key) = relative(m.key()) else {
                    continue;
                };
                visit(ListedVersion {
                    key,
                    version_id: m.version_id().map(str::to_owned),
                    size: 0,
                    latest: m.is_latest() == Some(true),
                    delete_marker: true,
                    storage_class: None,
                    modified: time(m.last_modified()),
                    etag: None,
                });
            }
        })
        .await
    }

    /// Deletes every version of each key and every delete marker on it, so that nothing of the key
    /// is left to hold space. A key's result is an error when any of its versions could not be
    /// listed or deleted (what was deleted stays deleted; the next run finds the rest). A key with no
    /// versions left is already gone: a success.
    pub(super) fn delete_every_version(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        use rayon::prelude::*;
        // One listing a key, spread over the collector's threads (sized to the requests in flight).
        let listed: Vec<Result<Vec<String>, StorageError>> = keys
            .par_iter()
            .map(|k| self.runtime.block_on(self.versions_of(k)))
            .collect();
        let mut results: Vec<Result<(), StorageError>> = Vec::with_capacity(keys.len());
        let mut objects: Vec<(usize, &str, &str)> = Vec::new();
        for (i, (key, versions)) in keys.iter().zip(&listed).enumerate() {
            match versions {
                Ok(v) => {
                    results.push(Ok(()));
                    objects.extend(v.iter().map(|id| (i, key.as_str(), id.as_str())));
                }
                Err(e) => results.push(Err(StorageError::other(key, e))),
            }
        }
        let outcomes = self.runtime.block_on(async {
            let mut out = Vec::with_capacity(objects.len());
            for chunk in objects.chunks(DELETE_OBJECTS_MAX) {
                let batch: Vec<(&str, Option<&str>)> =
                    chunk.iter().map(|(_, k, id)| (*k, Some(*id))).collect();
                out.extend(self.delete_objects(&batch).await);
            }
            out
        });
        let mut deleted = 0u64;
        for ((i, _, _), outcome) in objects.iter().zip(outcomes) {
            match outcome {
                Ok(()) => deleted += 1,
                Err(e) => {
                    if results[*i].is_ok() {
                        results[*i] = Err(e);
                    }
                }
            }
        }
        // Each key had one current version (or a marker); the rest were older.
        let current = results.iter().filter(|r| r.is_ok()).count() as u64;
        self.counters
            .older_versions
            .fetch_add(deleted.saturating_sub(current), Ordering::Relaxed);
        results
    }

    /// The bucket's versioning status (GetBucketVersioning), read once.
    pub(super) async fn status(&self) -> Result<Option<String>, StorageError> {
        if let Some(s) = self.status.get() {
            return Ok(s.clone());
        }
        let _permit = self.admit().await;
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("s3://{}", self.bucket), &e))?;
        let status = out.status().map(|s| s.as_str().to_owned());
        Ok(self.status.get_or_init(|| status).clone())
    }
}
