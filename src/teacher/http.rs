//! The OpenAI-compatible backend: any server that speaks /v1/chat/completions (vLLM, llama.cpp
//! server, mistral.rs server). Its log-probabilities are natural logs.

use std::time::Duration;

use anyhow::{Result, bail};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::backend::{
    Backend, ChatRequest, Completion, Completions, OutputConstraint, TokenLogprob,
};

/// The environment variable holding the API key, if the server wants one.
pub const API_KEY_ENV: &str = "WORKBENCH_API_KEY";

pub struct HttpBackend {
    client: reqwest::Client,
    url: String,
    model: String,
    key: Option<String>,
    limits: HttpLimits,
}

/// How long one request may take, and how often a request that failed in a way that may pass
/// (no answer in time, a dropped connection, 429, 500, 502, 503, 504) is sent in all.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub timeout: Duration,
    pub attempts: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            timeout: Duration::from_secs(300),
            attempts: 4,
        }
    }
}

/// The first wait between attempts; it doubles after each one. A server's Retry-After is
/// obeyed instead, up to `MAX_WAIT`.
/// Room for `{"label": "Substitute"}` and the spaces a server may put between its tokens.
const ONE_OF_ANSWER_TOKENS: usize = 24;
const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The most of a reply that is not a chat completion kept as the judgment's raw output.
const RAW_KEPT: usize = 64 * 1024;

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt, after the server's Retry-After if it gave one.
    Passing {
        why: String,
        wait: Option<Duration>,
    },
    Final(anyhow::Error),
}

#[derive(Deserialize)]
struct Response {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<Logprobs>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Logprobs {
    #[serde(default)]
    content: Option<Vec<TokenEntry>>,
}

#[derive(Deserialize)]
struct TokenEntry {
    token: String,
    /// null stands for -inf (JSON has no infinities).
    #[serde(default)]
    logprob: Option<f64>,
    #[serde(default)]
    top_logprobs: Vec<TopEntry>,
}

/// OpenAI servers send the token text; mistral.rs's server sends the token id with the text
/// in `bytes`.
#[derive(Deserialize)]
struct TopEntry {
    token: Value,
    #[serde(default)]
    logprob: Option<f64>,
    #[serde(default)]
    bytes: Option<Value>,
}

impl TopEntry {
    fn text(&self) -> String {
        match (&self.token, &self.bytes) {
            (Value::String(s), _) => s.clone(),
            (_, Some(Value::String(s))) => s.clone(),
            (t, _) => t.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: usize,
    #[serde(default)]
    completion_tokens: usize,
    /// Only mistral.rs reports this; it also reports base-10 log-probabilities.
    #[serde(default)]
    avg_tok_per_sec: Option<f64>,
}

impl HttpBackend {
    /// `endpoint` is the server's base URL, with or without `/v1`.
    pub fn new(endpoint: &str, model: &str, limits: HttpLimits) -> Result<HttpBackend> {
        let base = endpoint.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--endpoint {endpoint}: expected an http:// or https:// URL");
        }
        let url = if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        };
        let client = reqwest::Client::builder().timeout(limits.timeout).build()?;
        let key = std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty());
        Ok(HttpBackend {
            client,
            url,
            model: model.to_string(),
            key,
            limits: HttpLimits {
                attempts: limits.attempts.max(1),
                ..limits
            },
        })
    }

    /// One request: the reply's body, or why there is none.
    async fn attempt(&self, body: &Value) -> Result<String, Failure> {
        let mut post = self.client.post(&self.url).json(body);
        if let Some(k) = &self.key {
            post = post.bearer_auth(k);
        }
        let passing = |why: String| Failure::Passing { why, wait: None };
        let response = post.send().await.map_err(|e| {
            if e.is_timeout() {
                passing(format!(
                    "no answer within {} s",
                    self.limits.timeout.as_secs_f64()
                ))
            } else if e.is_connect() {
                passing(format!("is unreachable ({e})"))
            } else {
                passing(format!("dropped the connection ({e})"))
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_WAIT));
        let text = response.text().await.map_err(|e| {
            if e.is_timeout() {
                passing(format!(
                    "no answer within {} s",
                    self.limits.timeout.as_secs_f64()
                ))
            } else {
                passing(format!("dropped the connection mid-answer ({e})"))
            }
        })?;
        if status.is_success() {
            return Ok(text);
        }
        let why = format!(
            "answered {status}: {}",
            text.chars().take(500).collect::<String>()
        );
        if status.as_u16() == 429 || [500, 502, 503, 504].contains(&status.as_u16()) {
            Err(Failure::Passing {
                why,
                wait: retry_after,
            })
        } else {
            Err(Failure::Final(anyhow::anyhow!(
                "teacher endpoint {} {why}",
                self.url
            )))
        }
    }

    /// The reply's body, after as many attempts as the limits allow, waiting longer after each.
    async fn reply(&self, body: &Value) -> Result<String> {
        let mut wait = FIRST_WAIT;
        for attempt in 1..=self.limits.attempts {
            match self.attempt(body).await {
                Ok(text) => return Ok(text),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Passing { why, wait: asked }) => {
                    if attempt == self.limits.attempts {
                        bail!(
                            "teacher endpoint {} {why} (attempt {attempt} of {})",
                            self.url,
                            self.limits.attempts
                        );
                    }
                    let pause = asked.unwrap_or(wait);
                    tracing::warn!(
                        "teacher endpoint {} {why}; trying again in {:.1} s",
                        self.url,
                        pause.as_secs_f64()
                    );
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(MAX_WAIT);
                }
            }
        }
        unreachable!("at least one attempt")
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.text}))
            .collect();
        // A choice among labels goes out as a JSON object, `{"label": "…"}`: OpenAI's API has no
        // bare choice. The label's distribution is read where it starts, after the key, so the
        // answer needs room for the whole object, not the one token a local engine decodes.
        let (schema, max_tokens) = match &req.constraint {
            OutputConstraint::JsonSchema(s) => (s.clone(), req.max_tokens),
            OutputConstraint::OneOf(options) => (
                json!({
                    "type": "object", "properties": {"label": {"enum": options}}, "required": ["label"]
                }),
                req.max_tokens.max(ONE_OF_ANSWER_TOKENS),
            ),
        };
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": req.temperature.unwrap_or(0.0),
            "n": req.n.max(1),
            "logprobs": true,
            "top_logprobs": req.top_logprobs.min(20),
            "response_format": {"type": "json_schema", "json_schema": {"name": "judgment", "schema": schema, "strict": true}},
        });
        // Sent only when set: not every server knows them, and DRY is not in OpenAI's API
        // (llama.cpp's server reads `dry_multiplier`).
        let p = req.penalties;
        for (key, value) in [
            ("frequency_penalty", p.frequency),
            ("presence_penalty", p.presence),
            ("dry_multiplier", p.dry),
        ] {
            if value != 0.0 {
                body[key] = json!(value);
            }
        }
        body
    }
}

impl Backend for HttpBackend {
    fn model_name(&self) -> &str {
        &self.model
    }

    fn kind(&self) -> &'static str {
        "http"
    }

    fn default_concurrency(&self) -> usize {
        8
    }

    fn complete(&self, req: ChatRequest) -> BoxFuture<'_, Result<Completions>> {
        Box::pin(async move {
            let text = self.reply(&self.body(&req)).await?;
            let parsed: Response = match serde_json::from_str(&text) {
                Ok(p) => p,
                // Kept as the judgment's raw output with the reason as its parse error: the
                // pair counts as judged (unparsed), and the reply can be read afterwards.
                Err(e) => {
                    let mut raw = text;
                    if raw.len() > RAW_KEPT {
                        let mut cut = RAW_KEPT;
                        while !raw.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        raw.truncate(cut);
                    }
                    return Ok(Completions {
                        choices: vec![Completion {
                            text: raw,
                            tokens: Vec::new(),
                            truncated: false,
                            error: Some(format!(
                                "teacher endpoint {}: not an OpenAI chat completion ({e})",
                                self.url
                            )),
                        }],
                        prompt_tokens: 0,
                        completion_tokens: 0,
                        prompt_secs: None,
                        completion_secs: None,
                    });
                }
            };
            let usage = parsed.usage.unwrap_or(Usage {
                prompt_tokens: 0,
                completion_tokens: 0,
                avg_tok_per_sec: None,
            });
            // OpenAI, vLLM and llama.cpp give natural logs; mistral.rs's server gives base-10 logs.
            let scale = if usage.avg_tok_per_sec.is_some() {
                std::f64::consts::LN_10
            } else {
                1.0
            };
            let choices = parsed
                .choices
                .into_iter()
                .map(|c| Completion {
                    text: c.message.content.unwrap_or_default(),
                    tokens: c
                        .logprobs
                        .and_then(|l| l.content)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|t| TokenLogprob {
                            token: t.token,
                            logprob: t.logprob.map_or(f64::NEG_INFINITY, |l| l * scale),
                            top: t
                                .top_logprobs
                                .iter()
                                .map(|a| {
                                    (a.text(), a.logprob.map_or(f64::NEG_INFINITY, |l| l * scale))
                                })
                                .collect(),
                        })
                        .collect(),
                    truncated: c.finish_reason.as_deref() == Some("length"),
                    error: None,
                })
                .collect();
            Ok(Completions {
                choices,
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                prompt_secs: None,
                completion_secs: None,
            })
        })
    }
}
