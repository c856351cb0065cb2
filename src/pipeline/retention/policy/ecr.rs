//! An ECR lifecycle policy (rules by `rulePriority`, image semantics), with the checks ECR makes when
//! it is put on a repository.

use crate::pipeline::retention::policy::{
    Format, Keep, Pattern, Policy, PolicyError, Rule, Status, Unit,
};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EcrFile {
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

/// An ECR lifecycle policy, with the checks ECR makes when it is put on a repository.
pub(super) fn ecr(path: &str, file: EcrFile) -> Result<Policy, PolicyError> {
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
