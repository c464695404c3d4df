//! `generate`, `complete`, `chat`, `chat_complete`: shared by `Model` (its default session)
//! and `Session`.

use std::sync::Arc;

use llmedge::{ChatMessage, ChatTemplate, Model};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::args::Args;
use crate::errors::IntoPy;
use crate::options::{
    generate_options, messages, prompt, Request, CHAT_ARGS, CHAT_COMPLETE_ARGS, COMPLETE_ARGS,
    GENERATE_ARGS,
};
use crate::results::PyCompletion;
use crate::slot::{run_blocking, Slot};
use crate::stream;

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
        Kind::Chat | Kind::ChatComplete => {
            let messages = messages(&a)?;
            Request::Text(render(py, &target.model, target.template, &messages, true)?)
        }
    };
    let options = generate_options(&a)?;
    options.validate(&target.model).py(py)?;
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
