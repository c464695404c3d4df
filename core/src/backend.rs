//! The process-wide llama.cpp backend and its log.
//!
//! llama.cpp may be initialised once per process, so every model shares one backend.
//! Its log goes to `tracing` (target `llama.cpp`), which prints nothing unless the host
//! installs a subscriber. Error lines are also kept per thread, so a failed load can say
//! *why* instead of llama.cpp's bare NULL.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;

use crate::error::{Error, Result};

static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();

/// How many recent error lines a thread keeps for error messages.
const KEPT_LINES: usize = 16;

/// A per-thread reader of llama.cpp's info lines (progress of long calls such as quantize).
type LogObserver = Box<dyn FnMut(&str)>;

thread_local! {
    static RECENT_ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static OBSERVER: RefCell<Option<LogObserver>> = const { RefCell::new(None) };
}

/// Run `work` while `observer` sees every info line llama.cpp logs on this thread: llama.cpp
/// reports the progress of quantization only in its log.
pub(crate) fn with_log_observer<T>(
    observer: impl FnMut(&str) + 'static,
    work: impl FnOnce() -> T,
) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            OBSERVER.with(|o| o.borrow_mut().take());
        }
    }
    OBSERVER.with(|o| *o.borrow_mut() = Some(Box::new(observer)));
    let _reset = Reset;
    work()
}

/// The shared backend, initialised on first use.
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    BACKEND
        .get_or_init(|| {
            // SAFETY: `forward_log` is a plain function that lives for the whole process
            // and ignores its user-data pointer, so passing null is valid.
            unsafe {
                llama_cpp_sys_2::llama_log_set(Some(forward_log), std::ptr::null_mut());
            }
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Internal(format!("llama.cpp backend init failed: {e}")))
}

/// Send mtmd's (vision) log, which has its own hook, the same way as llama.cpp's; once.
pub(crate) fn route_mtmd_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: as in `backend`: a process-lifetime function that ignores its user data.
        unsafe { llama_cpp_sys_2::mtmd_helper_log_set(Some(forward_log), std::ptr::null_mut()) }
    });
}

/// Forget the error lines this thread has seen (call before an operation whose failure
/// you want to explain).
pub(crate) fn clear_recent_errors() {
    RECENT_ERRORS.with(|r| r.borrow_mut().clear());
}

/// The error lines llama.cpp logged on this thread since [`clear_recent_errors`].
pub(crate) fn recent_errors() -> Vec<String> {
    RECENT_ERRORS.with(|r| r.borrow().clone())
}

unsafe extern "C" fn forward_log(
    level: llama_cpp_sys_2::ggml_log_level,
    text: *const c_char,
    _user_data: *mut c_void,
) {
    if text.is_null() {
        return;
    }
    // A panic must not unwind into C.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: llama.cpp passes a valid NUL-terminated string that lives for this call.
        let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
        let line = text.trim_end();
        if line.is_empty() {
            return;
        }
        match level {
            llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR => {
                tracing::error!(target: "llama.cpp", "{line}");
                RECENT_ERRORS.with(|r| {
                    let mut r = r.borrow_mut();
                    if r.len() == KEPT_LINES {
                        r.remove(0);
                    }
                    r.push(line.to_owned());
                });
            }
            llama_cpp_sys_2::GGML_LOG_LEVEL_WARN => tracing::warn!(target: "llama.cpp", "{line}"),
            llama_cpp_sys_2::GGML_LOG_LEVEL_INFO => {
                tracing::info!(target: "llama.cpp", "{line}");
                OBSERVER.with(|o| {
                    if let Ok(mut o) = o.try_borrow_mut() {
                        if let Some(observe) = o.as_mut() {
                            observe(line);
                        }
                    }
                });
            }
            _ => tracing::debug!(target: "llama.cpp", "{line}"),
        }
    });
}
