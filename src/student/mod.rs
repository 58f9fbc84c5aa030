//! Students: all-MiniLM-L6-v2 fine-tuned with candle into a cross-encoder or a bi-encoder that
//! learns the teacher's distribution (KL), its score margins (Margin-MSE), its per-dimension
//! verdicts (CoT heads) and the human labels.

mod bert;
pub mod data;
pub mod model;
pub mod train;
#[cfg(test)]
mod trainer_checks;

pub use data::Example;
pub use model::{Head, Kind, Losses, Student, StudentConfig};
pub use train::{TrainOptions, TrainState, train};

use crate::domain::LabelScale;

/// The configuration of a new student over `scale`, before training fills in the encoder's.
pub fn new_config(
    kind: Kind,
    scale: &LabelScale,
    losses: Losses,
    max_tokens: usize,
    seed: u64,
) -> StudentConfig {
    StudentConfig {
        kind,
        labels: scale.labels.iter().map(|l| l.key.clone()).collect(),
        gains: scale.labels.iter().map(|l| l.gain).collect(),
        dimensions: crate::domain::prompt::DIMENSIONS
            .iter()
            .map(|d| d.to_string())
            .collect(),
        max_tokens,
        head: model::Head::Mean,
        query_context: false,
        lexical: false,
        bert: bert::BertConfig {
            vocab_size: 0,
            hidden_size: 0,
            // 0: all of the base's; `from_base` keeps the first N when this is N.
            num_hidden_layers: 0,
            num_attention_heads: 0,
            intermediate_size: 0,
            max_position_embeddings: 0,
            type_vocab_size: 0,
            layer_norm_eps: 1e-12,
        },
        losses,
        // Filled in once the split is resolved.
        split: String::new(),
        teacher_distribution: "raw".into(),
        seed,
        trained: serde_json::Value::Null,
    }
}
