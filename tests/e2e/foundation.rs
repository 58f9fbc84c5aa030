//! The foundation end to end: the real binary on a real SQLite file with the real ESCI data.

use crate::common;

use std::io::Write;
use std::path::Path;

use common::*;

#[test]
fn fixture_import_gives_200_pairs_20_queries_and_the_esci_label_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let s = stats(dir.path(), &db);
    assert_eq!(s["pairs"], 200);
    assert_eq!(s["queries"], 20);
    assert_eq!(s["labels"]["E"], 60);
    assert_eq!(s["labels"]["S"], 58);
    assert_eq!(s["labels"]["C"], 23);
    assert_eq!(s["labels"]["I"], 59);
    assert_eq!(s["origins"]["import"], 200);
    assert_eq!(s["judged"], 0);
    let table = ok(dir.path(), &db, &["stats"]);
    assert!(table.contains("200 over 20 queries"), "{table}");
}

#[test]
fn importing_dev_twice_leaves_2344_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dev.db");
    ok(dir.path(), &db, &["init"]);
    let dev = dev_file();
    let first = ok(dir.path(), &db, &["import", dev.to_str().unwrap()]);
    assert!(first.contains("2344 new pairs"), "{first}");
    let second = ok(dir.path(), &db, &["import", dev.to_str().unwrap()]);
    assert!(second.contains("0 new pairs"), "{second}");
    let s = stats(dir.path(), &db);
    assert_eq!(s["pairs"], 2344);
    assert_eq!(s["queries"], 53);
    assert_eq!(
        (s["labels"]["E"].as_i64(), s["labels"]["I"].as_i64()),
        (Some(1079), Some(356))
    );
}

/// The fixture's first `n` lines with `bad` put in at line `at` (1-based).
fn file_with_bad_line(
    dir: &std::path::Path,
    name: &str,
    n: usize,
    at: usize,
    bad: &str,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let mut lines: Vec<&str> = text.lines().take(n).collect();
    lines.insert(at - 1, bad);
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn a_broken_line_names_file_and_line_and_imports_nothing_of_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wb.db");
    ok(dir.path(), &db, &["init"]);
    let cases = [
        (
            "bad-json.jsonl",
            "{\"query_id\": \"1\", \"query\": \"oops\"",
            "bad-json.jsonl:6: row: not a JSON object",
        ),
        (
            "no-title.jsonl",
            r#"{"query_id":"9","query":"usb cable","product_id":"B1","title":"","esci_label":"E"}"#,
            "no-title.jsonl:6: title: missing or empty",
        ),
        (
            "no-query.jsonl",
            r#"{"query_id":"9","product_id":"B1","title":"A cable","esci_label":"E"}"#,
            "no-query.jsonl:6: query: missing or empty",
        ),
        (
            "bad-label.jsonl",
            r#"{"query_id":"9","query":"usb cable","product_id":"B1","title":"A cable","esci_label":"X"}"#,
            "bad-label.jsonl:6: esci_label: unknown label \"X\" for the esci scale",
        ),
    ];
    for (name, bad, expected) in cases {
        let p = file_with_bad_line(dir.path(), name, 10, 6, bad);
        let out = workbench(dir.path(), &db, &["import", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} imported");
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in:\n{err}"
        );
        assert_eq!(
            stats(dir.path(), &db)["pairs"],
            0,
            "{name} left rows behind"
        );
    }
}

#[test]
fn skip_invalid_imports_the_rest_and_writes_rejects_beside_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wb.db");
    ok(dir.path(), &db, &["init"]);
    let p = file_with_bad_line(dir.path(), "mixed.jsonl", 10, 4, "not json at all");
    let out = ok(
        dir.path(),
        &db,
        &["import", "--skip-invalid", p.to_str().unwrap()],
    );
    assert!(
        out.contains("11 rows read, 10 new pairs, 1 rejected"),
        "{out}"
    );
    let rejects = std::fs::read_to_string(dir.path().join("mixed.jsonl.rejected.jsonl")).unwrap();
    let r: serde_json::Value = serde_json::from_str(rejects.trim()).unwrap();
    assert_eq!(r["line"], 4);
    assert_eq!(r["row"], "not json at all");
    assert!(r["error"].as_str().unwrap().contains("not a JSON object"));
    assert_eq!(stats(dir.path(), &db)["pairs"], 10);
}

#[test]
fn csv_with_other_column_names_imports_through_a_map() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wb.db");
    ok(dir.path(), &db, &["init", "--scale", "wands"]);
    let csv = dir.path().join("wands.csv");
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "search_term,product_name,grade,product_class").unwrap();
    writeln!(
        f,
        "salon chair,\"Hydraulic Barber Chair, Black\",Exact,Salon Chairs"
    )
    .unwrap();
    writeln!(f, "salon chair,Folding Step Stool,Irrelevant,Stools").unwrap();
    writeln!(f, "accent table,\"Round End Table, Oak\",Partial,Tables").unwrap();
    drop(f);
    let out = ok(
        dir.path(),
        &db,
        &[
            "import",
            csv.to_str().unwrap(),
            "--map",
            "query=search_term,title=product_name,label=grade",
        ],
    );
    assert!(out.contains("3 new pairs"), "{out}");
    let s = stats(dir.path(), &db);
    assert_eq!(
        (s["pairs"].as_i64(), s["queries"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(s["labels"]["Exact"], 1);
    assert_eq!(s["labels"]["Partial"], 1);
    // An extra column is kept as an attribute, and the title stands in for a missing product id.
    let shown = ok(
        dir.path(),
        &db,
        &["show", "salon chair", "Folding Step Stool", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["pair"]["item"]["attributes"]["product_class"], "Stools");
}

#[test]
fn esci_labels_are_unknown_on_the_wands_scale() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wb.db");
    ok(dir.path(), &db, &["init", "--scale", "wands"]);
    let out = workbench(dir.path(), &db, &["import", fixture().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("esci-fixture.jsonl:1: esci_label: unknown label \"I\" for the wands scale"),
        "{err}"
    );
}

#[test]
fn a_users_scale_comes_from_toml_and_cannot_change_under_labels() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wb.db");
    let scale = dir.path().join("esci-names.toml");
    std::fs::write(
        &scale,
        "name = \"esci-names\"\n[[labels]]\nkey = \"E\"\nname = \"Exact\"\ngain = 3.0\n\
         [[labels]]\nkey = \"S\"\nname = \"Substitute\"\ngain = 2.0\n[[labels]]\nkey = \"C\"\nname = \"Complement\"\ngain = 1.0\n\
         [[labels]]\nkey = \"I\"\nname = \"Irrelevant\"\ngain = 0.0\n",
    )
    .unwrap();
    let out = ok(
        dir.path(),
        &db,
        &["init", "--scale", scale.to_str().unwrap()],
    );
    assert!(out.contains("esci-names scale"), "{out}");
    ok(dir.path(), &db, &["import", fixture().to_str().unwrap()]);
    let refused = workbench(dir.path(), &db, &["init", "--scale", "binary"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already uses the esci-names scale"));
}

#[test]
fn a_database_from_a_newer_schema_is_refused_and_left_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    // Pretend a newer workbench migrated this file, then settle it into one file.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    });
    let before = std::fs::read(&db).unwrap();
    for args in [
        &["stats"][..],
        &["import", fixture().to_str().unwrap()],
        &["init"],
    ] {
        let out = workbench(dir.path(), &db, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted a newer database");
        assert!(
            err.contains("written by a newer workbench (schema version 9999"),
            "{err}"
        );
        assert!(err.contains("it was not changed"), "{err}");
    }
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the refused database changed"
    );
}

#[test]
fn a_missing_database_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let out = workbench(dir.path(), &db, &["stats"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("create one with `workbench init"));
    assert!(!db.exists());
}

/// Writes `rows` (JSON lines) as Parquet with pyarrow, the way pandas and `datasets` do: the
/// attributes object becomes a nested struct column.
fn parquet_from_jsonl(jsonl: &Path, parquet: &Path) {
    python(
        "import sys, pyarrow.json as j, pyarrow.parquet as q; \
         q.write_table(j.read_json(sys.argv[1]), sys.argv[2])",
        &[jsonl, parquet],
    );
}

#[test]
fn parquet_imports_like_jsonl_and_a_bad_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pq = d.join("fixture.parquet");
    parquet_from_jsonl(&fixture(), &pq);
    let db = d.join("wb.db");
    ok(d, &db, &["init"]);
    ok(d, &db, &["import", pq.to_str().unwrap()]);
    let s = stats(d, &db);
    assert_eq!(
        (s["pairs"].as_u64(), s["queries"].as_u64()),
        (Some(200), Some(20))
    );
    assert_eq!(
        [
            &s["labels"]["E"],
            &s["labels"]["S"],
            &s["labels"]["C"],
            &s["labels"]["I"]
        ],
        [60, 58, 23, 59]
    );
    // The same pairs as from the JSONL file, attributes included (a struct column in Parquet).
    std::fs::create_dir(d.join("j")).unwrap();
    let from_jsonl = fixture_db(&d.join("j"));
    let dump = |db: &Path| -> Vec<(String, String, String)> {
        query_rows(
            db,
            "SELECT i.ext_id, i.title, i.attributes FROM pairs p JOIN items i ON i.id = p.item_id \
             ORDER BY i.ext_id",
        )
    };
    let (a, b) = (dump(&db), dump(&from_jsonl));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        let (xa, ya): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(&x.2).unwrap(),
            serde_json::from_str(&y.2).unwrap(),
        );
        assert_eq!(xa, ya, "attributes of {}", x.0);
    }
    // Re-importing adds nothing; a row without a title is named by its row number.
    ok(d, &db, &["import", pq.to_str().unwrap()]);
    assert_eq!(stats(d, &db)["pairs"], 200);
    let bad = file_with_bad_line(
        d,
        "no-title.jsonl",
        10,
        6,
        r#"{"query_id":"9","query":"usb cable","product_id":"B1","title":null,"esci_label":"E"}"#,
    );
    let bad_pq = d.join("no-title.parquet");
    parquet_from_jsonl(&bad, &bad_pq);
    let out = workbench(d, &db, &["import", bad_pq.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no-title.parquet:6: title: missing or empty"),
        "{err}"
    );
    std::fs::write(d.join("junk.parquet"), b"PAR1 not really").unwrap();
    let out = workbench(
        d,
        &db,
        &["import", d.join("junk.parquet").to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("junk.parquet: not a readable Parquet file"),
        "{err}"
    );
    assert_eq!(stats(d, &db)["pairs"], 200, "nothing of the bad files");
}

/// Migration 0008 keeps each pair's picked judgment (the newest with a rationale, else the
/// newest) on the pair. A database made before it, with judgments, gets the picks backfilled
/// on open, and the export reads them.
#[test]
fn a_database_from_before_the_pair_judgment_column_gets_its_picks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // The schema as it was: migrations 0001–0007 only, then two pairs with judgments.
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).unwrap();
    for entry in std::fs::read_dir(root().join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0008" {
            std::fs::copy(&path, old.join(&name)).unwrap();
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&mut c)
            .await
            .unwrap();
        for sql in [
            "INSERT INTO queries (id, ext_id, text) VALUES (1, 'q1', 'red shoes')",
            "INSERT INTO items (id, ext_id, title) VALUES (1, 'i1', 'Red running shoe'), (2, 'i2', 'Blue kettle')",
            "INSERT INTO pairs (id, query_id, item_id) VALUES (1, 1, 1), (2, 1, 2)",
            // Pair 1: a rationale in the middle, newer judgments without one: the middle one stands.
            "INSERT INTO judgments (id, pair_id, model, prompt_hash, mode, label, distribution, dist_source, rationale, raw_output) VALUES \
             (10, 1, 'm', 'h1', 'score', 'I', '[0,0,0,1]', 'logprobs', NULL, ''), \
             (11, 1, 'm', 'h2', 'cot', 'E', '[1,0,0,0]', 'parsed', '{}', ''), \
             (12, 1, 'm', 'h3', 'score', 'S', '[0,1,0,0]', 'logprobs', NULL, ''), \
             (13, 2, 'm', 'h1', 'score', 'I', '[0,0,0,1]', 'logprobs', NULL, '')",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    });
    ok(dir.path(), &db, &["init"]);
    let picks: Vec<(i64, i64)> = query_rows(&db, "SELECT id, judgment_id FROM pairs ORDER BY id");
    assert_eq!(picks, vec![(1, 11), (2, 13)]);
    let out = dir.path().join("export");
    ok(
        dir.path(),
        &db,
        &[
            "export",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "soft_labels",
            "--source",
            "teacher",
            "--split",
            "by-query:100/0/0",
        ],
    );
    let rows = std::fs::read_to_string(out.join("train/soft_labels.jsonl")).unwrap();
    let labels: Vec<f64> = rows
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["label"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(labels, vec![1.0, 0.0], "{rows}");
}

/// SQLite refuses a row of the first batch (the failure surfaces while a later batch is being
/// handed on) or of the last (it surfaces at commit): either way the import names the file and
/// what it was storing, and leaves nothing of the file behind.
#[test]
fn a_write_refused_by_sqlite_stops_the_import_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dev_file();
    for (case, product) in [("first batch", "B07DL1JCGL"), ("last batch", "B00FUF5OIS")] {
        let db = dir.path().join(format!("{product}.db"));
        ok(dir.path(), &db, &["init"]);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.ext_id = '{product}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        ))
        .unwrap();
        drop(conn);
        let out = workbench(dir.path(), &db, &["import", dev.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: imported");
        let file = format!("importing {}", dev.display());
        for expected in [file.as_str(), "storing items", "refused by the test"] {
            assert!(err.contains(expected), "{case}: {expected:?} in:\n{err}");
        }
        let s = stats(dir.path(), &db);
        assert_eq!(
            (s["pairs"].as_i64(), s["queries"].as_i64()),
            (Some(0), Some(0)),
            "{case}: {s}"
        );
    }
}
