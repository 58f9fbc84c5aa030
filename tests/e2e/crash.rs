//! The crash harness: every long command SIGKILLed at seeded random moments, then run again to
//! the end. After every kill and at the end: SQLite's integrity check passes, `workbench check`
//! finds nothing to repair, no pair is judged twice by one model, prompt and mode; an import is
//! all or nothing per file; an export directory is absent or whole (every file's sha256 as its
//! manifest says); the review app loses no change it showed as saved.
//!
//! CI runs `WORKBENCH_CRASH_ROUNDS` (default 2) kills per command; `scripts/crash-harness.sh`
//! runs hundreds and prints the table BENCHMARKS.md keeps.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

fn rounds() -> usize {
    std::env::var("WORKBENCH_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// Whether the case named `name` runs: all of them, or those whose name contains one of the
/// comma-separated `WORKBENCH_CRASH_CASES` (so a large run can be resumed case by case).
fn selected(name: &str) -> bool {
    std::env::var("WORKBENCH_CRASH_CASES").map_or(true, |cases| {
        cases.split(',').any(|c| name.contains(c.trim()))
    })
}

fn rng(salt: u64) -> StdRng {
    let seed = std::env::var("WORKBENCH_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u64);
    StdRng::seed_from_u64(seed ^ salt)
}

fn spawn(dir: &Path, db: &Path, args: &[&str]) -> Child {
    Command::new(bin())
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("WORKBENCH_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running the workbench binary")
}

/// Runs `args` and SIGKILLs it (and its worker processes) after a random time in `window`;
/// `None` when it was killed before it finished on its own, else how long it took.
fn run_and_kill(
    dir: &Path,
    db: &Path,
    args: &[&str],
    rng: &mut StdRng,
    window: (u64, u64),
) -> Option<u64> {
    let started = Instant::now();
    let mut child = spawn(dir, db, args);
    let deadline = started + Duration::from_millis(rng.random_range(window.0..window.1));
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(started.elapsed().as_millis() as u64);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let children = children_of(child.id());
    let _ = child.kill();
    for pid in children {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    child.wait().unwrap();
    None
}

/// The process ids whose parent is `pid` (teach's worker processes).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) else {
        return Vec::new();
    };
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// What every kill must leave: an intact database whose derived columns agree with their rows,
/// and no judgment stored twice. Returns the repairs (0, or the assertion fails).
fn assert_consistent(dir: &Path, db: &Path, what: &str) -> usize {
    let report: serde_json::Value =
        serde_json::from_str(&ok(dir, db, &["check", "--json"])).unwrap();
    let twice: Vec<(i64,)> = query_rows(
        db,
        "SELECT count(*) FROM (SELECT 1 FROM judgments GROUP BY pair_id, model, prompt_hash, mode \
         HAVING count(*) > 1)",
    );
    let repairs = report["judgment_columns"].as_array().unwrap().len()
        + report["reviewed"].as_array().unwrap().len();
    assert_eq!(report["integrity"], "ok", "{what}: {report}");
    assert_eq!(repairs, 0, "{what}: derived columns disagreed: {report}");
    assert_eq!(
        twice[0].0, 0,
        "{what}: a pair judged twice by one model and prompt"
    );
    repairs
}

/// Rounds run and kills that landed before the command finished; every other figure of the
/// table (integrity failures, repairs, lost or duplicated rows) is an assertion, so a printed row
/// has them at 0.
#[derive(Default, Debug)]
struct Tally {
    rounds: usize,
    kills: usize,
    repairs: usize,
}

fn report(command: &str, t: &Tally) {
    println!(
        "crash-harness | {command} | {} rounds | {} killed mid-run | integrity failures 0 | repairs {} | lost or duplicated 0",
        t.rounds, t.kills, t.repairs
    );
}

fn pairs(db: &Path) -> i64 {
    let n: Vec<(i64,)> = query_rows(db, "SELECT count(*) FROM pairs");
    n[0].0
}

/// One command under the harness: `round(r)` prepares round r (a database and the arguments;
/// each round has work to do, so that a kill lands in it) and `verify` checks what the finished
/// round left. Round 0 runs uninterrupted and times the command: later rounds are killed at a
/// uniform moment of the last uninterrupted run's time (a round that finishes before its kill
/// times the command again: a first run that paid for a cold cache would let most kills come
/// too late).
struct Case<'a> {
    name: String,
    round: Box<dyn Fn(usize) -> (PathBuf, Vec<String>) + 'a>,
    verify: Box<dyn Fn(&Path) + 'a>,
}

fn crash_rounds(dir: &Path, case: Case, rng: &mut StdRng) {
    if !selected(&case.name) {
        return;
    }
    let (db, args) = (case.round)(0);
    let args0: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    ok(dir, &db, &args0);
    let mut full = started.elapsed().as_millis() as u64;
    assert_consistent(dir, &db, &case.name);
    (case.verify)(&db);
    let mut t = Tally::default();
    for r in 1..=rounds() {
        let (db, args) = (case.round)(r);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        t.rounds += 1;
        match run_and_kill(dir, &db, &args, rng, (1, full.max(2))) {
            None => t.kills += 1,
            Some(took) => full = took,
        }
        t.repairs += assert_consistent(dir, &db, &case.name);
        ok(dir, &db, &args);
        t.repairs += assert_consistent(dir, &db, &case.name);
        (case.verify)(&db);
    }
    report(&case.name, &t);
}

fn copy_db(from: &Path, to: &Path) -> PathBuf {
    let _ = std::fs::remove_file(to);
    copy_database(from, to);
    to.to_path_buf()
}

/// The dev file as JSONL, CSV and Parquet, each import killed at random into a fresh database:
/// the pairs are always none or all of the file's 2,344, and importing it again after a kill
/// ends with exactly them.
#[test]
fn imports_are_all_or_nothing_per_file_whenever_they_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dev = dev_file();
    let csv = d.join("dev.csv");
    let parquet = d.join("dev.parquet");
    python(
        "import sys, json, csv, pyarrow.json as j, pyarrow.parquet as q\n\
         rows = [json.loads(l) for l in open(sys.argv[1])]\n\
         w = csv.writer(open(sys.argv[2], 'w', newline=''))\n\
         w.writerow(['query_id','query','product_id','title','description','brand','esci_label'])\n\
         [w.writerow([r['query_id'],r['query'],r['product_id'],r['title'],r['description'],r['brand'],r['esci_label']]) for r in rows]\n\
         q.write_table(j.read_json(sys.argv[1]), sys.argv[3])",
        &[&dev, &csv, &parquet],
    );
    let mut rng = rng(1);
    for (name, file) in [("jsonl", &dev), ("csv", &csv), ("parquet", &parquet)] {
        let file = file.to_str().unwrap().to_string();
        let case = Case {
            name: format!("import {name}"),
            round: Box::new(|r| {
                let db = d.join(format!("{name}-{r}.db"));
                ok(d, &db, &["init"]);
                (db, vec!["import".into(), file.clone()])
            }),
            verify: Box::new(|db| assert_eq!(pairs(db), 2344, "{name}: the whole file once")),
        };
        if !selected(&case.name) {
            continue;
        }
        // A killed import leaves none or all of the file: checked on a round of its own.
        let db = d.join(format!("{name}-killed.db"));
        ok(d, &db, &["init"]);
        for _ in 0..rounds() {
            let _ = run_and_kill(d, &db, &["import", &file], &mut rng, (1, 800));
            let n = pairs(&db);
            assert!(n == 0 || n == 2344, "{name}: {n} pairs, not none or all");
            assert_consistent(d, &db, name);
        }
        crash_rounds(d, case, &mut rng);
    }
}

/// `teach --mode score` of six pairs (one process, then two workers) killed at random: every
/// kill leaves each pair judged once or not yet, and the re-run judges what is left.
#[test]
fn a_killed_teach_leaves_every_pair_judged_once_or_not_yet() {
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = fixture_db(d);
    let m = model.to_str().unwrap().to_string();
    let mut rng = rng(2);
    let fixture = std::fs::read_to_string(fixture()).unwrap();
    let ids: Vec<String> = fixture
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            format!(
                "{}/{}",
                r["query_id"].as_str().unwrap(),
                r["product_id"].as_str().unwrap()
            )
        })
        .collect();
    for workers in ["1", "2"] {
        let case = Case {
            name: format!("teach --workers {workers}"),
            round: Box::new(|r| {
                let db = copy_db(&base, &d.join(format!("teach-{workers}-{r}.db")));
                let pairs = ids[r * 6 % 190..][..6].join(",");
                let args = [
                    "teach",
                    "--mode",
                    "score",
                    "--only",
                    &pairs,
                    "--workers",
                    workers,
                    "--model",
                    &m,
                ];
                (db, args.map(String::from).to_vec())
            }),
            verify: Box::new(|db| {
                let judged: Vec<(i64, i64)> = query_rows(
                    db,
                    "SELECT count(*), count(DISTINCT pair_id) FROM judgments",
                );
                assert_eq!(judged[0], (6, 6), "six pairs, each judged once");
            }),
        };
        crash_rounds(d, case, &mut rng);
    }
}

/// The sha256 of every file the manifest names matches the file: the directory is whole.
fn assert_whole_export(out: &Path) {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    for (rel, f) in manifest["files"].as_object().unwrap() {
        let bytes = std::fs::read(out.join(rel)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap(),
            "{rel} is not what the manifest says"
        );
    }
}

/// export (over an existing export), audit, augment, student train and student score, each
/// killed at random: the export directory is the old export or the new one, whole, and no
/// temporary directory outlives the next export; the database stays consistent; the re-run
/// completes (a student resumes from its last finished epoch; scores and augmented pairs are
/// never stored twice).
#[test]
fn killed_exports_audits_augments_and_students_leave_nothing_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    teach_score(d, &db, 6);
    let base = root().join("models/student-base").display().to_string();
    let mut rng = rng(3);
    let db_ref = &db;

    let out = d.join("dist");
    crash_rounds(
        d,
        Case {
            name: "export".into(),
            round: Box::new(|_| {
                if out.exists() {
                    assert_whole_export(&out);
                }
                let args = ["export", "--out", "dist", "--force", "--parquet"];
                (db_ref.clone(), args.map(String::from).to_vec())
            }),
            verify: Box::new(|_| {
                assert_whole_export(&out);
                let stray = std::fs::read_dir(d)
                    .unwrap()
                    .filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .contains(".partial-")
                    })
                    .count();
                assert_eq!(
                    stray, 0,
                    "a killed export's temporary directory outlived the next"
                );
            }),
        },
        &mut rng,
    );
    crash_rounds(
        d,
        Case {
            name: "audit".into(),
            round: Box::new(|_| (db_ref.clone(), vec!["audit".into()])),
            verify: Box::new(|db| {
                let runs: Vec<(i64,)> = query_rows(db, "SELECT count(*) FROM audit_findings");
                assert!(runs[0].0 > 0, "the audit's findings are whole");
            }),
        },
        &mut rng,
    );
    crash_rounds(
        d,
        Case {
            name: "augment".into(),
            round: Box::new(|r| {
                let copy = copy_db(db_ref, &d.join(format!("augment-{r}.db")));
                (
                    copy,
                    ["augment", "--per-query", "5"].map(String::from).to_vec(),
                )
            }),
            verify: Box::new(|db| {
                let twice: Vec<(i64,)> = query_rows(
                    db,
                    "SELECT count(*) FROM (SELECT 1 FROM pairs GROUP BY query_id, item_id HAVING count(*) > 1)",
                );
                assert_eq!(twice[0].0, 0, "augment added a pair twice");
                assert!(pairs(db) > 200, "augment added pairs");
            }),
        },
        &mut rng,
    );
    crash_rounds(
        d,
        Case {
            name: "student train".into(),
            round: Box::new(|r| {
                let args = [
                    "student",
                    "train",
                    "--out",
                    &format!("students/s{r}"),
                    "--layers",
                    "1",
                    "--max-tokens",
                    "24",
                    "--epochs",
                    "3",
                    "--batch-size",
                    "32",
                    "--base",
                    &base,
                ];
                (db_ref.clone(), args.map(String::from).to_vec())
            }),
            verify: Box::new(|_| {}),
        },
        &mut rng,
    );
    crash_rounds(
        d,
        Case {
            name: "student score".into(),
            round: Box::new(|r| {
                let args = [
                    "student",
                    "score",
                    "--model",
                    "students/s0",
                    "--name",
                    &format!("score-{r}"),
                ];
                (db_ref.clone(), args.map(String::from).to_vec())
            }),
            verify: Box::new(|db| {
                let scored: Vec<(i64, i64)> = query_rows(
                    db,
                    "SELECT count(*), count(DISTINCT pair_id) FROM student_scores \
                     WHERE model_id = (SELECT max(id) FROM student_models)",
                );
                assert_eq!(scored[0], (pairs(db), pairs(db)), "every pair scored once");
            }),
        },
        &mut rng,
    );
    if selected("student train") && selected("student score") {
        let trained: Vec<(i64,)> = query_rows(&db, "SELECT count(*) FROM student_models");
        assert!(trained[0].0 as usize >= 2 * (rounds() + 1));
    }
}

/// The review app in tmux, label keys pressed on pair after pair, the app SIGKILLed at a random
/// moment: every change it showed as saved is in the database and in the next export.
#[test]
fn a_killed_review_app_loses_no_change_it_showed_as_saved() {
    if !selected("review (tmux)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let mut rng = rng(4);
    let mut t = Tally::default();
    let mut shown_saved = 0usize;
    for round in 0..rounds() {
        t.rounds += 1;
        let name = format!("wb-crash-{}-{round}", std::process::id());
        review_in_tmux(&db, "ana", &name, 120, 30);
        let pane = || tmux(&["capture-pane", "-t", &name, "-p"]);
        let started = Instant::now();
        while !pane().contains("pairs") {
            assert!(started.elapsed() < Duration::from_secs(10), "{}", pane());
            std::thread::sleep(Duration::from_millis(50));
        }
        let presses = rng.random_range(1..6);
        for i in 0..presses {
            // Open the next pair, set a label (saved at once), back to the queue.
            tmux(&["send-keys", "-t", &name, "j", "Enter"]);
            std::thread::sleep(Duration::from_millis(150));
            let label = ["1", "2", "3", "4"][i % 4];
            tmux(&["send-keys", "-t", &name, label]);
            let waited = Instant::now();
            while !pane().contains("saved: set label") && waited.elapsed() < Duration::from_secs(3)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if pane().contains("saved: set label") {
                shown_saved += 1;
            }
            tmux(&["send-keys", "-t", &name, "Escape"]);
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid = tmux(&["display-message", "-p", "-t", &name, "#{pane_pid}"]);
        let pid: u32 = pid.trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(0..200)));
        // The pane's shell and the app it runs.
        for p in children_of(pid).into_iter().chain([pid]) {
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        t.kills += 1;
        let _ = tmux(&["kill-session", "-t", &name]);
        t.repairs += assert_consistent(d, &db, "review");
    }
    let saved: Vec<(i64,)> = query_rows(
        &db,
        "SELECT count(*) FROM annotations WHERE action = 'set_label'",
    );
    assert!(
        saved[0].0 as usize >= shown_saved,
        "{} label changes stored, {shown_saved} shown as saved",
        saved[0].0
    );
    // Every labelled pair's last label is the one the export carries.
    let last = last_set_labels(&db);
    let exported = export_human_labels(d, &db, "x");
    for (product, label) in &last {
        let row = &exported[product];
        assert_eq!(
            (&row["label"], &row["label_source"]),
            (&serde_json::json!(label), &serde_json::json!("annotator")),
            "{product}"
        );
    }
    report("review (tmux)", &t);
}
