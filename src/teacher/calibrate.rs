//! `workbench teacher calibrate`: each teacher's (model and prompt) label distribution fitted to
//! the human labels of the train split by vector scaling, and measured on the test split. A
//! teacher fine-tuned by `teacher tune` is fitted on the dev split instead: it learnt the train
//! pairs' labels, so there it looks surer and righter than on any pair it is asked about.

use std::collections::BTreeMap;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

use crate::domain::metrics::{Agreement, Confusion};
use crate::domain::review::derive;
use crate::domain::{Calibration, CalibrationFit, CalibrationObjective, LabelScale, SplitSpec};
use crate::store::{RecordQuery, Store, TeacherKey};

/// One teacher's fit and what it does on the test split.
#[derive(Debug, Clone, Serialize)]
pub struct TeacherCalibration {
    pub model: String,
    pub prompt_hash: String,
    pub mode: String,
    /// The split it was fitted on: `train`, or `dev` for a tuned teacher.
    pub fitted_on: &'static str,
    pub fit: CalibrationFit,
    /// None when the teacher had too few labelled pairs to fit on (nothing stored).
    pub id: Option<i64>,
    pub test_raw: Agreement,
    pub test_calibrated: Agreement,
}

/// (raw distribution, human label) of one teacher's judged, human-labelled pairs.
type Samples = Vec<(Vec<f64>, usize)>;

#[derive(Default)]
struct Teacher {
    mode: String,
    train: Samples,
    dev: Samples,
    test: Samples,
}

/// Fits and stores a calibration for every teacher with at least `min_pairs` labelled pairs to
/// fit on (train; dev for a tuned teacher); the split is `spec` (the default of export and
/// student train when None).
pub async fn calibrate(
    store: &Store,
    scale: &LabelScale,
    spec: Option<&SplitSpec>,
    seed: u64,
    min_pairs: usize,
    objective: CalibrationObjective,
) -> Result<(SplitSpec, Vec<TeacherCalibration>)> {
    let (spec, splits) = store.splits(spec, seed).await?;
    let tuned = store.tuned_teachers().await?;
    let mut teachers: BTreeMap<TeacherKey, Teacher> = BTreeMap::new();
    let mut records = Box::pin(store.pair_records(RecordQuery {
        include_augmented: false,
        student: None,
        without_rationale: true,
        labels_only: false,
    }));
    while let Some(r) = records.next().await {
        let r = r?;
        let Some(j) = r.judgment.as_ref() else {
            continue;
        };
        if j.distribution.probs.len() != scale.len() || j.dist_source == "none" {
            continue;
        }
        let reviewed = derive(j.rationale.as_ref(), &r.annotations);
        let Some(human) = reviewed
            .human_label
            .as_deref()
            .or(r.pair.gold_label.as_deref())
            .and_then(|l| scale.index_of_key(l))
        else {
            continue;
        };
        let t = teachers
            .entry((j.model.clone(), j.prompt_hash.clone()))
            .or_default();
        t.mode = j.mode.clone();
        let sample = (j.distribution.probs.clone(), human);
        match splits.get(r.query_key) {
            Some("train") => t.train.push(sample),
            Some("dev") => t.dev.push(sample),
            Some("test") => t.test.push(sample),
            _ => {}
        }
    }
    let described = format!("{spec} seed {seed}");
    let mut out = Vec::new();
    for (key, t) in teachers {
        let (fitted_on, samples) = if tuned.contains(&key) {
            ("dev", &t.dev)
        } else {
            ("train", &t.train)
        };
        let fit = Calibration::fit(samples, scale.len(), objective);
        let id = if samples.len() >= min_pairs {
            let on = format!("{described}, {fitted_on}, {}", objective.as_str());
            Some(store.save_calibration(&key, &t.mode, &fit, &on).await?)
        } else {
            None
        };
        let agreement = |c: &Calibration| {
            let keys: Vec<String> = scale.keys().map(str::to_owned).collect();
            let mut m = Confusion::new(keys);
            for (p, h) in &t.test {
                let dist = c.apply(&crate::domain::ScoreDist { probs: p.clone() });
                m.add(*h, dist.argmax().0);
            }
            m.agreement()
        };
        out.push(TeacherCalibration {
            model: key.0,
            prompt_hash: key.1,
            mode: t.mode,
            fitted_on,
            test_raw: agreement(&Calibration::identity(scale.len())),
            test_calibrated: agreement(&fit.calibration),
            fit,
            id,
        });
    }
    Ok((spec, out))
}
