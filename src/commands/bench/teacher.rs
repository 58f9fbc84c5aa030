//! The local teacher's speed, parse rate and agreement in several configurations.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::domain::LabelScale;
use crate::domain::PairKey;
use crate::ingest::FieldMap;
use crate::store::PairFilter;
use crate::store::Store;
use crate::teacher::gguf::Weights;
use crate::teacher::local::Activations;
use crate::teacher::run::{TeachOptions, teach};
use crate::teacher::{Mode, TeacherConfig};

/// One teacher configuration the benchmark measures.
struct TeacherRow {
    name: &'static str,
    mode: Mode,
    weights: Weights,
    activations: Activations,
    prefix_cache: bool,
    examples: bool,
    concurrency: usize,
    detail_chars: Option<usize>,
}

const TEACHER_ROWS: [TeacherRow; 16] = {
    const fn row(
        name: &'static str,
        mode: Mode,
        (weights, activations): (Weights, Activations),
        prefix_cache: bool,
        examples: bool,
        concurrency: usize,
    ) -> TeacherRow {
        TeacherRow {
            name,
            mode,
            weights,
            activations,
            prefix_cache,
            examples,
            concurrency,
            detail_chars: None,
        }
    }
    const fn short(mut r: TeacherRow, detail_chars: usize) -> TeacherRow {
        r.detail_chars = Some(detail_chars);
        r
    }
    // "before": the file as shipped, F16 activations (what GgufModelBuilder picks on a CPU).
    const BEFORE: (Weights, Activations) = (Weights::AsIs, Activations::F16);
    const Q8: (Weights, Activations) = (Weights::Q8_0, Activations::F32);
    const Q8_F16: (Weights, Activations) = (Weights::Q8_0, Activations::F16);
    const F32: (Weights, Activations) = (Weights::F32, Activations::F32);
    [
        row("cot-before", Mode::Cot, BEFORE, true, true, 1),
        row("cot-q8-f16", Mode::Cot, Q8_F16, true, true, 1),
        row("cot-q8", Mode::Cot, Q8, true, true, 1),
        row("cot-q8-nocache", Mode::Cot, Q8, false, true, 1),
        row("cot-q8-noex", Mode::Cot, Q8, true, false, 1),
        row("cot-q8-c4", Mode::Cot, Q8, true, true, 4),
        row("cot-f32", Mode::Cot, F32, true, true, 1),
        row("score-before", Mode::Score, BEFORE, true, true, 1),
        row("score-q8-f16", Mode::Score, Q8_F16, true, true, 1),
        row("score-q8", Mode::Score, Q8, true, true, 1),
        row("score-q8-noex", Mode::Score, Q8, true, false, 1),
        row("score-q8-c4", Mode::Score, Q8, true, true, 4),
        row("score-f32", Mode::Score, F32, true, true, 1),
        row("score-f32-c4", Mode::Score, F32, true, true, 4),
        short(row("score-f32-d100", Mode::Score, F32, true, true, 1), 100),
        short(row("score-f32-d0", Mode::Score, F32, true, true, 1), 0),
    ]
};

/// The configuration names `bench teacher --configs` takes.
fn teacher_row_names() -> Vec<&'static str> {
    TEACHER_ROWS.iter().map(|r| r.name).collect()
}

/// Judges `n` pairs of `fixture` in each configuration named in `configs` and prints tokens/s,
/// pairs/min, the parse rate and the agreement with the file's gold labels.
pub async fn teacher(
    n: usize,
    model: Option<PathBuf>,
    fixture: &Path,
    configs: &[String],
) -> Result<ExitCode> {
    let rows: Vec<&TeacherRow> = configs
        .iter()
        .map(|c| {
            TEACHER_ROWS.iter().find(|r| r.name == c).with_context(|| {
                format!(
                    "--configs: unknown configuration {c:?}; known: {}",
                    teacher_row_names().join(", ")
                )
            })
        })
        .collect::<Result<_>>()?;
    let dir = tempfile_dir()?;
    // Each configuration judges into a database of its own: rows that share a model and a
    // prompt would otherwise find their pairs judged already.
    let open = |name: &str| {
        let db = dir.join(format!("teacher-bench-{name}.db"));
        async move {
            let store = Store::create(&db).await?;
            store.set_scale(&LabelScale::esci()).await?;
            crate::commands::import_file(&store, fixture, FieldMap::default(), false, false)
                .await?;
            anyhow::Ok(store)
        }
    };
    let store = open("pairs").await?;
    // Every tenth pair, as the earlier figures in BENCHMARKS.md were taken, so that rows compare:
    // ten different queries in the fixture, so prompts share no more than the prefix. The pair
    // after the first one warms the engine up.
    let first = store.first_pairs(10 * n).await?;
    store.close().await;
    let pairs: Vec<_> = first.iter().step_by(10).take(n).cloned().collect();
    let key = |p: &crate::domain::Pair| PairKey {
        query_id: p.query.ext_id.clone(),
        product_id: p.item.ext_id.clone(),
    };
    let measured = PairFilter::Keys(pairs.iter().map(key).collect());
    let warm_up = PairFilter::Keys(first.iter().skip(1).take(1).map(key).collect());
    println!(
        "teacher benchmark: {} pairs of {}, model {}, {} threads",
        pairs.len(),
        fixture.display(),
        model
            .clone()
            .unwrap_or_else(crate::models::teacher)
            .display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>7} {:>7} {:>6}",
        "configuration",
        "prompt t/s",
        "gen t/s",
        "pairs/min",
        "pairs/s",
        "parsed",
        "= gold",
        "in tok",
        "out tok",
        "other"
    );
    for row in rows {
        let local = crate::teacher::local::LocalOptions {
            prefix_cache: row.prefix_cache,
            weights: row.weights,
            activations: row.activations,
            ..Default::default()
        };
        let backend = crate::teacher::open_backend(
            model.as_deref(),
            None,
            "",
            crate::teacher::http::HttpLimits::default(),
            local,
        )
        .await?;
        let config = TeacherConfig {
            mode: row.mode,
            samples: 1,
            // The `score-before` row decodes up to 8 tokens (the whole label name), as score mode
            // once did, to show what stopping after the label's first token saves.
            max_tokens: (row.name == "score-before").then_some(8),
            with_examples: row.examples,
            detail_chars: row.detail_chars,
            penalties: Default::default(),
            evidence: false,
        };
        // The loop `workbench teach` runs, on this row's own copy of the pairs.
        let options = |filter: &PairFilter| TeachOptions {
            filter: filter.clone(),
            limit: None,
            config: config.clone(),
            concurrency: Some(row.concurrency),
            show_progress: false,
            worker: None,
            lease: crate::teacher::claims::DEFAULT_LEASE,
        };
        let store = open(row.name).await?;
        teach(&store, backend.clone(), &options(&warm_up)).await?;
        let report = teach(&store, backend, &options(&measured)).await?;
        let ids = store
            .pair_ids(&pairs.iter().map(key).collect::<Vec<_>>())
            .await?;
        let mut gold = 0;
        for p in &pairs {
            let id = ids[&key(p)];
            let judgments = store.judgments_of(id).await?;
            let label = crate::store::pick_judgment(&judgments).and_then(|j| j.label.clone());
            gold += usize::from(label.is_some() && label == p.gold_label);
        }
        store.close().await;
        let (secs, pt, ct) = (report.secs, report.prompt_tokens, report.completion_tokens);
        let (ps, cs) = (report.prompt_secs, report.completion_secs);
        let n = report.judged as f64;
        println!(
            "{:<16} {:>10.1} {:>10} {:>10.1} {:>10.2} {:>5}/{} {:>5}/{} {:>7.0} {:>7.0} {:>5.0}%",
            row.name,
            // One-token answers come back with no engine timings: the wall clock then counts.
            pt as f64 / if ps > 0.01 * secs { ps } else { secs },
            if cs > 0.0 {
                format!("{:.1}", ct as f64 / cs)
            } else {
                "-".into()
            },
            n / secs * 60.0,
            n / secs,
            report.judged - report.parse_errors,
            report.judged,
            gold,
            report.judged,
            pt as f64 / n,
            ct as f64 / n,
            // Time outside the engine's prompt and generation phases (scheduling, grammar, IO).
            (1.0 - (ps + cs) / secs).max(0.0) * 100.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("workbench-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
