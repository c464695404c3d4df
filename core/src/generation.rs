//! One request's generation, independent of the llama.cpp context that decodes it: sampling,
//! stop strings and UTF-8 assembly, the safety output filter, the token and context limits,
//! timings, usage and the audit record.
//!
//! A [`Session`](crate::Session) drives one of these at a time on its own context; the
//! batching [`Engine`](crate::Engine) drives many on one shared context, a decode step at a
//! time. Both follow the same loop, so a request behaves the same whichever runs it:
//!
//! ```text
//! loop match generation.poll() {
//!     Step::Piece(text)   => hand the text to the caller,
//!     Step::Decode(token) => evaluate token at generation.n_past(), then generation.decoded(),
//!     Step::Sample        => generation.sample(ctx, batch_index_of_its_logits),
//!     Step::Done          => break,
//! }
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;

use crate::audit::TokenCounts;
use crate::error::Result;
use crate::model::{Model, Token};
use crate::request_guard::RequestGuard;
use crate::response_cache::CachedResponse;
use crate::safety::StreamEvent;
use crate::sampling::{GenerateOptions, Sampler};
use crate::session::{Completion, FinishReason, Timings, Usage};
use crate::stream_text::StreamText;

/// What the driver of a [`Generation`] does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Text that passed the output filter: give it to the caller.
    Piece(String),
    /// Evaluate this token at position [`Generation::n_past`] (with logits), then call
    /// [`Generation::decoded`]. The driver checks its cancellation before doing so.
    Decode(Token),
    /// The logits of the last evaluated position are ready: call [`Generation::sample`].
    Sample,
    /// Finished and flushed.
    Done,
}

/// One request's generation state. See the module doc for the loop that drives it.
pub(crate) struct Generation {
    sampler: Sampler,
    text: StreamText,
    max_new: usize,
    /// No `max_tokens`: the context's end is the limit.
    unbounded: bool,
    /// Positions the request may use (its context window).
    n_ctx: usize,
    ignore_eos: bool,
    n_past: usize,
    prompt_len: usize,
    /// Sampled but not yet evaluated: evaluated only if another token is needed.
    pending: Option<Token>,
    tokens: Vec<Token>,
    /// Everything handed to the caller so far.
    output: String,
    /// Filtered text not yet handed out.
    ready: VecDeque<String>,
    finish: Option<FinishReason>,
    /// The stop-string/UTF-8 assembler has been flushed.
    flushed: bool,
    /// The output filter has been flushed.
    filter_done: bool,
    /// Set when the request failed: the finish reason its audit record gets.
    error: Option<String>,
    started: Instant,
    prompt_ms: f64,
    /// Prompt tokens reused from the KV cache.
    cached: usize,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    guard: RequestGuard,
}

impl Generation {
    /// A generation whose prompt (`prompt_len` tokens) is about to be evaluated; `started` is
    /// when the request arrived (time to first token counts from there).
    pub fn new(
        options: &GenerateOptions,
        sampler: Sampler,
        mut guard: RequestGuard,
        prompt_len: usize,
        n_ctx: usize,
        started: Instant,
    ) -> Generation {
        guard.start_output();
        Generation {
            sampler,
            text: StreamText::new(&options.stop),
            max_new: options
                .max_tokens
                .map_or(n_ctx.saturating_sub(prompt_len), |m| m as usize),
            unbounded: options.max_tokens.is_none(),
            n_ctx,
            ignore_eos: options.ignore_eos,
            n_past: prompt_len,
            prompt_len,
            pending: None,
            tokens: Vec::new(),
            output: String::new(),
            ready: VecDeque::new(),
            finish: None,
            flushed: false,
            filter_done: false,
            error: None,
            started,
            prompt_ms: 0.0,
            cached: 0,
            first_token: None,
            last_token: None,
            guard,
        }
    }

    /// A request the safety policy refused: it yields the refusal message and generates
    /// nothing.
    pub fn refused(message: String, guard: RequestGuard) -> Generation {
        let mut generation = Generation::new(
            &GenerateOptions::default(),
            Sampler::greedy(),
            guard,
            0,
            0,
            Instant::now(),
        );
        generation.ready.push_back(message);
        generation.finish = Some(FinishReason::ContentFilter);
        generation.flushed = true;
        generation.filter_done = true;
        generation
    }

    /// The request id (as in the audit log).
    pub fn request_id(&self) -> &str {
        &self.guard.request_id
    }

    /// The request's context window, and the cells its output needs beyond the prompt (for
    /// the fit check of a prompt measured only once evaluated, such as one with images).
    pub fn room(&self) -> (usize, usize) {
        (self.n_ctx, if self.unbounded { 1 } else { self.max_new })
    }

    /// Position of the next token to evaluate.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Tokens generated so far.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The prompt took `prompt_len` KV cells and ended at position `n_past` (fewer than its
    /// cells when it holds images under M-RoPE).
    pub fn start_at(&mut self, n_past: usize, prompt_len: usize) {
        self.n_past = n_past;
        self.prompt_len = prompt_len;
        if self.unbounded {
            self.max_new = self.n_ctx.saturating_sub(prompt_len);
        }
    }

    /// Record how long the prompt took to evaluate, and how many of its leading tokens were
    /// reused from the KV cache instead.
    pub fn set_prompt_eval(&mut self, ms: f64, cached: usize) {
        self.prompt_ms = ms;
        self.cached = cached;
    }

    /// End the generation with `reason` (text still held back is flushed through the filter).
    pub fn stop(&mut self, reason: FinishReason) {
        if self.finish.is_none() {
            self.finish = Some(reason);
        }
    }

    /// The request failed: nothing more is produced and the audit record's finish reason is
    /// `reason` (`error`, `error:timeout`, ...).
    pub fn fail_as(&mut self, reason: &str) {
        self.error = Some(reason.to_owned());
        self.ready.clear();
        self.stop(FinishReason::Stop);
        self.flushed = true;
        self.filter_done = true;
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Step {
        loop {
            if let Some(piece) = self.ready.pop_front() {
                self.output.push_str(&piece);
                return Step::Piece(piece);
            }
            if self.finish.is_some() {
                if !self.flushed {
                    self.flushed = true;
                    let rest = self.text.finish();
                    if !rest.is_empty() {
                        self.filter(&rest);
                    }
                    continue;
                }
                if !self.filter_done {
                    self.filter_done = true;
                    let event = self.guard.finish_output();
                    self.push_event(event);
                    continue;
                }
                return Step::Done;
            }
            match self.pending {
                Some(_) if self.tokens.len() >= self.max_new || self.n_past >= self.n_ctx => {
                    self.finish = Some(FinishReason::Length);
                }
                Some(token) => return Step::Decode(token),
                None => return Step::Sample,
            }
        }
    }

    /// Answer from a response cache: the cached text goes through the output filter as one
    /// piece, and the audit record says `serving.response_cache = "hit"`.
    pub fn replay(&mut self, cached: &CachedResponse) {
        let now = Instant::now();
        self.first_token = Some(now);
        self.last_token = Some(now);
        self.cached = self.prompt_len;
        self.tokens = cached.tokens.clone();
        self.flushed = true;
        self.guard.set_cache_hit();
        self.filter(&cached.text);
        self.stop(cached.finish_reason);
    }

    /// The token returned by [`Step::Decode`] was evaluated at [`Generation::n_past`].
    pub fn decoded(&mut self) {
        self.pending = None;
        self.n_past += 1;
    }

    /// Sample the next token from the logits at batch index `idx` (-1: the last one).
    pub fn sample(&mut self, model: &Model, ctx: &LlamaContext<'_>, idx: i32) -> Result<()> {
        let token = self.sampler.sample(ctx, idx)?;
        self.accept(model, token)
    }

    fn accept(&mut self, model: &Model, token: Token) -> Result<()> {
        let now = Instant::now();
        self.first_token.get_or_insert(now);
        self.last_token = Some(now);
        if !self.ignore_eos && model.is_end_of_generation(token) {
            self.finish = Some(FinishReason::Stop);
            return Ok(());
        }
        self.tokens.push(token);
        let mut bytes = Vec::new();
        model.token_piece_into(token, false, &mut bytes)?;
        let fed = self.text.feed(&bytes);
        if fed.stopped {
            self.finish = Some(FinishReason::Stop);
            self.flushed = true;
        } else {
            self.pending = Some(token);
        }
        if !fed.emit.is_empty() {
            self.filter(&fed.emit);
        }
        Ok(())
    }

    fn filter(&mut self, text: &str) {
        let event = self.guard.filter(text);
        self.push_event(event);
    }

    fn push_event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Text(text) if text.is_empty() => {}
            StreamEvent::Text(text) => self.ready.push_back(text),
            StreamEvent::Blocked { .. } => {
                // Nothing more reaches the caller; generation stops here.
                self.finish = Some(FinishReason::ContentFilter);
                self.flushed = true;
                self.filter_done = true;
            }
        }
    }

    /// Append the audit record (once; later calls do nothing).
    pub fn audit(&mut self, model: &Model) -> Result<()> {
        let finish = match (&self.error, self.finish) {
            (Some(error), _) => error.as_str(),
            (None, Some(reason)) => reason.as_str(),
            (None, None) => "abandoned",
        };
        let tokens = TokenCounts {
            prompt: self.prompt_len as u64,
            completion: self.tokens.len() as u64,
        };
        let finish = finish.to_owned();
        self.guard.audit(model, &self.output, tokens, &finish)
    }

    /// The result (audited). Call after [`Step::Done`], or after [`Generation::stop`] to keep
    /// only what was handed out.
    pub fn completion(&mut self, model: &Model) -> Result<Completion> {
        let finish_reason = self.finish.unwrap_or(FinishReason::Stop);
        self.audit(model)?;
        let generation_ms = match (self.first_token, self.last_token) {
            (Some(a), Some(b)) => (b - a).as_secs_f64() * 1e3,
            _ => 0.0,
        };
        let per_second = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
        let completion_tokens = self.tokens.len();
        Ok(Completion {
            request_id: self.guard.request_id.clone(),
            safety: self.guard.report(),
            text: std::mem::take(&mut self.output),
            tokens: std::mem::take(&mut self.tokens),
            finish_reason,
            usage: Usage {
                prompt_tokens: self.prompt_len as u32,
                completion_tokens: completion_tokens as u32,
                cached_prompt_tokens: self.cached as u32,
            },
            timings: Timings {
                time_to_first_token_ms: self
                    .first_token
                    .map_or(0.0, |t| (t - self.started).as_secs_f64() * 1e3),
                prompt_ms: self.prompt_ms,
                generation_ms,
                prompt_tokens_per_second: per_second(self.prompt_len - self.cached, self.prompt_ms),
                generation_tokens_per_second: per_second(
                    completion_tokens.saturating_sub(1),
                    generation_ms,
                ),
            },
        })
    }
}
