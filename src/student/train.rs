//! Fine-tuning a student: KL to the teacher's distribution, Margin-MSE within a query, CoT
//! verdict heads, and human labels weighted above the teacher's; AdamW; a checkpoint per epoch
//! that a re-run resumes from.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{D, DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::data::Example;
use super::model::{Student, StudentConfig};
use crate::domain::Verdict;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub out: PathBuf,
    pub base: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rate of the encoder; the fresh heads learn 20 times faster.
    pub learning_rate: f64,
    /// Stop after this many steps in all (for quick runs and tests).
    pub max_steps: Option<usize>,
    /// Start over even when `out` holds a checkpoint.
    pub restart: bool,
}

/// Weights of the loss terms besides the human weight of `Losses`.
const MARGIN_WEIGHT: f64 = 4.0;
const COT_WEIGHT: f64 = 0.5;

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
}

fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Trains on the `train` split of `examples`. `on_step(step, steps_total, loss)` reports each
/// step. Resumes from `out/checkpoint` when it holds a finished epoch of the same configuration.
pub fn train(
    examples: &[Example],
    mut config: StudentConfig,
    opts: &TrainOptions,
    mut on_step: impl FnMut(usize, usize, f32),
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
    let ckpt = checkpoint_dir(&opts.out);
    let mut state = TrainState {
        examples: train.len(),
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
            saved.seed,
            saved.bert.num_hidden_layers,
        ) != (
            config.kind,
            &config.labels,
            &config.losses,
            &config.split,
            config.seed,
            config.bert.num_hidden_layers,
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
        params(opts.learning_rate * 20.0),
    )?;

    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let total_steps = opts
        .max_steps
        .unwrap_or(usize::MAX)
        .min(steps_per_epoch * opts.epochs);
    let started = Instant::now();
    let seconds_before = state.seconds;
    for epoch in state.epochs_done..opts.epochs {
        if state.steps_done >= total_steps {
            break;
        }
        let order = epoch_order(&train, config.seed.wrapping_add(epoch as u64));
        let mut sum = 0.0f64;
        let mut n = 0usize;
        for batch in order.chunks(opts.batch_size) {
            if state.steps_done >= total_steps {
                break;
            }
            let loss = batch_loss(&student, batch)?;
            let grads = loss.backward()?;
            encoder_opt.step(&grads)?;
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
            state.seconds = seconds_before + started.elapsed().as_secs_f64();
            save_checkpoint(&student, &state, opts)?;
        }
    }
    state.seconds = seconds_before + started.elapsed().as_secs_f64();
    student.config.trained = serde_json::to_value(&state)?;
    student.save(&opts.out, &opts.base.join("tokenizer.json"))?;
    Ok((student, state))
}

fn save_checkpoint(student: &Student, state: &TrainState, opts: &TrainOptions) -> Result<()> {
    let dir = checkpoint_dir(&opts.out);
    student.save(&dir, &opts.base.join("tokenizer.json"))?;
    let tmp = dir.join("state.json.partial");
    std::fs::write(&tmp, serde_json::to_string(state)?)?;
    std::fs::rename(&tmp, dir.join("state.json"))?;
    Ok(())
}

/// Queries in a shuffled order, each query's pairs together (shuffled too), so that a batch
/// holds several items of one query for Margin-MSE. Deterministic for a seed.
fn epoch_order<'a>(train: &[&'a Example], seed: u64) -> Vec<&'a Example> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut groups: Vec<(&str, Vec<&Example>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for e in train {
        let k = *index.entry(e.group.as_str()).or_insert_with(|| {
            groups.push((e.group.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[k].1.push(*e);
    }
    groups.shuffle(&mut rng);
    let mut out = Vec::with_capacity(train.len());
    for (_, mut g) in groups {
        g.shuffle(&mut rng);
        out.extend(g);
    }
    out
}

/// The combined loss of one batch.
fn batch_loss(student: &Student, batch: &[&Example]) -> Result<Tensor> {
    let cfg = &student.config;
    let losses = cfg.losses;
    let device = student.device();
    let b = batch.len();
    let n = cfg.labels.len();
    let pairs: Vec<(&str, &str)> = batch
        .iter()
        .map(|e| (e.query.as_str(), e.passage.as_str()))
        .collect();
    let out = student.forward(&pairs)?;
    let mut total = Tensor::zeros((), DType::F32, device)?;

    // KL(teacher_T ‖ student_T) · T², over the rows the teacher judged.
    let judged: Vec<usize> = (0..b).filter(|&i| batch[i].teacher.is_some()).collect();
    if losses.kl && !judged.is_empty() {
        let t = losses.temperature.max(1e-3);
        let mut target = vec![0f32; b * n];
        let mut entropy = 0f64;
        for &i in &judged {
            let p = batch[i].teacher.as_ref().expect("judged");
            let tempered: Vec<f64> = p
                .iter()
                .map(|x| (*x as f64).max(1e-12).powf(1.0 / t))
                .collect();
            let z: f64 = tempered.iter().sum();
            for (k, v) in tempered.iter().enumerate() {
                let q = v / z;
                target[i * n + k] = q as f32;
                entropy += q * q.max(1e-12).ln();
            }
        }
        let target = Tensor::from_vec(target, (b, n), device)?;
        let logp = candle_nn::ops::log_softmax(&(&out.labels / t)?, D::Minus1)?;
        let cross = (target * logp)?.sum_all()?.neg()?;
        let kl = ((cross + entropy)? * (t * t / judged.len() as f64))?;
        total = (total + kl)?;
    }

    // Cross-entropy on human labels, weighted above the teacher.
    let labelled: Vec<usize> = (0..b).filter(|&i| batch[i].human.is_some()).collect();
    if losses.human_weight > 0.0 && !labelled.is_empty() {
        let mut target = vec![0f32; b * n];
        for &i in &labelled {
            target[i * n + batch[i].human.expect("labelled")] = 1.0;
        }
        let target = Tensor::from_vec(target, (b, n), device)?;
        let logp = candle_nn::ops::log_softmax(&out.labels, D::Minus1)?;
        let ce = (target * logp)?.sum_all()?.neg()?;
        total = (total + (ce * (losses.human_weight / labelled.len() as f64))?)?;
    }

    // Margin-MSE: for two judged items of one query, the student's score margin against the
    // teacher's.
    if losses.margin_mse {
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
            total = (total + (mse * MARGIN_WEIGHT)?)?;
        }
    }

    // CoT: the rationale's verdict per dimension.
    if losses.cot {
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
            total = (total + (ce * (COT_WEIGHT / count as f64))?)?;
        }
    }
    Ok(total)
}
