use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use super::{RawFields, RowError, Validator};
use crate::store::ImportRow;

pub(super) fn rows(
    path: &Path,
    validator: Validator,
    progress: Arc<AtomicU64>,
) -> Result<impl Iterator<Item = Result<Result<ImportRow, RowError>>> + Send + use<>> {
    let tab = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tab { b'\t' } else { b',' })
        .flexible(false)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let headers = reader
        .headers()
        .with_context(|| format!("{}:1: reading the header row", path.display()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let m = &validator.map;
    let idx = [
        col(&m.query_id),
        col(&m.query),
        col(&m.product_id),
        col(&m.title),
        col(&m.description),
        col(&m.brand),
        col(&m.attributes),
        col(&m.label),
        col(&m.split),
    ];
    // Columns the map does not name become attributes, so nothing in the file is dropped.
    let used = m.columns();
    let extra: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| !used.contains(&h.trim()))
        .map(|(i, h)| (i, h.trim().to_string()))
        .collect();
    let display = path.display().to_string();
    let mut record = csv::StringRecord::new();
    Ok(std::iter::from_fn(move || {
        match reader.read_record(&mut record) {
            Ok(false) => None,
            Ok(true) => {
                let pos = record.position().expect("csv records carry a position");
                progress.store(pos.byte(), Ordering::Relaxed);
                Some(Ok(parse_record(
                    &validator,
                    &idx,
                    &extra,
                    &record,
                    pos.line(),
                )))
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                match e.kind() {
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. } => {
                        Some(Ok(Err(RowError {
                            line,
                            field: "row".into(),
                            message: e.to_string(),
                            raw: String::new(),
                        })))
                    }
                    _ => Some(Err(
                        anyhow::Error::new(e).context(format!("reading {display}"))
                    )),
                }
            }
        }
    }))
}

fn parse_record(
    v: &Validator,
    idx: &[Option<usize>; 9],
    extra: &[(usize, String)],
    record: &csv::StringRecord,
    line: u64,
) -> Result<ImportRow, RowError> {
    let raw = || {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let _ = w.write_record(record);
        String::from_utf8_lossy(&w.into_inner().unwrap_or_default())
            .trim_end()
            .to_string()
    };
    let get = |i: usize| idx[i].and_then(|c| record.get(c)).map(str::to_string);
    let mut attributes = match get(6) {
        None => serde_json::Map::new(),
        Some(t) if t.trim().is_empty() => serde_json::Map::new(),
        Some(t) => match serde_json::from_str::<serde_json::Value>(&t) {
            Ok(serde_json::Value::Object(o)) => o,
            _ => {
                return Err(RowError {
                    line,
                    field: v.map.attributes.clone(),
                    message: "expected a JSON object".into(),
                    raw: raw(),
                });
            }
        },
    };
    for (i, name) in extra {
        if let Some(value) = record.get(*i).filter(|s| !s.is_empty()) {
            attributes
                .entry(name.clone())
                .or_insert_with(|| serde_json::Value::String(value.to_string()));
        }
    }
    let fields = RawFields {
        query_id: get(0),
        query: get(1),
        product_id: get(2),
        title: get(3),
        description: get(4),
        brand: get(5),
        attributes: Some(serde_json::Value::Object(attributes).to_string()),
        label: get(7),
        split: get(8),
    };
    v.validate(line, fields, raw)
}

/// Attributes held as text: a JSON object, or empty.
pub(super) fn attributes_from_text(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Ok("{}".into());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => Ok(serde_json::Value::Object(o).to_string()),
        _ => Err("expected a JSON object".into()),
    }
}
