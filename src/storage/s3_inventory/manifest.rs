//! An S3 Inventory's `manifest.json`: which bucket it lists, when the listing was taken, in which
//! format, and the data files with their MD5 checksums.
//!
//! AWS writes it as `{destination-prefix}/{source-bucket}/{config-id}/{YYYY-MM-DDTHH-MMZ}/manifest.json`
//! beside `manifest.checksum` (the MD5 of the manifest itself); the data files sit under
//! `{destination-prefix}/{source-bucket}/{config-id}/data/`, named in `files` by their full key in
//! the destination bucket.

use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// The formats S3 Inventory delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Gzipped CSV without a header; the columns are the manifest's `fileSchema`, keys URL-encoded.
    Csv,
    Orc,
    Parquet,
}

/// One data file of the inventory.
#[derive(Debug, Clone, Deserialize)]
pub struct DataFile {
    /// Its key in the destination bucket.
    pub key: String,
    pub size: Option<u64>,
    #[serde(rename = "MD5checksum")]
    pub md5: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    source_bucket: String,
    destination_bucket: Option<String>,
    creation_timestamp: String,
    file_format: String,
    #[serde(default)]
    file_schema: String,
    files: Vec<DataFile>,
}

/// A parsed `manifest.json`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source_bucket: String,
    /// The destination bucket's name (the manifest gives an ARN, `arn:aws:s3:::name`).
    pub destination_bucket: Option<String>,
    /// When the listing began: every object written after it may be missing from it.
    pub taken: SystemTime,
    pub format: Format,
    /// CSV's columns, in order (`Bucket`, `Key`, `Size`, …).
    pub csv_columns: Vec<String>,
    pub files: Vec<DataFile>,
}

impl Manifest {
    /// Parses a manifest; `name` (its path or URL) is for the errors.
    pub(crate) fn parse(name: &str, bytes: &[u8]) -> Result<Manifest, String> {
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| format!("{name}: not an S3 Inventory manifest.json: {e}"))?;
        let millis: u64 = raw.creation_timestamp.trim().parse().map_err(|_| {
            format!(
                "{name}: creationTimestamp {:?} is not milliseconds since 1970",
                raw.creation_timestamp
            )
        })?;
        let format = match raw.file_format.to_ascii_uppercase().as_str() {
            "CSV" => Format::Csv,
            "ORC" => Format::Orc,
            "PARQUET" => Format::Parquet,
            other => {
                return Err(format!(
                    "{name}: fileFormat {other:?} is none of CSV, ORC and Parquet"
                ));
            }
        };
        let csv_columns: Vec<String> = raw
            .file_schema
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if format == Format::Csv {
            for needed in ["Key", "Size", "LastModifiedDate"] {
                if !csv_columns.iter().any(|c| c == needed) {
                    return Err(format!(
                        "{name}: the inventory's fileSchema has no {needed} field (it lists {}); \
                         configure the inventory with Size and LastModifiedDate",
                        raw.file_schema
                    ));
                }
            }
        }
        if raw.files.is_empty() {
            return Err(format!("{name}: the manifest names no data files"));
        }
        Ok(Manifest {
            source_bucket: raw.source_bucket,
            destination_bucket: raw
                .destination_bucket
                .map(|d| d.rsplit(':').next().unwrap_or(&d).to_owned()),
            taken: SystemTime::UNIX_EPOCH + Duration::from_millis(millis),
            format,
            csv_columns,
            files: raw.files,
        })
    }
}

/// Checks a data file's bytes against the MD5 the manifest gives for it.
pub(crate) fn check_md5(file: &DataFile, bytes: &[u8]) -> Result<(), String> {
    use md5::Digest as _;
    let got: String = md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got.eq_ignore_ascii_case(file.md5.trim()) {
        Ok(())
    } else {
        Err(format!(
            "{}: MD5 {got}, but the manifest says {}: the file is damaged or not the one listed",
            file.key, file.md5
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_aws_writes() {
        let m = Manifest::parse(
            "m.json",
            br#"{"sourceBucket":"src","destinationBucket":"arn:aws:s3:::dst","version":"2016-11-30",
                "creationTimestamp":"1514944800000","fileFormat":"CSV",
                "fileSchema":"Bucket, Key, Size, LastModifiedDate, ETag",
                "files":[{"key":"p/src/c/data/a.csv.gz","size":10,"MD5checksum":"00"}]}"#,
        )
        .unwrap();
        assert_eq!(m.destination_bucket.as_deref(), Some("dst"));
        assert_eq!(m.format, Format::Csv);
        assert_eq!(m.csv_columns[1], "Key");
        assert_eq!(
            m.taken,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_514_944_800)
        );
    }

    #[test]
    fn a_csv_inventory_without_sizes_is_refused_by_name() {
        let e = Manifest::parse(
            "s3://b/m.json",
            br#"{"sourceBucket":"s","creationTimestamp":"1","fileFormat":"CSV",
                "fileSchema":"Bucket, Key","files":[{"key":"k","MD5checksum":"00"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("s3://b/m.json") && e.contains("Size"), "{e}");
    }

    #[test]
    fn md5_is_checked() {
        let f = DataFile {
            key: "k".into(),
            size: None,
            md5: "900150983cd24fb0d6963f7d28e17f72".into(),
        };
        assert!(check_md5(&f, b"abc").is_ok());
        assert!(check_md5(&f, b"abd").unwrap_err().contains("k: MD5"));
    }
}
