//! `teach --workers N`: the local teacher run as N processes side by side, each judging its own
//! shard of the pairs (by id) with its own copy of the model and cores / N threads. A small
//! model's steps are short; one process spreading each step over every core spends much of it
//! waiting on its threads (rayon's spinning, mistral.rs's attention pool), where one-thread
//! workers each keep a core busy (BENCHMARKS.md, teacher speed). mistral.rs and candle take
//! their thread counts per process (RAYON_NUM_THREADS), hence processes, not tasks.
//!
//! Each worker is this binary's `teach` with `--shard K/N`: it commits every judgment itself,
//! as a single-process run does, and reports it on stdout; this side draws one progress bar and
//! prints the run's summary. A killed parent takes its workers with it (Linux: the death signal
//! is SIGKILL), so a killed run resumes as a single process does: nothing judged twice.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::teach::{TeachReport, config, judging_bar, stop_signal, summary, weights};
use crate::cli::TeachArgs;
use crate::store::{PairFilter, Store};
use crate::teacher::gguf;
use crate::teacher::local::{DEFAULT_MODEL, model_name, prepare};

/// Workers by default: one per core, at most four (each holds a copy of the model).
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

pub async fn run(
    store: Store,
    args: &TeachArgs,
    filter: &PairFilter,
    workers: usize,
) -> Result<ExitCode> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    // A missing or corrupt model is named once, here, not once per worker; the faster copy is
    // prepared once, before the workers look for it.
    gguf::inspect(&model)?;
    prepare(&model, weights(args));
    let prompt = config(args).prompt(&store.scale().await?);
    let name = model_name(&model);
    let run = (name.as_str(), prompt.hash.as_str(), prompt.mode.as_str());
    let to_judge = store.count_to_judge(run, filter, None).await?;
    let asked = args.limit.map_or(to_judge, |l| to_judge.min(l as u64));
    // With --limit, the workers together judge the first `limit` pairs a single process would.
    let last_id = match args.limit {
        Some(l) if (l as u64) < to_judge => store.nth_to_judge(run, filter, l).await?,
        _ => None,
    };
    store.close().await;
    let mut report = TeachReport {
        asked: asked as usize,
        ..Default::default()
    };
    if asked == 0 {
        return Ok(summary(&report));
    }
    let workers = workers.min(asked as usize);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / workers).max(1);
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut children = Vec::with_capacity(workers);
    for k in 0..workers {
        let mut child = spawn(k, workers, last_id, threads)?;
        let stdout = child.stdout.take().context("a worker's stdout")?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut out = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = out.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        children.push(child);
    }
    drop(tx);
    let bar = judging_bar(asked);
    bar.set_message(format!("loading {workers} workers"));
    // Timed from the first worker ready to judge, as a single run is timed after its load.
    let mut started: Option<Instant> = None;
    let mut stop = Box::pin(stop_signal());
    let mut stopping = false;
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            _ = &mut stop, if !stopping => {
                // Ctrl-C reaches the workers with this process; a SIGTERM sent to it alone is
                // passed on. Each worker closes its run and exits; the loop ends when all have.
                stopping = true;
                #[cfg(unix)]
                for c in &children {
                    if let Some(pid) = c.id() {
                        // SAFETY: kill(2) on a child this process started and has not reaped.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                    }
                }
                continue;
            }
        };
        let Some(line) = line else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("asked") => {
                started.get_or_insert_with(Instant::now);
                bar.set_message("");
            }
            Some("judged") => {
                let mut n = || {
                    words
                        .next()
                        .and_then(|w| w.parse::<usize>().ok())
                        .unwrap_or(0)
                };
                report.judged += 1;
                report.parse_errors += n();
                report.prompt_tokens += n();
                report.completion_tokens += n();
                bar.inc(1);
                bar.set_message(format!("{} unparsed", report.parse_errors));
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    report.secs = started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let mut failed = Vec::new();
    for (k, c) in children.iter_mut().enumerate() {
        let status = c.wait().await.context("waiting for a teacher worker")?;
        match status.code() {
            Some(0) => {}
            Some(130) => report.interrupted = true,
            _ if stopping => report.interrupted = true,
            _ => failed.push(format!("worker {} of {workers} ({status})", k + 1)),
        }
    }
    report.interrupted |= stopping;
    if !failed.is_empty() {
        summary(&report);
        bail!(
            "{} failed; its error is above. What was judged is kept: run the same command again to resume",
            failed.join(", ")
        );
    }
    Ok(summary(&report))
}

/// Worker `k` of `n`: this binary with the same arguments and `--shard k/n`.
fn spawn(k: usize, n: usize, last_id: Option<i64>, threads: usize) -> Result<Child> {
    let exe = std::env::current_exe().context("finding this program to start workers")?;
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .arg("--shard")
        .arg(format!("{k}/{n}"));
    if let Some(id) = last_id {
        cmd.arg("--last-id").arg(id.to_string());
    }
    cmd.env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("starting teacher worker {} of {n}", k + 1))
}
