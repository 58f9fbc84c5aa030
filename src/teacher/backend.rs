//! The one small trait both teacher backends implement: a chat request in, completions with
//! per-token log-probabilities out.

use futures::future::BoxFuture;
use serde_json::Value;

use crate::domain::prompt::Message;

/// How the output is constrained.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputConstraint {
    /// A JSON object following this schema.
    JsonSchema(Value),
    /// Exactly one of these strings (score mode's bare label).
    OneOf(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub constraint: OutputConstraint,
    pub max_tokens: usize,
    /// None or 0 means greedy decoding.
    pub temperature: Option<f64>,
    /// How many completions (self-consistency samples).
    pub n: usize,
    /// How many alternatives per token to return with their log-probabilities.
    pub top_logprobs: usize,
    /// What discourages the model from repeating itself.
    pub penalties: Penalties,
}

/// Penalties against repetition, applied to the logits before each token is chosen. All zero
/// means none. The frequency and presence penalties count the prompt's tokens too, so they also
/// push the model off words it would quote from the product text; the local backend's DRY reads
/// the answer alone and only inside JSON strings (`repetition::AnswerDry`), so it penalises
/// loops and copies of the answer's own text, growing with their length.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Penalties {
    /// Subtracted from a token's logit once per earlier occurrence.
    pub frequency: f32,
    /// Subtracted once from the logit of any token that occurred before.
    pub presence: f32,
    /// DRY's multiplier ("don't repeat yourself"; base 1.75, allowed length 2).
    pub dry: f32,
}

/// One generated token: its text, natural-log probability, and the top alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    pub top: Vec<(String, f64)>,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub text: String,
    pub tokens: Vec<TokenLogprob>,
    /// True when generation stopped at the token limit instead of finishing.
    pub truncated: bool,
    /// Why this completion failed, when generation itself failed for this request.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Completions {
    pub choices: Vec<Completion>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Time spent on the prompt and on generation, where the backend reports it.
    pub prompt_secs: Option<f64>,
    pub completion_secs: Option<f64>,
}

pub trait Backend: Send + Sync {
    /// What a judgment records as its model: the GGUF file's name, or the server's model name.
    fn model_name(&self) -> &str;
    /// `local` or `http`.
    fn kind(&self) -> &'static str;
    /// Requests in flight at once that this backend serves best.
    fn default_concurrency(&self) -> usize;
    /// How the backend runs the model (weight format, dtype, file), recorded with a run.
    fn settings(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, anyhow::Result<Completions>>;
}
