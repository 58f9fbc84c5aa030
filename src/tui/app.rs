//! The review app's state and `react`: actions in, state changed at once, store work (pages,
//! pairs, every human change written as an annotation) run as tasks whose results come back
//! in order. Drawing only reads this state.

use std::collections::VecDeque;

use anyhow::Result;
use crossterm::event::{Event, KeyEventKind, MouseEventKind};
use tokio::task::JoinHandle;

use crate::store::compare::Comparison;

pub use super::detail::{Detail, EditTarget, StepRef};
use super::keys::{Action, Context};
use super::tasks::{AfterLoad, Apply, Then, nothing_after_load, nothing_then, take_finished};
use crate::domain::LabelScale;
use crate::domain::review::Change;
use crate::store::{Cursor, QueueFilter, QueueRow, QueueScope, QueueSort, Store};

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

/// The queue view: a page of pairs, where it stands, and what narrows it.
pub struct Queue {
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
    /// The search (`/`), label (`L`) and query (`Q`) in force.
    pub scope: QueueScope,
    /// The text of the query `Q` narrowed to, for the title.
    pub scope_query: Option<String>,
    /// The search box while it is open.
    pub search_input: Option<String>,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            filter: QueueFilter::All,
            sort: QueueSort::Pair,
            rows: Vec::new(),
            selected: 0,
            page_size: 50,
            total: 0,
            reviewed_total: 0,
            all_pairs: 0,
            since_calibration: 0,
            scope: QueueScope::default(),
            scope_query: None,
            search_input: None,
        }
    }
}

/// The compare view: teacher against the newest student.
pub struct CompareState {
    pub comparison: Comparison,
    pub selected: usize,
}

pub struct App {
    pub store: Store,
    pub annotator: String,
    pub scale: LabelScale,
    pub view: View,
    pub show_help: bool,
    pub queue: Queue,
    pub detail: Option<Detail>,
    pub compare: Option<CompareState>,
    pub status: String,
    pub quit: bool,
    /// Undo annotations of this session that a redo may cancel, newest last.
    pub(super) redo: Vec<i64>,
    /// Counts being worked out in the background.
    pub(super) counting: Option<JoinHandle<Result<Counts>>>,
    /// The comparison the compare view will show, while it is worked out.
    pub(super) comparing: Option<JoinHandle<Result<Option<Comparison>>>>,
    /// Store work started by keys, applied in this order as it finishes.
    pub(super) tasks: VecDeque<JoinHandle<Result<Apply>>>,
    /// Events that arrived while store work ran, handled once it is done.
    pub(super) waiting: VecDeque<Event>,
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
pub(super) struct Counts {
    total: i64,
    reviewed: i64,
    all: i64,
    since_calibration: i64,
}

/// Reviews since the teacher's calibration from which the status bar suggests calibrating
/// again: the fewest pairs `teacher calibrate` fits on by default.
pub const CALIBRATE_AFTER: i64 = 20;

impl App {
    pub async fn new(store: Store, annotator: &str) -> Result<App> {
        let scale = store.scale().await?;
        let mut app = App {
            store,
            annotator: annotator.to_string(),
            scale,
            view: View::Queue,
            show_help: false,
            queue: Queue::default(),
            detail: None,
            compare: None,
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
        self.queue.rows.get(self.queue.selected)
    }

    /// Starts counting for the title and the status bar, in the background: a count over a
    /// million pairs costs more than a frame, so keys never wait for it. Started on open,
    /// filter or search change, refresh and after a change; `poll_counts` picks it up.
    pub(super) fn start_counts(&mut self) {
        if let Some(old) = self.counting.take() {
            old.abort();
        }
        let (store, filter, scope) = (
            self.store.clone(),
            self.queue.filter,
            self.queue.scope.clone(),
        );
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
        (
            self.queue.total,
            self.queue.reviewed_total,
            self.queue.all_pairs,
        ) = (c.total, c.reviewed, c.all);
        self.queue.since_calibration = c.since_calibration;
        Ok(())
    }

    /// Loads a page after (or before) a position, then `then` (told whether there was a page:
    /// without one the current page stays).
    fn load_from(&mut self, from: Cursor, backwards: bool, then: AfterLoad) {
        let (store, filter, sort, size, scope) = (
            self.store.clone(),
            self.queue.filter,
            self.queue.sort,
            self.queue.page_size,
            self.queue.scope.clone(),
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
            if self.queue.rows.is_empty() || from == Cursor::START {
                self.queue.rows = page;
                self.queue.selected = 0;
            }
            return false;
        }
        self.queue.selected = if backwards { page.len() - 1 } else { 0 };
        self.queue.rows = page;
        true
    }

    /// Puts the queue's cursor on `pair_id`, the pair last viewed: on it when the page holds it,
    /// else (in pair order) on the page that starts there, or the row the filter lets through
    /// after it. Other orders keep the page: a pair's place there is not known without its key.
    fn select_pair(&mut self, pair_id: i64) {
        if let Some(i) = self.queue.rows.iter().position(|r| r.pair_id == pair_id) {
            self.queue.selected = i;
        } else if self.queue.sort == QueueSort::Pair {
            let before = Cursor {
                key: 0.0,
                id: pair_id - 1,
            };
            self.load_from(before, false, nothing_after_load());
        }
    }

    /// Reloads the current page in place: new judgments and reviews show up.
    pub fn refresh(&mut self) {
        self.refresh_then(nothing_then());
    }

    fn refresh_then(&mut self, then: Then) {
        let keep = self.queue.selected;
        let from = self
            .queue
            .rows
            .first()
            .map_or(Cursor::START, |r| Cursor::at(r, true));
        self.load_from(
            from,
            false,
            Box::new(move |app, _| {
                app.start_counts();
                app.queue.selected = keep.min(app.queue.rows.len().saturating_sub(1));
                then(app)?;
                if let Some(id) = app.detail.as_ref().map(|d| d.pair.id) {
                    app.open(id);
                }
                Ok(())
            }),
        );
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
                if self.compare.is_some() {
                    self.detail = None;
                    self.view = View::Compare;
                } else {
                    // The pair stays on screen until the page is reloaded, so the queue never
                    // shows it as it was before this visit.
                    let viewed = self.detail.as_ref().map(|d| d.pair.id);
                    self.refresh_then(Box::new(move |app| {
                        app.detail = None;
                        app.view = View::Queue;
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
                if self.queue.scope.search.is_some() {
                    self.queue.scope.search = None;
                    self.reload_and_count();
                    self.status = "search cleared".into();
                } else {
                    self.status = "q quits".into();
                }
            }
            (View::Queue, Action::Compare) => self.open_compare(),
            (View::Queue, Action::Search) => {
                self.queue.search_input = Some(String::new());
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
                if self.queue.selected + 1 < self.queue.rows.len() {
                    self.queue.selected += 1;
                } else if let Some(last) = self.queue.rows.last().map(|r| Cursor::at(r, false)) {
                    self.load_from(last, false, nothing_after_load());
                }
            }
            (View::Queue, Action::Up) => {
                if self.queue.selected > 0 {
                    self.queue.selected -= 1;
                } else if let Some(first) = self.queue.rows.first().map(|r| Cursor::at(r, false)) {
                    self.load_from(first, true, nothing_after_load());
                }
            }
            (View::Queue, Action::PageDown) => {
                if let Some(last) = self.queue.rows.last().map(|r| Cursor::at(r, false)) {
                    self.load_from(
                        last,
                        false,
                        Box::new(|app, shown| {
                            if !shown {
                                app.queue.selected = app.queue.rows.len().saturating_sub(1);
                            }
                            Ok(())
                        }),
                    );
                }
            }
            (View::Queue, Action::PageUp) => {
                if let Some(first) = self.queue.rows.first().map(|r| Cursor::at(r, false)) {
                    self.load_from(
                        first,
                        true,
                        Box::new(|app, shown| {
                            if shown {
                                // keyset pages going back end at the row before: show a whole page
                                let top = app
                                    .queue
                                    .rows
                                    .first()
                                    .map_or(Cursor::START, |r| Cursor::at(r, true));
                                app.load_from(top, false, nothing_after_load());
                            } else {
                                app.queue.selected = 0;
                            }
                            Ok(())
                        }),
                    );
                } else {
                    self.queue.selected = 0;
                }
            }
            (View::Queue, Action::Top) => self.reload(),
            (View::Queue, Action::Bottom) => {
                self.load_from(Cursor::END, true, nothing_after_load());
            }
            (View::Queue, Action::NextSort) => {
                self.queue.sort = next_of(&QueueSort::ALL, self.queue.sort);
                self.reload();
                self.status = format!("sorted by {}", self.queue.sort.name());
            }
            (View::Queue, Action::Open) => {
                if let Some(id) = self.selected_row().map(|r| r.pair_id) {
                    self.open(id);
                }
            }
            (View::Queue, Action::Click(row)) if row < self.queue.rows.len() => {
                if self.queue.selected == row {
                    self.open(self.queue.rows[row].pair_id);
                } else {
                    self.queue.selected = row;
                }
            }
            (View::Queue, Action::NextFilter) => {
                self.queue.filter = next_of(&QueueFilter::ALL, self.queue.filter);
                if self.queue.filter == QueueFilter::TeacherStudent {
                    let store = self.store.clone();
                    self.spawn(async move {
                        let student = store.student_model(None).await?;
                        Ok(Box::new(move |app: &mut App| {
                            if student.is_none() {
                                // nothing to compare with (and no million-pair scan to find that out)
                                app.queue.filter = QueueFilter::All;
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
                let next = match &self.queue.scope.label {
                    None => keys.first(),
                    Some(l) => keys
                        .iter()
                        .position(|k| k == l)
                        .and_then(|i| keys.get(i + 1)),
                };
                self.queue.scope.label = next.map(|k| k.to_string());
                self.reload_and_count();
                self.status = match &self.queue.scope.label {
                    Some(l) => format!("teacher label {l} only"),
                    None => "every label".into(),
                };
            }
            (View::Queue, Action::ThisQuery) => {
                if self.queue.scope.query_id.is_some() {
                    self.queue.scope.query_id = None;
                    self.queue.scope_query = None;
                } else if let Some((id, text)) =
                    self.selected_row().map(|r| (r.query_id, r.query.clone()))
                {
                    self.queue.scope.query_id = Some(id);
                    self.queue.scope_query = Some(text);
                }
                self.reload_and_count();
                self.status = match &self.queue.scope_query {
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

    /// The queue from its top after the filter changed, and the status saying so.
    fn filter_changed(&mut self) {
        self.reload_and_count();
        self.status = format!("filter: {}", self.queue.filter.name());
    }

    /// Keys go to the search box or the editor while one is open. Returns false when none is.
    fn edit_key(&mut self, key: crossterm::event::KeyEvent) -> bool {
        use crossterm::event::{KeyCode, KeyModifiers};
        if let Some(input) = &mut self.queue.search_input {
            match key.code {
                KeyCode::Esc => self.queue.search_input = None,
                KeyCode::Enter => {
                    let text = input.trim().to_string();
                    self.queue.search_input = None;
                    if !text.is_empty() && crate::domain::text::search_words(&text).is_empty() {
                        self.status = format!(
                            "nothing to search for in `{}`: search takes words (letters and digits)",
                            crate::domain::text::inert(&text)
                        );
                        return true;
                    }
                    self.queue.scope.search = (!text.is_empty()).then_some(text);
                    if self.queue.scope.search.is_some() {
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
        self.editor_key(key)
    }
}
