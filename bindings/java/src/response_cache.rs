//! `io.llmedge.ResponseCache`: core's exact-match cache of deterministic answers, in memory or
//! in Redis. A cache is a `Box<Arc<dyn ResponseCache>>` owned by a Java `NativeResource`;
//! every engine built with it holds its own `Arc`, so closing the Java object never frees a
//! cache an engine still uses.

use std::sync::Arc;
use std::time::Duration;

use jni::objects::{JClass, JObject, JString};
use jni::sys::{jlong, jstring};
use jni::JNIEnv;
use llmedge::response_cache::{MemoryCache, RedisCache, ResponseCache, ResponseCacheConfig};
use llmedge::Error;

use crate::convert::{new_string, optional_string, string_arg, to_json};
use crate::guard::{free_handle, guard, JResult};

type Handle = Arc<dyn ResponseCache>;

fn cache_ref<'a>(handle: jlong) -> JResult<&'a Handle> {
    if handle == 0 {
        return Err(Error::Closed("response cache").into());
    }
    // SAFETY: a non-zero cache handle is a `Box<Handle>` pointer made by `responseCacheMemory`
    // or `responseCacheRedis`. The Java side frees it once (`responseCacheFree`), only after
    // every call holding it has returned. The cache is `Sync`.
    Ok(unsafe { &*(handle as *const Handle) })
}

fn new_handle(cache: Handle) -> jlong {
    Box::into_raw(Box::new(cache)) as jlong
}

fn millis(value: jlong, name: &str) -> JResult<Duration> {
    u64::try_from(value)
        .map(Duration::from_millis)
        .map_err(|_| Error::InvalidArgument(format!("{name} must be >= 0, got {value}")).into())
}

/// The `responseCache` and `shareAcrossTenants` fields of an `io.llmedge.EngineOptions`; the
/// cache is read under its `acquire()`/`release()`, so it cannot be freed meanwhile.
pub(crate) fn response_cache_field(
    env: &mut JNIEnv<'_>,
    options: &JObject<'_>,
) -> JResult<Option<ResponseCacheConfig>> {
    let cache = env
        .get_field(options, "responseCache", "Lio/llmedge/ResponseCache;")?
        .l()?;
    if cache.is_null() {
        return Ok(None);
    }
    let handle = env.call_method(&cache, "acquire", "()J", &[])?.j()?;
    let found = cache_ref(handle).cloned();
    env.call_method(&cache, "release", "()V", &[])?;
    env.delete_local_ref(cache)?;
    Ok(Some(ResponseCacheConfig {
        cache: found?,
        share_across_tenants: env.get_field(options, "shareAcrossTenants", "Z")?.z()?,
    }))
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_responseCacheMemory<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    capacity: jlong,
    ttl_ms: jlong,
) -> jlong {
    guard(&mut env, 0, |_| {
        let capacity = usize::try_from(capacity).map_err(|_| {
            Error::InvalidArgument(format!("capacity must be >= 1, got {capacity}"))
        })?;
        let cache = MemoryCache::new(capacity, millis(ttl_ms, "ttl")?)?;
        Ok(new_handle(Arc::new(cache)))
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_responseCacheRedis<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    url: JString<'l>,
    prefix: JString<'l>,
    ttl_ms: jlong,
    timeout_ms: jlong,
) -> jlong {
    guard(&mut env, 0, |env| {
        let url = string_arg(env, &url, "url")?;
        let prefix = optional_string(env, &prefix)?.unwrap_or_else(|| "llmedge:".into());
        let cache = RedisCache::connect(
            &url,
            &prefix,
            millis(ttl_ms, "ttl")?,
            millis(timeout_ms, "timeout")?,
        )?;
        Ok(new_handle(Arc::new(cache)))
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_responseCacheFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle came from `Box::into_raw` in `new_handle`, and the Java side
    // calls this exactly once, when no other call holds the handle.
    unsafe { free_handle::<Handle>(&mut env, handle) }
}

/// `{"backend", "hits", "misses", "errors"}`.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_responseCacheStatsJson<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let json = to_json(&cache_ref(handle)?.summary())?;
        Ok(new_string(env, &json)?.into_raw())
    })
}
