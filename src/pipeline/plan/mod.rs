//! The plan: what a sweep would delete, as a value.
//!
//! A plan is computed the same way for a dry run and for `--delete`; a dry run renders it, `--delete`
//! hands it to [`crate::pipeline::execute::sweep`]. Items are listed in sweep order: untagged manifests, then `_layers`
//! links, then blob data, then abandoned uploads, S3 multipart uploads, and last the repositories the
//! rest leaves empty. A blob is planned only when no root reaches it and its data is older than the
//! grace window; a `_layers` link only when its blob is planned, or when its repository is left
//! empty; an upload only when none of its files was written within the grace window.
//!
//! A repository is left empty when it has no tag, every revision it holds is planned, every upload,
//! and every `_layers` link is planned or else was written before the grace window: nothing the
//! registry could serve from it remains, so its remaining links (to blobs other repositories keep)
//! go too, and then its folders, so that it leaves the registry's catalog.

pub mod file;

use crate::model::digest::{AliasDigest, Digest};
use crate::pipeline::collect::inventory::Inventory;
use crate::pipeline::collect::mark::Marks;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

/// One thing to delete. Serialized as one NDJSON line per item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanItem {
    /// An untagged manifest revision: its revision link and every tag index entry that names it.
    Manifest {
        repo: String,
        digest: Digest,
        /// The tags whose index names this digest (their entries go first).
        #[serde(skip)]
        tags: Vec<String>,
    },
    /// A repository's link to a blob that is being swept.
    LayerLink { repo: String, digest: Digest },
    /// A repository's alias link (`_layers/sha512/<hex>/link`) to a blob that is being swept, or
    /// to data that is gone; `digest` is the sha256 digest it holds.
    AliasLink {
        repo: String,
        alias: AliasDigest,
        digest: Digest,
    },
    /// A blob's data.
    Blob { digest: Digest, size: u64 },
    /// An abandoned upload: its `_uploads/<id>/` folder, every file in it.
    Upload { repo: String, id: String, size: u64 },
    /// An incomplete S3 multipart upload under the store's prefix: aborted, which frees its parts.
    Multipart {
        key: String,
        upload_id: String,
        size: u64,
    },
    /// A repository the other items leave with nothing: its own folders (`_layers`, `_manifests`,
    /// `_uploads`) once empty, then its folder if that is empty too (a nested repository keeps it).
    Repository { repo: String },
}

/// Whether the plan leaves `repo` with nothing the registry could serve (see the module's words):
/// no tag, every revision `untagged` (and so planned), every upload older than the grace window,
/// every `_layers` link to a swept blob or else written before it.
pub fn left_empty(
    repo: &crate::pipeline::collect::inventory::Repository,
    blobs: &crate::pipeline::collect::blob_table::BlobTable,
    untagged: &[Digest],
    swept: &RoaringBitmap,
    grace_cutoff: i64,
) -> bool {
    // An alias link is kept with the blob it names (one with no data counts as kept, as a dangling
    // `_layers` link does); it is written with the sha256 link of the same upload, whose age is
    // the one judged.
    let swept_digest = |d: &Digest| blobs.id(d).is_some_and(|id| swept.contains(id));
    let links_kept = repo.layer_links.iter().any(|id| !swept.contains(*id))
        || !repo.dangling_layer_links.is_empty()
        || repo.aliases.iter().any(|(_, d)| !swept_digest(d));
    could_be_left_empty(repo, untagged, grace_cutoff)
        && (!links_kept || repo.layer_links_newest.is_some_and(|t| t <= grace_cutoff))
}

/// Whether `repo` is left empty if its `_layers` links are old enough: the repositories whose link
/// times [`crate::pipeline::collect::walk::layer_link_times`] must know before the plan is built.
pub fn could_be_left_empty(
    repo: &crate::pipeline::collect::inventory::Repository,
    untagged: &[Digest],
    grace_cutoff: i64,
) -> bool {
    repo.tags.is_empty()
        && untagged.len() == repo.revisions.len()
        && repo.uploads.iter().all(|u| u.modified <= grace_cutoff)
}

/// A plan and the figures that explain it.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    /// Unreached blobs kept because their data is within the grace window.
    pub blobs_held_by_grace: u64,
    pub bytes_held_by_grace: u64,
}

impl Plan {
    /// Adds the `_layers` links that name no data ([`crate::pipeline::collect::walk::dead_layer_links`]),
    /// but those the plan has already (a repository left empty loses all its links).
    pub fn add_dead_layer_links(&mut self, inv: &Inventory, dead: &[(usize, Digest)]) {
        let planned: std::collections::HashSet<(&str, &Digest)> = self.layer_links().collect();
        let new: Vec<PlanItem> = dead
            .iter()
            .map(|(r, d)| (inv.repositories[*r].name.as_str(), d))
            .filter(|link| !planned.contains(link))
            .map(|(repo, d)| PlanItem::LayerLink {
                repo: repo.to_owned(),
                digest: *d,
            })
            .collect();
        self.items.extend(new);
    }

    /// Adds the alias links that name no data ([`crate::pipeline::collect::walk::dead_alias_links`]),
    /// but those the plan has already.
    pub fn add_dead_alias_links(&mut self, inv: &Inventory, dead: &[(usize, AliasDigest, Digest)]) {
        let planned: std::collections::HashSet<(&str, &AliasDigest)> =
            self.alias_links().map(|(r, a, _)| (r, a)).collect();
        let new: Vec<PlanItem> = dead
            .iter()
            .map(|(r, a, d)| (inv.repositories[*r].name.as_str(), a, d))
            .filter(|(r, a, _)| !planned.contains(&(*r, *a)))
            .map(|(repo, a, d)| PlanItem::AliasLink {
                repo: repo.to_owned(),
                alias: a.clone(),
                digest: *d,
            })
            .collect();
        self.items.extend(new);
    }

    /// Builds the plan from an inventory and its marks.
    pub fn build(inv: &Inventory, marks: &Marks, grace_cutoff: i64) -> Plan {
        let mut plan = Plan::default();
        for (repo, untagged) in inv.repositories.iter().zip(&marks.untagged) {
            for d in untagged {
                let tags = repo
                    .tags
                    .iter()
                    .filter(|t| t.index.binary_search(d).is_ok())
                    .map(|t| t.name.to_string());
                plan.items.push(PlanItem::Manifest {
                    repo: repo.name.clone(),
                    digest: *d,
                    tags: tags.collect(),
                });
            }
        }
        let mut swept = RoaringBitmap::new();
        for id in &marks.unreferenced(inv) {
            if inv.blobs.modified(id) > grace_cutoff {
                plan.blobs_held_by_grace += 1;
                plan.bytes_held_by_grace += inv.blobs.size(id);
            } else {
                swept.insert(id);
            }
        }
        let emptied: Vec<bool> = inv
            .repositories
            .iter()
            .zip(&marks.untagged)
            .map(|(repo, untagged)| left_empty(repo, &inv.blobs, untagged, &swept, grace_cutoff))
            .collect();
        for (repo, &empty) in inv.repositories.iter().zip(&emptied) {
            for &id in &repo.layer_links {
                if empty || swept.contains(id) {
                    plan.items.push(PlanItem::LayerLink {
                        repo: repo.name.clone(),
                        digest: inv.blobs.digest(id),
                    });
                }
            }
            if empty {
                for d in &repo.dangling_layer_links {
                    plan.items.push(PlanItem::LayerLink {
                        repo: repo.name.clone(),
                        digest: *d,
                    });
                }
            }
            for (alias, d) in &repo.aliases {
                let swept_here = inv.blobs.id(d).is_some_and(|id| swept.contains(id));
                if empty || swept_here {
                    plan.items.push(PlanItem::AliasLink {
                        repo: repo.name.clone(),
                        alias: alias.clone(),
                        digest: *d,
                    });
                }
            }
        }
        for id in &swept {
            plan.items.push(PlanItem::Blob {
                digest: inv.blobs.digest(id),
                size: inv.blobs.size(id),
            });
        }
        for repo in &inv.repositories {
            for u in repo.uploads.iter().filter(|u| u.modified <= grace_cutoff) {
                plan.items.push(PlanItem::Upload {
                    repo: repo.name.clone(),
                    id: u.id.clone(),
                    size: u.size,
                });
            }
        }
        for (repo, _) in inv.repositories.iter().zip(&emptied).filter(|(_, e)| **e) {
            plan.items.push(PlanItem::Repository {
                repo: repo.name.clone(),
            });
        }
        plan
    }

    /// Plans the multipart uploads initiated before the grace cutoff (an unknown time counts as
    /// recent), before the repositories, which stay last.
    /// Leaves out every item of the repositories `repos` and the blobs `digests` (with every
    /// repository's links to them): what an online run's re-check found changed. A repository
    /// left out is not emptied either.
    pub fn narrow(
        &mut self,
        repos: &std::collections::HashSet<&str>,
        digests: &std::collections::HashSet<Digest>,
    ) {
        self.items.retain(|item| match item {
            PlanItem::Manifest { repo, digest, .. } | PlanItem::LayerLink { repo, digest } => {
                !repos.contains(repo.as_str()) && !digests.contains(digest)
            }
            PlanItem::AliasLink { repo, digest, .. } => {
                !repos.contains(repo.as_str()) && !digests.contains(digest)
            }
            PlanItem::Blob { digest, .. } => !digests.contains(digest),
            PlanItem::Upload { repo, .. } | PlanItem::Repository { repo } => {
                !repos.contains(repo.as_str())
            }
            PlanItem::Multipart { .. } => true,
        });
    }

    pub fn add_multipart(
        &mut self,
        uploads: &[crate::storage::MultipartUpload],
        grace_cutoff: i64,
    ) {
        let at = self
            .items
            .iter()
            .position(|i| matches!(i, PlanItem::Repository { .. }))
            .unwrap_or(self.items.len());
        let planned = uploads
            .iter()
            .filter(|u| {
                u.initiated
                    .map(crate::model::time::unix_seconds)
                    .is_some_and(|t| t <= grace_cutoff)
            })
            .map(|u| PlanItem::Multipart {
                key: u.key.clone(),
                upload_id: u.upload_id.clone(),
                size: u.size,
            });
        self.items.splice(at..at, planned);
    }

    /// Keeps only the items shard `shard` owns: a blob, its `_layers` links and its manifest
    /// revisions go to the shard of its digest (so one shard deletes them in the sweep's order),
    /// uploads and multipart uploads by a hash of their names. Emptied repositories belong to no
    /// shard: their folders go once every shard is done, in the run over the whole plan that ends a
    /// sharded sweep (it skips what the shards deleted).
    pub fn keep_shard(&mut self, shard: crate::model::shard::Shard) {
        self.items.retain(|i| match i {
            PlanItem::Blob { digest, .. }
            | PlanItem::LayerLink { digest, .. }
            | PlanItem::AliasLink { digest, .. }
            | PlanItem::Manifest { digest, .. } => shard.holds(digest),
            PlanItem::Upload { repo, id, .. } => {
                shard.holds(&Digest::of(format!("{repo}/{id}").as_bytes()))
            }
            PlanItem::Multipart { key, upload_id, .. } => {
                shard.holds(&Digest::of(format!("{key} {upload_id}").as_bytes()))
            }
            PlanItem::Repository { .. } => false,
        });
    }

    /// The repositories the plan leaves empty.
    pub fn repositories(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::Repository { repo } => Some(repo.as_str()),
            _ => None,
        })
    }

    pub fn multipart(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::Multipart {
                key,
                upload_id,
                size,
            } => Some((key.as_str(), upload_id.as_str(), *size)),
            _ => None,
        })
    }

    pub fn uploads(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::Upload { repo, id, size } => Some((repo.as_str(), id.as_str(), *size)),
            _ => None,
        })
    }

    pub fn manifests(&self) -> impl Iterator<Item = (&str, &Digest)> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::Manifest { repo, digest, .. } => Some((repo.as_str(), digest)),
            _ => None,
        })
    }

    pub fn layer_links(&self) -> impl Iterator<Item = (&str, &Digest)> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::LayerLink { repo, digest } => Some((repo.as_str(), digest)),
            _ => None,
        })
    }

    /// The alias links: (repository, alias, the sha256 digest it holds).
    pub fn alias_links(&self) -> impl Iterator<Item = (&str, &AliasDigest, &Digest)> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::AliasLink {
                repo,
                alias,
                digest,
            } => Some((repo.as_str(), alias, digest)),
            _ => None,
        })
    }

    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::Blob { digest, size } => Some((digest, *size)),
            _ => None,
        })
    }

    /// Bytes of blob data the plan frees.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs().map(|(_, s)| s).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_uploads_are_planned_only_when_initiated_before_the_grace_cutoff() {
        use crate::storage::MultipartUpload;
        use std::time::{Duration, UNIX_EPOCH};
        let at = |secs: Option<u64>, id: &str| MultipartUpload {
            key: "k".into(),
            upload_id: id.into(),
            initiated: secs.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            size: 3,
        };
        let mut plan = Plan::default();
        plan.add_multipart(
            &[
                at(Some(999), "old"),
                at(Some(1000), "edge"),
                at(Some(1001), "new"),
                at(None, "unknown"),
            ],
            1000,
        );
        let ids: Vec<&str> = plan.multipart().map(|m| m.1).collect();
        assert_eq!(ids, ["old", "edge"]);
    }

    #[test]
    fn plan_items_serialize_to_the_documented_shapes() {
        let d = Digest::from_hex(&"ab".repeat(32)).unwrap();
        let items = vec![
            PlanItem::Manifest {
                repo: "a/b".into(),
                digest: d,
                tags: vec!["x".into()],
            },
            PlanItem::LayerLink {
                repo: "a/b".into(),
                digest: d,
            },
            PlanItem::Blob {
                digest: d,
                size: 42,
            },
            PlanItem::Upload {
                repo: "a/b".into(),
                id: "u-1".into(),
                size: 7,
            },
        ];
        let (mut out, mut line) = (Vec::new(), Vec::new());
        for item in &items {
            crate::pipeline::plan::file::item_line(item, &mut line);
            out.extend_from_slice(&line);
        }
        let hex = "ab".repeat(32);
        let expected = format!(
            "{{\"kind\":\"manifest\",\"repo\":\"a/b\",\"digest\":\"sha256:{hex}\"}}\n\
             {{\"kind\":\"layer_link\",\"repo\":\"a/b\",\"digest\":\"sha256:{hex}\"}}\n\
             {{\"kind\":\"blob\",\"digest\":\"sha256:{hex}\",\"size\":42}}\n\
             {{\"kind\":\"upload\",\"repo\":\"a/b\",\"id\":\"u-1\",\"size\":7}}\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
