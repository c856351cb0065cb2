//! One answer to "did the store change since it was judged?", for every command that deletes.
//!
//! `gc --delete` (and `apply`, which ends in the same sweep) and `prune-tags --delete` judge the store
//! first and delete later. A push, a tag move, or an S3 listing that moved under the walk in between
//! could make them delete what a new tag needs. So, just before deleting, each lists the repositories
//! again ([`relist`]) and compares what it judged ([`Judged`]) with what is there ([`first_change`]);
//! `apply` also compares the plan file's fingerprints with a fresh analysis ([`Fingerprints`]). Every
//! difference is a [`Change`], every refusal a [`Refused`], so that the three paths refuse by the same
//! rules and in the same words. What lands after the last check is what read-only mode is for.

use crate::model::digest::Digest;
use crate::model::progress::{Count, MaybeStopped, Progress, Stopped};
use crate::pipeline::collect::blob_table::BlobTable;
use crate::pipeline::collect::inventory::{Repository, Tag};
use crate::pipeline::collect::walk;
use crate::storage::{Storage, StorageError};
use std::cmp::Ordering;
use std::fmt;

/// One way the store differs from what was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    RepositoryAdded {
        repo: String,
    },
    RepositoryGone {
        repo: String,
    },
    TagAdded {
        repo: String,
        tag: String,
        target: Option<Digest>,
    },
    TagGone {
        repo: String,
        tag: String,
        target: Option<Digest>,
    },
    TagMoved {
        repo: String,
        tag: String,
        from: Option<Digest>,
        to: Option<Digest>,
    },
    /// The tag names what it named, but its link was written again (a re-push): its age changed.
    TagPushedAgain {
        repo: String,
        tag: String,
        target: Option<Digest>,
        then: i64,
        now: i64,
    },
    RevisionAdded {
        repo: String,
        digest: Digest,
    },
    RevisionGone {
        repo: String,
        digest: Digest,
    },
    /// Objects the walk listed had gone when it read them: something deleted or moved them meanwhile.
    Vanished {
        objects: u64,
    },
    /// A plan file's fingerprint of tags or revisions does not match the store's.
    Fingerprint {
        roots: Roots,
        then: u64,
        now: u64,
    },
}

/// What a [`Change::Fingerprint`] is a fingerprint of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    Tags,
    Revisions,
}

impl Change {
    /// What changed, in the plural: "tags", "manifest revisions", ….
    pub fn what(&self) -> &'static str {
        match self {
            Change::RepositoryAdded { .. } | Change::RepositoryGone { .. } => "repositories",
            Change::TagAdded { .. }
            | Change::TagGone { .. }
            | Change::TagMoved { .. }
            | Change::TagPushedAgain { .. }
            | Change::Fingerprint {
                roots: Roots::Tags, ..
            } => "tags",
            Change::RevisionAdded { .. }
            | Change::RevisionGone { .. }
            | Change::Fingerprint {
                roots: Roots::Revisions,
                ..
            } => "manifest revisions",
            Change::Vanished { .. } => "listed objects",
        }
    }
}

fn named(d: &Option<Digest>) -> String {
    d.map_or_else(|| "nothing".to_owned(), |d| d.to_string())
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::RepositoryAdded { repo } => write!(f, "new repository {repo}"),
            Change::RepositoryGone { repo } => write!(f, "repository {repo} is gone"),
            Change::TagAdded { repo, tag, target } => {
                write!(f, "new tag {repo}:{tag} naming {}", named(target))
            }
            Change::TagGone { repo, tag, target } => {
                write!(f, "tag {repo}:{tag} naming {} is gone", named(target))
            }
            Change::TagMoved {
                repo,
                tag,
                from,
                to,
            } => write!(
                f,
                "tag {repo}:{tag} moved from {} to {}",
                named(from),
                named(to)
            ),
            Change::TagPushedAgain {
                repo,
                tag,
                target,
                then,
                now,
            } => write!(
                f,
                "tag {repo}:{tag} naming {} was pushed again ({} then, {} now)",
                named(target),
                crate::model::time::rfc3339(*then),
                crate::model::time::rfc3339(*now)
            ),
            Change::RevisionAdded { repo, digest } => {
                write!(f, "new manifest revision {repo}@{digest}")
            }
            Change::RevisionGone { repo, digest } => {
                write!(f, "manifest revision {repo}@{digest} is gone")
            }
            Change::Vanished { objects } => write!(
                f,
                "{objects} object(s) that the walk listed had gone when read"
            ),
            Change::Fingerprint { then, now, .. } => {
                write!(f, "{then} then, {now} now, and not the same ones")
            }
        }
    }
}

/// Since when the store was to stay as judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// This run's analysis.
    Analysis,
    /// A plan file, made at `created` by `regsweep <command> --plan`.
    Plan {
        created: String,
        command: &'static str,
    },
}

impl Since {
    fn advice(&self) -> String {
        match self {
            Since::Analysis => "Put the registry in read-only mode and run again".to_owned(),
            Since::Plan { command, .. } => {
                format!("Make a new plan with `regsweep {command} --plan` and review it")
            }
        }
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Since::Analysis => f.write_str("while it was analysed"),
            Since::Plan { created, .. } => write!(f, "since the plan was made at {created}"),
        }
    }
}

/// Why the deletes did not start: the one refusal of the re-check.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "refusing to delete: the store's {} changed {since} ({change}); nothing was deleted. {}",
        change.what(),
        since.advice()
    )]
    Changed { change: Box<Change>, since: Since },
    #[error("refusing to delete: the repositories could not be listed again: {0}")]
    Unlisted(StorageError),
    #[error("{0}")]
    Stopped(Stopped),
}

impl MaybeStopped for Refused {
    fn stop(&self) -> Option<Stopped> {
        match self {
            Refused::Stopped(s) => Some(*s),
            _ => None,
        }
    }
}

impl Refused {
    pub fn changed(change: Change, since: Since) -> Refused {
        Refused::Changed {
            change: Box::new(change),
            since,
        }
    }
}

/// What was judged of one repository.
#[derive(Debug)]
pub struct JudgedRepo<'a> {
    pub name: &'a str,
    /// Its tags (any order).
    pub tags: Vec<&'a Tag>,
    /// Its manifest revisions, sorted; `None` where they were not judged.
    pub revisions: Option<Vec<Digest>>,
}

/// What a command judged, and by which rules a difference counts.
#[derive(Debug)]
pub struct Judged<'a> {
    repos: Vec<JudgedRepo<'a>>,
    /// A repository that was not there counts as a change (the whole store was judged).
    whole_store: bool,
    /// A tag written again to the same target counts as a change (tags were judged by age).
    push_times: bool,
}

impl<'a> Judged<'a> {
    /// Every repository, its tags by target and its revisions (`gc`: a new repository, tag or
    /// revision could need what the plan deletes).
    pub fn whole_store(repos: &'a [Repository], blobs: &BlobTable) -> Judged<'a> {
        Judged::new(
            repos
                .iter()
                .map(|r| JudgedRepo {
                    name: &r.name,
                    tags: r.tags.iter().collect(),
                    revisions: Some(r.revisions.digests(blobs).collect()),
                })
                .collect(),
            true,
            false,
        )
    }

    /// The tags of some repositories, by target and age (`prune-tags`: it judged only the
    /// repositories its rules matched, and a tag's age decides).
    pub fn tags_of(repos: Vec<JudgedRepo<'a>>) -> Judged<'a> {
        Judged::new(repos, false, true)
    }

    fn new(mut repos: Vec<JudgedRepo<'a>>, whole_store: bool, push_times: bool) -> Judged<'a> {
        repos.sort_by(|a, b| a.name.cmp(b.name));
        for r in &mut repos {
            r.tags.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Judged {
            repos,
            whole_store,
            push_times,
        }
    }
}

/// The repositories as they are now, and the problems met listing them again. A relisting reads no
/// blob table: its repositories' revisions are read through an empty one (`BlobTable::default()`).
pub struct Relisted {
    pub repositories: Vec<Repository>,
    pub problems: Vec<crate::model::problem::Problem>,
}

/// Lists the repositories again (their tags and revisions), as the deletes are about to start.
/// Objects that vanished between listing and reading are a change: the store is moving.
pub fn relist(storage: &dyn Storage, progress: &Progress) -> Result<Relisted, Refused> {
    progress.phase("listing the repositories again", Count::Listed, None);
    let now = walk::scan_repositories_only(storage, progress);
    progress.check().map_err(Refused::Stopped)?;
    let (repositories, problems, vanished) = now.map_err(Refused::Unlisted)?;
    none_vanished(vanished)?;
    Ok(Relisted {
        repositories,
        problems,
    })
}

/// Refuses when a walk found `objects` it had listed gone when it read them: the store was moving.
pub fn none_vanished(objects: u64) -> Result<(), Refused> {
    if objects == 0 {
        return Ok(());
    }
    Err(Refused::changed(
        Change::Vanished { objects },
        Since::Analysis,
    ))
}

/// Lists the repositories again and refuses at the first difference from what was judged.
pub fn recheck(
    storage: &dyn Storage,
    progress: &Progress,
    judged: &Judged<'_>,
    since: Since,
) -> Result<(), Refused> {
    let now = relist(storage, progress)?;
    match first_change(judged, &now.repositories, &BlobTable::default()) {
        Some(change) => Err(Refused::changed(change, since)),
        None => Ok(()),
    }
}

/// What changed since the analysis, for an online run's narrowing: the repositories whose tags,
/// revisions or `_layers` links differ from what the analysis read (new ones included), and every
/// digest those name now (their revisions, their tags' targets and their `_layers` links). A run
/// that narrows leaves those repositories and digests out, instead of refusing the whole sweep.
pub fn changed_since(
    then: &[Repository],
    blobs: &BlobTable,
    now: &[Repository],
) -> (Vec<String>, std::collections::HashSet<Digest>) {
    use std::collections::{BTreeSet, HashMap, HashSet};
    let shape = |r: &Repository, blobs: &BlobTable, links: BTreeSet<Digest>| {
        let tags: BTreeSet<(String, Option<Digest>)> = r
            .tags
            .iter()
            .map(|t| (t.name.to_string(), t.current))
            .collect();
        let revisions: BTreeSet<Digest> = r.revisions.digests(blobs).collect();
        (tags, revisions, links)
    };
    let before: HashMap<&str, _> = then
        .iter()
        .map(|r| {
            let links = (r.layer_links.iter().map(|&id| blobs.digest(id)))
                .chain(r.dangling_layer_links.iter().copied())
                .collect();
            (r.name.as_str(), shape(r, blobs, links))
        })
        .collect();
    let (mut names, mut digests) = (Vec::new(), HashSet::new());
    // A relisting reads no blob table: every `_layers` link is among its dangling ones, every
    // revision among those the store has no data for.
    let none = BlobTable::default();
    for r in now {
        let links: BTreeSet<Digest> = r.dangling_layer_links.iter().copied().collect();
        let current = shape(r, &none, links);
        if before.get(r.name.as_str()) == Some(&current) {
            continue;
        }
        let (tags, revisions, links) = current;
        digests.extend(tags.into_iter().filter_map(|(_, d)| d));
        digests.extend(revisions);
        digests.extend(links);
        names.push(r.name.clone());
    }
    (names, digests)
}

/// The first difference (in repository, then tag or revision order) between what was judged and
/// `now` (sorted by name, as a walk returns them); `None` when they agree.
pub fn first_change(
    judged: &Judged<'_>,
    now: &[Repository],
    now_blobs: &BlobTable,
) -> Option<Change> {
    if judged.whole_store {
        let names = merge(
            judged.repos.iter().map(|r| r.name),
            now.iter().map(|r| r.name.as_str()),
            |a, b| a.cmp(b),
        );
        for side in names {
            match side {
                Side::Before(name) => {
                    return Some(Change::RepositoryGone {
                        repo: name.to_owned(),
                    });
                }
                Side::After(name) => {
                    return Some(Change::RepositoryAdded {
                        repo: name.to_owned(),
                    });
                }
                Side::Both(..) => {}
            }
        }
    }
    for r in &judged.repos {
        let Ok(i) = now.binary_search_by(|n| n.name.as_str().cmp(r.name)) else {
            return Some(Change::RepositoryGone {
                repo: r.name.to_owned(),
            });
        };
        let after = &now[i];
        if let Some(change) = tag_change(r, after, judged.push_times) {
            return Some(change);
        }
        if let Some(revisions) = &r.revisions {
            let now: Vec<Digest> = after.revisions.digests(now_blobs).collect();
            let sides = merge(revisions.iter(), now.iter(), |a, b| a.cmp(b));
            for side in sides {
                let repo = r.name.to_owned();
                match side {
                    Side::Before(d) => return Some(Change::RevisionGone { repo, digest: *d }),
                    Side::After(d) => return Some(Change::RevisionAdded { repo, digest: *d }),
                    Side::Both(..) => {}
                }
            }
        }
    }
    None
}

fn tag_change(r: &JudgedRepo<'_>, after: &Repository, push_times: bool) -> Option<Change> {
    let sides = merge(r.tags.iter().copied(), after.tags.iter(), |a, b| {
        a.name.cmp(&b.name)
    });
    let repo = |t: &Tag| (r.name.to_owned(), t.name.to_string());
    for side in sides {
        let change = match side {
            Side::Before(t) => {
                let (repo, tag) = repo(t);
                Change::TagGone {
                    repo,
                    tag,
                    target: t.current,
                }
            }
            Side::After(t) => {
                let (repo, tag) = repo(t);
                Change::TagAdded {
                    repo,
                    tag,
                    target: t.current,
                }
            }
            Side::Both(b, a) if b.current != a.current => {
                let (repo, tag) = repo(b);
                Change::TagMoved {
                    repo,
                    tag,
                    from: b.current,
                    to: a.current,
                }
            }
            Side::Both(b, a) if push_times && b.moved != a.moved => {
                let (repo, tag) = repo(b);
                Change::TagPushedAgain {
                    repo,
                    tag,
                    target: b.current,
                    then: b.moved,
                    now: a.moved,
                }
            }
            Side::Both(..) => continue,
        };
        return Some(change);
    }
    None
}

/// An element of two sorted sequences: in the first only, the second only, or both.
enum Side<A, B> {
    Before(A),
    After(B),
    Both(A, B),
}

/// Walks two sequences sorted by `cmp` side by side.
fn merge<A, B>(
    before: impl Iterator<Item = A>,
    after: impl Iterator<Item = B>,
    cmp: impl Fn(&A, &B) -> Ordering,
) -> impl Iterator<Item = Side<A, B>> {
    let (mut before, mut after) = (before.peekable(), after.peekable());
    std::iter::from_fn(move || match (before.peek(), after.peek()) {
        (None, None) => None,
        (Some(_), None) => before.next().map(Side::Before),
        (None, Some(_)) => after.next().map(Side::After),
        (Some(b), Some(a)) => match cmp(b, a) {
            Ordering::Less => before.next().map(Side::Before),
            Ordering::Greater => after.next().map(Side::After),
            Ordering::Equal => Some(Side::Both(before.next()?, after.next()?)),
        },
    })
}

/// Counts and fingerprints of a store's tags and of the manifest revisions a plan keeps: what a plan
/// file records, so that `apply` can tell whether the store is still the one the plan was made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprints {
    pub tags: u64,
    pub tags_fingerprint: Digest,
    pub revisions: u64,
    pub revisions_fingerprint: Digest,
}

impl Fingerprints {
    /// The fingerprints of `repos`, leaving out the manifest revisions in `swept` (a plan's manifests).
    pub fn of<'a>(
        repos: &[Repository],
        blobs: &BlobTable,
        swept: impl IntoIterator<Item = (&'a str, &'a Digest)>,
    ) -> Fingerprints {
        use sha2::Digest as _;
        let swept: std::collections::HashSet<(&str, &Digest)> = swept.into_iter().collect();
        let (mut tags, mut revisions) = (sha2::Sha256::new(), sha2::Sha256::new());
        let (mut tag_count, mut revision_count) = (0, 0);
        for r in repos {
            for t in &r.tags {
                tag_count += 1;
                tags.update(r.name.as_bytes());
                tags.update(b"\0");
                tags.update(t.name.as_bytes());
                tags.update(b"\0");
                tags.update(t.current.map_or([0; 32], |d| d.0));
            }
            for d in (r.revisions.digests(blobs)).filter(|d| !swept.contains(&(r.name.as_str(), d)))
            {
                revision_count += 1;
                revisions.update(r.name.as_bytes());
                revisions.update(b"\0");
                revisions.update(d.0);
            }
        }
        Fingerprints {
            tags: tag_count,
            tags_fingerprint: Digest(tags.finalize().into()),
            revisions: revision_count,
            revisions_fingerprint: Digest(revisions.finalize().into()),
        }
    }

    /// The first way `self` (the store now) differs from what a plan recorded (`then`).
    pub fn change_since(&self, then: &Fingerprints) -> Option<Change> {
        if self.tags_fingerprint != then.tags_fingerprint {
            return Some(Change::Fingerprint {
                roots: Roots::Tags,
                then: then.tags,
                now: self.tags,
            });
        }
        if self.revisions_fingerprint != then.revisions_fingerprint {
            return Some(Change::Fingerprint {
                roots: Roots::Revisions,
                then: then.revisions,
                now: self.revisions,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layout;
    use crate::pipeline::collect::inventory::Revisions;
    use crate::storage::mem::{MemStorage, Op};

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn tag(name: &str, c: char, moved: i64) -> Tag {
        Tag {
            name: name.into(),
            current: Some(d(c)),
            moved,
            ..Tag::default()
        }
    }

    fn repo(name: &str, tags: &[(&str, char)], revisions: &[char]) -> Repository {
        Repository {
            name: name.into(),
            tags: tags.iter().map(|(t, c)| tag(t, *c, 0)).collect(),
            revisions: Revisions::new(&BlobTable::default(), revisions.iter().map(|c| d(*c))),
            ..Repository::default()
        }
    }

    fn first(before: &[Repository], after: &[Repository]) -> Option<String> {
        first_change(
            &Judged::whole_store(before, &BlobTable::default()),
            after,
            &BlobTable::default(),
        )
        .map(|c| c.to_string())
    }

    #[test]
    fn the_first_change_between_two_walks_is_named() {
        let before = vec![repo("a", &[("v1", '1')], &['1']), repo("b", &[], &['2'])];
        assert_eq!(first(&before, &before.clone()), None);
        let moved = vec![repo("a", &[("v1", '3')], &['1']), repo("b", &[], &['2'])];
        assert_eq!(
            first(&before, &moved).unwrap(),
            format!("tag a:v1 moved from {} to {}", d('1'), d('3'))
        );
        let pushed = vec![
            repo("a", &[("v1", '1')], &['1']),
            repo("b", &[], &['2', '4']),
        ];
        assert_eq!(
            first(&before, &pushed).unwrap(),
            format!("new manifest revision b@{}", d('4'))
        );
        let tagged = vec![
            repo("a", &[("v0", '5'), ("v1", '1')], &['1']),
            repo("b", &[], &['2']),
        ];
        assert_eq!(
            first(&before, &tagged).unwrap(),
            format!("new tag a:v0 naming {}", d('5'))
        );
        let gone = vec![repo("a", &[("v1", '1')], &['1'])];
        assert_eq!(first(&before, &gone).unwrap(), "repository b is gone");
        let added = vec![before[0].clone(), before[1].clone(), repo("c", &[], &[])];
        assert_eq!(first(&before, &added).unwrap(), "new repository c");
    }

    #[test]
    fn judged_tags_count_a_re_push_and_ignore_repositories_they_did_not_judge() {
        let before = vec![repo("a", &[("v1", '1')], &['1']), repo("b", &[], &['2'])];
        let a_tags: Vec<&Tag> = before[0].tags.iter().collect();
        let judged = Judged::tags_of(vec![JudgedRepo {
            name: "a",
            tags: a_tags,
            revisions: None,
        }]);
        // New revisions and repositories are not what prune-tags judged.
        let grown = vec![
            repo("a", &[("v1", '1')], &['1', '9']),
            repo("b", &[("new", '7')], &['2']),
            repo("c", &[], &[]),
        ];
        assert_eq!(first_change(&judged, &grown, &BlobTable::default()), None);
        // The same target written again later is a change of age.
        let mut repushed = before.clone();
        repushed[0].tags[0].moved = 60;
        assert_eq!(
            first_change(&judged, &repushed, &BlobTable::default()),
            Some(Change::TagPushedAgain {
                repo: "a".into(),
                tag: "v1".into(),
                target: Some(d('1')),
                then: 0,
                now: 60
            })
        );
        // The whole store judged by targets does not count it.
        assert_eq!(first(&before, &repushed), None);
        assert_eq!(
            first_change(&judged, &before[1..], &BlobTable::default()),
            Some(Change::RepositoryGone { repo: "a".into() })
        );
    }

    #[test]
    fn one_message_form_names_what_changed_since_when_and_what_to_do() {
        let change = Change::TagMoved {
            repo: "team/app".into(),
            tag: "v1".into(),
            from: Some(d('1')),
            to: None,
        };
        let during = Refused::changed(change.clone(), Since::Analysis).to_string();
        assert!(
            during.starts_with("refusing to delete: the store's tags changed while it was analysed (tag team/app:v1 moved from sha256:111"),
            "{during}"
        );
        assert!(
            during.ends_with(
                "to nothing); nothing was deleted. Put the registry in read-only mode and run again"
            ),
            "{during}"
        );
        let planned = Refused::changed(
            Change::Fingerprint {
                roots: Roots::Revisions,
                then: 3,
                now: 4,
            },
            Since::Plan {
                created: "2026-01-02T03:04:05Z".into(),
                command: "gc",
            },
        )
        .to_string();
        assert_eq!(
            planned,
            "refusing to delete: the store's manifest revisions changed since the plan was made at \
             2026-01-02T03:04:05Z (3 then, 4 now, and not the same ones); nothing was deleted. Make a \
             new plan with `regsweep gc --plan` and review it"
        );
    }

    #[test]
    fn fingerprints_leave_out_the_swept_revisions_and_see_a_moved_tag() {
        let repos = vec![repo("a", &[("v1", '1')], &['1', '2'])];
        let all = Fingerprints::of(&repos, &BlobTable::default(), []);
        assert_eq!((all.tags, all.revisions), (1, 2));
        let kept = Fingerprints::of(&repos, &BlobTable::default(), [("a", &d('2'))]);
        assert_eq!(kept.revisions, 1);
        assert_eq!(
            kept.change_since(&all),
            Some(Change::Fingerprint {
                roots: Roots::Revisions,
                then: 2,
                now: 1
            })
        );
        let mut moved = repos.clone();
        moved[0].tags[0].current = Some(d('2'));
        assert_eq!(
            Fingerprints::of(&moved, &BlobTable::default(), [])
                .change_since(&all)
                .map(|c| c.what()),
            Some("tags")
        );
        assert_eq!(
            Fingerprints::of(&repos, &BlobTable::default(), []).change_since(&all),
            None
        );
    }

    #[test]
    fn the_recheck_lists_the_store_again_and_refuses_a_tag_moved_since() {
        let store = MemStorage::new();
        let (a, b) = (d('a'), d('b'));
        for m in [a, b] {
            store.put(&layout::revision_link("team/app", &m), m.to_string());
        }
        store.put(&layout::tag_current("team/app", "v1"), a.to_string());
        store.put(
            &layout::tag_index_entry("team/app", "v1", &a),
            a.to_string(),
        );
        let progress = Progress::new();
        let analysed = relist(&store, &progress).unwrap().repositories;
        assert_eq!(analysed.len(), 1);
        assert_eq!(analysed[0].tags[0].current, Some(a));
        let judged = Judged::whole_store(&analysed, &BlobTable::default());
        let lists = store.calls(Op::List);
        recheck(&store, &progress, &judged, Since::Analysis).expect("nothing changed");
        assert!(store.calls(Op::List) > lists, "the store was listed again");

        store.put(&layout::tag_current("team/app", "v1"), b.to_string());
        match recheck(&store, &progress, &judged, Since::Analysis) {
            Err(Refused::Changed { change, since }) => {
                assert_eq!(since, Since::Analysis);
                assert_eq!(
                    *change,
                    Change::TagMoved {
                        repo: "team/app".into(),
                        tag: "v1".into(),
                        from: Some(a),
                        to: Some(b),
                    }
                );
            }
            other => panic!("not refused as moved: {other:?}"),
        }
        // A listing that fails refuses too: an unlisted store is not an unchanged one.
        store.fail_call(Op::List, 1);
        let failed = recheck(&store, &progress, &judged, Since::Analysis);
        assert!(matches!(failed, Err(Refused::Unlisted(_))), "{failed:?}");
    }
}
