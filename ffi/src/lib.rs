//! libllmedge: the C ABI of llmedge. It translates; all logic lives in `llmedge-core`.
//!
//! Conventions (see `include/llmedge.h`): every fallible function returns `llmedge_status`
//! and writes its out-parameters only on success; `llmedge_last_error` gives this thread's
//! last message; handles are opaque; `_free(NULL)` is a no-op; strings are UTF-8 pointer +
//! length; no panic crosses the boundary.
#![allow(non_camel_case_types)]

mod args;
mod engine;
mod lora;
mod model;
mod options;
mod prompt;
mod response_cache;
mod router;
mod safety;
mod session;
mod status;
mod tools;
mod vision;

use std::ffi::c_char;

pub use engine::*;
pub use lora::*;
pub use model::*;
pub use options::*;
pub use prompt::*;
pub use response_cache::*;
pub use router::*;
pub use safety::*;
pub use session::*;
pub use status::llmedge_status;
pub use tools::*;
pub use vision::*;

/// A token id in the model's vocabulary (0 .. n_vocab).
pub type llmedge_token = i32;

/// The ABI major version; it is also the SONAME suffix (`libllmedge.so.N`) and changes only
/// on incompatible ABI changes.
pub const LLMEDGE_ABI_VERSION: u32 = 0;

/// `LLMEDGE_ABI_VERSION` of the loaded library: compare with the header's macro at start-up.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn llmedge_abi_version() -> u32 {
    LLMEDGE_ABI_VERSION
}

/// The library version ("MAJOR.MINOR.PATCH"), a static NUL-terminated string. Thread-safe.
#[no_mangle]
pub extern "C" fn llmedge_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of the last failed llmedge call on this thread (empty if none), as a
/// NUL-terminated UTF-8 string owned by the library and valid until the next failing llmedge
/// call on the same thread. Its length in bytes is written to `*out_len` unless `out_len` is NULL.
/// Never fails.
///
/// # Safety
/// `out_len` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_last_error(out_len: *mut usize) -> *const c_char {
    status::guard_value(c"".as_ptr(), || {
        let (ptr, len) = status::last_error();
        if !out_len.is_null() {
            // SAFETY: the caller passes NULL or a writable pointer.
            unsafe { out_len.write(len) };
        }
        ptr
    })
}

/// A static name for a status ("ok", "model_not_found", ...), or "unknown". Thread-safe.
#[no_mangle]
pub extern "C" fn llmedge_status_name(status: i32) -> *const c_char {
    status::guard_value(c"unknown".as_ptr(), || status::status_name(status).as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_version_agrees_with_the_soname_in_build_rs() {
        assert_eq!(
            env!("LLMEDGE_BUILD_ABI_VERSION"),
            LLMEDGE_ABI_VERSION.to_string()
        );
        assert_eq!(llmedge_abi_version(), LLMEDGE_ABI_VERSION);
    }

    #[test]
    fn version_string_is_cargo_version() {
        // SAFETY: llmedge_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(llmedge_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        // SAFETY: llmedge_status_name returns static NUL-terminated strings.
        let name = unsafe { std::ffi::CStr::from_ptr(llmedge_status_name(10)) };
        assert_eq!(name.to_str().unwrap(), "model_not_found");
    }
}
