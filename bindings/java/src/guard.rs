//! The boundary between Rust and the JVM: every native method runs inside [`guard`], which
//! turns an llmedge error, a JNI error or a Rust panic into a Java exception instead of
//! letting it unwind into the JVM (undefined behaviour) or abort the process.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::objects::{JThrowable, JValue};
use jni::sys::jlong;
use jni::JNIEnv;
use llmedge::{Error, ErrorCode};

/// The Java class every llmedge error is thrown as.
const EXCEPTION_CLASS: &str = "io/llmedge/LlmedgeException";

/// Why a native method failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// An llmedge error: thrown as `LlmedgeException` with its code.
    Core(Error),
    /// A JNI call failed. When a Java exception is pending (a listener threw, the JVM is out of
    /// memory) that exception is what the caller sees; otherwise an `internal` LlmedgeException.
    Jni(jni::errors::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Self {
        Failure::Jni(e)
    }
}

pub(crate) type JResult<T> = Result<T, Failure>;

/// The body of every `...Free` native method: drop the `Box<T>` behind a non-zero handle,
/// under [`guard`].
///
/// # Safety
/// `handle` is 0 or came from `Box::<T>::into_raw`, and the Java side frees it exactly once,
/// when no other call holds it.
pub(crate) unsafe fn free_handle<T>(env: &mut JNIEnv<'_>, handle: jlong) {
    guard(env, (), |_| {
        if handle != 0 {
            // SAFETY: the caller's contract.
            drop(unsafe { Box::from_raw(handle as *mut T) });
        }
        Ok(())
    })
}

/// Run `body`; on failure or panic throw the matching Java exception and return `fallback`
/// (the JVM ignores a native method's return value while an exception is pending).
pub(crate) fn guard<'local, T>(
    env: &mut JNIEnv<'local>,
    fallback: T,
    body: impl FnOnce(&mut JNIEnv<'local>) -> JResult<T>,
) -> T {
    match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(value)) => value,
        Ok(Err(failure)) => {
            throw(env, failure);
            fallback
        }
        Err(payload) => {
            // A panic may have left a Java exception pending half-way; the panic is the news.
            let _ = env.exception_clear();
            throw(
                env,
                Failure::Core(Error::Panic(panic_message(payload.as_ref()))),
            );
            fallback
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a Rust panic with a non-string payload".to_owned()
    }
}

/// Throw `failure` as a Java exception, unless one is already pending (it takes precedence:
/// it is the listener's own exception, or a JVM error such as OutOfMemoryError).
fn throw(env: &mut JNIEnv<'_>, failure: Failure) {
    if env.exception_check().unwrap_or(false) {
        return;
    }
    let (code, message) = match failure {
        Failure::Core(e) => (e.code().as_i32(), e.to_string()),
        Failure::Jni(e) => (
            ErrorCode::Internal.as_i32(),
            format!("JNI call failed: {e}"),
        ),
    };
    if throw_llmedge(env, code, &message).is_err() {
        // The exception class could not be built (not on the class path?): still never crash.
        let _ = env.exception_clear();
        let _ = env.throw_new(
            "java/lang/IllegalStateException",
            format!("llmedge error {code}: {message}"),
        );
    }
}

fn throw_llmedge(env: &mut JNIEnv<'_>, code: i32, message: &str) -> jni::errors::Result<()> {
    let message = env.new_string(message)?;
    let exception = env.new_object(
        EXCEPTION_CLASS,
        "(ILjava/lang/String;)V",
        &[JValue::Int(code), JValue::Object(&message)],
    )?;
    env.throw(JThrowable::from(exception))
}
