//! The OpenAI wire format: request bodies into engine requests, completions into response
//! bodies and stream chunks, llmedge errors into OpenAI-style error responses.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use llmedge::router::RouteDecision;
use llmedge::{
    ChatMessage, Completion, Error, ErrorCode, FinishReason, GenerateOptions, ImageOptions,
    OutputConstraint,
};

/// An error answered to the client: HTTP status plus OpenAI's `{"error": {...}}` body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub code: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            code: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// The client closed its connection before the answer (nginx's 499, which only the
    /// request metrics see).
    pub fn client_closed() -> ApiError {
        let status = StatusCode::from_u16(499).expect("499 is a valid status");
        ApiError::new(
            status,
            "client_closed_request",
            "the client closed the connection",
        )
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": null}})
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let (status, kind) = match e.code() {
            ErrorCode::Busy => (StatusCode::SERVICE_UNAVAILABLE, "server_busy"),
            ErrorCode::Closed => (StatusCode::SERVICE_UNAVAILABLE, "server_shutting_down"),
            ErrorCode::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ErrorCode::SafetyBlocked => (StatusCode::BAD_REQUEST, "content_filter"),
            ErrorCode::InvalidArgument
            | ErrorCode::InvalidUtf8
            | ErrorCode::ContextOverflow
            | ErrorCode::Limit
            | ErrorCode::Tokenize
            | ErrorCode::Grammar
            | ErrorCode::Template
            | ErrorCode::NoChatTemplate
            | ErrorCode::StructuredOutput
            | ErrorCode::Projector
            | ErrorCode::Image
            | ErrorCode::Dicom => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        ApiError {
            status,
            message: e.to_string(),
            kind,
            code: Some(e.code().name().to_owned()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Sampling fields shared by both endpoints (OpenAI's, plus llama-server's `top_k`, `min_p`,
/// `repeat_penalty` and `ignore_eos`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Sampling {
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub min_p: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<OneOrMany>,
    pub logit_bias: Option<HashMap<String, f32>>,
    pub ignore_eos: Option<bool>,
    pub n: Option<u32>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<Value>,
    #[serde(flatten)]
    pub sampling: Sampling,
    pub response_format: Option<ResponseFormat>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    pub tools: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: OneOrMany,
    #[serde(flatten)]
    pub sampling: Sampling,
    pub logprobs: Option<u32>,
    pub echo: Option<bool>,
    pub suffix: Option<String>,
    pub best_of: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    pub model: Option<String>,
    pub input: OneOrMany,
    pub encoding_format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Deserialize)]
pub struct JsonSchemaFormat {
    pub schema: Value,
}

/// The conversation as core chat messages: OpenAI messages whose content is a string or
/// parts (text, and images as `data:` URLs or local paths, decoded under `images`' limits),
/// through core's one parser.
pub fn messages(input: &[Value], images: &ImageOptions) -> Result<Vec<ChatMessage>, ApiError> {
    if input.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty"));
    }
    input
        .iter()
        .map(|m| ChatMessage::from_openai(m, images).map_err(ApiError::from))
        .collect()
}

/// The generation options a request's sampling fields ask for; `max_tokens_limit` bounds
/// `max_tokens`.
pub fn options(s: &Sampling, max_tokens_limit: u32) -> Result<GenerateOptions, ApiError> {
    let mut o = GenerateOptions::default();
    let max_tokens = s.max_completion_tokens.or(s.max_tokens);
    if let Some(n) = max_tokens {
        if n == 0 || n > max_tokens_limit {
            return Err(ApiError::bad_request(format!(
                "max_tokens must be in 1..={max_tokens_limit}, got {n}"
            )));
        }
    }
    o.max_tokens = max_tokens;
    if let Some(t) = s.temperature {
        o.temperature = t;
        o.greedy = t == 0.0;
    }
    if let Some(v) = s.top_p {
        o.top_p = v;
    }
    if let Some(v) = s.top_k {
        o.top_k = v;
    }
    if let Some(v) = s.min_p {
        o.min_p = v;
    }
    if let Some(v) = s.frequency_penalty {
        o.frequency_penalty = v;
    }
    if let Some(v) = s.presence_penalty {
        o.presence_penalty = v;
    }
    if let Some(v) = s.repeat_penalty {
        o.repeat_penalty = v;
    }
    if let Some(seed) = s.seed {
        o.seed = Some(
            u32::try_from(seed)
                .ok()
                .filter(|&s| s != u32::MAX)
                .ok_or_else(|| ApiError::bad_request(format!("seed {seed} is out of range")))?,
        );
    }
    if let Some(stop) = &s.stop {
        let stop = match stop {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        };
        if stop.len() > 16 {
            return Err(ApiError::bad_request("at most 16 stop sequences"));
        }
        o.stop = stop;
    }
    if let Some(bias) = &s.logit_bias {
        for (token, b) in bias {
            let token: i32 = token.parse().map_err(|_| {
                ApiError::bad_request(format!("logit_bias key {token:?} is not a token id"))
            })?;
            o.logit_bias.push((token, *b));
        }
    }
    o.ignore_eos = s.ignore_eos.unwrap_or(false);
    Ok(o)
}

/// How many choices (`n`); at most 8.
pub fn choices(s: &Sampling) -> Result<u32, ApiError> {
    match s.n.unwrap_or(1) {
        n @ 1..=8 => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "n must be in 1..=8, got {n}"
        ))),
    }
}

/// The constraint `response_format` asks for.
pub fn constraint(format: Option<ResponseFormat>) -> Option<OutputConstraint> {
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(OutputConstraint::JsonSchema(json!({"type": "object"}))),
        ResponseFormat::JsonSchema { json_schema } => {
            Some(OutputConstraint::JsonSchema(json_schema.schema))
        }
    }
}

/// OpenAI's name for a finish reason.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    reason.as_str()
}

pub fn usage(completions: &[Completion]) -> Value {
    let prompt = completions.first().map_or(0, |c| c.usage.prompt_tokens);
    let cached = completions
        .first()
        .map_or(0, |c| c.usage.cached_prompt_tokens);
    let completion: u32 = completions.iter().map(|c| c.usage.completion_tokens).sum();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

/// llmedge's own response metadata: the route, the rule that chose it, request ids, safety.
pub fn metadata(decision: &RouteDecision, completions: &[Completion]) -> Value {
    json!({
        "route": decision.route,
        "route_rule": decision.rule,
        "request_ids": completions.iter().map(|c| c.request_id.as_str()).collect::<Vec<_>>(),
        "safety": completions.first().and_then(|c| c.safety.as_ref()),
    })
}
