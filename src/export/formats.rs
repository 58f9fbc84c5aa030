//! The rows of each export file, built from one query's pairs.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::labels::Decided;
use crate::domain::prompt::{Prompt, answer_json, passage};
use crate::domain::review::Reviewed;
use crate::domain::{LabelScale, ScoreDist};
use crate::store::PairRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Cot,
    MarginMse,
    SoftLabels,
    DistillKl,
    Sft,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Cot,
        Format::MarginMse,
        Format::SoftLabels,
        Format::DistillKl,
        Format::Sft,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Cot => "cot",
            Format::MarginMse => "margin_mse",
            Format::SoftLabels => "soft_labels",
            Format::DistillKl => "distill_kl",
            Format::Sft => "sft",
        }
    }

    pub fn file(self) -> String {
        format!("{}.jsonl", self.name())
    }
}

/// One pair ready to write: its row, its review, its decided label.
pub struct Entry<'a> {
    pub row: &'a PairRecord,
    pub reviewed: Reviewed,
    pub decided: Option<Decided>,
    /// The teacher's distribution through its calibration, when its teacher has one.
    pub calibrated: Option<ScoreDist>,
}

/// A `cot.jsonl` row. Every row has every key, whatever it holds (an unjudged pair's `teacher`
/// is an object of nulls, a text step has the dimension keys as nulls, attributes are a list of
/// name and text): one schema, which `card::features` declares.
pub fn cot_row(e: &Entry, scale: &LabelScale, split: &str) -> Option<Value> {
    let decided = e.decided.as_ref()?;
    let row = e.row;
    let j = row.judgment.as_ref();
    let r = &e.reviewed;
    let steps: Vec<Value> = match &r.rationale {
        None => Vec::new(),
        Some(rat) => {
            let text = |name: &str, text: &str| {
                json!({
                    "step": name, "text": text, "source": r.source_of(name), "verified": r.verified(name),
                    "name": null, "query_value": null, "item_value": null, "verdict": null, "note": null,
                })
            };
            let mut steps = vec![
                text("query_analysis", &rat.query_analysis),
                text("item_analysis", &rat.item_analysis),
            ];
            for d in &rat.dimensions {
                let key = format!("dimension:{}", d.name);
                steps.push(json!({
                    "step": "dimension", "text": null, "source": r.source_of(&key), "verified": r.verified(&key),
                    "name": d.name, "query_value": d.query_value, "item_value": d.item_value,
                    "verdict": d.verdict, "note": d.note,
                }));
            }
            steps.push(text("conclusion", &rat.conclusion));
            steps
        }
    };
    let attributes: Vec<Value> = row
        .pair
        .item
        .attribute_lines()
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    Some(json!({
        "query_id": row.pair.query.ext_id,
        "product_id": row.pair.item.ext_id,
        "split": split,
        "origin": row.pair.origin,
        "query": row.pair.query.text,
        "item": {
            "title": row.pair.item.title, "brand": row.pair.item.brand,
            "description": row.pair.item.description, "attributes": attributes,
        },
        "teacher": json!({
            "model": j.map(|j| &j.model), "prompt_hash": j.map(|j| &j.prompt_hash),
            "label": j.and_then(|j| j.label.as_ref()),
            "distribution": j.map(|j| j.distribution.by_key(scale)),
            "expected_gain": j.map(|j| j.distribution.expected_gain(scale)),
            "calibrated_distribution": e.calibrated.as_ref().map(|c| c.by_key(scale)),
        }),
        "steps": steps,
        "gold_label": row.pair.gold_label,
        "label": decided.label,
        "label_source": decided.from,
        "human_verified": r.accepted || r.human_label.is_some(),
        "human_corrected": !r.human_steps.is_empty(),
        "annotators": r.annotators,
        "updated_at": r.updated_at,
    }))
}

/// A `soft_labels.jsonl` row: the inputs first, then `label`, as CrossEncoder BCE reads it.
#[derive(serde::Serialize)]
pub struct SoftLabelRow<'a> {
    query: &'a str,
    passage: String,
    label: f64,
}

impl SoftLabelRow<'_> {
    /// The row as serde writes it (`{"query":…,"passage":…,"label":…}`), without serde's
    /// byte-by-byte escaping of strings that need none: a sixth of a soft_labels export's row
    /// building (BENCHMARKS.md, export).
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(br#"{"query":"#);
        json_string(out, self.query)?;
        out.extend_from_slice(br#","passage":"#);
        json_string(out, &self.passage)?;
        out.extend_from_slice(br#","label":"#);
        serde_json::to_writer(&mut *out, &self.label)?;
        out.push(b'}');
        Ok(())
    }
}

/// `s` as a JSON string: copied as it is when JSON needs nothing escaped in it (no control
/// character, quote or backslash), else written by serde_json.
fn json_string(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    // Sixteen bytes at a time, without an early exit, so that the check vectorises.
    let plain = s.as_bytes().chunks(16).all(|chunk| {
        chunk
            .iter()
            .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
    });
    if !plain {
        return serde_json::to_writer(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

pub fn soft_label_row<'a>(e: &Entry<'a>) -> Option<SoftLabelRow<'a>> {
    let d = e.decided.as_ref()?;
    Some(SoftLabelRow {
        query: &e.row.pair.query.text,
        passage: passage(&e.row.pair),
        label: d.score,
    })
}

fn rng_for(seed: u64, query_key: i64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed ^ (query_key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// (query, positive, negative, label = score margin) for every pair of items of the query whose
/// scores differ, a seeded sample of at most `max_pairs` of them.
pub fn margin_rows(group: &[Entry], max_pairs: usize, seed: u64) -> Vec<Value> {
    let scored: Vec<(&Entry, f64)> = group
        .iter()
        .filter_map(|e| e.decided.as_ref().map(|d| (e, d.score)))
        .collect();
    let mut pairs = Vec::new();
    for (i, (a, sa)) in scored.iter().enumerate() {
        for (b, sb) in scored.iter().skip(i + 1) {
            if (sa - sb).abs() > 1e-12 {
                let (pos, neg, m) = if sa > sb {
                    (a, b, sa - sb)
                } else {
                    (b, a, sb - sa)
                };
                pairs.push((*pos, *neg, m));
            }
        }
    }
    let Some(first) = group.first() else {
        return Vec::new();
    };
    pairs.shuffle(&mut rng_for(seed, first.row.query_key));
    pairs.truncate(max_pairs);
    pairs
        .into_iter()
        .map(|(p, n, m)| {
            json!({
                "query": p.row.pair.query.text, "positive": passage(&p.row.pair), "negative": passage(&n.row.pair), "label": m,
            })
        })
        .collect()
}

/// (query, positive, negative_1..n, label = [scores]): the best-scored item against n others.
/// A query with fewer than n + 1 scored items gives no row (every row has the same columns).
pub fn distill_kl_row(group: &[Entry], negatives: usize, seed: u64) -> Option<Value> {
    let mut scored: Vec<(&Entry, f64)> = group
        .iter()
        .filter_map(|e| e.decided.as_ref().map(|d| (e, d.score)))
        .collect();
    if scored.len() < negatives + 1 {
        return None;
    }
    let best = scored
        .iter()
        .enumerate()
        .fold(0, |b, (i, s)| if s.1 > scored[b].1 { i } else { b });
    let (pos, pos_score) = scored.remove(best);
    scored.shuffle(&mut rng_for(seed, pos.row.query_key));
    let mut row = serde_json::Map::new();
    row.insert("query".into(), pos.row.pair.query.text.clone().into());
    row.insert("positive".into(), passage(&pos.row.pair).into());
    let mut labels = vec![pos_score];
    for (i, (n, s)) in scored.iter().take(negatives).enumerate() {
        row.insert(format!("negative_{}", i + 1), passage(&n.row.pair).into());
        labels.push(*s);
    }
    row.insert("label".into(), json!(labels));
    Some(Value::Object(row))
}

/// Chat messages for fine-tuning the teacher on the rationale as it should have been written.
/// Left out: pairs without a rationale, rejected ones, and ones whose rationale's label is not
/// the decided label (a human disagreed and nobody corrected the steps to match).
pub fn sft_row(e: &Entry, prompt: &Prompt, scale: &LabelScale) -> Option<Value> {
    let d = e.decided.as_ref()?;
    let rat = e.reviewed.rationale.as_ref()?;
    if e.reviewed.rejected || rat.label != d.label {
        return None;
    }
    let name = scale.label(&rat.label)?.name.clone();
    let assistant = answer_json(rat, &name);
    let mut messages: Vec<Value> = prompt
        .for_pair(&e.row.pair)
        .messages
        .into_iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.text}))
        .collect();
    messages.push(json!({"role": "assistant", "content": assistant.to_string()}));
    Some(json!({"messages": messages}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_label_rows_are_written_as_serde_writes_them() {
        let texts = [
            "",
            "plain ascii text that is longer than sixteen bytes",
            "quote \" in the middle",
            "back\\slash",
            "tab\tnew\nline\r and \u{1} \u{1f} \u{7f}",
            "ünïcödé – “quotes” 🚀 and 日本語",
            "sixteen bytes!!\"",
            "\\",
        ];
        for query in texts {
            for passage in texts {
                for label in [0.0, 0.01, 1.0, 1.0 / 3.0, f64::NAN] {
                    let row = SoftLabelRow {
                        query,
                        passage: passage.to_string(),
                        label,
                    };
                    let mut ours = Vec::new();
                    row.write_json(&mut ours).unwrap();
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        serde_json::to_string(&row).unwrap(),
                        "{query:?} {passage:?} {label}"
                    );
                }
            }
        }
    }
}
