use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{CalibrateArgs, TeacherCommand};
use crate::domain::text::inert;
use crate::store::Store;
use crate::teacher::calibrate::calibrate;

pub async fn run(db: &Path, command: TeacherCommand) -> Result<ExitCode> {
    match command {
        TeacherCommand::Calibrate(args) => calibrate_command(db, args).await,
    }
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
        "split {spec}, seed {}: fitted on train, measured on test",
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
                "  {} labelled train pairs, fewer than --min-pairs {}: not stored",
                t.fit.samples, args.min_pairs
            );
            continue;
        };
        let bias: Vec<String> = scale
            .labels
            .iter()
            .zip(&c.bias)
            .map(|(l, b)| format!("{} {b:+.2}", l.key))
            .collect();
        println!(
            "  calibration #{id} on {} train pairs: temperature {:.2}, bias {}",
            t.fit.samples,
            1.0 / c.slope,
            bias.join(" ")
        );
        println!(
            "  train: log-loss {:.3} → {:.3}, accuracy {:.3} → {:.3}",
            t.fit.nll_before, t.fit.nll_after, t.fit.accuracy_before, t.fit.accuracy_after
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
