//! The teacher's llama network in candle, for fine-tuning: every matrix dequantised to f32, as
//! score mode runs it; the lower blocks frozen (run once per example, their output kept), the
//! top blocks and the final norm variables that train. candle's fused kernels (RMS norm, rotary embedding, the last-dim
//! softmax) have no backward pass, so the trained blocks are written from differentiable ops.

use std::collections::HashMap;
use std::io::{Read, Seek};

use anyhow::{Context, Result, bail};
use candle_core::quantized::{QTensor, gguf_file};
use candle_core::{D, DType, Device, Tensor, Var};

/// The shape of the network, from the GGUF header.
#[derive(Debug, Clone)]
pub struct Config {
    pub blocks: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f64,
    rope_dim: usize,
    rope_base: f32,
}

impl Config {
    pub fn read(content: &gguf_file::Content) -> Result<Config> {
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            bail!("fine-tuning runs llama-architecture GGUF files; this one is {arch:?}");
        }
        let u = |key: &str| -> Result<usize> {
            let v = content
                .metadata
                .get(&format!("llama.{key}"))
                .with_context(|| format!("the GGUF header has no llama.{key}"))?;
            Ok(v.to_u32()
                .map_err(|e| anyhow::anyhow!("llama.{key}: {e}"))? as usize)
        };
        let heads = u("attention.head_count")?;
        let hidden = u("embedding_length")?;
        let eps = content
            .metadata
            .get("llama.attention.layer_norm_rms_epsilon")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1e-5) as f64;
        let rope_base = content
            .metadata
            .get("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        Ok(Config {
            blocks: u("block_count")?,
            heads,
            kv_heads: u("attention.head_count_kv")?,
            head_dim: hidden / heads,
            eps,
            rope_dim: u("rope.dimension_count").unwrap_or(hidden / heads),
            rope_base,
        })
    }
}

/// A tensor of the network: frozen, or a variable that trains.
enum Param {
    Frozen(Tensor),
    Trained(Var),
}

impl Param {
    fn tensor(&self) -> &Tensor {
        match self {
            Param::Frozen(t) => t,
            Param::Trained(v) => v.as_tensor(),
        }
    }

    /// `x` through this projection matrix (out × in).
    fn project(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.tensor().t()?)
    }

    /// `x` RMS-normalised and scaled by these weights.
    fn rms_norm(&self, x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        match self {
            Param::Frozen(w) => candle_nn::ops::rms_norm(x, w, eps as f32),
            Param::Trained(w) => {
                let scale = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
                x.broadcast_mul(&scale)?.broadcast_mul(w.as_tensor())
            }
        }
    }
}

struct Block {
    trained: bool,
    attn_norm: Param,
    q: Param,
    k: Param,
    v: Param,
    out: Param,
    ffn_norm: Param,
    gate: Param,
    up: Param,
    down: Param,
}

/// The tensors of one block in the GGUF file, by the names llama.cpp gives them.
const BLOCK_TENSORS: [&str; 9] = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

pub struct Llama {
    pub config: Config,
    embeddings: Tensor,
    blocks: Vec<Block>,
    norm: Param,
    cos: Tensor,
    sin: Tensor,
    /// GGUF tensor name → the variable that trains it.
    trained: Vec<(String, Var)>,
}

/// Longest sequence the rotary tables cover.
const MAX_POSITIONS: usize = 4096;

impl Llama {
    /// Loads the network; the top `train_blocks` blocks (and the final norm, when any block
    /// trains) become variables.
    pub fn load<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        train_blocks: usize,
    ) -> Result<Llama> {
        let config = Config::read(content)?;
        if train_blocks > config.blocks {
            bail!(
                "--layers {train_blocks}: the model has {} blocks",
                config.blocks
            );
        }
        let device = Device::Cpu;
        let mut tensor = |name: &str| -> Result<QTensor> {
            content
                .tensor(reader, name, &device)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("tensor {name}"))
        };
        let embeddings = tensor("token_embd.weight")?.dequantize(&device)?;
        if content.tensor_infos.contains_key("output.weight") {
            bail!("fine-tuning expects tied input and output embeddings (no output.weight)");
        }
        let mut trained = Vec::new();
        let first_trained = config.blocks - train_blocks;
        let mut blocks = Vec::with_capacity(config.blocks);
        for b in 0..config.blocks {
            let train = b >= first_trained;
            let mut parts: HashMap<&str, QTensor> = HashMap::new();
            for t in BLOCK_TENSORS {
                parts.insert(t, tensor(&format!("blk.{b}.{t}.weight"))?);
            }
            let mut take = |t: &'static str| -> Result<(String, QTensor, bool)> {
                let q = parts.remove(t).expect("listed in BLOCK_TENSORS");
                Ok((format!("blk.{b}.{t}.weight"), q, train))
            };
            let tr = &mut trained;
            blocks.push(Block {
                trained: train,
                attn_norm: param(take("attn_norm")?, tr)?,
                q: param(take("attn_q")?, tr)?,
                k: param(take("attn_k")?, tr)?,
                v: param(take("attn_v")?, tr)?,
                out: param(take("attn_output")?, tr)?,
                ffn_norm: param(take("ffn_norm")?, tr)?,
                gate: param(take("ffn_gate")?, tr)?,
                up: param(take("ffn_up")?, tr)?,
                down: param(take("ffn_down")?, tr)?,
            });
        }
        let out_norm = tensor("output_norm.weight")?;
        let norm = param(
            ("output_norm.weight".into(), out_norm, train_blocks > 0),
            &mut trained,
        )?;
        let (cos, sin) = rope_tables(&config, &device)?;
        Ok(Llama {
            config,
            embeddings,
            blocks,
            norm,
            cos,
            sin,
            trained,
        })
    }

    /// The variables that train, by GGUF tensor name.
    pub fn trained(&self) -> &[(String, Var)] {
        &self.trained
    }

    /// The hidden states (positions × hidden) that enter the first trained block: computed
    /// once per example, without a graph.
    pub fn frozen_states(&self, tokens: &[u32]) -> Result<Tensor> {
        self.run(tokens, self.blocks.iter().filter(|b| !b.trained), |_, _| {
            Ok(())
        })
    }

    /// The tokens' states (positions × hidden) after `blocks`, without a graph; `after` sees
    /// them as each block leaves them, with the block's 1-based number.
    fn run<'a>(
        &self,
        tokens: &[u32],
        blocks: impl Iterator<Item = &'a Block>,
        mut after: impl FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embeddings.index_select(&ids, 0)?;
        let mask = causal_mask(tokens.len())?;
        for (i, b) in blocks.enumerate() {
            x = self.block(b, &x, &mask, None)?;
            after(i + 1, &x)?;
        }
        Ok(x)
    }

    /// The state position `at` leaves block `d` with, for each `d` of `depths` (ascending),
    /// RMS-normalised without the final norm's weights and laid end to end: what a probe at
    /// each depth reads. Later positions cannot change it (attention is causal), so they are
    /// not computed, nor blocks past the deepest asked for.
    pub fn states_at_depths(
        &self,
        tokens: &[u32],
        depths: &[usize],
        at: usize,
    ) -> Result<Vec<f32>> {
        let deepest = depths.last().copied().unwrap_or(0);
        let mut out = Vec::new();
        let eps = self.config.eps as f32;
        self.run(
            &tokens[..=at],
            self.blocks.iter().take(deepest),
            |block, x| {
                if depths.contains(&block) {
                    let last = x.get(at)?;
                    let rms = (last.sqr()?.mean_all()?.to_scalar::<f32>()? + eps).sqrt();
                    out.extend((last / rms as f64)?.to_vec1::<f32>()?);
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Logits (rows of `positions` × vocabulary) from the states `frozen_states` gave. The last
    /// block computes only the rows asked for: the loss reads no other.
    pub fn logits(&self, states: &Tensor, positions: &[u32]) -> Result<Tensor> {
        let mask = causal_mask(states.dim(0)?)?;
        let at = Tensor::new(positions, &Device::Cpu)?;
        let trained: Vec<&Block> = self.blocks.iter().filter(|b| b.trained).collect();
        let x = match trained.split_last() {
            Some((last, below)) => {
                let mut x = states.clone();
                for b in below {
                    x = self.block(b, &x, &mask, None)?;
                }
                self.block(last, &x, &mask, Some(&at))?
            }
            None => states.index_select(&at, 0)?,
        };
        let x = self.norm.rms_norm(&x, self.config.eps)?;
        Ok(x.matmul(&self.embeddings.t()?)?)
    }

    /// One block over all positions, or (`rows`) with queries and outputs at those rows only.
    fn block(&self, b: &Block, x: &Tensor, mask: &Tensor, rows: Option<&Tensor>) -> Result<Tensor> {
        let c = &self.config;
        let n = x.dim(0)?;
        let h = b.attn_norm.rms_norm(x, c.eps)?;
        let heads = |w: &Param, h: &Tensor, count: usize| -> candle_core::Result<Tensor> {
            let rows = h.dim(0)?;
            w.project(h)?
                .reshape((rows, count, c.head_dim))?
                .transpose(0, 1)?
                .unsqueeze(0)?
                .contiguous()
        };
        let rope = if b.trained {
            candle_nn::rotary_emb::rope_i_slow
        } else {
            candle_nn::rotary_emb::rope_i
        };
        let cos = self.cos.narrow(0, 0, n)?;
        let sin = self.sin.narrow(0, 0, n)?;
        let k = repeat_kv(
            &rope(&heads(&b.k, &h, c.kv_heads)?, &cos, &sin)?,
            c.heads / c.kv_heads,
        )?;
        let v = repeat_kv(&heads(&b.v, &h, c.kv_heads)?, c.heads / c.kv_heads)?;
        let (x, q, mask) = match rows {
            None => (
                x.clone(),
                rope(&heads(&b.q, &h, c.heads)?, &cos, &sin)?,
                mask.clone(),
            ),
            Some(r) => {
                let q = heads(&b.q, &h.index_select(r, 0)?, c.heads)?;
                let q = rope_rows(&q, &cos.index_select(r, 0)?, &sin.index_select(r, 0)?)?;
                (x.index_select(r, 0)?, q, mask.index_select(r, 0)?)
            }
        };
        let n = x.dim(0)?;
        let att = (q.matmul(&k.t()?)? / (c.head_dim as f64).sqrt())?.broadcast_add(&mask)?;
        let att = if b.trained {
            candle_nn::ops::softmax(&att, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&att)?
        };
        let y = att
            .matmul(&v)?
            .squeeze(0)?
            .transpose(0, 1)?
            .reshape((n, c.heads * c.head_dim))?;
        let x = (x + b.out.project(&y)?)?;
        let h = b.ffn_norm.rms_norm(&x, c.eps)?;
        let m = (b.gate.project(&h)?.silu()? * b.up.project(&h)?)?;
        Ok((x + b.down.project(&m)?)?)
    }
}

/// A GGUF tensor (name, weights, whether it trains) as a parameter; a trained one is listed in
/// `trained`.
fn param(
    (name, q, train): (String, QTensor, bool),
    trained: &mut Vec<(String, Var)>,
) -> Result<Param> {
    let t = q.dequantize(&Device::Cpu)?;
    Ok(if train {
        let v = Var::from_tensor(&t)?;
        trained.push((name, v.clone()));
        Param::Trained(v)
    } else {
        Param::Frozen(t)
    })
}

fn rope_tables(c: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..c.rope_dim)
        .step_by(2)
        .map(|i| 1.0 / c.rope_base.powf(i as f32 / c.rope_dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let positions = Tensor::arange(0, MAX_POSITIONS as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((MAX_POSITIONS, 1))?;
    let angles = positions.matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// The interleaved rotary embedding at scattered positions, whose angles are `cos` and `sin`
/// row by row (`rope_i_slow` takes a run of positions from 0).
fn rope_rows(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, n, d) = x.dims4()?;
    let pairs = x.reshape((b, h, n, d / 2, 2))?;
    let even = pairs.narrow(4, 0, 1)?.squeeze(4)?;
    let odd = pairs.narrow(4, 1, 1)?.squeeze(4)?;
    let (cos, sin) = (
        cos.reshape((1, 1, n, d / 2))?,
        sin.reshape((1, 1, n, d / 2))?,
    );
    let first = (even.broadcast_mul(&cos)? - odd.broadcast_mul(&sin)?)?;
    let second = (even.broadcast_mul(&sin)? + odd.broadcast_mul(&cos)?)?;
    Tensor::stack(&[first, second], 4)?.reshape((b, h, n, d))
}

/// Adds a large negative number above the diagonal: each position sees itself and before.
fn causal_mask(n: usize) -> Result<Tensor> {
    if n > MAX_POSITIONS {
        bail!("{n} tokens: longer than the {MAX_POSITIONS} positions fine-tuning covers");
    }
    let mask: Vec<f32> = (0..n)
        .flat_map(|i| (0..n).map(move |j| if j > i { -1e9 } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (n, n), &Device::Cpu)?)
}

/// Grouped-query attention: each key/value head serves `times` query heads in a row.
fn repeat_kv(x: &Tensor, times: usize) -> candle_core::Result<Tensor> {
    if times == 1 {
        return Ok(x.clone());
    }
    let (b, heads, n, d) = x.dims4()?;
    Tensor::cat(&vec![x; times], 2)?.reshape((b, heads * times, n, d))
}

#[cfg(test)]
mod tests {
    //! The network checked against candle-transformers' llama (the reference implementation) on
    //! the shipped SmolLM2 weights, all in f32, as score mode runs them.
    use std::path::Path;

    use candle_core::IndexOp;
    use candle_transformers::models::quantized_llama::ModelWeights;

    use super::*;
    use crate::teacher::gguf::{self, Weights};

    fn teacher() -> std::path::PathBuf {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/teacher/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            p.exists(),
            "{} is missing: run scripts/fetch-models.sh",
            p.display()
        );
        p
    }

    /// The reference's next-token logits after `tokens`.
    fn reference(path: &Path, tokens: &[u32]) -> Vec<f32> {
        let (mut r, content) = gguf::open(path).unwrap();
        let mut m = ModelWeights::from_gguf(content, &mut r, &Device::Cpu).unwrap();
        let ids = Tensor::new(tokens, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        m.forward(&ids, 0).unwrap().i(0).unwrap().to_vec1().unwrap()
    }

    fn ours(path: &Path, train_blocks: usize, tokens: &[u32]) -> Vec<f32> {
        let (mut r, content) = gguf::open(path).unwrap();
        let m = Llama::load(&content, &mut r, train_blocks).unwrap();
        let states = m.frozen_states(tokens).unwrap();
        let last = tokens.len() as u32 - 1;
        m.logits(&states, &[last])
            .unwrap()
            .i(0)
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn the_network_computes_what_the_reference_llama_computes() {
        let f32_copy = gguf::prepare(&teacher(), Weights::F32, &mut |_| {}).unwrap();
        // Any token ids do: 1 is <|im_start|>, the rest ordinary vocabulary.
        let tokens: Vec<u32> = [1u32]
            .into_iter()
            .chain((0..40).map(|i| 300 + i * 97))
            .collect();
        let want = reference(&f32_copy, &tokens);
        let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // Frozen (the fused kernels) and trained (the differentiable ops) blocks alike.
        for train_blocks in [0, 3] {
            let got = ours(&f32_copy, train_blocks, &tokens);
            assert_eq!(got.len(), want.len());
            let d = max_diff(&got, &want);
            assert!(
                d <= 1e-4 * scale.max(1.0),
                "{train_blocks} trained blocks: logits differ by {d} (largest logit {scale})"
            );
        }
    }

    #[test]
    fn every_trained_weight_receives_a_gradient() {
        let (mut r, content) = gguf::open(&teacher()).unwrap();
        let m = Llama::load(&content, &mut r, 2).unwrap();
        assert_eq!(m.trained().len(), 2 * BLOCK_TENSORS.len() + 1);
        let tokens: Vec<u32> = (0..12).map(|i| 500 + i * 31).collect();
        let states = m.frozen_states(&tokens).unwrap();
        let logits = m.logits(&states, &[10, 11]).unwrap();
        let target = Tensor::new(&[42u32, 43], &Device::Cpu).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &target).unwrap();
        let grads = loss.backward().unwrap();
        for (name, v) in m.trained() {
            let g = grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient norm {norm}"
            );
        }
    }
}
