//! `llmedge.ResponseCache`: core's exact-match cache of deterministic answers (in memory or in
//! Redis), which `Engine(response_cache=...)` consults before queueing a request.

use std::sync::Arc;
use std::time::Duration;

use llmedge::response_cache::{MemoryCache, RedisCache, ResponseCache};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::args::{to_string, Args};
use crate::engine::seconds_arg;
use crate::errors::IntoPy;
use crate::json::to_py_value;

const MEMORY_ARGS: &[&str] = &["capacity", "ttl"];
const REDIS_ARGS: &[&str] = &["url", "prefix", "ttl", "timeout"];
/// One hour, the default lifetime of an answer.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// An exact-match cache of the answers to deterministic requests (greedy, or sampled with a
/// seed), keyed by model, adapters, prompt tokens, sampling and tenant. Build one with
/// `ResponseCache.memory(...)` or `ResponseCache.redis(...)` and pass it to
/// `Engine(model, response_cache=cache)`; several engines may share it. Thread-safe.
#[pyclass(name = "ResponseCache", module = "llmedge", frozen)]
pub struct PyResponseCache {
    pub(crate) inner: Arc<dyn ResponseCache>,
}

#[pymethods]
impl PyResponseCache {
    /// An in-memory LRU of at most `capacity` answers (default 1024), each kept for `ttl`
    /// seconds (default 3600).
    #[staticmethod]
    #[pyo3(signature = (*args, **kwargs), text_signature = "(capacity=1024, *, ttl=3600.0)")]
    fn memory(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyResponseCache> {
        let a = Args::parse(py, "ResponseCache.memory", MEMORY_ARGS, 1, args, kwargs)?;
        let capacity = a.int("capacity", 1, i64::MAX)?.unwrap_or(1024) as usize;
        let ttl = seconds_arg(&a, "ttl")?.unwrap_or(DEFAULT_TTL);
        let cache = MemoryCache::new(capacity, ttl).py(py)?;
        Ok(PyResponseCache {
            inner: Arc::new(cache),
        })
    }

    /// A cache in Redis at `url` (`redis://host:port/db`), entries under `prefix` expiring
    /// after `ttl` seconds (at least 1). Raises `IoError` when the server does not answer
    /// within `timeout` seconds; later outages only cost hits.
    #[staticmethod]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(url, *, prefix='llmedge:', ttl=3600.0, timeout=1.0)"
    )]
    fn redis(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyResponseCache> {
        let a = Args::parse(py, "ResponseCache.redis", REDIS_ARGS, 1, args, kwargs)?;
        let url = to_string(py, a.func(), "url", a.required("url")?)?;
        let prefix = a.string("prefix")?.unwrap_or_else(|| "llmedge:".into());
        let ttl = seconds_arg(&a, "ttl")?.unwrap_or(DEFAULT_TTL);
        let timeout = seconds_arg(&a, "timeout")?.unwrap_or(Duration::from_secs(1));
        let cache = py
            .detach(|| RedisCache::connect(&url, &prefix, ttl, timeout))
            .py(py)?;
        Ok(PyResponseCache {
            inner: Arc::new(cache),
        })
    }

    /// `"memory"` or `"redis"`.
    #[getter]
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    /// Counters since creation: `{"hits", "misses", "errors"}` (errors: lookups or stores
    /// that failed; the request was then served by the model).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, &self.inner.stats())
    }

    fn __repr__(&self) -> String {
        let s = self.inner.stats();
        format!(
            "ResponseCache(backend={:?}, hits={}, misses={})",
            self.inner.backend(),
            s.hits,
            s.misses
        )
    }
}
