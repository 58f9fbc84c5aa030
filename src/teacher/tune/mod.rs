//! `workbench teacher tune`: supervised fine-tuning of the local GGUF teacher on the human labels
//! (score mode: the answer is the label) or the corrected rationales (CoT mode: the answer is the
//! rationale JSON, as `sft.jsonl` holds it) of the train split. The loss is on the answer's
//! tokens only. The top blocks train in f32; the blocks below stay frozen, so their output is
//! computed once per example and every epoch runs the top blocks alone. The result is a GGUF
//! file mistral.rs loads, whose header names the source model and the data.

mod llama;
mod probe;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::backprop::GradStore;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use futures::StreamExt;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::gguf;
use super::local::{LocalBackend, LocalOptions, model_name};
use crate::domain::prompt::{ITEM_DETAIL_CHARS, Message, Mode, Prompt, Role, answer_json};
use crate::domain::review::derive;
use crate::domain::schedule::Schedule;
use crate::domain::{LabelScale, SplitSpec, balanced_class_weights};
use crate::store::{RecordQuery, Store};
pub use llama::Llama;
pub use probe::ProbeDepth;

#[derive(Debug, Clone)]
pub struct TuneOptions {
    pub model: PathBuf,
    pub out: PathBuf,
    pub mode: Mode,
    pub split: Option<SplitSpec>,
    pub seed: u64,
    /// Top blocks that train.
    pub layers: usize,
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    /// Weigh each pair's loss by the inverse of its label's share of the train pairs, so that
    /// a rare label counts as much as a common one.
    pub balanced: bool,
    /// Train on prompts that name the query's words the item lacks; the written model is then
    /// always asked that way (`Prompt::configured`).
    pub evidence: bool,
    /// At most this many examples (the first by pair id), for a quick run.
    pub limit: Option<usize>,
    /// Keep the first blocks and fit a label head on their output instead of tuning the top
    /// blocks (`probe`).
    pub probe_depth: Option<ProbeDepth>,
    pub restart: bool,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TuneState {
    /// The fingerprint of the source model, data and settings a checkpoint belongs to.
    pub fingerprint: String,
    pub examples: usize,
    pub answer_tokens: usize,
    pub epochs_done: usize,
    /// Mean loss per answer token and the share of examples whose first answer token is the
    /// model's top choice, per epoch.
    pub loss: Vec<f64>,
    pub first_token_accuracy: Vec<f64>,
    pub resumed_at_epoch: Option<usize>,
    /// A probe's states found computed by a killed run.
    pub resumed_at_pair: Option<usize>,
    /// A probe's depth and penalty, and the cross-validation that chose them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<probe::Choice>,
    pub seconds: f64,
}

/// One training example: the tokens of prompt and answer, and which of them the loss reads.
struct Example {
    tokens: Vec<u32>,
    answer: Range<usize>,
    /// The decided label's index in the scale.
    label: usize,
    /// The pair's query (its outside id): cross-validation holds queries out whole.
    query: String,
    /// How much the example's loss counts (1 unless the labels are balanced).
    weight: f64,
}

impl Example {
    fn weighted_tokens(&self) -> f64 {
        self.weight * self.answer.len() as f64
    }

    /// The positions whose logits predict the answer's tokens, and those tokens.
    fn targets(&self) -> (Vec<u32>, Vec<u32>) {
        let at = (self.answer.start as u32 - 1..self.answer.end as u32 - 1).collect();
        (at, self.tokens[self.answer.clone()].to_vec())
    }
}

/// The chat a fine-tuning example holds: the prompt the teacher sees, and the answer it should
/// have given.
struct Chat {
    messages: Vec<Message>,
    answer: String,
    label: usize,
    query: String,
}

/// The human-labelled pairs of the train split as chats, in pair order.
async fn chats(
    store: &Store,
    scale: &LabelScale,
    mode: Mode,
    spec: Option<&SplitSpec>,
    seed: u64,
    evidence: bool,
) -> Result<(SplitSpec, Vec<Chat>)> {
    let (spec, splits) = store.splits(spec, seed).await?;
    let prompt = Prompt::configured(scale, mode, true, ITEM_DETAIL_CHARS, evidence);
    let mut out = Vec::new();
    let mut records = Box::pin(store.pair_records(RecordQuery {
        include_augmented: false,
        student: None,
        without_rationale: mode == Mode::Score,
        labels_only: false,
    }));
    while let Some(r) = records.next().await {
        let r = r?;
        if splits.get(r.query_key) != Some("train") {
            continue;
        }
        let reviewed = derive(
            r.judgment.as_ref().and_then(|j| j.rationale.as_ref()),
            &r.annotations,
        );
        let label = reviewed
            .human_label
            .as_deref()
            .or(r.pair.gold_label.as_deref());
        let Some((index, name)) =
            label.and_then(|k| Some((scale.index_of_key(k)?, scale.label(k)?.name.clone())))
        else {
            continue;
        };
        let answer = match mode {
            Mode::Score => name,
            // A rationale the annotators left as it was, or corrected to the label they decided.
            Mode::Cot => match &reviewed.rationale {
                Some(rat)
                    if !r.annotations.is_empty()
                        && !reviewed.rejected
                        && Some(rat.label.as_str()) == label =>
                {
                    answer_json(rat, &name).to_string()
                }
                _ => continue,
            },
        };
        out.push(Chat {
            messages: prompt.for_pair(&r.pair).messages,
            answer,
            label: index,
            query: r.pair.query.ext_id.clone(),
        });
    }
    Ok((spec, out))
}

/// Tokenises the chats as the engine will see them; the answer runs from the template's opening
/// of the assistant's turn to its end-of-turn token, which it includes.
async fn tokenize(backend: &LocalBackend, chats: &[Chat]) -> Result<Vec<Example>> {
    let mut out = Vec::with_capacity(chats.len());
    for c in chats {
        let prompt = backend.tokenize(&c.messages, true).await?;
        let mut whole = c.messages.clone();
        whole.push(Message {
            role: Role::Assistant,
            text: c.answer.clone(),
        });
        let tokens = backend.tokenize(&whole, false).await?;
        if !tokens.starts_with(&prompt) || tokens.len() <= prompt.len() {
            bail!(
                "the model's chat template does not end the prompt where the answer starts; \
                 fine-tuning needs one that does (ChatML, Llama 3 and the like)"
            );
        }
        let end = tokens[prompt.len()..]
            .iter()
            .position(|t| backend.stop_token_ids().contains(t))
            .map_or(tokens.len(), |i| prompt.len() + i + 1);
        out.push(Example {
            answer: prompt.len()..end,
            tokens,
            label: c.label,
            query: c.query.clone(),
            weight: 1.0,
        });
    }
    Ok(out)
}

fn fingerprint(opts: &TuneOptions, examples: &[Example]) -> Result<String> {
    let meta = std::fs::metadata(&opts.model)
        .with_context(|| format!("teacher model {}", opts.model.display()))?;
    let mut h = Sha256::new();
    h.update(format!(
        "{} {} {} {} {} {} {}{}{}",
        meta.len(),
        opts.mode.as_str(),
        opts.layers,
        opts.lr,
        opts.batch,
        opts.seed,
        opts.epochs,
        if opts.balanced { " balanced" } else { "" },
        opts.probe_depth
            .map(|d| format!(" probe {d} {:?}", probe::CS))
            .unwrap_or_default()
    ));
    for e in examples {
        h.update([0xff]);
        for t in &e.tokens {
            h.update(t.to_le_bytes());
        }
        h.update((e.answer.start as u32).to_le_bytes());
    }
    Ok(hex::encode(&h.finalize()[..8]))
}

/// Where a run keeps its checkpoint: beside the output file.
fn checkpoint_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoint");
    out.with_file_name(name)
}

/// What a run reports as it goes.
pub enum Progress<'a> {
    /// What the run is about to do, in a sentence.
    Note(&'a str),
    /// A phase over `len` pairs begins.
    Phase { name: String, len: usize },
    /// `done` pairs of the phase are through; the epoch's mean loss so far when training.
    Step { done: usize, loss: Option<f64> },
    /// An epoch ended and its checkpoint is written.
    Epoch(&'a TuneState),
}

/// Fine-tunes and writes the model to `opts.out`; the training runs on this thread (call it
/// where blocking is allowed, e.g. in `tokio::task::block_in_place`).
pub async fn tune(
    store: &Store,
    opts: &TuneOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<TuneState> {
    if opts.probe_depth.is_some() && opts.mode != Mode::Score {
        bail!("--probe-depth writes a model that answers labels only: it needs --mode score");
    }
    if opts.layers == 0 && opts.probe_depth.is_none() {
        bail!("--layers 0 trains nothing: give the number of top blocks to fine-tune");
    }
    let started = std::time::Instant::now();
    let scale = store.scale().await?;
    let (spec, chats) = chats(
        store,
        &scale,
        opts.mode,
        opts.split.as_ref(),
        opts.seed,
        opts.evidence,
    )
    .await?;
    let chats: Vec<Chat> = chats
        .into_iter()
        .take(opts.limit.unwrap_or(usize::MAX))
        .collect();
    if chats.is_empty() {
        bail!(
            "no train pair of split {spec} has {}: import gold labels or review pairs first",
            match opts.mode {
                Mode::Score => "a human label (an annotator's or an imported gold label)",
                Mode::Cot =>
                    "a reviewed rationale whose label is the decided one (CoT mode; score mode \
                     needs labels only)",
            }
        );
    }
    // Loaded for its tokenizer and chat template only: the weights run as they are, with no
    // converted copy written.
    let backend = LocalBackend::load(
        &opts.model,
        LocalOptions {
            prefix_cache: false,
            weights: gguf::Weights::AsIs,
            ..Default::default()
        },
    )
    .await?;
    let mut examples = tokenize(&backend, &chats).await?;
    drop(backend);
    if opts.balanced {
        let weights = balanced_class_weights(examples.iter().map(|e| e.label), scale.len());
        for e in &mut examples {
            e.weight = weights[e.label];
        }
    }
    let fingerprint = fingerprint(opts, &examples)?;
    let answer_tokens = examples.iter().map(|e| e.answer.len()).sum();
    let mut state = TuneState {
        fingerprint,
        examples: examples.len(),
        answer_tokens,
        ..Default::default()
    };
    let source_name = model_name(&opts.model);
    let spec_text = format!("{spec} seed {}", opts.seed);
    let (mut reader, content) = gguf::open(&opts.model)?;
    let ckpt = checkpoint_dir(&opts.out);
    // The header entry of the written file: what it was made from and how.
    let (examples_n, data) = (state.examples, state.fingerprint.clone());
    let stamp = |how: serde_json::Value| -> serde_json::Value {
        let mut v = serde_json::json!({
            "from": source_name,
            "mode": opts.mode.as_str(),
            "split": spec_text,
            "pairs": examples_n,
            "data": data,
            "evidence": opts.evidence,
        });
        if let (Some(v), serde_json::Value::Object(how)) = (v.as_object_mut(), how) {
            v.extend(how);
        }
        v
    };
    if let Some(depth) = opts.probe_depth {
        let names: Vec<String> = scale.labels.iter().map(|l| l.name.clone()).collect();
        let tokens = probe::label_tokens(&examples, &names)?;
        let model = Llama::load(&content, &mut reader, 0)
            .with_context(|| format!("teacher model {}", opts.model.display()))?;
        let depths = depth.candidates(model.config.blocks)?;
        progress(Progress::Note(&format!(
            "{} train pairs of split {spec}: a label head on the output of block {} of {}",
            examples.len(),
            match depths.as_slice() {
                [d] => d.to_string(),
                _ => format!(
                    "{}–{} (chosen by cross-validation on the train queries)",
                    depths[0],
                    depths[depths.len() - 1]
                ),
            },
            model.config.blocks
        )));
        let cache = probe_cache(&ckpt, &state, opts.restart)?;
        let (states, resumed) = probe::states(&model, &examples, &depths, &cache, progress)?;
        state.resumed_at_pair = (resumed > 0).then_some(resumed);
        drop(model);
        let labels: Vec<usize> = examples.iter().map(|e| e.label).collect();
        let weights: Vec<f64> = examples.iter().map(|e| e.weight).collect();
        let queries: Vec<&str> = examples.iter().map(|e| e.query.as_str()).collect();
        if queries.iter().any(|&q| q != queries[0]) {
            progress(Progress::Note(&format!(
                "choosing the depth and penalty: {} heads, each scored on train queries held \
                 out from its fit",
                depths.len() * probe::CS.len()
            )));
        }
        let choice = probe::choose(
            &probe::Labelled {
                states: &states,
                labels: &labels,
                weights: &weights,
                queries: &queries,
                names: &names,
            },
            &depths,
            opts.seed,
        )?;
        let depth = choice.depth;
        let chosen = probe::at_depth(&states, &depths, depth);
        let head = probe::fit(&chosen, &labels, &weights, scale.len(), choice.c)?;
        let rows = head.output_rows(&chosen)?;
        state.loss.push(head.loss);
        state.first_token_accuracy.push(head.accuracy);
        state.epochs_done = 1;
        let tuned = stamp(serde_json::json!({
            "probe_depth": choice.depth,
            "probe_c": choice.c,
            "probe_cv_macro_f1": choice.macro_f1,
            "balanced": opts.balanced,
            "final_loss": head.loss,
        }));
        state.probe = Some(choice);
        progress(Progress::Epoch(&state));
        probe::write_model(
            &opts.model,
            &content,
            &mut reader,
            probe::Cut {
                depth,
                tokens: &tokens,
                rows: &rows,
            },
            &opts.out,
            &tuned,
        )?;
        let _ = std::fs::remove_dir_all(&ckpt);
        state.seconds = started.elapsed().as_secs_f64();
        return Ok(state);
    }
    progress(Progress::Note(&format!(
        "{} train pairs of split {spec} ({answer_tokens} answer tokens), the top {} blocks training",
        examples.len(),
        opts.layers
    )));
    let model = Llama::load(&content, &mut reader, opts.layers)
        .with_context(|| format!("teacher model {}", opts.model.display()))?;
    resume(&ckpt, &model, &mut state, opts.restart)?;
    train(&model, &examples, opts, &mut state, &ckpt, progress)?;
    let tuned = stamp(serde_json::json!({
        "layers": opts.layers,
        "epochs": opts.epochs,
        "lr": opts.lr,
        "final_loss": state.loss.last(),
    }));
    write_model(
        &opts.model,
        &content,
        &mut reader,
        &model,
        &opts.out,
        &tuned,
    )?;
    state.seconds = started.elapsed().as_secs_f64();
    Ok(state)
}

/// Where a probe's states are kept while they are computed: in the checkpoint folder, which
/// names the run it belongs to (a folder of another run is refused, as `resume` does).
fn probe_cache(ckpt: &Path, state: &TuneState, restart: bool) -> Result<PathBuf> {
    if restart {
        let _ = std::fs::remove_dir_all(ckpt);
    } else {
        saved_state(ckpt, state)?;
    }
    let path = ckpt.join("state.json");
    std::fs::create_dir_all(ckpt).with_context(|| format!("creating {}", ckpt.display()))?;
    std::fs::write(&path, serde_json::to_vec(state)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(ckpt.join("probe-states.f32"))
}

/// The state a killed run of this same model, data and settings left in `ckpt`, if any; a
/// checkpoint of another run is refused.
fn saved_state(ckpt: &Path, state: &TuneState) -> Result<Option<TuneState>> {
    let path = ckpt.join("state.json");
    if !path.exists() {
        return Ok(None);
    }
    let saved: TuneState = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("reading {}", path.display()))?;
    if saved.fingerprint != state.fingerprint {
        bail!(
            "{} holds a checkpoint of another model, data or settings; pass --restart to start \
             over or choose another --out",
            ckpt.display()
        );
    }
    Ok(Some(saved))
}

fn resume(ckpt: &Path, model: &Llama, state: &mut TuneState, restart: bool) -> Result<()> {
    if restart {
        return Ok(());
    }
    let Some(saved) = saved_state(ckpt, state)? else {
        return Ok(());
    };
    let weights = ckpt.join("weights.safetensors");
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)
        .with_context(|| format!("reading {}", weights.display()))?;
    for (name, var) in model.trained() {
        let t = tensors
            .get(name)
            .with_context(|| format!("{}: no tensor {name}", weights.display()))?;
        var.set(t)?;
    }
    *state = TuneState {
        resumed_at_epoch: Some(saved.epochs_done),
        ..saved
    };
    Ok(())
}

fn save_checkpoint(ckpt: &Path, model: &Llama, state: &TuneState) -> Result<()> {
    std::fs::create_dir_all(ckpt).with_context(|| format!("creating {}", ckpt.display()))?;
    let tensors: HashMap<String, Tensor> = model
        .trained()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let tmp = ckpt.join("weights.safetensors.partial");
    candle_core::safetensors::save(&tensors, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, ckpt.join("weights.safetensors"))?;
    let tmp = ckpt.join("state.json.partial");
    std::fs::write(&tmp, serde_json::to_string_pretty(state)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, ckpt.join("state.json"))?;
    Ok(())
}

fn train(
    model: &Llama,
    examples: &[Example],
    opts: &TuneOptions,
    state: &mut TuneState,
    ckpt: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    if state.epochs_done >= opts.epochs {
        return Ok(());
    }
    progress(Progress::Phase {
        name: "frozen blocks".into(),
        len: examples.len(),
    });
    // candle runs most of a small model's ops on one thread: examples side by side use the
    // other cores.
    let mut states = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(PARALLEL_CHUNK) {
        let done: Vec<Tensor> = chunk
            .par_iter()
            .map(|e| model.frozen_states(&e.tokens))
            .collect::<Result<_>>()?;
        states.extend(done);
        progress(Progress::Step {
            done: states.len(),
            loss: None,
        });
    }
    let vars = model.trained().iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let steps_per_epoch = examples.len().div_ceil(opts.batch.max(1));
    let total = steps_per_epoch * opts.epochs;
    let schedule = Schedule {
        peak: opts.lr,
        start: 0,
        warmup: (total / 10).max(1),
        total,
    };
    for epoch in state.epochs_done..opts.epochs {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
            opts.seed.wrapping_add(epoch as u64),
        ));
        progress(Progress::Phase {
            name: format!("epoch {}/{}", epoch + 1, opts.epochs),
            len: examples.len(),
        });
        let (mut loss_sum, mut tokens, mut first_right, mut done) = (0.0, 0usize, 0usize, 0);
        for (step, batch) in order.chunks(opts.batch.max(1)).enumerate() {
            opt.set_learning_rate(schedule.at(epoch * steps_per_epoch + step));
            let batch_tokens: usize = batch.iter().map(|&i| examples[i].answer.len()).sum();
            let batch_weight: f64 = batch.iter().map(|&i| examples[i].weighted_tokens()).sum();
            // Each example's share of the batch's mean loss, and its gradients, side by side.
            let parts: Vec<(GradStore, f64, bool)> = batch
                .par_iter()
                .map(|&i| -> Result<(GradStore, f64, bool)> {
                    let (at, target) = examples[i].targets();
                    let logits = model.logits(&states[i], &at)?;
                    let first = logits.get(0)?.argmax(0)?.to_scalar::<u32>()?;
                    let target = Tensor::new(target.as_slice(), &Device::Cpu)?;
                    let share = (candle_nn::loss::cross_entropy(&logits, &target)?
                        * (examples[i].weighted_tokens() / batch_weight))?;
                    let value = share.to_scalar::<f32>()? as f64;
                    Ok((
                        share.backward()?,
                        value,
                        first == target.get(0)?.to_scalar::<u32>()?,
                    ))
                })
                .collect::<Result<_>>()?;
            let value: f64 = parts.iter().map(|p| p.1).sum();
            if !value.is_finite() {
                bail!(
                    "the loss is {value} at epoch {} step {step}: lower --lr",
                    epoch + 1
                );
            }
            first_right += parts.iter().filter(|p| p.2).count();
            opt.step(&sum_grads(model, parts.into_iter().map(|p| p.0))?)?;
            loss_sum += value * batch_tokens as f64;
            tokens += batch_tokens;
            done += batch.len();
            progress(Progress::Step {
                done,
                loss: Some(loss_sum / tokens as f64),
            });
        }
        state.loss.push(loss_sum / tokens.max(1) as f64);
        state
            .first_token_accuracy
            .push(first_right as f64 / examples.len() as f64);
        state.epochs_done = epoch + 1;
        save_checkpoint(ckpt, model, state)?;
        progress(Progress::Epoch(state));
    }
    Ok(())
}

/// Examples whose frozen states are computed side by side between two progress reports.
const PARALLEL_CHUNK: usize = 16;

/// The gradients of the trained variables summed over several backward passes.
fn sum_grads(model: &Llama, stores: impl Iterator<Item = GradStore>) -> Result<GradStore> {
    let mut stores = stores;
    let mut total = stores.next().context("a batch with no example")?;
    for g in stores {
        for (_, v) in model.trained() {
            let t = v.as_tensor();
            if let Some(add) = g.get(t) {
                let sum = match total.get(t) {
                    Some(have) => (have + add)?,
                    None => add.clone(),
                };
                total.insert(t, sum);
            }
        }
    }
    Ok(total)
}

/// The source model with the trained tensors replaced (in f32: a fine-tuning's small steps do
/// not survive requantising to four bits) and a header that says how it was made.
fn write_model<R: std::io::Read + std::io::Seek>(
    source: &Path,
    content: &gguf_file::Content,
    reader: &mut R,
    model: &Llama,
    out: &Path,
    tuned: &serde_json::Value,
) -> Result<()> {
    let trained: HashMap<&str, &candle_core::Var> = model
        .trained()
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let q = match trained.get(name.as_str()) {
            Some(v) => QTensor::quantize(v.as_tensor(), GgmlDType::F32)?,
            None => content
                .tensor(reader, name, &Device::Cpu)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("teacher model {}: tensor {name}", source.display()))?,
        };
        tensors.push((name.as_str(), q));
    }
    write_gguf(content, &tensors, &[], out, tuned)
}

/// Writes a tuned model: `tensors`, the source's metadata with `replaced` values, and a header
/// that says how it was made.
fn write_gguf(
    content: &gguf_file::Content,
    tensors: &[(&str, QTensor)],
    replaced: &[(&str, &gguf_file::Value)],
    out: &Path,
    tuned: &serde_json::Value,
) -> Result<()> {
    let stamp = gguf_file::Value::String(tuned.to_string());
    let title = gguf_file::Value::String(model_name(out));
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "general.name" | gguf::TUNED)
                && !replaced.iter().any(|(r, _)| r == k)
        })
        .map(|(k, v)| (k.as_str(), v))
        .chain([(gguf::TUNED, &stamp), ("general.name", &title)])
        .chain(replaced.iter().copied())
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    gguf::write(out, &metadata, &refs)
        .with_context(|| format!("writing the tuned teacher {}", out.display()))
}
