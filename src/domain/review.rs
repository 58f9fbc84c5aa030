//! Human review as an append-only log: every change is an `Annotation`; the reviewed state of a
//! pair is derived from the teacher's rationale and the annotations still in force. Undo is an
//! annotation that cancels an earlier one; redo cancels the undo.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::{Dimension, Rationale, Verdict};

/// A text step of the rationale that a human can rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TextStep {
    QueryAnalysis,
    ItemAnalysis,
    Conclusion,
}

impl TextStep {
    pub fn as_str(self) -> &'static str {
        match self {
            TextStep::QueryAnalysis => "query_analysis",
            TextStep::ItemAnalysis => "item_analysis",
            TextStep::Conclusion => "conclusion",
        }
    }

    pub fn parse(s: &str) -> Option<TextStep> {
        [
            TextStep::QueryAnalysis,
            TextStep::ItemAnalysis,
            TextStep::Conclusion,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// One human change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    SetLabel {
        before: Option<String>,
        after: String,
    },
    SetVerdict {
        dimension: String,
        before: Verdict,
        after: Verdict,
    },
    EditStep {
        step: TextStep,
        before: String,
        after: String,
    },
    /// `field` is `query_value`, `item_value` or `note`.
    EditDimension {
        dimension: String,
        field: String,
        before: String,
        after: String,
    },
    AddDimension {
        dimension: Dimension,
    },
    RemoveDimension {
        dimension: Dimension,
    },
    /// The teacher's judgment is right as it stands (as amended so far).
    Accept,
    /// The teacher's judgment is wrong and should not be learned from.
    Reject,
    Note {
        text: String,
    },
    /// Cancels the annotation with this id (and so a redo is an undo of an undo).
    Undo {
        target: i64,
    },
}

impl Change {
    /// The name stored in the `action` column.
    pub fn action(&self) -> &'static str {
        match self {
            Change::SetLabel { .. } => "set_label",
            Change::SetVerdict { .. } => "set_verdict",
            Change::EditStep { .. } => "edit_step",
            Change::EditDimension { .. } => "edit_dimension",
            Change::AddDimension { .. } => "add_dimension",
            Change::RemoveDimension { .. } => "remove_dimension",
            Change::Accept => "accept",
            Change::Reject => "reject",
            Change::Note { .. } => "note",
            Change::Undo { .. } => "undo",
        }
    }
}

/// A stored annotation: who changed what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub id: i64,
    pub pair_id: i64,
    pub judgment_id: Option<i64>,
    pub annotator: String,
    pub created_at: String,
    pub change: Change,
}

/// Who wrote a step in the reviewed rationale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Teacher,
    Human,
}

/// The state of a pair after review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reviewed {
    pub rationale: Option<Rationale>,
    /// The label a human set, if any.
    pub human_label: Option<String>,
    pub accepted: bool,
    pub rejected: bool,
    pub notes: Vec<String>,
    /// Steps a human wrote or changed: `query_analysis`, `item_analysis`, `conclusion`,
    /// `dimension:NAME`, `label`.
    pub human_steps: BTreeSet<String>,
    pub annotators: Vec<String>,
    pub updated_at: Option<String>,
    /// Annotations in force (not undone), for counting corrections.
    pub active: usize,
}

impl Reviewed {
    pub fn source_of(&self, step: &str) -> Source {
        if self.human_steps.contains(step) {
            Source::Human
        } else {
            Source::Teacher
        }
    }

    /// A step is verified when a human wrote it or accepted the judgment.
    pub fn verified(&self, step: &str) -> bool {
        self.accepted || self.human_steps.contains(step)
    }

    /// Whether anything a human did is still in force.
    pub fn is_reviewed(&self) -> bool {
        self.active > 0
    }
}

/// The ids of annotations in force: an annotation is cancelled when an undo still in force
/// targets it. Undo rows always point back in time, so one pass from newest to oldest decides.
pub fn active_ids(annotations: &[Annotation]) -> HashSet<i64> {
    let mut cancelled = HashSet::new();
    let mut active = HashSet::new();
    let mut sorted: Vec<&Annotation> = annotations.iter().collect();
    sorted.sort_by_key(|a| a.id);
    for a in sorted.iter().rev() {
        if cancelled.contains(&a.id) {
            continue;
        }
        active.insert(a.id);
        if let Change::Undo { target } = a.change {
            cancelled.insert(target);
        }
    }
    active
}

/// Applies the annotations in force, oldest first, to the teacher's rationale.
pub fn derive(teacher: Option<&Rationale>, annotations: &[Annotation]) -> Reviewed {
    let mut r = Reviewed {
        rationale: teacher.cloned(),
        human_label: None,
        accepted: false,
        rejected: false,
        notes: Vec::new(),
        human_steps: BTreeSet::new(),
        annotators: Vec::new(),
        updated_at: None,
        active: 0,
    };
    // Most pairs have no review: skip building the sets (an export derives a million).
    if annotations.is_empty() {
        return r;
    }
    let active = active_ids(annotations);
    let mut sorted: Vec<&Annotation> = annotations
        .iter()
        .filter(|a| active.contains(&a.id))
        .collect();
    sorted.sort_by_key(|a| a.id);
    for a in sorted {
        if matches!(a.change, Change::Undo { .. }) {
            continue;
        }
        r.active += 1;
        if !r.annotators.contains(&a.annotator) {
            r.annotators.push(a.annotator.clone());
        }
        r.updated_at = Some(a.created_at.clone());
        apply(&mut r, &a.change);
    }
    r
}

fn apply(r: &mut Reviewed, change: &Change) {
    let dim_mut = |r: &mut Reviewed, name: &str| -> Option<usize> {
        r.rationale
            .as_ref()?
            .dimensions
            .iter()
            .position(|d| d.name == name)
    };
    match change {
        Change::SetLabel { after, .. } => {
            r.human_label = Some(after.clone());
            if let Some(rat) = r.rationale.as_mut() {
                rat.label = after.clone();
            }
            r.human_steps.insert("label".into());
            r.rejected = false;
        }
        Change::SetVerdict {
            dimension, after, ..
        } => {
            if let Some(i) = dim_mut(r, dimension) {
                r.rationale.as_mut().expect("found above").dimensions[i].verdict = *after;
                r.human_steps.insert(format!("dimension:{dimension}"));
            }
        }
        Change::EditStep { step, after, .. } => {
            if let Some(rat) = r.rationale.as_mut() {
                match step {
                    TextStep::QueryAnalysis => rat.query_analysis = after.clone(),
                    TextStep::ItemAnalysis => rat.item_analysis = after.clone(),
                    TextStep::Conclusion => rat.conclusion = after.clone(),
                }
                r.human_steps.insert(step.as_str().into());
            }
        }
        Change::EditDimension {
            dimension,
            field,
            after,
            ..
        } => {
            if let Some(i) = dim_mut(r, dimension) {
                let d = &mut r.rationale.as_mut().expect("found above").dimensions[i];
                match field.as_str() {
                    "query_value" => d.query_value = after.clone(),
                    "item_value" => d.item_value = after.clone(),
                    _ => d.note = after.clone(),
                }
                r.human_steps.insert(format!("dimension:{dimension}"));
            }
        }
        Change::AddDimension { dimension } => {
            if let Some(rat) = r.rationale.as_mut() {
                rat.dimensions.push(dimension.clone());
                r.human_steps
                    .insert(format!("dimension:{}", dimension.name));
            }
        }
        Change::RemoveDimension { dimension } => {
            if let Some(rat) = r.rationale.as_mut() {
                rat.dimensions.retain(|d| d.name != dimension.name);
                r.human_steps
                    .insert(format!("dimension:{}", dimension.name));
            }
        }
        Change::Accept => {
            r.accepted = true;
            r.rejected = false;
        }
        Change::Reject => {
            r.rejected = true;
            r.accepted = false;
        }
        Change::Note { text } => r.notes.push(text.clone()),
        Change::Undo { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rationale() -> Rationale {
        Rationale {
            query_analysis: "men's tennis shoes".into(),
            item_analysis: "a cap".into(),
            dimensions: vec![Dimension {
                name: "category".into(),
                query_value: "shoes".into(),
                item_value: "cap".into(),
                verdict: Verdict::Match,
                note: String::new(),
            }],
            conclusion: "fine".into(),
            label: "E".into(),
        }
    }

    fn ann(id: i64, change: Change) -> Annotation {
        Annotation {
            id,
            pair_id: 1,
            judgment_id: Some(1),
            annotator: "ana".into(),
            created_at: format!("t{id}"),
            change,
        }
    }

    #[test]
    fn corrections_apply_in_order_and_mark_their_steps_human() {
        let log = vec![
            ann(
                1,
                Change::SetVerdict {
                    dimension: "category".into(),
                    before: Verdict::Match,
                    after: Verdict::Mismatch,
                },
            ),
            ann(
                2,
                Change::SetLabel {
                    before: Some("E".into()),
                    after: "I".into(),
                },
            ),
            ann(
                3,
                Change::EditStep {
                    step: TextStep::Conclusion,
                    before: "fine".into(),
                    after: "a cap is not a shoe".into(),
                },
            ),
        ];
        let r = derive(Some(&rationale()), &log);
        let rat = r.rationale.as_ref().unwrap();
        assert_eq!(rat.dimensions[0].verdict, Verdict::Mismatch);
        assert_eq!(
            (rat.label.as_str(), r.human_label.as_deref()),
            ("I", Some("I"))
        );
        assert_eq!(rat.conclusion, "a cap is not a shoe");
        assert_eq!(r.source_of("dimension:category"), Source::Human);
        assert_eq!(r.source_of("query_analysis"), Source::Teacher);
        assert!(r.verified("conclusion") && !r.verified("item_analysis"));
        assert_eq!((r.active, r.updated_at.as_deref()), (3, Some("t3")));
    }

    #[test]
    fn undo_cancels_and_redo_restores() {
        let set = ann(
            1,
            Change::SetLabel {
                before: Some("E".into()),
                after: "I".into(),
            },
        );
        let undo = ann(2, Change::Undo { target: 1 });
        let r = derive(Some(&rationale()), &[set.clone(), undo.clone()]);
        assert_eq!(r.human_label, None);
        assert_eq!(r.rationale.as_ref().unwrap().label, "E");
        assert!(!r.is_reviewed());
        let redo = ann(3, Change::Undo { target: 2 });
        let r = derive(Some(&rationale()), &[set, undo, redo]);
        assert_eq!(r.human_label.as_deref(), Some("I"));
    }

    #[test]
    fn accept_verifies_every_step_and_reject_clears_it() {
        let r = derive(Some(&rationale()), &[ann(1, Change::Accept)]);
        assert!(r.accepted && r.verified("item_analysis"));
        let r = derive(
            Some(&rationale()),
            &[ann(1, Change::Accept), ann(2, Change::Reject)],
        );
        assert!(r.rejected && !r.accepted);
    }
}
