//! A student: the MiniLM encoder with a label head (a distribution over the scale) and CoT
//! heads (one verdict per rationale dimension), as a cross-encoder or a two-tower bi-encoder.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Init, Linear, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::bert::{Bert, BertConfig, Dropout, mean_pool};
use crate::domain::Verdict;
use crate::domain::lexical;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Interaction-based: query and item in one sequence.
    Cross,
    /// Representation-based: two towers with shared weights, scored by cosine.
    Bi,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cross => "cross",
            Kind::Bi => "bi",
        }
    }
}

/// What a cross-encoder's heads read from the joint sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// The mean of every token's state.
    #[default]
    Mean,
    /// That mean, the means of the query's and of the item's tokens, their difference and
    /// product, and their cosine: how well the two sides match, as a sentence-embedding model
    /// compares them, next to the joint reading.
    Match,
}

impl Head {
    /// Features the heads read, for a hidden size `h`.
    fn width(self, h: usize) -> usize {
        match self {
            Head::Mean => h,
            Head::Match => h + 4 * h + 1,
        }
    }
}

/// Which losses train the student, and how.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    /// The human labels' cross-entropy weighs each label by the inverse of its share of the train
    /// pairs (scikit-learn's `balanced`), so that macro-F1 does not fall to the majority label.
    #[serde(default)]
    pub balanced: bool,
    /// Weight of the teacher's targets (KL, Margin-MSE, CoT heads); None: its Cohen's kappa
    /// with the human labels of the dev split, floored at 0, kept only when a student trained
    /// with it scores better on dev than one trained without.
    #[serde(default)]
    pub teacher_weight: Option<f64>,
    /// KL divergence to the teacher's distribution over the scale.
    pub kl: bool,
    /// Walmart's Margin-MSE on the score margins of two items of one query.
    pub margin_mse: bool,
    /// MKD's CoT heads: cross-entropy on the rationale's verdict per dimension.
    pub cot: bool,
    /// Weight of the human label's cross-entropy (annotator, else gold); 0 trains on the teacher
    /// alone.
    pub human_weight: f64,
    /// Softening temperature of the KL term; 0: the teacher's top label as a hard target.
    pub temperature: f64,
    /// L2 penalty on the heads' weights, added to the mean loss (scikit-learn's logistic
    /// regression with C has 1 / (2 · C · pairs)).
    #[serde(default)]
    pub head_l2: f64,
}

impl Default for Losses {
    fn default() -> Self {
        Losses {
            balanced: true,
            teacher_weight: None,
            kl: true,
            margin_mse: true,
            cot: true,
            human_weight: 1.0,
            temperature: 2.0,
            head_l2: 0.0,
        }
    }
}

/// What `student.json` records beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentConfig {
    pub kind: Kind,
    /// Scale keys and gains, in the scale's order.
    pub labels: Vec<String>,
    pub gains: Vec<f64>,
    /// The dimensions the CoT heads predict a verdict for.
    pub dimensions: Vec<String>,
    pub max_tokens: usize,
    /// What the cross-encoder's heads read (older students: `mean`).
    #[serde(default)]
    pub head: Head,
    /// A bi-encoder's heads also read how the pair's cosine stands among the other candidates
    /// of its query (a z-score over the query's pairs scored together): a reranker's view of
    /// the list it ranks.
    #[serde(default)]
    pub query_context: bool,
    /// The heads also read how much of the query's own wording the item's text holds
    /// (`lexical::features`).
    #[serde(default)]
    pub lexical: bool,
    pub bert: BertConfig,
    pub losses: Losses,
    pub split: String,
    /// Which of the teacher's distributions its targets were: `raw`, or `calibrated (fitted on
    /// …)` (older students: raw).
    #[serde(default = "raw")]
    pub teacher_distribution: String,
    pub seed: u64,
    #[serde(default)]
    pub trained: serde_json::Value,
}

fn raw() -> String {
    "raw".to_string()
}

impl StudentConfig {
    /// How many features the heads read (`Student::features_with`).
    pub fn feature_width(&self) -> usize {
        let h = self.bert.hidden_size;
        let lexical = if self.lexical { lexical::WIDTH } else { 0 };
        lexical
            + match self.kind {
                Kind::Cross => self.head.width(h),
                Kind::Bi => 4 * h + 1 + usize::from(self.query_context),
            }
    }

    pub fn top_gain(&self) -> f64 {
        self.gains
            .iter()
            .copied()
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE)
    }

    /// A pair's relevance in [0, 1]: the expected gain of a distribution over the top gain.
    pub fn score_of(&self, probs: &[f32]) -> f64 {
        let top = self.top_gain();
        probs
            .iter()
            .zip(&self.gains)
            .map(|(p, g)| *p as f64 * g)
            .sum::<f64>()
            / top
    }
}

/// A tokenised batch for the encoder.
pub struct Encoded {
    pub ids: Tensor,
    pub types: Tensor,
    pub mask: Tensor,
}

/// Logits of a batch: labels [B, L] and verdicts [B, dimensions, 4].
pub struct Output {
    pub labels: Tensor,
    pub verdicts: Tensor,
}

pub struct Student {
    pub config: StudentConfig,
    pub tokenizer: Tokenizer,
    pub varmap: VarMap,
    bert: Bert,
    label_head: Linear,
    verdict_head: Linear,
    device: Device,
}

/// The configuration a saved student's directory holds.
fn saved_config(dir: &Path) -> Result<StudentConfig> {
    let path = dir.join("student.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: not a student directory (`workbench student train --out DIR` writes one)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a student config", path.display()))
}

/// The tokenizer at `path`, cutting and padding as the student reads its inputs.
fn tokenizer_for(config: &StudentConfig, path: &Path) -> Result<Tokenizer> {
    let mut tokenizer =
        Tokenizer::from_file(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: config.max_tokens,
            ..Default::default()
        }))
        .map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..Default::default()
    }));
    Ok(tokenizer)
}

pub const BASE_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// Two unit-length sides compared: (a, b, |a − b|, a · b, cosine).
fn compared(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let cosine = (a * b)?.sum_keepdim(1)?;
    Tensor::cat(&[a, b, &(a - b)?.abs()?, &(a * b)?, &cosine], 1)
}

/// Each value as a z-score among the values of the same query (0 for a query's only pair):
/// how a pair's cosine stands among its query's candidates.
fn query_z_scores(queries: &[&str], values: &[f32]) -> Vec<f32> {
    let mut groups: std::collections::HashMap<&str, (f64, f64, usize)> = Default::default();
    for (q, c) in queries.iter().zip(values) {
        let g = groups.entry(q).or_default();
        g.0 += *c as f64;
        g.1 += (*c as f64).powi(2);
        g.2 += 1;
    }
    queries
        .iter()
        .zip(values)
        .map(|(q, c)| {
            let (sum, squares, n) = groups[q];
            if n < 2 {
                return 0.0;
            }
            let mean = sum / n as f64;
            let sd = (squares / n as f64 - mean * mean).max(0.0).sqrt();
            ((*c as f64 - mean) / (sd + 1e-3)) as f32
        })
        .collect()
}

/// Each row's Euclidean length [rows, 1], at least 1e-6.
fn norm(x: &Tensor) -> candle_core::Result<Tensor> {
    x.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-6, f64::MAX)
}

/// Sets a variable of `varmap` to `values`, in its shape.
fn set_var(varmap: &VarMap, name: &str, values: Vec<f32>) -> Result<()> {
    let data = varmap.data().lock().expect("varmap");
    let var = data
        .get(name)
        .ok_or_else(|| anyhow!("no variable {name}"))?;
    var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    Ok(())
}

impl Student {
    /// A new student from the base encoder in `base` (model.safetensors, tokenizer.json,
    /// config.json), with fresh heads.
    pub fn from_base(base: &Path, mut config: StudentConfig) -> Result<Student> {
        for f in BASE_FILES {
            let p = base.join(f);
            if !p.exists() {
                bail!(
                    "{} is missing: the student base model is fetched by scripts/fetch-models.sh",
                    p.display()
                );
            }
        }
        let layers = config.bert.num_hidden_layers;
        let text = std::fs::read_to_string(base.join("config.json"))?;
        config.bert = serde_json::from_str(&text).with_context(|| {
            format!("{}: not a BERT config", base.join("config.json").display())
        })?;
        if layers > 0 {
            if layers > config.bert.num_hidden_layers {
                bail!(
                    "--layers {layers}: the student base has only {} layers",
                    config.bert.num_hidden_layers
                );
            }
            // The first `layers` of the base's weights are loaded; the rest are never read.
            config.bert.num_hidden_layers = layers;
        }
        let weights = base.join("model.safetensors");
        Student::build(config, &base.join("tokenizer.json"), |varmap, bert_only| {
            if bert_only {
                varmap.load(&weights).map_err(|e| {
                    anyhow!("{}: not the student base's weights: {e}", weights.display())
                })?;
            }
            Ok(())
        })
    }

    /// A trained student saved by `save`.
    pub fn load(dir: &Path) -> Result<Student> {
        Student::load_weights(
            saved_config(dir)?,
            &dir.join("tokenizer.json"),
            &dir.join("model.safetensors"),
        )
    }

    /// A trained student saved by `save`, for scoring only: its weights read straight into
    /// detached tensors, as `freeze` leaves them, without first building (and randomly
    /// initialising) the variables training needs.
    pub fn load_frozen(dir: &Path) -> Result<Student> {
        let config = saved_config(dir)?;
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        let fit = |e: candle_core::Error| {
            anyhow!("{}: weights do not fit the student: {e}", weights.display())
        };
        let tensors = candle_core::safetensors::load(&weights, &device).map_err(fit)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let bert = Bert::load_frozen(vb.clone(), &config.bert).map_err(fit)?;
        let head = |name: &str, outputs: usize| -> Result<Linear> {
            let vb = vb.pp("student").pp(name);
            let w = vb
                .get((outputs, config.feature_width()), "weight")
                .map_err(fit)?;
            Ok(Linear::new(w, Some(vb.get(outputs, "bias").map_err(fit)?)))
        };
        let label_head = head("label", config.labels.len())?;
        let verdict_head = head("verdict", config.dimensions.len() * Verdict::ALL.len())?;
        Ok(Student {
            tokenizer: tokenizer_for(&config, &dir.join("tokenizer.json"))?,
            config,
            varmap: VarMap::new(),
            bert,
            label_head,
            verdict_head,
            device,
        })
    }

    /// A student of `config` with the weights of a saved model or checkpoint.
    pub fn load_weights(
        config: StudentConfig,
        tokenizer: &Path,
        weights: &Path,
    ) -> Result<Student> {
        Student::build(config, tokenizer, |varmap, bert_only| {
            if !bert_only {
                varmap.load(weights).map_err(|e| {
                    anyhow!("{}: weights do not fit the student: {e}", weights.display())
                })?;
            }
            Ok(())
        })
    }

    /// Builds the encoder (calling `fill(varmap, true)` once its variables exist), then the
    /// heads (calling `fill(varmap, false)` once every variable exists).
    fn build(
        config: StudentConfig,
        tokenizer: &Path,
        fill: impl Fn(&mut VarMap, bool) -> Result<()>,
    ) -> Result<Student> {
        let device = Device::Cpu;
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let bert = Bert::load(vb.clone(), &config.bert)?;
        fill(&mut varmap, true)?;
        let n_labels = config.labels.len();
        let n_verdicts = config.dimensions.len() * Verdict::ALL.len();
        let heads = vb.pp("student");
        let zero = |vb: VarBuilder, i: usize, o: usize| -> Result<Linear> {
            let w = vb.get_with_hints((o, i), "weight", Init::Const(0.0))?;
            let b = vb.get_with_hints(o, "bias", Init::Const(0.0))?;
            Ok(Linear::new(w, Some(b)))
        };
        let width = config.feature_width();
        let label_head = zero(heads.pp("label"), width, n_labels)?;
        let verdict_head = zero(heads.pp("verdict"), width, n_verdicts)?;
        // Head weights start small and random (BERT's N(0, 0.02), as a uniform of that spread,
        // seeded so that a run repeats): a zero head passes no gradient back to the encoder.
        let mut rng = StdRng::seed_from_u64(config.seed);
        let spread = 0.02 * 3f32.sqrt();
        let head_weights: Vec<(String, usize)> = varmap
            .data()
            .lock()
            .expect("varmap")
            .iter()
            .filter(|(name, _)| name.starts_with("student.") && name.ends_with(".weight"))
            .map(|(name, var)| (name.clone(), var.elem_count()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        for (name, count) in head_weights {
            let values = (0..count)
                .map(|_| rng.random_range(-spread..spread))
                .collect();
            set_var(&varmap, &name, values)?;
        }
        fill(&mut varmap, false)?;
        Ok(Student {
            tokenizer: tokenizer_for(&config, tokenizer)?,
            config,
            varmap,
            bert,
            label_head,
            verdict_head,
            device,
        })
    }

    /// Writes `student.json`, `model.safetensors` and `tokenizer.json` into `dir`, each through
    /// a temporary file renamed into place.
    pub fn save(&self, dir: &Path, tokenizer_src: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join("model.safetensors.partial");
        self.varmap
            .save(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("model.safetensors"))?;
        if tokenizer_src != dir.join("tokenizer.json") {
            std::fs::copy(tokenizer_src, dir.join("tokenizer.json"))
                .with_context(|| format!("copying {}", tokenizer_src.display()))?;
        }
        let tmp = dir.join("student.json.partial");
        std::fs::write(&tmp, serde_json::to_string_pretty(&self.config)?)?;
        std::fs::rename(&tmp, dir.join("student.json"))?;
        Ok(())
    }

    fn encode(&self, texts: Vec<tokenizers::EncodeInput>) -> Result<Encoded> {
        let encodings = self
            .tokenizer
            .encode_batch(texts, true)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        let rows = encodings.len();
        let cols = encodings.first().map_or(0, |e| e.len());
        let gather = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let flat: Vec<u32> = encodings.iter().flat_map(|e| f(e).to_vec()).collect();
            Ok(Tensor::from_vec(flat, (rows, cols), &self.device)?)
        };
        Ok(Encoded {
            ids: gather(&|e| e.get_ids())?,
            types: gather(&|e| e.get_type_ids())?,
            mask: gather(&|e| e.get_attention_mask())?,
        })
    }

    /// Label and verdict logits for a batch of (query, item text) pairs.
    pub fn forward(&self, pairs: &[(&str, &str)]) -> Result<Output> {
        self.forward_with(pairs, None)
    }

    /// `forward` with the encoder's dropout, as training runs it.
    pub fn forward_with(&self, pairs: &[(&str, &str)], drop: Option<&Dropout>) -> Result<Output> {
        self.heads(&self.features_with(pairs, drop)?)
    }

    /// What the heads read of each pair [pairs, `feature_width`]: `pair_features` and what
    /// `with_context` adds.
    pub fn features_with(&self, pairs: &[(&str, &str)], drop: Option<&Dropout>) -> Result<Tensor> {
        self.with_context(self.pair_features(pairs, drop)?, pairs)
    }

    /// `features` (`pair_features` of `pairs`, a row each) with what the student reads beside
    /// the encoder: with `query_context`, each pair's cosine as a z-score among the pairs of the
    /// same query text in this call (0 for a query with one pair); with `lexical`, its
    /// `lexical::features`.
    pub fn with_context(&self, features: Tensor, pairs: &[(&str, &str)]) -> Result<Tensor> {
        let mut parts = vec![features];
        if self.config.query_context && self.config.kind == Kind::Bi {
            let width = parts[0].dim(1)?;
            let cosine: Vec<f32> = parts[0].narrow(1, width - 1, 1)?.flatten_all()?.to_vec1()?;
            let queries: Vec<&str> = pairs.iter().map(|p| p.0).collect();
            let z = query_z_scores(&queries, &cosine);
            parts.push(Tensor::from_vec(z, (pairs.len(), 1), &self.device)?);
        }
        if self.config.lexical {
            let values: Vec<f32> = pairs
                .iter()
                .flat_map(|(q, i)| lexical::features(q, i))
                .collect();
            parts.push(Tensor::from_vec(
                values,
                (pairs.len(), lexical::WIDTH),
                &self.device,
            )?);
        }
        if parts.len() == 1 {
            return Ok(parts.pop().expect("one part"));
        }
        Ok(Tensor::cat(&parts, 1)?)
    }

    /// What the heads read of each pair on its own: the encoder's part of the student. A
    /// cross-encoder reads query and item as one sequence (`Head`); a bi-encoder embeds each
    /// alone and compares them as sentence-transformers' classifier does: (u, v, |u − v|,
    /// u · v) and their cosine.
    pub fn pair_features(&self, pairs: &[(&str, &str)], drop: Option<&Dropout>) -> Result<Tensor> {
        Ok(match self.config.kind {
            Kind::Cross => {
                let enc = self.encode(
                    pairs
                        .iter()
                        .map(|(q, i)| (q.to_string(), i.to_string()).into())
                        .collect(),
                )?;
                let states = self
                    .bert
                    .forward_with(&enc.ids, &enc.types, &enc.mask, drop)?;
                let pooled = mean_pool(&states, &enc.mask)?;
                match self.config.head {
                    Head::Mean => pooled,
                    Head::Match => {
                        // Segment 0 is the query, segment 1 the item.
                        let item_mask = (&enc.mask * &enc.types)?;
                        let query_mask = (&enc.mask - &item_mask)?;
                        let q = mean_pool(&states, &query_mask)?;
                        let i = mean_pool(&states, &item_mask)?;
                        let q = q.broadcast_div(&norm(&q)?)?;
                        let i = i.broadcast_div(&norm(&i)?)?;
                        Tensor::cat(&[&pooled, &compared(&q, &i)?], 1)?
                    }
                }
            }
            Kind::Bi => {
                let tower = |texts: Vec<String>| -> Result<Tensor> {
                    let enc = self.encode(texts.into_iter().map(Into::into).collect())?;
                    let pooled = mean_pool(
                        &self
                            .bert
                            .forward_with(&enc.ids, &enc.types, &enc.mask, drop)?,
                        &enc.mask,
                    )?;
                    Ok(pooled.broadcast_div(&norm(&pooled)?)?)
                };
                let u = if drop.is_none() {
                    // Without dropout a query embeds the same in every pair: once per call.
                    let mut distinct: Vec<&str> = Vec::new();
                    let index: Vec<u32> = pairs
                        .iter()
                        .map(|p| {
                            let at = distinct.iter().position(|q| *q == p.0).unwrap_or_else(|| {
                                distinct.push(p.0);
                                distinct.len() - 1
                            });
                            at as u32
                        })
                        .collect();
                    let index = Tensor::new(index.as_slice(), &self.device)?;
                    tower(distinct.iter().map(|q| q.to_string()).collect())?
                        .index_select(&index, 0)?
                } else {
                    tower(pairs.iter().map(|p| p.0.to_string()).collect())?
                };
                let v = tower(pairs.iter().map(|p| p.1.to_string()).collect())?;
                compared(&u, &v)?
            }
        })
    }

    /// Label and verdict logits from `features_with`'s features.
    pub fn heads(&self, features: &Tensor) -> Result<Output> {
        let b = features.dim(0)?;
        let labels = self.label_head.forward(features)?;
        let verdicts = self.verdict_head.forward(features)?.reshape((
            b,
            self.config.dimensions.len(),
            Verdict::ALL.len(),
        ))?;
        Ok(Output { labels, verdicts })
    }

    /// The squared length of the heads' weights (their biases aside), for an L2 penalty.
    pub fn head_weight_norm(&self) -> Result<Tensor> {
        Ok((self.label_head.weight().sqr()?.sum_all()?
            + self.verdict_head.weight().sqr()?.sum_all()?)?)
    }

    /// Sentence embeddings of texts, each read alone (a bi-encoder's tower: the item side can be
    /// embedded once, ahead of any query): mean-pooled token states, unit length.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let enc = self.encode(texts.iter().map(|t| t.to_string().into()).collect())?;
        let pooled = mean_pool(
            &self
                .bert
                .forward_with(&enc.ids, &enc.types, &enc.mask, None)?,
            &enc.mask,
        )?;
        Ok(pooled.broadcast_div(&norm(&pooled)?)?.to_vec2()?)
    }

    /// The distribution over the scale and the score in [0, 1] of each pair.
    pub fn predict(&self, pairs: &[(&str, &str)]) -> Result<Vec<(Vec<f32>, f64)>> {
        self.predict_from(self.features_with(pairs, None)?)
    }

    fn predict_from(&self, features: Tensor) -> Result<Vec<(Vec<f32>, f64)>> {
        let out = self.heads(&features)?;
        let probs: Vec<Vec<f32>> = candle_nn::ops::softmax(&out.labels, D::Minus1)?.to_vec2()?;
        Ok(probs
            .into_iter()
            .map(|p| {
                let s = self.config.score_of(&p);
                (p, s)
            })
            .collect())
    }

    /// A scoring-only copy that shares this student's weights (no copy of the tensors): what
    /// training scores the dev split with between epochs. A forward pass through variables
    /// records the graph, which keeps every activation of the batch alive until the output is
    /// dropped; detached, they are freed as the pass goes.
    pub fn frozen(&self) -> Result<Student> {
        let tensors = self
            .varmap
            .data()
            .lock()
            .expect("varmap")
            .iter()
            .map(|(name, var)| (name.clone(), var.as_detached_tensor()))
            .collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &self.device);
        let detach = |l: &Linear| Linear::new(l.weight().detach(), l.bias().map(Tensor::detach));
        Ok(Student {
            config: self.config.clone(),
            tokenizer: self.tokenizer.clone(),
            varmap: VarMap::new(),
            bert: Bert::load_frozen(vb, &self.config.bert)?,
            label_head: detach(&self.label_head),
            verdict_head: detach(&self.verdict_head),
            device: self.device.clone(),
        })
    }

    /// `predict` with the pairs split across the CPU's threads (rayon), one forward pass per
    /// thread. candle multithreads its matmuls but runs the elementwise work (GELU, softmax,
    /// layer norm, copies) on the calling thread, so one batch at a time kept 1.2 of this
    /// machine's 2 cores busy (BENCHMARKS.md, students).
    /// Batches of `batch` pairs at a time per thread. The query context, when the student reads
    /// it, is taken over all `pairs` of a query in the call.
    pub fn predict_parallel(
        &self,
        pairs: &[(&str, &str)],
        batch: usize,
    ) -> Result<Vec<(Vec<f32>, f64)>> {
        use rayon::prelude::*;
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let parts: Vec<Tensor> = pairs
            .par_chunks(batch.max(1))
            .map(|part| self.pair_features(part, None))
            .collect::<Result<_>>()?;
        self.predict_from(self.with_context(Tensor::cat(&parts, 0)?, pairs)?)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LabelScale;

    /// `--layers N` keeps the base's first N layers. Scoring runs frozen and split over threads;
    /// training runs neither: both must give the trained model's own numbers. A bi-encoder,
    /// because its label logits start from the cosine of the real MiniLM base (a fresh
    /// cross-encoder's zero head would hide a wrong encoder).
    #[test]
    fn layers_frozen_and_parallel_scoring() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/student-base");
        let losses = Losses {
            temperature: 1.0,
            ..Losses::default()
        };
        let config = crate::student::new_config(Kind::Bi, &LabelScale::esci(), losses, 32, 0);
        let student = Student::from_base(&base, config.clone())
            .expect("the student base: run scripts/fetch-models.sh first");
        let pairs = [
            (
                "red running shoes",
                "Nike Air Zoom running shoe, red, men's size 10",
            ),
            ("red running shoes", "Stainless steel kitchen sink, 30 inch"),
            ("usb c cable", "Anker USB-C to USB-C cable, 6 ft, braided"),
            ("usb c cable", "Wooden picture frame 8x10"),
            (
                "dog bed large",
                "Orthopedic dog bed for large dogs, washable cover",
            ),
        ];
        let plain = student.predict(&pairs).unwrap();
        let spread = plain
            .iter()
            .map(|(_, s)| *s)
            .fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
        assert!(
            spread.1 - spread.0 > 1e-3,
            "the encoder must move the scores: {plain:?}"
        );
        // `--layers 3`: the base's first three layers, other scores; more layers than the base
        // has is refused.
        let mut short = config.clone();
        short.bert.num_hidden_layers = 3;
        let short = Student::from_base(&base, short).unwrap();
        assert_eq!(short.config.bert.num_hidden_layers, 3);
        let other = short.predict(&pairs).unwrap();
        assert!(
            plain
                .iter()
                .zip(&other)
                .any(|(a, b)| (a.1 - b.1).abs() > 1e-4),
            "three layers scored like six"
        );
        let mut long = config;
        long.bert.num_hidden_layers = 7;
        let err = Student::from_base(&base, long)
            .err()
            .expect("7 of 6 layers");
        assert!(err.to_string().contains("has only 6 layers"), "{err}");

        let saved = tempfile::tempdir().unwrap();
        student
            .save(saved.path(), &base.join("tokenizer.json"))
            .unwrap();
        let loaded = Student::load_frozen(saved.path()).unwrap();
        let frozen = student.frozen().unwrap();
        for (name, got) in [
            (
                "saved and loaded for scoring",
                loaded.predict(&pairs).unwrap(),
            ),
            ("frozen", frozen.predict(&pairs).unwrap()),
            (
                "frozen, parallel",
                frozen.predict_parallel(&pairs, 2).unwrap(),
            ),
        ] {
            assert_eq!(got.len(), plain.len(), "{name}");
            for ((p, s), (q, t)) in plain.iter().zip(&got) {
                assert!((s - t).abs() < 1e-5, "{name}: score {s} vs {t}");
                for (a, b) in p.iter().zip(q) {
                    assert!((a - b).abs() < 1e-5, "{name}: {p:?} vs {q:?}");
                }
            }
        }
    }

    #[test]
    fn a_pairs_cosine_is_placed_among_its_querys_pairs_only() {
        let z = query_z_scores(&["a", "b", "a", "a", "c"], &[0.1, 0.9, 0.3, 0.5, 0.7]);
        // Query a: 0.1, 0.3, 0.5 (mean 0.3); b and c have one pair each.
        assert!(z[0] < -1.0 && z[3] > 1.0, "{z:?}");
        assert!(z[2].abs() < 1e-4, "{z:?}");
        assert!((z[0] + z[3]).abs() < 1e-4, "{z:?}");
        assert_eq!((z[1], z[4]), (0.0, 0.0));
        // A query whose pairs all tie has no spread, and no pair stands out.
        assert!(
            query_z_scores(&["q", "q"], &[0.4, 0.4])
                .iter()
                .all(|v| v.abs() < 1e-3)
        );
    }

    /// With the query's context, a pair's scores depend on the other pairs of its query in the
    /// call, and on nothing else; split over threads, the context is still the whole call's.
    #[test]
    fn query_context_reads_the_querys_other_pairs() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/student-base");
        let mut config =
            crate::student::new_config(Kind::Bi, &LabelScale::esci(), Losses::default(), 32, 0);
        config.query_context = true;
        let student = Student::from_base(&base, config)
            .expect("the student base: run scripts/fetch-models.sh first")
            .frozen()
            .unwrap();
        let shoes = ("red running shoes", "Nike Air Zoom running shoe, red");
        let sink = ("red running shoes", "Stainless steel kitchen sink");
        let cable = ("usb c cable", "Anker USB-C cable, braided");
        let frame = ("usb c cable", "Wooden picture frame 8x10");
        let all = student.predict(&[shoes, sink, cable, frame]).unwrap();
        let split = student
            .predict_parallel(&[shoes, sink, cable, frame], 1)
            .unwrap();
        for (a, b) in all.iter().zip(&split) {
            assert!((a.1 - b.1).abs() < 1e-5, "{all:?} vs {split:?}");
        }
        // Another query's pairs change nothing; a query's own other pair does.
        let shoes_only = student.predict(&[shoes, sink]).unwrap();
        assert!((shoes_only[0].1 - all[0].1).abs() < 1e-5);
        let alone = student.predict(&[shoes]).unwrap();
        assert!(
            (alone[0].1 - all[0].1).abs() > 1e-4,
            "a pair alone scored as among its query's pairs: {alone:?} vs {all:?}"
        );
    }

    /// With `lexical`, the heads read each pair's `lexical::features` after what the encoder
    /// and the query's context give, wherever a pair is scored.
    #[test]
    fn lexical_features_follow_the_encoders() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/student-base");
        let mut config =
            crate::student::new_config(Kind::Bi, &LabelScale::esci(), Losses::default(), 32, 0);
        config.query_context = true;
        config.lexical = true;
        let student = Student::from_base(&base, config)
            .expect("the student base: run scripts/fetch-models.sh first")
            .frozen()
            .unwrap();
        let pairs = [
            ("iphone 12 case", "Apple iPhone 13 Case | clear"),
            ("iphone 12 case", "Spigen case for iPhone 12"),
        ];
        let features = student.features_with(&pairs, None).unwrap();
        let width = student.config.feature_width();
        assert_eq!(features.dims(), [2, width]);
        let tail: Vec<Vec<f32>> = features
            .narrow(1, width - lexical::WIDTH, lexical::WIDTH)
            .unwrap()
            .to_vec2()
            .unwrap();
        for (row, (q, i)) in tail.iter().zip(pairs) {
            assert_eq!(row.as_slice(), lexical::features(q, i));
        }
        assert_ne!(
            tail[0], tail[1],
            "the model number tells the two items apart"
        );
        let one = student.predict(&pairs).unwrap();
        let parallel = student.predict_parallel(&pairs, 1).unwrap();
        assert!((one[0].1 - parallel[0].1).abs() < 1e-5);
    }
}
