//! S3 Inventory's ORC data files.

use super::Row;
use orc_rust::ArrowReaderBuilder;
use orc_rust::projection::ProjectionMask;

/// The rows whose key `keep` takes of one ORC data file; `name` is for the errors.
pub fn rows(name: &str, bytes: Vec<u8>, keep: &dyn Fn(&str) -> bool) -> Result<Vec<Row>, String> {
    let builder = ArrowReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| format!("{name}: not an ORC file: {e}"))?;
    let mask = ProjectionMask::named_roots(
        builder.file_metadata().root_data_type(),
        &super::batch::COLUMNS,
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(16 * 1024)
        .build();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{name}: {e}"))?;
        super::batch::rows(name, &batch, keep, &mut out)?;
    }
    Ok(out)
}
