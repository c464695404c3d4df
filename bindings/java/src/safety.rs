//! The safety layer and the audit log: `io.llmedge.Safety`, `io.llmedge.Audit` and the
//! session options that turn them on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use jni::objects::{JClass, JString, JValue};
use jni::sys::{jboolean, jlong, jobject, jstring};
use jni::JNIEnv;
use llmedge::audit::{AuditConfig, AuditLog};
use llmedge::safety::{Safety, SafetyPolicy};
use llmedge::Error;

use crate::convert::{new_string, optional_string, string_arg, to_json};
use crate::guard::{free_handle, guard, JResult};

/// A safety layer built from a policy file (code 41 for an invalid policy, 50 when unreadable).
pub(crate) fn safety_from_file(path: &str) -> JResult<Safety> {
    Ok(Safety::new(SafetyPolicy::from_file(path)?)?)
}

/// Audit logs open in this process, by canonical directory. A log directory can be open only
/// once (the core locks it), so every session of this process that names the same directory
/// shares one `AuditLog`; it closes (flushing its anchor) with the last such session.
fn audit_logs() -> MutexGuard<'static, HashMap<PathBuf, Weak<AuditLog>>> {
    static LOGS: OnceLock<Mutex<HashMap<PathBuf, Weak<AuditLog>>>> = OnceLock::new();
    LOGS.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The audit log of `dir`, shared with the other sessions of this process that use it.
pub(crate) fn shared_audit_log(dir: &str) -> JResult<Arc<AuditLog>> {
    let dir = PathBuf::from(dir);
    let audit_error = |e: std::io::Error| Error::Audit {
        path: dir.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(audit_error)?;
    let key = std::fs::canonicalize(&dir).map_err(audit_error)?;
    let mut logs = audit_logs();
    logs.retain(|_, log| log.strong_count() > 0);
    if let Some(log) = logs.get(&key).and_then(Weak::upgrade) {
        return Ok(log);
    }
    let log = Arc::new(AuditLog::open(AuditConfig::new(&key))?);
    logs.insert(key, Arc::downgrade(&log));
    Ok(log)
}

/// Drop `value` (a session, or options holding an audit log) while no other thread can open
/// a log: when it holds the last reference, the log is closed and its directory unlocked
/// before [`shared_audit_log`] could try to open it again.
pub(crate) fn drop_audited<T>(value: T) {
    let _logs = audit_logs();
    drop(value);
}

fn safety_ref<'a>(handle: jlong) -> JResult<&'a Safety> {
    if handle == 0 {
        return Err(Error::Closed("safety").into());
    }
    // SAFETY: a non-zero safety handle is a `Box<Safety>` pointer made by `safetyNew`. The Java
    // side frees it once (`safetyFree`), only after every call holding it has returned.
    // `Safety` is `Sync`.
    Ok(unsafe { &*(handle as *const Safety) })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_safetyNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    policy_path: JString<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let safety = match optional_string(env, &policy_path)? {
            Some(path) => safety_from_file(&path)?,
            None => llmedge::request_guard::default_safety(),
        };
        Ok(Box::into_raw(Box::new(safety)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_safetyFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle came from `Box::into_raw` in `safetyNew`, and the Java side
    // calls this exactly once, when no other call holds the handle.
    unsafe { free_handle::<Safety>(&mut env, handle) }
}

/// The input check (`output` false) or output check of `text`, as JSON.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_safetyCheck<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    text: JString<'l>,
    output: jboolean,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let safety = safety_ref(handle)?;
        let text = string_arg(env, &text, "text")?;
        let json = if output == jni::sys::JNI_TRUE {
            to_json(&safety.check_output(&text))?
        } else {
            to_json(&safety.check_input(&text))?
        };
        Ok(new_string(env, &json)?.into_raw())
    })
}

/// `llmedge::audit::verify` as an `io.llmedge.VerifyReport`.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_auditVerify<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let path = string_arg(env, &path, "path")?;
        let report = llmedge::audit::verify(&path)?;
        let failures = report
            .findings
            .iter()
            .filter(|f| f.kind.is_failure())
            .count();
        let last_hash = new_string(env, &report.last_hash)?;
        let json = new_string(env, &to_json(&report)?)?;
        let text = new_string(env, &report.to_string())?;
        Ok(env
            .new_object(
                "io/llmedge/VerifyReport",
                "(ZJIJLjava/lang/String;JILjava/lang/String;Ljava/lang/String;)V",
                &[
                    JValue::Bool(u8::from(report.ok)),
                    JValue::Long(report.records as i64),
                    JValue::Int(report.files as i32),
                    JValue::Long(report.last_seq as i64),
                    JValue::Object(&last_hash),
                    JValue::Long(report.unanchored as i64),
                    JValue::Int(failures as i32),
                    JValue::Object(&json),
                    JValue::Object(&text),
                ],
            )?
            .into_raw())
    })
}
