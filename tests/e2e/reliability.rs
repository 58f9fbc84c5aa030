//! Nothing lost: derived columns and the rows they derive from, written together; `workbench
//! check` finding and repairing what a kill between two statements (as earlier versions wrote
//! them) left behind; an undone change leaving its pair unreviewed everywhere.

use crate::common;

use std::path::Path;

use common::*;
use workbench::domain::PairKey;
use workbench::domain::review::Change;
use workbench::store::Store;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

fn pair_id(db: &Path, query: &str, product: &str) -> i64 {
    block_on(async {
        let store = Store::open(db).await.unwrap();
        let key = PairKey {
            query_id: query.into(),
            product_id: product.into(),
        };
        let id = store.pair_by_key(&key).await.unwrap().unwrap().id;
        store.close().await;
        id
    })
}

fn execute(db: &Path, sql: &str) {
    block_on(async {
        let store = Store::open(db).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(store.sqlite().unwrap())
            .await
            .unwrap();
        store.close().await;
    })
}

/// The state a kill between an insert and the update of its pair left under earlier versions: a
/// judgment whose pair looks unjudged, an annotation whose pair looks unreviewed, and a pair
/// flagged reviewed with no annotation. `check` names each, repairs it, and a second check finds
/// nothing; the export then carries the judgment and the human label.
#[test]
fn check_repairs_derived_columns_that_disagree_with_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let judged = pair_id(&db, "73232", "B07N6VYKD3");
    let annotated = pair_id(&db, "101475", "B07731843J");
    let stale = pair_id(&db, "40834", "B00GWP0WUK");
    let text = ok(d, &db, &["check"]);
    assert!(
        text.contains("SQLite integrity ok; 200 pairs checked"),
        "{text}"
    );
    assert!(text.contains("nothing to repair"), "{text}");

    execute(
        &db,
        &format!(
            "INSERT INTO judgments (pair_id, model, prompt_hash, mode, label, distribution, dist_source, raw_output) \
             VALUES ({judged}, 'm', 'h', 'score', 'S', '[0.1,0.7,0.1,0.1]', 'logprobs', 'Substitute')"
        ),
    );
    let change = serde_json::to_string(&Change::SetLabel {
        before: None,
        after: "C".into(),
    })
    .unwrap();
    execute(
        &db,
        &format!(
            "INSERT INTO annotations (pair_id, annotator, action, field, after) \
             VALUES ({annotated}, 'ana', 'set_label', 'label', '{change}')"
        ),
    );
    execute(
        &db,
        &format!("UPDATE pairs SET reviewed = 1 WHERE id = {stale}"),
    );

    let report: serde_json::Value =
        serde_json::from_str(&ok(d, &db, &["check", "--json"])).unwrap();
    assert_eq!(report["integrity"], "ok");
    assert_eq!(report["judgment_columns"], serde_json::json!([judged]));
    let mut fixed = vec![annotated, stale];
    fixed.sort();
    assert_eq!(report["reviewed"], serde_json::json!(fixed));
    let text = ok(d, &db, &["check"]);
    assert!(text.contains("nothing to repair"), "{text}");

    let s = stats(d, &db);
    assert_eq!(s["judged"], 1);
    assert_eq!(s["reviewed"], 1, "{s}");
    ok(
        d,
        &db,
        &[
            "export",
            "--out",
            "x",
            "--format",
            "cot",
            "--split",
            "by-query:100",
        ],
    );
    let cot = std::fs::read_to_string(d.join("x/train/cot.jsonl")).unwrap();
    let row = |product: &str| -> serde_json::Value {
        cot.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["product_id"] == product)
            .unwrap()
    };
    assert_eq!(row("B07N6VYKD3")["teacher"]["label"], "S");
    assert_eq!(row("B07731843J")["label"], "C");
    assert_eq!(row("B07731843J")["label_source"], "annotator");
}

/// A label set and then undone: the pair is unreviewed again in the store's flag (the queue's
/// `unreviewed` filter and counter read it) and in `stats`; redoing reviews it again.
#[test]
fn undoing_a_pairs_only_change_makes_it_unreviewed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let pair = pair_id(&db, "73232", "B07N6VYKD3");
    let reviewed = |db: &Path| -> (i64, i64) {
        let rows: Vec<(i64, i64)> = query_rows(
            db,
            &format!(
                "SELECT reviewed, (SELECT count(*) FROM pairs WHERE reviewed = 0) FROM pairs WHERE id = {pair}"
            ),
        );
        rows[0]
    };
    let set = block_on(async {
        let store = Store::open(&db).await.unwrap();
        let id = store
            .annotate(
                pair,
                None,
                "ana",
                &Change::SetLabel {
                    before: None,
                    after: "I".into(),
                },
            )
            .await
            .unwrap();
        store.close().await;
        id
    });
    assert_eq!(reviewed(&db), (1, 199));
    assert_eq!(stats(d, &db)["reviewed"], 1);
    let undo = block_on(async {
        let store = Store::open(&db).await.unwrap();
        let id = store
            .annotate(pair, None, "ana", &Change::Undo { target: set })
            .await
            .unwrap();
        store.close().await;
        id
    });
    assert_eq!(reviewed(&db), (0, 200));
    assert_eq!(stats(d, &db)["reviewed"], 0);
    block_on(async {
        let store = Store::open(&db).await.unwrap();
        store
            .annotate(pair, None, "ana", &Change::Undo { target: undo })
            .await
            .unwrap();
        store.close().await;
    });
    assert_eq!(reviewed(&db), (1, 199), "undoing the undo reviews it again");
    assert!(ok(d, &db, &["check"]).contains("nothing to repair"));
}

/// A database in rollback-journal mode (made elsewhere, or killed while being switched to WAL)
/// whose writer died mid-transaction leaves a hot journal, which a read-only connection cannot
/// roll back. The next command rolls it back and runs: the file is as it was before that
/// transaction, whole, and in WAL mode from then on.
#[test]
fn a_hot_rollback_journal_is_rolled_back_by_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let before = stats(d, &db)["pairs"].clone();
    python(
        "import os, sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
         c.execute('PRAGMA journal_mode=DELETE')\n\
         c.execute('PRAGMA cache_size=1')\n\
         c.execute('BEGIN')\n\
         c.execute(\"UPDATE items SET title = title || printf('%.2000c', 'x')\")\n\
         c.execute('DELETE FROM pairs')\n\
         os._exit(0)",
        &[&db],
    );
    let journal = d.join("wb.db-journal");
    assert!(
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "the writer died with its journal hot"
    );
    assert_eq!(stats(d, &db)["pairs"], before, "the transaction is undone");
    let report: serde_json::Value =
        serde_json::from_str(&ok(d, &db, &["check", "--json"])).unwrap();
    assert_eq!(report["integrity"], "ok", "{report}");
    let mode: Vec<(String,)> = query_rows(&db, "PRAGMA journal_mode");
    assert_eq!(mode[0].0, "wal");
}
