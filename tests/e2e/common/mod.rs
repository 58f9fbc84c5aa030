//! Helpers shared by the end-to-end tests: the real binary, a scratch directory, real data.
#![allow(dead_code)]

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture() -> PathBuf {
    root().join("fixtures/esci-fixture.jsonl")
}

/// The 2,344-pair ESCI dev file (53 queries), kept in fixtures/ with its licence.
pub fn dev_file() -> PathBuf {
    root().join("fixtures/esci-dev.jsonl")
}

/// The workbench binary under test: cargo's, or `WORKBENCH_BIN` when set, so that a long harness
/// run can keep testing a copied binary while the tree is rebuilt.
pub fn bin() -> PathBuf {
    std::env::var_os("WORKBENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_workbench")))
}

pub fn teacher_model() -> PathBuf {
    let p = root().join("models/teacher/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-models.sh first",
        p.display()
    );
    p
}

/// Runs `workbench --db DB ARGS…` in `dir`.
pub fn workbench(dir: &Path, db: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("WORKBENCH_DB")
        .env("NO_COLOR", "1")
        // The user's own config file must not change what a test runs.
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .output()
        .expect("running the workbench binary")
}

/// Like `workbench`, asserting success, returning stdout.
pub fn ok(dir: &Path, db: &Path, args: &[&str]) -> String {
    let out = workbench(dir, db, args);
    assert!(
        out.status.success(),
        "workbench {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `workbench --db DB ARGS` in `dir` and SIGKILLs it the moment `checkpoint` exists (a
/// run's first saved epoch), failing if it ends first or writes none within 5 minutes.
pub fn kill_at_checkpoint(dir: &Path, db: &Path, args: &[&str], checkpoint: &Path) {
    kill_when(dir, db, args, || checkpoint.exists());
}

/// Runs the binary and kills it as soon as `ready` holds.
pub fn kill_when(dir: &Path, db: &Path, args: &[&str], ready: impl Fn() -> bool) {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(
            started.elapsed().as_secs() < 300,
            "no checkpoint after 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

pub fn stats(dir: &Path, db: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(dir, db, &["stats", "--json"])).expect("stats --json prints JSON")
}

/// An initialised database with the fixture imported.
pub fn fixture_db(dir: &Path) -> PathBuf {
    let db = dir.join("wb.db");
    ok(dir, &db, &["init"]);
    ok(dir, &db, &["import", fixture().to_str().unwrap()]);
    db
}

/// A consistent copy of a SQLite database at `to` (`VACUUM INTO` reads through SQLite: a plain
/// file copy could miss pages still in the WAL).
pub fn copy_database(from: &Path, to: &Path) {
    let c = rusqlite::Connection::open(from).unwrap();
    c.execute("VACUUM INTO ?1", [to.to_str().unwrap()]).unwrap();
}

/// The first `n` fixture pairs as a file of their own in `dir`.
pub fn fixture_subset(dir: &Path, n: usize) -> PathBuf {
    let lines: Vec<String> = std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .take(n)
        .map(str::to_owned)
        .collect();
    let file = dir.join(format!("first-{n}.jsonl"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    file
}

/// An initialised database with the first `n` fixture pairs imported.
pub fn fixture_subset_db(dir: &Path, n: usize) -> PathBuf {
    let file = fixture_subset(dir, n);
    let db = dir.join("wb.db");
    ok(dir, &db, &["init"]);
    ok(dir, &db, &["import", file.to_str().unwrap()]);
    db
}

/// The review app drawn through ratatui's TestBackend (no colour), as text.
pub fn screen_of(app: &workbench::tui::App, width: u16, height: u16) -> String {
    use ratatui::{Terminal, backend::TestBackend};
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| workbench::tui::draw(f, app, workbench::tui::Theme { color: false }))
        .unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Rows of a read-only SQL query on the database, through the store's own pool.
pub fn query_rows<T>(db: &Path, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = workbench::store::Store::open(db).await.unwrap();
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(store.sqlite().unwrap())
            .await
            .unwrap();
        store.close().await;
        rows
    })
}

/// Runs `python3 -c SCRIPT ARGS…` and asserts it succeeded: pandas and pyarrow come with
/// Hugging Face `datasets`, which scripts/test.sh installs.
pub fn python(script: &str, args: &[&Path]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 (pandas/pyarrow come with `datasets`, installed by scripts/test.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs tmux with `args`; what it printed.
pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real review app for `annotator` on `db` in a new detached tmux session `name` of
/// `width` × `height`, without colours.
pub fn review_in_tmux(db: &Path, annotator: &str, name: &str, width: u16, height: u16) {
    let cmd = format!(
        "NO_COLOR=1 {} --db {} review --annotator {annotator}",
        bin().display(),
        db.display()
    );
    let (w, h) = (width.to_string(), height.to_string());
    tmux(&["new-session", "-d", "-s", name, "-x", &w, "-y", &h, &cmd]);
}

/// The text of tmux session `name`'s pane once it shows `text` (polled for up to `secs`
/// seconds); else the session is killed and the test fails with the pane as it was.
pub fn wait_for_pane(name: &str, text: &str, secs: u64) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let pane = tmux(&["capture-pane", "-t", name, "-p"]);
        if pane.contains(text) {
            return pane;
        }
        if std::time::Instant::now() > until {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", name])
                .output();
            panic!("{text:?} never appeared:\n{pane}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The real teacher judges the first `limit` unjudged pairs of `db` in score mode, in one
/// process: the tests run three at a time on two cores, where a second worker would only load
/// the model again (the worker pool has tests of its own).
pub fn teach_score(dir: &Path, db: &Path, limit: usize) -> String {
    let limit = limit.to_string();
    let model = teacher_model();
    ok(
        dir,
        db,
        &[
            "teach",
            "--mode",
            "score",
            "--workers",
            "1",
            "--limit",
            &limit,
            "--model",
            model.to_str().unwrap(),
        ],
    )
}

/// The same, started in the background: the running `teach`, its stderr piped.
pub fn spawn_teach_score(dir: &Path, db: &Path, limit: usize) -> std::process::Child {
    let model = teacher_model();
    Command::new(bin())
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(["teach", "--mode", "score", "--limit", &limit.to_string()])
        .args(["--model", model.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `export --out OUT --format cot --source human-only` (human labels only), then every exported
/// row by product id, over the three splits.
pub fn export_human_labels(
    dir: &Path,
    db: &Path,
    out: &str,
) -> std::collections::HashMap<String, serde_json::Value> {
    ok(
        dir,
        db,
        &[
            "export",
            "--out",
            out,
            "--format",
            "cot",
            "--source",
            "human-only",
        ],
    );
    let mut rows = std::collections::HashMap::new();
    for split in ["train", "dev", "test"] {
        let p = dir.join(out).join(split).join("cot.jsonl");
        for line in std::fs::read_to_string(p).unwrap_or_default().lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            rows.insert(r["product_id"].as_str().unwrap().to_string(), r);
        }
    }
    rows
}

/// Each labelled pair's last label set by an annotator: (product id, label).
pub fn last_set_labels(db: &Path) -> Vec<(String, String)> {
    query_rows(
        db,
        "SELECT i.ext_id, json_extract(a.after, '$.after') FROM annotations a \
         JOIN pairs p ON p.id = a.pair_id JOIN items i ON i.id = p.item_id \
         WHERE a.id IN (SELECT max(id) FROM annotations WHERE action = 'set_label' GROUP BY pair_id)",
    )
}
