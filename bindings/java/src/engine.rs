//! The serving engine: `io.llmedge.Engine` and `io.llmedge.EngineRequest`.
//!
//! An engine is a `Box<Engine>` and a request a `Box<RequestHandle>`, both owned by a Java
//! `NativeResource`. A request's output goes to its Java `EngineRequest.Callbacks` object
//! (held as a global reference until the request ends): the engine's scheduler thread attaches
//! itself to the JVM once, as a daemon thread (an engine nobody closed must not keep the JVM
//! from exiting), and calls `onNativePiece` / `onNativeDone` inside a local reference frame.
//! Those Java methods catch whatever the user's listener throws; any other Java exception is
//! cleared here (a piece then cancels the request), so nothing unwinds into the scheduler.

use std::cell::Cell;
use std::time::Duration;

use jni::objects::{GlobalRef, JClass, JIntArray, JObject, JObjectArray, JString, JValue};
use jni::sys::{jboolean, jint, jlong, jstring, JNI_TRUE};
use jni::{JNIEnv, JavaVM};
use llmedge::{
    Completion, Engine, EngineOptions, EngineRequest, Error, RequestHandle, RequestInput,
    RequestSink,
};

use crate::convert::{
    chat_messages, generate_options, int_array_arg, new_completion, new_string, session_options,
    string_arg,
};
use crate::guard::{free_handle, guard, JResult};
use crate::safety::drop_audited;

thread_local! {
    /// Set while this thread runs a request's Java callback.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn engine_ref<'a>(handle: jlong) -> JResult<&'a Engine> {
    if handle == 0 {
        return Err(Error::Closed("engine").into());
    }
    // SAFETY: a non-zero engine handle is a `Box<Engine>` pointer made by `engineNew`. The Java
    // side frees it once (`engineFree`), only after every call holding it has returned; `Engine`
    // is `Sync`.
    Ok(unsafe { &*(handle as *const Engine) })
}

fn request_ref<'a>(handle: jlong) -> JResult<&'a RequestHandle> {
    if handle == 0 {
        return Err(Error::Closed("request").into());
    }
    // SAFETY: as in `engine_ref`, for a `Box<RequestHandle>` made by `engineSubmit` and freed
    // by `requestFree`; `RequestHandle` is `Sync`.
    Ok(unsafe { &*(handle as *const RequestHandle) })
}

/// A request's output, delivered to its Java `EngineRequest.Callbacks`.
struct JavaSink {
    vm: JavaVM,
    callbacks: GlobalRef,
}

impl JavaSink {
    /// Run `f` with this thread's JNI environment (attaching it as a daemon thread once) in a
    /// local reference frame. A pending Java exception is cleared and reported as an error.
    fn call<T>(&self, f: impl FnOnce(&mut JNIEnv<'_>) -> JResult<T>) -> Option<T> {
        let mut env = self.vm.attach_current_thread_as_daemon().ok()?;
        let before = IN_CALLBACK.with(|c| c.replace(true));
        let out = env.with_local_frame(8, |env| f(env));
        IN_CALLBACK.with(|c| c.set(before));
        if env.exception_check().unwrap_or(true) {
            let _ = env.exception_clear();
            return None;
        }
        out.ok()
    }
}

impl RequestSink for JavaSink {
    fn piece(&mut self, text: &str) -> bool {
        let callbacks = &self.callbacks;
        let more = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.call(|env| {
                let piece = env.new_string(text)?;
                Ok(env
                    .call_method(
                        callbacks,
                        "onNativePiece",
                        "(Ljava/lang/String;)Z",
                        &[JValue::Object(&piece)],
                    )?
                    .z()?)
            })
        }));
        matches!(more, Ok(Some(true)))
    }

    fn done(self: Box<Self>, result: llmedge::Result<Completion>) {
        let callbacks = &self.callbacks;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.call(|env| {
                let (completion, code, message) = match &result {
                    Ok(c) => (new_completion(env, c)?, 0, JObject::null()),
                    Err(e) => (
                        JObject::null(),
                        e.code().as_i32(),
                        JObject::from(new_string(env, &e.to_string())?),
                    ),
                };
                env.call_method(
                    callbacks,
                    "onNativeDone",
                    "(Lio/llmedge/Completion;ILjava/lang/String;)V",
                    &[
                        JValue::Object(&completion),
                        JValue::Int(code),
                        JValue::Object(&message),
                    ],
                )?;
                Ok(())
            })
        }));
    }
}

/// `io.llmedge.EngineOptions` (null = defaults): boxed fields, null = core's default.
fn engine_options(env: &mut JNIEnv<'_>, obj: &JObject<'_>) -> JResult<EngineOptions> {
    let mut o = EngineOptions::default();
    if obj.is_null() {
        o.session = session_options(env, obj)?;
        return Ok(o);
    }
    let session = env
        .get_field(obj, "sessionOptions", "Lio/llmedge/SessionOptions;")?
        .l()?;
    o.session = session_options(env, &session)?;
    env.delete_local_ref(session)?;
    if let Some(v) = boxed_long(env, obj, "slots", "Ljava/lang/Integer;")? {
        o.slots = u32::try_from(v).map_err(|_| negative("slots", v))?;
    }
    if let Some(v) = boxed_long(env, obj, "maxQueue", "Ljava/lang/Integer;")? {
        o.max_queue = usize::try_from(v).map_err(|_| negative("maxQueue", v))?;
    }
    if let Some(v) = boxed_long(env, obj, "timeoutMs", "Ljava/lang/Long;")? {
        let ms = u64::try_from(v).map_err(|_| negative("timeout", v))?;
        o.timeout = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(v) = boxed_long(env, obj, "prefixCacheBytes", "Ljava/lang/Long;")? {
        o.prefix_cache_bytes = usize::try_from(v).map_err(|_| negative("prefixCacheBytes", v))?;
    }
    if let Some(v) = boxed_long(env, obj, "prefixCacheMinTokens", "Ljava/lang/Integer;")? {
        o.prefix_cache_min_tokens =
            usize::try_from(v).map_err(|_| negative("prefixCacheMinTokens", v))?;
    }
    if let Some(v) = boxed_long(env, obj, "adapterQuantum", "Ljava/lang/Integer;")? {
        o.adapter_quantum = u32::try_from(v).map_err(|_| negative("adapterQuantum", v))?;
    }
    o.response_cache = crate::response_cache::response_cache_field(env, obj)?;
    Ok(o)
}

fn negative(name: &str, v: i64) -> Error {
    Error::InvalidArgument(format!("{name} must be >= 0, got {v}"))
}

/// A `java.lang.Integer` or `java.lang.Long` field as an `i64`, `None` when null.
fn boxed_long(
    env: &mut JNIEnv<'_>,
    obj: &JObject<'_>,
    name: &str,
    sig: &str,
) -> JResult<Option<i64>> {
    let boxed = env.get_field(obj, name, sig)?.l()?;
    if boxed.is_null() {
        return Ok(None);
    }
    let value = env.call_method(&boxed, "longValue", "()J", &[])?.j()?;
    env.delete_local_ref(boxed)?;
    Ok(Some(value))
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_engineNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    options: JObject<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let model = crate::model_ref(model)?;
        let options = engine_options(env, &options)?;
        // As for sessions: a failing `Engine::new` drops the options' audit log under the
        // audit registry's lock.
        let audit = options.session.audit.clone();
        let engine = Engine::new(model, options);
        drop_audited(audit);
        Ok(Box::into_raw(Box::new(engine?)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_engineFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    guard(&mut env, (), |_| {
        if handle != 0 {
            // SAFETY: the handle came from `Box::into_raw` in `engineNew`, and the Java side calls
            // this exactly once, when no other call holds the handle.
            let engine = unsafe { Box::from_raw(handle as *mut Engine) };
            let free = move || {
                // Cancel and join first (the requests' callbacks run meanwhile), then drop the
                // engine, which may hold the last reference to a shared audit log.
                engine.shutdown(false);
                drop_audited(engine);
            };
            if IN_CALLBACK.with(Cell::get) {
                // Joining the scheduler from its own thread would never return.
                std::thread::spawn(free);
            } else {
                free();
            }
        }
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_engineShutdown<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    drain: jboolean,
) {
    guard(&mut env, (), |_| {
        let engine = engine_ref(handle)?;
        if IN_CALLBACK.with(Cell::get) {
            return Err(Error::InvalidArgument(
                "shutdown cannot be called from a request listener (it waits for the thread \
                 running the listener)"
                    .into(),
            )
            .into());
        }
        engine.shutdown(drain == JNI_TRUE);
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_engineStatsJson<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let stats = crate::convert::to_json(&engine_ref(handle)?.stats())?;
        Ok(new_string(env, &stats)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_engineSlots<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jint {
    guard(&mut env, 0, |_| Ok(engine_ref(handle)?.slots() as jint))
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_engineContextSize<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jint {
    guard(&mut env, 0, |_| Ok(engine_ref(handle)?.n_ctx() as jint))
}

/// Submit a request: exactly one of `prompt`, `tokens`, `messages` is non-null; its output
/// goes to `callbacks` (an `EngineRequest.Callbacks`). Returns the request handle.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_io_llmedge_NativeBridge_engineSubmit<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    prompt: JString<'l>,
    tokens: JIntArray<'l>,
    messages: JObjectArray<'l>,
    options: JObject<'l>,
    timeout_ms: jlong,
    callbacks: JObject<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let engine = engine_ref(handle)?;
        let input = if !prompt.is_null() {
            RequestInput::Prompt(string_arg(env, &prompt, "prompt")?)
        } else if !tokens.is_null() {
            RequestInput::Tokens(int_array_arg(env, &tokens, "tokens")?)
        } else if !messages.is_null() {
            RequestInput::Chat(chat_messages(env, &messages)?)
        } else {
            return Err(Error::NullArgument("prompt").into());
        };
        if callbacks.is_null() {
            return Err(Error::NullArgument("callbacks").into());
        }
        let timeout = match u64::try_from(timeout_ms) {
            Ok(0) => None,
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => return Err(negative("timeout", timeout_ms).into()),
        };
        let request = EngineRequest {
            input,
            options: generate_options(env, &options)?,
            timeout,
        };
        let sink = Box::new(JavaSink {
            vm: env.get_java_vm()?,
            callbacks: env.new_global_ref(&callbacks)?,
        });
        let handle = engine.submit(request, sink)?;
        Ok(Box::into_raw(Box::new(handle)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_requestFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle came from `Box::into_raw` in `engineSubmit`, and the Java side
    // calls this exactly once, when no other call holds the handle.
    unsafe { free_handle::<RequestHandle>(&mut env, handle) }
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_requestCancel<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    guard(&mut env, (), |_| {
        request_ref(handle)?.cancel();
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_requestId<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let id = request_ref(handle)?.id().to_owned();
        Ok(new_string(env, &id)?.into_raw())
    })
}
