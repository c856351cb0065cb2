//! A file written beside its destination and renamed into place, so that a reader (an operator, a
//! collector that scrapes the folder) sees the old file or the whole new one, never half of it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file on its way: `.<name>.tmp-<pid>` beside the destination (a name that starts with a dot and
/// keeps no extension of its own), renamed into place by [`Staged::finish`], removed if it never is.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
    renamed: bool,
}

impl Staged {
    /// Creates the temporary file now, so that an unwritable destination fails before any work.
    /// `instead` says what to name when `path` is a folder ("a file").
    pub fn create(path: &Path, instead: &str) -> io::Result<Staged> {
        if path.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("is a folder; name {instead}"),
            ));
        }
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "names no file"))?;
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = std::fs::File::create_new(&tmp)?;
        Ok(Staged {
            path: path.to_owned(),
            tmp,
            file: Some(file),
            renamed: false,
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the content (buffered), syncs it to disk and renames the file into place.
    pub fn finish(
        mut self,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = self.file.take().expect("finished once");
        let mut out = io::BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        self.put_in_place(file)
    }

    /// As [`Staged::finish`], for a writer that needs the file itself: one that seeks back to fill
    /// in a header, or takes a `Send` sink of its own (a Parquet writer). `write` gets the file and
    /// gives it back written.
    pub fn finish_file(
        mut self,
        write: impl FnOnce(std::fs::File) -> io::Result<std::fs::File>,
    ) -> io::Result<()> {
        let file = self.file.take().expect("finished once");
        let file = write(file)?;
        self.put_in_place(file)
    }

    /// The temporary file's name, for an error about the writing.
    pub fn temporary(&self) -> &Path {
        &self.tmp
    }

    fn put_in_place(&mut self, file: std::fs::File) -> io::Result<()> {
        file.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
