use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};

/// Pairs (or, for `--workers`, pair ids) read from the store at a time.
pub(super) const PAGE: usize = 256;

use crate::cli::{TeachArgs, TeachMode};
use crate::domain::{Pair, PairKey};
use crate::store::{NewJudgment, PairFilter, Store, TeacherRunSpec};
use crate::teacher::gguf::Weights;
use crate::teacher::http::{HttpBackend, HttpLimits};
use crate::teacher::local::{LocalBackend, LocalOptions};
use crate::teacher::{Backend, Mode, Teacher, TeacherConfig};

/// What to judge and how.
#[derive(Debug, Clone)]
pub struct TeachOptions {
    pub filter: PairFilter,
    pub limit: Option<usize>,
    pub config: TeacherConfig,
    pub concurrency: Option<usize>,
    pub show_progress: bool,
    /// This process is one worker of a `teach --workers` run: it says `ready` on stdout, judges
    /// the pair ids its parent writes to stdin (one per line, until stdin closes) and reports
    /// each as `judged PARSE_ERROR PROMPT_TOKENS COMPLETION_TOKENS`.
    pub worker: Option<Worker>,
}

/// Worker `index` of `count` (`teach --shard K/N`, internal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Default)]
pub struct TeachReport {
    pub asked: usize,
    pub judged: usize,
    pub parse_errors: usize,
    pub interrupted: bool,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub secs: f64,
}

/// Judges pairs with the teacher; each judgment is committed as soon as it is made, so a run
/// that is killed resumes where it stopped.
pub async fn run(db: &Path, args: TeachArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let filter = parse_only(&args.only)?;
    let worker = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()?
        .map(|(index, count)| Worker { index, count });
    // A worker's keys were checked by the `teach` that started it.
    if let (PairFilter::Keys(keys), None) = (&filter, &worker) {
        let unknown = store.unknown_keys(keys).await?;
        if !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|k| format!("{}/{}", k.query_id, k.product_id))
                .collect();
            bail!(
                "--only: no such pair in {}: {}",
                db.display(),
                list.join(", ")
            );
        }
    }
    let workers = args
        .workers
        .unwrap_or_else(super::workers::default_count)
        .max(1);
    if args.endpoint.is_none() && worker.is_none() && workers > 1 {
        return super::workers::run(store, &args, &filter, workers).await;
    }
    let backend = open_backend(
        args.model.as_deref(),
        args.endpoint.as_deref(),
        &args.api_model,
        HttpLimits {
            timeout: std::time::Duration::from_secs_f64(args.endpoint_timeout.max(0.001)),
            attempts: args.endpoint_attempts,
        },
        LocalOptions {
            prefix_cache: true,
            weights: weights(&args),
            ..LocalOptions::default()
        },
    )
    .await?;
    let options = TeachOptions {
        filter,
        limit: args.limit,
        config: config(&args),
        concurrency: args.concurrency,
        show_progress: worker.is_none(),
        worker,
    };
    let report = teach(&store, backend, &options).await?;
    store.close().await;
    if options.worker.is_some() {
        return Ok(if report.interrupted {
            ExitCode::from(130)
        } else {
            ExitCode::SUCCESS
        });
    }
    Ok(summary(&report))
}

/// The weight format the local teacher runs in: as asked, else by mode.
pub(super) fn weights(args: &TeachArgs) -> Weights {
    args.weights.unwrap_or(match args.mode {
        TeachMode::Cot => Weights::Q8_0,
        TeachMode::Score => Weights::F32,
    })
}

pub(super) fn config(args: &TeachArgs) -> TeacherConfig {
    TeacherConfig {
        mode: match args.mode {
            TeachMode::Cot => Mode::Cot,
            TeachMode::Score => Mode::Score,
        },
        samples: args.samples,
        max_tokens: args.max_tokens,
        with_examples: !args.no_examples,
        detail_chars: args.detail_chars,
        penalties: crate::teacher::Penalties {
            frequency: args.frequency_penalty,
            presence: args.presence_penalty,
            dry: args.dry,
        },
    }
}

/// `K/N`, K < N.
fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let parsed = s
        .split_once('/')
        .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)))
        .filter(|(k, n)| k < n);
    parsed.with_context(|| format!("--shard {s:?}: expected K/N with K < N"))
}

/// Prints the run's last line; a stopped run exits 130.
pub(super) fn summary(report: &TeachReport) -> ExitCode {
    let rate = if report.secs > 0.0 {
        report.judged as f64 / report.secs
    } else {
        0.0
    };
    println!(
        "{} {} of {} pairs in {:.1}s ({:.2} pairs/s, {:.1} pairs/min), {} did not parse",
        if report.interrupted {
            "stopped after judging"
        } else {
            "judged"
        },
        report.judged,
        report.asked,
        report.secs,
        rate,
        rate * 60.0,
        report.parse_errors
    );
    if report.interrupted {
        println!("run the same command again to resume; nothing judged so far is judged twice");
        return ExitCode::from(130);
    }
    ExitCode::SUCCESS
}

/// The local GGUF model (the default) or an OpenAI-compatible endpoint.
pub async fn open_backend(
    model: Option<&Path>,
    endpoint: Option<&str>,
    api_model: &str,
    limits: HttpLimits,
    local: LocalOptions,
) -> Result<Arc<dyn Backend>> {
    if let Some(url) = endpoint {
        return Ok(Arc::new(HttpBackend::new(url, api_model, limits)?));
    }
    let path: PathBuf = model
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::models::teacher);
    Ok(Arc::new(LocalBackend::load(&path, local).await?))
}

fn parse_only(only: &str) -> Result<PairFilter> {
    Ok(match only {
        "unjudged" => PairFilter::Unjudged,
        "all" => PairFilter::All,
        "augmented" => PairFilter::Augmented,
        ids => PairFilter::Keys(
            ids.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let (q, p) = s.split_once('/').with_context(|| {
                        format!("--only {s:?}: expected unjudged, all, augmented or QUERY_ID/PRODUCT_ID,…")
                    })?;
                    Ok(PairKey { query_id: q.to_string(), product_id: p.to_string() })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    })
}

/// The teach loop, shared by the command, the benchmark and the tests.
pub async fn teach(
    store: &Store,
    backend: Arc<dyn Backend>,
    options: &TeachOptions,
) -> Result<TeachReport> {
    let scale = store.scale().await?;
    let teacher = Arc::new(Teacher::new(backend.clone(), scale, &options.config));
    let mode = options.config.mode.as_str();
    let model = teacher.model_name().to_string();
    let hash = teacher.prompt().hash.clone();
    let run = (model.as_str(), hash.as_str(), mode);
    let worker = options.worker;
    // A worker judges what its parent hands it; the parent counted.
    let asked = match worker {
        Some(_) => None,
        None => {
            let to_judge = store.count_to_judge(run, &options.filter).await?;
            Some(options.limit.map_or(to_judge, |l| to_judge.min(l as u64)) as usize)
        }
    };
    let mut report = TeachReport {
        asked: asked.unwrap_or_default(),
        ..Default::default()
    };
    if asked == Some(0) {
        return Ok(report);
    }
    let run_id = store
        .start_teacher_run(&TeacherRunSpec {
            model: model.clone(),
            prompt_hash: hash.clone(),
            mode: mode.into(),
            backend: backend.kind().into(),
            params: serde_json::json!({
                "samples": options.config.samples,
                "max_tokens": teacher.max_tokens(),
                "examples": options.config.with_examples,
                "detail_chars": teacher.prompt().detail_chars,
                "penalties": teacher.penalties(),
                "backend": backend.settings(),
                "worker": worker.map(|w| format!("{}/{}", w.index, w.count)),
            }),
        })
        .await?;
    let bar = if options.show_progress {
        judging_bar(report.asked as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let concurrency = options
        .concurrency
        .unwrap_or_else(|| backend.default_concurrency())
        .max(1);
    let started = Instant::now();
    let pairs = match worker {
        Some(_) => {
            println!("ready");
            pairs_from_stdin(store.clone()).boxed()
        }
        None => pages_to_judge(store, run, &options.filter)
            .take(report.asked)
            .boxed(),
    };
    let mut judged = pairs
        .map(|pair: Result<Pair>| {
            let teacher = teacher.clone();
            async move {
                let pair = pair?;
                let j = teacher.judge(&pair).await;
                anyhow::Ok((pair, j))
            }
        })
        .buffer_unordered(concurrency);
    let mut stop = Box::pin(stop_signal());
    loop {
        let next = tokio::select! {
            n = judged.next() => n,
            _ = &mut stop => { report.interrupted = true; None }
        };
        let Some(next) = next else { break };
        let (pair, judgment) = next?;
        let j = judgment
            .with_context(|| format!("judging pair {}/{}", pair.query.ext_id, pair.item.ext_id))?;
        store
            .save_judgment(&NewJudgment {
                pair_id: pair.id,
                run_id: Some(run_id),
                model: model.clone(),
                prompt_hash: hash.clone(),
                mode: mode.into(),
                label: j.label.clone(),
                distribution: j.distribution.clone(),
                dist_source: j.dist_source.into(),
                confidence: j.confidence,
                rationale: j.rationale.clone(),
                raw_output: j.raw_output.clone(),
                parse_error: j.parse_error.clone(),
                truncated: j.truncated,
                item_truncated: j.item_truncated,
                prompt_tokens: Some(j.prompt_tokens as i64),
                completion_tokens: Some(j.completion_tokens as i64),
                elapsed_ms: j.elapsed_ms as i64,
            })
            .await?;
        report.judged += 1;
        report.parse_errors += usize::from(j.parse_error.is_some());
        report.prompt_tokens += j.prompt_tokens;
        report.completion_tokens += j.completion_tokens;
        bar.inc(1);
        bar.set_message(format!("{} unparsed", report.parse_errors));
        if worker.is_some() {
            println!(
                "judged {} {} {}",
                u8::from(j.parse_error.is_some()),
                j.prompt_tokens,
                j.completion_tokens
            );
        }
    }
    report.secs = started.elapsed().as_secs_f64();
    if worker.is_some() {
        report.asked = report.judged;
    }
    bar.finish_and_clear();
    store.finish_teacher_run(run_id).await?;
    Ok(report)
}

/// The pairs still to judge, read in keyset pages while the teacher works: memory stays flat
/// however many.
fn pages_to_judge<'a>(
    store: &'a Store,
    (model, hash, mode): (&'a str, &'a str, &'a str),
    filter: &'a PairFilter,
) -> impl futures::Stream<Item = Result<Pair>> + 'a {
    futures::stream::try_unfold(0i64, move |after| async move {
        let page = store
            .pairs_to_judge((model, hash, mode), filter, after, PAGE)
            .await?;
        let next = page.last().map(|p| p.id);
        anyhow::Ok(next.map(|next| {
            (
                futures::stream::iter(page.into_iter().map(anyhow::Ok)),
                next,
            )
        }))
    })
    .try_flatten()
}

/// A worker's pairs: the ids its parent writes to stdin, one per line, until it closes it.
fn pairs_from_stdin(store: Store) -> impl futures::Stream<Item = Result<Pair>> {
    use tokio::io::AsyncBufReadExt;
    let lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    futures::stream::try_unfold((lines, store), |(mut lines, store)| async move {
        let Some(line) = lines.next_line().await? else {
            return Ok(None);
        };
        let id: i64 = line
            .trim()
            .parse()
            .with_context(|| format!("worker input {line:?}: expected a pair id"))?;
        let pair = store
            .pair_by_id(id)
            .await?
            .with_context(|| format!("pair {id}: not in the database"))?;
        anyhow::Ok(Some((pair, (lines, store))))
    })
}

/// The progress bar of a teacher run, one process or its workers together.
pub(super) fn judging_bar(len: u64) -> indicatif::ProgressBar {
    crate::terminal::progress(
        len,
        "{spinner} judging {pos}/{len} {wide_bar} {per_sec} eta {eta} {msg}",
    )
}

/// Resolves on Ctrl-C or SIGTERM, so that a stopped run closes its records before exiting.
pub(super) async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_shard;

    #[test]
    fn a_shard_is_k_of_n_with_k_below_n() {
        assert_eq!(parse_shard("0/2").unwrap(), (0, 2));
        assert_eq!(parse_shard("3/4").unwrap(), (3, 4));
        for bad in ["2/2", "1", "a/2", "1/b", "-1/2"] {
            let err = parse_shard(bad).unwrap_err().to_string();
            assert!(err.contains("expected K/N"), "{bad}: {err}");
        }
    }
}
