//! Turning C arguments into Rust values, and Rust results into owned C buffers.

use std::ffi::{c_char, CString};

use llmedge::Error;

/// Borrow a UTF-8 string given as pointer + length. NULL is `NullArgument`, bad bytes `InvalidUtf8`.
///
/// # Safety
/// When `ptr` is not NULL it must point to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn str_arg<'a>(
    ptr: *const c_char,
    len: usize,
    name: &'static str,
) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::NullArgument(name));
    }
    // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8(name))
}

/// Borrow a slice given as pointer + length (NULL is `NullArgument`).
///
/// # Safety
/// When `ptr` is not NULL it must point to `len` readable elements that outlive `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    len: usize,
    name: &'static str,
) -> Result<&'a [T], Error> {
    if ptr.is_null() {
        return Err(Error::NullArgument(name));
    }
    // SAFETY: the caller guarantees `len` readable elements at `ptr`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrow a handle (NULL is `NullArgument`).
///
/// # Safety
/// When not NULL, `ptr` must be a live handle of this type created by llmedge.
pub(crate) unsafe fn ref_arg<'a, T>(ptr: *const T, name: &'static str) -> Result<&'a T, Error> {
    // SAFETY: the caller guarantees a live handle or NULL.
    unsafe { ptr.as_ref() }.ok_or(Error::NullArgument(name))
}

/// Borrow a handle mutably (NULL is `NullArgument`).
///
/// # Safety
/// When not NULL, `ptr` must be a live handle not used by another thread during the call.
pub(crate) unsafe fn mut_arg<'a, T>(ptr: *mut T, name: &'static str) -> Result<&'a mut T, Error> {
    // SAFETY: the caller guarantees a live, unshared handle or NULL.
    unsafe { ptr.as_mut() }.ok_or(Error::NullArgument(name))
}

/// Check that an out-parameter is not NULL, before doing any work.
pub(crate) fn out_arg<T>(ptr: *mut T, name: &'static str) -> Result<*mut T, Error> {
    if ptr.is_null() {
        Err(Error::NullArgument(name))
    } else {
        Ok(ptr)
    }
}

/// Write an out-parameter checked by [`out_arg`].
///
/// # Safety
/// `ptr` must be valid for a write of `T` (checked non-NULL by `out_arg`).
pub(crate) unsafe fn write<T>(ptr: *mut T, value: T) {
    // SAFETY: the caller guarantees `ptr` is valid for writes.
    unsafe { ptr.write(value) }
}

/// A Rust string as a NUL-terminated, caller-owned C string plus its length in bytes.
pub(crate) fn owned_string(s: String) -> (*mut c_char, usize) {
    // Measure after replacing: U+FFFD is three bytes where the NUL was one.
    let c = CString::new(s.replace('\0', "\u{fffd}")).expect("NULs were replaced");
    let len = c.as_bytes().len();
    (c.into_raw(), len)
}

/// A vector as a caller-owned buffer (freed by the matching `_free` with the same length).
pub(crate) fn owned_slice<T>(v: Vec<T>) -> (*mut T, usize) {
    let boxed = v.into_boxed_slice();
    let len = boxed.len();
    (Box::into_raw(boxed).cast::<T>(), len)
}

/// Free a buffer made by [`owned_slice`].
///
/// # Safety
/// `ptr` and `len` must come from one `owned_slice` call and not have been freed.
pub(crate) unsafe fn free_slice<T>(ptr: *mut T, len: usize) {
    if !ptr.is_null() {
        // SAFETY: the pointer and length describe a boxed slice we allocated.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}

/// Free a handle made by `Box::into_raw`.
///
/// # Safety
/// `ptr` must be NULL or a live handle of this type, not used again afterwards.
pub(crate) unsafe fn free_box<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the caller passes a pointer from `Box::into_raw` exactly once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}
