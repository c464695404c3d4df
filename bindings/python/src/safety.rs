//! `llmedge.Safety`, `llmedge.audit_verify` and the safety/audit options of models and
//! sessions (`safety_policy=`, `audit_dir=`, `tenant=`). Policies, checks and the audit log are
//! all core's; this only translates arguments and results.

use std::path::PathBuf;

use llmedge::audit::{self, AuditConfig, AuditLog};
use llmedge::request_guard::default_safety;
use llmedge::safety::{Safety, SafetyPolicy};
use llmedge::SessionOptions;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyTuple};

use crate::args::{to_string, Args};
use crate::errors::IntoPy;
use crate::json::to_py_value;

/// A policy argument: `None` or `True` = the built-in policy, `False` = off, a `Safety`, or the
/// path of a policy file.
fn policy_arg(a: &Args<'_>, name: &'static str, v: &Bound<'_, PyAny>) -> PyResult<Option<Safety>> {
    let py = a.py();
    if v.is_none() {
        return Ok(Some(default_safety()));
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(v.is_truthy()?.then(default_safety));
    }
    if let Ok(s) = v.cast::<PySafety>() {
        return Ok(Some(s.get().inner.clone()));
    }
    let path: PathBuf = v
        .extract()
        .map_err(|_| a.wrong_type(name, "str, os.PathLike, Safety, bool or None", v))?;
    py.detach(|| Safety::new(SafetyPolicy::from_file(&path)?))
        .py(py)
        .map(Some)
}

/// Apply `safety_policy=`, `audit_dir=` and `tenant=` (when given) to session options.
pub fn apply_session_options(a: &Args<'_>, o: &mut SessionOptions) -> PyResult<()> {
    let py = a.py();
    if let Some(v) = a.raw("safety_policy") {
        o.safety = policy_arg(a, "safety_policy", v)?;
    }
    if let Some(dir) = a.path("audit_dir")? {
        // One writer per directory per process: models sharing a directory share the log.
        o.audit = Some(
            py.detach(|| AuditLog::open_shared(AuditConfig::new(dir)))
                .py(py)?,
        );
    }
    if let Some(tenant) = a.string("tenant")? {
        o.tenant = tenant;
    }
    o.surface = audit::Surface::Python;
    Ok(())
}

/// The safety layer on its own: sensitive-term filtering and PII redaction under a policy.
///
/// `Safety()` uses the built-in policy; `Safety(path)` reads a policy file (an invalid one
/// raises `PolicyError` naming the file and line). Pass it as `Model(..., safety_policy=...)`
/// to share it. The checks return dicts: `verdict` (`{"verdict": "allow" | "flag" | "block",
/// ...}`), `text` (redacted; empty for a blocked output), `matches`, `redactions` (and `pii`
/// for inputs).
#[pyclass(name = "Safety", module = "llmedge", frozen)]
pub struct PySafety {
    inner: Safety,
}

#[pymethods]
impl PySafety {
    #[new]
    #[pyo3(signature = (*args, **kwargs), text_signature = "(policy=None)")]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PySafety> {
        let a = Args::parse(py, "Safety", &["policy"], 1, args, kwargs)?;
        let inner = match a.opt("policy") {
            None => default_safety(),
            Some(v) => match policy_arg(&a, "policy", v)? {
                Some(safety) => safety,
                None => Safety::new(SafetyPolicy::disabled()).py(py)?,
            },
        };
        Ok(PySafety { inner })
    }

    /// Check and redact a user input: what the model would see, and why.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, text)")]
    fn check_input<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text = text_arg(py, "check_input", args, kwargs)?;
        let check = py.detach(|| self.inner.check_input(&text));
        to_py_value(py, &check)
    }

    /// Check and redact a complete model output.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, text)")]
    fn check_output<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text = text_arg(py, "check_output", args, kwargs)?;
        let check = py.detach(|| self.inner.check_output(&text));
        to_py_value(py, &check)
    }

    /// Whether the policy checks anything (`False` for a disabled policy).
    #[getter]
    fn enabled(&self) -> bool {
        self.inner.policy().enabled
    }

    /// The message a blocked request gets instead of a reply.
    #[getter]
    fn refusal_message(&self) -> &str {
        &self.inner.policy().refusal_message
    }

    fn __repr__(&self) -> String {
        format!("<llmedge.Safety enabled={}>", self.inner.policy().enabled)
    }
}

fn text_arg(
    py: Python<'_>,
    func: &'static str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    let a = Args::parse(py, func, &["text"], 1, args, kwargs)?;
    to_string(py, func, "text", a.required("text")?)
}

/// Verify an audit log (a directory, or one segment file): the hash chain of every record and
/// the anchor. Returns a dict: `ok`, `path`, `files`, `records`, `last_seq`, `last_hash`,
/// `anchor`, `unanchored`, `findings` (each with `kind`, `file`, `line`, `seq`, `detail`).
/// Problems in the log are findings (`ok` is then false); only an unreadable path raises.
#[pyfunction]
#[pyo3(signature = (*args, **kwargs), text_signature = "(path)")]
pub fn audit_verify<'py>(
    py: Python<'py>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = Args::parse(py, "audit_verify", &["path"], 1, args, kwargs)?;
    a.required("path")?;
    let path = a.path("path")?.unwrap_or_default();
    let report = py.detach(|| audit::verify(&path)).py(py)?;
    to_py_value(py, &report)
}

/// Verify a model manifest: the signature against the public key file `pubkey` (when given)
/// and the SHA-256 and size of every listed file. Returns a dict: `ok`, `signed`,
/// `signature` (`{"status": "valid" | "invalid" | "not_checked", "reason"}`) and `files`
/// (each with `path`, `ok`, `problem`). Problems are reported, not raised; an invalid
/// manifest raises `ModelIntegrityError`.
#[pyfunction]
#[pyo3(signature = (*args, **kwargs), text_signature = "(path, pubkey=None)")]
pub fn manifest_verify<'py>(
    py: Python<'py>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = Args::parse(py, "manifest_verify", &["path", "pubkey"], 2, args, kwargs)?;
    a.required("path")?;
    let path = a.path("path")?.unwrap_or_default();
    let pubkey = a.path("pubkey")?;
    let report = py
        .detach(|| llmedge::model_manifest::verify_manifest(&path, pubkey.as_deref()))
        .py(py)?;
    to_py_value(py, &report)
}
