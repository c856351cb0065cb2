//! The allocator's arenas and mmap threshold: bounded for a store on S3, and what is freed given
//! back for every store.
//!
//! glibc's malloc gives a thread that finds the arenas busy an arena of its own, up to eight per core,
//! and every arena keeps what was freed in it. On S3 each listing, link read or HEAD in flight is a
//! collector thread waiting on the SDK (manifest reads now wait in the runtime instead), so with
//! `--max-in-flight 128` the arenas, not the data, set the peak: s100k at 128 in flight, when
//! manifest reads took a thread each too, peaked at 71–73 MB with glibc's default and 59–61 MB with
//! one arena per core (two here), against a heap peak of 24 MB (heaptrack); at 32 in flight, 56 MB
//! and 43 MB. A filesystem walk keeps the default: its threads do the work, and sharing two arenas
//! among them was 8–12% slower on g164k for 1.5 MB.

/// One arena per core from here on, unless `MALLOC_ARENA_MAX` says otherwise, and a fixed mmap
/// threshold, unless `MALLOC_MMAP_THRESHOLD_` says otherwise. Called before the store is opened:
/// glibc fixes its arena limit once the process has more than eight arenas, and only the main
/// thread and a few others exist yet.
///
/// The threshold: glibc serves a block of 128 KiB or more with a mapping of its own, given back
/// when freed, but raises that threshold to the size of each such block freed (up to 32 MiB). The
/// walk frees many blocks of megabytes (the blob table's arrays as they grow), after which blocks
/// that size come from the arenas, and what is freed there stays resident. Fixed at 128 KiB:
/// s1m at 128 in flight 170 -> 163 MB peak RSS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_for_s3() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    set_unless_the_environment_does(&[
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, arenas),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 << 10),
    ]);
}

/// Sets each allocator parameter whose environment variable (glibc's own name for it) is not set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_unless_the_environment_does(params: &[(&str, libc::c_int, libc::c_int)]) {
    for &(set, param, value) in params {
        if std::env::var_os(set).is_none() {
            // SAFETY: mallopt only sets an allocator parameter; glibc takes it at any time, and a
            // value it refuses leaves the default (the result says only that, so it is not needed).
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}

/// For any store, before it is opened: a fixed mmap threshold of 64 KiB (for the reason above:
/// every block of that size or more is a mapping of its own, given back when freed), and freed
/// memory at the top of an arena given back at once rather than kept for the next allocation
/// (glibc keeps up to twice the mmap threshold, and raises that as it raises the threshold).
/// Each unless the environment sets it. g1m `gc --no-cache` (release, 2 cores): peak RSS 121 ->
/// 111 MB, wall time unchanged (7.3 s; `MALLOC_*` variables set the same for the comparison).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    set_unless_the_environment_does(&[
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 64 << 10),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 0),
        ("MALLOC_TOP_PAD_", libc::M_TOP_PAD, 0),
    ]);
}

/// Gives the free pages inside every arena back to the system (not only those at an arena's top),
/// as a phase ends: what one phase's threads freed (manifests read and parsed, paths listed) would
/// otherwise stay resident through the next.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: malloc_trim takes each arena's lock; it only returns free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_for_s3() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
