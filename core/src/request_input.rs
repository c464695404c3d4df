//! From what a caller sends to the tokens a context evaluates: the input check (safety),
//! chat rendering, tokenization, option validation, the sampler, the adapter set and the
//! context fit. Sessions and the batching engine both go through here, so a request is
//! checked and prepared the same way whichever runs it.

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::{Error, Result};
use crate::image_input::Image;
use crate::lora::{validate_set, AdapterSet};
use crate::model::{Model, Token};
use crate::request_guard::{Checked, RequestGuard};
use crate::sampling::{GenerateOptions, Sampler, Truncation};

/// The text to generate from.
#[derive(Debug, Clone, Copy)]
pub enum Prompt<'a> {
    /// Raw text, tokenized with the model's BOS; special-token text (`<|im_start|>`) is parsed.
    Text(&'a str),
    /// Tokens, used as given.
    Tokens(&'a [Token]),
    /// Text with one [`MEDIA_MARKER`](crate::MEDIA_MARKER) per image, and the images in
    /// order; needs the model's vision projector ([`Model::load_mmproj`](crate::Model::load_mmproj)).
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

/// A prompt that passed the input check (possibly redacted).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CheckedPrompt {
    Text(String),
    Tokens(Vec<Token>),
    WithImages { text: String, images: Vec<Image> },
}

impl CheckedPrompt {
    pub fn as_prompt(&self) -> Prompt<'_> {
        match self {
            CheckedPrompt::Text(t) => Prompt::Text(t),
            CheckedPrompt::Tokens(t) => Prompt::Tokens(t),
            CheckedPrompt::WithImages { text, images } => Prompt::WithImages { text, images },
        }
    }
}

/// A request's input: a prompt, or a conversation to render with the chat template.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    Prompt(Prompt<'a>),
    Chat(&'a [ChatMessage]),
}

/// Run the input check: the (redacted, rendered) prompt to evaluate, or the refusal message.
pub(crate) fn admit(
    guard: &mut RequestGuard,
    model: &Model,
    template: Option<&ChatTemplate>,
    input: Input<'_>,
) -> Result<Checked<CheckedPrompt>> {
    Ok(match input {
        Input::Prompt(Prompt::Text(text)) => match guard.check_prompt(text)? {
            Checked::Allowed(text) => Checked::Allowed(CheckedPrompt::Text(text)),
            Checked::Refused(message) => Checked::Refused(message),
        },
        Input::Prompt(Prompt::Tokens(tokens)) => {
            for &t in tokens {
                model.check_token(t)?;
            }
            let text = model.detokenize(tokens, true)?;
            match guard.check_prompt(&text)? {
                // Unchanged text keeps the caller's exact tokens.
                Checked::Allowed(redacted) if redacted == text => {
                    Checked::Allowed(CheckedPrompt::Tokens(tokens.to_vec()))
                }
                Checked::Allowed(redacted) => Checked::Allowed(CheckedPrompt::Text(redacted)),
                Checked::Refused(message) => Checked::Refused(message),
            }
        }
        Input::Prompt(Prompt::WithImages { text, images }) => match guard.check_prompt(text)? {
            Checked::Allowed(text) => Checked::Allowed(CheckedPrompt::WithImages {
                text,
                images: images.to_vec(),
            }),
            Checked::Refused(message) => Checked::Refused(message),
        },
        Input::Chat(messages) => match guard.check_messages(messages)? {
            Checked::Allowed(messages) if messages.iter().any(|m| !m.images.is_empty()) => {
                let (messages, images) = crate::vision::prepare_messages(&messages)?;
                let text = render_chat(model, template, &messages)?;
                Checked::Allowed(CheckedPrompt::WithImages { text, images })
            }
            Checked::Allowed(messages) => Checked::Allowed(CheckedPrompt::Text(render_chat(
                model, template, &messages,
            )?)),
            Checked::Refused(message) => Checked::Refused(message),
        },
    })
}

/// The prompt [`Session::chat`](crate::Session::chat) would generate from.
pub(crate) fn render_chat(
    model: &Model,
    template: Option<&ChatTemplate>,
    messages: &[ChatMessage],
) -> Result<String> {
    match template {
        Some(t) => t.render(model, messages, true),
        None => ChatTemplate::for_model(model)?.render(model, messages, true),
    }
}

/// A request ready to evaluate: its tokens (fitted to the context), sampler and adapters.
pub(crate) struct Prepared {
    pub tokens: Vec<Token>,
    pub sampler: Sampler,
    pub adapters: AdapterSet,
}

/// Validate the options, build the sampler (before anything is decoded, so a bad grammar
/// costs nothing) and resolve the adapter set (the request's, else `default_adapters`).
pub(crate) fn prepare_sampling(
    model: &Model,
    options: &GenerateOptions,
    default_adapters: &AdapterSet,
    guard: &mut RequestGuard,
) -> Result<(Sampler, AdapterSet)> {
    options.validate(model)?;
    let sampler = options.build_sampler(model)?;
    let adapters = options
        .adapters
        .as_ref()
        .unwrap_or(default_adapters)
        .clone();
    validate_set(model, &adapters)?;
    guard.set_adapters(&adapters);
    Ok((sampler, adapters))
}

/// [`prepare_sampling`], then tokenize and fit the prompt into `n_ctx` positions.
pub(crate) fn prepare(
    model: &Model,
    prompt: Prompt<'_>,
    options: &GenerateOptions,
    default_adapters: &AdapterSet,
    n_ctx: u32,
    guard: &mut RequestGuard,
) -> Result<Prepared> {
    let (sampler, adapters) = prepare_sampling(model, options, default_adapters, guard)?;
    let tokens = prompt_tokens(model, prompt)?;
    let tokens = fit(model, tokens, n_ctx, options)?;
    Ok(Prepared {
        tokens,
        sampler,
        adapters,
    })
}

/// The tokens of a prompt: text gets the model's BOS unless it already starts with it.
pub(crate) fn prompt_tokens(model: &Model, prompt: Prompt<'_>) -> Result<Vec<Token>> {
    let tokens = match prompt {
        Prompt::Text(text) => {
            let add_bos = match model.bos_text() {
                Some(bos) => !text.starts_with(&bos),
                None => true,
            };
            model.tokenize(text, add_bos, true)
        }
        Prompt::Tokens(tokens) => {
            for &t in tokens {
                model.check_token(t)?;
            }
            tokens.to_vec()
        }
        Prompt::WithImages { .. } => {
            return Err(Error::InvalidArgument(
                "a prompt with images cannot be evaluated as tokens only".into(),
            ))
        }
    };
    if tokens.is_empty() {
        return Err(Error::InvalidArgument("the prompt is empty".into()));
    }
    model.check_prompt_limit(tokens.len())?;
    Ok(tokens)
}

/// Apply the truncation policy so that prompt + max_tokens fits `n_ctx` positions.
pub(crate) fn fit(
    model: &Model,
    mut tokens: Vec<Token>,
    n_ctx: u32,
    options: &GenerateOptions,
) -> Result<Vec<Token>> {
    let n_ctx = n_ctx as usize;
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
            let head = usize::from(model.tokenize("", true, false).first() == Some(&tokens[0]));
            let drop = tokens.len() - keep;
            tokens.drain(head..head + drop);
            Ok(tokens)
        }
    }
}
