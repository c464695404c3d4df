//! Status codes, the per-thread last error, and the panic guard every export runs in.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use llmedge::{Error, ErrorCode};

/// Result of every fallible llmedge function. The numbers equal llmedge's core error codes
/// (and the `.code` of Python and Java exceptions); `LLMEDGE_STATUS_OK` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum llmedge_status {
    LLMEDGE_STATUS_OK = 0,
    LLMEDGE_STATUS_INVALID_ARGUMENT = 1,
    LLMEDGE_STATUS_NULL_ARG = 2,
    LLMEDGE_STATUS_INVALID_UTF8 = 3,
    LLMEDGE_STATUS_MODEL_NOT_FOUND = 10,
    LLMEDGE_STATUS_INVALID_MODEL = 11,
    LLMEDGE_STATUS_UNSUPPORTED_ARCHITECTURE = 12,
    LLMEDGE_STATUS_OUT_OF_MEMORY = 13,
    LLMEDGE_STATUS_MODEL_LOAD = 14,
    /// A LoRA adapter is invalid or does not fit the model (architecture, tensors, shapes).
    LLMEDGE_STATUS_ADAPTER = 15,
    /// The model file is not in the manifest, or its hash or signature does not match.
    LLMEDGE_STATUS_MODEL_INTEGRITY = 16,
    /// A vision projector (mmproj) is missing, invalid, does not fit the model, or failed to
    /// encode an image.
    LLMEDGE_STATUS_PROJECTOR = 17,
    /// An image could not be decoded, is of an unsupported format, or exceeds the limits.
    LLMEDGE_STATUS_IMAGE = 18,
    /// A DICOM file could not be used (unsupported transfer syntax, no pixel data, bad frame).
    LLMEDGE_STATUS_DICOM = 19,
    LLMEDGE_STATUS_CONTEXT_CREATE = 20,
    LLMEDGE_STATUS_CONTEXT_OVERFLOW = 21,
    LLMEDGE_STATUS_DECODE = 22,
    LLMEDGE_STATUS_TOKENIZE = 23,
    LLMEDGE_STATUS_TEMPLATE = 30,
    LLMEDGE_STATUS_NO_CHAT_TEMPLATE = 31,
    LLMEDGE_STATUS_TEMPLATE_VARIABLES = 32,
    LLMEDGE_STATUS_GRAMMAR = 33,
    LLMEDGE_STATUS_STRUCTURED_OUTPUT = 34,
    LLMEDGE_STATUS_SAFETY_BLOCKED = 40,
    LLMEDGE_STATUS_POLICY = 41,
    LLMEDGE_STATUS_AUDIT = 42,
    LLMEDGE_STATUS_IO = 50,
    LLMEDGE_STATUS_CHECKSUM_MISMATCH = 51,
    LLMEDGE_STATUS_FETCH = 52,
    LLMEDGE_STATUS_CLOSED = 60,
    /// The serving engine's queue is full, or all of a model's `max_sessions` are open: try
    /// again later.
    LLMEDGE_STATUS_BUSY = 70,
    /// The request ran past its deadline (queued or generating).
    LLMEDGE_STATUS_TIMEOUT = 71,
    /// A saved session state is corrupt or belongs to another model or adapter set.
    LLMEDGE_STATUS_STATE = 72,
    /// A server configuration file is invalid (the message names the file and line).
    LLMEDGE_STATUS_CONFIG = 73,
    /// A request is over a configured resource limit, such as `max_prompt_tokens`.
    LLMEDGE_STATUS_LIMIT = 74,
    LLMEDGE_STATUS_INTERNAL = 98,
    LLMEDGE_STATUS_PANIC = 99,
}

use llmedge_status::*;

impl From<ErrorCode> for llmedge_status {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::InvalidArgument => LLMEDGE_STATUS_INVALID_ARGUMENT,
            ErrorCode::NullArgument => LLMEDGE_STATUS_NULL_ARG,
            ErrorCode::InvalidUtf8 => LLMEDGE_STATUS_INVALID_UTF8,
            ErrorCode::ModelNotFound => LLMEDGE_STATUS_MODEL_NOT_FOUND,
            ErrorCode::InvalidModel => LLMEDGE_STATUS_INVALID_MODEL,
            ErrorCode::UnsupportedArchitecture => LLMEDGE_STATUS_UNSUPPORTED_ARCHITECTURE,
            ErrorCode::OutOfMemory => LLMEDGE_STATUS_OUT_OF_MEMORY,
            ErrorCode::ModelLoad => LLMEDGE_STATUS_MODEL_LOAD,
            ErrorCode::Adapter => LLMEDGE_STATUS_ADAPTER,
            ErrorCode::ModelIntegrity => LLMEDGE_STATUS_MODEL_INTEGRITY,
            ErrorCode::Projector => LLMEDGE_STATUS_PROJECTOR,
            ErrorCode::Image => LLMEDGE_STATUS_IMAGE,
            ErrorCode::Dicom => LLMEDGE_STATUS_DICOM,
            ErrorCode::ContextCreate => LLMEDGE_STATUS_CONTEXT_CREATE,
            ErrorCode::ContextOverflow => LLMEDGE_STATUS_CONTEXT_OVERFLOW,
            ErrorCode::Decode => LLMEDGE_STATUS_DECODE,
            ErrorCode::Tokenize => LLMEDGE_STATUS_TOKENIZE,
            ErrorCode::Template => LLMEDGE_STATUS_TEMPLATE,
            ErrorCode::NoChatTemplate => LLMEDGE_STATUS_NO_CHAT_TEMPLATE,
            ErrorCode::TemplateVariables => LLMEDGE_STATUS_TEMPLATE_VARIABLES,
            ErrorCode::Grammar => LLMEDGE_STATUS_GRAMMAR,
            ErrorCode::StructuredOutput => LLMEDGE_STATUS_STRUCTURED_OUTPUT,
            ErrorCode::SafetyBlocked => LLMEDGE_STATUS_SAFETY_BLOCKED,
            ErrorCode::Policy => LLMEDGE_STATUS_POLICY,
            ErrorCode::Audit => LLMEDGE_STATUS_AUDIT,
            ErrorCode::Io => LLMEDGE_STATUS_IO,
            ErrorCode::ChecksumMismatch => LLMEDGE_STATUS_CHECKSUM_MISMATCH,
            ErrorCode::Fetch => LLMEDGE_STATUS_FETCH,
            ErrorCode::Closed => LLMEDGE_STATUS_CLOSED,
            ErrorCode::Busy => LLMEDGE_STATUS_BUSY,
            ErrorCode::Timeout => LLMEDGE_STATUS_TIMEOUT,
            ErrorCode::State => LLMEDGE_STATUS_STATE,
            ErrorCode::Config => LLMEDGE_STATUS_CONFIG,
            ErrorCode::Limit => LLMEDGE_STATUS_LIMIT,
            ErrorCode::Internal => LLMEDGE_STATUS_INTERNAL,
            ErrorCode::Panic => LLMEDGE_STATUS_PANIC,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(message: String) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

/// Pointer and length of this thread's last error message.
pub(crate) fn last_error() -> (*const c_char, usize) {
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        (e.as_ptr(), e.as_bytes().len())
    })
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Run an export's body: errors set the last error and become their status; a panic becomes
/// `LLMEDGE_STATUS_PANIC` instead of unwinding into C.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Error>) -> llmedge_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => LLMEDGE_STATUS_OK,
        Ok(Err(e)) => {
            set_last_error(e.to_string());
            e.code().into()
        }
        Err(payload) => {
            set_last_error(format!("panic: {}", panic_message(&*payload)));
            LLMEDGE_STATUS_PANIC
        }
    }
}

/// Like [`guard`] for exports that return a value (NULL / 0 on panic) and cannot fail.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        set_last_error(format!("panic: {}", panic_message(&*payload)));
        fallback
    })
}

/// Static NUL-terminated names of the statuses (the core code names, plus "ok").
pub(crate) fn status_name(status: i32) -> &'static std::ffi::CStr {
    use std::sync::OnceLock;
    static NAMES: OnceLock<Vec<(i32, CString)>> = OnceLock::new();
    if status == 0 {
        return c"ok";
    }
    NAMES
        .get_or_init(|| {
            ErrorCode::ALL
                .iter()
                .map(|c| {
                    (
                        c.as_i32(),
                        CString::new(c.name()).expect("names have no NUL"),
                    )
                })
                .collect()
        })
        .iter()
        .find(|(code, _)| *code == status)
        .map_or(c"unknown", |(_, name)| name.as_c_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_equal_core_codes_one_to_one() {
        for code in ErrorCode::ALL {
            assert_eq!(llmedge_status::from(code) as i32, code.as_i32(), "{code:?}");
        }
        assert_eq!(
            ErrorCode::ALL.len() + 1,
            37,
            "a new core code needs a new status"
        );
    }

    #[test]
    fn panics_become_a_status_and_a_message() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, LLMEDGE_STATUS_PANIC);
        let (ptr, len) = last_error();
        // SAFETY: `last_error` returns this thread's live CString and its length.
        let msg = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
        assert_eq!(msg, b"panic: boom");
    }
}
