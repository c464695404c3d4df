//! `llmedge.Engine` (core's continuous-batching serving engine) and `llmedge.Request`, a
//! request submitted to it.
//!
//! The engine's scheduler thread never touches Python: a request's sink only moves pieces and
//! the result into a mutex-guarded state and signals a condition variable. Python threads wait
//! on it with the GIL released; on the main thread the wait wakes every 20 ms to check for
//! Ctrl-C, which cancels the request (it stops before its next token) and raises
//! `KeyboardInterrupt`. `async for` and `await` run the same waits in the event loop's default
//! executor (`llmedge/_aio.py`), so the loop is never blocked.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::Duration;

use llmedge::response_cache::ResponseCacheConfig;
use llmedge::{
    Completion, Engine, EngineOptions, EngineRequest, Error, Model, RequestHandle, RequestInput,
    RequestSink,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString, PyTuple};

use crate::args::Args;
use crate::errors::{invalid, to_py, IntoPy};
use crate::generate::checked_options;
use crate::json::to_py_value;
use crate::model::{PyModel, SESSION_ARGS};
use crate::options::{
    messages, messages_value, prompt, Request, ENGINE_CHAT_ARGS, ENGINE_COMPLETE_ARGS, SUBMIT_ARGS,
};
use crate::response_cache::PyResponseCache;
use crate::results::PyCompletion;
use crate::session::session_options;
use crate::slot::{catch_panic, lock, on_main_thread};

/// How often a wait on the main thread wakes up to check for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// The engine's own keywords, then every session keyword, then the response cache's.
static ENGINE_ARGS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    [
        &[
            "model",
            "slots",
            "max_queue",
            "timeout",
            "prefix_cache_bytes",
            "prefix_cache_min_tokens",
            "adapter_quantum",
        ][..],
        SESSION_ARGS,
        &["response_cache", "share_across_tenants"],
    ]
    .concat()
});

/// What a request's sink has delivered so far.
struct State {
    /// Pieces not yet read (only kept for `stream=True`).
    pieces: VecDeque<String>,
    /// The end; set once, after the last piece.
    done: Option<Result<Completion, Error>>,
    /// Iteration has returned its last item (or raised the request's error).
    iter_ended: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The sink of a Python request: runs on the scheduler thread, never touches Python.
struct Sink {
    shared: Arc<Shared>,
    stream: bool,
}

impl RequestSink for Sink {
    fn piece(&mut self, text: &str) -> bool {
        if self.stream {
            lock(&self.shared.state).pieces.push_back(text.to_owned());
            self.shared.changed.notify_all();
        }
        true
    }

    fn done(self: Box<Self>, result: llmedge::Result<Completion>) {
        lock(&self.shared.state).done = Some(result);
        self.shared.changed.notify_all();
    }
}

/// A duration in seconds (`None` = not given): a positive, finite number.
pub(crate) fn seconds_arg(a: &Args<'_>, name: &'static str) -> PyResult<Option<Duration>> {
    let Some(seconds) = a.f32(name)? else {
        return Ok(None);
    };
    let seconds = f64::from(seconds);
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(invalid(
            a.py(),
            format!(
                "{}(): '{name}' must be > 0 seconds, got {seconds}",
                a.func()
            ),
        ));
    }
    Duration::try_from_secs_f64(seconds)
        .map(Some)
        .map_err(|_| invalid(a.py(), format!("{}(): '{name}' is too large", a.func())))
}

/// A request submitted to an `Engine`.
///
/// Iterate it for the text as it is generated (`for piece in request`, or `async for` in a
/// coroutine; with `submit(..., stream=False)` the whole text comes as one piece at the end);
/// `result()` (or `await request`) waits for the `Completion`. Waiting releases the GIL; Ctrl-C
/// while waiting on the main thread cancels the request before its next token and raises
/// `KeyboardInterrupt`. `cancel()` works from any thread; a request that is garbage collected
/// before it ends is cancelled.
#[pyclass(name = "Request", module = "llmedge", frozen)]
pub struct PyRequest {
    handle: RequestHandle,
    shared: Arc<Shared>,
    stream: bool,
}

impl PyRequest {
    /// Wait (GIL released) until `ready` holds, checking for Ctrl-C on the main thread.
    fn wait(&self, py: Python<'_>, ready: fn(&State) -> bool) -> PyResult<()> {
        let main = on_main_thread();
        loop {
            let shared = &self.shared;
            let ok = py.detach(|| {
                let mut st = lock(&shared.state);
                loop {
                    if ready(&st) {
                        return true;
                    }
                    if main {
                        st = shared
                            .changed
                            .wait_timeout(st, SIGNAL_POLL)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                        return ready(&st);
                    }
                    st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            });
            // Also when a piece is ready: a Ctrl-C that arrived meanwhile must cancel the
            // request here, not surface later in the caller's loop body.
            if main {
                if let Err(e) = py.check_signals() {
                    self.handle.cancel();
                    return Err(e);
                }
            }
            if ok {
                return Ok(());
            }
        }
    }

    /// The next piece, `None` after the last (the request's error is raised once, at the end).
    fn next_piece(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.wait(py, |st| {
            st.iter_ended || !st.pieces.is_empty() || st.done.is_some()
        })?;
        let mut st = lock(&self.shared.state);
        if st.iter_ended {
            return Ok(None);
        }
        if let Some(piece) = st.pieces.pop_front() {
            return Ok(Some(piece));
        }
        st.iter_ended = true;
        match st.done.as_ref() {
            Some(Ok(c)) if !self.stream && !c.text.is_empty() => Ok(Some(c.text.clone())),
            Some(Err(e)) => Err(to_py(py, e)),
            _ => Ok(None),
        }
    }

    fn result_inner(&self, py: Python<'_>) -> PyResult<PyCompletion> {
        self.wait(py, |st| st.done.is_some())?;
        match lock(&self.shared.state).done.as_ref() {
            Some(Ok(c)) => Ok(PyCompletion::from(c.clone())),
            Some(Err(e)) => Err(to_py(py, e)),
            None => unreachable!("waited for the end"),
        }
    }
}

#[pymethods]
impl PyRequest {
    /// The request id (as in the audit log and the completion).
    #[getter]
    fn id(&self) -> &str {
        self.handle.id()
    }

    /// True once the request has ended.
    #[getter]
    fn done(&self) -> bool {
        lock(&self.shared.state).done.is_some()
    }

    /// Stop the request (from any thread): a queued one ends without running, a running one
    /// before its next token, with `finish_reason == "cancelled"`. A no-op once it has ended.
    fn cancel(&self) {
        self.handle.cancel();
    }

    /// Wait for the end and return the `Completion` (a cancelled request is a result too).
    /// Raises the request's error: `RequestTimeoutError` past its deadline, `DecodeError`, ...
    fn result(&self, py: Python<'_>) -> PyResult<PyCompletion> {
        self.result_inner(py)
    }

    /// The next piece, or `None` after the last one (for the asyncio helpers).
    fn _next_piece(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.next_piece(py)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.next_piece(py)
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__(slf: PyRef<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(py
            .import("llmedge._aio")?
            .call_method1("anext_piece", (slf,))?
            .unbind())
    }

    fn __await__(slf: PyRef<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(py
            .import("llmedge._aio")?
            .call_method1("result", (slf,))?
            .call_method0("__await__")?
            .unbind())
    }

    fn __repr__(&self) -> String {
        let st = lock(&self.shared.state);
        let state = match &st.done {
            None => "running".to_owned(),
            Some(Ok(c)) => c.finish_reason.as_str().to_owned(),
            Some(Err(e)) => format!("error:{}", e.code().name()),
        };
        format!("<llmedge.Request {} {state}>", self.handle.id())
    }
}

impl Drop for PyRequest {
    fn drop(&mut self) {
        // Nobody can read the result any more: stop computing it.
        if lock(&self.shared.state).done.is_none() {
            self.handle.cancel();
        }
    }
}

/// A continuous-batching engine on one model: many requests decoded together in `slots`
/// sequences of one llama.cpp context, each behaving exactly as it would on its own session.
///
/// `Engine(model)` takes the model's session settings (safety policy, audit log, tenant,
/// adapters, chat template, ...); keywords override them. `n_ctx` is each slot's context
/// window and `n_batch` the most tokens one decode step evaluates (at least `slots`).
/// Requests wait in a queue of `max_queue` (fair between tenants); one more raises `BusyError`.
/// `timeout` (seconds) is every request's deadline unless it names its own; a request past
/// it raises `RequestTimeoutError`. Prompt prefixes are reused from the slots and from a host
/// cache of `prefix_cache_bytes` (prefixes of at least `prefix_cache_min_tokens` tokens, saved
/// when reusing a slot would cut at least that many from its cache);
/// requests with other LoRA adapters take turns every `adapter_quantum` steps.
/// `response_cache` (a `ResponseCache`) answers deterministic requests (greedy, or seeded)
/// that were answered before without decoding; entries are per tenant unless
/// `share_across_tenants=True`.
///
/// Thread-safe: submit from any number of threads. Use `with Engine(model) as engine:` or
/// `shutdown()`/`close()` to stop it.
#[pyclass(name = "Engine", module = "llmedge", frozen)]
pub struct PyEngine {
    engine: Engine,
    model: Model,
}

impl PyEngine {
    fn submit_request(
        &self,
        py: Python<'_>,
        input: RequestInput,
        a: &Args<'_>,
        stream: bool,
    ) -> PyResult<PyRequest> {
        let options = checked_options(a, &self.model)?;
        let request = EngineRequest {
            input,
            options,
            timeout: seconds_arg(a, "timeout")?,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pieces: VecDeque::new(),
                done: None,
                iter_ended: false,
            }),
            changed: Condvar::new(),
        });
        let sink = Box::new(Sink {
            shared: shared.clone(),
            stream,
        });
        let engine = &self.engine;
        let handle = py
            .detach(|| catch_panic(|| engine.submit(request, sink)))
            .py(py)?;
        Ok(PyRequest {
            handle,
            shared,
            stream,
        })
    }

    /// Submit and wait for the completion.
    fn run(&self, py: Python<'_>, input: RequestInput, a: &Args<'_>) -> PyResult<PyCompletion> {
        self.submit_request(py, input, a, false)?.result_inner(py)
    }
}

/// `response_cache=` (a `ResponseCache` or None) and `share_across_tenants=`.
fn response_cache_arg(a: &Args<'_>) -> PyResult<Option<ResponseCacheConfig>> {
    let Some(v) = a.opt("response_cache") else {
        return Ok(None);
    };
    let cache = v
        .cast::<PyResponseCache>()
        .map_err(|_| a.wrong_type("response_cache", "llmedge.ResponseCache or None", v))?;
    Ok(Some(ResponseCacheConfig {
        cache: cache.get().inner.clone(),
        share_across_tenants: a.bool("share_across_tenants")?.unwrap_or(false),
    }))
}

/// `prompt` of `submit`: a string, a list of token ids, or a list of chat messages.
fn submit_input(a: &Args<'_>) -> PyResult<RequestInput> {
    let v = a.required("prompt")?;
    let messages_like = (v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>())
        && v.len()? > 0
        && v.get_item(0).is_ok_and(|first| {
            !(first.is_instance_of::<PyInt>() || first.is_instance_of::<PyString>())
        });
    if messages_like {
        return Ok(RequestInput::Chat(messages_value(a, v)?));
    }
    Ok(match prompt(a)? {
        Request::Text(text) => RequestInput::Prompt(text),
        Request::Tokens(tokens) => RequestInput::Tokens(tokens),
        Request::Messages(messages) => RequestInput::Chat(messages),
        Request::WithImages(text, images) => RequestInput::PromptWithImages(text, images),
    })
}

fn prompt_input(a: &Args<'_>) -> PyResult<RequestInput> {
    Ok(match prompt(a)? {
        Request::Text(text) => RequestInput::Prompt(text),
        Request::Tokens(tokens) => RequestInput::Tokens(tokens),
        Request::Messages(messages) => RequestInput::Chat(messages),
        Request::WithImages(text, images) => RequestInput::PromptWithImages(text, images),
    })
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(model, *, slots=4, max_queue=64, timeout=None, prefix_cache_bytes=268435456, prefix_cache_min_tokens=32, adapter_quantum=16, n_ctx=None, n_batch=None, n_ubatch=None, threads=None, threads_batch=None, chat_template=None, safety_policy=None, audit_dir=None, tenant=None, adapters=None, prefix_reuse=None, response_cache=None, share_across_tenants=False)"
    )]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyEngine> {
        let a = Args::parse(py, "Engine", &ENGINE_ARGS, 1, args, kwargs)?;
        let m = a.required("model")?;
        let m = m
            .cast::<PyModel>()
            .map_err(|_| a.wrong_type("model", "llmedge.Model", m))?;
        let (model, base) = m.get().session_base(py)?;
        let mut session = session_options(&a, &base)?;
        if let Some(set) = crate::lora::adapter_set(&a, "adapters", &model, true)? {
            session.adapters = set;
        }
        let defaults = EngineOptions::default();
        let options = EngineOptions {
            session,
            slots: a.u32("slots", 0)?.unwrap_or(defaults.slots),
            max_queue: a
                .int("max_queue", 0, i64::MAX)?
                .map_or(defaults.max_queue, |n| n as usize),
            timeout: seconds_arg(&a, "timeout")?,
            prefix_cache_bytes: a
                .int("prefix_cache_bytes", 0, i64::MAX)?
                .map_or(defaults.prefix_cache_bytes, |n| n as usize),
            prefix_cache_min_tokens: a
                .int("prefix_cache_min_tokens", 0, i64::MAX)?
                .map_or(defaults.prefix_cache_min_tokens, |n| n as usize),
            adapter_quantum: a
                .u32("adapter_quantum", 0)?
                .unwrap_or(defaults.adapter_quantum),
            response_cache: response_cache_arg(&a)?,
        };
        let engine = py
            .detach(|| catch_panic(|| Engine::new(&model, options)))
            .py(py)?;
        Ok(PyEngine { engine, model })
    }

    /// Submit a request and return its `Request` at once. `prompt` is a string, a list of
    /// token ids, or OpenAI-shaped chat messages (rendered with the chat template). With
    /// `stream=True` the request keeps each piece for iteration; otherwise only the result.
    /// `timeout` (seconds) overrides the engine's deadline. Generation options as in
    /// `Model.generate`. Raises at once when the request cannot be queued: `BusyError` (the
    /// queue is full), `ClosedError` (after shutdown), `ContextOverflowError`, bad options.
    /// A request the safety policy refuses ends at once with `finish_reason ==
    /// "content_filter"`.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, prompt, *, stream=False, timeout=None, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
    )]
    fn submit(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyRequest> {
        let a = Args::parse(py, "submit", SUBMIT_ARGS, 1, args, kwargs)?;
        let input = submit_input(&a)?;
        let stream = a.bool("stream")?.unwrap_or(false);
        self.submit_request(py, input, &a, stream)
    }

    /// Generate from `prompt` (a string or token ids) and return the text (blocking; the GIL
    /// is released, Ctrl-C cancels). Options as in `submit`.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, prompt, *, timeout=None, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
    )]
    fn generate(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let a = Args::parse(py, "generate", ENGINE_COMPLETE_ARGS, 1, args, kwargs)?;
        let input = prompt_input(&a)?;
        Ok(self.run(py, input, &a)?.text)
    }

    /// Like `generate`, returning the full `Completion`.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, prompt, *, timeout=None, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
    )]
    fn complete(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyCompletion> {
        let a = Args::parse(py, "complete", ENGINE_COMPLETE_ARGS, 1, args, kwargs)?;
        let input = prompt_input(&a)?;
        self.run(py, input, &a)
    }

    /// Reply to OpenAI-shaped `messages` and return the text (blocking). Options as in
    /// `submit`.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, messages, *, timeout=None, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
    )]
    fn chat(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let a = Args::parse(py, "chat", ENGINE_CHAT_ARGS, 1, args, kwargs)?;
        let input = RequestInput::Chat(messages(&a)?);
        Ok(self.run(py, input, &a)?.text)
    }

    /// Like `chat`, returning the full `Completion`.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, messages, *, timeout=None, max_tokens=256, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64, seed=None, greedy=False, stop=None, logit_bias=None, ignore_eos=False, truncation='error', json_schema=None, choices=None, regex=None, grammar=None, request_id=None, tenant=None, adapters=None)"
    )]
    fn chat_complete(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyCompletion> {
        let a = Args::parse(py, "chat_complete", ENGINE_CHAT_ARGS, 1, args, kwargs)?;
        let input = RequestInput::Chat(messages(&a)?);
        self.run(py, input, &a)
    }

    /// Counters and gauges as a dict: `slots`, `active`, `queued`, `finished`,
    /// `rejected_busy`, `timed_out`, `prompt_tokens`, `cached_prompt_tokens`,
    /// `generated_tokens`, `decode_steps`, `prefix_cache_entries`, `prefix_cache_bytes`,
    /// `prefix_hits`, `response_cache_hits`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.engine.stats())
    }

    /// Stop accepting requests (later ones raise `ClosedError`) and wait for the scheduler to
    /// end: after every queued and running request has finished (`drain=True`), or after
    /// cancelling them all. Idempotent.
    #[pyo3(signature = (drain = true))]
    fn shutdown(&self, py: Python<'_>, drain: bool) {
        let engine = &self.engine;
        py.detach(|| engine.shutdown(drain));
    }

    /// `shutdown(drain=False)`: cancel everything and stop.
    fn close(&self, py: Python<'_>) {
        self.shutdown(py, false);
    }

    /// Sequences decoded together.
    #[getter]
    fn slots(&self) -> u32 {
        self.engine.slots()
    }

    /// Each sequence's context window in tokens.
    #[getter]
    fn n_ctx(&self) -> u32 {
        self.engine.n_ctx()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Leaving the block drains the engine, or cancels what is left when it raised.
    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> bool {
        let raised = exc.get_item(0).is_ok_and(|e| !e.is_none());
        self.shutdown(py, !raised);
        false
    }

    fn __repr__(&self) -> String {
        let s = self.engine.stats();
        format!(
            "<llmedge.Engine slots={} n_ctx={} active={} queued={}>",
            s.slots,
            self.engine.n_ctx(),
            s.active,
            s.queued
        )
    }
}
