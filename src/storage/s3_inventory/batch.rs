//! Rows out of the columnar formats (ORC, Parquet), read as Arrow record batches: S3 Inventory names
//! the columns `key`, `size`, `last_modified_date`, `is_latest`, `is_delete_marker` (keys are not
//! URL-encoded there).

use super::Row;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

/// The columns read; the others (bucket, e_tag, storage_class, …) are never decoded.
pub const COLUMNS: [&str; 5] = [
    "key",
    "size",
    "last_modified_date",
    "is_latest",
    "is_delete_marker",
];

/// Appends the rows of `batch` whose key `keep` takes to `out`; `name` is for the errors.
pub fn rows(
    name: &str,
    batch: &RecordBatch,
    keep: &dyn Fn(&str) -> bool,
    out: &mut Vec<Row>,
) -> Result<(), String> {
    let column = |field: &str| batch.column_by_name(field);
    let need = |field: &str| {
        column(field).ok_or_else(|| {
            format!(
                "{name}: no column {field} (it has {}); configure the inventory with Size and \
                 LastModifiedDate",
                batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    let (key, size, modified) = (need("key")?, need("size")?, need("last_modified_date")?);
    let keys = strings(name, "key", key, keep)?;
    let sizes = integers(name, "size", size)?;
    let seconds = times(name, modified)?;
    let latest = column("is_latest")
        .map(|c| booleans(name, "is_latest", c))
        .transpose()?;
    let marker = column("is_delete_marker")
        .map(|c| booleans(name, "is_delete_marker", c))
        .transpose()?;
    for i in 0..batch.num_rows() {
        let key = match &keys[i] {
            Key::Kept(k) => k.clone(),
            Key::Other => continue,
            Key::Null => return Err(format!("{name}: row {i} has no key")),
        };
        let current = latest.as_ref().is_none_or(|l| l[i].unwrap_or(true))
            && !marker.as_ref().is_some_and(|m| m[i].unwrap_or(false));
        if !current {
            out.push(Row::not_current(key));
            continue;
        }
        let (Some(size), Some(modified)) = (sizes[i], seconds[i]) else {
            return Err(format!("{name}: {key}: no size or last_modified_date"));
        };
        let size = u64::try_from(size).map_err(|_| format!("{name}: {key}: size {size}"))?;
        out.push(Row {
            key,
            size,
            modified,
            current,
        });
    }
    Ok(())
}

/// A row's key: kept (`keep` took it), another key, or none.
enum Key {
    Kept(String),
    Other,
    Null,
}

/// The keys of a column, allocated only where `keep` takes them.
fn strings(
    name: &str,
    field: &str,
    a: &dyn Array,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<Key>, String> {
    let of = |s: &str| {
        if keep(s) {
            Key::Kept(s.to_owned())
        } else {
            Key::Other
        }
    };
    let get = |i: usize| -> Key {
        if a.is_null(i) {
            return Key::Null;
        }
        match a.data_type() {
            DataType::Utf8 => of(a.as_string::<i32>().value(i)),
            DataType::LargeUtf8 => of(a.as_string::<i64>().value(i)),
            DataType::Utf8View => of(a.as_string_view().value(i)),
            DataType::Binary => of(&String::from_utf8_lossy(a.as_binary::<i32>().value(i))),
            _ => Key::Null,
        }
    };
    match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary => {
            Ok((0..a.len()).map(get).collect())
        }
        t => Err(format!("{name}: column {field} is {t}, not text")),
    }
}

fn integers(name: &str, field: &str, a: &dyn Array) -> Result<Vec<Option<i64>>, String> {
    let v: Vec<Option<i64>> = match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().iter().collect(),
        DataType::Int32 => a
            .as_primitive::<Int32Type>()
            .iter()
            .map(|x| x.map(i64::from))
            .collect(),
        DataType::UInt64 => a
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|x| x.and_then(|x| i64::try_from(x).ok()))
            .collect(),
        t => return Err(format!("{name}: column {field} is {t}, not a whole number")),
    };
    Ok(v)
}

fn booleans(name: &str, field: &str, a: &dyn Array) -> Result<Vec<Option<bool>>, String> {
    match a.data_type() {
        DataType::Boolean => Ok(a.as_boolean().iter().collect()),
        t => Err(format!("{name}: column {field} is {t}, not true or false")),
    }
}

/// `last_modified_date` as Unix seconds: a timestamp of any unit (Parquet's TIMESTAMP_MILLIS, ORC's
/// timestamp), or whole milliseconds.
fn times(name: &str, a: &dyn Array) -> Result<Vec<Option<i64>>, String> {
    let scaled = |v: Vec<Option<i64>>, per_second: i64| {
        v.into_iter()
            .map(|x| x.map(|x| x.div_euclid(per_second)))
            .collect()
    };
    Ok(match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            a.as_primitive::<TimestampSecondType>().iter().collect()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => scaled(
            a.as_primitive::<TimestampMillisecondType>()
                .iter()
                .collect(),
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => scaled(
            a.as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect(),
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => scaled(
            a.as_primitive::<TimestampNanosecondType>().iter().collect(),
            1_000_000_000,
        ),
        DataType::Int64 => scaled(a.as_primitive::<Int64Type>().iter().collect(), 1_000),
        t => {
            return Err(format!(
                "{name}: column last_modified_date is {t}, not a time"
            ));
        }
    })
}
