//! One share of a run split over N machines (`--shard I/N`, or a Kubernetes Indexed Job's
//! `JOB_COMPLETION_INDEX` with `--shard N`): digests are dealt out by their leading bytes, which a
//! sha256 spreads evenly, so every shard owns the same digests on every run and on every machine.

use crate::model::digest::Digest;

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A `--shard` that names no shard: what is wrong with it, the flag's value included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShardSpecError(pub String);

/// The environment variable a Kubernetes Indexed Job sets to each pod's index.
pub const INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

impl Shard {
    /// `I/N`, or `N` with the index from `index_env` (the value of [`INDEX_VARIABLE`]).
    pub fn parse(spec: &str, index_env: Option<&str>) -> Result<Shard, ShardSpecError> {
        Shard::parse_spec(spec, index_env).map_err(ShardSpecError)
    }

    fn parse_spec(spec: &str, index_env: Option<&str>) -> Result<Shard, String> {
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("--shard {spec}: {what} {s:?} is not a whole number"))
        };
        let (index, count) = match spec.split_once('/') {
            Some((i, n)) => (number(i, "the index")?, number(n, "the count")?),
            None => {
                let count = number(spec, "the count")?;
                let Some(i) = index_env else {
                    return Err(format!(
                        "--shard {spec}: give I/{spec}, or set {INDEX_VARIABLE} (a Kubernetes \
                         Indexed Job sets it in each pod)"
                    ));
                };
                (number(i, INDEX_VARIABLE)?, count)
            }
        };
        if count == 0 || index >= count {
            return Err(format!(
                "--shard {spec}: the index must be 0 to {} (shards are counted from 0)",
                count.saturating_sub(1)
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard owns `d`.
    pub fn holds(&self, d: &Digest) -> bool {
        u32::from_be_bytes([d.0[0], d.0[1], d.0[2], d.0[3]]) % self.count == self.index
    }

    /// `I-of-N`, for file names.
    pub fn name(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_the_indexed_jobs_variable() {
        assert_eq!(Shard::parse("1/4", None), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(
            Shard::parse("4", Some("3")),
            Ok(Shard { index: 3, count: 4 })
        );
        assert!(
            Shard::parse("4", None)
                .unwrap_err()
                .0
                .contains(INDEX_VARIABLE)
        );
        assert!(Shard::parse("4/4", None).unwrap_err().0.contains("0 to 3"));
        assert!(Shard::parse("0/0", None).is_err());
        assert!(Shard::parse("a/2", None).unwrap_err().0.contains("\"a\""));
    }

    #[test]
    fn every_digest_has_exactly_one_shard() {
        for n in 1..6u8 {
            let d = Digest::of(&[n]);
            let owners = (0..4)
                .filter(|&i| Shard { index: i, count: 4 }.holds(&d))
                .count();
            assert_eq!(owners, 1);
        }
    }
}
