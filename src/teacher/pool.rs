//! `teach --workers N`: the local teacher run as N processes side by side, each with its own
//! copy of the model and cores / N threads, judging the pairs this process hands out one at a
//! time (whoever is free takes the next, so no worker idles while another has a backlog). A
//! small model's steps are short; one process spreading each step over every core spends much
//! of it waiting on its threads (rayon's spinning, mistral.rs's attention pool), where
//! one-thread workers each keep a core busy (BENCHMARKS.md, teacher speed). mistral.rs and
//! candle take their thread counts per process (RAYON_NUM_THREADS), hence processes, not tasks.
//!
//! Each worker is this binary's `teach` with `--shard K/N`: it reads pair ids on stdin, commits
//! every judgment itself, as a single-process run does, and reports it on stdout in
//! `WorkerLine`s (written and read here alone); this side draws one progress bar. A killed parent takes its workers with
//! it (Linux: the death signal is SIGKILL), so a killed run resumes as a single process does:
//! nothing judged twice.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::TeacherConfig;
use super::claims::{Claimant, next_claims};
use super::gguf::{self, Weights};
use super::local::{model_name, prepare};
use super::run::{PAGE, TeachReport, judging_bar, stop_signal};
use crate::store::{PairFilter, Store};

/// What a worker says on stdout, one line each: ready for a pair id, or one pair judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerLine {
    /// Loaded and waiting for the first id (after each judgment, `Judged` asks for the next).
    Ready,
    Judged {
        /// 1 when the output did not parse.
        unparsed: usize,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
}

impl WorkerLine {
    pub fn line(self) -> String {
        match self {
            WorkerLine::Ready => "ready".into(),
            WorkerLine::Judged {
                unparsed,
                prompt_tokens,
                completion_tokens,
            } => format!("judged {unparsed} {prompt_tokens} {completion_tokens}"),
        }
    }

    /// A worker's line, or `None` for anything else it prints.
    pub fn parse(line: &str) -> Option<WorkerLine> {
        let mut words = line.split_whitespace();
        match words.next()? {
            "ready" => Some(WorkerLine::Ready),
            "judged" => {
                let mut n = || words.next()?.parse::<usize>().ok();
                Some(WorkerLine::Judged {
                    unparsed: n()?,
                    prompt_tokens: n()?,
                    completion_tokens: n()?,
                })
            }
            _ => None,
        }
    }
}

/// A pool's run: the local model, how it runs, which pairs.
pub struct PoolOptions<'a> {
    pub model: PathBuf,
    pub weights: Weights,
    pub config: TeacherConfig,
    pub filter: &'a PairFilter,
    pub limit: Option<usize>,
    pub workers: usize,
    /// On PostgreSQL, how long a claimed pair stays this run's.
    pub lease: std::time::Duration,
}

/// What a pool did, and the workers that failed (each named, with its exit status).
pub struct PoolOutcome {
    pub report: TeachReport,
    pub failed: Vec<String>,
}

/// Workers by default: one per core, at most four (each holds a copy of the model).
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Runs `options.workers` worker processes (this binary's `teach` with the same arguments and
/// `--shard K/N`) over the pairs still to judge, handing out one id at a time.
pub async fn run(store: Store, options: PoolOptions<'_>) -> Result<PoolOutcome> {
    let model = &options.model;
    // A missing or corrupt model is named once, here, not once per worker; the faster copy is
    // prepared once, before the workers look for it.
    gguf::inspect(model)?;
    prepare(model, options.weights);
    let prompt = options.config.prompt(&store.scale().await?);
    let name = model_name(model);
    let run = (name.as_str(), prompt.hash.as_str(), prompt.mode.as_str());
    let filter = options.filter;
    let to_judge = store.count_to_judge(run, filter).await?;
    let asked = options.limit.map_or(to_judge, |l| to_judge.min(l as u64));
    let mut report = TeachReport {
        asked: asked as usize,
        ..Default::default()
    };
    if asked == 0 {
        store.close().await;
        return Ok(PoolOutcome {
            report,
            failed: Vec::new(),
        });
    }
    // The ids to hand out, in the order a single process would judge them; with --limit, the
    // first `limit` of them.
    let workers = options.workers.min(asked as usize);
    let claimant = store
        .is_postgres()
        .then(|| Claimant::this_process(options.lease));
    let mut ids = IdQueue {
        store: &store,
        run,
        filter,
        next: VecDeque::new(),
        after: 0,
        left: asked,
        claimant: claimant.as_ref(),
        batch: workers,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / workers).max(1);
    // Each worker's stdout lines, tagged with its number; `None` when it closes.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<(usize, Option<String>)>();
    let mut children = Vec::with_capacity(workers);
    let mut inputs: Vec<Option<ChildStdin>> = Vec::with_capacity(workers);
    for k in 0..workers {
        let mut child = spawn(k, workers, threads)?;
        let stdout = child.stdout.take().context("a worker's stdout")?;
        inputs.push(child.stdin.take());
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut out = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = out.next_line().await {
                if tx.send((k, Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send((k, None));
        });
        children.push(child);
    }
    drop(tx);
    let mut running = workers;
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
                inputs.iter_mut().for_each(|i| drop(i.take()));
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
        let Some((k, line)) = line else { break };
        let Some(line) = line else {
            // Worker k has exited (its status is read below); the others go on.
            inputs[k] = None;
            running -= 1;
            if running == 0 {
                break;
            }
            continue;
        };
        let ready = match WorkerLine::parse(&line) {
            Some(WorkerLine::Ready) => {
                started.get_or_insert_with(Instant::now);
                bar.set_message("");
                true
            }
            Some(WorkerLine::Judged {
                unparsed,
                prompt_tokens,
                completion_tokens,
            }) => {
                report.count(unparsed, prompt_tokens, completion_tokens, &bar);
                true
            }
            None => false,
        };
        // A worker that is ready for more gets the next id; when there is none, its stdin is
        // closed and it finishes.
        if ready && !stopping {
            hand_out(&mut inputs[k], &mut ids).await?;
        }
    }
    drop(inputs);
    if let Some(c) = &claimant {
        store.release_leases(&c.owner).await?;
    }
    store.close().await;
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
    Ok(PoolOutcome { report, failed })
}

/// The pair ids still to hand out, read in pages as they are needed.
struct IdQueue<'a> {
    store: &'a Store,
    run: (&'a str, &'a str, &'a str),
    filter: &'a PairFilter,
    next: VecDeque<i64>,
    after: i64,
    /// How many more may be handed out (the run's --limit).
    left: u64,
    /// On a shared database: this run's name on the pairs it claims, a `batch` at a time.
    claimant: Option<&'a Claimant>,
    batch: usize,
}

impl IdQueue<'_> {
    async fn pop(&mut self) -> Result<Option<i64>> {
        if self.left == 0 {
            return Ok(None);
        }
        if self.next.is_empty() {
            let page = match self.claimant {
                Some(who) => next_claims(self.store, self.run, self.filter, who, self.batch)
                    .await?
                    .iter()
                    .map(|p| p.id)
                    .collect(),
                None => {
                    self.store
                        .ids_to_judge(self.run, self.filter, self.after, PAGE)
                        .await?
                }
            };
            self.after = page.last().copied().unwrap_or(self.after);
            self.next.extend(page);
        }
        let id = self.next.pop_front();
        if id.is_some() {
            self.left -= 1;
        }
        Ok(id)
    }
}

/// Writes the next id to a worker's stdin, or closes it when there is none. A worker that has
/// gone (its pipe is broken) is left to be reported by its exit status; its pair stays unjudged
/// for the next run.
async fn hand_out(input: &mut Option<ChildStdin>, ids: &mut IdQueue<'_>) -> Result<()> {
    let Some(stdin) = input.as_mut() else {
        return Ok(());
    };
    match ids.pop().await? {
        Some(id) => {
            let sent = async {
                stdin.write_all(format!("{id}\n").as_bytes()).await?;
                stdin.flush().await
            };
            if sent.await.is_err() {
                *input = None;
            }
        }
        None => *input = None,
    }
    Ok(())
}

/// Worker `k` of `n`: this binary with the same arguments and `--shard k/n`.
fn spawn(k: usize, n: usize, threads: usize) -> Result<Child> {
    let exe = std::env::current_exe().context("finding this program to start workers")?;
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .arg("--shard")
        .arg(format!("{k}/{n}"));
    cmd.env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::piped())
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

#[cfg(test)]
mod tests {
    use super::WorkerLine;

    #[test]
    fn a_worker_line_reads_back_as_written() {
        for line in [
            WorkerLine::Ready,
            WorkerLine::Judged {
                unparsed: 1,
                prompt_tokens: 412,
                completion_tokens: 3,
            },
        ] {
            assert_eq!(WorkerLine::parse(&line.line()), Some(line));
        }
        assert_eq!(WorkerLine::parse("loading model"), None);
        assert_eq!(WorkerLine::parse("judged 1 two 3"), None);
    }
}
