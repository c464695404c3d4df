//! Sessions: one llama.cpp context (KV cache) on a shared [`Model`], and generation on it.
//!
//! Thread rules: a [`Session`] is `Send` but not `Sync`: move it to any thread, use it from
//! one thread at a time. Any number of sessions may run at once on one `Model`. A
//! [`CancelHandle`] is `Send + Sync` and may cancel from any thread.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaLoraAdapter;
use llama_cpp_2::token::LlamaToken;

use crate::audit::{AuditLog, Surface, TokenCounts};
use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::{Error, Result};
use crate::image_input::Image;
use crate::lora::{set_key, validate_set, AdapterSet, LoraAdapter};
use crate::model::{check_threads, Model, Token};
use crate::request_guard::{default_safety, Checked, GuardConfig, RequestGuard};
use crate::safety::{Safety, SafetyReport, StreamEvent};
use crate::sampling::{GenerateOptions, Sampler, Truncation};
use crate::stream_text::StreamText;

/// How to create a session. `Default` turns the built-in safety policy on and audits nothing.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Context window in tokens; `None` = the model's training context, at most 4096.
    pub n_ctx: Option<u32>,
    /// Most prompt tokens evaluated per llama.cpp call; `None` = 2048 (llama.cpp's default).
    pub n_batch: Option<u32>,
    /// Physical micro-batch; `None` = 512.
    pub n_ubatch: Option<u32>,
    /// Threads for generation; `None` = the model's default.
    pub threads: Option<u32>,
    /// Threads for prompt evaluation; `None` = same as `threads`.
    pub threads_batch: Option<u32>,
    /// Chat template to use instead of the model's own.
    pub chat_template: Option<ChatTemplate>,
    /// The safety layer applied to every request's input and output; `None` turns it off.
    pub safety: Option<Safety>,
    /// Where every request is recorded; `None` = no audit log.
    pub audit: Option<Arc<AuditLog>>,
    /// The caller or tenant requests are accounted to (a request may override it).
    pub tenant: String,
    /// Which surface serves the requests (recorded in the audit log).
    pub surface: Surface,
    /// LoRA adapters (loaded with [`Model::load_lora`]) and their scales, applied to every
    /// request that does not name its own.
    pub adapters: AdapterSet,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            n_ctx: None,
            n_batch: None,
            n_ubatch: None,
            threads: None,
            threads_batch: None,
            chat_template: None,
            safety: Some(default_safety()),
            audit: None,
            tenant: "local".into(),
            surface: Surface::Rust,
            adapters: Vec::new(),
        }
    }
}

/// The text to generate from.
#[derive(Debug, Clone, Copy)]
pub enum Prompt<'a> {
    /// Raw text, tokenized with the model's BOS; special-token text (`<|im_start|>`) is parsed.
    Text(&'a str),
    /// Tokens, used as given.
    Tokens(&'a [Token]),
    /// Text with one [`MEDIA_MARKER`](crate::MEDIA_MARKER) per image, and the images in
    /// order; needs the model's vision projector ([`Model::load_mmproj`]).
    WithImages { text: &'a str, images: &'a [Image] },
}

impl<'a> From<&'a str> for Prompt<'a> {
    fn from(s: &'a str) -> Self {
        Prompt::Text(s)
    }
}

impl<'a> From<&'a String> for Prompt<'a> {
    fn from(s: &'a String) -> Self {
        Prompt::Text(s)
    }
}

impl<'a> From<&'a [Token]> for Prompt<'a> {
    fn from(t: &'a [Token]) -> Self {
        Prompt::Tokens(t)
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
    /// The caller cancelled.
    Cancelled,
    /// The safety policy refused the input or stopped the output.
    ContentFilter,
}

impl FinishReason {
    /// The OpenAI-style name.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

/// Token counts of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Where the time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    /// From the call to the first generated token.
    pub time_to_first_token_ms: f64,
    /// Evaluating the prompt.
    pub prompt_ms: f64,
    /// From the first generated token to the last.
    pub generation_ms: f64,
    pub prompt_tokens_per_second: f64,
    /// Decode speed: tokens after the first, over `generation_ms`.
    pub generation_tokens_per_second: f64,
}

/// The result of a finished generation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Completion {
    pub text: String,
    pub tokens: Vec<Token>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    pub timings: Timings,
    /// The request's id (given in [`GenerateOptions::request_id`] or generated), as in the
    /// audit log.
    pub request_id: String,
    /// Verdicts and redaction counts; `None` when the session has no safety layer.
    pub safety: Option<SafetyReport>,
}

/// Cancels the generation running on a session, from any thread.
#[derive(Debug, Clone)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// Ask the running generation to stop: it ends before its next token with
    /// [`FinishReason::Cancelled`]. A no-op when nothing runs; a cancel that arrives before a
    /// generation has started does not affect it (each generation starts uncancelled). For a
    /// race-free per-request stop, return `false` from the streaming callback.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One conversation's state on a model. See the module doc for the thread rules.
pub struct Session {
    // Field order matters: `ctx` borrows the weights that `model` keeps alive, so it must drop first.
    ctx: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
    model: Model,
    n_ctx: u32,
    n_batch: u32,
    chat_template: Option<ChatTemplate>,
    guard: GuardConfig,
    cancel: Arc<AtomicBool>,
    /// The adapters requests run with by default.
    adapters: AdapterSet,
    /// The set applied to the context now (see `lora::set_key`).
    applied: Vec<(usize, u32)>,
}

// SAFETY: a llama.cpp context has no thread affinity; it only must not be used from two threads
// at once, which `Session: !Sync` and `&mut self` on every operation guarantee. The model it
// points to is `Send + Sync` and kept alive by `self.model`.
unsafe impl Send for Session {}

impl Session {
    /// Create a session (allocates the KV cache).
    pub fn new(model: &Model, options: SessionOptions) -> Result<Session> {
        let info = model.info();
        let n_ctx = options.n_ctx.unwrap_or(info.n_ctx_train.min(4096));
        if n_ctx < 8 {
            return Err(Error::InvalidArgument(format!(
                "n_ctx must be at least 8, got {n_ctx}"
            )));
        }
        let n_batch = options.n_batch.unwrap_or(2048).min(n_ctx);
        let n_ubatch = options.n_ubatch.unwrap_or(512).min(n_batch);
        if n_ubatch == 0 {
            return Err(Error::InvalidArgument(
                "n_batch and n_ubatch must be at least 1".into(),
            ));
        }
        let threads = options.threads.unwrap_or(model.options().threads);
        let threads_batch = options.threads_batch.unwrap_or(threads);
        check_threads(threads)?;
        check_threads(threads_batch)?;
        model.check_kv_budget(n_ctx)?;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_ubatch)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads_batch as i32);
        validate_set(model, &options.adapters)?;
        let ctx = model.new_context(params)?;
        // SAFETY: the context borrows the weights in the model's `Arc` allocation, which never
        // moves and which `Session::model` keeps alive until after `ctx` drops (fields drop in
        // declaration order), so extending the borrow to the session's life is sound.
        let ctx: LlamaContext<'static> = unsafe { std::mem::transmute(ctx) };
        Ok(Session {
            ctx,
            batch: LlamaBatch::new(n_batch as usize, 1),
            model: model.clone(),
            n_ctx,
            n_batch,
            chat_template: options.chat_template,
            guard: GuardConfig {
                safety: options.safety,
                audit: options.audit,
                tenant: options.tenant,
                surface: options.surface,
            },
            cancel: Arc::new(AtomicBool::new(false)),
            adapters: options.adapters,
            applied: Vec::new(),
        })
    }

    /// Replace the adapters (with scales) that requests run with by default; an empty set
    /// runs the bare model. Nothing is reloaded: the model keeps its adapters loaded.
    pub fn set_adapters(&mut self, adapters: AdapterSet) -> Result<()> {
        validate_set(&self.model, &adapters)?;
        self.adapters = adapters;
        Ok(())
    }

    /// The adapters requests run with by default.
    pub fn adapters(&self) -> &[(LoraAdapter, f32)] {
        &self.adapters
    }

    /// Apply a request's adapters (its own, else the session's) unless already applied, and
    /// return the set.
    fn apply_adapters(&mut self, requested: Option<&AdapterSet>) -> Result<AdapterSet> {
        let set = requested.unwrap_or(&self.adapters).clone();
        validate_set(&self.model, &set)?;
        let key = set_key(&set);
        if key != self.applied {
            let pairs: Vec<(&LlamaLoraAdapter, f32)> =
                set.iter().map(|(a, s)| (a.llama(), *s)).collect();
            self.applied.clear();
            self.ctx
                .set_lora_adapters(&pairs)
                .map_err(|e| Error::Internal(format!("applying LoRA adapters: {e}")))?;
            self.applied = key;
        }
        Ok(set)
    }

    /// The model this session runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The context window in tokens.
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// A handle that cancels this session's running generation from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(self.cancel.clone())
    }

    /// Generate to the end and return the whole result.
    pub fn generate<'p>(
        &mut self,
        prompt: impl Into<Prompt<'p>>,
        options: &GenerateOptions,
    ) -> Result<Completion> {
        self.generate_with(prompt, options, |_| true)
    }

    /// Generate, calling `on_piece` with each piece of text as it is ready.
    /// Return `false` from the callback to stop (the result is then [`FinishReason::Cancelled`]).
    pub fn generate_with<'p>(
        &mut self,
        prompt: impl Into<Prompt<'p>>,
        options: &GenerateOptions,
        on_piece: impl FnMut(&str) -> bool,
    ) -> Result<Completion> {
        let stream = self.stream(prompt, options)?;
        stream.feed(on_piece)
    }

    /// Generate as an iterator of text pieces; call [`TokenStream::into_completion`] at the end
    /// for usage and timings.
    pub fn stream<'p>(
        &mut self,
        prompt: impl Into<Prompt<'p>>,
        options: &GenerateOptions,
    ) -> Result<TokenStream<'_>> {
        let mut guard = RequestGuard::begin(&self.guard, options);
        let checked = match prompt.into() {
            Prompt::Text(text) => guard.check_prompt(text)?,
            Prompt::Tokens(tokens) => {
                for &t in tokens {
                    self.model.check_token(t)?;
                }
                let text = self.model.detokenize(tokens, true)?;
                match guard.check_prompt(&text)? {
                    // Unchanged text keeps the caller's exact tokens.
                    Checked::Allowed(redacted) if redacted == text => {
                        return self.start_audited(Prompt::Tokens(tokens), options, guard);
                    }
                    other => other,
                }
            }
            Prompt::WithImages { text, images } => {
                return match guard.check_prompt(text)? {
                    Checked::Allowed(text) => self.start_audited(
                        Prompt::WithImages {
                            text: &text,
                            images,
                        },
                        options,
                        guard,
                    ),
                    Checked::Refused(message) => Ok(TokenStream::refused(self, message, guard)),
                };
            }
        };
        match checked {
            Checked::Allowed(text) => self.start_audited(Prompt::Text(&text), options, guard),
            Checked::Refused(message) => Ok(TokenStream::refused(self, message, guard)),
        }
    }

    /// Render `messages` with the chat template and generate the assistant's reply.
    pub fn chat(
        &mut self,
        messages: &[ChatMessage],
        options: &GenerateOptions,
    ) -> Result<Completion> {
        self.chat_with(messages, options, |_| true)
    }

    /// [`Session::chat`] with a streaming callback, as in [`Session::generate_with`].
    pub fn chat_with(
        &mut self,
        messages: &[ChatMessage],
        options: &GenerateOptions,
        on_piece: impl FnMut(&str) -> bool,
    ) -> Result<Completion> {
        let stream = self.chat_stream(messages, options)?;
        stream.feed(on_piece)
    }

    /// [`Session::chat`] as an iterator, as in [`Session::stream`].
    pub fn chat_stream(
        &mut self,
        messages: &[ChatMessage],
        options: &GenerateOptions,
    ) -> Result<TokenStream<'_>> {
        let mut guard = RequestGuard::begin(&self.guard, options);
        match guard.check_messages(messages)? {
            Checked::Allowed(messages) if messages.iter().any(|m| !m.images.is_empty()) => {
                let (messages, images) = crate::vision::prepare_messages(&messages)?;
                let text = self.render_chat(&messages)?;
                self.start_audited(
                    Prompt::WithImages {
                        text: &text,
                        images: &images,
                    },
                    options,
                    guard,
                )
            }
            Checked::Allowed(messages) => {
                let prompt = self.render_chat(&messages)?;
                self.start_audited(Prompt::Text(&prompt), options, guard)
            }
            Checked::Refused(message) => Ok(TokenStream::refused(self, message, guard)),
        }
    }

    /// The model's next-token logits after `prompt` (one per vocabulary entry): what a
    /// classifier (the guard model) reads instead of sampling.
    pub(crate) fn next_token_logits<'p>(
        &mut self,
        prompt: impl Into<Prompt<'p>>,
    ) -> Result<Vec<f32>> {
        let tokens = self.prompt_tokens(prompt.into())?;
        let tokens = self.fit(tokens, &GenerateOptions::default().with_max_tokens(1))?;
        let mut logits = Vec::new();
        self.score_tokens(&tokens, tokens.len() - 1, |_, l| logits = l.to_vec())?;
        Ok(logits)
    }

    /// Evaluate `tokens` from an empty cache with the session's adapters, calling
    /// `each(position, logits)` for every position from `first_output` on: the logits there
    /// predict the token at `position + 1`. Perplexity and log-likelihood scoring read these.
    pub(crate) fn score_tokens(
        &mut self,
        tokens: &[Token],
        first_output: usize,
        mut each: impl FnMut(usize, &[f32]),
    ) -> Result<()> {
        if tokens.is_empty() || first_output >= tokens.len() {
            return Err(Error::InvalidArgument("nothing to score".into()));
        }
        if tokens.len() > self.n_ctx as usize {
            return Err(Error::ContextOverflow {
                needed: tokens.len(),
                n_ctx: self.n_ctx as usize,
            });
        }
        self.apply_adapters(None)?;
        self.ctx.clear_kv_cache();
        let n_batch = self.n_batch as usize;
        for (i, chunk) in tokens.chunks(n_batch).enumerate() {
            let start = i * n_batch;
            self.batch.clear();
            for (k, &t) in chunk.iter().enumerate() {
                self.batch
                    .add(
                        LlamaToken(t),
                        (start + k) as i32,
                        &[0],
                        start + k >= first_output,
                    )
                    .map_err(|e| Error::Internal(format!("batch: {e}")))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| Error::Decode(e.to_string()))?;
            for (k, _) in chunk.iter().enumerate() {
                if start + k >= first_output {
                    each(start + k, self.ctx.get_logits_ith(k as i32));
                }
            }
        }
        Ok(())
    }

    /// Start generating; a request that fails before its first token is audited too.
    fn start_audited(
        &mut self,
        prompt: Prompt<'_>,
        options: &GenerateOptions,
        guard: RequestGuard,
    ) -> Result<TokenStream<'_>> {
        let model = self.model.clone();
        let mut guard = Some(guard);
        let started = TokenStream::start(self, prompt, options, &mut guard);
        if let (Err(e), Some(mut guard)) = (&started, guard) {
            let reason = format!("error:{}", e.code().name());
            guard.audit(&model, "", TokenCounts::default(), &reason)?;
        }
        started
    }

    /// The prompt that [`Session::chat`] would generate from.
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String> {
        match &self.chat_template {
            Some(t) => t.render(&self.model, messages, true),
            None => ChatTemplate::for_model(&self.model)?.render(&self.model, messages, true),
        }
    }

    fn prompt_tokens(&self, prompt: Prompt<'_>) -> Result<Vec<Token>> {
        let tokens = match prompt {
            Prompt::Text(text) => {
                let add_bos = match self.model.bos_text() {
                    Some(bos) => !text.starts_with(&bos),
                    None => true,
                };
                self.model.tokenize(text, add_bos, true)
            }
            Prompt::Tokens(tokens) => {
                for &t in tokens {
                    self.model.check_token(t)?;
                }
                tokens.to_vec()
            }
            Prompt::WithImages { .. } => {
                return Err(Error::InvalidArgument(
                    "a prompt with images cannot be scored as tokens".into(),
                ))
            }
        };
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("the prompt is empty".into()));
        }
        Ok(tokens)
    }

    /// Apply the truncation policy so that prompt + max_tokens fits the context.
    fn fit(&self, mut tokens: Vec<Token>, options: &GenerateOptions) -> Result<Vec<Token>> {
        let n_ctx = self.n_ctx as usize;
        let reserve = options.max_tokens.map_or(1, |m| m as usize);
        let needed = tokens.len() + reserve;
        if needed <= n_ctx {
            return Ok(tokens);
        }
        match options.truncation {
            Truncation::Error => Err(Error::ContextOverflow { needed, n_ctx }),
            Truncation::DropOldest => {
                if reserve >= n_ctx {
                    return Err(Error::ContextOverflow { needed, n_ctx });
                }
                let keep = n_ctx - reserve;
                // Keep a leading BOS: models behave badly without it.
                let head =
                    usize::from(self.model.tokenize("", true, false).first() == Some(&tokens[0]));
                let drop = tokens.len() - keep;
                tokens.drain(head..head + drop);
                Ok(tokens)
            }
        }
    }

    /// Evaluate a prompt with images from an empty cache through the model's projector.
    /// Returns (n_past, prompt tokens); images are never truncated, so a prompt that does not
    /// fit is [`Error::ContextOverflow`] whatever the truncation policy.
    fn eval_with_images(
        &mut self,
        text: &str,
        images: &[Image],
        options: &GenerateOptions,
    ) -> Result<(usize, usize)> {
        let projector = self.model.require_projector()?;
        let add_bos = match self.model.bos_text() {
            Some(bos) => !text.starts_with(&bos),
            None => true,
        };
        let prompt = projector.tokenize(text, images, add_bos)?;
        let n_ctx = self.n_ctx as usize;
        let needed = prompt.n_tokens() + options.max_tokens.map_or(1, |m| m as usize);
        if needed > n_ctx {
            return Err(Error::ContextOverflow { needed, n_ctx });
        }
        self.ctx.clear_kv_cache();
        let model = self.model.clone();
        let n_past = crate::vision::eval_multimodal(
            &mut self.ctx,
            &model,
            projector,
            &prompt,
            0,
            0,
            self.n_batch as i32,
        )?;
        Ok((n_past as usize, prompt.n_tokens()))
    }

    fn decode(&mut self, tokens: &[Token], first_pos: usize, logits_last: bool) -> Result<()> {
        self.batch.clear();
        let last = tokens.len() - 1;
        for (i, &t) in tokens.iter().enumerate() {
            self.batch
                .add(
                    LlamaToken(t),
                    (first_pos + i) as i32,
                    &[0],
                    logits_last && i == last,
                )
                .map_err(|e| Error::Internal(format!("batch: {e}")))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| Error::Decode(e.to_string()))
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// A generation in progress, yielding text pieces. Dropping it abandons the generation.
pub struct TokenStream<'s> {
    session: &'s mut Session,
    sampler: Sampler,
    text: StreamText,
    max_new: usize,
    ignore_eos: bool,
    n_past: usize,
    prompt_len: usize,
    /// Sampled but not yet evaluated: evaluated only if another token is needed.
    pending: Option<Token>,
    tokens: Vec<Token>,
    output: String,
    finish: Option<FinishReason>,
    flushed: bool,
    failed: bool,
    started: Instant,
    prompt_ms: f64,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    guard: RequestGuard,
    /// Text to emit before anything else: the refusal message of a blocked input.
    refusal: Option<String>,
    /// The output filter has been flushed.
    output_filter_done: bool,
}

impl<'s> TokenStream<'s> {
    fn start(
        session: &'s mut Session,
        prompt: Prompt<'_>,
        options: &GenerateOptions,
        guard: &mut Option<RequestGuard>,
    ) -> Result<Self> {
        let started = Instant::now();
        options.validate(&session.model)?;
        // Before the prompt is decoded, so a bad grammar costs nothing.
        let sampler = options.build_sampler(&session.model)?;
        let adapters = session.apply_adapters(options.adapters.as_ref())?;
        if let Some(guard) = guard.as_mut() {
            guard.set_adapters(&adapters);
        }
        session.cancel.store(false, Ordering::SeqCst);
        let mut finish = None;
        let prompt_started = Instant::now();
        // (n_past, prompt tokens): under M-RoPE an image advances n_past by fewer positions
        // than it takes KV cells, so the room left is counted in tokens.
        let (n_past, prompt_len) = match prompt {
            Prompt::WithImages { text, images } => {
                session.eval_with_images(text, images, options)?
            }
            prompt => {
                let tokens = session.prompt_tokens(prompt)?;
                let tokens = session.fit(tokens, options)?;
                session.ctx.clear_kv_cache();
                let n_batch = session.n_batch as usize;
                for (i, chunk) in tokens.chunks(n_batch).enumerate() {
                    if session.cancelled() {
                        finish = Some(FinishReason::Cancelled);
                        break;
                    }
                    let is_last = (i + 1) * n_batch >= tokens.len();
                    session.decode(chunk, i * n_batch, is_last)?;
                }
                (tokens.len(), tokens.len())
            }
        };
        let max_new = options
            .max_tokens
            .map_or(session.n_ctx as usize - prompt_len, |m| m as usize);
        let prompt_ms = prompt_started.elapsed().as_secs_f64() * 1e3;
        let mut guard = guard.take().expect("the guard is taken once, on success");
        guard.start_output();
        Ok(TokenStream {
            sampler,
            text: StreamText::new(&options.stop),
            max_new,
            ignore_eos: options.ignore_eos,
            n_past,
            prompt_len,
            pending: None,
            tokens: Vec::new(),
            output: String::new(),
            finish,
            flushed: false,
            failed: false,
            started,
            prompt_ms,
            first_token: None,
            last_token: None,
            guard,
            refusal: None,
            output_filter_done: false,
            session,
        })
    }

    /// A request the safety policy refused: it yields the refusal message and generates
    /// nothing.
    fn refused(session: &'s mut Session, message: String, guard: RequestGuard) -> Self {
        TokenStream {
            sampler: Sampler::greedy(),
            text: StreamText::new(&[]),
            max_new: 0,
            ignore_eos: false,
            n_past: 0,
            prompt_len: 0,
            pending: None,
            tokens: Vec::new(),
            output: String::new(),
            finish: Some(FinishReason::ContentFilter),
            flushed: true,
            failed: false,
            started: Instant::now(),
            prompt_ms: 0.0,
            first_token: None,
            last_token: None,
            guard,
            refusal: Some(message),
            output_filter_done: true,
            session,
        }
    }

    /// The id of this request (as in the audit log).
    pub fn request_id(&self) -> &str {
        &self.guard.request_id
    }

    /// End the generation now with `reason` (the rest of held text is still emitted).
    pub fn stop(&mut self, reason: FinishReason) {
        if self.finish.is_none() {
            self.finish = Some(reason);
        }
    }

    /// Tokens generated so far.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Pass each piece to `on_piece` until it returns false (then the generation is
    /// cancelled and `on_piece` is not called again), and return the result. On such a stop
    /// the completion's text is exactly what `on_piece` received: text the stream still held
    /// back (a possible stop string, a span under the output filter) is dropped, not shown.
    pub(crate) fn feed(mut self, mut on_piece: impl FnMut(&str) -> bool) -> Result<Completion> {
        let mut delivered = 0;
        while let Some(piece) = self.next() {
            let piece = piece?;
            delivered += piece.len();
            if !on_piece(&piece) {
                self.stop(FinishReason::Cancelled);
                let mut completion = self.into_completion()?;
                // `text` is the concatenation of every piece the stream yielded.
                completion.text.truncate(delivered);
                return Ok(completion);
            }
        }
        self.into_completion()
    }

    /// Finish (draining any remaining pieces) and return the result.
    pub fn into_completion(mut self) -> Result<Completion> {
        for piece in self.by_ref() {
            piece?;
        }
        let finish_reason = self.finish.unwrap_or(FinishReason::Stop);
        let completion_tokens = self.tokens.len();
        let generation_ms = match (self.first_token, self.last_token) {
            (Some(a), Some(b)) => (b - a).as_secs_f64() * 1e3,
            _ => 0.0,
        };
        let per_second = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
        self.write_audit()?;
        Ok(Completion {
            request_id: self.guard.request_id.clone(),
            safety: self.guard.report(),
            text: std::mem::take(&mut self.output),
            tokens: std::mem::take(&mut self.tokens),
            finish_reason,
            usage: Usage {
                prompt_tokens: self.prompt_len as u32,
                completion_tokens: completion_tokens as u32,
            },
            timings: Timings {
                time_to_first_token_ms: self
                    .first_token
                    .map_or(0.0, |t| (t - self.started).as_secs_f64() * 1e3),
                prompt_ms: self.prompt_ms,
                generation_ms,
                prompt_tokens_per_second: per_second(self.prompt_len, self.prompt_ms),
                generation_tokens_per_second: per_second(
                    completion_tokens.saturating_sub(1),
                    generation_ms,
                ),
            },
        })
    }

    /// One step: evaluate the pending token if needed, sample the next one.
    /// `Ok(None)` means finished and flushed.
    fn step(&mut self) -> Result<Option<String>> {
        loop {
            if self.finish.is_some() {
                if self.flushed {
                    return Ok(None);
                }
                self.flushed = true;
                let rest = self.text.finish();
                if rest.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(rest));
            }
            if let Some(token) = self.pending.take() {
                if self.tokens.len() >= self.max_new || self.n_past >= self.session.n_ctx as usize {
                    self.finish = Some(FinishReason::Length);
                    continue;
                }
                if self.session.cancelled() {
                    self.finish = Some(FinishReason::Cancelled);
                    continue;
                }
                self.session.decode(&[token], self.n_past, true)?;
                self.n_past += 1;
            }
            let token = self.sampler.sample(&self.session.ctx);
            let now = Instant::now();
            self.first_token.get_or_insert(now);
            self.last_token = Some(now);
            if !self.ignore_eos && self.session.model.is_end_of_generation(token) {
                self.finish = Some(FinishReason::Stop);
                continue;
            }
            self.tokens.push(token);
            let mut bytes = Vec::new();
            self.session
                .model
                .token_piece_into(token, false, &mut bytes)?;
            let fed = self.text.feed(&bytes);
            if fed.stopped {
                self.finish = Some(FinishReason::Stop);
                self.flushed = true;
            } else {
                self.pending = Some(token);
            }
            if !fed.emit.is_empty() {
                return Ok(Some(fed.emit));
            }
        }
    }
}

impl TokenStream<'_> {
    /// The next piece that passed the output filter; `Ok(None)` at the end.
    fn filtered_step(&mut self) -> Result<Option<String>> {
        if let Some(message) = self.refusal.take() {
            return Ok(Some(message));
        }
        loop {
            let event = match self.step()? {
                Some(piece) => self.guard.filter(&piece),
                None if self.finish_output_done() => return Ok(None),
                None => self.guard.finish_output(),
            };
            match event {
                StreamEvent::Text(text) if text.is_empty() => continue,
                StreamEvent::Text(text) => return Ok(Some(text)),
                StreamEvent::Blocked { .. } => {
                    // Nothing more reaches the caller; generation stops here.
                    self.finish = Some(FinishReason::ContentFilter);
                    self.flushed = true;
                    self.output_filter_done = true;
                }
            }
        }
    }

    fn finish_output_done(&mut self) -> bool {
        std::mem::replace(&mut self.output_filter_done, true)
    }

    fn write_audit(&mut self) -> Result<()> {
        let finish = match (self.failed, self.finish) {
            (true, _) => "error",
            (false, Some(reason)) => reason.as_str(),
            (false, None) => "abandoned",
        };
        let tokens = TokenCounts {
            prompt: self.prompt_len as u64,
            completion: self.tokens.len() as u64,
        };
        let model = self.session.model.clone();
        self.guard.audit(&model, &self.output, tokens, finish)
    }
}

impl Drop for TokenStream<'_> {
    /// A stream dropped early (or after an error) is still audited.
    fn drop(&mut self) {
        if let Err(e) = self.write_audit() {
            tracing::error!(
                "audit record for {} not written: {e}",
                self.guard.request_id
            );
        }
    }
}

impl Iterator for TokenStream<'_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        if self.failed {
            return None;
        }
        match self.filtered_step() {
            Ok(Some(piece)) => {
                self.output.push_str(&piece);
                Some(Ok(piece))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
