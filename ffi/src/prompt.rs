//! Prompt templates and the template library. Structured values (variables, messages,
//! template descriptions, run results) cross the boundary as UTF-8 JSON.
//!
//! Thread safety: templates and libraries are immutable once built (except
//! `llmedge_template_library_add_dir`, which needs exclusive use) and may be read from any
//! number of threads at once.

use std::ffi::c_char;

use llmedge::prompt_template::Variables;
use llmedge::{Error, PromptTemplate, TemplateLibrary};

use crate::args::{free_box, mut_arg, out_arg, owned_string, ref_arg, str_arg, write};
use crate::status::{guard, guard_value, llmedge_status};

/// A prompt template (LangChain-style `{variable}` or Jinja). Opaque, immutable.
pub struct llmedge_prompt_template {
    pub(crate) inner: PromptTemplate,
}

/// Named prompt templates: the built-ins and folders of TOML files. Opaque.
pub struct llmedge_template_library {
    inner: TemplateLibrary,
}

/// The placeholder syntax of a template.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum llmedge_template_format {
    /// `{variable}`; `{{` and `}}` are literal braces.
    LLMEDGE_TEMPLATE_FSTRING = 0,
    /// A Jinja template (`{{ variable }}`, `{% if %}`).
    LLMEDGE_TEMPLATE_JINJA = 1,
}

/// Parse a JSON object of variables (NULL or empty = no variables).
///
/// # Safety
/// `json` must be NULL or point to `len` readable bytes.
pub(crate) unsafe fn variables_arg(json: *const c_char, len: usize) -> Result<Variables, Error> {
    if json.is_null() || len == 0 {
        return Ok(Variables::new());
    }
    // SAFETY: forwarded caller contract.
    let text = unsafe { str_arg(json, len, "variables_json") }?;
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::InvalidArgument(
            "variables_json must be a JSON object".into(),
        )),
        Err(e) => Err(Error::InvalidArgument(format!("variables_json: {e}"))),
    }
}

/// Write a caller-owned string (free with `llmedge_string_free`) to the out-parameters.
///
/// # Safety
/// Both pointers must have been checked with `out_arg`.
pub(crate) unsafe fn write_owned(out: *mut *mut c_char, out_len: *mut usize, text: String) {
    let (ptr, len) = owned_string(text);
    // SAFETY: forwarded caller contract.
    unsafe {
        write(out, ptr);
        write(out_len, len);
    }
}

/// Shared body of the functions that return one caller-owned string.
///
/// # Safety
/// `out`/`out_len` must be NULL or writable.
pub(crate) unsafe fn return_string(
    out: *mut *mut c_char,
    out_len: *mut usize,
    f: impl FnOnce() -> llmedge::Result<String>,
) -> llmedge_status {
    guard(|| {
        let (out, out_len) = (out_arg(out, "out")?, out_arg(out_len, "out_len")?);
        let text = f()?;
        // SAFETY: both checked non-NULL.
        unsafe { write_owned(out, out_len, text) };
        Ok(())
    })
}

/// Serialise a core value for a JSON out-parameter.
pub(crate) fn to_json(value: &impl serde::Serialize) -> llmedge::Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("JSON: {e}")))
}

/// Create a template from its text. `format` is an `llmedge_template_format` value selecting
/// `{variable}` or Jinja syntax (others give `LLMEDGE_STATUS_INVALID_ARGUMENT`; it is an
/// `int32_t` so that no value a C caller passes is undefined behaviour). On success `*out_template` is owned by the caller (free with
/// `llmedge_prompt_template_free`). `LLMEDGE_STATUS_TEMPLATE` on a syntax error (the message
/// gives line and column). Thread-safe.
///
/// # Safety
/// Strings must be NULL or point to their lengths in bytes; `out_template` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_prompt_template_new(
    name: *const c_char,
    name_len: usize,
    template_: *const c_char,
    template_len: usize,
    format: i32,
    out_template: *mut *mut llmedge_prompt_template,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_template, "out_template")?;
        // SAFETY: forwarded caller contract.
        let name = unsafe { str_arg(name, name_len, "name") }?;
        // SAFETY: forwarded caller contract.
        let text = unsafe { str_arg(template_, template_len, "template") }?;
        let inner = match format {
            x if x == llmedge_template_format::LLMEDGE_TEMPLATE_FSTRING as i32 => {
                PromptTemplate::new(name, text)
            }
            x if x == llmedge_template_format::LLMEDGE_TEMPLATE_JINJA as i32 => {
                PromptTemplate::jinja(name, text)
            }
            other => Err(Error::InvalidArgument(format!(
                "unknown template format {other}"
            ))),
        }?;
        // SAFETY: checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(llmedge_prompt_template { inner })),
            )
        };
        Ok(())
    })
}

/// Create a template from TOML (the library file format: name, description, system,
/// template, defaults, examples, output_schema, answer_prefixes). Errors give the line.
/// Ownership as `llmedge_prompt_template_new`. Thread-safe.
///
/// # Safety
/// `toml` must be NULL or `len` readable bytes; `out_template` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_prompt_template_from_toml(
    toml: *const c_char,
    len: usize,
    out_template: *mut *mut llmedge_prompt_template,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_template, "out_template")?;
        // SAFETY: forwarded caller contract.
        let source = unsafe { str_arg(toml, len, "toml") }?;
        let inner = PromptTemplate::from_toml_str(source, "<toml>")?;
        // SAFETY: checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(llmedge_prompt_template { inner })),
            )
        };
        Ok(())
    })
}

/// Free a template. NULL is a no-op.
///
/// # Safety
/// `template_` must be NULL or live, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llmedge_prompt_template_free(template_: *mut llmedge_prompt_template) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(template_) })
}

/// The template as JSON: name, description, format, system, template, defaults, examples,
/// output_schema, answer_prefixes, variables (in order of use) and required_variables.
/// `*out_json` is caller-owned (free with `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `template_` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_prompt_template_info_json(
    template_: *const llmedge_prompt_template,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let t = &ref_arg(template_, "template")?.inner;
            let mut info = serde_json::to_value(t).map_err(|e| Error::Internal(e.to_string()))?;
            info["required_variables"] = t.required_variables().into();
            to_json(&info)
        })
    }
}

/// Render the user prompt for `variables_json` (a JSON object; NULL = none). Missing or
/// unknown variables give `LLMEDGE_STATUS_TEMPLATE_VARIABLES` with both lists in the message.
/// `*out_text` is caller-owned (free with `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `template_` NULL or live; `variables_json` NULL or `len` bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_prompt_template_render(
    template_: *const llmedge_prompt_template,
    variables_json: *const c_char,
    len: usize,
    out_text: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_text, out_len, || {
            let t = &ref_arg(template_, "template")?.inner;
            t.render(&variables_arg(variables_json, len)?)
        })
    }
}

/// The conversation the template sends (system prompt, few-shot turns, the request) as a
/// JSON array of `{"role", "content"}`. Ownership and errors as `llmedge_prompt_template_render`.
///
/// # Safety
/// As for `llmedge_prompt_template_render`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_prompt_template_messages_json(
    template_: *const llmedge_prompt_template,
    variables_json: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let t = &ref_arg(template_, "template")?.inner;
            to_json(&t.messages(&variables_arg(variables_json, len)?)?)
        })
    }
}

/// The final answer of a chain-of-thought reply: the text after the last `Answer:` /
/// `答案：` line (the template's answer prefixes). When there is none, succeeds with
/// `*out_answer = NULL` and `*out_len = 0`; otherwise `*out_answer` is caller-owned (free with
/// `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `template_` NULL or live; `text` NULL or `len` bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_prompt_template_extract_answer(
    template_: *const llmedge_prompt_template,
    text: *const c_char,
    len: usize,
    out_answer: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let t = &unsafe { ref_arg(template_, "template") }?.inner;
        // SAFETY: forwarded caller contract.
        let text = unsafe { str_arg(text, len, "text") }?;
        let (out, out_len) = (
            out_arg(out_answer, "out_answer")?,
            out_arg(out_len, "out_len")?,
        );
        match t.extract_answer(text) {
            // SAFETY: both checked non-NULL.
            Some(answer) => unsafe { write_owned(out, out_len, answer) },
            // SAFETY: both checked non-NULL.
            None => unsafe {
                write(out, std::ptr::null_mut());
                write(out_len, 0);
            },
        }
        Ok(())
    })
}

/// The built-in templates (English and Chinese role, chain-of-thought, few-shot, field
/// extraction and insurance-claim review). `*out_library` is caller-owned (free with
/// `llmedge_template_library_free`). Thread-safe.
///
/// # Safety
/// `out_library` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_template_library_builtin(
    out_library: *mut *mut llmedge_template_library,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_library, "out_library")?;
        let lib = llmedge_template_library {
            inner: TemplateLibrary::builtin(),
        };
        // SAFETY: checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(lib))) };
        Ok(())
    })
}

/// A library of every `*.toml` file in the folder `dir`. A file with an error fails the call
/// with `LLMEDGE_STATUS_TEMPLATE` naming the file and line. Ownership as
/// `llmedge_template_library_builtin`. Thread-safe.
///
/// # Safety
/// `dir` must be NULL or `len` readable bytes; `out_library` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_template_library_load_dir(
    dir: *const c_char,
    len: usize,
    out_library: *mut *mut llmedge_template_library,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_library, "out_library")?;
        // SAFETY: forwarded caller contract.
        let dir = unsafe { str_arg(dir, len, "dir") }?;
        let lib = llmedge_template_library {
            inner: TemplateLibrary::load_dir(dir)?,
        };
        // SAFETY: checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(lib))) };
        Ok(())
    })
}

/// Add every `*.toml` file of `dir` to `library` (same-named templates are replaced). Not
/// thread-safe on the same library. On error the library is unchanged only up to the failing
/// file (files load in name order).
///
/// # Safety
/// `library` NULL or live and not used by another thread; `dir` NULL or `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn llmedge_template_library_add_dir(
    library: *mut llmedge_template_library,
    dir: *const c_char,
    len: usize,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let lib = unsafe { mut_arg(library, "library") }?;
        // SAFETY: forwarded caller contract.
        let dir = unsafe { str_arg(dir, len, "dir") }?;
        lib.inner.add_dir(dir)
    })
}

/// Free a library. NULL is a no-op. Templates taken from it stay valid.
///
/// # Safety
/// `library` must be NULL or live, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llmedge_template_library_free(library: *mut llmedge_template_library) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(library) })
}

/// The template names as a sorted JSON array. `*out_json` is caller-owned (free with
/// `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `library` NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_template_library_names_json(
    library: *const llmedge_template_library,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            to_json(&ref_arg(library, "library")?.inner.names())
        })
    }
}

/// A copy of the template called `name`; `LLMEDGE_STATUS_TEMPLATE` (listing the known names)
/// when there is none. `*out_template` is caller-owned (free with
/// `llmedge_prompt_template_free`) and independent of the library. Thread-safe.
///
/// # Safety
/// `library` NULL or live; `name` NULL or `len` bytes; `out_template` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_template_library_get(
    library: *const llmedge_template_library,
    name: *const c_char,
    len: usize,
    out_template: *mut *mut llmedge_prompt_template,
) -> llmedge_status {
    guard(|| {
        // SAFETY: forwarded caller contract.
        let lib = unsafe { ref_arg(library, "library") }?;
        // SAFETY: forwarded caller contract.
        let name = unsafe { str_arg(name, len, "name") }?;
        let out = out_arg(out_template, "out_template")?;
        let inner = lib.inner.get(name)?.clone();
        // SAFETY: checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(llmedge_prompt_template { inner })),
            )
        };
        Ok(())
    })
}
