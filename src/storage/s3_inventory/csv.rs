//! S3 Inventory's CSV: gzipped, no header row, every field in double quotes (`""` inside one is a
//! quote), the columns in the order of the manifest's `fileSchema`, and object keys URL-encoded.

use super::Row;
use std::io::Read;

/// The rows of one gzipped CSV data file whose key `keep` takes; `name` is for the errors.
pub fn rows(
    name: &str,
    gz: &[u8],
    columns: &[String],
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<Row>, String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|e| format!("{name}: not gzipped CSV text: {e}"))?;
    let at = |field: &str| columns.iter().position(|c| c == field);
    let key = at("Key").ok_or_else(|| format!("{name}: no Key column"))?;
    let size = at("Size").ok_or_else(|| format!("{name}: no Size column"))?;
    let modified =
        at("LastModifiedDate").ok_or_else(|| format!("{name}: no LastModifiedDate column"))?;
    let (latest, marker) = (at("IsLatest"), at("IsDeleteMarker"));
    let mut out = Vec::new();
    for (n, record) in records(&text).enumerate() {
        let line = n + 1;
        let fields = record.map_err(|e| format!("{name}: record {line}: {e}"))?;
        // A blank line holds no record (the file's MD5 already proved it whole).
        if fields.len() == 1 && fields[0].is_empty() {
            continue;
        }
        if fields.len() != columns.len() {
            return Err(format!(
                "{name}: record {line} has {} fields, the fileSchema {}",
                fields.len(),
                columns.len()
            ));
        }
        let flag = |i: Option<usize>, absent: bool| {
            i.map_or(absent, |i| fields[i].eq_ignore_ascii_case("true"))
        };
        let current = flag(latest, true) && !flag(marker, false);
        let key = url_decoded(&fields[key]);
        if !keep(&key) {
            continue;
        }
        if !current {
            out.push(Row::not_current(key));
            continue;
        }
        let bytes = fields[size].parse::<u64>().map_err(|_| {
            format!(
                "{name}: record {line}: Size {:?} is no number",
                fields[size]
            )
        })?;
        let time = humantime::parse_rfc3339_weak(&fields[modified]).map_err(|e| {
            format!(
                "{name}: record {line}: LastModifiedDate {:?}: {e}",
                fields[modified]
            )
        })?;
        out.push(Row {
            key,
            size: bytes,
            modified: crate::model::time::unix_seconds(time),
            current: true,
        });
    }
    Ok(out)
}

/// The records of CSV text, each a list of fields (RFC 4180: quoted fields may hold commas, line
/// breaks and doubled quotes).
fn records(text: &str) -> impl Iterator<Item = Result<Vec<String>, String>> + '_ {
    let mut chars = text.chars().peekable();
    std::iter::from_fn(move || {
        chars.peek()?;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        loop {
            match chars.next() {
                None if quoted => return Some(Err("a quoted field is not closed".into())),
                None => {
                    fields.push(field);
                    return Some(Ok(fields));
                }
                Some('"') if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                Some('"') if field.is_empty() => quoted = true,
                Some(c) if quoted => field.push(c),
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n') => {
                    fields.push(field);
                    return Some(Ok(fields));
                }
                Some(c) => field.push(c),
            }
        }
    })
}

/// A key as the inventory's URL encoding gives it back: `%XX` escapes, `+` for a space.
fn url_decoded(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn quoted_fields_escaped_quotes_and_encoded_keys() {
        let columns: Vec<String> = [
            "Bucket",
            "Key",
            "VersionId",
            "IsLatest",
            "IsDeleteMarker",
            "Size",
            "LastModifiedDate",
            "ETag",
        ]
        .map(String::from)
        .to_vec();
        let text = "\"b\",\"a%2Fb+c\",\"v1\",\"true\",\"false\",\"12\",\"2024-05-01T10:00:00.000Z\",\"e\"\n\
                    \"b\",\"x,\"\"y\",\"v2\",\"false\",\"false\",\"3\",\"2024-05-01T10:00:00.000Z\",\"e\"\r\n\
                    \"b\",\"z\",\"v3\",\"true\",\"true\",\"\",\"2024-05-01T10:00:00.000Z\",\"\"\n";
        let rows = rows("f.csv.gz", &gz(text), &columns, &|_| true).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].key, "a/b c");
        assert_eq!((rows[0].size, rows[0].current), (12, true));
        assert_eq!(rows[0].modified, 1_714_557_600);
        assert_eq!((rows[1].key.as_str(), rows[1].current), ("x,\"y", false));
        assert!(!rows[2].current, "a delete marker is no object");
    }

    #[test]
    fn a_blank_line_holds_no_record() {
        let columns: Vec<String> = ["Bucket", "Key", "Size", "LastModifiedDate"]
            .map(String::from)
            .to_vec();
        let row = "\"b\",\"k\",\"1\",\"2024-05-01T10:00:00.000Z\"\n";
        let text = format!("\n{row}\n\r\n{row}\n");
        let rows = rows("f.csv.gz", &gz(&text), &columns, &|_| true).unwrap();
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn a_short_record_is_named() {
        let columns: Vec<String> = ["Bucket", "Key", "Size", "LastModifiedDate"]
            .map(String::from)
            .to_vec();
        let e = rows("f.csv.gz", &gz("\"b\",\"k\",\"1\"\n"), &columns, &|_| true).unwrap_err();
        assert!(e.contains("f.csv.gz: record 1"), "{e}");
    }
}
