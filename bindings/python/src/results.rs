//! Result objects: `Completion`, `Usage`, `Timings`, `ModelInfo`, and the results of the
//! structured flows (`JsonCompletion`, `TemplateOutput`, `DynamicFlowOutput`).

use llmedge::safety::SafetyReport;
use llmedge::{
    Completion, DynamicFlowOutput, JsonCompletion, ModelInfo, TemplateOutput, Timings, Usage,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::json::to_py_value;

/// Token counts of a request.
#[pyclass(name = "Usage", module = "llmedge", frozen, get_all)]
#[derive(Clone)]
pub struct PyUsage {
    /// Tokens of the prompt (after the chat template and truncation).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Prompt tokens whose KV was reused from an earlier request (part of `prompt_tokens`).
    pub cached_prompt_tokens: u32,
}

#[pymethods]
impl PyUsage {
    /// `prompt_tokens + completion_tokens`.
    #[getter]
    fn total_tokens(&self) -> u32 {
        self.prompt_tokens + self.completion_tokens
    }

    /// The fields as a dict (OpenAI's `usage` shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("prompt_tokens", self.prompt_tokens)?;
        d.set_item("completion_tokens", self.completion_tokens)?;
        d.set_item("total_tokens", self.total_tokens())?;
        d.set_item("cached_prompt_tokens", self.cached_prompt_tokens)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Usage(prompt_tokens={}, completion_tokens={}, cached_prompt_tokens={})",
            self.prompt_tokens, self.completion_tokens, self.cached_prompt_tokens
        )
    }
}

impl From<Usage> for PyUsage {
    fn from(u: Usage) -> Self {
        PyUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_prompt_tokens: u.cached_prompt_tokens,
        }
    }
}

/// Where the time of a request went (milliseconds and tokens per second).
#[pyclass(name = "Timings", module = "llmedge", frozen, get_all)]
#[derive(Clone)]
pub struct PyTimings {
    /// From the call to the first generated token.
    pub time_to_first_token_ms: f64,
    /// Evaluating the prompt.
    pub prompt_ms: f64,
    /// From the first generated token to the last.
    pub generation_ms: f64,
    /// Prompt evaluation speed.
    pub prompt_tokens_per_second: f64,
    /// Decode speed: tokens after the first, over `generation_ms`.
    pub generation_tokens_per_second: f64,
}

#[pymethods]
impl PyTimings {
    /// The fields as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("time_to_first_token_ms", self.time_to_first_token_ms)?;
        d.set_item("prompt_ms", self.prompt_ms)?;
        d.set_item("generation_ms", self.generation_ms)?;
        d.set_item("prompt_tokens_per_second", self.prompt_tokens_per_second)?;
        d.set_item(
            "generation_tokens_per_second",
            self.generation_tokens_per_second,
        )?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Timings(time_to_first_token_ms={:.1}, prompt_ms={:.1}, generation_ms={:.1}, \
             prompt_tokens_per_second={:.1}, generation_tokens_per_second={:.1})",
            self.time_to_first_token_ms,
            self.prompt_ms,
            self.generation_ms,
            self.prompt_tokens_per_second,
            self.generation_tokens_per_second
        )
    }
}

impl From<Timings> for PyTimings {
    fn from(t: Timings) -> Self {
        PyTimings {
            time_to_first_token_ms: t.time_to_first_token_ms,
            prompt_ms: t.prompt_ms,
            generation_ms: t.generation_ms,
            prompt_tokens_per_second: t.prompt_tokens_per_second,
            generation_tokens_per_second: t.generation_tokens_per_second,
        }
    }
}

/// The result of a finished generation. `str(completion)` is its text.
#[pyclass(name = "Completion", module = "llmedge", frozen)]
#[derive(Clone)]
pub struct PyCompletion {
    /// The generated text (stop strings excluded; the refusal message when the safety policy
    /// blocked the request).
    #[pyo3(get)]
    pub text: String,
    /// The generated token ids.
    #[pyo3(get)]
    pub tokens: Vec<i32>,
    /// Why generation ended: `"stop"`, `"length"`, `"cancelled"` or `"content_filter"` (the
    /// safety policy refused the input or stopped the output).
    #[pyo3(get)]
    pub finish_reason: &'static str,
    /// Token counts.
    #[pyo3(get)]
    pub usage: PyUsage,
    /// Where the time went.
    #[pyo3(get)]
    pub timings: PyTimings,
    /// The request's id (the `request_id=` given, or a generated one), as in the audit log.
    #[pyo3(get)]
    pub request_id: String,
    /// Boxed: most completions are small next to a safety report.
    safety: Option<Box<SafetyReport>>,
}

#[pymethods]
impl PyCompletion {
    /// The safety layer's verdicts and redaction counts (`input_verdict`, `output_verdict`,
    /// `categories`, `redactions`), or `None` when the model's safety policy is off.
    #[getter]
    fn safety<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.safety)
    }

    /// The fields as a dict (the shape of `llmedge run --json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("text", &self.text)?;
        d.set_item("tokens", &self.tokens)?;
        d.set_item("finish_reason", self.finish_reason)?;
        d.set_item("usage", self.usage.to_dict(py)?)?;
        d.set_item("timings", self.timings.to_dict(py)?)?;
        d.set_item("request_id", &self.request_id)?;
        d.set_item("safety", self.safety(py)?)?;
        Ok(d)
    }

    fn __str__(&self) -> &str {
        &self.text
    }

    fn __repr__(&self) -> String {
        format!(
            "Completion(text={:?}, finish_reason={:?}, usage={})",
            self.text,
            self.finish_reason,
            self.usage.__repr__()
        )
    }
}

impl From<Completion> for PyCompletion {
    fn from(c: Completion) -> Self {
        PyCompletion {
            text: c.text,
            tokens: c.tokens,
            finish_reason: c.finish_reason.as_str(),
            usage: c.usage.into(),
            timings: c.timings.into(),
            request_id: c.request_id,
            safety: c.safety.map(Box::new),
        }
    }
}

/// The result of `complete_json`/`chat_complete_json`: the parsed JSON and the completion
/// that produced it.
#[pyclass(name = "JsonCompletion", module = "llmedge", frozen)]
pub struct PyJsonCompletion {
    inner: JsonCompletion,
}

#[pymethods]
impl PyJsonCompletion {
    /// The parsed output (a dict, list, str, number, bool or None); it follows the schema.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.value)
    }

    /// The generation (its text is the JSON).
    #[getter]
    fn completion(&self) -> PyCompletion {
        self.inner.completion.clone().into()
    }

    /// The fields as a dict (`value`, `completion`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!("JsonCompletion(value={})", self.inner.value)
    }
}

impl From<JsonCompletion> for PyJsonCompletion {
    fn from(inner: JsonCompletion) -> Self {
        PyJsonCompletion { inner }
    }
}

/// One run of a prompt template (`Model.run_template`).
#[pyclass(name = "TemplateOutput", module = "llmedge", frozen)]
#[derive(Clone)]
pub struct PyTemplateOutput {
    inner: TemplateOutput,
}

#[pymethods]
impl PyTemplateOutput {
    /// The template's name.
    #[getter]
    fn template(&self) -> &str {
        &self.inner.template
    }

    /// The conversation sent (system prompt, few-shot turns, the request) as
    /// `[{"role": ..., "content": ...}]`.
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.messages)
    }

    /// The prompt after the chat template.
    #[getter]
    fn prompt(&self) -> &str {
        &self.inner.prompt
    }

    /// The generated text.
    #[getter]
    fn text(&self) -> &str {
        &self.inner.completion.text
    }

    /// For chain-of-thought templates, the text after the final answer line (`Answer:`,
    /// `答案：`); `None` otherwise or when the reply has no such line.
    #[getter]
    fn answer(&self) -> Option<&str> {
        self.inner.answer.as_deref()
    }

    /// For templates with an output schema, the parsed JSON (it follows the schema); else
    /// `None`.
    #[getter]
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.json)
    }

    /// The full generation result (finish reason, request id, safety report, timings).
    #[getter]
    fn completion(&self) -> PyCompletion {
        self.inner.completion.clone().into()
    }

    /// Token counts of the generation.
    #[getter]
    fn usage(&self) -> PyUsage {
        self.inner.completion.usage.into()
    }

    /// The fields as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner)
    }

    fn __str__(&self) -> &str {
        &self.inner.completion.text
    }

    fn __repr__(&self) -> String {
        format!(
            "TemplateOutput(template={:?}, text={:?}, answer={:?})",
            self.inner.template, self.inner.completion.text, self.inner.answer
        )
    }
}

impl From<TemplateOutput> for PyTemplateOutput {
    fn from(inner: TemplateOutput) -> Self {
        PyTemplateOutput { inner }
    }
}

/// Both stages of a dynamic prompt flow (`Model.run_dynamic`): the variables the model
/// extracted from the request, and the answer to the filled template.
#[pyclass(name = "DynamicFlowOutput", module = "llmedge", frozen)]
pub struct PyDynamicFlowOutput {
    inner: DynamicFlowOutput,
}

#[pymethods]
impl PyDynamicFlowOutput {
    /// Stage 1: the template's variables, as the model filled them.
    #[getter]
    fn variables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.variables)
    }

    /// Stage 1's prompt.
    #[getter]
    fn fill_prompt(&self) -> &str {
        &self.inner.fill_prompt
    }

    /// Stage 1's generation (its text is the variables' JSON).
    #[getter]
    fn fill(&self) -> PyCompletion {
        self.inner.fill.clone().into()
    }

    /// Stage 2: the filled template, answered.
    #[getter]
    fn answer(&self) -> PyTemplateOutput {
        self.inner.answer.clone().into()
    }

    /// The fields as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "DynamicFlowOutput(variables={}, answer={:?})",
            serde_json::Value::Object(self.inner.variables.clone()),
            self.inner.answer.completion.text
        )
    }
}

impl From<DynamicFlowOutput> for PyDynamicFlowOutput {
    fn from(inner: DynamicFlowOutput) -> Self {
        PyDynamicFlowOutput { inner }
    }
}

/// What a model is, read from its GGUF metadata.
#[pyclass(name = "ModelInfo", module = "llmedge", frozen, get_all)]
#[derive(Clone)]
pub struct PyModelInfo {
    /// The model file.
    pub path: String,
    /// `general.architecture`, e.g. `"llama"`.
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    /// Number of parameters.
    pub n_params: u64,
    /// Size of the tensors in bytes.
    pub size_bytes: u64,
    /// Context length the model was trained with.
    pub n_ctx_train: u32,
    /// Embedding width.
    pub n_embd: u32,
    /// Number of layers.
    pub n_layer: u32,
    /// Vocabulary size.
    pub n_vocab: u32,
    /// The file's quantization, e.g. `"Q4_1"`.
    pub quantization: String,
    /// The Jinja chat template embedded in the file, if any.
    pub chat_template: Option<String>,
    /// SHA-256 of the file, when the model was loaded with `compute_sha256=True`.
    pub sha256: Option<String>,
}

#[pymethods]
impl PyModelInfo {
    /// The fields as a dict (the shape of `llmedge info --json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("path", &self.path)?;
        d.set_item("architecture", &self.architecture)?;
        d.set_item("name", &self.name)?;
        d.set_item("n_params", self.n_params)?;
        d.set_item("size_bytes", self.size_bytes)?;
        d.set_item("n_ctx_train", self.n_ctx_train)?;
        d.set_item("n_embd", self.n_embd)?;
        d.set_item("n_layer", self.n_layer)?;
        d.set_item("n_vocab", self.n_vocab)?;
        d.set_item("quantization", &self.quantization)?;
        d.set_item("chat_template", &self.chat_template)?;
        d.set_item("sha256", &self.sha256)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "ModelInfo(path={:?}, architecture={:?}, name={:?}, n_params={}, quantization={:?})",
            self.path, self.architecture, self.name, self.n_params, self.quantization
        )
    }
}

impl From<&ModelInfo> for PyModelInfo {
    fn from(i: &ModelInfo) -> Self {
        PyModelInfo {
            path: i.path.to_string_lossy().into_owned(),
            architecture: i.architecture.clone(),
            name: i.name.clone(),
            n_params: i.n_params,
            size_bytes: i.size_bytes,
            n_ctx_train: i.n_ctx_train,
            n_embd: i.n_embd,
            n_layer: i.n_layer,
            n_vocab: i.n_vocab,
            quantization: i.quantization.clone(),
            chat_template: i.chat_template.clone(),
            sha256: i.sha256.clone(),
        }
    }
}
