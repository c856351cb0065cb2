//! A cache record's payload: a manifest's kind (or "not a manifest", with the reason), its length
//! and its references, as bytes and back. A payload is used only when it decodes whole.

use crate::model::digest::{AliasDigest, Digest};
use crate::model::manifest::{Aliased, Child, Manifest, ManifestKind};

/// What the cache holds for a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// A manifest the collector understands, and the length of its bytes.
    Manifest { size: u64, manifest: Manifest },
    /// Data that hashes to its digest and is not a manifest (found through an undeclared index entry),
    /// with why.
    NotManifest { size: u64, reason: String },
}

fn kind_byte(k: ManifestKind) -> u8 {
    match k {
        ManifestKind::DockerV2 => 1,
        ManifestKind::DockerList => 2,
        ManifestKind::OciManifest => 3,
        ManifestKind::OciIndex => 4,
        ManifestKind::OciArtifact => 5,
        ManifestKind::SchemaV1 => 6,
    }
}

fn byte_kind(b: u8) -> Option<ManifestKind> {
    Some(match b {
        1 => ManifestKind::DockerV2,
        2 => ManifestKind::DockerList,
        3 => ManifestKind::OciManifest,
        4 => ManifestKind::OciIndex,
        5 => ManifestKind::OciArtifact,
        6 => ManifestKind::SchemaV1,
        _ => return None,
    })
}

/// Marks a declared size whose digest is written out in full rather than by its position among
/// the manifest's references.
const DECLARED_INLINE: u16 = u16::MAX;

/// A payload: kind u8 (0: not a manifest), size u64; then for a manifest the counts of blobs,
/// foreign layers, children, declared sizes (u32 each) and a subject flag (u8), the blobs' and
/// foreign layers' digests, each child as a u8 (0 typed, 1 undeclared) and its digest, the subject,
/// and each declared size as the position of its digest among blobs, foreign layers and children
/// (u16, or [`DECLARED_INLINE`] then the digest) and the size (i64), then the count of references
/// by an alias (u32) and each as its role (u8: 0 blob, 1 foreign, 2 typed child, 3 undeclared
/// child, 4 subject) and the alias as text (its length, u8, and its bytes); for data that is not a
/// manifest the reason's length (u32) and its UTF-8 bytes.
pub(super) fn encode(c: &Cached) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    match c {
        Cached::NotManifest { size, reason } => {
            out.push(0);
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&(reason.len() as u32).to_le_bytes());
            out.extend_from_slice(reason.as_bytes());
        }
        Cached::Manifest { size, manifest: m } => {
            out.push(kind_byte(m.kind));
            out.extend_from_slice(&size.to_le_bytes());
            for n in [
                m.blobs.len(),
                m.foreign.len(),
                m.children.len(),
                m.declared.len(),
            ] {
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
            out.push(u8::from(m.subject.is_some()));
            let mut refs: Vec<Digest> = Vec::new();
            for d in m.blobs.iter().chain(&m.foreign) {
                out.extend_from_slice(&d.0);
                refs.push(*d);
            }
            for c in &m.children {
                let (tag, d) = match c {
                    Child::Manifest(d) => (0u8, d),
                    Child::Undeclared(d) => (1u8, d),
                };
                out.push(tag);
                out.extend_from_slice(&d.0);
                refs.push(*d);
            }
            if let Some(s) = &m.subject {
                out.extend_from_slice(&s.0);
            }
            for (d, size) in &m.declared {
                match refs
                    .iter()
                    .position(|r| r == d)
                    .filter(|&p| p < DECLARED_INLINE as usize)
                {
                    Some(p) => out.extend_from_slice(&(p as u16).to_le_bytes()),
                    None => {
                        out.extend_from_slice(&DECLARED_INLINE.to_le_bytes());
                        out.extend_from_slice(&d.0);
                    }
                }
                out.extend_from_slice(&size.to_le_bytes());
            }
            out.extend_from_slice(&(m.aliased.len() as u32).to_le_bytes());
            for a in &m.aliased {
                out.push(match a {
                    Aliased::Blob(_) => 0,
                    Aliased::Foreign(_) => 1,
                    Aliased::Child(_, true) => 2,
                    Aliased::Child(_, false) => 3,
                    Aliased::Subject(_) => 4,
                });
                let text = a.alias().to_string();
                out.push(text.len() as u8);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out
}

/// A payload being decoded.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn digest(&mut self) -> Option<Digest> {
        Some(Digest(self.take(32)?.try_into().ok()?))
    }
}

/// Reads a payload back; `None` unless it decodes whole, with nothing left over.
pub(super) fn decode(b: &[u8]) -> Option<Cached> {
    let mut c = Cursor { b, at: 0 };
    let kind = c.u8()?;
    let size = c.u64()?;
    let cached = if kind == 0 {
        let len = c.u32()? as usize;
        let reason = String::from_utf8(c.take(len)?.to_vec()).ok()?;
        Cached::NotManifest { size, reason }
    } else {
        let kind = byte_kind(kind)?;
        let (nb, nf, nc, nd) = (
            c.u32()? as usize,
            c.u32()? as usize,
            c.u32()? as usize,
            c.u32()? as usize,
        );
        // Every count is bounded by what the payload can hold before anything is allocated.
        if [nb, nf, nc, nd].iter().any(|&n| n > b.len()) {
            return None;
        }
        let has_subject = c.u8()?;
        let mut m = Manifest {
            kind,
            blobs: Vec::with_capacity(nb),
            foreign: Vec::with_capacity(nf),
            children: Vec::with_capacity(nc),
            subject: None,
            declared: Vec::with_capacity(nd),
            aliased: Vec::new(),
        };
        let mut refs = Vec::with_capacity(nb + nf + nc);
        for _ in 0..nb {
            let d = c.digest()?;
            m.blobs.push(d);
            refs.push(d);
        }
        for _ in 0..nf {
            let d = c.digest()?;
            m.foreign.push(d);
            refs.push(d);
        }
        for _ in 0..nc {
            let tag = c.u8()?;
            let d = c.digest()?;
            m.children.push(match tag {
                0 => Child::Manifest(d),
                1 => Child::Undeclared(d),
                _ => return None,
            });
            refs.push(d);
        }
        m.subject = match has_subject {
            0 => None,
            1 => Some(c.digest()?),
            _ => return None,
        };
        for _ in 0..nd {
            let p = c.u16()?;
            let d = if p == DECLARED_INLINE {
                c.digest()?
            } else {
                *refs.get(p as usize)?
            };
            let size = c.u64()? as i64;
            m.declared.push((d, size));
        }
        let na = c.u32()? as usize;
        if na > b.len() {
            return None;
        }
        for _ in 0..na {
            let role = c.u8()?;
            let len = c.u8()? as usize;
            let alias = AliasDigest::parse(std::str::from_utf8(c.take(len)?).ok()?)?;
            m.aliased.push(match role {
                0 => Aliased::Blob(alias),
                1 => Aliased::Foreign(alias),
                2 => Aliased::Child(alias, true),
                3 => Aliased::Child(alias, false),
                4 => Aliased::Subject(alias),
                _ => return None,
            });
        }
        Cached::Manifest { size, manifest: m }
    };
    (c.at == b.len()).then_some(cached)
}
