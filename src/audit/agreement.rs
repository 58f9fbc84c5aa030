//! How far the teacher agrees with the humans: against the imported gold labels and against the
//! annotators (accuracy, macro-F1, kappa, confusion), calibration, which steps annotators
//! correct, agreement between annotators, and the teacher-vs-student scatter.

use std::collections::BTreeMap;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

use crate::domain::LabelScale;
use crate::domain::metrics::{Agreement, Calibration, Confusion, Moments, calibration};
use crate::domain::review::{Annotation, derive};
use crate::store::{PairRecord, RecordQuery, Store};

/// A pair the teacher got wrong with confidence: what the report links to.
#[derive(Debug, Clone, Serialize)]
pub struct WorstPair {
    pub pair_id: i64,
    pub query_id: String,
    pub product_id: String,
    pub query: String,
    pub title: String,
    pub description: String,
    pub reference: String,
    pub teacher: String,
    pub teacher_p: f64,
    pub conclusion: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InterAnnotator {
    /// Pairs that two annotators labelled.
    pub pairs: u64,
    pub agreement: Agreement,
}

#[derive(Debug, Clone, Serialize)]
pub struct StudentScatter {
    pub name: String,
    pub scored: u64,
    /// (teacher expected gain, student score), at most `SCATTER_POINTS` of them.
    pub points: Vec<(f64, f64)>,
    pub pearson: Option<f64>,
}

/// Every figure of `workbench metrics` and the report.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub scale: Vec<String>,
    pub pairs: u64,
    pub judged: u64,
    pub teacher_vs_gold: Agreement,
    pub teacher_vs_annotators: Agreement,
    /// Calibration of the teacher's top probability against the human label (annotator's, else
    /// gold).
    pub calibration: Calibration,
    /// Steps annotators changed, counted once per pair: `dimension:brand`, `label`, …, most
    /// corrected first.
    pub corrections: Vec<(String, u64)>,
    pub reviewed_pairs: u64,
    pub inter_annotator: InterAnnotator,
    pub student: Option<StudentScatter>,
    /// The most confident teacher errors, worst first.
    pub worst: Vec<WorstPair>,
}

const SCATTER_POINTS: usize = 5000;
const WORST: usize = 25;

/// Sums up every pair's record.
pub async fn collect(
    store: &Store,
    scale: &LabelScale,
    student: Option<(i64, String)>,
) -> Result<Metrics> {
    let mut acc = Accumulator::new(scale, student.as_ref().map(|s| s.1.clone()));
    let mut records = Box::pin(store.pair_records(RecordQuery {
        include_augmented: true,
        student: student.map(|s| s.0),
        without_rationale: false,
        labels_only: false,
    }));
    while let Some(record) = records.next().await {
        acc.add(&*record?);
    }
    Ok(acc.finish())
}

/// The running sums behind `Metrics`; public so that tests can feed hand-built records.
pub struct Accumulator<'a> {
    scale: &'a LabelScale,
    pairs: u64,
    judged: u64,
    vs_gold: Confusion,
    vs_annotators: Confusion,
    between_annotators: Confusion,
    inter_pairs: u64,
    confidence: Vec<(f64, bool)>,
    corrections: BTreeMap<String, u64>,
    reviewed: u64,
    student: Option<StudentSums>,
    worst: Vec<WorstPair>,
}

/// The teacher-vs-student sums: name, pairs scored, points kept, moments.
struct StudentSums {
    name: String,
    scored: u64,
    points: Vec<(f64, f64)>,
    moments: Moments,
}

impl<'a> Accumulator<'a> {
    pub fn new(scale: &'a LabelScale, student: Option<String>) -> Self {
        let keys: Vec<String> = scale.keys().map(str::to_owned).collect();
        Accumulator {
            scale,
            pairs: 0,
            judged: 0,
            vs_gold: Confusion::new(keys.clone()),
            vs_annotators: Confusion::new(keys.clone()),
            between_annotators: Confusion::new(keys),
            inter_pairs: 0,
            confidence: Vec::new(),
            corrections: BTreeMap::new(),
            reviewed: 0,
            student: student.map(|name| StudentSums {
                name,
                scored: 0,
                points: Vec::new(),
                moments: Moments::default(),
            }),
            worst: Vec::new(),
        }
    }

    pub fn add(&mut self, record: &PairRecord) {
        let scale = self.scale;
        self.pairs += 1;
        let judgment = record.judgment.as_ref();
        let rationale = judgment.and_then(|j| j.rationale.as_ref());
        let reviewed = derive(rationale, &record.annotations);
        if reviewed.is_reviewed() {
            self.reviewed += 1;
            for step in &reviewed.human_steps {
                *self.corrections.entry(step.clone()).or_default() += 1;
            }
        }
        self.add_annotator_pair(&record.annotations);

        let Some(j) = judgment else { return };
        let Some(teacher) = j.label.as_deref().and_then(|l| scale.index_of_key(l)) else {
            return;
        };
        self.judged += 1;
        let gold = record
            .pair
            .gold_label
            .as_deref()
            .and_then(|l| scale.index_of_key(l));
        let human = reviewed
            .human_label
            .as_deref()
            .and_then(|l| scale.index_of_key(l));
        if let Some(g) = gold {
            self.vs_gold.add(g, teacher);
        }
        if let Some(h) = human {
            self.vs_annotators.add(h, teacher);
        }
        let p = j.distribution.probs.get(teacher).copied().unwrap_or(0.0);
        if let Some(reference) = human.or(gold) {
            self.confidence.push((p, reference == teacher));
            if reference != teacher {
                self.keep_worst(record, reference, teacher, p);
            }
        }
        if let (Some(sums), Some(s)) = (self.student.as_mut(), record.student_score) {
            let t = j.distribution.expected_gain(scale) / scale.top_gain();
            sums.scored += 1;
            sums.moments.add(t, s);
            if sums.points.len() < SCATTER_POINTS {
                sums.points.push((t, s));
            }
        }
    }

    /// Two annotators who both set a label on the pair: the first two by name.
    fn add_annotator_pair(&mut self, annotations: &[Annotation]) {
        let mut names: Vec<&str> = annotations.iter().map(|a| a.annotator.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() < 2 {
            return;
        }
        let label_of = |name: &str| {
            let own: Vec<Annotation> = annotations
                .iter()
                .filter(|a| a.annotator == name)
                .cloned()
                .collect();
            derive(None, &own)
                .human_label
                .and_then(|l| self.scale.index_of_key(&l))
        };
        let labelled: Vec<usize> = names.iter().filter_map(|n| label_of(n)).collect();
        if let [a, b, ..] = labelled[..] {
            self.between_annotators.add(a, b);
            self.inter_pairs += 1;
        }
    }

    fn keep_worst(&mut self, record: &PairRecord, reference: usize, teacher: usize, p: f64) {
        if self.worst.len() >= WORST && self.worst.last().is_some_and(|w| w.teacher_p >= p) {
            return;
        }
        let pair = &record.pair;
        self.worst.push(WorstPair {
            pair_id: pair.id,
            query_id: pair.query.ext_id.clone(),
            product_id: pair.item.ext_id.clone(),
            query: pair.query.text.clone(),
            title: pair.item.title.clone(),
            description: pair.item.description.chars().take(600).collect(),
            reference: self.scale.labels[reference].key.clone(),
            teacher: self.scale.labels[teacher].key.clone(),
            teacher_p: p,
            conclusion: record
                .judgment
                .as_ref()
                .and_then(|j| j.rationale.as_ref())
                .map(|r| r.conclusion.clone()),
        });
        self.worst
            .sort_by(|a, b| b.teacher_p.total_cmp(&a.teacher_p));
        self.worst.truncate(WORST);
    }

    pub fn finish(self) -> Metrics {
        let mut corrections: Vec<(String, u64)> = self.corrections.into_iter().collect();
        corrections.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Metrics {
            scale: self.scale.keys().map(str::to_owned).collect(),
            pairs: self.pairs,
            judged: self.judged,
            teacher_vs_gold: self.vs_gold.agreement(),
            teacher_vs_annotators: self.vs_annotators.agreement(),
            calibration: calibration(&self.confidence, 10),
            corrections,
            reviewed_pairs: self.reviewed,
            inter_annotator: InterAnnotator {
                pairs: self.inter_pairs,
                agreement: self.between_annotators.agreement(),
            },
            student: self.student.map(|s| StudentScatter {
                name: s.name,
                scored: s.scored,
                pearson: s.moments.pearson(),
                points: s.points,
            }),
            worst: self.worst,
        }
    }
}
