//! Everything at once on one database: `teach --workers 2` with the real teacher, exports one
//! after another, and two annotators in two review apps (the real binary in tmux) pressing
//! keys. No "database is locked" reaches anyone, every key press answers, and every change an
//! app showed as saved is stored and exported.
//!
//! WORKBENCH_SOAK_PAIRS sets how many pairs teach judges (the run lasts as long as teach does;
//! 30 here, about a minute) and WORKBENCH_SOAK_MODE its mode (score; cot is slower per pair,
//! which makes a long run of the fixture's 200 pairs: BENCHMARKS.md has a five-minute run).

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One annotator's review app in a tmux session.
struct Reviewer {
    session: String,
    /// The id of the last annotation the app said it saved.
    last_saved: Option<String>,
    shown_saved: usize,
    slowest: Duration,
}

impl Reviewer {
    fn start(db: &std::path::Path, annotator: &str) -> Reviewer {
        let session = format!("wb-soak-{}-{annotator}", std::process::id());
        review_in_tmux(db, annotator, &session, 120, 32);
        let r = Reviewer {
            session,
            last_saved: None,
            shown_saved: 0,
            slowest: Duration::ZERO,
        };
        let started = Instant::now();
        while !r.pane().contains("pairs") {
            assert!(started.elapsed() < Duration::from_secs(20), "{}", r.pane());
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn pane(&self) -> String {
        tmux(&["capture-pane", "-t", &self.session, "-p"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        tmux(&args);
    }

    /// Waits until the pane shows `what`; how long it took.
    fn wait_for(&self, mut what: impl FnMut(&str) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let pane = self.pane();
            assert!(
                !pane.contains("locked") && !pane.to_lowercase().contains("error"),
                "{pane}"
            );
            if what(&pane) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no answer within 10 s: {pane}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens the next pair (down from the top, or up from the bottom), sets a label, goes back.
    fn label_one(&mut self, key: &str, down: bool) {
        self.keys(&[if down { "j" } else { "k" }, "Enter"]);
        let t = self.wait_for(|p| p.contains("┌ pair "));
        self.slowest = self.slowest.max(t);
        self.keys(&[key]);
        let before = self.last_saved.clone();
        let mut seen = None;
        let t = self.wait_for(|p| {
            seen = saved_id(p);
            seen.is_some() && seen != before
        });
        self.slowest = self.slowest.max(t);
        self.last_saved = seen;
        self.shown_saved += 1;
        self.keys(&["Escape"]);
        let t = self.wait_for(|p| p.contains("┌ queue"));
        self.slowest = self.slowest.max(t);
    }

    fn quit(&self) {
        self.keys(&["q"]);
        let started = Instant::now();
        while tmux(&["list-sessions"]).contains(&self.session) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "q did not quit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Reviewer {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .output();
    }
}

/// The annotation id in "saved: set label (#N)".
fn saved_id(pane: &str) -> Option<String> {
    let at = pane.find("saved: set label (#")?;
    let rest = &pane[at + "saved: set label (#".len()..];
    Some(rest.chars().take_while(char::is_ascii_digit).collect())
}

#[test]
fn teach_workers_exports_and_two_review_apps_share_one_database() {
    let pairs: usize = std::env::var("WORKBENCH_SOAK_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mode = std::env::var("WORKBENCH_SOAK_MODE").unwrap_or_else(|_| "score".into());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let mut teach = Command::new(bin())
        .current_dir(d)
        .arg("--db")
        .arg(&db)
        .args(["teach", "--mode", &mode, "--workers", "2", "--limit"])
        .arg(pairs.to_string())
        .arg("--model")
        .arg(teacher_model())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut ana = Reviewer::start(&db, "ana");
    let mut ben = Reviewer::start(&db, "ben");
    ben.keys(&["G"]);
    let mut exports = 0;
    let mut round = 0;
    let status = loop {
        let done = teach.try_wait().unwrap();
        let key = ["1", "2", "3", "4"][round % 4];
        ana.label_one(key, true);
        ben.label_one(key, false);
        if round % 3 == 0 {
            let out = workbench(
                d,
                &db,
                &[
                    "export",
                    "--out",
                    "dist",
                    "--force",
                    "--source",
                    "human-only",
                ],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && !err.contains("locked"), "{err}");
            exports += 1;
        }
        round += 1;
        if let Some(status) = done {
            break status;
        }
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut teach.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success() && !err.contains("locked"), "{err}");
    ana.quit();
    ben.quit();
    eprintln!(
        "{pairs} pairs judged in {:.0} s beside {exports} exports and {} + {} labels; \
         slowest answer to a key {:?} (ana), {:?} (ben)",
        started.elapsed().as_secs_f64(),
        ana.shown_saved,
        ben.shown_saved,
        ana.slowest,
        ben.slowest
    );

    // Every judgment once, every saved label stored under its annotator, nothing to repair.
    let judged: Vec<(i64, i64)> = query_rows(
        &db,
        "SELECT count(*), count(DISTINCT pair_id) FROM judgments",
    );
    assert_eq!(judged[0], (pairs as i64, pairs as i64));
    let saved: Vec<(String, i64)> = query_rows(
        &db,
        "SELECT annotator, count(*) FROM annotations WHERE action = 'set_label' \
         GROUP BY annotator ORDER BY annotator",
    );
    assert_eq!(
        saved,
        [
            ("ana".to_string(), ana.shown_saved as i64),
            ("ben".to_string(), ben.shown_saved as i64)
        ]
    );
    let check = ok(d, &db, &["check", "--json"]);
    let check: serde_json::Value = serde_json::from_str(&check).unwrap();
    assert_eq!(check["integrity"], "ok", "{check}");
    assert_eq!(check["judgment_columns"], serde_json::json!([]), "{check}");
    assert_eq!(check["reviewed"], serde_json::json!([]), "{check}");

    // The last export after all of it carries each pair's last label.
    let exported = export_human_labels(d, &db, "last");
    let last = last_set_labels(&db);
    assert!(!last.is_empty());
    for (product, label) in &last {
        assert_eq!(
            exported[product]["label"],
            serde_json::json!(label),
            "{product}"
        );
    }
}
