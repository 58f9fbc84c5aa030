//! The detail view's state (one pair: its rationale as reviewed, the editor, the item's text)
//! and what the app does on it: open a pair, write a change, undo, redo, edit a step or a
//! dimension.

use anyhow::Result;
use ratatui_textarea::TextArea;

use super::app::{App, View};
use super::tasks::{Apply, Then, nothing_then};
use crate::domain::review::{self, Annotation, Change, Reviewed, TextStep};
use crate::domain::{Dimension, Pair};
use crate::store::{
    Cursor, JudgmentRecord, QueueFilter, QueueScope, QueueSort, Store, StoredFinding, StudentScore,
};

/// One selectable row of the detail view's rationale.
#[derive(Debug, Clone, PartialEq)]
pub enum StepRef {
    Text(TextStep),
    Dimension(String),
}

pub struct Detail {
    pub pair: Pair,
    pub judgment: Option<JudgmentRecord>,
    pub annotations: Vec<Annotation>,
    pub reviewed: Reviewed,
    /// What `workbench audit` found on this pair, worst first.
    pub findings: Vec<StoredFinding>,
    pub cursor: usize,
    pub editor: Option<(EditTarget, TextArea<'static>)>,
    /// Esc was pressed once on an editor holding unsaved text: a second Esc drops it.
    pub drop_asked: bool,
    /// The text the editor opened with, to tell unsaved changes.
    pub editor_start: String,
    /// The newest student's name and prediction, when it scored the pair.
    pub student: Option<(String, StudentScore)>,
    /// The item's whole text is shown (`i`), scrolled down by this many rows.
    pub item_scroll: Option<u16>,
}

/// What the open editor writes on ^s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditTarget {
    Step(TextStep),
    /// A free note on the pair (`N`).
    Note,
    /// A dimension's values, one `field: value` line each (`e` on a dimension).
    Dimension(String),
    /// A dimension to add: its name and values (`+`).
    NewDimension,
}

impl EditTarget {
    pub fn as_str(&self) -> &str {
        match self {
            EditTarget::Step(s) => s.as_str(),
            EditTarget::Note => "note",
            EditTarget::Dimension(name) => name,
            EditTarget::NewDimension => "new dimension",
        }
    }
}

/// The lines of a dimension form: `name: …`, `query: …`, `item: …`, `note: …`.
const FORM_FIELDS: [(&str, &str); 3] = [
    ("query", "query_value"),
    ("item", "item_value"),
    ("note", "note"),
];

/// The value of `field: value` lines by field; lines without a known field are left out.
fn form_values(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// An editor holding `lines`, its cursor after the last character (where typing continues).
fn editor(lines: Vec<String>) -> TextArea<'static> {
    let mut area = TextArea::new(lines);
    area.move_cursor(ratatui_textarea::CursorMove::Bottom);
    area.move_cursor(ratatui_textarea::CursorMove::End);
    area
}

impl Detail {
    fn open_editor(&mut self, target: EditTarget, area: TextArea<'static>) {
        self.editor_start = area.lines().join("\n");
        self.drop_asked = false;
        self.editor = Some((target, area));
    }

    /// The rows the cursor moves over: query analysis, item analysis, each dimension, conclusion.
    pub fn steps(&self) -> Vec<StepRef> {
        let mut steps = vec![
            StepRef::Text(TextStep::QueryAnalysis),
            StepRef::Text(TextStep::ItemAnalysis),
        ];
        if let Some(r) = &self.reviewed.rationale {
            steps.extend(
                r.dimensions
                    .iter()
                    .map(|d| StepRef::Dimension(d.name.clone())),
            );
        }
        steps.push(StepRef::Text(TextStep::Conclusion));
        steps
    }
}

/// Everything the detail view shows of one pair, read from the store.
struct PairView {
    pair: Pair,
    judgment: Option<JudgmentRecord>,
    annotations: Vec<Annotation>,
    findings: Vec<StoredFinding>,
    student: Option<(String, StudentScore)>,
}

/// Reads what the detail view shows of `pair_id`; `None` when there is no such pair.
async fn read_pair(store: &Store, pair_id: i64) -> Result<Option<PairView>> {
    let Some(pair) = store.pair_by_id(pair_id).await? else {
        return Ok(None);
    };
    let judgments = store.judgments_of(pair_id).await?;
    Ok(Some(PairView {
        pair,
        judgment: crate::store::pick_judgment(&judgments).cloned(),
        annotations: store.annotations_of(pair_id).await?,
        findings: store.findings_of(pair_id).await?,
        student: store.newest_student_score(pair_id).await?,
    }))
}

/// The first unreviewed pair after `from` in pair order, else the first of all.
async fn next_unreviewed_after(store: &Store, from: i64) -> Result<Option<i64>> {
    for after in [from, 0] {
        let next = store
            .queue_page(
                QueueFilter::Unreviewed,
                QueueSort::Pair,
                Cursor {
                    key: 0.0,
                    id: after,
                },
                false,
                1,
                &QueueScope::default(),
            )
            .await?;
        if let Some(r) = next.first() {
            return Ok(Some(r.pair_id));
        }
    }
    Ok(None)
}

impl App {
    /// Opens the detail view on `pair_id` once it is read.
    pub(super) fn open(&mut self, pair_id: i64) {
        let store = self.store.clone();
        self.spawn(async move {
            let read = read_pair(&store, pair_id).await?;
            Ok(Box::new(move |app: &mut App| {
                if let Some(read) = read {
                    app.show_pair(read);
                }
                Ok(())
            }) as Apply)
        });
    }

    fn show_pair(&mut self, read: PairView) {
        let PairView {
            pair,
            judgment,
            annotations,
            findings,
            student,
        } = read;
        let reviewed = review::derive(
            judgment.as_ref().and_then(|j| j.rationale.as_ref()),
            &annotations,
        );
        let cursor = self
            .detail
            .as_ref()
            .filter(|d| d.pair.id == pair.id)
            .map(|d| d.cursor)
            .unwrap_or(0);
        let mut detail = Detail {
            pair,
            judgment,
            annotations,
            reviewed,
            findings,
            cursor,
            editor: None,
            drop_asked: false,
            editor_start: String::new(),
            student,
            item_scroll: None,
        };
        detail.cursor = detail.cursor.min(detail.steps().len() - 1);
        self.detail = Some(detail);
        self.view = View::Detail;
    }

    /// Writes one change for the open pair and re-derives its state.
    pub(super) fn change(&mut self, change: Change) {
        self.change_then(vec![change], nothing_then());
    }

    /// Writes `changes` for the open pair, in order, re-reads it, then `then`.
    pub(super) fn change_then(&mut self, changes: Vec<Change>, then: Then) {
        let Some(d) = &self.detail else { return };
        let Some(last) = changes.last() else { return };
        let (pair_id, judgment_id) = (d.pair.id, d.judgment.as_ref().map(|j| j.id));
        let what = last.action().replace('_', " ");
        let clears_redo = changes.iter().any(|c| !matches!(c, Change::Undo { .. }));
        let (store, annotator) = (self.store.clone(), self.annotator.clone());
        self.spawn(async move {
            let mut id = 0;
            for change in &changes {
                id = store
                    .annotate(pair_id, judgment_id, &annotator, change)
                    .await?;
            }
            let read = read_pair(&store, pair_id).await?;
            Ok(Box::new(move |app: &mut App| {
                if clears_redo {
                    app.redo.clear();
                }
                if let Some(read) = read {
                    app.show_pair(read);
                }
                app.start_counts();
                app.status = format!("saved: {what} (#{id})");
                then(app)
            }) as Apply)
        });
    }

    /// Opens the next unreviewed pair after the open (or selected) one, round to the first.
    pub(super) fn next_unreviewed(&mut self) {
        let from = self
            .detail
            .as_ref()
            .map(|d| d.pair.id)
            .or(self.selected_row().map(|r| r.pair_id))
            .unwrap_or(0);
        let store = self.store.clone();
        self.spawn(async move {
            let next = next_unreviewed_after(&store, from).await?;
            let read = match next {
                Some(id) => read_pair(&store, id).await?,
                None => None,
            };
            Ok(Box::new(move |app: &mut App| {
                match (next, read) {
                    (None, _) => app.status = "every pair is reviewed".into(),
                    (Some(_), Some(read)) => app.show_pair(read),
                    (Some(_), None) => {}
                }
                Ok(())
            }) as Apply)
        });
    }

    /// The dimension under the cursor in the open pair; else a status saying how to `what`.
    pub(super) fn selected_dimension(&mut self, what: &str) -> Option<Dimension> {
        let d = self.detail.as_ref()?;
        let found = match d.steps().get(d.cursor) {
            Some(StepRef::Dimension(name)) => d
                .reviewed
                .rationale
                .as_ref()
                .and_then(|r| r.dimensions.iter().find(|x| &x.name == name))
                .cloned(),
            _ => None,
        };
        if found.is_none() {
            self.status = format!("select a dimension (j/k) to {what}");
        }
        found
    }

    pub(super) fn cycle_verdict(&mut self) {
        let Some(dim) = self.selected_dimension("change its verdict") else {
            return;
        };
        let name = dim.name.clone();
        let (before, after) = (dim.verdict, dim.verdict.cycle());
        self.change(Change::SetVerdict {
            dimension: name,
            before,
            after,
        });
    }

    pub(super) fn start_edit(&mut self) {
        let Some(d) = &mut self.detail else { return };
        if let Some(StepRef::Dimension(name)) = d.steps().get(d.cursor).cloned() {
            let Some(dim) = d
                .reviewed
                .rationale
                .as_ref()
                .and_then(|r| r.dimensions.iter().find(|x| x.name == name))
            else {
                return;
            };
            let lines = vec![
                format!("query: {}", dim.query_value),
                format!("item: {}", dim.item_value),
                format!("note: {}", dim.note),
            ];
            d.open_editor(EditTarget::Dimension(name), editor(lines));
            self.status = "one value per line after its `field:` · ^s saves, Esc cancels".into();
            return;
        }
        let Some(StepRef::Text(step)) = d.steps().get(d.cursor).cloned() else {
            self.status = "select a step (j/k) to edit it".into();
            return;
        };
        let Some(r) = &d.reviewed.rationale else {
            self.status = "no rationale to edit".into();
            return;
        };
        let text = match step {
            TextStep::QueryAnalysis => &r.query_analysis,
            TextStep::ItemAnalysis => &r.item_analysis,
            TextStep::Conclusion => &r.conclusion,
        };
        d.open_editor(
            EditTarget::Step(step),
            editor(text.lines().map(str::to_string).collect()),
        );
        self.status = "editing: ^s saves, Esc cancels".into();
    }

    pub(super) fn start_note(&mut self) {
        let Some(d) = &mut self.detail else { return };
        d.open_editor(EditTarget::Note, TextArea::default());
        self.status = "note: ^s saves, Esc cancels".into();
    }

    /// Adds the first dimension of the prompt's list the rationale does not have yet, as
    /// "not mentioned" with empty values, and selects it (v cycles its verdict).
    /// `+`: a form for the dimension to add, its name proposed (the first of the usual ones the
    /// rationale lacks); ^s adds it with the values typed, `v` then sets its verdict.
    pub(super) fn add_dimension(&mut self) {
        let Some(d) = &mut self.detail else { return };
        let Some(r) = &d.reviewed.rationale else {
            self.status = "no rationale to add a dimension to".into();
            return;
        };
        let proposed = crate::domain::prompt::DIMENSIONS
            .iter()
            .find(|n| !r.dimensions.iter().any(|x| x.name == **n))
            .copied()
            .unwrap_or_default();
        let lines = vec![
            format!("name: {proposed}"),
            "query: ".into(),
            "item: ".into(),
        ];
        let mut area = editor(lines);
        area.move_cursor(ratatui_textarea::CursorMove::Top);
        area.move_cursor(ratatui_textarea::CursorMove::End);
        d.open_editor(EditTarget::NewDimension, area);
        self.status = "name, query and item values · ^s adds, Esc cancels".into();
    }

    /// Writes what a dimension form holds: the dimension added, or each value that changed.
    pub(super) fn save_dimension_form(&mut self, target: EditTarget, text: &str) {
        let values = form_values(text);
        let value = |field: &str| values.get(field).cloned().unwrap_or_default();
        let existing = |name: &str| {
            self.detail
                .as_ref()
                .and_then(|d| d.reviewed.rationale.as_ref())
                .and_then(|r| r.dimensions.iter().find(|x| x.name == name).cloned())
        };
        match target {
            EditTarget::NewDimension => {
                let name = value("name");
                if name.is_empty() {
                    self.status = "not added: a dimension needs a name".into();
                    return;
                }
                if existing(&name).is_some() {
                    self.status = format!("not added: the rationale has a {name} dimension");
                    return;
                }
                let dimension = crate::domain::Dimension {
                    name: name.clone(),
                    query_value: value("query"),
                    item_value: value("item"),
                    verdict: crate::domain::Verdict::NotMentioned,
                    note: value("note"),
                };
                self.change_then(
                    vec![Change::AddDimension { dimension }],
                    Box::new(move |app| {
                        if let Some(d) = &mut app.detail
                            && let Some(i) = d
                                .steps()
                                .iter()
                                .position(|s| *s == StepRef::Dimension(name.clone()))
                        {
                            d.cursor = i;
                        }
                        Ok(())
                    }),
                );
            }
            EditTarget::Dimension(name) => {
                let Some(dim) = existing(&name) else {
                    return;
                };
                let mut changes = Vec::new();
                for (label, field) in FORM_FIELDS {
                    let before = match field {
                        "query_value" => &dim.query_value,
                        "item_value" => &dim.item_value,
                        _ => &dim.note,
                    };
                    let after = value(label);
                    if *before != after {
                        changes.push(Change::EditDimension {
                            dimension: name.clone(),
                            field: field.into(),
                            before: before.clone(),
                            after,
                        });
                    }
                }
                self.change_then(changes, nothing_then());
            }
            _ => {}
        }
    }

    pub(super) fn remove_dimension(&mut self) {
        let Some(dimension) = self.selected_dimension("remove it") else {
            return;
        };
        self.change(Change::RemoveDimension { dimension });
    }

    pub(super) fn undo(&mut self) {
        let Some(d) = &self.detail else { return };
        let active = review::active_ids(&d.annotations);
        let target = d
            .annotations
            .iter()
            .rev()
            .find(|a| {
                active.contains(&a.id)
                    && a.annotator == self.annotator
                    && !matches!(a.change, Change::Undo { .. })
            })
            .map(|a| a.id);
        match target {
            None => self.status = "nothing of yours to undo on this pair".into(),
            Some(target) => self.change_then(
                vec![Change::Undo { target }],
                Box::new(move |app| {
                    if let Some(undo) = app
                        .detail
                        .as_ref()
                        .and_then(|d| d.annotations.last())
                        .map(|a| a.id)
                    {
                        app.redo.push(undo);
                    }
                    app.status = format!("undone #{target}");
                    Ok(())
                }),
            ),
        }
    }

    pub(super) fn redo(&mut self) {
        match self.redo.pop() {
            None => self.status = "nothing to redo".into(),
            Some(undo) => self.change_then(
                vec![Change::Undo { target: undo }],
                Box::new(move |app| {
                    app.status = format!("redone (cancelled undo #{undo})");
                    Ok(())
                }),
            ),
        }
    }

    /// Keys go to the open pair's editor while one is open. Returns false when none is.
    pub(super) fn editor_key(&mut self, key: crossterm::event::KeyEvent) -> bool {
        use crossterm::event::{KeyCode, KeyModifiers};
        let Some(d) = &mut self.detail else {
            return false;
        };
        let Some((target, area)) = &mut d.editor else {
            return false;
        };
        let escape = key.code == KeyCode::Esc;
        let asked = std::mem::replace(&mut d.drop_asked, false);
        match key.code {
            KeyCode::Esc if area.lines().join("\n") != d.editor_start && !asked => {
                d.drop_asked = escape;
                self.status = "unsaved text: Esc again drops it, ^s saves".into();
            }
            KeyCode::Esc => {
                d.editor = None;
                self.status = "edit cancelled".into();
            }
            KeyCode::Char('s') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                let (target, after) = (target.clone(), area.lines().join("\n"));
                if matches!(target, EditTarget::Dimension(_) | EditTarget::NewDimension) {
                    d.editor = None;
                    self.save_dimension_form(target, &after);
                    return true;
                }
                let EditTarget::Step(step) = target else {
                    d.editor = None;
                    if !after.trim().is_empty() {
                        self.change(Change::Note {
                            text: after.trim().to_string(),
                        });
                    }
                    return true;
                };
                let before = d.reviewed.rationale.as_ref().map(|r| match step {
                    TextStep::QueryAnalysis => r.query_analysis.clone(),
                    TextStep::ItemAnalysis => r.item_analysis.clone(),
                    TextStep::Conclusion => r.conclusion.clone(),
                });
                d.editor = None;
                if before.as_deref() != Some(after.as_str()) {
                    self.change(Change::EditStep {
                        step,
                        before: before.unwrap_or_default(),
                        after,
                    });
                }
            }
            _ => {
                area.input(key);
            }
        }
        true
    }
}
