//! `llmedge.Router` and `llmedge.RouteClassifier`: core's routing rules (model name, tenant,
//! keywords, regex, a classifier model, the default) for programs that run their own models.

use llmedge::router::{RouteClassifier, RouteQuery, Router};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::args::{to_string, wrong_type, Args};
use crate::errors::IntoPy;
use crate::json::to_py_value;
use crate::model::PyModel;

const ROUTE_ARGS: &[&str] = &["text", "model", "tenant", "classifier"];

/// Routing rules compiled from TOML: `[[routes]]` tables as in `llmedge serve`'s
/// configuration and an optional `[router.classifier]` table. Immutable and thread-safe.
#[pyclass(name = "Router", module = "llmedge", frozen)]
pub struct PyRouter {
    inner: Router,
}

#[pymethods]
impl PyRouter {
    /// Compile TOML text; a mistake raises `ConfigError` naming its line.
    #[staticmethod]
    fn from_toml(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<PyRouter> {
        let text = to_string(py, "Router.from_toml", "text", text)?;
        let inner = Router::from_toml_str(&text).py(py)?;
        Ok(PyRouter { inner })
    }

    /// Compile the TOML file at `path`.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<PyRouter> {
        let path = to_string(py, "Router.from_file", "path", path)?;
        let inner = Router::from_file(&path).py(py)?;
        Ok(PyRouter { inner })
    }

    /// Decide where a request goes: `{"route", "model", "adapters": [{"name", "scale"}],
    /// "rule", "matched"}` (no "matched" for the default rule). `text` is the request text
    /// (the prompt, or the last user message), `model` the model name the request asked
    /// for, `tenant` the caller's. `classifier` (a `RouteClassifier`) is needed only when
    /// a request reaches the classifier stage; without it that raises `InvalidArgumentError`.
    /// The GIL is released while the classifier runs.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(self, text, *, model=None, tenant='', classifier=None)"
    )]
    fn route<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Args::parse(py, "Router.route", ROUTE_ARGS, 1, args, kwargs)?;
        let text = to_string(py, a.func(), "text", a.required("text")?)?;
        let model = a.string("model")?;
        let tenant = a.string("tenant")?.unwrap_or_default();
        let classifier = match a.opt("classifier") {
            Some(c) => Some(
                c.cast::<PyRouteClassifier>()
                    .map_err(|_| a.wrong_type("classifier", "llmedge.RouteClassifier", c))?
                    .clone()
                    .unbind(),
            ),
            None => None,
        };
        let query = RouteQuery {
            model: model.as_deref(),
            tenant: &tenant,
            text: &text,
        };
        let decision = py
            .detach(|| {
                self.inner
                    .route_with(&query, classifier.as_ref().map(|c| &c.get().inner))
            })
            .py(py)?;
        to_py_value(py, &decision)
    }

    /// The route names, in configuration order.
    #[getter]
    fn routes(&self) -> Vec<String> {
        self.inner.routes().map(|r| r.name.clone()).collect()
    }
}

/// The classifier stage's model for a `Router`: a greedy session on `model` whose answer is
/// constrained to the route names (no safety or audit: the request's own record carries
/// the decision). Thread-safe; requests that reach it take turns.
#[pyclass(name = "RouteClassifier", module = "llmedge", frozen)]
pub struct PyRouteClassifier {
    inner: RouteClassifier,
}

#[pymethods]
impl PyRouteClassifier {
    #[new]
    fn new(py: Python<'_>, model: &Bound<'_, PyAny>) -> PyResult<PyRouteClassifier> {
        let m = model
            .cast::<PyModel>()
            .map_err(|_| wrong_type(py, "RouteClassifier", "model", "llmedge.Model", model))?;
        let (model, _) = m.get().session_base(py)?;
        let inner = py.detach(|| RouteClassifier::new(&model)).py(py)?;
        Ok(PyRouteClassifier { inner })
    }
}
