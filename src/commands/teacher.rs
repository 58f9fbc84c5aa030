use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{CalibrateArgs, TeachMode, TeacherCommand, TuneArgs};
use crate::domain::text::inert;
use crate::store::Store;
use crate::teacher::Mode;
use crate::teacher::calibrate::calibrate;
use crate::teacher::tune::{Progress, TuneOptions, tune};

pub async fn run(db: &Path, command: TeacherCommand) -> Result<ExitCode> {
    match command {
        TeacherCommand::Calibrate(args) => calibrate_command(db, args).await,
        TeacherCommand::Tune(args) => tune_command(db, args).await,
    }
}

async fn tune_command(db: &Path, args: TuneArgs) -> Result<ExitCode> {
    let probe_depth = args.probe();
    let store = Store::open(db).await?;
    let opts = TuneOptions {
        model: args.model.clone().unwrap_or_else(crate::models::teacher),
        out: args.out.clone(),
        mode: match args.mode {
            TeachMode::Cot => Mode::Cot,
            TeachMode::Score => Mode::Score,
        },
        split: args.split.clone(),
        seed: args.seed,
        layers: args.layers.unwrap_or(2),
        epochs: args.epochs.unwrap_or(2),
        lr: args.lr.unwrap_or(2e-4),
        batch: args.batch.unwrap_or(8),
        balanced: args.balanced(),
        evidence: args.evidence(),
        limit: args.limit,
        probe_depth,
        restart: args.restart,
    };
    let bar = crate::terminal::progress(
        0,
        "{prefix:>14} {wide_bar} {pos}/{len} pairs {msg} eta {eta}",
    );
    let state = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(tune(&store, &opts, &mut |p| match p {
            Progress::Note(line) => bar.suspend(|| eprintln!("{line}")),
            Progress::Phase { name, len } => {
                bar.set_prefix(name);
                bar.set_length(len as u64);
                bar.set_position(0);
                bar.set_message("");
            }
            Progress::Step { done, loss } => {
                bar.set_position(done as u64);
                if let Some(l) = loss {
                    bar.set_message(format!("loss {l:.4}"));
                }
            }
            Progress::Epoch(s) if opts.probe_depth.is_some() => bar.suspend(|| {
                if let Some(c) = &s.probe
                    && let Some(f1) = c.macro_f1
                {
                    eprintln!(
                        "block {} with C {}: macro-F1 {f1:.3} on held-out train queries ({} \
                         folds by query; every depth and C in --json)",
                        c.depth, c.c, c.folds
                    );
                }
                eprintln!(
                    "label head fitted: objective {:.4}; its top label right for {:.1}% of the \
                     train pairs",
                    s.loss.last().copied().unwrap_or_default(),
                    100.0 * s.first_token_accuracy.last().copied().unwrap_or_default()
                )
            }),
            Progress::Epoch(s) => bar.suspend(|| {
                eprintln!(
                    "epoch {}: loss {:.4} per answer token; first answer token right for {:.1}% \
                     of pairs",
                    s.epochs_done,
                    s.loss.last().copied().unwrap_or_default(),
                    100.0 * s.first_token_accuracy.last().copied().unwrap_or_default()
                )
            }),
        }))
    });
    bar.finish_and_clear();
    store.close().await;
    let state = state?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&state)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(e) = state.resumed_at_epoch {
        println!("resumed after epoch {e}");
    }
    println!(
        "tuned on {} pairs in {:.0} s: wrote {}",
        state.examples,
        state.seconds,
        inert(&opts.out.display().to_string())
    );
    println!(
        "next: workbench teach --mode {} --model {} --only all",
        opts.mode.as_str(),
        inert(&opts.out.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

async fn calibrate_command(db: &Path, args: CalibrateArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let scale = store.scale().await?;
    let (spec, fitted) = calibrate(
        &store,
        &scale,
        args.split.as_ref(),
        args.seed,
        args.min_pairs,
        args.objective.into(),
    )
    .await?;
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fitted)?);
        return Ok(ExitCode::SUCCESS);
    }
    if fitted.is_empty() {
        println!(
            "no teacher has a judged pair with a human label (annotator or imported gold): \
             run `workbench teach`, then review or import labelled pairs"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "split {spec}, seed {}: fitted on train (a tuned teacher on dev: it learnt the train \
         labels), measured on test",
        args.seed
    );
    for t in &fitted {
        let c = &t.fit.calibration;
        println!(
            "{} · prompt {} · {}",
            inert(&t.model),
            &t.prompt_hash[..t.prompt_hash.len().min(12)],
            t.mode
        );
        let Some(id) = t.id else {
            println!(
                "  {} labelled {} pairs, fewer than --min-pairs {}: not stored",
                t.fit.samples, t.fitted_on, args.min_pairs
            );
            continue;
        };
        let bias: Vec<String> = scale
            .labels
            .iter()
            .zip(&c.bias)
            .map(|(l, b)| format!("{} {b:+.2}", l.key))
            .collect();
        // A slope at or below 0 has no temperature to speak of: the teacher's surer labels are
        // the humans' less likely ones, or its confidence says nothing.
        let slope = if c.slope > 0.0 {
            format!("temperature {:.2}", 1.0 / c.slope)
        } else {
            format!(
                "slope {:.3} (its confidence runs against the humans' labels)",
                c.slope
            )
        };
        println!(
            "  calibration #{id} on {} {} pairs: {slope}, bias {}",
            t.fit.samples,
            t.fitted_on,
            bias.join(" ")
        );
        println!(
            "  {} (fitted for {}): log-loss {:.3} → {:.3}, macro-F1 {:.3} → {:.3}, accuracy {:.3} → {:.3}",
            t.fitted_on,
            t.fit.objective.as_str(),
            t.fit.nll_before,
            t.fit.nll_after,
            t.fit.macro_f1_before,
            t.fit.macro_f1_after,
            t.fit.accuracy_before,
            t.fit.accuracy_after
        );
        println!(
            "  test ({} pairs): macro-F1 {:.3} → {:.3}, kappa {:.3} → {:.3}, accuracy {:.3} → {:.3}",
            t.test_raw.n,
            t.test_raw.macro_f1,
            t.test_calibrated.macro_f1,
            t.test_raw.kappa,
            t.test_calibrated.kappa,
            t.test_raw.accuracy,
            t.test_calibrated.accuracy
        );
    }
    println!("next: workbench compare --split test (the calibrated teacher beside the raw one)");
    Ok(ExitCode::SUCCESS)
}
