//! Model tools: merge LoRA adapters into a base model, import PEFT adapters, quantize, and
//! measure perplexity. Each tool is one call taking an opaque options builder; the file tools
//! return a JSON report and write their output atomically (nothing is left behind on failure).
//!
//! Thread safety: the tools may run on several threads at once (on different output files);
//! their options builders follow the rules of `options.rs` (not thread-safe while being
//! changed; read-only during a call).

use std::ffi::{c_char, c_void};
use std::path::PathBuf;

use llmedge::evaluation::{perplexity, EvalOptions};
use llmedge::gguf_file::{GGML_TYPE_F16, GGML_TYPE_F32};
use llmedge::lora_import::{import_peft, ImportOptions};
use llmedge::lora_merge::{merge_lora, MergeOptions};
use llmedge::quantize::{quantize, FileType, QuantizeOptions};
use llmedge::Error;

use crate::args::{free_box, mut_arg, out_arg, ref_arg, str_arg, write};
use crate::lora::llmedge_lora;
use crate::model::llmedge_model;
use crate::options::{builder, set};
use crate::prompt::{return_string, to_json};
use crate::status::{guard, guard_value, llmedge_status};

/// Progress of a long tool call: `done` of `total` tensors are finished, then `user_data`.
/// Called on the thread that called the tool, after each tensor. Return `true`: the tools
/// cannot be stopped yet, so the value is ignored (a later version may stop on `false`).
pub type llmedge_progress_callback =
    Option<unsafe extern "C" fn(done: usize, total: usize, user_data: *mut c_void) -> bool>;

/// Options for `llmedge_lora_merge` (an opaque builder): the adapters to merge and the type of
/// the merged tensors.
pub struct llmedge_merge_options {
    adapters: Vec<(PathBuf, f32)>,
    inner: MergeOptions,
}

/// Options for `llmedge_quantize` (an opaque builder).
pub struct llmedge_quantize_options {
    inner: QuantizeOptions,
}

/// Options for `llmedge_model_perplexity` (an opaque builder).
pub struct llmedge_eval_options {
    inner: EvalOptions,
}

builder!(llmedge_quantize_options => QuantizeOptions, llmedge_eval_options => EvalOptions);

/// Call `progress` if the caller gave one.
///
/// # Safety
/// `progress` must be callable with `user_data` on this thread.
unsafe fn report_progress(
    progress: llmedge_progress_callback,
    user_data: *mut c_void,
    done: usize,
    total: usize,
) {
    if let Some(f) = progress {
        // SAFETY: the caller of the tool guarantees the callback may be called with `user_data`.
        // Its return value is documented as ignored.
        let _ = unsafe { f(done, total, user_data) };
    }
}

// ---- merge ----

/// Create merge options: no adapters yet, merged tensors keep their type. The caller owns the
/// result and frees it with `llmedge_merge_options_free`. Returns NULL only on an internal panic.
#[no_mangle]
pub extern "C" fn llmedge_merge_options_new() -> *mut llmedge_merge_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_merge_options {
            adapters: Vec::new(),
            inner: MergeOptions::default(),
        }))
    })
}

/// Free merge options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_merge_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_merge_options_free(options: *mut llmedge_merge_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Add the GGUF LoRA adapter at `path` with `scale` (1.0 = as trained; the effective scale is
/// llama.cpp's, scale × alpha / rank). The path is copied; the file is read by
/// `llmedge_lora_merge`. Returns `LLMEDGE_STATUS_NULL_ARG` / `LLMEDGE_STATUS_INVALID_UTF8`
/// for bad arguments, `LLMEDGE_STATUS_INVALID_ARGUMENT` for a non-finite scale. Not
/// thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or live; `path` NULL or `path_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_merge_options_add_lora(
    options: *mut llmedge_merge_options,
    path: *const c_char,
    path_len: usize,
    scale: f32,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let options = unsafe { mut_arg(options, "options") }?;
        // SAFETY: forwarded caller contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        if !scale.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "adapter {path} has a non-finite scale"
            )));
        }
        options.adapters.push((PathBuf::from(path), scale));
        Ok(())
    })
}

/// The ggml type of the merged tensors (`f32`, `f16`, `q8_0`, `q4_0`, ...; case-insensitive);
/// by default each keeps its type. The name is copied and checked by `llmedge_lora_merge`
/// (`LLMEDGE_STATUS_INVALID_ARGUMENT` for an unknown or unsupported type). Not thread-safe with
/// other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or live; `name` NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_merge_options_set_out_type(
    options: *mut llmedge_merge_options,
    name: *const c_char,
    len: usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let options = unsafe { mut_arg(options, "options") }?;
        // SAFETY: forwarded caller contract.
        let name = unsafe { str_arg(name, len, "name") }?;
        options.inner.out_type = Some(name.to_owned());
        Ok(())
    })
}

/// Merge the adapters of `options` into the base GGUF model at `base` and write the result to
/// `output` (W' = W + Σ scale·B·A, computed as llama.cpp does; untouched tensors and metadata
/// are copied byte for byte; the file is replaced atomically). `progress` may be NULL; it is
/// called after each tensor (see `llmedge_progress_callback`). On success `*out_report_json`
/// is a JSON object (`output`, `merged_tensors`, `copied_tensors`, `adapters`, `output_bytes`,
/// `seconds`) of `*out_report_len` bytes owned by the caller (free with
/// `llmedge_string_free`). Errors: `LLMEDGE_STATUS_INVALID_ARGUMENT` (no adapters, bad
/// `out_type`), `LLMEDGE_STATUS_ADAPTER` (an adapter that does not fit the base),
/// `LLMEDGE_STATUS_INVALID_MODEL`, `LLMEDGE_STATUS_IO`. Thread-safe.
///
/// # Safety
/// Strings must be NULL or point to their lengths in bytes; `options` NULL or live; `progress`
/// NULL or callable with `user_data` on this thread; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_lora_merge(
    base: *const c_char,
    base_len: usize,
    output: *const c_char,
    output_len: usize,
    options: *const llmedge_merge_options,
    progress: llmedge_progress_callback,
    user_data: *mut c_void,
    out_report_json: *mut *mut c_char,
    out_report_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_report_json, out_report_len, || {
            let base = str_arg(base, base_len, "base")?;
            let output = str_arg(output, output_len, "output")?;
            let options = ref_arg(options, "options")?;
            let report = merge_lora(
                base.as_ref(),
                &options.adapters,
                output.as_ref(),
                &options.inner,
                |done, total| report_progress(progress, user_data, done, total),
            )?;
            to_json(&report)
        })
    }
}

// ---- import ----

/// Convert the Hugging Face PEFT LoRA adapter in the folder `peft_dir`
/// (`adapter_config.json` + `adapter_model.safetensors`) for the base GGUF model at `base` and
/// write it as a GGUF adapter to `output` (atomically), with F16 tensors when `f16` is true,
/// else F32. On success `*out_report_json` is a JSON object (`architecture`, `rank`, `alpha`,
/// `peft_alpha`, `use_rslora`, `tensors`, `parameters`, `out`) of `*out_report_len` bytes
/// owned by the caller (free with `llmedge_string_free`). Errors: `LLMEDGE_STATUS_ADAPTER`
/// (listing every reason the adapter cannot be imported: unsupported PEFT features, modules
/// or shapes that do not fit the base), `LLMEDGE_STATUS_INVALID_MODEL`, `LLMEDGE_STATUS_IO`.
/// Thread-safe.
///
/// # Safety
/// Strings must be NULL or point to their lengths in bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_lora_import(
    peft_dir: *const c_char,
    peft_dir_len: usize,
    base: *const c_char,
    base_len: usize,
    output: *const c_char,
    output_len: usize,
    f16: bool,
    out_report_json: *mut *mut c_char,
    out_report_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_report_json, out_report_len, || {
            let peft_dir = str_arg(peft_dir, peft_dir_len, "peft_dir")?;
            let base = str_arg(base, base_len, "base")?;
            let output = str_arg(output, output_len, "output")?;
            let mut options = ImportOptions::new(base);
            options.out_type = if f16 { GGML_TYPE_F16 } else { GGML_TYPE_F32 };
            to_json(&import_peft(peft_dir.as_ref(), output.as_ref(), &options)?)
        })
    }
}

// ---- quantize ----

/// Create quantize options for the target file type `type_name` (llama.cpp's names such as
/// `Q4_K_M`, `Q8_0`, `F16`; case-insensitive), with all cores, no requantizing, no overrides.
/// `LLMEDGE_STATUS_INVALID_ARGUMENT` for an unknown name (the message lists the supported
/// ones). On success `*out_options` is owned by the caller (free with
/// `llmedge_quantize_options_free`). Thread-safe.
///
/// # Safety
/// `type_name` must be NULL or `len` readable bytes; `out_options` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_quantize_options_new(
    type_name: *const c_char,
    len: usize,
    out_options: *mut *mut llmedge_quantize_options,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let name = unsafe { str_arg(type_name, len, "type_name") }?;
        let out = out_arg(out_options, "out_options")?;
        let inner = QuantizeOptions::new(FileType::parse(name)?);
        // SAFETY: `out` was checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(llmedge_quantize_options { inner })),
            )
        };
        Ok(())
    })
}

/// Free quantize options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_quantize_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_quantize_options_free(options: *mut llmedge_quantize_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Accept an input whose tensors are already quantized (default false: such an input gives
/// `LLMEDGE_STATUS_INVALID_ARGUMENT`, because quality loss accumulates). Returns
/// `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes to the
/// same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_quantize_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_quantize_options_set_allow_requantize(
    options: *mut llmedge_quantize_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.allow_requantize = on;
            Ok(())
        })
    }
}

/// Worker threads (default: all cores; 0 is rejected by `llmedge_quantize`). Returns
/// `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other changes to the
/// same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_quantize_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_quantize_options_set_threads(
    options: *mut llmedge_quantize_options,
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

/// Quantize every tensor to the file type, without llama.cpp's per-tensor mixtures (default
/// false). Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other
/// changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_quantize_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_quantize_options_set_pure(
    options: *mut llmedge_quantize_options,
    on: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.pure = on;
            Ok(())
        })
    }
}

/// Give tensors whose name matches the regex `pattern` the ggml type `type_name` (`f16`,
/// `q8_0`, ...), e.g. ("token_embd", "q8_0"). Both strings are copied and checked by
/// `llmedge_quantize` (`LLMEDGE_STATUS_INVALID_ARGUMENT` for a bad regex or type). Not
/// thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or live; strings NULL or their lengths in readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_quantize_options_add_keep(
    options: *mut llmedge_quantize_options,
    pattern: *const c_char,
    pattern_len: usize,
    type_name: *const c_char,
    type_len: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            let pattern = str_arg(pattern, pattern_len, "pattern")?;
            let ty = str_arg(type_name, type_len, "type_name")?;
            o.keep.push((pattern.to_owned(), ty.to_owned()));
            Ok(())
        })
    }
}

/// Quantize the GGUF model `input` into `output` with llama.cpp's quantizer (`output` is
/// replaced atomically and must differ from `input`). `progress` may be NULL; it is called
/// after each tensor (see `llmedge_progress_callback`). On success `*out_report_json` is a JSON
/// object (`output`, `file_type`, `input_bytes`, `output_bytes`, `tensors`, `seconds`) of
/// `*out_report_len` bytes owned by the caller (free with `llmedge_string_free`). Errors:
/// `LLMEDGE_STATUS_INVALID_ARGUMENT` (an already-quantized input without
/// `_set_allow_requantize`, 0 threads, a bad override, output = input),
/// `LLMEDGE_STATUS_INVALID_MODEL` (unreadable input or llama.cpp failure), `LLMEDGE_STATUS_IO`.
/// Thread-safe.
///
/// # Safety
/// Strings must be NULL or point to their lengths in bytes; `options` NULL or live; `progress`
/// NULL or callable with `user_data` on this thread; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_quantize(
    input: *const c_char,
    input_len: usize,
    output: *const c_char,
    output_len: usize,
    options: *const llmedge_quantize_options,
    progress: llmedge_progress_callback,
    user_data: *mut c_void,
    out_report_json: *mut *mut c_char,
    out_report_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_report_json, out_report_len, || {
            let input = str_arg(input, input_len, "input")?;
            let output = str_arg(output, output_len, "output")?;
            let options = ref_arg(options, "options")?;
            // The callback and its data are plain pointers ('static); the core calls the
            // observer only on this thread, during this call.
            let report = quantize(input.as_ref(), output.as_ref(), &options.inner, move |p| {
                report_progress(progress, user_data, p.done, p.total)
            })?;
            to_json(&report)
        })
    }
}

// ---- evaluation ----

/// Create evaluation options: a context of 512 tokens per perplexity chunk, every chunk, no
/// adapters, the model's threads. The caller owns the result and frees it with
/// `llmedge_eval_options_free`. Returns NULL only on an internal panic.
#[no_mangle]
pub extern "C" fn llmedge_eval_options_new() -> *mut llmedge_eval_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_eval_options {
            inner: EvalOptions::default(),
        }))
    })
}

/// Free evaluation options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_eval_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_eval_options_free(options: *mut llmedge_eval_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Context per perplexity chunk, as llama-perplexity's `-c` (default 512; at least 16,
/// checked by `llmedge_model_perplexity`). Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is
/// NULL. Not thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_eval_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_eval_options_set_n_ctx(
    options: *mut llmedge_eval_options,
    n_ctx: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.n_ctx = n_ctx;
            Ok(())
        })
    }
}

/// Score at most `n` chunks (0 = all, the default). Returns `LLMEDGE_STATUS_NULL_ARG` when
/// `options` is NULL. Not thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_eval_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_eval_options_set_max_chunks(
    options: *mut llmedge_eval_options,
    n: usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.max_chunks = (n > 0).then_some(n);
            Ok(())
        })
    }
}

/// Threads (0 = the model's default, the default). Returns `LLMEDGE_STATUS_NULL_ARG` when
/// `options` is NULL. Not thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_eval_options`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_eval_options_set_threads(
    options: *mut llmedge_eval_options,
    threads: u32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.threads = (threads > 0).then_some(threads);
            Ok(())
        })
    }
}

/// Evaluate with `lora` attached at `scale` (call once per adapter). The adapter must belong
/// to the evaluated model, with a finite scale, each adapter once: checked by
/// `llmedge_model_perplexity` (`LLMEDGE_STATUS_INVALID_ARGUMENT`). The builder keeps its own
/// reference: `lora` may be freed afterwards. Returns `LLMEDGE_STATUS_NULL_ARG` for NULL
/// pointers. Not thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_eval_options`; `lora` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_eval_options_add_lora(
    options: *mut llmedge_eval_options,
    lora: *const llmedge_lora,
    scale: f32,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.adapters
                .push((ref_arg(lora, "lora")?.inner.clone(), scale));
            Ok(())
        })
    }
}

/// Perplexity of `text` under `model` (with the adapters of `options`), computed as llama.cpp's
/// `llama-perplexity -c n_ctx`: the text is cut into chunks of `n_ctx` tokens and the second
/// half of each chunk is scored. `options` may be NULL for defaults (n_ctx 512). The text needs
/// at least 2 × n_ctx tokens (`LLMEDGE_STATUS_INVALID_ARGUMENT` otherwise). On success
/// `*out_perplexity` is the perplexity (≥ 1; lower is better). Thread-safe (each call makes its
/// own context).
///
/// # Safety
/// `model` must be NULL or live; `text` NULL or `len` readable bytes; `options` NULL or live;
/// `out_perplexity` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_perplexity(
    model: *const llmedge_model,
    text: *const c_char,
    len: usize,
    options: *const llmedge_eval_options,
    out_perplexity: *mut f64,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        // SAFETY: forwarded caller contract.
        let text = unsafe { str_arg(text, len, "text") }?;
        let out = out_arg(out_perplexity, "out_perplexity")?;
        let defaults = EvalOptions::default();
        // SAFETY: NULL is allowed (defaults); otherwise a live builder.
        let options = unsafe { options.as_ref() }.map_or(&defaults, |o| &o.inner);
        let report = perplexity(&model.inner, text, options)?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write(out, report.perplexity) };
        Ok(())
    })
}
