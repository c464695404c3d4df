//! Sessions (a KV cache on a model) and the completions they produce.
//!
//! Thread safety: a session runs one generation at a time; calls from several threads on the
//! same session are serialised (the later call waits). A session keeps the KV of its last
//! request and evaluates only what a new prompt adds to it (the next turn of a conversation),
//! unless `llmedge_session_options_set_prefix_reuse(opts, false)`. `llmedge_session_cancel` is the
//! exception: it may be called from any thread at any time. Different sessions run in parallel,
//! also on the same model. A `llmedge_completion` is immutable and may be read from any thread.

use std::ffi::{c_char, c_void};
use std::sync::Mutex;

use llmedge::{CancelHandle, Completion, Error, FinishReason, GenerateOptions, Prompt, Session};

use crate::args::{free_box, out_arg, ref_arg, slice_arg, str_arg, write};
use crate::llmedge_token;
use crate::model::llmedge_model;
use crate::options::{llmedge_chat_messages, llmedge_generate_options, llmedge_session_options};
use crate::prompt::{llmedge_prompt_template, return_string, to_json, variables_arg};
use crate::status::{guard, guard_value, llmedge_status};

/// A conversation's state on a model. Opaque.
pub struct llmedge_session {
    cancel: CancelHandle,
    inner: Mutex<Session>,
}

/// The result of a generation. Opaque, immutable.
#[derive(Clone)]
pub struct llmedge_completion {
    inner: Completion,
    /// `inner.text` with a trailing NUL, so it can be handed out as a C string.
    text: std::ffi::CString,
    /// `inner.request_id`, NUL-terminated.
    request_id: std::ffi::CString,
}

/// Streaming callback: receives each piece of generated text (UTF-8, never a partial
/// character, not NUL-terminated, valid only during the call) and `user_data`.
/// Return `true` to continue, `false` to stop (the completion then reports
/// `LLMEDGE_FINISH_CANCELLED`). Session functions call it on the thread that called them;
/// engine functions on the engine's scheduler thread (see `llmedge_engine_submit`).
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
    /// The safety policy refused the input (the text is the refusal message) or stopped the
    /// output (the text is what was emitted before the blocked part).
    LLMEDGE_FINISH_CONTENT_FILTER = 3,
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
        let options = unsafe { options.as_ref() }
            .map_or_else(crate::options::c_session_options, |o| o.inner.clone());
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

/// Save what the session's KV cache holds (the last request's prompt and reply) to the file
/// `path` (UTF-8, `path_len` bytes), so that this or a later process can continue from it
/// with `llmedge_session_load_state` without evaluating it again. The file is written to a
/// temporary name and renamed into place; it names the model's SHA-256 and the session's
/// adapter set. `LLMEDGE_STATUS_IO` when it cannot be written. Waits for a generation running
/// on the session (see the module notes on threads).
///
/// # Safety
/// `session` must be NULL or live; `path` NULL or `path_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_save_state(
    session: *const llmedge_session,
    path: *const c_char,
    path_len: usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let session = unsafe { ref_arg(session, "session") }?;
        // SAFETY: forwarded caller contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let guard = session.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.save_state(path)
    })
}

/// Restore a state saved by `llmedge_session_save_state` from the same model with the same
/// adapter set: the next request whose prompt starts with the saved tokens evaluates only the
/// rest. On success `*out_n_tokens` is the number of tokens restored. The file is checked
/// whole before llama.cpp reads it: a corrupt or truncated file, one from another model or
/// adapter set, or one larger than the context gives `LLMEDGE_STATUS_STATE` (a missing file
/// `LLMEDGE_STATUS_IO`), and the session then starts from an empty cache. Waits for a
/// generation running on the session.
///
/// # Safety
/// `session` must be NULL or live; `path` NULL or `path_len` readable bytes; `out_n_tokens`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_load_state(
    session: *const llmedge_session,
    path: *const c_char,
    path_len: usize,
    out_n_tokens: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let session = unsafe { ref_arg(session, "session") }?;
        // SAFETY: forwarded caller contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let out = out_arg(out_n_tokens, "out_n_tokens")?;
        let n = session
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .load_state(path)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, n) };
        Ok(())
    })
}

/// Run one generation on a session and store the result in `*out_completion`.
///
/// # Safety
/// `callback` must be safe to call with `user_data` on this thread; `out` must be writable.
pub(crate) unsafe fn run(
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
    let mut on_piece = |piece: &str| match callback {
        // SAFETY: the caller guarantees the callback may be called with `user_data`; the piece
        // pointer is valid for the duration of the call.
        Some(cb) => unsafe { cb(piece.as_ptr().cast(), piece.len(), user_data) },
        None => true,
    };
    let completion = with_session(session, options, |s, o| go(s, o, &mut on_piece))?;
    // SAFETY: `out` was checked non-NULL.
    unsafe { write(out, Box::into_raw(Box::new(completion_handle(completion)))) };
    Ok(())
}

/// A core completion as the C handle (its text and request id NUL-terminated).
pub(crate) fn completion_handle(completion: Completion) -> llmedge_completion {
    let text =
        std::ffi::CString::new(completion.text.replace('\0', "\u{fffd}")).expect("NULs replaced");
    llmedge_completion {
        request_id: std::ffi::CString::new(completion.request_id.replace('\0', ""))
            .expect("NULs removed"),
        inner: completion,
        text,
    }
}

/// Lock the session and resolve NULL options to the defaults.
fn with_session<T>(
    session: &llmedge_session,
    options: *const llmedge_generate_options,
    go: impl FnOnce(&mut Session, &GenerateOptions) -> llmedge::Result<T>,
) -> llmedge::Result<T> {
    let defaults;
    // SAFETY: NULL allowed (defaults); otherwise a live builder (the caller's contract).
    let options = match unsafe { options.as_ref() } {
        Some(o) => &o.inner,
        None => {
            defaults = GenerateOptions::default();
            &defaults
        }
    };
    let mut guard = session.inner.lock().unwrap_or_else(|p| p.into_inner());
    go(&mut guard, options)
}

/// Parse a JSON argument.
///
/// # Safety
/// `json` must be NULL or point to `len` readable bytes.
pub(crate) unsafe fn json_arg(
    json: *const c_char,
    len: usize,
    name: &'static str,
) -> Result<serde_json::Value, Error> {
    // SAFETY: forwarded caller contract.
    let text = unsafe { str_arg(json, len, name) }?;
    serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("{name}: {e}")))
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

/// Generate JSON that validates against `schema_json` (a JSON Schema; generation is
/// grammar-constrained). The completion's text is the JSON document. Errors:
/// `LLMEDGE_STATUS_GRAMMAR` (the schema cannot become a grammar, before any decoding),
/// `LLMEDGE_STATUS_STRUCTURED_OUTPUT` (max_tokens reached before the JSON closed),
/// `LLMEDGE_STATUS_SAFETY_BLOCKED` (the safety policy stopped it), and those of
/// `llmedge_session_generate`. Ownership as `llmedge_session_generate`.
///
/// # Safety
/// As for `llmedge_session_generate`; `schema_json` NULL or `schema_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_generate_json(
    session: *const llmedge_session,
    prompt: *const c_char,
    prompt_len: usize,
    schema_json: *const c_char,
    schema_len: usize,
    options: *const llmedge_generate_options,
    out_completion: *mut *mut llmedge_completion,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let prompt = unsafe { str_arg(prompt, prompt_len, "prompt") }?;
        // SAFETY: forwarded caller contract.
        let schema = unsafe { json_arg(schema_json, schema_len, "schema_json") }?;
        // SAFETY: forwarded caller contract.
        unsafe {
            run(
                session,
                options,
                None,
                std::ptr::null_mut(),
                out_completion,
                |s, o, _| {
                    s.generate_json(Prompt::Text(prompt), &schema, o)
                        .map(|j| j.completion)
                },
            )
        }
    })
}

/// `llmedge_session_generate_json` for a conversation rendered with the chat template.
///
/// # Safety
/// As for `llmedge_session_generate_json`; `messages` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_chat_json(
    session: *const llmedge_session,
    messages: *const llmedge_chat_messages,
    schema_json: *const c_char,
    schema_len: usize,
    options: *const llmedge_generate_options,
    out_completion: *mut *mut llmedge_completion,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let messages = unsafe { ref_arg(messages, "messages") }?;
        // SAFETY: forwarded caller contract.
        let schema = unsafe { json_arg(schema_json, schema_len, "schema_json") }?;
        // SAFETY: forwarded caller contract.
        unsafe {
            run(
                session,
                options,
                None,
                std::ptr::null_mut(),
                out_completion,
                |s, o, _| {
                    s.chat_json(&messages.inner, &schema, o)
                        .map(|j| j.completion)
                },
            )
        }
    })
}

/// Run a prompt template: fill it with `variables_json` (a JSON object; NULL = none), send it
/// as a chat (system prompt, few-shot turns, request) and post-process. `*out_json` is
/// `{"template", "messages", "prompt", "completion": {"text", "finish_reason", "usage",
/// "timings", "request_id", "safety", ...}, "answer" (chain-of-thought answer or null), "json"
/// (parsed output of a template with an output schema, or null)}`, caller-owned (free with
/// `llmedge_string_free`). Errors: `LLMEDGE_STATUS_TEMPLATE_VARIABLES` and those of
/// `llmedge_session_generate_json`.
///
/// # Safety
/// `session`, `template_` NULL or live; strings NULL or their lengths; out-pointers NULL or
/// writable; `options` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_run_template(
    session: *const llmedge_session,
    template_: *const llmedge_prompt_template,
    variables_json: *const c_char,
    variables_len: usize,
    options: *const llmedge_generate_options,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let session = ref_arg(session, "session")?;
            let template = &ref_arg(template_, "template")?.inner;
            let vars = variables_arg(variables_json, variables_len)?;
            to_json(&with_session(session, options, |s, o| {
                s.run_template(template, &vars, o)
            })?)
        })
    }
}

/// The two-stage dynamic prompt flow in one call: the model reads `request` and fills the
/// template's variables as JSON under a schema built from them; llmedge then renders the
/// template and answers it. `*out_json` is `{"variables", "fill_prompt", "fill" (the stage-1
/// completion), "answer" (as `llmedge_session_run_template`)}`, caller-owned (free with
/// `llmedge_string_free`).
///
/// # Safety
/// As for `llmedge_session_run_template`; `request` NULL or `request_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_run_dynamic(
    session: *const llmedge_session,
    template_: *const llmedge_prompt_template,
    request: *const c_char,
    request_len: usize,
    options: *const llmedge_generate_options,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let session = ref_arg(session, "session")?;
            let template = &ref_arg(template_, "template")?.inner;
            let request = str_arg(request, request_len, "request")?;
            to_json(&with_session(session, options, |s, o| {
                s.run_dynamic(template, request, o)
            })?)
        })
    }
}

/// The request id (as in the audit log), borrowed from the completion: `*out_id` points to
/// `*out_len` bytes, NUL-terminated, valid until `llmedge_completion_free`.
///
/// # Safety
/// `completion` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_request_id(
    completion: *const llmedge_completion,
    out_id: *mut *const c_char,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { ref_arg(completion, "completion") }?;
        let (out_id, out_len) = (out_arg(out_id, "out_id")?, out_arg(out_len, "out_len")?);
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_id, c.request_id.as_ptr());
            write(out_len, c.request_id.as_bytes().len());
        }
        Ok(())
    })
}

/// The safety report as JSON (`{"input_verdict", "output_verdict", "categories",
/// "redactions"}`), or `null` when the session has no safety layer. `*out_json` is
/// caller-owned (free with `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `completion` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_safety_json(
    completion: *const llmedge_completion,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            to_json(&ref_arg(completion, "completion")?.inner.safety)
        })
    }
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
            FinishReason::ContentFilter => llmedge_finish_reason::LLMEDGE_FINISH_CONTENT_FILTER,
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

/// Prompt tokens whose KV was reused from an earlier request instead of being evaluated (a
/// session's previous turn or a restored state file, an engine slot or its prefix cache);
/// part of the prompt tokens of `llmedge_completion_usage`.
///
/// # Safety
/// `completion` must be NULL or live; `out_cached_tokens` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_completion_cached_prompt_tokens(
    completion: *const llmedge_completion,
    out_cached_tokens: *mut u32,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { ref_arg(completion, "completion") }?;
        let out = out_arg(out_cached_tokens, "out_cached_tokens")?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, c.inner.usage.cached_prompt_tokens) };
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
