//! Chat templates: the model's own Jinja template rendered with minijinja the way Hugging Face
//! renders it, or one of llama.cpp's built-in templates by name.

use std::ffi::{c_char, CStr, CString};

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};

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
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
            name: None,
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
                    && !supports_system_role(&template, options)
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

/// Render a probe with a system message: a template that drops it or raises does not
/// support the system role.
fn supports_system_role(template: &minijinja::Template<'_, '_>, options: &RenderOptions) -> bool {
    const NEEDLE: &str = "<<llmedge system probe>>";
    let probe = [ChatMessage::system(NEEDLE), ChatMessage::user("hi")];
    template
        .render(minijinja::context! {
            messages => probe,
            add_generation_prompt => false,
            bos_token => options.bos_token,
            eos_token => options.eos_token,
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
    let total: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
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
    Err(Error::Internal("llama_chat_apply_template kept growing".into()))
}

fn truncate_for_message(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An environment configured like Hugging Face's `apply_chat_template`:
/// `trim_blocks`, `lstrip_blocks`, loop controls, Python string methods,
/// `raise_exception` and `strftime_now`.
fn jinja_env(source: &str) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |format: String| {
        chrono::Local::now().format(&format).to_string()
    });
    env.add_template_owned("chat", source.to_owned())
        .map_err(jinja_error)?;
    Ok(env)
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
        assert_eq!(t.render_with(&msgs, &opts).unwrap(), "<user>Be brief.\nHi|d");
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
