//! Chat templates: the model's own Jinja template rendered with minijinja the way Hugging Face
//! renders it, or one of llama.cpp's built-in templates by name.

use std::ffi::{c_char, CStr, CString};

use minijinja::value::{from_args, Kwargs, ValueKind};
use minijinja::{AutoEscape, Environment, Error as JinjaError, ErrorKind, Output, State, Value};

use crate::error::{Error, Result};
use crate::model::Model;

/// One message of a conversation, in the OpenAI shape templates expect.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool` (or any role the template knows).
    pub role: String,
    pub content: String,
    /// The assistant's tool calls (OpenAI `tool_calls` array), for tool-use templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    /// Which call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The tool's name on a `tool` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Images of the message, in order: each stands at a `<__media__>` marker in `content`,
    /// or, when `content` has none, before the text. OpenAI content parts are parsed into
    /// this by [`ChatMessage::from_openai`]. Serialised as hash and size only.
    #[serde(default, skip_serializing_if = "Vec::is_empty", skip_deserializing)]
    pub images: Vec<crate::image_input::Image>,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
            name: None,
            images: Vec::new(),
        }
    }
    pub fn system(content: impl Into<String>) -> ChatMessage {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> ChatMessage {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        Self::new("assistant", content)
    }
}

/// A chat template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// A Hugging Face style Jinja template.
    Jinja(String),
    /// One of llama.cpp's built-in templates, by name (`chatml`, `llama3`, `gemma`, ...).
    Builtin(String),
}

impl ChatTemplate {
    /// A Jinja source (anything containing `{{` or `{%`) or a built-in template name.
    pub fn parse(source: &str) -> Result<ChatTemplate> {
        if source.contains("{{") || source.contains("{%") {
            let template = ChatTemplate::Jinja(source.to_owned());
            // Fail on syntax errors now, not at the first request.
            jinja_env(source)?;
            return Ok(template);
        }
        let names = ChatTemplate::builtin_names();
        if names.iter().any(|n| n == source) {
            Ok(ChatTemplate::Builtin(source.to_owned()))
        } else {
            Err(Error::Template(format!(
                "unknown built-in chat template {source:?}; known: {}",
                names.join(", ")
            )))
        }
    }

    /// The template embedded in the model, or [`Error::NoChatTemplate`].
    pub fn for_model(model: &Model) -> Result<ChatTemplate> {
        model
            .info()
            .chat_template
            .clone()
            .map(ChatTemplate::Jinja)
            .ok_or(Error::NoChatTemplate)
    }

    /// Names of llama.cpp's built-in templates.
    pub fn builtin_names() -> Vec<String> {
        // SAFETY: with a null output and length 0 llama.cpp only returns the count.
        let n = unsafe { llama_cpp_sys_2::llama_chat_builtin_templates(std::ptr::null_mut(), 0) };
        let mut ptrs: Vec<*const c_char> = vec![std::ptr::null(); n.max(0) as usize];
        // SAFETY: `ptrs` has room for `n` pointers; llama.cpp fills them with static strings.
        unsafe { llama_cpp_sys_2::llama_chat_builtin_templates(ptrs.as_mut_ptr(), ptrs.len()) };
        ptrs.into_iter()
            .filter(|p| !p.is_null())
            // SAFETY: each pointer is a NUL-terminated static string owned by llama.cpp.
            .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .collect()
    }

    /// Render `messages` into a prompt, ending with the assistant's turn when
    /// `add_generation_prompt` is true. BOS/EOS come from the model.
    pub fn render(
        &self,
        model: &Model,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.render_with(
            messages,
            &RenderOptions {
                add_generation_prompt,
                bos_token: model.bos_text().unwrap_or_default(),
                eos_token: model.eos_text().unwrap_or_default(),
                ..RenderOptions::default()
            },
        )
    }

    /// Render with every option: tools, assistant prefill, explicit BOS/EOS. Needs no model.
    ///
    /// Like llama.cpp's chat layer, a Jinja template that ignores or rejects the system role
    /// gets the system prompt merged into the first user message (`system + "\n" + user`),
    /// so a system prompt is never silently lost.
    pub fn render_with(&self, messages: &[ChatMessage], options: &RenderOptions) -> Result<String> {
        if options.continue_final_message && options.add_generation_prompt {
            return Err(Error::InvalidArgument(
                "continue_final_message and add_generation_prompt exclude each other".into(),
            ));
        }
        let extra = match &options.extra_context {
            None => Value::from(()),
            Some(v) if v.is_object() => Value::from_serialize(v),
            Some(_) => {
                return Err(Error::InvalidArgument(
                    "extra_context must be a JSON object".into(),
                ))
            }
        };
        let rendered = match self {
            ChatTemplate::Jinja(source) => {
                let env = jinja_env(source)?;
                let template = env.get_template("chat").map_err(jinja_error)?;
                let merged;
                let messages = if messages.first().is_some_and(|m| m.role == "system")
                    && !supports_system_role(&template, options, &extra)
                {
                    merged = merge_system_message(messages);
                    &merged[..]
                } else {
                    messages
                };
                template
                    .render(minijinja::context! {
                        messages => messages,
                        tools => options.tools,
                        add_generation_prompt => options.add_generation_prompt,
                        bos_token => options.bos_token,
                        eos_token => options.eos_token,
                        ..extra
                    })
                    .map_err(jinja_error)?
            }
            ChatTemplate::Builtin(name) => {
                if options.tools.is_some() {
                    return Err(Error::Template(format!(
                        "llama.cpp's built-in template {name:?} has no tool support; use the model's Jinja template"
                    )));
                }
                render_native(name, messages, options.add_generation_prompt)?
            }
        };
        if options.continue_final_message {
            continue_final_message(rendered, messages)
        } else {
            Ok(rendered)
        }
    }
}

/// How to render a conversation (the knobs of Hugging Face's `apply_chat_template`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RenderOptions {
    /// End with the header of a new assistant turn.
    pub add_generation_prompt: bool,
    /// Leave the final (assistant) message open so the model continues it: an assistant
    /// prefill such as `{"verdict": "`.
    pub continue_final_message: bool,
    /// OpenAI-style tool definitions, passed to the template as `tools`.
    pub tools: Option<serde_json::Value>,
    pub bos_token: String,
    pub eos_token: String,
    /// More template variables (a JSON object), e.g. `{"enable_thinking": false}` or a fixed
    /// `date_string`; the named fields above win over keys repeated here.
    pub extra_context: Option<serde_json::Value>,
}

/// Render a probe with a system message, with the same `tools` and extra context as the
/// real rendering: a template that drops it or raises does not support the system role.
fn supports_system_role(
    template: &minijinja::Template<'_, '_>,
    options: &RenderOptions,
    extra: &Value,
) -> bool {
    const NEEDLE: &str = "<<llmedge system probe>>";
    let probe = [ChatMessage::system(NEEDLE), ChatMessage::user("hi")];
    template
        .render(minijinja::context! {
            messages => probe,
            tools => options.tools,
            add_generation_prompt => false,
            bos_token => options.bos_token,
            eos_token => options.eos_token,
            ..extra.clone()
        })
        .is_ok_and(|out| out.contains(NEEDLE))
}

/// llama.cpp's workaround: fold the system prompt into the next message.
fn merge_system_message(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut rest = messages[1..].to_vec();
    if let Some(next) = rest.first_mut() {
        next.content = format!("{}\n{}", messages[0].content, next.content);
    }
    rest
}

/// Cut the rendering right after the final message's content, as Hugging Face does for
/// `continue_final_message`.
fn continue_final_message(rendered: String, messages: &[ChatMessage]) -> Result<String> {
    let last = messages.last().ok_or_else(|| {
        Error::InvalidArgument("continue_final_message needs at least one message".into())
    })?;
    let content = last.content.trim();
    match rendered.rfind(content) {
        Some(at) if !content.is_empty() => Ok(rendered[..at + content.len()].to_owned()),
        _ => Err(Error::Template(
            "continue_final_message: the final message's content does not appear in the rendering"
                .into(),
        )),
    }
}

/// llama.cpp's native renderer (`llama_chat_apply_template`) for a built-in template name
/// or a template source it recognises.
pub fn render_native(
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
) -> Result<String> {
    let cstr = |s: &str, what: &str| {
        CString::new(s).map_err(|_| Error::InvalidArgument(format!("{what} contains a NUL byte")))
    };
    let tmpl = cstr(template, "template")?;
    let owned = messages
        .iter()
        .map(|m| Ok((cstr(&m.role, "role")?, cstr(&m.content, "message content")?)))
        .collect::<Result<Vec<_>>>()?;
    let chat: Vec<llama_cpp_sys_2::llama_chat_message> = owned
        .iter()
        .map(|(role, content)| llama_cpp_sys_2::llama_chat_message {
            role: role.as_ptr(),
            content: content.as_ptr(),
        })
        .collect();
    let total: usize = messages
        .iter()
        .map(|m| m.content.len() + m.role.len())
        .sum();
    let mut buf = vec![0u8; total * 2 + 256];
    for _ in 0..2 {
        // SAFETY: every pointer in `chat` points into `owned`, alive for this call; `buf`
        // is writable for `buf.len()` bytes and llama.cpp writes at most that many.
        let n = unsafe {
            llama_cpp_sys_2::llama_chat_apply_template(
                tmpl.as_ptr(),
                chat.as_ptr(),
                chat.len(),
                add_generation_prompt,
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len() as i32,
            )
        };
        if n < 0 {
            return Err(Error::Template(format!(
                "llama.cpp does not support the chat template {:?}",
                truncate_for_message(template)
            )));
        }
        let n = n as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return String::from_utf8(buf).map_err(|_| Error::InvalidUtf8("rendered chat"));
        }
        buf = vec![0u8; n];
    }
    Err(Error::Internal(
        "llama_chat_apply_template kept growing".into(),
    ))
}

fn truncate_for_message(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An environment configured like Hugging Face's `apply_chat_template`:
/// `trim_blocks`, `lstrip_blocks`, loop controls, Python string methods,
/// `raise_exception`, `strftime_now`, the `{% generation %}` tag, transformers' `tojson`,
/// Jinja2's `iterable` test and Python's printing of lists and dicts.
fn jinja_env(source: &str) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(python_method);
    env.add_filter("tojson", tojson);
    env.add_test("iterable", |v: &Value| !v.is_none() && v.try_iter().is_ok());
    env.set_formatter(python_formatter);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |format: String| {
        chrono::Local::now().format(&format).to_string()
    });
    env.add_template_owned("chat", rewrite_generation_tags(source))
        .map_err(jinja_error)?;
    Ok(env)
}

/// transformers' `{% generation %}...{% endgeneration %}` block (it marks the assistant
/// tokens for `return_assistant_tokens_mask` and renders its body unchanged) becomes
/// `{% if true %}...{% endif %}`, keeping the `-`/`+` whitespace markers and the line count.
fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        out.push_str(&rest[..at]);
        let tag = &rest[at..];
        match parse_generation_tag(tag) {
            Some((len, open, close, end)) => {
                let body = if end { "endif" } else { "if true" };
                out.push_str(&format!("{{%{open} {body} {close}%}}"));
                rest = &tag[len..];
            }
            None => {
                out.push_str("{%");
                rest = &tag[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `{%[-+]? (end)?generation [-+]?%}` at the start of `tag`: (length, opening marker,
/// closing marker, is the end tag).
fn parse_generation_tag(tag: &str) -> Option<(usize, &str, &str, bool)> {
    let marker = |s: &str| match s.chars().next() {
        Some(c @ ('-' | '+')) => c.len_utf8(),
        _ => 0,
    };
    let after_open = &tag[2..];
    let open = &after_open[..marker(after_open)];
    let inner = after_open[open.len()..].trim_start();
    let (end, inner) = if let Some(r) = inner.strip_prefix("endgeneration") {
        (true, r)
    } else {
        (false, inner.strip_prefix("generation")?)
    };
    if inner.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let inner = inner.trim_start();
    let close = &inner[..marker(inner)];
    let inner = inner[close.len()..].strip_prefix("%}")?;
    Some((tag.len() - inner.len(), open, close, end))
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, with the same positional order and keywords.
/// Object keys keep their order, nothing is HTML-escaped and floats print as Python's
/// (`1.0`, `1e+16`).
fn tojson(value: &Value, args: &[Value]) -> std::result::Result<Value, JinjaError> {
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => (rest, Kwargs::try_from(last.clone())?),
        _ => (args, Kwargs::from_iter(std::iter::empty::<(&str, Value)>())),
    };
    if positional.len() > 4 {
        return Err(JinjaError::new(
            ErrorKind::TooManyArguments,
            "tojson() takes at most 4 arguments after the value",
        ));
    }
    let arg = |index: usize, name: &str| -> std::result::Result<Value, JinjaError> {
        match (positional.get(index), kwargs.get::<Option<Value>>(name)?) {
            (Some(_), Some(_)) => Err(JinjaError::new(
                ErrorKind::TooManyArguments,
                format!("tojson() got multiple values for argument '{name}'"),
            )),
            (Some(v), None) => Ok(v.clone()),
            (None, Some(v)) => Ok(v),
            (None, None) => Ok(Value::from(())),
        }
    };
    let ensure_ascii = arg(0, "ensure_ascii")?.is_true();
    let indent = arg(1, "indent")?;
    let separators = arg(2, "separators")?;
    let sort_keys = arg(3, "sort_keys")?.is_true();
    kwargs.assert_all_used()?;
    let bad = |what: &str| JinjaError::new(ErrorKind::InvalidOperation, format!("tojson: {what}"));
    let indent = match indent.kind() {
        ValueKind::None | ValueKind::Undefined => None,
        ValueKind::String => Some(indent.as_str().unwrap_or_default().to_owned()),
        ValueKind::Number if indent.is_integer() => {
            let n = indent.as_i64().ok_or_else(|| bad("indent out of range"))?;
            Some(" ".repeat(n.clamp(0, 1024) as usize))
        }
        _ => return Err(bad("indent must be an integer, a string or none")),
    };
    let (item_sep, key_sep) = if separators.is_none() || separators.is_undefined() {
        let item = if indent.is_some() { "," } else { ", " };
        (item.to_owned(), ": ".to_owned())
    } else {
        let parts: Vec<Value> = separators.try_iter()?.collect();
        match &parts[..] {
            [item, key] if item.as_str().is_some() && key.as_str().is_some() => (
                item.as_str().unwrap_or_default().to_owned(),
                key.as_str().unwrap_or_default().to_owned(),
            ),
            _ => return Err(bad("separators must be an (item, key) pair of strings")),
        }
    };
    let encoder = JsonEncoder {
        ensure_ascii,
        indent,
        item_sep,
        key_sep,
        sort_keys,
    };
    let mut out = String::new();
    encoder.value(&mut out, value, 0)?;
    Ok(Value::from(out))
}

/// Deep enough for any real tool schema; stops runaway recursion like Python's limit.
const MAX_DEPTH: usize = 256;

/// Python's `json.JSONEncoder`, over minijinja values.
struct JsonEncoder {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonEncoder {
    fn value(
        &self,
        out: &mut String,
        v: &Value,
        depth: usize,
    ) -> std::result::Result<(), JinjaError> {
        if depth > MAX_DEPTH {
            return Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                "tojson: value nested too deeply",
            ));
        }
        match v.kind() {
            ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => out.push_str(&json_number(v)),
            ValueKind::String => self.string(out, v.as_str().unwrap_or_default()),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                self.container(out, '[', ']', &items, depth, |out, item| {
                    self.value(out, item, depth + 1)
                })?;
            }
            ValueKind::Map => {
                let mut entries = Vec::new();
                for key in v.try_iter()? {
                    let item = v.get_item(&key)?;
                    entries.push((json_key(&key)?, item));
                }
                if self.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                self.container(out, '{', '}', &entries, depth, |out, (key, item)| {
                    self.string(out, key);
                    out.push_str(&self.key_sep);
                    self.value(out, item, depth + 1)
                })?;
            }
            kind => {
                return Err(JinjaError::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: object of type {kind} is not JSON serializable"),
                ))
            }
        }
        Ok(())
    }

    fn container<T>(
        &self,
        out: &mut String,
        open: char,
        close: char,
        items: &[T],
        depth: usize,
        mut each: impl FnMut(&mut String, &T) -> std::result::Result<(), JinjaError>,
    ) -> std::result::Result<(), JinjaError> {
        out.push(open);
        if items.is_empty() {
            out.push(close);
            return Ok(());
        }
        let newline = |level: usize| match &self.indent {
            Some(indent) => format!("\n{}", indent.repeat(level)),
            None => String::new(),
        };
        let inner = newline(depth + 1);
        out.push_str(&inner);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(&self.item_sep);
                out.push_str(&inner);
            }
            each(out, item)?;
        }
        out.push_str(&newline(depth));
        out.push(close);
        Ok(())
    }

    /// A JSON string literal: Python escapes `"`, `\\` and control characters, and with
    /// `ensure_ascii` everything outside printable ASCII (UTF-16 surrogate pairs above
    /// U+FFFF).
    fn string(&self, out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && !(' '..='~').contains(&c)) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// An object key as Python's json module writes it: strings as they are, numbers,
/// booleans and none converted; anything else is an error.
fn json_key(key: &Value) -> std::result::Result<String, JinjaError> {
    Ok(match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_owned(),
        ValueKind::None => "null".to_owned(),
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.to_owned(),
        ValueKind::Number => json_number(key),
        kind => {
            return Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                format!("tojson: keys must be str, int, float, bool or None, not {kind}"),
            ))
        }
    })
}

/// A number as `json.dumps` writes it (`NaN`/`Infinity` for non-finite floats).
fn json_number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) if f.is_nan() => "NaN".to_owned(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned(),
        Ok(f) => python_float_repr(f),
        Err(_) => v.to_string(),
    }
}

/// Python's `repr(float)` for a finite float: the shortest round-trip digits, fixed
/// notation for exponents -4..16 (always with a fraction: `2.0`), else `1e+16`, `1.5e-07`.
fn python_float_repr(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exp) {
        if exp < 0 {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else {
            let point = exp as usize + 1;
            if digits.len() <= point {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{first}{fraction}e{exp_sign}{:02}", exp.unsigned_abs())
    };
    format!("{sign}{body}")
}

/// Print values as Jinja2 does (`str(x)`): lists and dicts as Python's repr
/// (`['a']`, `{'k': True}`); everything else as minijinja prints it. minijinja's lazy
/// sequences (slices, `map`/`select` results) print as lists: Python would print a list
/// for a slice and `<generator object ...>` for the rest.
fn python_formatter(
    out: &mut Output,
    state: &State,
    value: &Value,
) -> std::result::Result<(), JinjaError> {
    if matches!(state.auto_escape(), AutoEscape::None)
        && matches!(
            value.kind(),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
        )
    {
        let mut repr = String::new();
        python_repr(&mut repr, value, 0)?;
        return out
            .write_str(&repr)
            .map_err(|_| JinjaError::from(ErrorKind::WriteFailure));
    }
    minijinja::escape_formatter(out, state, value)
}

/// Python's `repr()` of a value.
fn python_repr(out: &mut String, v: &Value, depth: usize) -> std::result::Result<(), JinjaError> {
    if depth > MAX_DEPTH {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            "value nested too deeply to print",
        ));
    }
    match v.kind() {
        ValueKind::Undefined => out.push_str("Undefined"),
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number if !v.is_integer() => match f64::try_from(v.clone()) {
            Ok(f) if f.is_nan() => out.push_str("nan"),
            Ok(f) if f.is_infinite() => out.push_str(if f > 0.0 { "inf" } else { "-inf" }),
            Ok(f) => out.push_str(&python_float_repr(f)),
            Err(_) => out.push_str(&v.to_string()),
        },
        ValueKind::String => python_str_repr(out, v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_repr(out, &item, depth + 1)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_repr(out, &key, depth + 1)?;
                out.push_str(": ");
                python_repr(out, &v.get_item(&key)?, depth + 1)?;
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
    Ok(())
}

/// Python's `repr()` of a str: single quotes unless the text has `'` and no `"`,
/// backslash escapes for control and other non-printable characters.
fn python_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !python_printable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// An approximation of Python's `str.isprintable` for one character: control,
/// separator (other than the space) and common format characters are not printable.
fn python_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e000}'..='\u{f8ff}'
                | '\u{e0000}'..='\u{10ffff}'
        ))
}

/// Python methods on values: minijinja-contrib's `pycompat`, plus `str.rsplit`,
/// `str.index`/`rindex`, `list.index`, and `str.find`/`rfind` counting characters
/// rather than bytes (with Python's optional start/end).
fn python_method(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> std::result::Result<Value, JinjaError> {
    if let Some(s) = value.as_str() {
        match method {
            "rsplit" => {
                let (sep, maxsplit, kwargs): (Option<Value>, Option<i64>, Kwargs) =
                    from_args(args)?;
                let sep = match (sep, kwargs.get::<Option<Value>>("sep")?) {
                    (Some(v), None) | (None, Some(v)) => v,
                    _ => Value::from(()),
                };
                let maxsplit = match (maxsplit, kwargs.get::<Option<i64>>("maxsplit")?) {
                    (Some(n), None) | (None, Some(n)) => n,
                    _ => -1,
                };
                kwargs.assert_all_used()?;
                let limit = usize::try_from(maxsplit).ok();
                let parts = if sep.is_none() || sep.is_undefined() {
                    rsplit_whitespace(s, limit)
                } else {
                    let sep = sep.as_str().ok_or_else(|| {
                        JinjaError::new(ErrorKind::InvalidOperation, "rsplit: sep must be a str")
                    })?;
                    if sep.is_empty() {
                        return Err(JinjaError::new(
                            ErrorKind::InvalidOperation,
                            "rsplit: empty separator",
                        ));
                    }
                    let mut parts: Vec<&str> = match limit {
                        Some(n) => s.rsplitn(n + 1, sep).collect(),
                        None => s.rsplit(sep).collect(),
                    };
                    parts.reverse();
                    parts
                };
                return Ok(parts.into_iter().map(Value::from).collect());
            }
            "find" | "rfind" | "index" | "rindex" => {
                let (sub, start, end): (&str, Option<Value>, Option<Value>) = from_args(args)?;
                let found = str_find(s, sub, start, end, method.starts_with('r'))?;
                return match found {
                    Some(at) => Ok(Value::from(at)),
                    None if method.ends_with("find") => Ok(Value::from(-1)),
                    None => Err(JinjaError::new(
                        ErrorKind::InvalidOperation,
                        "substring not found",
                    )),
                };
            }
            _ => {}
        }
    } else if value.kind() == ValueKind::Seq && method == "index" {
        let (item,): (&Value,) = from_args(args)?;
        return match value.try_iter()?.position(|x| &x == item) {
            Some(at) => Ok(Value::from(at)),
            None => Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                format!("{item} is not in list"),
            )),
        };
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Python's `str.rsplit()` without a separator: split on runs of whitespace from the
/// right, at most `limit` times; the rest keeps its leading whitespace.
fn rsplit_whitespace(s: &str, limit: Option<usize>) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = s.trim_end();
    while !rest.is_empty() {
        if limit == Some(parts.len()) {
            parts.push(rest);
            break;
        }
        match rest.char_indices().rev().find(|(_, c)| c.is_whitespace()) {
            Some((at, c)) => {
                parts.push(&rest[at + c.len_utf8()..]);
                rest = rest[..at].trim_end();
            }
            None => {
                parts.push(rest);
                break;
            }
        }
    }
    parts.reverse();
    parts
}

/// Python's `str.find`/`rfind(sub, start, end)`: the character index of `sub` within
/// `s[start:end]` (slice semantics for the bounds), or `None`.
fn str_find(
    s: &str,
    sub: &str,
    start: Option<Value>,
    end: Option<Value>,
    from_right: bool,
) -> std::result::Result<Option<usize>, JinjaError> {
    let len = s.chars().count() as i64;
    let bound = |v: Option<Value>, default: i64| -> std::result::Result<i64, JinjaError> {
        match v {
            Some(v) if !v.is_none() => {
                let n = v.as_i64().ok_or_else(|| {
                    JinjaError::new(
                        ErrorKind::InvalidOperation,
                        "slice indices must be integers",
                    )
                })?;
                Ok(if n < 0 { (n + len).max(0) } else { n })
            }
            _ => Ok(default),
        }
    };
    let start = bound(start, 0)?;
    let end = bound(end, len)?.min(len);
    if start > len || start > end {
        return Ok(None);
    }
    let byte = |chars: i64| {
        s.char_indices()
            .nth(chars as usize)
            .map_or(s.len(), |(i, _)| i)
    };
    let (from, to) = (byte(start), byte(end));
    let window = &s[from..to];
    let found = if from_right {
        window.rfind(sub)
    } else {
        window.find(sub)
    };
    Ok(found.map(|at| start as usize + window[..at].chars().count()))
}

fn jinja_error(e: JinjaError) -> Error {
    let mut msg = e.to_string();
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    Error::Template(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tells_jinja_from_builtin_names() {
        assert!(matches!(
            ChatTemplate::parse("chatml").unwrap(),
            ChatTemplate::Builtin(_)
        ));
        assert!(matches!(
            ChatTemplate::parse("{{ messages[0].content }}").unwrap(),
            ChatTemplate::Jinja(_)
        ));
        assert_eq!(
            ChatTemplate::parse("no-such-template").unwrap_err().code(),
            crate::ErrorCode::Template
        );
        let e = ChatTemplate::parse("{% for m in messages %}").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Template);
        assert!(ChatTemplate::builtin_names().iter().any(|n| n == "llama3"));
    }

    #[test]
    fn hf_globals_and_python_methods_work() {
        let env = jinja_env(
            "{% for m in messages %}{% if m.role == 'bad' %}{{ raise_exception('no bad') }}{% endif %}\
             {{ m.content.strip() | upper }}{% if loop.last %}{% break %}{% endif %}{% endfor %}\
             {{ messages | tojson }}{{ strftime_now('%Y') | length }}",
        )
        .unwrap();
        let t = env.get_template("chat").unwrap();
        let out = t
            .render(minijinja::context! { messages => vec![ChatMessage::user("  hi ")] })
            .unwrap();
        assert!(out.starts_with("HI[{"), "{out}");
        assert!(out.ends_with('4'));
        let err = t
            .render(minijinja::context! { messages => vec![ChatMessage::new("bad", "x")] })
            .unwrap_err();
        assert!(err.to_string().contains("no bad"));
    }

    #[test]
    fn system_prompt_is_merged_when_the_template_drops_it() {
        let t = ChatTemplate::parse(
            "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system') }}{% endif %}\
             <{{ m.role }}>{{ m.content }}{% endfor %}{{ date_string }}",
        )
        .unwrap();
        let msgs = [ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
        let opts = RenderOptions {
            extra_context: Some(serde_json::json!({"date_string": "|d"})),
            ..RenderOptions::default()
        };
        assert_eq!(
            t.render_with(&msgs, &opts).unwrap(),
            "<user>Be brief.\nHi|d"
        );
        let bad = RenderOptions {
            extra_context: Some(serde_json::json!([1])),
            ..RenderOptions::default()
        };
        assert!(t.render_with(&msgs, &bad).is_err());
    }

    #[test]
    fn continue_final_message_leaves_the_prefill_open() {
        let t = ChatTemplate::parse(
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}",
        )
        .unwrap();
        let msgs = [ChatMessage::user("Q"), ChatMessage::assistant("{\"a\": ")];
        let opts = RenderOptions {
            continue_final_message: true,
            ..RenderOptions::default()
        };
        assert_eq!(
            t.render_with(&msgs, &opts).unwrap(),
            "<user>Q</s><assistant>{\"a\":"
        );
    }

    /// Render `source` with `ctx` in the chat environment.
    fn render(source: &str, ctx: Value) -> std::result::Result<String, JinjaError> {
        jinja_env(source)
            .unwrap()
            .get_template("chat")
            .unwrap()
            .render(ctx)
    }

    #[test]
    fn tojson_is_pythons_json_dumps() {
        let x = Value::from_serialize(serde_json::json!({
            "type": "function",
            "name": "w<&'>",
            "args": {"unit": "°C", "n": [1, 2.0, 1e16, 1.5e-7, -0.5, true, null]},
            "empty": {}, "none": [],
        }));
        let ctx = minijinja::context! { x };
        assert_eq!(
            render("{{ x | tojson }}", ctx.clone()).unwrap(),
            r#"{"type": "function", "name": "w<&'>", "args": {"unit": "°C", "n": [1, 2.0, 1e+16, 1.5e-07, -0.5, true, null]}, "empty": {}, "none": []}"#
        );
        assert_eq!(
            render("{{ x.args | tojson(indent=2) }}", ctx.clone()).unwrap(),
            "{\n  \"unit\": \"°C\",\n  \"n\": [\n    1,\n    2.0,\n    1e+16,\n    1.5e-07,\n    -0.5,\n    true,\n    null\n  ]\n}"
        );
        assert_eq!(
            render(
                "{{ x.empty | tojson(indent=2) }}{{ x.none | tojson(indent='\t') }}",
                ctx.clone()
            )
            .unwrap(),
            "{}[]"
        );
        assert_eq!(
            render(
                "{{ x.args.unit | tojson(ensure_ascii=True) }}|{{ '😀\u{7f}' | tojson(true) }}",
                ctx.clone()
            )
            .unwrap(),
            r#""\u00b0C"|"\ud83d\ude00\u007f""#
        );
        assert_eq!(
            render(
                "{{ x | tojson(sort_keys=True, separators=(',', ':')) }}",
                ctx.clone()
            )
            .unwrap(),
            r#"{"args":{"n":[1,2.0,1e+16,1.5e-07,-0.5,true,null],"unit":"°C"},"empty":{},"name":"w<&'>","none":[],"type":"function"}"#
        );
        assert_eq!(
            render(
                r#"{{ "a\"\\\n\t\u0001" | tojson }}|{{ {1: 'x', none: 'y'} | tojson }}"#,
                ctx.clone()
            )
            .unwrap(),
            r#""a\"\\\n\t\u0001"|{"1": "x", "null": "y"}"#
        );
        // Like json.dumps: undefined values, unknown keywords and duplicated arguments fail.
        assert!(render("{{ x.missing | tojson }}", ctx.clone()).is_err());
        assert!(render("{{ x | tojson(width=2) }}", ctx.clone()).is_err());
        assert!(render("{{ x | tojson(false, ensure_ascii=true) }}", ctx).is_err());
    }

    #[test]
    fn python_float_repr_matches_python() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
        ] {
            assert_eq!(python_float_repr(f), want);
        }
    }

    #[test]
    fn map_keys_keep_their_order() {
        let x = Value::from_serialize(serde_json::json!({"zeta": 1, "alpha": 2}));
        let out = render(
            "{% for k, v in x.items() %}{{ k }};{% endfor %}{% for k in {'b': 1, 'a': 2} %}{{ k }};{% endfor %}",
            minijinja::context! { x },
        )
        .unwrap();
        assert_eq!(out, "zeta;alpha;b;a;");
    }

    #[test]
    fn none_is_not_iterable() {
        let out = render(
            "{{ none is iterable }}|{{ missing is iterable }}|{{ tools is iterable }}|{{ 3 is iterable }}|\
             {{ 's' is iterable }}|{{ [] is iterable }}|{{ {} is iterable }}\
             {% if tools is iterable and tools | length > 0 %}T{% endif %}",
            minijinja::context! { tools => () },
        )
        .unwrap();
        assert_eq!(out, "False|True|False|False|True|True|True");
    }

    #[test]
    fn generation_tags_render_their_body() {
        assert_eq!(
            rewrite_generation_tags(
                "{% generation %}a{%- endgeneration -%} {%+generation+%}{%generations %}{% endgenerations %}"
            ),
            "{% if true %}a{%- endif -%} {%+ if true +%}{%generations %}{% endgenerations %}"
        );
        let t = ChatTemplate::parse(
            "{% for m in messages %}{% if m.role == 'assistant' %}\n{%- generation %}\n[{{ m.content }}]\n{%- endgeneration %}\n{% else %}{{ m.content }}{% endif %}{% endfor %}",
        )
        .unwrap();
        let msgs = [ChatMessage::user("Q"), ChatMessage::assistant("A")];
        assert_eq!(
            t.render_with(&msgs, &RenderOptions::default()).unwrap(),
            "Q[A]"
        );
    }

    #[test]
    fn python_str_and_list_methods() {
        let out = render(
            "{{ 'a/b/c'.rsplit('/', 1) | join('|') }};{{ '  a b  c  '.rsplit(none, 1) | join('|') }};\
             {{ ' a  b '.rsplit() | join('|') }};{{ 'a,b,,c'.rsplit(',') | join('|') }};\
             {{ 'a/b/c'.rsplit(sep='/', maxsplit=1) | join('|') }};\
             {{ 'héllo'.find('l') }}{{ 'héllo'.rfind('l') }}{{ 'héllo'.index('l', -2) }}\
             {{ 'héllo'.rindex('l') }}{{ 'abc'.find('c', 0, 2) }}{{ 'abc'.find('', 3) }}{{ 'abc'.find('', 4) }};\
             {{ ['x', 'y'].index('y') }}",
            minijinja::context! {},
        )
        .unwrap();
        assert_eq!(out, "a/b|c;  a b|c;a|b;a|b||c;a/b|c;2333-13-1;1");
        let err = render("{{ 'abc'.index('z') }}", minijinja::context! {}).unwrap_err();
        assert!(err.to_string().contains("substring not found"), "{err}");
        assert!(render("{{ [1].index(2) }}", minijinja::context! {}).is_err());
        assert!(render("{{ 'a'.rsplit('') }}", minijinja::context! {}).is_err());
        // pycompat's methods still work.
        assert_eq!(
            render(
                "{{ ' x '.strip() }}{{ 'a'.upper() }}",
                minijinja::context! {}
            )
            .unwrap(),
            "xA"
        );
    }

    #[test]
    fn lists_and_dicts_print_as_python() {
        let x = Value::from_serialize(serde_json::json!({
            "k": ["a", "b'c", "x\"y'", "\u{a0}\u{200b}\n\u{7f}é😀"],
            "n": [1, 2.0, true, null],
        }));
        let out = render(
            "{{ x }}|{{ x.n }}|{{ 'plain' }}|{{ 'safe' | safe }}|{{ true }}|{{ none }}|{{ 2.0 }}",
            minijinja::context! { x },
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{'k': ['a', "b'c", 'x"y\'', '\xa0\u200b\n\x7fé😀'], 'n': [1, 2.0, True, None]}|[1, 2.0, True, None]|plain|safe|True|None|2.0"#
        );
    }

    #[test]
    fn system_role_probe_sees_tools_and_extra_context() {
        // Fails without tools (None | length) or without `flag`: the probe must pass both.
        let t = ChatTemplate::parse(
            "{% if tools is not none and tools | length > 0 %}T{% endif %}{{ flag.x }}\
             {% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}",
        )
        .unwrap();
        let msgs = [ChatMessage::system("S"), ChatMessage::user("U")];
        let opts = RenderOptions {
            tools: Some(serde_json::json!([{"type": "function"}])),
            extra_context: Some(serde_json::json!({"flag": {"x": "!"}})),
            ..RenderOptions::default()
        };
        assert_eq!(t.render_with(&msgs, &opts).unwrap(), "T![system:S][user:U]");
    }

    #[test]
    fn native_renderer_matches_for_chatml() {
        let msgs = [ChatMessage::system("S"), ChatMessage::user("U")];
        let native = render_native("chatml", &msgs, true).unwrap();
        assert_eq!(
            native,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(render_native("no such template {{", &msgs, true).is_err());
    }
}
