//! Content digests: `sha256:<64 lowercase hex>`, held as 32 raw bytes.
//!
//! Every blob, manifest and link in a Distribution store is named by a sha256 digest. Holding the raw
//! bytes (not the 71-character string) keeps the blob table at 32 bytes a digest, and makes sorting and
//! binary search cheap. A blob uploaded by another algorithm's digest (OCI's sha512, or sha384) is
//! stored under its sha256 digest all the same: the registry keeps the other digest as an alias, a
//! link `_layers/<algorithm>/<hex>/link` in the repository that holds `sha256:<hex>`, and manifests
//! may name the blob by the alias ([`AliasDigest`]).

use std::fmt;

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

/// A digest by another algorithm than sha256 (`sha512:<128 hex>`, `sha384:<96 hex>`): the name a
/// blob was uploaded or is referenced by, which each repository resolves to the sha256 digest its
/// data is stored under through an alias link.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AliasDigest {
    /// `sha512` or `sha384`.
    algorithm: &'static str,
    /// Lowercase hex.
    hex: Box<str>,
}

impl AliasDigest {
    /// Parses `sha512:<128 hex>` or `sha384:<96 hex>`, lowercase, exactly.
    pub fn parse(s: &str) -> Option<AliasDigest> {
        let (algorithm, hex) = s.split_once(':')?;
        AliasDigest::from_parts(algorithm, hex)
    }

    /// The algorithm and the hex as a key names them (`_layers/sha512/<hex>/`).
    pub fn from_parts(algorithm: &str, hex: &str) -> Option<AliasDigest> {
        let (algorithm, len) = match algorithm {
            "sha512" => ("sha512", 128),
            "sha384" => ("sha384", 96),
            _ => return None,
        };
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        (hex.len() == len && hex.as_bytes().iter().all(lower_hex)).then(|| AliasDigest {
            algorithm,
            hex: hex.into(),
        })
    }

    pub fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for AliasDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for AliasDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for AliasDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AliasDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AliasDigest, D::Error> {
        let s = String::deserialize(d)?;
        AliasDigest::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("not a sha512 or sha384 digest: {s:?}"))
        })
    }
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("not of the form sha256:<64 hex>: {0:?}")]
    Malformed(String),
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl Digest {
    /// Parses 64 lowercase hex characters (the form used in folder names and keys).
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Digest(out))
    }

    /// Parses `sha256:<64 hex>`, exactly (no whitespace, no newline).
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        s.strip_prefix("sha256:")
            .and_then(Digest::from_hex)
            .ok_or_else(|| DigestError::Malformed(truncate_for_message(s)))
    }

    /// The 64 hex characters, without the algorithm.
    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// Computes the digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(sha2::Sha256::digest(data).into())
    }
}

fn truncate_for_message(s: &str) -> String {
    s.chars().take(100).collect()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "5fe602e315114062580027f422cacbabbf7fed0deb152ce5e4190598c72bf216";

    #[test]
    fn parses_and_prints_round_trip() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{HEX}"));
        assert_eq!(d.hex(), HEX);
    }

    #[test]
    fn rejects_link_contents_that_are_not_exact_digests() {
        for bad in [
            String::new(),
            HEX.to_string(),
            format!("sha256:{HEX}\n"),
            format!("sha256:{}", HEX.to_uppercase()),
            format!("sha512:{HEX}"),
            format!("sha256:{}", &HEX[..63]),
            format!("sha256:{HEX}0"),
            format!("sha256:{}g", &HEX[..63]),
        ] {
            assert!(Digest::parse(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn digest_of_data_matches_known_value() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
