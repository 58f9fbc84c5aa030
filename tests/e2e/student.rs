//! Students end to end: the real MiniLM base fine-tuned with candle on real teacher judgments
//! (cross- and bi-encoder), loss going down, scores stored, a saved model re-scoring the same,
//! a run continued for more epochs, a run killed mid-epoch and resumed, the best dev epoch kept,
//! a trusted teacher kept only when its student wins on dev, `student import` good and bad, and
//! `compare`.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use workbench::store::Store;
use workbench::tui::{Action, App, View};

fn student_base() -> PathBuf {
    let p = root().join("models/student-base");
    assert!(
        p.join("model.safetensors").exists(),
        "{} is missing: run scripts/fetch-models.sh first",
        p.display()
    );
    p
}

/// The first 24 fixture pairs (3 queries), with real CoT judgments of the first two.
fn small_db(dir: &Path) -> PathBuf {
    let db = fixture_subset_db(dir, 24);
    ok(
        dir,
        &db,
        &[
            "teach",
            "--limit",
            "2",
            "--model",
            teacher_model().to_str().unwrap(),
        ],
    );
    db
}

fn scores(db: &Path, name: &str) -> Vec<(i64, f64, String)> {
    query_rows(
        db,
        &format!(
            "SELECT s.pair_id, s.score, coalesce(s.distribution, '[]') FROM student_scores s \
             JOIN student_models m ON m.id = s.model_id WHERE m.name = '{name}' ORDER BY s.pair_id"
        ),
    )
}

fn train_args<'a>(kind: &'a str, out: &'a str, epochs: &'a str, base: &'a str) -> Vec<&'a str> {
    vec![
        "student",
        "train",
        "--kind",
        kind,
        "--encoder",
        "fine-tune",
        "--out",
        out,
        "--epochs",
        epochs,
        "--split",
        "by-query:100",
        "--batch-size",
        "8",
        "--max-tokens",
        "48",
        "--learning-rate",
        "1e-4",
        "--base",
        base,
    ]
}

#[test]
fn cross_and_bi_students_learn_score_reload_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = small_db(d);
    let base = student_base();
    let base = base.to_str().unwrap();

    for kind in ["cross", "bi"] {
        let out = d.join(format!("students/{kind}"));
        let out_s = out.to_str().unwrap();
        // Two epochs, then a re-run asking for three resumes from the checkpoint of epoch 2.
        ok(d, &db, &train_args(kind, out_s, "2", base));
        let text = ok(d, &db, &train_args(kind, out_s, "3", base));
        assert!(text.contains("resumed after epoch 2"), "{text}");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("student.json")).unwrap())
                .unwrap();
        let trained = &config["trained"];
        assert_eq!(trained["epochs_done"], 3);
        assert_eq!(
            trained["steps_done"], 9,
            "24 pairs in batches of 8, three epochs"
        );
        assert_eq!(trained["step_losses"].as_array().unwrap().len(), 9);
        let epochs: Vec<f64> = trained["epoch_losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            epochs[2] < epochs[0],
            "{kind}: the training loss goes down over epochs: {epochs:?}"
        );

        let text = ok(d, &db, &["student", "score", "--name", kind]);
        assert!(text.contains("scored 24 pairs"), "{text}");
        let first = scores(&db, kind);
        assert_eq!(first.len(), 24);
        for (_, score, dist) in &first {
            assert!((0.0..=1.0).contains(score));
            let d: Vec<f64> = serde_json::from_str(dist).unwrap();
            assert_eq!(d.len(), 4);
            assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        }
        let distinct: std::collections::BTreeSet<String> =
            first.iter().map(|s| format!("{:.6}", s.1)).collect();
        assert!(distinct.len() > 10, "{kind}: scores vary over pairs");
        // Scoring again adds nothing; the saved model, reloaded under another name, scores the same.
        let text = ok(d, &db, &["student", "score", "--name", kind]);
        assert!(text.contains("scored 0 pairs"), "{text}");
        let copy = format!("{kind}-reloaded");
        ok(
            d,
            &db,
            &["student", "score", "--model", out_s, "--name", &copy],
        );
        let again = scores(&db, &copy);
        assert_eq!(again.len(), first.len());
        for (a, b) in first.iter().zip(&again) {
            assert_eq!(a.0, b.0);
            assert!((a.1 - b.1).abs() < 1e-6, "{kind}: {a:?} vs {b:?}");
        }
    }

    let c: serde_json::Value =
        serde_json::from_str(&ok(d, &db, &["compare", "--student", "cross", "--json"])).unwrap();
    assert_eq!(c["pairs"], 24, "every pair the student scored");
    assert_eq!(c["judged_pairs"], 2, "the two pairs the teacher judged");
    assert_eq!(c["teacher_vs_human"]["n"], 2);
    assert_eq!(c["student_vs_human"]["n"], 24);
    assert_eq!(
        c["student_vs_human_judged"]["n"], 2,
        "the student on the teacher's pairs"
    );
    let per_label = c["student_vs_human"]["per_label"].as_array().unwrap();
    assert_eq!(per_label.len(), 4);
    assert_eq!(
        per_label
            .iter()
            .map(|l| l["support"].as_u64().unwrap())
            .sum::<u64>(),
        24
    );
    assert!(c["ndcg10_student"].as_f64().is_some());
    assert_eq!(c["disagreements"].as_array().unwrap().len(), 2);
    let text = ok(d, &db, &["compare", "--student", "bi"]);
    assert!(
        text.contains("student vs human")
            && text.contains("NDCG@10")
            && text.contains("student vs human, per label:")
            && text.contains("human ↓  student →"),
        "{text}"
    );

    // The review app's compare view: the newest student (the reloaded bi-encoder) against the
    // teacher, with the scatter, the figures and the largest differences; ⏎ opens a pair and
    // Esc comes back.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut app = App::new(store, "ana").await.unwrap();
        app.update(Action::Compare).await.unwrap();
        app.settle().await.unwrap();
        assert_eq!(app.view, View::Compare);
        let s = screen_of(&app, 160, 44);
        assert!(
            s.contains(
                "teacher vs student `bi-reloaded` · 2 pairs both scored (24 by the student)"
            ) && s.contains("student vs human")
                && s.contains("largest differences")
                && s.contains("scores"),
            "{s}"
        );
        let braille = s
            .chars()
            .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
            .count();
        assert!(braille > 0, "the scatter is drawn: {s}");
        app.update(Action::Down).await.unwrap();
        let second = app.compare.as_ref().unwrap().comparison.disagreements[1].pair_id;
        app.update(Action::Open).await.unwrap();
        assert_eq!(app.view, View::Detail);
        assert_eq!(app.detail.as_ref().unwrap().pair.id, second);
        app.update(Action::Back).await.unwrap();
        assert_eq!(app.view, View::Compare);
        app.update(Action::Back).await.unwrap();
        assert_eq!(app.view, View::Queue);
    });
}

#[test]
fn student_import_takes_a_good_file_and_names_the_line_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let good = d.join("preds.jsonl");
    std::fs::write(
        &good,
        concat!(
            r#"{"query_id": "73232", "product_id": "B07N6VYKD3", "score": 0.2}"#, "\n",
            r#"{"query_id": "43675", "product_id": "B005QLJC1Q", "distribution": {"E": 0.7, "S": 0.2, "C": 0.05, "I": 0.05}}"#, "\n",
            r#"{"query_id": "56674", "product_id": "B07XSGLYBS", "score": 0.9, "distribution": [0.9, 0.1, 0, 0]}"#, "\n",
        ),
    )
    .unwrap();
    let text = ok(
        d,
        &db,
        &[
            "student",
            "import",
            good.to_str().unwrap(),
            "--name",
            "external",
        ],
    );
    assert!(text.contains("3 predictions"), "{text}");
    let s = scores(&db, "external");
    assert_eq!(s.len(), 3);
    assert!(
        (s[1].1 - (0.7 + 0.2 * 0.1 + 0.05 * 0.01)).abs() < 1e-9,
        "{s:?}"
    );

    let csv = d.join("preds.csv");
    std::fs::write(
        &csv,
        "query_id,product_id,score\n73232,B07N6VYKD3,0.4\n40834,B00GWP0WUK,0.6\n",
    )
    .unwrap();
    ok(
        d,
        &db,
        &[
            "student",
            "import",
            csv.to_str().unwrap(),
            "--name",
            "from-csv",
        ],
    );
    assert_eq!(scores(&db, "from-csv").len(), 2);

    // Parquet (as pandas writes it) reads like JSONL.
    let pq = d.join("preds.parquet");
    python(
        "import sys, pandas as p; p.read_csv(sys.argv[1], dtype={'query_id': str}).to_parquet(sys.argv[2])",
        &[&csv, &pq],
    );
    ok(
        d,
        &db,
        &[
            "student",
            "import",
            pq.to_str().unwrap(),
            "--name",
            "from-parquet",
        ],
    );
    assert_eq!(scores(&db, "from-parquet"), scores(&db, "from-csv"));

    for (body, line, field) in [
        (
            "{\"query_id\": \"73232\", \"product_id\": \"B07N6VYKD3\", \"score\": 0.2}\n{\"query_id\": \"73232\", \"product_id\": \"NOPE\", \"score\": 0.2}\n",
            2,
            "no pair 73232/NOPE",
        ),
        (
            "{\"query_id\": \"73232\", \"product_id\": \"B07N6VYKD3\", \"score\": 0.2}\n\n{\"query_id\": \"73232\", \"product_id\": \"B07N6VYKD3\", \"score\": \"high\"}\n",
            3,
            "score: not a number",
        ),
    ] {
        let bad = d.join("bad.jsonl");
        std::fs::write(&bad, body).unwrap();
        let out = workbench(
            d,
            &db,
            &["student", "import", bad.to_str().unwrap(), "--name", "bad"],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("bad.jsonl:{line}:")) && err.contains(field),
            "{err}"
        );
        assert!(
            scores(&db, "bad").is_empty(),
            "nothing of a bad file is stored"
        );
    }
}

/// A training run killed (SIGKILL) after its first finished epoch resumes from that checkpoint:
/// the re-run says where it resumed, finishes every epoch, and its record holds each step once.
/// Human labels only (no teacher needed), two layers: the kill lands mid-run, not after it.
#[test]
fn a_killed_training_run_resumes_after_its_last_finished_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let base = student_base();
    let out = d.join("killed");
    let args = [
        "student",
        "train",
        "--out",
        out.to_str().unwrap(),
        "--losses",
        "none",
        "--encoder",
        "fine-tune",
        "--layers",
        "2",
        "--max-tokens",
        "32",
        "--epochs",
        "4",
        "--batch-size",
        "32",
        "--split",
        "by-query:80/20",
        "--base",
        base.to_str().unwrap(),
    ];
    let state = out.join("checkpoint/state.json");
    kill_at_checkpoint(d, &db, &args, &state);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let done = saved["epochs_done"].as_u64().unwrap();
    assert!(done < 4, "killed mid-run, after epoch {done}");
    assert!(
        !out.join("student.json").exists(),
        "no final model from a killed run"
    );

    let text = ok(d, &db, &args);
    assert!(
        text.contains(&format!("resumed after epoch {done}")),
        "{text}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("student.json")).unwrap()).unwrap();
    let trained = &config["trained"];
    assert_eq!(trained["epochs_done"], 4);
    let per_epoch = trained["steps_done"].as_u64().unwrap() / 4;
    assert_eq!(
        trained["step_losses"].as_array().unwrap().len() as u64,
        4 * per_epoch,
        "every step once: the killed epoch's steps were done again, not twice"
    );
    // The dev split was scored after every epoch and the best epoch's weights kept.
    let dev = trained["dev"].as_array().unwrap();
    assert_eq!(dev.len(), 4);
    let best = trained["best_epoch"].as_u64().unwrap();
    let best_f1 = dev[best as usize - 1]["macro_f1"].as_f64().unwrap();
    assert!(
        dev.iter()
            .all(|e| e["macro_f1"].as_f64().unwrap() <= best_f1)
    );
    assert!(text.contains(&format!("kept epoch {best}")), "{text}");
}

/// The defaults are the recipe that beat the lexical baseline on folds (BENCHMARKS.md): heads
/// only on the first 3 layers of a frozen bi-encoder, 64 tokens, reading each pair's place among
/// its query's candidates and the query's words in the item's text, 40 epochs, the last kept. Asking for the context while fine-tuning
/// the encoder, or of a cross-encoder, is refused.
#[test]
fn the_default_student_is_the_measured_recipe_keeps_its_last_epoch_and_scores_by_query() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let base = student_base();
    let out = d.join("recipe");
    let args = vec![
        "student",
        "train",
        "--out",
        out.to_str().unwrap(),
        "--split",
        "by-query:50/25/25",
        "--base",
        base.to_str().unwrap(),
    ];
    for (extra, says) in [
        (
            &["--query-context", "--encoder", "fine-tune"][..],
            "--query-context needs the encoder frozen",
        ),
        (
            &["--query-context", "--kind", "cross"][..],
            "--query-context is for the bi-encoder",
        ),
    ] {
        let mut with = args.clone();
        with.extend_from_slice(extra);
        let o = workbench(d, &db, &with);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{err}");
    }
    assert!(!out.join("student.json").exists());

    let mut with = args.clone();
    with.extend(["--name", "recipe"]);
    let text = ok(d, &db, &with);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("student.json")).unwrap()).unwrap();
    let trained = &config["trained"];
    assert_eq!(config["kind"], "bi", "{config}");
    assert_eq!(config["query_context"], true, "{config}");
    assert_eq!(config["lexical"], true, "{config}");
    assert_eq!(config["max_tokens"], 64, "{config}");
    assert_eq!(config["bert"]["num_hidden_layers"], 3, "{config}");
    assert_eq!(config["losses"]["head_l2"], 0.003, "{config}");
    assert_eq!(trained["kept_epoch"], 40, "{trained}");
    assert_eq!(trained["dev"].as_array().unwrap().len(), 40);
    assert!(text.contains("kept epoch 40"), "{text}");
    let text = ok(d, &db, &["student", "score", "--name", "recipe"]);
    assert!(text.contains("scored 200 pairs"), "{text}");
    // Scored a query at a time: reloaded and scored over the test split alone, a test pair
    // scores as it did among all pairs.
    let first = scores(&db, "recipe");
    ok(
        d,
        &db,
        &[
            "student",
            "score",
            "--model",
            out.to_str().unwrap(),
            "--name",
            "again",
            "--split",
            "test",
        ],
    );
    let again = scores(&db, "again");
    assert!(!again.is_empty() && again.len() < first.len());
    for b in &again {
        let a = first.iter().find(|a| a.0 == b.0).unwrap();
        assert!((a.1 - b.1).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

/// A teacher that agrees with the gold labels on two pairs in three, its judgments written into
/// the SQLite file as `teach` stores them (`workbench check` then derives each pair's picked
/// judgment): the default `student train` trusts it (κ on dev above 0), so it trains a student
/// with its terms and one without, prints both, keeps the one with the better dev macro-F1 in
/// OUT and both in OUT/candidates/; the kept student scores pairs.
#[test]
fn the_default_student_keeps_a_trusted_teacher_only_if_its_student_wins_on_dev() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    python(
        "import sqlite3, sys, json
c = sqlite3.connect(sys.argv[1])
keys = ['E', 'S', 'C', 'I']
rows = c.execute('SELECT id, gold_label FROM pairs ORDER BY id').fetchall()
for i, (pair, gold) in enumerate(rows):
    said = keys[(keys.index(gold) + 1) % 4] if i % 3 == 0 else gold
    p = [0.9 if k == said else 0.1 / 3 for k in keys]
    c.execute(\"INSERT INTO judgments (pair_id, model, prompt_hash, mode, label, distribution, \"
              \"dist_source, raw_output) VALUES (?, 'synthetic', 'h', 'score', ?, ?, 'logprobs', ?)\",
              (pair, said, json.dumps(p), said))
c.commit()",
        &[&db],
    );
    assert!(ok(d, &db, &["check"]).contains("repaired the picked judgment of 200 pairs"));
    let base = student_base();
    let out = d.join("st");
    let text = ok(
        d,
        &db,
        &[
            "student",
            "train",
            "--out",
            out.to_str().unwrap(),
            "--split",
            "by-query:60/20/20",
            "--base",
            base.to_str().unwrap(),
        ],
    );
    assert!(
        text.contains("the teacher's kappa with the human labels of 40 dev pairs"),
        "{text}"
    );
    let candidates: Vec<&str> = text.lines().filter(|l| l.contains("candidate:")).collect();
    assert_eq!(candidates.len(), 2, "{text}");
    assert!(
        text.contains("(the kept candidate; the 2 candidates took"),
        "{text}"
    );
    assert_eq!(
        candidates.iter().filter(|l| l.ends_with("← kept")).count(),
        1,
        "{text}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("student.json")).unwrap()).unwrap();
    let trained = &config["trained"];
    let c = trained["candidates"].as_array().unwrap();
    let f1 = |i: usize| c[i]["dev"]["macro_f1"].as_f64().unwrap();
    let kept = if f1(0) > f1(1) { 0 } else { 1 };
    assert!(c[0]["teacher_weight"].as_f64().unwrap() > 0.3, "{c:?}");
    assert_eq!(c[1]["teacher_weight"], 0.0);
    assert_eq!(trained["teacher_weight"], c[kept]["teacher_weight"]);
    let kept_dir = out
        .join("candidates")
        .join(["with-teacher", "without-teacher"][kept]);
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        std::fs::read(kept_dir.join("model.safetensors")).unwrap(),
        "OUT holds the kept candidate"
    );
    let scored = ok(d, &db, &["student", "score", "--name", "st"]);
    assert!(scored.contains("200"), "{scored}");
    assert_eq!(scores(&db, "st").len(), 200);
}
