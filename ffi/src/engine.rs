//! The serving engine: continuous batching of many requests on one model (core's
//! `serving_engine`), behind submit + callbacks + a request handle.
//!
//! Threads: an `llmedge_engine` is thread-safe; submit from any number of threads at once.
//! Every request's callbacks run on the engine's scheduler thread, one thread for all of the
//! engine's requests (or, for a request the safety policy refuses at once, on the thread that
//! submits it, before `llmedge_engine_submit` returns). Keep them short (copy the piece, signal
//! a condition variable). Inside a callback `llmedge_request_wait` and `llmedge_engine_shutdown`
//! refuse with `LLMEDGE_STATUS_INVALID_ARGUMENT` (they would wait for the thread that runs the
//! callback), and `llmedge_engine_free` hands the shutdown to another thread. An
//! `llmedge_request` is thread-safe too: cancel, wait for or read it from any thread.
//!
//! Ownership of results: the request handle keeps the result. `on_done` borrows the completion
//! for the duration of the call; `llmedge_request_wait` returns a caller-owned copy and may be
//! called any number of times. The result is stored after `on_done` has returned, so once
//! `llmedge_request_wait` returns, the request's callbacks are finished and `user_data` may be
//! freed.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use llmedge::{
    Completion, Engine, EngineOptions, EngineRequest, Error, GenerateOptions, RequestHandle,
    RequestInput, RequestSink,
};

use crate::args::{free_box, out_arg, ref_arg, slice_arg, str_arg, write};
use crate::llmedge_token;
use crate::model::llmedge_model;
use crate::options::{
    builder, c_session_options, llmedge_chat_messages, llmedge_generate_options,
    llmedge_session_options, set,
};
use crate::prompt::{return_string, to_json};
use crate::session::{completion_handle, llmedge_completion, llmedge_piece_callback};
use crate::status::{guard, guard_value, llmedge_status, set_last_error};

/// Options for `llmedge_engine_new` (an opaque builder).
pub struct llmedge_engine_options {
    pub(crate) inner: EngineOptions,
}

builder!(llmedge_engine_options => EngineOptions);

/// A continuous-batching engine on one model (a scheduler thread and one llama.cpp context
/// with a KV stream per slot). Opaque, thread-safe.
pub struct llmedge_engine {
    inner: Engine,
}

/// A submitted request: its id, its cancel switch and (once it ended) its result. Opaque,
/// thread-safe.
pub struct llmedge_request {
    handle: RequestHandle,
    /// `handle.id()`, NUL-terminated.
    id: CString,
    outcome: Arc<Outcome>,
}

/// Called once when a request ends, on the engine's scheduler thread. `status` is
/// `LLMEDGE_STATUS_OK` with `completion` the result (borrowed: valid only during the call;
/// `llmedge_request_wait` gives an owned copy), or the failure (`LLMEDGE_STATUS_TIMEOUT`,
/// `LLMEDGE_STATUS_DECODE`, ...) with `completion` NULL and `llmedge_last_error()` the message
/// on this thread. A cancelled request is a success with `LLMEDGE_FINISH_CANCELLED`.
pub type llmedge_done_callback = Option<
    unsafe extern "C" fn(
        status: llmedge_status,
        completion: *const llmedge_completion,
        user_data: *mut c_void,
    ),
>;

/// The stored end of a request: the completion, or its status and message.
type Finished = Result<Arc<llmedge_completion>, (llmedge_status, String)>;

#[derive(Default)]
struct Outcome {
    finished: Mutex<Option<Finished>>,
    ended: Condvar,
}

impl Outcome {
    fn set(&self, finished: Finished) {
        *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(finished);
        self.ended.notify_all();
    }

    fn wait(&self) -> Finished {
        let mut slot = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(f) = slot.as_ref() {
                return f.clone();
            }
            slot = self.ended.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn is_done(&self) -> bool {
        self.finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

thread_local! {
    /// Set while a request callback runs on this thread.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn in_callback() -> bool {
    IN_CALLBACK.with(Cell::get)
}

/// Run `f` with [`IN_CALLBACK`] set (restored afterwards, also for nested calls).
fn as_callback<T>(f: impl FnOnce() -> T) -> T {
    let before = IN_CALLBACK.with(|c| c.replace(true));
    let out = f();
    IN_CALLBACK.with(|c| c.set(before));
    out
}

/// The caller's `user_data`, moved to the scheduler thread.
struct UserData(*mut c_void);

// SAFETY: `llmedge_engine_submit` documents that the callbacks receive `user_data` on the
// scheduler thread; the caller guarantees that this is allowed.
unsafe impl Send for UserData {}

/// A request's output: the C callbacks, then the stored result.
struct CSink {
    on_piece: llmedge_piece_callback,
    on_done: llmedge_done_callback,
    user_data: UserData,
    outcome: Arc<Outcome>,
}

impl RequestSink for CSink {
    fn piece(&mut self, text: &str) -> bool {
        let Some(cb) = self.on_piece else {
            return true;
        };
        let user_data = self.user_data.0;
        as_callback(|| {
            // SAFETY: the caller of `llmedge_engine_submit` guarantees the callback may be
            // called with `user_data` on this thread; the text is valid for the call.
            catch_unwind(AssertUnwindSafe(|| unsafe {
                cb(text.as_ptr().cast(), text.len(), user_data)
            }))
            .unwrap_or(false)
        })
    }

    fn done(self: Box<Self>, result: llmedge::Result<Completion>) {
        let finished: Finished = match result {
            Ok(c) => Ok(Arc::new(completion_handle(c))),
            Err(e) => Err((e.code().into(), e.to_string())),
        };
        if let Some(cb) = self.on_done {
            let user_data = self.user_data.0;
            as_callback(|| {
                let _ = catch_unwind(AssertUnwindSafe(|| match &finished {
                    // SAFETY: as in `piece`; the completion lives until after the call.
                    Ok(c) => unsafe {
                        cb(llmedge_status::LLMEDGE_STATUS_OK, Arc::as_ptr(c), user_data)
                    },
                    Err((status, message)) => {
                        set_last_error(message.clone());
                        // SAFETY: as in `piece`.
                        unsafe { cb(*status, std::ptr::null(), user_data) }
                    }
                }));
            });
        }
        // After the callback: a waiter may free `user_data` as soon as it wakes.
        self.outcome.set(finished);
    }
}

// ---- engine options ----

/// Create engine options with defaults: 4 slots, a queue of 64, no deadline, a 256 MiB host
/// prefix cache for prefixes of at least 32 tokens, adapter groups switched every 16 steps,
/// and the session defaults of `llmedge_session_options_new` (each slot's context is `n_ctx`;
/// `n_batch`, default 512, is the most tokens one decode step evaluates). The caller owns the
/// result and frees it with `llmedge_engine_options_free`. Returns NULL only on an internal
/// panic.
#[no_mangle]
pub extern "C" fn llmedge_engine_options_new() -> *mut llmedge_engine_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_engine_options {
            inner: EngineOptions {
                session: c_session_options(),
                ..EngineOptions::default()
            },
        }))
    })
}

/// Free engine options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_free(options: *mut llmedge_engine_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Use a copy of `session_options` for the engine's per-sequence settings: `n_ctx` (each
/// slot's context window), `n_batch` (tokens per decode step; at least the number of slots),
/// threads, chat template, safety policy, audit log, tenant, default LoRA adapters and prefix
/// reuse. Later changes to `session_options` do not affect these options.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` for NULL pointers. Not thread-safe with other changes to
/// the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`; `session_options` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_session_options(
    options: *mut llmedge_engine_options,
    session_options: *const llmedge_session_options,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.session = ref_arg(session_options, "session_options")?.inner.clone();
            Ok(())
        })
    }
}

/// Sequences decoded together (1..=256, checked by `llmedge_engine_new`; default 4). Each has
/// its own KV stream of `n_ctx` positions.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_slots(
    options: *mut llmedge_engine_options,
    slots: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.slots = slots;
            Ok(())
        })
    }
}

/// Most requests waiting for a slot (default 64); one more is refused with
/// `LLMEDGE_STATUS_BUSY`.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_max_queue(
    options: *mut llmedge_engine_options,
    max_queue: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.max_queue = max_queue as usize;
            Ok(())
        })
    }
}

/// Deadline of every request, in milliseconds from its submission, unless the request names
/// its own (0 = none, the default). A request past its deadline, queued or generating, ends
/// with `LLMEDGE_STATUS_TIMEOUT`.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_timeout_ms(
    options: *mut llmedge_engine_options,
    timeout_ms: u64,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
            Ok(())
        })
    }
}

/// Host memory for cached prompt prefixes, in bytes (default 256 MiB; 0 turns the host cache
/// off, the slots still keep their own last prefix).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_prefix_cache_bytes(
    options: *mut llmedge_engine_options,
    bytes: u64,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.prefix_cache_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
            Ok(())
        })
    }
}

/// Shortest prefix worth a host-cache entry, in tokens (default 32); a slot's cache is saved
/// there only when reusing the slot would cut at least this many tokens from it.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_prefix_cache_min_tokens(
    options: *mut llmedge_engine_options,
    tokens: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.prefix_cache_min_tokens = tokens as usize;
            Ok(())
        })
    }
}

/// Decode steps one LoRA adapter group runs while requests of another adapter set wait
/// (default 16; at least 1, checked by `llmedge_engine_new`).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_adapter_quantum(
    options: *mut llmedge_engine_options,
    steps: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.adapter_quantum = steps;
            Ok(())
        })
    }
}

// ---- engine ----

/// Create an engine on `model` and start its scheduler thread. `options` may be NULL for the
/// defaults (read during the call only). On success `*out_engine` is owned by the caller
/// (free with `llmedge_engine_free`); it keeps the model's weights alive on its own. Errors:
/// `LLMEDGE_STATUS_INVALID_ARGUMENT` (slots outside 1..=256, `n_batch` below the slots, an
/// adapter quantum of 0, ...), `LLMEDGE_STATUS_OUT_OF_MEMORY` (slots × n_ctx do not fit),
/// `LLMEDGE_STATUS_CONTEXT_CREATE`. Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `options` NULL or live; `out_engine` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_new(
    model: *const llmedge_model,
    options: *const llmedge_engine_options,
    out_engine: *mut *mut llmedge_engine,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        let out = out_arg(out_engine, "out_engine")?;
        // SAFETY: NULL allowed (defaults); otherwise a live builder.
        let options = unsafe { options.as_ref() }.map_or_else(
            || EngineOptions {
                session: c_session_options(),
                ..EngineOptions::default()
            },
            |o| o.inner.clone(),
        );
        let engine = Engine::new(&model.inner, options)?;
        // SAFETY: `out` was checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(llmedge_engine { inner: engine })),
            )
        };
        Ok(())
    })
}

/// Free an engine: cancel every queued and running request (each still gets its `on_done`,
/// finish reason `LLMEDGE_FINISH_CANCELLED`), wait for the scheduler thread to end, and release
/// the context. NULL is a no-op. Must not be called twice, nor while another thread uses the
/// engine. Request handles stay valid. Called from a request callback, the shutdown happens on
/// a new thread once the callback has returned.
///
/// # Safety
/// `engine` must be NULL or a live engine not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_free(engine: *mut llmedge_engine) {
    guard_value((), || {
        if engine.is_null() {
            return;
        }
        // SAFETY: a live engine from `llmedge_engine_new`, freed once (the caller's contract).
        let engine = unsafe { Box::from_raw(engine) };
        if in_callback() {
            // Joining the scheduler from its own thread would never return.
            std::thread::spawn(move || drop(engine));
        } else {
            drop(engine);
        }
    })
}

/// Stop accepting requests and wait for the scheduler to end: with `drain`, after every
/// queued and running request has finished; without, after cancelling them all (each still
/// gets its `on_done`). Later submissions fail with `LLMEDGE_STATUS_CLOSED`; the engine must
/// still be freed. Idempotent. `LLMEDGE_STATUS_INVALID_ARGUMENT` inside a request callback.
/// Thread-safe.
///
/// # Safety
/// `engine` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_shutdown(
    engine: *const llmedge_engine,
    drain: bool,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { ref_arg(engine, "engine") }?;
        if in_callback() {
            return Err(Error::InvalidArgument(
                "llmedge_engine_shutdown cannot be called from a request callback (it waits \
                 for the thread running the callback)"
                    .into(),
            ));
        }
        engine.inner.shutdown(drain);
        Ok(())
    })
}

/// The engine's counters as JSON: `slots`, `active`, `queued`, `finished`, `rejected_busy`,
/// `timed_out`, `prompt_tokens`, `cached_prompt_tokens`, `generated_tokens`, `decode_steps`,
/// `prefix_cache_entries`, `prefix_cache_bytes`, `prefix_hits`, `response_cache_hits`.
/// `*out_json` is caller-owned (free with `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `engine` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_stats_json(
    engine: *const llmedge_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            to_json(&ref_arg(engine, "engine")?.inner.stats())
        })
    }
}

/// Shared body of the submit functions.
///
/// # Safety
/// As for `llmedge_engine_submit`.
#[allow(clippy::too_many_arguments)]
unsafe fn submit(
    engine: *const llmedge_engine,
    input: impl FnOnce() -> llmedge::Result<RequestInput>,
    options: *const llmedge_generate_options,
    timeout_ms: u64,
    on_piece: llmedge_piece_callback,
    on_done: llmedge_done_callback,
    user_data: *mut c_void,
    out_request: *mut *mut llmedge_request,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { ref_arg(engine, "engine") }?;
        let input = input()?;
        // SAFETY: NULL allowed (defaults); otherwise a live builder.
        let options =
            unsafe { options.as_ref() }.map_or_else(GenerateOptions::default, |o| o.inner.clone());
        let request = EngineRequest {
            input,
            options,
            timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
        };
        let outcome = Arc::new(Outcome::default());
        let sink = Box::new(CSink {
            on_piece,
            on_done,
            user_data: UserData(user_data),
            outcome: outcome.clone(),
        });
        let handle = engine.inner.submit(request, sink)?;
        if !out_request.is_null() {
            let id = CString::new(handle.id().replace('\0', "")).expect("NULs removed");
            let request = llmedge_request {
                handle,
                id,
                outcome,
            };
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { write(out_request, Box::into_raw(Box::new(request))) };
        }
        Ok(())
    })
}

/// Submit a raw text prompt (UTF-8, `prompt_len` bytes; the model's BOS is added and
/// special-token text parsed) and return at once. `options` may be NULL for defaults;
/// `timeout_ms` is the request's deadline from now (0 = the engine's). The safety check,
/// option and grammar validation, the context fit and the queue space are checked here:
/// `LLMEDGE_STATUS_BUSY` when the queue is full, `LLMEDGE_STATUS_CLOSED` after shutdown,
/// `LLMEDGE_STATUS_CONTEXT_OVERFLOW`, `LLMEDGE_STATUS_INVALID_ARGUMENT`,
/// `LLMEDGE_STATUS_GRAMMAR`, ...; then no callback is ever called.
///
/// Once accepted, `on_piece` (may be NULL) receives each piece of text as it is generated
/// (see `llmedge_piece_callback`; returning false cancels the request, which then holds
/// exactly the pieces delivered), and `on_done` (may be NULL) is called exactly once at the
/// end. Both run on the engine's scheduler thread (a request the safety policy refuses is
/// answered at once, on this thread, before this function returns), with `user_data`, which
/// must stay valid until `on_done` has returned (or `llmedge_request_wait` has). They must not
/// unwind (throw) and should return quickly: every request of the engine waits for them.
///
/// On success `*out_request` (unless `out_request` is NULL: callbacks only) is a new handle
/// owned by the caller (free with `llmedge_request_free`). Thread-safe.
///
/// # Safety
/// `engine` NULL or live; `prompt` NULL or `prompt_len` readable bytes; `options` NULL or live;
/// the callbacks NULL or callable with `user_data` on another thread; `out_request` NULL or
/// writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmedge_engine_submit(
    engine: *const llmedge_engine,
    prompt: *const c_char,
    prompt_len: usize,
    options: *const llmedge_generate_options,
    timeout_ms: u64,
    on_piece: llmedge_piece_callback,
    on_done: llmedge_done_callback,
    user_data: *mut c_void,
    out_request: *mut *mut llmedge_request,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        submit(
            engine,
            // SAFETY: forwarded caller contract.
            || {
                Ok(RequestInput::Prompt(
                    str_arg(prompt, prompt_len, "prompt")?.to_owned(),
                ))
            },
            options,
            timeout_ms,
            on_piece,
            on_done,
            user_data,
            out_request,
        )
    }
}

/// Like `llmedge_engine_submit`, from token ids used as given (no BOS is added). Ids outside
/// the vocabulary give `LLMEDGE_STATUS_TOKENIZE`.
///
/// # Safety
/// As for `llmedge_engine_submit`; `tokens` NULL or `n_tokens` readable ids.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmedge_engine_submit_tokens(
    engine: *const llmedge_engine,
    tokens: *const llmedge_token,
    n_tokens: usize,
    options: *const llmedge_generate_options,
    timeout_ms: u64,
    on_piece: llmedge_piece_callback,
    on_done: llmedge_done_callback,
    user_data: *mut c_void,
    out_request: *mut *mut llmedge_request,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        submit(
            engine,
            // SAFETY: forwarded caller contract.
            || {
                Ok(RequestInput::Tokens(
                    slice_arg(tokens, n_tokens, "tokens")?.to_vec(),
                ))
            },
            options,
            timeout_ms,
            on_piece,
            on_done,
            user_data,
            out_request,
        )
    }
}

/// Like `llmedge_engine_submit`, for a conversation rendered with the engine's chat template
/// (the model's own unless set in the session options); the messages are copied.
/// `LLMEDGE_STATUS_NO_CHAT_TEMPLATE` when the model has none and none was set.
///
/// # Safety
/// As for `llmedge_engine_submit`; `messages` NULL or live.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmedge_engine_submit_chat(
    engine: *const llmedge_engine,
    messages: *const llmedge_chat_messages,
    options: *const llmedge_generate_options,
    timeout_ms: u64,
    on_piece: llmedge_piece_callback,
    on_done: llmedge_done_callback,
    user_data: *mut c_void,
    out_request: *mut *mut llmedge_request,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        submit(
            engine,
            // SAFETY: forwarded caller contract.
            || {
                Ok(RequestInput::Chat(
                    ref_arg(messages, "messages")?.inner.clone(),
                ))
            },
            options,
            timeout_ms,
            on_piece,
            on_done,
            user_data,
            out_request,
        )
    }
}

// ---- requests ----

/// Free a request handle. NULL is a no-op. Must not be called twice. The request itself goes
/// on (its callbacks are still called): call `llmedge_request_cancel` first to stop it.
///
/// # Safety
/// `request` must be NULL or a live handle not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn llmedge_request_free(request: *mut llmedge_request) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(request) })
}

/// Cancel the request: a queued one ends without running, a running one before its next
/// token; it finishes as a success with `LLMEDGE_FINISH_CANCELLED`. A no-op once it has ended.
/// Thread-safe (also from a callback).
///
/// # Safety
/// `request` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_request_cancel(request: *const llmedge_request) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        unsafe { ref_arg(request, "request") }?.handle.cancel();
        Ok(())
    })
}

/// The request id (as in the audit log and the completion), borrowed from the handle:
/// `*out_id` points to `*out_len` bytes, NUL-terminated, valid until `llmedge_request_free`.
/// Thread-safe.
///
/// # Safety
/// `request` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_request_id(
    request: *const llmedge_request,
    out_id: *mut *const c_char,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let r = unsafe { ref_arg(request, "request") }?;
        let (out_id, out_len) = (out_arg(out_id, "out_id")?, out_arg(out_len, "out_len")?);
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_id, r.id.as_ptr());
            write(out_len, r.id.as_bytes().len());
        }
        Ok(())
    })
}

/// Whether the request has ended (its `on_done` has returned). Thread-safe.
///
/// # Safety
/// `request` must be NULL or live; `out_done` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_request_done(
    request: *const llmedge_request,
    out_done: *mut bool,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let r = unsafe { ref_arg(request, "request") }?;
        let out = out_arg(out_done, "out_done")?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, r.outcome.is_done()) };
        Ok(())
    })
}

/// Wait until the request has ended (and its callbacks have returned). On success
/// `*out_completion` is a new caller-owned copy of the result (free with
/// `llmedge_completion_free`); a cancelled request is a success with
/// `LLMEDGE_FINISH_CANCELLED`. Otherwise the request's failure is returned
/// (`LLMEDGE_STATUS_TIMEOUT`, `LLMEDGE_STATUS_DECODE`, ...) with its message in
/// `llmedge_last_error()`. May be called any number of times, from any thread, also after the
/// engine was freed; `LLMEDGE_STATUS_INVALID_ARGUMENT` inside a request callback.
///
/// # Safety
/// `request` must be NULL or live; `out_completion` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_request_wait(
    request: *const llmedge_request,
    out_completion: *mut *mut llmedge_completion,
) -> llmedge_status {
    let mut failed = None;
    let status = guard(|| {
        // SAFETY: forwarded caller contract.
        let r = unsafe { ref_arg(request, "request") }?;
        let out = out_arg(out_completion, "out_completion")?;
        if in_callback() {
            return Err(Error::InvalidArgument(
                "llmedge_request_wait cannot be called from a request callback (the request \
                 waits for the thread running the callback)"
                    .into(),
            ));
        }
        match r.outcome.wait() {
            // SAFETY: checked non-NULL.
            Ok(c) => unsafe { write(out, Box::into_raw(Box::new((*c).clone()))) },
            Err(f) => failed = Some(f),
        }
        Ok(())
    });
    match failed {
        Some((status, message)) => {
            set_last_error(message);
            status
        }
        None => status,
    }
}
