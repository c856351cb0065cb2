//! One contract for every backend of the storage seam, run against the in-memory store, a filesystem
//! and S3 (moto): what a listing returns and leaves out, folders, reads and their limits, deletes
//! ("already gone" is a success), odd key names. The collector is written against this contract, so a
//! backend that breaks it breaks the collector's promises.

mod support;

use regsweep::storage::fs::FsStorage;
use regsweep::storage::mem::MemStorage;
use regsweep::storage::s3_inventory::Inventoried;
use regsweep::storage::trashing::Trashing;
use regsweep::storage::{Entry, Moves, Storage, StorageError};
use std::collections::{BTreeMap, BTreeSet};

const V2: &str = "docker/registry/v2/";

/// A backend under test: a store, and a way to write into it as the registry would.
trait Fixture {
    fn name(&self) -> &'static str;
    fn put(&self, objects: &[(String, Vec<u8>)]);
    fn storage(&self) -> &dyn Storage;
}

struct Mem(MemStorage);

impl Fixture for Mem {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn put(&self, objects: &[(String, Vec<u8>)]) {
        for (k, b) in objects {
            self.0.put(k, b.clone());
        }
    }
    fn storage(&self) -> &dyn Storage {
        &self.0
    }
}

struct Fs {
    root: std::path::PathBuf,
    storage: FsStorage,
}

impl Fixture for Fs {
    fn name(&self) -> &'static str {
        "filesystem"
    }
    fn put(&self, objects: &[(String, Vec<u8>)]) {
        for (k, b) in objects {
            let p = self.root.join(k);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        }
    }
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }
}

struct S3 {
    server: support::s3::S3Server,
    storage: regsweep::storage::s3::S3Storage,
}

impl Fixture for S3 {
    fn name(&self) -> &'static str {
        "s3"
    }
    fn put(&self, objects: &[(String, Vec<u8>)]) {
        // The library's S3 store keeps its keys under `store/` (see support::s3).
        let objects: Vec<(String, Vec<u8>)> = objects
            .iter()
            .map(|(k, b)| (format!("store/{k}"), b.clone()))
            .collect();
        self.server.put_objects("contract", &objects);
    }
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }
}

struct Gcs {
    _server: support::gcs::GcsServer,
    storage: regsweep::storage::gcs::GcsStorage,
    /// The same bucket, written through a second client (as the registry writes, beside regsweep).
    writer: regsweep::storage::gcs::GcsStorage,
}

impl Fixture for Gcs {
    fn name(&self) -> &'static str {
        "gcs"
    }
    fn put(&self, objects: &[(String, Vec<u8>)]) {
        for (k, b) in objects {
            self.writer.write_object(&format!("store/{k}"), b).unwrap();
        }
    }
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }
}

struct Azure {
    _server: support::azure::AzureServer,
    storage: regsweep::storage::azure::AzureStorage,
    /// The same container, written through a second client.
    writer: regsweep::storage::azure::AzureStorage,
}

impl Fixture for Azure {
    fn name(&self) -> &'static str {
        "azure"
    }
    fn put(&self, objects: &[(String, Vec<u8>)]) {
        for (k, b) in objects {
            self.writer.write_object(&format!("store/{k}"), b).unwrap();
        }
    }
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }
}

const ODD: &str = "docker/registry/v2/odd/sp ace+plus=eq%25pct&amp/ünï~:@.link";

fn objects() -> Vec<(String, Vec<u8>)> {
    [
        ("a/one", b"1".to_vec()),
        ("a/b/two", b"22".to_vec()),
        // Sorts before `a/` ('-' < '/'), and `ab/` after it: neither is below `a/`.
        ("a-b/three", b"333".to_vec()),
        ("ab/four", b"4444".to_vec()),
        ("big", vec![7u8; 300]),
    ]
    .into_iter()
    .map(|(k, b)| (format!("{V2}{k}"), b))
    .chain([(ODD.to_owned(), b"odd".to_vec())])
    .collect()
}

fn list(s: &dyn Storage, prefix: &str) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    s.list(
        prefix,
        &mut |e| {
            out.insert(e.key.clone(), e);
        },
        &mut |n| panic!("{prefix}: unexpected note {n:?}"),
    )
    .unwrap_or_else(|e| panic!("{prefix}: {e}"));
    out
}

fn keys(entries: &BTreeMap<String, Entry>) -> BTreeSet<&str> {
    entries.keys().map(String::as_str).collect()
}

fn contract(f: &dyn Fixture) {
    let who = f.name();
    f.put(&objects());
    let s = f.storage();

    // A listing returns every key below the prefix with its size, and nothing beside it.
    let a = list(s, &format!("{V2}a/"));
    assert_eq!(
        keys(&a),
        BTreeSet::from(["docker/registry/v2/a/b/two", "docker/registry/v2/a/one"]),
        "{who}"
    );
    assert_eq!(a["docker/registry/v2/a/b/two"].size, 2, "{who}");
    assert_eq!(a["docker/registry/v2/a/one"].size, 1, "{who}");
    let everything = list(s, "");
    assert_eq!(
        everything.len(),
        objects().len(),
        "{who}: {:?}",
        keys(&everything)
    );
    assert!(
        everything.contains_key(ODD),
        "{who}: odd names list as written"
    );

    // Folders: the next component of every deeper key, files left out.
    let dirs: BTreeSet<String> = s.child_folders(V2).unwrap().into_iter().collect();
    let want: BTreeSet<String> = ["a", "a-b", "ab", "odd"].map(String::from).into();
    assert_eq!(dirs, want, "{who}");
    assert!(
        s.child_folders(&format!("{V2}nothing/"))
            .unwrap()
            .is_empty(),
        "{who}"
    );

    // Neighbouring folders in key order list as each would alone.
    let mut grouped = BTreeSet::new();
    s.list_below(
        V2,
        &["a-b".to_owned(), "a".to_owned()],
        Default::default(),
        &mut |e| {
            grouped.insert(e.key);
        },
        &mut |n| panic!("{n:?}"),
    )
    .unwrap();
    let alone: BTreeSet<String> = list(s, &format!("{V2}a-b/"))
        .into_keys()
        .chain(list(s, &format!("{V2}a/")).into_keys())
        .collect();
    assert_eq!(grouped, alone, "{who}");

    // A folder's keys come together, at every depth, in `list` and in `list_below`: the scan
    // finishes a repository once the listing leaves its folder.
    let nested: Vec<(String, Vec<u8>)> = [
        "n/0x/_layers/l",
        "n/_layers/l",
        "n/_manifests/m",
        "n/b/_layers/l",
        "n/b/c/_layers/l",
        "n/b/_manifests/m",
        "n/_uploads/u",
        "n-1/_layers/l",
        "n.z/_layers/l",
    ]
    .iter()
    .map(|k| (format!("{V2}{k}"), b"x".to_vec()))
    .collect();
    f.put(&nested);
    let mut order = Vec::new();
    s.list(
        V2,
        &mut |e| order.push(e.key[V2.len()..].to_owned()),
        &mut |n| panic!("{n:?}"),
    )
    .unwrap();
    assert_together(&order, who);
    let mut order = Vec::new();
    s.list_below(
        V2,
        &["n-1".to_owned(), "n.z".to_owned(), "n".to_owned()],
        Default::default(),
        &mut |e| order.push(e.key[V2.len()..].to_owned()),
        &mut |n| panic!("{n:?}"),
    )
    .unwrap();
    assert_eq!(order.len(), nested.len(), "{who}: {order:?}");
    assert_together(&order, who);
    let gone: Vec<String> = nested.into_iter().map(|(k, _)| k).collect();
    let deleted = s.delete(&gone);
    assert!(deleted.iter().all(Result::is_ok), "{who}: {deleted:?}");
    for folder in ["n/", "n-1/", "n.z/"] {
        assert!(
            s.remove_empty_folders(&format!("{V2}{folder}")).unwrap(),
            "{who}"
        );
    }

    // Reads: the bytes, a limit that is an error naming the key, a missing key that is NotFound.
    assert_eq!(s.read(ODD, 100).unwrap(), b"odd", "{who}");
    let big = format!("{V2}big");
    match s.read(&big, 10) {
        Err(StorageError::TooLarge { key, limit }) => {
            assert_eq!((key.as_str(), limit), (big.as_str(), 10), "{who}")
        }
        other => panic!("{who}: {other:?}"),
    }
    let mut streamed = Vec::new();
    s.read_chunks(&big, &mut |c| streamed.extend_from_slice(c))
        .unwrap();
    assert_eq!(streamed, vec![7u8; 300], "{who}");
    let missing = format!("{V2}a/missing");
    let e = s.read(&missing, 10).unwrap_err();
    assert!(e.is_not_found() && e.key() == missing, "{who}: {e}");

    // Deletes: one result per key, and a key already gone is a success.
    let one = format!("{V2}a/one");
    let results = s.delete(&[one.clone(), missing.clone(), ODD.to_owned()]);
    assert_eq!(results.len(), 3, "{who}");
    assert!(results.iter().all(Result::is_ok), "{who}: {results:?}");
    assert!(
        s.delete(std::slice::from_ref(&one))
            .iter()
            .all(Result::is_ok),
        "{who}: again"
    );
    assert_eq!(
        keys(&list(s, &format!("{V2}a/"))),
        BTreeSet::from(["docker/registry/v2/a/b/two"]),
        "{who}"
    );
    assert!(!list(s, "").contains_key(ODD), "{who}");
    assert!(s.read(&one, 10).unwrap_err().is_not_found(), "{who}");

    // A folder whose keys all went is no longer a folder once its empty folders are removed (stores
    // without folders have nothing to remove, and answer true).
    assert!(
        s.delete(&[format!("{V2}a/b/two")])
            .iter()
            .all(Result::is_ok)
    );
    assert!(s.remove_empty_folders(&format!("{V2}a/")).unwrap(), "{who}");
    assert!(
        s.remove_empty_folders(&format!("{V2}odd/")).unwrap(),
        "{who}"
    );
    // A folder that still holds a key stays, and a store with folders says so.
    let kept = s.remove_empty_folders(&format!("{V2}ab/")).unwrap();
    assert_eq!(kept, !who.starts_with("filesystem"), "{who}");
    assert!(
        list(s, &format!("{V2}ab/")).contains_key(&format!("{V2}ab/four")),
        "{who}"
    );
    let dirs: BTreeSet<String> = s.child_folders(V2).unwrap().into_iter().collect();
    assert_eq!(dirs, ["a-b", "ab"].map(String::from).into(), "{who}");
    assert!(s.max_delete_keys() >= 1, "{who}");
}

/// Fails when some folder's keys in `order` are not next to each other.
fn assert_together(order: &[String], who: &str) {
    let folders: BTreeSet<&str> = order
        .iter()
        .flat_map(|k| k.match_indices('/').map(|(i, _)| &k[..=i]))
        .collect();
    for folder in folders {
        let inside: Vec<usize> = (0..order.len())
            .filter(|&i| order[i].starts_with(folder))
            .collect();
        assert_eq!(
            inside.last().unwrap() - inside[0] + 1,
            inside.len(),
            "{who}: the keys of {folder} are not together in {order:?}"
        );
    }
}

#[test]
fn the_in_memory_store_keeps_the_storage_contract() {
    let f = Mem(MemStorage::new());
    contract(&f);
    moves_without_overwriting(&f);
    heals_what_new_links_need(&f);
    accounts_for_every_byte(&f);
}

#[test]
fn a_filesystem_store_keeps_the_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(dir.path()).unwrap();
    let f = Fs {
        root: dir.path().to_owned(),
        storage,
    };
    contract(&f);
    moves_without_overwriting(&f);
    heals_what_new_links_need(&f);
    accounts_for_every_byte(&f);
}

/// An online run's heal ([`regsweep::pipeline::execute::heal`]): an image moved into a trash run,
/// then a revision link and a tag written, as the registry writes them after a check that found
/// the image; a heal pass puts back what they need (data, then links) and nothing else, and the
/// run's record counts what stays.
fn heals_what_new_links_need(f: &dyn Fixture) {
    use regsweep::model::digest::Digest;
    use regsweep::model::layout;
    use regsweep::pipeline::execute::{heal, trash};
    use std::time::{Duration, SystemTime};
    let s = f.storage();
    let (config, layer, stray) = (b"{}".to_vec(), vec![7u8; 5000], b"stray".to_vec());
    let (c, l, x) = (Digest::of(&config), Digest::of(&layer), Digest::of(&stray));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.to_string(), "size": 5000}],
    })
    .to_string()
    .into_bytes();
    let m = Digest::of(&manifest);
    let repo = "heal/img";
    let link = |d: &Digest| d.to_string().into_bytes();
    let swept = vec![
        (layout::blob_data(&m), manifest.clone()),
        (layout::blob_data(&c), config.clone()),
        (layout::blob_data(&l), layer.clone()),
        (layout::blob_data(&x), stray.clone()),
        (layout::layer_link(repo, &c), link(&c)),
        (layout::layer_link(repo, &l), link(&l)),
    ];
    f.put(&swept);
    let mut run =
        trash::TrashRun::open(s, "gc", Duration::from_secs(3600), SystemTime::now()).unwrap();
    let t0 = run.store_time(s).unwrap();
    run.record.online = Some(trash::OnlineRecord {
        t0_unix_nanos: heal::unix_nanos(t0),
        heal_since_unix_nanos: heal::unix_nanos(t0),
        settle_seconds: 1,
        ..trash::OnlineRecord::default()
    });
    let keys: Vec<String> = swept.iter().map(|(k, _)| k.clone()).collect();
    trash::sweeping_into(s, &mut run, true, |t| t.delete(&keys)).unwrap();
    for k in &keys {
        assert!(
            s.read(k, 1).unwrap_err().is_not_found(),
            "{}: {k} moved",
            f.name()
        );
    }
    // The registry acknowledges the image: its revision, then its tag.
    f.put(&[
        (layout::revision_link(repo, &m), link(&m)),
        (layout::tag_index_entry(repo, "v1", &m), link(&m)),
        (layout::tag_current(repo, "v1"), link(&m)),
    ]);
    let healed = heal::recorded_pass(s, &mut run).unwrap();
    assert_eq!(healed.objects, 5, "{}: {healed:?}", f.name());
    assert!(
        healed.failures.is_empty() && healed.conflicts.is_empty(),
        "{healed:?}"
    );
    for (k, body) in &swept[..3] {
        assert_eq!(
            &s.read(k, u64::MAX).unwrap(),
            body,
            "{}: {k} back",
            f.name()
        );
    }
    for (k, body) in &swept[4..] {
        assert_eq!(
            &s.read(k, u64::MAX).unwrap(),
            body,
            "{}: {k} back",
            f.name()
        );
    }
    let stray_key = &swept[3].0;
    assert!(
        s.read(stray_key, 1).unwrap_err().is_not_found(),
        "{}: nothing needs the stray blob",
        f.name()
    );
    assert_eq!(
        (run.record.moved, run.record.bytes),
        (1, stray.len() as u64),
        "{}: the record counts what stays",
        f.name()
    );
    assert_eq!(run.record.online.as_ref().unwrap().passes, 1);
    // A second pass finds nothing more to do.
    let again = heal::recorded_pass(s, &mut run).unwrap();
    assert_eq!(again.objects, 0, "{}: {again:?}", f.name());
}

/// `du --bucket`'s accounting on every backend: a key outside the layout is named, registry keys
/// find their categories, and the categories sum to the total of what the store lists.
fn accounts_for_every_byte(f: &dyn Fixture) {
    use regsweep::pipeline::collect::bucket;
    let s = f.storage();
    f.put(&[("bucket-audit/stray.bin".to_owned(), vec![1u8; 123])]);
    let b = bucket::account(s, &|_| None).unwrap();
    assert!(
        b.outside_layout
            .examples
            .iter()
            .any(|e| e == "bucket-audit/stray.bin"),
        "{}: {:?}",
        f.name(),
        b.outside_layout
    );
    assert!(b.outside_layout.bytes >= 123, "{}", f.name());
    assert_eq!(b.categories_sum(), b.total_bytes, "{}: {b:?}", f.name());
    let mut listed = 0;
    s.list("", &mut |e| listed += e.size, &mut |_| {}).unwrap();
    assert!(
        b.current.bytes >= listed,
        "{}: every listed byte counted",
        f.name()
    );
}

/// On a GCS bucket with versioning, an overwritten object's older generation is a noncurrent
/// version in `du --bucket`'s accounting, and the total is every generation's bytes.
fn noncurrent_generations_are_accounted(server: &support::gcs::GcsServer) {
    use regsweep::pipeline::collect::bucket;
    server.create_versioned_bucket("versioned");
    let storage = server.storage("versioned", "store/");
    let writer = server.storage("versioned", "");
    let key = format!("store/{V2}blobs/sha256/notes.txt");
    for body in [vec![1u8; 100], vec![2u8; 40]] {
        writer.moves().unwrap().write_object(&key, &body).unwrap();
    }
    let b = bucket::account(&storage, &|_| None).unwrap();
    assert!(b.versions_kept, "{b:?}");
    let noncurrent = b.noncurrent_versions.unwrap();
    assert_eq!((noncurrent.count, noncurrent.bytes), (1, 100), "{b:?}");
    assert_eq!((b.current.count, b.current.bytes), (1, 40));
    assert_eq!(b.total_bytes, 140);
    assert_eq!(b.categories_sum(), b.total_bytes);
    assert_eq!(b.by_storage_class.get("STANDARD"), Some(&140));
}

/// A store whose deletes go to the trash ([`Trashing`]): the contract holds for its users as it
/// does for the store's, and what it deleted is in its trash folder, whole.
struct Trashed {
    inner: &'static dyn Fixture,
    name: &'static str,
    trashing: Trashing<'static>,
}

const TRASH: &str = "regsweep-trash/run/";

impl Trashed {
    fn over(inner: Box<dyn Fixture>, name: &'static str) -> Trashed {
        let inner: &'static dyn Fixture = Box::leak(inner);
        Trashed {
            inner,
            name,
            trashing: Trashing::new(inner.storage(), TRASH.to_owned()),
        }
    }
}

impl Fixture for Trashed {
    fn name(&self) -> &'static str {
        self.name
    }
    fn put(&self, objects: &[(String, Vec<u8>)]) {
        self.inner.put(objects)
    }
    fn storage(&self) -> &dyn Storage {
        &self.trashing
    }
}

fn trashed_contract(inner: Box<dyn Fixture>, name: &'static str) {
    let f = Trashed::over(inner, name);
    contract(&f);
    // Every key the contract deleted (a folder's nine, then `a/one`, the odd name and `a/b/two`)
    // went to the trash; the key already gone was a success and moved nothing.
    let (moved, _) = f.trashing.moved();
    assert_eq!(moved, 12, "{name}");
    let inner = f.inner.storage();
    assert_eq!(
        inner.read(&format!("{TRASH}{ODD}"), 100).unwrap(),
        b"odd",
        "{name}"
    );
    assert_eq!(
        inner.read(&format!("{TRASH}{V2}a/b/two"), 100).unwrap(),
        b"22"
    );
    // An incomplete multipart upload is no object: the trash refuses to abort one.
    if let Some(m) = f.storage().multipart() {
        let upload = regsweep::storage::MultipartUpload {
            key: format!("{V2}u"),
            upload_id: "1".into(),
            initiated: None,
            size: 1,
        };
        assert!(m.abort_multipart(&upload).is_err(), "{name}");
    }
    // What the trash does not change answers as the store does.
    assert_eq!(f.storage().identity(), inner.identity(), "{name}");
    assert_eq!(f.storage().parallelism(), inner.parallelism(), "{name}");
    let token = f
        .storage()
        .lock()
        .try_lock(b"{}")
        .unwrap()
        .expect("the lock is free");
    assert!(
        f.storage().lock().try_lock(b"{}").unwrap().is_err(),
        "{name}: one lock"
    );
    inner.lock().unlock(token).unwrap();
    assert!(
        inner.lock().try_lock(b"{}").unwrap().is_ok(),
        "{name}: released"
    );
}

#[test]
fn a_store_whose_deletes_go_to_the_trash_keeps_the_storage_contract() {
    trashed_contract(Box::new(Mem(MemStorage::new())), "memory through the trash");
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(dir.path()).unwrap();
    let fs = Fs {
        root: dir.path().to_owned(),
        storage,
    };
    trashed_contract(Box::new(fs), "filesystem through the trash");
}

/// A store whose blob listings come from an S3 Inventory ([`Inventoried`]): every listing, read
/// and delete away from the blobs answers as the store's own.
struct Listed {
    inventoried: Inventoried,
}

impl Fixture for Listed {
    fn name(&self) -> &'static str {
        "memory with an inventory"
    }
    /// Written through the store's own writes: the inventory wraps the store it was given.
    fn put(&self, objects: &[(String, Vec<u8>)]) {
        let moves = self.inventoried.moves().expect("memory writes objects");
        for (k, b) in objects {
            moves.write_object(k, b).unwrap();
        }
    }
    fn storage(&self) -> &dyn Storage {
        &self.inventoried
    }
}

#[test]
fn a_store_listed_from_an_inventory_keeps_the_storage_contract() {
    use md5::Digest as _;
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    // An inventory of bucket `contract` taken a minute ago that lists no blob.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"").unwrap();
    let data = gz.finish().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/a.csv.gz"), &data).unwrap();
    let md5: String = md5::Md5::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let taken = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 60_000;
    let manifest = serde_json::json!({
        "sourceBucket": "contract",
        "destinationBucket": "arn:aws:s3:::inventory",
        "version": "2016-11-30",
        "creationTimestamp": taken.to_string(),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate",
        "files": [{"key": "data/a.csv.gz", "size": data.len(), "MD5checksum": md5}],
    });
    let path = dir.path().join("c/manifest.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, manifest.to_string()).unwrap();
    let inventoried = Inventoried::open(
        Box::new(MemStorage::new()),
        regsweep::storage::s3_inventory::InventoryOptions {
            location: regsweep::storage::s3_inventory::Location::Local(path),
            bucket: "contract".into(),
            prefix: String::new(),
            s3: None,
            max_age: std::time::Duration::from_secs(3600),
            now: std::time::SystemTime::now(),
        },
    )
    .unwrap();
    let f = Listed { inventoried };
    contract(&f);
    moves_without_overwriting(&f);
    let snapshot = f
        .storage()
        .listing_snapshot()
        .expect("the inventory's snapshot");
    assert_eq!((snapshot.data_files, snapshot.blobs), (1, 0));
    assert_eq!(f.storage().describe(), "memory");
}

#[test]
fn an_s3_store_keeps_the_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::s3::S3Server::start(&dir.path().join("moto.log"));
    server.create_bucket("contract");
    let storage = server.storage("contract");
    let f = S3 { server, storage };
    contract(&f);
    heals_what_new_links_need(&f);
    accounts_for_every_byte(&f);
}

#[test]
fn a_gcs_store_keeps_the_storage_contract_and_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::gcs::GcsServer::start(&dir.path().join("gcs.log"));
    server.create_bucket("contract");
    let storage = server.storage("contract", "store/");
    let writer = server.storage("contract", "");
    let f = Gcs {
        storage,
        writer,
        _server: server,
    };
    contract(&f);
    assert!(
        f.storage()
            .versions()
            .unwrap()
            .versioning()
            .unwrap()
            .is_none(),
        "an unversioned bucket"
    );
    proves_links_and_holds_the_lock(&f, "gs://contract/store/");
    noncurrent_generations_are_accounted(&f._server);
    moves_without_overwriting(&f);
    heals_what_new_links_need(&f);
    accounts_for_every_byte(&f);
    deletes_in_batches(&f);
    let proxy = throttling(dir.path(), &f._server.endpoint());
    let via = f
        ._server
        .storage_via("contract", "store/", &proxy.endpoint());
    sends_throttled_parts_again(&f, &via, &proxy);
}

#[test]
fn an_azure_store_keeps_the_storage_contract_and_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::azure::AzureServer::start(&dir.path().join("azurite.log"));
    server.create_container("contract");
    let storage = server.storage("contract", "store/");
    let writer = server.storage("contract", "");
    let f = Azure {
        storage,
        writer,
        _server: server,
    };
    contract(&f);
    proves_links_and_holds_the_lock(&f, &format!("{}/contract/store/", f._server.service_url()));
    deletes_in_batches(&f);
    heals_what_new_links_need(&f);
    accounts_for_every_byte(&f);
    let proxy = throttling(dir.path(), &format!("http://127.0.0.1:{}", f._server.port));
    let via = f._server.storage_via("contract", "store/", proxy.port);
    sends_throttled_parts_again(&f, &via, &proxy);
    // Registry 3.0 to 3.1.1 wrote links as append blobs: no MD5 in the listing, so it is read.
    let d = regsweep::model::digest::Digest::from_hex(&"ef".repeat(32)).unwrap();
    let doubled = format!("{d}{d}");
    let key = format!("{V2}ap/link");
    f._server
        .put_append_blob("contract", &format!("store/{key}"), doubled.as_bytes());
    let l = list(f.storage(), &format!("{V2}ap/"));
    assert!(l[&key].etag.is_none(), "an append blob proves nothing");
    assert_eq!(l[&key].size, doubled.len() as u64);
    assert_eq!(f.storage().read(&key, 256).unwrap(), doubled.into_bytes());
    // Soft delete is reported with the way to get the space now.
    f._server.enable_soft_delete(7);
    let v = f
        .storage()
        .versions()
        .unwrap()
        .versioning()
        .unwrap()
        .expect("soft delete is on");
    assert_eq!(v.state.to_string(), "soft delete (7 days)");
    assert!(
        v.advice
            .unwrap()
            .contains("--enable-delete-retention false")
    );
}

/// Deletes go in batches: one request for as many keys as the backend's batch takes, each key's
/// result its own (an absent key is deleted too), and the keys are gone after.
fn deletes_in_batches(f: &dyn Fixture) {
    let s = f.storage();
    let n = s.max_delete_keys() + 5;
    let keys: Vec<String> = (0..n).map(|i| format!("{V2}batch/k{i:04}")).collect();
    let objects: Vec<(String, Vec<u8>)> = keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect();
    f.put(&objects[1..]);
    let before = s.request_counts().unwrap().delete_requests;
    let first = s.delete(&keys[..s.max_delete_keys()]);
    let second = s.delete(&keys[s.max_delete_keys()..]);
    assert_eq!(first.len() + second.len(), n);
    assert!(
        first.iter().chain(&second).all(Result::is_ok),
        "{}: {first:?} {second:?}",
        f.name()
    );
    assert_eq!(
        s.request_counts().unwrap().delete_requests - before,
        2,
        "{}: one request a batch",
        f.name()
    );
    assert!(list(s, &format!("{V2}batch/")).is_empty(), "{}", f.name());
}

/// A proxy in front of `upstream` that answers every batch of deletes with a 429 for each part.
fn throttling(dir: &std::path::Path, upstream: &str) -> support::proxy::Proxy {
    support::proxy::Proxy::start_with(dir, upstream, &["--throttle-batches"])
}

/// A batch whose every part was throttled: each delete is sent again on its own and goes, and the
/// requests count the batch and each delete sent again, on every backend that batches alike.
fn sends_throttled_parts_again(f: &dyn Fixture, via: &dyn Storage, proxy: &support::proxy::Proxy) {
    let keys: Vec<String> = (0..5).map(|i| format!("{V2}throttled/k{i}")).collect();
    let objects: Vec<(String, Vec<u8>)> = keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect();
    f.put(&objects);
    assert_eq!(
        list(f.storage(), &format!("{V2}throttled/")).len(),
        5,
        "{}",
        f.name()
    );
    let before = via.request_counts().unwrap().delete_requests;
    let results = via.delete(&keys);
    assert!(
        results.iter().all(Result::is_ok),
        "{}: {results:?}",
        f.name()
    );
    assert!(
        list(f.storage(), &format!("{V2}throttled/")).is_empty(),
        "{}: every throttled delete went on its own",
        f.name()
    );
    assert_eq!(
        via.request_counts().unwrap().delete_requests - before,
        1 + 5,
        "{}: the batch, then each part again",
        f.name()
    );
    let stats = proxy.stats();
    assert_eq!(stats["batches_throttled"], 1, "{}: {stats}", f.name());
    assert_eq!(stats["parts_throttled"], 5, "{}: {stats}", f.name());
}

/// The trash's move: the bytes arrive whole under the new key and leave the old one; a move onto
/// a key that is there is refused and changes nothing; a source that is not there is not found.
fn moves_without_overwriting(f: &dyn Fixture) {
    let s = f.storage();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let key = format!("{V2}mv/data");
    let to = format!("regsweep-trash/run/{key}");
    f.put(&[(key.clone(), body.clone())]);
    assert_eq!(
        s.moves().unwrap().move_object(&key, &to).unwrap(),
        body.len() as u64
    );
    assert!(s.read(&key, 1).unwrap_err().is_not_found());
    assert_eq!(s.read(&to, u64::MAX).unwrap(), body);
    f.put(&[(key.clone(), b"other".to_vec())]);
    assert!(matches!(
        s.moves().unwrap().move_object(&key, &to),
        Err(StorageError::Exists { .. })
    ));
    assert_eq!(s.read(&key, 100).unwrap(), b"other");
    assert_eq!(s.read(&to, u64::MAX).unwrap(), body);
    assert!(
        s.moves()
            .unwrap()
            .move_object(&format!("{V2}mv/none"), &format!("{to}2"))
            .unwrap_err()
            .is_not_found()
    );
    // A source that is gone is not found even where the target is there: a key the trash moved
    // before is deleted again as a success.
    assert!(
        s.moves()
            .unwrap()
            .move_object(&format!("{V2}mv/none"), &to)
            .unwrap_err()
            .is_not_found(),
        "{}",
        f.name()
    );
}

/// What object stores add to the contract: a listing's MD5 proves a link without reading it, and
/// the lock is held by one at a time, named, released and broken.
fn proves_links_and_holds_the_lock(f: &dyn Fixture, location: &str) {
    let s = f.storage();
    // The listing's MD5 proves a link without reading it.
    let digest = regsweep::model::digest::Digest::from_hex(&"ab".repeat(32)).unwrap();
    f.put(&[(format!("{V2}l/link"), digest.to_string().into_bytes())]);
    let l = list(s, &format!("{V2}l/"));
    let etag = l[&format!("{V2}l/link")]
        .etag
        .clone()
        .expect("an MD5 in the listing");
    assert!(s.link_proven(&etag, &digest));
    let other = regsweep::model::digest::Digest::from_hex(&"cd".repeat(32)).unwrap();
    assert!(!s.link_proven(&etag, &other));

    // The lock: one holder at a time, the second told who holds it; released, it can be taken.
    let token = s
        .lock()
        .try_lock(b"{\"holder\":1}")
        .unwrap()
        .expect("the lock is free");
    let held = s
        .lock()
        .try_lock(b"{\"holder\":2}")
        .unwrap()
        .expect_err("the lock is held");
    assert_eq!(held.record.as_deref(), Some(&b"{\"holder\":1}"[..]));
    assert!(held.location.starts_with(location), "{}", held.location);
    assert!(held.expires && held.renewed.is_some());
    s.lock().unlock(token).unwrap();
    let token = s
        .lock()
        .try_lock(b"{\"holder\":3}")
        .unwrap()
        .expect("free again");
    let held = s.lock().try_lock(b"x").unwrap().expect_err("held again");
    s.lock().break_lock(&held).unwrap();
    assert!(
        s.lock().try_lock(b"y").unwrap().is_ok(),
        "a broken lock can be taken"
    );
    drop(token);
    let counts = s.request_counts().unwrap();
    assert!(
        counts.list_requests > 0 && counts.delete_requests > 0,
        "{counts:?}"
    );
}

#[test]
fn a_filesystem_store_never_follows_a_symbolic_link_out_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("docker/registry/v2/a")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"not the store's").unwrap();
    std::fs::write(root.join("docker/registry/v2/a/real"), b"1").unwrap();
    std::os::unix::fs::symlink(
        outside.join("secret"),
        root.join("docker/registry/v2/a/link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, root.join("docker/registry/v2/a/dir")).unwrap();
    let s = FsStorage::open(&root).unwrap();
    let (mut listed, mut notes) = (BTreeSet::new(), Vec::new());
    s.list(
        V2,
        &mut |e| {
            listed.insert(e.key);
        },
        &mut |n| notes.push(n.key),
    )
    .unwrap();
    assert_eq!(
        listed,
        BTreeSet::from(["docker/registry/v2/a/real".to_owned()])
    );
    notes.sort();
    assert_eq!(
        notes,
        ["docker/registry/v2/a/dir", "docker/registry/v2/a/link"]
    );
    match s.read("docker/registry/v2/a/link", 100) {
        Err(StorageError::Symlink { key }) => assert_eq!(key, "docker/registry/v2/a/link"),
        other => panic!("{other:?}"),
    }
    // Deleting the link removes the link, never what it points at.
    assert!(
        s.delete(&["docker/registry/v2/a/link".to_owned()])
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(
        std::fs::read(outside.join("secret")).unwrap(),
        b"not the store's"
    );
}
