//! The BERT encoder of all-MiniLM-L6-v2, built from candle-nn's layers so that every operation
//! has a gradient.
//!
//! Why not candle-transformers' `BertModel`: its layer norm goes through candle-nn's fused
//! `ops::layer_norm`, which is applied with `apply_op3_no_bwd`: the graph is cut at every layer
//! norm and fine-tuning would only ever reach the heads. The weights and their names are the
//! Hugging Face ones, so the base model's `model.safetensors` loads as it is.

use std::cell::RefCell;

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, embedding, linear};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The fields of a BERT `config.json` the encoder needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

/// Layer normalisation written out in differentiable tensor operations.
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    /// `fused`: candle's one-pass kernel, which has no gradient (for an encoder that does not
    /// learn); else the same sums in differentiable operations.
    fn forward(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        if fused {
            return candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
}

impl Layer {
    fn load(vb: VarBuilder, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        let att = vb.pp("attention");
        Ok(Layer {
            query: linear(h, h, att.pp("self").pp("query"))?,
            key: linear(h, h, att.pp("self").pp("key"))?,
            value: linear(h, h, att.pp("self").pp("value"))?,
            attention_out: linear(h, h, att.pp("output").pp("dense"))?,
            attention_norm: LayerNorm::load(att.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            intermediate: linear(h, c.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(c.intermediate_size, h, vb.pp("output").pp("dense"))?,
            output_norm: LayerNorm::load(vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            heads: c.num_attention_heads,
        })
    }

    /// `x`: [batch, tokens, hidden]; `mask`: [batch, 1, 1, tokens], 0 to attend, a large
    /// negative number to ignore. `drop`: BERT's dropout, in training only.
    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        drop: Option<&Dropout>,
        fused: bool,
    ) -> Result<Tensor> {
        let drop = |t: Tensor| match drop {
            Some(d) => d.apply(&t),
            None => Ok(t),
        };
        let (b, t, h) = x.dims3()?;
        let dh = h / self.heads;
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.heads, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?.broadcast_add(mask)?;
        let weights = drop(if fused {
            candle_nn::ops::softmax_last_dim(&scores)?
        } else {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        })?;
        let context = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, h))?;
        let attended = self
            .attention_norm
            .forward(&(drop(self.attention_out.forward(&context)?)? + x)?, fused)?;
        let hidden = self.intermediate.forward(&attended)?;
        let hidden = if fused {
            hidden.apply_op1_no_bwd(&FastGelu)?
        } else {
            hidden.gelu_erf()?
        };
        self.output_norm
            .forward(&(drop(self.output.forward(&hidden)?)? + attended)?, fused)
    }
}

pub struct Bert {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    /// Runs candle's fused kernels, which have no gradient: an encoder that does not learn.
    fused: bool,
}

impl Bert {
    /// An encoder that can learn: every operation has a gradient.
    pub fn load(vb: VarBuilder, c: &BertConfig) -> Result<Self> {
        Self::load_with(vb, c, false)
    }

    /// The same encoder for inference only (detached weights): fused layer norms and softmax,
    /// the same numbers to float rounding, faster.
    pub fn load_frozen(vb: VarBuilder, c: &BertConfig) -> Result<Self> {
        Self::load_with(vb, c, true)
    }

    fn load_with(vb: VarBuilder, c: &BertConfig, fused: bool) -> Result<Self> {
        let e = vb.pp("embeddings");
        Ok(Bert {
            words: embedding(c.vocab_size, c.hidden_size, e.pp("word_embeddings"))?,
            positions: embedding(
                c.max_position_embeddings,
                c.hidden_size,
                e.pp("position_embeddings"),
            )?,
            token_types: embedding(
                c.type_vocab_size,
                c.hidden_size,
                e.pp("token_type_embeddings"),
            )?,
            norm: LayerNorm::load(e.pp("LayerNorm"), c.hidden_size, c.layer_norm_eps)?,
            layers: (0..c.num_hidden_layers)
                .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), c))
                .collect::<Result<_>>()?,
            fused,
        })
    }

    /// Token states [batch, tokens, hidden] for ids, token types and an attention mask of 1/0,
    /// each [batch, tokens]; `drop`: dropout where BERT applies it in training.
    pub fn forward_with(
        &self,
        ids: &Tensor,
        types: &Tensor,
        mask: &Tensor,
        drop: Option<&Dropout>,
    ) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, ids.device())?.unsqueeze(0)?;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .add(&self.token_types.forward(types)?)?;
        let mut x = self.norm.forward(&x, self.fused)?;
        if let Some(d) = drop {
            x = d.apply(&x)?;
        }
        let additive = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        for layer in &self.layers {
            x = layer.forward(&x, &additive, drop, self.fused)?;
        }
        Ok(x)
    }
}

/// BERT's exact GELU, x · Φ(x), with erf as a rational polynomial in x² (the single-precision
/// approximation Eigen and XLA use, within a few float ulps of erf): no exp, no branch, so the
/// loop vectorises, where libm's erf was a fifth of a frozen student's scoring time.
struct FastGelu;

fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_1e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_3e-3;
    q = q * x2 + -1.426_473_9e-2;
    x * p / q
}

impl candle_core::CustomOp1 for FastGelu {
    fn name(&self) -> &'static str {
        "fast-gelu"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (candle_core::CpuStorage::F32(data), Some((start, end))) =
            (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("fast-gelu: a contiguous f32 tensor")
        };
        let out: Vec<f32> = data[start..end]
            .iter()
            .map(|&x| 0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2)))
            .collect();
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Dropout with its own seeded generator (candle's draws from the thread's, so a run would not
/// repeat): zeroes each value with probability `p` and scales the rest by 1 / (1 − p).
pub struct Dropout {
    p: f32,
    rng: RefCell<StdRng>,
}

impl Dropout {
    pub fn new(p: f32, seed: u64) -> Dropout {
        Dropout {
            p,
            rng: RefCell::new(StdRng::seed_from_u64(seed)),
        }
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 / (1.0 - self.p);
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.random::<f32>() < self.p {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
    }
}

/// The mean of the token states where the mask is 1: sentence-transformers' pooling for MiniLM.
pub fn mean_pool(states: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = states.broadcast_mul(&m)?.sum(1)?;
    let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
    summed.broadcast_div(&counts)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    /// The fused GELU gives candle's exact `gelu_erf` to float rounding over the range a
    /// layer's activations meet.
    #[test]
    fn the_fast_gelu_is_the_exact_gelu() {
        let xs: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 / 1000.0).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let fast = t
            .apply_op1_no_bwd(&super::FastGelu)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let exact = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let worst = fast
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "largest difference {worst}");
        assert!(exact[0].abs() < 1e-6 && (exact[24_000] - 12.0).abs() < 1e-5);
    }
}
