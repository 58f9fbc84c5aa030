//! Teacher vs student vs human on the same pairs: label agreement with the humans, NDCG@10 per
//! query, agreement between teacher and student, and the pairs where they differ most.

use std::collections::BTreeMap;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

use super::{RecordQuery, Store, StudentModel};
use crate::domain::LabelScale;
use crate::domain::metrics::{Agreement, Confusion, ndcg_at};
use crate::domain::review::derive;
use crate::domain::{SplitSpec, Splits};

#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub pair_id: i64,
    pub query_id: String,
    pub product_id: String,
    pub query: String,
    pub title: String,
    pub human: Option<String>,
    pub teacher: String,
    pub teacher_score: f64,
    pub student: String,
    pub student_score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub student: String,
    pub split: String,
    /// Pairs with a student score (the student's figures are over those with a human label).
    pub pairs: u64,
    /// Pairs with both a teacher label and a student score.
    pub judged_pairs: u64,
    pub teacher_vs_human: Agreement,
    /// The teacher's calibrated labels (`workbench teacher calibrate`) on the pairs of
    /// `teacher_vs_human` whose teacher has a calibration.
    pub teacher_calibrated_vs_human: Option<Agreement>,
    pub student_vs_human: Agreement,
    /// The student on exactly the pairs of `teacher_vs_human`: the two side by side on the same
    /// rows.
    pub student_vs_human_judged: Agreement,
    pub teacher_vs_student: Agreement,
    pub score_pearson: Option<f64>,
    /// Mean NDCG@10 over queries with a relevant item, ranking by each one's score, gains from
    /// the human labels; the teacher's over the pairs it judged, the student's over all.
    pub ndcg10_teacher: Option<f64>,
    pub ndcg10_student: Option<f64>,
    pub queries: u64,
    /// (teacher score, student score) of every pair both scored, for the scatter plot.
    pub points: Vec<(f64, f64)>,
    pub disagreements: Vec<Disagreement>,
}

/// Which split a pair is in for the comparison: the student's own split when it was trained
/// here (same spec and seed as its training), else the split column of the import.
async fn splits_of(store: &Store, student: &StudentModel) -> Result<Option<Splits>> {
    let config: serde_json::Value = serde_json::from_str(&store.student_config(student.id).await?)?;
    let (Some(spec), Some(seed)) = (config["split"].as_str(), config["seed"].as_u64()) else {
        return Ok(None);
    };
    let Ok(spec) = SplitSpec::parse(spec) else {
        // A student trained from an export directory: its split is the export's.
        return Ok(None);
    };
    Ok(Some(store.splits(Some(&spec), seed).await?.1))
}

/// One pair of a query: (teacher score if judged, student score, human gain).
type PairScores = (Option<f64>, f64, f64);
type QueryScores = BTreeMap<String, Vec<PairScores>>;

pub async fn compare(
    store: &Store,
    scale: &LabelScale,
    student: &StudentModel,
    split: &str,
    top: usize,
) -> Result<Comparison> {
    let splits = splits_of(store, student).await?;
    let keys: Vec<String> = scale.keys().map(str::to_owned).collect();
    let top_gain = scale.top_gain();
    let calibrations = store.calibrations().await?;
    let mut vs_calibrated = Confusion::new(keys.clone());
    let mut vs_teacher = Confusion::new(keys.clone());
    let mut vs_student = Confusion::new(keys.clone());
    let mut vs_student_judged = Confusion::new(keys.clone());
    let mut between = Confusion::new(keys);
    let mut points = Vec::new();
    let mut scored = 0u64;
    let mut per_query: QueryScores = BTreeMap::new();
    let mut all: Vec<Disagreement> = Vec::new();
    let mut records = Box::pin(store.pair_records(RecordQuery {
        include_augmented: false,
        student: Some(student.id),
        // Only the human label is read from the reviews.
        without_rationale: true,
        labels_only: false,
    }));
    while let Some(r) = records.next().await {
        let r = r?;
        if split != "all" {
            let in_split = match &splits {
                Some(map) => map.get(r.query_key),
                None => r.pair.split.as_deref(),
            };
            if in_split != Some(split) {
                continue;
            }
        }
        let Some(s) = r.student_score else {
            continue;
        };
        scored += 1;
        let s_label = scale.student_label(s, r.student_distribution.as_deref());
        let judged = r.judgment.as_ref().and_then(|j| {
            let label = j.label.as_deref().and_then(|l| scale.index_of_key(l))?;
            Some((label, j.distribution.expected_gain(scale) / top_gain))
        });
        let reviewed = derive(
            r.judgment.as_ref().and_then(|j| j.rationale.as_ref()),
            &r.annotations,
        );
        let human = reviewed
            .human_label
            .as_deref()
            .or(r.pair.gold_label.as_deref())
            .and_then(|l| scale.index_of_key(l));
        if let Some(h) = human {
            vs_student.add(h, s_label);
            if let Some((t_label, _)) = judged {
                vs_teacher.add(h, t_label);
                vs_student_judged.add(h, s_label);
                if let Some(j) = &r.judgment
                    && let Some(c) = calibrations.get(&j.model, &j.prompt_hash)
                {
                    vs_calibrated.add(h, c.apply(&j.distribution).argmax().0);
                }
            }
            per_query
                .entry(r.pair.query.ext_id.clone())
                .or_default()
                .push((judged.map(|j| j.1), s, scale.labels[h].gain));
        }
        let Some((t_label, t_score)) = judged else {
            continue;
        };
        between.add(t_label, s_label);
        points.push((t_score, s));
        all.push(Disagreement {
            pair_id: r.pair.id,
            query_id: r.pair.query.ext_id.clone(),
            product_id: r.pair.item.ext_id.clone(),
            query: r.pair.query.text.clone(),
            title: r.pair.item.title.clone(),
            human: human.map(|h| scale.labels[h].key.clone()),
            teacher: scale.labels[t_label].key.clone(),
            teacher_score: t_score,
            student: scale.labels[s_label].key.clone(),
            student_score: s,
        });
    }
    all.sort_by(|a, b| {
        (b.teacher_score - b.student_score)
            .abs()
            .total_cmp(&(a.teacher_score - a.student_score).abs())
    });
    all.truncate(top);
    let ndcg = |pick: fn(&PairScores) -> Option<f64>| -> Option<f64> {
        let values: Vec<f64> = per_query
            .values()
            .filter_map(|items| {
                let ranked: Vec<(f64, f64)> =
                    items.iter().filter_map(|x| Some((pick(x)?, x.2))).collect();
                ndcg_at(&ranked, 10)
            })
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    Ok(Comparison {
        student: student.name.clone(),
        split: split.to_string(),
        pairs: scored,
        judged_pairs: points.len() as u64,
        teacher_vs_human: vs_teacher.agreement(),
        teacher_calibrated_vs_human: (!calibrations.is_empty())
            .then(|| vs_calibrated.agreement())
            .filter(|a| a.n > 0),
        student_vs_human: vs_student.agreement(),
        student_vs_human_judged: vs_student_judged.agreement(),
        teacher_vs_student: between.agreement(),
        score_pearson: crate::domain::metrics::pearson(&points),
        ndcg10_teacher: ndcg(|x| x.0),
        ndcg10_student: ndcg(|x| Some(x.1)),
        queries: per_query.len() as u64,
        points,
        disagreements: all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_and_student_labels() {
        assert!(
            (crate::domain::metrics::pearson(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap() - 1.0)
                .abs()
                < 1e-12
        );
        assert!(
            (crate::domain::metrics::pearson(&[(0.0, 1.0), (1.0, 0.0)]).unwrap() + 1.0).abs()
                < 1e-12
        );
        assert_eq!(
            crate::domain::metrics::pearson(&[(1.0, 1.0), (1.0, 2.0)]),
            None
        );
        let esci = LabelScale::esci();
        assert_eq!(esci.student_label(0.9, None), 0);
        assert_eq!(esci.student_label(0.12, None), 1);
        assert_eq!(esci.student_label(0.0, None), 3);
        // a distribution over the scale wins over the score
        assert_eq!(esci.student_label(0.9, Some(&[0.1, 0.2, 0.6, 0.1])), 2);
        // one of another length does not
        assert_eq!(esci.student_label(0.9, Some(&[0.1, 0.9])), 0);
    }
}
