//! A retention policy, as a file: regsweep's own rules (YAML or JSON), an ECR lifecycle policy as
//! AWS writes it, or an ACR purge command line. Each is read into the same ordered [`Rule`]s, which
//! [`crate::pipeline::retention::judge`] applies. Parsing and checking only: no I/O but the file read.
//!
//! The semantics, in README's "Retention policies": rules by priority (lowest first; in file order
//! where none is given), the first rule that selects a tag (or an image, for ECR) decides it, what
//! no rule selects is kept.

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

mod acr;
mod ecr;
mod native;

/// A policy that cannot be used; names the file, and the rule where there is one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: rule {rule:?}: {message}")]
    Rule {
        path: String,
        rule: String,
        message: String,
    },
}

/// Which manifests a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Tagged,
    Untagged,
    Any,
}

/// What becomes of what a rule selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keep {
    /// Everything selected stays.
    pub all: bool,
    /// The N most recently pushed stay.
    pub newest: Option<usize>,
    /// The N most recently pulled stay (never pulled: the push time stands in).
    pub most_recently_pulled: Option<usize>,
    /// Those pushed within this window stay.
    pub pushed_within: Option<Duration>,
    /// Those pulled within this window stay (never pulled: the push time stands in).
    pub pulled_within: Option<Duration>,
}

impl Keep {
    /// True when a condition needs pull records.
    pub fn on_pulls(&self) -> bool {
        self.most_recently_pulled.is_some() || self.pulled_within.is_some()
    }
}

/// A tag pattern: a glob (`v*`, `release-?`) or, between slashes, a regular expression.
#[derive(Debug, Clone)]
pub enum Pattern {
    Glob(String, GlobMatcher),
    Regex(Regex),
    /// ECR's `tagPrefixList`.
    Prefix(String),
}

impl Pattern {
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        if let Some(re) = text.strip_prefix('/').and_then(|t| t.strip_suffix('/')) {
            return Regex::new(re)
                .map(Pattern::Regex)
                .map_err(|e| format!("{text:?} is not a regular expression: {e}"));
        }
        let glob = GlobBuilder::new(text)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("{text:?} is not a glob: {}", e.kind()))?;
        Ok(Pattern::Glob(text.to_owned(), glob.compile_matcher()))
    }

    pub fn is_match(&self, tag: &str) -> bool {
        match self {
            Pattern::Glob(_, g) => g.is_match(tag),
            Pattern::Regex(r) => r.is_match(tag),
            Pattern::Prefix(p) => tag.starts_with(p.as_str()),
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Glob(g, _) => write!(f, "{g}"),
            Pattern::Regex(r) => write!(f, "/{r}/"),
            Pattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// One rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub priority: i64,
    /// Repository globs (`*` one level, `**` any depth); empty: every repository.
    pub repositories: Vec<GlobMatcher>,
    pub exclude_repositories: Vec<GlobMatcher>,
    /// Repository regular expressions (ACR's `--filter` repository part), fully anchored.
    pub repository_regex: Option<Regex>,
    pub status: Status,
    /// Tag patterns: a tag is selected when one matches (an ECR image when every one matches one
    /// of its tags); empty: every tag.
    pub tags: Vec<Pattern>,
    pub exclude_tags: Vec<Pattern>,
    pub keep: Keep,
}

impl Rule {
    pub fn selects_repository(&self, repo: &str) -> bool {
        let included = if let Some(re) = &self.repository_regex {
            re.is_match(repo)
        } else {
            self.repositories.is_empty() || self.repositories.iter().any(|g| g.is_match(repo))
        };
        included && !self.exclude_repositories.iter().any(|g| g.is_match(repo))
    }
}

/// How a policy groups what it judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Each tag on its own (regsweep's rules, ACR purge).
    Tag,
    /// An image is a manifest with all its tags (ECR): a rule selects it when every pattern
    /// matches one of its tags, and expiring it removes every tag.
    Image,
}

/// Where the policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Regsweep,
    EcrLifecycle,
    AcrPurge,
}

impl Format {
    pub fn words(self) -> &'static str {
        match self {
            Format::Regsweep => "regsweep rules",
            Format::EcrLifecycle => "an ECR lifecycle policy, judged by image",
            Format::AcrPurge => "acr purge",
        }
    }
}

/// A policy: its rules by priority, and its guards.
#[derive(Debug, Clone)]
pub struct Policy {
    pub path: String,
    pub format: Format,
    pub unit: Unit,
    /// Counts (`newest`, `most_recently_pulled`) include what a higher rule already decided
    /// (ECR: a rule "can still identify" images a higher rule marked); regsweep's rules count only
    /// what they decide.
    pub counts_decided: bool,
    pub rules: Vec<Rule>,
    /// A run may leave a repository with no tag.
    pub allow_emptying_repositories: bool,
    /// The largest share of all judged tags a run may remove (0 to 1).
    pub max_removed_share: f64,
}

/// The share of tags a run removes at most unless the policy says more.
pub const DEFAULT_MAX_REMOVED_SHARE: f64 = 0.5;

/// A duration in days (`30d`), hours, minutes (as `prune-tags --older-than` takes them).
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration like 30d or 12h: {e}"))
}

pub(super) fn repo_glob(p: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(p.trim_matches('/'))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("repository glob {p:?}: {}", e.kind()))
}

impl Policy {
    /// Reads `path`: an ECR lifecycle policy (a JSON object whose rules carry `rulePriority`), an
    /// ACR purge command line (`acr purge --filter …`), else regsweep's rules in YAML or JSON.
    pub fn read(path: &Path) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Policy::parse(&shown, &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Policy, PolicyError> {
        let read = |message: String| PolicyError::Read {
            path: path.to_owned(),
            message,
        };
        let trimmed = text.trim_start();
        if let Some(cmd) = acr::acr_command(trimmed) {
            return acr::acr_purge(path, &cmd);
        }
        let value: serde_json::Value = serde_norway::from_str(text)
            .map_err(|e| read(format!("neither YAML nor JSON: {e}")))?;
        let is_ecr = value["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r.get("rulePriority").is_some()));
        let mut policy = if is_ecr {
            let file: ecr::EcrFile = serde_json::from_value(value)
                .map_err(|e| read(format!("not an ECR lifecycle policy: {e}")))?;
            ecr::ecr(path, file)?
        } else {
            let file: native::NativeFile = serde_json::from_value(value).map_err(|e| {
                read(format!(
                    "not a policy (see README, Retention policies): {e}"
                ))
            })?;
            native::native(path, file)?
        };
        if policy.rules.is_empty() {
            return Err(read("the policy has no rules".into()));
        }
        let mut priorities: Vec<i64> = policy.rules.iter().map(|r| r.priority).collect();
        priorities.sort();
        if priorities.windows(2).any(|w| w[0] == w[1]) {
            return Err(read(match policy.format {
                Format::EcrLifecycle => "rulePriority values must be unique".into(),
                _ => "two rules have the same priority: the order would be a guess".into(),
            }));
        }
        policy.rules.sort_by_key(|r| r.priority);
        Ok(policy)
    }

    /// True when a rule needs pull records.
    pub fn on_pulls(&self) -> bool {
        self.rules.iter().any(|r| r.keep.on_pulls())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::retention::policy::acr::acr_ago;

    #[test]
    fn each_format_is_recognised_by_its_shape() {
        let native = "rules:\n  - name: releases\n    tags: ['v*', '/^rc-\\d+$/']\n    keep: all\n  \
                      - repositories: ['team/**']\n    keep: {newest: 5, pushed_within: 30d}\n";
        let p = Policy::parse("p.yml", native).unwrap();
        assert_eq!(
            (p.format, p.unit, p.rules.len()),
            (Format::Regsweep, Unit::Tag, 2)
        );
        assert!(p.rules[0].keep.all && p.rules[0].tags[1].is_match("rc-12"));
        assert!(!p.rules[0].tags[1].is_match("rc-x"));
        assert_eq!(p.rules[1].keep.newest, Some(5));
        assert_eq!(
            p.rules[1].keep.pushed_within,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert!(
            p.rules[1].selects_repository("team/a/b") && !p.rules[1].selects_repository("other")
        );
        assert_eq!(p.max_removed_share, DEFAULT_MAX_REMOVED_SHARE);

        let ecr = r#"{"rules":[{"rulePriority":2,"selection":{"tagStatus":"any","countType":
            "imageCountMoreThan","countNumber":3},"action":{"type":"expire"}},{"rulePriority":1,
            "description":"old prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],
            "countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;
        let p = Policy::parse("ecr.json", ecr).unwrap();
        assert_eq!((p.format, p.unit), (Format::EcrLifecycle, Unit::Image));
        assert_eq!(p.rules[0].name, "old prod", "sorted by rulePriority");
        assert!(p.counts_decided);

        let acr = "az acr run --registry r --cmd \"acr purge --filter 'samples/.*:^dev' --ago 2d3h \
                   --keep 2 --untagged\" /dev/null\n";
        let p = Policy::parse("purge.txt", acr).unwrap();
        assert_eq!(p.format, Format::AcrPurge);
        assert_eq!(p.rules.len(), 2);
        assert!(
            p.rules[0].selects_repository("samples/app")
                && !p.rules[0].selects_repository("x/samples/app")
        );
        assert_eq!(
            p.rules[0].keep.pushed_within,
            Some(Duration::from_secs(2 * 86_400 + 3 * 3_600))
        );
        assert_eq!(p.rules[1].status, Status::Untagged);
    }

    #[test]
    fn what_a_policy_cannot_mean_is_refused_naming_the_file_and_rule() {
        let err = |text: &str| Policy::parse("p.yml", text).unwrap_err().to_string();
        assert!(err("rules: []").contains("no rules"));
        let e = err("rules:\n  - name: x\n    tags: [a]\n");
        assert!(
            e.starts_with("p.yml: rule \"x\"") && e.contains("keep or expire"),
            "{e}"
        );
        assert!(err("rules:\n  - keep: {}\n").contains("no condition"));
        assert!(err("rules:\n  - keep: {newest: 1}\n    colour: red\n").contains("colour"));
        assert!(
            err("rules:\n  - tags: ['/[/']\n    expire: true\n").contains("regular expression")
        );
        assert!(
            err("rules:\n  - expire: true\n    priority: 1\n  - expire: true\n    priority: 1\n")
                .contains("same priority")
        );
        let ecr = |sel: &str| {
            err(&format!(
                r#"{{"rules":[{{"rulePriority":1,"selection":{sel},"action":{{"type":"expire"}}}}]}}"#
            ))
        };
        assert!(
            ecr(r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#)
                .contains("needs tagPatternList")
        );
        assert!(ecr(r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"hours","countNumber":1}"#)
            .contains("days"));
        assert!(err("acr purge --filter 'a:.*'").contains("--ago is required"));
        assert!(err("acr purge --filter nocolon --ago 1d").contains("<repository>:<tag regex>"));
        assert!(acr_ago("1x").is_err() && acr_ago("12").is_err());
        assert_eq!(acr_ago("30m").unwrap(), Duration::from_secs(1800));
    }
}
