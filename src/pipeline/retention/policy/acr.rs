//! An `acr purge` command line (also inside `az acr run --cmd "acr purge …"`): its filters and
//! `--ago`, as rules.

use crate::pipeline::retention::policy::{
    Format, Keep, Pattern, Policy, PolicyError, Rule, Status, Unit,
};
use regex::Regex;
use std::time::Duration;

/// The words of an `acr purge` command line (also inside `az acr run --cmd "acr purge …"`), with
/// shell quoting undone.
pub(super) fn acr_command(text: &str) -> Option<Vec<String>> {
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let words = shell_words(first);
    if let Some(inner) = words.iter().find(|w| w.starts_with("acr purge ")) {
        return Some(shell_words(inner));
    }
    let at = words
        .windows(2)
        .position(|w| w[0] == "acr" && w[1] == "purge")?;
    Some(words[at..].to_vec())
}

fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// ACR purge's filters as a policy: per `--filter repo:regex`, the tags that match, except the
/// `--keep` most recent, go when last pushed before `--ago`; `--untagged` lets untagged manifests
/// go too (by `gc -m --policy`).
pub(super) fn acr_purge(path: &str, words: &[String]) -> Result<Policy, PolicyError> {
    let bad = |message: String| PolicyError::Read {
        path: path.to_owned(),
        message: format!("acr purge: {message}"),
    };
    let mut filters = Vec::new();
    let (mut ago, mut keep, mut untagged) = (None, 0usize, false);
    let mut it = words.iter().skip(2);
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (w.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| bad(format!("{flag} takes a value")))
        };
        match flag {
            "--filter" => filters.push(value()?),
            "--ago" => ago = Some(acr_ago(&value()?).map_err(&bad)?),
            "--keep" => {
                keep = value()?
                    .parse()
                    .map_err(|_| bad("--keep takes a number".into()))?
            }
            "--untagged" => untagged = true,
            "--dry-run" | "--include-locked" => {}
            "--concurrency" | "--timeout" => {
                value()?;
            }
            other => {
                return Err(bad(format!(
                    "{other:?} is not a purge option regsweep knows"
                )));
            }
        }
    }
    let ago = ago.ok_or_else(|| bad("--ago is required (as acr purge requires it)".into()))?;
    if filters.is_empty() {
        return Err(bad("--filter is required".into()));
    }
    let mut rules = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let (repo, tag) = f
            .split_once(':')
            .ok_or_else(|| bad(format!("--filter {f:?} is not <repository>:<tag regex>")))?;
        let repository_regex = Regex::new(&format!("^(?:{repo})$"))
            .map_err(|e| bad(format!("--filter {f:?}: repository: {e}")))?;
        let tag = Regex::new(tag).map_err(|e| bad(format!("--filter {f:?}: tag: {e}")))?;
        rules.push(Rule {
            name: format!("--filter {f}"),
            priority: i as i64,
            repositories: Vec::new(),
            exclude_repositories: Vec::new(),
            repository_regex: Some(repository_regex.clone()),
            status: Status::Tagged,
            tags: vec![Pattern::Regex(tag)],
            exclude_tags: Vec::new(),
            keep: Keep {
                newest: (keep > 0).then_some(keep),
                pushed_within: Some(ago),
                ..Keep::default()
            },
        });
        if untagged {
            rules.push(Rule {
                name: format!("--untagged ({repo})"),
                priority: (filters.len() + i) as i64,
                repositories: Vec::new(),
                exclude_repositories: Vec::new(),
                repository_regex: Some(repository_regex),
                status: Status::Untagged,
                tags: Vec::new(),
                exclude_tags: Vec::new(),
                keep: Keep {
                    pushed_within: Some(ago),
                    ..Keep::default()
                },
            });
        }
    }
    Ok(Policy {
        path: path.to_owned(),
        format: Format::AcrPurge,
        unit: Unit::Tag,
        counts_decided: false,
        rules,
        allow_emptying_repositories: true,
        max_removed_share: 1.0,
    })
}

/// ACR's `--ago`: a Go-style duration with days added (`1d`, `2d3h6m`, `30m`).
pub(super) fn acr_ago(text: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut number = String::new();
    let bad = || format!("--ago {text:?} is not a duration like 1d, 2d3h6m or 30m");
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += n * match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}
