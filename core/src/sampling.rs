//! What a request asks of the sampler, and the llama.cpp sampler chain built from it.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

use crate::error::{Error, Result};
use crate::lora::AdapterSet;
use crate::model::{Model, Token};
use crate::structured_output::OutputConstraint;

/// What to do when the prompt plus `max_tokens` does not fit in the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// Fail with [`Error::ContextOverflow`] before decoding anything (the default).
    #[default]
    Error,
    /// Drop the oldest prompt tokens (after BOS) until the request fits.
    DropOldest,
}

/// Options of one generation request. `Default` gives llama.cpp's usual sampling settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateOptions {
    /// Most tokens to generate; `None` = until the context is full.
    pub max_tokens: Option<u32>,
    /// 0 (or `greedy`) picks the most likely token every step.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: i32,
    /// Nucleus sampling threshold (1.0 = off).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the best one (0 = off).
    pub min_p: f32,
    /// Penalty for tokens seen in the last `penalty_last_n` (1.0 = off).
    pub repeat_penalty: f32,
    /// OpenAI-style frequency penalty (0 = off).
    pub frequency_penalty: f32,
    /// OpenAI-style presence penalty (0 = off).
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: i32,
    /// RNG seed; `None` = a fresh random seed per request.
    pub seed: Option<u32>,
    /// Always take the most likely token, whatever the temperature.
    pub greedy: bool,
    /// Generation ends before any of these strings; they are not part of the output.
    pub stop: Vec<String>,
    /// Added to the logits of the given tokens before sampling (`f32::NEG_INFINITY` bans one).
    pub logit_bias: Vec<(Token, f32)>,
    /// Keep generating past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
    /// What to do when the request does not fit the context.
    pub truncation: Truncation,
    /// Keep the output inside a JSON schema, a choice list, a regex or a grammar.
    pub constraint: Option<OutputConstraint>,
    /// The request id for the audit log; `None` = generated.
    pub request_id: Option<String>,
    /// The caller or tenant of this request, overriding the session's.
    pub tenant: Option<String>,
    /// The route that chose this request's model and adapters (a server's router); recorded
    /// in the audit record's `serving.route`.
    pub route: Option<String>,
    /// LoRA adapters (with scales) for this request, replacing the session's set; `Some(vec![])`
    /// runs the bare model. The audit record lists them by name, SHA-256 and scale.
    #[serde(skip)]
    pub adapters: Option<AdapterSet>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: Some(256),
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: None,
            greedy: false,
            stop: Vec::new(),
            logit_bias: Vec::new(),
            ignore_eos: false,
            truncation: Truncation::Error,
            constraint: None,
            request_id: None,
            tenant: None,
            route: None,
            adapters: None,
        }
    }
}

impl GenerateOptions {
    /// Deterministic decoding: always the most likely token.
    pub fn greedy() -> GenerateOptions {
        GenerateOptions {
            greedy: true,
            temperature: 0.0,
            ..GenerateOptions::default()
        }
    }

    /// Builder-style setter for `max_tokens`.
    pub fn with_max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }

    /// Check every field; surfaces call this so bad input never reaches llama.cpp.
    pub fn validate(&self, model: &Model) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(format!(
                "temperature must be >= 0, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        if self.top_k < 0 {
            return bad(format!("top_k must be >= 0, got {}", self.top_k));
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return bad(format!(
                "repeat_penalty must be > 0, got {}",
                self.repeat_penalty
            ));
        }
        if !self.frequency_penalty.is_finite() || !self.presence_penalty.is_finite() {
            return bad("frequency_penalty and presence_penalty must be finite".into());
        }
        if self.penalty_last_n < 0 {
            return bad(format!(
                "penalty_last_n must be >= 0, got {}",
                self.penalty_last_n
            ));
        }
        if self.max_tokens == Some(0) {
            return bad("max_tokens must be at least 1".into());
        }
        for &(token, bias) in &self.logit_bias {
            model.check_token(token)?;
            if bias.is_nan() {
                return bad(format!("logit bias for token {token} is NaN"));
            }
        }
        Ok(())
    }

    fn is_greedy(&self) -> bool {
        self.greedy || self.temperature == 0.0
    }

    /// Builder-style setter for `constraint`.
    pub fn with_constraint(mut self, constraint: OutputConstraint) -> Self {
        self.constraint = Some(constraint);
        self
    }

    /// The sampler: llama.cpp's usual chain (bias, penalties, truncation, temperature) plus,
    /// for a constraint, a grammar checked the way llama.cpp's common sampler does it.
    pub(crate) fn build_sampler(&self, model: &Model) -> Result<Sampler> {
        let grammar = match &self.constraint {
            Some(constraint) => Some(constraint.sampler(model)?),
            None => None,
        };
        Ok(Sampler {
            chain: self.build_chain(model),
            grammar,
        })
    }

    fn build_chain(&self, model: &Model) -> LlamaSampler {
        let n_vocab = model.info().n_vocab as i32;
        let mut chain = Vec::new();
        if !self.logit_bias.is_empty() {
            let biases: Vec<LlamaLogitBias> = self
                .logit_bias
                .iter()
                .map(|&(t, b)| LlamaLogitBias::new(LlamaToken(t), b))
                .collect();
            chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        if self.repeat_penalty != 1.0
            || self.frequency_penalty != 0.0
            || self.presence_penalty != 0.0
        {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                self.penalty_last_n,
                self.repeat_penalty,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.is_greedy() {
            chain.push(LlamaSampler::greedy());
        } else {
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            if self.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(self.top_p, 1));
            }
            if self.min_p > 0.0 {
                chain.push(LlamaSampler::min_p(self.min_p, 1));
            }
            chain.push(LlamaSampler::temp(self.temperature));
            // llama.cpp draws a random seed for LLAMA_DEFAULT_SEED (u32::MAX).
            chain.push(LlamaSampler::dist(self.seed.unwrap_or(u32::MAX)));
        }
        LlamaSampler::chain_simple(chain)
    }
}

/// The grammar allows no next token: the constraint cannot be met from here on.
fn no_continuation() -> Error {
    Error::StructuredOutput(
        "the output constraint allows no next token (is the schema or grammar satisfiable?)".into(),
    )
}

/// Picks each token: the chain alone, or the chain under a grammar.
pub(crate) struct Sampler {
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
}

impl Sampler {
    /// A sampler that only takes the most likely token (for requests that generate nothing).
    pub(crate) fn greedy() -> Sampler {
        Sampler {
            chain: LlamaSampler::greedy(),
            grammar: None,
        }
    }

    /// The next token from the logits at batch index `idx` of the last decode (-1: the last
    /// position that has logits).
    ///
    /// With a grammar, checking every vocabulary entry against it costs far more than a
    /// decode step, so (like llama.cpp's common sampler) the token is first drawn freely and
    /// kept if the grammar accepts it; only otherwise is the grammar applied to the whole
    /// distribution and the token drawn again. Both paths give a token the grammar allows.
    ///
    /// A grammar that allows no token at all (an unsatisfiable schema such as `minimum` >
    /// `maximum`) is [`Error::StructuredOutput`]: accepting a token anyway would leave
    /// llama.cpp's grammar without parse stacks, and its next use aborts the process.
    pub(crate) fn sample(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> Result<Token> {
        let Some(grammar) = &mut self.grammar else {
            return Ok(self.chain.sample(ctx, idx).0);
        };
        let mut candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(idx), false);
        candidates.apply_sampler(&mut self.chain);
        let drawn = candidates.selected_token();
        let token = match drawn.filter(|&t| {
            let mut single =
                LlamaTokenDataArray::new(vec![LlamaTokenData::new(t, 1.0, 0.0)], false);
            single.apply_sampler(grammar);
            single.data[0].logit().is_finite()
        }) {
            Some(t) => t,
            None => {
                let mut candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(idx), false);
                candidates.apply_sampler(grammar);
                if !candidates.data.iter().any(|d| d.logit().is_finite()) {
                    return Err(no_continuation());
                }
                candidates.apply_sampler(&mut self.chain);
                candidates
                    .selected_token()
                    .expect("the sampler chain ends with a selecting sampler")
            }
        };
        grammar.try_accept(token).map_err(|_| no_continuation())?;
        self.chain.accept(token);
        Ok(token.0)
    }
}
