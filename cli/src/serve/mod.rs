//! `llmedge serve`: an OpenAI-compatible HTTP server over the serving engine, for appliances.
//!
//! Endpoints: `POST /v1/chat/completions`, `POST /v1/completions` (both with SSE streaming),
//! `POST /v1/embeddings`, `GET /v1/models`; `GET /health` (the process answers), `GET /ready`
//! (models loaded, not draining, queues not full), `GET /metrics` (Prometheus). Every request
//! goes through the router, the safety layer and the audit log (core's [`Deployment`]); this
//! module only translates HTTP. It binds 127.0.0.1 unless configured otherwise, and on SIGTERM
//! or Ctrl-C stops accepting, lets requests in flight finish (up to the grace period), then
//! cancels what is left and flushes the audit log.

mod auth;
mod detach;
mod metrics;
mod openai;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use llmedge::audit::Surface;
use llmedge::deployment::Deployment;
use llmedge::router::RouteDecision;
use llmedge::server_config::ServerConfig;
use llmedge::{
    Completion, EngineRequest, Error, FinishReason, GenerateOptions, ImageOptions, RequestHandle,
    RequestInput, RequestSink,
};

use auth::{Auth, Caller};
use detach::{Connection, DetachLayer};
use metrics::Metrics;
use openai::{ApiError, ChatRequest, CompletionRequest, EmbeddingRequest};

/// Arguments of `llmedge serve`. Flags override the configuration file for every model.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Server configuration (TOML): models, routes, API keys, safety, audit, cache.
    #[arg(long, env = "LLMEDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Serve this GGUF model (without --config: the default model).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Vision projector (mmproj GGUF) of the model: requests may then carry images.
    #[arg(long)]
    mmproj: Option<PathBuf>,
    /// Address to bind (default 127.0.0.1: loopback only).
    #[arg(long)]
    host: Option<String>,
    /// Port (default 8080).
    #[arg(long)]
    port: Option<u16>,
    /// Sequences decoded together per model.
    #[arg(long)]
    slots: Option<u32>,
    /// Context window per slot.
    #[arg(long)]
    ctx_size: Option<u32>,
    /// Threads per model.
    #[arg(short, long)]
    threads: Option<u32>,
    /// Most tokens per decode step.
    #[arg(long)]
    batch_size: Option<u32>,
    /// Most requests waiting per model before 503.
    #[arg(long)]
    max_queue: Option<usize>,
    /// Layers to offload to the GPU (needs a GPU build).
    #[arg(long)]
    gpu_layers: Option<u32>,
    /// Turn the safety layer off.
    #[arg(long)]
    no_safety: bool,
    /// Record every request in the tamper-evident audit log in this directory.
    #[arg(long, env = "LLMEDGE_AUDIT_DIR")]
    audit_dir: Option<PathBuf>,
    /// Require this API key (repeatable; tenant "default", no rate limit).
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// Check the configuration (syntax, references, values) and exit without serving.
    #[arg(long)]
    check_config: bool,
}

impl ServeArgs {
    fn config(&self) -> Result<ServerConfig, Error> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => {
                let path = self.model.clone().unwrap_or_default();
                let id = path
                    .file_stem()
                    .map_or("default".into(), |s| s.to_string_lossy().into_owned());
                ServerConfig::single_model(&id, path)
            }
        };
        if self.config.is_some() {
            if let Some(path) = &self.model {
                config.models[0].path = path.clone();
            }
        }
        if let Some(mmproj) = &self.mmproj {
            config.models[0].mmproj = Some(mmproj.clone());
        }
        for m in &mut config.models {
            m.slots = self.slots.unwrap_or(m.slots);
            m.n_ctx = self.ctx_size.or(m.n_ctx);
            m.threads = self.threads.or(m.threads);
            m.n_batch = self.batch_size.or(m.n_batch);
            m.max_queue = self.max_queue.unwrap_or(m.max_queue);
            m.n_gpu_layers = self.gpu_layers.unwrap_or(m.n_gpu_layers);
        }
        if self.host.is_some() || self.port.is_some() {
            let (host, port) = config
                .server
                .bind
                .rsplit_once(':')
                .map(|(h, p)| (h.to_owned(), p.parse().unwrap_or(8080)))
                .unwrap_or(("127.0.0.1".into(), 8080));
            let host = self.host.clone().unwrap_or(host);
            config.server.bind = format!("{host}:{}", self.port.unwrap_or(port));
        }
        if self.no_safety {
            config.safety.enabled = false;
        }
        if let Some(dir) = &self.audit_dir {
            config.audit.dir = Some(dir.clone());
        }
        for key in &self.api_keys {
            config.api_keys.push(llmedge::server_config::ApiKeyConfig {
                key: Some(key.clone()),
                tenant: "default".into(),
                ..Default::default()
            });
        }
        config.check().map_err(|reason| Error::Config {
            path: self.config.clone().unwrap_or_else(|| "<flags>".into()),
            line: 0,
            reason,
        })?;
        Ok(config)
    }
}

struct AppState {
    deployment: Arc<OnceLock<Deployment>>,
    load_error: OnceLock<String>,
    config: ServerConfig,
    auth: Auth,
    metrics: Metrics,
    draining: AtomicBool,
}

type Shared = Arc<AppState>;

impl AppState {
    /// The deployment, or 503 while loading or draining.
    fn deployment(&self) -> Result<&Deployment, ApiError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_shutting_down",
                "the server is shutting down",
            ));
        }
        self.deployment.get().ok_or_else(|| {
            let why = self
                .load_error
                .get()
                .map_or("the models are still loading".into(), |e| {
                    format!("loading failed: {e}")
                });
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_not_ready", why)
        })
    }
}

/// Run the server until SIGTERM or Ctrl-C.
pub fn run(args: &ServeArgs) -> Result<(), Error> {
    let config = args.config()?;
    if args.check_config {
        println!(
            "configuration OK: {} model(s), {} route(s), {} API key(s), binds {}",
            config.models.len(),
            config.routes.len(),
            config.api_keys.len(),
            config.server.bind
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("llmedge-http")
        .build()
        .map_err(|e| Error::Internal(format!("starting the HTTP runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServerConfig) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .map_err(|e| Error::io(&config.server.bind, e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io(&config.server.bind, e))?;
    eprintln!("llmedge serve: listening on http://{address}");
    let deployment = Arc::new(OnceLock::new());
    let state: Shared = Arc::new(AppState {
        deployment: deployment.clone(),
        load_error: OnceLock::new(),
        auth: Auth::new(&config.api_keys),
        metrics: Metrics::new(deployment),
        draining: AtomicBool::new(false),
        config,
    });
    let loader = state.clone();
    let loading = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        match Deployment::start(&loader.config, Surface::Server, |what| {
            eprintln!("llmedge serve: {what}")
        }) {
            Ok(d) => {
                let _ = loader.deployment.set(d);
                eprintln!(
                    "llmedge serve: ready in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Err(e) => {
                eprintln!("llmedge serve: {e}");
                let _ = loader.load_error.set(e.to_string());
                Err(e)
            }
        }
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(list_models))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
        .layer(DetachLayer)
        .with_state(state.clone());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let draining = state.clone();
    let shutdown = async move {
        wait_for_signal().await;
        eprintln!("llmedge serve: shutting down, draining requests in flight");
        draining.draining.store(true, Ordering::SeqCst);
        let _ = stop_tx.send(true);
    };
    let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
    let canceller = state.clone();
    tokio::spawn(async move {
        if stop_rx.wait_for(|stop| *stop).await.is_ok() {
            tokio::time::sleep(grace).await;
            eprintln!("llmedge serve: grace period over, cancelling what is left");
            if let Some(d) = canceller.deployment.get() {
                tokio::task::block_in_place(|| d.shutdown(false));
            }
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(d) = state.deployment.get() {
        tokio::task::block_in_place(|| d.shutdown(true));
    }
    served.map_err(|e| Error::io("http", e))?;
    match loading.await {
        Ok(Err(e)) if state.deployment.get().is_none() => Err(e),
        _ => Ok(()),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn ready(State(state): State<Shared>) -> Response {
    let status = match state.deployment() {
        Ok(d) => {
            let full: Vec<&str> = d
                .models()
                .iter()
                .zip(&state.config.models)
                .filter(|(m, c)| m.engine.stats().queued as usize >= c.max_queue)
                .map(|(m, _)| m.id.as_str())
                .collect();
            if full.is_empty() {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_busy",
                    format!("queue full: {}", full.join(", ")),
                ))
            }
        }
        Err(e) => Err(e),
    };
    match status {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn metrics_text(State(state): State<Shared>) -> Response {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn list_models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let result = (|| {
        state.auth.check(&headers)?;
        let d = state.deployment()?;
        let mut ids: Vec<String> = d.models().iter().map(|m| m.id.clone()).collect();
        for r in d.router().routes() {
            if !ids.contains(&r.name) {
                ids.push(r.name.clone());
            }
        }
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "llmedge"}))
            .collect();
        Ok::<_, ApiError>(Json(json!({"object": "list", "data": data})).into_response())
    })();
    finish(&state, "models", result)
}

/// Count the response in the metrics and turn an error into its response.
fn finish(state: &AppState, endpoint: &str, result: Result<Response, ApiError>) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    state.metrics.request(endpoint, response.status().as_u16());
    response
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

async fn chat_completions(
    State(state): State<Shared>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let caller = state.auth.check(&headers)?;
        let request: ChatRequest = parse(&body)?;
        if request.logprobs == Some(true) || request.top_logprobs.is_some() {
            return Err(ApiError::bad_request(
                "logprobs are not supported by llmedge",
            ));
        }
        if request.tools.is_some() {
            return Err(ApiError::bad_request(
                "tools are not supported by this endpoint yet",
            ));
        }
        let mut options = openai::options(&request.sampling, state.config.server.max_tokens_limit)?;
        options.constraint = openai::constraint(request.response_format);
        let n = openai::choices(&request.sampling)?;
        let messages = openai::messages(&request.messages, &ImageOptions::default())?;
        let route_text = messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let job = Job {
            kind: Kind::Chat,
            model: request.model,
            inputs: (0..n)
                .map(|_| RequestInput::Chat(messages.clone()))
                .collect(),
            options,
            stream: request.sampling.stream.unwrap_or(false),
            include_usage: request
                .sampling
                .stream_options
                .is_some_and(|o| o.include_usage),
            route_text,
        };
        run_job(state.clone(), caller, &headers, job, connection).await
    }
    .await;
    finish(&state, "chat_completions", result)
}

async fn completions(
    State(state): State<Shared>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let caller = state.auth.check(&headers)?;
        let request: CompletionRequest = parse(&body)?;
        if request.logprobs.is_some_and(|n| n > 0) {
            return Err(ApiError::bad_request(
                "logprobs are not supported by llmedge",
            ));
        }
        if request.echo == Some(true)
            || request.suffix.is_some()
            || request.best_of.is_some_and(|b| b > 1)
        {
            return Err(ApiError::bad_request(
                "echo, suffix and best_of are not supported",
            ));
        }
        let options = openai::options(&request.sampling, state.config.server.max_tokens_limit)?;
        let n = openai::choices(&request.sampling)?;
        let prompts = request.prompt.into_vec();
        if prompts.is_empty() || prompts.len() * n as usize > 8 {
            return Err(ApiError::bad_request("between 1 and 8 prompts × n choices"));
        }
        let route_text = prompts[0].clone();
        let inputs = prompts
            .iter()
            .flat_map(|p| (0..n).map(move |_| RequestInput::Prompt(p.clone())))
            .collect();
        let job = Job {
            kind: Kind::Text,
            model: request.model,
            inputs,
            options,
            stream: request.sampling.stream.unwrap_or(false),
            include_usage: request
                .sampling
                .stream_options
                .is_some_and(|o| o.include_usage),
            route_text,
        };
        run_job(state.clone(), caller, &headers, job, connection).await
    }
    .await;
    finish(&state, "completions", result)
}

async fn embeddings(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let caller = state.auth.check(&headers)?;
        let request: EmbeddingRequest = parse(&body)?;
        let base64 = match request.encoding_format.as_deref() {
            None | Some("float") => false,
            Some("base64") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "encoding_format {other:?}: expected float or base64"
                )))
            }
        };
        let texts = request.input.into_vec();
        if texts.is_empty() || texts.len() > 256 {
            return Err(ApiError::bad_request("input must hold 1 to 256 texts"));
        }
        let worker = state.clone();
        let model = request.model.clone();
        let (decision, vectors) = tokio::task::spawn_blocking(move || {
            let d = worker.deployment()?;
            let decision = d.route(model.as_deref(), &caller.tenant, &texts[0])?;
            let vectors = d.embed(
                &decision.model,
                &texts,
                &caller.tenant,
                &decision.route,
                Surface::Server,
            )?;
            Ok::<_, ApiError>((decision, vectors))
        })
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))??;
        let tokens: u32 = vectors.iter().map(|(_, n)| n).sum();
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(i, (v, _))| {
                let embedding = if base64 {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(v)
                };
                json!({"object": "embedding", "index": i, "embedding": embedding})
            })
            .collect();
        Ok(Json(json!({
            "object": "list",
            "data": data,
            "model": decision.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }))
        .into_response())
    }
    .await;
    finish(&state, "embeddings", result)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

/// One HTTP request's generation work: `inputs` are its choices (n, or prompts × n).
struct Job {
    kind: Kind,
    model: Option<String>,
    inputs: Vec<RequestInput>,
    options: GenerateOptions,
    stream: bool,
    include_usage: bool,
    route_text: String,
}

enum Msg {
    Piece(String),
    Done(Box<Result<Completion, Error>>),
}

/// Sends a request's output to the HTTP task; a closed channel (the client went away)
/// cancels the request.
struct HttpSink {
    tx: mpsc::UnboundedSender<(usize, Msg)>,
    index: usize,
}

impl RequestSink for HttpSink {
    fn piece(&mut self, text: &str) -> bool {
        self.tx
            .send((self.index, Msg::Piece(text.to_owned())))
            .is_ok()
    }

    fn done(self: Box<Self>, result: Result<Completion, Error>) {
        let _ = self.tx.send((self.index, Msg::Done(Box::new(result))));
    }
}

/// Cancels the requests when dropped before they finish (the client disconnected).
struct CancelOnDrop(Vec<Option<RequestHandle>>);

impl CancelOnDrop {
    fn finished(&mut self, index: usize) {
        self.0[index] = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        for handle in self.0.iter().flatten() {
            handle.cancel();
        }
    }
}

/// The caller's own request id (`X-Request-Id`), used as the audit record's request id so the
/// caller's logs and the audit log can be matched (`<id>.<choice>` when a request has several
/// choices).
fn client_request_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("x-request-id") else {
        return Ok(None);
    };
    let id = value.to_str().unwrap_or_default();
    let valid = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if !valid {
        return Err(ApiError::bad_request(
            "x-request-id must be 1 to 128 characters of letters, digits and ._:-",
        ));
    }
    Ok(Some(id.to_owned()))
}

async fn run_job(
    state: Shared,
    caller: Caller,
    headers: &HeaderMap,
    job: Job,
    connection: Connection,
) -> Result<Response, ApiError> {
    let request_id = client_request_id(headers)?;
    let started = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = state.clone();
    let Job {
        kind,
        model,
        inputs,
        options,
        stream,
        include_usage,
        route_text,
    } = job;
    let n = inputs.len();
    let tenant = caller.tenant.clone();
    let (decision, handles) = tokio::task::spawn_blocking(move || {
        let d = worker.deployment()?;
        let decision = d.route(model.as_deref(), &tenant, &route_text)?;
        let mut handles = CancelOnDrop(Vec::with_capacity(n));
        for (index, input) in inputs.into_iter().enumerate() {
            let mut options = GenerateOptions {
                tenant: Some(tenant.clone()),
                ..options.clone()
            };
            if let Some(seed) = options.seed {
                options.seed = Some(seed.wrapping_add(index as u32) % u32::MAX);
            }
            options.request_id = request_id.as_ref().map(|id| match n {
                1 => id.clone(),
                _ => format!("{id}.{index}"),
            });
            let request = EngineRequest {
                input,
                options,
                timeout: None,
            };
            let sink = Box::new(HttpSink {
                tx: tx.clone(),
                index,
            });
            handles.0.push(Some(d.submit(&decision, request, sink)?));
        }
        Ok::<_, ApiError>((decision, handles))
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(e.to_string())))??;
    let model_id = decision.model.clone();
    let id = handles.0[0]
        .as_ref()
        .map_or(String::new(), |h| h.id().to_owned());
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&decision.route) {
        headers.insert("x-llmedge-route", v);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", v);
    }
    let reply = Reply {
        kind,
        id: format!(
            "{}-{id}",
            if kind == Kind::Chat {
                "chatcmpl"
            } else {
                "cmpl"
            }
        ),
        model: model_id,
        created: unix_time(),
        decision,
    };
    if stream {
        let body = sse(state, reply, rx, handles, n, include_usage, started);
        return Ok((headers, body).into_response());
    }
    // A client gone before the answer cancels the requests (dropping `handles`).
    let completions = tokio::select! {
        completions = collect(&state, rx, handles, n, started) => completions?,
        () = connection.closed() => return Err(ApiError::client_closed()),
    };
    Ok((headers, Json(reply.whole(&completions))).into_response())
}

/// What every response and chunk of a job repeats.
struct Reply {
    kind: Kind,
    id: String,
    model: String,
    created: u64,
    decision: RouteDecision,
}

impl Reply {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Text, _) => "text_completion",
        }
    }

    fn whole(&self, completions: &[Completion]) -> Value {
        let choices: Vec<Value> = completions
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let reason = openai::finish_reason(c.finish_reason);
                match self.kind {
                    Kind::Chat => json!({"index": i, "message": {"role": "assistant", "content": c.text},
                        "finish_reason": reason, "logprobs": null}),
                    Kind::Text => json!({"index": i, "text": c.text, "finish_reason": reason, "logprobs": null}),
                }
            })
            .collect();
        json!({
            "id": self.id,
            "object": self.object(false),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": concat!("llmedge-", env!("CARGO_PKG_VERSION")),
            "choices": choices,
            "usage": openai::usage(completions),
            "llmedge": openai::metadata(&self.decision, completions),
        })
    }

    fn chunk(&self, index: usize, text: Option<&str>, finish: Option<FinishReason>) -> Value {
        let reason = finish.map(openai::finish_reason);
        let choice = match self.kind {
            Kind::Chat => {
                let delta = match text {
                    Some(t) => json!({"content": t}),
                    None if finish.is_none() => json!({"role": "assistant", "content": ""}),
                    None => json!({}),
                };
                json!({"index": index, "delta": delta, "finish_reason": reason, "logprobs": null})
            }
            Kind::Text => {
                json!({"index": index, "text": text.unwrap_or(""), "finish_reason": reason, "logprobs": null})
            }
        };
        json!({"id": self.id, "object": self.object(true), "created": self.created,
               "model": self.model, "choices": [choice]})
    }
}

fn record(state: &AppState, completion: &Completion, started: Instant) {
    state.metrics.completion(
        completion.timings.time_to_first_token_ms,
        started.elapsed().as_secs_f64(),
        completion.finish_reason == FinishReason::ContentFilter,
    );
}

async fn collect(
    state: &AppState,
    mut rx: mpsc::UnboundedReceiver<(usize, Msg)>,
    mut handles: CancelOnDrop,
    n: usize,
    started: Instant,
) -> Result<Vec<Completion>, ApiError> {
    let mut done: Vec<Option<Completion>> = (0..n).map(|_| None).collect();
    let mut remaining = n;
    while remaining > 0 {
        let Some((index, msg)) = rx.recv().await else {
            return Err(Error::Internal("the engine stopped".into()).into());
        };
        if let Msg::Done(result) = msg {
            handles.finished(index);
            remaining -= 1;
            let completion = (*result)?;
            record(state, &completion, started);
            done[index] = Some(completion);
        }
    }
    Ok(done.into_iter().flatten().collect())
}

fn sse(
    state: Shared,
    reply: Reply,
    rx: mpsc::UnboundedReceiver<(usize, Msg)>,
    handles: CancelOnDrop,
    n: usize,
    include_usage: bool,
    started: Instant,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let reply = Arc::new(reply);
    let opening: Vec<Event> = match reply.kind {
        Kind::Chat => (0..n)
            .map(|i| Event::default().data(reply.chunk(i, None, None).to_string()))
            .collect(),
        Kind::Text => Vec::new(),
    };
    struct Progress {
        rx: mpsc::UnboundedReceiver<(usize, Msg)>,
        handles: CancelOnDrop,
        remaining: usize,
        completions: Vec<Completion>,
        ended: bool,
    }
    let progress = Progress {
        rx,
        handles,
        remaining: n,
        completions: Vec::new(),
        ended: false,
    };
    let events = stream::unfold(progress, move |mut p| {
        let reply = reply.clone();
        let state = state.clone();
        async move {
            if p.ended {
                return None;
            }
            if p.remaining == 0 {
                p.ended = true;
                let mut tail = Vec::new();
                if include_usage {
                    let mut usage = json!({"id": reply.id, "object": reply.object(true),
                        "created": reply.created, "model": reply.model, "choices": [],
                        "usage": openai::usage(&p.completions)});
                    usage["llmedge"] = openai::metadata(&reply.decision, &p.completions);
                    tail.push(Event::default().data(usage.to_string()));
                }
                tail.push(Event::default().data("[DONE]"));
                return Some((tail, p));
            }
            let Some((index, msg)) = p.rx.recv().await else {
                p.ended = true;
                return Some((
                    vec![error_event(
                        Error::Internal("the engine stopped".into()).into(),
                    )],
                    p,
                ));
            };
            let events = match msg {
                Msg::Piece(text) => {
                    vec![Event::default().data(reply.chunk(index, Some(&text), None).to_string())]
                }
                Msg::Done(result) => {
                    p.handles.finished(index);
                    p.remaining -= 1;
                    match *result {
                        Ok(completion) => {
                            record(&state, &completion, started);
                            let last = reply.chunk(index, None, Some(completion.finish_reason));
                            p.completions.push(completion);
                            vec![Event::default().data(last.to_string())]
                        }
                        Err(e) => {
                            p.ended = true;
                            vec![error_event(e.into())]
                        }
                    }
                }
            };
            Some((events, p))
        }
    });
    let all = stream::iter(vec![opening])
        .chain(events)
        .flat_map(|events| stream::iter(events.into_iter().map(Ok)));
    Sse::new(all)
}

fn error_event(e: ApiError) -> Event {
    Event::default().data(e.body().to_string())
}
