//! Response caches for engines (core's `response_cache`): an exact-match cache of the answers
//! to deterministic requests (greedy, or seeded), keyed by model, adapters, prompt tokens,
//! sampling and tenant. One cache may serve several engines; a Redis cache is shared by every
//! process that names the same server and prefix.
//!
//! Thread safety: an `llmedge_response_cache` is thread-safe; engines on many threads may use
//! it at once.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use llmedge::response_cache::{MemoryCache, RedisCache, ResponseCache, ResponseCacheConfig};

use crate::args::{free_box, out_arg, ref_arg, str_arg, write};
use crate::engine::llmedge_engine_options;
use crate::options::set;
use crate::prompt::{return_string, to_json};
use crate::status::{guard, guard_value, llmedge_status};

/// A response cache (in memory or in Redis). Opaque, thread-safe. Engines that use it hold
/// their own reference, so the handle may be freed while they run.
pub struct llmedge_response_cache {
    inner: Arc<dyn ResponseCache>,
}

fn new_cache(
    out_cache: *mut *mut llmedge_response_cache,
    make: impl FnOnce() -> llmedge::Result<Arc<dyn ResponseCache>>,
) -> llmedge_status {
    guard(|| {
        let out = out_arg(out_cache, "out_cache")?;
        let inner = make()?;
        // SAFETY: `out` was checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(llmedge_response_cache { inner })),
            )
        };
        Ok(())
    })
}

/// An in-memory LRU cache of at most `capacity` answers (at least 1), each kept for `ttl_ms`
/// milliseconds. `LLMEDGE_STATUS_INVALID_ARGUMENT` when `capacity` is 0. On success
/// `*out_cache` is owned by the caller (free with `llmedge_response_cache_free`).
///
/// # Safety
/// `out_cache` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_response_cache_new_memory(
    capacity: u64,
    ttl_ms: u64,
    out_cache: *mut *mut llmedge_response_cache,
) -> llmedge_status {
    new_cache(out_cache, || {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Ok(Arc::new(MemoryCache::new(
            capacity,
            Duration::from_millis(ttl_ms),
        )?))
    })
}

/// A cache in Redis at `url` (`redis://host:port/db`), entries under `prefix` (may be NULL:
/// `"llmedge:"`) expiring after `ttl_ms` (at least one second). Fails with
/// `LLMEDGE_STATUS_IO` when the server does not answer a PING within `timeout_ms`, and with
/// `LLMEDGE_STATUS_INVALID_ARGUMENT` for a bad URL or TTL. Later outages cost only hits:
/// requests are then served by the model. On success `*out_cache` is owned by the caller.
///
/// # Safety
/// `url` NULL or `url_len` readable bytes; `prefix` NULL or `prefix_len` readable bytes;
/// `out_cache` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_response_cache_new_redis(
    url: *const c_char,
    url_len: usize,
    prefix: *const c_char,
    prefix_len: usize,
    ttl_ms: u64,
    timeout_ms: u64,
    out_cache: *mut *mut llmedge_response_cache,
) -> llmedge_status {
    new_cache(out_cache, || {
        // SAFETY: forwarded caller contract.
        let url = unsafe { str_arg(url, url_len, "url") }?;
        let prefix = if prefix.is_null() {
            "llmedge:"
        } else {
            // SAFETY: forwarded caller contract.
            unsafe { str_arg(prefix, prefix_len, "prefix") }?
        };
        Ok(Arc::new(RedisCache::connect(
            url,
            prefix,
            Duration::from_millis(ttl_ms),
            Duration::from_millis(timeout_ms),
        )?))
    })
}

/// Free a cache handle; engines that use the cache keep it. NULL is a no-op. Must not be
/// called twice on the same pointer.
///
/// # Safety
/// `cache` must be NULL or a live handle not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llmedge_response_cache_free(cache: *mut llmedge_response_cache) {
    // SAFETY: forwarded caller contract.
    guard_value((), || unsafe { free_box(cache) })
}

/// The cache's counters since creation as JSON: `{"backend", "hits", "misses", "errors"}`
/// (errors: lookups or stores that failed). `*out_json` is caller-owned (free with
/// `llmedge_string_free`). Thread-safe.
///
/// # Safety
/// `cache` must be NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn llmedge_response_cache_stats_json(
    cache: *const llmedge_response_cache,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        return_string(out_json, out_len, || {
            to_json(&ref_arg(cache, "cache")?.inner.summary())
        })
    }
}

/// Answer the engine's deterministic requests (greedy, or sampled with a seed) from `cache`
/// when the same request (model, adapters, prompt tokens, sampling, tenant) was answered
/// before; NULL turns the cache off (the default). `share_across_tenants` lets a tenant get
/// another tenant's cached answer. Requests whose input was redacted are never stored. The
/// options take their own reference to the cache. Hits count in `llmedge_engine_stats_json`
/// (`response_cache_hits`).
///
/// Returns `LLMEDGE_STATUS_NULL_ARG` when `options` is NULL. Not thread-safe with other
/// changes to the same builder.
///
/// # Safety
/// `options` must be NULL or a live `llmedge_engine_options`; `cache` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmedge_engine_options_set_response_cache(
    options: *mut llmedge_engine_options,
    cache: *const llmedge_response_cache,
    share_across_tenants: bool,
) -> llmedge_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        set(options, |o| {
            o.response_cache = if cache.is_null() {
                None
            } else {
                Some(ResponseCacheConfig {
                    cache: ref_arg(cache, "cache")?.inner.clone(),
                    share_across_tenants,
                })
            };
            Ok(())
        })
    }
}
