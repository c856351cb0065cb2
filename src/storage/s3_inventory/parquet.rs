//! S3 Inventory's Parquet data files.

use super::Row;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The rows whose key `keep` takes of one Parquet data file; `name` is for the errors.
pub fn rows(name: &str, bytes: Vec<u8>, keep: &dyn Fn(&str) -> bool) -> Result<Vec<Row>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|b| {
            let mask = ProjectionMask::columns(b.parquet_schema(), super::batch::COLUMNS);
            b.with_projection(mask).with_batch_size(16 * 1024).build()
        })
        .map_err(|e| format!("{name}: not a Parquet file: {e}"))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{name}: {e}"))?;
        super::batch::rows(name, &batch, keep, &mut out)?;
    }
    Ok(out)
}
