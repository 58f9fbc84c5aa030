//! The OpenAI-compatible backend: any server that speaks /v1/chat/completions (vLLM, llama.cpp
//! server, mistral.rs server). Its log-probabilities are natural logs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
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
    pub fn new(endpoint: &str, model: &str) -> Result<HttpBackend> {
        let base = endpoint.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--endpoint {endpoint}: expected an http:// or https:// URL");
        }
        let url = if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?;
        let key = std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty());
        Ok(HttpBackend {
            client,
            url,
            model: model.to_string(),
            key,
        })
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.text}))
            .collect();
        let schema = match &req.constraint {
            OutputConstraint::JsonSchema(s) => s.clone(),
            OutputConstraint::OneOf(options) => json!({
                "type": "object", "properties": {"label": {"enum": options}}, "required": ["label"]
            }),
        };
        json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature.unwrap_or(0.0),
            "n": req.n.max(1),
            "logprobs": true,
            "top_logprobs": req.top_logprobs.min(20),
            "response_format": {"type": "json_schema", "json_schema": {"name": "judgment", "schema": schema, "strict": true}},
        })
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
            let mut post = self.client.post(&self.url).json(&self.body(&req));
            if let Some(k) = &self.key {
                post = post.bearer_auth(k);
            }
            let response = post
                .send()
                .await
                .with_context(|| format!("teacher endpoint {} is unreachable", self.url))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .with_context(|| format!("reading the answer of {}", self.url))?;
            if !status.is_success() {
                bail!(
                    "teacher endpoint {} answered {status}: {}",
                    self.url,
                    text.chars().take(500).collect::<String>()
                );
            }
            let parsed: Response = serde_json::from_str(&text).with_context(|| {
                format!(
                    "teacher endpoint {}: not an OpenAI chat completion",
                    self.url
                )
            })?;
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
