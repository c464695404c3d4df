//! Sessions (a KV cache on a model) and the completions they produce.
//!
//! Thread safety: a session runs one generation at a time; calls from several threads on the
//! same session are serialised (the later call waits). `llmedge_session_cancel` is the
//! exception: it may be called from any thread at any time. Different sessions run in parallel,
//! also on the same model. A `llmedge_completion` is immutable and may be read from any thread.

use std::ffi::{c_char, c_void};
use std::sync::Mutex;

use llmedge::{
    CancelHandle, Completion, FinishReason, GenerateOptions, Prompt, Session, SessionOptions,
};

use crate::args::{free_box, out_arg, ref_arg, slice_arg, str_arg, write};
use crate::llmedge_token;
use crate::model::llmedge_model;
use crate::options::{llmedge_chat_messages, llmedge_generate_options, llmedge_session_options};
use crate::status::{guard, guard_value, llmedge_status};

/// A conversation's state on a model. Opaque.
pub struct llmedge_session {
    cancel: CancelHandle,
    inner: Mutex<Session>,
}

/// The result of a generation. Opaque, immutable.
pub struct llmedge_completion {
    inner: Completion,
    /// `inner.text` with a trailing NUL, so it can be handed out as a C string.
    text: std::ffi::CString,
}

/// Streaming callback: receives each piece of generated text (UTF-8, never a partial
/// character, not NUL-terminated, valid only during the call) and `user_data`.
/// Return `true` to continue, `false` to stop (the completion then reports
/// `LLMEDGE_FINISH_CANCELLED`). Called on the thread that called the generate function.
pub type llmedge_piece_callback =
    Option<unsafe extern "C" fn(piece: *const c_char, len: usize, user_data: *mut c_void) -> bool>;

/// Why a generation ended.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum llmedge_finish_reason {
    /// An end-of-generation token or a stop string.
    LLMEDGE_FINISH_STOP = 0,
    /// max_tokens or the context window was reached.
    LLMEDGE_FINISH_LENGTH = 1,
    /// Cancelled by `llmedge_session_cancel` or a callback returning false.
    LLMEDGE_FINISH_CANCELLED = 2,
}

/// Which timing `llmedge_completion_timing` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum llmedge_timing {
    /// Milliseconds from the call to the first generated token.
    LLMEDGE_TIMING_TIME_TO_FIRST_TOKEN_MS = 0,
    /// Milliseconds spent evaluating the prompt.
    LLMEDGE_TIMING_PROMPT_MS = 1,
    /// Milliseconds from the first generated token to the last.
    LLMEDGE_TIMING_GENERATION_MS = 2,
    /// Prompt tokens per second.
    LLMEDGE_TIMING_PROMPT_TOKENS_PER_SECOND = 3,
    /// Generated tokens per second (decode speed).
    LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND = 4,
}

/// Create a session on `model`. `options` may be NULL for defaults (read during the call only).
/// On success `*out_session` is owned by the caller (free with `llmedge_session_free`); it keeps
/// the model's weights alive on its own. Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `options` NULL or live; `out_session` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_new(
    model: *const llmedge_model,
    options: *const llmedge_session_options,
    out_session: *mut *mut llmedge_session,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        let out = out_arg(out_session, "out_session")?;
        // SAFETY: NULL allowed (defaults); otherwise a live builder.
        let options =
            unsafe { options.as_ref() }.map_or_else(SessionOptions::default, |o| o.inner.clone());
        let session = Session::new(&model.inner, options)?;
        let handle = llmedge_session {
            cancel: session.cancel_handle(),
            inner: Mutex::new(session),
        };
        // SAFETY: `out` was checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(handle))) };
        Ok(())
    })
}

/// Free a session. NULL is a no-op. Must not be called twice, nor while another thread uses
/// the session.
///
/// # Safety
/// `session` must be NULL or a live session not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_free(session: *mut llmedge_session) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(session) })
}

/// Cancel the generation running on `session`; it ends before its next token with
/// `LLMEDGE_FINISH_CANCELLED`. A no-op when nothing runs: each generation starts uncancelled, so
/// a cancel that arrives before it starts has no effect (return false from the callback for a
/// race-free per-request stop). Safe to call from any thread while another thread generates.
///
/// # Safety
/// `session` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_cancel(session: *const llmedge_session) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        unsafe { ref_arg(session, "session") }?.cancel.cancel();
        Ok(())
    })
}

/// Run one generation on a session and store the result in `*out_completion`.
///
/// # Safety
/// `callback` must be safe to call with `user_data` on this thread; `out` must be writable.
unsafe fn run(
    session: *const llmedge_session,
    options: *const llmedge_generate_options,
    callback: llmedge_piece_callback,
    user_data: *mut c_void,
    out: *mut *mut llmedge_completion,
    go: impl FnOnce(
        &mut Session,
        &GenerateOptions,
        &mut dyn FnMut(&str) -> bool,
    ) -> llmedge::Result<Completion>,
) -> llmedge::Result<()> {
    // SAFETY: forwarded caller contract.
    let session = unsafe { ref_arg(session, "session") }?;
    let out = out_arg(out, "out_completion")?;
    let defaults;
    // SAFETY: NULL allowed (defaults); otherwise a live builder.
    let options = match unsafe { options.as_ref() } {
        Some(o) => &o.inner,
        None => {
            defaults = GenerateOptions::default();
            &defaults
        }
    };
    let mut on_piece = |piece: &str| match callback {
        // SAFETY: the caller guarantees the callback may be called with `user_data`; the piece
        // pointer is valid for the duration of the call.
        Some(cb) => unsafe { cb(piece.as_ptr().cast(), piece.len(), user_data) },
        None => true,
    };
    let mut guard = session.inner.lock().unwrap_or_else(|p| p.into_inner());
    let completion = go(&mut guard, options, &mut on_piece)?;
    let text =
        std::ffi::CString::new(completion.text.replace('\0', "\u{fffd}")).expect("NULs replaced");
    // SAFETY: `out` was checked non-NULL.
    unsafe {
        write(
            out,
            Box::into_raw(Box::new(llmedge_completion {
                inner: completion,
                text,
            })),
        )
    };
    Ok(())
}

/// Generate from a raw text prompt (UTF-8, `prompt_len` bytes; the model's BOS is added and
/// special-token text is parsed). `options` may be NULL for defaults. `callback` may be NULL;
/// otherwise it receives each piece as it is generated (see `llmedge_piece_callback`).
/// On success `*out_completion` is owned by the caller (free with `llmedge_completion_free`);
/// a cancelled generation is a success with `LLMEDGE_FINISH_CANCELLED`. Errors include
/// `LLMEDGE_STATUS_CONTEXT_OVERFLOW` (checked before decoding), `LLMEDGE_STATUS_INVALID_ARGUMENT`
/// (bad options), `LLMEDGE_STATUS_INVALID_UTF8`. Blocks until done; see the module notes on threads.
///
/// # Safety
/// Pointers must be NULL or valid as documented; `callback` must be callable with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_generate(
    session: *const llmedge_session,
    prompt: *const c_char,
    prompt_len: usize,
    options: *const llmedge_generate_options,
    callback: llmedge_piece_callback,
    user_data: *mut c_void,
    out_completion: *mut *mut llmedge_completion,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let prompt = unsafe { str_arg(prompt, prompt_len, "prompt") }?;
        // SAFETY: forwarded caller contract.
        unsafe {
            run(
                session,
                options,
                callback,
                user_data,
                out_completion,
                |s, o, cb| s.generate_with(Prompt::Text(prompt), o, cb),
            )
        }
    })
}

/// Like `llmedge_session_generate`, from token ids used as given (no BOS is added).
/// Ids outside the vocabulary give `LLMEDGE_STATUS_TOKENIZE`.
///
/// # Safety
/// As for `llmedge_session_generate`; `tokens` must be NULL or `n_tokens` readable ids.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_generate_tokens(
    session: *const llmedge_session,
    tokens: *const llmedge_token,
    n_tokens: usize,
    options: *const llmedge_generate_options,
    callback: llmedge_piece_callback,
    user_data: *mut c_void,
    out_completion: *mut *mut llmedge_completion,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let tokens = unsafe { slice_arg(tokens, n_tokens, "tokens") }?;
        // SAFETY: forwarded caller contract.
        unsafe {
            run(
                session,
                options,
                callback,
                user_data,
                out_completion,
                |s, o, cb| s.generate_with(Prompt::Tokens(tokens), o, cb),
            )
        }
    })
}

/// Render `messages` with the session's chat template (the model's own unless set in the session
/// options) and generate the assistant's reply. Otherwise as `llmedge_session_generate`;
/// `LLMEDGE_STATUS_NO_CHAT_TEMPLATE` when the model has none and none was set.
///
/// # Safety
/// As for `llmedge_session_generate`; `messages` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_chat(
    session: *const llmedge_session,
    messages: *const llmedge_chat_messages,
    options: *const llmedge_generate_options,
    callback: llmedge_piece_callback,
    user_data: *mut c_void,
    out_completion: *mut *mut llmedge_completion,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let messages = unsafe { ref_arg(messages, "messages") }?;
        // SAFETY: forwarded caller contract.
        unsafe {
            run(
                session,
                options,
                callback,
                user_data,
                out_completion,
                |s, o, cb| s.chat_with(&messages.inner, o, cb),
            )
        }
    })
}

/// Free a completion. NULL is a no-op. Must not be called twice; borrowed text and tokens
/// become invalid.
///
/// # Safety
/// `completion` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_free(completion: *mut llmedge_completion) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(completion) })
}

/// The generated text: `*out_text` points to `*out_len` bytes of UTF-8 (also NUL-terminated),
/// borrowed from the completion and valid until `llmedge_completion_free`.
///
/// # Safety
/// `completion` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_text(
    completion: *const llmedge_completion,
    out_text: *mut *const c_char,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { ref_arg(completion, "completion") }?;
        let (out_text, out_len) = (out_arg(out_text, "out_text")?, out_arg(out_len, "out_len")?);
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_text, c.text.as_ptr());
            write(out_len, c.text.as_bytes().len());
        }
        Ok(())
    })
}

/// The generated token ids, borrowed from the completion (valid until it is freed).
///
/// # Safety
/// `completion` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_tokens(
    completion: *const llmedge_completion,
    out_tokens: *mut *const llmedge_token,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { ref_arg(completion, "completion") }?;
        let (out_tokens, out_len) = (
            out_arg(out_tokens, "out_tokens")?,
            out_arg(out_len, "out_len")?,
        );
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_tokens, c.inner.tokens.as_ptr());
            write(out_len, c.inner.tokens.len());
        }
        Ok(())
    })
}

/// Why the generation ended.
///
/// # Safety
/// `completion` must be NULL or live; `out_reason` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_finish_reason(
    completion: *const llmedge_completion,
    out_reason: *mut llmedge_finish_reason,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { ref_arg(completion, "completion") }?;
        let out = out_arg(out_reason, "out_reason")?;
        let reason = match c.inner.finish_reason {
            FinishReason::Stop => llmedge_finish_reason::LLMEDGE_FINISH_STOP,
            FinishReason::Length => llmedge_finish_reason::LLMEDGE_FINISH_LENGTH,
            FinishReason::Cancelled => llmedge_finish_reason::LLMEDGE_FINISH_CANCELLED,
        };
        // SAFETY: checked non-NULL.
        unsafe { write(out, reason) };
        Ok(())
    })
}

/// Prompt and generated token counts.
///
/// # Safety
/// `completion` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_usage(
    completion: *const llmedge_completion,
    out_prompt_tokens: *mut u32,
    out_completion_tokens: *mut u32,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { ref_arg(completion, "completion") }?;
        let p = out_arg(out_prompt_tokens, "out_prompt_tokens")?;
        let g = out_arg(out_completion_tokens, "out_completion_tokens")?;
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(p, c.inner.usage.prompt_tokens);
            write(g, c.inner.usage.completion_tokens);
        }
        Ok(())
    })
}

/// One timing figure of the generation; `which` is an `llmedge_timing` value (others give
/// `LLMEDGE_STATUS_INVALID_ARGUMENT`).
///
/// # Safety
/// `completion` must be NULL or live; `out_value` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_timing(
    completion: *const llmedge_completion,
    which: i32,
    out_value: *mut f64,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { ref_arg(completion, "completion") }?;
        let out = out_arg(out_value, "out_value")?;
        let t = &c.inner.timings;
        let value = match which {
            x if x == llmedge_timing::LLMEDGE_TIMING_TIME_TO_FIRST_TOKEN_MS as i32 => {
                t.time_to_first_token_ms
            }
            x if x == llmedge_timing::LLMEDGE_TIMING_PROMPT_MS as i32 => t.prompt_ms,
            x if x == llmedge_timing::LLMEDGE_TIMING_GENERATION_MS as i32 => t.generation_ms,
            x if x == llmedge_timing::LLMEDGE_TIMING_PROMPT_TOKENS_PER_SECOND as i32 => {
                t.prompt_tokens_per_second
            }
            x if x == llmedge_timing::LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND as i32 => {
                t.generation_tokens_per_second
            }
            other => {
                return Err(llmedge::Error::InvalidArgument(format!(
                    "unknown timing {other}"
                )))
            }
        };
        // SAFETY: checked non-NULL.
        unsafe { write(out, value) };
        Ok(())
    })
}
