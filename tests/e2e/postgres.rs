//! The store on PostgreSQL (`--db postgres://…`), against a real server started for each test
//! (tests/e2e/common/postgres.rs), side by side with the same commands on a SQLite file.

use crate::common;

use std::path::Path;

use common::postgres::Postgres;
use common::{fixture, ok, query_rows, stats, workbench};

/// `init`, then `import FILE`, on database `db`.
fn imported(d: &Path, db: &Path, file: &Path) {
    ok(d, db, &["init"]);
    ok(d, db, &["import", file.to_str().unwrap()]);
}

fn without_database(mut stats: serde_json::Value) -> serde_json::Value {
    stats.as_object_mut().unwrap().remove("database");
    stats
}

/// Each pair as `id query product gold split`, in id order, from SQLite.
fn sqlite_pairs(db: &Path) -> Vec<String> {
    query_rows::<(i64, String, String, Option<String>, Option<String>)>(
        db,
        "SELECT p.id, q.ext_id, i.ext_id, p.gold_label, p.split FROM pairs p \
         JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id ORDER BY p.id",
    )
    .into_iter()
    .map(|(id, q, i, g, s)| {
        format!(
            "{id} {q} {i} {} {}",
            g.unwrap_or_default(),
            s.unwrap_or_default()
        )
    })
    .collect()
}

/// The same from PostgreSQL.
fn postgres_pairs(pg: &Postgres, database: &str) -> Vec<String> {
    pg.psql(
        database,
        "SELECT p.id || ' ' || q.ext_id || ' ' || i.ext_id || ' ' || coalesce(p.gold_label, '') \
         || ' ' || coalesce(p.split, '') FROM pairs p \
         JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id ORDER BY p.id",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// A second file: the first fixture row relabelled, then named again with another label (the
/// last one wins), one pair the fixture lacks, and the tenth row unchanged.
fn second_file(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let relabel = |line: &str, label: &str| {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["esci_label"] = label.into();
        v.to_string()
    };
    let mut new_pair: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    new_pair["product_id"] = "B000NEWPAIR".into();
    new_pair["title"] = "A tab\there, a backslash \\ and a\nnewline".into();
    let file = dir.join("second.jsonl");
    let rows = [
        relabel(lines[0], "I"),
        relabel(lines[0], "S"),
        new_pair.to_string(),
        lines[9].to_string(),
    ];
    std::fs::write(&file, rows.join("\n") + "\n").unwrap();
    file
}

#[test]
fn init_import_and_stats_on_postgres_equal_sqlite_s() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A password in the URL (the server trusts local users and ignores it) never shows.
    let url = pg.url("team").replace("workbench@", "workbench:hunter2@");
    let url = Path::new(&url);
    let file = d.join("wb.db");
    let second = second_file(d);
    let fixture = fixture();
    for db in [&file as &Path, url] {
        let created = ok(d, db, &["init"]);
        assert!(created.contains("created"), "{created}");
        assert!(!created.contains("hunter2"), "{created}");
        let checked = ok(d, db, &["init"]);
        assert!(checked.contains("checked"), "{checked}");
        let first = ok(d, db, &["import", fixture.to_str().unwrap()]);
        assert!(first.contains("200 new pairs"), "{first}");
        let again = ok(d, db, &["import", fixture.to_str().unwrap()]);
        assert!(
            again.contains(" 0 new pairs"),
            "importing twice adds nothing: {again}"
        );
        let more = ok(d, db, &["import", second.to_str().unwrap()]);
        assert!(more.contains(" 1 new pairs"), "{more}");
    }
    let on_pg = stats(d, url);
    assert!(!on_pg.to_string().contains("hunter2"), "{on_pg}");
    assert!(
        on_pg["database"]
            .as_str()
            .unwrap()
            .starts_with("postgres://workbench@")
    );
    assert_eq!(
        without_database(on_pg),
        without_database(stats(d, &file)),
        "stats on PostgreSQL and SQLite"
    );
    let (lite, post) = (sqlite_pairs(&file), postgres_pairs(&pg, "team"));
    assert_eq!(lite.len(), 201);
    assert_eq!(post, lite, "the same pairs, ids, labels and splits");
    assert_eq!(
        lite[0].trim_end(),
        "1 73232 B07N6VYKD3 S",
        "the last label a file gives"
    );
    let title = pg.psql(
        "team",
        "SELECT title FROM items WHERE ext_id = 'B000NEWPAIR'",
    );
    assert_eq!(title, "A tab\there, a backslash \\ and a\nnewline\n");
    // The first import set the pairs' and items' indexes and keys aside and built them again:
    // the tables end as a database that never imported has them.
    ok(d, Path::new(&pg.url("fresh")), &["init"]);
    let shape = pg.psql("team", SHAPE);
    assert_eq!(shape, pg.psql("fresh", SHAPE));
    assert!(
        shape.contains("pairs_by_confidence")
            && shape.contains("FOREIGN KEY")
            && shape.contains("items_ext_id_key UNIQUE"),
        "{shape}"
    );
}

/// The indexes and constraints of the tables a first import sets aside while it runs.
const SHAPE: &str = "SELECT indexdef FROM pg_indexes WHERE tablename IN ('pairs', 'items') \
     UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
     WHERE conrelid IN ('pairs'::regclass, 'items'::regclass) ORDER BY 1";

/// An import into an empty project sets the tables' keys and indexes aside while it runs:
/// stopped by a bad row or killed at any moment, it leaves no row and the tables as they were;
/// run again, it stores the whole file once, numbered from 1.
#[test]
fn a_failed_or_killed_first_import_on_postgres_leaves_nothing_and_runs_again() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, Path::new(&pg.url("fresh")), &["init"]);
    let shape = pg.psql("fresh", SHAPE);
    let url = pg.url("killed");
    let db = Path::new(&url);
    ok(d, db, &["init"]);
    const COUNTS: &str = "SELECT (SELECT count(*) FROM queries) || ' ' || \
         (SELECT count(*) FROM items) || ' ' || (SELECT count(*) FROM pairs)";
    let dev = common::dev_file();
    let dev_text = std::fs::read_to_string(&dev).unwrap();
    // More rows than one round sends to the server before the bad one.
    let mut text = String::new();
    for copy in 0..11 {
        for line in dev_text.lines() {
            let mut row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["product_id"] = format!("{}-{copy}", row["product_id"].as_str().unwrap()).into();
            text += &format!("{row}\n");
        }
    }
    let bad = d.join("bad.jsonl");
    std::fs::write(&bad, format!("{text}{{\"query_id\": \"q9\"}}\n")).unwrap();
    let out = workbench(d, db, &["import", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("bad.jsonl:25785"),
        "{err}"
    );
    assert_eq!(
        pg.psql("killed", COUNTS),
        "0 0 0\n",
        "a bad row stores nothing"
    );
    assert_eq!(pg.psql("killed", SHAPE), shape);
    let mut killed = 0;
    for wait in (20..=200).step_by(15) {
        let mut child = std::process::Command::new(common::bin())
            .current_dir(d)
            .arg("--db")
            .arg(db)
            .args(["import", dev.to_str().unwrap()])
            .env_remove("WORKBENCH_DB")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(wait));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
            child.kill().unwrap();
        }
        child.wait().unwrap();
        let counts = pg.psql("killed", COUNTS);
        assert!(
            counts == "0 0 0\n" || counts == "53 2344 2344\n",
            "killed after {wait} ms: {counts}"
        );
        assert_eq!(pg.psql("killed", SHAPE), shape, "killed after {wait} ms");
        if counts != "0 0 0\n" {
            break;
        }
    }
    assert!(killed > 0, "no import was killed while it ran");
    ok(d, db, &["import", dev.to_str().unwrap()]);
    assert_eq!(
        pg.psql("killed", "SELECT count(*) || ' ' || max(id) FROM pairs"),
        "2344 2344\n"
    );
    assert_eq!(pg.psql("killed", SHAPE), shape);
}

/// A first import into an empty project takes another road on PostgreSQL (ids handed out by
/// the client, rows copied straight into their tables): a file that names pairs twice, relabels
/// them and carries text COPY escapes gives what SQLite gives, and the imports after it go on
/// with the next ids.
#[test]
fn a_first_import_with_repeated_pairs_on_postgres_equals_sqlite_s() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let second = std::fs::read_to_string(second_file(d)).unwrap();
    let fixture_text = std::fs::read_to_string(fixture()).unwrap();
    // The fixture, then the second file's rows: the fixture's first pair relabelled twice (the
    // last label wins), its tenth row again, a new pair with a tab, a backslash and a newline.
    let first = d.join("first.jsonl");
    std::fs::write(&first, format!("{fixture_text}{second}")).unwrap();
    let mut new_query: serde_json::Value =
        serde_json::from_str(fixture_text.lines().next().unwrap()).unwrap();
    new_query["query_id"] = "QNEW".into();
    new_query["product_id"] = "B000NEWITEM".into();
    let third = d.join("third.jsonl");
    std::fs::write(&third, format!("{new_query}\n")).unwrap();
    let file = d.join("wb.db");
    let url = pg.url("first");
    let url = Path::new(&url);
    for db in [&file as &Path, url] {
        imported(d, db, &first);
        let more = ok(d, db, &["import", third.to_str().unwrap()]);
        assert!(more.contains(" 1 new pairs"), "{more}");
    }
    let (lite, post) = (sqlite_pairs(&file), postgres_pairs(&pg, "first"));
    assert_eq!(lite.len(), 202);
    assert_eq!(post, lite, "the same pairs, ids, labels and splits");
    assert_eq!(
        lite[0].trim_end(),
        "1 73232 B07N6VYKD3 S",
        "the last label a file gives"
    );
    let same = |sql: &str| {
        let lite: Vec<String> = query_rows::<(i64, String, String)>(&file, sql)
            .into_iter()
            .map(|(id, ext, text)| format!("{id} {ext} {text}"))
            .collect();
        let post = pg.psql(
            "first",
            &format!("SELECT id || ' ' || ext_id || ' ' || t FROM ({sql}) x(id, ext_id, t)"),
        );
        assert_eq!(
            post,
            lite.iter().map(|l| format!("{l}\n")).collect::<String>(),
            "{sql}"
        );
    };
    same("SELECT id, ext_id, text FROM queries ORDER BY id");
    same("SELECT id, ext_id, title || '|' || brand || '|' || attributes FROM items ORDER BY id");
    assert_eq!(
        without_database(stats(d, url)),
        without_database(stats(d, &file))
    );
}

#[test]
fn the_postgres_schema_has_sqlite_s_tables_and_columns() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("wb.db");
    let url = pg.url("schema");
    ok(d, &file, &["init"]);
    ok(d, Path::new(&url), &["init"]);
    let mut lite: Vec<String> = query_rows::<(String, String)>(
        &file,
        "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .into_iter()
    .map(|(t, c)| format!("{t}.{c}"))
    .collect();
    let mut post: Vec<String> = pg
        .psql(
            "schema",
            "SELECT table_name || '.' || column_name FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
        )
        .lines()
        .map(str::to_string)
        .collect();
    // Full-text search is each backend's own: SQLite's FTS5 table, PostgreSQL's tsvector table.
    let fts: Vec<String> = lite
        .iter()
        .filter(|c| c.starts_with("items_fts"))
        .cloned()
        .collect();
    assert!(!fts.is_empty(), "SQLite has its FTS5 table");
    lite.retain(|c| !c.starts_with("items_fts"));
    assert!(post.contains(&"items_search.search".to_string()));
    post.retain(|c| !c.starts_with("items_search."));
    lite.sort();
    post.sort();
    assert_eq!(post, lite);
    let versions = pg.psql("schema", "SELECT max(version) FROM _sqlx_migrations");
    let lite_version: Vec<(i64,)> = query_rows(&file, "SELECT max(version) FROM _sqlx_migrations");
    assert_eq!(versions.trim(), lite_version[0].0.to_string());
}

#[test]
fn a_postgres_database_from_a_newer_workbench_is_refused_untouched() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("future");
    let db = Path::new(&url);
    imported(d, db, &fixture());
    pg.psql(
        "future",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', true, '\\x00', 0)",
    );
    let before = pg.psql(
        "future",
        "SELECT (SELECT count(*) FROM _sqlx_migrations) || ' ' || (SELECT count(*) FROM pairs)",
    );
    for args in [&["stats"][..], &["import", fixture().to_str().unwrap()]] {
        let out = workbench(d, db, args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("newer workbench") && err.contains("9999"),
            "{args:?}: {err}"
        );
    }
    let after = pg.psql(
        "future",
        "SELECT (SELECT count(*) FROM _sqlx_migrations) || ' ' || (SELECT count(*) FROM pairs)",
    );
    assert_eq!(before, after);
}

#[test]
fn a_missing_postgres_database_gets_a_clear_error() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("nowhere");
    let out = workbench(d, Path::new(&url), &["stats"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no workbench database here") && err.contains("workbench init"),
        "{err}"
    );
}

/// The first `n` fixture pairs as `QUERY_ID PRODUCT_ID`.
fn first_keys(n: usize) -> Vec<(String, String)> {
    std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["query_id"].as_str().unwrap().to_string(),
                v["product_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// What the teacher said about a pair, as `show --json` prints it, without what depends on the
/// moment: when it was said, how long it took, and its id (judgments are stored as they finish).
fn judged(d: &Path, db: &Path, (q, p): &(String, String)) -> Vec<serde_json::Value> {
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, db, &["show", q, p, "--json"])).unwrap();
    shown["judgments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let mut j = j.clone();
            let o = j.as_object_mut().unwrap();
            o.remove("created_at");
            o.remove("elapsed_ms");
            o.remove("id");
            j
        })
        .collect()
}

/// The real teacher (SmolLM2 through mistral.rs) judges the same pairs the same way whichever
/// store keeps its judgments, and `show` reads them back alike.
#[test]
fn teach_and_show_on_postgres_equal_sqlite_s() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("teach");
    let file = d.join("wb.db");
    for db in [&file as &Path, Path::new(&url)] {
        imported(d, db, &fixture());
        let out = common::teach_score(d, db, 4);
        assert!(out.contains("judged 4 of 4"), "{out}");
    }
    for key in first_keys(4) {
        let lite = judged(d, &file, &key);
        assert_eq!(lite.len(), 1, "{key:?}");
        assert_eq!(judged(d, Path::new(&url), &key), lite, "{key:?}");
    }
    let on_pg = stats(d, Path::new(&url));
    assert_eq!(on_pg["judged"], 4);
    assert_eq!(
        without_database(on_pg)["teacher_labels"],
        without_database(stats(d, &file))["teacher_labels"]
    );
}

/// A teach run on PostgreSQL killed mid-run keeps every judgment it finished, once, and the next
/// run goes on from there.
#[test]
fn a_killed_teach_on_postgres_resumes_without_duplicates() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("killed");
    let db = Path::new(&url);
    imported(d, db, &fixture());
    let model = common::teacher_model();
    let mut child = std::process::Command::new(common::bin())
        .current_dir(d)
        .args(["--db", &url, "teach", "--mode", "score", "--model"])
        .arg(&model)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let count = || -> i64 {
        pg.psql("killed", "SELECT count(*) FROM judgments")
            .trim()
            .parse()
            .unwrap()
    };
    let started = std::time::Instant::now();
    while count() < 3 {
        assert!(
            started.elapsed().as_secs() < 300,
            "no judgment stored in 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = count();
    assert!(before < 200, "killed mid-run");
    let twice = pg.psql(
        "killed",
        "SELECT count(*) FROM (SELECT pair_id FROM judgments GROUP BY pair_id HAVING count(*) > 1) t",
    );
    assert_eq!(twice.trim(), "0");
    let out = common::teach_score(d, db, 3);
    assert!(out.contains("judged 3 of 3"), "{out}");
    assert_eq!(count(), before + 3, "the next run judges only new pairs");
    let consistent = pg.psql(
        "killed",
        "SELECT count(*) FROM pairs p WHERE p.judgment_id IS DISTINCT FROM \
         (SELECT max(id) FROM judgments j WHERE j.pair_id = p.id)",
    );
    assert_eq!(consistent.trim(), "0", "each pair names its judgment");
}

/// Three `teach` processes against one PostgreSQL database, as on three machines: one is killed
/// while it holds claims on pairs it has not judged; the other two judge everything else, take
/// the dead one's pairs once its leases lapse, and every pair ends with exactly one judgment.
#[test]
fn three_teach_processes_share_the_pairs_and_take_over_a_killed_one_s() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("shared");
    let db = Path::new(&url);
    let pairs = 24;
    imported(d, db, &common::fixture_subset(d, pairs));
    let model = common::teacher_model();
    let start = || {
        std::process::Command::new(common::bin())
            .current_dir(d)
            .args(["--db", &url, "teach", "--mode", "score", "--workers", "1"])
            .args(["--lease", "8", "--model"])
            .arg(&model)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut doomed = start();
    let others = [start(), start()];
    // The doomed process's claims on pairs nobody has judged yet.
    let held = |pid: u32| -> Vec<String> {
        pg.psql(
            "shared",
            &format!(
                "SELECT pair_id FROM teach_leases l WHERE owner LIKE '%:{pid}' AND NOT EXISTS \
                 (SELECT 1 FROM judgments j WHERE j.pair_id = l.pair_id) ORDER BY pair_id"
            ),
        )
        .lines()
        .map(str::to_string)
        .collect()
    };
    let started = std::time::Instant::now();
    let taken = loop {
        let h = held(doomed.id());
        if !h.is_empty() {
            break h;
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "the process never claimed a pair"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let doomed_pid = doomed.id();
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    // Its claims live on until they lapse: `stats` shows it among the processes at work.
    let live = stats(d, db)["teach_processes"].clone();
    let owners: Vec<&str> = live
        .as_array()
        .unwrap_or_else(|| panic!("no teach processes in stats: {live}"))
        .iter()
        .map(|t| t["owner"].as_str().unwrap())
        .collect();
    assert!(
        owners
            .iter()
            .any(|o| o.ends_with(&format!(":{doomed_pid}"))),
        "{live}"
    );
    let mut by_survivors = 0;
    for child in others {
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let judged: usize = said
            .split("judged ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {said:?}"));
        by_survivors += judged;
    }
    let counts = pg.psql(
        "shared",
        "SELECT count(*) || ' ' || count(DISTINCT pair_id) FROM judgments",
    );
    assert_eq!(
        counts.trim(),
        format!("{pairs} {pairs}"),
        "every pair judged once"
    );
    for id in &taken {
        let n = pg.psql(
            "shared",
            &format!("SELECT count(*) FROM judgments WHERE pair_id = {id}"),
        );
        assert_eq!(n.trim(), "1", "pair {id}, claimed by the killed process");
    }
    // No pair was judged by two processes: what the survivors say they judged and what the
    // killed one stored (its run never finished) add up to the pairs, once each.
    let by_doomed: usize = pg
        .psql(
            "shared",
            "SELECT count(*) FROM judgments j JOIN teacher_runs r ON r.id = j.run_id \
             WHERE r.finished_at IS NULL",
        )
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        by_survivors + by_doomed,
        pairs,
        "{by_survivors} + {by_doomed}"
    );
    let kept = pg.psql(
        "shared",
        &format!("SELECT count(*) FROM teach_leases WHERE owner NOT LIKE '%:{doomed_pid}'"),
    );
    assert_eq!(kept.trim(), "0", "a finished process releases its claims");
}

/// `teach --workers 2` on PostgreSQL: the parent claims the pairs it hands its workers, so a
/// pair another live process holds is left to it, and taken only once that claim lapses; every
/// pair is judged once and the claims are released at the end.
#[test]
fn a_teach_pool_on_postgres_claims_what_it_hands_out() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("pool");
    let db = Path::new(&url);
    imported(d, db, &common::fixture_subset(d, 8));
    // The first pair judged, for the run's model and prompt; then "another machine" holds a
    // claim on the second for a few seconds.
    common::teach_score(d, db, 1);
    let lapses = pg.psql(
        "pool",
        "INSERT INTO teach_leases SELECT 2, model, prompt_hash, mode, 'elsewhere:1', \
         to_char(clock_timestamp() AT TIME ZONE 'UTC' + interval '8 seconds', \
         'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM judgments \
         RETURNING expires_at",
    );
    let model = common::teacher_model();
    let out = ok(
        d,
        db,
        &[
            "teach",
            "--mode",
            "score",
            "--workers",
            "2",
            "--model",
            model.to_str().unwrap(),
        ],
    );
    assert!(out.contains("judged 7 of 7"), "{out}");
    let counts = pg.psql(
        "pool",
        "SELECT count(*) || ' ' || count(DISTINCT pair_id) || ' ' || \
         (SELECT count(*) FROM teach_leases WHERE owner <> 'elsewhere:1') FROM judgments",
    );
    assert_eq!(counts.trim(), "8 8 0");
    assert!(lapses.trim().ends_with('Z'), "{lapses:?}");
    let judged_at = pg.psql("pool", "SELECT created_at FROM judgments WHERE pair_id = 2");
    assert!(
        judged_at.trim() >= lapses.trim(),
        "the claimed pair waits for its claim to lapse: judged {judged_at}, claim lapsed {lapses}"
    );
}

/// Database `team` with the fixture imported by the owner, and two annotators' login roles,
/// alice and bob; its owner's URL.
fn team_of_two(pg: &Postgres, d: &Path) -> String {
    let url = pg.url("team");
    imported(d, Path::new(&url), &fixture());
    pg.psql("team", "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN");
    url
}

/// On PostgreSQL the annotator is the database role: a role other than the owner appends
/// annotations in its own name only (whatever name it gives), undoes only its own, and can
/// neither rewrite nor delete an annotation nor touch the schema; the owner's tables are read by
/// all. Through the store as the review app calls it, and through psql as a role trying more.
#[test]
fn an_annotator_role_appends_in_its_own_name_only() {
    use workbench::domain::review::Change;
    use workbench::store::Store;
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    team_of_two(&pg, d);
    let label = |after: &str| Change::SetLabel {
        before: None,
        after: after.into(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (alices, bobs) = rt.block_on(async {
        let alice = Store::open(Path::new(&pg.url_as("alice", "team")))
            .await
            .unwrap();
        assert_eq!(alice.db_role().await.unwrap().as_deref(), Some("alice"));
        // The name given is not the name saved.
        let alices = alice.annotate(1, None, "bob", &label("E")).await.unwrap();
        let bob = Store::open(Path::new(&pg.url_as("bob", "team")))
            .await
            .unwrap();
        let bobs = bob.annotate(2, None, "bob", &label("S")).await.unwrap();
        let err = bob
            .annotate(1, None, "bob", &Change::Undo { target: alices })
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("row-level security"),
            "bob undid alice's change: {err:#}"
        );
        // Her own undo goes through, and leaves the pair unreviewed again.
        alice
            .annotate(1, None, "alice", &Change::Undo { target: alices })
            .await
            .unwrap();
        (alices, bobs)
    });
    assert_eq!(
        pg.psql(
            "team",
            "SELECT pair_id || ' ' || annotator || ' ' || action FROM annotations ORDER BY id"
        ),
        "1 alice set_label\n2 bob set_label\n1 alice undo\n"
    );
    assert_eq!(
        pg.psql("team", "SELECT id FROM pairs WHERE reviewed = 1"),
        "2\n"
    );
    let as_alice = |sql: &str| pg.psql_as("alice", "team", sql);
    let refused = |sql: &str, why: &str| {
        let err = as_alice(sql).expect_err(sql);
        assert!(err.contains(why), "{sql}: {err}");
    };
    refused(
        "INSERT INTO annotations (pair_id, annotator, action, after) VALUES (3, 'bob', 'accept', '\"accept\"')",
        "row-level security",
    );
    refused(
        &format!("DELETE FROM annotations WHERE id = {bobs}"),
        "permission denied",
    );
    refused(
        &format!("DELETE FROM annotations WHERE id = {alices}"),
        "permission denied",
    );
    refused(
        "UPDATE annotations SET annotator = 'alice'",
        "permission denied",
    );
    refused("DELETE FROM pairs", "permission denied");
    refused("UPDATE pairs SET gold_label = 'I'", "permission denied");
    refused("DROP TABLE judgments", "must be owner");
    refused(
        "ALTER TABLE annotations DISABLE ROW LEVEL SECURITY",
        "must be owner",
    );
    // She reads everything.
    assert_eq!(as_alice("SELECT count(*) FROM pairs").unwrap(), "200\n");
    assert_eq!(as_alice("SELECT count(*) FROM annotations").unwrap(), "3\n");
    // The review app will not save her changes under another name.
    let out = workbench(
        d,
        Path::new(&pg.url_as("alice", "team")),
        &["review", "--annotator", "bob"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the annotator is the database role") && err.contains("`alice`"),
        "{err}"
    );
}

/// Two annotators' review apps (the real binary in tmux) on one PostgreSQL database while the
/// real teacher judges pairs into it: each labels a different pair, both changes are stored in
/// their names, and each app's queue shows both within its refresh interval.
#[test]
fn two_review_apps_and_a_teach_share_one_postgres_database() {
    use common::{tmux, wait_for_pane};
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = team_of_two(&pg, d);
    let mut teach = common::spawn_teach_score(d, Path::new(&url), 12);
    let sessions: Vec<String> = ["alice", "bob"]
        .iter()
        .map(|who| {
            let name = format!("wb-pg-{who}-{}", std::process::id());
            let cmd = format!(
                "NO_COLOR=1 {} --db '{}' review --annotator {who}",
                common::bin().display(),
                pg.url_as(who, "team")
            );
            tmux(&[
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "32",
                &cmd,
            ]);
            wait_for_pane(&name, "queue · all · 200 pairs", 20);
            name
        })
        .collect();
    let keys = |name: &str, k: &[&str]| {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(k);
        tmux(&args);
    };
    // Alice labels the first pair Exact, Bob the third Irrelevant, while teach writes.
    keys(&sessions[0], &["Enter"]);
    wait_for_pane(&sessions[0], "reviewed 0/200", 10);
    keys(&sessions[0], &["1"]);
    wait_for_pane(&sessions[0], "reviewed 1/200", 10);
    keys(&sessions[0], &["Escape"]);
    keys(&sessions[1], &["j", "j", "Enter"]);
    keys(&sessions[1], &["4"]);
    // Each queue refreshes on its own and shows the other's change too.
    keys(&sessions[1], &["Escape"]);
    for name in &sessions {
        wait_for_pane(name, "reviewed 2/200", 20);
    }
    let status = teach.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut teach.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "teach failed: {err}");
    for name in &sessions {
        keys(name, &["q"]);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    for name in &sessions {
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", name])
            .output();
    }
    assert_eq!(
        pg.psql(
            "team",
            "SELECT pair_id || ' ' || annotator || ' ' || action || ' ' || (after::json->>'after') \
             FROM annotations ORDER BY pair_id"
        ),
        "1 alice set_label E\n3 bob set_label I\n"
    );
    assert_eq!(pg.psql("team", "SELECT count(*) FROM judgments"), "12\n");
}

/// The same judgments and annotations on both backends: every filter in every order pages
/// through the same rows by keyset, forwards and back, with the same sort keys; searches and
/// counts agree. What the review app reads on PostgreSQL is what it reads on SQLite.
#[test]
fn the_review_queue_on_postgres_pages_as_on_sqlite() {
    use workbench::domain::review::Change;
    use workbench::domain::{DistSource, Judgment, Mode, ScoreDist};
    use workbench::store::{Cursor, NewJudgment, QueueFilter, QueueScope, QueueSort, Store};
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("queue");
    let file = d.join("wb.db");
    let labels = ["E", "S", "C", "I"];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut seen = Vec::new();
    for db in [&file as &Path, Path::new(&url)] {
        imported(d, db, &fixture());
        let rows = rt.block_on(async {
            let store = Store::open(db).await.unwrap();
            // 90 judged pairs: labels, confidences (with ties) and a few unparsed outputs.
            for pair_id in 1..=90i64 {
                let top = 0.3 + 0.05 * (pair_id % 9) as f64;
                let label = labels[(pair_id % 4) as usize];
                let mut probs = vec![(1.0 - top) / 3.0; 4];
                probs[(pair_id % 4) as usize] = top;
                let error = (pair_id % 17 == 0).then(|| "no JSON object".to_string());
                let judgment = NewJudgment {
                    pair_id,
                    run_id: None,
                    model: "hand-written".into(),
                    prompt_hash: "test".into(),
                    mode: Mode::Score,
                    judgment: Judgment {
                        label: error.is_none().then(|| label.to_string()),
                        distribution: ScoreDist { probs },
                        dist_source: DistSource::Logprobs,
                        raw_output: "{".into(),
                        parse_error: error,
                        ..Default::default()
                    },
                };
                store.save_judgment(&judgment).await.unwrap();
            }
            for (pair_id, change) in [
                (3, Change::Accept),
                (
                    5,
                    Change::SetLabel {
                        before: Some("S".into()),
                        after: "I".into(),
                    },
                ),
                (140, Change::Reject),
            ] {
                store.annotate(pair_id, None, "ana", &change).await.unwrap();
            }
            store.refresh_item_index().await.unwrap();
            let mut rows = Vec::new();
            let searches = [None, Some("newborn"), Some("fleece jacket"), Some("zzzz")];
            for filter in QueueFilter::ALL {
                for sort in QueueSort::ALL {
                    for search in searches {
                        let scope = QueueScope {
                            search: search.map(str::to_string),
                            ..Default::default()
                        };
                        let (mut forward, mut from) = (Vec::new(), Cursor::START);
                        loop {
                            let page = store
                                .queue_page(filter, sort, from, false, 7, &scope)
                                .await
                                .unwrap();
                            let Some(last) = page.last() else { break };
                            from = Cursor::at(last, false);
                            forward.extend(page);
                        }
                        let (mut back, mut from) = (Vec::new(), Cursor::END);
                        loop {
                            let page = store
                                .queue_page(filter, sort, from, true, 7, &scope)
                                .await
                                .unwrap();
                            let Some(first) = page.first() else { break };
                            from = Cursor::at(first, false);
                            back.splice(0..0, page);
                        }
                        assert_eq!(forward, back, "{filter:?} {sort:?} {search:?}");
                        let counts = store.queue_counts(filter, &scope).await.unwrap();
                        assert_eq!(counts.0 as usize, forward.len());
                        rows.push((filter, sort, search, counts, forward));
                    }
                }
            }
            store.close().await;
            rows
        });
        seen.push(rows);
    }
    let (lite, on_pg) = (&seen[0], &seen[1]);
    assert_eq!(lite.len(), on_pg.len());
    for (a, b) in lite.iter().zip(on_pg) {
        assert_eq!(a, b, "{:?} {:?} {:?}", a.0, a.1, a.2);
    }
    let count = |f, s, q: Option<&str>| {
        lite.iter()
            .find(|r| r.0 == f && r.1 == s && r.2 == q)
            .unwrap()
            .4
            .len()
    };
    // The comparisons mean something: filters and searches narrow the queue.
    assert_eq!(count(QueueFilter::All, QueueSort::Pair, None), 200);
    assert_eq!(
        count(QueueFilter::ParseError, QueueSort::Confidence, None),
        5
    );
    assert_eq!(count(QueueFilter::Unreviewed, QueueSort::Query, None), 197);
    assert!(count(QueueFilter::All, QueueSort::Pair, Some("newborn")) > 0);
    assert!(count(QueueFilter::All, QueueSort::Pair, Some("fleece jacket")) > 0);
    assert_eq!(count(QueueFilter::All, QueueSort::Pair, Some("zzzz")), 0);
}

/// Every file of every export format, from the same data (the real teacher's judgments and
/// annotations) on each backend with the same seed, byte for byte the same; the manifest differs
/// only where it names the database and the command.
#[test]
fn export_on_postgres_is_byte_identical_to_sqlite_s() {
    use workbench::domain::review::Change;
    use workbench::store::Store;
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("export");
    let file = d.join("wb.db");
    const WHEN: &str = "UPDATE annotations SET created_at = '2026-12-01T09:00:00.000Z'";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut outs = Vec::new();
    for (n, db) in [&file as &Path, Path::new(&url)].into_iter().enumerate() {
        imported(d, db, &fixture());
        let taught = common::teach_score(d, db, 6);
        assert!(taught.contains("judged 6 of 6"), "{taught}");
        rt.block_on(async {
            let store = Store::open(db).await.unwrap();
            for (pair_id, change) in [
                (
                    1,
                    Change::SetLabel {
                        before: None,
                        after: "I".into(),
                    },
                ),
                (2, Change::Accept),
                (
                    3,
                    Change::Note {
                        text: "tab\there, \"quoted\", ünïcode".into(),
                    },
                ),
                (150, Change::Reject),
            ] {
                store
                    .annotate(pair_id, None, "workbench", &change)
                    .await
                    .unwrap();
            }
            if let Ok(pool) = store.sqlite() {
                sqlx::query(WHEN).execute(pool).await.unwrap();
            }
            store.close().await;
        });
        if n == 1 {
            pg.psql("export", WHEN);
        }
        let out = d.join(format!("out{n}"));
        ok(
            d,
            db,
            &[
                "export",
                "--out",
                out.to_str().unwrap(),
                "--format",
                "all",
                "--seed",
                "7",
            ],
        );
        outs.push(out);
    }
    let files = |root: &Path| {
        let mut v: Vec<std::path::PathBuf> = walk(root)
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        v.sort();
        v
    };
    let (lite, on_pg) = (files(&outs[0]), files(&outs[1]));
    assert_eq!(lite, on_pg);
    assert!(lite.len() > 10, "{lite:?}");
    for f in &lite {
        let (a, b) = (
            std::fs::read(outs[0].join(f)).unwrap(),
            std::fs::read(outs[1].join(f)).unwrap(),
        );
        if f == Path::new("manifest.json") {
            let strip = |bytes: &[u8]| {
                let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                let o = v.as_object_mut().unwrap();
                o.remove("source_database");
                o.remove("command");
                v
            };
            let (a, b) = (strip(&a), strip(&b));
            assert_eq!(a, b);
            assert_eq!(a["human_corrected"], 4, "{a}");
        } else {
            assert!(a == b, "{} differs", f.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The rest of the loop on PostgreSQL, beside SQLite on the same data: the real teacher's CoT
/// judgments, a student trained on them and the gold labels (real MiniLM weights), its scores,
/// an imported student, `compare`, `audit`, `metrics` and `check` say the same on both; `augment`
/// adds pairs on both.
#[test]
fn student_audit_metrics_and_check_on_postgres_equal_sqlite_s() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = pg.url("loop");
    let file = d.join("wb.db");
    let subset = common::fixture_subset(d, 24);
    let base = common::root().join("models/student-base");
    let preds = d.join("preds.jsonl");
    std::fs::write(
        &preds,
        "{\"query_id\": \"73232\", \"product_id\": \"B07N6VYKD3\", \"score\": 0.2}\n",
    )
    .unwrap();
    // The teacher judges once, in the file, which is then copied: what follows reads the same
    // judgments on both backends (teaching on PostgreSQL has tests of its own).
    imported(d, &file, &subset);
    let model = common::teacher_model();
    ok(
        d,
        &file,
        &["teach", "--limit", "2", "--model", model.to_str().unwrap()],
    );
    ok(
        d,
        &file,
        &["db", "copy", "--from", file.to_str().unwrap(), "--to", &url],
    );
    let mut said = Vec::new();
    for db in [&file as &Path, Path::new(&url)] {
        let out = d.join(if db == file { "lite" } else { "pg" }).join("st");
        ok(
            d,
            db,
            &[
                "student",
                "train",
                "--kind",
                "cross",
                "--encoder",
                "fine-tune",
                "--out",
                out.to_str().unwrap(),
                "--epochs",
                "1",
                "--split",
                "by-query:60/20/20",
                "--batch-size",
                "8",
                "--max-tokens",
                "32",
                "--base",
                base.to_str().unwrap(),
            ],
        );
        let name = out.file_name().unwrap().to_str().unwrap().to_string();
        let scored = ok(d, db, &["student", "score", "--name", &name]);
        assert!(scored.contains("scored 24 pairs"), "{scored}");
        let text = ok(
            d,
            db,
            &[
                "student",
                "import",
                preds.to_str().unwrap(),
                "--name",
                "external",
            ],
        );
        assert!(text.contains("1 predictions"), "{text}");
        let compare: serde_json::Value =
            serde_json::from_str(&ok(d, db, &["compare", "--student", &name, "--json"])).unwrap();
        let audit = ok(d, db, &["audit"]);
        assert!(audit.contains("finding"), "{audit}");
        let metrics: serde_json::Value =
            serde_json::from_str(&ok(d, db, &["metrics", "--json"])).unwrap();
        let check: serde_json::Value =
            serde_json::from_str(&ok(d, db, &["check", "--json"])).unwrap();
        let augmented = ok(d, db, &["augment"]);
        assert!(augmented.contains("random"), "{augmented}");
        said.push((compare, audit, metrics, check));
    }
    let (lite, on_pg) = (&said[0], &said[1]);
    assert_close(&lite.0, &on_pg.0, "compare");
    assert_eq!(lite.1, on_pg.1, "audit");
    assert_close(&lite.2, &on_pg.2, "metrics");
    assert_eq!(lite.3, on_pg.3, "check");
}

/// The same JSON, numbers to 1e-6: a network's scores computed twice agree to float precision,
/// not always to the last digit.
fn assert_close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() < 1e-6, "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, x) in x {
                assert_close(x, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// `db copy` moves a project from a SQLite file to PostgreSQL and back: every table with its
/// rows and ids (the same counts and hashes at each hop), the copy works as the original
/// (stats, export, teaching on), a non-empty destination is refused untouched, and every table of
/// either schema is either copied or named as left out on purpose.
#[test]
fn db_copy_moves_a_project_to_postgres_and_back() {
    use workbench::domain::review::Change;
    use workbench::store::Store;
    use workbench::store::copy::{COPIED, NOT_COPIED};
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("wb.db");
    imported(d, &file, &fixture());
    let taught = common::teach_score(d, &file, 3);
    assert!(taught.contains("judged 3 of 3"), "{taught}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&file).await.unwrap();
        let first = store
            .annotate(1, None, "ana", &Change::Accept)
            .await
            .unwrap();
        store
            .annotate(1, None, "ana", &Change::Undo { target: first })
            .await
            .unwrap();
        store
            .annotate(
                7,
                None,
                "bo",
                &Change::Note {
                    text: "ünïcode\tand a tab".into(),
                },
            )
            .await
            .unwrap();
        store.close().await;
    });
    let preds = d.join("preds.jsonl");
    std::fs::write(
        &preds,
        "{\"query_id\": \"73232\", \"product_id\": \"B07N6VYKD3\", \"score\": 0.25}\n",
    )
    .unwrap();
    ok(
        d,
        &file,
        &["student", "import", preds.to_str().unwrap(), "--name", "x"],
    );
    ok(d, &file, &["audit"]);

    let url = pg.url("copied");
    let copy = |from: &str, to: &str| -> serde_json::Value {
        let out = std::process::Command::new(common::bin())
            .current_dir(d)
            .args(["db", "copy", "--from", from, "--to", to, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let there = copy(file.to_str().unwrap(), &url);
    let back_file = d.join("back.db");
    let back = copy(&url, back_file.to_str().unwrap());
    assert_eq!(there, back, "the same rows at each hop");
    let rows = |t: &str| {
        there
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["table"] == t)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("pairs"), 200);
    assert_eq!(rows("judgments"), 3);
    assert_eq!(rows("annotations"), 3);
    assert_eq!(rows("student_scores"), 1);
    assert!(rows("audit_findings") > 0);

    // The copies work as the original: the same stats, the same export, teaching goes on with
    // new ids after the copied ones.
    let lite = without_database(stats(d, &file));
    assert_eq!(without_database(stats(d, Path::new(&url))), lite);
    assert_eq!(without_database(stats(d, &back_file)), lite);
    for (name, db) in [("a", &file as &Path), ("b", &back_file)] {
        ok(
            d,
            db,
            &[
                "export",
                "--out",
                d.join(name).to_str().unwrap(),
                "--seed",
                "3",
            ],
        );
    }
    for f in [
        "train/cot.jsonl",
        "test/soft_labels.jsonl",
        "dev/margin_mse.jsonl",
    ] {
        assert_eq!(
            std::fs::read(d.join("a").join(f)).unwrap(),
            std::fs::read(d.join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    let taught = common::teach_score(d, Path::new(&url), 1);
    assert!(taught.contains("judged 1 of 1"), "{taught}");
    assert_eq!(pg.psql("copied", "SELECT max(id) FROM judgments"), "4\n");

    // Into a database that holds a project: refused, nothing written.
    let out = workbench(
        d,
        Path::new(&url),
        &["db", "copy", "--from", file.to_str().unwrap(), "--to", &url],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already holds a project"), "{err}");
    assert_eq!(pg.psql("copied", "SELECT count(*) FROM pairs"), "200\n");

    // A new table in either schema must be copied or left out on purpose.
    let known: std::collections::BTreeSet<&str> =
        COPIED.iter().chain(NOT_COPIED.iter()).copied().collect();
    let on_pg = pg.psql(
        "copied",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    );
    let lite_tables: Vec<(String,)> = common::query_rows(
        &file,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    );
    for t in on_pg
        .lines()
        .map(str::to_string)
        .chain(lite_tables.into_iter().map(|t| t.0))
    {
        assert!(
            known.contains(t.as_str()),
            "table {t} is neither copied nor left out"
        );
    }
}
