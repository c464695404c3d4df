//! Sessions: one llama.cpp context (KV cache) on a shared [`Model`], and generation on it.
//!
//! Thread rules: a [`Session`] is `Send` but not `Sync`: move it to any thread, use it from
//! one thread at a time. Any number of sessions may run at once on one `Model`. A
//! [`CancelHandle`] is `Send + Sync` and may cancel from any thread.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::audit::{AuditLog, Surface, TokenCounts};
use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::{Error, Result};
use crate::generation::{Generation, Step};
use crate::image_input::Image;
use crate::lora::{apply_adapter_set, validate_set, AdapterSet, LoraAdapter};
use crate::model::{check_threads, Model, SequencePermit, Token};
use crate::prefix_cache::SeqCache;
use crate::request_guard::{default_safety, Checked, GuardConfig, RequestGuard};
pub use crate::request_input::Prompt;
use crate::request_input::{
    admit, fit, prepare, prepare_sampling, prompt_tokens, render_chat, Input, Prepared,
};
use crate::safety::{Safety, SafetyReport};
use crate::sampling::GenerateOptions;
use crate::session_state;

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
    /// Keep the KV of the last request and evaluate only what a new prompt adds to it (the
    /// next chat turn, a shared system prompt). llama.cpp evaluates one token and a batch of
    /// tokens with different kernels, so a reused prefix can change the low-order bits of
    /// later logits (as with llama-server's `cache_prompt`); turn it off for answers that are
    /// bit-for-bit those of a fresh context.
    pub prefix_reuse: bool,
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
            prefix_reuse: true,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Prompt tokens whose KV was reused from an earlier request (not evaluated again).
    pub cached_prompt_tokens: u32,
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
    /// The set applied to the context now, and its key (see `lora::set_key`).
    applied_set: AdapterSet,
    applied: Vec<(usize, u32)>,
    /// What the KV cache holds: a next prompt that starts the same way reuses it.
    cache: SeqCache,
    prefix_reuse: bool,
    /// This session's place under the model's `max_sessions`.
    _sequence: SequencePermit,
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
        let sequence = model.reserve_sequences(1)?;
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
            applied_set: Vec::new(),
            applied: Vec::new(),
            cache: SeqCache::default(),
            prefix_reuse: options.prefix_reuse,
            _sequence: sequence,
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

    /// Make `set` (validated) the context's adapters unless it already is.
    fn apply_adapters(&mut self, set: &AdapterSet) -> Result<()> {
        apply_adapter_set(&mut self.ctx, set, &mut self.applied)?;
        self.applied_set = set.clone();
        Ok(())
    }

    /// Save what the KV cache holds (the last request's prompt and reply) to `path`, so that
    /// this or a later process continues from it without evaluating it again (see
    /// [`Session::load_state`]). The file names the model's SHA-256 and the adapter set.
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<()> {
        let set = if self.cache.adapters == self.applied {
            &self.applied_set
        } else {
            &self.adapters
        };
        session_state::save(&self.ctx, 0, &self.cache, &self.model, set, path.as_ref())
    }

    /// Restore a state saved by [`Session::save_state`] with the same model and this
    /// session's adapter set; the next request whose prompt starts with the saved tokens
    /// evaluates only the rest. Returns the number of tokens restored. A file that is corrupt,
    /// from another model or adapter set is [`Error::State`] and leaves the cache empty.
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<usize> {
        let set = self.adapters.clone();
        validate_set(&self.model, &set)?;
        self.apply_adapters(&set)?;
        self.cache.clear(&mut self.ctx, 0);
        let tokens = session_state::load(&mut self.ctx, 0, &self.model, &set, path.as_ref())?;
        if tokens.len() > self.n_ctx as usize {
            self.cache.clear(&mut self.ctx, 0);
            return Err(Error::State {
                path: path.as_ref().to_owned(),
                reason: format!(
                    "it holds {} tokens, more than this session's context ({})",
                    tokens.len(),
                    self.n_ctx
                ),
            });
        }
        self.cache.extend(&tokens);
        self.cache.adapters = self.applied.clone();
        Ok(self.cache.tokens.len())
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
        self.start_checked(Input::Prompt(prompt.into()), options)
    }

    /// The input check, then generation (or the refusal).
    fn start_checked(
        &mut self,
        input: Input<'_>,
        options: &GenerateOptions,
    ) -> Result<TokenStream<'_>> {
        let mut guard = RequestGuard::begin(&self.guard, options);
        match admit(&mut guard, &self.model, self.chat_template.as_ref(), input)? {
            Checked::Allowed(prompt) => self.start_audited(prompt.as_prompt(), options, guard),
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
        self.start_checked(Input::Chat(messages), options)
    }

    /// The model's next-token logits after `prompt` (one per vocabulary entry): what a
    /// classifier (the guard model) reads instead of sampling.
    pub(crate) fn next_token_logits<'p>(
        &mut self,
        prompt: impl Into<Prompt<'p>>,
    ) -> Result<Vec<f32>> {
        let tokens = prompt_tokens(&self.model, prompt.into())?;
        let tokens = fit(
            &self.model,
            tokens,
            self.n_ctx,
            &GenerateOptions::default().with_max_tokens(1),
        )?;
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
        let set = self.adapters.clone();
        validate_set(&self.model, &set)?;
        self.apply_adapters(&set)?;
        self.cache.clear(&mut self.ctx, 0);
        self.cache.adapters = self.applied.clone();
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
            self.decode_batch(chunk)?;
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
        render_chat(&self.model, self.chat_template.as_ref(), messages)
    }

    /// Evaluate a prompt with images from an empty cache (see
    /// [`crate::vision::eval_prompt_with_images`]); returns (n_past, prompt tokens).
    fn eval_with_images(
        &mut self,
        text: &str,
        images: &[Image],
        options: &GenerateOptions,
    ) -> Result<(usize, usize)> {
        // Image positions are not tokens: the cache cannot say what it holds now.
        self.cache.invalidate(&mut self.ctx, 0);
        let model = self.model.clone();
        crate::vision::eval_prompt_with_images(
            &mut self.ctx,
            &model,
            text,
            images,
            (
                self.n_ctx as usize,
                options.max_tokens.map_or(1, |m| m as usize),
            ),
            0,
            self.n_batch as i32,
        )
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
        self.decode_batch(tokens)
    }

    /// Evaluate the batch holding `tokens` (the next positions of the cache).
    fn decode_batch(&mut self, tokens: &[Token]) -> Result<()> {
        match self.ctx.decode(&mut self.batch) {
            Ok(()) => {
                self.cache.extend(tokens);
                Ok(())
            }
            Err(e) => {
                // What the cache holds now is unknown.
                self.cache.clear(&mut self.ctx, 0);
                Err(Error::Decode(e.to_string()))
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// A generation in progress, yielding text pieces. Dropping it abandons the generation.
pub struct TokenStream<'s> {
    session: &'s mut Session,
    generation: Generation,
    /// An error was returned: the stream yields nothing more.
    failed: bool,
}

impl<'s> TokenStream<'s> {
    fn start(
        session: &'s mut Session,
        prompt: Prompt<'_>,
        options: &GenerateOptions,
        guard: &mut Option<RequestGuard>,
    ) -> Result<Self> {
        let started = Instant::now();
        let guard_ref = guard.as_mut().expect("the guard is taken once, on success");
        let mut cancelled = false;
        let prompt_started = Instant::now();
        // (n_past, prompt tokens, reused): under M-RoPE an image advances n_past by fewer
        // positions than it takes KV cells, so the room left is counted in tokens.
        let (sampler, n_past, prompt_len, reused) = match prompt {
            Prompt::WithImages { text, images } => {
                let (sampler, adapters) =
                    prepare_sampling(&session.model, options, &session.adapters, guard_ref)?;
                session.apply_adapters(&adapters)?;
                session.cancel.store(false, Ordering::SeqCst);
                let (n_past, prompt_len) = session.eval_with_images(text, images, options)?;
                (sampler, n_past, prompt_len, 0)
            }
            prompt => {
                let Prepared {
                    tokens,
                    sampler,
                    adapters,
                } = prepare(
                    &session.model,
                    prompt,
                    options,
                    &session.adapters,
                    session.n_ctx,
                    guard_ref,
                )?;
                session.apply_adapters(&adapters)?;
                session.cancel.store(false, Ordering::SeqCst);
                let key = session.applied.clone();
                if !session.prefix_reuse {
                    session.cache.clear(&mut session.ctx, 0);
                }
                let reused = session.cache.reuse(&mut session.ctx, 0, &tokens, &key);
                let n_batch = session.n_batch as usize;
                let rest = &tokens[reused..];
                for (i, chunk) in rest.chunks(n_batch).enumerate() {
                    if session.cancelled() {
                        cancelled = true;
                        break;
                    }
                    let is_last = (i + 1) * n_batch >= rest.len();
                    session.decode(chunk, reused + i * n_batch, is_last)?;
                }
                (sampler, tokens.len(), tokens.len(), reused)
            }
        };
        let guard = guard.take().expect("the guard is taken once, on success");
        let mut generation = Generation::new(
            options,
            sampler,
            guard,
            prompt_len,
            session.n_ctx as usize,
            started,
        );
        generation.start_at(n_past, prompt_len);
        generation.set_prompt_eval(prompt_started.elapsed().as_secs_f64() * 1e3, reused);
        if cancelled {
            generation.stop(FinishReason::Cancelled);
        }
        Ok(TokenStream {
            session,
            generation,
            failed: false,
        })
    }

    /// A request the safety policy refused: it yields the refusal message and generates
    /// nothing.
    fn refused(session: &'s mut Session, message: String, guard: RequestGuard) -> Self {
        TokenStream {
            session,
            generation: Generation::refused(message, guard),
            failed: false,
        }
    }

    /// The id of this request (as in the audit log).
    pub fn request_id(&self) -> &str {
        self.generation.request_id()
    }

    /// End the generation now with `reason` (the rest of held text is still emitted).
    pub fn stop(&mut self, reason: FinishReason) {
        self.generation.stop(reason);
    }

    /// Tokens generated so far.
    pub fn tokens(&self) -> &[Token] {
        self.generation.tokens()
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
        self.generation.completion(&self.session.model)
    }

    /// The next piece that passed the output filter; `Ok(None)` at the end.
    fn advance(&mut self) -> Result<Option<String>> {
        loop {
            match self.generation.poll() {
                Step::Piece(piece) => return Ok(Some(piece)),
                Step::Done => return Ok(None),
                Step::Decode(token) => {
                    if self.session.cancelled() {
                        self.generation.stop(FinishReason::Cancelled);
                        continue;
                    }
                    let at = self.generation.n_past();
                    self.session.decode(&[token], at, true)?;
                    self.generation.decoded();
                }
                Step::Sample => {
                    let session = &*self.session;
                    self.generation.sample(&session.model, &session.ctx, -1)?;
                }
            }
        }
    }
}

impl Drop for TokenStream<'_> {
    /// A stream dropped early (or after an error) is still audited.
    fn drop(&mut self) {
        if let Err(e) = self.generation.audit(&self.session.model) {
            tracing::error!(
                "audit record for {} not written: {e}",
                self.generation.request_id()
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
        match self.advance() {
            Ok(piece) => piece.map(Ok),
            Err(e) => {
                self.failed = true;
                self.generation.fail_as("error");
                Some(Err(e))
            }
        }
    }
}
