//! The safety layer on its own (check a text against a policy) and audit-log verification.
//! Sessions apply safety and audit to every request through their options
//! (`llmedge_session_options_set_safety_policy`, `..._set_audit_dir`).
//!
//! Thread safety: a `llmedge_safety` is immutable and may be used from any number of threads.

use std::ffi::c_char;

use llmedge::safety::{Safety, SafetyPolicy};

use crate::args::{free_box, out_arg, ref_arg, str_arg, write};
use crate::prompt::{return_string, to_json};
use crate::status::{guard, guard_value, llmedge_status};

/// A compiled safety policy: lexicons, PII rules. Opaque, immutable.
pub struct llmedge_safety {
    inner: Safety,
}

/// Load a policy file (TOML; NULL = the built-in default policy) and compile it.
/// `LLMEDGE_STATUS_POLICY` names the file and line of a bad policy or lexicon.
/// `*out_safety` is caller-owned (free with `llmedge_safety_free`). Thread-safe.
///
/// # Safety
/// `policy_path` must be NULL or `len` readable bytes; `out_safety` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_safety_new(
    policy_path: *const c_char,
    len: usize,
    out_safety: *mut *mut llmedge_safety,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_safety, "out_safety")?;
        let policy = if policy_path.is_null() {
            SafetyPolicy::default()
        } else {
            // SAFETY: forwarded caller contract.
            SafetyPolicy::from_file(unsafe { str_arg(policy_path, len, "policy_path") }?)?
        };
        let inner = Safety::new(policy)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(llmedge_safety { inner }))) };
        Ok(())
    })
}

/// Free a safety handle. NULL is a no-op.
///
/// # Safety
/// `safety` must be NULL or live, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llmedge_safety_free(safety: *mut llmedge_safety) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(safety) })
}

/// Check a user input: JSON `{"verdict": {"verdict": "allow"|"flag"|"block", ...}, "text":
/// redacted text, "matches": [...], "pii": [...], "redactions": {...}}` (spans are byte
/// offsets in `text`'s original). `*out_json` is caller-owned (free with
/// `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `safety` NULL or live; `text` NULL or `len` bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_safety_check_input(
    safety: *const llmedge_safety,
    text: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let s = &ref_arg(safety, "safety")?.inner;
            to_json(&s.check_input(str_arg(text, len, "text")?))
        })
    }
}

/// Check a complete model output (JSON as `llmedge_safety_check_input`, without `pii`).
///
/// # Safety
/// As for `llmedge_safety_check_input`.
#[no_mangle]
pub unsafe extern "C" fn llmedge_safety_check_output(
    safety: *const llmedge_safety,
    text: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let s = &ref_arg(safety, "safety")?.inner;
            to_json(&s.check_output(str_arg(text, len, "text")?))
        })
    }
}

/// Verify an audit log (a directory of segments, or one segment file): every record's hash,
/// the chain, sequence numbers, time order and the head anchor. Succeeds whenever the log
/// could be read, also when it was tampered with: read `"ok"` and `"findings"` (each with
/// `kind`, `file`, `line`, `seq`, `detail`) in `*out_json`, which is caller-owned (free with
/// `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `path` NULL or `len` bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_audit_verify(
    path: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            to_json(&llmedge::audit::verify(str_arg(path, len, "path")?)?)
        })
    }
}

/// Verify a model manifest: its Ed25519 signature against the public key file `pubkey` (when
/// not NULL; NULL = hashes only) and the SHA-256 and size of every file it lists. Succeeds
/// whenever the manifest could be read, also when a file was tampered with: read `"ok"`,
/// `"signature"` (`{"status": "valid" | "invalid" | "not_checked", "reason"}`) and `"files"`
/// (each `{"path", "ok", "problem"}`) in `*out_json`, which is caller-owned (free with
/// `llmedge_string_free`). `LLMEDGE_STATUS_MODEL_INTEGRITY` when the manifest itself is
/// invalid. Thread-safe.
///
/// # Safety
/// `manifest` NULL or `manifest_len` bytes; `pubkey` NULL or `pubkey_len` bytes;
/// out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_manifest_verify(
    manifest: *const c_char,
    manifest_len: usize,
    pubkey: *const c_char,
    pubkey_len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let manifest = str_arg(manifest, manifest_len, "manifest")?;
            let pubkey = if pubkey.is_null() {
                None
            } else {
                Some(std::path::Path::new(str_arg(pubkey, pubkey_len, "pubkey")?))
            };
            to_json(&llmedge::model_manifest::verify_manifest(
                std::path::Path::new(manifest),
                pubkey,
            )?)
        })
    }
}
