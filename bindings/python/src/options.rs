//! Python arguments into core requests: prompts, chat messages and `GenerateOptions`.

use llmedge::{ChatMessage, GenerateOptions, OutputConstraint, Token, Truncation};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyString, PyTuple};

use crate::args::{to_f32, to_int, to_string, wrong_type, Args};
use crate::errors::{invalid, null};

/// Declares a parameter list: the leading names, then every generation option, then (unless
/// the call is itself the constraint, as `generate_json`'s schema is) the output constraints.
macro_rules! with_generate_options {
    (unconstrained: $($lead:literal),*) => {
        &[
            $($lead,)*
            "max_tokens",
            "temperature",
            "top_k",
            "top_p",
            "min_p",
            "repeat_penalty",
            "frequency_penalty",
            "presence_penalty",
            "penalty_last_n",
            "seed",
            "greedy",
            "stop",
            "logit_bias",
            "ignore_eos",
            "truncation",
            "request_id",
            "tenant",
            "adapters",
        ]
    };
    ($($lead:literal),*) => {
        &[
            $($lead,)*
            "max_tokens",
            "temperature",
            "top_k",
            "top_p",
            "min_p",
            "repeat_penalty",
            "frequency_penalty",
            "presence_penalty",
            "penalty_last_n",
            "seed",
            "greedy",
            "stop",
            "logit_bias",
            "ignore_eos",
            "truncation",
            "json_schema",
            "choices",
            "regex",
            "grammar",
            "request_id",
            "tenant",
            "adapters",
        ]
    };
}

pub const GENERATE_ARGS: &[&str] = with_generate_options!("prompt", "images", "stream");
pub const COMPLETE_ARGS: &[&str] = with_generate_options!("prompt", "images");
pub const CHAT_ARGS: &[&str] = with_generate_options!("messages", "stream");
pub const CHAT_COMPLETE_ARGS: &[&str] = with_generate_options!("messages");
pub const GENERATE_JSON_ARGS: &[&str] = with_generate_options!(unconstrained: "prompt", "schema");
pub const CHAT_JSON_ARGS: &[&str] = with_generate_options!(unconstrained: "messages", "schema");
pub const RUN_TEMPLATE_ARGS: &[&str] = with_generate_options!("template", "vars");
pub const RUN_DYNAMIC_ARGS: &[&str] = with_generate_options!("template", "request");
pub const SUBMIT_ARGS: &[&str] = with_generate_options!("prompt", "stream", "timeout");
pub const ENGINE_COMPLETE_ARGS: &[&str] = with_generate_options!("prompt", "timeout");
pub const ENGINE_CHAT_ARGS: &[&str] = with_generate_options!("messages", "timeout");

/// What to generate from.
#[derive(Debug, Clone)]
pub enum Request {
    Text(String),
    Tokens(Vec<Token>),
    /// A conversation, rendered by the session's chat template (its messages are checked by
    /// the safety layer one by one).
    Messages(Vec<ChatMessage>),
    /// A raw prompt with images (one marker per image, or none: then they go first).
    WithImages(String, Vec<llmedge::Image>),
}

/// `GenerateOptions` from the keyword arguments (core's defaults for the absent ones).
/// Core validates the values again before anything reaches llama.cpp.
pub fn generate_options(a: &Args<'_>) -> PyResult<GenerateOptions> {
    let mut o = GenerateOptions::default();
    if let Some(v) = a.raw("max_tokens") {
        o.max_tokens = if v.is_none() {
            None
        } else {
            Some(a.u32("max_tokens", 1)?.unwrap_or(1))
        };
    }
    if let Some(v) = a.f32("temperature")? {
        o.temperature = v;
    }
    if let Some(v) = a.i32("top_k", i32::MIN)? {
        o.top_k = v;
    }
    if let Some(v) = a.f32("top_p")? {
        o.top_p = v;
    }
    if let Some(v) = a.f32("min_p")? {
        o.min_p = v;
    }
    if let Some(v) = a.f32("repeat_penalty")? {
        o.repeat_penalty = v;
    }
    if let Some(v) = a.f32("frequency_penalty")? {
        o.frequency_penalty = v;
    }
    if let Some(v) = a.f32("presence_penalty")? {
        o.presence_penalty = v;
    }
    if let Some(v) = a.i32("penalty_last_n", i32::MIN)? {
        o.penalty_last_n = v;
    }
    o.seed = a.u32("seed", 0)?;
    if let Some(v) = a.bool("greedy")? {
        o.greedy = v;
    }
    if let Some(v) = a.opt("stop") {
        o.stop = stop_strings(a, v)?;
    }
    if let Some(v) = a.opt("logit_bias") {
        o.logit_bias = logit_bias(a, v)?;
    }
    if let Some(v) = a.bool("ignore_eos")? {
        o.ignore_eos = v;
    }
    if let Some(v) = a.string("truncation")? {
        o.truncation = match v.as_str() {
            "error" => Truncation::Error,
            "drop_oldest" => Truncation::DropOldest,
            other => {
                return Err(invalid(
                    a.py(),
                    format!("truncation must be 'error' or 'drop_oldest', got {other:?}"),
                ))
            }
        };
    }
    o.constraint = constraint(a)?;
    o.request_id = a.string("request_id")?;
    o.tenant = a.string("tenant")?;
    Ok(o)
}

/// `json_schema=` (a dict or a JSON string), `choices=`, `regex=` or `grammar=`: at most one.
/// Core turns it into a grammar (and raises `GrammarError` for one it cannot use).
fn constraint(a: &Args<'_>) -> PyResult<Option<OutputConstraint>> {
    let py = a.py();
    if !a.declares("json_schema") {
        return Ok(None);
    }
    let given: Vec<&str> = ["json_schema", "choices", "regex", "grammar"]
        .into_iter()
        .filter(|n| a.opt(n).is_some())
        .collect();
    if given.len() > 1 {
        return Err(invalid(
            py,
            format!(
                "{}(): give at most one of json_schema, choices, regex and grammar (got {})",
                a.func(),
                given.join(", ")
            ),
        ));
    }
    if let Some(v) = a.opt("json_schema") {
        let schema = crate::json::from_py_or_str(py, a.func(), "json_schema", v)?;
        return Ok(Some(OutputConstraint::JsonSchema(schema)));
    }
    if let Some(v) = a.opt("choices") {
        if v.is_instance_of::<PyString>()
            || !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>())
        {
            return Err(a.wrong_type("choices", "list[str]", v));
        }
        let choices = v
            .try_iter()?
            .map(|c| to_string(py, a.func(), "choices", &c?))
            .collect::<PyResult<Vec<String>>>()?;
        return Ok(Some(OutputConstraint::Choice(choices)));
    }
    if let Some(regex) = a.string("regex")? {
        return Ok(Some(OutputConstraint::Regex(regex)));
    }
    Ok(a.string("grammar")?.map(OutputConstraint::Grammar))
}

/// `stop`: one string or a sequence of strings.
fn stop_strings(a: &Args<'_>, v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let py = a.py();
    if v.is_instance_of::<PyString>() {
        return Ok(vec![to_string(py, a.func(), "stop", v)?]);
    }
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(a.wrong_type("stop", "str or list[str]", v));
    }
    v.try_iter()?
        .map(|item| to_string(py, a.func(), "stop", &item?))
        .collect()
}

/// `logit_bias`: a mapping of token id (int, or a decimal string as in OpenAI's JSON) to bias.
fn logit_bias(a: &Args<'_>, v: &Bound<'_, PyAny>) -> PyResult<Vec<(Token, f32)>> {
    let py = a.py();
    let func = a.func();
    let map = v
        .cast::<PyMapping>()
        .map_err(|_| a.wrong_type("logit_bias", "dict[int, float]", v))?;
    let mut out = Vec::new();
    for item in map.items()?.iter() {
        let (key, bias): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let token = if key.is_instance_of::<PyString>() {
            let text = to_string(py, func, "logit_bias", &key)?;
            text.trim().parse::<i32>().map_err(|_| {
                invalid(
                    py,
                    format!("{func}(): logit_bias key {text:?} is not a token id"),
                )
            })?
        } else {
            to_int(
                py,
                func,
                "logit_bias",
                &key,
                i64::from(i32::MIN),
                i64::from(i32::MAX),
            )? as i32
        };
        out.push((token, to_f32(py, func, "logit_bias", &bias)?));
    }
    Ok(out)
}

/// A prompt: `str`, or a sequence of token ids.
pub fn prompt(a: &Args<'_>) -> PyResult<Request> {
    let py = a.py();
    let v = a.required("prompt")?;
    if v.is_instance_of::<PyString>() {
        let text = to_string(py, a.func(), "prompt", v)?;
        return Ok(match crate::vision::images_arg(a)? {
            Some(images) if text.contains(llmedge::MEDIA_MARKER) || images.is_empty() => {
                Request::WithImages(text, images)
            }
            Some(images) => {
                Request::WithImages(llmedge::MEDIA_MARKER.repeat(images.len()) + &text, images)
            }
            None => Request::Text(text),
        });
    }
    if v.is_instance_of::<PyBytes>() || v.is_instance_of::<PyDict>() {
        return Err(a.wrong_type("prompt", "str or list[int]", v));
    }
    let items = v
        .try_iter()
        .map_err(|_| a.wrong_type("prompt", "str or list[int]", v))?;
    let tokens = items
        .map(|t| {
            Ok(to_int(
                py,
                a.func(),
                "prompt",
                &t?,
                i64::from(i32::MIN),
                i64::from(i32::MAX),
            )? as i32)
        })
        .collect::<PyResult<Vec<Token>>>()?;
    Ok(Request::Tokens(tokens))
}

/// OpenAI-shaped messages: a list of `{"role": ..., "content": ...}` dicts (or objects with
/// `role` and `content` attributes). `content` may be a string, `None`, or a list of
/// `{"type": "text", "text": ...}` parts.
pub fn messages(a: &Args<'_>) -> PyResult<Vec<ChatMessage>> {
    messages_value(a, a.required("messages")?)
}

/// Messages given as the value `v` of one of `a`'s arguments.
pub fn messages_value(a: &Args<'_>, v: &Bound<'_, PyAny>) -> PyResult<Vec<ChatMessage>> {
    let py = a.py();
    let func = a.func();
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(a.wrong_type("messages", "list[dict]", v));
    }
    let mut out = Vec::new();
    for (i, item) in v.try_iter()?.enumerate() {
        let item = item?;
        let field = |name: &'static str| -> PyResult<Option<Bound<'_, PyAny>>> {
            if let Ok(map) = item.cast::<PyMapping>() {
                if map.contains(name)? {
                    return Ok(Some(map.get_item(name)?));
                }
                return Ok(None);
            }
            if item.is_instance_of::<PyString>() {
                return Err(wrong_type(py, func, "messages", "list[dict]", &item));
            }
            match item.getattr(name) {
                Ok(v) => Ok(Some(v)),
                Err(_) => Ok(None),
            }
        };
        let role = match field("role")? {
            None => {
                return Err(invalid(
                    py,
                    format!("{func}(): messages[{i}] has no 'role'"),
                ))
            }
            Some(r) if r.is_none() => return Err(null(py, "message role")),
            Some(r) => to_string(py, func, "role", &r)?,
        };
        let content = match field("content")? {
            None => {
                return Err(invalid(
                    py,
                    format!("{func}(): messages[{i}] has no 'content'"),
                ))
            }
            Some(c) => crate::vision::content(py, func, &c)?,
        };
        let mut message = ChatMessage::new(role, content.0);
        message.images = content.1;
        out.push(message);
    }
    if out.is_empty() {
        return Err(invalid(py, format!("{func}(): messages is empty")));
    }
    Ok(out)
}
