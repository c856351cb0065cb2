//! The cache file's mapping: the only `unsafe` of the manifest cache, in two calls.
//!
//! Both hold because the cache file is never written in place: a new file is renamed over it, so
//! the bytes a mapping shows do not change under it, and after `MADV_DONTNEED` a read faults the
//! same file bytes in again. Every read of the mapping is bounds-checked, and every record is
//! checked against its checksum before use.

use memmap2::Mmap;
use std::fs::File;

/// Maps `file` read-only.
pub(super) fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the file is never written in place (see the module's doc).
    unsafe { Mmap::map(file) }
}

/// Lets go of the pages of `map` in `start..end`; a later read faults them in again.
pub(super) fn forget(map: &Mmap, start: usize, end: usize) {
    // SAFETY: the mapping is read-only and its file is never written in place (see the module's
    // doc), so a page dropped here reads back as the same bytes.
    let _ = unsafe {
        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
    };
}
