//! `llmedge.PromptTemplate`, `llmedge.TemplateLibrary` and `llmedge.extract_answer`: thin
//! wrappers of core's prompt templates (parsing, rendering and validation all happen in core).

use std::sync::{Mutex, OnceLock};

use llmedge::prompt_template::{self, FewShotExample};
use llmedge::{PromptTemplate, TemplateFormat, TemplateLibrary, Variables};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::args::{to_string, Args};
use crate::errors::{arg_type, invalid, IntoPy};
use crate::json::{from_py, from_py_or_str, object_from_py, to_py_value};
use crate::slot::lock;

/// Core's built-in library, parsed once (run_template accepts a built-in template's name).
fn builtin() -> &'static TemplateLibrary {
    static BUILTIN: OnceLock<TemplateLibrary> = OnceLock::new();
    BUILTIN.get_or_init(TemplateLibrary::builtin)
}

/// A template argument: a `PromptTemplate`, or the name of a built-in template.
pub fn template_arg(a: &Args<'_>, name: &'static str) -> PyResult<PromptTemplate> {
    let py = a.py();
    let v = a.required(name)?;
    if let Ok(t) = v.cast::<PyPromptTemplate>() {
        return Ok(t.get().inner.clone());
    }
    if v.is_instance_of::<PyString>() {
        let name = to_string(py, a.func(), name, v)?;
        return builtin().get(&name).cloned().py(py);
    }
    Err(a.wrong_type(name, "PromptTemplate or str", v))
}

/// A list of strings (`answer_prefixes`, `prefixes`).
fn string_list(a: &Args<'_>, name: &'static str) -> PyResult<Option<Vec<String>>> {
    let Some(v) = a.opt(name) else {
        return Ok(None);
    };
    if v.is_instance_of::<PyString>()
        || !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>())
    {
        return Err(a.wrong_type(name, "list[str]", v));
    }
    v.try_iter()?
        .map(|s| to_string(a.py(), a.func(), name, &s?))
        .collect::<PyResult<Vec<String>>>()
        .map(Some)
}

/// Template variables from `vars` (a dict, positional) merged with keyword arguments.
fn variables(
    py: Python<'_>,
    func: &'static str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Variables> {
    if args.len() > 1 {
        return Err(arg_type(
            py,
            format!(
                "{func}() takes at most 1 positional argument ({} given)",
                args.len()
            ),
        ));
    }
    let mut vars = match args.iter().next() {
        Some(v) if !v.is_none() => object_from_py(py, func, "vars", &v)?,
        _ => Variables::new(),
    };
    if let Some(kwargs) = kwargs {
        vars.extend(object_from_py(py, func, "variables", kwargs.as_any())?);
    }
    Ok(vars)
}

const TEMPLATE_ARGS: &[&str] = &[
    "name",
    "template",
    "format",
    "system",
    "defaults",
    "output_schema",
    "answer_prefixes",
    "description",
    "examples",
];

/// A named prompt template with variables: `{name}` placeholders (`format="fstring"`, the
/// default; `{{`/`}}` are literal braces) or a Jinja template (`format="jinja"`), an optional
/// system (role) prompt using the same variables, default values, few-shot examples
/// (`[{"input": {...}, "output": "..."}]`), an output JSON schema and, for chain-of-thought
/// templates, the prefixes of the final answer line (`["Answer:", "答案："]`).
///
/// Syntax errors raise `TemplateError`; missing or unknown variables raise
/// `TemplateVariablesError`, listing all of them.
#[pyclass(name = "PromptTemplate", module = "llmedge", frozen)]
pub struct PyPromptTemplate {
    inner: PromptTemplate,
}

impl From<PromptTemplate> for PyPromptTemplate {
    fn from(inner: PromptTemplate) -> Self {
        PyPromptTemplate { inner }
    }
}

#[pymethods]
impl PyPromptTemplate {
    #[new]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(name, template, format='fstring', system=None, defaults=None, output_schema=None, answer_prefixes=None, *, description='', examples=None)"
    )]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyPromptTemplate> {
        let a = Args::parse(py, "PromptTemplate", TEMPLATE_ARGS, 7, args, kwargs)?;
        let name = to_string(py, a.func(), "name", a.required("name")?)?;
        let text = to_string(py, a.func(), "template", a.required("template")?)?;
        let mut t = match a.string("format")?.as_deref() {
            None | Some("fstring") => PromptTemplate::new(name, text),
            Some("jinja") => PromptTemplate::jinja(name, text),
            Some(other) => {
                return Err(invalid(
                    py,
                    format!("PromptTemplate(): format must be 'fstring' or 'jinja', got {other:?}"),
                ))
            }
        }
        .py(py)?;
        if let Some(system) = a.string("system")? {
            t = t.with_system(system).py(py)?;
        }
        if let Some(v) = a.opt("defaults") {
            t.defaults = object_from_py(py, a.func(), "defaults", v)?;
        }
        if let Some(v) = a.opt("output_schema") {
            t = t.with_output_schema(from_py_or_str(py, a.func(), "output_schema", v)?);
        }
        if let Some(prefixes) = string_list(&a, "answer_prefixes")? {
            t.answer_prefixes = prefixes;
        }
        if let Some(description) = a.string("description")? {
            t.description = description;
        }
        if let Some(v) = a.opt("examples") {
            let value = from_py(py, a.func(), "examples", v)?;
            t.examples = serde_json::from_value::<Vec<FewShotExample>>(value).map_err(|e| {
                invalid(
                    py,
                    format!(
                        "PromptTemplate(): examples must be a list of {{\"input\": dict, \"output\": str}}: {e}"
                    ),
                )
            })?;
        }
        Ok(t.into())
    }

    /// Parse a template from TOML (the format of the template library's files: `name`,
    /// `template`, optional `description`, `format`, `system`, `defaults`, `examples`,
    /// `output_schema`, `answer_prefixes`). `origin` names the source in error messages,
    /// which give its line.
    #[staticmethod]
    #[pyo3(signature = (*args, **kwargs), text_signature = "(text, origin='<string>')")]
    fn from_toml(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyPromptTemplate> {
        let a = Args::parse(py, "from_toml", &["text", "origin"], 2, args, kwargs)?;
        let text = to_string(py, a.func(), "text", a.required("text")?)?;
        let origin = a.string("origin")?.unwrap_or_else(|| "<string>".to_owned());
        Ok(PromptTemplate::from_toml_str(&text, &origin).py(py)?.into())
    }

    /// The template's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the template is for.
    #[getter]
    fn description(&self) -> &str {
        &self.inner.description
    }

    /// `"fstring"` or `"jinja"`.
    #[getter]
    fn format(&self) -> &'static str {
        match self.inner.format {
            TemplateFormat::Fstring => "fstring",
            TemplateFormat::Jinja => "jinja",
        }
    }

    /// The system (role) prompt, if any.
    #[getter]
    fn system(&self) -> Option<&str> {
        self.inner.system.as_deref()
    }

    /// The template text.
    #[getter]
    fn template(&self) -> &str {
        &self.inner.template
    }

    /// Every variable the system prompt and template use, in order of first use.
    #[getter]
    fn variables(&self) -> Vec<String> {
        self.inner.variables().to_vec()
    }

    /// The variables a request must give (those without a default).
    #[getter]
    fn required_variables(&self) -> Vec<String> {
        self.inner.required_variables()
    }

    /// Default values of variables.
    #[getter]
    fn defaults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.defaults)
    }

    /// Few-shot examples: `[{"input": {...}, "output": "..."}]`.
    #[getter]
    fn examples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.examples)
    }

    /// The JSON schema the answer follows (a dict), or `None`.
    #[getter]
    fn output_schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.output_schema)
    }

    /// Prefixes of the final answer line of a chain-of-thought reply.
    #[getter]
    fn answer_prefixes(&self) -> Vec<String> {
        self.inner.answer_prefixes.clone()
    }

    /// The user prompt for these variables: `render({"x": 1})`, `render(x=1)` or both
    /// (keywords win). Defaults fill in the rest.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, vars=None, /, **variables)")]
    fn render(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let vars = variables(py, "render", args, kwargs)?;
        self.inner.render(&vars).py(py)
    }

    /// The conversation `run_template` sends, as `[{"role": ..., "content": ...}]`: the
    /// system prompt, each few-shot example as a user/assistant pair, then the request.
    /// Variables as in `render`.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, vars=None, /, **variables)")]
    fn messages<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let vars = variables(py, "messages", args, kwargs)?;
        to_py_value(py, &self.inner.messages(&vars).py(py)?)
    }

    /// The final answer of a chain-of-thought reply: the text after its last line starting
    /// with one of `answer_prefixes`; `None` when there is none.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, text)")]
    fn extract_answer(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<String>> {
        let a = Args::parse(py, "extract_answer", &["text"], 1, args, kwargs)?;
        let text = to_string(py, a.func(), "text", a.required("text")?)?;
        Ok(self.inner.extract_answer(&text))
    }

    /// The fields as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "PromptTemplate(name={:?}, variables={:?})",
            self.inner.name,
            self.inner.variables()
        )
    }
}

/// Templates by name: the built-in ones (`TemplateLibrary.builtin()`: English and Chinese
/// role, chain-of-thought, few-shot, field-extraction and insurance-claim templates) and
/// folders of TOML files (`load_dir`, `add_dir`; errors name the file and line).
/// `TemplateLibrary()` is empty.
#[pyclass(name = "TemplateLibrary", module = "llmedge", frozen)]
pub struct PyTemplateLibrary {
    inner: Mutex<TemplateLibrary>,
}

impl From<TemplateLibrary> for PyTemplateLibrary {
    fn from(lib: TemplateLibrary) -> Self {
        PyTemplateLibrary {
            inner: Mutex::new(lib),
        }
    }
}

#[pymethods]
impl PyTemplateLibrary {
    #[new]
    #[pyo3(signature = (*args, **kwargs), text_signature = "()")]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyTemplateLibrary> {
        Args::parse(py, "TemplateLibrary", &[], 0, args, kwargs)?;
        Ok(TemplateLibrary::new().into())
    }

    /// The built-in templates.
    #[staticmethod]
    fn builtin() -> PyTemplateLibrary {
        builtin().clone().into()
    }

    /// A library of every `*.toml` file in `path`, in name order (a later template replaces
    /// an earlier one of the same name).
    #[staticmethod]
    #[pyo3(signature = (*args, **kwargs), text_signature = "(path)")]
    fn load_dir(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyTemplateLibrary> {
        let a = Args::parse(py, "load_dir", &["path"], 1, args, kwargs)?;
        a.required("path")?;
        let path = a.path("path")?.unwrap_or_default();
        Ok(py
            .detach(|| TemplateLibrary::load_dir(&path))
            .py(py)?
            .into())
    }

    /// Add every `*.toml` file in `path` to this library.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, path)")]
    fn add_dir(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let a = Args::parse(py, "add_dir", &["path"], 1, args, kwargs)?;
        a.required("path")?;
        let path = a.path("path")?.unwrap_or_default();
        py.detach(|| lock(&self.inner).add_dir(&path)).py(py)
    }

    /// Add (or replace) one template.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, template)")]
    fn add(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let a = Args::parse(py, "add", &["template"], 1, args, kwargs)?;
        let v = a.required("template")?;
        let t = v
            .cast::<PyPromptTemplate>()
            .map_err(|_| a.wrong_type("template", "PromptTemplate", v))?;
        lock(&self.inner).insert(t.get().inner.clone());
        Ok(())
    }

    /// A template by name; an unknown name raises `TemplateError` listing the known ones.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, name)")]
    fn get(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyPromptTemplate> {
        let a = Args::parse(py, "get", &["name"], 1, args, kwargs)?;
        let name = to_string(py, a.func(), "name", a.required("name")?)?;
        let lib = lock(&self.inner);
        Ok(lib.get(&name).cloned().py(py)?.into())
    }

    /// The template names, sorted.
    fn names(&self) -> Vec<String> {
        lock(&self.inner).names()
    }

    fn __len__(&self) -> usize {
        lock(&self.inner).len()
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> bool {
        match name.cast::<PyString>().ok().and_then(|s| s.to_cow().ok()) {
            Some(name) => lock(&self.inner).get(&name).is_ok(),
            None => false,
        }
    }

    fn __repr__(&self) -> String {
        format!("<llmedge.TemplateLibrary {:?}>", lock(&self.inner).names())
    }
}

/// The final answer of a chain-of-thought reply: the text after the last line that starts
/// with one of `prefixes` (`"Answer:"`, `"答案："`; either colon width and Markdown emphasis
/// match), trimmed; `None` when no line does.
#[pyfunction]
#[pyo3(signature = (*args, **kwargs), text_signature = "(text, prefixes)")]
pub fn extract_answer(
    py: Python<'_>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<String>> {
    let a = Args::parse(py, "extract_answer", &["text", "prefixes"], 2, args, kwargs)?;
    let text = to_string(py, a.func(), "text", a.required("text")?)?;
    a.required("prefixes")?;
    let prefixes = string_list(&a, "prefixes")?.unwrap_or_default();
    Ok(prompt_template::extract_answer(&text, &prefixes))
}
