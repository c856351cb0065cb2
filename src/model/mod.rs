//! What the store holds, as values: digests, the store's keys, manifest formats, problems, times and
//! numbers in words, files written whole. Nothing here does I/O on the store; everything above
//! builds on it.

pub mod atomic_file;
pub mod digest;
pub mod layout;
pub mod manifest;
pub mod problem;
pub mod progress;
pub mod shard;
pub mod text;
pub mod time;
pub mod warning;
