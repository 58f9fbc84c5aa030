//! `workbench student train|score|import` and `workbench compare`.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};

use crate::cli::{
    ClassWeights, CompareArgs, EncoderArg, HeadArg, KeepArg, LossName, SplitName, StudentCommand,
    StudentImportArgs, StudentKindArg, StudentScoreArgs, StudentTrainArgs, TeacherDistributionArg,
};
use crate::domain::metrics::{agreement_table, confusion_table, per_label_table};
use crate::domain::text::inert;
use crate::domain::{PairKey, SplitSpec};
use crate::ingest::predictions;
use crate::store::compare::{self, Comparison};
use crate::store::{Store, StudentScore};
use crate::student::data::TeacherDistribution;
use crate::student::{self, Kind, Losses, Student, TrainOptions};

pub async fn run(db: &Path, command: StudentCommand) -> Result<ExitCode> {
    match command {
        StudentCommand::Train(args) => train(db, *args).await,
        StudentCommand::Score(args) => score(db, args).await,
        StudentCommand::Import(args) => import(db, args).await,
    }
}

fn losses_of(args: &StudentTrainArgs) -> Result<Losses> {
    let on = |l: LossName| args.losses.contains(&l);
    let losses = Losses {
        balanced: args.class_weights == ClassWeights::Balanced,
        teacher_weight: args.teacher_weight.0,
        kl: on(LossName::Kl),
        margin_mse: on(LossName::MarginMse),
        cot: on(LossName::Cot),
        human_weight: args.human_weight,
        temperature: args.temperature,
        head_l2: args.head_l2,
    };
    if !(losses.kl || losses.margin_mse || losses.cot) && losses.human_weight <= 0.0 {
        bail!("nothing to learn from: every loss is off and --human-weight is 0");
    }
    if args.temperature.is_nan() || args.temperature < 0.0 {
        bail!("--temperature must be 0 (the teacher's top label) or above");
    }
    if !(0.0..1.0).contains(&args.dropout) {
        bail!(
            "--dropout {}: give a probability from 0 to below 1, such as 0.1",
            args.dropout
        );
    }
    if !(0.0..1.0).contains(&args.warmup) {
        bail!(
            "--warmup {}: give a share of the steps from 0 to below 1, such as 0.1",
            args.warmup
        );
    }
    Ok(losses)
}

async fn train(db: &Path, args: StudentTrainArgs) -> Result<ExitCode> {
    crate::allocator::keep_freed_memory();
    let kind = match args.kind {
        StudentKindArg::Cross => Kind::Cross,
        StudentKindArg::Bi => Kind::Bi,
    };
    let losses = losses_of(&args)?;
    let frozen = args.freeze_encoder || args.encoder == EncoderArg::Frozen;
    let epochs = args.epochs.unwrap_or(if frozen { 40 } else { 3 });
    if args.batch_size == 0 || epochs == 0 {
        bail!("--batch-size and --epochs must be at least 1");
    }
    if args.layers == 0 {
        bail!("--layers must be at least 1");
    }
    if args.query_context && kind != Kind::Bi {
        bail!("--query-context is for the bi-encoder (--kind bi)");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("students").join(kind.as_str()));
    let name = match &args.name {
        Some(n) => n.clone(),
        None => out
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("--out {}: give --name too", out.display()))?,
    };
    let source = args.from.clone().unwrap_or_else(|| db.to_path_buf());
    let store = Store::open(db).await?;
    let scale = store.scale().await?;
    let mut config = student::new_config(kind, &scale, losses, args.max_tokens, args.seed);
    // Asked for, it is checked against the encoder when training starts; by default it is on
    // wherever it applies.
    config.query_context =
        args.query_context || (!args.no_query_context && frozen && kind == Kind::Bi);
    config.lexical = args.lexical || !args.no_lexical;
    config.head = match args.head {
        HeadArg::Mean => student::Head::Mean,
        HeadArg::Match => student::Head::Match,
    };
    config.bert.num_hidden_layers = args.layers;
    let include_augmented = args.include_augmented || args.augmented_ratio.is_some();
    let teacher_distribution = match args.teacher_distribution {
        TeacherDistributionArg::Auto => TeacherDistribution::Auto,
        TeacherDistributionArg::Raw => TeacherDistribution::Raw,
        TeacherDistributionArg::Calibrated => TeacherDistribution::Calibrated,
    };
    let examples = if source.is_dir() {
        if args.split.is_some() {
            bail!(
                "--split: {} is an export directory, whose split is already made (export again with --split)",
                source.display()
            );
        }
        config.split = "export".into();
        let (examples, used) = student::data::from_export(
            &source,
            &scale,
            &config.dimensions,
            include_augmented,
            teacher_distribution,
        )?;
        config.teacher_distribution = used;
        examples
    } else {
        let from = if source == db {
            None
        } else {
            Some(Store::open(&source).await?)
        };
        let s = from.as_ref().unwrap_or(&store);
        let loaded = student::data::from_store(
            s,
            &scale,
            &config.dimensions,
            args.split.as_ref(),
            args.seed,
            include_augmented,
            teacher_distribution,
        )
        .await?;
        config.split = loaded.spec.to_string();
        config.teacher_distribution = loaded.teacher_distribution;
        let ex = loaded.examples;
        if let Some(f) = from {
            f.close().await;
        }
        ex
    };
    let examples = match args.augmented_ratio {
        Some(ratio) => student::data::sample_augmented(examples, ratio, &config.losses, args.seed)?,
        None => examples,
    };
    let in_train = examples.iter().filter(|e| e.split == "train").count();
    let judged = examples
        .iter()
        .filter(|e| e.split == "train" && e.teacher.is_some())
        .count();
    let augmented = examples
        .iter()
        .filter(|e| e.split == "train" && e.augmented)
        .count();
    eprintln!(
        "training a {} student on {in_train} pairs ({judged} judged by the teacher, {augmented} augmented) from {}",
        kind.as_str(),
        source.display()
    );
    let opts = TrainOptions {
        out: out.clone(),
        base: args
            .base
            .clone()
            .unwrap_or_else(crate::models::student_base),
        epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        head_learning_rate: args.head_learning_rate,
        warmup: args.warmup,
        patience: args.patience,
        keep_last: args.keep.map_or(frozen, |k| k == KeepArg::Last),
        dropout: args.dropout,
        probe_epochs: if frozen { epochs } else { args.probe_epochs },
        max_steps: args.max_steps,
        restart: args.restart,
    };
    let bar = crate::terminal::progress(0, "{spinner} step {pos}/{len} {wide_bar} {msg} eta {eta}");
    let last_dev = std::cell::Cell::new(None::<(usize, f64)>);
    let (trained, state) = tokio::task::block_in_place(|| {
        student::train(
            &examples,
            config,
            &opts,
            |step, total, loss| {
                bar.set_length(total as u64);
                bar.set_position(step as u64);
                bar.set_message(match last_dev.get() {
                    Some((epoch, f1)) => {
                        format!("loss {loss:.4} · dev macro-F1 {f1:.3} after epoch {epoch}")
                    }
                    None => format!("loss {loss:.4}"),
                });
            },
            |state| {
                if let Some(d) = state.dev.last() {
                    last_dev.set(Some((d.epoch, d.macro_f1)));
                }
            },
        )
    })?;
    bar.finish_and_clear();
    let path = std::fs::canonicalize(&out).unwrap_or(out.clone());
    store
        .register_student(
            &name,
            kind.as_str(),
            Some(&path.display().to_string()),
            &serde_json::to_value(&trained.config)?,
        )
        .await?;
    store.close().await;
    if let Some(e) = state.resumed_at_epoch {
        let checkpoint = match state.candidates.is_empty() {
            true => out.join("checkpoint"),
            false => out.join("candidates"),
        };
        println!("resumed after epoch {e} from {}", checkpoint.display());
    }
    // With two candidates the figures are the kept one's; the run took both trainings.
    let took = match state.candidates.len() {
        0 | 1 => format!("in {:.0} s", state.seconds),
        n => format!(
            "in {:.0} s (the kept candidate; the {n} candidates took {:.0} s)",
            state.seconds,
            state.candidates.iter().map(|c| c.seconds).sum::<f64>()
        ),
    };
    println!(
        "{name}: {} steps over {} epochs on {} pairs {took}; saved to {}",
        state.steps_done,
        state.epochs_done,
        state.examples,
        out.display()
    );
    println!(
        "  teacher weight {:.2} ({})",
        state.teacher_weight, state.teacher_weight_reason
    );
    if state.teacher_weight > 0.0 || !state.candidates.is_empty() {
        println!(
            "  teacher distribution: {}",
            trained.config.teacher_distribution
        );
    }
    for c in &state.candidates {
        let (f1, kept) = match &c.dev {
            Some(d) => (d.macro_f1, d.epoch),
            None => (f64::NAN, 0),
        };
        println!(
            "  candidate: teacher weight {:.2}, {} pairs, {:.0} s, dev macro-F1 {f1:.3} (epoch {kept}){}",
            c.teacher_weight,
            c.examples,
            c.seconds,
            if c.teacher_weight == state.teacher_weight {
                "  ← kept"
            } else {
                ""
            }
        );
    }
    for epoch in 1..=state.epochs_done {
        if let Some(line) = epoch_line(&state, epoch) {
            println!("{line}");
        }
    }
    if let (Some(first), Some(last)) = (state.step_losses.first(), state.step_losses.last()) {
        println!("  step loss {first:.4} → {last:.4}");
    }
    let stopped = if state.stopped_early {
        "; stopped early"
    } else {
        ""
    };
    match (state.kept_epoch.or(state.best_epoch), state.best_epoch) {
        (Some(kept), Some(best)) if !state.dev.is_empty() && kept == best => println!(
            "  kept epoch {kept}, the best macro-F1 on dev (vs {} labels){stopped}",
            state.dev_reference,
        ),
        (Some(kept), Some(best)) if !state.dev.is_empty() => println!(
            "  kept epoch {kept}, the last (--keep last); the best on dev (vs {} labels) was \
             epoch {best}{stopped}",
            state.dev_reference,
        ),
        _ => println!("  no dev pairs with a label: kept the last epoch"),
    }
    println!("next: workbench student score --name {name}");
    Ok(ExitCode::SUCCESS)
}

/// One epoch's mean loss and, when the dev split was scored, its figures.
fn epoch_line(state: &student::TrainState, epoch: usize) -> Option<String> {
    let loss = state.epoch_losses.get(epoch.checked_sub(1)?)?;
    let mut line = format!("  epoch {epoch:>2}  mean loss {loss:.4}");
    if let Some(d) = state.dev.iter().find(|d| d.epoch == epoch) {
        let _ = write!(
            line,
            "  dev ({} pairs): macro-F1 {:.3}  kappa {:.3}  accuracy {:.3}",
            d.pairs, d.macro_f1, d.kappa, d.accuracy
        );
        if state.kept_epoch.or(state.best_epoch) == Some(epoch) {
            line.push_str("  ← kept");
        } else if state.best_epoch == Some(epoch) {
            line.push_str("  ← best on dev");
        }
    }
    Some(line)
}

/// Queries whose pairs `student score` reads and scores at once.
const QUERIES_PER_PAGE: i64 = 16;

async fn score(db: &Path, args: StudentScoreArgs) -> Result<ExitCode> {
    crate::allocator::keep_freed_memory();
    let store = Store::open(db).await?;
    let (student, id, name) = match (&args.model, &args.name) {
        (Some(dir), name) => {
            let student = Student::load_frozen(dir)?;
            let name = match name {
                Some(n) => n.clone(),
                None => dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_owned)
                    .context("give --name")?,
            };
            let path = std::fs::canonicalize(dir)?.display().to_string();
            let known = store.student_model(Some(&name)).await.ok().flatten();
            let id = match known {
                Some(m) if m.path.as_deref() == Some(path.as_str()) => m.id,
                _ => {
                    store
                        .register_student(
                            &name,
                            student.config.kind.as_str(),
                            Some(&path),
                            &serde_json::to_value(&student.config)?,
                        )
                        .await?
                }
            };
            (student, id, name)
        }
        (None, name) => {
            let m = store.student_model(name.as_deref()).await?.ok_or_else(|| {
                anyhow!("no student yet: train one with `workbench student train`")
            })?;
            let dir = m.path.clone().map(PathBuf::from).ok_or_else(|| {
                anyhow!(
                    "student `{}` was imported: its scores are already stored",
                    m.name
                )
            })?;
            (Student::load_frozen(&dir)?, m.id, m.name)
        }
    };
    let queries = match args.split {
        SplitName::All => None,
        split => {
            let spec = SplitSpec::parse(&student.config.split).map_err(|_| {
                anyhow!(
                    "--split {}: {name} was trained from an export directory, whose split this \
                     database does not know; score --split all",
                    split.as_str()
                )
            })?;
            let (_, splits) = store.splits(Some(&spec), student.config.seed).await?;
            Some(splits.keys_in(split.as_str()))
        }
    };
    let todo = store.count_unscored(id, queries.as_deref()).await?;
    let bar = crate::terminal::progress(
        todo as u64,
        "{spinner} scoring {pos}/{len} pairs {wide_bar} {per_sec} eta {eta}",
    );
    let started = std::time::Instant::now();
    let mut after = 0;
    // A query's pairs are scored together: a student that reads the query's context needs all
    // of them, and a killed run resumes at the first query with a pair left.
    loop {
        let ids = store
            .queries_to_score(id, after, QUERIES_PER_PAGE, queries.as_deref())
            .await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        let pairs = store.pairs_of_queries(&ids).await?;
        let passages: Vec<String> = pairs.iter().map(crate::domain::prompt::passage).collect();
        let inputs: Vec<(&str, &str)> = pairs
            .iter()
            .zip(&passages)
            .map(|(p, t)| (p.query.text.as_str(), t.as_str()))
            .collect();
        let predicted = tokio::task::block_in_place(|| {
            student.predict_parallel(&inputs, args.batch_size.max(1))
        })?;
        let scores: Vec<StudentScore> = pairs
            .iter()
            .zip(predicted)
            .map(|(p, (dist, score))| StudentScore {
                pair_id: p.id,
                score,
                distribution: Some(dist.iter().map(|x| *x as f64).collect()),
            })
            .collect();
        store.save_student_scores(id, &scores).await?;
        bar.set_position((todo - store.count_unscored(id, queries.as_deref()).await?) as u64);
    }
    let done = (todo - store.count_unscored(id, queries.as_deref()).await?) as u64;
    bar.finish_and_clear();
    store.close().await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: scored {done} pairs in {secs:.1} s ({:.1} pairs/s); {} were already scored",
        done as f64 / secs.max(1e-9),
        todo as u64 - done.min(todo as u64)
    );
    Ok(ExitCode::SUCCESS)
}

async fn import(db: &Path, args: StudentImportArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let scale = store.scale().await?;
    let rows = predictions::read(&args.file, &scale)?;
    let keys: Vec<PairKey> = rows.iter().map(|r| r.key.clone()).collect();
    let ids = store.pair_ids(&keys).await?;
    let mut scores = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(id) = ids.get(&r.key) else {
            bail!(
                "{}:{}: query_id/product_id: no pair {}/{} in {}; import the pairs first",
                args.file.display(),
                r.line,
                r.key.query_id,
                r.key.product_id,
                crate::store::without_password(&db.to_string_lossy())
            );
        };
        scores.push(StudentScore {
            pair_id: *id,
            score: r.score,
            distribution: r.distribution.clone(),
        });
    }
    let config = serde_json::json!({"imported_from": args.file.display().to_string()});
    let id = store
        .register_student(&args.name, "imported", None, &config)
        .await?;
    store.save_student_scores(id, &scores).await?;
    store.close().await;
    println!(
        "{}: {} predictions imported from {}",
        args.name,
        scores.len(),
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn compare(db: &Path, args: CompareArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let scale = store.scale().await?;
    let student = store
        .student_model(args.student.as_deref())
        .await?
        .ok_or_else(|| anyhow!("no student yet: `workbench student train` or `student import`"))?;
    let c = compare::compare(&store, &scale, &student, args.split.as_str(), args.top).await?;
    store.close().await;
    if args.json {
        let mut v = serde_json::to_value(&c)?;
        v.as_object_mut().map(|o| o.remove("points"));
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&c));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "student {} on {} pairs of the {} split ({} judged by the teacher too), {} queries with human labels\n",
        c.student, c.pairs, c.split, c.judged_pairs, c.queries
    );
    let mut rows = vec![("teacher vs human", &c.teacher_vs_human)];
    if let Some(a) = &c.teacher_calibrated_vs_human {
        rows.push(("teacher calibrated vs human", a));
    }
    rows.push(("student vs human", &c.student_vs_human));
    if c.student_vs_human_judged.n != c.student_vs_human.n && c.teacher_vs_human.n > 0 {
        rows.push((
            "student vs human, teacher's pairs",
            &c.student_vs_human_judged,
        ));
    }
    rows.push(("teacher vs student", &c.teacher_vs_student));
    for line in agreement_table(&rows) {
        let _ = writeln!(out, "{line}");
    }
    for (who, a) in [
        ("student", &c.student_vs_human),
        ("teacher", &c.teacher_vs_human),
    ] {
        if a.n == 0 {
            continue;
        }
        let _ = writeln!(out, "\n{who} vs human, per label:");
        for line in per_label_table(a) {
            let _ = writeln!(out, "  {line}");
        }
        for line in confusion_table(&a.confusion, "human", who) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let _ = writeln!(
        out,
        "\nNDCG@10 (human gains): teacher {}, student {}; score correlation (Pearson) {}",
        f(c.ndcg10_teacher),
        f(c.ndcg10_student),
        f(c.score_pearson)
    );
    if !c.disagreements.is_empty() {
        let _ = writeln!(out, "\nwhere they differ most:");
        for d in &c.disagreements {
            let title: String = d.title.chars().take(50).collect();
            let _ = writeln!(
                out,
                "  {:>5.2} vs {:<5.2} teacher {} student {} human {}  {} | {}",
                d.teacher_score,
                d.student_score,
                d.teacher,
                d.student,
                d.human.as_deref().unwrap_or("-"),
                inert(&d.query),
                inert(&title)
            );
        }
    }
    out
}
