//! `teacher tune` in score mode (or `--probe-depth`): the first blocks of the network and a
//! label head on their output. A linear probe of a middle block's state tells the labels apart better than the last
//! block's does (BENCHMARKS.md), and the network cut there runs in half the time. The head is a
//! multinomial logistic regression on the RMS-normalised state at the position where the answer
//! starts, fitted on the train pairs' human labels with an L2 penalty. The written GGUF is the
//! cut network whose output matrix gives each label's first token the head's logit, lifted far
//! above every other token (whose row is zero), so mistral.rs runs it as any score-mode teacher
//! and the label distribution is read as before.

use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Example, Llama, PARALLEL_CHUNK, Progress};
use crate::domain::SplitQuery;
use crate::domain::metrics::Confusion;
use crate::domain::split::query_folds;

/// Where the network is cut: after a given block, or after the block whose state a head
/// cross-validated on the train queries labels best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeDepth {
    Auto,
    Fixed(usize),
}

impl ProbeDepth {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ProbeDepth::Auto),
            n => n
                .parse()
                .map(ProbeDepth::Fixed)
                .map_err(|_| format!("{n:?} is neither a block number nor `auto`")),
        }
    }

    /// The depths whose states are computed: the one given, or every block from a fifth to
    /// three fifths of the network, where a probe reads the labels best.
    pub fn candidates(self, blocks: usize) -> Result<Vec<usize>> {
        match self {
            ProbeDepth::Fixed(d) if d == 0 || d > blocks => {
                bail!("--probe-depth {d}: the model has {blocks} blocks; give 1 to {blocks}")
            }
            ProbeDepth::Fixed(d) => Ok(vec![d]),
            ProbeDepth::Auto => Ok(((blocks / 5).max(1)..=(3 * blocks / 5).max(1)).collect()),
        }
    }
}

impl std::fmt::Display for ProbeDepth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeDepth::Auto => f.write_str("auto"),
            ProbeDepth::Fixed(d) => write!(f, "{d}"),
        }
    }
}

/// The head's L2 penalty as scikit-learn's `C` (the inverse of its strength, per pair): the
/// values cross-validation chooses among, around the best of 0.001–0.01 on five query-disjoint
/// folds of the ESCI dev set. The middle one is taken when there is nothing to cross-validate on.
pub const CS: [f64; 3] = [0.0003, 0.001, 0.003];
/// Folds of the cross-validation that chooses the depth and `C`: the train queries split
/// into this many groups (fewer when there are fewer queries).
const FOLDS: usize = 5;
/// How far above every other token (logit 0) the labels' logits are lifted.
const LIFT: f32 = 40.0;
/// Full-batch steps of the fit: a convex problem of a few thousand weights.
const STEPS: usize = 400;

/// For each label of the scale, the token its answers start with: the row of the output matrix
/// that carries its logit. Every label needs a train pair, and no two labels may share a token.
pub fn label_tokens(examples: &[Example], names: &[String]) -> Result<Vec<u32>> {
    let mut tokens: Vec<Option<u32>> = vec![None; names.len()];
    for e in examples {
        let first = e.tokens[e.answer.start];
        match tokens[e.label] {
            None => tokens[e.label] = Some(first),
            Some(t) if t != first => bail!(
                "label {:?} starts with two different tokens in the train pairs; a probe needs \
                 one per label",
                names[e.label]
            ),
            Some(_) => {}
        }
    }
    let tokens: Vec<u32> = tokens
        .iter()
        .zip(names)
        .map(|(t, n)| {
            t.with_context(|| {
                format!("no train pair is labelled {n:?}: a probe learns only labels it has seen")
            })
        })
        .collect::<Result<_>>()?;
    for (i, t) in tokens.iter().enumerate() {
        if let Some(j) = tokens[..i].iter().position(|u| u == t) {
            bail!(
                "labels {:?} and {:?} start with the same token: a probe cannot tell them apart",
                names[j],
                names[i]
            );
        }
    }
    Ok(tokens)
}

/// The states at the answer's start after each of `depths` blocks, end to end, for every
/// example. Each chunk is appended to `cache` as it is computed, so a killed run resumes where
/// it stopped; how many were found there is returned beside them.
pub fn states(
    model: &Llama,
    examples: &[Example],
    depths: &[usize],
    cache: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<Vec<f32>>, usize)> {
    let width = depths.len() * model.config.heads * model.config.head_dim;
    let mut out = read_cache(cache, width)?;
    out.truncate(examples.len());
    let found = out.len();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache)
        .with_context(|| format!("opening {}", cache.display()))?;
    // A chunk cut short by a kill is dropped: the file keeps whole rows only.
    file.set_len((out.len() * width * 4) as u64)?;
    file.seek(std::io::SeekFrom::End(0))?;
    progress(Progress::Phase {
        name: format!("blocks 1–{}", depths.last().copied().unwrap_or(0)),
        len: examples.len(),
    });
    progress(Progress::Step {
        done: out.len(),
        loss: None,
    });
    let mut at = out.len();
    while at < examples.len() {
        let chunk = &examples[at..(at + PARALLEL_CHUNK).min(examples.len())];
        let rows: Vec<Vec<f32>> = chunk
            .par_iter()
            .map(|e| model.states_at_depths(&e.tokens, depths, e.answer.start - 1))
            .collect::<Result<_>>()?;
        let bytes: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        file.write_all(&bytes)
            .with_context(|| format!("writing {}", cache.display()))?;
        file.sync_data()?;
        at += rows.len();
        out.extend(rows);
        progress(Progress::Step {
            done: at,
            loss: None,
        });
    }
    Ok((out, found))
}

fn read_cache(cache: &Path, width: usize) -> Result<Vec<Vec<f32>>> {
    let bytes = match std::fs::read(cache) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", cache.display())),
    };
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(floats.chunks_exact(width).map(<[f32]>::to_vec).collect())
}

/// The fitted head: one row per label in the states' own scale and its intercept.
pub struct Head {
    rows: Vec<Vec<f32>>,
    intercepts: Vec<f32>,
    /// The fit's objective (mean weighted cross-entropy, penalty included) and the share of
    /// pairs whose label is the head's top choice.
    pub loss: f64,
    pub accuracy: f64,
}

impl Head {
    /// The label the head gives a state.
    pub fn predict(&self, x: &[f32]) -> usize {
        let logit =
            |(r, c): (&Vec<f32>, &f32)| r.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + c;
        self.rows
            .iter()
            .zip(&self.intercepts)
            .map(logit)
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(i, _)| i)
    }

    /// The rows of an output matrix, which has no bias: the intercepts (and the lift above
    /// other tokens) ride on a direction `u` whose product with every state is 1. The states
    /// share one direction almost entirely (a few dimensions carry most of their length
    /// whatever the text), so a ridge least-squares `u` holds it to a few thousandths.
    pub fn output_rows(&self, states: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let u = unit_direction(states)?;
        let lowest = states
            .iter()
            .map(|s| s.iter().zip(&u).map(|(a, b)| a * b).sum::<f32>())
            .fold(f32::INFINITY, f32::min);
        if lowest < 0.5 {
            bail!(
                "the states at this depth share no common direction to carry the labels' \
                 intercepts (a pair's product with it is {lowest:.2}, not 1); try another \
                 --probe-depth"
            );
        }
        Ok(self
            .rows
            .iter()
            .zip(&self.intercepts)
            .map(|(row, c)| {
                row.iter()
                    .zip(&u)
                    .map(|(a, b)| a + (c + LIFT) * b)
                    .collect()
            })
            .collect())
    }
}

/// Fits the head, a multinomial logistic regression on the standardised states with an
/// intercept: weighted cross-entropy plus `‖W‖² / (2·C·n)` (scikit-learn's objective divided
/// by `C·n`), by full-batch Adam.
pub fn fit(states: &[&[f32]], labels: &[usize], weights: &[f64], k: usize, c: f64) -> Result<Head> {
    let n = states.len();
    let width = states[0].len();
    let flat: Vec<f32> = states.iter().flat_map(|s| s.iter()).copied().collect();
    let x = Tensor::from_vec(flat, (n, width), &Device::Cpu)?;
    let mean = x.mean_keepdim(0)?;
    let centred = x.broadcast_sub(&mean)?;
    let spread = (centred.sqr()?.mean_keepdim(0)?.sqrt()? + 1e-6)?;
    let z = centred.broadcast_div(&spread)?;
    let y = Tensor::new(
        labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
        &Device::Cpu,
    )?;
    let w = Tensor::new(
        weights.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &Device::Cpu,
    )?;
    let head = Var::zeros((k, width), DType::F32, &Device::Cpu)?;
    let bias = Var::zeros(k, DType::F32, &Device::Cpu)?;
    let mut opt = AdamW::new(
        vec![head.clone(), bias.clone()],
        ParamsAdamW {
            lr: 0.01,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let penalty = 1.0 / (2.0 * c * n as f64);
    let logits = || -> Result<Tensor> {
        Ok(z.matmul(&head.as_tensor().t()?)?
            .broadcast_add(bias.as_tensor())?)
    };
    let objective = |logits: &Tensor| -> Result<Tensor> {
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        let picked = logp.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?;
        let ce = ((picked * &w)?.sum_all()? / -(n as f64))?;
        Ok((ce + (head.as_tensor().sqr()?.sum_all()? * penalty)?)?)
    };
    for _ in 0..STEPS {
        opt.backward_step(&objective(&logits()?)?)?;
    }
    let scores = logits()?;
    let loss = objective(&scores)?.to_scalar::<f32>()? as f64;
    let chosen: Vec<u32> = scores.argmax(1)?.to_vec1()?;
    let accuracy = chosen
        .iter()
        .zip(labels)
        .filter(|(c, l)| **c as usize == **l)
        .count() as f64
        / n as f64;
    // In the states' scale: logit = x · v + c, with v = W / spread and c = b − v · mean.
    let v = head.as_tensor().broadcast_div(&spread)?;
    let intercepts = (bias.as_tensor() - v.matmul(&mean.t()?)?.squeeze(1)?)?.to_vec1()?;
    Ok(Head {
        rows: v.to_vec2()?,
        intercepts,
        loss,
        accuracy,
    })
}

/// One cell of the cross-validation: a depth and a `C`, and the macro-F1 its heads gave the
/// held-out queries' pairs (pooled over the folds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeScore {
    pub depth: usize,
    pub c: f64,
    pub macro_f1: f64,
}

/// The depth and `C` a probe is fitted with, and how they were chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choice {
    pub depth: usize,
    pub c: f64,
    /// Folds of query-grouped cross-validation on the train pairs; 0 when there was one query
    /// and nothing to choose.
    pub folds: usize,
    /// The chosen cell's cross-validated macro-F1.
    pub macro_f1: Option<f64>,
    pub grid: Vec<ProbeScore>,
}

/// What the examples are, for the cross-validation: each state (the depths' states end to
/// end), its label, weight and query.
pub struct Labelled<'a> {
    pub states: &'a [Vec<f32>],
    pub labels: &'a [usize],
    pub weights: &'a [f64],
    /// Each example's query, by outside id.
    pub queries: &'a [&'a str],
    pub names: &'a [String],
}

/// Each example's state after block `depth`, out of the `depths` states laid end to end.
pub fn at_depth<'a>(states: &'a [Vec<f32>], depths: &[usize], depth: usize) -> Vec<&'a [f32]> {
    let j = depths.iter().position(|&d| d == depth).unwrap_or(0);
    let width = states.first().map_or(0, |s| s.len() / depths.len());
    states
        .iter()
        .map(|s| &s[j * width..(j + 1) * width])
        .collect()
}

/// Chooses the depth and `C` by cross-validation grouped by query (a query's pairs held out
/// together, as a team's unseen queries are; the folds of `fold:K/N`): the cell whose heads
/// give the held-out pairs the best macro-F1, the shallower and the smaller `C` on a tie.
pub fn choose(data: &Labelled, depths: &[usize], seed: u64) -> Result<Choice> {
    let mut queries: Vec<&str> = data.queries.to_vec();
    queries.sort_unstable();
    queries.dedup();
    let folds = FOLDS.min(queries.len());
    if folds < 2 {
        if depths.len() > 1 {
            bail!(
                "--probe-depth auto chooses a depth on held-out train queries, and the train \
                 pairs are of one query: give a depth (--probe-depth N)"
            );
        }
        return Ok(Choice {
            depth: depths[0],
            c: CS[1],
            folds: 0,
            macro_f1: None,
            grid: Vec::new(),
        });
    }
    let split: Vec<SplitQuery> = queries
        .iter()
        .enumerate()
        .map(|(key, q)| SplitQuery {
            key: key as i64,
            ext_id: q.to_string(),
            imported: Vec::new(),
            unsplit_pairs: 0,
        })
        .collect();
    let mut fold_of = vec![0; queries.len()];
    for (key, f) in query_folds(&split, folds as u32, seed) {
        fold_of[key as usize] = f as usize;
    }
    let fold: Vec<usize> = data
        .queries
        .iter()
        .map(|q| fold_of[queries.binary_search(q).unwrap_or(0)])
        .collect();
    let cells: Vec<(usize, f64)> = (0..depths.len())
        .flat_map(|j| CS.iter().map(move |&c| (j, c)))
        .collect();
    let grid: Vec<ProbeScore> = cells
        .par_iter()
        .map(|&(j, c)| -> Result<ProbeScore> {
            let states = at_depth(data.states, depths, depths[j]);
            let mut confusion = Confusion::new(data.names.to_vec());
            for f in 0..folds {
                let train: Vec<usize> = (0..fold.len()).filter(|&i| fold[i] != f).collect();
                let head = fit(
                    &train.iter().map(|&i| states[i]).collect::<Vec<_>>(),
                    &train.iter().map(|&i| data.labels[i]).collect::<Vec<_>>(),
                    &train.iter().map(|&i| data.weights[i]).collect::<Vec<_>>(),
                    data.names.len(),
                    c,
                )?;
                for i in (0..fold.len()).filter(|&i| fold[i] == f) {
                    confusion.add(data.labels[i], head.predict(states[i]));
                }
            }
            Ok(ProbeScore {
                depth: depths[j],
                c,
                macro_f1: confusion.macro_f1(),
            })
        })
        .collect::<Result<_>>()?;
    let best = grid
        .iter()
        .fold(&grid[0], |b, s| if s.macro_f1 > b.macro_f1 { s } else { b });
    Ok(Choice {
        depth: best.depth,
        c: best.c,
        folds,
        macro_f1: Some(best.macro_f1),
        grid: grid.to_vec(),
    })
}

/// The `u` of least squares (ridge 1e-3) with `x · u = 1` for every state, by Cholesky.
fn unit_direction(states: &[&[f32]]) -> Result<Vec<f32>> {
    let d = states[0].len();
    let mut a = vec![0f64; d * d];
    let mut rhs = vec![0f64; d];
    for s in states {
        for i in 0..d {
            let si = s[i] as f64;
            rhs[i] += si;
            let row = &mut a[i * d..i * d + i + 1];
            for (j, cell) in row.iter_mut().enumerate() {
                *cell += si * s[j] as f64;
            }
        }
    }
    for i in 0..d {
        a[i * d + i] += 1e-3;
    }
    // In place: the lower triangle becomes L with A = L·Lᵀ.
    for j in 0..d {
        let mut diag = a[j * d + j];
        for m in 0..j {
            diag -= a[j * d + m] * a[j * d + m];
        }
        if diag <= 0.0 {
            bail!("the probe's states are degenerate (no direction to carry its intercepts)");
        }
        let diag = diag.sqrt();
        a[j * d + j] = diag;
        for i in j + 1..d {
            let mut v = a[i * d + j];
            for m in 0..j {
                v -= a[i * d + m] * a[j * d + m];
            }
            a[i * d + j] = v / diag;
        }
    }
    let mut t = rhs;
    for i in 0..d {
        for m in 0..i {
            t[i] -= a[i * d + m] * t[m];
        }
        t[i] /= a[i * d + i];
    }
    for i in (0..d).rev() {
        for m in i + 1..d {
            t[i] -= a[m * d + i] * t[m];
        }
        t[i] /= a[i * d + i];
    }
    Ok(t.into_iter().map(|v| v as f32).collect())
}

/// Where the network is cut, and the head that takes over there: `tokens[l]` carries label
/// `l`'s logit.
pub struct Cut<'a> {
    pub depth: usize,
    pub tokens: &'a [u32],
    /// The head's output rows (`Head::output_rows`).
    pub rows: &'a [Vec<f32>],
}

/// Writes the network cut after `depth` blocks with the head as its output: the source's
/// embeddings and first blocks as they are, a final norm of ones (the head read states
/// normalised without weights), and an output matrix whose rows are zero but the labels'.
pub fn write_model<R: Read + Seek>(
    source: &Path,
    content: &gguf_file::Content,
    reader: &mut R,
    Cut {
        depth,
        tokens,
        rows,
    }: Cut,
    out: &Path,
    tuned: &serde_json::Value,
) -> Result<()> {
    let keep = |name: &str| -> bool {
        match name.strip_prefix("blk.") {
            Some(rest) => rest
                .split('.')
                .next()
                .and_then(|b| b.parse::<usize>().ok())
                .is_some_and(|b| b < depth),
            None => !matches!(name, "output.weight" | "output_norm.weight"),
        }
    };
    let mut names: Vec<&String> = content.tensor_infos.keys().filter(|n| keep(n)).collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len() + 2);
    for name in names {
        let q = content
            .tensor(reader, name, &Device::Cpu)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("teacher model {}: tensor {name}", source.display()))?;
        tensors.push((name.as_str(), q));
    }
    let width = rows[0].len();
    let vocab = content
        .tensor_infos
        .get("token_embd.weight")
        .context("the GGUF file has no token_embd.weight")?
        .shape
        .dims()[0];
    let mut output = vec![0f32; vocab * width];
    for (row, &t) in rows.iter().zip(tokens) {
        let at = t as usize * width;
        output[at..at + width].copy_from_slice(row);
    }
    let output = Tensor::from_vec(output, (vocab, width), &Device::Cpu)?;
    let ones = Tensor::ones(width, DType::F32, &Device::Cpu)?;
    tensors.push(("output.weight", QTensor::quantize(&output, GgmlDType::F32)?));
    tensors.push((
        "output_norm.weight",
        QTensor::quantize(&ones, GgmlDType::F32)?,
    ));
    let blocks = gguf_file::Value::U32(depth as u32);
    super::write_gguf(
        content,
        &tensors,
        &[("llama.block_count", &blocks)],
        out,
        tuned,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// States as a middle block leaves them: one direction carries most of their length, and
    /// the label moves them by `signal` along a few others. The labels are unbalanced (half
    /// are 0), so the head needs its intercepts.
    fn states(n: usize, seed: u64, signal: f32) -> (Vec<Vec<f32>>, Vec<usize>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let width = 24;
        let mut out = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let label = [0, 0, 0, 0, 0, 1, 1, 1, 2, 3][i % 10];
            let mut s: Vec<f32> = (0..width).map(|_| rng.random_range(-0.5..0.5)).collect();
            s[0] = 20.0;
            s[1 + label] += signal;
            out.push(s);
            labels.push(label);
        }
        (out, labels)
    }

    fn views(xs: &[Vec<f32>]) -> Vec<&[f32]> {
        xs.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn the_written_rows_give_the_fitted_labels_lifted_above_every_other_token() {
        let (xs, labels) = states(2000, 1, 1.5);
        let head = fit(&views(&xs), &labels, &vec![1.0; xs.len()], 4, CS[1]).unwrap();
        assert!(head.accuracy > 0.6, "accuracy {}", head.accuracy);
        let rows = head.output_rows(&views(&xs)).unwrap();
        // The rows alone (no bias) pick the labels the fit picked, and every label's logit
        // stands far above 0, the logit of every other token.
        let mut right = 0;
        for (x, l) in xs.iter().zip(&labels) {
            let logits: Vec<f32> = rows
                .iter()
                .map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum())
                .collect();
            assert!(logits.iter().all(|&v| v > LIFT / 2.0), "{logits:?}");
            let top = (0..4)
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                .unwrap();
            assert_eq!(top, head.predict(x));
            right += usize::from(top == *l);
        }
        assert_eq!(right as f64 / xs.len() as f64, head.accuracy);
    }

    #[test]
    fn unit_direction_gives_every_state_a_product_of_one() {
        let (xs, _) = states(200, 2, 1.5);
        let u = unit_direction(&views(&xs)).unwrap();
        for x in &xs {
            let p: f32 = x.iter().zip(&u).map(|(a, b)| a * b).sum();
            assert!((p - 1.0).abs() < 0.01, "{p}");
        }
    }

    /// Three depths' states end to end, the label legible only at the second, over twenty
    /// queries: cross-validation picks that depth, scores it well above the others, and
    /// every cell of the grid is reported.
    #[test]
    fn cross_validation_chooses_the_depth_whose_states_tell_the_labels_apart() {
        let n = 600;
        let (noise_a, labels) = states(n, 3, 0.0);
        let (legible, _) = states(n, 4, 1.5);
        let (noise_b, _) = states(n, 5, 0.0);
        let joined: Vec<Vec<f32>> = (0..n)
            .map(|i| [&noise_a[i][..], &legible[i][..], &noise_b[i][..]].concat())
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("q{}", i / 30)).collect();
        let queries: Vec<&str> = ids.iter().map(String::as_str).collect();
        let names: Vec<String> = ["E", "S", "C", "I"].map(String::from).to_vec();
        let data = Labelled {
            states: &joined,
            labels: &labels,
            weights: &vec![1.0; n],
            queries: &queries,
            names: &names,
        };
        let choice = choose(&data, &[4, 7, 9], 0).unwrap();
        assert_eq!(choice.depth, 7, "{choice:?}");
        assert_eq!(choice.folds, FOLDS);
        assert_eq!(choice.grid.len(), 3 * CS.len());
        let best = choice.macro_f1.unwrap();
        for s in choice.grid.iter().filter(|s| s.depth != 7) {
            assert!(s.macro_f1 < best - 0.2, "{choice:?}");
        }
        // One query gives nothing to hold out: a given depth is fitted as it is, `auto` refused.
        let one = Labelled {
            queries: &vec!["q"; n],
            ..data
        };
        let fixed = choose(&one, &[7], 0).unwrap();
        assert_eq!((fixed.depth, fixed.c, fixed.folds), (7, CS[1], 0));
        let err = choose(&one, &[4, 7, 9], 0).unwrap_err().to_string();
        assert!(err.contains("--probe-depth N"), "{err}");
    }
}
