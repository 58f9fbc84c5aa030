use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{RawFields, RowError, Validator};
use crate::store::ImportRow;

/// Borrowed view of one JSON object: values stay unparsed until a field is asked for, so the
/// attributes object is stored as the very text of the file without a round trip.
#[derive(Deserialize)]
struct Object<'a>(#[serde(borrow)] HashMap<Cow<'a, str>, &'a RawValue>);

pub(super) fn rows(
    path: &Path,
    validator: Validator,
    progress: Arc<AtomicU64>,
) -> Result<impl Iterator<Item = Result<Result<ImportRow, RowError>>> + Send + use<>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let display = path.display().to_string();
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0u64;
    let mut read = 0u64;
    Ok(std::iter::from_fn(move || {
        loop {
            buf.clear();
            let n = match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) => {
                    return Some(Err(
                        anyhow::Error::new(e).context(format!("reading {display}"))
                    ));
                }
            };
            line += 1;
            read += n as u64;
            if line.is_multiple_of(1024) {
                progress.store(read, Ordering::Relaxed);
            }
            let text = match std::str::from_utf8(&buf) {
                Ok(t) => t.trim(),
                Err(e) => {
                    return Some(Ok(Err(RowError {
                        line,
                        field: "row".into(),
                        message: format!("not UTF-8 text ({e})"),
                        raw: String::from_utf8_lossy(&buf).trim().to_string(),
                    })));
                }
            };
            if text.is_empty() {
                continue;
            }
            return Some(Ok(parse_line(&validator, line, text)));
        }
    }))
}

pub(super) fn parse_line(v: &Validator, line: u64, text: &str) -> Result<ImportRow, RowError> {
    let err = |field: &str, message: String| RowError {
        line,
        field: field.into(),
        message,
        raw: text.into(),
    };
    let object: Object = match serde_json::from_str(text) {
        Ok(o) => o,
        Err(e) => return Err(err("row", format!("not a JSON object ({e})"))),
    };
    let m = &v.map;
    let get = |name: &str| -> Result<Option<String>, RowError> {
        match object.0.get(name) {
            None => Ok(None),
            Some(raw) => scalar_text(raw).map_err(|message| err(name, message)),
        }
    };
    let attributes = match object.0.get(m.attributes.as_str()) {
        None => None,
        Some(raw) => Some(attributes_text(raw).map_err(|message| err(&m.attributes, message))?),
    };
    let fields = RawFields {
        query_id: get(&m.query_id)?,
        query: get(&m.query)?,
        product_id: get(&m.product_id)?,
        title: get(&m.title)?,
        description: get(&m.description)?,
        brand: get(&m.brand)?,
        attributes,
        label: get(&m.label)?,
        split: get(&m.split)?,
    };
    v.validate(line, fields, || text.to_string())
}

/// A JSON string, number or boolean as text; null as absent.
fn scalar_text(raw: &RawValue) -> Result<Option<String>, String> {
    let t = raw.get();
    match t.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(t)
            .map(Some)
            .map_err(|e| e.to_string()),
        Some(b'n') => Ok(None),
        Some(b'{') | Some(b'[') => Err(format!(
            "expected text or a number, found {}",
            &t[..t.len().min(40)]
        )),
        _ => Ok(Some(t.to_string())),
    }
}

/// Attributes must be a JSON object (or a string holding one, as CSV exports often have).
fn attributes_text(raw: &RawValue) -> Result<String, String> {
    let t = raw.get();
    match t.as_bytes().first() {
        Some(b'{') => Ok(t.to_string()),
        Some(b'n') => Ok("{}".into()),
        Some(b'"') => {
            let inner: String = serde_json::from_str(t).map_err(|e| e.to_string())?;
            super::csv_rows::attributes_from_text(&inner)
        }
        _ => Err(format!(
            "expected a JSON object, found {}",
            &t[..t.len().min(40)]
        )),
    }
}
