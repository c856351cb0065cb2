//! regsweep's own rules, in YAML or JSON (README, Retention policies).

use crate::pipeline::retention::policy::{
    DEFAULT_MAX_REMOVED_SHARE, Format, Keep, Pattern, Policy, PolicyError, Rule, Status, Unit,
    duration, repo_glob,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NativeFile {
    rules: Vec<NativeRule>,
    #[serde(default)]
    allow_emptying_repositories: bool,
    max_removed_share: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeRule {
    name: Option<String>,
    priority: Option<i64>,
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    exclude_repositories: Vec<String>,
    status: Option<Status>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    exclude_tags: Vec<String>,
    keep: Option<NativeKeep>,
    #[serde(default)]
    expire: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NativeKeep {
    Word(String),
    Conditions(NativeConditions),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeConditions {
    newest: Option<usize>,
    most_recently_pulled: Option<usize>,
    pushed_within: Option<String>,
    pulled_within: Option<String>,
}

pub(super) fn native(path: &str, file: NativeFile) -> Result<Policy, PolicyError> {
    let mut rules = Vec::new();
    for (i, r) in file.rules.into_iter().enumerate() {
        let name = r.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
        let bad = |message: String| PolicyError::Rule {
            path: path.to_owned(),
            rule: name.clone(),
            message,
        };
        let keep = match (&r.keep, r.expire) {
            (Some(_), true) => return Err(bad("give keep or expire, not both".into())),
            (None, false) => return Err(bad("say what the rule does: keep or expire".into())),
            (None, true) => Keep::default(),
            (Some(NativeKeep::Word(w)), false) if w == "all" => Keep {
                all: true,
                ..Keep::default()
            },
            (Some(NativeKeep::Word(w)), false) => {
                return Err(bad(format!(
                    "keep: {w:?}: give `all` or conditions (newest, most_recently_pulled, \
                     pushed_within, pulled_within)"
                )));
            }
            (Some(NativeKeep::Conditions(c)), false) => {
                let k = Keep {
                    all: false,
                    newest: c.newest,
                    most_recently_pulled: c.most_recently_pulled,
                    pushed_within: c
                        .pushed_within
                        .as_deref()
                        .map(duration)
                        .transpose()
                        .map_err(&bad)?,
                    pulled_within: c
                        .pulled_within
                        .as_deref()
                        .map(duration)
                        .transpose()
                        .map_err(&bad)?,
                };
                if k == Keep::default() {
                    return Err(bad("keep has no condition".into()));
                }
                k
            }
        };
        let status = r.status.unwrap_or(Status::Tagged);
        if status == Status::Untagged && !(r.tags.is_empty() && r.exclude_tags.is_empty()) {
            return Err(bad("an untagged rule has no tags to match".into()));
        }
        let patterns = |list: &[String]| {
            list.iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        let globs = |list: &[String]| {
            list.iter()
                .map(|p| repo_glob(p))
                .collect::<Result<Vec<_>, _>>()
        };
        rules.push(Rule {
            priority: r.priority.unwrap_or(i as i64),
            repositories: globs(&r.repositories).map_err(&bad)?,
            exclude_repositories: globs(&r.exclude_repositories).map_err(&bad)?,
            repository_regex: None,
            status,
            tags: patterns(&r.tags).map_err(&bad)?,
            exclude_tags: patterns(&r.exclude_tags).map_err(&bad)?,
            keep,
            name,
        });
    }
    let share = file.max_removed_share.unwrap_or(DEFAULT_MAX_REMOVED_SHARE);
    if !(0.0..=1.0).contains(&share) {
        return Err(PolicyError::Read {
            path: path.to_owned(),
            message: format!("max_removed_share {share} is not between 0 and 1"),
        });
    }
    Ok(Policy {
        path: path.to_owned(),
        format: Format::Regsweep,
        unit: Unit::Tag,
        counts_decided: false,
        rules,
        allow_emptying_repositories: file.allow_emptying_repositories,
        max_removed_share: share,
    })
}
