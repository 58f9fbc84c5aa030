//! Which label and score a pair carries in an export, by `--source`.

use crate::domain::review::Reviewed;
use crate::domain::{LabelScale, ScoreDist};
use crate::store::PairRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelSource {
    /// An annotator's label, else the imported gold label, else the teacher's.
    HumanFirst,
    /// The teacher's label and distribution only.
    Teacher,
    /// Only pairs a human labelled (annotator or gold); the rest are left out.
    HumanOnly,
}

/// The label and graded score a pair exports with, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub label: String,
    /// Relevance in [0, 1]: the label's gain over the scale's top gain, or for the teacher the
    /// expected gain of its distribution over the same.
    pub score: f64,
    /// `annotator`, `gold`, `teacher` or `teacher_calibrated`.
    pub from: &'static str,
}

pub fn decide(
    row: &PairRecord,
    reviewed: &Reviewed,
    scale: &LabelScale,
    source: LabelSource,
    calibrated: Option<&ScoreDist>,
) -> Option<Decided> {
    let top = scale.top_gain();
    let human = || {
        reviewed
            .human_label
            .as_ref()
            .map(|l| (l.clone(), "annotator"))
            .or_else(|| row.pair.gold_label.as_ref().map(|l| (l.clone(), "gold")))
    };
    let from_label = |(label, from): (String, &'static str)| {
        let gain = scale.gain_of(&label)?;
        Some(Decided {
            label,
            score: gain / top,
            from,
        })
    };
    let teacher = || {
        if reviewed.rejected {
            return None;
        }
        let j = row.judgment.as_ref()?;
        let label = j.label.clone()?;
        Some(match calibrated {
            // The calibrated label is the calibrated distribution's most likely one: the
            // calibration moves probability between labels, so it may differ from the written.
            Some(c) => Decided {
                label: scale.labels[c.argmax().0].key.clone(),
                score: c.expected_gain(scale) / top,
                from: "teacher_calibrated",
            },
            None => Decided {
                label,
                score: j.distribution.expected_gain(scale) / top,
                from: "teacher",
            },
        })
    };
    match source {
        LabelSource::HumanFirst => human().and_then(from_label).or_else(teacher),
        LabelSource::Teacher => teacher(),
        LabelSource::HumanOnly => human().and_then(from_label),
    }
}
