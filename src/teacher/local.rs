//! The local teacher: a GGUF model run on the CPU by mistral.rs, with no hub access.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::future::BoxFuture;
use mistralrs::{
    Constraint, Model, RequestBuilder, SamplingParams, StopTokens, TextMessageRole, TextMessages,
    TokenSource,
};

use super::backend::{
    Backend, ChatRequest, Completion, Completions, OutputConstraint, TokenLogprob,
};
use super::gguf::{self, Weights};
use super::repetition::AnswerDry;
use crate::domain::prompt::{Message, Role};

/// How the local teacher is loaded.
#[derive(Debug, Clone, Copy)]
pub struct LocalOptions {
    /// Keep the KV cache of shared prompt prefixes (the system prompt and few-shot examples).
    pub prefix_cache: bool,
    /// The weight format to run (see [`Weights`]): Q8_0 by default.
    pub weights: Weights,
    /// The dtype of activations and the KV cache.
    pub activations: Activations,
    /// Requests one engine serves before a fresh one replaces it (see [`RECYCLE_AFTER`]).
    pub recycle_after: usize,
}

/// The dtype mistral.rs computes activations and keeps the KV cache in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Activations {
    F32,
    F16,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            prefix_cache: true,
            weights: Weights::Q8_0,
            activations: Activations::F32,
            recycle_after: RECYCLE_AFTER,
        }
    }
}

pub struct LocalBackend {
    engine: tokio::sync::Mutex<Engine>,
    dir: PathBuf,
    file: String,
    options: LocalOptions,
    /// What the loaded file's weights are (`gguf::weights_identity`): a fresh engine reloads it
    /// from disk, and must load the same weights.
    stamp: String,
    name: String,
    settings: serde_json::Value,
    stop_token_ids: Vec<u32>,
    /// Token id → holds a double quote (where the answer's DRY stops counting a repeat).
    quote_tokens: Arc<Vec<bool>>,
}

/// The name judgments of a GGUF file carry: its file stem, as shipped.
pub fn model_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The copy of `path` in `weights` the teacher loads, prepared once (`gguf::prepare`). A folder
/// that cannot take the converted copy costs speed, not the run: the weights run as they are.
pub fn prepare(path: &Path, weights: Weights) -> PathBuf {
    gguf::prepare(path, weights, &mut |line| eprintln!("{line}")).unwrap_or_else(|e| {
        eprintln!("warning: {e:#}; running the weights as they are");
        path.to_path_buf()
    })
}

impl LocalBackend {
    /// Loads a GGUF file after checking its header. Tokenizer and chat template come from the
    /// GGUF itself; `TokenSource::None` and a local directory mean no hub call is made.
    pub async fn load(path: &Path, options: LocalOptions) -> Result<LocalBackend> {
        let info = gguf::inspect(path)?;
        // Judgments name the model as shipped: the prepared copy holds the same weights in a
        // faster format (recorded in the run's settings), so a run resumes across formats.
        let name = model_name(path);
        let prepared = prepare(path, options.weights);
        let path = prepared.as_path();
        let path = path
            .canonicalize()
            .with_context(|| format!("teacher model {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let file = path
            .file_name()
            .context("model path has no file name")?
            .to_string_lossy()
            .to_string();
        let stamp = gguf::weights_identity(&path)?;
        let model = build(&dir, &file, options).await.with_context(|| {
            format!(
                "teacher model {}: mistral.rs could not load it",
                path.display()
            )
        })?;
        let settings = serde_json::json!({
            "tuned": info.tuned,
            "file": file,
            "weights": format!("{:?}", options.weights).to_lowercase(),
            "activations": format!("{:?}", options.activations).to_lowercase(),
            "prefix_cache": options.prefix_cache,
        });
        Ok(LocalBackend {
            engine: tokio::sync::Mutex::new(Engine {
                model: Arc::new(model),
                served: 0,
                replaced: 0,
            }),
            dir,
            file,
            options,
            stamp,
            name,
            settings,
            stop_token_ids: info.stop_token_ids,
            quote_tokens: Arc::new(info.quote_tokens),
        })
    }
}

/// The running engine, how many requests it has taken, and how many engines came before it.
struct Engine {
    model: Arc<Model>,
    served: usize,
    replaced: usize,
}

/// Requests one engine serves before it is replaced by a fresh one. mistral.rs 0.8.1 keeps the
/// KV cache of every finished sequence for prefix matching and evicts only caches on a GPU
/// (`PrefixCacheManagerV2::evict_caches` counts non-CPU caches), so on a CPU its memory grows
/// by one KV cache per request, and there is no call to clear it. A fresh engine (the model
/// reloaded from the page cache) every this many requests bounds it (BENCHMARKS.md, "Teacher
/// memory on long runs"); the shared prefix is cached again on the first request.
pub const RECYCLE_AFTER: usize = 32;

impl LocalBackend {
    /// How many times the engine has been replaced by a fresh one.
    pub async fn engines_replaced(&self) -> usize {
        self.engine.lock().await.replaced
    }

    /// The engine for the next request: a fresh one every `RECYCLE_AFTER` requests. Requests in
    /// flight on the old one finish there; it is dropped (and its thread ends) after them.
    async fn engine(&self) -> Result<Arc<Model>> {
        let mut e = self.engine.lock().await;
        if e.served >= self.options.recycle_after.max(1) && self.options.prefix_cache {
            // Judgments name the model the run started with: a file rewritten since (a model
            // tuned again to the same path) would answer under that name with other weights.
            let path = self.dir.join(&self.file);
            if gguf::weights_identity(&path).ok().as_ref() != Some(&self.stamp) {
                bail!(
                    "teacher model {}: the file was rewritten or removed while this run was \
                     using it, and its next answers would not be the same model's. What was \
                     judged is kept: run the command again to go on with the file as it is now",
                    path.display()
                );
            }
            e.model = Arc::new(build(&self.dir, &self.file, self.options).await?);
            e.served = 0;
            e.replaced += 1;
        }
        e.served += 1;
        Ok(e.model.clone())
    }
}

fn role(r: Role) -> TextMessageRole {
    match r {
        Role::System => TextMessageRole::System,
        Role::User => TextMessageRole::User,
        Role::Assistant => TextMessageRole::Assistant,
    }
}

impl LocalBackend {
    /// The token ids the engine feeds the model for `messages`, through the GGUF's own
    /// tokenizer and chat template; with `answer_next`, the template's opening of the
    /// assistant's turn follows.
    pub async fn tokenize(&self, messages: &[Message], answer_next: bool) -> Result<Vec<u32>> {
        let mut tm = TextMessages::new();
        for m in messages {
            tm = tm.add_message(role(m.role), &m.text);
        }
        let model = self.engine.lock().await.model.clone();
        model
            .tokenize(either::Either::Left(tm), None, true, answer_next, None)
            .await
            .map_err(|e| anyhow::anyhow!("tokenizing a prompt: {e}"))
    }

    /// Token ids that end a turn or the text.
    pub fn stop_token_ids(&self) -> &[u32] {
        &self.stop_token_ids
    }
}

/// Times the engine is started before a panic while starting it is passed on.
const ENGINE_START_ATTEMPTS: usize = 3;

/// Builds the engine, again when mistral.rs panics while starting it: `MistralRs::new` spawns
/// the engine's thread, which locks the pipeline, and then `try_lock`s the pipeline itself and
/// unwraps, so on a busy machine it sometimes finds the lock taken. The failed attempt's engine
/// thread stays behind, idle, with its copy of the model.
async fn build(dir: &Path, file: &str, options: LocalOptions) -> Result<Model> {
    again_after_panic(ENGINE_START_ATTEMPTS, || build_once(dir, file, options)).await
}

/// Runs the future `start()` makes, again (up to `attempts` in all) when it panics; the last
/// panic is passed on.
async fn again_after_panic<T, F: std::future::Future<Output = T>>(
    attempts: usize,
    mut start: impl FnMut() -> F,
) -> T {
    use futures::FutureExt;
    let mut attempt = 1;
    loop {
        match std::panic::AssertUnwindSafe(start()).catch_unwind().await {
            Ok(done) => return done,
            Err(_) if attempt < attempts => {
                tracing::warn!(
                    "mistral.rs panicked while starting its engine (attempt {attempt} of \
                     {attempts}); starting it again"
                );
                attempt += 1;
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Builds the mistral.rs engine from mistral.rs's own loader, as `GgufModelBuilder` does, but
/// with the activation dtype chosen here: the builder always asks for `Auto`, which on a CPU
/// picks F16 (measured: "DType selected is F16"), so every quantised matmul converts its input
/// and the CPU attention kernel converts every K and V element back to f32.
async fn build_once(dir: &Path, file: &str, options: LocalOptions) -> Result<Model> {
    use mistralrs::core::{
        AutoDeviceMapParams, DeviceMapSetting, GGUFLoaderBuilder, GGUFSpecificConfig,
        MistralRsBuilder,
    };
    use mistralrs::{DefaultSchedulerMethod, ModelDType, SchedulerConfig};
    let loader = GGUFLoaderBuilder::new(
        None,
        None,
        dir.to_string_lossy().to_string(),
        vec![file.to_string()],
        GGUFSpecificConfig { topology: None },
        false,
        None,
    )
    .build();
    let dtype = match options.activations {
        Activations::F32 => ModelDType::F32,
        Activations::F16 => ModelDType::F16,
    };
    let pipeline = loader.load_model_from_hf(
        None,
        TokenSource::None,
        &dtype,
        &mistralrs::Device::Cpu,
        true,
        DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
        None,
        None,
    )?;
    let scheduler = SchedulerConfig::DefaultScheduler {
        method: DefaultSchedulerMethod::Fixed(MAX_SEQS.try_into()?),
    };
    let mut runner = MistralRsBuilder::new(pipeline, scheduler, false, None);
    runner = if options.prefix_cache {
        runner.with_prefix_cache_n(PREFIX_CACHE_SEQS)
    } else {
        runner.with_no_prefix_cache(true)
    };
    Ok(Model::new(runner.build().await))
}

/// Sequences the engine schedules at once.
const MAX_SEQS: usize = 16;
/// Prompt prefixes the engine keeps KV caches for.
const PREFIX_CACHE_SEQS: usize = 16;

/// mistral.rs's greedy sampler reads the logits as if they were probabilities (it takes their
/// log10 for the reported log-probabilities); turning them into probabilities first keeps the
/// argmax and gives real alternatives at every position.
fn softmax(logits: &mistralrs::Tensor, _context: &[u32]) -> mistralrs::Result<mistralrs::Tensor> {
    candle_nn::ops::softmax_last_dim(logits)
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

impl Backend for LocalBackend {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    fn settings(&self) -> serde_json::Value {
        self.settings.clone()
    }

    fn default_concurrency(&self) -> usize {
        // Measured: eight requests at once took longer than eight in a row on 2 cores.
        1
    }

    fn complete(&self, req: ChatRequest) -> BoxFuture<'_, Result<Completions>> {
        Box::pin(async move {
            let greedy = req.temperature.is_none_or(|t| t <= 0.0);
            let mut rb = RequestBuilder::new();
            for m in &req.messages {
                rb = rb.add_message(role(m.role), &m.text);
            }
            let constraint = match &req.constraint {
                OutputConstraint::JsonSchema(schema) => Constraint::JsonSchema(schema.clone()),
                OutputConstraint::OneOf(options) => Constraint::Regex(
                    options
                        .iter()
                        .map(|o| regex_escape(o))
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
            };
            // Greedy is an explicit temperature of 0: left unset, the engine substitutes its own
            // default (temperature 1), and on top of the softmax below that flattens the
            // distribution to near-uniform (measured: every token at p ≈ 5e-5, JSON grammar broken).
            let mut sampling = if greedy {
                SamplingParams::deterministic()
            } else {
                SamplingParams::neutral()
            };
            sampling.temperature = if greedy { Some(0.0) } else { req.temperature };
            sampling.top_n_logprobs = req.top_logprobs;
            sampling.max_len = Some(req.max_tokens);
            sampling.n_choices = req.n.max(1);
            sampling.stop_toks = Some(StopTokens::Ids(self.stop_token_ids.clone()));
            let p = req.penalties;
            sampling.frequency_penalty = (p.frequency != 0.0).then_some(p.frequency);
            sampling.presence_penalty = (p.presence != 0.0).then_some(p.presence);
            rb = rb
                .set_constraint(constraint)
                .return_logprobs(true)
                .set_sampling(sampling);
            // Processors run in the order added: DRY moves logits, softmax comes last.
            if p.dry != 0.0 {
                rb = rb.add_logits_processor(Arc::new(AnswerDry::new(
                    p.dry,
                    self.quote_tokens.clone(),
                )));
            }
            if greedy {
                rb = rb.add_logits_processor(Arc::new(softmax));
            }
            let model = self.engine().await?;
            let response = match model.send_chat_request(rb).await {
                Ok(r) => r,
                // A failure inside generation (the grammar engine refusing a token, say) concerns
                // this pair only: it is recorded with the judgment and the run goes on.
                Err(e) => {
                    let first = e.to_string().lines().next().unwrap_or_default().to_string();
                    return Ok(Completions {
                        choices: vec![Completion {
                            text: String::new(),
                            tokens: vec![],
                            truncated: false,
                            error: Some(format!("generation failed: {first}")),
                        }],
                        prompt_tokens: 0,
                        completion_tokens: 0,
                        prompt_secs: None,
                        completion_secs: None,
                    });
                }
            };
            // mistral.rs reports base-10 logs; everything downstream speaks natural logs.
            let ln10 = std::f64::consts::LN_10;
            let choices = response
                .choices
                .into_iter()
                .map(|c| {
                    let tokens = c
                        .logprobs
                        .and_then(|l| l.content)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|t| TokenLogprob {
                            token: t.token,
                            logprob: t.logprob as f64 * ln10,
                            top: t
                                .top_logprobs
                                .into_iter()
                                .map(|a| (a.bytes.unwrap_or_default(), a.logprob as f64 * ln10))
                                .collect(),
                        })
                        .collect();
                    Completion {
                        text: c.message.content.unwrap_or_default(),
                        tokens,
                        truncated: c.finish_reason == "length",
                        error: None,
                    }
                })
                .collect();
            let u = response.usage;
            Ok(Completions {
                choices,
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                prompt_secs: Some(u.total_prompt_time_sec as f64),
                completion_secs: Some(u.total_completion_time_sec as f64),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::again_after_panic;
    use std::cell::Cell;

    #[tokio::test]
    async fn a_start_that_panics_once_is_tried_again() {
        let calls = Cell::new(0);
        let got = again_after_panic(3, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                assert!(n > 1, "the engine's lock was taken");
                n
            }
        })
        .await;
        assert_eq!((got, calls.get()), (2, 2));
    }

    #[tokio::test]
    #[should_panic(expected = "always")]
    async fn a_start_that_always_panics_passes_the_last_panic_on() {
        again_after_panic(2, || async { panic!("always") }).await
    }
}
