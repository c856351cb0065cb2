//! Azure's XML answers: a page of List Blobs (`EnumerationResults`), and the soft delete
//! retention of the Blob service's properties.

use quick_xml::events::Event;
use std::time::SystemTime;

/// One blob of a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Blob {
    pub name: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub content_md5: Option<String>,
    /// A block blob (written whole); append and page blobs are not.
    pub block_blob: bool,
}

/// A page of List Blobs.
#[derive(Debug, Default)]
pub struct Page {
    pub blobs: Vec<Blob>,
    /// `BlobPrefix` names of a delimited listing.
    pub prefixes: Vec<String>,
    pub next_marker: Option<String>,
}

impl Page {
    pub fn parse(xml: &[u8]) -> Result<Page, String> {
        let mut page = Page::default();
        let mut blob = Blob::default();
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        for_each(xml, &mut |event| match event {
            Xml::Start(name) => {
                text.clear();
                path.push(name);
            }
            Xml::Text(t) => text.push_str(&t),
            Xml::End => {
                let tail: Vec<&str> = path.iter().rev().take(2).map(String::as_str).collect();
                match tail.as_slice() {
                    ["Name", "Blob"] => blob.name = std::mem::take(&mut text),
                    ["Name", "BlobPrefix"] => page.prefixes.push(std::mem::take(&mut text)),
                    ["Content-Length", "Properties"] => {
                        blob.size = text.trim().parse().unwrap_or(0)
                    }
                    ["Last-Modified", "Properties"] => {
                        blob.modified = super::parse_http_date(text.trim())
                    }
                    ["Content-MD5", "Properties"] => {
                        blob.content_md5 = Some(text.trim().to_owned()).filter(|m| !m.is_empty())
                    }
                    ["BlobType", "Properties"] => blob.block_blob = text.trim() == "BlockBlob",
                    ["Blob", _] => page.blobs.push(std::mem::take(&mut blob)),
                    ["NextMarker", "EnumerationResults"] => {
                        page.next_marker = Some(text.trim().to_owned()).filter(|m| !m.is_empty())
                    }
                    _ => {}
                }
                path.pop();
                text.clear();
            }
        })?;
        if path.is_empty() {
            Ok(page)
        } else {
            Err("the listing's XML ends inside an element".into())
        }
    }
}

/// Days of blob soft delete, when the service properties say it is on.
pub fn soft_delete_days(xml: &str) -> Option<u64> {
    let mut path: Vec<String> = Vec::new();
    let (mut enabled, mut days, mut text) = (false, None, String::new());
    for_each(xml.as_bytes(), &mut |event| match event {
        Xml::Start(name) => {
            text.clear();
            path.push(name);
        }
        Xml::Text(t) => text.push_str(&t),
        Xml::End => {
            let tail: Vec<&str> = path.iter().rev().take(2).map(String::as_str).collect();
            match tail.as_slice() {
                ["Enabled", "DeleteRetentionPolicy"] => enabled = text.trim() == "true",
                ["Days", "DeleteRetentionPolicy"] => days = text.trim().parse().ok(),
                _ => {}
            }
            path.pop();
            text.clear();
        }
    })
    .ok()?;
    enabled.then_some(days.unwrap_or(0)).filter(|d| *d > 0)
}

enum Xml {
    Start(String),
    Text(String),
    End,
}

/// Elements' starts and ends, and text with its references resolved.
fn for_each(xml: &[u8], on: &mut dyn FnMut(Xml)) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => on(Xml::Start(
                String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            )),
            Event::Empty(e) => {
                on(Xml::Start(
                    String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                ));
                on(Xml::End);
            }
            Event::End(_) => on(Xml::End),
            Event::Text(t) => on(Xml::Text(
                t.xml_content().map_err(|e| e.to_string())?.into(),
            )),
            Event::CData(t) => on(Xml::Text(String::from_utf8_lossy(&t).into_owned())),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => match &*r {
                        b"amp" => "&".into(),
                        b"lt" => "<".into(),
                        b"gt" => ">".into(),
                        b"quot" => "\"".into(),
                        b"apos" => "'".into(),
                        other => {
                            return Err(format!(
                                "unknown XML entity &{};",
                                String::from_utf8_lossy(other)
                            ));
                        }
                    },
                };
                on(Xml::Text(resolved));
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_blobs_with_prefixes_and_a_marker() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:1/a" ContainerName="c">
  <Prefix>docker/</Prefix><MaxResults>2</MaxResults>
  <Blobs>
    <Blob><Name>docker/a&amp;b</Name><Properties><Last-Modified>Fri, 04 Dec 2026 00:27:28 GMT</Last-Modified>
      <Etag>0x8D</Etag><Content-Length>71</Content-Length><Content-MD5>q83vEjRWeJA=</Content-MD5>
      <BlobType>BlockBlob</BlobType></Properties><Metadata/></Blob>
    <Blob><Name>docker/link</Name><Properties><Content-Length>0</Content-Length><Content-MD5 />
      <BlobType>AppendBlob</BlobType></Properties></Blob>
    <BlobPrefix><Name>docker/x/</Name></BlobPrefix>
  </Blobs>
  <NextMarker>2!16!ZG9j</NextMarker>
</EnumerationResults>"#;
        let page = Page::parse(xml).unwrap();
        assert_eq!(page.blobs.len(), 2);
        let b = &page.blobs[0];
        assert_eq!(b.name, "docker/a&b");
        assert_eq!(b.size, 71);
        assert!(b.block_blob && b.modified.is_some());
        assert_eq!(b.content_md5.as_deref(), Some("q83vEjRWeJA="));
        assert!(!page.blobs[1].block_blob && page.blobs[1].content_md5.is_none());
        assert_eq!(page.prefixes, ["docker/x/"]);
        assert_eq!(page.next_marker.as_deref(), Some("2!16!ZG9j"));
        assert!(Page::parse(b"<EnumerationResults><Blobs>").is_err());
    }

    #[test]
    fn soft_delete_is_on_only_with_days() {
        let on = "<StorageServiceProperties><DeleteRetentionPolicy><Enabled>true</Enabled>\
                  <Days>7</Days></DeleteRetentionPolicy></StorageServiceProperties>";
        assert_eq!(soft_delete_days(on), Some(7));
        let off = "<StorageServiceProperties><DeleteRetentionPolicy><Enabled>false</Enabled>\
                   </DeleteRetentionPolicy></StorageServiceProperties>";
        assert_eq!(soft_delete_days(off), None);
    }
}
