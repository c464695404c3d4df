//! Python objects ⇄ JSON values, through Python's own `json` module.
//!
//! Complex core values (JSON schemas, template variables, safety reports, audit reports) cross
//! into Python as plain dicts and lists: core serialises them with serde and `json.loads` builds
//! the Python objects, so the shape is exactly the documented JSON of every other surface.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use serde_json::Value;

use crate::args::{to_string, wrong_type};
use crate::errors::{invalid, to_py};

static JSON: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn json_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(JSON
        .get_or_try_init(py, || py.import("json").map(Bound::unbind))?
        .bind(py))
}

/// Any JSON-compatible Python value (dict, list, str, int, float, bool, None) as a JSON value.
/// Other types raise `ArgumentTypeError`, NaN and infinities `InvalidArgumentError`.
pub fn from_py(py: Python<'_>, func: &str, name: &str, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    kwargs.set_item("ensure_ascii", false)?;
    let text = json_module(py)?
        .call_method("dumps", (v,), Some(&kwargs))
        .map_err(|e| {
            if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
                invalid(py, format!("{func}(): '{name}' is not valid JSON: {e}"))
            } else {
                wrong_type(
                    py,
                    func,
                    name,
                    "JSON-compatible (dict, list, str, number, bool, None)",
                    v,
                )
            }
        })?;
    let text = to_string(py, func, "json", &text)?;
    serde_json::from_str(&text)
        .map_err(|e| invalid(py, format!("{func}(): '{name}' is not valid JSON: {e}")))
}

/// A JSON value given either as a Python object or as a JSON string (`json_schema=`).
pub fn from_py_or_str(
    py: Python<'_>,
    func: &str,
    name: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<Value> {
    if v.is_instance_of::<PyString>() {
        let text = to_string(py, func, name, v)?;
        return serde_json::from_str(&text)
            .map_err(|e| invalid(py, format!("{func}(): '{name}' is not valid JSON: {e}")));
    }
    from_py(py, func, name, v)
}

/// A JSON object (template variables, defaults) from a mapping.
pub fn object_from_py(
    py: Python<'_>,
    func: &str,
    name: &str,
    v: &Bound<'_, PyAny>,
) -> PyResult<serde_json::Map<String, Value>> {
    if !v.is_instance_of::<PyDict>() && v.cast::<pyo3::types::PyMapping>().is_err() {
        return Err(wrong_type(py, func, name, "dict", v));
    }
    let dict = PyDict::new(py);
    dict.call_method1("update", (v,))?;
    for key in dict.keys() {
        if !key.is_instance_of::<PyString>() {
            return Err(wrong_type(py, func, name, "dict with str keys", v));
        }
    }
    match from_py(py, func, name, dict.as_any())? {
        Value::Object(map) => Ok(map),
        _ => Err(wrong_type(py, func, name, "dict", v)),
    }
}

/// Any serialisable core value as Python objects (`json.loads` of its serde JSON).
pub fn to_py_value<'py, T: serde::Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| to_py(py, &llmedge::Error::Internal(format!("JSON: {e}"))))?;
    json_module(py)?.call_method1("loads", (text,))
}
