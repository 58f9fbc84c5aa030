//! The review app's state and `react`: actions in, state changed at once, store work (pages,
//! pairs, every human change written as an annotation) run as tasks whose results come back
//! in order. Drawing only reads this state.

use std::collections::VecDeque;

use anyhow::Result;
use crossterm::event::{Event, KeyEventKind, MouseEventKind};
use futures::FutureExt;
use ratatui_textarea::TextArea;
use tokio::task::JoinHandle;

use crate::store::compare::Comparison;

use super::keys::{Action, Context};
use crate::domain::review::{self, Annotation, Change, Reviewed, TextStep};
use crate::domain::{Dimension, LabelScale, Pair};
use crate::store::{
    Cursor, JudgmentRecord, QueueFilter, QueueRow, QueueScope, QueueSort, Store, StoredFinding,
    StudentScore,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Queue,
    Detail,
    Compare,
}

impl View {
    /// Where the key table's bindings for this view apply.
    pub fn keys(self) -> Context {
        match self {
            View::Queue => Context::Queue,
            View::Detail => Context::Detail,
            View::Compare => Context::Compare,
        }
    }
}

/// The compare view: teacher against the newest student.
pub struct CompareState {
    pub comparison: Comparison,
    pub selected: usize,
}

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

pub struct App {
    pub store: Store,
    pub annotator: String,
    pub scale: LabelScale,
    pub view: View,
    pub show_help: bool,
    pub filter: QueueFilter,
    pub sort: QueueSort,
    pub rows: Vec<QueueRow>,
    pub selected: usize,
    pub page_size: usize,
    pub total: i64,
    pub reviewed_total: i64,
    pub all_pairs: i64,
    /// Pairs reviewed since the teacher was last calibrated (ever, if it never was).
    pub since_calibration: i64,
    pub detail: Option<Detail>,
    pub compare: Option<CompareState>,
    /// The search (`/`), label (`L`) and query (`Q`) in force.
    pub scope: QueueScope,
    /// The text of the query `Q` narrowed to, for the title.
    pub scope_query: Option<String>,
    pub search_input: Option<String>,
    pub status: String,
    pub quit: bool,
    /// Undo annotations of this session that a redo may cancel, newest last.
    redo: Vec<i64>,
    /// Counts being worked out in the background.
    counting: Option<JoinHandle<Result<Counts>>>,
    /// The comparison the compare view will show, while it is worked out.
    comparing: Option<JoinHandle<Result<Option<Comparison>>>>,
    /// Store work started by keys, applied in this order as it finishes.
    tasks: VecDeque<JoinHandle<Result<Apply>>>,
    /// Events that arrived while store work ran, handled once it is done.
    waiting: VecDeque<Event>,
}

/// Characters the search box takes: enough for any title, few enough that the search's SQL
/// (one condition per word) stays short whatever is pasted into it.
pub const SEARCH_MAX_CHARS: usize = 200;

/// The item after `current` in `all`, round to the first.
fn next_of<T: Copy + PartialEq>(all: &[T], current: T) -> T {
    let i = all.iter().position(|x| *x == current).unwrap_or(0);
    all[(i + 1) % all.len()]
}

/// What the title and the status bar count.
struct Counts {
    total: i64,
    reviewed: i64,
    all: i64,
    since_calibration: i64,
}

/// Reviews since the teacher's calibration from which the status bar suggests calibrating
/// again: the fewest pairs `teacher calibrate` fits on by default.
pub const CALIBRATE_AFTER: i64 = 20;

/// What a store task hands back once its IO is done: the change it makes to the app.
type Apply = Box<dyn FnOnce(&mut App) -> Result<()> + Send>;

/// What comes after a page load: told whether a page was there to show.
type AfterLoad = Box<dyn FnOnce(&mut App, bool) -> Result<()> + Send>;

/// What comes after a change is written and the pair reloaded.
type AfterChange = Box<dyn FnOnce(&mut App) -> Result<()> + Send>;

fn nothing_after_load() -> AfterLoad {
    Box::new(|_, _| Ok(()))
}

fn nothing_after_change() -> AfterChange {
    Box::new(|_| Ok(()))
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
    pub async fn new(store: Store, annotator: &str) -> Result<App> {
        let scale = store.scale().await?;
        let mut app = App {
            store,
            annotator: annotator.to_string(),
            scale,
            view: View::Queue,
            show_help: false,
            filter: QueueFilter::All,
            sort: QueueSort::Pair,
            rows: Vec::new(),
            selected: 0,
            page_size: 50,
            total: 0,
            reviewed_total: 0,
            all_pairs: 0,
            since_calibration: 0,
            detail: None,
            compare: None,
            scope: QueueScope::default(),
            scope_query: None,
            search_input: None,
            status: "? for help".into(),
            quit: false,
            redo: Vec::new(),
            counting: None,
            comparing: None,
            tasks: VecDeque::new(),
            waiting: VecDeque::new(),
        };
        app.reload_and_count();
        app.settle().await?;
        Ok(app)
    }

    /// Runs `work` (store IO) as a task; what it hands back is applied, in the order tasks
    /// were started, by `poll_tasks` or `finish_tasks`. Events that arrive meanwhile wait
    /// for it, so every key acts on the state the keys before it left.
    fn spawn(&mut self, work: impl Future<Output = Result<Apply>> + Send + 'static) {
        self.tasks.push_back(tokio::spawn(work));
    }

    /// Whether store work started by a key is still running.
    pub fn busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Applies the finished store tasks, in order, then the events that waited for them;
    /// true when the screen changed.
    pub fn poll_tasks(&mut self) -> Result<bool> {
        let mut changed = false;
        loop {
            if self.tasks.front().is_some_and(|t| t.is_finished()) {
                let task = self.tasks.pop_front().expect("a finished task");
                let apply = task.now_or_never().expect("finished")??;
                apply(self)?;
                changed = true;
            } else if !self.busy()
                && let Some(ev) = self.waiting.pop_front()
            {
                self.handle(ev)?;
                changed = true;
            } else {
                return Ok(changed);
            }
        }
    }

    /// Waits for the store tasks and the events behind them (tests, benchmarks, the first
    /// frame).
    pub async fn finish_tasks(&mut self) -> Result<()> {
        loop {
            if let Some(task) = self.tasks.pop_front() {
                let apply = task.await??;
                apply(self)?;
            } else if let Some(ev) = self.waiting.pop_front() {
                self.handle(ev)?;
            } else {
                return Ok(());
            }
        }
    }

    /// Starts comparing the teacher with the newest student over every pair, in the background
    /// (over a million pairs it takes seconds, and keys must not wait); `poll_compare` opens the
    /// compare view when it is done.
    pub fn open_compare(&mut self) {
        if self.comparing.is_some() {
            return;
        }
        let (store, scale) = (self.store.clone(), self.scale.clone());
        self.status = "comparing teacher and student over every pair…".into();
        self.comparing = Some(tokio::spawn(async move {
            let Some(student) = store.student_model(None).await? else {
                return Ok(None);
            };
            Ok(Some(
                crate::store::compare::compare(&store, &scale, &student, "all", 200).await?,
            ))
        }));
    }

    /// Opens the compare view once its comparison is ready; true when the screen changed.
    pub fn poll_compare(&mut self) -> Result<bool> {
        let Some(done) = take_finished(&mut self.comparing) else {
            return Ok(false);
        };
        self.apply_compare(done?)?;
        Ok(true)
    }

    fn apply_compare(&mut self, done: Result<Option<Comparison>>) -> Result<()> {
        match done? {
            None => {
                self.status = "no student yet: `workbench student train` or `student import`".into()
            }
            Some(comparison) => {
                self.status = "? for help".into();
                self.compare = Some(CompareState {
                    comparison,
                    selected: 0,
                });
                self.view = View::Compare;
            }
        }
        Ok(())
    }

    pub fn selected_row(&self) -> Option<&QueueRow> {
        self.rows.get(self.selected)
    }

    /// Starts counting for the title and the status bar, in the background: a count over a
    /// million pairs costs more than a frame, so keys never wait for it. Started on open,
    /// filter or search change, refresh and after a change; `poll_counts` picks it up.
    fn start_counts(&mut self) {
        if let Some(old) = self.counting.take() {
            old.abort();
        }
        let (store, filter, scope) = (self.store.clone(), self.filter, self.scope.clone());
        self.counting = Some(tokio::spawn(async move {
            let (total, reviewed) = store.queue_counts(filter, &scope).await?;
            let all = if filter == QueueFilter::All && scope == QueueScope::default() {
                total
            } else {
                store
                    .queue_counts(QueueFilter::All, &QueueScope::default())
                    .await?
                    .0
            };
            let since_calibration = store.reviews_since_calibration().await?;
            Ok(Counts {
                total,
                reviewed,
                all,
                since_calibration,
            })
        }));
    }

    /// Takes the counts if they are ready; true when the screen changed.
    pub fn poll_counts(&mut self) -> Result<bool> {
        let Some(done) = take_finished(&mut self.counting) else {
            return Ok(false);
        };
        self.apply_counts(done?)?;
        Ok(true)
    }

    /// Waits for the store tasks, the counts and the comparison in flight (tests, benchmarks
    /// and the first frame).
    pub async fn settle(&mut self) -> Result<()> {
        self.finish_tasks().await?;
        if let Some(handle) = self.counting.take() {
            let counts = handle.await?;
            self.apply_counts(counts)?;
        }
        if let Some(handle) = self.comparing.take() {
            let done = handle.await?;
            self.apply_compare(done)?;
        }
        Ok(())
    }

    /// Whether the compare view's comparison is being worked out.
    pub fn comparing(&self) -> bool {
        self.comparing.is_some()
    }

    /// Whether work shown on screen is still being done in the background (counts, a
    /// comparison), so the loop should look for it often.
    pub fn counting(&self) -> bool {
        self.counting.is_some() || self.comparing.is_some()
    }

    fn apply_counts(&mut self, counts: Result<Counts>) -> Result<()> {
        let c = counts?;
        (self.total, self.reviewed_total, self.all_pairs) = (c.total, c.reviewed, c.all);
        self.since_calibration = c.since_calibration;
        Ok(())
    }

    /// Loads a page after (or before) a position, then `then` (told whether there was a page:
    /// without one the current page stays).
    fn load_from(&mut self, from: Cursor, backwards: bool, then: AfterLoad) {
        let (store, filter, sort, size, scope) = (
            self.store.clone(),
            self.filter,
            self.sort,
            self.page_size,
            self.scope.clone(),
        );
        self.spawn(async move {
            let page = store
                .queue_page(filter, sort, from, backwards, size, &scope)
                .await?;
            Ok(Box::new(move |app: &mut App| {
                let shown = app.show_page(page, from, backwards);
                then(app, shown)
            }) as Apply)
        });
    }

    /// The queue from its first row (the order changed).
    fn reload(&mut self) {
        self.load_from(Cursor::START, false, nothing_after_load());
    }

    /// The queue from its first row, then its counts (a filter, scope or search changed): the
    /// page first, so that a count over a million pairs does not slow the page down.
    fn reload_and_count(&mut self) {
        self.load_from(
            Cursor::START,
            false,
            Box::new(|app, _| {
                app.start_counts();
                Ok(())
            }),
        );
    }

    fn show_page(&mut self, page: Vec<QueueRow>, from: Cursor, backwards: bool) -> bool {
        if page.is_empty() {
            if self.rows.is_empty() || from == Cursor::START {
                self.rows = page;
                self.selected = 0;
            }
            return false;
        }
        self.selected = if backwards { page.len() - 1 } else { 0 };
        self.rows = page;
        true
    }

    /// Puts the queue's cursor on `pair_id`, the pair last viewed: on it when the page holds it,
    /// else (in pair order) on the page that starts there, or the row the filter lets through
    /// after it. Other orders keep the page: a pair's place there is not known without its key.
    fn select_pair(&mut self, pair_id: i64) {
        if let Some(i) = self.rows.iter().position(|r| r.pair_id == pair_id) {
            self.selected = i;
        } else if self.sort == QueueSort::Pair {
            let before = Cursor {
                key: 0.0,
                id: pair_id - 1,
            };
            self.load_from(before, false, nothing_after_load());
        }
    }

    /// Reloads the current page in place: new judgments and reviews show up.
    pub fn refresh(&mut self) {
        self.refresh_then(nothing_after_change());
    }

    fn refresh_then(&mut self, then: AfterChange) {
        let keep = self.selected;
        let from = self
            .rows
            .first()
            .map_or(Cursor::START, |r| Cursor::at(r, true));
        self.load_from(
            from,
            false,
            Box::new(move |app, _| {
                app.start_counts();
                app.selected = keep.min(app.rows.len().saturating_sub(1));
                if let Some(id) = app.detail.as_ref().map(|d| d.pair.id) {
                    app.open(id);
                }
                then(app)
            }),
        );
    }

    /// Opens the detail view on `pair_id` once it is read.
    fn open(&mut self, pair_id: i64) {
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
    fn change(&mut self, change: Change) {
        self.change_then(vec![change], nothing_after_change());
    }

    /// Writes `changes` for the open pair, in order, re-reads it, then `then`.
    fn change_then(&mut self, changes: Vec<Change>, then: AfterChange) {
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

    /// Feeds one terminal event to the app without waiting for the store: store work runs
    /// as a task, and an event that arrives while one runs waits for it (`poll_tasks`).
    pub fn handle(&mut self, ev: Event) -> Result<()> {
        if self.busy() {
            self.waiting.push_back(ev);
            return Ok(());
        }
        match ev {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                // Any key closes help, including one no view binds, and does nothing else.
                if self.show_help {
                    return self.react(Action::Help);
                }
                if self.edit_key(key) {
                    return Ok(());
                }
                if let Some(action) = super::keys::action_for(key, self.view.keys()) {
                    self.react(action)?;
                }
            }
            Event::Mouse(m) => match m.kind {
                MouseEventKind::ScrollDown => self.react(Action::Down)?,
                MouseEventKind::ScrollUp => self.react(Action::Up)?,
                MouseEventKind::Down(_) if self.view == View::Queue && m.row >= 2 => {
                    // rows start below the border and the header
                    self.react(Action::Click(m.row as usize - 2))?;
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    /// `react` to `action` and wait for the store work it started (tests and benchmarks; the
    /// terminal's loop reacts and draws on without waiting).
    pub async fn update(&mut self, action: Action) -> Result<()> {
        self.finish_tasks().await?;
        self.react(action)?;
        self.finish_tasks().await
    }

    /// Changes the state for `action` at once; store work it needs runs as a task whose
    /// result `poll_tasks` applies. Never waits for IO.
    pub fn react(&mut self, action: Action) -> Result<()> {
        // The key that closes help does only that: a label key pressed to leave the help
        // screen must not label the pair behind it.
        if self.show_help {
            self.show_help = false;
            return Ok(());
        }
        if let Some(d) = self.detail.as_mut().filter(|_| self.view == View::Detail)
            && let Some(scroll) = d.item_scroll.as_mut()
        {
            // The item's text is read, not worked on: keys scroll it or close it, nothing else.
            match action {
                Action::Down => *scroll = scroll.saturating_add(1),
                Action::Up => *scroll = scroll.saturating_sub(1),
                Action::PageDown => *scroll = scroll.saturating_add(10),
                Action::PageUp => *scroll = scroll.saturating_sub(10),
                Action::Top => *scroll = 0,
                Action::ItemText | Action::Back => d.item_scroll = None,
                Action::Quit => self.quit = true,
                Action::Help => self.show_help = true,
                _ => self.status = "reading the item: j/k scroll, i or Esc closes".into(),
            }
            return Ok(());
        }
        match (self.view, action) {
            (_, Action::Help) => self.show_help = true,
            (_, Action::Quit) => self.quit = true,
            (View::Detail, Action::Back) => {
                let viewed = self.detail.take().map(|d| d.pair.id);
                if self.compare.is_some() {
                    self.view = View::Compare;
                } else {
                    self.view = View::Queue;
                    self.refresh_then(Box::new(move |app| {
                        if let Some(id) = viewed {
                            app.select_pair(id);
                        }
                        Ok(())
                    }));
                }
            }
            (View::Detail, Action::ItemText) => {
                if let Some(d) = &mut self.detail {
                    d.item_scroll = Some(0);
                }
            }
            (View::Detail, Action::Open) => {
                self.status = "⏎ does not write here: a accepts, A accepts and opens the next unreviewed pair".into();
            }
            (View::Queue, Action::Back) => {
                if self.scope.search.is_some() {
                    self.scope.search = None;
                    self.reload_and_count();
                    self.status = "search cleared".into();
                } else {
                    self.status = "q quits".into();
                }
            }
            (View::Queue, Action::Compare) => self.open_compare(),
            (View::Queue, Action::Search) => {
                self.search_input = Some(String::new());
            }
            (View::Compare, Action::Back) => {
                self.compare = None;
                self.view = View::Queue;
                self.refresh();
            }
            (View::Compare, Action::Down) => {
                if let Some(c) = self.compare.as_mut()
                    && c.selected + 1 < c.comparison.disagreements.len()
                {
                    c.selected += 1;
                }
            }
            (View::Compare, Action::Up) => {
                if let Some(c) = self.compare.as_mut() {
                    c.selected = c.selected.saturating_sub(1);
                }
            }
            (View::Compare, Action::Open) => {
                let id = self
                    .compare
                    .as_ref()
                    .and_then(|c| c.comparison.disagreements.get(c.selected))
                    .map(|d| d.pair_id);
                if let Some(id) = id {
                    self.open(id);
                }
            }
            (View::Queue, Action::Down) => {
                if self.selected + 1 < self.rows.len() {
                    self.selected += 1;
                } else if let Some(last) = self.rows.last().map(|r| Cursor::at(r, false)) {
                    self.load_from(last, false, nothing_after_load());
                }
            }
            (View::Queue, Action::Up) => {
                if self.selected > 0 {
                    self.selected -= 1;
                } else if let Some(first) = self.rows.first().map(|r| Cursor::at(r, false)) {
                    self.load_from(first, true, nothing_after_load());
                }
            }
            (View::Queue, Action::PageDown) => {
                if let Some(last) = self.rows.last().map(|r| Cursor::at(r, false)) {
                    self.load_from(
                        last,
                        false,
                        Box::new(|app, shown| {
                            if !shown {
                                app.selected = app.rows.len().saturating_sub(1);
                            }
                            Ok(())
                        }),
                    );
                }
            }
            (View::Queue, Action::PageUp) => {
                if let Some(first) = self.rows.first().map(|r| Cursor::at(r, false)) {
                    self.load_from(
                        first,
                        true,
                        Box::new(|app, shown| {
                            if shown {
                                // keyset pages going back end at the row before: show a whole page
                                let top = app
                                    .rows
                                    .first()
                                    .map_or(Cursor::START, |r| Cursor::at(r, true));
                                app.load_from(top, false, nothing_after_load());
                            } else {
                                app.selected = 0;
                            }
                            Ok(())
                        }),
                    );
                } else {
                    self.selected = 0;
                }
            }
            (View::Queue, Action::Top) => self.reload(),
            (View::Queue, Action::Bottom) => {
                self.load_from(Cursor::END, true, nothing_after_load());
            }
            (View::Queue, Action::NextSort) => {
                self.sort = next_of(&QueueSort::ALL, self.sort);
                self.reload();
                self.status = format!("sorted by {}", self.sort.name());
            }
            (View::Queue, Action::Open) => {
                if let Some(id) = self.selected_row().map(|r| r.pair_id) {
                    self.open(id);
                }
            }
            (View::Queue, Action::Click(row)) if row < self.rows.len() => {
                if self.selected == row {
                    self.open(self.rows[row].pair_id);
                } else {
                    self.selected = row;
                }
            }
            (View::Queue, Action::NextFilter) => {
                self.filter = next_of(&QueueFilter::ALL, self.filter);
                if self.filter == QueueFilter::TeacherStudent {
                    let store = self.store.clone();
                    self.spawn(async move {
                        let student = store.student_model(None).await?;
                        Ok(Box::new(move |app: &mut App| {
                            if student.is_none() {
                                // nothing to compare with (and no million-pair scan to find that out)
                                app.filter = QueueFilter::All;
                            }
                            app.filter_changed();
                            Ok(())
                        }) as Apply)
                    });
                } else {
                    self.filter_changed();
                }
            }
            (View::Queue, Action::NextLabel) => {
                // none → each label of the scale → none
                let keys: Vec<&str> = self.scale.keys().collect();
                let next = match &self.scope.label {
                    None => keys.first(),
                    Some(l) => keys
                        .iter()
                        .position(|k| k == l)
                        .and_then(|i| keys.get(i + 1)),
                };
                self.scope.label = next.map(|k| k.to_string());
                self.reload_and_count();
                self.status = match &self.scope.label {
                    Some(l) => format!("teacher label {l} only"),
                    None => "every label".into(),
                };
            }
            (View::Queue, Action::ThisQuery) => {
                if self.scope.query_id.is_some() {
                    self.scope.query_id = None;
                    self.scope_query = None;
                } else if let Some((id, text)) =
                    self.selected_row().map(|r| (r.query_id, r.query.clone()))
                {
                    self.scope.query_id = Some(id);
                    self.scope_query = Some(text);
                }
                self.reload_and_count();
                self.status = match &self.scope_query {
                    Some(q) => format!("query \"{q}\" only"),
                    None => "every query".into(),
                };
            }
            (View::Queue, Action::Refresh) => {
                self.refresh();
                self.status = "reloaded".into();
            }
            (_, Action::NextUnreviewed) => self.next_unreviewed(),
            (View::Detail, Action::Down) => {
                if let Some(d) = &mut self.detail {
                    d.cursor = (d.cursor + 1).min(d.steps().len() - 1);
                }
            }
            (View::Detail, Action::Up) => {
                if let Some(d) = &mut self.detail {
                    d.cursor = d.cursor.saturating_sub(1);
                }
            }
            (View::Detail, Action::CycleVerdict) => self.cycle_verdict(),
            (View::Detail, Action::SetLabel(i)) => {
                let Some(label) = self.scale.labels.get(i).map(|l| l.key.clone()) else {
                    self.status = format!(
                        "the {} scale has {} labels",
                        self.scale.name,
                        self.scale.len()
                    );
                    return Ok(());
                };
                let before = self
                    .detail
                    .as_ref()
                    .and_then(|d| d.reviewed.rationale.as_ref().map(|r| r.label.clone()));
                self.change(Change::SetLabel {
                    before,
                    after: label,
                });
            }
            (View::Detail, Action::Accept | Action::AcceptAndNext | Action::Reject)
                if self.detail.as_ref().is_some_and(|d| d.judgment.is_none()) =>
            {
                self.status =
                    "nothing to accept or reject: the teacher has not judged this pair".into();
            }
            (View::Detail, Action::Accept) => self.change(Change::Accept),
            (View::Detail, Action::AcceptAndNext) => {
                self.change_then(
                    vec![Change::Accept],
                    Box::new(|app| {
                        app.next_unreviewed();
                        Ok(())
                    }),
                );
            }
            (View::Detail, Action::Reject) => self.change(Change::Reject),
            (View::Detail, Action::Edit) => self.start_edit(),
            (View::Detail, Action::Note) => self.start_note(),
            (View::Detail, Action::AddDimension) => self.add_dimension(),
            (View::Detail, Action::RemoveDimension) => self.remove_dimension(),
            (View::Detail, Action::Undo) => self.undo(),
            (View::Detail, Action::Redo) => self.redo(),
            _ => {}
        }
        Ok(())
    }

    /// Opens the next unreviewed pair after the open (or selected) one, round to the first.
    fn next_unreviewed(&mut self) {
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

    /// The queue from its top after the filter changed, and the status saying so.
    fn filter_changed(&mut self) {
        self.reload_and_count();
        self.status = format!("filter: {}", self.filter.name());
    }

    /// The dimension under the cursor in the open pair; else a status saying how to `what`.
    fn selected_dimension(&mut self, what: &str) -> Option<Dimension> {
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

    fn cycle_verdict(&mut self) {
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

    fn start_edit(&mut self) {
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

    fn start_note(&mut self) {
        let Some(d) = &mut self.detail else { return };
        d.open_editor(EditTarget::Note, TextArea::default());
        self.status = "note: ^s saves, Esc cancels".into();
    }

    /// Adds the first dimension of the prompt's list the rationale does not have yet, as
    /// "not mentioned" with empty values, and selects it (v cycles its verdict).
    /// `+`: a form for the dimension to add, its name proposed (the first of the usual ones the
    /// rationale lacks); ^s adds it with the values typed, `v` then sets its verdict.
    fn add_dimension(&mut self) {
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
    fn save_dimension_form(&mut self, target: EditTarget, text: &str) {
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
                self.change_then(changes, nothing_after_change());
            }
            _ => {}
        }
    }

    fn remove_dimension(&mut self) {
        let Some(dimension) = self.selected_dimension("remove it") else {
            return;
        };
        self.change(Change::RemoveDimension { dimension });
    }

    /// Keys go to the search box or the editor while one is open. Returns false when none is.
    fn edit_key(&mut self, key: crossterm::event::KeyEvent) -> bool {
        use crossterm::event::{KeyCode, KeyModifiers};
        if let Some(input) = &mut self.search_input {
            match key.code {
                KeyCode::Esc => self.search_input = None,
                KeyCode::Enter => {
                    let text = input.trim().to_string();
                    self.search_input = None;
                    if !text.is_empty() && crate::domain::text::search_words(&text).is_empty() {
                        self.status = format!(
                            "nothing to search for in `{}`: search takes words (letters and digits)",
                            crate::domain::text::inert(&text)
                        );
                        return true;
                    }
                    self.scope.search = (!text.is_empty()).then_some(text);
                    if self.scope.search.is_some() {
                        // Items imported since the last search join the index first.
                        let store = self.store.clone();
                        self.spawn(async move {
                            store.refresh_item_index().await?;
                            Ok(Box::new(|app: &mut App| {
                                app.reload_and_count();
                                Ok(())
                            }) as Apply)
                        });
                    } else {
                        self.reload_and_count();
                    }
                }
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    if input.chars().count() < SEARCH_MAX_CHARS {
                        input.push(c);
                    } else {
                        self.status = format!("search box full ({SEARCH_MAX_CHARS} chars)");
                    }
                }
                _ => {}
            }
            return true;
        }
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

    fn undo(&mut self) {
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

    fn redo(&mut self) {
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
}

/// The result of a background task if it has finished (the slot is then empty), else `None`.
fn take_finished<T>(
    slot: &mut Option<JoinHandle<T>>,
) -> Option<std::result::Result<T, tokio::task::JoinError>> {
    if !slot.as_ref().is_some_and(|h| h.is_finished()) {
        return None;
    }
    slot.take()?.now_or_never()
}
