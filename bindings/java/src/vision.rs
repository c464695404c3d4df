//! Vision: `io.llmedge.Image`, `Model.loadMmproj`, images on `ChatMessage`s and
//! `Session.generateWithImages`. An image handle is a `Box<Image>` (immutable, `Sync`).

use std::sync::PoisonError;

use jni::objects::{JByteArray, JClass, JDoubleArray, JObject, JObjectArray, JString};
use jni::sys::{jint, jintArray, jlong, jobject, jstring};
use jni::JNIEnv;
use llmedge::{Error, Image, ImageOptions, Prompt, Window, MEDIA_MARKER};

use crate::convert::{generate_options, new_completion, new_string, string_arg};
use crate::guard::{free_handle, guard, JResult};
use crate::{call_listener, model_ref, session_ref};

fn image_ref<'a>(handle: jlong) -> JResult<&'a Image> {
    if handle == 0 {
        return Err(Error::Closed("image").into());
    }
    // SAFETY: a non-zero image handle is a `Box<Image>` pointer made by `imageOpen` or
    // `imageFromBytes`; the Java side frees it once (`imageFree`), after every call holding it
    // has returned (NativeResource's acquire/release). `Image` is `Sync`.
    Ok(unsafe { &*(handle as *const Image) })
}

/// The core image behind an `io.llmedge.Image`, taken under its `acquire()`/`release()`.
pub(crate) fn image_of(env: &mut JNIEnv<'_>, obj: &JObject<'_>) -> JResult<Image> {
    if obj.is_null() {
        return Err(Error::NullArgument("image").into());
    }
    let handle = env.call_method(obj, "acquire", "()J", &[])?.j()?;
    let image = image_ref(handle).cloned();
    env.call_method(obj, "release", "()V", &[])?;
    image
}

/// An `Image[]` (null = none).
pub(crate) fn images_of(env: &mut JNIEnv<'_>, array: &JObjectArray<'_>) -> JResult<Vec<Image>> {
    if array.is_null() {
        return Ok(Vec::new());
    }
    let len = env.get_array_length(array)?;
    let mut out = Vec::with_capacity(len as usize);
    for i in 0..len {
        let item = env.get_object_array_element(array, i)?;
        out.push(image_of(env, &item)?);
        env.delete_local_ref(item)?;
    }
    Ok(out)
}

fn options(
    env: &mut JNIEnv<'_>,
    max_bytes: jlong,
    max_side: jint,
    max_pixels: jlong,
    window: &JDoubleArray<'_>,
    frame: jint,
) -> JResult<ImageOptions> {
    let mut o = ImageOptions::default();
    if max_bytes > 0 {
        o.max_bytes = max_bytes as u64;
    }
    if max_side > 0 {
        o.max_side = max_side as u32;
    }
    if max_pixels > 0 {
        o.max_pixels = max_pixels as u64;
    }
    if !window.is_null() {
        let mut cw = [0f64; 2];
        if env.get_array_length(window)? != 2 {
            return Err(Error::InvalidArgument("window is {center, width}".into()).into());
        }
        env.get_double_array_region(window, 0, &mut cw)?;
        o.window = Some(Window {
            center: cw[0],
            width: cw[1],
        });
    }
    if frame < 0 {
        return Err(Error::InvalidArgument(format!("DICOM frame {frame} is negative")).into());
    }
    o.frame = frame as u32;
    Ok(o)
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelLoadMmproj<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    path: JString<'l>,
) {
    guard(&mut env, (), |env| {
        let model = model_ref(model)?;
        let path = string_arg(env, &path, "path")?;
        model.load_mmproj(path)?;
        Ok(())
    })
}

/// `{"info", "stats"}` of the model's projector, or null without one.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelVisionStats<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let model = model_ref(model)?;
        match model.projector() {
            None => Ok(std::ptr::null_mut()),
            Some(p) => {
                let json = serde_json::json!({"info": p.info(), "stats": p.stats()}).to_string();
                Ok(new_string(env, &json)?.into_raw())
            }
        }
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_io_llmedge_NativeBridge_imageOpen<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
    max_bytes: jlong,
    max_side: jint,
    max_pixels: jlong,
    window: JDoubleArray<'l>,
    frame: jint,
) -> jlong {
    guard(&mut env, 0, |env| {
        let path = string_arg(env, &path, "path")?;
        let o = options(env, max_bytes, max_side, max_pixels, &window, frame)?;
        let image = Image::open_with(path, &o)?;
        Ok(Box::into_raw(Box::new(image)) as jlong)
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_io_llmedge_NativeBridge_imageFromBytes<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    data: JByteArray<'l>,
    max_bytes: jlong,
    max_side: jint,
    max_pixels: jlong,
    window: JDoubleArray<'l>,
    frame: jint,
) -> jlong {
    guard(&mut env, 0, |env| {
        if data.is_null() {
            return Err(Error::NullArgument("data").into());
        }
        let bytes = env.convert_byte_array(&data)?;
        let o = options(env, max_bytes, max_side, max_pixels, &window, frame)?;
        let image = Image::from_bytes_with(&bytes, &o)?;
        Ok(Box::into_raw(Box::new(image)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_imageFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle is a `Box<Image>` pointer from `imageOpen`/`imageFromBytes`,
    // freed exactly once by NativeResource after its last call.
    unsafe { free_handle::<Image>(&mut env, handle) }
}

/// `{width, height}` of an image.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_imageSize<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jintArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let image = image_ref(handle)?;
        let array = env.new_int_array(2)?;
        env.set_int_array_region(&array, 0, &[image.width() as i32, image.height() as i32])?;
        Ok(array.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_imageSha256<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let image = image_ref(handle)?;
        Ok(new_string(env, image.sha256())?.into_raw())
    })
}

/// A raw prompt with images (one marker per image, or none: then they go first).
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_sessionGenerateWithImages<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    prompt: JString<'l>,
    images: JObjectArray<'l>,
    options: JObject<'l>,
    listener: JObject<'l>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let boxed = session_ref(handle)?;
        let prompt = string_arg(env, &prompt, "prompt")?;
        if images.is_null() {
            return Err(Error::NullArgument("images").into());
        }
        let images = images_of(env, &images)?;
        let text = if images.is_empty() || prompt.contains(MEDIA_MARKER) {
            prompt
        } else {
            MEDIA_MARKER.repeat(images.len()) + &prompt
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
            session.generate_with(
                Prompt::WithImages {
                    text: &text,
                    images: &images,
                },
                &options,
                on_piece,
            )
        };
        if let Some(e) = listener_failed {
            return Err(e.into());
        }
        Ok(new_completion(env, &completion?)?.into_raw())
    })
}
