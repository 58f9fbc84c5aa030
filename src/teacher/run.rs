//! A teacher run: the pairs still to judge, each judged and committed as soon as it is made, so
//! a killed run resumes where it stopped. One process, or one worker of a pool (`pool.rs`), which
//! judges the pair ids its parent hands it.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};

use super::claims::{Claimant, next_claims};
use super::pool::WorkerLine;
use super::{Backend, Teacher, TeacherConfig};
use crate::domain::Pair;
use crate::store::{NewJudgment, PairFilter, Store, TeacherRunSpec};

/// Pairs (or, for a pool, pair ids) read from the store at a time.
pub(super) const PAGE: usize = 256;

/// What to judge and how.
#[derive(Debug, Clone)]
pub struct TeachOptions {
    pub filter: PairFilter,
    pub limit: Option<usize>,
    pub config: TeacherConfig,
    pub concurrency: Option<usize>,
    pub show_progress: bool,
    /// This process is one worker of a pool: it speaks `WorkerLine`s on stdout and judges the
    /// pair ids its parent writes to stdin, one per line, until stdin closes.
    pub worker: Option<Worker>,
    /// On PostgreSQL, how long a claimed pair stays this process's (`teach --lease`).
    pub lease: std::time::Duration,
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
    /// The engine's own prompt and generation time, summed over the judgments that report it
    /// (a local teacher in this process; not a pool's workers).
    pub prompt_secs: f64,
    pub completion_secs: f64,
    pub secs: f64,
}

impl TeachReport {
    /// One pair judged (`unparsed`: 1 when its output did not parse), on the report and its bar.
    pub(super) fn count(
        &mut self,
        unparsed: usize,
        prompt_tokens: usize,
        completion_tokens: usize,
        bar: &indicatif::ProgressBar,
    ) {
        self.judged += 1;
        self.parse_errors += unparsed;
        self.prompt_tokens += prompt_tokens;
        self.completion_tokens += completion_tokens;
        bar.inc(1);
        bar.set_message(format!("{} unparsed", self.parse_errors));
    }
}

/// The teach loop of `workbench teach`, one process or a pool worker.
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
    let claimant = Claimant::this_process(options.lease);
    let pairs = match worker {
        Some(_) => {
            println!("{}", WorkerLine::Ready.line());
            pairs_from_stdin(store.clone()).boxed()
        }
        None if store.is_postgres() => {
            claimed_to_judge(store, run, &options.filter, &claimant, concurrency)
                .take(report.asked)
                .boxed()
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
        let (unparsed, prompt_tokens, completion_tokens) = (
            usize::from(j.parse_error.is_some()),
            j.prompt_tokens,
            j.completion_tokens,
        );
        report.prompt_secs += j.prompt_secs.unwrap_or(0.0);
        report.completion_secs += j.completion_secs.unwrap_or(0.0);
        store
            .save_judgment(&NewJudgment {
                pair_id: pair.id,
                run_id: Some(run_id),
                model: model.clone(),
                prompt_hash: hash.clone(),
                mode: options.config.mode,
                judgment: j,
            })
            .await?;
        report.count(unparsed, prompt_tokens, completion_tokens, &bar);
        if worker.is_some() {
            let line = WorkerLine::Judged {
                unparsed,
                prompt_tokens,
                completion_tokens,
            };
            println!("{}", line.line());
        }
    }
    report.secs = started.elapsed().as_secs_f64();
    if worker.is_some() {
        report.asked = report.judged;
    }
    bar.finish_and_clear();
    drop(judged);
    store.release_leases(&claimant.owner).await?;
    store.finish_teacher_run(run_id).await?;
    Ok(report)
}

/// The pairs this process claims, a few at a time, from a database other teach processes share.
fn claimed_to_judge<'a>(
    store: &'a Store,
    run: (&'a str, &'a str, &'a str),
    filter: &'a PairFilter,
    who: &'a Claimant,
    batch: usize,
) -> impl futures::Stream<Item = Result<Pair>> + 'a {
    futures::stream::try_unfold((), move |()| async move {
        let claimed = next_claims(store, run, filter, who, batch).await?;
        anyhow::Ok((!claimed.is_empty()).then(|| {
            (
                futures::stream::iter(claimed.into_iter().map(anyhow::Ok)),
                (),
            )
        }))
    })
    .try_flatten()
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
