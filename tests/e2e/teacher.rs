//! The teacher end to end: the real SmolLM2 GGUF through mistral.rs, a real SQLite file, the
//! real binary; and the HTTP backend against mistral.rs's own OpenAI-compatible server.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Every judgment in the database, as `show --json` would list them, via SQL.
fn judgments(db: &Path) -> Vec<Value> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
        let rows = sqlx::query(
            "SELECT pair_id, model, prompt_hash, mode, label, distribution, dist_source, rationale, parse_error, \
             raw_output, confidence FROM judgments ORDER BY id",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "pair_id": r.get::<i64, _>(0),
                    "model": r.get::<String, _>(1),
                    "prompt_hash": r.get::<String, _>(2),
                    "mode": r.get::<String, _>(3),
                    "label": r.get::<Option<String>, _>(4),
                    "distribution": serde_json::from_str::<Value>(&r.get::<String, _>(5)).unwrap(),
                    "dist_source": r.get::<String, _>(6),
                    "rationale": r.get::<Option<String>, _>(7),
                    "parse_error": r.get::<Option<String>, _>(8),
                    "raw_output": r.get::<String, _>(9),
                    "confidence": r.get::<Option<f64>, _>(10),
                })
            })
            .collect()
    })
}

fn probs(j: &Value) -> Vec<f64> {
    j["distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect()
}

/// The checks every stored judgment must pass, whatever the model said.
fn assert_well_formed(j: &Value, model: &str, mode: &str) {
    let p = probs(j);
    assert_eq!(p.len(), 4, "{j}");
    assert!(
        (p.iter().sum::<f64>() - 1.0).abs() < 1e-6,
        "distribution does not sum to 1: {j}"
    );
    assert!(p.iter().all(|x| (0.0..=1.0).contains(x)));
    assert_eq!(j["model"], model);
    assert_eq!(j["mode"], mode);
    assert_eq!(j["prompt_hash"].as_str().unwrap().len(), 12);
    match (j["rationale"].as_str(), j["parse_error"].as_str()) {
        (Some(r), None) => {
            let r: Value = serde_json::from_str(r).unwrap();
            assert!(
                ["E", "S", "C", "I"].contains(&r["label"].as_str().unwrap()),
                "{r}"
            );
            assert_eq!(r["label"], j["label"]);
            assert!(!r["dimensions"].as_array().unwrap().is_empty());
        }
        (None, Some(e)) => assert!(!e.is_empty() && j["raw_output"].is_string()),
        (None, None) if mode == "score" => assert!(j["label"].is_string()),
        other => panic!("a judgment needs a rationale or a parse error, got {other:?}: {j}"),
    }
}

#[test]
fn smollm2_through_mistralrs_judges_five_fixture_pairs() {
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let out = ok(
        dir.path(),
        &db,
        &[
            "teach",
            "--limit",
            "5",
            "--workers",
            "2",
            "--model",
            model.to_str().unwrap(),
        ],
    );
    assert!(out.contains("judged 5 of 5 pairs"), "{out}");
    let js = judgments(&db);
    // Two worker processes, each its own run, judged between them the five pairs a single
    // process would have: the first five, each once.
    let mut judged: Vec<i64> = js.iter().map(|j| j["pair_id"].as_i64().unwrap()).collect();
    judged.sort();
    assert_eq!(judged, [1, 2, 3, 4, 5]);
    let workers: Vec<(String,)> = query_rows(
        &db,
        "SELECT json_extract(params, '$.worker') FROM teacher_runs ORDER BY 1",
    );
    assert_eq!(workers, [("0/2".to_string(),), ("1/2".to_string(),)]);
    for j in &js {
        assert_well_formed(j, "SmolLM2-135M-Instruct.Q4_1", "cot");
    }
    // The distribution comes from the label position's log-probabilities, and it moves with the
    // pair: a constant distribution across pairs would mean it is not read from the model.
    let from_logprobs: Vec<Vec<f64>> = js
        .iter()
        .filter(|j| j["dist_source"] == "logprobs")
        .map(probs)
        .collect();
    assert!(
        from_logprobs.len() >= 3,
        "too few distributions from log-probabilities: {js:?}"
    );
    assert!(
        from_logprobs.iter().any(|p| p != &from_logprobs[0]),
        "constant distribution: {from_logprobs:?}"
    );
    assert!(
        from_logprobs
            .iter()
            .all(|p| p.iter().filter(|x| **x > 0.0).count() >= 2),
        "one-hot: {from_logprobs:?}"
    );

    // The run records how the model ran: the shipped Q4_1 prepared once as Q8_0.
    let params: Vec<(String,)> = query_rows(&db, "SELECT params FROM teacher_runs");
    let params: Value = serde_json::from_str(&params[0].0).unwrap();
    assert_eq!(params["backend"]["weights"], "q8_0", "{params}");
    assert_eq!(
        params["backend"]["file"],
        "SmolLM2-135M-Instruct.Q4_1.prepared-Q8_0.gguf"
    );
    assert_eq!(params["backend"]["activations"], "f32");

    // show prints the pair, the steps and the bars; --json the same as one object.
    let first = js.iter().find(|j| j["pair_id"] == 1).unwrap();
    let shown = ok(dir.path(), &db, &["show", "73232", "B07N6VYKD3"]);
    assert!(
        shown.contains("newborn hospital essentials")
            && shown.contains("SmolLM2-135M-Instruct.Q4_1"),
        "{shown}"
    );
    assert!(
        shown.contains("Exact") && shown.contains("Irrelevant") && shown.contains('█'),
        "{shown}"
    );
    let v: Value = serde_json::from_str(&ok(
        dir.path(),
        &db,
        &["show", "73232", "B07N6VYKD3", "--json"],
    ))
    .unwrap();
    let dist = v["judgments"][0]["distribution"].as_object().unwrap();
    let mut keys: Vec<&String> = dist.keys().collect();
    keys.sort();
    assert_eq!(keys, ["C", "E", "I", "S"]);
    assert_eq!(v["judgments"][0]["prompt_hash"], first["prompt_hash"]);

    // Re-running judges nothing twice.
    let again = ok(
        dir.path(),
        &db,
        &[
            "teach",
            "--limit",
            "1",
            "--only",
            "all",
            "--model",
            model.to_str().unwrap(),
        ],
    );
    assert!(again.contains("judged 1 of 1"), "{again}");
    let js = judgments(&db);
    assert_eq!(js.len(), 6);
    let mut ids: Vec<i64> = js.iter().map(|j| j["pair_id"].as_i64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        6,
        "a pair was judged twice by the same model and prompt"
    );
}

#[test]
fn score_mode_and_self_consistency_give_distributions() {
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let m = model.to_str().unwrap();
    ok(
        dir.path(),
        &db,
        &[
            "teach",
            "--mode",
            "score",
            "--limit",
            "4",
            "--workers",
            "1",
            "--model",
            m,
        ],
    );
    let js = judgments(&db);
    assert_eq!(js.len(), 4);
    for j in &js {
        assert_well_formed(j, "SmolLM2-135M-Instruct.Q4_1", "score");
        assert_eq!(j["dist_source"], "logprobs", "{j}");
    }
    ok(
        dir.path(),
        &db,
        &[
            "teach",
            "--samples",
            "2",
            "--only",
            "40834/B00GWP0WUK",
            "--model",
            m,
        ],
    );
    let js = judgments(&db);
    let voted = js.iter().find(|j| j["mode"] == "cot").unwrap();
    assert_well_formed(voted, "SmolLM2-135M-Instruct.Q4_1", "cot");
    if voted["dist_source"] == "votes" {
        // Up to two votes (a sample that does not parse does not vote): every share is a
        // multiple of 1/k for the k samples that voted, and the agreement is the largest share.
        let p = probs(voted);
        let whole = |k: f64| p.iter().all(|x| ((x * k) - (x * k).round()).abs() < 1e-9);
        assert!(whole(1.0) || whole(2.0), "{p:?}");
        let max = p.iter().cloned().fold(0.0, f64::max);
        assert!((voted["confidence"].as_f64().unwrap() - max).abs() < 1e-9);
    } else {
        assert!(voted["parse_error"].is_string(), "{voted}");
    }
}

fn count_judgments(db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    judgments(db).len()
}

/// Ten fixture pairs of one query: score mode (about a second a pair) takes long enough that a
/// kill lands between judgments.
const TEN_PAIRS: &str = "73232/B07N6VYKD3,73232/B097SWY976,73232/B07BYLG8R8,73232/B01M8PJO3W,\
    73232/B08D37MFB9,73232/B083K2CXGH,73232/B07GFTYCSX,73232/B08TG7D5LF,73232/B01J8C1VVC,\
    73232/B00JRW7QCC";

/// `teach --mode score` of `TEN_PAIRS` with `model`, with `extra` options (e.g. `--workers 2`).
fn score_ten_pairs<'a>(model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["teach", "--mode", "score"];
    args.extend_from_slice(extra);
    args.extend(["--only", TEN_PAIRS, "--model", model]);
    args
}

/// Starts `workbench --db DB ARGS` and returns once it has committed its first judgment.
fn teach_until_first_judgment(
    dir: &Path,
    db: &Path,
    args: &[&str],
    output: fn() -> Stdio,
) -> std::process::Child {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while count_judgments(db) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no judgment within 5 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "teach ended before its first judgment was seen"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child
}

/// How many different pairs have a judgment (equal to the count: nothing judged twice).
fn distinct_judged_pairs(db: &Path) -> usize {
    let mut ids: Vec<i64> = judgments(db)
        .iter()
        .map(|j| j["pair_id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

#[test]
fn a_killed_teach_resumes_with_no_duplicate_and_no_loss() {
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    // A killed run loses its pair in flight the same way in either mode.
    let args = score_ten_pairs(model.to_str().unwrap(), &[]);
    let mut child = teach_until_first_judgment(dir.path(), &db, &args, Stdio::null);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // The workers (one per core by default) die with it; give the kernel a moment to reap them.
    std::thread::sleep(Duration::from_millis(300));
    let after_kill = count_judgments(&db);
    assert!(
        (1..10).contains(&after_kill),
        "{after_kill} judgments after the kill"
    );
    let out = ok(dir.path(), &db, &args);
    assert!(
        out.contains(&format!(
            "judged {} of {}",
            10 - after_kill,
            10 - after_kill
        )),
        "{out}"
    );
    assert_eq!(count_judgments(&db), 10);
    assert_eq!(distinct_judged_pairs(&db), 10);
}

/// The processes whose parent is `pid` (Linux: from /proc).
#[cfg(target_os = "linux")]
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // /proc/PID/stat: "PID (COMM) STATE PPID …"; COMM may hold spaces, so split after ')'.
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1) == Some(pid.to_string().as_str())
        })
        .collect()
}

#[test]
#[cfg(target_os = "linux")]
fn a_dead_worker_is_named_and_the_other_takes_the_rest() {
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let args = score_ten_pairs(model.to_str().unwrap(), &["--workers", "2"]);
    let child = teach_until_first_judgment(dir.path(), &db, &args, Stdio::piped);
    let workers = children_of(child.id());
    assert_eq!(workers.len(), 2, "workers: {workers:?}");
    // SAFETY: kill(2) on a process of this test's own run.
    unsafe { libc::kill(workers[1] as libc::pid_t, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("of 2 (signal: 9") && stderr.contains("run the same command again"),
        "{stderr}"
    );
    // The survivor judged everything that was left; only the pair the dead worker had in hand
    // (if any) is missing.
    let after = count_judgments(&db);
    assert!((9..=10).contains(&after), "{after} judgments: {stderr}");
    if after < 10 {
        let out = ok(dir.path(), &db, &args);
        assert!(out.contains("judged 1 of 1"), "{out}");
    }
    assert_eq!(count_judgments(&db), 10);
    assert_eq!(distinct_judged_pairs(&db), 10);
}

#[test]
fn bad_model_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let run = |model: &Path| {
        let out = workbench(
            dir.path(),
            &db,
            &["teach", "--limit", "1", "--model", model.to_str().unwrap()],
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = run(&dir.path().join("nope.gguf"));
    assert!(missing.contains("nope.gguf: cannot open it"), "{missing}");
    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "these are not weights").unwrap();
    let err = run(&text);
    assert!(
        err.contains("notes.gguf: not a readable GGUF file"),
        "{err}"
    );
    // A real GGUF header of an architecture the loader does not support.
    let gemma = dir.path().join("gemma3.gguf");
    std::fs::write(&gemma, gguf_header("gemma3")).unwrap();
    let err = run(&gemma);
    assert!(
        err.contains("architecture \"gemma3\" is not supported")
            && err.contains("llama, mistral3, phi2"),
        "{err}"
    );
    assert_eq!(count_judgments(&db), 0);
}

/// The shipped Q4_1 file, prepared as Q8_0: every Q4_1 matrix becomes Q8_0 with the same shape
/// and values within Q8_0's rounding; a second call reuses the file; a cut-off file is named.
#[test]
fn q4_1_weights_are_prepared_once_as_q8_0_with_the_same_values() {
    use candle_core::quantized::{GgmlDType, gguf_file};
    use workbench::teacher::gguf::{Weights, prepare};
    let model = teacher_model();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("teacher.gguf");
    std::os::unix::fs::symlink(&model, &link).unwrap();
    let mut notes = Vec::new();
    let out = prepare(&link, Weights::Q8_0, &mut |l| notes.push(l.to_string())).unwrap();
    assert_eq!(out, dir.path().join("teacher.prepared-Q8_0.gguf"));
    assert_eq!(notes.len(), 1, "{notes:?}");
    let read = |p: &Path| {
        let mut r = std::io::BufReader::new(std::fs::File::open(p).unwrap());
        let c = gguf_file::Content::read(&mut r).unwrap();
        (c, r)
    };
    let (src, mut src_r) = read(&model);
    let (dst, mut dst_r) = read(&out);
    assert_eq!(src.tensor_infos.len(), dst.tensor_infos.len());
    assert_eq!(src.metadata.len() + 1, dst.metadata.len()); // + the source's stamp
    let mut converted = 0;
    for (name, info) in &src.tensor_infos {
        let d = &dst.tensor_infos[name];
        assert_eq!(info.shape, d.shape, "{name}");
        if info.ggml_dtype != GgmlDType::Q4_1 {
            assert_eq!(info.ggml_dtype, d.ggml_dtype, "{name}");
            continue;
        }
        assert_eq!(d.ggml_dtype, GgmlDType::Q8_0, "{name}");
        converted += 1;
        if converted > 4 {
            continue; // the values of a few matrices are enough
        }
        let dev = candle_core::Device::Cpu;
        let a = src
            .tensor(&mut src_r, name, &dev)
            .unwrap()
            .dequantize(&dev)
            .unwrap();
        let b = dst
            .tensor(&mut dst_r, name, &dev)
            .unwrap()
            .dequantize(&dev)
            .unwrap();
        let max_abs = |t: candle_core::Tensor| {
            t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let max = max_abs(a.clone());
        let diff = max_abs((a - b).unwrap());
        assert!(diff <= max / 100.0, "{name}: max diff {diff} of max {max}");
    }
    assert!(converted >= 100, "only {converted} Q4_1 tensors");
    // Prepared once: the second call writes nothing.
    let modified = std::fs::metadata(&out).unwrap().modified().unwrap();
    let again = prepare(&link, Weights::Q8_0, &mut |l| notes.push(l.to_string())).unwrap();
    assert_eq!(again, out);
    assert_eq!(notes.len(), 1);
    assert_eq!(
        std::fs::metadata(&out).unwrap().modified().unwrap(),
        modified
    );
    // A different file under the same name is prepared again.
    std::fs::remove_file(&link).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&link, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&link)
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    prepare(&link, Weights::Q8_0, &mut |l| notes.push(l.to_string())).unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    // A file cut off in its tensor data: the error names it, and nothing is left behind.
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = format!(
        "{:#}",
        prepare(&cut, Weights::Q8_0, &mut |_| {}).unwrap_err()
    );
    assert!(err.contains("cut.gguf"), "{err}");
    assert!(!dir.path().join("cut.prepared-Q8_0.gguf").exists());
    assert_no_part_files(dir.path());
}

/// A conversion leaves no temporary file behind, whether it finished or failed.
fn assert_no_part_files(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Two conversions of the same file at once (parallel commands on a fresh models/ folder): each
/// is handed a whole prepared copy the moment it returns, while the other may still be writing.
#[test]
fn concurrent_preparations_each_get_a_whole_copy() {
    use workbench::teacher::gguf::{Weights, prepare};
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("teacher.gguf");
    std::fs::copy(teacher_model(), &model).unwrap();
    let read_whole = |path: &Path| {
        let mut f = std::fs::File::open(path).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
        for name in content.tensor_infos.keys() {
            content
                .tensor(&mut f, name, &candle_core::Device::Cpu)
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
        }
    };
    let outs: Vec<PathBuf> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let out = prepare(&model, Weights::Q8_0, &mut |_| {}).unwrap();
                    read_whole(&out);
                    out
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(outs[0], outs[1]);
    assert_no_part_files(dir.path());
}

/// A minimal GGUF v3 file: no tensors, one metadata entry `general.architecture`.
fn gguf_header(arch: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    let key = b"general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&(arch.len() as u64).to_le_bytes());
    b.extend_from_slice(arch.as_bytes());
    b
}

#[test]
fn an_unreachable_endpoint_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let out = workbench(
        dir.path(),
        &db,
        &[
            "teach",
            "--limit",
            "1",
            "--endpoint",
            "http://127.0.0.1:9/v1",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("http://127.0.0.1:9/v1/chat/completions is unreachable"),
        "{err}"
    );
    assert_eq!(count_judgments(&db), 0);
}

/// Starts mistral.rs's OpenAI-compatible server with the SmolLM2 GGUF on 127.0.0.1 and runs
/// `teach --endpoint` against it, in score mode (a distribution from the answer's logprobs) and
/// in CoT mode.
#[test]
fn http_backend_judges_through_a_real_openai_compatible_server() {
    use mistralrs::core::{ModelSelected, TokenSource};
    use mistralrs_server_core::mistralrs_for_server_builder::MistralRsForServerBuilder;
    use mistralrs_server_core::mistralrs_server_router_builder::MistralRsServerRouterBuilder;
    use workbench::teacher::gguf::{Weights, prepare};

    // The weights the local teacher loads (Q4_1 prepared once as Q8_0): candle has no SIMD
    // kernel for Q4_1, and the server would take twice as long on the shipped file.
    let model = prepare(&teacher_model(), Weights::Q8_0, &mut |_| {}).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = rt.block_on(async {
        let state = MistralRsForServerBuilder::new()
            .with_model(ModelSelected::GGUF {
                tok_model_id: None,
                quantized_model_id: model.parent().unwrap().to_string_lossy().into_owned(),
                quantized_filename: model.file_name().unwrap().to_string_lossy().into_owned(),
                dtype: Default::default(),
                topology: None,
                max_seq_len: 4096,
                max_batch_size: 1,
            })
            .with_token_source(TokenSource::None)
            .with_cpu(true)
            .build()
            .await
            .expect("mistral.rs server state");
        let router = MistralRsServerRouterBuilder::new()
            .with_mistralrs(state)
            .build()
            .await
            .expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        port
    });
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let endpoint = format!("http://127.0.0.1:{port}/v1");
    let teach = |mode: &str, limit: &str| {
        ok(
            dir.path(),
            &db,
            &[
                "teach",
                "--mode",
                mode,
                "--limit",
                limit,
                "--endpoint",
                &endpoint,
                "--api-model",
                "default",
                "--concurrency",
                "2",
            ],
        )
    };
    // Score mode: the label's distribution is read off the answer's logprobs.
    let out = teach("score", "2");
    assert!(out.contains("judged 2 of 2"), "{out}");
    let js = judgments(&db);
    assert_eq!(js.len(), 2);
    for j in &js {
        assert_well_formed(j, "default", "score");
        assert_eq!(j["dist_source"], "logprobs", "{j}");
    }
    // CoT mode: the rationale comes back in the JSON schema it was asked for.
    let out = teach("cot", "1");
    assert!(out.contains("judged 1 of 1"), "{out}");
    let js = judgments(&db);
    assert_eq!(js.len(), 3);
    assert_well_formed(&js[2], "default", "cot");
    drop(rt);
}

/// A one-token question with its label's log-probability asked for.
fn one_token_request() -> workbench::teacher::ChatRequest {
    use workbench::domain::prompt::{Message, Role};
    use workbench::teacher::{ChatRequest, OutputConstraint};
    ChatRequest {
        messages: vec![Message {
            role: Role::User,
            text: "Is a USB-C charger relevant to the query 'usb c charger'? Answer E, S, C or I."
                .into(),
        }],
        constraint: OutputConstraint::OneOf(vec!["E".into(), "S".into(), "C".into(), "I".into()]),
        max_tokens: 1,
        temperature: None,
        n: 1,
        top_logprobs: 4,
        penalties: Default::default(),
    }
}

/// The local engine is replaced every `recycle_after` requests (mistral.rs keeps every
/// finished sequence's KV cache on a CPU); a fresh engine answers exactly as the first did.
#[test]
fn a_recycled_engine_answers_as_the_first() {
    use workbench::teacher::backend::Backend;
    use workbench::teacher::local::{LocalBackend, LocalOptions};
    let model = teacher_model();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let options = LocalOptions {
            recycle_after: 2,
            ..LocalOptions::default()
        };
        let backend = LocalBackend::load(&model, options).await.unwrap();
        let mut answers = Vec::new();
        for _ in 0..5 {
            let c = backend.complete(one_token_request()).await.unwrap();
            let first = &c.choices[0];
            assert_eq!(first.error, None);
            answers.push((first.text.clone(), first.tokens[0].logprob));
        }
        // requests 1-2 on the first engine, 3-4 on a second, 5 on a third
        assert_eq!(backend.engines_replaced().await, 2);
        for a in &answers[1..] {
            assert_eq!(a.0, answers[0].0);
            assert!((a.1 - answers[0].1).abs() < 1e-4, "{answers:?}");
        }
    });
}

/// Moves a file's modification time a minute on, as rewriting it would.
fn touch_a_minute_on(path: &Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
}

/// The local teacher on `path`, its engine started afresh before every request but the first.
async fn fresh_engine_per_request(
    path: &Path,
    weights: workbench::teacher::gguf::Weights,
) -> workbench::teacher::local::LocalBackend {
    let options = workbench::teacher::local::LocalOptions {
        recycle_after: 1,
        weights,
        ..Default::default()
    };
    workbench::teacher::local::LocalBackend::load(path, options)
        .await
        .unwrap()
}

/// A fresh engine reloads the model from disk: a file rewritten since the run began (a model
/// tuned again to the same path) stops it, rather than answering with other weights under the
/// name its judgments carry; so does a removed file. A prepared copy made again from the same
/// file does not.
#[test]
fn a_model_file_rewritten_during_a_run_is_not_reloaded() {
    use workbench::teacher::backend::Backend;
    use workbench::teacher::gguf::Weights;
    use workbench::teacher::local::prepare;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t.gguf");
    std::fs::copy(teacher_model(), &model).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let backend = fresh_engine_per_request(&model, Weights::AsIs).await;
        backend.complete(one_token_request()).await.unwrap();
        // The same file: a fresh engine answers.
        backend.complete(one_token_request()).await.unwrap();
        assert_eq!(backend.engines_replaced().await, 1);
        // Rewritten (here only its modification time moves): refused, the file named.
        touch_a_minute_on(&model);
        let err = format!(
            "{:#}",
            backend.complete(one_token_request()).await.unwrap_err()
        );
        assert!(
            err.contains("t.gguf") && err.contains("rewritten or removed"),
            "{err}"
        );
        assert_eq!(backend.engines_replaced().await, 1);
        std::fs::remove_file(&model).unwrap();
        let err = format!(
            "{:#}",
            backend.complete(one_token_request()).await.unwrap_err()
        );
        assert!(err.contains("rewritten or removed"), "{err}");

        // A prepared copy made again from the same file (by a run started beside this one)
        // holds the same weights: a fresh engine loads it. Made from the file rewritten, not.
        let source = dir.path().join("u.gguf");
        std::fs::copy(teacher_model(), &source).unwrap();
        let backend = fresh_engine_per_request(&source, Weights::Q8_0).await;
        backend.complete(one_token_request()).await.unwrap();
        let prepared = prepare(&source, Weights::Q8_0);
        assert_ne!(prepared, source);
        std::fs::remove_file(&prepared).unwrap();
        assert_eq!(prepare(&source, Weights::Q8_0), prepared);
        backend.complete(one_token_request()).await.unwrap();
        assert_eq!(backend.engines_replaced().await, 1);
        touch_a_minute_on(&source);
        assert_eq!(prepare(&source, Weights::Q8_0), prepared);
        let err = format!(
            "{:#}",
            backend.complete(one_token_request()).await.unwrap_err()
        );
        assert!(err.contains("rewritten or removed"), "{err}");
    });
}

/// What the misbehaving server does with one request.
#[derive(Clone, Copy, Debug)]
enum Misbehave {
    Status(u16, Option<u64>),
    Drop,
    Slow(u64),
    NoLogprobs,
    Malformed,
}

/// An OpenAI-compatible server on 127.0.0.1 that answers its requests as `script` says, in
/// order (a good answer without log-probabilities once the script runs out), and records when
/// each request came.
fn misbehaving_server(
    script: Vec<Misbehave>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Instant>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Read the request (headers, then the body by its length) before answering.
            let mut request = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let index = {
                let mut seen = log.lock().unwrap();
                seen.push(Instant::now());
                seen.len() - 1
            };
            let action = script.get(index).copied().unwrap_or(Misbehave::NoLogprobs);
            std::thread::spawn(move || {
                let good = r#"{"choices":[{"message":{"content":"{\"label\": \"Exact\"}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#;
                let (status, extra, body) = match action {
                    Misbehave::Drop => return drop(stream),
                    Misbehave::Status(code, after) => (
                        code,
                        after
                            .map(|s| format!("Retry-After: {s}\r\n"))
                            .unwrap_or_default(),
                        format!("{{\"error\": \"status {code}\"}}"),
                    ),
                    Misbehave::Slow(secs) => {
                        std::thread::sleep(Duration::from_secs(secs));
                        (200, String::new(), good.to_string())
                    }
                    Misbehave::NoLogprobs => (200, String::new(), good.to_string()),
                    Misbehave::Malformed => (
                        200,
                        String::new(),
                        "<html><body>502 proxy hiccup".to_string(),
                    ),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (url, seen)
}

/// The HTTP backend against a server that fails in every way a real one does: 500, 429 with
/// Retry-After, a dropped connection, an answer past the timeout, an answer without
/// log-probabilities, a body that is not JSON, a 400, and a 503 that does not pass. Passing
/// failures are retried with growing waits; the others stop the run naming the endpoint; a
/// reply that is not a chat completion is kept as the pair's raw output; no pair is judged twice.
#[test]
fn the_http_backend_retries_what_passes_and_names_what_does_not() {
    use Misbehave::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let teach = |url: &str, limit: &str, attempts: &str| {
        workbench(
            d,
            &db,
            &[
                "teach",
                "--mode",
                "score",
                "--limit",
                limit,
                "--concurrency",
                "1",
                "--endpoint",
                url,
                "--endpoint-timeout",
                "1",
                "--endpoint-attempts",
                attempts,
            ],
        )
    };

    let (url, seen) = misbehaving_server(vec![
        Status(500, None),
        Status(429, Some(2)),
        Drop,
        Slow(3),
        NoLogprobs,
        Malformed,
    ]);
    let out = teach(&url, "3", "5");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("judged 3 of 3"), "{text}");
    let times = seen.lock().unwrap().clone();
    assert_eq!(
        times.len(),
        7,
        "four failed attempts, then one request per pair"
    );
    assert!(
        times[2] - times[1] >= Duration::from_secs(2),
        "Retry-After: 2 was obeyed"
    );
    assert!(times[1] - times[0] >= Duration::from_millis(500));
    let js = judgments(&db);
    assert_eq!(js.len(), 3);
    assert_eq!(js[0]["label"], "E");
    assert_eq!(
        js[0]["dist_source"], "parsed",
        "no log-probabilities: the label"
    );
    assert!(js[1]["label"].is_null());
    assert!(
        js[1]["parse_error"]
            .as_str()
            .unwrap()
            .contains("not an OpenAI chat completion"),
        "{}",
        js[1]
    );
    assert_eq!(js[1]["raw_output"], "<html><body>502 proxy hiccup");
    assert_eq!(js[2]["label"], "E");

    // A 400 stops at once, one request, naming the endpoint and the answer; a 503 that
    // persists stops after the attempts asked for. Neither stores anything.
    let (bad, seen) = misbehaving_server(vec![Status(400, None); 9]);
    let out = teach(&bad, "1", "5");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{bad}/chat/completions answered 400")),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (busy, seen) = misbehaving_server(vec![Status(503, None); 9]);
    let out = teach(&busy, "1", "2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{busy}/chat/completions answered 503"))
            && err.contains("attempt 2 of 2"),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(judgments(&db).len(), 3);

    // Run again against a good server: the next pairs, none twice.
    let (good, _) = misbehaving_server(Vec::new());
    let out = teach(&good, "2", "5");
    assert!(out.status.success());
    let js = judgments(&db);
    let pairs: std::collections::BTreeSet<i64> =
        js.iter().map(|j| j["pair_id"].as_i64().unwrap()).collect();
    assert_eq!((js.len(), pairs.len()), (5, 5));
}

/// Share of `model`'s judgments whose label is the pair's gold label.
fn agreement_with_gold(db: &Path, model: &str) -> (usize, f64) {
    let rows: Vec<(Option<String>, Option<String>)> = query_rows(
        db,
        &format!(
            "SELECT j.label, p.gold_label FROM judgments j JOIN pairs p ON p.id = j.pair_id \
             WHERE j.model = '{model}'"
        ),
    );
    let right = rows.iter().filter(|(l, g)| l.is_some() && l == g).count();
    (rows.len(), right as f64 / rows.len().max(1) as f64)
}

/// Judges every pair in score mode with the GGUF file at `model`.
fn judge_all_with(d: &Path, db: &Path, model: &Path) {
    ok(
        d,
        db,
        &[
            "teach",
            "--mode",
            "score",
            "--only",
            "all",
            "--model",
            model.to_str().unwrap(),
        ],
    );
}

/// The parameters of the teacher run of `model` (a file stem), as its judgments carry them.
fn run_params(db: &Path, model: &str) -> Value {
    let params: Vec<(String,)> = query_rows(
        db,
        &format!("SELECT params FROM teacher_runs WHERE model = '{model}'"),
    );
    serde_json::from_str(&params[0].0).unwrap()
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_tuned_teacher_learns_its_train_pairs_loads_in_mistralrs_and_resumes_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_subset_db(d, 16);
    let model = teacher_model();
    judge_all_with(d, &db, &model);
    let model = model.to_str().unwrap();

    // Every pair trains (one split weight); the answer is the gold label.
    let tune = |out: &str, epochs: &str| {
        vec![
            "teacher",
            "tune",
            "--model",
            model,
            "--out",
            out,
            "--split",
            "by-query:1",
            "--epochs",
            epochs,
            "--layers",
            "2",
            "--lr",
            "1e-3",
            "--batch",
            "4",
            "--evidence",
            "--json",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    // Killed after its first epoch's checkpoint, the run resumes from it.
    let args = tune("tuned/t.gguf", "8");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_at_checkpoint(d, &db, &args, &d.join("tuned/t.gguf.checkpoint/state.json"));
    assert!(
        !d.join("tuned/t.gguf").exists(),
        "a killed run left a model file"
    );
    let state: Value = serde_json::from_str(&ok(d, &db, &args)).unwrap();
    assert_eq!(state["resumed_at_epoch"], 1, "{state}");
    assert_eq!(state["examples"], 16, "{state}");
    let loss: Vec<f64> = state["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(loss.len(), 8);
    assert!(loss[7] < loss[0] / 2.0, "the loss does not fall: {loss:?}");

    // mistral.rs runs the written file, and its judgments name it and what it was tuned on.
    let tuned = d.join("tuned/t.gguf");
    judge_all_with(d, &db, &tuned);
    let (n_raw, raw) = agreement_with_gold(&db, "SmolLM2-135M-Instruct.Q4_1");
    let (n_tuned, learned) = agreement_with_gold(&db, "t");
    assert_eq!((n_raw, n_tuned), (16, 16));
    assert!(
        learned >= 0.75 && learned > raw,
        "the tuned teacher agrees with the gold labels of its train pairs on {learned:.2} \
         (the shipped one on {raw:.2})"
    );
    let params = run_params(&db, "t");
    let stamp = &params["backend"]["tuned"];
    assert_eq!(stamp["from"], "SmolLM2-135M-Instruct.Q4_1", "{params}");
    assert_eq!(stamp["data"], state["fingerprint"], "{params}");
    assert_eq!(stamp["pairs"], 16, "{params}");
    // Tuned with the words the item lacks named, it is asked with them, without being told.
    assert_eq!(stamp["evidence"], true, "{params}");
    let hashes: Vec<(String, String)> = query_rows(
        &db,
        "SELECT model, prompt_hash FROM teacher_runs GROUP BY model, prompt_hash ORDER BY MIN(id)",
    );
    assert_eq!(
        hashes,
        [
            (
                "SmolLM2-135M-Instruct.Q4_1".to_string(),
                score_prompt_hash(false)
            ),
            ("t".to_string(), score_prompt_hash(true)),
        ]
    );
    // Calibrated, the tuned teacher (the pairs' newest judgments) is fitted on dev pairs, not
    // on the pairs it learnt: here every pair is train, so nothing to fit on, nothing stored.
    let fitted: Value = serde_json::from_str(&ok(
        d,
        &db,
        &["teacher", "calibrate", "--split", "by-query:1", "--json"],
    ))
    .unwrap();
    let t = &fitted[0];
    assert_eq!(
        (&t["model"], &t["fitted_on"], &t["fit"]["samples"], &t["id"]),
        (&json!("t"), &json!("dev"), &json!(0), &Value::Null),
        "{fitted}"
    );
    // Asked again for what it has not judged, the pool hands out nothing: it looks for the
    // prompt its workers answer.
    let judged = || query_rows::<(i64,)>(&db, "SELECT COUNT(*) FROM judgments")[0].0;
    let before = judged();
    ok(
        d,
        &db,
        &[
            "teach",
            "--mode",
            "score",
            "--model",
            tuned.to_str().unwrap(),
        ],
    );
    assert_eq!(
        judged(),
        before,
        "pairs judged twice by one model and prompt"
    );

    // The same command again finds every epoch done and writes the same file.
    let before = sha256_of(&tuned);
    let again: Value = serde_json::from_str(&ok(d, &db, &args)).unwrap();
    assert_eq!(again["resumed_at_epoch"], 8, "{again}");
    assert_eq!(sha256_of(&tuned), before);
}

#[test]
fn the_default_models_are_found_from_any_folder() {
    // A fresh project folder holds no models/: the default teacher is the fetched one.
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let out = ok(
        dir.path(),
        &db,
        &["teach", "--mode", "score", "--limit", "1"],
    );
    assert!(out.contains("judged 1 of 1"), "{out}");
    // And so is the student base.
    ok(
        dir.path(),
        &db,
        &[
            "student",
            "train",
            "--out",
            "s",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--layers",
            "1",
        ],
    );
    assert!(dir.path().join("s/model.safetensors").exists());
}

#[test]
fn cot_tuning_learns_from_reviewed_rationales_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_subset_db(d, 24);
    let model = teacher_model();
    let model = model.to_str().unwrap();
    ok(d, &db, &["teach", "--limit", "2", "--model", model]);
    let args = [
        "teacher",
        "tune",
        "--mode",
        "cot",
        "--model",
        model,
        "--out",
        "cot.gguf",
        "--split",
        "by-query:1",
        "--epochs",
        "1",
        "--layers",
        "1",
        "--json",
    ];
    // Judged but not reviewed: nothing to learn from, and the error says what is missing.
    let out = workbench(d, &db, &args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reviewed rationale"), "{err}");

    // An annotator sets each judged pair's label: its rationale, so labelled, is an answer.
    let judged: Vec<(i64, i64, String)> = query_rows(
        &db,
        "SELECT p.id, j.id, p.gold_label FROM pairs p JOIN judgments j ON j.id = p.judgment_id",
    );
    assert_eq!(judged.len(), 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = workbench::store::Store::open(&db).await.unwrap();
        for (pair, judgment, gold) in &judged {
            let change = workbench::domain::review::Change::SetLabel {
                before: None,
                after: gold.clone(),
            };
            store
                .annotate(*pair, Some(*judgment), "ann", &change)
                .await
                .unwrap();
        }
        store.close().await;
    });
    let state: Value = serde_json::from_str(&ok(d, &db, &args)).unwrap();
    assert_eq!(state["examples"], 2, "{state}");
    // The answers are the rationale JSON, not a label.
    assert!(state["answer_tokens"].as_u64().unwrap() > 60, "{state}");
    assert!(d.join("cot.gguf").exists());
}

/// The hash of the default score-mode prompt, with or without the query's missing words.
fn score_prompt_hash(evidence: bool) -> String {
    workbench::domain::Prompt::configured(
        &workbench::domain::LabelScale::esci(),
        workbench::domain::Mode::Score,
        true,
        workbench::domain::prompt::ITEM_DETAIL_CHARS,
        evidence,
    )
    .hash
}

/// The prompt hashes a model's judgments were asked with.
fn judged_prompts(db: &Path, model: &str) -> Vec<String> {
    let rows: Vec<(String,)> = query_rows(
        db,
        &format!("SELECT DISTINCT prompt_hash FROM judgments WHERE model = '{model}'"),
    );
    rows.into_iter().map(|(h,)| h).collect()
}

#[test]
fn a_probe_teacher_chooses_its_depth_is_the_fitted_head_through_mistralrs_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The first 32 fixture pairs hold every label: a probe learns only labels it has seen.
    let db = fixture_subset_db(d, 32);
    let model = teacher_model();
    judge_all_with(d, &db, &model);
    let model = model.to_str().unwrap();
    let args = [
        "teacher",
        "tune",
        "--model",
        model,
        "--out",
        "p.gguf",
        "--split",
        "by-query:1",
        "--json",
    ];
    // Score mode fits a label head unless told otherwise. Killed once some states are kept,
    // the run resumes from them. Without a depth it keeps the states after blocks 6 to 18 of
    // the 30.
    let cache = d.join("p.gguf.checkpoint/probe-states.f32");
    let width = 13 * 576 * 4;
    kill_when(d, &db, &args, || {
        std::fs::metadata(&cache).is_ok_and(|m| m.len() >= width as u64)
    });
    assert!(!d.join("p.gguf").exists(), "a killed run left a model file");
    let state: Value = serde_json::from_str(&ok(d, &db, &args)).unwrap();
    let resumed = state["resumed_at_pair"].as_u64().unwrap_or(0);
    assert!((1..32).contains(&resumed), "{state}");
    assert_eq!(state["examples"], 32, "{state}");
    assert!(!cache.exists(), "the checkpoint outlived the finished run");
    let fitted = state["first_token_accuracy"][0].as_f64().unwrap();
    // The depth and C were chosen holding out each of the four queries in turn, every cell of
    // the grid reported.
    let choice = &state["probe"];
    let depth = choice["depth"].as_u64().unwrap();
    assert!((6..=18).contains(&depth), "{state}");
    assert_eq!(choice["folds"], 4, "{state}");
    assert_eq!(choice["grid"].as_array().unwrap().len(), 13 * 3, "{state}");

    // mistral.rs runs the cut network, and its labels are the head's: the share that match
    // the gold labels is the fit's own, every answer read.
    let probe = d.join("p.gguf");
    let judge = |mode: &str| {
        workbench(
            d,
            &db,
            &[
                "teach",
                "--mode",
                mode,
                "--only",
                "all",
                "--model",
                probe.to_str().unwrap(),
            ],
        )
    };
    assert!(judge("score").status.success());
    let (n_raw, raw) = agreement_with_gold(&db, "SmolLM2-135M-Instruct.Q4_1");
    let (n_probe, learned) = agreement_with_gold(&db, "p");
    assert_eq!((n_raw, n_probe), (32, 32));
    assert!(
        (learned - fitted).abs() <= 1.5 / 32.0,
        "through mistral.rs the probe agrees with gold on {learned:.3}; its fit on {fitted:.3}"
    );
    assert!(
        learned > raw,
        "the probe agrees with the gold labels of its train pairs on {learned:.2}, the shipped \
         teacher on {raw:.2}"
    );
    let unread: Vec<(i64,)> = query_rows(
        &db,
        "SELECT COUNT(*) FROM judgments WHERE model = 'p' AND label IS NULL",
    );
    assert_eq!(unread[0].0, 0);
    let params = run_params(&db, "p");
    assert_eq!(params["backend"]["tuned"]["probe_depth"], depth, "{params}");
    // Fitted on prompts that name the query's words the item lacks (a head's default), it is
    // asked with them, without being told.
    assert_eq!(params["backend"]["tuned"]["evidence"], true, "{params}");
    assert_eq!(judged_prompts(&db, "p"), [score_prompt_hash(true)]);
    // It answers labels only: a rationale is refused, with what to run instead.
    let cot = judge("cot");
    assert!(!cot.status.success());
    let err = String::from_utf8_lossy(&cot.stderr);
    assert!(err.contains("--mode score"), "{err}");

    // A depth given is the one cut at, only C cross-validated; mistral.rs runs that file too,
    // here on prompts without the missing words.
    let mut fixed = args.to_vec();
    fixed[5] = "q.gguf";
    fixed.splice(8..8, ["--probe-depth", "3", "--no-evidence"]);
    let state: Value = serde_json::from_str(&ok(d, &db, &fixed)).unwrap();
    assert_eq!(state["probe"]["depth"], 3, "{state}");
    assert_eq!(
        state["probe"]["grid"].as_array().unwrap().len(),
        3,
        "{state}"
    );
    judge_all_with(d, &db, &d.join("q.gguf"));
    let params = run_params(&db, "q");
    assert_eq!(params["backend"]["tuned"]["probe_depth"], 3, "{params}");
    assert_eq!(params["backend"]["tuned"]["evidence"], false, "{params}");
    assert_eq!(judged_prompts(&db, "q"), [score_prompt_hash(false)]);
    let (n_q, _) = agreement_with_gold(&db, "q");
    assert_eq!(n_q, 32);
}
