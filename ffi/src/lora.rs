//! Runtime LoRA adapters: loaded once per model, attached per session
//! (`llmedge_session_options_add_lora`) or per request (`llmedge_generate_options_add_lora`,
//! `llmedge_generate_options_set_no_lora`) with a scale, switched between requests without
//! reloading.
//!
//! Thread safety: a `llmedge_lora` is immutable and may be used from any number of threads and
//! sessions at once (all sessions of its model).

use std::ffi::c_char;

use llmedge::LoraAdapter;

use crate::args::{free_box, out_arg, ref_arg, str_arg, write};
use crate::model::llmedge_model;
use crate::prompt::{return_string, to_json};
use crate::status::{guard, guard_value, llmedge_status};

/// A LoRA adapter loaded into one model. Opaque, immutable. The handle is a reference: the
/// model keeps the adapter loaded for its whole life, and freeing the handle only drops the
/// reference.
pub struct llmedge_lora {
    pub(crate) inner: LoraAdapter,
}

/// Load a GGUF LoRA adapter into `model`, or get the one already loaded from the same file
/// (each file is loaded once per model; loading it again returns a handle to the same adapter).
/// The adapter is checked against the model first: `LLMEDGE_STATUS_ADAPTER` when the file is
/// missing, truncated, not a LoRA adapter, for another architecture, or has tensors or shapes
/// the model does not have (the message says what does not fit). An adapter can only be used
/// with the model it was loaded into (`LLMEDGE_STATUS_INVALID_ARGUMENT` otherwise).
///
/// On success `*out_lora` is owned by the caller (free with `llmedge_lora_free`); it stays
/// valid after `llmedge_model_free` (its info can be read and it can be freed; it can be
/// attached only to sessions of its model, which keep the model alive). Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `path` NULL or `path_len` readable bytes; `out_lora` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_load_lora(
    model: *const llmedge_model,
    path: *const c_char,
    path_len: usize,
    out_lora: *mut *mut llmedge_lora,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        // SAFETY: forwarded caller contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let out = out_arg(out_lora, "out_lora")?;
        let inner = model.inner.load_lora(path)?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(llmedge_lora { inner }))) };
        Ok(())
    })
}

/// Free an adapter handle. The model keeps the adapter loaded (sessions and options that use it
/// are unaffected). NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `lora` must be NULL or a live handle not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llmedge_lora_free(lora: *mut llmedge_lora) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(lora) })
}

/// The adapter's metadata as a JSON object: `path`, `name`, `architecture`, `alpha`, `rank`,
/// `tensors` (base tensors it changes), `parameters`, `size_bytes`, `sha256`. On success
/// `*out_json` is a NUL-terminated UTF-8 string of `*out_len` bytes owned by the caller (free
/// with `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `lora` must be NULL or live; out-pointers must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_lora_info_json(
    lora: *const llmedge_lora,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            to_json(ref_arg(lora, "lora")?.inner.info())
        })
    }
}
