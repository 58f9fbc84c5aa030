//! The review app: driven with actions and keys over a real SQLite file and rendered through
//! ratatui's TestBackend; then the real binary in tmux, checked through the annotation rows.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use workbench::domain::{DistSource, Judgment, Mode, ScoreDist};
use workbench::store::{NewJudgment, QueueFilter, QueueSort, Store, StudentScore};
use workbench::tui::{self, Action, App, View};

fn screen(app: &App) -> String {
    screen_of(app, 140, 44)
}

/// The open pair's rationale as reviewed so far.
fn rationale_of(app: &App) -> &workbench::domain::Rationale {
    let d = app.detail.as_ref().expect("a pair is open");
    d.reviewed.rationale.as_ref().expect("it has a rationale")
}

fn conclusion_of(app: &App) -> String {
    rationale_of(app).conclusion.clone()
}

fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// A key without modifiers, by code (⏎, Esc, arrows as well as characters).
fn press(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn annotation_actions(db: &Path) -> Vec<(String, Option<String>, Option<i64>)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
            .await
            .unwrap();
        sqlx::query(
            "SELECT action, field, undoes FROM annotations WHERE annotator = 'ana' ORDER BY id",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    })
}

#[test]
fn queue_pages_by_keyset_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        app.queue.page_size = 30;
        app.update(Action::Top).await.unwrap();
        assert_eq!(app.queue.rows.len(), 30);
        let s = screen(&app);
        assert!(s.contains("queue · all · 200 pairs"), "{s}");
        assert!(s.contains("newborn hospital essentials"));
        assert!(s.contains("ana · pair 1 ·"), "{s}");
        assert!(s.contains("reviewed 0/200"));
        app.update(Action::PageDown).await.unwrap();
        assert_eq!(app.queue.rows.first().unwrap().pair_id, 31);
        app.update(Action::Up).await.unwrap();
        assert_eq!(
            app.selected_row().unwrap().pair_id,
            30,
            "Up from a page's top row pages back by keyset"
        );
        app.update(Action::Bottom).await.unwrap();
        assert_eq!(app.selected_row().unwrap().pair_id, 200);
        assert!(screen(&app).contains("wireless thermostat without"));
        app.update(Action::Down).await.unwrap();
        assert_eq!(
            app.selected_row().unwrap().pair_id,
            200,
            "Down at the end stays"
        );
        app.update(Action::Top).await.unwrap();
        assert_eq!(app.selected_row().unwrap().pair_id, 1);
        // Filters read what the store keeps on the pair when a judgment is saved: pair 1 judged
        // Exact at p = 0.4 (gold is Irrelevant), pair 2's output did not parse.
        let judgment =
            |pair_id: i64, label: Option<&str>, probs: Vec<f64>, error: Option<&str>| NewJudgment {
                pair_id,
                run_id: None,
                model: "hand-written".into(),
                prompt_hash: "test".into(),
                mode: Mode::Cot,
                judgment: Judgment {
                    label: label.map(str::to_string),
                    distribution: ScoreDist { probs },
                    dist_source: DistSource::Logprobs,
                    raw_output: "{".into(),
                    parse_error: error.map(str::to_string),
                    ..Default::default()
                },
            };
        app.store
            .save_judgment(&judgment(1, Some("E"), vec![0.4, 0.3, 0.2, 0.1], None))
            .await
            .unwrap();
        app.store
            .save_judgment(&judgment(2, None, vec![0.25; 4], Some("no JSON object")))
            .await
            .unwrap();
        // A student scored pair 1 Irrelevant (the teacher said Exact) and pair 4 (unjudged).
        let student = app
            .store
            .register_student("mini", "imported", None, &serde_json::json!({}))
            .await
            .unwrap();
        let score = |pair_id, score| StudentScore {
            pair_id,
            score,
            distribution: None,
        };
        app.store
            .save_student_scores(student, &[score(1, 0.0), score(4, 0.9)])
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..QueueFilter::ALL.len() {
            app.update(Action::NextFilter).await.unwrap();
            // counts come from the background; keys never wait for them
            app.settle().await.unwrap();
            assert!(!screen(&app).contains("counting…"));
            seen.push((
                app.queue.filter,
                app.queue.total,
                app.queue
                    .rows
                    .iter()
                    .map(|r| r.pair_id)
                    .take(3)
                    .collect::<Vec<_>>(),
            ));
        }
        assert_eq!(
            seen,
            vec![
                (QueueFilter::Unreviewed, 200, vec![1, 2, 3]),
                (QueueFilter::ToReview, 2, vec![1, 2]),
                (QueueFilter::Disagree, 1, vec![1]),
                (QueueFilter::LowConfidence, 2, vec![1, 2]),
                (QueueFilter::ParseError, 1, vec![2]),
                (QueueFilter::Flagged, 0, vec![]),
                (QueueFilter::TeacherStudent, 1, vec![1]),
                (QueueFilter::All, 200, vec![1, 2, 3]),
            ]
        );
        let s = screen(&app);
        assert!(
            s.contains(" student ") && s.contains("I 0.00") && s.contains("E 0.90"),
            "{s}"
        );

        // L narrows to one teacher label at a time, then back to all; Q to the row's query.
        app.update(Action::NextLabel).await.unwrap();
        app.settle().await.unwrap();
        assert_eq!((app.queue.total, app.queue.rows[0].pair_id), (1, 1));
        assert!(screen(&app).contains("queue · all · teacher E · 1 pair "));
        for _ in 0..4 {
            app.update(Action::NextLabel).await.unwrap();
        }
        app.settle().await.unwrap();
        assert_eq!(
            (app.queue.scope.label.as_deref(), app.queue.total),
            (None, 200)
        );
        app.update(Action::ThisQuery).await.unwrap();
        app.settle().await.unwrap();
        let query = app.queue.rows[0].query.clone();
        assert!(
            app.queue.total > 1 && app.queue.total < 200,
            "{}",
            app.queue.total
        );
        assert_eq!(app.queue.rows.len() as i64, app.queue.total);
        assert!(app.queue.rows.iter().all(|r| r.query == query));
        assert!(screen(&app).contains(&format!("query \"{query}\"")));
        app.update(Action::ThisQuery).await.unwrap();
        app.settle().await.unwrap();
        assert_eq!(app.queue.total, 200);
        while app.queue.filter != QueueFilter::ParseError {
            app.update(Action::NextFilter).await.unwrap();
        }
        assert!(screen(&app).contains("queue · parse error · counting… "));
        app.settle().await.unwrap();
        let s = screen(&app);
        assert!(
            s.contains("queue · parse error · 1 pair ") && s.contains("parse error"),
            "{s}"
        );
        app.update(Action::Help).await.unwrap();
        let help = screen(&app);
        // The queue's help lists the queue's keys (a pair's keys are on a pair's help).
        assert!(
            help.contains("next page") && !help.contains("cycle the verdict"),
            "{help}"
        );
        app.update(Action::Down).await.unwrap();
        assert!(!app.show_help);

        // `/` searches item titles (FTS5, word prefixes) and query text, within the filter.
        while app.queue.filter != QueueFilter::All {
            app.update(Action::NextFilter).await.unwrap();
        }
        let type_in = |text: &str| {
            let mut events = vec![key('/')];
            events.extend(text.chars().map(key));
            events.push(Event::Key(KeyEvent::new(
                KeyCode::Enter,
                KeyModifiers::NONE,
            )));
            events
        };
        for e in type_in("fleece jack") {
            tui::handle_event(&mut app, e).await.unwrap();
        }
        app.settle().await.unwrap();
        assert!(app.queue.total >= 1);
        assert!(
            app.queue.rows.iter().all(|r| {
                let t = r.title.to_lowercase();
                t.contains("fleece") && t.contains("jack")
            }),
            "{:?}",
            app.queue.rows.iter().map(|r| &r.title).collect::<Vec<_>>()
        );
        assert!(app.queue.rows.iter().any(|r| r.pair_id == 1));
        let s = screen(&app);
        assert!(s.contains("\"fleece jack\""), "{s}");
        for e in type_in("wireless thermostat") {
            tui::handle_event(&mut app, e).await.unwrap();
        }
        app.settle().await.unwrap();
        assert_eq!(
            app.queue.total, 10,
            "the ten pairs of the query 'wireless thermostat without c wire'"
        );
        // Search syntax is text: a `*` or quotes change nothing, `%` and `_` are no wildcards,
        // FTS5 operators are words, and a search without a word says so and keeps the last one.
        for text in [
            "wireless* thermostat",
            "\"wireless\" \"thermostat",
            "thermostat_wireless",
            "wireless -thermostat \"",
        ] {
            for e in type_in(text) {
                tui::handle_event(&mut app, e).await.unwrap();
            }
            app.settle().await.unwrap();
            assert_eq!(app.queue.total, 10, "{text}");
        }
        for text in ["wireless OR NEAR(", "wireless AND thermostat NOT"] {
            for e in type_in(text) {
                tui::handle_event(&mut app, e).await.unwrap();
            }
            app.settle().await.unwrap();
            assert!(!app.status.contains("error"), "{text}: {}", app.status);
            assert!(app.queue.total < 10, "{text}: every word must match");
        }
        for text in ["%", "_", "\"", "*"] {
            for e in type_in(text) {
                tui::handle_event(&mut app, e).await.unwrap();
            }
            app.settle().await.unwrap();
            assert!(
                app.status.contains("nothing to search for"),
                "{text}: {}",
                app.status
            );
            assert!(app.queue.total < 200, "{text} did not match every pair");
        }
        // An empty search clears it.
        tui::handle_event(&mut app, key('/')).await.unwrap();
        tui::handle_event(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        )
        .await
        .unwrap();
        app.settle().await.unwrap();
        assert_eq!(app.queue.total, 200);

        // s cycles the order; keyset pages walk every pair once, in key order, in each.
        app.store
            .save_judgment(&judgment(3, Some("I"), vec![0.05, 0.05, 0.1, 0.8], None))
            .await
            .unwrap();
        for sort in [
            QueueSort::Confidence,
            QueueSort::Disagreement,
            QueueSort::Query,
        ] {
            app.update(Action::NextSort).await.unwrap();
            assert_eq!(app.queue.sort, sort);
            assert!(screen(&app).contains(&format!("by {}", sort.name())));
            let mut seen: Vec<(f64, i64)> = Vec::new();
            loop {
                seen.extend(app.queue.rows.iter().map(|r| (r.sort_key, r.pair_id)));
                let last = app.queue.rows.last().unwrap().pair_id;
                app.update(Action::PageDown).await.unwrap();
                if app.queue.rows.last().unwrap().pair_id == last {
                    break;
                }
            }
            assert_eq!(seen.len(), 200, "{sort:?}");
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "{sort:?}: {seen:?}");
            match sort {
                // pair 2 (parse error, 0.25) before pair 1 (0.4) before pair 3 (0.8)
                QueueSort::Confidence => {
                    assert_eq!(
                        seen.iter().take(3).map(|x| x.1).collect::<Vec<_>>(),
                        [2, 1, 3]
                    )
                }
                // pair 1: teacher E, gold I
                QueueSort::Disagreement => {
                    assert!(seen[0].0 < 0.0 && seen.iter().take(2).any(|x| x.1 == 1))
                }
                _ => {}
            }
            // Back up by keyset too.
            app.update(Action::PageUp).await.unwrap();
            assert!(
                app.queue
                    .rows
                    .windows(2)
                    .all(|w| (w[0].sort_key, w[0].pair_id) < (w[1].sort_key, w[1].pair_id))
            );
        }
        app.update(Action::NextSort).await.unwrap();
        assert_eq!(app.queue.sort, QueueSort::Pair);

        app.update(Action::Quit).await.unwrap();
        assert!(app.quit);
    });
}

/// One real teacher judgment of pair 1 (73232/B07N6VYKD3), then the detail view: verdicts,
/// label, an in-place edit, undo and redo — each checked on screen and in the annotation rows.
#[test]
fn detail_view_corrects_a_real_teacher_judgment_with_undo_and_redo() {
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    ok(
        dir.path(),
        &db,
        &[
            "teach",
            "--only",
            "73232/B07N6VYKD3",
            "--model",
            model.to_str().unwrap(),
        ],
    );
    // The demo's first pair: with the default decoding its rationale has no degenerate step
    // (without the DRY penalty the query analysis loops on "Men's, Men's, …").
    let audit: serde_json::Value = serde_json::from_str(&ok(
        dir.path(),
        &db,
        &["audit", "--rules", "degenerate-step", "--json"],
    ))
    .unwrap();
    assert_eq!(audit["by_rule"]["degenerate-step"], 0, "{audit}");
    let tmux_db = dir.path().join("tmux.db");
    std::fs::copy(&db, &tmux_db).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        // A student's distribution for the same pair, to show beside the teacher's.
        let student = store
            .register_student("mini", "imported", None, &serde_json::json!({}))
            .await
            .unwrap();
        store
            .save_student_scores(
                student,
                &[StudentScore {
                    pair_id: 1,
                    score: 0.3,
                    distribution: Some(vec![0.1, 0.6, 0.2, 0.1]),
                }],
            )
            .await
            .unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        tui::handle_event(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        )
        .await
        .unwrap();
        assert_eq!(app.view, View::Detail);
        let s = screen(&app);
        assert!(s.contains(" student mini ") && s.contains("60.0%"), "{s}");
        assert!(
            s.contains("0.30 → S"),
            "the distribution's top label, not the score's: {s}"
        );
        let s = screen(&app);
        assert!(s.contains("teacher SmolLM2-135M-Instruct.Q4_1"), "{s}");
        assert!(
            s.contains("query analysis") && s.contains("conclusion") && s.contains("Irrelevant"),
            "{s}"
        );
        assert!(s.contains("teacher distribution (logprobs)"));
        let d = app.detail.as_ref().unwrap();
        let rat = d
            .reviewed
            .rationale
            .clone()
            .expect("the constrained output parses");
        let dim = rat.dimensions[0].clone();

        // j j: onto the first dimension; v cycles its verdict.
        for e in [key('j'), key('j'), key('v')] {
            tui::handle_event(&mut app, e).await.unwrap();
        }
        let now = &rationale_of(&app).dimensions[0];
        assert_eq!(now.verdict, dim.verdict.cycle());
        assert!(screen(&app).contains(&format!("✎ {}", dim.verdict.cycle().as_str())));
        // 2 sets Substitute.
        tui::handle_event(&mut app, key('2')).await.unwrap();
        assert_eq!(
            app.detail.as_ref().unwrap().reviewed.human_label.as_deref(),
            Some("S")
        );
        assert!(screen(&app).contains("Substitute ✎ human"));
        // Edit the conclusion in place.
        for e in [key('j'), key('j'), key('j'), key('j'), key('j')] {
            tui::handle_event(&mut app, e).await.unwrap();
        }
        tui::handle_event(&mut app, key('e')).await.unwrap();
        assert!(screen(&app).contains("edit conclusion"));
        tui::handle_event(&mut app, ctrl('a')).await.unwrap(); // to line start (emacs keys)
        for c in "Not for a newborn. ".chars() {
            tui::handle_event(&mut app, key(c)).await.unwrap();
        }
        tui::handle_event(&mut app, ctrl('s')).await.unwrap();
        let conclusion = conclusion_of(&app);
        assert!(
            conclusion.starts_with("Not for a newborn. "),
            "{conclusion}"
        );
        // Undo takes the edit back, redo restores it.
        tui::handle_event(&mut app, key('u')).await.unwrap();
        let after_undo = conclusion_of(&app);
        assert_eq!(after_undo, rat.conclusion);
        tui::handle_event(&mut app, ctrl('r')).await.unwrap();
        let after_redo = conclusion_of(&app);
        assert_eq!(after_redo, conclusion);
        // + opens a form proposing the first dimension the rationale lacks; ^s adds it and
        // selects it; - removes it again.
        let dims = |app: &App| {
            rationale_of(app)
                .dimensions
                .iter()
                .map(|d| d.name.clone())
                .collect::<Vec<_>>()
        };
        let before = dims(&app);
        tui::handle_event(&mut app, key('+')).await.unwrap();
        assert_eq!(dims(&app), before, "nothing is added before ^s");
        tui::handle_event(&mut app, ctrl('s')).await.unwrap();
        let added = dims(&app);
        assert_eq!(added.len(), before.len() + 1, "{added:?}");
        let new = added.iter().find(|n| !before.contains(n)).unwrap().clone();
        assert!(screen(&app).contains(&new), "{}", screen(&app));
        tui::handle_event(&mut app, key('-')).await.unwrap();
        assert_eq!(dims(&app), before);
        // N writes a note on the pair.
        tui::handle_event(&mut app, key('N')).await.unwrap();
        assert!(screen(&app).contains("edit note"));
        for c in "check the size chart".chars() {
            tui::handle_event(&mut app, key(c)).await.unwrap();
        }
        tui::handle_event(&mut app, ctrl('s')).await.unwrap();
        assert_eq!(
            app.detail.as_ref().unwrap().reviewed.notes,
            ["check the size chart"]
        );
        assert!(screen(&app).contains("note: check the size chart"));
        app.settle().await.unwrap();
        assert!(screen(&app).contains("reviewed 1/200"));
        // Back in the queue the pair is marked reviewed and leaves the unreviewed filter.
        app.update(Action::Back).await.unwrap();
        assert!(app.queue.rows[0].reviewed);
        assert!(
            app.queue.rows[0].human.is_some(),
            "the human column says what was decided"
        );
        app.update(Action::NextFilter).await.unwrap();
        assert_eq!(app.queue.filter, QueueFilter::Unreviewed);
        assert_eq!(app.queue.rows[0].pair_id, 2);
    });
    let actions = annotation_actions(&db);
    let names: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "set_verdict",
            "set_label",
            "edit_step",
            "undo",
            "undo",
            "add_dimension",
            "remove_dimension",
            "note"
        ]
    );
    assert_eq!(actions[2].1.as_deref(), Some("conclusion"));

    tmux_session(&tmux_db);
}

/// The real binary in tmux: open, filter, open a pair, change a verdict, set a label, undo the
/// label, quit; then the annotation rows say exactly that.
fn tmux_session(db: &Path) {
    let name = format!("wb-test-{}", std::process::id());
    review_in_tmux(db, "ana", &name, 130, 40);
    let wait_for = |text: &str| {
        for _ in 0..50 {
            let pane = tmux(&["capture-pane", "-t", &name, "-p"]);
            if pane.contains(text) {
                return pane;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{text:?} never appeared:\n{}",
            tmux(&["capture-pane", "-t", &name, "-p"])
        );
    };
    wait_for("queue · all · 200 pairs");
    tmux(&["send-keys", "-t", &name, "f"]);
    wait_for("queue · unreviewed · 200 pairs");
    tmux(&["send-keys", "-t", &name, "Enter"]);
    wait_for("teacher SmolLM2-135M-Instruct.Q4_1");
    tmux(&["send-keys", "-t", &name, "j", "j", "v"]);
    wait_for("saved: set verdict");
    tmux(&["send-keys", "-t", &name, "4"]);
    wait_for("saved: set label");
    tmux(&["send-keys", "-t", &name, "u"]);
    wait_for("undone #");
    tmux(&["send-keys", "-t", &name, "q"]);
    wait_for("queue · unreviewed");
    let before_quit = tmux(&["capture-pane", "-t", &name, "-p"]);
    tmux(&["send-keys", "-t", &name, "q"]);
    // The session ends when the app does: `q` in the queue quits.
    let exited = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !tmux(&["list-sessions"]).contains(&name)
    });
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &name])
        .output();
    assert!(exited, "the app did not exit on q:\n{before_quit}");
    let actions = annotation_actions(db);
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert_eq!(
        (
            actions[0].0.as_str(),
            actions[1].0.as_str(),
            actions[2].0.as_str()
        ),
        ("set_verdict", "set_label", "undo")
    );
    assert!(actions[0].1.as_deref().unwrap().starts_with("dimension:"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let undone = rt.block_on(async {
        let store = Store::open(db).await.unwrap();
        let a = store.annotations_of(1).await.unwrap();
        store.close().await;
        a
    });
    assert_eq!(
        actions[2].2,
        Some(undone[1].id),
        "the undo points at the label change"
    );
}

/// `workbench teach` writes to the database while the review app reads and writes it: every
/// refresh and every change goes through (no "database is locked"), and the judgments written
/// meanwhile appear on refresh without a restart.
#[test]
fn review_keeps_working_while_teach_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let mut teach = spawn_teach_score(dir.path(), &db, 12);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (changes, judged) = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        app.queue.page_size = 40;
        app.update(Action::Bottom).await.unwrap();
        let mut changes = 0;
        let finished = loop {
            let done = teach.try_wait().unwrap();
            // Refresh the queue and label the last pair, back and forth, while teach writes.
            app.update(Action::Refresh).await.unwrap();
            app.update(Action::Open).await.unwrap();
            app.update(Action::SetLabel(changes % 4)).await.unwrap();
            app.update(Action::Back).await.unwrap();
            changes += 1;
            if let Some(status) = done {
                break status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        assert!(finished.success(), "teach failed");
        app.update(Action::Top).await.unwrap();
        app.update(Action::Refresh).await.unwrap();
        app.settle().await.unwrap();
        let judged = app
            .queue
            .rows
            .iter()
            .filter(|r| r.teacher_label.is_some())
            .count();
        assert!(screen(&app).contains("reviewed 1/200"));
        (changes, judged)
    });
    let mut err = String::new();
    std::io::Read::read_to_string(&mut teach.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("locked"), "{err}");
    assert!(changes > 3, "only {changes} rounds ran while teach worked");
    assert_eq!(judged, 12, "the 12 judgments show up on refresh");
    let labels: Vec<(String, Option<String>, Option<i64>)> = annotation_actions(&db);
    assert_eq!(labels.len(), changes);
}

/// Keys write only when they say they will: the key that closes help does nothing else, Esc in
/// the queue clears a search and never quits, and a pair the teacher has not judged cannot be
/// accepted or rejected. Through the real key handler, on a real database.
#[test]
fn keys_write_only_when_they_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        let app_ref = &mut app;
        for c in [KeyCode::Enter, KeyCode::Char('?'), KeyCode::Char('4')] {
            tui::handle_event(app_ref, press(c)).await.unwrap();
        }
        assert_eq!(app_ref.view, View::Detail);
        assert!(!app_ref.show_help, "any key closes help");
        for c in [KeyCode::Char('a'), KeyCode::Char('A'), KeyCode::Char('x')] {
            tui::handle_event(app_ref, press(c)).await.unwrap();
            assert!(
                app_ref.status.contains("has not judged this pair"),
                "{}",
                app_ref.status
            );
        }
        // ⏎ in an open pair never writes: ⏎ ⏎ from the queue only opens.
        tui::handle_event(app_ref, press(KeyCode::Enter))
            .await
            .unwrap();
        assert!(
            app_ref.status.contains("does not write"),
            "{}",
            app_ref.status
        );
        assert_eq!(app_ref.view, View::Detail);
        // Esc back to the queue, a search, Esc clears it, Esc again only says how to quit.
        tui::handle_event(app_ref, press(KeyCode::Esc))
            .await
            .unwrap();
        assert_eq!(app_ref.view, View::Queue);
        tui::handle_event(app_ref, press(KeyCode::Char('/')))
            .await
            .unwrap();
        for c in "fleece".chars() {
            tui::handle_event(app_ref, press(KeyCode::Char(c)))
                .await
                .unwrap();
        }
        tui::handle_event(app_ref, press(KeyCode::Enter))
            .await
            .unwrap();
        app_ref.settle().await.unwrap();
        let found = app_ref.queue.rows.len();
        assert!(found > 0 && found < 50, "{found}");
        tui::handle_event(app_ref, press(KeyCode::Esc))
            .await
            .unwrap();
        app_ref.settle().await.unwrap();
        assert!(app_ref.queue.rows.len() > found, "the search is cleared");
        tui::handle_event(app_ref, press(KeyCode::Esc))
            .await
            .unwrap();
        assert!(!app_ref.quit && app_ref.status.contains("q quits"));
        tui::handle_event(app_ref, press(KeyCode::Char('q')))
            .await
            .unwrap();
        assert!(app_ref.quit);
    });
    assert!(annotation_actions(&db).is_empty(), "nothing was written");
}

/// A rationale of twelve dimensions for pair `pair_id`, as the teacher would write it.
fn long_judgment(pair_id: i64) -> NewJudgment {
    let dims: Vec<serde_json::Value> = (1..=12)
        .map(|i| {
            serde_json::json!({"name": format!("dim{i:02}"), "query_value": format!("q{i}"),
                "item_value": format!("i{i}"), "verdict": "match"})
        })
        .collect();
    let raw = serde_json::json!({
        "query_analysis": "the shopper wants a newborn hospital kit",
        "item_analysis": "a women's fleece jacket",
        "dimensions": dims,
        "conclusion": "the last step of a long rationale",
        "label": "Irrelevant",
    })
    .to_string();
    let rationale =
        workbench::teacher::parse::parse_rationale(&raw, &workbench::domain::LabelScale::esci())
            .unwrap();
    NewJudgment {
        pair_id,
        run_id: None,
        model: "hand-written".into(),
        prompt_hash: "test".into(),
        mode: Mode::Cot,
        judgment: Judgment {
            label: Some("I".into()),
            distribution: ScoreDist {
                probs: vec![0.1, 0.1, 0.1, 0.7],
            },
            dist_source: DistSource::Logprobs,
            rationale: Some(rationale),
            raw_output: raw,
            ..Default::default()
        },
    }
}

/// The real binary in tmux at 80×24, an annotator's day in small: `?` then a label key writes
/// nothing; Esc in the queue does not quit; the selected step stays on screen through a long
/// rationale, the last one showing the label below it; `i` shows every bullet point of the item;
/// undoing a pair's only change makes it unreviewed in the queue, its filter and `stats`; back
/// from the fifth pair viewed, the queue's cursor is on it.
#[test]
fn small_terminal_keeps_the_work_on_screen() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        for pair in 1..=6 {
            store.save_judgment(&long_judgment(pair)).await.unwrap();
        }
        store.close().await;
    });
    let name = format!("wb-small-{}", std::process::id());
    review_in_tmux(&db, "ana", &name, 80, 24);
    let pane = || tmux(&["capture-pane", "-t", &name, "-p"]);
    let keys = |k: &[&str]| {
        let mut args = vec!["send-keys", "-t", name.as_str()];
        args.extend_from_slice(k);
        tmux(&args);
    };
    let wait_for = |text: &str| wait_for_pane(&name, text, 5);
    let settle = || std::thread::sleep(Duration::from_millis(300));
    wait_for("queue · all · 200 pairs");

    // ? then 4: help closes, nothing is written. Esc in the queue: the app is still there.
    keys(&["?"]);
    wait_for("this help");
    keys(&["4"]);
    settle();
    keys(&["Escape"]);
    wait_for("q quits");
    assert!(annotation_actions(&db).is_empty());

    // Through a rationale of 16 steps, the selected one is always on screen.
    keys(&["Enter"]);
    wait_for("query analysis");
    for step in 1..16 {
        keys(&["j"]);
        settle();
        let p = pane();
        let selected: Vec<&str> = p.lines().filter(|l| l.contains('▶')).collect();
        assert_eq!(selected.len(), 1, "step {step}:\n{p}");
        if (2..14).contains(&step) {
            assert!(selected[0].contains(&format!("dim{:02}", step - 1)), "{p}");
        }
    }
    let p = pane();
    assert!(p.contains("the last step of a long rationale"), "{p}");
    assert!(
        p.contains(&format!("{:<16}Irrelevant", "label")),
        "the label under the last step:\n{p}"
    );

    // The item's whole text: every bullet point of B07N6VYKD3, scrolling if it must.
    keys(&["i"]);
    let mut seen = wait_for("bullet points");
    for _ in 0..10 {
        keys(&["j"]);
        settle();
        seen.push_str(&pane());
    }
    for bullet in [
        "Close-but-comfortable fit with easy movement",
        "Soft, warm and fuzzy mid-weight polar fleece fabric",
        "Full-length zippered closure at front",
        "Front zippered pockets",
        "An Amazon brand",
    ] {
        assert!(seen.contains(bullet), "{bullet:?} not shown:\n{seen}");
    }
    keys(&["Escape"]);
    wait_for("rationale");

    // Accept: the queue's human column says so. Then undo: unreviewed again everywhere.
    keys(&["a"]);
    wait_for("saved: accept");
    keys(&["Escape"]);
    let q = wait_for("queue · all");
    let row = q.lines().nth(2).unwrap_or_default();
    assert!(row.trim_end_matches('│').trim_end().ends_with('✓'), "{q}");
    keys(&["Enter"]);
    wait_for("rationale");
    keys(&["u"]);
    wait_for("undone #");
    keys(&["Escape"]);
    let q = wait_for("queue · all");
    // Below the border and the header (whose last column is ✓), no row is marked reviewed.
    assert!(q.lines().skip(2).all(|l| !l.contains('✓')), "{q}");
    keys(&["f"]);
    wait_for("queue · unreviewed · 200 pairs");
    let stats = stats(dir.path(), &db);
    assert_eq!(stats["reviewed"], 0, "{stats}");

    // Open pair 1, then n four times: the fifth pair viewed is pair 5; back, the cursor is on it.
    // Round the filters back to all (the teacher ≠ student one is skipped: no student).
    for _ in 0..QueueFilter::ALL.len() {
        if pane().contains("queue · all") {
            break;
        }
        keys(&["f"]);
        settle();
    }
    wait_for("queue · all");
    keys(&["g", "Enter"]);
    wait_for("ana · pair 1 ·");
    for n in 2..=5 {
        keys(&["n"]);
        wait_for(&format!("ana · pair {n} ·"));
    }
    keys(&["Escape"]);
    wait_for("queue ·");
    let back = wait_for("ana · pair 5 ·");
    keys(&["q"]);
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &name])
        .output();
    assert!(back.contains("pair 5"), "{back}");
    let actions: Vec<String> = annotation_actions(&db).into_iter().map(|a| a.0).collect();
    assert_eq!(actions, ["accept", "undo"]);
}

/// Ten thousand characters typed into the search box (a paste, a stuck key): the box keeps the
/// first 200 and says so, and the Enter and the Esc behind them answer at once.
#[test]
fn search_answers_enter_and_esc_after_ten_thousand_characters() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let name = format!("wb-paste-{}", std::process::id());
    review_in_tmux(&db, "ana", &name, 80, 24);
    let wait_for = |text: &str, secs: u64| wait_for_pane(&name, text, secs);
    wait_for("queue · all · 200 pairs", 10);
    let typed = "fleece ".repeat(10_000 / 7 + 1);
    for (enter, expect) in [
        ("Enter", "\"fleece fleece"),
        ("Escape", "queue · all · 200 pairs"),
    ] {
        tmux(&["send-keys", "-t", &name, "/"]);
        tmux(&["send-keys", "-t", &name, "-l", &typed]);
        tmux(&["send-keys", "-t", &name, enter]);
        let p = wait_for(expect, 10);
        assert!(p.contains("search box full (200 chars)"), "{p}");
        assert!(!p.contains("search: "), "the box is closed:\n{p}");
        if enter == "Enter" {
            // The search applied: fewer pairs than the whole fixture.
            assert!(!p.contains("· 200 pairs"), "{p}");
            tmux(&["send-keys", "-t", &name, "Escape"]);
            wait_for("search cleared", 5);
        }
    }
    tmux(&["send-keys", "-t", &name, "q"]);
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &name])
        .output();
}

/// Types `text` into the app, one key per character.
async fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        tui::handle_event(app, key(c)).await.unwrap();
    }
}

/// The editor as an annotator expects it: `+` asks for the dimension's name and values, `e` on a
/// dimension edits its values, the cursor starts after the text, and Esc on unsaved text asks
/// before dropping it. Through the real key handler on a real database; the annotation rows
/// say exactly what was written.
#[test]
fn editor_asks_before_dropping_text_and_dimensions_get_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store.save_judgment(&long_judgment(1)).await.unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        let app = &mut app;
        tui::handle_event(app, press(KeyCode::Enter)).await.unwrap();
        // `+`: a form whose name is proposed; the values typed go in with it.
        tui::handle_event(app, press(KeyCode::Char('+')))
            .await
            .unwrap();
        let form = app
            .detail
            .as_ref()
            .unwrap()
            .editor
            .as_ref()
            .unwrap()
            .1
            .lines()
            .to_vec();
        assert_eq!(form, ["name: category", "query: ", "item: "]);
        tui::handle_event(app, press(KeyCode::Down)).await.unwrap();
        tui::handle_event(app, press(KeyCode::End)).await.unwrap();
        type_text(app, "baby kit").await;
        tui::handle_event(app, press(KeyCode::Down)).await.unwrap();
        tui::handle_event(app, press(KeyCode::End)).await.unwrap();
        type_text(app, "fleece jacket").await;
        tui::handle_event(app, ctrl('s')).await.unwrap();
        let r = rationale_of(app);
        let added = r.dimensions.iter().find(|d| d.name == "category").unwrap();
        assert_eq!(
            (added.query_value.as_str(), added.item_value.as_str()),
            ("baby kit", "fleece jacket")
        );
        // `e` on it: the cursor after the text, so typing appends to the note line.
        tui::handle_event(app, press(KeyCode::Char('e')))
            .await
            .unwrap();
        type_text(app, "parent asked").await;
        tui::handle_event(app, ctrl('s')).await.unwrap();
        let r = rationale_of(app);
        let edited = r.dimensions.iter().find(|d| d.name == "category").unwrap();
        assert_eq!(edited.note, "parent asked");
        // Esc on unsaved text asks; a second Esc drops it, writing nothing.
        tui::handle_event(app, press(KeyCode::Char('e')))
            .await
            .unwrap();
        type_text(app, " twice").await;
        tui::handle_event(app, press(KeyCode::Esc)).await.unwrap();
        assert!(app.detail.as_ref().unwrap().editor.is_some());
        assert!(app.status.contains("Esc again drops it"), "{}", app.status);
        tui::handle_event(app, press(KeyCode::Esc)).await.unwrap();
        assert!(app.detail.as_ref().unwrap().editor.is_none());
        // Esc on an editor with nothing changed closes it at once.
        tui::handle_event(app, press(KeyCode::Char('e')))
            .await
            .unwrap();
        tui::handle_event(app, press(KeyCode::Esc)).await.unwrap();
        assert!(app.detail.as_ref().unwrap().editor.is_none());
        // A line break saved in a step shows as a line break, under the step's first line.
        app.detail.as_mut().unwrap().cursor = 0;
        tui::handle_event(app, press(KeyCode::Char('e')))
            .await
            .unwrap();
        tui::handle_event(app, press(KeyCode::Enter)).await.unwrap();
        type_text(app, "second line").await;
        tui::handle_event(app, ctrl('s')).await.unwrap();
        let s = screen_of(app, 100, 40);
        assert!(
            s.lines()
                .any(|l| l.contains(&format!("│{:18}second line", ""))),
            "{s}"
        );
        assert!(!s.contains('␊'), "{s}");
    });
    let actions = annotation_actions(&db);
    let names: Vec<(&str, Option<&str>)> = actions
        .iter()
        .map(|a| (a.0.as_str(), a.1.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("add_dimension", Some("dimension:category")),
            ("edit_dimension", Some("dimension:category.note")),
            ("edit_step", Some("query_analysis")),
        ],
        "{actions:?}"
    );
    // `before` is the JSON the schema declares: the note was empty.
    let before: Vec<(String,)> = query_rows(
        &db,
        "SELECT before FROM annotations WHERE before IS NOT NULL ORDER BY id",
    );
    assert_eq!(
        before,
        [
            ("\"\"".to_string(),),
            ("\"the shopper wants a newborn hospital kit\"".to_string(),)
        ]
    );
}

/// Keys never wait for the store: a key that needs a read hands the read to a task; keys
/// pressed meanwhile wait for it and then act, in the order pressed, on the state it left. Through the key handler the terminal's loop uses, on a real database.
#[test]
fn keys_hand_store_work_to_tasks_and_later_keys_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        let first = app.queue.rows[0].pair_id;
        // ⏎ opens the first pair: its read runs as a task; the app is still on the queue.
        app.handle(press(KeyCode::Enter)).unwrap();
        assert!(app.busy());
        assert_eq!(app.view, View::Queue);
        // j and then Esc, pressed before the pair is read, wait for it: j moves the open pair's
        // cursor to its second step, and Esc comes back to the queue on that pair.
        app.handle(press(KeyCode::Char('j'))).unwrap();
        assert_eq!(app.view, View::Queue, "j waits for the pair to be open");
        // The terminal's loop waits on the terminal, not on the runtime, so tokio's cooperative
        // budget can be spent by the time it looks at a finished task: spend it, then poll as
        // that loop does, without awaiting.
        {
            use futures::FutureExt;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for i in 0..1000 {
                tx.send(i).unwrap();
            }
            for _ in 0..1000 {
                let _ = rx.recv().now_or_never();
            }
        }
        let waiting = std::time::Instant::now();
        while app.busy() {
            assert!(
                waiting.elapsed() < Duration::from_secs(10),
                "the task never came back"
            );
            std::thread::sleep(Duration::from_millis(1));
            app.poll_tasks().unwrap();
        }
        assert_eq!(app.view, View::Detail);
        let d = app.detail.as_ref().unwrap();
        assert_eq!(
            (d.pair.id, d.cursor),
            (first, 1),
            "j acted on the open pair"
        );
        // Esc: the pair stays on screen until the queue's page is reloaded.
        app.handle(press(KeyCode::Esc)).unwrap();
        assert!(app.busy());
        assert_eq!(app.view, View::Detail);
        app.finish_tasks().await.unwrap();
        assert_eq!(app.view, View::Queue);
        assert_eq!(app.selected_row().map(|r| r.pair_id), Some(first));
    });
}
