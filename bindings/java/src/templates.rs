//! Prompt templates and template libraries: `io.llmedge.PromptTemplate` and
//! `io.llmedge.TemplateLibrary`. A template is a `Box<PromptTemplate>` handle, a library a
//! `Box<Mutex<TemplateLibrary>>` (it can grow while other threads read it).

use std::sync::{Mutex, PoisonError};

use jni::objects::{JClass, JObjectArray, JString};
use jni::sys::{jboolean, jint, jlong, jobjectArray, jstring, JNI_TRUE};
use jni::JNIEnv;
use llmedge::{Error, PromptTemplate, TemplateFormat, TemplateLibrary};

use crate::convert::{
    new_chat_messages, new_optional_string, new_string, new_string_array, optional_string,
    string_arg, string_array, to_json, variables_arg,
};
use crate::guard::{free_handle, guard, JResult};

pub(crate) fn template_ref<'a>(handle: jlong) -> JResult<&'a PromptTemplate> {
    if handle == 0 {
        return Err(Error::Closed("prompt template").into());
    }
    // SAFETY: a non-zero template handle is a `Box<PromptTemplate>` pointer made by
    // `templateNew`, `templateFromToml` or `libraryGet`. The Java side frees it once
    // (`templateFree`), only after every call holding it has returned; templates are never
    // mutated after creation, so shared references from several threads are fine.
    Ok(unsafe { &*(handle as *const PromptTemplate) })
}

fn library_ref<'a>(handle: jlong) -> JResult<&'a Mutex<TemplateLibrary>> {
    if handle == 0 {
        return Err(Error::Closed("template library").into());
    }
    // SAFETY: a non-zero library handle is a `Box<Mutex<TemplateLibrary>>` pointer made by
    // `libraryNew`, freed once by `libraryFree` after the last call holding it has returned.
    Ok(unsafe { &*(handle as *const Mutex<TemplateLibrary>) })
}

fn into_handle(template: PromptTemplate) -> jlong {
    Box::into_raw(Box::new(template)) as jlong
}

/// A template from the Java builder's parts (`format`: 0 f-string, 1 Jinja).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    name: JString<'l>,
    template: JString<'l>,
    format: jint,
    system: JString<'l>,
    defaults_json: JString<'l>,
    output_schema_json: JString<'l>,
    answer_prefixes: JObjectArray<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let name = string_arg(env, &name, "name")?;
        let text = string_arg(env, &template, "template")?;
        let mut t = match format {
            0 => PromptTemplate::new(name, text)?,
            1 => PromptTemplate::jinja(name, text)?,
            other => {
                return Err(
                    Error::InvalidArgument(format!("unknown template format {other}")).into(),
                )
            }
        };
        if let Some(system) = optional_string(env, &system)? {
            t = t.with_system(system)?;
        }
        for (key, value) in variables_arg(env, &defaults_json)? {
            t = t.with_default(key, value);
        }
        if let Some(schema) = optional_string(env, &output_schema_json)? {
            let schema = serde_json::from_str(&schema).map_err(|e| {
                Error::Template(format!(
                    "template {:?}: output_schema is not JSON: {e}",
                    t.name
                ))
            })?;
            t = t.with_output_schema(schema);
        }
        if !answer_prefixes.is_null() {
            t.answer_prefixes = string_array(env, &answer_prefixes, "answer prefix")?;
        }
        Ok(into_handle(t))
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateFromToml<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    text: JString<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let text = string_arg(env, &text, "text")?;
        Ok(into_handle(PromptTemplate::from_toml_str(&text, "<toml>")?))
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle came from `Box::into_raw` (see `template_ref`), and the Java
    // side calls this exactly once, when no other call holds the handle.
    unsafe { free_handle::<PromptTemplate>(&mut env, handle) }
}

/// Every variable (or only the required ones), in order of first use.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateVariables<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    required_only: jboolean,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let t = template_ref(handle)?;
        let names = if required_only == JNI_TRUE {
            t.required_variables()
        } else {
            t.variables().to_vec()
        };
        Ok(new_string_array(env, &names)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateRender<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    variables_json: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let t = template_ref(handle)?;
        let vars = variables_arg(env, &variables_json)?;
        let text = t.render(&vars)?;
        Ok(new_string(env, &text)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateMessages<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    variables_json: JString<'l>,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let t = template_ref(handle)?;
        let vars = variables_arg(env, &variables_json)?;
        let messages = t.messages(&vars)?;
        Ok(new_chat_messages(env, &messages)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateExtractAnswer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    text: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let t = template_ref(handle)?;
        let text = string_arg(env, &text, "text")?;
        let answer = t.extract_answer(&text);
        Ok(new_optional_string(env, answer.as_deref())?.into_raw())
    })
}

/// One property of a template: 0 name, 1 description, 2 format (`fstring`/`jinja`),
/// 3 system prompt, 4 template text, 5 output schema (JSON), 6 defaults (JSON), 7 the whole
/// template (JSON). Absent values are null.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateField<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    field: jint,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let t = template_ref(handle)?;
        let value: Option<String> = match field {
            0 => Some(t.name.clone()),
            1 => Some(t.description.clone()),
            2 => Some(
                match t.format {
                    TemplateFormat::Fstring => "fstring",
                    TemplateFormat::Jinja => "jinja",
                }
                .to_owned(),
            ),
            3 => t.system.clone(),
            4 => Some(t.template.clone()),
            5 => t.output_schema.as_ref().map(to_json).transpose()?,
            6 => Some(to_json(&t.defaults)?),
            7 => Some(to_json(t)?),
            other => {
                return Err(
                    Error::InvalidArgument(format!("unknown template field {other}")).into(),
                )
            }
        };
        Ok(new_optional_string(env, value.as_deref())?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_templateAnswerPrefixes<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let t = template_ref(handle)?;
        Ok(new_string_array(env, &t.answer_prefixes)?.into_raw())
    })
}

/// A library: the built-in templates, or empty.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_libraryNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    builtin: jboolean,
) -> jlong {
    guard(&mut env, 0, |_| {
        let lib = if builtin == JNI_TRUE {
            TemplateLibrary::builtin()
        } else {
            TemplateLibrary::new()
        };
        Ok(Box::into_raw(Box::new(Mutex::new(lib))) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_libraryFree<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    // SAFETY: the handle came from `Box::into_raw` in `libraryNew`, and the Java side
    // calls this exactly once, when no other call holds the handle.
    unsafe { free_handle::<Mutex<TemplateLibrary>>(&mut env, handle) }
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_libraryAddDir<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    dir: JString<'l>,
) {
    guard(&mut env, (), |env| {
        let lib = library_ref(handle)?;
        let dir = string_arg(env, &dir, "dir")?;
        let mut lib = lib.lock().unwrap_or_else(PoisonError::into_inner);
        // Load into a copy so a failing file leaves the library as it was.
        let mut updated = lib.clone();
        updated.add_dir(&dir)?;
        *lib = updated;
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_libraryInsert<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    template: jlong,
) {
    guard(&mut env, (), |_| {
        let lib = library_ref(handle)?;
        let t = template_ref(template)?.clone();
        lib.lock().unwrap_or_else(PoisonError::into_inner).insert(t);
        Ok(())
    })
}

/// A copy of the named template as a new template handle.
#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_libraryGet<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    name: JString<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let lib = library_ref(handle)?;
        let name = string_arg(env, &name, "name")?;
        let t = lib
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)?
            .clone();
        Ok(into_handle(t))
    })
}

#[no_mangle]
pub extern "system" fn Java_io_llmedge_NativeBridge_libraryNames<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let names = library_ref(handle)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .names();
        Ok(new_string_array(env, &names)?.into_raw())
    })
}
