//! Reading pairs files (JSONL, CSV, Parquet) into validated import rows, streaming, with the line of
//! every row so that an error names `FILE:LINE: field`.

mod csv_rows;
mod jsonl;
mod mapping;
mod parquet_rows;
pub mod predictions;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::domain::LabelScale;
pub use crate::store::ImportRow;
pub use mapping::FieldMap;

/// A row that cannot be imported: where it is and which field is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
    /// The row as it stood in the file, so that `--skip-invalid` can write it back out.
    pub raw: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.line, self.field, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Parquet,
}

impl Format {
    /// By extension: `.jsonl`/`.ndjson`/`.json` are JSON lines, `.csv`/`.tsv` are delimited,
    /// `.parquet` is Parquet.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "csv" | "tsv" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            _ => bail!(
                "{}: unknown file type {ext:?}; use .jsonl, .csv or .parquet",
                path.display()
            ),
        }
    }
}

/// A streaming reader of rows, each either an import row or the error that rejects it.
pub struct RowReader {
    inner: Box<dyn Iterator<Item = Result<Result<ImportRow, RowError>>> + Send>,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RowReader {
    pub fn open(path: &Path, map: FieldMap, scale: LabelScale) -> Result<RowReader> {
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let validator = Validator { map, scale };
        let inner: Box<dyn Iterator<Item = _> + Send> = match Format::from_path(path)? {
            Format::Jsonl => Box::new(jsonl::rows(path, validator, progress.clone())?),
            Format::Csv => Box::new(csv_rows::rows(path, validator, progress.clone())?),
            Format::Parquet => Box::new(parquet_rows::rows(path, validator, progress.clone())?),
        };
        Ok(RowReader { inner, progress })
    }

    /// Bytes of the file read so far, for a progress bar.
    pub fn bytes_read(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.progress.clone()
    }
}

impl Iterator for RowReader {
    type Item = Result<Result<ImportRow, RowError>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// Field values of one row before validation, whatever the file format.
#[derive(Default)]
struct RawFields {
    query_id: Option<String>,
    query: Option<String>,
    product_id: Option<String>,
    title: Option<String>,
    description: Option<String>,
    brand: Option<String>,
    attributes: Option<String>,
    label: Option<String>,
    split: Option<String>,
}

struct Validator {
    map: FieldMap,
    scale: LabelScale,
}

impl Validator {
    fn validate(
        &self,
        line: u64,
        f: RawFields,
        raw: impl FnOnce() -> String,
    ) -> Result<ImportRow, RowError> {
        let err = |field: &str, message: String| RowError {
            line,
            field: field.into(),
            message,
            raw: raw(),
        };
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let Some(query) = non_empty(f.query) else {
            return Err(err(
                &self.map.query,
                "missing or empty; every row needs the query text".into(),
            ));
        };
        let Some(title) = non_empty(f.title) else {
            return Err(err(
                &self.map.title,
                "missing or empty; every row needs the product title".into(),
            ));
        };
        let label = match non_empty(f.label) {
            None => None,
            Some(l) => match self.scale.resolve(&l) {
                Some(found) => Some(found.key.clone()),
                None => {
                    return Err(err(
                        &self.map.label,
                        format!(
                            "unknown label {l:?} for the {} scale ({})",
                            self.scale.name,
                            self.scale.describe()
                        ),
                    ));
                }
            },
        };
        Ok(ImportRow {
            line,
            // Files without ids still import: the query text and the title identify the pair.
            query_id: non_empty(f.query_id).unwrap_or_else(|| query.clone()),
            product_id: non_empty(f.product_id).unwrap_or_else(|| title.clone()),
            query,
            title,
            description: f.description.unwrap_or_default(),
            brand: f.brand.unwrap_or_default(),
            attributes: f.attributes.unwrap_or_else(|| "{}".into()),
            label,
            split: non_empty(f.split),
        })
    }
}

/// Where `--skip-invalid` writes the rows it rejected: beside the input, `FILE.rejected.jsonl`.
pub fn rejects_path(input: &Path) -> PathBuf {
    let mut name = input.file_name().unwrap_or_default().to_os_string();
    name.push(".rejected.jsonl");
    input.with_file_name(name)
}
