//! Streaming: `generate(..., stream=True)` returns a [`PyTokenStream`] iterator.
//!
//! The generation runs on a worker thread that owns the session for the request (core's
//! `TokenStream` borrows the session, which a Python object cannot hold) and sends text pieces
//! over a channel; `__next__` waits for the next piece with the GIL released. The channel is
//! unbounded so the worker never blocks on a slow or absent reader: an abandoned stream still
//! ends (at `max_tokens`), and closing, cancelling or dropping the stream stops it before its
//! next token.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmedge::{Completion, Error, GenerateOptions};
use pyo3::prelude::*;

use crate::errors::{to_py, IntoPy};
use crate::options::Request;
use crate::results::PyCompletion;
use crate::slot::{lock, on_main_thread, Slot};

/// How often the main thread wakes up while waiting for a token, to check for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(2);

enum Msg {
    Piece(String),
    Done(Result<Completion, Error>),
}

enum Recv {
    Msg(Msg),
    Timeout,
    Gone,
    Finished,
}

/// An iterator of generated text pieces. After the last piece, `completion` holds the full
/// result (usage, timings, finish reason). Closing, cancelling or dropping the stream stops
/// the generation before its next token.
#[pyclass(name = "TokenStream", module = "llmedge", frozen)]
pub struct PyTokenStream {
    rx: Mutex<Option<Receiver<Msg>>>,
    flag: Arc<AtomicBool>,
    slot: Arc<Slot>,
    completion: Mutex<Option<PyCompletion>>,
}

/// Start `request` on a worker thread.
pub fn start(
    py: Python<'_>,
    slot: &Arc<Slot>,
    request: Request,
    options: GenerateOptions,
) -> PyResult<PyTokenStream> {
    let mut lease = slot.acquire(py)?;
    let flag = lease.flag().clone();
    let (tx, rx) = mpsc::channel();
    let worker_flag = flag.clone();
    std::thread::Builder::new()
        .name("llmedge-stream".into())
        .spawn(move || {
            let result = lease.run(&request, &options, |piece| {
                // Send the piece even when cancelled: core has already added it to the
                // completion's text, and the pieces must add up to that text.
                let sent = tx.send(Msg::Piece(piece.to_owned())).is_ok();
                sent && !worker_flag.load(std::sync::atomic::Ordering::SeqCst)
            });
            // Give the session back before announcing the end, so a request made right after
            // the stream ends does not wait.
            drop(lease);
            let _ = tx.send(Msg::Done(result));
        })
        .map_err(|e| {
            to_py(
                py,
                &Error::Internal(format!("cannot start a stream thread: {e}")),
            )
        })?;
    Ok(PyTokenStream {
        rx: Mutex::new(Some(rx)),
        flag,
        slot: slot.clone(),
        completion: Mutex::new(None),
    })
}

impl PyTokenStream {
    fn receive(&self, py: Python<'_>, poll: bool) -> Recv {
        // The receiver lock is only taken with the GIL released (see slot.rs).
        py.detach(|| {
            let guard = lock(&self.rx);
            let Some(rx) = guard.as_ref() else {
                return Recv::Finished;
            };
            if poll {
                match rx.recv_timeout(SIGNAL_POLL) {
                    Ok(m) => Recv::Msg(m),
                    Err(RecvTimeoutError::Timeout) => Recv::Timeout,
                    Err(RecvTimeoutError::Disconnected) => Recv::Gone,
                }
            } else {
                rx.recv().map_or(Recv::Gone, Recv::Msg)
            }
        })
    }

    fn finish(&self, py: Python<'_>) {
        py.detach(|| *lock(&self.rx) = None);
    }

    /// Cancel, then wait for the worker to end and keep its (cancelled) completion.
    fn interrupt(&self, py: Python<'_>) {
        self.slot.cancel_request(&self.flag);
        loop {
            match self.receive(py, false) {
                Recv::Msg(Msg::Piece(_)) | Recv::Timeout => continue,
                Recv::Msg(Msg::Done(Ok(c))) => {
                    *lock(&self.completion) = Some(c.into());
                    break;
                }
                Recv::Msg(Msg::Done(Err(_))) | Recv::Gone | Recv::Finished => break,
            }
        }
        self.finish(py);
    }
}

#[pymethods]
impl PyTokenStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let main = on_main_thread(py);
        loop {
            match self.receive(py, main) {
                Recv::Msg(Msg::Piece(piece)) => {
                    if main {
                        if let Err(e) = py.check_signals() {
                            self.interrupt(py);
                            return Err(e);
                        }
                    }
                    return Ok(Some(piece));
                }
                Recv::Msg(Msg::Done(result)) => {
                    self.finish(py);
                    let completion = result.py(py)?;
                    *lock(&self.completion) = Some(completion.into());
                    return Ok(None);
                }
                Recv::Timeout => {
                    if let Err(e) = py.check_signals() {
                        self.interrupt(py);
                        return Err(e);
                    }
                }
                Recv::Gone => {
                    self.finish(py);
                    return Err(to_py(
                        py,
                        &Error::Internal("the stream thread ended without a result".into()),
                    ));
                }
                Recv::Finished => return Ok(None),
            }
        }
    }

    /// The full result once the stream is exhausted (`None` before, or after `close()`).
    #[getter]
    fn completion(&self) -> Option<PyCompletion> {
        lock(&self.completion).clone()
    }

    /// Stop generating before the next token. Pieces already generated are still yielded,
    /// then the stream ends with `finish_reason == "cancelled"`.
    fn cancel(&self) {
        self.slot.cancel_request(&self.flag);
    }

    /// Cancel and end the stream now; `completion` keeps the cancelled result.
    fn close(&self, py: Python<'_>) {
        self.interrupt(py);
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.interrupt(py);
        false
    }

    fn __repr__(&self) -> String {
        match lock(&self.completion).as_ref() {
            Some(c) => format!("<llmedge.TokenStream finished ({})>", c.finish_reason),
            None => "<llmedge.TokenStream>".to_owned(),
        }
    }
}

impl Drop for PyTokenStream {
    fn drop(&mut self) {
        self.slot.cancel_request(&self.flag);
    }
}
