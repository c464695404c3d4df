//! Vision-language models: a projector (mmproj) attached to a model, images (from files,
//! bytes or raw RGB; DICOM included), and requests that carry them.
//!
//! Thread safety: `llmedge_image` and `llmedge_image_options` (once built) are immutable and
//! may be shared between threads. The projector is part of its model: loading it is
//! serialised, and every session of the model may use it at once.

use std::ffi::{c_char, c_void, CString};

use llmedge::{ChatMessage, Error, Image, ImageOptions, Prompt, Window};

use crate::args::{free_box, mut_arg, out_arg, ref_arg, slice_arg, str_arg, write};
use crate::model::llmedge_model;
use crate::options::{llmedge_chat_messages, llmedge_generate_options};
use crate::prompt::{return_string, to_json};
use crate::session::{llmedge_completion, llmedge_piece_callback, llmedge_session, run};
use crate::status::{guard, guard_value, llmedge_status};

/// A decoded image (RGB8 pixels and their SHA-256). Opaque, immutable; holds no metadata of
/// its file (no EXIF, no DICOM tags).
pub struct llmedge_image {
    inner: Image,
    sha256: CString,
}

/// How images are read: size limits, and for DICOM the window and frame (an opaque builder).
pub struct llmedge_image_options {
    inner: ImageOptions,
}

fn image_handle(inner: Image) -> *mut llmedge_image {
    let sha256 = CString::new(inner.sha256()).expect("hex has no NUL");
    Box::into_raw(Box::new(llmedge_image { inner, sha256 }))
}

/// Options, or the defaults for NULL.
///
/// # Safety
/// `options` must be NULL or live.
unsafe fn options_or_default(options: *const llmedge_image_options) -> ImageOptions {
    // SAFETY: forwarded caller contract.
    unsafe { options.as_ref() }.map_or_else(ImageOptions::default, |o| o.inner.clone())
}

// ---- projector ----

/// Attach the vision projector (mmproj GGUF) of a vision-language model to `model`. The pair
/// is checked: `LLMEDGE_STATUS_PROJECTOR` when the file is not a projector, was made for
/// another text model (the message carries llama.cpp's n_embd mismatch), or the model already
/// has another projector (loading the same file again succeeds);
/// `LLMEDGE_STATUS_MODEL_NOT_FOUND`, `LLMEDGE_STATUS_INVALID_MODEL` for a missing or malformed
/// file. With a manifest in the model options the file must be listed in it. The projector
/// lives as long as the model. Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; `path` NULL or `path_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_load_mmproj(
    model: *const llmedge_model,
    path: *const c_char,
    path_len: usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        // SAFETY: forwarded caller contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        model.inner.load_mmproj(path).map(|_| ())
    })
}

/// The projector as JSON: `{"info": {"path", "name", "projector_type", "supports_vision",
/// "supports_audio", "uses_mrope", "sha256"}, "stats": {"encoded", "cache_hits",
/// "cached_entries", "cached_bytes"}}` (`encoded` counts vision-encoder runs; a second question
/// about the same image is a cache hit). `LLMEDGE_STATUS_PROJECTOR` when none is loaded.
/// `*out_json` (of `*out_len` bytes) is caller-owned: free with `llmedge_string_free`.
/// Thread-safe.
///
/// # Safety
/// `model` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_projector_json(
    model: *const llmedge_model,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let model = ref_arg(model, "model")?;
            let p = model
                .inner
                .projector()
                .ok_or_else(|| Error::Projector("the model has no vision projector".into()))?;
            to_json(&serde_json::json!({"info": p.info(), "stats": p.stats()}))
        })
    }
}

/// Forget the projector's cached image embeddings. `LLMEDGE_STATUS_PROJECTOR` when the model
/// has none. Thread-safe.
///
/// # Safety
/// `model` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_model_clear_image_cache(
    model: *const llmedge_model,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        model
            .inner
            .projector()
            .ok_or_else(|| Error::Projector("the model has no vision projector".into()))?
            .clear_cache();
        Ok(())
    })
}

// ---- image options ----

/// Create image options with the defaults (64 MiB, 16384 pixels per side, 50 million pixels,
/// the file's DICOM window, frame 0). Owned by the caller; free with
/// `llmedge_image_options_free`. NULL only on an internal panic.
#[no_mangle]
pub extern "C" fn llmedge_image_options_new() -> *mut llmedge_image_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(llmedge_image_options {
            inner: ImageOptions::default(),
        }))
    })
}

/// Free image options. NULL is a no-op. Must not be called twice on the same pointer.
///
/// # Safety
/// `options` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_options_free(options: *mut llmedge_image_options) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(options) })
}

/// Limits: largest encoded input in bytes, largest width or height, largest width × height.
/// A limit of 0 keeps the current value. Inputs over a limit fail with `LLMEDGE_STATUS_IMAGE`
/// before their pixels are allocated. Not thread-safe with other changes to the same builder.
///
/// # Safety
/// `options` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_options_set_limits(
    options: *mut llmedge_image_options,
    max_bytes: u64,
    max_side: u32,
    max_pixels: u64,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let o = &mut unsafe { mut_arg(options, "options") }?.inner;
        if max_bytes > 0 {
            o.max_bytes = max_bytes;
        }
        if max_side > 0 {
            o.max_side = max_side;
        }
        if max_pixels > 0 {
            o.max_pixels = max_pixels;
        }
        Ok(())
    })
}

/// DICOM: window (center, width) instead of the file's Window Center/Width; width must be
/// at least 1 (`LLMEDGE_STATUS_INVALID_ARGUMENT`). Not thread-safe with other changes.
///
/// # Safety
/// `options` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_options_set_dicom_window(
    options: *mut llmedge_image_options,
    center: f64,
    width: f64,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let o = &mut unsafe { mut_arg(options, "options") }?.inner;
        if !(width >= 1.0 && width.is_finite() && center.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "DICOM window width must be at least 1, got {width}"
            )));
        }
        o.window = Some(Window { center, width });
        Ok(())
    })
}

/// DICOM: the frame of a multi-frame file (0-based). A frame the file does not have fails at
/// decoding with `LLMEDGE_STATUS_DICOM`. Not thread-safe with other changes.
///
/// # Safety
/// `options` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_options_set_dicom_frame(
    options: *mut llmedge_image_options,
    frame: u32,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        unsafe { mut_arg(options, "options") }?.inner.frame = frame;
        Ok(())
    })
}

// ---- images ----

/// Read an image file: PNG, JPEG, WebP, BMP, TIFF, GIF (first frame) or DICOM (recognised by
/// its magic; windowed). `options` may be NULL for defaults. Errors: `LLMEDGE_STATUS_IO`
/// (cannot read), `LLMEDGE_STATUS_IMAGE` (corrupt, unsupported, over a limit),
/// `LLMEDGE_STATUS_DICOM` (unsupported transfer syntax, no pixel data, frame out of range).
/// On success `*out_image` is caller-owned (free with `llmedge_image_free`). Thread-safe.
///
/// # Safety
/// `path` NULL or `path_len` readable bytes; `options` NULL or live; `out_image` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_open(
    path: *const c_char,
    path_len: usize,
    options: *const llmedge_image_options,
    out_image: *mut *mut llmedge_image,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let out = out_arg(out_image, "out_image")?;
        // SAFETY: forwarded caller contract.
        let image = Image::open_with(path, &unsafe { options_or_default(options) })?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write(out, image_handle(image)) };
        Ok(())
    })
}

/// Decode an encoded image (or DICOM file) of `len` bytes; the bytes are not kept. Otherwise
/// as `llmedge_image_open`.
///
/// # Safety
/// `data` NULL or `len` readable bytes; `options` NULL or live; `out_image` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_from_bytes(
    data: *const u8,
    len: usize,
    options: *const llmedge_image_options,
    out_image: *mut *mut llmedge_image,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let data = unsafe { slice_arg(data, len, "data") }?;
        let out = out_arg(out_image, "out_image")?;
        // SAFETY: forwarded caller contract.
        let image = Image::from_bytes_with(data, &unsafe { options_or_default(options) })?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write(out, image_handle(image)) };
        Ok(())
    })
}

/// Wrap raw RGB8 pixels (row-major, `width * height * 3` bytes; copied).
/// `LLMEDGE_STATUS_INVALID_ARGUMENT` when the length does not match. Otherwise as
/// `llmedge_image_open`.
///
/// # Safety
/// `rgb` NULL or `len` readable bytes; `out_image` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_from_rgb(
    width: u32,
    height: u32,
    rgb: *const u8,
    len: usize,
    out_image: *mut *mut llmedge_image,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let rgb = unsafe { slice_arg(rgb, len, "rgb") }?;
        let out = out_arg(out_image, "out_image")?;
        let image = Image::from_rgb(width, height, rgb.to_vec())?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write(out, image_handle(image)) };
        Ok(())
    })
}

/// Free an image. Messages it was added to keep their own reference. NULL is a no-op. Must
/// not be called twice on the same pointer.
///
/// # Safety
/// `image` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_free(image: *mut llmedge_image) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(image) })
}

/// Width in pixels (after EXIF orientation); 0 for NULL. Thread-safe.
///
/// # Safety
/// `image` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_width(image: *const llmedge_image) -> u32 {
    guard_value(0, || {
        // SAFETY: forwarded caller contract.
        unsafe { image.as_ref() }.map_or(0, |i| i.inner.width())
    })
}

/// Height in pixels; 0 for NULL. Thread-safe.
///
/// # Safety
/// `image` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_height(image: *const llmedge_image) -> u32 {
    guard_value(0, || {
        // SAFETY: forwarded caller contract.
        unsafe { image.as_ref() }.map_or(0, |i| i.inner.height())
    })
}

/// SHA-256 (64 hex digits, NUL-terminated) of the image's size and pixels: the key of the
/// embedding cache and what the audit log records. Owned by the image, valid while it lives;
/// NULL for NULL. Thread-safe.
///
/// # Safety
/// `image` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_image_sha256(image: *const llmedge_image) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: forwarded caller contract.
        unsafe { image.as_ref() }.map_or(std::ptr::null(), |i| i.sha256.as_ptr())
    })
}

// ---- requests with images ----

/// Add `image` to the last message of `messages` (after `llmedge_chat_messages_add`). The
/// image stands at the message's n-th `<__media__>` marker, or, when its text has none, all
/// images go before the text. `LLMEDGE_STATUS_INVALID_ARGUMENT` when the list is empty. The
/// message keeps its own reference: `image` may be freed right after.
///
/// # Safety
/// `messages` and `image` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_chat_messages_add_image(
    messages: *mut llmedge_chat_messages,
    image: *const llmedge_image,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let messages = unsafe { mut_arg(messages, "messages") }?;
        // SAFETY: forwarded caller contract.
        let image = unsafe { ref_arg(image, "image") }?;
        let last = messages.inner.last_mut().ok_or_else(|| {
            Error::InvalidArgument("add a message before adding an image to it".into())
        })?;
        last.images.push(image.inner.clone());
        Ok(())
    })
}

/// Append one OpenAI-shaped message given as JSON: `{"role": "user", "content": "..." | [
/// {"type": "text", "text": "..."}, {"type": "image_url", "image_url": {"url":
/// "data:image/png;base64,..." | "file:///path" | "/path"}}]}`. Images are decoded now, with
/// `options` (NULL = defaults): errors as `llmedge_image_open`, and
/// `LLMEDGE_STATUS_INVALID_ARGUMENT` for bad JSON or a remote (http) URL.
///
/// # Safety
/// `messages` NULL or live; `json` NULL or `json_len` readable bytes; `options` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_chat_messages_add_json(
    messages: *mut llmedge_chat_messages,
    json: *const c_char,
    json_len: usize,
    options: *const llmedge_image_options,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let messages = unsafe { mut_arg(messages, "messages") }?;
        // SAFETY: forwarded caller contract.
        let text = unsafe { str_arg(json, json_len, "json") }?;
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("message JSON: {e}")))?;
        // SAFETY: forwarded caller contract.
        let options = unsafe { options_or_default(options) };
        messages
            .inner
            .push(ChatMessage::from_openai(&value, &options)?);
        Ok(())
    })
}

/// Generate from a raw prompt with images: `prompt` holds one `<__media__>` marker per image
/// (in order), or none, and then the images go before the text. Needs the model's projector
/// (`LLMEDGE_STATUS_PROJECTOR` otherwise); `n_images` 0 is `LLMEDGE_STATUS_INVALID_ARGUMENT`
/// (an empty image list), as is a marker count that differs from `n_images`. A prompt that
/// does not fit is `LLMEDGE_STATUS_CONTEXT_OVERFLOW` (images are never truncated). Otherwise
/// as `llmedge_session_generate` (ownership, callback, threads).
///
/// # Safety
/// As for `llmedge_session_generate`; `images` NULL or `n_images` live image pointers.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmedge_session_generate_with_images(
    session: *const llmedge_session,
    prompt: *const c_char,
    prompt_len: usize,
    images: *const *const llmedge_image,
    n_images: usize,
    options: *const llmedge_generate_options,
    callback: llmedge_piece_callback,
    user_data: *mut c_void,
    out_completion: *mut *mut llmedge_completion,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let prompt = unsafe { str_arg(prompt, prompt_len, "prompt") }?;
        let list: Vec<Image> = if n_images == 0 {
            Vec::new()
        } else {
            // SAFETY: forwarded caller contract.
            let ptrs = unsafe { slice_arg(images, n_images, "images") }?;
            ptrs.iter()
                // SAFETY: each pointer is NULL or a live image (caller contract).
                .map(|&p| unsafe { ref_arg(p, "images[i]") }.map(|i| i.inner.clone()))
                .collect::<Result<_, _>>()?
        };
        let text = if list.is_empty() || prompt.contains(llmedge::MEDIA_MARKER) {
            prompt.to_owned()
        } else {
            llmedge::MEDIA_MARKER.repeat(list.len()) + prompt
        };
        // SAFETY: forwarded caller contract.
        unsafe {
            run(
                session,
                options,
                callback,
                user_data,
                out_completion,
                |s, o, cb| {
                    s.generate_with(
                        Prompt::WithImages {
                            text: &text,
                            images: &list,
                        },
                        o,
                        cb,
                    )
                },
            )
        }
    })
}
