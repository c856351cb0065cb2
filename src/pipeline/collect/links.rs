//! The links the walk must open: a tag's `current` link (where the tag points) and each revision
//! link (which must name its own folder), read and checked.

use crate::model::digest::{AliasDigest, Digest};
use crate::model::layout;
use crate::model::problem::{Problem, ProblemKind};
use crate::pipeline::collect::inventory::Repository;
use crate::storage::{Storage, StorageError};

/// A link whose content must be read (by index of its repository): a revision link, to check that
/// it names its own folder, or a tag's current link (by index in the repository's tags).
pub(crate) enum LinkToRead {
    Revision {
        repo: usize,
        digest: Digest,
    },
    Tag {
        repo: usize,
        tag: usize,
    },
    /// An alias link (`_layers/sha512/<hex>/link`), which holds the sha256 digest of its data.
    Alias {
        repo: usize,
        alias: AliasDigest,
    },
}

/// The most a link file may hold: `sha256:` and 64 hex digits, with room for a newline or two.
const LINK_LIMIT: u64 = 256;

/// What reading a link gave.
pub(crate) enum LinkOutcome {
    /// The link names this digest (for a revision link: its own folder's); with a problem to
    /// report when it holds the digest more than once, which the link still names.
    Names(Digest, Option<Problem>),
    /// It was listed and is gone now.
    Vanished,
    Bad(Problem),
}

pub(crate) fn read_link(
    storage: &dyn Storage,
    l: &LinkToRead,
    repos: &[Repository],
) -> LinkOutcome {
    let (repo, key, revision, tag) = match *l {
        LinkToRead::Revision { repo, digest } => {
            let name = &repos[repo].name;
            (
                name,
                layout::revision_link(name, &digest),
                Some(digest),
                None,
            )
        }
        LinkToRead::Tag { repo, tag } => {
            let (name, tag) = (&repos[repo].name, &repos[repo].tags[tag].name);
            (name, layout::tag_current(name, tag), None, Some(tag))
        }
        LinkToRead::Alias { repo, ref alias } => {
            let name = &repos[repo].name;
            (name, layout::alias_link(name, alias), None, None)
        }
    };
    let bytes = match storage.read(&key, LINK_LIMIT) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return LinkOutcome::Vanished,
        Err(StorageError::TooLarge { .. }) => {
            return LinkOutcome::Bad(
                Problem::at(
                    ProblemKind::BadLink,
                    &key,
                    "link file is too large to hold a digest",
                )
                .repo(repo),
            );
        }
        Err(e) => {
            return LinkOutcome::Bad(
                Problem::at(ProblemKind::Unreadable, &key, e.to_string()).repo(repo),
            );
        }
    };
    check_link(&bytes, &key, repo, revision, tag.map(|t| t.as_str()))
}

/// The digest a link holds more than once in a row (`sha256:…sha256:…`), and how many times.
fn repeated_digest(text: &str) -> Option<(Digest, usize)> {
    const ONE: usize = "sha256:".len() + 64;
    let text = text.trim();
    if text.len() <= ONE || !text.len().is_multiple_of(ONE) || !text.is_ascii() {
        return None;
    }
    let first = &text[..ONE];
    let d = Digest::parse(first).ok()?;
    (0..text.len() / ONE)
        .all(|i| &text[i * ONE..(i + 1) * ONE] == first)
        .then_some((d, text.len() / ONE))
}

/// Checks a link's content: a digest, and for a revision link its own folder's.
pub(crate) fn check_link(
    bytes: &[u8],
    key: &str,
    repo: &str,
    revision: Option<Digest>,
    tag: Option<&str>,
) -> LinkOutcome {
    let mut problem = if bytes.len() > LINK_LIMIT as usize {
        Problem::at(
            ProblemKind::BadLink,
            key,
            "link file is too large to hold a digest",
        )
    } else {
        let text = String::from_utf8_lossy(bytes);
        let (parsed, note) = match repeated_digest(&text) {
            Some((d, times)) => (
                Ok(d),
                Some(
                    Problem::at(
                        ProblemKind::RepeatedLink,
                        key,
                        format!(
                            "the link holds {d} {times} times over (a retried write of registry \
                             3.0 to 3.1.1 on Azure); it is taken to name {d}, which is kept. \
                             Rewrite it to hold the digest once: the registry cannot read it"
                        ),
                    )
                    .repo(repo),
                ),
            ),
            None => (Digest::parse(&text), None),
        };
        let note = note.map(|mut n| {
            if let Some(tag) = tag {
                n = n.tag(tag);
            }
            n
        });
        match (parsed, revision) {
            (Ok(d), Some(folder)) if d == folder => {
                return LinkOutcome::Names(d, note.map(|n| n.digest(folder)));
            }
            (Ok(d), None) => return LinkOutcome::Names(d, note),
            (Ok(d), Some(folder)) => Problem::at(
                ProblemKind::BadLink,
                key,
                format!("revision link names {d}, not its folder's digest {folder}"),
            ),
            (Err(_), _) if Digest::parse(text.trim()).is_ok() => Problem::at(
                ProblemKind::BadLink,
                key,
                format!(
                    "the link holds {} with white space around it ({:?}); the registry cannot \
                     read it either (it answers 500 for what it names): rewrite it to hold the \
                     digest alone",
                    text.trim(),
                    text.trim_start_matches(|c: char| !c.is_whitespace())
                        .chars()
                        .filter(|c| c.is_whitespace())
                        .collect::<String>()
                ),
            ),
            (Err(e), _) => Problem::at(ProblemKind::BadLink, key, format!("link content is {e}")),
        }
    }
    .repo(repo);
    if let Some(folder) = revision {
        problem = problem.digest(folder);
    }
    if let Some(tag) = tag {
        problem = problem.tag(tag);
    }
    LinkOutcome::Bad(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_ending_in_a_newline_is_refused_and_the_message_says_the_registry_refuses_it_too() {
        let d = Digest::of(b"x");
        let key = "docker/registry/v2/repositories/r/_manifests/tags/t/current/link";
        match check_link(format!("{d}\n").as_bytes(), key, "r", None, Some("t")) {
            LinkOutcome::Bad(p) => {
                assert!(p.message.contains("cannot read it either"), "{}", p.message);
                assert!(p.message.contains(&d.to_string()), "{}", p.message);
            }
            _ => panic!("a link with a newline names nothing"),
        }
    }

    #[test]
    fn a_link_holding_its_digest_twice_names_it_and_says_so() {
        let d = Digest::of(b"x");
        let twice = format!("{d}{d}");
        let key = "docker/registry/v2/repositories/r/_manifests/tags/t/current/link";
        match check_link(twice.as_bytes(), key, "r", None, Some("t")) {
            LinkOutcome::Names(named, Some(p)) => {
                assert_eq!(named, d);
                assert_eq!(p.kind, ProblemKind::RepeatedLink);
                assert!(!p.kind.blocks_delete());
                assert_eq!(p.tag.as_deref(), Some("t"));
                assert!(p.message.contains("2 times"), "{}", p.message);
            }
            _ => panic!("a doubled link names its digest"),
        }
        assert!(matches!(
            check_link(twice.as_bytes(), key, "r", Some(d), None),
            LinkOutcome::Names(_, Some(_))
        ));
        // Two different digests, or a digest and a half, are bad links.
        let e = Digest::of(b"y");
        for bad in [format!("{d}{e}"), format!("{d}{}", &d.to_string()[..30])] {
            assert!(
                matches!(
                    check_link(bad.as_bytes(), key, "r", None, None),
                    LinkOutcome::Bad(_)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            check_link(d.to_string().as_bytes(), key, "r", None, None),
            LinkOutcome::Names(_, None)
        ));
    }
}
