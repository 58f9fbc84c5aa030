//! Splits end to end: a file imported with its own `split` column gives export, student training,
//! scoring and `compare` exactly those splits (the default when every pair has one); pairs
//! without one are refused by `--split imported` with the queries named; and without an imported
//! split, `export` and `student train` put the same queries in `test` by default.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The fixture with a `split` per query: the first 14 queries (in file order) train, the next 3
/// dev ("validation", as some files name it), the last 3 test.
fn fixture_with_splits(dir: &Path) -> (PathBuf, BTreeMap<String, &'static str>) {
    let mut order: Vec<String> = Vec::new();
    let rows: Vec<Value> = std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for r in &rows {
        let q = r["query_id"].as_str().unwrap().to_string();
        if !order.contains(&q) {
            order.push(q);
        }
    }
    assert_eq!(order.len(), 20);
    let split_of: BTreeMap<String, &'static str> = order
        .iter()
        .enumerate()
        .map(|(i, q)| {
            (
                q.clone(),
                if i < 14 {
                    "train"
                } else if i < 17 {
                    "dev"
                } else {
                    "test"
                },
            )
        })
        .collect();
    let file = dir.join("with-splits.jsonl");
    let text: Vec<String> = rows
        .into_iter()
        .map(|mut r| {
            let s = split_of[r["query_id"].as_str().unwrap()];
            r["split"] = (if s == "dev" { "validation" } else { s }).into();
            r.to_string()
        })
        .collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    (file, split_of)
}

/// The query ids of each split of an export's cot.jsonl files.
fn exported_splits(out: &Path) -> BTreeMap<String, String> {
    let mut by_query = BTreeMap::new();
    for split in ["train", "dev", "test"] {
        let p = out.join(split).join("cot.jsonl");
        for line in std::fs::read_to_string(p).unwrap_or_default().lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let q = r["query_id"].as_str().unwrap().to_string();
            assert_eq!(r["split"], split);
            if let Some(other) = by_query.insert(q.clone(), split.to_string()) {
                assert_eq!(other, split, "query {q} in two splits");
            }
        }
    }
    by_query
}

/// The query ids of the pairs a student scored.
fn scored_queries(db: &Path, name: &str) -> BTreeSet<String> {
    let rows: Vec<(String,)> = query_rows(
        db,
        &format!(
            "SELECT DISTINCT q.ext_id FROM student_scores s JOIN pairs p ON p.id = s.pair_id \
             JOIN queries q ON q.id = p.query_id JOIN student_models m ON m.id = s.model_id \
             WHERE m.name = '{name}'"
        ),
    );
    rows.into_iter().map(|r| r.0).collect()
}

fn train_quick<'a>(out: &'a str, base: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "student",
        "train",
        "--out",
        out,
        "--losses",
        "none",
        "--epochs",
        "2",
        "--layers",
        "2",
        "--max-tokens",
        "32",
        "--base",
        base,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn imported_splits_are_the_splits_of_export_student_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("wb.db");
    let (file, split_of) = fixture_with_splits(d);
    ok(d, &db, &["init"]);
    ok(d, &db, &["import", file.to_str().unwrap()]);
    let base = root().join("models/student-base");
    let base = base.to_str().unwrap();

    // Every pair carries a split: the default is `imported`, in export and in training.
    export_human_labels(d, &db, "x");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("x/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["split"], "imported");
    let exported = exported_splits(&d.join("x"));
    let want: BTreeMap<String, String> = split_of
        .iter()
        .map(|(q, s)| (q.clone(), s.to_string()))
        .collect();
    assert_eq!(exported, want, "each query in the split the file gave it");

    let text = ok(d, &db, &train_quick("students/imp", base, &[]));
    let train_pairs = split_of.values().filter(|s| **s == "train").count() * 10;
    assert!(
        text.contains(&format!("on {train_pairs} pairs")),
        "trained on the 14 train queries' pairs: {text}"
    );
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("students/imp/student.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["split"], "imported");
    assert_eq!(
        config["trained"]["dev"][0]["pairs"], 30,
        "dev: the 3 validation queries"
    );

    ok(
        d,
        &db,
        &["student", "score", "--name", "imp", "--split", "test"],
    );
    let test: BTreeSet<String> = split_of
        .iter()
        .filter(|(_, s)| **s == "test")
        .map(|(q, _)| q.clone())
        .collect();
    assert_eq!(
        scored_queries(&db, "imp"),
        test,
        "scored the test queries only"
    );
    // compare: the student's own test split, every pair it scored.
    let c: Value = serde_json::from_str(&ok(
        d,
        &db,
        &["compare", "--student", "imp", "--split", "test", "--json"],
    ))
    .unwrap();
    assert_eq!(c["pairs"], 30);
    assert_eq!(c["student_vs_human"]["n"], 30);
    assert_eq!(c["queries"], 3);

    // A file with pairs lacking a split: no longer the default; asked for, refused by name.
    let extra = d.join("extra.jsonl");
    let line = std::fs::read_to_string(dev_file())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(&extra, line + "\n").unwrap();
    ok(d, &db, &["import", extra.to_str().unwrap()]);
    let out = workbench(
        d,
        &db,
        &[
            "export",
            "--out",
            "y",
            "--format",
            "cot",
            "--source",
            "human-only",
            "--split",
            "imported",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(
            "--split imported: 1 imported pairs of 1 queries have no split (queries 1021)"
        ),
        "{err}"
    );
    assert!(!d.join("y").exists());
    export_human_labels(d, &db, "y");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("y/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["split"], "by-query:80/10/10");
}

/// Without an imported split, the defaults of `export` and `student train` (one seed, one
/// spec) put the same queries in `test`.
#[test]
fn by_default_export_and_student_agree_on_the_test_queries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let base = root().join("models/student-base");
    export_human_labels(d, &db, "x");
    let exported = exported_splits(&d.join("x"));
    let test: BTreeSet<String> = exported
        .iter()
        .filter(|(_, s)| *s == "test")
        .map(|(q, _)| q.clone())
        .collect();
    assert_eq!(test.len(), 2, "10% of 20 queries");
    ok(
        d,
        &db,
        &train_quick("students/def", base.to_str().unwrap(), &[]),
    );
    ok(
        d,
        &db,
        &["student", "score", "--name", "def", "--split", "test"],
    );
    assert_eq!(scored_queries(&db, "def"), test);
    // Another seed, another test split, in both.
    ok(
        d,
        &db,
        &[
            "export",
            "--out",
            "z",
            "--format",
            "cot",
            "--source",
            "human-only",
            "--seed",
            "7",
        ],
    );
    let other: BTreeSet<String> = exported_splits(&d.join("z"))
        .into_iter()
        .filter(|(_, s)| s == "test")
        .map(|(q, _)| q)
        .collect();
    assert_ne!(other, test);
    ok(
        d,
        &db,
        &train_quick("students/seven", base.to_str().unwrap(), &["--seed", "7"]),
    );
    ok(
        d,
        &db,
        &["student", "score", "--name", "seven", "--split", "test"],
    );
    assert_eq!(scored_queries(&db, "seven"), other);
}
