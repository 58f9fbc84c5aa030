//! `workbench teacher calibrate` on the real SmolLM2 teacher's score-mode judgments and the
//! fixture's human labels: fitted on the train queries, it moves the unreviewed (test) pairs'
//! distributions towards the humans' label frequencies, stores itself, and leaves every raw
//! distribution as it was; show, the review app, export and audit give the calibrated one beside
//! it, and say which they read.

use crate::common;

use common::*;
use workbench::store::Store;
use workbench::student::data::{TeacherDistribution, from_export};
use workbench::tui::{Action, App};

/// Mean distribution of rows of probabilities.
fn mean(rows: &[Vec<f64>]) -> Vec<f64> {
    let mut m = vec![0.0; rows[0].len()];
    for r in rows {
        for (a, b) in m.iter_mut().zip(r) {
            *a += b / rows.len() as f64;
        }
    }
    m
}

fn l1(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

#[test]
fn calibration_moves_unreviewed_pairs_towards_the_humans_and_keeps_the_raw_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    // The first four queries, ten pairs each.
    teach_score(d, &db, 40);
    // The export / audit / review-loop half runs on a copy taught alike, never calibrated yet.
    let uncalibrated = d.join("uncalibrated");
    std::fs::create_dir(&uncalibrated).unwrap();
    copy_database(&db, &uncalibrated.join("wb.db"));
    let raw_before: Vec<(i64, String)> =
        query_rows(&db, "SELECT id, distribution FROM judgments ORDER BY id");
    let split = "by-query:50/0/50";
    let calibrate = |extra: &[&str]| {
        let mut args = vec!["teacher", "calibrate", "--split", split, "--min-pairs", "5"];
        args.extend_from_slice(extra);
        ok(d, &db, &args)
    };
    let fitted: serde_json::Value = serde_json::from_str(&calibrate(&["--json"])).unwrap();
    let t = &fitted[0];
    assert!(t["id"].as_i64().is_some(), "{t}");
    assert_eq!(
        t["fitted_on"], "train",
        "the shipped teacher never learnt these labels: {t}"
    );
    let samples = t["fit"]["samples"].as_u64().unwrap();
    assert!((10..40).contains(&samples), "{t}");
    assert!(
        t["fit"]["nll_after"].as_f64() < t["fit"]["nll_before"].as_f64(),
        "{t}"
    );
    assert!(t["test_raw"]["n"].as_u64().unwrap() >= 10, "{t}");

    // The raw distributions are untouched; the calibrated ones differ.
    let raw_after: Vec<(i64, String)> =
        query_rows(&db, "SELECT id, distribution FROM judgments ORDER BY id");
    assert_eq!(raw_before, raw_after);

    // On the test pairs, nobody's reviews: the mean calibrated distribution is closer to the
    // train pairs' human label frequencies than the raw one.
    let pairs: Vec<(i64, i64, Option<String>)> = query_rows(
        &db,
        "SELECT p.id, p.query_id, p.gold_label FROM pairs p JOIN judgments j ON j.pair_id = p.id",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (human, raw, calibrated) = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let scale = store.scale().await.unwrap();
        let spec = workbench::domain::SplitSpec::parse(split).unwrap();
        let (_, splits) = store.splits(Some(&spec), 42).await.unwrap();
        let mut counts = vec![0.0; scale.len()];
        let (mut raw, mut calibrated) = (Vec::new(), Vec::new());
        for (pair, query, gold) in pairs {
            let split = splits.get(query);
            if split == Some("train") {
                counts[scale.index_of_key(gold.as_deref().unwrap()).unwrap()] += 1.0;
            } else if split == Some("test") {
                let j = store.judgments_of(pair).await.unwrap().remove(0);
                raw.push(j.distribution.probs.clone());
                calibrated.push(j.calibrated.expect("calibrated beside the raw").probs);
            }
        }
        let total: f64 = counts.iter().sum();
        let human: Vec<f64> = counts.iter().map(|c| c / total).collect();
        (human, mean(&raw), mean(&calibrated))
    });
    assert!(
        l1(&calibrated, &human) < l1(&raw, &human),
        "humans {human:?}: raw {raw:?}, calibrated {calibrated:?}"
    );

    // show and the review app give both, and say which is which.
    let first: Vec<(String, String)> = query_rows(
        &db,
        "SELECT q.ext_id, i.ext_id FROM judgments j JOIN pairs p ON p.id = j.pair_id \
         JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id ORDER BY j.id LIMIT 1",
    );
    let shown = ok(d, &db, &["show", &first[0].0, &first[0].1]);
    assert!(
        shown.contains("calibrated (workbench teacher calibrate):"),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &db, &["show", &first[0].0, &first[0].1, "--json"])).unwrap();
    let j = &json["judgments"][0];
    assert!(j["calibrated_distribution"].is_object(), "{j}");
    assert_ne!(j["calibrated_distribution"], j["distribution"]);
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        app.update(Action::Open).await.unwrap();
        let s = screen_of(&app, 120, 40);
        assert!(s.contains("calibrated"), "{s}");
    });

    // For labels: each bias moved for the train pairs' macro-F1, never below the likelihood
    // fit's or the raw distribution's there; the newest calibration is the one that applies.
    let text = calibrate(&["--objective", "macro-f1"]);
    assert!(text.contains("train (fitted for macro-f1):"), "{text}");
    let newest: serde_json::Value =
        serde_json::from_str(&calibrate(&["--objective", "macro-f1", "--json"])).unwrap();
    let f = &newest[0]["fit"];
    assert_eq!(f["objective"], "macro-f1", "{f}");
    assert_eq!(t["fit"]["objective"], "log-loss", "{t}");
    let after = f["macro_f1_after"].as_f64().unwrap();
    assert!(
        after >= t["fit"]["macro_f1_after"].as_f64().unwrap()
            && after >= f["macro_f1_before"].as_f64().unwrap(),
        "macro-f1 {f}\nlog-loss {t}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &db, &["show", &first[0].0, &first[0].1, "--json"])).unwrap();
    let j = &json["judgments"][0];
    let keys: Vec<String> = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store
            .scale()
            .await
            .unwrap()
            .keys()
            .map(str::to_owned)
            .collect()
    });
    // softmax(a · log p + b), as the newest calibration computes it.
    let slope = f["calibration"]["slope"].as_f64().unwrap();
    let bias: Vec<f64> = serde_json::from_value(f["calibration"]["bias"].clone()).unwrap();
    let calibrate_by_hand = |p: &[f64]| -> Vec<f64> {
        let z: Vec<f64> = p
            .iter()
            .zip(&bias)
            .map(|(p, b)| (slope * p.max(1e-6).ln() + b).exp())
            .collect();
        let total: f64 = z.iter().sum();
        z.iter().map(|x| x / total).collect()
    };
    let raw_of_shown: Vec<f64> = keys
        .iter()
        .map(|key| j["distribution"][key].as_f64().unwrap())
        .collect();
    for (key, want) in keys.iter().zip(calibrate_by_hand(&raw_of_shown)) {
        let shown = j["calibrated_distribution"][key].as_f64().unwrap();
        assert!((shown - want).abs() < 1e-3, "{key}: {j}\n{f}");
    }
    assert_eq!(
        raw_before,
        query_rows::<(i64, String)>(&db, "SELECT id, distribution FROM judgments ORDER BY id")
    );

    // A student learns from the calibrated distribution where the teacher's calibration was
    // fitted on the student's own split, from the raw one on any other split (whose test pairs
    // the calibration may have fitted), and from the calibrated one anywhere when asked to.
    let raw_dists: Vec<Vec<f64>> = raw_before
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let calibrated_dists: Vec<Vec<f64>> = raw_dists.iter().map(|p| calibrate_by_hand(p)).collect();
    let targets = |spec: &str, which| {
        rt.block_on(async {
            use workbench::student::data::from_store;
            let store = Store::open(&db).await.unwrap();
            let scale = store.scale().await.unwrap();
            let spec = workbench::domain::SplitSpec::parse(spec).unwrap();
            let l = from_store(&store, &scale, &[], Some(&spec), 42, false, which)
                .await
                .unwrap();
            store.close().await;
            let t: Vec<Vec<f64>> = l
                .examples
                .iter()
                .filter_map(|e| e.teacher.as_ref())
                .map(|t| t.iter().map(|p| f64::from(*p)).collect())
                .collect();
            (t, l.teacher_distribution)
        })
    };
    let same = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        let sorted = |v: &[Vec<f64>]| {
            let mut v = v.to_vec();
            v.sort_by(|x, y| x.partial_cmp(y).unwrap());
            v
        };
        let (a, b) = (sorted(a), sorted(b));
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.iter().zip(y).all(|(x, y)| (x - y).abs() < 1e-4))
    };
    use workbench::student::data::TeacherDistribution as Which;
    let fitted_here = "calibrated (fitted on by-query:50/0/50 seed 42, train, macro-f1)";
    let (t, said) = targets(split, Which::Auto);
    assert!(same(&t, &calibrated_dists), "{said}");
    assert_eq!(said, fitted_here);
    let (t, said) = targets("by-query:50/50/0", Which::Auto);
    assert!(same(&t, &raw_dists), "{said}");
    assert!(
        said.starts_with("raw: a calibration fitted on another split"),
        "{said}"
    );
    let (t, _) = targets("by-query:50/50/0", Which::Calibrated);
    assert!(same(&t, &calibrated_dists));
    let (t, said) = targets(split, Which::Raw);
    assert!(same(&t, &raw_dists) && said == "raw", "{said}");
    // Through the binary: the student says what it learnt from and records it.
    let students = d.join("students");
    let trained = ok(
        d,
        &db,
        &[
            "student",
            "train",
            "--split",
            split,
            "--human-weight",
            "0",
            "--teacher-weight",
            "1",
            "--losses",
            "kl",
            "--epochs",
            "2",
            "--out",
            students.join("s").to_str().unwrap(),
        ],
    );
    assert!(
        trained.contains(&format!("teacher distribution: {fitted_here}")),
        "{trained}"
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(students.join("s").join("student.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["teacher_distribution"], fitted_here, "{config}");

    export_and_audit_read_the_calibrated_teacher_when_asked_and_say_so(
        &uncalibrated,
        &uncalibrated.join("wb.db"),
        40,
    );
}

/// Rows of every split's `FILE` in an export directory.
fn export_rows(out: &std::path::Path, file: &str) -> Vec<serde_json::Value> {
    ["train", "dev", "test"]
        .iter()
        .filter_map(|s| std::fs::read_to_string(out.join(s).join(file)).ok())
        .flat_map(|t| {
            t.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn argmax_key(dist: &serde_json::Value) -> String {
    dist.as_object()
        .unwrap()
        .iter()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .map(|(k, _)| k.clone())
        .unwrap()
}

/// On a database whose teacher judged `pairs` pairs and was never calibrated.
fn export_and_audit_read_the_calibrated_teacher_when_asked_and_say_so(
    d: &std::path::Path,
    db: &std::path::Path,
    pairs: usize,
) {
    // Asked for before there is a calibration: refused, nothing written.
    let out = d.join("early");
    let refused = workbench(
        d,
        db,
        &["export", "--out", out.to_str().unwrap(), "--calibrated"],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("teacher calibrate"),
        "{refused:?}"
    );
    assert!(!out.exists());
    let refused = workbench(
        d,
        db,
        &["student", "train", "--teacher-distribution", "calibrated"],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("teacher calibrate"),
        "{refused:?}"
    );
    ok(d, db, &["teacher", "calibrate", "--min-pairs", "5"]);

    let export = |name: &str, extra: &[&str]| {
        let out = d.join(name);
        let mut args = vec![
            "export",
            "--out",
            out.to_str().unwrap(),
            "--source",
            "teacher",
        ];
        args.extend_from_slice(extra);
        ok(d, db, &args);
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap())
                .unwrap();
        (export_rows(&out, "cot.jsonl"), manifest)
    };
    let (raw, raw_manifest) = export("raw", &[]);
    let (cal, cal_manifest) = export("cal", &["--calibrated"]);
    assert_eq!(raw_manifest["teacher_distribution"], "raw");
    assert_eq!(cal_manifest["teacher_distribution"], "calibrated");
    assert_eq!(raw.len(), pairs);
    assert_eq!(cal.len(), pairs);
    let mut moved = 0;
    let mut misses = 0;
    for (r, c) in raw.iter().zip(&cal) {
        assert_eq!(r["product_id"], c["product_id"]);
        // Both files carry both distributions; the label follows the one asked for.
        assert!(r["teacher"]["calibrated_distribution"].is_object(), "{r}");
        assert_eq!(r["teacher"], c["teacher"]);
        assert_eq!(r["label_source"], "teacher");
        assert_eq!(c["label_source"], "teacher_calibrated");
        assert_eq!(r["label"], r["teacher"]["label"]);
        let calibrated = argmax_key(&c["teacher"]["calibrated_distribution"]);
        assert_eq!(c["label"].as_str().unwrap(), calibrated);
        moved += (r["label"] != c["label"]) as usize;
        misses += (c["gold_label"].as_str() != Some(calibrated.as_str())) as usize;
    }
    assert!(moved > 0, "the calibration changed no label of {pairs}");
    // A student reading the export learns from the calibrated distribution only when asked to.
    let scale = workbench::domain::LabelScale::esci();
    // In the order the reader takes the split folders: by name.
    let in_order: Vec<serde_json::Value> = ["dev", "test", "train"]
        .iter()
        .filter_map(|s| std::fs::read_to_string(d.join("cal").join(s).join("cot.jsonl")).ok())
        .flat_map(|t| {
            t.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    for (which, field) in [
        (TeacherDistribution::Calibrated, "calibrated_distribution"),
        (TeacherDistribution::Auto, "distribution"),
    ] {
        let (examples, said) = from_export(&d.join("cal"), &scale, &[], false, which).unwrap();
        let exported: Vec<&serde_json::Value> =
            in_order.iter().map(|r| &r["teacher"][field]).collect();
        assert_eq!(examples.len(), exported.len(), "{said}");
        for (e, want) in examples.iter().zip(exported) {
            let got = e.teacher.as_ref().unwrap();
            for (k, key) in ["E", "S", "C", "I"].iter().enumerate() {
                assert!(
                    (f64::from(got[k]) - want[key].as_f64().unwrap()).abs() < 1e-6,
                    "{said}"
                );
            }
        }
    }
    // An export written before any calibration cannot give calibrated targets: refused, naming
    // the folder and what to run.
    let raw_only = d.join("raw-only");
    for s in ["dev", "test", "train"] {
        let Ok(text) = std::fs::read_to_string(d.join("cal").join(s).join("cot.jsonl")) else {
            continue;
        };
        let rows: Vec<String> = text
            .lines()
            .map(|l| {
                let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
                r["teacher"]
                    .as_object_mut()
                    .unwrap()
                    .remove("calibrated_distribution");
                r.to_string()
            })
            .collect();
        std::fs::create_dir_all(raw_only.join(s)).unwrap();
        std::fs::write(raw_only.join(s).join("cot.jsonl"), rows.join("\n")).unwrap();
    }
    let Err(refused) = from_export(
        &raw_only,
        &scale,
        &[],
        false,
        TeacherDistribution::Calibrated,
    ) else {
        panic!("calibrated targets from an export without calibrated distributions");
    };
    let message = format!("{refused:#}");
    assert!(
        message.contains(&raw_only.display().to_string()) && message.contains("teacher calibrate"),
        "{message}"
    );
    assert!(from_export(&raw_only, &scale, &[], false, TeacherDistribution::Auto).is_ok());

    // The audit's teacher-vs-gold rule counts the calibrated teacher's misses when asked to.
    let audit = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["audit", "--rules", "teacher-vs-gold", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(d, db, &args)).unwrap()
    };
    let summary = audit(&["--calibrated"]);
    assert_eq!(summary["teacher_distribution"], "calibrated", "{summary}");
    assert_eq!(summary["calibrated_judgments"], pairs, "{summary}");
    assert_eq!(
        summary["by_rule"]["teacher-vs-gold"], misses as u64,
        "{summary}"
    );
    let details: Vec<(String,)> = query_rows(
        db,
        "SELECT detail FROM audit_findings WHERE rule = 'teacher-vs-gold' LIMIT 1",
    );
    if let Some((detail,)) = details.first() {
        assert!(
            detail.starts_with("the calibrated teacher says"),
            "{detail}"
        );
    }
    // The loop back to the teacher: twenty reviews after the calibration, and the review app's
    // status bar says so with the command; calibrating again clears it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let store = Store::open(db).await.unwrap();
            let app = App::new(store, "ana").await.unwrap();
            let s = screen_of(&app, 200, 30);
            s.lines().last().unwrap_or_default().to_string()
        })
    };
    assert!(!status(&rt).contains("since the teacher's calibration"));
    rt.block_on(async {
        let store = Store::open(db).await.unwrap();
        for pair in 1..=20 {
            let note = workbench::domain::review::Change::Note {
                text: "seen".into(),
            };
            store.annotate(pair, None, "ana", &note).await.unwrap();
        }
    });
    let line = status(&rt);
    assert!(
        line.contains("20 reviews since the teacher's calibration: workbench teacher calibrate"),
        "{line}"
    );
    // A calibration keeps whole seconds: reviews in its own second count as after it (the safe
    // side). A person does not calibrate within a second of reviewing; the test waits it out.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(d, db, &["teacher", "calibrate", "--min-pairs", "5"]);
    assert!(!status(&rt).contains("since the teacher's calibration"));

    let summary = audit(&[]);
    assert_eq!(summary["teacher_distribution"], "raw", "{summary}");
    let raw_misses = raw.iter().filter(|r| r["gold_label"] != r["label"]).count();
    assert_eq!(summary["by_rule"]["teacher-vs-gold"], raw_misses as u64);
}
