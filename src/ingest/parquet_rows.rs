//! Parquet files (pandas, polars, Spark, Hugging Face `datasets`): each record batch becomes JSON
//! lines through arrow-json and goes through the JSON row parsers, so the fields, the mapping and
//! the errors are the same as for JSONL; an error names the row (1-based) where JSONL names the
//! line.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::{RowError, Validator, jsonl};
use crate::store::ImportRow;

/// The rows of a Parquet file, in order, each as one line of JSON (nulls left out).
pub(super) struct JsonRows {
    batches: ParquetRecordBatchReader,
    pending: VecDeque<String>,
    display: String,
    /// Rows handed out so far.
    pub row: u64,
    /// Rows in the file, and its size in bytes.
    pub total: u64,
    pub size: u64,
}

pub(super) fn json_rows(path: &Path) -> Result<JsonRows> {
    let display = path.display().to_string();
    let file = File::open(path).with_context(|| format!("opening {display}"))?;
    let size = file.metadata()?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{display}: not a readable Parquet file"))?;
    let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let batches = builder
        .with_batch_size(4096)
        .build()
        .with_context(|| format!("{display}: not a readable Parquet file"))?;
    Ok(JsonRows {
        batches,
        pending: VecDeque::new(),
        display,
        row: 0,
        total,
        size,
    })
}

impl Iterator for JsonRows {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        loop {
            if let Some(text) = self.pending.pop_front() {
                self.row += 1;
                return Some(Ok(text));
            }
            let at = self.row;
            let batch = match self.batches.next()? {
                Ok(b) => b,
                Err(e) => {
                    let context = format!("{}: reading the rows after row {at}", self.display);
                    return Some(Err(anyhow::Error::new(e).context(context)));
                }
            };
            let mut buf = Vec::new();
            let mut writer = arrow_json::LineDelimitedWriter::new(&mut buf);
            if let Err(e) = writer.write(&batch).and_then(|()| writer.finish()) {
                let context = format!("{}: the rows after row {at} are not JSON", self.display);
                return Some(Err(anyhow::Error::new(e).context(context)));
            }
            drop(writer);
            let text = String::from_utf8(buf).expect("arrow-json writes UTF-8");
            self.pending.extend(text.lines().map(str::to_owned));
        }
    }
}

pub(super) fn rows(
    path: &Path,
    validator: Validator,
    progress: Arc<AtomicU64>,
) -> Result<impl Iterator<Item = Result<Result<ImportRow, RowError>>> + Send + use<>> {
    let mut rows = json_rows(path)?;
    Ok(std::iter::from_fn(move || {
        let text = match rows.next()? {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let (row, total) = (rows.row, rows.total.max(1));
        if row.is_multiple_of(1024) || row == total {
            progress.store(rows.size * row.min(total) / total, Ordering::Relaxed);
        }
        Some(Ok(jsonl::parse_line(&validator, row, &text)))
    }))
}
