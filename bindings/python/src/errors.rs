//! Turning llmedge errors into the `llmedge.Error` hierarchy.
//!
//! The exception classes are generated in Python (`llmedge/_errors.py`) from
//! [`ERROR_CODES`](crate::error_codes), which lists core's `ErrorCode::ALL`. Rust looks the class
//! up by code when it raises, so the numbers can never drift apart.

use llmedge::{Error, ErrorCode};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

const ERRORS_MODULE: &str = "llmedge._errors";

/// An exception instance of `llmedge._errors.<attr>` (a class) or of `ERROR_CLASSES[code]`.
fn build(py: Python<'_>, code: ErrorCode, class_attr: Option<&str>, message: String) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let module = py.import(ERRORS_MODULE)?;
        let class = match class_attr {
            Some(attr) => module.getattr(attr)?,
            None => module.getattr("ERROR_CLASSES")?.get_item(code.as_i32())?,
        };
        Ok(PyErr::from_value(class.call1((message.clone(),))?))
    };
    make().unwrap_or_else(|e| {
        PyRuntimeError::new_err(format!(
            "llmedge error {} ({}): {message} [and the exception class could not be created: {e}]",
            code.as_i32(),
            code.name()
        ))
    })
}

/// The Python exception for a core error: `ERROR_CLASSES[err.code()](str(err))`.
pub fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    build(py, err.code(), None, err.to_string())
}

/// A bad argument value (`InvalidArgumentError`, also a `ValueError`; code 1).
pub fn invalid(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_py(py, &Error::InvalidArgument(message.into()))
}

/// An argument of the wrong type or an unknown keyword (`ArgumentTypeError`, a subclass of
/// `InvalidArgumentError` and `TypeError`; code 1).
pub fn arg_type(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = Error::InvalidArgument(message.into()).to_string();
    build(
        py,
        ErrorCode::InvalidArgument,
        Some("ArgumentTypeError"),
        message,
    )
}

/// A required argument was `None` (`NullArgumentError`, also a `TypeError`; code 2).
pub fn null(py: Python<'_>, what: &'static str) -> PyErr {
    to_py(py, &Error::NullArgument(what))
}

/// A string that cannot be UTF-8 (lone surrogates; `InvalidUtf8Error`; code 3).
pub fn utf8(py: Python<'_>, what: &'static str) -> PyErr {
    to_py(py, &Error::InvalidUtf8(what))
}

/// The object was closed (`ClosedError`; code 60).
pub fn closed(py: Python<'_>, what: &'static str) -> PyErr {
    to_py(py, &Error::Closed(what))
}

/// `Result<T, llmedge::Error>` into `PyResult<T>`.
pub trait IntoPy<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}
