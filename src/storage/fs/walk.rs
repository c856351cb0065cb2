//! The folder walk behind listings: a depth-first walk of a folder tree (children in the order the
//! folder read gives them, each folder's keys together), with its notes.

use super::*;
use std::ffi::CString;

/// Folders deeper than this below a listing's prefix are not walked (and noted): the layout is a few
/// levels deep, so only a hostile tree goes further, and a walk must not run out of descriptors.
pub(super) const MAX_DEPTH: usize = 64;

/// The most a link read in passing may hold; a longer file is delivered cut at this length, which
/// the reader of links rejects as too large.
pub(super) const LINK_READ: usize = 512;

/// A folder's child folders are walked ahead of the walk when there are this many: not the two or
/// three of a repository's own, which shards and the folders around them keep busy enough.
const WIDE: usize = 4;

/// A folder's children that each cost a call or two (links) are walked ahead of the walk only when
/// there are this many.
const LEAVES_AHEAD: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cost {
    Nothing,
    Calls,
    Walk,
}

/// A listing in progress: a depth-first walk with descriptor-relative calls (`openat`, `fstatat`, never
/// following a symbolic link), which learns file types from the folder read and so stats files only.
///
/// Where the layout says what a folder holds ([`layout::folder_leaf`]), the files that matter are
/// reached through the folder without opening it: a blob's `data` is stated (one system call a
/// blob), a revision's `link` is read, a `_layers` link is known by its folder's name, and a tag's
/// folder costs a read of `current/link` and a read of `index/sha256/`. When such a file is not there
/// the folder is walked like any other, so the shortcut never hides a file that matters; it skips only
/// what else such folders hold (schema 1 `signatures/`), which nothing reads.
pub(super) struct Walk<'a> {
    pub(super) visit: &'a mut dyn FnMut(Entry),
    pub(super) note: &'a mut dyn FnMut(ListingNote),
    pub(super) stop: Option<&'a std::sync::atomic::AtomicUsize>,
    /// A walk ahead's item ([`ahead::in_order`]): once it is handed back (too large to keep) what
    /// this walk learns is no longer wanted, and it ends as a stop would end it.
    pub(super) ahead: Option<&'a ahead::Slot>,
    /// What the listing leaves out ([`Storage::list_lean`]): a file the layout says to stat
    /// ([`Leaf::Stat`]) is only named, and tags' index folders are not walked.
    pub(super) lean: Lean,
}

impl Walk<'_> {
    /// Walks the open folder `fd` whose key is `key` (ending with `/`), keeping only children whose
    /// name starts with `name_prefix`. Fails only when the folder itself cannot be read.
    pub(super) fn folder(
        &mut self,
        fd: OwnedFd,
        key: &mut String,
        name_prefix: &str,
        depth: usize,
    ) -> Result<(), Errno> {
        if self
            .stop
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed) != 0)
            || self.ahead.is_some_and(ahead::Slot::handed_back)
        {
            return Err(Errno::CANCELED);
        }
        let mut dir = Dir::new(fd)?;
        let mut children = Vec::new();
        for child in dir.by_ref() {
            let child = child?;
            let name = child.file_name().to_bytes();
            if name == b"." || name == b".." || !name.starts_with(name_prefix.as_bytes()) {
                continue;
            }
            children.push((child.file_name().to_owned(), child.file_type()));
        }
        if let Some(slot) = self.ahead
            && ahead::Slot::too_many(children.len())
        {
            slot.hand_back();
            return Err(Errno::CANCELED);
        }
        let dir_fd = dir.fd()?;
        let lean = self.lean;
        // What a child costs: nothing (a name the layout says all about), a call or two (a link
        // to read, a file to stat), or a folder's walk.
        let cost = |(name, file_type): &(CString, FileType)| match file_type {
            FileType::Symlink => Cost::Nothing,
            FileType::Directory | FileType::Unknown => match name.to_str() {
                Ok(child) => match layout::folder_leaf(key, child) {
                    Some(Leaf::Name(_)) => Cost::Nothing,
                    Some(Leaf::Stat(_)) if lean.unstated_blobs => Cost::Nothing,
                    Some(_) => Cost::Calls,
                    None => Cost::Walk,
                },
                Err(_) => Cost::Nothing,
            },
            _ => Cost::Calls,
        };
        let costs: Vec<Cost> = children.iter().map(cost).collect();
        // Children of a few calls each are worth a helper only by the many (a folder of 10,000
        // tags); the folders around them (repositories) are what helpers take.
        let calls = costs.iter().filter(|&&c| c == Cost::Calls).count();
        let walks = costs.iter().filter(|&&c| c == Cost::Walk).count();
        let worth: Vec<bool> = costs
            .iter()
            .map(|&c| {
                (c == Cost::Walk && walks >= WIDE) || (c == Cost::Calls && calls >= LEAVES_AHEAD)
            })
            .collect();
        if walks < WIDE && calls < LEAVES_AHEAD {
            warm_links(dir_fd, key, &children);
            for (name, file_type) in &children {
                if self.ahead.is_some_and(ahead::Slot::handed_back) {
                    return Err(Errno::CANCELED);
                }
                self.named_child(dir_fd, name, *file_type, key, depth);
            }
            return Ok(());
        }
        let base = key.clone();
        let stop = self.stop;
        let walk_ahead = |(name, file_type): &(CString, FileType), keep: &mut ahead::Keep<'_>| {
            let Ok(name_str) = name.to_str() else { return };
            let slot = keep.slot();
            let keep = std::cell::RefCell::new(keep);
            let mut visit = |e| keep.borrow_mut().keep(ahead::Learned::Entry(e));
            let mut note = |n| keep.borrow_mut().keep(ahead::Learned::Note(n));
            let mut key = format!("{base}{name_str}");
            let mut walk = Walk {
                visit: &mut visit,
                note: &mut note,
                stop,
                ahead: Some(slot),
                lean,
            };
            walk.child(dir_fd, name, *file_type, &mut key, base.len(), depth);
        };
        ahead::in_order(&children, &worth, &walk_ahead, |turn| {
            match turn {
                ahead::Turn::Walk((name, file_type)) => {
                    self.named_child(dir_fd, name, *file_type, key, depth)
                }
                ahead::Turn::Learned(learned) => {
                    ahead::replay(learned, &mut *self.visit, &mut *self.note)
                }
            }
            Ok::<(), Errno>(())
        })
    }

    /// Walks the child `name` of the folder `dir_fd` whose key is `key`, noting a name that is not
    /// UTF-8.
    fn named_child(
        &mut self,
        dir_fd: BorrowedFd<'_>,
        name: &CStr,
        file_type: FileType,
        key: &mut String,
        depth: usize,
    ) {
        let Ok(name_str) = name.to_str() else {
            self.noted(
                format!("{key}{}", name.to_string_lossy()),
                "name is not UTF-8; skipped",
            );
            return;
        };
        let len = key.len();
        key.push_str(name_str);
        self.child(dir_fd, name, file_type, key, len, depth);
        key.truncate(len);
    }

    pub(super) fn child(
        &mut self,
        dir_fd: BorrowedFd<'_>,
        name: &CStr,
        file_type: FileType,
        key: &mut String,
        parent_len: usize,
        depth: usize,
    ) {
        let file_type = match file_type {
            FileType::Unknown => {
                match rustix::fs::statat(dir_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => FileType::from_raw_mode(st.st_mode),
                    Err(Errno::NOENT) => return,
                    Err(e) => return self.noted(key.clone(), &e.to_string()),
                }
            }
            t => t,
        };
        match file_type {
            FileType::Symlink => self.noted(key.clone(), "symbolic link; not followed"),
            FileType::Directory => {
                let (parent, child) = key.split_at(parent_len);
                if let Some(leaf) = layout::folder_leaf(parent, child)
                    && self.shortcut(dir_fd, key, leaf, depth)
                {
                    return;
                }
                self.subfolder(dir_fd, name, key, depth);
            }
            _ => match rustix::fs::statat(dir_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => self.found(key.clone(), &st, None),
                // Vanished between the folder read and the stat: it is simply not there any more.
                Err(Errno::NOENT) => {}
                Err(e) => self.noted(key.clone(), &e.to_string()),
            },
        }
    }

    /// Opens and walks the folder `path` (relative to `dir_fd`) whose key is `key`.
    pub(super) fn subfolder<P: rustix::path::Arg>(
        &mut self,
        dir_fd: BorrowedFd<'_>,
        path: P,
        key: &mut String,
        depth: usize,
    ) {
        if depth >= MAX_DEPTH {
            return self.noted(key.clone(), "folders nested too deep; not walked");
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(dir_fd, path, flags, Mode::empty()) {
            Ok(fd) => {
                let len = key.len();
                key.push('/');
                if let Err(e) = self.folder(fd, key, "", depth + 1) {
                    self.noted(key.clone(), &e.to_string());
                }
                key.truncate(len);
            }
            Err(Errno::NOENT) => {}
            Err(Errno::LOOP | Errno::NOTDIR) => {
                self.noted(key.clone(), "symbolic link; not followed")
            }
            Err(e) => self.noted(key.clone(), &e.to_string()),
        }
    }

    /// Reaches what the layout says the folder `key` holds without opening it; false when that is not
    /// there, and the folder must be walked.
    pub(super) fn shortcut(
        &mut self,
        dir_fd: BorrowedFd<'_>,
        key: &mut String,
        leaf: Leaf,
        depth: usize,
    ) -> bool {
        let folder = &key[key.rfind('/').map_or(0, |i| i + 1)..];
        let leaf = match leaf {
            Leaf::Stat(file) if self.lean.unstated_blobs => Leaf::Name(file),
            leaf => leaf,
        };
        match leaf {
            Leaf::Name(file) => {
                (self.visit)(Entry {
                    key: format!("{key}/{file}"),
                    size: 0,
                    modified: None,
                    etag: None,
                    content: None,
                });
                true
            }
            Leaf::Stat(file) => {
                let path = format!("{folder}/{file}");
                match rustix::fs::statat(dir_fd, path.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                        self.found(format!("{key}/{file}"), &st, None);
                        true
                    }
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                        self.noted(format!("{key}/{file}"), "symbolic link; not followed");
                        true
                    }
                    _ => false,
                }
            }
            Leaf::Read(file) => self.read_leaf(dir_fd, folder, file, key, false),
            Leaf::Tag => {
                let folder = folder.to_owned();
                if !self.read_leaf(dir_fd, &folder, layout::TAG_CURRENT, key, true) {
                    return false;
                }
                if self.lean.no_tag_index {
                    return true;
                }
                let index = format!("{folder}/{}", layout::TAG_INDEX);
                let len = key.len();
                key.push('/');
                key.push_str(layout::TAG_INDEX);
                self.subfolder(dir_fd, index.as_str(), key, depth + 2);
                key.truncate(len);
                true
            }
        }
    }

    /// Reads the small file `folder/file` (and, with `stat`, its age) and visits it with its content;
    /// false when it is not there.
    pub(super) fn read_leaf(
        &mut self,
        dir_fd: BorrowedFd<'_>,
        folder: &str,
        file: &str,
        key: &str,
        stat: bool,
    ) -> bool {
        let leaf_key = format!("{key}/{file}");
        let path = format!("{folder}/{file}");
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(dir_fd, path.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return false,
            Err(Errno::LOOP) => {
                self.noted(leaf_key, "symbolic link; not followed");
                return true;
            }
            Err(e) => {
                self.noted(leaf_key, &e.to_string());
                return true;
            }
        };
        let st = if stat {
            match rustix::fs::fstat(&fd) {
                Ok(st) => Some(st),
                Err(e) => {
                    self.noted(leaf_key, &e.to_string());
                    return true;
                }
            }
        } else {
            None
        };
        // One read: a link is a few dozen bytes, and a regular file on a local filesystem returns
        // all it holds up to the buffer's length.
        let mut read = [0u8; LINK_READ];
        let buf = match rustix::io::read(&fd, &mut read) {
            // Kept at its length: a walk may hold many links before they are taken in.
            Ok(n) => read[..n].to_vec(),
            Err(e) => {
                self.noted(leaf_key, &e.to_string());
                return true;
            }
        };
        match st {
            Some(st) => self.found(leaf_key, &st, Some(buf)),
            None => (self.visit)(Entry {
                key: leaf_key,
                size: buf.len() as u64,
                modified: None,
                etag: None,
                content: Some(buf),
            }),
        }
        true
    }

    pub(super) fn found(&mut self, key: String, st: &rustix::fs::Stat, content: Option<Vec<u8>>) {
        let modified = if st.st_mtime >= 0 {
            UNIX_EPOCH + Duration::new(st.st_mtime as u64, st.st_mtime_nsec as u32)
        } else {
            UNIX_EPOCH - Duration::from_secs(st.st_mtime.unsigned_abs())
        };
        (self.visit)(Entry {
            key,
            size: st.st_size as u64,
            modified: Some(modified),
            etag: None,
            content,
        });
    }

    pub(super) fn noted(&mut self, key: String, message: &str) {
        (self.note)(ListingNote {
            key,
            message: message.to_owned(),
        });
    }
}

/// Asks the kernel to read the small files that the layout says `children` of the folder `key`
/// (open as `dir_fd`) lead to (a revision's `link`, a tag's `current/link`) all at once, before the
/// walk reads them one by one: each read then finds its file read or on its way, rather than
/// waiting for the disk in turn. Nothing is asked when the first such file is in memory already (a
/// warm store), and no file is held open.
fn warm_links(dir_fd: BorrowedFd<'_>, key: &str, children: &[(CString, FileType)]) {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let opened = children.iter().filter_map(|(name, file_type)| {
        if !matches!(file_type, FileType::Directory | FileType::Unknown) {
            return None;
        }
        let child = name.to_str().ok()?;
        let file = match layout::folder_leaf(key, child)? {
            Leaf::Read(file) => file,
            Leaf::Tag => layout::TAG_CURRENT,
            _ => return None,
        };
        let path = format!("{child}/{file}");
        rustix::fs::openat(dir_fd, path.as_str(), flags, Mode::empty()).ok()
    });
    ask_for(opened, LINK_READ as u64);
}
