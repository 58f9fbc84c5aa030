//! Parquet files (pandas, polars, Spark, Hugging Face `datasets`): each record batch becomes JSON
//! lines through arrow-json and goes through the JSON row parsers, so the fields, the mapping and
//! the errors are the same as for JSONL; an error names the row (1-based) where JSONL names the
//! line.
//!
//! The parquet crate asserts on some damaged files (a negative column offset, a zero-width
//! value) instead of returning an error; those panics are caught here, kept off the terminal,
//! and reported as an error naming the file, so a damaged file is refused like any other.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use anyhow::{Context, Result};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::{RowError, Validator, jsonl};
use crate::store::ImportRow;

/// The rows of a Parquet file, in order, each as one line of JSON (nulls left out).
pub(super) struct JsonRows {
    /// `None` once the reader has failed: it ends there.
    batches: Option<ParquetRecordBatchReader>,
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
    let unreadable = || format!("{display}: not a readable Parquet file");
    let (total, batches) = contained(|| {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
        Ok((total, builder.with_batch_size(4096).build()?))
    })
    .with_context(unreadable)?;
    Ok(JsonRows {
        batches: Some(batches),
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
            let batches = self.batches.as_mut()?;
            let batch = match contained(|| batches.next().transpose().map_err(Into::into)) {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => {
                    self.batches = None;
                    let context = format!("{}: reading the rows after row {at}", self.display);
                    return Some(Err(e.context(context)));
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

thread_local! {
    /// Set while this thread runs the parquet crate: what a panic there said.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `read` and turns a panic inside it into an error carrying the panic's message. The
/// process's panic hook is wrapped once so that a panic caught here is not printed; every other
/// panic goes to the hook that was there before.
fn contained<T>(read: impl FnOnce() -> Result<T>) -> Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mine = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                c.as_mut().map(|slot| {
                    *slot = match (
                        info.payload().downcast_ref::<&str>(),
                        info.payload().downcast_ref::<String>(),
                    ) {
                        (Some(s), _) => (*s).to_owned(),
                        (_, Some(s)) => s.clone(),
                        _ => "a panic without a message".to_owned(),
                    };
                })
            });
            if mine.is_none() {
                previous(info);
            }
        }));
    });
    CAUGHT.with(|c| *c.borrow_mut() = Some(String::new()));
    let outcome = catch_unwind(AssertUnwindSafe(read));
    let said = CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default();
    outcome.unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "the file is damaged: the Parquet reader stopped on it ({said})"
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_the_reader_becomes_an_error_with_its_message() {
        let caught = contained::<()>(|| panic!("column start and length should not be negative"));
        let e = format!("{:#}", caught.unwrap_err());
        assert!(
            e.contains("damaged") && e.contains("should not be negative"),
            "{e}"
        );
        // The hook is back to reporting: a later read that succeeds is untouched.
        assert_eq!(contained(|| Ok(7)).unwrap(), 7);
        assert!(CAUGHT.with(|c| c.borrow().is_none()));
    }
}
