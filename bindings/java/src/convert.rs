//! Moving values between Java objects and llmedge's Rust types.
//!
//! The option classes (`ModelOptions`, `SessionOptions`, `GenerateOptions`) are read field by
//! field: their field names and types below are part of the contract with the Java sources in
//! `llmedge/src/main/java/io/llmedge`.

use jni::objects::{JFloatArray, JIntArray, JObject, JObjectArray, JString, JValue};
use jni::JNIEnv;
use llmedge::audit::Surface;
use llmedge::{ChatMessage, Completion, Error, FinishReason, GenerateOptions, ModelInfo, Token};
use llmedge::{DynamicFlowOutput, JsonCompletion, TemplateOutput};
use llmedge::{ModelOptions, OutputConstraint, SessionOptions, Truncation};

use crate::guard::JResult;

/// A non-null Java string argument as Rust text. Java strings are UTF-16, so text that is not
/// valid Unicode (a lone surrogate) is replaced with U+FFFD, as Java's own UTF-8 encoder does.
pub(crate) fn string_arg(
    env: &mut JNIEnv<'_>,
    s: &JString<'_>,
    name: &'static str,
) -> JResult<String> {
    if s.is_null() {
        return Err(Error::NullArgument(name).into());
    }
    Ok(env.get_string(s)?.into())
}

/// A Java string, or `None` for null.
pub(crate) fn optional_string(env: &mut JNIEnv<'_>, s: &JString<'_>) -> JResult<Option<String>> {
    if s.is_null() {
        Ok(None)
    } else {
        Ok(Some(env.get_string(s)?.into()))
    }
}

pub(crate) fn new_string<'local>(env: &mut JNIEnv<'local>, s: &str) -> JResult<JString<'local>> {
    Ok(env.new_string(s)?)
}

pub(crate) fn new_optional_string<'local>(
    env: &mut JNIEnv<'local>,
    s: Option<&str>,
) -> JResult<JObject<'local>> {
    match s {
        Some(s) => Ok(env.new_string(s)?.into()),
        None => Ok(JObject::null()),
    }
}

pub(crate) fn int_array_arg(
    env: &mut JNIEnv<'_>,
    a: &JIntArray<'_>,
    name: &'static str,
) -> JResult<Vec<i32>> {
    if a.is_null() {
        return Err(Error::NullArgument(name).into());
    }
    let len = env.get_array_length(a)?;
    let mut out = vec![0i32; len as usize];
    env.get_int_array_region(a, 0, &mut out)?;
    Ok(out)
}

fn float_array(env: &mut JNIEnv<'_>, a: &JFloatArray<'_>) -> JResult<Vec<f32>> {
    let len = env.get_array_length(a)?;
    let mut out = vec![0f32; len as usize];
    env.get_float_array_region(a, 0, &mut out)?;
    Ok(out)
}

pub(crate) fn new_int_array<'local>(
    env: &mut JNIEnv<'local>,
    values: &[i32],
) -> JResult<JIntArray<'local>> {
    let array = env.new_int_array(len_i32(values.len())?)?;
    env.set_int_array_region(&array, 0, values)?;
    Ok(array)
}

pub(crate) fn new_float_array<'local>(
    env: &mut JNIEnv<'local>,
    values: &[f32],
) -> JResult<JFloatArray<'local>> {
    let array = env.new_float_array(len_i32(values.len())?)?;
    env.set_float_array_region(&array, 0, values)?;
    Ok(array)
}

fn len_i32(len: usize) -> JResult<i32> {
    i32::try_from(len).map_err(|_| {
        Error::InvalidArgument(format!("{len} elements do not fit in a Java array")).into()
    })
}

/// The strings of a `String[]` (null elements are an error).
pub(crate) fn string_array(
    env: &mut JNIEnv<'_>,
    a: &JObjectArray<'_>,
    name: &'static str,
) -> JResult<Vec<String>> {
    let len = env.get_array_length(a)?;
    let mut out = Vec::with_capacity(len as usize);
    for i in 0..len {
        let element = JString::from(env.get_object_array_element(a, i)?);
        out.push(string_arg(env, &element, name)?);
        env.delete_local_ref(element)?;
    }
    Ok(out)
}

pub(crate) fn new_string_array<'local>(
    env: &mut JNIEnv<'local>,
    values: &[String],
) -> JResult<JObjectArray<'local>> {
    let array =
        env.new_object_array(len_i32(values.len())?, "java/lang/String", JObject::null())?;
    for (i, v) in values.iter().enumerate() {
        let s = env.new_string(v)?;
        env.set_object_array_element(&array, i as i32, &s)?;
        env.delete_local_ref(s)?;
    }
    Ok(array)
}

/// A `ChatMessage[]` (fields `role` and `content`).
pub(crate) fn chat_messages(
    env: &mut JNIEnv<'_>,
    a: &JObjectArray<'_>,
) -> JResult<Vec<ChatMessage>> {
    if a.is_null() {
        return Err(Error::NullArgument("messages").into());
    }
    let len = env.get_array_length(a)?;
    let mut out = Vec::with_capacity(len as usize);
    for i in 0..len {
        let message = env.get_object_array_element(a, i)?;
        if message.is_null() {
            return Err(Error::NullArgument("message").into());
        }
        let role = JString::from(env.get_field(&message, "role", "Ljava/lang/String;")?.l()?);
        let content = JString::from(
            env.get_field(&message, "content", "Ljava/lang/String;")?
                .l()?,
        );
        let mut m = ChatMessage::new(
            string_arg(env, &role, "message role")?,
            string_arg(env, &content, "message content")?,
        );
        let images = JObjectArray::from(
            env.get_field(&message, "images", "[Lio/llmedge/Image;")?
                .l()?,
        );
        m.images = crate::vision::images_of(env, &images)?;
        env.delete_local_ref(images)?;
        out.push(m);
        env.delete_local_ref(role)?;
        env.delete_local_ref(content)?;
        env.delete_local_ref(message)?;
    }
    Ok(out)
}

fn int_field(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> JResult<i32> {
    Ok(env.get_field(obj, name, "I")?.i()?)
}

fn float_field(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> JResult<f32> {
    Ok(env.get_field(obj, name, "F")?.f()?)
}

fn bool_field(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> JResult<bool> {
    Ok(env.get_field(obj, name, "Z")?.z()?)
}

/// A `java.lang.Integer` field, `None` when null.
fn boxed_int_field(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> JResult<Option<i32>> {
    let boxed = env.get_field(obj, name, "Ljava/lang/Integer;")?.l()?;
    if boxed.is_null() {
        return Ok(None);
    }
    let value = env.call_method(&boxed, "intValue", "()I", &[])?.i()?;
    env.delete_local_ref(boxed)?;
    Ok(Some(value))
}

/// A `java.lang.Long` field, `None` when null.
fn boxed_long_field(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> JResult<Option<i64>> {
    let boxed = env.get_field(obj, name, "Ljava/lang/Long;")?.l()?;
    if boxed.is_null() {
        return Ok(None);
    }
    let value = env.call_method(&boxed, "longValue", "()J", &[])?.j()?;
    env.delete_local_ref(boxed)?;
    Ok(Some(value))
}

/// An optional count that must not be negative.
fn count_field(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> JResult<Option<u32>> {
    match boxed_int_field(env, obj, name)? {
        None => Ok(None),
        Some(v) => Ok(Some(non_negative(v, name)?)),
    }
}

fn non_negative(v: i32, name: &str) -> JResult<u32> {
    u32::try_from(v)
        .map_err(|_| Error::InvalidArgument(format!("{name} must be >= 0, got {v}")).into())
}

/// `io.llmedge.ModelOptions` (null = defaults).
pub(crate) fn model_options(env: &mut JNIEnv<'_>, obj: &JObject<'_>) -> JResult<ModelOptions> {
    let mut options = ModelOptions::default();
    if obj.is_null() {
        return Ok(options);
    }
    let gpu_layers = int_field(env, obj, "gpuLayers")?;
    options.n_gpu_layers = if gpu_layers == i32::MAX {
        u32::MAX
    } else {
        non_negative(gpu_layers, "gpuLayers")?
    };
    options.use_mmap = bool_field(env, obj, "useMmap")?;
    options.use_mlock = bool_field(env, obj, "useMlock")?;
    if let Some(threads) = count_field(env, obj, "threads")? {
        options.threads = threads;
    }
    options.compute_sha256 = bool_field(env, obj, "computeSha256")?;
    options.max_prompt_tokens = count_field(env, obj, "maxPromptTokens")?;
    options.max_sessions = count_field(env, obj, "maxSessions")?;
    if let Some(manifest) = string_field(env, obj, "manifest")? {
        let pubkey = string_field(env, obj, "pubkey")?;
        let mut policy = llmedge::IntegrityPolicy::from_files(
            std::path::Path::new(&manifest),
            pubkey.as_deref().map(std::path::Path::new),
        )?;
        policy.surface = llmedge::audit::Surface::Java;
        options.integrity = Some(std::sync::Arc::new(policy));
    }
    Ok(options)
}

/// A `String` field of a Java object, `None` when null.
pub(crate) fn string_field(
    env: &mut JNIEnv<'_>,
    obj: &JObject<'_>,
    name: &str,
) -> JResult<Option<String>> {
    let value = JString::from(env.get_field(obj, name, "Ljava/lang/String;")?.l()?);
    let out = optional_string(env, &value)?;
    env.delete_local_ref(value)?;
    Ok(out)
}

/// `io.llmedge.SessionOptions` (null = defaults). Requests are audited as the Java surface.
pub(crate) fn session_options(env: &mut JNIEnv<'_>, obj: &JObject<'_>) -> JResult<SessionOptions> {
    let defaults = SessionOptions {
        surface: Surface::Java,
        ..SessionOptions::default()
    };
    if obj.is_null() {
        return Ok(defaults);
    }
    let chat_template = string_field(env, obj, "chatTemplate")?
        .map(|t| llmedge::ChatTemplate::parse(&t))
        .transpose()?;
    let safety = if bool_field(env, obj, "safetyEnabled")? {
        match string_field(env, obj, "safetyPolicy")? {
            Some(path) => Some(crate::safety::safety_from_file(&path)?),
            None => defaults.safety.clone(),
        }
    } else {
        None
    };
    let audit = match string_field(env, obj, "auditDir")? {
        Some(dir) => Some(crate::safety::shared_audit_log(&dir)?),
        None => None,
    };
    Ok(SessionOptions {
        n_ctx: count_field(env, obj, "contextSize")?,
        n_batch: count_field(env, obj, "batchSize")?,
        n_ubatch: count_field(env, obj, "microBatchSize")?,
        threads: count_field(env, obj, "threads")?,
        threads_batch: count_field(env, obj, "batchThreads")?,
        chat_template,
        safety,
        audit,
        tenant: string_field(env, obj, "tenant")?.unwrap_or(defaults.tenant),
        surface: Surface::Java,
        adapters: crate::lora::adapters_field(env, obj)?.unwrap_or_default(),
        prefix_reuse: bool_field(env, obj, "prefixReuse")?,
    })
}

/// A JSON text given by the caller, parsed; `what` names it in the error.
pub(crate) fn parse_json_arg(text: &str, what: &str) -> JResult<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| Error::InvalidArgument(format!("{what} is not valid JSON: {e}")).into())
}

/// A JSON schema given by the caller. Text that is not JSON is a grammar error (code 33),
/// like a schema that cannot become a grammar.
pub(crate) fn parse_schema(text: &str) -> JResult<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| Error::Grammar(format!("the JSON schema is not valid JSON: {e}")).into())
}

/// Template variables sent by Java as a JSON object (null = none).
pub(crate) fn variables_arg(
    env: &mut JNIEnv<'_>,
    json: &JString<'_>,
) -> JResult<llmedge::Variables> {
    match optional_string(env, json)? {
        None => Ok(llmedge::Variables::new()),
        Some(text) => match parse_json_arg(&text, "the variables")? {
            serde_json::Value::Object(map) => Ok(map),
            other => Err(Error::InvalidArgument(format!(
                "the variables must be a JSON object, got {other}"
            ))
            .into()),
        },
    }
}

/// Compact JSON of a serialisable value.
pub(crate) fn to_json(value: &impl serde::Serialize) -> JResult<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Internal(format!("cannot serialise to JSON: {e}")).into())
}

/// `io.llmedge.GenerateOptions` (null = defaults).
pub(crate) fn generate_options(
    env: &mut JNIEnv<'_>,
    obj: &JObject<'_>,
) -> JResult<GenerateOptions> {
    if obj.is_null() {
        return Ok(GenerateOptions::default());
    }
    let max_tokens = match boxed_int_field(env, obj, "maxTokens")? {
        None => None,
        Some(n) if n < 0 => {
            return Err(Error::InvalidArgument(format!("maxTokens must be >= 1, got {n}")).into())
        }
        Some(n) => Some(n as u32),
    };
    let seed = match boxed_long_field(env, obj, "seed")? {
        None => None,
        Some(s) => Some(u32::try_from(s).map_err(|_| {
            Error::InvalidArgument(format!("seed must be in 0..={}, got {s}", u32::MAX))
        })?),
    };
    let stop_array = JObjectArray::from(env.get_field(obj, "stop", "[Ljava/lang/String;")?.l()?);
    let stop = if stop_array.is_null() {
        Vec::new()
    } else {
        string_array(env, &stop_array, "stop string")?
    };
    let bias_tokens = JIntArray::from(env.get_field(obj, "logitBiasTokens", "[I")?.l()?);
    let bias_values = JFloatArray::from(env.get_field(obj, "logitBiasValues", "[F")?.l()?);
    let logit_bias = if bias_tokens.is_null() || bias_values.is_null() {
        Vec::new()
    } else {
        let tokens: Vec<Token> = int_array_arg(env, &bias_tokens, "logitBiasTokens")?;
        let values = float_array(env, &bias_values)?;
        if tokens.len() != values.len() {
            return Err(Error::Internal("logit bias arrays differ in length".into()).into());
        }
        tokens.into_iter().zip(values).collect()
    };
    let truncation = match int_field(env, obj, "truncation")? {
        0 => Truncation::Error,
        1 => Truncation::DropOldest,
        other => return Err(Error::InvalidArgument(format!("unknown truncation {other}")).into()),
    };
    let constraint = match int_field(env, obj, "constraintKind")? {
        0 => None,
        1 => {
            let text = string_field(env, obj, "constraintText")?
                .ok_or(Error::NullArgument("jsonSchema"))?;
            Some(OutputConstraint::JsonSchema(parse_schema(&text)?))
        }
        2 => {
            let array =
                JObjectArray::from(env.get_field(obj, "choices", "[Ljava/lang/String;")?.l()?);
            if array.is_null() {
                return Err(Error::NullArgument("choices").into());
            }
            Some(OutputConstraint::Choice(string_array(
                env, &array, "choice",
            )?))
        }
        3 => Some(OutputConstraint::Regex(
            string_field(env, obj, "constraintText")?.ok_or(Error::NullArgument("regex"))?,
        )),
        4 => Some(OutputConstraint::Grammar(
            string_field(env, obj, "constraintText")?.ok_or(Error::NullArgument("grammar"))?,
        )),
        other => {
            return Err(Error::InvalidArgument(format!("unknown constraint kind {other}")).into())
        }
    };
    Ok(GenerateOptions {
        max_tokens,
        temperature: float_field(env, obj, "temperature")?,
        top_k: int_field(env, obj, "topK")?,
        top_p: float_field(env, obj, "topP")?,
        min_p: float_field(env, obj, "minP")?,
        repeat_penalty: float_field(env, obj, "repeatPenalty")?,
        frequency_penalty: float_field(env, obj, "frequencyPenalty")?,
        presence_penalty: float_field(env, obj, "presencePenalty")?,
        penalty_last_n: int_field(env, obj, "penaltyLastN")?,
        seed,
        greedy: bool_field(env, obj, "greedy")?,
        stop,
        logit_bias,
        ignore_eos: bool_field(env, obj, "ignoreEos")?,
        truncation,
        constraint,
        request_id: string_field(env, obj, "requestId")?,
        adapters: crate::lora::adapters_field(env, obj)?,
        tenant: string_field(env, obj, "tenant")?,
        route: None,
    })
}

/// Core's defaults, in the order `GenerateOptions.java` checks them against in its tests.
pub(crate) fn generate_defaults() -> [f64; 9] {
    let d = GenerateOptions::default();
    [
        d.max_tokens.map_or(-1.0, f64::from),
        f64::from(d.temperature),
        f64::from(d.top_k),
        f64::from(d.top_p),
        f64::from(d.min_p),
        f64::from(d.repeat_penalty),
        f64::from(d.frequency_penalty),
        f64::from(d.presence_penalty),
        f64::from(d.penalty_last_n),
    ]
}

/// A Java `io.llmedge.Completion`.
pub(crate) fn new_completion<'local>(
    env: &mut JNIEnv<'local>,
    c: &Completion,
) -> JResult<JObject<'local>> {
    let text = new_string(env, &c.text)?;
    let tokens = new_int_array(env, &c.tokens)?;
    // The ordinals of `io.llmedge.FinishReason`.
    let finish = match c.finish_reason {
        FinishReason::Stop => 0,
        FinishReason::Length => 1,
        FinishReason::Cancelled => 2,
        FinishReason::ContentFilter => 3,
    };
    let request_id = new_string(env, &c.request_id)?;
    let safety = match &c.safety {
        Some(report) => JObject::from(new_string(env, &to_json(report)?)?),
        None => JObject::null(),
    };
    let t = &c.timings;
    Ok(env.new_object(
        "io/llmedge/Completion",
        "(Ljava/lang/String;[IIIIIDDDDDLjava/lang/String;Ljava/lang/String;)V",
        &[
            JValue::Object(&text),
            JValue::Object(&tokens),
            JValue::Int(finish),
            JValue::Int(c.usage.prompt_tokens as i32),
            JValue::Int(c.usage.completion_tokens as i32),
            JValue::Int(c.usage.cached_prompt_tokens as i32),
            JValue::Double(t.time_to_first_token_ms),
            JValue::Double(t.prompt_ms),
            JValue::Double(t.generation_ms),
            JValue::Double(t.prompt_tokens_per_second),
            JValue::Double(t.generation_tokens_per_second),
            JValue::Object(&request_id),
            JValue::Object(&safety),
        ],
    )?)
}

/// A Java `io.llmedge.ModelInfo`.
pub(crate) fn new_model_info<'local>(
    env: &mut JNIEnv<'local>,
    info: &ModelInfo,
) -> JResult<JObject<'local>> {
    let path = new_string(env, &info.path.to_string_lossy())?;
    let architecture = new_string(env, &info.architecture)?;
    let name = new_optional_string(env, info.name.as_deref())?;
    let quantization = new_string(env, &info.quantization)?;
    let chat_template = new_optional_string(env, info.chat_template.as_deref())?;
    let sha256 = new_optional_string(env, info.sha256.as_deref())?;
    Ok(env.new_object(
        "io/llmedge/ModelInfo",
        "(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;JJIIIILjava/lang/String;Ljava/lang/String;Ljava/lang/String;)V",
        &[
            JValue::Object(&path),
            JValue::Object(&architecture),
            JValue::Object(&name),
            JValue::Long(info.n_params as i64),
            JValue::Long(info.size_bytes as i64),
            JValue::Int(info.n_ctx_train as i32),
            JValue::Int(info.n_embd as i32),
            JValue::Int(info.n_layer as i32),
            JValue::Int(info.n_vocab as i32),
            JValue::Object(&quantization),
            JValue::Object(&chat_template),
            JValue::Object(&sha256),
        ],
    )?)
}

/// A Java `ChatMessage[]`.
pub(crate) fn new_chat_messages<'local>(
    env: &mut JNIEnv<'local>,
    messages: &[ChatMessage],
) -> JResult<JObjectArray<'local>> {
    let array = env.new_object_array(
        len_i32(messages.len())?,
        "io/llmedge/ChatMessage",
        JObject::null(),
    )?;
    for (i, m) in messages.iter().enumerate() {
        let role = new_string(env, &m.role)?;
        let content = new_string(env, &m.content)?;
        let message = env.new_object(
            "io/llmedge/ChatMessage",
            "(Ljava/lang/String;Ljava/lang/String;)V",
            &[JValue::Object(&role), JValue::Object(&content)],
        )?;
        env.set_object_array_element(&array, i as i32, &message)?;
        env.delete_local_ref(message)?;
        env.delete_local_ref(role)?;
        env.delete_local_ref(content)?;
    }
    Ok(array)
}

/// A Java `io.llmedge.JsonCompletion`.
pub(crate) fn new_json_completion<'local>(
    env: &mut JNIEnv<'local>,
    out: &JsonCompletion,
) -> JResult<JObject<'local>> {
    let json = new_string(env, &to_json(&out.value)?)?;
    let completion = new_completion(env, &out.completion)?;
    Ok(env.new_object(
        "io/llmedge/JsonCompletion",
        "(Ljava/lang/String;Lio/llmedge/Completion;)V",
        &[JValue::Object(&json), JValue::Object(&completion)],
    )?)
}

/// A Java `io.llmedge.TemplateOutput`.
pub(crate) fn new_template_output<'local>(
    env: &mut JNIEnv<'local>,
    out: &TemplateOutput,
) -> JResult<JObject<'local>> {
    let template = new_string(env, &out.template)?;
    let messages = new_chat_messages(env, &out.messages)?;
    let prompt = new_string(env, &out.prompt)?;
    let completion = new_completion(env, &out.completion)?;
    let answer = new_optional_string(env, out.answer.as_deref())?;
    let json = match &out.json {
        Some(value) => JObject::from(new_string(env, &to_json(value)?)?),
        None => JObject::null(),
    };
    Ok(env.new_object(
        "io/llmedge/TemplateOutput",
        "(Ljava/lang/String;[Lio/llmedge/ChatMessage;Ljava/lang/String;Lio/llmedge/Completion;Ljava/lang/String;Ljava/lang/String;)V",
        &[
            JValue::Object(&template),
            JValue::Object(&messages),
            JValue::Object(&prompt),
            JValue::Object(&completion),
            JValue::Object(&answer),
            JValue::Object(&json),
        ],
    )?)
}

/// A Java `io.llmedge.DynamicFlowOutput`.
pub(crate) fn new_dynamic_flow_output<'local>(
    env: &mut JNIEnv<'local>,
    out: &DynamicFlowOutput,
) -> JResult<JObject<'local>> {
    let variables = new_string(env, &to_json(&out.variables)?)?;
    let fill_prompt = new_string(env, &out.fill_prompt)?;
    let fill = new_completion(env, &out.fill)?;
    let answer = new_template_output(env, &out.answer)?;
    Ok(env.new_object(
        "io/llmedge/DynamicFlowOutput",
        "(Ljava/lang/String;Ljava/lang/String;Lio/llmedge/Completion;Lio/llmedge/TemplateOutput;)V",
        &[
            JValue::Object(&variables),
            JValue::Object(&fill_prompt),
            JValue::Object(&fill),
            JValue::Object(&answer),
        ],
    )?)
}
