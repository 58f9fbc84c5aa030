//! `workbench bench`: throughput measurements that BENCHMARKS.md records. Not tests: they print
//! numbers for a person to compare, on this machine, with the command that produced them.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::domain::LabelScale;
use crate::ingest::FieldMap;
use crate::store::Store;
use crate::teacher::gguf::Weights;
use crate::teacher::local::Activations;
use crate::teacher::{Mode, Teacher, TeacherConfig};

/// Peak resident memory of this process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Writes `rows` JSONL rows shaped like the ESCI fixture (its real text, cycled, with fresh
/// ids: 10 products per query), unless the file is already there.
fn generate(rows: u64, path: &Path, compact: bool) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let fixture = include_str!("../../fixtures/esci-fixture.jsonl");
    let templates: Vec<serde_json::Value> = fixture
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let tmp = path.with_extension("part");
    let mut w = BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    for i in 0..rows {
        let mut row = templates[(i % templates.len() as u64) as usize].clone();
        row["query_id"] = format!("gq{}", i / 10).into();
        row["query"] = format!("{} {}", row["query"].as_str().unwrap_or(""), i / 2000).into();
        row["product_id"] = format!("gp{i}").into();
        if compact {
            row["description"] = "".into();
            let color = row["attributes"]["color"].clone();
            row["attributes"] = serde_json::json!({ "color": color });
        }
        serde_json::to_writer(&mut w, &row)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub async fn import(rows: u64, dir: &Path, compact: bool) -> Result<ExitCode> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!(
        "pairs-{rows}{}.jsonl",
        if compact { "-compact" } else { "" }
    ));
    eprintln!("generating {} …", file.display());
    generate(rows, &file, compact)?;
    let bytes = std::fs::metadata(&file)?.len();
    let db = dir.join("import-bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let store = Store::create(&db).await?;
    store.set_scale(&LabelScale::esci()).await?;
    let rss_before = peak_rss_mib().unwrap_or(0.0);
    let started = Instant::now();
    let counts = super::import_file(&store, &file, FieldMap::default(), false, true).await?;
    let secs = started.elapsed().as_secs_f64();
    let reimport_started = Instant::now();
    let again = super::import_file(&store, &file, FieldMap::default(), false, false).await?;
    let reimport_secs = reimport_started.elapsed().as_secs_f64();
    store.close().await;
    println!(
        "import benchmark: {} rows, {:.0} MiB of JSONL",
        counts.rows_read,
        bytes as f64 / 1048576.0
    );
    println!(
        "  first import   {secs:.1} s   {:.0} rows/s   {:.1} MiB/s   {} pairs added",
        counts.rows_read as f64 / secs,
        bytes as f64 / 1048576.0 / secs,
        counts.pairs_added
    );
    println!(
        "  re-import      {reimport_secs:.1} s   {:.0} rows/s   {} pairs added",
        again.rows_read as f64 / reimport_secs,
        again.pairs_added
    );
    println!(
        "  peak RSS       {:.0} MiB (before import {rss_before:.0} MiB)",
        peak_rss_mib().unwrap_or(0.0)
    );
    Ok(ExitCode::SUCCESS)
}

/// The database `bench import` left in `dir`.
fn bench_db(dir: &Path) -> Result<std::path::PathBuf> {
    let db = dir.join("import-bench.db");
    anyhow::ensure!(
        db.exists(),
        "{}: run `workbench bench import` first",
        db.display()
    );
    Ok(db)
}

/// Exports the import benchmark's database `runs` times: soft_labels alone, then every format.
pub async fn export(dir: &Path, runs: usize) -> Result<ExitCode> {
    crate::allocator::keep_freed_memory();
    let store = Store::open(&bench_db(dir)?).await?;
    let added = store.add_synthetic_judgments().await?;
    let pairs = store.count_pairs(false).await?;
    println!("export benchmark: {pairs} pairs ({added} synthetic judgments added)");
    for (label, formats) in [
        ("soft_labels", &[crate::export::Format::SoftLabels][..]),
        ("all formats", &crate::export::Format::ALL[..]),
    ] {
        let options = crate::export::ExportOptions {
            out: dir.join("export-bench"),
            formats: formats.to_vec(),
            split: Some(crate::domain::SplitSpec::by_query_default()),
            seed: 42,
            source: crate::export::LabelSource::Teacher,
            force: true,
            max_pairs_per_query: 20,
            negatives: 3,
            include_augmented: false,
            parquet: false,
            calibrated: false,
            command: format!("workbench bench export ({label})"),
        };
        let mut times = Vec::new();
        for _ in 0..runs.max(1) {
            // The previous run's files are removed first: deleting them is not the export's work.
            if options.out.exists() {
                std::fs::remove_dir_all(&options.out)?;
            }
            let started = Instant::now();
            let manifest =
                crate::export::export(&store, &options, &indicatif::ProgressBar::hidden()).await?;
            let secs = started.elapsed().as_secs_f64();
            times.push(secs);
            println!(
                "  {label:<12} {secs:>6.1} s   {:>9.0} pairs/s   {} pairs   peak RSS {:.0} MiB",
                pairs as f64 / secs,
                manifest["pairs"],
                peak_rss_mib().unwrap_or(0.0)
            );
        }
        if times.len() > 1 {
            times.sort_by(f64::total_cmp);
            let n = times.len();
            let median = (times[(n - 1) / 2] + times[n / 2]) / 2.0;
            println!(
                "  {label:<12} median of {}: {median:.1} s, {:.0} pairs/s",
                times.len(),
                pairs as f64 / median
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Times key press → frame drawn in the review app over a big database (drawn to ratatui's
/// TestBackend at 140×44: the work of a real frame without a terminal's IO).
pub async fn review(dir: &Path, presses: usize) -> Result<ExitCode> {
    use crate::tui::{Action, App, Theme};
    let store = Store::open_interactive(&bench_db(dir)?).await?;
    let opened = Instant::now();
    let mut app = App::new(store.clone(), "bench").await?;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(140, 44))?;
    app.page_size = 40;
    app.update(Action::Top).await?;
    terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
    println!(
        "review benchmark: {} pairs; open to first frame {:.0} ms",
        app.all_pairs,
        opened.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "action", "median ms", "p99 ms", "max ms"
    );
    let scenarios: [(&str, Vec<Action>); 9] = [
        ("scroll (j)", vec![Action::Down]),
        ("page (PgDn)", vec![Action::PageDown]),
        ("filter (f, cycling them all)", vec![Action::NextFilter]),
        ("one label (L, cycling)", vec![Action::NextLabel]),
        ("one query (Q, on and off)", vec![Action::ThisQuery]),
        ("open a pair (⏎ then Esc)", vec![Action::Open, Action::Back]),
        ("jump to the end (G, g)", vec![Action::Bottom, Action::Top]),
        ("sort (s, cycling them all)", vec![Action::NextSort]),
        (
            "page in a sort (s, PgDn×3)",
            vec![
                Action::NextSort,
                Action::PageDown,
                Action::PageDown,
                Action::PageDown,
            ],
        ),
    ];
    for (name, actions) in scenarios {
        app.update(Action::Top).await?;
        let mut times = Vec::with_capacity(presses * actions.len());
        // Key press → counts shown (they come from the background, after the frame).
        let mut counted = Vec::new();
        for _ in 0..presses {
            for a in &actions {
                let t = Instant::now();
                app.update(*a).await?;
                terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
                if app.counting() {
                    app.settle().await?;
                    terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
                    counted.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        print_times(name, &mut times);
        if !counted.is_empty() {
            print_times("  … counts shown", &mut counted);
        }
        while app.filter != crate::store::QueueFilter::All {
            app.update(Action::NextFilter).await?;
        }
        while app.sort != crate::store::QueueSort::Pair {
            app.update(Action::NextSort).await?;
        }
        while app.scope.label.is_some() {
            app.update(Action::NextLabel).await?;
        }
        if app.scope.query_id.is_some() {
            app.update(Action::ThisQuery).await?;
        }
    }
    // Keys pressed while `c` compares teacher and student over every pair in the background.
    if store.student_model(None).await?.is_some() {
        app.update(Action::Top).await?;
        app.settle().await?;
        let started = Instant::now();
        app.update(Action::Compare).await?;
        let mut times = Vec::new();
        while app.comparing() {
            let t = Instant::now();
            app.update(Action::Down).await?;
            app.poll_compare()?;
            terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let ready = started.elapsed().as_secs_f64();
        if times.is_empty() {
            times.push(0.0);
        }
        print_times("scroll (j) while c compares", &mut times);
        println!(
            "  … the comparison was ready after {ready:.1} s, {} keys answered meanwhile",
            times.len()
        );
    } else {
        println!("(no student in the database: `student import` one to time keys during `c`)");
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib().unwrap_or(0.0));
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Median, p99 and max of a set of times in milliseconds, as one row.
fn print_times(name: &str, times: &mut [f64]) {
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<28} {:>10.2} {:>10.2} {:>10.2}",
        pct(0.5),
        pct(0.99),
        times[times.len() - 1]
    );
}

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
pub fn teacher_row_names() -> Vec<&'static str> {
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
    use futures::StreamExt;
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
    let db = dir.join("teacher-bench.db");
    let store = Store::create(&db).await?;
    store.set_scale(&LabelScale::esci()).await?;
    super::import_file(&store, fixture, FieldMap::default(), false, false).await?;
    // Every tenth pair, as the earlier figures in BENCHMARKS.md were taken, so that rows compare:
    // ten different queries in the fixture, so prompts share no more than the prefix.
    let pairs: Vec<_> = store
        .first_pairs(10 * n)
        .await?
        .into_iter()
        .step_by(10)
        .take(n)
        .collect();
    let scale = store.scale().await?;
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
        };
        let teacher = Teacher::new(backend, scale.clone(), &config);
        // One warm-up judgment fills the prefix cache the way a long run would.
        teacher.judge(&pairs[0]).await?;
        let started = Instant::now();
        let judgments: Vec<_> = futures::stream::iter(&pairs)
            .map(|p| teacher.judge(p))
            .buffered(row.concurrency)
            .collect()
            .await;
        let secs = started.elapsed().as_secs_f64();
        let (mut pt, mut ps, mut ct, mut cs, mut parsed, mut gold) =
            (0usize, 0f64, 0usize, 0f64, 0usize, 0usize);
        for (p, j) in pairs.iter().zip(judgments) {
            let j = j?;
            pt += j.prompt_tokens;
            ct += j.completion_tokens;
            ps += j.prompt_secs.unwrap_or(0.0);
            cs += j.completion_secs.unwrap_or(0.0);
            parsed += usize::from(j.parse_error.is_none());
            gold += usize::from(j.label.is_some() && j.label == p.gold_label);
        }
        let n = pairs.len() as f64;
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
            pairs.len() as f64 / secs * 60.0,
            pairs.len() as f64 / secs,
            parsed,
            pairs.len(),
            gold,
            pairs.len(),
            pt as f64 / n,
            ct as f64 / n,
            // Time outside the engine's prompt and generation phases (scheduling, grammar, IO).
            (1.0 - (ps + cs) / secs).max(0.0) * 100.0
        );
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("workbench-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
