//! `llmedge.Session`: an independent conversation state (KV cache) on a shared model.

use std::sync::{Arc, Mutex};

use llmedge::{ChatTemplate, Model, Session, SessionOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::args::Args;
use crate::errors::{closed, IntoPy};
use crate::generate::{self, generation_methods, Target};
use crate::slot::{lock, run_on_session, Slot};

/// Session options from `n_ctx`, `n_batch`, `n_ubatch`, `threads`, `threads_batch`,
/// `chat_template`, `safety_policy`, `audit_dir`, `tenant`, `prefix_reuse` (absent ones keep
/// `base`'s values).
pub fn session_options(a: &Args<'_>, base: &SessionOptions) -> PyResult<SessionOptions> {
    let mut o = base.clone();
    if let Some(v) = a.u32("n_ctx", 0)? {
        o.n_ctx = Some(v);
    }
    if let Some(v) = a.u32("n_batch", 1)? {
        o.n_batch = Some(v);
    }
    if let Some(v) = a.u32("n_ubatch", 1)? {
        o.n_ubatch = Some(v);
    }
    if let Some(v) = a.u32("threads", 1)? {
        o.threads = Some(v);
    }
    if let Some(v) = a.u32("threads_batch", 1)? {
        o.threads_batch = Some(v);
    }
    if let Some(t) = a.string("chat_template")? {
        o.chat_template = Some(ChatTemplate::parse(&t).py(a.py())?);
    }
    if let Some(v) = a.bool("prefix_reuse")? {
        o.prefix_reuse = v;
    }
    crate::safety::apply_session_options(a, &mut o)?;
    Ok(o)
}

/// Create a session with the GIL released, in a slot.
pub fn open_slot(
    py: Python<'_>,
    model: &Model,
    options: SessionOptions,
    what: &'static str,
) -> PyResult<Arc<Slot>> {
    let session = py.detach(|| Session::new(model, options)).py(py)?;
    Ok(Slot::new(session, what))
}

/// An independent conversation state (its own KV cache) on a shared model.
///
/// Create one per thread with `Model.session()`; sessions of one model run at the same time.
/// A session serves one request at a time: a second request waits for the first.
/// The prompt carries the whole conversation; the session keeps the KV of its last request and
/// evaluates only what a new prompt adds to it (`usage.cached_prompt_tokens`), unless created
/// with `prefix_reuse=False`. `save_state`/`load_state` keep that KV across processes.
#[pyclass(name = "Session", module = "llmedge", frozen)]
pub struct PySession {
    slot: Arc<Slot>,
    model: Mutex<Option<Model>>,
    template: Option<ChatTemplate>,
}

impl PySession {
    pub fn new(slot: Arc<Slot>, model: Model, template: Option<ChatTemplate>) -> PySession {
        PySession {
            slot,
            model: Mutex::new(Some(model)),
            template,
        }
    }

    fn model(&self, py: Python<'_>) -> PyResult<Model> {
        lock(&self.model)
            .clone()
            .ok_or_else(|| closed(py, "session"))
    }

    fn target(&self, py: Python<'_>) -> PyResult<Target<'_>> {
        Ok(Target {
            slot: self.slot.clone(),
            model: self.model(py)?,
            template: self.template.as_ref(),
        })
    }
}

generation_methods! {
PySession {
    /// The prompt that `chat(messages)` generates from.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, messages, add_generation_prompt=True)"
    )]
    fn render_chat(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let target = self.target(py)?;
        generate::render_call(
            py,
            &target.model,
            target.template,
            "render_chat",
            args,
            kwargs,
        )
    }

    /// Stop the running generation before its next token (from any thread). It ends with
    /// `finish_reason == "cancelled"`; a no-op when nothing runs.
    fn cancel(&self) {
        self.slot.cancel_current();
    }

    /// Save what the KV cache holds (the last request's prompt and reply) to the file `path`,
    /// so that this or a later process continues from it with `load_state` without evaluating
    /// it again. The file names the model's SHA-256 and the session's adapters.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, path)")]
    fn save_state(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let a = Args::parse(py, "save_state", &["path"], 1, args, kwargs)?;
        a.required("path")?;
        let path = a.path("path")?.unwrap_or_default();
        run_on_session(py, &self.slot, move |s| s.save_state(&path))
    }

    /// Restore a state saved by `save_state` (same model and adapters) and return the number
    /// of tokens restored: the next request whose prompt starts with them evaluates only the
    /// rest. A corrupt or truncated file, or one from another model or adapter set, raises
    /// `StateError` (a missing file `IoError`) and leaves the cache empty.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, path)")]
    fn load_state(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<usize> {
        let a = Args::parse(py, "load_state", &["path"], 1, args, kwargs)?;
        a.required("path")?;
        let path = a.path("path")?.unwrap_or_default();
        run_on_session(py, &self.slot, move |s| s.load_state(&path))
    }

    /// Cancel any running generation and free the session's memory. Idempotent; any later
    /// use raises `ClosedError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.slot.close(py)?;
        let model = lock(&self.model).take();
        py.detach(|| drop(model));
        Ok(())
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.slot.is_closed()
    }

    /// The context window in tokens.
    #[getter]
    fn n_ctx(&self) -> u32 {
        self.slot.n_ctx()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        if self.slot.is_closed() {
            "<llmedge.Session closed>".to_owned()
        } else {
            format!("<llmedge.Session n_ctx={}>", self.slot.n_ctx())
        }
    }
}
}
