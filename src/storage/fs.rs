//! The filesystem backend: a store is a folder (the registry's `rootdirectory`).
//!
//! Symbolic links are never followed: a listing reports them as notes and skips them, reads open with
//! `O_NOFOLLOW`, and deletes only remove keys that a listing produced, so no path outside the root is
//! ever touched. After a file is deleted its folder is removed when it became empty, as the reference
//! removes a blob's whole `<hex>/` folder.

use super::{Entry, ListingNote, Storage, StorageError};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A store in a local folder.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// A store rooted at `root`, which must be a folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStorage, StorageError> {
        let root = root.into();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(FsStorage { root }),
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

    fn key_of(&self, path: &Path) -> Option<String> {
        path.strip_prefix(&self.root)
            .ok()?
            .to_str()
            .map(str::to_owned)
    }
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

impl Storage for FsStorage {
    fn list(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(Entry),
        note: &mut dyn FnMut(ListingNote),
    ) -> Result<(), StorageError> {
        let (dir, name_prefix) = match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let dir_path = self.path(dir);
        let children = match std::fs::read_dir(&dir_path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(dir, e)),
        };
        for child in children {
            let child = child.map_err(|e| io_error(dir, e))?;
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                note(ListingNote {
                    key: format!("{dir}{}", name.to_string_lossy()),
                    message: "name is not UTF-8; skipped".into(),
                });
                continue;
            };
            if !name.starts_with(name_prefix) {
                continue;
            }
            for item in walkdir::WalkDir::new(child.path())
                .follow_links(false)
                .follow_root_links(false)
            {
                let item = match item {
                    Ok(item) => item,
                    Err(e) => {
                        let key = e
                            .path()
                            .and_then(|p| self.key_of(p))
                            .unwrap_or_else(|| dir.into());
                        note(ListingNote {
                            key,
                            message: e.to_string(),
                        });
                        continue;
                    }
                };
                let ft = item.file_type();
                if ft.is_dir() {
                    continue;
                }
                let Some(key) = self.key_of(item.path()) else {
                    note(ListingNote {
                        key: item.path().to_string_lossy().into_owned(),
                        message: "name is not UTF-8; skipped".into(),
                    });
                    continue;
                };
                if ft.is_symlink() {
                    note(ListingNote {
                        key,
                        message: "symbolic link; not followed".into(),
                    });
                    continue;
                }
                match item.metadata() {
                    Ok(m) => visit(Entry {
                        key,
                        size: m.len(),
                        modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        etag: None,
                    }),
                    // Vanished between readdir and stat: it is simply not there any more.
                    Err(e) if e.io_error().map(|e| e.kind()) == Some(ErrorKind::NotFound) => {}
                    Err(e) => note(ListingNote {
                        key,
                        message: e.to_string(),
                    }),
                }
            }
        }
        Ok(())
    }

    fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
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
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.path(key))
            .map_err(|e| io_error(key, e))?;
        let len = file.metadata().map_err(|e| io_error(key, e))?.len();
        if len > limit {
            return Err(StorageError::TooLarge {
                key: key.to_owned(),
                limit,
            });
        }
        let mut buf = Vec::with_capacity(len as usize);
        (&mut file)
            .take(limit + 1)
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

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.list_dirs("r/").unwrap(), vec!["ab", "ac", "b"]);
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
