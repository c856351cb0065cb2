//! The walk's tests: stores of nested, split and late-listed repositories.

use super::*;
use crate::storage::ListingNote;

use crate::storage::mem::MemStorage;

/// Repositories nested in each other, in the order a sorted listing and a depth-first walk
/// both give: `n/0x` before `n`'s own keys, `n/b` (and `n/b/c` within it) after.
const NESTED: [&str; 5] = ["n", "n/0x", "n/b", "n/b/c", "n-1"];

/// Puts repository `repo` with one blob of its name's bytes, linked as its revision and as
/// its layer; returns the blob's digest.
fn put_repository(s: &MemStorage, repo: &str) -> Digest {
    let d = Digest::of(repo.as_bytes());
    s.put(&layout::blob_data(&d), repo.as_bytes().to_vec());
    s.put(&layout::revision_link(repo, &d), d.to_string().into_bytes());
    s.put(&layout::layer_link(repo, &d), d.to_string().into_bytes());
    d
}

fn nested_store() -> MemStorage {
    let s = MemStorage::new();
    for (i, repo) in NESTED.iter().enumerate() {
        let d = put_repository(&s, repo);
        s.put(
            &layout::tag_current(repo, &format!("t{i}")),
            d.to_string().into_bytes(),
        );
    }
    s
}

#[test]
fn nested_repositories_each_keep_their_own_links() {
    let s = nested_store();
    let inv = scan(&s, Detail::Targets, &Progress::new()).unwrap();
    assert!(inv.problems.is_empty(), "{:?}", inv.problems);
    let mut names: Vec<&str> = NESTED.to_vec();
    names.sort_unstable();
    let got: Vec<&str> = inv.repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(got, names);
    for r in &inv.repositories {
        let d = Digest::of(r.name.as_bytes());
        let i = NESTED.iter().position(|n| *n == r.name).unwrap();
        let revisions: Vec<Digest> = r.revisions.digests(&inv.blobs).collect();
        assert_eq!(revisions, vec![d], "{}", r.name);
        assert_eq!(r.layer_links, vec![inv.blobs.id(&d).unwrap()], "{}", r.name);
        let tags: Vec<(&str, Option<Digest>)> = r
            .tags
            .iter()
            .map(|t| (t.name.as_str(), t.current))
            .collect();
        assert_eq!(
            tags,
            vec![(format!("t{i}").as_str(), Some(d))],
            "{}",
            r.name
        );
    }
}

/// A store whose listings break the contract: the revision links of the first folder listed
/// come after every other folder's keys, so that its repository arrives in two parts.
struct Split(MemStorage);

impl Storage for Split {
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.0.list(prefix, visit, note)
    }
    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let mut all = Vec::new();
        self.0
            .list_below(prefix, folders, lean, &mut |e| all.push(e), note)?;
        let first = format!("{prefix}{}/_manifests/revisions/", folders[0]);
        let (late, early): (Vec<Entry>, Vec<Entry>) =
            all.into_iter().partition(|e| e.key.starts_with(&first));
        early.into_iter().chain(late).for_each(visit);
        Ok(())
    }
    fn parallelism(&self) -> usize {
        1
    }
    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.0.child_folders(prefix)
    }
    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.0.read(key, limit)
    }
    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        self.0.read_chunks(key, chunk)
    }
    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        self.0.delete(keys)
    }
    fn describe(&self) -> String {
        "split".to_owned()
    }
    fn moves(&self) -> Option<&dyn crate::storage::Moves> {
        self.0.moves()
    }
    fn versions(&self) -> Option<&dyn crate::storage::Versions> {
        self.0.versions()
    }
    fn multipart(&self) -> Option<&dyn crate::storage::Multipart> {
        self.0.multipart()
    }
    fn lock(&self) -> &dyn crate::storage::Lock {
        self.0.lock()
    }
}

/// A store whose blob tree is listed only once the repositories' walk has given `wait_for`
/// entries (or after ten seconds, should the walk never get there): the walk runs ahead of
/// the blob table.
struct LateBlobs<'a> {
    inner: &'a MemStorage,
    wait_for: usize,
    listed: std::sync::Mutex<usize>,
    more: std::sync::Condvar,
}

impl Storage for LateBlobs<'_> {
    fn wrapped(&self) -> Option<&dyn Storage> {
        Some(self.inner)
    }
    fn lists_side_by_side(&self) -> bool {
        true
    }
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.inner.list(prefix, visit, note)
    }
    fn list_lean(
        &self,
        prefix: &str,
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        if prefix.starts_with(layout::BLOBS) {
            let listed = self.listed.lock().unwrap();
            let _ = self
                .more
                .wait_timeout_while(listed, std::time::Duration::from_secs(10), |n| {
                    *n < self.wait_for
                })
                .unwrap();
        }
        self.inner.list_lean(prefix, lean, visit, note)
    }
    fn list_below(
        &self,
        prefix: &str,
        folders: &[String],
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let mut counted = |e| {
            *self.listed.lock().unwrap() += 1;
            self.more.notify_all();
            visit(e)
        };
        self.inner
            .list_below(prefix, folders, lean, &mut counted, note)
    }
    fn parallelism(&self) -> usize {
        4
    }
    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.child_folders(prefix)
    }
    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        self.inner.read(key, limit)
    }
    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        self.inner.read_chunks(key, chunk)
    }
    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        self.inner.delete(keys)
    }
    fn describe(&self) -> String {
        "late blobs".to_owned()
    }
    fn moves(&self) -> Option<&dyn crate::storage::Moves> {
        None
    }
    fn versions(&self) -> Option<&dyn crate::storage::Versions> {
        None
    }
    fn multipart(&self) -> Option<&dyn crate::storage::Multipart> {
        None
    }
    fn lock(&self) -> &dyn crate::storage::Lock {
        self.inner.lock()
    }
}

#[test]
fn repositories_listed_before_the_blob_table_is_there_are_taken_in_once_it_is() {
    // More repository entries than the walk holds while it waits: it holds some, waits for
    // the table, then goes on.
    let repos: Vec<String> = (0..HELD_AT_MOST / 2 + 500)
        .map(|i| format!("team{}/r{i}", i % 7))
        .collect();
    let s = MemStorage::new();
    for repo in &repos {
        put_repository(&s, repo);
    }
    let unstored = Digest::of(b"not stored");
    s.put(
        &layout::layer_link("team0/r0", &unstored),
        unstored.to_string().into_bytes(),
    );
    let first = scan(&s, Detail::Targets, &Progress::new()).unwrap();
    let shown = |inv: &Inventory| format!("{:?} {:?}", inv.repositories, inv.problems);
    for wait_for in [1, HELD_AT_MOST] {
        let late = LateBlobs {
            inner: &s,
            wait_for,
            listed: Default::default(),
            more: Default::default(),
        };
        let inv = scan(&late, Detail::Targets, &Progress::new()).unwrap();
        assert!(*late.listed.lock().unwrap() > HELD_AT_MOST, "{wait_for}");
        assert_eq!(inv.blobs.len(), repos.len());
        assert_eq!(inv.repositories.len(), repos.len());
        assert!(
            shown(&inv) == shown(&first),
            "{wait_for}: not the scan of the blobs first"
        );
        let r0 = (inv.repositories.iter())
            .find(|r| r.name == "team0/r0")
            .unwrap();
        assert_eq!(r0.layer_links.len(), 1);
        assert_eq!(r0.dangling_layer_links, vec![unstored]);
    }
}

#[test]
fn a_repository_listed_in_two_parts_is_refused() {
    // Five top-level folders, listed two to a shard with one thread: `r0` and `r2` each come
    // in two parts.
    let s = MemStorage::new();
    for repo in ["r0", "r1", "r2", "r3", "r4"] {
        put_repository(&s, repo);
    }
    let whole = scan(&s, Detail::Targets, &Progress::new()).unwrap();
    assert_eq!(whole.repositories.len(), 5);
    let e = scan(&Split(s), Detail::Targets, &Progress::new()).unwrap_err();
    assert_eq!(e.key(), format!("{}r0/", layout::REPOSITORIES), "{e}");
    assert!(e.to_string().contains("two parts"), "{e}");
}
