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
    pub fn parse(text: &str) -> Result<Pattern, String> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeFile {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcrFile {
    rules: Vec<EcrRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcrRule {
    rule_priority: i64,
    description: Option<String>,
    selection: EcrSelection,
    action: EcrAction,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcrSelection {
    tag_status: Status,
    #[serde(default)]
    tag_pattern_list: Vec<String>,
    #[serde(default)]
    tag_prefix_list: Vec<String>,
    storage_class: Option<String>,
    count_type: String,
    count_unit: Option<String>,
    count_number: u64,
}

#[derive(Deserialize)]
struct EcrAction {
    #[serde(rename = "type")]
    kind: String,
}

/// A duration in days (`30d`), hours, minutes (as `prune-tags --older-than` takes them).
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration like 30d or 12h: {e}"))
}

fn repo_glob(p: &str) -> Result<GlobMatcher, String> {
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
        if let Some(cmd) = acr_command(trimmed) {
            return acr_purge(path, &cmd);
        }
        let value: serde_json::Value = serde_norway::from_str(text)
            .map_err(|e| read(format!("neither YAML nor JSON: {e}")))?;
        let is_ecr = value["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r.get("rulePriority").is_some()));
        let mut policy = if is_ecr {
            let file: EcrFile = serde_json::from_value(value)
                .map_err(|e| read(format!("not an ECR lifecycle policy: {e}")))?;
            ecr(path, file)?
        } else {
            let file: NativeFile = serde_json::from_value(value).map_err(|e| {
                read(format!(
                    "not a policy (see README, Retention policies): {e}"
                ))
            })?;
            native(path, file)?
        };
        if policy.rules.is_empty() {
            return Err(read("the policy has no rules".into()));
        }
        policy.rules.sort_by_key(|r| r.priority);
        Ok(policy)
    }

    /// True when a rule needs pull records.
    pub fn on_pulls(&self) -> bool {
        self.rules.iter().any(|r| r.keep.on_pulls())
    }
}

fn native(path: &str, file: NativeFile) -> Result<Policy, PolicyError> {
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
    let mut priorities: Vec<i64> = rules.iter().map(|r| r.priority).collect();
    priorities.sort();
    if priorities.windows(2).any(|w| w[0] == w[1]) {
        return Err(PolicyError::Read {
            path: path.to_owned(),
            message: "two rules have the same priority: the order would be a guess".into(),
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

/// An ECR lifecycle policy, with the checks ECR makes when it is put on a repository.
fn ecr(path: &str, file: EcrFile) -> Result<Policy, PolicyError> {
    let mut rules = Vec::new();
    let mut untagged = 0;
    for r in &file.rules {
        let name = r
            .description
            .clone()
            .unwrap_or_else(|| format!("rulePriority {}", r.rule_priority));
        let bad = |message: String| PolicyError::Rule {
            path: path.to_owned(),
            rule: name.clone(),
            message,
        };
        let s = &r.selection;
        if r.action.kind != "expire" {
            return Err(bad(format!(
                "action {:?}: only expire applies to a registry's storage (there is no archive tier)",
                r.action.kind
            )));
        }
        if s.storage_class.as_deref().is_some_and(|c| c != "standard") {
            return Err(bad(
                "storageClass archive: a registry's storage has one class".into(),
            ));
        }
        if !s.tag_pattern_list.is_empty() && !s.tag_prefix_list.is_empty() {
            return Err(bad("give tagPatternList or tagPrefixList, not both".into()));
        }
        let listed = !s.tag_pattern_list.is_empty() || !s.tag_prefix_list.is_empty();
        match s.tag_status {
            Status::Tagged if !listed => {
                return Err(bad(
                    "tagStatus tagged needs tagPatternList or tagPrefixList".into(),
                ));
            }
            Status::Untagged | Status::Any if listed => {
                return Err(bad("only tagStatus tagged takes a tag list".into()));
            }
            Status::Untagged => untagged += 1,
            _ => {}
        }
        if s.tag_status == Status::Any
            && file.rules.iter().any(|o| o.rule_priority > r.rule_priority)
        {
            return Err(bad(
                "a tagStatus any rule must have the highest rulePriority".into(),
            ));
        }
        let mut tags = Vec::new();
        for p in &s.tag_pattern_list {
            if p.matches('*').count() > 4 {
                return Err(bad(format!("{p:?}: at most four wildcards")));
            }
            tags.push(Pattern::parse(p).map_err(&bad)?);
        }
        tags.extend(s.tag_prefix_list.iter().map(|p| Pattern::Prefix(p.clone())));
        let n = s.count_number;
        if n < 1 {
            return Err(bad("countNumber must be at least 1".into()));
        }
        let days = || -> Result<Duration, PolicyError> {
            match s.count_unit.as_deref() {
                Some("days") => Ok(Duration::from_secs(n * 86_400)),
                Some(other) => Err(bad(format!(
                    "countUnit {other:?}: ECR counts time in days (\"countUnit\": \"days\")"
                ))),
                None => Err(bad(
                    "countUnit is missing: ECR counts time in days (\"countUnit\": \"days\")"
                        .into(),
                )),
            }
        };
        let keep = match s.count_type.as_str() {
            "imageCountMoreThan" if s.count_unit.is_none() => Keep {
                newest: Some(n as usize),
                ..Keep::default()
            },
            "imageCountMoreThan" => {
                return Err(bad("imageCountMoreThan takes no countUnit".into()));
            }
            "sinceImagePushed" => Keep {
                pushed_within: Some(days()?),
                ..Keep::default()
            },
            "sinceImagePulled" => Keep {
                pulled_within: Some(days()?),
                ..Keep::default()
            },
            other => {
                return Err(bad(format!(
                    "countType {other:?} is not one regsweep applies"
                )));
            }
        };
        rules.push(Rule {
            name,
            priority: r.rule_priority,
            repositories: Vec::new(),
            exclude_repositories: Vec::new(),
            repository_regex: None,
            status: s.tag_status,
            tags,
            exclude_tags: Vec::new(),
            keep,
        });
    }
    if untagged > 1 {
        return Err(PolicyError::Read {
            path: path.to_owned(),
            message: "only one rule may select untagged images".into(),
        });
    }
    let mut priorities: Vec<i64> = rules.iter().map(|r| r.priority).collect();
    priorities.sort();
    if priorities.windows(2).any(|w| w[0] == w[1]) {
        return Err(PolicyError::Read {
            path: path.to_owned(),
            message: "rulePriority values must be unique".into(),
        });
    }
    Ok(Policy {
        path: path.to_owned(),
        format: Format::EcrLifecycle,
        unit: Unit::Image,
        counts_decided: true,
        rules,
        allow_emptying_repositories: true,
        max_removed_share: 1.0,
    })
}

/// The words of an `acr purge` command line (also inside `az acr run --cmd "acr purge …"`), with
/// shell quoting undone.
fn acr_command(text: &str) -> Option<Vec<String>> {
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
fn acr_purge(path: &str, words: &[String]) -> Result<Policy, PolicyError> {
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
fn acr_ago(text: &str) -> Result<Duration, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
