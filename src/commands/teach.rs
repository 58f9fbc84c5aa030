//! `workbench teach`: the flags read into a teacher run (`teacher::run`), one process or a pool
//! of worker processes (`teacher::pool`), and its summary.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::{TeachArgs, TeachMode};
use crate::store::{PairFilter, Store};
use crate::teacher::gguf::Weights;
use crate::teacher::http::HttpLimits;
use crate::teacher::local::LocalOptions;
use crate::teacher::pool::{self, PoolOptions};
use crate::teacher::run::{TeachOptions, TeachReport, Worker, teach};
use crate::teacher::{Mode, TeacherConfig, open_backend};

/// Judges pairs with the teacher; each judgment is committed as soon as it is made, so a run
/// that is killed resumes where it stopped.
pub async fn run(db: &Path, args: TeachArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let filter = args.only.clone();
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
                crate::store::without_password(&db.to_string_lossy()),
                list.join(", ")
            );
        }
    }
    let config = config(&args)?;
    let workers = args.workers.unwrap_or_else(pool::default_count).max(1);
    if args.endpoint.is_none() && worker.is_none() && workers > 1 {
        let outcome = pool::run(
            store,
            PoolOptions {
                model: args.model.clone().unwrap_or_else(crate::models::teacher),
                weights: weights(&args),
                config: config.clone(),
                filter: &filter,
                limit: args.limit,
                workers,
                lease: std::time::Duration::from_secs_f64(args.lease),
            },
        )
        .await?;
        let code = summary(&outcome.report);
        if !outcome.failed.is_empty() {
            bail!(
                "{} failed (a worker's own error, when it could give one, is above); the other \
                 workers went on. What was judged is kept: run the same command again to resume",
                outcome.failed.join(", ")
            );
        }
        return Ok(code);
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
        config,
        concurrency: args.concurrency,
        show_progress: worker.is_none(),
        worker,
        lease: std::time::Duration::from_secs_f64(args.lease),
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
fn weights(args: &TeachArgs) -> Weights {
    args.weights.unwrap_or(match args.mode {
        TeachMode::Cot => Weights::Q8_0,
        TeachMode::Score => Weights::F32,
    })
}

/// The teacher's settings from the flags, and from the model: a file tuned with `--evidence`
/// learnt its answers to that prompt, so it is asked with it. Resolved here, once, so that the
/// pool's hand-out and its workers name the same prompt.
fn config(args: &TeachArgs) -> Result<TeacherConfig> {
    let tuned_with_evidence = match (&args.endpoint, &args.model) {
        (Some(_), _) => false,
        (None, model) => {
            let model = model.clone().unwrap_or_else(crate::models::teacher);
            let info = crate::teacher::gguf::inspect(&model)?;
            if info.labels_only() && args.mode == TeachMode::Cot {
                anyhow::bail!(
                    "{} answers labels only (a label head, as `teacher tune` writes in \
                     score mode): judge with --mode score",
                    model.display()
                );
            }
            info.tuned_with_evidence()
        }
    };
    Ok(TeacherConfig {
        mode: match args.mode {
            TeachMode::Cot => Mode::Cot,
            TeachMode::Score => Mode::Score,
        },
        samples: args.samples,
        max_tokens: args.max_tokens,
        with_examples: !args.no_examples,
        detail_chars: args.detail_chars,
        evidence: args.evidence || tuned_with_evidence,
        penalties: crate::teacher::Penalties {
            frequency: args.frequency_penalty,
            presence: args.presence_penalty,
            dry: args.dry,
        },
    })
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
fn summary(report: &TeachReport) -> ExitCode {
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
