//! `workbench export` end to end: real teacher judgments on the fixture, human corrections
//! written through the store's annotation API, the real binary, files checked line by line and
//! loaded with Hugging Face `datasets`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use serde_json::Value;
use workbench::domain::review::{Change, TextStep};
use workbench::domain::{PairKey, Verdict};
use workbench::store::Store;

const COT_PAIRS: &str = "101475/B07731843J,101475/B07DR4SQ9M,40834/B00GWP0WUK";

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every row of `file` across the splits, with its split.
fn rows(out: &Path, file: &str) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for split in ["train", "dev", "test"] {
        let p = out.join(split).join(file);
        if p.exists() {
            all.extend(read_jsonl(&p).into_iter().map(|r| (split.to_string(), r)));
        }
    }
    all
}

/// Corrects the judgment of 101475/B07731843J (a Lacoste cap for "tennis lacoste hombre"):
/// label, a verdict and the conclusion. Returns the human label.
fn correct_one(db: &Path) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(db).await.unwrap();
        let key = PairKey {
            query_id: "101475".into(),
            product_id: "B07731843J".into(),
        };
        let pair = store.pair_by_key(&key).await.unwrap().unwrap();
        let j = store
            .judgments_of(pair.id)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.rationale.is_some())
            .expect("a CoT judgment");
        let r = j.rationale.unwrap();
        let human = if r.label == "C" { "I" } else { "C" }.to_string();
        let dim = r.dimensions[0].clone();
        let changes = [
            Change::SetVerdict {
                dimension: dim.name.clone(),
                before: dim.verdict,
                after: Verdict::Mismatch,
            },
            Change::EditStep {
                step: TextStep::Conclusion,
                before: r.conclusion.clone(),
                after: "A cap is not a shoe.".into(),
            },
            Change::SetLabel {
                before: Some(r.label.clone()),
                after: human.clone(),
            },
            Change::Note {
                text: "teacher confused brand with product".into(),
            },
        ];
        for c in &changes {
            store.annotate(pair.id, Some(j.id), "ana", c).await.unwrap();
        }
        // An undone change leaves no trace in the export.
        let undone = store
            .annotate(
                pair.id,
                Some(j.id),
                "ana",
                &Change::EditStep {
                    step: TextStep::QueryAnalysis,
                    before: r.query_analysis.clone(),
                    after: "WRONG EDIT".into(),
                },
            )
            .await
            .unwrap();
        store
            .annotate(pair.id, Some(j.id), "ana", &Change::Undo { target: undone })
            .await
            .unwrap();
        store.close().await;
        human
    })
}

#[test]
fn export_writes_every_format_with_human_corrections_winning_and_reproducible_splits() {
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let m = model.to_str().unwrap();

    // Nothing judged yet: nothing to export from the teacher.
    let none = workbench(d, &db, &["export", "--out", "x", "--source", "teacher"]);
    assert!(
        String::from_utf8_lossy(&none.stderr)
            .contains("nothing to export: no teacher judgments yet")
    );
    assert!(!d.join("x").exists());

    ok(d, &db, &["teach", "--only", COT_PAIRS, "--model", m]);
    ok(
        d,
        &db,
        &[
            "teach",
            "--mode",
            "score",
            "--only",
            "101475/B08BR5XNPN,40834/B01LZKMVEC",
            "--model",
            m,
        ],
    );
    let human = correct_one(&db);

    let out = ok(
        d,
        &db,
        &["export", "--out", "a", "--seed", "7", "--parquet"],
    );
    assert!(out.contains("200 pairs (1 human-corrected)"), "{out}");
    let a = d.join("a");
    for f in ["cot", "margin_mse", "soft_labels", "distill_kl", "sft"] {
        assert!(
            !rows(&a, &format!("{f}.jsonl")).is_empty(),
            "{f}.jsonl is empty or missing"
        );
    }

    // cot: one row per pair; the corrected pair carries the human label and human steps.
    let cot = rows(&a, "cot.jsonl");
    assert_eq!(cot.len(), 200);
    let fixed = cot
        .iter()
        .map(|(_, r)| r)
        .find(|r| r["product_id"] == "B07731843J")
        .unwrap();
    assert_eq!(fixed["label"], human.as_str());
    assert_eq!(fixed["label_source"], "annotator");
    assert_eq!(fixed["annotators"], serde_json::json!(["ana"]));
    let steps = fixed["steps"].as_array().unwrap();
    let conclusion = steps.iter().find(|s| s["step"] == "conclusion").unwrap();
    assert_eq!(
        (conclusion["text"].as_str(), conclusion["source"].as_str()),
        (Some("A cap is not a shoe."), Some("human"))
    );
    assert_eq!(
        steps.iter().find(|s| s["step"] == "dimension").unwrap()["verdict"],
        "mismatch"
    );
    let qa = steps
        .iter()
        .find(|s| s["step"] == "query_analysis")
        .unwrap();
    assert_eq!(qa["source"], "teacher");
    assert_ne!(qa["text"], "WRONG EDIT");
    assert!(fixed["teacher"]["distribution"]["E"].is_number());
    // An unjudged pair still exports with its gold label, and a teacher object of nulls: every
    // row has the same keys.
    let plain = cot
        .iter()
        .map(|(_, r)| r)
        .find(|r| r["teacher"]["model"].is_null())
        .unwrap();
    assert_eq!(plain["label_source"], "gold");
    assert!(plain["teacher"]["distribution"].is_null() && plain["teacher"].is_object());
    let keys = |r: &Value| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert!(cot.iter().all(|(_, r)| keys(r) == keys(plain)));
    assert!(
        fixed["item"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "category" && a["value"].as_str().unwrap().contains(" > ")),
        "attributes as a list of name and text: {}",
        fixed["item"]["attributes"]
    );
    // No judged pair in some split: the card's declared types let it load with the others.
    let judged_in = |split: &str| {
        cot.iter()
            .any(|(s, r)| s == split && !r["teacher"]["model"].is_null())
    };
    assert!(
        ["train", "dev", "test"].iter().any(|s| !judged_in(s)),
        "the datasets check below needs a split without a judged pair"
    );

    // sft: the corrected rationale as the teacher should have written it.
    let sft = rows(&a, "sft.jsonl");
    let fixed_sft = sft
        .iter()
        .map(|(_, r)| r)
        .find(|r| {
            r["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("Lacoste Men's Embroidered Crocodile Cotton Cap")
        })
        .expect("the corrected pair is in sft.jsonl");
    let answer: Value =
        serde_json::from_str(fixed_sft["messages"][2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(answer["conclusion"], "A cap is not a shoe.");
    let name = if human == "C" {
        "Complement"
    } else {
        "Irrelevant"
    };
    assert_eq!(answer["label"], name);
    assert_eq!(fixed_sft["messages"][0]["role"], "system");

    // Splits by query: no query in two splits.
    let mut by_split: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (split, r) in &cot {
        by_split
            .entry(split.clone())
            .or_default()
            .insert(r["query_id"].as_str().unwrap().to_string());
    }
    let all: Vec<&String> = by_split.values().flatten().collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "a query is in two splits: {by_split:?}"
    );
    assert_eq!(unique.len(), 20);
    assert_eq!(by_split["train"].len(), 16);

    // The manifest counts what was written, with a hash per file.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["pairs"], 200);
    assert_eq!(manifest["human_corrected"], 1);
    assert_eq!(
        manifest["labels"]["E"].as_u64().unwrap() + manifest["labels"]["S"].as_u64().unwrap(),
        118
    );
    let train_cot = &manifest["files"]["train/cot.jsonl"];
    assert_eq!(
        train_cot["rows"].as_u64().unwrap() as usize,
        read_jsonl(&a.join("train/cot.jsonl")).len()
    );
    assert_eq!(train_cot["sha256"].as_str().unwrap().len(), 64);

    // The same seed gives byte-identical files; another seed other splits.
    ok(
        d,
        &db,
        &["export", "--out", "b", "--seed", "7", "--parquet"],
    );
    ok(d, &db, &["export", "--out", "c", "--seed", "8"]);
    for (rel, _) in manifest["files"].as_object().unwrap() {
        assert!(
            std::fs::read(a.join(rel)).unwrap() == std::fs::read(d.join("b").join(rel)).unwrap(),
            "{rel} differs"
        );
    }
    let m2: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("c/manifest.json")).unwrap()).unwrap();
    assert_ne!(manifest["files"], m2["files"]);

    // --source teacher: only what the teacher judged, with its labels.
    ok(
        d,
        &db,
        &[
            "export",
            "--out",
            "t",
            "--source",
            "teacher",
            "--format",
            "cot,soft_labels",
        ],
    );
    let t = rows(&d.join("t"), "cot.jsonl");
    assert_eq!(t.len(), 5, "judged pairs: 3 CoT + 2 score");
    assert!(t.iter().all(|(_, r)| r["label_source"] == "teacher"));
    assert!(!d.join("t/train/sft.jsonl").exists());

    // Refusals leave what is there alone.
    let again = workbench(d, &db, &["export", "--out", "a"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists; pass --force"));
    ok(
        d,
        &db,
        &[
            "export",
            "--out",
            "a",
            "--seed",
            "7",
            "--force",
            "--format",
            "soft_labels",
        ],
    );
    assert!(
        !d.join("a/train/cot.jsonl").exists(),
        "--force replaces the whole directory"
    );
    // Without cot/sft the export reads a narrower statement (labels only): the same rows as the
    // full read of the same seed, byte for byte.
    for split in ["train", "dev", "test"] {
        let rel = format!("{split}/soft_labels.jsonl");
        assert!(
            std::fs::read(a.join(&rel)).unwrap() == std::fs::read(d.join("b").join(&rel)).unwrap(),
            "{rel} differs between the labels-only and the full read"
        );
    }
    let unknown = workbench(
        d,
        &db,
        &["export", "--out", "u", "--format", "cot,parquetish"],
    );
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        !unknown.status.success()
            && said.contains("invalid value 'parquetish'")
            && said.contains("margin_mse"),
        "an unknown format is refused with the formats there are: {said}"
    );
    std::fs::write(d.join("afile"), "x").unwrap();
    let unwritable = workbench(d, &db, &["export", "--out", "afile/sub"]);
    assert!(
        String::from_utf8_lossy(&unwritable.stderr)
            .contains("afile/sub: cannot write the export here")
    );
    assert!(std::fs::read_dir(d).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".partial-")
    }));

    // The files load unchanged with Hugging Face datasets, with the columns the
    // sentence-transformers losses expect.
    let check = root().join("tests/e2e/check_datasets.py");
    let py = std::process::Command::new("python3")
        .arg(&check)
        .arg(a.parent().unwrap().join("b"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "datasets check failed:\n{}\n{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
    let said = String::from_utf8_lossy(&py.stdout);
    assert!(
        said.contains("margin_mse ok")
            && said.contains("cot as one dataset ok")
            && said.contains("distill_kl ok")
            && said.contains("sft ok")
            && said.contains("parquet ok: cot, margin_mse, soft_labels, distill_kl, sft"),
        "{said}"
    );
}

/// A disk that fills up mid-export (here a 64 KiB file-size limit, so a write fails as it would
/// on a full disk): the error names the file, and neither the export nor its temporary
/// directory is left behind.
#[test]
fn a_write_failure_mid_export_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let out = d.join("dist");
    let run = std::process::Command::new("sh")
        .current_dir(d)
        .arg("-c")
        .arg(r#"ulimit -f 64; trap "" XFSZ; exec "$0" "$@""#)
        .arg(bin())
        .args([
            "--db",
            db.to_str().unwrap(),
            "export",
            "--source",
            "human-only",
            "--out",
        ])
        .arg(&out)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success(),
        "the export cannot fit in 64 KiB: {err}"
    );
    assert!(err.contains("cot.jsonl"), "names the file: {err}");
    assert!(err.contains("File too large"), "says why: {err}");
    assert!(!out.exists(), "no export directory");
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("dist"))
        .collect();
    assert!(left.is_empty(), "no temporary directory left: {left:?}");
    // With room, the same export succeeds.
    ok(
        d,
        &db,
        &[
            "export",
            "--source",
            "human-only",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(out.join("manifest.json").exists());
}
