//! A student's predictions from elsewhere: rows of query_id, product_id and a score in [0, 1]
//! and/or a distribution over the scale (a list in the scale's order or an object by label key).

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Format, RowError};
use crate::domain::{LabelScale, PairKey};

#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub line: u64,
    pub key: PairKey,
    pub score: f64,
    pub distribution: Option<Vec<f64>>,
}

/// Every row of the file, or the first bad one as `FILE:LINE: field: what is wrong`.
pub fn read(path: &Path, scale: &LabelScale) -> Result<Vec<Prediction>> {
    let rows: Vec<(u64, Value)> = match Format::from_path(path)? {
        Format::Jsonl => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let mut rows = Vec::new();
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.with_context(|| format!("{}:{}", path.display(), n + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&line)
                    .map_err(|e| RowError {
                        line: n as u64 + 1,
                        field: "row".into(),
                        message: format!("not JSON: {e}"),
                        raw: line.clone(),
                    })
                    .map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
                rows.push((n as u64 + 1, v));
            }
            rows
        }
        Format::Parquet => {
            let mut rows = Vec::new();
            for (n, text) in super::parquet_rows::json_rows(path)?.enumerate() {
                let v: Value = serde_json::from_str(&text?).expect("arrow-json writes JSON");
                rows.push((n as u64 + 1, v));
            }
            rows
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(false)
                .from_path(path)
                .with_context(|| format!("opening {}", path.display()))?;
            let headers = reader.headers()?.clone();
            let mut rows = Vec::new();
            for record in reader.records() {
                let record = record.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                let line = record.position().map_or(0, |p| p.line());
                let mut obj = serde_json::Map::new();
                for (h, v) in headers.iter().zip(record.iter()) {
                    obj.insert(h.to_string(), Value::String(v.to_string()));
                }
                rows.push((line, Value::Object(obj)));
            }
            rows
        }
    };
    rows.into_iter()
        .map(|(line, v)| {
            prediction(line, &v, scale)
                .map_err(|e| anyhow::anyhow!("{}:{line}: {e}", path.display()))
        })
        .collect()
}

fn text(v: &Value, field: &str) -> Result<String> {
    match &v[field] {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bail!("{field}: missing"),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn prediction(line: u64, v: &Value, scale: &LabelScale) -> Result<Prediction> {
    let key = PairKey {
        query_id: text(v, "query_id")?,
        product_id: text(v, "product_id")?,
    };
    let distribution = match &v["distribution"] {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(distribution(
            &serde_json::from_str(s).context("distribution: not a JSON list or object")?,
            scale,
        )?),
        d => Some(distribution(d, scale)?),
    };
    let top = scale.top_gain();
    let score = match (&v["score"], &distribution) {
        (Value::Null, Some(d)) => {
            d.iter()
                .zip(&scale.labels)
                .map(|(p, l)| p * l.gain)
                .sum::<f64>()
                / top
        }
        (Value::Null, None) => bail!("score: missing (give a score, a distribution or both)"),
        (s, _) => {
            let x = number(s).context("score: not a number")?;
            if !(0.0..=1.0).contains(&x) {
                bail!("score: {x} is outside 0..1");
            }
            x
        }
    };
    Ok(Prediction {
        line,
        key,
        score,
        distribution,
    })
}

fn distribution(d: &Value, scale: &LabelScale) -> Result<Vec<f64>> {
    let probs: Vec<f64> = match d {
        Value::Array(a) => {
            if a.len() != scale.len() {
                bail!(
                    "distribution: {} values for a scale of {} labels ({})",
                    a.len(),
                    scale.len(),
                    scale.keys().collect::<Vec<_>>().join("/")
                );
            }
            a.iter()
                .map(|x| number(x).context("distribution: not a number"))
                .collect::<Result<_>>()?
        }
        Value::Object(o) => {
            for k in o.keys() {
                if scale.index_of_key(k).is_none() {
                    bail!(
                        "distribution: unknown label {k:?} for the {} scale",
                        scale.name
                    );
                }
            }
            scale
                .labels
                .iter()
                .map(|l| o.get(&l.key).and_then(number).unwrap_or(0.0))
                .collect()
        }
        _ => bail!("distribution: expected a list or an object by label key"),
    };
    let sum: f64 = probs.iter().sum();
    if probs.iter().any(|p| *p < 0.0) || (sum - 1.0).abs() > 1e-3 {
        bail!("distribution: probabilities must be ≥ 0 and sum to 1 (they sum to {sum:.4})");
    }
    Ok(probs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_scores_and_distributions() {
        let esci = LabelScale::esci();
        let p = prediction(
            3,
            &serde_json::json!({"query_id": 1, "product_id": "B1", "score": 0.5}),
            &esci,
        )
        .unwrap();
        assert_eq!(p.key.query_id, "1");
        assert_eq!(p.score, 0.5);
        let p = prediction(4, &serde_json::json!({"query_id": "1", "product_id": "B1", "distribution": {"E": 0.5, "I": 0.5}}), &esci).unwrap();
        assert_eq!(p.distribution, Some(vec![0.5, 0.0, 0.0, 0.5]));
        assert!((p.score - 0.5).abs() < 1e-12);
        for (row, message) in [
            (
                serde_json::json!({"product_id": "B1", "score": 0.5}),
                "query_id: missing",
            ),
            (
                serde_json::json!({"query_id": "1", "product_id": "B1", "score": 1.5}),
                "outside 0..1",
            ),
            (
                serde_json::json!({"query_id": "1", "product_id": "B1"}),
                "score: missing",
            ),
            (
                serde_json::json!({"query_id": "1", "product_id": "B1", "distribution": [0.5, 0.5]}),
                "2 values",
            ),
            (
                serde_json::json!({"query_id": "1", "product_id": "B1", "distribution": {"X": 1.0}}),
                "unknown label",
            ),
        ] {
            let err = prediction(1, &row, &esci).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }
}
