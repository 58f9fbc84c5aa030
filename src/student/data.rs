//! Training examples for a student, read from the store or from an export's `cot.jsonl`: the
//! teacher's distribution, the human label where there is one, and the (human-corrected)
//! rationale's verdict per dimension.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, bail};
use futures::StreamExt;

use crate::domain::review::derive;
use crate::domain::{Item, LabelScale, Pair, Query, Verdict};
use crate::export::SplitSpec;
use crate::export::passage;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Pairs of one query share a group (Margin-MSE compares items within a group).
    pub group: String,
    pub query: String,
    pub passage: String,
    pub split: String,
    pub augmented: bool,
    /// The teacher's distribution over the scale, when it judged the pair.
    pub teacher: Option<Vec<f32>>,
    /// The human label's index on the scale: an annotator's, else the imported gold label.
    pub human: Option<usize>,
    /// Per student dimension, the verdict's index in `Verdict::ALL`, when the rationale has one.
    pub verdicts: Vec<Option<usize>>,
}

/// Every pair of the store with a teacher or human target, its split assigned by query as the
/// export assigns it (`by-query:80/10/10` with a seed: the same spec and seed give the same
/// split in both).
pub async fn from_store(
    store: &Store,
    scale: &LabelScale,
    dimensions: &[String],
    split: &SplitSpec,
    seed: u64,
    include_augmented: bool,
) -> Result<Vec<Example>> {
    let splits = split.assign(&store.query_ext_ids().await?, seed);
    let mut out = Vec::new();
    let mut records = Box::pin(store.pair_records(include_augmented, None));
    while let Some(r) = records.next().await {
        let r = r?;
        let j = r.judgment.as_ref();
        let reviewed = derive(j.and_then(|j| j.rationale.as_ref()), &r.annotations);
        let teacher = j
            .filter(|j| j.label.is_some())
            .map(|j| j.distribution.probs.iter().map(|p| *p as f32).collect());
        let human = reviewed
            .human_label
            .as_deref()
            .or(r.pair.gold_label.as_deref())
            .and_then(|l| scale.index_of_key(l));
        let verdicts = dimensions
            .iter()
            .map(|d| {
                reviewed
                    .rationale
                    .as_ref()
                    .and_then(|rat| rat.dimension(d))
                    .and_then(|dim| Verdict::ALL.iter().position(|v| *v == dim.verdict))
            })
            .collect();
        if teacher.is_none() && human.is_none() {
            continue;
        }
        out.push(Example {
            group: r.pair.query.ext_id.clone(),
            query: r.pair.query.text.clone(),
            passage: passage(&r.pair),
            split: splits
                .get(&r.pair.query.ext_id)
                .copied()
                .unwrap_or("train")
                .to_string(),
            augmented: r.pair.origin.starts_with("augmented"),
            teacher,
            human,
            verdicts,
        });
    }
    Ok(out)
}

/// The rows of every `cot.jsonl` under an export directory (`train/`, `dev/`, `test/`), with
/// the split the export gave them.
pub fn from_export(
    dir: &Path,
    scale: &LabelScale,
    dimensions: &[String],
    include_augmented: bool,
) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = entry?.path().join("cot.jsonl");
        if p.exists() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no */cot.jsonl here; write one with `workbench export --out {} --format cot`",
            dir.display(),
            dir.display()
        );
    }
    for file in files {
        let reader = std::io::BufReader::new(std::fs::File::open(&file)?);
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("{}:{}", file.display(), n + 1);
            let row: serde_json::Value =
                serde_json::from_str(&line).with_context(|| format!("{}: not JSON", at()))?;
            if let Some(e) = example_from_cot(&row, scale, dimensions)
                .with_context(at)?
                .filter(|e| include_augmented || !e.augmented)
            {
                out.push(e);
            }
        }
    }
    Ok(out)
}

fn example_from_cot(
    row: &serde_json::Value,
    scale: &LabelScale,
    dimensions: &[String],
) -> Result<Option<Example>> {
    let text = |v: &serde_json::Value, field: &str| -> Result<String> {
        v[field]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("field `{field}`: missing or not text"))
    };
    let item = &row["item"];
    let pair = Pair {
        id: 0,
        query: Query {
            ext_id: text(row, "query_id")?,
            text: text(row, "query")?,
        },
        item: Item {
            ext_id: text(row, "product_id")?,
            title: text(item, "title")?,
            description: item["description"].as_str().unwrap_or_default().into(),
            brand: item["brand"].as_str().unwrap_or_default().into(),
            attributes: item["attributes"].clone(),
        },
        gold_label: None,
        split: None,
        origin: row["origin"].as_str().unwrap_or("import").into(),
    };
    let teacher = match row["teacher"]["distribution"].as_object() {
        Some(d) if row["teacher"]["label"].is_string() => Some(
            scale
                .labels
                .iter()
                .map(|l| d.get(&l.key).and_then(|p| p.as_f64()).unwrap_or(0.0) as f32)
                .collect(),
        ),
        _ => None,
    };
    let human = match row["label_source"].as_str() {
        Some("annotator") | Some("gold") => {
            row["label"].as_str().and_then(|l| scale.index_of_key(l))
        }
        _ => None,
    };
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for step in row["steps"].as_array().into_iter().flatten() {
        if step["step"] == "dimension"
            && let (Some(name), Some(v)) = (step["name"].as_str(), step["verdict"].as_str())
            && let Some(v) = Verdict::parse(v)
        {
            by_name.insert(
                name.to_lowercase(),
                Verdict::ALL.iter().position(|x| *x == v).unwrap_or(0),
            );
        }
    }
    if teacher.is_none() && human.is_none() {
        return Ok(None);
    }
    Ok(Some(Example {
        group: pair.query.ext_id.clone(),
        query: pair.query.text.clone(),
        passage: passage(&pair),
        split: text(row, "split")?,
        augmented: pair.origin.starts_with("augmented"),
        teacher,
        human,
        verdicts: dimensions
            .iter()
            .map(|d| by_name.get(&d.to_lowercase()).copied())
            .collect(),
    }))
}
