//! The filesystem backend: a store is a folder (the registry's `rootdirectory`).
//!
//! Symbolic links are never followed: a listing reports them as notes and skips them, reads open with
//! `O_NOFOLLOW`, and deletes only remove keys that a listing produced, so no path outside the root is
//! ever touched. After a file is deleted its folder is removed when it became empty, as the reference
//! removes a blob's whole `<hex>/` folder.

mod walk;

use super::{
    Entry, HeldLock, Lean, ListingNote, Lock, LockToken, Moves, Multipart, ReadResult, Storage,
    StorageError, Versions,
};
use crate::model::layout::{self, Leaf};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::CStr;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use walk::Walk;

mod ahead;

/// A store in a local folder.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
    /// Set by [`Storage::stop_listings_on`].
    stop: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
}

impl FsStorage {
    /// A store rooted at `root`, which must be a folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStorage, StorageError> {
        let root = root.into();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(FsStorage {
                root,
                stop: Default::default(),
            }),
            Ok(_) => Err(StorageError::Other {
                key: root.display().to_string(),
                message: "is not a folder".into(),
            }),
            Err(e) => Err(io_error(&root.display().to_string(), e)),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Refuses a `key` to write to when a folder on its way from the root is a symbolic link: a
    /// write never follows one out of the store.
    fn no_link_on_the_way(&self, key: &str) -> Result<(), StorageError> {
        let mut at = self.root.clone();
        let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(StorageError::Symlink {
                        key: at
                            .strip_prefix(&self.root)
                            .unwrap_or(&at)
                            .display()
                            .to_string(),
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error(key, e)),
            }
        }
        Ok(())
    }

    /// The metadata of the object `key` itself; a symbolic link is an error, never followed.
    fn metadata(&self, key: &str) -> Result<std::fs::Metadata, StorageError> {
        match std::fs::symlink_metadata(self.path(key)) {
            Ok(m) if m.file_type().is_symlink() => Err(StorageError::Symlink {
                key: key.to_owned(),
            }),
            Ok(m) => Ok(m),
            Err(e) => Err(io_error(key, e)),
        }
    }
}

fn errno_error(key: &str, e: Errno) -> StorageError {
    io_error(key, e.into())
}

fn io_error(key: &str, e: std::io::Error) -> StorageError {
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound {
            key: key.to_owned(),
        },
        _ if e.raw_os_error() == Some(libc::ELOOP) => StorageError::Symlink {
            key: key.to_owned(),
        },
        _ => StorageError::Other {
            key: key.to_owned(),
            message: e.to_string(),
        },
    }
}

/// How many files [`Storage::read_each`] asks the kernel for at once.
const READ_BATCH: usize = 16;

/// Whether a read of the open file `fd` would find its first bytes in memory rather than wait for
/// the disk; false where the kernel cannot tell.
fn in_memory(fd: BorrowedFd<'_>) -> bool {
    let mut byte = [0u8; 1];
    let bufs = &mut [std::io::IoSliceMut::new(&mut byte)];
    rustix::io::preadv2(fd, bufs, 0, rustix::io::ReadWriteFlags::NOWAIT).is_ok()
}

/// Asks the kernel to read the first `len` bytes of each of `files` (opened as the iterator is
/// taken, closed after) into memory without waiting for them, unless the first is in memory
/// already (a warm store: the rest are not even opened). Advice only: a read without it is as
/// right, only slower.
fn ask_for<F: AsFd>(files: impl Iterator<Item = F>, len: u64) {
    for (i, file) in files.enumerate() {
        if i == 0 && in_memory(file.as_fd()) {
            return;
        }
        let _ = rustix::fs::fadvise(
            file,
            0,
            std::num::NonZeroU64::new(len),
            rustix::fs::Advice::WillNeed,
        );
    }
}

impl FsStorage {
    /// Opens the file `key` to read it, never through a symbolic link.
    fn open_to_read(&self, key: &str) -> Result<std::fs::File, StorageError> {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.path(key))
            .map_err(|e| io_error(key, e))
    }
}

impl Storage for FsStorage {
    fn stop_listings_on(&self, flag: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let _ = self.stop.set(flag);
    }

    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        self.list_lean(prefix, Lean::default(), visit, note)
    }

    /// On a cold disk, what is left out is most of a walk's reads: named blob data costs no inode
    /// (a folder's `data` is taken to be there; [`Storage::stat`] tells when it is not), and a tag
    /// without its index costs its `current/link` only.
    fn list_lean(
        &self,
        prefix: &str,
        lean: Lean,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let (dir, name_prefix) = match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(self.path(dir), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(errno_error(dir, e)),
        };
        let mut walk = Walk {
            visit,
            note,
            stop: self.stop.get().map(|s| s.as_ref()),
            ahead: None,
            lean,
        };
        let mut key = dir.to_owned();
        walk.folder(fd, &mut key, name_prefix, 0)
            .map_err(|e| errno_error(dir, e))
    }

    fn stat(&self, key: &str) -> Result<Option<(u64, Option<SystemTime>)>, StorageError> {
        let m = self.metadata(key)?;
        if !m.is_file() {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        }
        Ok(Some((m.len(), m.modified().ok())))
    }

    fn child_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let rd = match std::fs::read_dir(self.path(prefix)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(prefix, e)),
        };
        let mut out = Vec::new();
        for child in rd {
            let child = child.map_err(|e| io_error(prefix, e))?;
            if child.file_type().map(|t| t.is_dir()).unwrap_or(false)
                && let Some(name) = child.file_name().to_str()
            {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        let mut file = self.open_to_read(key)?;
        // No fstat for the size: links and manifests are small, and reading up to one byte past the
        // limit tells a too-large file just as well.
        let mut buf = Vec::with_capacity(limit.min(8 << 10) as usize + 1);
        (&mut file)
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| io_error(key, e))?;
        if buf.len() as u64 > limit {
            return Err(StorageError::TooLarge {
                key: key.to_owned(),
                limit,
            });
        }
        Ok(buf)
    }

    /// Reads in batches: a thread asks the kernel for the contents of a batch's files all at once
    /// (an open each, which waits for the folder that names the file, and a hint), then reads them,
    /// so that it waits for the disk once for the batch's contents rather than once for each. The
    /// hinted files are closed at once: no batch holds descriptors, whatever the threads. A batch
    /// whose first file is in memory already is read without hints (a warm store).
    fn read_each(&self, keys: &[String], limit: u64, done: &(dyn Fn(usize, ReadResult) + Sync)) {
        use rayon::prelude::*;
        keys.par_chunks(READ_BATCH)
            .enumerate()
            .for_each(|(c, batch)| {
                let opened = batch.iter().filter_map(|key| self.open_to_read(key).ok());
                ask_for(opened, limit.saturating_add(1));
                for (j, key) in batch.iter().enumerate() {
                    done(c * READ_BATCH + j, self.read(key, limit));
                }
            });
    }

    fn read_chunks(&self, key: &str, chunk: &mut dyn FnMut(&[u8])) -> Result<(), StorageError> {
        let mut file = self.open_to_read(key)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => chunk(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(key, e)),
            }
        }
    }

    fn delete(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        keys.iter()
            .map(|key| {
                let path = self.path(key);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(key, e)),
                }
                // The folder that held the object (`<hex>/`) goes too when it is now empty; a folder
                // that still holds anything stays, so this never removes data.
                if let Some(parent) = path.parent()
                    && parent != self.root
                {
                    let _ = std::fs::remove_dir(parent);
                }
                Ok(())
            })
            .collect()
    }

    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError> {
        Ok(self.metadata(key)?.modified().ok())
    }

    fn remove_folder_if_empty(&self, prefix: &str) -> Result<bool, StorageError> {
        match std::fs::remove_dir(self.path(prefix.trim_end_matches('/'))) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => Ok(false),
            Err(e) => Err(io_error(prefix, e)),
        }
    }

    fn remove_empty_folders(&self, prefix: &str) -> Result<bool, StorageError> {
        /// True when `dir` is gone afterwards.
        fn prune(dir: &Path) -> std::io::Result<bool> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                // file_type does not follow symbolic links: a link to a folder is never entered.
                if entry.file_type()?.is_dir() {
                    match prune(&entry.path()) {
                        // Gone meanwhile: nothing to remove there.
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        r => {
                            r?;
                        }
                    }
                }
            }
            match std::fs::remove_dir(dir) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
                Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => Ok(false),
                Err(e) => Err(e),
            }
        }
        match prune(&self.path(prefix.trim_end_matches('/'))) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) => Err(io_error(prefix, e)),
            Ok(gone) => Ok(gone),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn identity(&self) -> String {
        std::fs::canonicalize(&self.root)
            .unwrap_or_else(|_| self.root.clone())
            .display()
            .to_string()
    }

    /// Sixteen threads a core (at most 64): a thread that waits on a folder or inode read from disk
    /// (cold cache) or on the kernel's directory locks leaves its core to another, and the disk
    /// sees more reads at once. Measured on g164k (2 cores, BENCHMARKS.md): cold 11.4 s with 8
    /// threads, 9.8 s with 32, no better with 64 or 128; warm 1.2 s and 1.05 s.
    fn parallelism(&self) -> usize {
        (16 * std::thread::available_parallelism().map_or(2, |n| n.get())).min(64)
    }

    fn lists_side_by_side(&self) -> bool {
        true
    }

    fn moves(&self) -> Option<&dyn Moves> {
        Some(self)
    }

    fn versions(&self) -> Option<&dyn Versions> {
        None
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        None
    }

    fn lock(&self) -> &dyn Lock {
        self
    }
}

impl Moves for FsStorage {
    /// A rename (`RENAME_NOREPLACE`, so never over an object that is there), with the target's
    /// folders made first; one that would cross filesystems is refused, since it would copy. The
    /// source's folder goes when it became empty, as after a delete.
    fn move_object(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        self.rename_object(from, to, true)
    }

    fn move_object_keeping_folder(&self, from: &str, to: &str) -> Result<u64, StorageError> {
        self.rename_object(from, to, false)
    }

    fn write_object(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.write_whole(key, bytes)
    }

    fn move_cost(&self) -> &'static str {
        "one rename a key, no data copied; the bytes stay on the disk until the run is purged"
    }
}

impl FsStorage {
    /// The move: see [`Moves::move_object`]; the source's folder goes when `tidy` and it became
    /// empty.
    fn rename_object(&self, from: &str, to: &str, tidy: bool) -> Result<u64, StorageError> {
        let meta = self.metadata(from)?;
        if !meta.is_file() {
            return Err(StorageError::Other {
                key: from.to_owned(),
                message: "is not a file; only files are moved".into(),
            });
        }
        self.no_link_on_the_way(from)?;
        self.no_link_on_the_way(to)?;
        let (source, target) = (self.path(from), self.path(to));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(to, e))?;
        }
        let renamed = rustix::fs::renameat_with(
            rustix::fs::CWD,
            &source,
            rustix::fs::CWD,
            &target,
            rustix::fs::RenameFlags::NOREPLACE,
        );
        match renamed {
            Ok(()) => {}
            Err(Errno::EXIST) => return Err(StorageError::Exists { key: to.to_owned() }),
            Err(Errno::XDEV) => {
                return Err(StorageError::Other {
                    key: to.to_owned(),
                    message: format!(
                        "is on another filesystem than {from}: a move there would copy the data; \
                         keep the trash on the store's own filesystem"
                    ),
                });
            }
            Err(e) => return Err(io_error(from, e.into())),
        }
        if let Some(parent) = source.parent()
            && parent != self.root
            && tidy
        {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(meta.len())
    }

    /// Written beside its place under a temporary name, then renamed over it.
    fn write_whole(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.no_link_on_the_way(key)?;
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(key, e))?;
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io_error(key, e)
            })
    }
}

impl Lock for FsStorage {
    /// An advisory `flock` on the store's own folder: no file is created, and the kernel releases it
    /// when the process ends, however it ends. The holder is found in `/proc/locks` by the folder's
    /// inode, and described from `/proc/<pid>`.
    fn try_lock(&self, _record: &[u8]) -> Result<Result<LockToken, HeldLock>, StorageError> {
        let shown = self.root.display().to_string();
        let fd = rustix::fs::open(
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_error(&shown, e))?;
        match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Ok(LockToken(Box::new(fd)))),
            Err(Errno::WOULDBLOCK) => {
                let st = rustix::fs::fstat(&fd).map_err(|e| errno_error(&shown, e))?;
                let record = flock_holder(&st).map(|h| serde_json::to_vec(&h).expect("serializes"));
                Ok(Err(HeldLock {
                    location: format!("flock on {shown}"),
                    record,
                    renewed: None,
                    expires: false,
                    etag: None,
                }))
            }
            Err(e) => Err(errno_error(&shown, e)),
        }
    }

    fn break_lock(&self, held: &HeldLock) -> Result<(), StorageError> {
        Err(StorageError::Other {
            key: held.location.clone(),
            message: "a flock ends only with its process".into(),
        })
    }

    fn unlock(&self, token: LockToken) -> Result<(), StorageError> {
        // Closing the descriptor releases the flock.
        drop(token);
        Ok(())
    }
}

/// The process holding a `flock` on the file `st` describes, from `/proc/locks`, with its command
/// line and start time from `/proc/<pid>`; `None` when it is not visible (another host over NFS,
/// another PID namespace).
fn flock_holder(st: &rustix::fs::Stat) -> Option<super::lock_record::Holder> {
    let dev = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(st.st_dev),
        rustix::fs::minor(st.st_dev),
        st.st_ino
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"
    let pid: u32 = locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&dev.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let command = std::fs::read(proc.join("cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let started = process_start(pid).unwrap_or(UNIX_EPOCH);
    Some(super::lock_record::Holder::on_this_host(
        pid, started, command,
    ))
}

/// When process `pid` started: its start in clock ticks after boot (`/proc/<pid>/stat`, field 22)
/// plus the boot time (`/proc/stat`, `btime`).
fn process_start(pid: u32) -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
    let hz = rustix::param::clock_ticks_per_second();
    Some(UNIX_EPOCH + Duration::from_secs(boot) + Duration::from_millis(ticks * 1000 / hz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn store() -> (tempfile::TempDir, FsStorage) {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        (dir, s)
    }

    fn write(dir: &Path, key: &str, data: &[u8]) {
        let p = dir.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn listed(s: &FsStorage, prefix: &str) -> (Vec<String>, Vec<String>) {
        let (mut keys, mut notes) = (Vec::new(), Vec::new());
        s.list(prefix, &mut |e| keys.push(e.key), &mut |n| {
            notes.push(n.key)
        })
        .unwrap();
        keys.sort();
        (keys, notes)
    }

    #[test]
    fn lists_flat_below_a_partial_name_prefix() {
        let (dir, s) = store();
        write(dir.path(), "r/ab/x/data", b"1");
        write(dir.path(), "r/ac/y/data", b"22");
        write(dir.path(), "r/b/z", b"333");
        assert_eq!(listed(&s, "r/a").0, vec!["r/ab/x/data", "r/ac/y/data"]);
        assert_eq!(listed(&s, "r/").0.len(), 3);
        assert!(listed(&s, "missing/").0.is_empty());
        assert_eq!(s.child_folders("r/").unwrap(), vec!["ab", "ac", "b"]);
    }

    #[test]
    fn a_wide_tree_walked_ahead_lists_each_key_once_and_each_repository_together() {
        let _alone = ahead::HELD_BY_TESTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (dir, s) = store();
        let hex = |i: usize, c: char| format!("{i:04}{}", c.to_string().repeat(60));
        let mut want = Vec::new();
        let mut add = |key: String, content: &[u8]| {
            write(dir.path(), &key, content);
            want.push(key);
        };
        // Forty repositories in one namespace folder; one with more revisions than are read
        // one by one, one with more layer links than a helper keeps.
        for r in 0..40 {
            let repo = format!("{}ns/app{r}/", layout::REPOSITORIES);
            let (revisions, layers) = match r {
                7 => (70, 2),
                9 => (1, 600),
                _ => (2, 3),
            };
            for i in 0..revisions {
                add(
                    format!("{repo}_manifests/revisions/sha256/{}/link", hex(i, 'a')),
                    b"l",
                );
            }
            for i in 0..layers {
                add(format!("{repo}_layers/sha256/{}/link", hex(i, 'b')), b"");
            }
            add(format!("{repo}_manifests/tags/v{r}/current/link"), b"t");
        }
        let mut got = Vec::new();
        let mut notes = Vec::new();
        s.list_lean(
            layout::REPOSITORIES,
            Lean {
                unstated_blobs: true,
                no_tag_index: true,
            },
            &mut |e| got.push(e.key),
            &mut |n| notes.push(n),
        )
        .unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        // Each repository's keys come together, whichever thread read them.
        let repo_of = |k: &String| k.split("/_").next().unwrap().to_owned();
        let mut order: Vec<String> = got.iter().map(repo_of).collect();
        order.dedup();
        assert_eq!(order.len(), 40, "a repository's keys came in parts");
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn layout_shortcuts_read_links_in_passing_and_fall_back_to_walking() {
        let (dir, s) = store();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let repo = format!("{}team/app/", layout::REPOSITORIES);
        write(
            dir.path(),
            &format!("{repo}_manifests/tags/v1/current/link"),
            b"sha256:x",
        );
        write(
            dir.path(),
            &format!("{repo}_manifests/tags/v1/index/sha256/{a}/link"),
            b"",
        );
        write(
            dir.path(),
            &format!("{repo}_manifests/revisions/sha256/{a}/link"),
            b"rev",
        );
        // A revision folder whose link is gone is walked, and what else it holds is found.
        write(
            dir.path(),
            &format!("{repo}_manifests/revisions/sha256/{b}/other"),
            b"",
        );
        std::fs::create_dir_all(dir.path().join(format!("{repo}_layers/sha256/{b}"))).unwrap();
        let mut entries = Vec::new();
        s.list(layout::REPOSITORIES, &mut |e| entries.push(e), &mut |n| {
            panic!("unexpected note {n:?}")
        })
        .unwrap();
        entries.sort_by(|x, y| x.key.cmp(&y.key));
        let got: Vec<(String, Option<&[u8]>, bool)> = entries
            .iter()
            .map(|e| {
                let key = e.key.strip_prefix(&repo).unwrap().to_owned();
                (key, e.content.as_deref(), e.modified.is_some())
            })
            .collect();
        let want: Vec<(String, Option<&[u8]>, bool)> = vec![
            (format!("_layers/sha256/{b}/link"), None, false),
            (
                format!("_manifests/revisions/sha256/{a}/link"),
                Some(b"rev"),
                false,
            ),
            (format!("_manifests/revisions/sha256/{b}/other"), None, true),
            (
                "_manifests/tags/v1/current/link".into(),
                Some(b"sha256:x"),
                true,
            ),
            (
                format!("_manifests/tags/v1/index/sha256/{a}/link"),
                None,
                false,
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_lean_listing_names_blob_data_without_stating_it_and_skips_tag_indexes() {
        let (dir, s) = store();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let tag = format!("{}r/_manifests/tags/v1/", layout::REPOSITORIES);
        write(dir.path(), &format!("{tag}current/link"), b"sha256:x");
        write(dir.path(), &format!("{tag}index/sha256/{a}/link"), b"");
        write(
            dir.path(),
            &format!("{}aa/{a}/data", layout::BLOBS),
            b"12345",
        );
        // A blob folder without its data is named all the same; stat says it is not there.
        std::fs::create_dir_all(dir.path().join(format!("{}bb/{b}", layout::BLOBS))).unwrap();
        let list = |lean: Lean| {
            let mut entries = Vec::new();
            let no_note = &mut |n| panic!("unexpected note {n:?}");
            s.list_lean("docker/", lean, &mut |e| entries.push(e), no_note)
                .unwrap();
            entries.sort_by(|x, y| x.key.cmp(&y.key));
            entries
                .into_iter()
                .map(|e| (e.key, e.size, e.modified.is_some()))
                .collect::<Vec<_>>()
        };
        let data = |h: &str| format!("{}{}/{h}/data", layout::BLOBS, &h[..2]);
        let current = (format!("{tag}current/link"), 8, true);
        let index = (format!("{tag}index/sha256/{a}/link"), 0, false);
        assert_eq!(
            list(Lean::default()),
            vec![(data(&a), 5, true), current.clone(), index.clone()]
        );
        let lean = Lean {
            unstated_blobs: true,
            no_tag_index: true,
        };
        assert_eq!(
            list(lean),
            vec![(data(&a), 0, false), (data(&b), 0, false), current]
        );
        assert_eq!(s.stat(&data(&a)).unwrap().map(|(size, _)| size), Some(5));
        assert!(s.stat(&data(&b)).unwrap_err().is_not_found());
    }

    #[test]
    fn symlinks_are_noted_and_never_followed_or_read() {
        let (dir, s) = store();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret/data", b"outside");
        write(dir.path(), "r/real/data", b"in");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("r/linkdir"))
            .unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret/data"),
            dir.path().join("r/real/link"),
        )
        .unwrap();
        let (keys, notes) = listed(&s, "r/");
        assert_eq!(keys, vec!["r/real/data"]);
        assert_eq!(notes.len(), 2);
        assert!(matches!(
            s.read("r/real/link", 100),
            Err(StorageError::Symlink { .. })
        ));
        // Deleting the link removes the link, not what it points at.
        assert!(s.delete(&["r/real/link".into()])[0].is_ok());
        assert!(outside.path().join("secret/data").exists());
    }

    #[test]
    fn read_enforces_its_limit_and_delete_converges() {
        let (dir, s) = store();
        write(dir.path(), "a/b/data", b"0123456789");
        assert!(matches!(
            s.read("a/b/data", 5),
            Err(StorageError::TooLarge { .. })
        ));
        assert_eq!(s.read("a/b/data", 10).unwrap(), b"0123456789");
        assert!(s.read("a/nope", 10).unwrap_err().is_not_found());
        let r = s.delete(&["a/b/data".into(), "a/b/data".into()]);
        assert!(r.iter().all(Result::is_ok));
        assert!(!dir.path().join("a/b").exists(), "empty folder left behind");
        assert!(dir.path().join("a").exists());
    }
}
