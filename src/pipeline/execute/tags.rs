//! Tag removal for `prune-tags`: each removed tag's index entries, then its `current` link, so
//! that a tag cut off halfway still resolves to what it named.

use crate::model::layout;
use crate::model::progress::{Count, Progress};
use crate::pipeline::collect::inventory::Tag;
use crate::pipeline::execute::sweep::{Failure, delete_all};
use crate::storage::Storage;
use serde::Serialize;
use std::collections::HashSet;

/// What `prune-tags --delete` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TagsDeleted {
    pub tags: u64,
    pub failures: Vec<Failure>,
    /// With `--trash`: the run that holds the removed tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash: Option<crate::pipeline::execute::trash::RunRecord>,
}

/// Removes tags, as (repository, tag): each tag's index entries, then its `current` link, then its
/// folder. A tag whose index entries could not all be deleted keeps its current link, so a tag cut off
/// halfway still resolves; a tag is counted removed when its current link is gone.
pub fn remove_tags(
    storage: &dyn Storage,
    tags: &[(&str, &Tag)],
    progress: &Progress,
) -> TagsDeleted {
    let mut out = TagsDeleted::default();
    // Index entries of every tag first: a tag cut off here still has its current link.
    let index: Vec<String> = tags
        .iter()
        .flat_map(|(repo, t)| {
            t.index
                .iter()
                .map(|d| layout::tag_index_entry(repo, &t.name, d))
        })
        .collect();
    let index_failed: HashSet<&str> = delete_all(storage, &index, &mut out.failures)
        .into_iter()
        .map(|i| tag_folder_of(&index[i]))
        .collect();
    // Then the current links of the tags whose index entries all went.
    let current: Vec<(String, String)> = tags
        .iter()
        .map(|(repo, t)| {
            (
                layout::tag_current(repo, &t.name),
                layout::tag_folder(repo, &t.name),
            )
        })
        .filter(|(_, folder)| !index_failed.contains(folder.as_str()))
        .collect();
    let keys: Vec<String> = current.iter().map(|(k, _)| k.clone()).collect();
    let failed = delete_all(storage, &keys, &mut out.failures);
    for (i, (_, folder)) in current.iter().enumerate() {
        if failed.contains(&i) {
            continue;
        }
        out.tags += 1;
        progress.add(Count::Deleted, 1);
        if let Err(e) = storage.remove_empty_folders(folder) {
            out.failures.push(Failure::storage(folder.clone(), e));
        }
    }
    out
}

/// `…/_manifests/tags/<tag>/` of a key below it.
fn tag_folder_of(key: &str) -> &str {
    let i = key
        .find("/_manifests/tags/")
        .map_or(0, |i| i + "/_manifests/tags/".len());
    let end = key[i..].find('/').map_or(key.len(), |j| i + j + 1);
    &key[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::Digest;
    use crate::storage::mem::{MemStorage, Op};

    fn d(n: u8) -> Digest {
        Digest([n; 32])
    }

    #[test]
    fn a_tag_whose_index_entry_could_not_go_keeps_its_current_link() {
        let store = MemStorage::new().with_delete_batch(1);
        let tags: Vec<Tag> = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let t = Tag {
                    name: (*name).into(),
                    current: Some(d(i as u8)),
                    moved: 0,
                    index: thin_vec::thin_vec![d(i as u8)],
                };
                store.put(&layout::tag_current("r", name), d(i as u8).to_string());
                store.put(
                    &layout::tag_index_entry("r", name, &d(i as u8)),
                    d(i as u8).to_string(),
                );
                t
            })
            .collect();
        store.fail_call(Op::Delete, 1);
        let removed: Vec<(&str, &Tag)> = tags.iter().map(|t| ("r", t)).collect();
        let out = remove_tags(&store, &removed, &Progress::new());
        assert_eq!(out.tags, 1);
        assert_eq!(out.failures.len(), 1);
        let left = store.keys();
        assert_eq!(left.len(), 2, "{left:?}");
        // The tag cut off still resolves: its current link stays beside its index entry.
        let folder = tag_folder_of(&left[0]).to_owned();
        assert!(left.iter().all(|k| k.starts_with(&folder)), "{left:?}");
        assert!(left.contains(&format!("{folder}current/link")), "{left:?}");
    }

    #[test]
    fn tag_folders_are_found_from_keys() {
        let key = layout::tag_index_entry("a/b", "v1", &Digest([7; 32]));
        assert_eq!(tag_folder_of(&key), layout::tag_folder("a/b", "v1"));
    }
}
