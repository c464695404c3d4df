//! `libllmedge_jni`: the JNI library behind llmedge's Java, Kotlin and Android bindings.
//!
//! Every native method here is a static method of `io.llmedge.NativeBridge` and runs inside
//! [`guard::guard`], so an llmedge error becomes an `io.llmedge.LlmedgeException` carrying the
//! error's stable code, and a Rust panic becomes one with code 99 instead of crashing the JVM.
//!
//! Handles: a model is a `Box<Model>`, a session a `Box<SessionBox>` and an engine a
//! `Box<Engine>` (see `engine.rs`), passed to Java as a
//! `jlong` from [`Box::into_raw`]. The Java side (`NativeResource`) keeps the handle in a field,
//! counts the calls using it, and frees it exactly once, after the last such call has returned;
//! a handle of 0 means closed and is reported as [`Error::Closed`] (code 60).

mod convert;
mod engine;
mod guard;
mod lora;
mod response_cache;
mod router;
mod safety;
mod templates;
mod vision;

use std::sync::{Mutex, PoisonError};

use jni::objects::{JClass, JIntArray, JObject, JObjectArray, JString, JValue};
use jni::sys::{
    jboolean, jdoubleArray, jfloatArray, jint, jintArray, jlong, jobject, jobjectArray, jstring,
    JNI_TRUE,
};
use jni::JNIEnv;
use llmedge::{CancelHandle, ChatMessage, Error, ErrorCode, Model, Session, Token};

use crate::convert::*;
use crate::guard::{free_handle, guard, JResult};

/// A session and the handle that cancels it without taking the session's lock.
struct SessionBox {
    session: Mutex<Session>,
    cancel: CancelHandle,
}

pub(crate) fn model_ref<'a>(handle: jlong) -> JResult<&'a Model> {
    if handle == 0 {
        return Err(Error::Closed("model").into());
    }
    // SAFETY: a non-zero model handle is a `Box<Model>` pointer made by `modelLoad`. The Java
    // side frees it once (`modelFree`), only after every call that holds it has returned, so it
    // is live for the whole of this call. `Model` is `Sync`, so shared use from threads is fine.
    Ok(unsafe { &*(handle as *const Model) })
}

fn session_ref<'a>(handle: jlong) -> JResult<&'a SessionBox> {
    if handle == 0 {
        return Err(Error::Closed("session").into());
    }
    // SAFETY: as in `model_ref`: a `Box<SessionBox>` from `sessionNew`, freed only after the last
    // call using it. `SessionBox` is `Sync` (the session sits behind a mutex).
    Ok(unsafe { &*(handle as *const SessionBox) })
}

fn jbool(b: jboolean) -> bool {
    b == JNI_TRUE
}

// ---------------------------------------------------------------------------------------------
// Library

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_version<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        Ok(new_string(env, llmedge::VERSION)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_defaultModelPath<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let path = llmedge::model_fetch::default_model_path(&mut |_| {})?;
        Ok(new_string(env, &path.to_string_lossy())?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_builtinChatTemplates<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        Ok(new_string_array(env, &llmedge::ChatTemplate::builtin_names())?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_generateDefaults<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jdoubleArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let values = generate_defaults();
        let array = env.new_double_array(values.len() as i32)?;
        env.set_double_array_region(&array, 0, &values)?;
        Ok(array.into_raw())
    })
}

/// The core's error codes in numeric order, as `code:name` strings (`32:template_variables`),
/// so tests can check `io.llmedge.ErrorCode` against them.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_errorCodes<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let codes: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|c| format!("{}:{}", c.as_i32(), c.name()))
            .collect();
        Ok(new_string_array(env, &codes)?.into_raw())
    })
}

/// Unwinds with a panic on purpose, so tests can check that a panic becomes an exception
/// (code 99). `resume_unwind` unwinds exactly like `panic!` but skips the panic hook, so the
/// test log is not cluttered with a backtrace; real panics still print theirs.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_panicForTesting<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    message: JString<'l>,
) {
    guard(&mut env, (), |env| {
        let message = string_arg(env, &message, "message")?;
        std::panic::resume_unwind(Box::new(message))
    })
}

// ---------------------------------------------------------------------------------------------
// Model

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelLoad<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
    options: JObject<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let path = string_arg(env, &path, "path")?;
        let options = model_options(env, &options)?;
        let model = Model::load(path, options)?;
        Ok(Box::into_raw(Box::new(model)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle came from `Box::into_raw` in `modelLoad`, and the Java side calls
    // this exactly once, when no other call holds the handle.
    unsafe { free_handle::<Model>(&mut env, handle) }
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelInfo<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let model = model_ref(handle)?;
        Ok(new_model_info(env, model.info())?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelSha256<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let digest = model_ref(handle)?.sha256()?;
        Ok(new_string(env, &digest)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelTokenize<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    text: JString<'l>,
    add_special: jboolean,
    parse_special: jboolean,
) -> jintArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let model = model_ref(handle)?;
        let text = string_arg(env, &text, "text")?;
        let tokens = model.tokenize(&text, jbool(add_special), jbool(parse_special));
        Ok(new_int_array(env, &tokens)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelDetokenize<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    tokens: JIntArray<'l>,
    special: jboolean,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let model = model_ref(handle)?;
        let tokens: Vec<Token> = int_array_arg(env, &tokens, "tokens")?;
        let text = model.detokenize(&tokens, jbool(special))?;
        Ok(new_string(env, &text)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelEmbed<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    text: JString<'l>,
) -> jfloatArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let model = model_ref(handle)?;
        let text = string_arg(env, &text, "text")?;
        let embedding = model.embed(&text)?;
        Ok(new_float_array(env, &embedding)?.into_raw())
    })
}

// ---------------------------------------------------------------------------------------------
// Session

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    options: JObject<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let model = model_ref(model)?;
        let options = session_options(env, &options)?;
        // Keep the audit log (if any) alive past a failing `Session::new`, so that its last
        // reference is dropped under the audit registry's lock.
        let audit = options.audit.clone();
        let session = Session::new(model, options);
        safety::drop_audited(audit);
        let session = session?;
        let cancel = session.cancel_handle();
        let boxed = Box::new(SessionBox {
            session: Mutex::new(session),
            cancel,
        });
        Ok(Box::into_raw(boxed) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    guard(&mut env, (), |_| {
        if handle != 0 {
            // SAFETY: the handle came from `Box::into_raw` in `sessionNew`, and the Java side calls
            // this exactly once, when no other call holds the handle.
            let boxed = unsafe { Box::from_raw(handle as *mut SessionBox) };
            // A session may hold the last reference to a shared audit log.
            safety::drop_audited(boxed);
        }
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionCancel<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    guard(&mut env, (), |_| {
        session_ref(handle)?.cancel.cancel();
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionSaveState<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    path: JString<'l>,
) {
    guard(&mut env, (), |env| {
        let boxed = session_ref(handle)?;
        let path = string_arg(env, &path, "path")?;
        boxed
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .save_state(path)?;
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionLoadState<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    path: JString<'l>,
) -> jint {
    guard(&mut env, 0, |env| {
        let boxed = session_ref(handle)?;
        let path = string_arg(env, &path, "path")?;
        let n = boxed
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .load_state(path)?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionContextSize<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jint {
    guard(&mut env, 0, |_| {
        let session = session_ref(handle)?
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(session.n_ctx() as jint)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionRenderChat<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    messages: JObjectArray<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let boxed = session_ref(handle)?;
        let messages = chat_messages(env, &messages)?;
        let prompt = boxed
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .render_chat(&messages)?;
        Ok(new_string(env, &prompt)?.into_raw())
    })
}

/// What to generate from: exactly one of the three Java arguments is non-null.
enum Input {
    Text(String),
    Tokens(Vec<Token>),
    Chat(Vec<ChatMessage>),
}

/// Generate on a session. `listener` (an `io.llmedge.TokenListener`, may be null) gets each
/// piece; returning false stops generation, and an exception it throws stops generation and
/// is rethrown to the caller unchanged.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionGenerate<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    prompt: JString<'l>,
    tokens: JIntArray<'l>,
    messages: JObjectArray<'l>,
    options: JObject<'l>,
    listener: JObject<'l>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let boxed = session_ref(handle)?;
        let input = if !prompt.is_null() {
            Input::Text(string_arg(env, &prompt, "prompt")?)
        } else if !tokens.is_null() {
            Input::Tokens(int_array_arg(env, &tokens, "tokens")?)
        } else if !messages.is_null() {
            Input::Chat(chat_messages(env, &messages)?)
        } else {
            return Err(Error::NullArgument("prompt").into());
        };
        let options = generate_options(env, &options)?;
        let mut listener_failed: Option<jni::errors::Error> = None;
        let completion = {
            let on_piece = |piece: &str| -> bool {
                if listener.is_null() {
                    return true;
                }
                match call_listener(env, &listener, piece) {
                    Ok(more) => more,
                    Err(e) => {
                        listener_failed = Some(e);
                        false
                    }
                }
            };
            let mut session = boxed.session.lock().unwrap_or_else(PoisonError::into_inner);
            match &input {
                Input::Text(text) => session.generate_with(text.as_str(), &options, on_piece),
                Input::Tokens(tokens) => {
                    session.generate_with(tokens.as_slice(), &options, on_piece)
                }
                Input::Chat(messages) => session.chat_with(messages, &options, on_piece),
            }
        };
        if let Some(e) = listener_failed {
            // The listener's exception is pending; `guard` leaves it for the caller.
            return Err(e.into());
        }
        Ok(new_completion(env, &completion?)?.into_raw())
    })
}

fn call_listener(
    env: &mut JNIEnv<'_>,
    listener: &JObject<'_>,
    piece: &str,
) -> jni::errors::Result<bool> {
    let piece = env.new_string(piece)?;
    let result = env.call_method(
        listener,
        "onToken",
        "(Ljava/lang/String;)Z",
        &[JValue::Object(&piece)],
    );
    // Long generations happen inside one native call: free each piece's local reference now.
    env.delete_local_ref(piece)?;
    result?.z()
}

/// Grammar-constrained JSON under `schema_json`, from a raw prompt or (when `prompt` is null)
/// a conversation.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionGenerateJson<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    prompt: JString<'l>,
    messages: JObjectArray<'l>,
    schema_json: JString<'l>,
    options: JObject<'l>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let boxed = session_ref(handle)?;
        let prompt = optional_string(env, &prompt)?;
        let messages = if prompt.is_none() {
            chat_messages(env, &messages)?
        } else {
            Vec::new()
        };
        let schema = parse_schema(&string_arg(env, &schema_json, "schema")?)?;
        let options = generate_options(env, &options)?;
        let mut session = boxed.session.lock().unwrap_or_else(PoisonError::into_inner);
        let out = match &prompt {
            Some(text) => session.generate_json(text.as_str(), &schema, &options)?,
            None => session.chat_json(&messages, &schema, &options)?,
        };
        drop(session);
        Ok(new_json_completion(env, &out)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionRunTemplate<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    template: jlong,
    variables_json: JString<'l>,
    options: JObject<'l>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let boxed = session_ref(handle)?;
        let template = templates::template_ref(template)?;
        let variables = variables_arg(env, &variables_json)?;
        let options = generate_options(env, &options)?;
        let out = boxed
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run_template(template, &variables, &options)?;
        Ok(new_template_output(env, &out)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionRunDynamic<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    template: jlong,
    request: JString<'l>,
    options: JObject<'l>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let boxed = session_ref(handle)?;
        let template = templates::template_ref(template)?;
        let request = string_arg(env, &request, "request")?;
        let options = generate_options(env, &options)?;
        let out = boxed
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run_dynamic(template, &request, &options)?;
        Ok(new_dynamic_flow_output(env, &out)?.into_raw())
    })
}
