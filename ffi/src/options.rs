//! Opaque option builders: fields can be added later without breaking the ABI.
//!
//! Each builder is created with `_new` (defaults filled in), changed with `_set_*`/`_add_*`,
//! and released with `_free`. A builder may be reused for many calls and freed right after
//! the call that uses it. Builders are not thread-safe while being changed; once built, they
//! may be read by several threads at once.

use std::ffi::c_char;

use llmedge::audit::{AuditConfig, AuditLog, Surface};
use llmedge::safety::{Safety, SafetyPolicy};
use llmedge::{
    ChatMessage, ChatTemplate, GenerateOptions, IntegrityPolicy, ModelOptions, OutputConstraint,
    SessionOptions, Truncation,
};

use crate::args::{free_box, mut_arg, ref_arg, str_arg};
use crate::llmedge_token;
use crate::lora::llmedge_lora;
use crate::status::{guard, guard_value, llmedge_status};

/// Options for `llmedge_model_load` (an opaque builder).
pub struct llmedge_model_options {
    pub(crate) inner: ModelOptions,
}

/// Options for `llmedge_session_new` (an opaque builder).
pub struct llmedge_session_options {
    pub(crate) inner: SessionOptions,
}

/// Sampling and limits for one generation (an opaque builder).
pub struct llmedge_generate_options {
    pub(crate) inner: GenerateOptions,
}

/// A list of chat messages for `llmedge_session_chat` (an opaque builder).
pub struct llmedge_chat_messages {
    pub(crate) inner: Vec<ChatMessage>,
}

/// What to do when prompt + max_tokens does not fit in the context.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum llmedge_truncation {
    /// Fail with `LLMEDGE_STATUS_CONTEXT_OVERFLOW` before decoding (the default).
    LLMEDGE_TRUNCATION_ERROR = 0,
    /// Drop the oldest prompt tokens (keeping BOS) until the request fits.
    LLMEDGE_TRUNCATION_DROP_OLDEST = 1,
}

/// The builders share one shape: an opaque box around a core options value.
pub(crate) trait Builder {
    type Inner;
    fn inner(&mut self) -> &mut Self::Inner;
}

/// `impl Builder` for builders whose core value is their `inner` field.
macro_rules! builder {
    ($($t:ty => $inner:ty),*) => {$(
        impl $crate::options::Builder for $t {
            type Inner = $inner;
            fn inner(&mut self) -> &mut $inner {
                &mut self.inner
            }
        }
    )*};
}
pub(crate) use builder;
builder!(llmedge_model_options => ModelOptions, llmedge_session_options => SessionOptions,
    llmedge_generate_options => GenerateOptions);

/// Body of every `_set_*` export: check the handle, apply `f`, map errors and panics.
///
/// # Safety
/// `options` must be NULL or a live builder of type `B`.
pub(crate) unsafe fn set<B: Builder>(
    options: *mut B,
    f: impl FnOnce(&mut B::Inner) -> llmedge::Result<()>,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        f(unsafe { mut_arg(options, "options") }?.inner())
    })
}

// ---- model options ----

/// Create model options with defaults (mmap on, CPU only, all cores).
/// The caller owns the result and frees it with `llmedge_model_options_free`.
/// Returns NULL only on allocation failure or an internal panic.
#[no_mangle]
pub extern "C" fn llmedge_model_options_new() -> *mut llmedge_model_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_model_options {
            inner: ModelOptions::default(),
        }))
    })
}

/// Free model options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_free(options: *mut llmedge_model_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Layers to offload to the GPU (0 = CPU only, UINT32_MAX = all). Needs a GPU build.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_n_gpu_layers(
    options: *mut llmedge_model_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.n_gpu_layers = n;
            Ok(())
        })
    }
}
/// Map the model file instead of reading it (default true).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_use_mmap(
    options: *mut llmedge_model_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.use_mmap = on;
            Ok(())
        })
    }
}
/// Lock the weights in RAM (default false).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_use_mlock(
    options: *mut llmedge_model_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.use_mlock = on;
            Ok(())
        })
    }
}
/// Default thread count of sessions on this model (default: all cores; 0 is rejected at load).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_threads(
    options: *mut llmedge_model_options,
    threads: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.threads = threads;
            Ok(())
        })
    }
}
/// Hash the file at load so its SHA-256 appears in `llmedge_model_info_json` (default false).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_compute_sha256(
    options: *mut llmedge_model_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.compute_sha256 = on;
            Ok(())
        })
    }
}

/// Most tokens one request's prompt may have on this model, text, chat, images and
/// embeddings alike (0 = no limit, the default: only the context window bounds it). A longer
/// prompt fails with `LLMEDGE_STATUS_LIMIT` before anything is evaluated.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_max_prompt_tokens(
    options: *mut llmedge_model_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.max_prompt_tokens = (n > 0).then_some(n);
            Ok(())
        })
    }
}
/// Most sequences open on this model at once (0 = no limit, the default): a session holds one
/// and an engine one per slot until freed. One more fails with `LLMEDGE_STATUS_BUSY` before
/// its KV cache is allocated.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_model_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_max_sessions(
    options: *mut llmedge_model_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.max_sessions = (n > 0).then_some(n);
            Ok(())
        })
    }
}

/// Require verified models (`require_verified_models`): models loaded with these options, and
/// every LoRA adapter loaded into them, must be listed in the manifest at `manifest` (TOML,
/// written by `llmedge manifest create`) with a matching SHA-256 before anything parses them.
/// When `pubkey` is not NULL (a file of 64 hex digits), the manifest must also carry a valid
/// Ed25519 signature by that key. The manifest and key are read now; the files are hashed at
/// each load. A refused load fails with `LLMEDGE_STATUS_MODEL_INTEGRITY` and a message saying
/// whether the file is unlisted, tampered with (expected and actual hash) or the signature is
/// bad. `LLMEDGE_STATUS_MODEL_INTEGRITY` here when the manifest is invalid, `LLMEDGE_STATUS_IO`
/// when a file cannot be read. The options are left unchanged on error.
///
/// # Safety
/// `options` must be NULL or live; `manifest` NULL or `manifest_len` readable bytes; `pubkey`
/// NULL (no key) or `pubkey_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_options_set_manifest(
    options: *mut llmedge_model_options,
    manifest: *const c_char,
    manifest_len: usize,
    pubkey: *const c_char,
    pubkey_len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let manifest = str_arg(manifest, manifest_len, "manifest")?;
            let pubkey = if pubkey.is_null() {
                None
            } else {
                Some(std::path::Path::new(str_arg(pubkey, pubkey_len, "pubkey")?))
            };
            let mut policy = IntegrityPolicy::from_files(std::path::Path::new(manifest), pubkey)?;
            policy.surface = Surface::C;
            o.integrity = Some(std::sync::Arc::new(policy));
            Ok(())
        })
    }
}

// ---- session options ----

/// Create session options with defaults (context = the model's training context, at most 4096).
/// The caller owns the result and frees it with `llmedge_session_options_free`.
/// Returns NULL only on an internal panic.
#[no_mangle]
pub extern "C" fn llmedge_session_options_new() -> *mut llmedge_session_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_session_options {
            inner: c_session_options(),
        }))
    })
}

/// Free session options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_free(options: *mut llmedge_session_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Context window in tokens.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_n_ctx(
    options: *mut llmedge_session_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.n_ctx = Some(n);
            Ok(())
        })
    }
}
/// Most prompt tokens per llama.cpp call (default 2048).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_n_batch(
    options: *mut llmedge_session_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.n_batch = Some(n);
            Ok(())
        })
    }
}
/// Physical micro-batch size (default 512).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_n_ubatch(
    options: *mut llmedge_session_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.n_ubatch = Some(n);
            Ok(())
        })
    }
}
/// Threads for generation (default: the model's).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_threads(
    options: *mut llmedge_session_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.threads = Some(n);
            Ok(())
        })
    }
}
/// Threads for prompt evaluation (default: same as generation).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_threads_batch(
    options: *mut llmedge_session_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.threads_batch = Some(n);
            Ok(())
        })
    }
}

/// Use this chat template instead of the model's: a Jinja source or a llama.cpp built-in name
/// (`chatml`, `llama3`, ...). The text is copied. Returns `LLMEDGE_STATUS_TEMPLATE` when it does
/// not parse, `LLMEDGE_STATUS_NULL_ARG` for NULL pointers, `LLMEDGE_STATUS_INVALID_UTF8` for bad text.
///
/// # Safety
/// `options` must be NULL or live; `template_` must be NULL or point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_chat_template(
    options: *mut llmedge_session_options,
    template_: *const c_char,
    len: usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let options = unsafe { mut_arg(options, "options") }?;
        // SAFETY: forwarded caller contract.
        let source = unsafe { str_arg(template_, len, "template") }?;
        options.inner.chat_template = Some(ChatTemplate::parse(source)?);
        Ok(())
    })
}

/// Apply this safety policy file (TOML) to every request of the session instead of the
/// built-in default. Loaded and compiled now: `LLMEDGE_STATUS_POLICY` names the file and line
/// of an error.
///
/// # Safety
/// `options` must be NULL or live; `path` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_safety_policy(
    options: *mut llmedge_session_options,
    path: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let path = str_arg(path, len, "path")?;
            o.safety = Some(Safety::new(SafetyPolicy::from_file(path)?)?);
            Ok(())
        })
    }
}

/// Turn the safety layer on (`true`: the built-in default policy, also the default) or off.
///
/// # Safety
/// `options` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_safety_enabled(
    options: *mut llmedge_session_options,
    enabled: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.safety = enabled.then(llmedge::request_guard::default_safety);
            Ok(())
        })
    }
}

/// Record every request of sessions made with these options in the audit log in `dir`
/// (created if missing; fsync after every record; hashes only, no text). One log per directory
/// is shared by the whole process. `LLMEDGE_STATUS_AUDIT` when the log cannot be opened
/// (held by another process, or damaged: run `llmedge audit verify`).
///
/// # Safety
/// `options` must be NULL or live; `dir` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_audit_dir(
    options: *mut llmedge_session_options,
    dir: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let dir = str_arg(dir, len, "dir")?;
            o.audit = Some(AuditLog::open_shared(AuditConfig::new(dir))?);
            Ok(())
        })
    }
}

/// The caller or tenant that requests are accounted to in the audit log (default "local").
///
/// # Safety
/// `options` must be NULL or live; `tenant` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_tenant(
    options: *mut llmedge_session_options,
    tenant: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.tenant = str_arg(tenant, len, "tenant")?.to_owned();
            Ok(())
        })
    }
}

/// Attach a LoRA adapter with `scale` (1.0 = as trained; 0 = no effect; negative values
/// subtract it) to every request of sessions made with these options, unless a request sets
/// its own adapters (`llmedge_generate_options_add_lora`, `_set_no_lora`). Call once per
/// adapter to stack several. The adapter must belong to the model the session is created on,
/// the scale must be finite, and an adapter may be added once: checked by `llmedge_session_new`
/// (`LLMEDGE_STATUS_INVALID_ARGUMENT`). The builder keeps its own reference: `lora` may be
/// freed afterwards. Returns `LLMEDGE_STATUS_NULL_ARG` for NULL pointers. Not thread-safe with
/// other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`; `lora` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_add_lora(
    options: *mut llmedge_session_options,
    lora: *const llmedge_lora,
    scale: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let lora = ref_arg(lora, "lora")?;
            o.adapters.push((lora.inner.clone(), scale));
            Ok(())
        })
    }
}

/// Keep the KV of the last request and evaluate only what a new prompt adds to it (the next
/// chat turn, a shared system prompt; default true). llama.cpp evaluates one token and a batch
/// of tokens with different kernels, so a reused prefix can change the low-order bits of later
/// logits; `false` gives answers bit-for-bit those of a fresh context. For an engine it also
/// turns off the slots' and the host cache's prefix reuse.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_session_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_session_options_set_prefix_reuse(
    options: *mut llmedge_session_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.prefix_reuse = on;
            Ok(())
        })
    }
}

/// Session options as the C surface creates them (recorded as surface "c" in audit logs).
pub(crate) fn c_session_options() -> SessionOptions {
    SessionOptions {
        surface: Surface::C,
        ..SessionOptions::default()
    }
}

// ---- generate options ----

/// Create generation options with llmedge's defaults (max_tokens 256, temperature 0.8, top_k 40,
/// top_p 0.95, min_p 0.05, no penalties, random seed). Values are checked when a generation
/// starts; a bad value fails that call with `LLMEDGE_STATUS_INVALID_ARGUMENT`.
/// The caller owns the result and frees it with `llmedge_generate_options_free`.
#[no_mangle]
pub extern "C" fn llmedge_generate_options_new() -> *mut llmedge_generate_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_generate_options {
            inner: GenerateOptions::default(),
        }))
    })
}

/// Free generation options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_free(options: *mut llmedge_generate_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Most tokens to generate; 0 = until the context is full.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_max_tokens(
    options: *mut llmedge_generate_options,
    n: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.max_tokens = (n > 0).then_some(n);
            Ok(())
        })
    }
}
/// Sampling temperature; 0 = greedy.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_temperature(
    options: *mut llmedge_generate_options,
    t: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.temperature = t;
            Ok(())
        })
    }
}
/// Keep the k most likely tokens (0 = off).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_top_k(
    options: *mut llmedge_generate_options,
    k: i32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.top_k = k;
            Ok(())
        })
    }
}
/// Nucleus sampling threshold in (0, 1] (1 = off).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_top_p(
    options: *mut llmedge_generate_options,
    p: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.top_p = p;
            Ok(())
        })
    }
}
/// Minimum probability relative to the best token, in [0, 1] (0 = off).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_min_p(
    options: *mut llmedge_generate_options,
    p: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.min_p = p;
            Ok(())
        })
    }
}
/// Repetition penalty (1 = off).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_repeat_penalty(
    options: *mut llmedge_generate_options,
    p: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.repeat_penalty = p;
            Ok(())
        })
    }
}
/// OpenAI-style frequency penalty (0 = off).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_frequency_penalty(
    options: *mut llmedge_generate_options,
    p: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.frequency_penalty = p;
            Ok(())
        })
    }
}
/// OpenAI-style presence penalty (0 = off).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_presence_penalty(
    options: *mut llmedge_generate_options,
    p: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.presence_penalty = p;
            Ok(())
        })
    }
}
/// How many recent tokens the penalties consider (default 64).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_penalty_last_n(
    options: *mut llmedge_generate_options,
    n: i32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.penalty_last_n = n;
            Ok(())
        })
    }
}
/// Fixed RNG seed for reproducible sampling (default: random per call).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_seed(
    options: *mut llmedge_generate_options,
    seed: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.seed = Some(seed);
            Ok(())
        })
    }
}
/// Always take the most likely token.
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_greedy(
    options: *mut llmedge_generate_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.greedy = on;
            Ok(())
        })
    }
}
/// Keep generating past end-of-generation tokens (benchmarks).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_ignore_eos(
    options: *mut llmedge_generate_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.ignore_eos = on;
            Ok(())
        })
    }
}
/// What to do when the request does not fit in the context: an `llmedge_truncation` value
/// (others give `LLMEDGE_STATUS_INVALID_ARGUMENT`).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes
/// to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_truncation(
    options: *mut llmedge_generate_options,
    t: i32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.truncation = match t {
                x if x == llmedge_truncation::LLMEDGE_TRUNCATION_ERROR as i32 => Truncation::Error,
                x if x == llmedge_truncation::LLMEDGE_TRUNCATION_DROP_OLDEST as i32 => {
                    Truncation::DropOldest
                }
                other => {
                    return Err(llmedge::Error::InvalidArgument(format!(
                        "unknown truncation {other}"
                    )))
                }
            };
            Ok(())
        })
    }
}
/// Add a logit bias for a token (`-INFINITY` bans it). llmedge_token ids are checked when generation
/// starts (`LLMEDGE_STATUS_TOKENIZE` for ids outside the vocabulary).
///
/// # Safety
/// `options` must be NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_add_logit_bias(
    options: *mut llmedge_generate_options,
    token: llmedge_token,
    bias: f32,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        unsafe { mut_arg(options, "options") }?
            .inner
            .logit_bias
            .push((token, bias));
        Ok(())
    })
}

/// Add a stop string: generation ends before it and it is not part of the output. Copied.
///
/// # Safety
/// `options` must be NULL or live; `stop` must be NULL or point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_add_stop(
    options: *mut llmedge_generate_options,
    stop: *const c_char,
    len: usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let options = unsafe { mut_arg(options, "options") }?;
        // SAFETY: forwarded caller contract.
        let stop = unsafe { str_arg(stop, len, "stop") }?;
        options.inner.stop.push(stop.to_owned());
        Ok(())
    })
}

/// Constrain the output to JSON that validates against this JSON Schema (copied; checked now
/// for JSON syntax, `LLMEDGE_STATUS_INVALID_ARGUMENT`; turned into a grammar when generation
/// starts, `LLMEDGE_STATUS_GRAMMAR` if it cannot be). Replaces any other constraint.
///
/// # Safety
/// `options` must be NULL or live; `schema_json` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_json_schema(
    options: *mut llmedge_generate_options,
    schema_json: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let schema = crate::session::json_arg(schema_json, len, "schema_json")?;
            o.constraint = Some(OutputConstraint::JsonSchema(schema));
            Ok(())
        })
    }
}

/// Add an allowed output: the output is exactly one of the added choices. Replaces a
/// constraint of another kind.
///
/// # Safety
/// `options` must be NULL or live; `choice` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_add_choice(
    options: *mut llmedge_generate_options,
    choice: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let choice = str_arg(choice, len, "choice")?.to_owned();
            match &mut o.constraint {
                Some(OutputConstraint::Choice(list)) => list.push(choice),
                other => *other = Some(OutputConstraint::Choice(vec![choice])),
            }
            Ok(())
        })
    }
}

/// Constrain the output to match this regex in full (Rust `regex` syntax; anchors implied;
/// `LLMEDGE_STATUS_GRAMMAR` at generation for look-arounds). Replaces any other constraint.
///
/// # Safety
/// `options` must be NULL or live; `regex` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_regex(
    options: *mut llmedge_generate_options,
    regex: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.constraint = Some(OutputConstraint::Regex(
                str_arg(regex, len, "regex")?.into(),
            ));
            Ok(())
        })
    }
}

/// Constrain the output with a llama.cpp GBNF grammar whose start rule is `root`.
/// Replaces any other constraint.
///
/// # Safety
/// `options` must be NULL or live; `grammar` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_grammar(
    options: *mut llmedge_generate_options,
    grammar: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.constraint = Some(OutputConstraint::Grammar(
                str_arg(grammar, len, "grammar")?.into(),
            ));
            Ok(())
        })
    }
}

/// The request id recorded in the audit log (default: generated, see
/// `llmedge_completion_request_id`).
///
/// # Safety
/// `options` must be NULL or live; `request_id` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_request_id(
    options: *mut llmedge_generate_options,
    request_id: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.request_id = Some(str_arg(request_id, len, "request_id")?.to_owned());
            Ok(())
        })
    }
}

/// The caller or tenant of this request, overriding the session's.
///
/// # Safety
/// `options` must be NULL or live; `tenant` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_tenant(
    options: *mut llmedge_generate_options,
    tenant: *const c_char,
    len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.tenant = Some(str_arg(tenant, len, "tenant")?.to_owned());
            Ok(())
        })
    }
}

/// Run this request with an explicit set of LoRA adapters instead of the session's: the first
/// call switches the request from "the session's adapters" (the default) to an explicit set,
/// and each call adds `lora` with `scale` to it. Nothing is reloaded when requests switch
/// between sets. Checked when generation starts (same model, finite
/// scale, each adapter once; `LLMEDGE_STATUS_INVALID_ARGUMENT`). The builder keeps its own
/// reference: `lora` may be freed afterwards. Returns `LLMEDGE_STATUS_NULL_ARG` for NULL
/// pointers. Not thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`; `lora` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_add_lora(
    options: *mut llmedge_generate_options,
    lora: *const llmedge_lora,
    scale: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let lora = ref_arg(lora, "lora")?;
            o.adapters
                .get_or_insert_with(Vec::new)
                .push((lora.inner.clone(), scale));
            Ok(())
        })
    }
}

/// Run this request on the bare model: an explicit, empty adapter set, whatever the session's
/// adapters are. Replaces adapters added with `llmedge_generate_options_add_lora` (later
/// `_add_lora` calls add to the empty set). Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is
/// NULL. Not thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_generate_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_generate_options_set_no_lora(
    options: *mut llmedge_generate_options,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.adapters = Some(Vec::new());
            Ok(())
        })
    }
}

// ---- chat messages ----

/// Create an empty message list. Owned by the caller; free with `llmedge_chat_messages_free`.
#[no_mangle]
pub extern "C" fn llmedge_chat_messages_new() -> *mut llmedge_chat_messages {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_chat_messages { inner: Vec::new() }))
    })
}

/// Free a message list. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `messages` must be NULL or a live `llmedge_chat_messages`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_chat_messages_free(messages: *mut llmedge_chat_messages) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(messages) })
}

/// Append a message (`role` such as "system", "user", "assistant"). Both strings are copied.
///
/// # Safety
/// `messages` must be NULL or live; `role`/`content` must be NULL or point to their lengths in bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_chat_messages_add(
    messages: *mut llmedge_chat_messages,
    role: *const c_char,
    role_len: usize,
    content: *const c_char,
    content_len: usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let messages = unsafe { mut_arg(messages, "messages") }?;
        // SAFETY: forwarded caller contract.
        let role = unsafe { str_arg(role, role_len, "role") }?;
        // SAFETY: forwarded caller contract.
        let content = unsafe { str_arg(content, content_len, "content") }?;
        messages.inner.push(ChatMessage::new(role, content));
        Ok(())
    })
}
