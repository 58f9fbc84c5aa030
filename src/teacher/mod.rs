//! The ELLM-rele teacher: renders the prompt for a pair, asks a backend (local mistral.rs or an
//! OpenAI-compatible server) under a JSON-schema constraint, and turns the answer into a
//! Rationale and a distribution over the label scale. Output that does not parse is kept with
//! its error; it never stops a run.

pub mod backend;
pub mod calibrate;
pub mod claims;
pub mod gguf;
pub mod http;
pub mod local;
pub mod parse;
pub mod pool;
pub mod repetition;
pub mod run;
pub mod tune;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

pub use crate::domain::{DistSource, Judgment, Mode, Prompt};
pub use backend::{
    Backend, ChatRequest, Completion, Completions, OutputConstraint, Penalties, TokenLogprob,
};

use crate::domain::{LabelScale, Pair, Rationale, ScoreDist};

/// How many alternatives per token the teacher asks for: enough to see every label's first token.
const TOP_LOGPROBS: usize = 10;
/// Temperature of self-consistency samples.
const SAMPLE_TEMPERATURE: f64 = 0.8;

#[derive(Debug, Clone)]
pub struct TeacherConfig {
    pub mode: Mode,
    pub samples: usize,
    pub max_tokens: Option<usize>,
    pub with_examples: bool,
    /// Characters of item details the prompt keeps (default: prompt::ITEM_DETAIL_CHARS).
    pub detail_chars: Option<usize>,
    /// Repetition penalties while decoding (CoT mode: score mode decodes one token).
    pub penalties: Penalties,
    /// Name the query's words the item lacks after the item (`Prompt::configured`).
    pub evidence: bool,
}

impl TeacherConfig {
    /// The prompt this configuration asks with (its hash names the judgments' prompt).
    pub fn prompt(&self, scale: &LabelScale) -> Prompt {
        Prompt::configured(
            scale,
            self.mode,
            self.with_examples,
            // Fewer characters are faster, but on 40 dev pairs 100 instead of 300 agreed with
            // the ESCI labels less often in one sample (5/40 vs 7/40) and more in another
            // (12/40 vs 10/40): the default stays where the agreement was measured.
            self.detail_chars
                .unwrap_or(crate::domain::prompt::ITEM_DETAIL_CHARS),
            self.evidence,
        )
    }
}

pub struct Teacher {
    backend: Arc<dyn Backend>,
    prompt: Prompt,
    scale: LabelScale,
    samples: usize,
    max_tokens: usize,
    penalties: Penalties,
}

/// What one completion says once read.
struct Reading {
    label: Option<String>,
    rationale: Option<Rationale>,
    error: Option<String>,
}

impl Teacher {
    pub fn new(backend: Arc<dyn Backend>, scale: LabelScale, config: &TeacherConfig) -> Teacher {
        let prompt = config.prompt(&scale);
        let max_tokens = config.max_tokens.unwrap_or(match config.mode {
            Mode::Cot => 320,
            // The label's first token names it (see `parse::label_from_prefix`), and its
            // alternatives at that position are the distribution: one decoding step is enough.
            Mode::Score => 1,
        });
        Teacher {
            backend,
            prompt,
            scale,
            samples: config.samples.max(1),
            max_tokens,
            penalties: config.penalties,
        }
    }

    pub fn model_name(&self) -> &str {
        self.backend.model_name()
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn penalties(&self) -> Penalties {
        self.penalties
    }

    /// Judges one pair. Errors only when the backend fails (unreachable server, model error);
    /// output that does not parse comes back as a judgment with `parse_error` set.
    pub async fn judge(&self, pair: &Pair) -> Result<Judgment> {
        let started = Instant::now();
        let pp = self.prompt.for_pair(pair);
        let constraint = match self.prompt.mode {
            Mode::Cot => OutputConstraint::JsonSchema(self.prompt.schema.clone()),
            Mode::Score => OutputConstraint::OneOf(self.prompt.label_names.clone()),
        };
        let sampled = self.samples > 1;
        let request = ChatRequest {
            messages: pp.messages,
            constraint,
            max_tokens: self.max_tokens,
            temperature: sampled.then_some(SAMPLE_TEMPERATURE),
            n: self.samples,
            top_logprobs: TOP_LOGPROBS,
            // Score mode reads the distribution off its one token: a penalty there would move
            // probability between labels by how often each occurs in the prompt.
            penalties: match self.prompt.mode {
                Mode::Cot => self.penalties,
                Mode::Score => Penalties::default(),
            },
        };
        let out = self.backend.complete(request).await?;
        let readings: Vec<Reading> = out.choices.iter().map(|c| self.read(c)).collect();
        let n = self.scale.len();
        let mut j = Judgment {
            label: None,
            distribution: ScoreDist::from_weights(&vec![0.0; n]),
            dist_source: DistSource::None,
            confidence: None,
            rationale: None,
            raw_output: out
                .choices
                .first()
                .map(|c| c.text.clone())
                .unwrap_or_default(),
            parse_error: None,
            // A score-mode answer stops after the label's first token by design.
            truncated: out.choices.iter().any(|c| c.truncated) && self.prompt.mode == Mode::Cot,
            item_truncated: pp.item_truncated,
            prompt_tokens: out.prompt_tokens,
            completion_tokens: out.completion_tokens,
            elapsed_ms: 0,
            prompt_secs: out.prompt_secs,
            completion_secs: out.completion_secs,
        };
        if sampled {
            let mut votes = vec![0.0; n];
            for r in &readings {
                if let Some(i) = r.label.as_deref().and_then(|l| self.scale.index_of_key(l)) {
                    votes[i] += 1.0;
                }
            }
            if votes.iter().sum::<f64>() > 0.0 {
                j.distribution = ScoreDist::from_weights(&votes);
                j.dist_source = DistSource::Votes;
                let (best, share) = j.distribution.argmax();
                j.confidence = Some(share);
                let key = self.scale.labels[best].key.clone();
                if let Some((c, r)) = out
                    .choices
                    .iter()
                    .zip(&readings)
                    .find(|(_, r)| r.label.as_deref() == Some(key.as_str()))
                {
                    j.raw_output = c.text.clone();
                    j.rationale = r.rationale.clone();
                }
                j.label = Some(key);
            } else {
                j.parse_error = readings.iter().find_map(|r| r.error.clone());
            }
        } else if let (Some(c), Some(r)) = (out.choices.first(), readings.into_iter().next()) {
            j.label = r.label;
            j.rationale = r.rationale;
            j.parse_error = r.error;
            if let Some(d) = parse::label_distribution(&c.tokens, &self.scale) {
                j.distribution = d;
                j.dist_source = DistSource::Logprobs;
            } else if let Some(i) = j.label.as_deref().and_then(|l| self.scale.index_of_key(l)) {
                j.distribution = ScoreDist::one_hot(n, i);
                j.dist_source = DistSource::Parsed;
            }
        } else {
            j.parse_error = Some("the backend returned no completion".into());
        }
        j.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(j)
    }

    fn read(&self, c: &Completion) -> Reading {
        if let Some(e) = &c.error {
            return Reading {
                label: None,
                rationale: None,
                error: Some(e.clone()),
            };
        }
        let cut = |e: String| {
            if c.truncated {
                format!("{e} (output hit the {}-token limit)", self.max_tokens)
            } else {
                e
            }
        };
        match self.prompt.mode {
            Mode::Cot => match parse::parse_rationale(&c.text, &self.scale) {
                Ok(r) => Reading {
                    label: Some(r.label.clone()),
                    rationale: Some(r),
                    error: None,
                },
                Err(e) => Reading {
                    label: None,
                    rationale: None,
                    error: Some(cut(e)),
                },
            },
            Mode::Score => match parse::parse_label(&c.text, &self.scale).or_else(|e| {
                parse::label_from_prefix(&c.text, &self.scale)
                    .filter(|_| c.truncated)
                    .ok_or(e)
            }) {
                Ok(l) => Reading {
                    label: Some(l),
                    rationale: None,
                    error: None,
                },
                Err(e) => Reading {
                    label: None,
                    rationale: None,
                    error: Some(cut(e)),
                },
            },
        }
    }
}
/// The local GGUF model (the default) or an OpenAI-compatible endpoint.
pub async fn open_backend(
    model: Option<&std::path::Path>,
    endpoint: Option<&str>,
    api_model: &str,
    limits: http::HttpLimits,
    local: local::LocalOptions,
) -> Result<Arc<dyn Backend>> {
    if let Some(url) = endpoint {
        return Ok(Arc::new(http::HttpBackend::new(url, api_model, limits)?));
    }
    let path: std::path::PathBuf = model
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(crate::models::teacher);
    Ok(Arc::new(local::LocalBackend::load(&path, local).await?))
}
