//! Fine-tuning a student: KL to the teacher's distribution, Margin-MSE within a query, CoT
//! verdict heads, and human labels; AdamW with warmup and linear decay; the `dev` split scored
//! after every epoch, the best epoch kept, early stopping; a checkpoint per epoch that a re-run
//! resumes from.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{D, DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::bert::Dropout;
use super::data::Example;
use super::model::{Output, Student, StudentConfig};
use crate::domain::Verdict;
use crate::domain::balanced_class_weights;
use crate::domain::metrics::Confusion;
use crate::domain::schedule::Schedule;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub out: PathBuf,
    pub base: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of the encoder.
    pub learning_rate: f64,
    /// Peak learning rate of the fresh heads, alone or beside an encoder being tuned; once
    /// probed, they follow the encoder's rate.
    pub head_learning_rate: f64,
    /// Share of the steps over which the learning rate rises from 0 to its peak; it then falls
    /// linearly to 0 at the last step.
    pub warmup: f64,
    /// Stop after this many epochs without a better dev macro-F1.
    pub patience: Option<usize>,
    /// Keep the last epoch's weights rather than the best on dev: for training that converges
    /// (heads on a frozen encoder), where a small dev split's best epoch is mostly its noise.
    pub keep_last: bool,
    /// BERT's dropout while training (its pre-training used 0.1).
    pub dropout: f64,
    /// Train the heads alone for the first N epochs, on the encoder's features computed once
    /// (an epoch then costs a few matrix products), then fine-tune everything: linear probing
    /// then fine-tuning (Kumar et al., 2022), which keeps more of what the encoder knows about
    /// unseen queries. N ≥ epochs freezes the encoder throughout.
    pub probe_epochs: usize,
    /// Stop after this many steps in all (for quick runs and tests).
    pub max_steps: Option<usize>,
    /// Start over even when `out` holds a checkpoint.
    pub restart: bool,
}

/// Weights of the loss terms besides the human weight of `Losses`.
const MARGIN_WEIGHT: f64 = 4.0;
const COT_WEIGHT: f64 = 0.5;
/// Items of one query kept next to each other in a batch, so that Margin-MSE has pairs to
/// compare while a batch still mixes several queries.
const ITEMS_PER_QUERY_RUN: usize = 4;
/// Below this many train pairs with both a teacher and a human label, the teacher's agreement is
/// not measured and its targets keep full weight.
const MIN_PAIRS_TO_MEASURE_TEACHER: usize = 20;

/// One epoch's figures on the `dev` split.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DevScore {
    pub epoch: usize,
    pub pairs: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub kappa: f64,
}

/// What a training run did; also stored in `student.json` as `trained`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    pub epochs_done: usize,
    pub steps_done: usize,
    pub examples: usize,
    /// Loss of every step, in order.
    pub step_losses: Vec<f32>,
    /// Mean loss of each finished epoch.
    pub epoch_losses: Vec<f32>,
    pub seconds: f64,
    #[serde(default)]
    pub resumed_at_epoch: Option<usize>,
    /// The weight the teacher's targets (KL, Margin-MSE, CoT heads) trained with, and why.
    #[serde(default)]
    pub teacher_weight: f64,
    #[serde(default)]
    pub teacher_weight_reason: String,
    /// What the dev figures compare with: `human` labels or the `teacher`'s.
    #[serde(default)]
    pub dev_reference: String,
    #[serde(default)]
    pub dev: Vec<DevScore>,
    /// The epoch with the best dev macro-F1 (the last epoch without dev pairs).
    #[serde(default)]
    pub best_epoch: Option<usize>,
    /// The epoch whose weights were kept: the best, or the last with `keep_last`.
    #[serde(default)]
    pub kept_epoch: Option<usize>,
    #[serde(default)]
    pub stopped_early: bool,
    /// The students trained with and without the teacher's terms when its weight was left to
    /// measurement; empty when one student was trained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// A student trained at one teacher weight, and its dev figures at the kept epoch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Candidate {
    pub teacher_weight: f64,
    /// Train pairs it learnt from: without the teacher, those with a human label.
    pub examples: usize,
    #[serde(default)]
    pub seconds: f64,
    pub dev: Option<DevScore>,
}

impl TrainState {
    fn best_dev(&self) -> Option<&DevScore> {
        let best = self.best_epoch?;
        self.dev.iter().find(|d| d.epoch == best)
    }

    /// The dev figures of the epoch whose weights were kept.
    pub fn kept_dev(&self) -> Option<&DevScore> {
        let kept = self.kept_epoch?;
        self.dev.iter().find(|d| d.epoch == kept)
    }
}

fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Trains on the `train` split of `examples`, scoring `dev` after every epoch.
/// `on_step(step, steps_total, loss)` reports each step, `on_epoch` each finished epoch.
/// Resumes from `out/checkpoint` when it holds a finished epoch of the same configuration.
///
/// With the teacher's weight left to measurement (`teacher_weight: None`) and the teacher
/// trusted at all, two students are trained, with and without the teacher's terms (in
/// `out/candidates/`), and the one with the better dev macro-F1 is kept in `out`: a teacher
/// that agrees with the humans can still teach a student less than their labels alone do.
pub fn train(
    examples: &[Example],
    config: StudentConfig,
    opts: &TrainOptions,
    mut on_step: impl FnMut(usize, usize, f32),
    mut on_epoch: impl FnMut(&TrainState),
) -> Result<(Student, TrainState)> {
    let train: Vec<&Example> = examples
        .iter()
        .filter(|e| e.split == "train" && e.learnable(&config.losses))
        .collect();
    if train.is_empty() {
        bail!(
            "nothing to train on: no pair of the train split has a teacher judgment or a human label \
             (run `workbench teach` first, or import labelled pairs)"
        );
    }
    let human_reference = config.losses.human_weight > 0.0;
    let dev: Vec<(&Example, usize)> = examples
        .iter()
        .filter(|e| e.split == "dev")
        .filter_map(|e| Some((e, reference_label(e, human_reference)?)))
        .collect();
    let dev_examples: Vec<&Example> = dev.iter().map(|(e, _)| *e).collect();
    let sets = Sets {
        train: &train,
        dev: &dev,
        dev_examples: &dev_examples,
        human_reference,
    };
    let (teacher_weight, why) = match config.losses.teacher_weight {
        Some(w) => (w, "set by --teacher-weight".to_string()),
        None => trusted_teacher_weight(&train, &dev_examples, &config),
    };
    let losses = &config.losses;
    let teacher_teaches = train.iter().any(|e| {
        ((losses.kl || losses.margin_mse) && e.teacher.is_some())
            || (losses.cot && e.verdicts.iter().any(Option::is_some))
    });
    let choose = losses.teacher_weight.is_none()
        && teacher_weight > 0.0
        && teacher_teaches
        && human_reference
        && dev.len() >= MIN_PAIRS_TO_MEASURE_TEACHER;
    if !choose {
        return fit(
            &sets,
            config,
            opts,
            (teacher_weight, why),
            &mut on_step,
            &mut on_epoch,
        );
    }
    let mut runs = Vec::with_capacity(2);
    // One progress count over both: the second's steps are not known until it starts (it
    // leaves out the pairs only the teacher labelled), so the first counts itself twice.
    let mut first_total = 0;
    for (i, (weight, dir)) in [(teacher_weight, "with-teacher"), (0.0, "without-teacher")]
        .into_iter()
        .enumerate()
    {
        let candidate = TrainOptions {
            out: opts.out.join("candidates").join(dir),
            ..opts.clone()
        };
        runs.push(fit(
            &sets,
            config.clone(),
            &candidate,
            (weight, why.clone()),
            &mut |step, total, loss| {
                if i == 0 {
                    first_total = total;
                    on_step(step, 2 * total, loss)
                } else {
                    on_step(first_total + step, first_total + total, loss)
                }
            },
            &mut on_epoch,
        )?);
    }
    let without = runs.pop().expect("two runs");
    let with = runs.pop().expect("two runs");
    let kept_f1 = |s: &TrainState| s.kept_dev().map_or(f64::NEG_INFINITY, |d| d.macro_f1);
    let (with_f1, without_f1) = (kept_f1(&with.1), kept_f1(&without.1));
    let candidates = [&with.1, &without.1]
        .iter()
        .map(|s| Candidate {
            teacher_weight: s.teacher_weight,
            examples: s.examples,
            seconds: s.seconds,
            dev: s.kept_dev().cloned(),
        })
        .collect();
    let teacher_helps = with_f1 > without_f1;
    let (mut student, mut state) = if teacher_helps { with } else { without };
    state.teacher_weight_reason = format!(
        "{why}; the student's dev macro-F1 with the teacher's terms {with_f1:.3}, without them \
         {without_f1:.3}: {}",
        if teacher_helps {
            "kept with them"
        } else {
            "kept without them"
        }
    );
    state.candidates = candidates;
    student.config.trained = serde_json::to_value(&state)?;
    student.save(&opts.out, &opts.base.join("tokenizer.json"))?;
    Ok((student, state))
}

/// The pairs one training run reads.
struct Sets<'a> {
    train: &'a [&'a Example],
    /// Dev pairs with their reference label.
    dev: &'a [(&'a Example, usize)],
    dev_examples: &'a [&'a Example],
    human_reference: bool,
}

/// One training run at a given teacher weight.
fn fit(
    sets: &Sets,
    mut config: StudentConfig,
    opts: &TrainOptions,
    (teacher_weight, why): (f64, String),
    on_step: &mut dyn FnMut(usize, usize, f32),
    on_epoch: &mut dyn FnMut(&TrainState),
) -> Result<(Student, TrainState)> {
    let Sets {
        train,
        dev,
        dev_examples,
        human_reference,
    } = *sets;
    // Without the teacher's terms, a pair only it labelled (an augmented one) teaches nothing,
    // yet it would still thin the batches' loss and join its query's candidates as context.
    let kept: Vec<&Example>;
    let train = if teacher_weight > 0.0 {
        train
    } else {
        kept = train
            .iter()
            .copied()
            .filter(|e| e.human.is_some())
            .collect();
        if kept.is_empty() {
            bail!(
                "nothing to train on: the teacher's weight is 0 and no train pair has a human label"
            );
        }
        &kept[..]
    };
    let (class_weights, teacher_classes) = if config.losses.balanced {
        (
            balanced_class_weights(train.iter().filter_map(|e| e.human), config.labels.len()),
            balanced_class_weights(
                train
                    .iter()
                    .filter_map(|e| e.teacher.as_deref().map(top_label)),
                config.labels.len(),
            ),
        )
    } else {
        (
            vec![1.0; config.labels.len()],
            vec![1.0; config.labels.len()],
        )
    };

    if config.query_context && opts.probe_epochs < opts.epochs {
        bail!(
            "--query-context needs the encoder frozen (--encoder frozen): a batch holds only a few \
             pairs of a query, too few to place a pair among its query's candidates while tuning"
        );
    }
    let ckpt = checkpoint_dir(&opts.out);
    let mut state = TrainState {
        examples: train.len(),
        teacher_weight,
        teacher_weight_reason: why,
        dev_reference: if human_reference { "human" } else { "teacher" }.into(),
        ..Default::default()
    };
    let mut student = Student::from_base(&opts.base, config.clone())?;
    config = student.config.clone();
    if !opts.restart && ckpt.join("state.json").exists() {
        let saved: StudentConfig = serde_json::from_str(
            &std::fs::read_to_string(ckpt.join("student.json"))
                .with_context(|| format!("reading {}", ckpt.join("student.json").display()))?,
        )?;
        if (
            saved.kind,
            &saved.labels,
            &saved.losses,
            &saved.split,
            &saved.teacher_distribution,
            saved.seed,
            saved.bert.num_hidden_layers,
            saved.max_tokens,
        ) != (
            config.kind,
            &config.labels,
            &config.losses,
            &config.split,
            &config.teacher_distribution,
            config.seed,
            config.bert.num_hidden_layers,
            config.max_tokens,
        ) {
            bail!(
                "{} holds a checkpoint of another configuration ({} student); pass --restart to \
                 start over or choose another --out",
                ckpt.display(),
                saved.kind.as_str()
            );
        }
        state = serde_json::from_str(&std::fs::read_to_string(ckpt.join("state.json"))?)
            .with_context(|| format!("reading {}", ckpt.join("state.json").display()))?;
        state.resumed_at_epoch = Some(state.epochs_done);
        student = Student::load_weights(
            config.clone(),
            &opts.base.join("tokenizer.json"),
            &ckpt.join("model.safetensors"),
        )?;
    }

    type Named = Vec<(String, Var)>;
    let (heads, encoder): (Named, Named) = {
        let data = student.varmap.data().lock().expect("varmap");
        let mut all: Named = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter()
            .partition(|(k, _)| k.starts_with("student."))
    };
    let params = |lr: f64| ParamsAdamW {
        lr,
        weight_decay: 0.01,
        ..Default::default()
    };
    let mut encoder_opt = AdamW::new(
        encoder.into_iter().map(|v| v.1).collect(),
        params(opts.learning_rate),
    )?;
    let mut head_opt = AdamW::new(
        heads.into_iter().map(|v| v.1).collect(),
        params(opts.head_learning_rate),
    )?;

    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let total_steps = opts
        .max_steps
        .unwrap_or(usize::MAX)
        .min(steps_per_epoch * opts.epochs);
    // Two phases, each warming up and decaying on its own: the heads alone (at the heads' rate),
    // then everything (the heads at the encoder's rate once they were probed, else faster).
    let probe_epochs = opts.probe_epochs.min(opts.epochs);
    let probe_steps = total_steps.min(steps_per_epoch * probe_epochs);
    let phase = |start: usize, end: usize, peak: f64| Schedule {
        peak,
        start,
        warmup: ((opts.warmup * (end - start) as f64).ceil() as usize).max(1),
        total: end,
    };
    let probe = phase(0, probe_steps, opts.head_learning_rate);
    let tune = phase(probe_steps, total_steps, opts.learning_rate);
    let tuned_head_factor = if probe_epochs > 0 {
        1.0
    } else {
        opts.head_learning_rate / opts.learning_rate
    };
    let loss_weights = LossWeights {
        teacher: teacher_weight,
        classes: class_weights,
        teacher_classes,
    };
    // Seeded by the epoch count too, so that a resumed run does not replay the first epoch's masks.
    let dropout = (opts.dropout > 0.0).then(|| {
        Dropout::new(
            opts.dropout as f32,
            config.seed ^ (state.epochs_done as u64).rotate_left(32),
        )
    });
    // While probing, the encoder's features do not change: computed once, each step reads its
    // rows.
    let cached = if state.epochs_done < probe_epochs {
        let train_features = features_of(&student, train)?;
        Some((train_features, features_of(&student, dev_examples)?))
    } else {
        None
    };
    let started = Instant::now();
    let seconds_before = state.seconds;
    let resumed_at = state.steps_done;
    for epoch in state.epochs_done..opts.epochs {
        if state.steps_done >= total_steps || state.stopped_early {
            break;
        }
        let order = epoch_order(train, config.seed.wrapping_add(epoch as u64));
        let mut sum = 0.0f64;
        let mut n = 0usize;
        for indices in order.chunks(opts.batch_size) {
            let batch: Vec<&Example> = indices.iter().map(|&i| train[i]).collect();
            if state.steps_done >= total_steps {
                break;
            }
            let probing = epoch < probe_epochs;
            let schedule = if probing { &probe } else { &tune };
            let mut lr = schedule.at(state.steps_done);
            if resumed_at > 0 {
                // AdamW's moments are not checkpointed: a resumed run starts them afresh, and
                // fresh moments move every weight by the full rate, so they get a warmup too.
                lr *=
                    ((state.steps_done - resumed_at + 1) as f64 / schedule.warmup as f64).min(1.0);
            }
            encoder_opt.set_learning_rate(lr);
            head_opt.set_learning_rate(if probing { lr } else { lr * tuned_head_factor });
            let out = match cached.as_ref().filter(|_| probing) {
                Some((features, _)) => {
                    let rows: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
                    let rows = Tensor::from_vec(rows, indices.len(), student.device())?;
                    student.heads(&features.index_select(&rows, 0)?)?
                }
                None => {
                    let pairs: Vec<(&str, &str)> = batch
                        .iter()
                        .map(|e| (e.query.as_str(), e.passage.as_str()))
                        .collect();
                    student.forward_with(&pairs, dropout.as_ref())?
                }
            };
            let loss = batch_loss(&student, &batch, &out, &loss_weights)?;
            let grads = loss.backward()?;
            if !probing {
                encoder_opt.step(&grads)?;
            }
            head_opt.step(&grads)?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                bail!(
                    "the loss is {value} at step {}: lower --learning-rate",
                    state.steps_done + 1
                );
            }
            state.step_losses.push(value);
            state.steps_done += 1;
            sum += value as f64;
            n += 1;
            on_step(state.steps_done, total_steps, value);
        }
        if n == steps_per_epoch {
            state.epochs_done = epoch + 1;
            state.epoch_losses.push((sum / n as f64) as f32);
            let improved = if dev.is_empty() {
                true
            } else {
                let features = cached
                    .as_ref()
                    .filter(|_| epoch < probe_epochs)
                    .map(|c| &c.1);
                let score = dev_score(&student, dev, features, epoch + 1)?;
                let better = state
                    .best_dev()
                    .is_none_or(|best| score.macro_f1 > best.macro_f1);
                state.dev.push(score);
                better
            };
            if improved {
                state.best_epoch = Some(epoch + 1);
                save_weights(&student, &ckpt.join("best.safetensors"))?;
            } else if let (Some(p), Some(best)) = (opts.patience, state.best_epoch) {
                state.stopped_early = epoch + 1 - best >= p;
            }
            state.seconds = seconds_before + started.elapsed().as_secs_f64();
            save_checkpoint(&student, &state, opts)?;
            on_epoch(&state);
        }
    }
    state.seconds = seconds_before + started.elapsed().as_secs_f64();
    state.kept_epoch = if opts.keep_last {
        Some(state.epochs_done)
    } else {
        state.best_epoch
    };
    if state.kept_epoch.is_some() && state.kept_epoch != Some(state.epochs_done) {
        let best = ckpt.join("best.safetensors");
        student
            .varmap
            .load(&best)
            .with_context(|| format!("reading the best epoch's weights {}", best.display()))?;
    }
    student.config.trained = serde_json::to_value(&state)?;
    student.save(&opts.out, &opts.base.join("tokenizer.json"))?;
    Ok((student, state))
}

/// How much the teacher's targets count next to the human labels: its Cohen's kappa against
/// the human labels, floored at 0. A teacher at chance level then cannot drown the humans; one
/// that agrees with them counts in full. Measured on the dev pairs when enough of them have both
/// labels: a teacher fine-tuned on the train pairs' labels (`teacher tune`) repeats them there,
/// and only pairs it never saw say how it labels the pairs it is asked to teach. Without human
/// labels to learn from (or too few pairs to measure on) the teacher counts in full.
fn trusted_teacher_weight(
    train: &[&Example],
    dev: &[&Example],
    config: &StudentConfig,
) -> (f64, String) {
    if config.losses.human_weight <= 0.0 {
        return (1.0, "no human labels in the loss".into());
    }
    let agreement = |set: &[&Example]| {
        let mut confusion = Confusion::new(config.labels.clone());
        for e in set {
            if let (Some(t), Some(h)) = (&e.teacher, e.human) {
                confusion.add(h, argmax(t));
            }
        }
        confusion
    };
    let on_dev = agreement(dev);
    let (confusion, split) = if on_dev.total() as usize >= MIN_PAIRS_TO_MEASURE_TEACHER {
        (on_dev, "dev")
    } else {
        (agreement(train), "train")
    };
    let n = confusion.total() as usize;
    if n < MIN_PAIRS_TO_MEASURE_TEACHER {
        return (
            1.0,
            format!("only {n} train pairs have a teacher and a human label: not measured"),
        );
    }
    let kappa = confusion.kappa();
    (
        kappa.clamp(0.0, 1.0),
        format!("the teacher's kappa with the human labels of {n} {split} pairs is {kappa:.3}"),
    )
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// What a dev pair's prediction is measured against: the human label when the student learns
/// from humans, else the teacher's label.
fn reference_label(e: &Example, human: bool) -> Option<usize> {
    if human {
        e.human
    } else {
        e.teacher.as_deref().map(argmax)
    }
}

/// Each example's features from the student's encoder as it stands (no dropout, no graph),
/// [examples, feature width], in the examples' order; a query's context is taken over all its
/// examples.
fn features_of(student: &Student, examples: &[&Example]) -> Result<Tensor> {
    use rayon::prelude::*;
    if examples.is_empty() {
        return Ok(Tensor::zeros(
            (0, student.config.feature_width()),
            DType::F32,
            student.device(),
        )?);
    }
    let frozen = student.frozen()?;
    let parts: Vec<Tensor> = examples
        .par_chunks(32)
        .map(|chunk| {
            let pairs: Vec<(&str, &str)> = chunk
                .iter()
                .map(|e| (e.query.as_str(), e.passage.as_str()))
                .collect();
            frozen.pair_features(&pairs, None)
        })
        .collect::<Result<_>>()?;
    let pairs: Vec<(&str, &str)> = examples
        .iter()
        .map(|e| (e.query.as_str(), e.passage.as_str()))
        .collect();
    frozen.with_context(Tensor::cat(&parts, 0)?, &pairs)
}

/// The dev pairs' figures against their reference labels; `features`: the dev pairs' cached
/// features when the encoder is frozen.
fn dev_score(
    student: &Student,
    dev: &[(&Example, usize)],
    features: Option<&Tensor>,
    epoch: usize,
) -> Result<DevScore> {
    let frozen = student.frozen()?;
    let predicted: Vec<Vec<f32>> = match features {
        Some(f) => candle_nn::ops::softmax(&frozen.heads(f)?.labels, D::Minus1)?.to_vec2()?,
        None => {
            let pairs: Vec<(&str, &str)> = dev
                .iter()
                .map(|(e, _)| (e.query.as_str(), e.passage.as_str()))
                .collect();
            frozen
                .predict_parallel(&pairs, 32)?
                .into_iter()
                .map(|(p, _)| p)
                .collect()
        }
    };
    let mut confusion = Confusion::new(student.config.labels.clone());
    for ((_, reference), probs) in dev.iter().zip(&predicted) {
        confusion.add(*reference, argmax(probs));
    }
    Ok(DevScore {
        epoch,
        pairs: confusion.total(),
        accuracy: confusion.accuracy(),
        macro_f1: confusion.macro_f1(),
        kappa: confusion.kappa(),
    })
}

fn save_weights(student: &Student, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("partial");
    student
        .varmap
        .save(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn save_checkpoint(student: &Student, state: &TrainState, opts: &TrainOptions) -> Result<()> {
    let dir = checkpoint_dir(&opts.out);
    student.save(&dir, &opts.base.join("tokenizer.json"))?;
    let tmp = dir.join("state.json.partial");
    std::fs::write(&tmp, serde_json::to_string(state)?)?;
    std::fs::rename(&tmp, dir.join("state.json"))?;
    Ok(())
}

/// Runs of up to `ITEMS_PER_QUERY_RUN` items of one query, the runs shuffled across queries:
/// a batch mixes several queries (a batch of one query's items pulled every step towards that
/// query's label mix) yet keeps items of one query together for Margin-MSE. Indices into
/// `train`; deterministic for a seed.
fn epoch_order(train: &[&Example], seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (i, e) in train.iter().enumerate() {
        let k = *index.entry(e.group.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[k].push(i);
    }
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for mut g in groups {
        g.shuffle(&mut rng);
        runs.extend(g.chunks(ITEMS_PER_QUERY_RUN).map(<[_]>::to_vec));
    }
    runs.shuffle(&mut rng);
    runs.into_iter().flatten().collect()
}

/// What scales the loss terms: the teacher's trust, a weight per human label, and a weight per
/// teacher's top label for its KL rows.
pub struct LossWeights {
    pub teacher: f64,
    pub classes: Vec<f64>,
    pub teacher_classes: Vec<f64>,
}

/// The index of the distribution's largest share.
fn top_label(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// The combined loss of one batch, whose logits are `out`.
pub fn batch_loss(
    student: &Student,
    batch: &[&Example],
    out: &Output,
    w: &LossWeights,
) -> Result<Tensor> {
    let cfg = &student.config;
    let losses = cfg.losses;
    let device = student.device();
    let b = batch.len();
    let n = cfg.labels.len();
    let mut total = Tensor::zeros((), DType::F32, device)?;
    if losses.head_l2 > 0.0 {
        total = (total + (student.head_weight_norm()? * losses.head_l2)?)?;
    }
    let teacher_on = w.teacher > 0.0;

    // KL(teacher_T ‖ student_T) · T², over the rows the teacher judged, each row weighted by
    // its teacher's top label (balanced classes, or 1) and averaged over the weights: a
    // teacher that says one label for most pairs does not teach the student that label alone.
    let judged: Vec<usize> = (0..b).filter(|&i| batch[i].teacher.is_some()).collect();
    if losses.kl && teacher_on && !judged.is_empty() {
        // Temperature 0 is the limit of the tempered target: the teacher's top label alone,
        // against the student's plain distribution.
        let hard = losses.temperature <= 0.0;
        let t = if hard { 1.0 } else { losses.temperature };
        let mut target = vec![0f32; b * n];
        let mut entropy = 0f64;
        let mut weight_sum = 0f64;
        for &i in &judged {
            let p = batch[i].teacher.as_ref().expect("judged");
            let top = top_label(p);
            let weight = w.teacher_classes[top];
            weight_sum += weight;
            let tempered: Vec<f64> = if hard {
                (0..n).map(|k| if k == top { 1.0 } else { 0.0 }).collect()
            } else {
                p.iter()
                    .map(|x| (*x as f64).max(1e-12).powf(1.0 / t))
                    .collect()
            };
            let z: f64 = tempered.iter().sum();
            for (k, v) in tempered.iter().enumerate() {
                let q = v / z;
                target[i * n + k] = (weight * q) as f32;
                entropy += weight * q * q.max(1e-12).ln();
            }
        }
        let target = Tensor::from_vec(target, (b, n), device)?;
        let logp = candle_nn::ops::log_softmax(&(&out.labels / t)?, D::Minus1)?;
        let cross = (target * logp)?.sum_all()?.neg()?;
        let kl = ((cross + entropy)? * (w.teacher * t * t / weight_sum.max(1e-12)))?;
        total = (total + kl)?;
    }

    // Cross-entropy on human labels, each label weighted (balanced classes, or 1), averaged
    // over the weights as PyTorch's weighted cross-entropy does.
    let labelled: Vec<usize> = (0..b).filter(|&i| batch[i].human.is_some()).collect();
    if losses.human_weight > 0.0 && !labelled.is_empty() {
        let mut target = vec![0f32; b * n];
        let mut weight_sum = 0.0;
        for &i in &labelled {
            let h = batch[i].human.expect("labelled");
            target[i * n + h] = w.classes[h] as f32;
            weight_sum += w.classes[h];
        }
        let target = Tensor::from_vec(target, (b, n), device)?;
        let logp = candle_nn::ops::log_softmax(&out.labels, D::Minus1)?;
        let ce = (target * logp)?.sum_all()?.neg()?;
        total = (total + (ce * (losses.human_weight / weight_sum.max(1e-12)))?)?;
    }

    // Margin-MSE: for two judged items of one query, the student's score margin against the
    // teacher's.
    if losses.margin_mse && teacher_on {
        let (mut left, mut right, mut margins) = (Vec::new(), Vec::new(), Vec::new());
        for (x, &i) in judged.iter().enumerate() {
            for &j in &judged[x + 1..] {
                if batch[i].group == batch[j].group {
                    let ti = cfg.score_of(batch[i].teacher.as_ref().expect("judged"));
                    let tj = cfg.score_of(batch[j].teacher.as_ref().expect("judged"));
                    left.push(i as u32);
                    right.push(j as u32);
                    margins.push((ti - tj) as f32);
                }
            }
        }
        if !margins.is_empty() {
            let top = cfg.top_gain();
            let gains: Vec<f32> = cfg.gains.iter().map(|g| (g / top) as f32).collect();
            let gains = Tensor::from_vec(gains, (n, 1), device)?;
            let scores = candle_nn::ops::softmax(&out.labels, D::Minus1)?
                .matmul(&gains)?
                .squeeze(1)?;
            let count = margins.len();
            let l = scores.index_select(&Tensor::from_vec(left, count, device)?, 0)?;
            let r = scores.index_select(&Tensor::from_vec(right, count, device)?, 0)?;
            let want = Tensor::from_vec(margins, count, device)?;
            let mse = ((l - r)? - want)?.sqr()?.mean_all()?;
            total = (total + (mse * (MARGIN_WEIGHT * w.teacher))?)?;
        }
    }

    // CoT: the rationale's verdict per dimension.
    if losses.cot && teacher_on {
        let dims = cfg.dimensions.len();
        let v = Verdict::ALL.len();
        let mut target = vec![0f32; b * dims * v];
        let mut count = 0usize;
        for (i, e) in batch.iter().enumerate() {
            for (d, verdict) in e.verdicts.iter().enumerate() {
                if let Some(k) = verdict {
                    target[(i * dims + d) * v + k] = 1.0;
                    count += 1;
                }
            }
        }
        if count > 0 {
            let target = Tensor::from_vec(target, (b, dims, v), device)?;
            let logp = candle_nn::ops::log_softmax(&out.verdicts, D::Minus1)?;
            let ce = (target * logp)?.sum_all()?.neg()?;
            total = (total + (ce * (COT_WEIGHT * w.teacher / count as f64))?)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learning_rate_warms_up_then_falls_to_zero() {
        let s = Schedule {
            peak: 1.0,
            start: 0,
            warmup: 10,
            total: 100,
        };
        // A phase that starts later counts from its start.
        let later = Schedule {
            peak: 1.0,
            start: 200,
            warmup: 10,
            total: 300,
        };
        assert!((later.at(200) - 0.1).abs() < 1e-12);
        assert!((later.at(255) - 0.5).abs() < 1e-12);
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(10) - 1.0).abs() < 1e-12);
        assert!((s.at(55) - 0.5).abs() < 1e-12);
        assert!(s.at(99) > 0.0 && s.at(99) < 0.02);
        assert_eq!(s.at(100), 0.0);
    }

    fn example(group: &str, human: Option<usize>, teacher: Option<usize>) -> Example {
        Example {
            group: group.into(),
            query: group.into(),
            passage: String::new(),
            split: "train".into(),
            augmented: false,
            teacher: teacher.map(|t| {
                let mut p = vec![0.1f32; 4];
                p[t] = 0.7;
                p
            }),
            human,
            verdicts: Vec::new(),
        }
    }

    #[test]
    fn balanced_weights_make_every_label_count_alike() {
        let set: Vec<Example> = (0..10)
            .map(|i| example("q", Some(if i < 8 { 0 } else { 1 }), None))
            .collect();
        let w = balanced_class_weights(set.iter().filter_map(|e| e.human), 4);
        assert!((w[0] * 8.0 - w[1] * 2.0).abs() < 1e-12, "{w:?}");
        assert_eq!((w[2], w[3]), (1.0, 1.0), "absent labels: weight 1");
    }

    fn esci_config() -> StudentConfig {
        crate::student::new_config(
            crate::student::Kind::Cross,
            &crate::domain::LabelScale::esci(),
            crate::student::Losses::default(),
            32,
            0,
        )
    }

    #[test]
    fn a_teacher_at_chance_gets_no_weight_and_one_that_agrees_gets_full_weight() {
        let config = esci_config();
        let agreeing: Vec<Example> = (0..40)
            .map(|i| example("q", Some(i % 4), Some(i % 4)))
            .collect();
        let refs: Vec<&Example> = agreeing.iter().collect();
        assert_eq!(trusted_teacher_weight(&refs, &[], &config).0, 1.0);
        // Always "Irrelevant", whatever the humans say: kappa 0.
        let constant: Vec<Example> = (0..40)
            .map(|i| example("q", Some(i % 4), Some(3)))
            .collect();
        let refs: Vec<&Example> = constant.iter().collect();
        let (w, why) = trusted_teacher_weight(&refs, &[], &config);
        assert_eq!(w, 0.0, "{why}");
        assert!(why.contains("40 train pairs"), "{why}");
        // Too few pairs to measure: full weight, and the reason says so.
        let (w, why) = trusted_teacher_weight(&refs[..5], &[], &config);
        assert_eq!(w, 1.0);
        assert!(why.contains("not measured"), "{why}");
    }

    #[test]
    fn a_teacher_that_repeats_its_tuning_labels_is_trusted_as_it_does_on_dev() {
        let config = esci_config();
        // Tuned on the train pairs' labels, it repeats them; on pairs it never saw it says
        // "Irrelevant" whatever the humans say.
        let train: Vec<Example> = (0..40)
            .map(|i| example("q", Some(i % 4), Some(i % 4)))
            .collect();
        let dev: Vec<Example> = (0..30)
            .map(|i| example("d", Some(i % 4), Some(3)))
            .collect();
        let train: Vec<&Example> = train.iter().collect();
        let dev_refs: Vec<&Example> = dev.iter().collect();
        let (w, why) = trusted_teacher_weight(&train, &dev_refs, &config);
        assert_eq!(w, 0.0, "{why}");
        assert!(why.contains("30 dev pairs"), "{why}");
        // Too few dev pairs with both labels: measured on train, as before.
        let (w, why) = trusted_teacher_weight(&train, &dev_refs[..5], &config);
        assert_eq!(w, 1.0, "{why}");
        assert!(why.contains("40 train pairs"), "{why}");
    }

    #[test]
    fn batches_mix_queries_in_runs_of_one_query() {
        let set: Vec<Example> = (0..40)
            .map(|i| example(&format!("q{}", i % 5), Some(0), None))
            .collect();
        let refs: Vec<&Example> = set.iter().collect();
        let order = epoch_order(&refs, 1);
        assert_eq!(order.len(), 40);
        let mut seen = order.clone();
        seen.sort();
        assert_eq!(seen, (0..40).collect::<Vec<_>>(), "each pair once");
        let first: std::collections::BTreeSet<&str> = order[..16]
            .iter()
            .map(|&i| refs[i].group.as_str())
            .collect();
        assert!(
            first.len() >= 3,
            "a batch of 16 holds several queries: {first:?}"
        );
        assert_eq!(order, epoch_order(&refs, 1));
    }
}
