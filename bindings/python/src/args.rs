//! Argument parsing with llmedge errors.
//!
//! PyO3's own argument handling raises plain `TypeError`s. Every public method here takes
//! `*args, **kwargs` instead and parses them with [`Args`], so that an unknown keyword or a value
//! of the wrong type raises `llmedge.ArgumentTypeError` (a `TypeError` *and* an
//! `llmedge.InvalidArgumentError`, code 1), a bad value raises `InvalidArgumentError`
//! (a `ValueError`, code 1), `None` for a required argument raises `NullArgumentError` (code 2)
//! and a string with lone surrogates raises `InvalidUtf8Error` (code 3). The real signatures
//! are published through `__text_signature__` and the `.pyi` stub.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

use crate::errors::{arg_type, invalid, null, utf8};

/// Parsed arguments of one call: one slot per accepted parameter name.
pub struct Args<'py> {
    py: Python<'py>,
    func: &'static str,
    names: &'static [&'static str],
    values: Vec<Option<Bound<'py, PyAny>>>,
}

impl<'py> Args<'py> {
    /// Match `args`/`kwargs` against `names`; the first `positional` names may be given
    /// positionally, the rest only by keyword.
    pub fn parse(
        py: Python<'py>,
        func: &'static str,
        names: &'static [&'static str],
        positional: usize,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Args<'py>> {
        let mut values: Vec<Option<Bound<'py, PyAny>>> = vec![None; names.len()];
        if args.len() > positional {
            return Err(arg_type(
                py,
                format!(
                    "{func}() takes at most {positional} positional argument{} ({} given)",
                    if positional == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        for (i, value) in args.iter().enumerate() {
            values[i] = Some(value);
        }
        if let Some(kwargs) = kwargs {
            for (key, value) in kwargs.iter() {
                // Keyword names are always str in CPython; be defensive anyway.
                let key = key
                    .cast::<PyString>()
                    .map_err(|_| arg_type(py, format!("{func}() keywords must be strings")))?;
                let key = key.to_cow().map_err(|_| utf8(py, "keyword name"))?;
                let Some(i) = names.iter().position(|n| *n == key) else {
                    return Err(arg_type(
                        py,
                        format!("{func}() got an unexpected keyword argument '{key}'"),
                    ));
                };
                if values[i].is_some() {
                    return Err(arg_type(
                        py,
                        format!("{func}() got multiple values for argument '{key}'"),
                    ));
                }
                values[i] = Some(value);
            }
        }
        Ok(Args {
            py,
            func,
            names,
            values,
        })
    }

    pub fn py(&self) -> Python<'py> {
        self.py
    }

    pub fn func(&self) -> &'static str {
        self.func
    }

    /// Whether the call accepts `name` at all.
    pub fn declares(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    fn slot(&self, name: &str) -> Option<&Bound<'py, PyAny>> {
        let i = self
            .names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{}: parameter {name} is not declared", self.func));
        self.values[i].as_ref()
    }

    /// The raw value, `None` when not given (Python `None` is returned as given).
    pub fn raw(&self, name: &str) -> Option<&Bound<'py, PyAny>> {
        self.slot(name)
    }

    /// The value, which must be given and not `None`.
    pub fn required(&self, name: &'static str) -> PyResult<&Bound<'py, PyAny>> {
        match self.slot(name) {
            None => Err(arg_type(
                self.py,
                format!("{}() missing required argument '{name}'", self.func),
            )),
            Some(v) if v.is_none() => Err(null(self.py, name)),
            Some(v) => Ok(v),
        }
    }

    /// The value when given and not `None`.
    pub fn opt(&self, name: &str) -> Option<&Bound<'py, PyAny>> {
        self.slot(name).filter(|v| !v.is_none())
    }

    /// An integer in `min..=max`; `None` or absent gives `None`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> PyResult<Option<i64>> {
        self.opt(name)
            .map(|v| to_int(self.py, self.func, name, v, min, max))
            .transpose()
    }

    /// An unsigned 32-bit integer with a lower bound.
    pub fn u32(&self, name: &str, min: u32) -> PyResult<Option<u32>> {
        Ok(self
            .int(name, i64::from(min), i64::from(u32::MAX))?
            .map(|v| v as u32))
    }

    pub fn i32(&self, name: &str, min: i32) -> PyResult<Option<i32>> {
        Ok(self
            .int(name, i64::from(min), i64::from(i32::MAX))?
            .map(|v| v as i32))
    }

    /// A finite-or-not float (ints accepted, bools refused).
    pub fn f32(&self, name: &str) -> PyResult<Option<f32>> {
        self.opt(name)
            .map(|v| to_f32(self.py, self.func, name, v))
            .transpose()
    }

    pub fn bool(&self, name: &str) -> PyResult<Option<bool>> {
        self.opt(name)
            .map(|v| {
                if v.is_instance_of::<PyBool>() {
                    Ok(v.is_truthy()?)
                } else {
                    Err(self.wrong_type(name, "bool", v))
                }
            })
            .transpose()
    }

    /// A `str`; lone surrogates raise `InvalidUtf8Error`.
    pub fn string(&self, name: &'static str) -> PyResult<Option<String>> {
        self.opt(name)
            .map(|v| to_string(self.py, self.func, name, v))
            .transpose()
    }

    /// A filesystem path: `str`, `bytes` or `os.PathLike`.
    pub fn path(&self, name: &str) -> PyResult<Option<PathBuf>> {
        self.opt(name)
            .map(|v| {
                // Lone surrogates are legitimate here (undecodable file names): PathBuf
                // extraction goes through os.fspath and the filesystem encoding.
                v.extract::<PathBuf>()
                    .map_err(|_| self.wrong_type(name, "str or os.PathLike", v))
            })
            .transpose()
    }

    pub fn wrong_type(&self, name: &str, expected: &str, value: &Bound<'py, PyAny>) -> PyErr {
        wrong_type(self.py, self.func, name, expected, value)
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

pub fn wrong_type(
    py: Python<'_>,
    func: &str,
    name: &str,
    expected: &str,
    value: &Bound<'_, PyAny>,
) -> PyErr {
    arg_type(
        py,
        format!(
            "{func}(): '{name}' must be {expected}, not {}",
            type_name(value)
        ),
    )
}

/// An `int` (or anything with `__index__`, bools refused) in `min..=max`.
pub fn to_int(
    py: Python<'_>,
    func: &str,
    name: &str,
    v: &Bound<'_, PyAny>,
    min: i64,
    max: i64,
) -> PyResult<i64> {
    if v.is_instance_of::<PyBool>() || v.is_instance_of::<PyFloat>() {
        return Err(wrong_type(py, func, name, "int", v));
    }
    let n: i64 = match v.extract::<i64>() {
        Ok(n) => n,
        // An int too large for i64 is a value error, anything else a type error.
        Err(_) if v.is_instance_of::<PyInt>() => i64::MAX,
        Err(_) => return Err(wrong_type(py, func, name, "int", v)),
    };
    if n < min || n > max {
        let range = if max == i64::MAX || max == i64::from(u32::MAX) || max == i64::from(i32::MAX) {
            format!(">= {min}")
        } else {
            format!("in {min}..={max}")
        };
        return Err(invalid(
            py,
            format!("{func}(): '{name}' must be {range}, got {v}"),
        ));
    }
    Ok(n)
}

/// A float (ints accepted, bools refused).
pub fn to_f32(py: Python<'_>, func: &str, name: &str, v: &Bound<'_, PyAny>) -> PyResult<f32> {
    if v.is_instance_of::<PyBool>() || v.is_instance_of::<PyString>() {
        return Err(wrong_type(py, func, name, "float", v));
    }
    v.extract::<f64>()
        .map(|x| x as f32)
        .map_err(|_| wrong_type(py, func, name, "float", v))
}

/// A `str` as Rust `String`; lone surrogates raise `InvalidUtf8Error`.
pub fn to_string(
    py: Python<'_>,
    func: &str,
    name: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let s = v
        .cast::<PyString>()
        .map_err(|_| wrong_type(py, func, name, "str", v))?;
    s.to_cow()
        .map(|c| c.into_owned())
        .map_err(|_| utf8(py, name))
}
