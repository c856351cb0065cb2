//! Pins: image references that no retention rule may expire, as
//! `kubectl get pods -A -o jsonpath='{..image}'` prints them (separated by spaces or lines), with or
//! without a registry host, by tag or by digest (`host:5000/team/app:v1`, `team/app@sha256:…`,
//! `app`, which is `app:latest`). Lines may carry `#` comments.

use crate::model::digest::Digest;
use std::collections::BTreeSet;
use std::path::Path;

/// A pin file that cannot be read, or a reference in it that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PinError {
    pub path: String,
    pub message: String,
}

/// The pinned tags and manifests, by repository.
#[derive(Debug, Default, Clone)]
pub struct Pins {
    tags: BTreeSet<(String, String)>,
    digests: BTreeSet<(String, Digest)>,
    /// Each pin as written, for the report.
    pub references: Vec<String>,
}

impl Pins {
    pub fn read(path: &Path) -> Result<Pins, PinError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PinError {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let pins = Pins::parse(&text).map_err(|message| PinError {
            path: shown.clone(),
            message,
        })?;
        if pins.references.is_empty() {
            return Err(PinError {
                path: shown,
                message:
                    "no image reference in the file: a pin list that pins nothing is a mistake"
                        .into(),
            });
        }
        Ok(pins)
    }

    pub(crate) fn parse(text: &str) -> Result<Pins, String> {
        let mut pins = Pins::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for word in line.split_whitespace() {
                pins.add(word)?;
            }
        }
        Ok(pins)
    }

    fn add(&mut self, reference: &str) -> Result<(), String> {
        let (name, digest) = match reference.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|e| format!("{reference:?}: the digest: {e}"))?),
            ),
            None => (reference, None),
        };
        // A first component with a dot or a port, or `localhost`, is the registry's host.
        let path = match name.split_once('/') {
            Some((host, rest))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                rest
            }
            _ => name,
        };
        let (repo, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t)),
            _ => (path, None),
        };
        if repo.is_empty() || repo.split('/').any(str::is_empty) {
            return Err(format!("{reference:?} is not an image reference"));
        }
        // Docker Hub's official images are `library/x`; a mirror may hold them as either.
        let mut repos = vec![repo.to_owned()];
        if let Some(short) = repo.strip_prefix("library/") {
            repos.push(short.to_owned());
        }
        for r in repos {
            match (tag, digest) {
                (_, Some(d)) => {
                    self.digests.insert((r.clone(), d));
                    if let Some(t) = tag {
                        self.tags.insert((r, t.to_owned()));
                    }
                }
                (Some(t), None) => {
                    self.tags.insert((r, t.to_owned()));
                }
                (None, None) => {
                    self.tags.insert((r, "latest".to_owned()));
                }
            }
        }
        self.references.push(reference.to_owned());
        Ok(())
    }

    pub fn tag(&self, repo: &str, tag: &str) -> bool {
        self.tags.contains(&(repo.to_owned(), tag.to_owned()))
    }

    pub fn digest(&self, repo: &str, digest: &Digest) -> bool {
        self.digests.contains(&(repo.to_owned(), *digest))
    }

    pub fn is_empty(&self) -> bool {
        self.references.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_output_pins_tags_and_digests_with_or_without_a_host() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let text = format!(
            "registry.example.com:5000/team/app:v1 team/api@{d}  localhost/tool\n\
             # a comment\nlibrary/nginx:1.25 web:2@{d} # trailing\n"
        );
        let p = Pins::parse(&text).unwrap();
        let digest = Digest::parse(&d).unwrap();
        assert!(p.tag("team/app", "v1") && !p.tag("team/app", "v2"));
        assert!(p.digest("team/api", &digest) && !p.digest("team/app", &digest));
        assert!(p.tag("tool", "latest"));
        assert!(p.tag("library/nginx", "1.25") && p.tag("nginx", "1.25"));
        assert!(p.tag("web", "2") && p.digest("web", &digest));
        assert_eq!(p.references.len(), 5);
        assert!(
            Pins::parse("team/app@sha256:zz")
                .unwrap_err()
                .contains("team/app@sha256:zz")
        );
        assert!(Pins::parse("a//b:1").is_err());
    }
}
