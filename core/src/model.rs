//! Loading GGUF models and reading what they are.
//!
//! A [`Model`] is a cheap-to-clone handle (`Arc`) to weights mapped once. It is `Send + Sync`:
//! share it between threads and create one [`Session`](crate::Session) per concurrent
//! conversation. Sessions hold their own KV cache; the weights are never copied.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::backend::{backend, clear_recent_errors, recent_errors};
use crate::error::{Error, Result};
use crate::lora::{AdapterInner, LoraAdapter};
use crate::model_manifest::IntegrityPolicy;

/// A token id in the model's vocabulary.
pub type Token = i32;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Layers to offload to the GPU (0 = CPU only; `u32::MAX` = all). Needs a GPU feature.
    pub n_gpu_layers: u32,
    /// Map the file instead of reading it into memory (default: true).
    pub use_mmap: bool,
    /// Lock the weights in RAM so the OS cannot page them out.
    pub use_mlock: bool,
    /// Default thread count for sessions of this model (default: all cores).
    pub threads: u32,
    /// Hash the file at load time so [`ModelInfo::sha256`] is filled in.
    pub compute_sha256: bool,
    /// `require_verified_models`: the model (and every LoRA adapter loaded into it) must be
    /// listed in this manifest with a matching SHA-256 (and signature, if the policy says so)
    /// before any parser reads it. `None` = no check.
    pub integrity: Option<Arc<IntegrityPolicy>>,
    /// Most tokens one request's prompt may have (text, chat, images and embeddings alike);
    /// a longer one gets [`Error::Limit`] before anything is evaluated. `None` = only the
    /// context window bounds it.
    pub max_prompt_tokens: Option<u32>,
    /// Most sequences open on this model at once: each [`Session`](crate::Session) holds
    /// one and each [`Engine`](crate::Engine) one per slot, until dropped. One more gets
    /// [`Error::Busy`] before its KV cache is allocated. `None` = only memory bounds it.
    pub max_sessions: Option<u32>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            n_gpu_layers: 0,
            use_mmap: true,
            use_mlock: false,
            threads: default_threads(),
            compute_sha256: false,
            integrity: None,
            max_prompt_tokens: None,
            max_sessions: None,
        }
    }
}

/// Physical parallelism, the thread count llama.cpp is fastest with on small machines.
pub fn default_threads() -> u32 {
    std::thread::available_parallelism().map_or(4, |n| n.get() as u32)
}

/// What a model is, read from its GGUF metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    /// `general.architecture`, e.g. `llama`, `gemma3`.
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    pub n_params: u64,
    /// Size of the tensors in bytes.
    pub size_bytes: u64,
    pub n_ctx_train: u32,
    pub n_embd: u32,
    pub n_layer: u32,
    pub n_vocab: u32,
    /// The file's quantization, e.g. `Q4_1`, `Q4_K_M`.
    pub quantization: String,
    /// The Jinja chat template embedded in the file, if any.
    pub chat_template: Option<String>,
    /// SHA-256 of the file, when requested with [`ModelOptions::compute_sha256`].
    pub sha256: Option<String>,
}

/// A loaded model. Clone it freely: clones share the same weights.
#[derive(Clone)]
pub struct Model {
    inner: Arc<ModelInner>,
}

pub(crate) struct ModelInner {
    /// The vision projector points into `llama`, so it is declared (and dropped) first.
    projector: OnceLock<crate::vision::Projector>,
    llama: LlamaModel,
    info: ModelInfo,
    options: ModelOptions,
    sha256: OnceLock<String>,
    /// LoRA adapters loaded into this model, by canonical path: each file is loaded once.
    loras: Mutex<Vec<Arc<AdapterInner>>>,
    /// Sequences held by open sessions and engines, against `options.max_sessions`.
    sequences: Arc<AtomicU32>,
}

/// Sequences a session or engine holds against the model's `max_sessions`, until it drops.
#[derive(Debug)]
pub(crate) struct SequencePermit {
    counter: Arc<AtomicU32>,
    n: u32,
}

impl Drop for SequencePermit {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.n, Ordering::AcqRel);
    }
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("info", &self.inner.info)
            .finish()
    }
}

/// llama.cpp mutates the model while creating a context, so contexts are created one at a time.
static CONTEXT_CREATE: Mutex<()> = Mutex::new(());

impl Model {
    /// Load a GGUF file.
    pub fn load(path: impl AsRef<Path>, options: ModelOptions) -> Result<Model> {
        Self::load_impl(path.as_ref(), options, None)
    }

    /// Load a GGUF file, reporting progress in `0.0..=1.0` as the weights are read.
    pub fn load_with_progress(
        path: impl AsRef<Path>,
        options: ModelOptions,
        progress: impl FnMut(f32) + 'static,
    ) -> Result<Model> {
        Self::load_impl(path.as_ref(), options, Some(Box::new(progress)))
    }

    fn load_impl(
        path: &Path,
        options: ModelOptions,
        progress: Option<Box<dyn FnMut(f32)>>,
    ) -> Result<Model> {
        check_threads(options.threads)?;
        if options.max_prompt_tokens == Some(0) || options.max_sessions == Some(0) {
            return Err(Error::InvalidArgument(
                "max_prompt_tokens and max_sessions must be at least 1 (None = no limit)".into(),
            ));
        }
        // The manifest check comes first: a refused file is never parsed, not even by our own
        // bounds-checked GGUF reader. Its hash is kept, so it is not read twice.
        let verified_sha256 = match &options.integrity {
            Some(policy) => Some(policy.check_model(path)?),
            None => None,
        };
        precheck_file(path, &options)?;
        let backend = backend()?;
        let mut params = LlamaModelParams::default()
            .with_n_gpu_layers(options.n_gpu_layers)
            .with_use_mmap(options.use_mmap)
            .with_use_mlock(options.use_mlock);
        if let Some(mut progress) = progress {
            params = params.with_progress_callback(move |p| {
                progress(p);
                true
            });
        }
        clear_recent_errors();
        let llama = LlamaModel::load_from_file(backend, path, &params)
            .map_err(|_| classify_load_failure(path, recent_errors()))?;
        let sha256 = OnceLock::new();
        if let Some(digest) = verified_sha256 {
            let _ = sha256.set(digest);
        } else if options.compute_sha256 {
            let _ = sha256.set(sha256_file(path)?);
        }
        let info = read_info(&llama, path, sha256.get().cloned());
        Ok(Model {
            inner: Arc::new(ModelInner {
                projector: OnceLock::new(),
                llama,
                info,
                options,
                sha256,
                loras: Mutex::new(Vec::new()),
                sequences: Arc::new(AtomicU32::new(0)),
            }),
        })
    }

    /// Metadata of the loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The options the model was loaded with.
    pub fn options(&self) -> &ModelOptions {
        &self.inner.options
    }

    /// SHA-256 of the model file, computed once and cached.
    pub fn sha256(&self) -> Result<String> {
        if let Some(s) = self.inner.sha256.get() {
            return Ok(s.clone());
        }
        let digest = sha256_file(&self.inner.info.path)?;
        Ok(self.inner.sha256.get_or_init(|| digest).clone())
    }

    /// Split text into tokens. `add_special` adds BOS/EOS as the model wants;
    /// `parse_special` turns text such as `<|im_start|>` into its special token.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<Token> {
        let vocab = self.inner.llama.vocab();
        let add = add_special && vocab.should_add_bos();
        vocab
            .tokenize(text.as_bytes(), add, parse_special)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// Turn tokens back into text. Special tokens are rendered when `special` is true.
    pub fn detokenize(&self, tokens: &[Token], special: bool) -> Result<String> {
        let mut bytes = Vec::new();
        for &t in tokens {
            self.token_piece_into(t, special, &mut bytes)?;
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Append the bytes of one token (possibly part of a UTF-8 character).
    pub(crate) fn token_piece_into(
        &self,
        token: Token,
        special: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.check_token(token)?;
        self.inner
            .llama
            .vocab()
            .token_to_piece_into(LlamaToken(token), out, special, None);
        Ok(())
    }

    pub(crate) fn check_token(&self, token: Token) -> Result<()> {
        if token < 0 || token as u32 >= self.inner.info.n_vocab {
            return Err(Error::Tokenize(format!(
                "token id {token} is outside the vocabulary (0..{})",
                self.inner.info.n_vocab
            )));
        }
        Ok(())
    }

    /// The text of the beginning-of-sequence token, if the model has one.
    pub fn bos_text(&self) -> Option<String> {
        self.special_text(self.inner.llama.vocab().bos())
    }

    /// The text of the end-of-sequence token, if the model has one.
    pub fn eos_text(&self) -> Option<String> {
        self.special_text(self.inner.llama.vocab().eos())
    }

    fn special_text(&self, token: LlamaToken) -> Option<String> {
        (token.0 >= 0)
            .then(|| self.detokenize(&[token.0], true).ok())
            .flatten()
    }

    /// True when the token ends generation (EOS, EOT, ...).
    pub fn is_end_of_generation(&self, token: Token) -> bool {
        self.inner.llama.vocab().is_eog(LlamaToken(token))
    }

    /// Mean-pooled, L2-normalised embedding of `text`.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let tokens = self.tokenize(text, true, false);
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("cannot embed empty text".into()));
        }
        self.check_prompt_limit(tokens.len())?;
        let n = tokens.len() as u32;
        let params = LlamaContextParams::default()
            .with_embeddings(true)
            .with_pooling_type(LlamaPoolingType::Mean)
            .with_n_ctx(NonZeroU32::new(n.max(64)))
            .with_n_batch(n.max(64))
            .with_n_ubatch(n.max(64))
            .with_n_threads(self.inner.options.threads as i32)
            .with_n_threads_batch(self.inner.options.threads as i32);
        if n > self.inner.info.n_ctx_train {
            return Err(Error::ContextOverflow {
                needed: n as usize,
                n_ctx: self.inner.info.n_ctx_train as usize,
            });
        }
        let mut ctx = self.new_context(params)?;
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        let last = tokens.len() - 1;
        for (i, &t) in tokens.iter().enumerate() {
            batch
                .add(LlamaToken(t), i as i32, &[0], i == last)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| Error::Decode(e.to_string()))?;
        let emb = ctx
            .embeddings_seq_ith(0)
            .map_err(|e| Error::Decode(format!("no pooled embedding: {e}")))?;
        let norm = emb.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        Ok(emb.iter().map(|x| x / norm).collect())
    }

    /// Create a llama.cpp context on this model (serialised, see `CONTEXT_CREATE`).
    pub(crate) fn new_context(&self, params: LlamaContextParams) -> Result<LlamaContext<'_>> {
        let _guard = CONTEXT_CREATE.lock().unwrap_or_else(|p| p.into_inner());
        clear_recent_errors();
        self.inner
            .llama
            .new_context(backend()?, params)
            .map_err(|e| {
                let why = recent_errors().join("; ");
                if why.contains("alloc") || why.contains("memory") {
                    Error::OutOfMemory(format!("context: {why}"))
                } else {
                    Error::ContextCreate(format!("{e}: {why}"))
                }
            })
    }

    pub(crate) fn llama(&self) -> &LlamaModel {
        &self.inner.llama
    }

    /// Where [`Model::load_mmproj`](crate::vision) keeps the projector.
    pub(crate) fn projector_slot(&self) -> &OnceLock<crate::vision::Projector> {
        &self.inner.projector
    }

    /// Refuse a context whose KV cache (F16 K and V for every layer) would not fit in the
    /// memory available now: llama.cpp would otherwise allocate it and leave the OOM killer
    /// to decide, since Linux overcommits.
    pub(crate) fn check_kv_budget(&self, n_ctx: u32) -> Result<()> {
        let llama = &self.inner.llama;
        let (n_head, n_head_kv) = (llama.n_head().max(1) as u64, llama.n_head_kv() as u64);
        let n_embd_kv = self.inner.info.n_embd as u64 / n_head * n_head_kv.max(1);
        let bytes = u64::from(n_ctx) * u64::from(self.inner.info.n_layer) * n_embd_kv * 2 * 2;
        match available_memory() {
            Some(available) if bytes > available => Err(Error::OutOfMemory(format!(
                "a context of {n_ctx} tokens needs about {} MiB of KV cache, but only {} MiB of \
                 memory is available",
                bytes >> 20,
                available >> 20
            ))),
            _ => Ok(()),
        }
    }

    /// Refuse a prompt of `n_tokens` when it is over `max_prompt_tokens`.
    pub(crate) fn check_prompt_limit(&self, n_tokens: usize) -> Result<()> {
        match self.inner.options.max_prompt_tokens {
            Some(max) if n_tokens > max as usize => Err(Error::Limit(format!(
                "the prompt has {n_tokens} tokens, over this model's max_prompt_tokens ({max})"
            ))),
            _ => Ok(()),
        }
    }

    /// Take `n` of the model's `max_sessions` sequences, given back when the permit drops.
    pub(crate) fn reserve_sequences(&self, n: u32) -> Result<SequencePermit> {
        let counter = &self.inner.sequences;
        let max = self.inner.options.max_sessions;
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                let next = open.checked_add(n)?;
                (next <= max.unwrap_or(u32::MAX)).then_some(next)
            })
            .map_err(|open| {
                Error::Busy(format!(
                    "{open} of this model's max_sessions ({}) sequences are open and {n} more \
                     were asked for; close a session or engine first",
                    max.unwrap_or(u32::MAX)
                ))
            })?;
        Ok(SequencePermit {
            counter: counter.clone(),
            n,
        })
    }

    /// Run `f` on the llama.cpp model under the lock that serialises its mutations.
    pub(crate) fn with_model_mutation<T>(&self, f: impl FnOnce(&LlamaModel) -> T) -> T {
        let _guard = CONTEXT_CREATE.lock().unwrap_or_else(|p| p.into_inner());
        f(&self.inner.llama)
    }

    pub(crate) fn is_inner(&self, other: &std::sync::Weak<ModelInner>) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.inner), other.as_ptr())
    }

    /// Load a GGUF LoRA adapter into this model, or return the one already loaded from the
    /// same file. The adapter is checked first: a file for another architecture, with other
    /// shapes or not an adapter at all gets [`Error::Adapter`] saying what does not fit.
    pub fn load_lora(&self, path: impl AsRef<Path>) -> Result<LoraAdapter> {
        let path = path.as_ref();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut loras = self.inner.loras.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = loras.iter().find(|a| a.path() == key) {
            return Ok(LoraAdapter::from_inner(found.clone()));
        }
        // The manifest check hashes the file; its digest is kept, so it is not read twice.
        let verified_sha256 = match &self.inner.options.integrity {
            Some(policy) => {
                let model = crate::audit::ModelRef {
                    name: self.display_name(),
                    sha256: self.sha256()?,
                };
                Some(policy.check_adapter(&key, model)?)
            }
            None => None,
        };
        let inner = crate::lora::load(self, &key, Arc::downgrade(&self.inner), verified_sha256)?;
        loras.push(inner.clone());
        Ok(LoraAdapter::from_inner(inner))
    }

    /// `general.name`, or the file name when the model has none.
    pub(crate) fn display_name(&self) -> String {
        self.inner.info.name.clone().unwrap_or_else(|| {
            self.inner
                .info
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    /// The adapters loaded into this model so far.
    pub fn loras(&self) -> Vec<LoraAdapter> {
        let loras = self.inner.loras.lock().unwrap_or_else(|p| p.into_inner());
        loras.iter().cloned().map(LoraAdapter::from_inner).collect()
    }
}

/// ggml's thread limit (`GGML_MAX_N_THREADS`): more makes llama.cpp crash, not fail.
pub(crate) const MAX_THREADS: u32 = 512;

/// A thread count llama.cpp can run with.
pub(crate) fn check_threads(threads: u32) -> Result<()> {
    if threads == 0 || threads > MAX_THREADS {
        return Err(Error::InvalidArgument(format!(
            "threads must be between 1 and {MAX_THREADS}, got {threads}"
        )));
    }
    Ok(())
}

/// Check what llama.cpp would only report as NULL: existence, GGUF magic, memory.
fn precheck_file(path: &Path, options: &ModelOptions) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ModelNotFound(path.to_path_buf()))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let invalid = |reason: &str| Error::InvalidModel {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    if meta.is_dir() {
        return Err(invalid("is a directory, not a GGUF file"));
    }
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => invalid("file is too short to be a GGUF"),
            _ => Error::io(path, e),
        })?;
    if &magic != b"GGUF" {
        return Err(invalid("not a GGUF file (bad magic)"));
    }
    // The bounds-checked parser sees every header, count, length, type tag and tensor range
    // before llama.cpp's own parser does (GGUF parsers have had overflow bugs).
    crate::gguf_file::GgufFile::open(path)?;
    if !options.use_mmap || options.use_mlock {
        if let Some(available) = available_memory() {
            if meta.len() > available {
                return Err(Error::OutOfMemory(format!(
                    "model needs {} MiB but only {} MiB of memory is available",
                    meta.len() >> 20,
                    available >> 20
                )));
            }
        }
    }
    Ok(())
}

/// `MemAvailable` from /proc/meminfo, where there is one.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn classify_load_failure(path: &Path, errors: Vec<String>) -> Error {
    let why = if errors.is_empty() {
        "llama.cpp could not load the file".to_owned()
    } else {
        errors.join("; ")
    };
    let path = path.to_path_buf();
    let lower = why.to_lowercase();
    if lower.contains("unknown model architecture")
        || lower.contains("unsupported model architecture")
    {
        Error::UnsupportedArchitecture { path, reason: why }
    } else if lower.contains("failed to allocate")
        || lower.contains("out of memory")
        || lower.contains("unable to allocate")
    {
        Error::OutOfMemory(why)
    } else if lower.contains("gguf")
        || lower.contains("tensor")
        || lower.contains("file bounds")
        || lower.contains("failed to read")
        || lower.contains("key not found")
        || lower.contains("wrong type")
    {
        Error::InvalidModel { path, reason: why }
    } else {
        Error::ModelLoad { path, reason: why }
    }
}

fn read_info(llama: &LlamaModel, path: &Path, sha256: Option<String>) -> ModelInfo {
    let meta = |k: &str| llama.meta_val_str(k).ok();
    ModelInfo {
        path: path.to_path_buf(),
        architecture: meta("general.architecture").unwrap_or_default(),
        name: meta("general.name"),
        n_params: llama.n_params(),
        size_bytes: llama.size(),
        n_ctx_train: llama.n_ctx_train(),
        n_embd: llama.n_embd().max(0) as u32,
        n_layer: llama.n_layer(),
        n_vocab: llama.n_vocab().max(0) as u32,
        quantization: meta("general.file_type")
            .and_then(|v| v.parse::<u32>().ok())
            .map_or_else(|| "unknown".to_owned(), file_type_name),
        chat_template: llama
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok()),
        sha256,
    }
}

/// Names of llama.cpp's `llama_ftype` values.
pub(crate) fn file_type_name(ftype: u32) -> String {
    let name = match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        other => return format!("ftype_{other}"),
    };
    name.to_owned()
}

/// SHA-256 of a file as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    crate::model_manifest::hash_file(path).map(|(digest, _size)| digest)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_llama_cpp_errors() {
        let p = Path::new("m.gguf");
        let e = classify_load_failure(
            p,
            vec!["error loading model: unknown model architecture: 'foo'".into()],
        );
        assert_eq!(e.code(), crate::ErrorCode::UnsupportedArchitecture);
        let e = classify_load_failure(
            p,
            vec!["tensor 'x' data is not within the file bounds".into()],
        );
        assert_eq!(e.code(), crate::ErrorCode::InvalidModel);
        let e = classify_load_failure(p, vec![]);
        assert_eq!(e.code(), crate::ErrorCode::ModelLoad);
    }

    #[test]
    fn missing_and_non_gguf_files_are_typed() {
        let opts = ModelOptions::default();
        let e = Model::load("/nonexistent/model.gguf", opts.clone()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::ModelNotFound);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.gguf");
        std::fs::write(&f, b"GGML not really").unwrap();
        let e = Model::load(&f, opts.clone()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidModel);
        std::fs::write(&f, b"GG").unwrap();
        let e = Model::load(&f, opts).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidModel);
    }
}
