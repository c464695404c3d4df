//! LoRA adapters and the model tools: `io.llmedge.LoraAdapter`, `Model.perplexity` and
//! `io.llmedge.Tools` (merge, PEFT import, quantize). Reports cross as JSON strings.

use std::path::PathBuf;

use jni::objects::{JClass, JFloatArray, JObject, JObjectArray, JString};
use jni::sys::{jboolean, jint, jlong, jobjectArray, jstring, JNI_TRUE};
use jni::JNIEnv;
use llmedge::lora_import::{import_peft, ImportOptions};
use llmedge::lora_merge::{merge_lora, MergeOptions};
use llmedge::quantize::{quantize, FileType, QuantizeOptions};
use llmedge::{AdapterSet, Error, LoraAdapter};

use crate::convert::{
    new_string, new_string_array, optional_string, string_arg, string_array, to_json,
};
use crate::guard::{free_handle, guard, JResult};
use crate::model_ref;

fn lora_ref<'a>(handle: jlong) -> JResult<&'a LoraAdapter> {
    if handle == 0 {
        return Err(Error::Closed("LoRA adapter").into());
    }
    // SAFETY: a non-zero adapter handle is a `Box<LoraAdapter>` pointer made by
    // `modelLoadLora`. The Java side frees it once (`loraFree`), only after every call holding
    // it has returned. `LoraAdapter` is `Sync`.
    Ok(unsafe { &*(handle as *const LoraAdapter) })
}

/// The core adapter behind a Java `io.llmedge.LoraAdapter`, taken under the object's
/// `acquire()`/`release()` so it cannot be freed meanwhile (a closed one throws code 60).
fn adapter_of(env: &mut JNIEnv<'_>, obj: &JObject<'_>) -> JResult<LoraAdapter> {
    if obj.is_null() {
        return Err(Error::NullArgument("LoRA adapter").into());
    }
    let handle = env.call_method(obj, "acquire", "()J", &[])?.j()?;
    let adapter = lora_ref(handle).cloned();
    env.call_method(obj, "release", "()V", &[])?;
    adapter
}

/// The adapters of an options object: fields `loras` (`LoraAdapter[]`, null = not set) and
/// `loraScales` (`float[]`, same length).
pub(crate) fn adapters_field(
    env: &mut JNIEnv<'_>,
    obj: &JObject<'_>,
) -> JResult<Option<AdapterSet>> {
    let loras = JObjectArray::from(
        env.get_field(obj, "loras", "[Lio/llmedge/LoraAdapter;")?
            .l()?,
    );
    if loras.is_null() {
        return Ok(None);
    }
    let scales = JFloatArray::from(env.get_field(obj, "loraScales", "[F")?.l()?);
    let len = env.get_array_length(&loras)?;
    if scales.is_null() || env.get_array_length(&scales)? != len {
        return Err(Error::Internal("LoRA arrays differ in length".into()).into());
    }
    let mut values = vec![0f32; len as usize];
    env.get_float_array_region(&scales, 0, &mut values)?;
    let mut set = Vec::with_capacity(len as usize);
    for (i, scale) in values.into_iter().enumerate() {
        let item = env.get_object_array_element(&loras, i as i32)?;
        set.push((adapter_of(env, &item)?, scale));
        env.delete_local_ref(item)?;
    }
    Ok(Some(set))
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelLoadLora<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    path: JString<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let model = model_ref(model)?;
        let path = string_arg(env, &path, "path")?;
        let adapter = model.load_lora(path)?;
        Ok(Box::into_raw(Box::new(adapter)) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_loraFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle came from `Box::into_raw` in `modelLoadLora`, and the Java
    // side calls this exactly once, when no other call holds the handle.
    unsafe { free_handle::<LoraAdapter>(&mut env, handle) }
}

#[no_mangle]
/// `{info JSON, name, path}` of an adapter.
pub extern "system" fn Java_io_llmedge_NativeBridge_loraInfo<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let info = lora_ref(handle)?.info();
        let values = [
            to_json(info)?,
            info.name.clone(),
            info.path.to_string_lossy().into_owned(),
        ];
        Ok(new_string_array(env, &values)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_loraSame<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    a: jlong,
    b: jlong,
) -> jboolean {
    guard(&mut env, 0, |_| {
        Ok((lora_ref(a)? == lora_ref(b)?) as jboolean)
    })
}

/// Perplexity of `text` (JSON report). `options` is a `GenerateOptions` whose adapters are
/// used (null or no adapters = the bare model); `max_chunks` 0 = all.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_modelPerplexity<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    text: JString<'l>,
    n_ctx: jint,
    max_chunks: jint,
    options: JObject<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let model = model_ref(model)?;
        let text = string_arg(env, &text, "text")?;
        let mut eval = llmedge::evaluation::EvalOptions {
            n_ctx: u32::try_from(n_ctx)
                .map_err(|_| Error::InvalidArgument(format!("nCtx must be >= 1, got {n_ctx}")))?,
            max_chunks: usize::try_from(max_chunks).ok().filter(|&n| n > 0),
            ..Default::default()
        };
        if !options.is_null() {
            eval.adapters = adapters_field(env, &options)?.unwrap_or_default();
        }
        let report = llmedge::evaluation::perplexity(model, &text, &eval)?;
        Ok(new_string(env, &to_json(&report)?)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_loraMerge<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    base: JString<'l>,
    paths: JObjectArray<'l>,
    scales: JFloatArray<'l>,
    output: JString<'l>,
    out_type: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let base = PathBuf::from(string_arg(env, &base, "base")?);
        if paths.is_null() || scales.is_null() {
            return Err(Error::NullArgument("adapters").into());
        }
        let paths = string_array(env, &paths, "adapter path")?;
        let mut values = vec![0f32; paths.len()];
        if env.get_array_length(&scales)? as usize != paths.len() {
            return Err(Error::Internal("adapter arrays differ in length".into()).into());
        }
        env.get_float_array_region(&scales, 0, &mut values)?;
        let adapters: Vec<(PathBuf, f32)> =
            paths.into_iter().map(PathBuf::from).zip(values).collect();
        let output = PathBuf::from(string_arg(env, &output, "output")?);
        let options = MergeOptions {
            out_type: optional_string(env, &out_type)?,
        };
        let report = merge_lora(&base, &adapters, &output, &options, |_, _| {})?;
        Ok(new_string(env, &to_json(&report)?)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_loraImport<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    peft_dir: JString<'l>,
    base: JString<'l>,
    output: JString<'l>,
    f16: jboolean,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let peft_dir = PathBuf::from(string_arg(env, &peft_dir, "peftDir")?);
        let mut options = ImportOptions::new(string_arg(env, &base, "base")?);
        let output = PathBuf::from(string_arg(env, &output, "output")?);
        if f16 == JNI_TRUE {
            options.out_type = llmedge::gguf_file::GGML_TYPE_F16;
        }
        let report = import_peft(&peft_dir, &output, &options)?;
        Ok(new_string(env, &to_json(&report)?)?.into_raw())
    })
}

/// Quantize (JSON report). `threads` 0 = all cores; `keep_patterns`/`keep_types` (may be
/// null) are the per-tensor overrides.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_io_llmedge_NativeBridge_quantize<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    input: JString<'l>,
    output: JString<'l>,
    file_type: JString<'l>,
    allow_requantize: jboolean,
    pure: jboolean,
    threads: jint,
    keep_patterns: JObjectArray<'l>,
    keep_types: JObjectArray<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let input = PathBuf::from(string_arg(env, &input, "input")?);
        let output = PathBuf::from(string_arg(env, &output, "output")?);
        let file_type = FileType::parse(&string_arg(env, &file_type, "type")?)?;
        let mut options = QuantizeOptions::new(file_type);
        options.allow_requantize = allow_requantize == JNI_TRUE;
        options.pure = pure == JNI_TRUE;
        if threads < 0 {
            return Err(
                Error::InvalidArgument(format!("threads must be >= 0, got {threads}")).into(),
            );
        }
        if threads > 0 {
            options.threads = threads as u32;
        }
        if !keep_patterns.is_null() && !keep_types.is_null() {
            let patterns = string_array(env, &keep_patterns, "keep pattern")?;
            let types = string_array(env, &keep_types, "keep type")?;
            if patterns.len() != types.len() {
                return Err(Error::Internal("keep arrays differ in length".into()).into());
            }
            options.keep = patterns.into_iter().zip(types).collect();
        }
        let report = quantize(&input, &output, &options, |_| {})?;
        Ok(new_string(env, &to_json(&report)?)?.into_raw())
    })
}

/// `llmedge::model_manifest::verify_manifest` as JSON; `pubkey` may be null (not checked).
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_manifestVerify<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    manifest: JString<'l>,
    pubkey: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let manifest = PathBuf::from(string_arg(env, &manifest, "manifest")?);
        let pubkey = if pubkey.is_null() {
            None
        } else {
            Some(PathBuf::from(string_arg(env, &pubkey, "pubkey")?))
        };
        let report = llmedge::model_manifest::verify_manifest(&manifest, pubkey.as_deref())?;
        Ok(new_string(env, &to_json(&report)?)?.into_raw())
    })
}
