//! Chat templates: the model's own Jinja template rendered with minijinja the way Hugging Face
//! renders it, or one of llama.cpp's built-in templates by name.

use std::ffi::{c_char, CStr};

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate};
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};

use crate::error::{Error, Result};
use crate::model::Model;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` (or any role the template knows).
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
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
    /// `add_generation_prompt` is true.
    pub fn render(
        &self,
        model: &Model,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        match self {
            ChatTemplate::Jinja(source) => {
                let env = jinja_env(source)?;
                let template = env.get_template("chat").map_err(jinja_error)?;
                template
                    .render(minijinja::context! {
                        messages => messages,
                        add_generation_prompt => add_generation_prompt,
                        bos_token => model.bos_text().unwrap_or_default(),
                        eos_token => model.eos_text().unwrap_or_default(),
                    })
                    .map_err(jinja_error)
            }
            ChatTemplate::Builtin(name) => {
                let template = LlamaChatTemplate::new(name)
                    .map_err(|_| Error::InvalidUtf8("template name"))?;
                let chat = messages
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::InvalidArgument(format!("chat message: {e}")))?;
                model
                    .llama()
                    .apply_chat_template(&template, &chat, add_generation_prompt)
                    .map_err(|e| Error::Template(format!("llama.cpp template {name:?}: {e}")))
            }
        }
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
}
