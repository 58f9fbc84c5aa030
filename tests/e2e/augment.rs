//! Augmentation on the fixture: the asked number of pairs per query, no duplicates, the same
//! pairs for the same seed, lexical candidates that share words with their query; then the
//! real teacher labels some in score mode, and stats and export count them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use workbench::audit::text::normalise;
use workbench::augment::query_terms;

type Row = (String, String, String, String, String);

/// The real teacher labels `limit` augmented pairs in score mode.
fn teach_augmented(d: &Path, db: &Path, limit: usize) {
    let model = teacher_model();
    let limit = limit.to_string();
    let only = ["--only", "augmented", "--mode", "score", "--limit", &limit];
    let mut args = vec!["teach", "--model", model.to_str().unwrap()];
    args.extend(only);
    ok(d, db, &args);
}

/// (query ext id, item ext id, origin, query text, item title + brand) of augmented pairs.
fn augmented(db: &Path) -> Vec<Row> {
    query_rows(
        db,
        "SELECT q.ext_id, i.ext_id, p.origin, q.text, i.title || ' ' || i.brand FROM pairs p \
         JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id \
         WHERE p.origin LIKE 'augmented:%' ORDER BY q.ext_id, i.ext_id",
    )
}

#[test]
fn augmentation_is_exact_deterministic_and_feeds_teacher_stats_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let report: serde_json::Value = serde_json::from_str(&ok(
        d,
        &db,
        &["augment", "--per-query", "6", "--seed", "7", "--json"],
    ))
    .unwrap();
    assert_eq!(report["queries"], 20);
    assert_eq!(report["short_queries"], 0);
    let rows = augmented(&db);
    assert_eq!(rows.len(), 120, "6 per query over 20 queries");
    let mut per_query: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *per_query.entry(&r.0).or_default() += 1;
    }
    assert!(per_query.values().all(|n| *n == 6), "{per_query:?}");
    let pairs: BTreeSet<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(pairs.len(), rows.len(), "no pair twice");
    let strategies: BTreeSet<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        strategies,
        BTreeSet::from([
            "augmented:cross-query",
            "augmented:lexical",
            "augmented:random"
        ])
    );
    // Lexical candidates share a word with their query.
    let lexical: Vec<&Row> = rows.iter().filter(|r| r.2 == "augmented:lexical").collect();
    assert!(!lexical.is_empty());
    for r in &lexical {
        let words: BTreeSet<String> = normalise(&r.4).split(' ').map(str::to_owned).collect();
        assert!(
            query_terms(&r.3).iter().any(|t| words.contains(t)),
            "{:?} shares no word with {:?}",
            r.4,
            r.3
        );
    }
    // Stats count imported vs augmented.
    let s = stats(d, &db);
    assert_eq!(s["origins"]["import"], 200);
    assert_eq!(s["pairs"], 320);

    // Running again adds nothing; the same seed on another database chooses the same pairs, and
    // another seed other pairs.
    let again: serde_json::Value = serde_json::from_str(&ok(
        d,
        &db,
        &["augment", "--per-query", "6", "--seed", "7", "--json"],
    ))
    .unwrap();
    assert_eq!(again["existing"], 120);
    assert_eq!(augmented(&db), rows);
    let other_dir = tempfile::tempdir().unwrap();
    let db2 = fixture_db(other_dir.path());
    ok(
        other_dir.path(),
        &db2,
        &["augment", "--per-query", "6", "--seed", "7"],
    );
    assert_eq!(augmented(&db2), rows, "same seed, same pairs");
    let db3 = other_dir.path().join("seed8.db");
    ok(other_dir.path(), &db3, &["init"]);
    ok(
        other_dir.path(),
        &db3,
        &["import", fixture().to_str().unwrap()],
    );
    ok(
        other_dir.path(),
        &db3,
        &["augment", "--per-query", "6", "--seed", "8"],
    );
    assert_ne!(augmented(&db3), rows, "another seed, other pairs");

    // The teacher labels augmented pairs in score mode; stats and the export count them.
    teach_augmented(d, &db, 3);
    let s = stats(d, &db);
    let labelled: i64 = s["teacher_labelled_by_origin"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("augmented"))
        .map(|(_, v)| v.as_i64().unwrap())
        .sum();
    assert_eq!(labelled, 3);
    assert_eq!(s["teacher_labelled_by_origin"].get("import"), None);
    let text = ok(d, &db, &["stats"]);
    assert!(text.contains("teacher-labelled"), "{text}");

    let with = d.join("with");
    let manifest = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    ok(
        d,
        &db,
        &[
            "export",
            "--out",
            with.to_str().unwrap(),
            "--format",
            "soft_labels",
            "--include-augmented",
        ],
    );
    assert_eq!(
        manifest(&with)["augmented"],
        3,
        "the three teacher-labelled augmented pairs"
    );
    let without = d.join("without");
    ok(
        d,
        &db,
        &[
            "export",
            "--out",
            without.to_str().unwrap(),
            "--format",
            "soft_labels",
        ],
    );
    assert_eq!(manifest(&without)["augmented"], 0);
}

/// `student train --augmented-ratio R` trains on exactly R × as many augmented pairs as imported
/// ones, and says so when fewer are labelled.
#[test]
fn a_student_trains_on_a_set_ratio_of_augmented_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    ok(d, &db, &["augment", "--per-query", "2", "--seed", "1"]);
    teach_augmented(d, &db, 4);
    let base = common::root().join("models/student-base");
    let train = |ratio: &str| {
        workbench(
            d,
            &db,
            &[
                "student",
                "train",
                "--kind",
                "bi",
                "--max-steps",
                "1",
                "--batch-size",
                "4",
                "--max-tokens",
                "32",
                "--split",
                "by-query:100",
                "--out",
                d.join(format!("s-{ratio}")).to_str().unwrap(),
                "--base",
                base.to_str().unwrap(),
                "--augmented-ratio",
                ratio,
            ],
        )
    };
    // 200 imported pairs with gold labels, all in train: 0.01 × 200 = 2 of the 4 labelled.
    let out = train("0.01");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("on 202 pairs"), "{err}");
    assert!(err.contains("2 augmented"), "{err}");
    let out = train("1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("200 augmented train pairs wanted") && err.contains("only 4 have a label"),
        "{err}"
    );
}
