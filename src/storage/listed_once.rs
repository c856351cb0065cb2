//! A store whose listings are answered from one listing made before: `du --bucket` lists every
//! version once (S3's ListObjectVersions, GCS's generations) and serves the analysis's own
//! listings from its current objects, so that the bucket is listed once, not twice. Everything
//! else (reads, stats, the capabilities) goes to the store it wraps.

use super::{Entry, Lean, ListingNote, Lock, Moves, Multipart, Storage, StorageError, Versions};

/// `inner`, listed as `entries` (its current objects, keys relative to its root, in key order).
pub struct ListedOnce<'a> {
    inner: &'a dyn Storage,
    entries: Vec<Entry>,
}

impl<'a> ListedOnce<'a> {
    /// `entries` must be in key order.
    pub fn new(inner: &'a dyn Storage, entries: Vec<Entry>) -> ListedOnce<'a> {
        debug_assert!(entries.windows(2).all(|w| w[0].key <= w[1].key));
        ListedOnce { inner, entries }
    }

    /// The entries whose key starts with `prefix`.
    fn under(&self, prefix: &str) -> &[Entry] {
        let from = self.entries.partition_point(|e| e.key.as_str() < prefix);
        let to = from + self.entries[from..].partition_point(|e| e.key.starts_with(prefix));
        &self.entries[from..to]
    }
}

impl Storage for ListedOnce<'_> {
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        _note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        for e in self.under(prefix) {
            visit(e.clone());
        }
        Ok(())
    }

    fn list_lean(
        &self,
        prefix: &str,
        _lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.list(prefix, visit, note)
    }

    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        _lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        for f in folders {
            self.list(&format!("{prefix}{f}/"), visit, note)?;
        }
        Ok(())
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = Vec::new();
        for e in self.under(prefix) {
            if let Some((folder, _)) = e.key[prefix.len()..].split_once('/')
                && out.last().is_none_or(|last| last != folder)
            {
                out.push(folder.to_owned());
            }
        }
        Ok(out)
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.inner.read(key, limit)
    }

    fn read_each(
        &self,
        keys: &[String],
        limit: u64,
        done: &(dyn Fn(usize, crate::storage::ReadResult) + Sync),
    ) {
        self.inner.read_each(keys, limit, done)
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        self.inner.read_chunks(key, chunk)
    }

    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        self.inner.delete(keys)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn moves(&self) -> Option<&dyn Moves> {
        self.inner.moves()
    }

    fn versions(&self) -> Option<&dyn Versions> {
        self.inner.versions()
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        self.inner.multipart()
    }

    fn lock(&self) -> &dyn Lock {
        self.inner.lock()
    }

    fn wrapped(&self) -> Option<&dyn Storage> {
        Some(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemStorage;

    fn entry(key: &str) -> Entry {
        Entry {
            key: key.to_owned(),
            size: 1,
            modified: None,
            etag: None,
            content: None,
        }
    }

    #[test]
    fn lists_and_folders_come_from_the_one_listing() {
        let inner = MemStorage::new();
        let keys = ["a/1", "a/b/2", "a/b/3", "a/c/4", "ab/5", "z"];
        let s = ListedOnce::new(&inner, keys.iter().map(|k| entry(k)).collect());
        let mut seen = Vec::new();
        s.list("a/", &mut |e| seen.push(e.key), &mut |_| {})
            .unwrap();
        assert_eq!(seen, ["a/1", "a/b/2", "a/b/3", "a/c/4"]);
        assert_eq!(s.child_folders("a/").unwrap(), ["b", "c"]);
        assert_eq!(s.child_folders("").unwrap(), ["a", "ab"]);
        let mut below = Vec::new();
        s.list_below(
            "a/",
            &["b".into(), "c".into()],
            Lean::default(),
            &mut |e| below.push(e.key),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(below, ["a/b/2", "a/b/3", "a/c/4"]);
        let mut none = Vec::new();
        s.list("q/", &mut |e| none.push(e.key), &mut |_| {})
            .unwrap();
        assert!(none.is_empty());
    }
}
