//! What the teacher said about one pair: made by the teacher, stored as it is.

use serde::Serialize;

use super::{Rationale, ScoreDist};

/// Where a judgment's distribution over the scale came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DistSource {
    /// The label position's token probabilities.
    Logprobs,
    /// Self-consistency: the labels of several samples, counted.
    Votes,
    /// Only the written label could be read: all of it on that label.
    Parsed,
    /// Nothing could be read: uniform.
    #[default]
    None,
}

impl DistSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DistSource::Logprobs => "logprobs",
            DistSource::Votes => "votes",
            DistSource::Parsed => "parsed",
            DistSource::None => "none",
        }
    }
}

/// What the teacher said about one pair.
#[derive(Debug, Clone, Default)]
pub struct Judgment {
    pub label: Option<String>,
    pub distribution: ScoreDist,
    pub dist_source: DistSource,
    pub confidence: Option<f64>,
    pub rationale: Option<Rationale>,
    pub raw_output: String,
    pub parse_error: Option<String>,
    /// The output reached the token limit (a CoT answer cut short).
    pub truncated: bool,
    /// The item's text was cut to fit the prompt.
    pub item_truncated: bool,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub elapsed_ms: u64,
    pub prompt_secs: Option<f64>,
    pub completion_secs: Option<f64>,
}
