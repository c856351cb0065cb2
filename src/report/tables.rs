//! Tables written as Parquet files: named columns of text, whole numbers or flags, each column
//! nullable, one file a table (`export` writes the run's tables with them).

use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use std::path::Path;
use std::sync::Arc;

/// One column's values.
#[derive(Debug, Clone)]
pub enum Column {
    Text(Vec<Option<String>>),
    Number(Vec<Option<i64>>),
    Flag(Vec<bool>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Number(v) => v.len(),
            Column::Flag(v) => v.len(),
        }
    }
}

/// A table: its name (the file is `{name}.parquet`) and its columns, all of one length.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<(&'static str, Column)>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// Writes `{dir}/{name}.parquet` (through a temporary file, renamed once complete).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, c)| {
                let t = match c {
                    Column::Text(_) => DataType::Utf8,
                    Column::Number(_) => DataType::Int64,
                    Column::Flag(_) => DataType::Boolean,
                };
                Field::new(*name, t, true)
            })
            .collect();
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|(_, c)| -> ArrayRef {
                match c {
                    Column::Text(v) => Arc::new(StringArray::from(v.clone())),
                    Column::Number(v) => Arc::new(Int64Array::from(v.clone())),
                    Column::Flag(v) => Arc::new(BooleanArray::from(v.clone())),
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(std::io::Error::other)?;
        let path = dir.join(format!("{}.parquet", self.name));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        crate::model::atomic_file::Staged::create(&path, "a file")?.finish_file(|file| {
            let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props))
                .map_err(std::io::Error::other)?;
            w.write(&batch).map_err(std::io::Error::other)?;
            w.into_inner().map_err(std::io::Error::other)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let t = Table {
            name: "t",
            columns: vec![
                ("a", Column::Text(vec![Some("x".into()), None])),
                ("b", Column::Number(vec![Some(7), Some(-1)])),
                ("c", Column::Flag(vec![true, false])),
            ],
        };
        t.write(dir.path()).unwrap();
        let f = std::fs::File::open(dir.path().join("t.parquet")).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].schema().field(1).name(), "b");
        let b = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(b.value(1), -1);
    }
}
