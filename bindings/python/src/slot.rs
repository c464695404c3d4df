//! A core `Session` shared by Python objects and threads.
//!
//! Core's `Session` is `Send` but not `Sync`: one thread at a time. A [`Slot`] owns it behind a
//! mutex and lends it out whole ([`Lease`]) for one request, so the mutex is only ever held
//! for a few instructions and never while the GIL is wanted. A caller that finds the session
//! busy waits with the GIL released, checking for Ctrl-C.
//!
//! Every request computes on the thread that makes it (a stream on the thread that iterates
//! it), like llama.cpp's own tools: llama.cpp's OpenMP thread pool is per calling thread, and a
//! second pool on a small machine makes both spin less and decode about 3x slower.
//!
//! A stream keeps its lease until it ends. A new request from the thread that created an
//! unfinished stream on the same session cancels that stream (it would otherwise wait for a
//! stream nobody iterates); `close()` cancels it from any thread.
//!
//! Lock order: a stream's state lock, then a slot's state lock. Never attach to Python while
//! holding either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use llmedge::{CancelHandle, Completion, Error, GenerateOptions, Session};
use pyo3::prelude::*;

use crate::errors::{closed, IntoPy};
use crate::options::Request;
use crate::stream::{preempt, StreamCell};

/// How often a waiting thread wakes up to check for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(20);

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Python's `threading.main_thread().ident`, recorded when the module is imported.
static MAIN_THREAD: OnceLock<std::ffi::c_ulong> = OnceLock::new();

/// Record the main thread's ident (module initialisation).
pub fn set_main_thread(ident: std::ffi::c_ulong) {
    let _ = MAIN_THREAD.set(ident);
}

/// True on Python's main thread, the only one where signal handlers (Ctrl-C) run.
///
/// This must not run Python code: the interpreter would handle a pending Ctrl-C there and
/// the `KeyboardInterrupt` would be lost.
pub fn on_main_thread() -> bool {
    // SAFETY: `PyThread_get_thread_ident` takes no arguments, only reads the calling thread's
    // id and may be called with or without an attached thread state.
    let me = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
    MAIN_THREAD.get() == Some(&me)
}

/// The stream holding a slot's lease.
struct StreamRef {
    owner: ThreadId,
    cell: Weak<StreamCell>,
}

struct State {
    session: Option<Session>,
    busy: bool,
    closed: bool,
    /// The cancel flag of the request running now.
    current: Option<Arc<AtomicBool>>,
    /// Set while the lease belongs to a stream.
    stream: Option<StreamRef>,
}

pub struct Slot {
    state: Mutex<State>,
    freed: Condvar,
    handle: CancelHandle,
    what: &'static str,
    n_ctx: u32,
}

enum Wait<T> {
    Ready(T),
    Closed,
    Again,
}

impl Slot {
    pub fn new(session: Session, what: &'static str) -> Arc<Slot> {
        Arc::new(Slot {
            handle: session.cancel_handle(),
            n_ctx: session.n_ctx(),
            state: Mutex::new(State {
                session: Some(session),
                busy: false,
                closed: false,
                current: None,
                stream: None,
            }),
            freed: Condvar::new(),
            what,
        })
    }

    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Borrow the session for one request, waiting (GIL released) while another request runs.
    pub fn acquire(self: &Arc<Self>, py: Python<'_>) -> PyResult<Lease> {
        let me = std::thread::current().id();
        loop {
            let got = py.detach(|| {
                let mut st = lock(&self.state);
                if st.closed {
                    return Wait::Closed;
                }
                if st.busy {
                    // An unfinished stream of this very thread: nobody else will finish it.
                    let own_stream = st
                        .stream
                        .as_ref()
                        .filter(|s| s.owner == me)
                        .and_then(|s| s.cell.upgrade());
                    if let Some(cell) = own_stream {
                        drop(st);
                        preempt(&cell);
                        return Wait::Again;
                    }
                    st = self
                        .freed
                        .wait_timeout(st, SIGNAL_POLL)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if st.closed {
                    return Wait::Closed;
                }
                if st.busy {
                    return Wait::Again;
                }
                match st.session.take() {
                    Some(session) => {
                        let flag = Arc::new(AtomicBool::new(false));
                        st.busy = true;
                        st.current = Some(flag.clone());
                        Wait::Ready((session, flag))
                    }
                    None => Wait::Closed,
                }
            });
            match got {
                Wait::Ready((session, flag)) => {
                    return Ok(Lease {
                        slot: self.clone(),
                        session: Some(session),
                        flag,
                    })
                }
                Wait::Closed => return Err(closed(py, self.what)),
                Wait::Again => py.check_signals()?,
            }
        }
    }

    /// Record that the current lease belongs to a stream created by the current thread.
    pub(crate) fn register_stream(&self, cell: &Arc<StreamCell>) {
        lock(&self.state).stream = Some(StreamRef {
            owner: std::thread::current().id(),
            cell: Arc::downgrade(cell),
        });
    }

    /// Cancel whatever request runs now (a no-op when idle).
    pub fn cancel_current(&self) {
        let st = lock(&self.state);
        if let Some(flag) = &st.current {
            flag.store(true, Ordering::SeqCst);
            self.handle.cancel();
        }
    }

    /// Cancel one request: its flag always, the session's handle only if that request is the
    /// one running (the session may have moved on to another request since).
    pub fn cancel_request(&self, flag: &Arc<AtomicBool>) {
        flag.store(true, Ordering::SeqCst);
        let st = lock(&self.state);
        if st.current.as_ref().is_some_and(|c| Arc::ptr_eq(c, flag)) {
            self.handle.cancel();
        }
    }

    /// Cancel the running request (ending a stream that holds the session), wait for it to
    /// end, free the session. Idempotent.
    pub fn close(&self, py: Python<'_>) -> PyResult<()> {
        loop {
            let got = py.detach(|| {
                let mut st = lock(&self.state);
                st.closed = true;
                if let Some(flag) = &st.current {
                    flag.store(true, Ordering::SeqCst);
                    self.handle.cancel();
                }
                if st.busy {
                    if let Some(cell) = st.stream.as_ref().and_then(|s| s.cell.upgrade()) {
                        drop(st);
                        preempt(&cell);
                        return Wait::Again;
                    }
                    st = self
                        .freed
                        .wait_timeout(st, SIGNAL_POLL)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if st.busy {
                    return Wait::Again;
                }
                let session = st.session.take();
                drop(st);
                // Free the llama.cpp context with the GIL released.
                drop(session);
                Wait::Ready(())
            });
            match got {
                Wait::Ready(()) | Wait::Closed => return Ok(()),
                Wait::Again => py.check_signals()?,
            }
        }
    }
}

/// A session lent out for one request; given back on drop.
pub struct Lease {
    slot: Arc<Slot>,
    session: Option<Session>,
    flag: Arc<AtomicBool>,
}

impl Lease {
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.flag
    }

    pub fn session(&mut self) -> Result<&mut Session, Error> {
        self.session
            .as_mut()
            .ok_or_else(|| Error::Internal("lease without a session".into()))
    }

    /// Run `request`, calling `on_piece` with each piece of text (return false to stop).
    /// A panic inside becomes `Error::Panic`.
    pub fn run(
        &mut self,
        request: &Request,
        options: &GenerateOptions,
        on_piece: impl FnMut(&str) -> bool,
    ) -> Result<Completion, Error> {
        let session = self.session()?;
        catch_panic(|| match request {
            Request::Text(text) => session.generate_with(text.as_str(), options, on_piece),
            Request::Tokens(tokens) => session.generate_with(tokens.as_slice(), options, on_piece),
            Request::Messages(messages) => session.chat_with(messages, options, on_piece),
            Request::WithImages(text, images) => session.generate_with(
                llmedge::Prompt::WithImages { text, images },
                options,
                on_piece,
            ),
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let session = self.session.take();
        let mut st = lock(&self.slot.state);
        st.busy = false;
        st.current = None;
        st.stream = None;
        let dropped = if st.closed {
            session
        } else {
            st.session = session;
            None
        };
        drop(st);
        self.slot.freed.notify_all();
        drop(dropped);
    }
}

/// Run `f`, turning a panic into `Error::Panic`.
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Error::Panic(msg))
    })
}

/// Run `f` on the slot's session on the calling thread with the GIL released (the structured
/// flows: `generate_json`, `run_template`, ...). Core runs them without a per-token callback,
/// so Ctrl-C is only seen when `f` returns; `cancel()` from another thread stops them.
pub fn run_on_session<T: Send>(
    py: Python<'_>,
    slot: &Arc<Slot>,
    f: impl FnOnce(&mut Session) -> Result<T, Error> + Send,
) -> PyResult<T> {
    let mut lease = slot.acquire(py)?;
    let result = py.detach(|| {
        let session = lease.session()?;
        catch_panic(|| f(session))
    });
    drop(lease);
    result.py(py)
}

/// Run a request to the end on the calling thread with the GIL released. On the main thread
/// Ctrl-C is checked between tokens: it cancels the generation and raises `KeyboardInterrupt`.
pub fn run_blocking(
    py: Python<'_>,
    slot: &Arc<Slot>,
    request: &Request,
    options: &GenerateOptions,
) -> PyResult<Completion> {
    let main = on_main_thread();
    let mut lease = slot.acquire(py)?;
    let flag = lease.flag().clone();
    let mut interrupt: Option<PyErr> = None;
    let result = py.detach(|| {
        lease.run(request, options, |_piece| {
            if flag.load(Ordering::Relaxed) {
                return false;
            }
            if main {
                if let Err(e) = Python::attach(|py| py.check_signals()) {
                    interrupt = Some(e);
                    return false;
                }
            }
            true
        })
    });
    drop(lease);
    if let Some(e) = interrupt {
        return Err(e);
    }
    result.py(py)
}
