//! Routing between domain models and adapters (core's `router`): the rules of a server
//! configuration's `[[routes]]` (model name, tenant, keywords, regex, a classifier model,
//! the default), for programs that run their own models and engines.
//!
//! Thread safety: an `llmedge_router` is immutable and may be used from any number of
//! threads; an `llmedge_route_classifier` is thread-safe (requests that reach it take turns).

use std::ffi::c_char;

use llmedge::router::{RouteClassifier, RouteQuery, Router};

use crate::args::{free_box, out_arg, ref_arg, str_arg, write};
use crate::model::llmedge_model;
use crate::prompt::{return_string, to_json};
use crate::status::{guard, guard_value, llmedge_status};

/// Compiled routing rules. Opaque, immutable.
pub struct llmedge_router {
    inner: Router,
}

/// The classifier stage's model: a greedy session answering with a route name. Opaque,
/// thread-safe.
pub struct llmedge_route_classifier {
    inner: RouteClassifier,
}

fn new_router(
    out_router: *mut *mut llmedge_router,
    make: impl FnOnce() -> llmedge::Result<Router>,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_router, "out_router")?;
        let inner = make()?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(llmedge_router { inner }))) };
        Ok(())
    })
}

/// Compile a router from TOML text: `[[routes]]` tables as in `llmedge serve`'s
/// configuration (`name`, `model`, `adapters`, `models`, `tenants`, `keywords`, `regex`,
/// `default`) and an optional `[router.classifier]` table (`model`, `prompt`, `routes`,
/// `max_chars`). `LLMEDGE_STATUS_CONFIG` names the line of a mistake. On success
/// `*out_router` is owned by the caller (free with `llmedge_router_free`). Thread-safe.
///
/// # Safety
/// `toml` must be NULL or `len` readable bytes; `out_router` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_router_from_toml(
    toml: *const c_char,
    len: usize,
    out_router: *mut *mut llmedge_router,
) -> llmedge_status {
    new_router(out_router, || {
        // SAFETY: forwarded caller contract.
        Router::from_toml_str(unsafe { str_arg(toml, len, "toml") }?)
    })
}

/// `llmedge_router_from_toml` on the file at `path` (`LLMEDGE_STATUS_IO` when it cannot be
/// read).
///
/// # Safety
/// `path` must be NULL or `len` readable bytes; `out_router` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_router_from_file(
    path: *const c_char,
    len: usize,
    out_router: *mut *mut llmedge_router,
) -> llmedge_status {
    new_router(out_router, || {
        // SAFETY: forwarded caller contract.
        Router::from_file(unsafe { str_arg(path, len, "path") }?)
    })
}

/// Free a router. NULL is a no-op.
///
/// # Safety
/// `router` must be NULL or live, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llmedge_router_free(router: *mut llmedge_router) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(router) })
}

/// A classifier on `model` (a session with a 2,048-token context, no safety or audit: the
/// request's own record carries the decision). The classifier keeps the model loaded. On
/// success `*out_classifier` is owned by the caller (free with
/// `llmedge_route_classifier_free`).
///
/// # Safety
/// `model` must be NULL or live; `out_classifier` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_route_classifier_new(
    model: *const llmedge_model,
    out_classifier: *mut *mut llmedge_route_classifier,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_classifier, "out_classifier")?;
        // SAFETY: forwarded caller contract.
        let model = unsafe { ref_arg(model, "model") }?;
        let inner = RouteClassifier::new(&model.inner)?;
        // SAFETY: `out` was checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(llmedge_route_classifier { inner })),
            )
        };
        Ok(())
    })
}

/// Free a classifier. NULL is a no-op.
///
/// # Safety
/// `classifier` must be NULL or live, not in use on another thread, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llmedge_route_classifier_free(classifier: *mut llmedge_route_classifier) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(classifier) })
}

/// Decide where a request goes: JSON `{"route", "model", "adapters": [{"name", "scale"}],
/// "rule": "model"|"tenant"|"keyword"|"regex"|"classifier"|"default", "matched"}` (no
/// `matched` for the default). `model` (may be NULL: the request named none) is the model
/// name the request asked for, `tenant` the caller's tenant (may be empty), `text` the
/// request text (the prompt, or the last user message). `classifier` may be NULL when the
/// router has no `[router.classifier]`; a request that reaches that stage without one gets
/// `LLMEDGE_STATUS_INVALID_ARGUMENT`. `*out_json` is caller-owned (free with
/// `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `router` and `classifier` NULL or live; strings NULL or their lengths readable;
/// out-pointers NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmedge_router_route(
    router: *const llmedge_router,
    classifier: *const llmedge_route_classifier,
    model: *const c_char,
    model_len: usize,
    tenant: *const c_char,
    tenant_len: usize,
    text: *const c_char,
    text_len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            let router = &ref_arg(router, "router")?.inner;
            let classifier = if classifier.is_null() {
                None
            } else {
                Some(&ref_arg(classifier, "classifier")?.inner)
            };
            let model = if model.is_null() {
                None
            } else {
                Some(str_arg(model, model_len, "model")?)
            };
            let query = RouteQuery {
                model,
                tenant: str_arg(tenant, tenant_len, "tenant")?,
                text: str_arg(text, text_len, "text")?,
            };
            to_json(&router.route_with(&query, classifier)?)
        })
    }
}
