//! `io.llmedge.Router` and `io.llmedge.RouteClassifier`: core's routing rules and the
//! classifier stage's model. A router is a `Box<Router>` (immutable, `Sync`), a classifier a
//! `Box<RouteClassifier>` (its session behind a mutex, `Sync`), each owned by a Java
//! `NativeResource`.

use jni::objects::{JClass, JString};
use jni::sys::{jlong, jstring};
use jni::JNIEnv;
use llmedge::router::{RouteClassifier, RouteQuery, Router};
use llmedge::Error;

use crate::convert::{new_string, optional_string, string_arg, to_json};
use crate::guard::{free_handle, guard, JResult};
use crate::model_ref;

fn router_ref<'a>(handle: jlong) -> JResult<&'a Router> {
    if handle == 0 {
        return Err(Error::Closed("router").into());
    }
    // SAFETY: a non-zero router handle is a `Box<Router>` pointer made by `routerFromToml` or
    // `routerFromFile`, freed once by `routerFree` after every call holding it has returned.
    Ok(unsafe { &*(handle as *const Router) })
}

fn classifier_ref<'a>(handle: jlong) -> JResult<Option<&'a RouteClassifier>> {
    if handle == 0 {
        return Ok(None);
    }
    // SAFETY: a non-zero classifier handle is a `Box<RouteClassifier>` pointer made by
    // `routeClassifierNew`, freed once by `routeClassifierFree` after the last call using it.
    Ok(Some(unsafe { &*(handle as *const RouteClassifier) }))
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_routerFromToml<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    toml: JString<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let router = Router::from_toml_str(&string_arg(env, &toml, "toml")?)?;
        Ok(Box::into_raw(Box::new(router)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_routerFromFile<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let router = Router::from_file(string_arg(env, &path, "path")?)?;
        Ok(Box::into_raw(Box::new(router)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_routerFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: from `Box::into_raw` above; the Java side frees it exactly once, when no
    // other call holds it.
    unsafe { free_handle::<Router>(&mut env, handle) }
}

/// The decision as JSON: `{"route", "model", "adapters", "rule", "matched"}`. `classifier` is
/// 0 for none.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_routerRoute<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    classifier: jlong,
    text: JString<'l>,
    model: JString<'l>,
    tenant: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let text = string_arg(env, &text, "text")?;
        let model = optional_string(env, &model)?;
        let tenant = optional_string(env, &tenant)?.unwrap_or_default();
        let query = RouteQuery {
            model: model.as_deref(),
            tenant: &tenant,
            text: &text,
        };
        let decision = router_ref(handle)?.route_with(&query, classifier_ref(classifier)?)?;
        Ok(new_string(env, &to_json(&decision)?)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_routeClassifierNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
) -> jlong {
    guard(&mut env, 0, |_| {
        let classifier = RouteClassifier::new(model_ref(model)?)?;
        Ok(Box::into_raw(Box::new(classifier)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_routeClassifierFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: from `Box::into_raw` above; the Java side frees it exactly once, when no
    // other call holds it.
    unsafe { free_handle::<RouteClassifier>(&mut env, handle) }
}
