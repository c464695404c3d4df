//! The serving engine: continuous batching of many requests on one model.
//!
//! One scheduler thread per [`Engine`] owns a llama.cpp context with `slots` parallel
//! sequences, each in its own KV stream. Requests wait in a bounded queue that is fair between
//! tenants (round robin); a full queue is [`Error::Busy`], never unbounded memory. Between decode
//! steps, waiting requests take free slots, and every step evaluates one batch: the next token
//! of each generating sequence plus prompt chunks of sequences being prefilled, up to
//! `n_batch` tokens. Each sequence has its own sampler, grammar, stop strings, output filter,
//! cancellation and deadline: a request behaves exactly as it would on a [`Session`], through the
//! same per-request pipeline ([`crate::generation`]).
//!
//! **Prefix reuse.** A slot keeps the KV of its last request. A new request takes the lowest
//! free slot (so the running sequences keep consecutive ids, which llama.cpp needs to evaluate
//! a batch in one pass) and keeps what that slot's cache shares with its prompt, or copies a
//! longer shared prefix in from another slot or from the host-memory [`PrefixCache`] (LRU
//! under a byte budget, fed with the caches of slots that are about to be overwritten),
//! whichever shares most. Only the rest of the prompt is evaluated.
//!
//! **Adapters.** llama.cpp applies LoRA adapters to a whole context, so sequences are
//! scheduled in adapter groups: a step only evaluates sequences of one adapter set, and when
//! other sets wait, the group changes every `adapter_quantum` steps (round robin, oldest first).
//!
//! Callbacks ([`RequestSink`]) run on the scheduler thread: keep them short (send to a channel).

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::audit::TokenCounts;
use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::{Error, Result};
use crate::generation::{Generation, Step};
use crate::image_input::Image;
use crate::lora::{apply_adapter_set, set_key, validate_set, AdapterSet};
use crate::model::{check_threads, Model, SequencePermit, Token};
use crate::prefix_cache::{AdapterKey, PrefixCache, SeqCache};
use crate::request_guard::{Checked, GuardConfig, RequestGuard};
use crate::request_input::{
    admit, prepare, prepare_sampling, CheckedPrompt, Input, Prepared, Prompt,
};
use crate::response_cache::{
    cacheable, request_key, CachedResponse, ResponseCache, ResponseCacheConfig,
};
use crate::sampling::GenerateOptions;
use crate::session::{Completion, FinishReason, SessionOptions};

/// How to build an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// As for a session: `n_ctx` is each sequence's context window (default: the model's
    /// training context, at most 4096), `n_batch` the most tokens one decode step evaluates
    /// (the max-batch-tokens budget, default 512), plus threads, chat template, safety,
    /// audit, tenant, surface and the default adapters.
    pub session: SessionOptions,
    /// Sequences decoded together (1..=256).
    pub slots: u32,
    /// Most requests waiting for a slot; one more is [`Error::Busy`].
    pub max_queue: usize,
    /// Deadline of a request from its submission, unless it names its own; `None` = none.
    pub timeout: Option<Duration>,
    /// Host memory for cached prefixes, in bytes (0 turns the host cache off; slots still keep
    /// their own last prefix).
    pub prefix_cache_bytes: usize,
    /// Shorter prefixes are not worth a host-cache entry, nor is a slot's cache when reusing
    /// the slot would cut fewer tokens than this from it.
    pub prefix_cache_min_tokens: usize,
    /// Decode steps an adapter group runs while another group waits.
    pub adapter_quantum: u32,
    /// Answer repeated deterministic requests from this cache (see
    /// [`crate::response_cache`]); `None` = no response cache.
    pub response_cache: Option<ResponseCacheConfig>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            session: SessionOptions::default(),
            slots: 4,
            max_queue: 64,
            timeout: None,
            prefix_cache_bytes: 256 << 20,
            prefix_cache_min_tokens: 32,
            adapter_quantum: 16,
            response_cache: None,
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone)]
pub enum RequestInput {
    /// Raw text (tokenized with the model's BOS, special tokens parsed).
    Prompt(String),
    /// Tokens, used as given.
    Tokens(Vec<Token>),
    /// A conversation, rendered with the chat template (messages may carry images).
    Chat(Vec<ChatMessage>),
    /// Raw text with one [`MEDIA_MARKER`](crate::MEDIA_MARKER) per image, and the images.
    PromptWithImages(String, Vec<Image>),
}

/// One request to an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineRequest {
    pub input: RequestInput,
    pub options: GenerateOptions,
    /// Deadline from submission, overriding [`EngineOptions::timeout`].
    pub timeout: Option<Duration>,
}

impl EngineRequest {
    /// A raw-text request.
    pub fn prompt(text: impl Into<String>, options: GenerateOptions) -> EngineRequest {
        EngineRequest {
            input: RequestInput::Prompt(text.into()),
            options,
            timeout: None,
        }
    }

    /// A chat request.
    pub fn chat(messages: Vec<ChatMessage>, options: GenerateOptions) -> EngineRequest {
        EngineRequest {
            input: RequestInput::Chat(messages),
            options,
            timeout: None,
        }
    }

    /// Builder-style setter for the deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> EngineRequest {
        self.timeout = Some(timeout);
        self
    }
}

/// Where a request's output goes. Both methods run on the engine's scheduler thread (or, for
/// a request the safety policy refuses, on the thread that submits it).
pub trait RequestSink: Send {
    /// A piece of text that passed the output filter; return `false` to cancel the request
    /// (the completion then holds exactly the pieces delivered).
    fn piece(&mut self, text: &str) -> bool;
    /// The request ended: called exactly once, unless `submit` itself returned an error.
    fn done(self: Box<Self>, result: Result<Completion>);
}

struct FnSink<P, D> {
    piece: P,
    done: Option<D>,
}

impl<P, D> RequestSink for FnSink<P, D>
where
    P: FnMut(&str) -> bool + Send,
    D: FnOnce(Result<Completion>) + Send,
{
    fn piece(&mut self, text: &str) -> bool {
        (self.piece)(text)
    }

    fn done(mut self: Box<Self>, result: Result<Completion>) {
        if let Some(done) = self.done.take() {
            done(result);
        }
    }
}

/// A submitted request: cancel it from any thread.
#[derive(Debug, Clone)]
pub struct RequestHandle {
    id: String,
    cancel: Arc<AtomicBool>,
    shared: Weak<Shared>,
}

impl RequestHandle {
    /// The request id (as in the audit log).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stop the request: a queued one ends without running, a running one before its next
    /// token; it finishes with [`FinishReason::Cancelled`]. A no-op once it has ended.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        if let Some(shared) = self.shared.upgrade() {
            shared.wake.notify_all();
        }
    }
}

enum StreamEvent {
    Piece(String),
    Done(Box<Result<Completion>>),
}

struct ChannelSink(mpsc::Sender<StreamEvent>);

impl RequestSink for ChannelSink {
    fn piece(&mut self, text: &str) -> bool {
        self.0.send(StreamEvent::Piece(text.to_owned())).is_ok()
    }

    fn done(self: Box<Self>, result: Result<Completion>) {
        let _ = self.0.send(StreamEvent::Done(Box::new(result)));
    }
}

/// A request's pieces as an iterator (blocking). Dropping it cancels the request.
pub struct EngineStream {
    rx: mpsc::Receiver<StreamEvent>,
    handle: RequestHandle,
    ended: bool,
    result: Option<Completion>,
}

impl EngineStream {
    /// The handle of the request.
    pub fn handle(&self) -> &RequestHandle {
        &self.handle
    }

    /// Wait for the end (discarding pieces not yet read) and return the result.
    pub fn completion(mut self) -> Result<Completion> {
        for piece in self.by_ref() {
            piece?;
        }
        self.result
            .take()
            .ok_or_else(|| Error::Internal("the engine stopped before the request ended".into()))
    }
}

impl Iterator for EngineStream {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        if self.ended {
            return None;
        }
        match self.rx.recv() {
            Ok(StreamEvent::Piece(piece)) => Some(Ok(piece)),
            Ok(StreamEvent::Done(result)) => {
                self.ended = true;
                match *result {
                    Ok(completion) => {
                        self.result = Some(completion);
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            Err(_) => {
                self.ended = true;
                None
            }
        }
    }
}

impl Drop for EngineStream {
    fn drop(&mut self) {
        if !self.ended {
            self.handle.cancel();
        }
    }
}

/// Counters of an engine, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    pub slots: u32,
    /// Sequences in slots now (prefilling or generating).
    pub active: u32,
    /// Requests waiting for a slot now.
    pub queued: u32,
    /// Requests ended (any outcome) since start.
    pub finished: u64,
    /// Requests refused because the queue was full.
    pub rejected_busy: u64,
    /// Requests that ran past their deadline.
    pub timed_out: u64,
    /// Prompt tokens of started requests, and how many of them were reused from a cache.
    pub prompt_tokens: u64,
    pub cached_prompt_tokens: u64,
    /// Requests that reused a cached prompt prefix.
    pub prefix_hits: u64,
    /// Tokens generated.
    pub generated_tokens: u64,
    /// Decode steps run.
    pub decode_steps: u64,
    /// Requests answered from the response cache.
    pub response_cache_hits: u64,
    /// Prefixes held in host memory, and their size.
    pub prefix_cache_entries: u64,
    pub prefix_cache_bytes: u64,
}

#[derive(Default)]
struct Counters {
    finished: AtomicU64,
    rejected_busy: AtomicU64,
    timed_out: AtomicU64,
    prompt_tokens: AtomicU64,
    cached_prompt_tokens: AtomicU64,
    prefix_hits: AtomicU64,
    generated_tokens: AtomicU64,
    decode_steps: AtomicU64,
    response_cache_hits: AtomicU64,
    active: AtomicU64,
    prefix_cache_entries: AtomicU64,
    prefix_cache_bytes: AtomicU64,
}

/// A request between submission and its slot.
struct Queued {
    generation: Generation,
    tokens: Vec<Token>,
    adapters: AdapterSet,
    key: AdapterKey,
    sink: Box<dyn RequestSink>,
    cancel: Arc<AtomicBool>,
    deadline: Option<Instant>,
    /// The prompt text (with one image marker per image) and images, for a vision request;
    /// then `tokens` is empty.
    media: Option<(String, Vec<Image>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    Open,
    /// Accept nothing new; finish what is queued and running.
    Drain,
    /// Accept nothing new; cancel everything.
    Cancel,
}

struct Queue {
    /// Waiting requests per tenant; the front tenant is served next.
    tenants: VecDeque<(String, VecDeque<Queued>)>,
    len: usize,
    closing: Closing,
    /// The scheduler has exited.
    stopped: bool,
}

impl Queue {
    /// The next request in tenant round robin.
    fn pop(&mut self) -> Option<Queued> {
        let (tenant, mut waiting) = self.tenants.pop_front()?;
        let next = waiting.pop_front();
        if !waiting.is_empty() {
            self.tenants.push_back((tenant, waiting));
        }
        self.len -= usize::from(next.is_some());
        next
    }

    /// Remove the requests that were cancelled or are past their deadline.
    fn take_expired(&mut self, now: Instant) -> Vec<(Queued, bool)> {
        let mut out = Vec::new();
        for (_, waiting) in &mut self.tenants {
            let mut kept = VecDeque::with_capacity(waiting.len());
            for q in waiting.drain(..) {
                if q.cancel.load(Ordering::SeqCst) {
                    out.push((q, false));
                } else if q.deadline.is_some_and(|d| d <= now) {
                    out.push((q, true));
                } else {
                    kept.push_back(q);
                }
            }
            *waiting = kept;
        }
        self.tenants.retain(|(_, w)| !w.is_empty());
        self.len -= out.len();
        out
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.tenants
            .iter()
            .flat_map(|(_, w)| w.iter().filter_map(|q| q.deadline))
            .min()
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A continuous-batching engine on one model. `Send + Sync`: share it between threads (in an
/// `Arc`) and submit from anywhere. Dropping it cancels what is left and stops the scheduler.
pub struct Engine {
    shared: Arc<Shared>,
    model: Model,
    config: GuardConfig,
    chat_template: Option<ChatTemplate>,
    adapters: AdapterSet,
    n_ctx: u32,
    slots: u32,
    max_queue: usize,
    timeout: Option<Duration>,
    /// The response cache and the model's SHA-256 (part of every key).
    response_cache: Option<(ResponseCacheConfig, String)>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("slots", &self.slots)
            .field("n_ctx", &self.n_ctx)
            .finish()
    }
}

impl Engine {
    /// Create the engine: one context with `slots` sequences of `n_ctx` positions each, and
    /// its scheduler thread.
    pub fn new(model: &Model, options: EngineOptions) -> Result<Engine> {
        let s = &options.session;
        let info = model.info();
        let n_ctx = s.n_ctx.unwrap_or(info.n_ctx_train.min(4096));
        let slots = options.slots;
        if !(1..=256).contains(&slots) {
            return Err(Error::InvalidArgument(format!(
                "slots must be in 1..=256, got {slots}"
            )));
        }
        if n_ctx < 8 {
            return Err(Error::InvalidArgument(format!(
                "n_ctx must be at least 8, got {n_ctx}"
            )));
        }
        let n_batch = s.n_batch.unwrap_or(512);
        if n_batch < slots {
            return Err(Error::InvalidArgument(format!(
                "n_batch ({n_batch}) must be at least the number of slots ({slots}): every step \
                 decodes one token of each sequence"
            )));
        }
        if options.adapter_quantum == 0 {
            return Err(Error::InvalidArgument(
                "adapter_quantum must be at least 1".into(),
            ));
        }
        let threads = s.threads.unwrap_or(model.options().threads);
        let threads_batch = s.threads_batch.unwrap_or(threads);
        check_threads(threads)?;
        check_threads(threads_batch)?;
        validate_set(model, &s.adapters)?;
        let response_cache = match options.response_cache {
            Some(config) => Some((config, model.sha256()?)),
            None => None,
        };
        // llama.cpp positions are i32.
        let total = n_ctx
            .checked_mul(slots)
            .filter(|&t| t <= i32::MAX as u32)
            .ok_or_else(|| Error::InvalidArgument("slots × n_ctx is over 2^31 - 1".into()))?;
        // A step never holds more tokens than the context does (as for a session).
        let n_batch = n_batch.min(total);
        let n_ubatch = s.n_ubatch.unwrap_or(512).min(n_batch);
        let sequences = model.reserve_sequences(slots)?;
        model.check_kv_budget(total)?;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(total))
            .with_n_seq_max(slots)
            .with_kv_unified(false)
            .with_n_batch(n_batch)
            .with_n_ubatch(n_ubatch)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads_batch as i32);
        let ctx = model.new_context(params)?;
        // SAFETY: the context borrows the weights in the model's `Arc` allocation, which never
        // moves and which the worker's `model` field keeps alive until after `ctx` drops
        // (fields drop in declaration order).
        let ctx: LlamaContext<'static> = unsafe { std::mem::transmute(ctx) };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                tenants: VecDeque::new(),
                len: 0,
                closing: Closing::Open,
                stopped: false,
            }),
            wake: Condvar::new(),
            counters: Counters::default(),
        });
        let worker = Worker {
            ctx,
            batch: LlamaBatch::new(n_batch as usize, 1),
            model: model.clone(),
            slots: (0..slots).map(|_| Slot::default()).collect(),
            prefix: PrefixCache::new(options.prefix_cache_bytes, options.prefix_cache_min_tokens),
            applied: Vec::new(),
            group: None,
            group_steps: 0,
            quantum: options.adapter_quantum,
            prefix_reuse: options.session.prefix_reuse,
            n_batch: n_batch as usize,
            shared: shared.clone(),
            clock: 0,
            _sequences: sequences,
        };
        let handle = std::thread::Builder::new()
            .name("llmedge-engine".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::Internal(format!("starting the scheduler thread: {e}")))?;
        Ok(Engine {
            shared,
            model: model.clone(),
            config: GuardConfig {
                safety: options.session.safety,
                audit: options.session.audit,
                tenant: options.session.tenant,
                surface: options.session.surface,
            },
            chat_template: options.session.chat_template,
            adapters: options.session.adapters,
            n_ctx,
            slots,
            max_queue: options.max_queue,
            timeout: options.timeout,
            response_cache,
            worker: Mutex::new(Some(handle)),
        })
    }

    /// The model this engine runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Each sequence's context window.
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// Sequences decoded together.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// Submit a request; its output goes to `sink`. Checks (safety, options, grammar,
    /// adapters, context fit, queue space) run here, on the calling thread: an error returned
    /// here is audited and the sink is dropped without a call. A request the safety policy
    /// refuses is answered at once with the refusal (finish reason `content_filter`).
    pub fn submit(
        &self,
        request: EngineRequest,
        sink: Box<dyn RequestSink>,
    ) -> Result<RequestHandle> {
        let started = Instant::now();
        let EngineRequest {
            input,
            options,
            timeout,
        } = request;
        if self.shared.lock().closing != Closing::Open {
            return Err(Error::Closed("engine"));
        }
        let mut guard = RequestGuard::begin(&self.config, &options);
        let input = match &input {
            RequestInput::Prompt(text) => Input::Prompt(Prompt::Text(text)),
            RequestInput::Tokens(tokens) => Input::Prompt(Prompt::Tokens(tokens)),
            RequestInput::Chat(messages) => Input::Chat(messages),
            RequestInput::PromptWithImages(text, images) => {
                Input::Prompt(Prompt::WithImages { text, images })
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let handle = RequestHandle {
            id: guard.request_id.clone(),
            cancel: cancel.clone(),
            shared: Arc::downgrade(&self.shared),
        };
        let prompt = match admit(&mut guard, &self.model, self.chat_template.as_ref(), input)? {
            Checked::Allowed(prompt) => prompt,
            Checked::Refused(message) => {
                let mut generation = Generation::refused(message, guard);
                deliver_refusal(&self.model, &mut generation, sink);
                self.shared
                    .counters
                    .finished
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(handle);
            }
        };
        // A prompt with images is tokenized and evaluated by the projector in its slot.
        let (prepared, media) = match prompt {
            CheckedPrompt::WithImages { text, images } => {
                let prepared = self.model.require_projector().and_then(|_| {
                    prepare_sampling(&self.model, &options, &self.adapters, &mut guard)
                });
                let prepared = prepared.map(|(sampler, adapters)| Prepared {
                    tokens: Vec::new(),
                    sampler,
                    adapters,
                });
                (prepared, Some((text, images)))
            }
            prompt => (
                prepare(
                    &self.model,
                    prompt.as_prompt(),
                    &options,
                    &self.adapters,
                    self.n_ctx,
                    &mut guard,
                ),
                None,
            ),
        };
        let Prepared {
            tokens,
            sampler,
            adapters,
        } = match prepared {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("error:{}", e.code().name());
                guard.audit(&self.model, "", TokenCounts::default(), &reason)?;
                return Err(e);
            }
        };
        let tenant = options
            .tenant
            .clone()
            .unwrap_or_else(|| self.config.tenant.clone());
        let mut generation = Generation::new(
            &options,
            sampler,
            guard,
            tokens.len(),
            self.n_ctx as usize,
            started,
        );
        let mut sink = sink;
        let cacheable_input = media.is_none();
        if let (Some((config, model_sha256)), true) = (&self.response_cache, cacheable_input) {
            let scope = (!config.share_across_tenants).then_some(tenant.as_str());
            if let Some(key) = request_key(model_sha256, &adapters, &tokens, &options, scope) {
                match config.cache.get(&key) {
                    Ok(Some(hit)) => {
                        generation.replay(&hit);
                        deliver_refusal(&self.model, &mut generation, sink);
                        self.shared
                            .counters
                            .finished
                            .fetch_add(1, Ordering::Relaxed);
                        self.shared
                            .counters
                            .response_cache_hits
                            .fetch_add(1, Ordering::Relaxed);
                        return Ok(handle);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("response cache lookup failed: {e}"),
                }
                sink = Box::new(CachingSink {
                    inner: sink,
                    cache: config.cache.clone(),
                    key,
                });
            }
        }
        let queued = Queued {
            generation,
            key: set_key(&adapters),
            tokens,
            adapters,
            sink,
            cancel,
            // A deadline too far to represent is no deadline (`Duration::MAX` must not panic).
            deadline: timeout
                .or(self.timeout)
                .and_then(|t| started.checked_add(t)),
            media,
        };
        let mut queue = self.shared.lock();
        if queue.closing != Closing::Open {
            drop(queue);
            return Err(reject(
                &self.model,
                queued,
                "error:closed",
                Error::Closed("engine"),
            ));
        }
        if queue.len >= self.max_queue {
            drop(queue);
            self.shared
                .counters
                .rejected_busy
                .fetch_add(1, Ordering::Relaxed);
            let e = Error::Busy(format!(
                "{} requests are waiting (the queue holds {})",
                self.max_queue, self.max_queue
            ));
            return Err(reject(&self.model, queued, "error:busy", e));
        }
        match queue.tenants.iter_mut().find(|(t, _)| *t == tenant) {
            Some((_, waiting)) => waiting.push_back(queued),
            None => queue.tenants.push_back((tenant, VecDeque::from([queued]))),
        }
        queue.len += 1;
        drop(queue);
        self.shared.wake.notify_all();
        Ok(handle)
    }

    /// [`Engine::submit`] with closures: `on_piece` for each piece (return `false` to
    /// cancel), `on_done` once at the end.
    pub fn submit_with(
        &self,
        request: EngineRequest,
        on_piece: impl FnMut(&str) -> bool + Send + 'static,
        on_done: impl FnOnce(Result<Completion>) + Send + 'static,
    ) -> Result<RequestHandle> {
        self.submit(
            request,
            Box::new(FnSink {
                piece: on_piece,
                done: Some(on_done),
            }),
        )
    }

    /// Submit and read the pieces as a blocking iterator.
    pub fn stream(&self, request: EngineRequest) -> Result<EngineStream> {
        let (tx, rx) = mpsc::channel();
        let handle = self.submit(request, Box::new(ChannelSink(tx)))?;
        Ok(EngineStream {
            rx,
            handle,
            ended: false,
            result: None,
        })
    }

    /// Submit and wait for the whole result.
    pub fn generate(&self, request: EngineRequest) -> Result<Completion> {
        self.stream(request)?.completion()
    }

    /// Counters and gauges, for metrics.
    pub fn stats(&self) -> EngineStats {
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStats {
            slots: self.slots,
            active: load(&c.active) as u32,
            queued: self.shared.lock().len as u32,
            finished: load(&c.finished),
            rejected_busy: load(&c.rejected_busy),
            timed_out: load(&c.timed_out),
            prompt_tokens: load(&c.prompt_tokens),
            cached_prompt_tokens: load(&c.cached_prompt_tokens),
            prefix_hits: load(&c.prefix_hits),
            generated_tokens: load(&c.generated_tokens),
            decode_steps: load(&c.decode_steps),
            response_cache_hits: load(&c.response_cache_hits),
            prefix_cache_entries: load(&c.prefix_cache_entries),
            prefix_cache_bytes: load(&c.prefix_cache_bytes),
        }
    }

    /// Stop accepting requests and wait for the scheduler to end: with `drain`, after every
    /// queued and running request has finished; without, after cancelling them all (each
    /// still gets its `done`). Later submissions fail with [`Error::Closed`].
    pub fn shutdown(&self, drain: bool) {
        {
            let mut queue = self.shared.lock();
            if queue.closing != Closing::Cancel {
                queue.closing = if drain {
                    Closing::Drain
                } else {
                    Closing::Cancel
                };
            }
        }
        self.shared.wake.notify_all();
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = worker {
            let _ = worker.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

/// Stores a finished request's answer in the response cache, then hands the result on.
struct CachingSink {
    inner: Box<dyn RequestSink>,
    cache: Arc<dyn ResponseCache>,
    key: String,
}

impl RequestSink for CachingSink {
    fn piece(&mut self, text: &str) -> bool {
        self.inner.piece(text)
    }

    fn done(self: Box<Self>, result: Result<Completion>) {
        if let Ok(completion) = &result {
            if cacheable(completion) {
                if let Err(e) = self.cache.put(&self.key, &CachedResponse::from(completion)) {
                    tracing::warn!("response cache store failed: {e}");
                }
            }
        }
        self.inner.done(result);
    }
}

/// Audit a request refused at submission and return its error.
fn reject(model: &Model, mut queued: Queued, reason: &str, e: Error) -> Error {
    queued.generation.fail_as(reason);
    if let Err(audit) = queued.generation.audit(model) {
        return audit;
    }
    e
}

/// Hand a request answered at submission (a refusal, a cached answer) to its sink and end it.
fn deliver_refusal(model: &Model, generation: &mut Generation, mut sink: Box<dyn RequestSink>) {
    while let Step::Piece(piece) = generation.poll() {
        if !sink.piece(&piece) {
            break;
        }
    }
    sink.done(generation.completion(model));
}

/// A sequence in a slot.
struct Active {
    queued: Queued,
    /// Prompt tokens in the KV so far (prefill is done when this is the prompt length).
    prefilled: usize,
    cached: usize,
    prompt_started: Instant,
    /// Admission order, for prefill order and group fairness.
    order: u64,
}

#[derive(Default)]
struct Slot {
    cache: SeqCache,
    active: Option<Active>,
}

/// How a sequence's request ended, for its sink.
enum Outcome {
    /// Generation finished (or was cancelled through the handle).
    Finished,
    /// The sink returned false: keep exactly what it received.
    SinkStopped,
    TimedOut,
    Failed(Error),
}

/// What one batch entry was.
enum Entry {
    Token {
        slot: usize,
        token: Token,
        index: i32,
    },
    Prefill {
        slot: usize,
        n: usize,
        index: i32,
    },
}

struct Worker {
    // Field order matters: `ctx` borrows the weights that `model` keeps alive, so it drops first.
    ctx: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
    model: Model,
    slots: Vec<Slot>,
    prefix: PrefixCache,
    /// The adapter set applied to the context now.
    applied: AdapterKey,
    group: Option<AdapterKey>,
    group_steps: u32,
    quantum: u32,
    /// Reuse cached prefixes (`SessionOptions::prefix_reuse`).
    prefix_reuse: bool,
    n_batch: usize,
    shared: Arc<Shared>,
    clock: u64,
    /// The slots' place under the model's `max_sessions`, given back when the worker ends.
    _sequences: SequencePermit,
}

impl Worker {
    /// The scheduler loop. A panic inside a step (a bug) must not leave requests waiting on a
    /// dead thread: the requests in slots fail with [`Error::Internal`], every cache is
    /// emptied (its content is unknown), and scheduling goes on.
    fn run(mut self) {
        loop {
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.iteration()));
            match step {
                Ok(true) => return,
                Ok(false) => {}
                Err(panic) => {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    tracing::error!("llmedge engine: a scheduling step panicked: {why}");
                    self.recover(&why);
                }
            }
        }
    }

    fn recover(&mut self, why: &str) {
        for i in 0..self.slots.len() {
            let e = Error::Internal(format!("the engine's scheduler failed: {why}"));
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.finish(i, Outcome::Failed(e))
            }));
            self.slots[i].cache = SeqCache::default();
        }
        self.ctx.clear_kv_cache();
        self.prefix.clear();
        self.applied.clear();
        let _ = self.ctx.set_lora_adapters(&[]);
        self.group = None;
    }

    /// One turn of the loop; `true` once the engine has stopped.
    fn iteration(&mut self) -> bool {
        {
            let (incoming, expired, closing) = self.collect();
            for (queued, timed_out) in expired {
                self.end_queued(queued, timed_out);
            }
            for queued in incoming {
                self.admit(queued);
            }
            if closing == Closing::Cancel {
                for i in 0..self.slots.len() {
                    let Some(active) = &mut self.slots[i].active else {
                        continue;
                    };
                    active.queued.generation.stop(FinishReason::Cancelled);
                    if active.prefilled < active.queued.tokens.len() {
                        self.finish(i, Outcome::Finished);
                    }
                }
            }
            let progressed = self.step();
            if !progressed && self.active() == 0 {
                let mut queue = self.shared.lock();
                if queue.closing != Closing::Open && queue.len == 0 {
                    queue.stopped = true;
                    return true;
                }
            }
        }
        false
    }

    fn active(&self) -> usize {
        self.slots.iter().filter(|s| s.active.is_some()).count()
    }

    /// Take requests for free slots (waiting when there is nothing to do), and the queued
    /// requests that were cancelled or expired.
    fn collect(&mut self) -> (Vec<Queued>, Vec<(Queued, bool)>, Closing) {
        let mut queue = self.shared.lock();
        loop {
            let expired = queue.take_expired(Instant::now());
            if queue.closing == Closing::Cancel {
                let mut all = expired;
                while let Some(q) = queue.pop() {
                    all.push((q, false));
                }
                return (Vec::new(), all, Closing::Cancel);
            }
            let free = self.slots.iter().filter(|s| s.active.is_none()).count();
            let mut incoming = Vec::new();
            while incoming.len() < free {
                match queue.pop() {
                    Some(q) => incoming.push(q),
                    None => break,
                }
            }
            let idle = incoming.is_empty() && expired.is_empty() && self.active() == 0;
            if !idle || queue.closing != Closing::Open {
                return (incoming, expired, queue.closing);
            }
            queue = match queue.next_deadline() {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    self.shared
                        .wake
                        .wait_timeout(queue, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self
                    .shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// End a request that never got a slot.
    fn end_queued(&mut self, mut queued: Queued, timed_out: bool) {
        let result = if timed_out {
            self.shared
                .counters
                .timed_out
                .fetch_add(1, Ordering::Relaxed);
            queued.generation.fail_as("error:timeout");
            queued.generation.audit(&self.model).and(Err(Error::Timeout(
                "the request waited in the queue past its deadline".into(),
            )))
        } else {
            queued.generation.stop(FinishReason::Cancelled);
            queued.generation.completion(&self.model)
        };
        self.shared
            .counters
            .finished
            .fetch_add(1, Ordering::Relaxed);
        queued.sink.done(result);
    }

    /// Put a request in a slot, reusing the longest cached prefix of its prompt.
    fn admit(&mut self, queued: Queued) {
        self.clock += 1;
        if queued.media.is_some() {
            return self.start_with_images(queued);
        }
        // A cached prefix held in another slot is copied in rather than the request moved
        // there (see `lowest_free`): a copy costs far less than a split decode step.
        let target = self.lowest_free();
        if !self.prefix_reuse {
            self.slots[target].cache.clear(&mut self.ctx, target as i32);
            return self.start(target, queued);
        }
        let prompt = &queued.tokens;
        let key = &queued.key;
        let in_place_n = self.slots[target].cache.reusable(prompt, key);
        // From another slot (running or idle), or from the host cache.
        let other = (0..self.slots.len())
            .filter(|&i| i != target)
            .map(|i| (i, self.slots[i].cache.reusable(prompt, key)))
            .max_by_key(|&(_, n)| n);
        let host = self.prefix.best(prompt, key);
        let other_n = other.map_or(0, |(_, n)| n);
        let host_n = host.map_or(0, |(_, n)| n);
        if in_place_n >= other_n.max(host_n) {
            self.keep_in_host_cache(target, in_place_n);
        } else {
            self.keep_in_host_cache(target, 0);
            if other_n >= host_n {
                let (src, _) = other.expect("a slot to copy from");
                self.copy_slot(src, target);
            } else if let Some((index, _)) = self.prefix.best(prompt, key) {
                // Saving the target's cache may have changed the host cache: look again.
                let slot = &mut self.slots[target];
                self.prefix
                    .restore(index, &mut self.ctx, target as i32, &mut slot.cache);
            }
        }
        self.start(target, queued);
        self.publish_prefix_stats();
    }

    /// Start `queued` in slot `target`, keeping what its cache shares with the prompt.
    fn start(&mut self, target: usize, queued: Queued) {
        let slot = &mut self.slots[target];
        let reused = slot
            .cache
            .reuse(&mut self.ctx, target as i32, &queued.tokens, &queued.key);
        let prompt = &queued.tokens;
        let c = &self.shared.counters;
        c.prompt_tokens
            .fetch_add(prompt.len() as u64, Ordering::Relaxed);
        c.cached_prompt_tokens
            .fetch_add(reused as u64, Ordering::Relaxed);
        c.prefix_hits
            .fetch_add(u64::from(reused > 0), Ordering::Relaxed);
        c.active.fetch_add(1, Ordering::Relaxed);
        slot.active = Some(Active {
            queued,
            prefilled: reused,
            cached: reused,
            prompt_started: Instant::now(),
            order: self.clock,
        });
    }

    /// Evaluate a vision request's prompt (text and images) into a free slot at once, then let
    /// it generate like any other sequence. The evaluation holds up the other sequences for
    /// its duration (an image encode is one batch of its own).
    fn start_with_images(&mut self, mut queued: Queued) {
        let target = self.lowest_free();
        self.keep_in_host_cache(target, 0);
        self.slots[target]
            .cache
            .invalidate(&mut self.ctx, target as i32);
        let (text, images) = queued.media.take().expect("a vision request");
        let prompt_started = Instant::now();
        let evaluated = apply_adapter_set(&mut self.ctx, &queued.adapters, &mut self.applied)
            .and_then(|()| {
                crate::vision::eval_prompt_with_images(
                    &mut self.ctx,
                    &self.model,
                    &text,
                    &images,
                    queued.generation.room(),
                    target as i32,
                    self.n_batch as i32,
                )
            })
            .and_then(|(n_past, cells)| {
                let generation = &mut queued.generation;
                generation.start_at(n_past, cells);
                generation.set_prompt_eval(prompt_started.elapsed().as_secs_f64() * 1e3, 0);
                generation.sample(&self.model, &self.ctx, -1)
            });
        let slot = &mut self.slots[target];
        self.shared.counters.active.fetch_add(1, Ordering::Relaxed);
        slot.active = Some(Active {
            queued,
            prefilled: 0,
            cached: 0,
            prompt_started,
            order: self.clock,
        });
        if let Err(e) = evaluated {
            self.slots[target]
                .cache
                .invalidate(&mut self.ctx, target as i32);
            self.finish(target, Outcome::Failed(e));
        }
    }

    /// Before slot `i`'s cache is cut to `keep` tokens, keep a host copy if what is lost is
    /// worth one (see `PrefixCache::save`).
    fn keep_in_host_cache(&mut self, i: usize, keep: usize) {
        self.prefix
            .save(&self.ctx, i as i32, &self.slots[i].cache, keep);
    }

    /// The free slot a request takes: the lowest. With a KV stream per sequence, llama.cpp
    /// evaluates a batch in one pass only over consecutive sequence ids, so the running
    /// slots are kept packed at the bottom (scattered ones split every step into passes).
    fn lowest_free(&self) -> usize {
        (0..self.slots.len())
            .find(|&i| self.slots[i].active.is_none())
            .expect("admit is only called with a free slot")
    }

    /// Make slot `dst` hold a copy of slot `src`'s sequence.
    fn copy_slot(&mut self, src: usize, dst: usize) {
        let copied = self
            .ctx
            .state_seq_get(src as i32, LlamaStateSeqFlags::empty())
            .ok()
            .filter(|state| self.ctx.state_seq_set(state, dst as i32).is_ok());
        let cache = match copied {
            Some(_) => self.slots[src].cache.clone(),
            None => {
                let mut empty = SeqCache::default();
                empty.clear(&mut self.ctx, dst as i32);
                empty
            }
        };
        self.slots[dst].cache = cache;
    }

    fn publish_prefix_stats(&self) {
        let c = &self.shared.counters;
        c.prefix_cache_entries
            .store(self.prefix.len() as u64, Ordering::Relaxed);
        c.prefix_cache_bytes
            .store(self.prefix.bytes() as u64, Ordering::Relaxed);
    }

    /// The adapter group to run now: the current one while it has work and its quantum
    /// lasts (or nobody else waits), else the group of the oldest waiting sequence.
    fn choose_group(&mut self) -> Option<AdapterKey> {
        let mut groups: Vec<(u64, &AdapterKey)> = Vec::new();
        for slot in &self.slots {
            if let Some(a) = &slot.active {
                match groups.iter_mut().find(|(_, k)| **k == a.queued.key) {
                    Some(g) => g.0 = g.0.min(a.order),
                    None => groups.push((a.order, &a.queued.key)),
                }
            }
        }
        let current = self
            .group
            .as_ref()
            .filter(|g| groups.iter().any(|(_, k)| *k == *g));
        if let Some(g) = current {
            if self.group_steps < self.quantum || groups.len() == 1 {
                return Some(g.clone());
            }
        }
        let next = groups
            .iter()
            .filter(|(_, k)| Some(*k) != current)
            .min_by_key(|(order, _)| *order)
            .map(|(_, k)| (*k).clone())?;
        self.group_steps = 0;
        self.group = Some(next.clone());
        Some(next)
    }

    /// One scheduling step: hand out pieces, end finished requests, evaluate one batch and
    /// sample. Returns whether anything happened.
    fn step(&mut self) -> bool {
        let Some(group) = self.choose_group() else {
            return false;
        };
        if group != self.applied {
            let set = self
                .slots
                .iter()
                .filter_map(|s| s.active.as_ref())
                .find(|a| a.queued.key == group)
                .map(|a| a.queued.adapters.clone())
                .expect("the group has a sequence");
            if let Err(e) = apply_adapter_set(&mut self.ctx, &set, &mut self.applied) {
                for i in 0..self.slots.len() {
                    if self.slots[i]
                        .active
                        .as_ref()
                        .is_some_and(|a| a.queued.key == group)
                    {
                        self.finish(i, Outcome::Failed(Error::Internal(e.to_string())));
                    }
                }
                return true;
            }
        }
        self.batch.clear();
        let mut entries = Vec::new();
        let mut ended = false;
        let now = Instant::now();
        // Generating sequences: their next token.
        for i in 0..self.slots.len() {
            let Some(active) = &mut self.slots[i].active else {
                continue;
            };
            if active.queued.key != group || active.prefilled < active.queued.tokens.len() {
                continue;
            }
            let outcome = loop {
                let generation = &mut active.queued.generation;
                match generation.poll() {
                    Step::Piece(piece) => {
                        if !active.queued.sink.piece(&piece) {
                            break Some(Outcome::SinkStopped);
                        }
                    }
                    Step::Done => break Some(Outcome::Finished),
                    Step::Sample => {
                        break Some(Outcome::Failed(Error::Internal(
                            "a sequence asked to sample without new logits".into(),
                        )))
                    }
                    Step::Decode(token) => {
                        if active.queued.cancel.load(Ordering::SeqCst) {
                            generation.stop(FinishReason::Cancelled);
                            continue;
                        }
                        if active.queued.deadline.is_some_and(|d| d <= now) {
                            break Some(Outcome::TimedOut);
                        }
                        let index = self.batch.n_tokens();
                        let added = self.batch.add(
                            LlamaToken(token),
                            generation.n_past() as i32,
                            &[i as i32],
                            true,
                        );
                        if let Err(e) = added {
                            break Some(Outcome::Failed(Error::Internal(format!("batch: {e}"))));
                        }
                        entries.push(Entry::Token {
                            slot: i,
                            token,
                            index,
                        });
                        break None;
                    }
                }
            };
            if let Some(outcome) = outcome {
                self.finish(i, outcome);
                ended = true;
            }
        }
        // Sequences being prefilled, oldest first, in the rest of the budget.
        let mut prefilling: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let a = s.active.as_ref()?;
                (a.queued.key == group && a.prefilled < a.queued.tokens.len())
                    .then_some((a.order, i))
            })
            .collect();
        prefilling.sort_unstable();
        for (_, i) in prefilling {
            let budget = self.n_batch - self.batch.n_tokens() as usize;
            if budget == 0 {
                break;
            }
            let active = self.slots[i].active.as_mut().expect("prefilling slot");
            if active.queued.cancel.load(Ordering::SeqCst) {
                active.queued.generation.stop(FinishReason::Cancelled);
                self.finish(i, Outcome::Finished);
                ended = true;
                continue;
            }
            if active.queued.deadline.is_some_and(|d| d <= now) {
                self.finish(i, Outcome::TimedOut);
                ended = true;
                continue;
            }
            let tokens = &active.queued.tokens;
            let start = active.prefilled;
            let n = budget.min(tokens.len() - start);
            let last = start + n == tokens.len();
            let mut failed = None;
            for (k, &t) in tokens[start..start + n].iter().enumerate() {
                let logits = last && k + 1 == n;
                if let Err(e) =
                    self.batch
                        .add(LlamaToken(t), (start + k) as i32, &[i as i32], logits)
                {
                    failed = Some(Error::Internal(format!("batch: {e}")));
                    break;
                }
            }
            if let Some(e) = failed {
                self.finish(i, Outcome::Failed(e));
                return true;
            }
            let index = self.batch.n_tokens() - 1;
            entries.push(Entry::Prefill { slot: i, n, index });
        }
        if entries.is_empty() {
            return ended;
        }
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            // What the caches of these sequences hold now is unknown.
            for entry in entries {
                let (Entry::Token { slot, .. } | Entry::Prefill { slot, .. }) = entry;
                self.slots[slot].cache.clear(&mut self.ctx, slot as i32);
                self.finish(slot, Outcome::Failed(Error::Decode(e.to_string())));
            }
            return true;
        }
        self.group_steps += 1;
        let shared = self.shared.clone();
        let c = &shared.counters;
        c.decode_steps.fetch_add(1, Ordering::Relaxed);
        for entry in entries {
            let (slot, index) = match entry {
                Entry::Token { slot, token, index } => {
                    let s = &mut self.slots[slot];
                    s.cache.extend(&[token]);
                    let active = s.active.as_mut().expect("decoded slot");
                    active.queued.generation.decoded();
                    (slot, index)
                }
                Entry::Prefill { slot, n, index } => {
                    let s = &mut self.slots[slot];
                    let active = s.active.as_mut().expect("prefilled slot");
                    let start = active.prefilled;
                    s.cache.extend(&active.queued.tokens[start..start + n]);
                    active.prefilled += n;
                    if active.prefilled < active.queued.tokens.len() {
                        continue;
                    }
                    let ms = active.prompt_started.elapsed().as_secs_f64() * 1e3;
                    let cached = active.cached;
                    active.queued.generation.set_prompt_eval(ms, cached);
                    (slot, index)
                }
            };
            let active = self.slots[slot].active.as_mut().expect("sampled slot");
            let sampled = active
                .queued
                .generation
                .sample(&self.model, &self.ctx, index);
            c.generated_tokens.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = sampled {
                self.finish(slot, Outcome::Failed(e));
            }
        }
        true
    }

    /// End the request in slot `i` and free the slot (its cache stays for reuse).
    fn finish(&mut self, i: usize, outcome: Outcome) {
        let Some(mut active) = self.slots[i].active.take() else {
            return;
        };
        let shared = self.shared.clone();
        let c = &shared.counters;
        c.active.fetch_sub(1, Ordering::Relaxed);
        c.finished.fetch_add(1, Ordering::Relaxed);
        let generation = &mut active.queued.generation;
        let result = match outcome {
            Outcome::Finished => generation.completion(&self.model),
            Outcome::SinkStopped => {
                generation.stop(FinishReason::Cancelled);
                generation.completion(&self.model)
            }
            Outcome::TimedOut => {
                c.timed_out.fetch_add(1, Ordering::Relaxed);
                let n = generation.tokens().len();
                generation.fail_as("error:timeout");
                generation
                    .audit(&self.model)
                    .and(Err(Error::Timeout(format!(
                        "the request ran past its deadline after {n} generated tokens"
                    ))))
            }
            Outcome::Failed(e) => {
                generation.fail_as("error");
                generation.audit(&self.model).and(Err(e))
            }
        };
        active.queued.sink.done(result);
    }
}
