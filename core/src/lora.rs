//! Runtime LoRA adapters: loaded once per model, shared by every session, attached per
//! session or per request with a scale, switched between requests without reloading.
//!
//! llama.cpp applies adapters per context (`llama_set_adapters_lora`), so a session applies
//! the set a request asks for just before decoding it, and only when it differs from the
//! set already applied. An adapter is checked against the model before llama.cpp sees it
//! (architecture, names, shapes), so a mismatch gets an error that says what does not fit.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaLoraAdapter;

use crate::backend::{clear_recent_errors, recent_errors};
use crate::error::{Error, Result};
use crate::gguf_file::GgufFile;
use crate::lora_merge::check_adapter;
use crate::model::{sha256_file, Model};

/// What an adapter is, read from its GGUF.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdapterInfo {
    pub path: PathBuf,
    /// `general.name`, or the file name.
    pub name: String,
    pub architecture: String,
    /// `adapter.lora.alpha` (0 = none: the scale applies as given).
    pub alpha: f32,
    pub rank: u64,
    /// Base tensors the adapter changes.
    pub tensors: usize,
    /// Elements of every A and B matrix.
    pub parameters: u64,
    pub size_bytes: u64,
    pub sha256: String,
}

/// A LoRA adapter loaded into one model. Cheap to clone; every session of that model may use it.
#[derive(Clone)]
pub struct LoraAdapter {
    inner: Arc<AdapterInner>,
}

pub(crate) struct AdapterInner {
    llama: LlamaLoraAdapter,
    info: AdapterInfo,
    /// The model the adapter was loaded into. Weak, because the model caches its adapters;
    /// holding it keeps the model's allocation (not its weights) alive, so the identity
    /// check in [`LoraAdapter::belongs_to`] can never match a different, newer model.
    model: Weak<crate::model::ModelInner>,
}

impl fmt::Debug for LoraAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoraAdapter")
            .field("name", &self.inner.info.name)
            .field("path", &self.inner.info.path)
            .finish()
    }
}

impl PartialEq for LoraAdapter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl LoraAdapter {
    /// Metadata of the adapter.
    pub fn info(&self) -> &AdapterInfo {
        &self.inner.info
    }

    /// Whether the adapter was loaded into `model` (adapters cannot move between models).
    pub fn belongs_to(&self, model: &Model) -> bool {
        model.is_inner(&self.inner.model)
    }

    pub(crate) fn llama(&self) -> &LlamaLoraAdapter {
        &self.inner.llama
    }
}

/// Adapters with their scales, as a request applies them.
pub type AdapterSet = Vec<(LoraAdapter, f32)>;

/// Check a set for use with `model`: same model, finite scales, no adapter twice.
pub(crate) fn validate_set(model: &Model, set: &[(LoraAdapter, f32)]) -> Result<()> {
    for (i, (adapter, scale)) in set.iter().enumerate() {
        if !adapter.belongs_to(model) {
            return Err(Error::InvalidArgument(format!(
                "adapter {} was loaded into another model",
                adapter.info().name
            )));
        }
        if !scale.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "adapter {} has a non-finite scale",
                adapter.info().name
            )));
        }
        if set[..i].iter().any(|(a, _)| a == adapter) {
            return Err(Error::InvalidArgument(format!(
                "adapter {} is attached twice",
                adapter.info().name
            )));
        }
    }
    Ok(())
}

/// Identity of an applied set, to skip re-applying an unchanged one.
/// Make `set` the adapters of `ctx` unless `applied` (the key of the set applied now, see
/// [`set_key`]) says it already is.
pub(crate) fn apply_adapter_set(
    ctx: &mut LlamaContext<'_>,
    set: &[(LoraAdapter, f32)],
    applied: &mut Vec<(usize, u32)>,
) -> Result<()> {
    let key = set_key(set);
    if key != *applied {
        let pairs: Vec<(&LlamaLoraAdapter, f32)> =
            set.iter().map(|(a, s)| (a.llama(), *s)).collect();
        applied.clear();
        ctx.set_lora_adapters(&pairs)
            .map_err(|e| Error::Internal(format!("applying LoRA adapters: {e}")))?;
        *applied = key;
    }
    Ok(())
}

pub(crate) fn set_key(set: &[(LoraAdapter, f32)]) -> Vec<(usize, u32)> {
    set.iter()
        .map(|(a, s)| (Arc::as_ptr(&a.inner) as usize, s.to_bits()))
        .collect()
}

/// Load `path` into `model` (see [`Model::load_lora`]); `sha256` is the file's digest when the
/// caller already computed it.
pub(crate) fn load(
    model: &Model,
    path: &Path,
    model_ref: Weak<crate::model::ModelInner>,
    sha256: Option<String>,
) -> Result<Arc<AdapterInner>> {
    if !path.exists() {
        return Err(Error::Adapter {
            path: path.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    let base = GgufFile::open(&model.info().path)?;
    let checked = check_adapter(path, &base)?;
    let size_bytes = checked.file.file_size;
    let info = AdapterInfo {
        path: path.to_path_buf(),
        name: checked.file.get_str("general.name").map_or_else(
            || {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            },
            str::to_owned,
        ),
        architecture: checked.file.architecture().unwrap_or_default().to_owned(),
        alpha: checked.alpha,
        rank: checked.rank,
        tensors: checked.pairs.len(),
        parameters: checked.parameters(),
        size_bytes,
        sha256: match sha256 {
            Some(digest) => digest,
            None => sha256_file(path)?,
        },
    };
    clear_recent_errors();
    let llama = model.with_model_mutation(|llama| {
        // SAFETY: `with_model_mutation` holds the lock that serialises every mutation of the
        // model (context creation, adapter loads).
        unsafe { llama.lora_adapter_init_shared(path) }
    });
    let llama = llama.map_err(|e| Error::Adapter {
        path: path.to_path_buf(),
        reason: {
            let why = recent_errors().join("; ");
            if why.is_empty() {
                e.to_string()
            } else {
                why
            }
        },
    })?;
    Ok(Arc::new(AdapterInner {
        llama,
        info,
        model: model_ref,
    }))
}

impl LoraAdapter {
    pub(crate) fn from_inner(inner: Arc<AdapterInner>) -> Self {
        LoraAdapter { inner }
    }
}

impl AdapterInner {
    /// The canonical path the adapter was loaded from (the model's cache key).
    pub(crate) fn path(&self) -> &Path {
        &self.info.path
    }
}
