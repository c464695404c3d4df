//! The generation methods shared by `Model` (its default session) and `Session`:
//! `generate`, `complete`, `chat`, `chat_complete`, the structured flows (`generate_json`,
//! `chat_json`, `complete_json`, `chat_complete_json`, `run_template`, `run_dynamic`) and
//! `render_chat`. [`generation_methods!`] declares them once for both classes.

use std::sync::Arc;

use llmedge::{ChatMessage, ChatTemplate, GenerateOptions, Model};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::args::{to_string, Args};
use crate::errors::IntoPy;
use crate::json::{from_py_or_str, object_from_py, to_py_value};
use crate::options::{
    generate_options, messages, prompt, Request, CHAT_ARGS, CHAT_COMPLETE_ARGS, CHAT_JSON_ARGS,
    COMPLETE_ARGS, GENERATE_ARGS, GENERATE_JSON_ARGS, RUN_DYNAMIC_ARGS, RUN_TEMPLATE_ARGS,
};
use crate::results::{PyCompletion, PyDynamicFlowOutput, PyJsonCompletion, PyTemplateOutput};
use crate::slot::{run_blocking, run_on_session, Slot};
use crate::stream;
use crate::template::template_arg;

/// Where a request runs.
pub struct Target<'a> {
    pub slot: Arc<Slot>,
    pub model: Model,
    pub template: Option<&'a ChatTemplate>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `generate(prompt)`: text, or a stream.
    Generate,
    /// `complete(prompt)`: a `Completion`.
    Complete,
    /// `chat(messages)`: text, or a stream.
    Chat,
    /// `chat_complete(messages)`: a `Completion`.
    ChatComplete,
}

pub fn call(
    py: Python<'_>,
    target: Target<'_>,
    kind: Kind,
    func: &'static str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let names = match kind {
        Kind::Generate => GENERATE_ARGS,
        Kind::Complete => COMPLETE_ARGS,
        Kind::Chat => CHAT_ARGS,
        Kind::ChatComplete => CHAT_COMPLETE_ARGS,
    };
    let a = Args::parse(py, func, names, 1, args, kwargs)?;
    let request = match kind {
        Kind::Generate | Kind::Complete => prompt(&a)?,
        Kind::Chat | Kind::ChatComplete => Request::Messages(messages(&a)?),
    };
    let options = checked_options(&a, &target.model)?;
    let streaming = match kind {
        Kind::Generate | Kind::Chat => a.bool("stream")?.unwrap_or(false),
        Kind::Complete | Kind::ChatComplete => false,
    };
    if streaming {
        let s = stream::start(py, &target.slot, request, options)?;
        return Ok(Py::new(py, s)?.into_any());
    }
    let completion = run_blocking(py, &target.slot, &request, &options)?;
    match kind {
        Kind::Complete | Kind::ChatComplete => {
            Ok(Py::new(py, PyCompletion::from(completion))?.into_any())
        }
        Kind::Generate | Kind::Chat => Ok(completion.text.into_pyobject(py)?.into_any().unbind()),
    }
}

/// Render `messages` with `template`, else the model's own template.
pub fn render(
    py: Python<'_>,
    model: &Model,
    template: Option<&ChatTemplate>,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
) -> PyResult<String> {
    let owned;
    let template = match template {
        Some(t) => t,
        None => {
            owned = ChatTemplate::for_model(model).py(py)?;
            &owned
        }
    };
    py.detach(|| template.render(model, messages, add_generation_prompt))
        .py(py)
}

/// `render_chat(messages, add_generation_prompt=True)`.
pub fn render_call(
    py: Python<'_>,
    model: &Model,
    template: Option<&ChatTemplate>,
    func: &'static str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    let a = Args::parse(
        py,
        func,
        &["messages", "add_generation_prompt"],
        2,
        args,
        kwargs,
    )?;
    let messages = messages(&a)?;
    let add = a.bool("add_generation_prompt")?.unwrap_or(true);
    render(py, model, template, &messages, add)
}

/// The generation options of a call, validated by core.
pub fn checked_options(a: &Args<'_>, model: &Model) -> PyResult<GenerateOptions> {
    let mut options = generate_options(a)?;
    options.adapters = crate::lora::adapter_set(a, "adapters", model, false)?;
    options.validate(model).py(a.py())?;
    Ok(options)
}

/// `generate_json(prompt, schema)`, `chat_json(messages, schema)` (the parsed value) and
/// `complete_json`/`chat_complete_json` (a `JsonCompletion`).
pub fn json_call(
    py: Python<'_>,
    target: Target<'_>,
    chat: bool,
    full: bool,
    func: &'static str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let names = if chat {
        CHAT_JSON_ARGS
    } else {
        GENERATE_JSON_ARGS
    };
    let a = Args::parse(py, func, names, 2, args, kwargs)?;
    let request = if chat {
        Request::Messages(messages(&a)?)
    } else {
        prompt(&a)?
    };
    let schema = from_py_or_str(py, func, "schema", a.required("schema")?)?;
    let options = checked_options(&a, &target.model)?;
    let out = run_on_session(py, &target.slot, move |s| match &request {
        Request::Text(text) => s.generate_json(text.as_str(), &schema, &options),
        Request::Tokens(tokens) => s.generate_json(tokens.as_slice(), &schema, &options),
        Request::Messages(messages) => s.chat_json(messages, &schema, &options),
        Request::WithImages(text, images) => s.generate_json(
            llmedge::Prompt::WithImages { text, images },
            &schema,
            &options,
        ),
    })?;
    if full {
        Ok(Py::new(py, PyJsonCompletion::from(out))?.into_any())
    } else {
        Ok(to_py_value(py, &out.value)?.unbind())
    }
}

/// `run_template(template, vars=None, **options)`.
pub fn template_call(
    py: Python<'_>,
    target: Target<'_>,
    func: &'static str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyTemplateOutput> {
    let a = Args::parse(py, func, RUN_TEMPLATE_ARGS, 2, args, kwargs)?;
    let template = template_arg(&a, "template")?;
    let vars = match a.opt("vars") {
        Some(v) => object_from_py(py, func, "vars", v)?,
        None => Default::default(),
    };
    let options = checked_options(&a, &target.model)?;
    let out = run_on_session(py, &target.slot, move |s| {
        s.run_template(&template, &vars, &options)
    })?;
    Ok(out.into())
}

/// `run_dynamic(template, request, **options)`.
pub fn dynamic_call(
    py: Python<'_>,
    target: Target<'_>,
    func: &'static str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyDynamicFlowOutput> {
    let a = Args::parse(py, func, RUN_DYNAMIC_ARGS, 2, args, kwargs)?;
    let template = template_arg(&a, "template")?;
    let request = to_string(py, func, "request", a.required("request")?)?;
    let options = checked_options(&a, &target.model)?;
    let out = run_on_session(py, &target.slot, move |s| {
        s.run_dynamic(&template, &request, &options)
    })?;
    Ok(out.into())
}

/// Declares the generation methods of a class that has `fn target(&self, py) ->
/// PyResult<Target>`, followed by the class's own methods (`$($rest)*`), in its one
/// `#[pymethods]` block. The text signatures list core's defaults (checked by the tests).
macro_rules! generation_methods {
    ($class:ty { $($rest:tt)* }) => {
        #[pymethods]
        impl $class {
            /// Generate text from `prompt` (a string, or a list of token ids).
            /// `images` (a list of `Image`s or paths) go with a string prompt, at its
            /// `<__media__>` markers or before the text; they need `Model(mmproj=...)`.
            ///
            /// Returns the generated text, or with `stream=True` a `TokenStream` of text pieces.
            /// `max_tokens=None` generates until the context is full; `greedy=True` (or
            /// `temperature=0`) is deterministic; `stop` strings end generation and are not
            /// returned; `logit_bias` maps token ids to biases; `truncation='drop_oldest'` drops
            /// the start of a prompt that does not fit instead of raising `ContextOverflowError`.
            /// At most one of `json_schema` (a dict or JSON string), `choices` (list of strings),
            /// `regex` or `grammar` (GBNF, start rule `root`) constrains the output.
            /// `request_id` and `tenant` label the request in the audit log. `adapters` is a list
            /// of `(LoraAdapter, scale)` (or bare `LoraAdapter`s, scale 1.0) to run this request
            /// with instead of the session's; `[]` runs the bare model.
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, prompt, *, images=None, stream=False, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
            )]
            fn generate(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::call(
                    py,
                    self.target(py)?,
                    $crate::generate::Kind::Generate,
                    "generate",
                    args,
                    kwargs,
                )
            }

            /// Like `generate`, returning the full `Completion` (text, tokens, finish reason,
            /// usage, timings, request id, safety report).
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, prompt, *, images=None, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
            )]
            fn complete(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::call(
                    py,
                    self.target(py)?,
                    $crate::generate::Kind::Complete,
                    "complete",
                    args,
                    kwargs,
                )
            }

            /// Reply to OpenAI-shaped `messages` (`[{"role": "user", "content": "..."}]`) using
            /// the chat template. Returns the reply, or with `stream=True` a `TokenStream`.
            /// Options as in `generate`.
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, messages, *, stream=False, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
            )]
            fn chat(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::call(
                    py,
                    self.target(py)?,
                    $crate::generate::Kind::Chat,
                    "chat",
                    args,
                    kwargs,
                )
            }

            /// Like `chat`, returning the full `Completion`.
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, messages, *, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
            )]
            fn chat_complete(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::call(
                    py,
                    self.target(py)?,
                    $crate::generate::Kind::ChatComplete,
                    "chat_complete",
                    args,
                    kwargs,
                )
            }

            /// Generate JSON that follows `schema` (a dict or a JSON string; generation is
            /// grammar-constrained) and return it parsed: a dict, list, str, number, bool or
            /// None. Output cut off by `max_tokens` raises `StructuredOutputError`, a schema
            /// that cannot be compiled `GrammarError`. `complete_json` also returns the
            /// completion.
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, prompt, schema, *, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', request_id=None, tenant=None, adapters=None)"
            )]
            fn generate_json(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::json_call(py, self.target(py)?, false, false, "generate_json", args, kwargs)
            }

            /// Like `generate_json`, returning a `JsonCompletion` (`value` and `completion`).
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, prompt, schema, *, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', request_id=None, tenant=None, adapters=None)"
            )]
            fn complete_json(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::json_call(py, self.target(py)?, false, true, "complete_json", args, kwargs)
            }

            /// `generate_json` for a conversation (rendered with the chat template): the reply
            /// follows `schema` and is returned parsed.
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, messages, schema, *, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', request_id=None, tenant=None, adapters=None)"
            )]
            fn chat_json(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::json_call(py, self.target(py)?, true, false, "chat_json", args, kwargs)
            }

            /// Like `chat_json`, returning a `JsonCompletion` (`value` and `completion`).
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, messages, schema, *, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', request_id=None, tenant=None, adapters=None)"
            )]
            fn chat_complete_json(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Py<PyAny>> {
                $crate::generate::json_call(py, self.target(py)?, true, true, "chat_complete_json", args, kwargs)
            }

            /// Run a prompt template: fill `template` (a `PromptTemplate`, or the name of a
            /// built-in one) with `vars` (a dict; defaults fill the rest), send its messages as
            /// a chat and post-process the reply. Returns a `TemplateOutput` whose `answer` is
            /// the final answer of a chain-of-thought template and whose `json` is the parsed
            /// reply of a template with an output schema (generation then follows the schema).
            /// Missing or unknown variables raise `TemplateVariablesError`.
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, template, vars=None, *, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
            )]
            fn run_template(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<$crate::results::PyTemplateOutput> {
                $crate::generate::template_call(py, self.target(py)?, "run_template", args, kwargs)
            }

            /// The two-stage dynamic flow: the model first reads `request` (free text) and fills
            /// the variables of `template` as JSON, then the filled template is run as in
            /// `run_template`. Returns a `DynamicFlowOutput` with both stages.
            #[pyo3(
                signature = (*args, **kwargs),
                text_signature = "($self, template, request, *, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
            )]
            fn run_dynamic(
                &self,
                py: Python<'_>,
                args: &Bound<'_, PyTuple>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<$crate::results::PyDynamicFlowOutput> {
                $crate::generate::dynamic_call(py, self.target(py)?, "run_dynamic", args, kwargs)
            }

            $($rest)*
        }
    };
}
pub(crate) use generation_methods;
