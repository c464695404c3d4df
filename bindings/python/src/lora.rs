//! LoRA adapters and the model tools: `llmedge.LoraAdapter`, the `adapters=` arguments of
//! models, sessions and requests, and `llmedge.lora_merge`, `llmedge.lora_import`,
//! `llmedge.quantize`. Loading, merging, importing and quantizing are core's; this translates
//! arguments and results and runs the work with the GIL released.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use llmedge::lora_import::{import_peft, ImportOptions};
use llmedge::lora_merge::{merge_lora, MergeOptions};
use llmedge::quantize::{quantize as core_quantize, FileType, QuantizeOptions, QuantizeProgress};
use llmedge::{AdapterSet, LoraAdapter, Model};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::args::{to_f32, to_string, wrong_type, Args};
use crate::errors::{invalid, IntoPy};
use crate::json::to_py_value;

/// A LoRA adapter loaded into one model (`Model.load_lora(path)`).
///
/// Pass it with a scale to `Model(..., adapters=[(lora, 1.0)])`, `model.session(adapters=...)`
/// or any generation call (`adapters=[(lora, 0.5)]`; `adapters=[]` runs the bare model). An
/// adapter belongs to the model it was loaded into; loading the same file again returns the
/// same adapter. `info` is its metadata (name, architecture, alpha, rank, tensors, parameters,
/// size, SHA-256).
#[pyclass(name = "LoraAdapter", module = "llmedge", frozen)]
pub struct PyLoraAdapter {
    pub(crate) inner: LoraAdapter,
}

#[pymethods]
impl PyLoraAdapter {
    /// Metadata of the adapter, as a dict: `path`, `name`, `architecture`, `alpha`, `rank`,
    /// `tensors`, `parameters`, `size_bytes`, `sha256`.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, self.inner.info())
    }

    /// `general.name` of the adapter, or its file name.
    #[getter]
    fn name(&self) -> String {
        self.inner.info().name.clone()
    }

    /// The adapter file.
    #[getter]
    fn path(&self) -> String {
        self.inner.info().path.to_string_lossy().into_owned()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyLoraAdapter>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.info().path.hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        let info = self.inner.info();
        format!(
            "<llmedge.LoraAdapter {:?} {} rank={} {:?}>",
            info.name, info.architecture, info.rank, info.path
        )
    }
}

/// Load `path` into `model` with the GIL released.
pub fn load(py: Python<'_>, model: &Model, path: PathBuf) -> PyResult<LoraAdapter> {
    py.detach(|| model.load_lora(&path)).py(py)
}

/// One adapter of an `adapters=` list: a `LoraAdapter`, or a path when `allow_paths` (loaded
/// into `model`).
fn adapter_item(
    py: Python<'_>,
    func: &str,
    model: &Model,
    v: &Bound<'_, PyAny>,
    allow_paths: bool,
) -> PyResult<LoraAdapter> {
    if let Ok(a) = v.cast::<PyLoraAdapter>() {
        return Ok(a.get().inner.clone());
    }
    if allow_paths {
        if let Ok(path) = v.extract::<PathBuf>() {
            return load(py, model, path);
        }
    }
    let expected = if allow_paths {
        "a list of LoraAdapter, path or (adapter, scale)"
    } else {
        "a list of LoraAdapter or (LoraAdapter, scale)"
    };
    Err(wrong_type(py, func, "adapters", expected, v))
}

/// An `adapters=` value: a list whose items are `LoraAdapter` (scale 1.0) or
/// `(LoraAdapter, scale)` pairs; with `allow_paths`, a path may stand for an adapter (loaded
/// into `model` first). Core checks the set (same model, finite scales, no duplicates).
pub fn adapter_set(
    a: &Args<'_>,
    name: &str,
    model: &Model,
    allow_paths: bool,
) -> PyResult<Option<AdapterSet>> {
    let py = a.py();
    let func = a.func();
    let Some(v) = a.opt(name) else {
        return Ok(None);
    };
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(a.wrong_type(name, "a list of (LoraAdapter, scale)", v));
    }
    let mut set = Vec::new();
    for item in v.try_iter()? {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .map(|t| (t.get_item(0), t.get_item(1)));
        match pair {
            Some((adapter, scale)) => {
                let adapter = adapter_item(py, func, model, &adapter?, allow_paths)?;
                set.push((adapter, to_f32(py, func, "adapters", &scale?)?));
            }
            None => set.push((adapter_item(py, func, model, &item, allow_paths)?, 1.0)),
        }
    }
    Ok(Some(set))
}

/// The first exception a progress callback raised; later calls are skipped and it is raised
/// when the work ends.
type Failed = Arc<Mutex<Option<PyErr>>>;

/// Call `callback(*args)` with the GIL, unless a previous call failed.
fn report(
    callback: &Py<PyAny>,
    failed: &Failed,
    args: impl FnOnce(Python<'_>) -> PyResult<Bound<'_, PyTuple>>,
) {
    let mut slot = crate::slot::lock(failed);
    if slot.is_some() {
        return;
    }
    Python::attach(|py| {
        if let Err(e) = args(py).and_then(|a| callback.bind(py).call1(a)) {
            *slot = Some(e);
        }
    });
}

/// The work's result, unless a progress callback raised (then its exception).
fn finish<'py>(
    failed: &Failed,
    result: PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let value = result?;
    match crate::slot::lock(failed).take() {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

fn progress_arg(a: &Args<'_>) -> PyResult<Option<Py<PyAny>>> {
    match a.opt("progress") {
        None => Ok(None),
        Some(v) if v.is_callable() => Ok(Some(v.clone().unbind())),
        Some(v) => Err(a.wrong_type("progress", "callable", v)),
    }
}

fn required_path(a: &Args<'_>, name: &'static str) -> PyResult<PathBuf> {
    a.required(name)?;
    Ok(a.path(name)?.unwrap_or_default())
}

/// Merge LoRA adapters into a base model and write the result as a new GGUF:
/// W' = W + Σ scale·B·A (scaled by each adapter's alpha / rank, as llama.cpp applies it).
///
/// `adapters` lists adapter files, each a path (scale 1.0) or a `(path, scale)` pair.
/// `out_type` is the ggml type of the merged tensors (`"f16"`, `"q8_0"`, ...; `None` keeps
/// each tensor's type); untouched tensors are copied as they are. `progress(done, total)` is
/// called after each tensor (an exception it raises is re-raised when the merge ends).
/// Returns a dict: `output`, `merged_tensors`, `copied_tensors`, `adapters`, `output_bytes`,
/// `seconds`. An adapter that does not fit the base raises `AdapterError`.
#[pyfunction]
#[pyo3(
    signature = (*args, **kwargs),
    text_signature = "(base, adapters, output, out_type=None, progress=None)"
)]
pub fn lora_merge<'py>(
    py: Python<'py>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = Args::parse(
        py,
        "lora_merge",
        &["base", "adapters", "output", "out_type", "progress"],
        5,
        args,
        kwargs,
    )?;
    let base = required_path(&a, "base")?;
    let v = a.required("adapters")?;
    if v.is_instance_of::<PyString>()
        || !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>())
    {
        return Err(a.wrong_type("adapters", "a list of paths or (path, scale)", v));
    }
    let mut adapters = Vec::new();
    for item in v.try_iter()? {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .map(|t| (t.get_item(0), t.get_item(1)));
        let (path, scale) = match pair {
            Some((p, s)) => (p?, Some(s?)),
            None => (item, None),
        };
        let path: PathBuf = path
            .extract()
            .map_err(|_| a.wrong_type("adapters", "a list of paths or (path, scale)", &path))?;
        let scale = match scale {
            Some(s) => to_f32(py, "lora_merge", "adapters", &s)?,
            None => 1.0,
        };
        adapters.push((path, scale));
    }
    let output = required_path(&a, "output")?;
    let options = MergeOptions {
        out_type: a.string("out_type")?,
    };
    let callback = progress_arg(&a)?;
    let failed = Failed::default();
    let report_to = failed.clone();
    let result = py.detach(move || {
        merge_lora(&base, &adapters, &output, &options, |done, total| {
            if let Some(cb) = &callback {
                report(cb, &report_to, |py| (done, total).into_pyobject(py));
            }
        })
    });
    let result = result.py(py).and_then(|r| to_py_value(py, &r));
    finish(&failed, result)
}

/// Convert a Hugging Face PEFT LoRA adapter (a folder with `adapter_config.json` and
/// `adapter_model.safetensors`) into a GGUF adapter for the GGUF model `base` it was trained
/// on. `out_type` is `"f32"` (lossless) or `"f16"`. Returns a dict: `architecture`, `rank`,
/// `alpha`, `peft_alpha`, `use_rslora`, `tensors`, `parameters`, `out`. An adapter llmedge
/// cannot apply (DoRA, other module types, shapes that do not fit) raises `AdapterError`.
#[pyfunction]
#[pyo3(
    signature = (*args, **kwargs),
    text_signature = "(peft_dir, base, output, out_type='f32')"
)]
pub fn lora_import<'py>(
    py: Python<'py>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = Args::parse(
        py,
        "lora_import",
        &["peft_dir", "base", "output", "out_type"],
        4,
        args,
        kwargs,
    )?;
    let peft_dir = required_path(&a, "peft_dir")?;
    let base = required_path(&a, "base")?;
    let output = required_path(&a, "output")?;
    let mut options = ImportOptions::new(base);
    options.out_type = match a
        .string("out_type")?
        .as_deref()
        .map(str::to_ascii_lowercase)
    {
        None => llmedge::gguf_file::GGML_TYPE_F32,
        Some(t) if t == "f32" => llmedge::gguf_file::GGML_TYPE_F32,
        Some(t) if t == "f16" => llmedge::gguf_file::GGML_TYPE_F16,
        Some(other) => {
            return Err(invalid(
                py,
                format!("lora_import(): out_type must be 'f32' or 'f16', got {other:?}"),
            ))
        }
    };
    let report = py
        .detach(|| import_peft(&peft_dir, &output, &options))
        .py(py)?;
    to_py_value(py, &report)
}

/// Quantize a GGUF model with llama.cpp's quantizer into `output`.
///
/// `type` is the target file type (`"Q4_K_M"`, `"Q8_0"`, `"F16"`, ...). `keep` lists
/// `(regex, ggml_type)` overrides for matching tensors (e.g. `[("token_embd", "q8_0")]`).
/// A model whose tensors are already quantized needs `allow_requantize=True` (else
/// `InvalidArgumentError`); `pure` quantizes every tensor to `type` without llama.cpp's
/// mixtures; `threads` defaults to all cores. `progress(done, total, tensor)` is called after
/// each tensor (an exception it raises is re-raised when the work ends). `output` is written
/// atomically. Returns a dict: `output`, `file_type`, `input_bytes`, `output_bytes`, `tensors`,
/// `seconds`.
#[pyfunction]
#[pyo3(
    signature = (*args, **kwargs),
    text_signature = "(input, output, type='Q4_K_M', keep=None, allow_requantize=False, pure=False, threads=None, progress=None)"
)]
pub fn quantize<'py>(
    py: Python<'py>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = Args::parse(
        py,
        "quantize",
        &[
            "input",
            "output",
            "type",
            "keep",
            "allow_requantize",
            "pure",
            "threads",
            "progress",
        ],
        3,
        args,
        kwargs,
    )?;
    let input = required_path(&a, "input")?;
    let output = required_path(&a, "output")?;
    let file_type = a.string("type")?.unwrap_or_else(|| "Q4_K_M".to_owned());
    let mut options = QuantizeOptions::new(FileType::parse(&file_type).py(py)?);
    if let Some(v) = a.opt("keep") {
        if v.is_instance_of::<PyString>()
            || !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>())
        {
            return Err(a.wrong_type("keep", "a list of (regex, type)", v));
        }
        for item in v.try_iter()? {
            let item = item?;
            let pair = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .ok_or_else(|| a.wrong_type("keep", "a list of (regex, type)", &item))?;
            options.keep.push((
                to_string(py, "quantize", "keep", &pair.get_item(0)?)?,
                to_string(py, "quantize", "keep", &pair.get_item(1)?)?,
            ));
        }
    }
    if let Some(v) = a.bool("allow_requantize")? {
        options.allow_requantize = v;
    }
    if let Some(v) = a.bool("pure")? {
        options.pure = v;
    }
    if let Some(t) = a.u32("threads", 1)? {
        options.threads = t;
    }
    let callback = progress_arg(&a)?;
    let failed = Failed::default();
    let report_to = failed.clone();
    let result = py.detach(move || {
        core_quantize(&input, &output, &options, move |p: QuantizeProgress| {
            if let Some(cb) = &callback {
                report(cb, &report_to, |py| {
                    (p.done, p.total, p.tensor).into_pyobject(py)
                });
            }
        })
    });
    let result = result.py(py).and_then(|r| to_py_value(py, &r));
    finish(&failed, result)
}
