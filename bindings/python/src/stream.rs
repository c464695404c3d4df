//! Streaming: `generate(..., stream=True)` returns a [`PyTokenStream`] iterator.
//!
//! The stream holds core's `TokenStream`, which borrows the leased session; each `__next__`
//! computes the next piece on the calling thread with the GIL released (see slot.rs for why
//! not on a worker thread). The prompt is evaluated when the stream is created, so errors such
//! as `ContextOverflowError` are raised by `generate(..., stream=True)` itself.

use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use llmedge::{Completion, Error, FinishReason, GenerateOptions, TokenStream};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{to_py, IntoPy};
use crate::options::Request;
use crate::results::PyCompletion;
use crate::slot::{catch_panic, lock, on_main_thread, Lease, Slot};

/// A generation in progress: core's stream and the lease whose session it borrows.
pub(crate) struct Active {
    /// Borrows the session inside `*lease`; always dropped first (see `Drop`).
    stream: Option<TokenStream<'static>>,
    /// A `Box<Lease>` turned into a pointer, so that the `&mut Session` inside `stream` is the
    /// only live reference to the session. Freed in `Drop`, after `stream`.
    lease: NonNull<Lease>,
}

// SAFETY: `Active` uniquely owns the `Lease` behind `lease` (as a Box would), and `Lease` and
// `TokenStream` are `Send`; the pointer only stops the compiler from seeing that.
unsafe impl Send for Active {}

impl Active {
    /// Evaluate the prompt and return the generation, ready for its first token.
    fn start(lease: Lease, request: &Request, options: &GenerateOptions) -> Result<Active, Error> {
        let mut active = Active {
            stream: None,
            lease: NonNull::from(Box::leak(Box::new(lease))),
        };
        // SAFETY: `lease` points to a live heap allocation that `active` owns and frees only
        // in `Drop`, after dropping `stream`, the only holder of this borrow; nothing else
        // reads or writes the lease while the stream exists, and the allocation never moves.
        // So the borrow may be given the stream's whole lifetime, written 'static.
        let lease: &'static mut Lease = unsafe { &mut *active.lease.as_ptr() };
        let session = lease.session()?;
        let stream = catch_panic(|| match request {
            Request::Text(text) => session.stream(text.as_str(), options),
            Request::Tokens(tokens) => session.stream(tokens.as_slice(), options),
            Request::Messages(messages) => session.chat_stream(messages, options),
            Request::WithImages(text, images) => {
                session.stream(llmedge::Prompt::WithImages { text, images }, options)
            }
        })?;
        active.stream = Some(stream);
        Ok(active)
    }

    /// The next piece; `Ok(None)` at the end.
    fn next(&mut self) -> Result<Option<String>, Error> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        catch_panic(|| stream.next().transpose())
    }

    /// End the generation now (`reason`) or after draining it (`None`), giving back the session.
    fn finish(mut self, reason: Option<FinishReason>) -> Result<Completion, Error> {
        let Some(mut stream) = self.stream.take() else {
            return Err(Error::Internal("stream already finished".into()));
        };
        if let Some(reason) = reason {
            stream.stop(reason);
        }
        catch_panic(|| stream.into_completion())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        // The stream borrows the session inside the lease: drop it first.
        self.stream = None;
        // SAFETY: `lease` came from `Box::leak` in `start`, is freed only here, and the only
        // borrow of it (held by `stream`) is gone.
        drop(unsafe { Box::from_raw(self.lease.as_ptr()) });
    }
}

pub(crate) enum StreamState {
    /// Boxed: core's stream state is large next to a finished result.
    Running(Box<Active>),
    /// Finished; the completion unless it failed or was closed before it started.
    Done(Option<PyCompletion>),
}

pub(crate) type StreamCell = Mutex<StreamState>;

/// End a running stream as cancelled and give its session back (from any thread; GIL
/// released). Its completion stays readable.
pub(crate) fn preempt(cell: &StreamCell) {
    let mut st = lock(cell);
    if let StreamState::Running(_) = &*st {
        let StreamState::Running(active) = std::mem::replace(&mut *st, StreamState::Done(None))
        else {
            unreachable!()
        };
        if let Ok(c) = active.finish(Some(FinishReason::Cancelled)) {
            *st = StreamState::Done(Some(c.into()));
        }
    }
}

/// An iterator of generated text pieces. After the last piece, `completion` holds the full
/// result (usage, timings, finish reason). Closing, cancelling or dropping the stream stops
/// the generation before its next token. Iterate it on one thread at a time.
#[pyclass(name = "TokenStream", module = "llmedge", frozen)]
pub struct PyTokenStream {
    cell: Arc<StreamCell>,
    flag: Arc<AtomicBool>,
    slot: Arc<Slot>,
}

/// Evaluate the prompt and return a stream ready for its first token.
pub fn start(
    py: Python<'_>,
    slot: &Arc<Slot>,
    request: Request,
    options: GenerateOptions,
) -> PyResult<PyTokenStream> {
    let lease = slot.acquire(py)?;
    let flag = lease.flag().clone();
    let active = py
        .detach(|| Active::start(lease, &request, &options))
        .py(py)?;
    let cell = Arc::new(Mutex::new(StreamState::Running(Box::new(active))));
    slot.register_stream(&cell);
    Ok(PyTokenStream {
        cell,
        flag,
        slot: slot.clone(),
    })
}

enum Step {
    Piece(String),
    End,
    Failed(Error),
}

impl PyTokenStream {
    fn step(&self) -> Step {
        let mut st = lock(&self.cell);
        let StreamState::Running(active) = &mut *st else {
            return Step::End;
        };
        let done = |st: &mut StreamState, reason| {
            let StreamState::Running(active) = std::mem::replace(st, StreamState::Done(None))
            else {
                unreachable!()
            };
            active.finish(reason)
        };
        match active.next() {
            Ok(Some(piece)) => Step::Piece(piece),
            Ok(None) => match done(&mut st, None) {
                Ok(c) => {
                    *st = StreamState::Done(Some(c.into()));
                    Step::End
                }
                Err(e) => Step::Failed(e),
            },
            Err(e) => {
                let _ = done(&mut st, Some(FinishReason::Cancelled));
                Step::Failed(e)
            }
        }
    }
}

#[pymethods]
impl PyTokenStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        match py.detach(|| self.step()) {
            Step::Piece(piece) => {
                if on_main_thread() {
                    if let Err(e) = py.check_signals() {
                        // Ctrl-C: end the generation before its next token.
                        py.detach(|| preempt(&self.cell));
                        return Err(e);
                    }
                }
                Ok(Some(piece))
            }
            Step::End => Ok(None),
            Step::Failed(e) => Err(to_py(py, &e)),
        }
    }

    /// The full result once the stream has ended (`None` before).
    #[getter]
    fn completion(&self, py: Python<'_>) -> Option<PyCompletion> {
        py.detach(|| match &*lock(&self.cell) {
            StreamState::Done(c) => c.clone(),
            StreamState::Running(_) => None,
        })
    }

    /// Stop generating before the next token (from any thread): the stream then ends with
    /// `finish_reason == "cancelled"`.
    fn cancel(&self) {
        self.slot.cancel_request(&self.flag);
    }

    /// End the stream now (cancelled) and give its session back; `completion` keeps the
    /// result so far (including text the safety filter had checked but not yet yielded).
    /// Idempotent.
    fn close(&self, py: Python<'_>) {
        self.slot.cancel_request(&self.flag);
        py.detach(|| preempt(&self.cell));
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.completion(py) {
            Some(c) => format!("<llmedge.TokenStream finished ({})>", c.finish_reason),
            None => "<llmedge.TokenStream>".to_owned(),
        }
    }
}

impl Drop for PyTokenStream {
    fn drop(&mut self) {
        // Give the session back now rather than when the state is freed.
        self.slot.cancel_request(&self.flag);
        preempt(&self.cell);
    }
}
