//! Vision-language models: a text GGUF plus a projector (mmproj) GGUF, through llama.cpp's
//! mtmd library.
//!
//! [`Model::load_mmproj`] attaches the projector to a loaded model; from then on chat
//! messages may carry [`Image`]s (OpenAI `image_url` content parts, see
//! [`parse_content`]) and [`Prompt::WithImages`](crate::Prompt::WithImages) raw prompts
//! may too. The prompt is split by mtmd into text and image chunks and evaluated by
//! [`eval_multimodal`], which works on any llama context, sequence and start position (the
//! serving engine shares it with [`Session`](crate::Session)).
//!
//! Each image chunk's embedding is cached by the image's content hash (LRU, bounded in
//! bytes), so a second question about the same image decodes the cached embedding instead
//! of running the vision encoder again.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunkType, MtmdInputChunks, MtmdInputText,
    MtmdTokenizeError,
};
use lru::LruCache;

use crate::backend::{clear_recent_errors, recent_errors, route_mtmd_log};
use crate::chat_template::ChatMessage;
use crate::error::{Error, Result};
use crate::image_input::{Image, ImageOptions};
use crate::model::Model;

/// The text that stands for one image in a prompt (llama.cpp's default media marker).
pub const MEDIA_MARKER: &str = "<__media__>";

/// How a projector is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectorOptions {
    /// Threads of the vision encoder; `None` = the model's default.
    pub threads: Option<u32>,
    /// Run the encoder on the GPU when the build has one.
    pub use_gpu: bool,
    /// Most bytes of image embeddings kept for reuse (default 256 MiB; 0 = no cache).
    pub cache_bytes: usize,
    /// Most image embeddings kept for reuse (default 64).
    pub cache_entries: usize,
    /// Token budget of one image for models with dynamic resolution; `None` = the model's.
    pub image_max_tokens: Option<u32>,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        ProjectorOptions {
            threads: None,
            use_gpu: false,
            cache_bytes: 256 << 20,
            cache_entries: 64,
            image_max_tokens: None,
        }
    }
}

/// What a loaded projector is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProjectorInfo {
    pub path: PathBuf,
    /// `general.name` of the mmproj, when present.
    pub name: Option<String>,
    /// `clip.projector_type` (e.g. `mlp`, `idefics3`, `qwen2vl_merger`, `gemma3`).
    pub projector_type: Option<String>,
    pub supports_vision: bool,
    pub supports_audio: bool,
    /// Positions are multi-dimensional (Qwen2-VL style M-RoPE): `n_past` advances by fewer
    /// positions than an image has tokens.
    pub uses_mrope: bool,
    /// SHA-256 of the file, when a manifest checked it.
    pub sha256: Option<String>,
}

/// Counters of the vision encoder and its embedding cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct VisionStats {
    /// Image chunks run through the vision encoder.
    pub encoded: u64,
    /// Image chunks served from the cache instead.
    pub cache_hits: u64,
    /// Embeddings in the cache now, and their size.
    pub cached_entries: u64,
    pub cached_bytes: u64,
}

/// A vision projector attached to a [`Model`] (see [`Model::load_mmproj`]). It lives as long
/// as the model and is shared by every session on it.
pub struct Projector {
    /// Encoding is not thread-safe: one encode at a time per projector.
    mtmd: Mutex<MtmdContext>,
    info: ProjectorInfo,
    cache: Mutex<EmbeddingCache>,
    encoded: AtomicU64,
    hits: AtomicU64,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("info", &self.info)
            .finish()
    }
}

/// Embeddings by (image hash, slice): one image may be split into several chunks (tiles).
type CacheKey = (String, u32);

struct EmbeddingCache {
    entries: LruCache<CacheKey, Arc<Vec<f32>>>,
    bytes: usize,
    max_bytes: usize,
    max_entries: usize,
}

impl EmbeddingCache {
    fn get(&mut self, key: &CacheKey) -> Option<Arc<Vec<f32>>> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: CacheKey, embd: Arc<Vec<f32>>) {
        let size = embd.len() * std::mem::size_of::<f32>();
        if self.max_entries == 0 || size > self.max_bytes {
            return;
        }
        if let Some(old) = self.entries.put(key, embd) {
            self.bytes -= old.len() * std::mem::size_of::<f32>();
        }
        self.bytes += size;
        while self.bytes > self.max_bytes || self.entries.len() > self.max_entries {
            match self.entries.pop_lru() {
                Some((_, e)) => self.bytes -= e.len() * std::mem::size_of::<f32>(),
                None => break,
            }
        }
    }
}

impl Projector {
    fn load(model: &Model, path: &Path, options: &ProjectorOptions) -> Result<Projector> {
        let verified_sha256 = match &model.options().integrity {
            Some(policy) => {
                let owner = crate::audit::ModelRef {
                    name: model.display_name(),
                    sha256: model.sha256()?,
                };
                Some(policy.check_adapter(path, owner)?)
            }
            None => None,
        };
        let gguf = precheck(path)?;
        check_width(&gguf, model, path)?;
        let threads = options.threads.unwrap_or(model.options().threads);
        crate::model::check_threads(threads)?;
        let path_str = path.to_str().ok_or_else(|| {
            Error::InvalidArgument(format!("mmproj path {} is not UTF-8", path.display()))
        })?;
        let params = MtmdContextParams {
            use_gpu: options.use_gpu,
            print_timings: false,
            n_threads: threads as i32,
            media_marker: CString::new(MEDIA_MARKER).expect("no NUL"),
            image_min_tokens: -1,
            image_max_tokens: options
                .image_max_tokens
                .map_or(-1, |n| n.min(i32::MAX as u32) as i32),
        };
        route_mtmd_log();
        clear_recent_errors();
        let mtmd = model
            .with_model_mutation(|llama| MtmdContext::init_from_file(path_str, llama, &params))
            .map_err(|_| {
                let errors = recent_errors();
                let why = if errors.is_empty() {
                    "llama.cpp could not load it".to_owned()
                } else {
                    errors.join("; ")
                };
                Error::Projector(format!(
                    "{} does not fit {}: {why}",
                    path.display(),
                    model.display_name()
                ))
            })?;
        if !mtmd.support_vision() {
            return Err(Error::Projector(format!(
                "{} has no vision encoder (audio-only projectors are not supported)",
                path.display()
            )));
        }
        let info = ProjectorInfo {
            path: path.to_path_buf(),
            name: gguf.get_str("general.name").map(str::to_owned),
            projector_type: gguf
                .get_str("clip.projector_type")
                .or_else(|| gguf.get_str("clip.vision.projector_type"))
                .map(str::to_owned),
            supports_vision: true,
            supports_audio: mtmd.support_audio(),
            uses_mrope: mtmd.decode_use_mrope(),
            sha256: verified_sha256,
        };
        Ok(Projector {
            mtmd: Mutex::new(mtmd),
            info,
            cache: Mutex::new(EmbeddingCache {
                entries: LruCache::unbounded(),
                bytes: 0,
                max_bytes: options.cache_bytes,
                max_entries: options.cache_entries,
            }),
            encoded: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        })
    }

    pub fn info(&self) -> &ProjectorInfo {
        &self.info
    }

    /// Encoder and cache counters since the projector was loaded.
    pub fn stats(&self) -> VisionStats {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        VisionStats {
            encoded: self.encoded.load(Ordering::Relaxed),
            cache_hits: self.hits.load(Ordering::Relaxed),
            cached_entries: cache.entries.len() as u64,
            cached_bytes: cache.bytes as u64,
        }
    }

    /// Forget every cached embedding (the next question about any image encodes it again).
    pub fn clear_cache(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.entries.clear();
        cache.bytes = 0;
    }

    /// Split `text` (one [`MEDIA_MARKER`] per image, in order) into text and image chunks.
    /// `add_bos` adds the model's BOS in front.
    pub(crate) fn tokenize(
        &self,
        text: &str,
        images: &[Image],
        add_bos: bool,
    ) -> Result<MultimodalPrompt> {
        if images.is_empty() {
            return Err(Error::InvalidArgument(
                "the image list is empty: a vision request needs at least one image".into(),
            ));
        }
        let markers = text.matches(MEDIA_MARKER).count();
        if markers != images.len() {
            return Err(Error::InvalidArgument(format!(
                "the prompt has {markers} image marker(s) {MEDIA_MARKER} but {} image(s) were given",
                images.len()
            )));
        }
        let mut bitmaps = Vec::with_capacity(images.len());
        for (k, image) in images.iter().enumerate() {
            let mut bitmap =
                MtmdBitmap::from_image_data(image.width(), image.height(), image.rgb())
                    .map_err(|e| Error::Internal(format!("image bitmap: {e}")))?;
            // One id per occurrence, so each chunk can be traced to its image and slice.
            bitmap
                .set_id(&format!("{}/{k}", image.sha256()))
                .map_err(|e| Error::Internal(format!("image id: {e}")))?;
            bitmaps.push(bitmap);
        }
        let refs: Vec<&MtmdBitmap> = bitmaps.iter().collect();
        let mtmd = self.mtmd.lock().unwrap_or_else(|p| p.into_inner());
        clear_recent_errors();
        let chunks = mtmd
            .tokenize(
                MtmdInputText {
                    text: text.to_owned(),
                    add_special: add_bos,
                    parse_special: true,
                },
                &refs,
            )
            .map_err(|e| match e {
                MtmdTokenizeError::CStringError(_) => {
                    Error::InvalidArgument("the prompt contains a NUL byte".into())
                }
                MtmdTokenizeError::ImagePreprocessingError => Error::Projector(format!(
                    "image preprocessing failed: {}",
                    recent_errors().join("; ")
                )),
                other => Error::Tokenize(format!("{other}: {}", recent_errors().join("; "))),
            })?;
        drop(mtmd);
        let n_tokens = chunks.total_tokens();
        let n_positions = usize::try_from(chunks.total_positions()).unwrap_or(0);
        let last_is_text = chunks
            .get(chunks.len().saturating_sub(1))
            .is_some_and(|c| c.chunk_type() == MtmdInputChunkType::Text);
        if !last_is_text {
            return Err(Error::InvalidArgument(
                "the prompt must end with text after its last image".into(),
            ));
        }
        Ok(MultimodalPrompt {
            chunks,
            n_tokens,
            n_positions,
        })
    }
}

/// A prompt split into text and image chunks by the projector, ready for
/// [`eval_multimodal`].
pub struct MultimodalPrompt {
    chunks: MtmdInputChunks,
    n_tokens: usize,
    n_positions: usize,
}

impl MultimodalPrompt {
    /// KV cache cells the prompt takes (text tokens plus image embeddings).
    pub fn n_tokens(&self) -> usize {
        self.n_tokens
    }

    /// Positions the prompt advances `n_past` by (fewer than `n_tokens` under M-RoPE).
    pub fn n_positions(&self) -> usize {
        self.n_positions
    }
}

/// Evaluate `prompt` into `ctx` for sequence `seq_id`, starting at position `n_past`, in
/// batches of at most `n_batch`; logits are computed for the last token only. Image
/// embeddings come from the projector's cache when the same image (by content hash) was
/// encoded before. Returns the new `n_past`.
///
/// Works on any context of the projector's model: a session's, or a serving engine's shared
/// one with many sequences. The caller clears (or positions) the sequence first.
pub(crate) fn eval_multimodal(
    ctx: &mut LlamaContext<'_>,
    model: &Model,
    projector: &Projector,
    prompt: &MultimodalPrompt,
    seq_id: i32,
    n_past: i32,
    n_batch: i32,
) -> Result<i32> {
    let chunks = &prompt.chunks;
    let last = chunks.len().saturating_sub(1);
    let mut n_past = n_past;
    let mut seen: Vec<(String, u32)> = Vec::new();
    for i in 0..chunks.len() {
        let chunk = chunks
            .get(i)
            .ok_or_else(|| Error::Internal(format!("chunk {i} vanished")))?;
        if chunk.chunk_type() == MtmdInputChunkType::Text {
            let mut mtmd = projector.mtmd.lock().unwrap_or_else(|p| p.into_inner());
            n_past = chunk
                .eval_single(&mut mtmd, ctx, n_past, seq_id, n_batch, i == last)
                .map_err(|e| Error::Decode(format!("prompt text: {e}")))?;
            continue;
        }
        // The id is "<sha256>/<occurrence>"; the slice is the chunk's rank within it.
        let id = chunk.id().unwrap_or_default();
        let (sha, occurrence) = id.rsplit_once('/').unwrap_or((id.as_str(), ""));
        let slice = match seen.iter_mut().find(|(o, _)| o == occurrence) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((occurrence.to_owned(), 0));
                0
            }
        };
        let key = (sha.to_owned(), slice);
        let cached = if sha.is_empty() {
            None
        } else {
            let mut cache = projector.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(&key)
        };
        let mut mtmd = projector.mtmd.lock().unwrap_or_else(|p| p.into_inner());
        let embd = match cached {
            Some(embd) => {
                projector.hits.fetch_add(1, Ordering::Relaxed);
                embd
            }
            None => {
                clear_recent_errors();
                let started = Instant::now();
                let embd = mtmd
                    .encode_chunk_embeddings(&chunk, model.llama())
                    .map_err(|e| {
                        Error::Projector(format!(
                            "encoding the image failed ({e}): {}",
                            recent_errors().join("; ")
                        ))
                    })?;
                tracing::debug!(
                    "image chunk encoded in {:.1} ms",
                    started.elapsed().as_secs_f64() * 1e3
                );
                projector.encoded.fetch_add(1, Ordering::Relaxed);
                let embd = Arc::new(embd);
                if !sha.is_empty() {
                    let mut cache = projector.cache.lock().unwrap_or_else(|p| p.into_inner());
                    cache.put(key, embd.clone());
                }
                embd
            }
        };
        n_past = chunk
            .decode_embeddings(&mut mtmd, ctx, &embd, n_past, seq_id, n_batch)
            .map_err(|e| Error::Decode(format!("image embeddings: {e}")))?;
    }
    Ok(n_past)
}

/// Tokenize `text` with `images` through the model's projector, check that the prompt plus
/// `reserve` output cells fits `n_ctx` KV cells (`room` = (n_ctx, reserve)) (images are never truncated, so a prompt that does not
/// fit is [`Error::ContextOverflow`] whatever the truncation policy), and evaluate it into the
/// empty sequence `seq_id` from position 0. Returns (n_past, KV cells used).
pub(crate) fn eval_prompt_with_images(
    ctx: &mut LlamaContext<'_>,
    model: &Model,
    text: &str,
    images: &[Image],
    (n_ctx, reserve): (usize, usize),
    seq_id: i32,
    n_batch: i32,
) -> Result<(usize, usize)> {
    let projector = model.require_projector()?;
    let add_bos = match model.bos_text() {
        Some(bos) => !text.starts_with(&bos),
        None => true,
    };
    let prompt = projector.tokenize(text, images, add_bos)?;
    model.check_prompt_limit(prompt.n_tokens())?;
    let needed = prompt.n_tokens() + reserve;
    if needed > n_ctx {
        return Err(Error::ContextOverflow { needed, n_ctx });
    }
    let n_past = eval_multimodal(ctx, model, projector, &prompt, seq_id, 0, n_batch)?;
    Ok((n_past as usize, prompt.n_tokens()))
}

impl Model {
    /// Attach a vision projector (mmproj GGUF) to this model, with default options.
    pub fn load_mmproj(&self, path: impl AsRef<Path>) -> Result<&Projector> {
        self.load_mmproj_with(path, &ProjectorOptions::default())
    }

    /// Attach a vision projector. The pair is checked by llama.cpp: a projector made for
    /// another text model (another embedding width) is [`Error::Projector`] with llama.cpp's
    /// reason. A model has at most one projector: loading the same file again returns it,
    /// another file is an error.
    pub fn load_mmproj_with(
        &self,
        path: impl AsRef<Path>,
        options: &ProjectorOptions,
    ) -> Result<&Projector> {
        let path = path.as_ref();
        let slot = self.projector_slot();
        let _guard = PROJECTOR_LOAD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.get() {
            let same = p.info.path.canonicalize().ok() == path.canonicalize().ok();
            return if same {
                Ok(p)
            } else {
                Err(Error::Projector(format!(
                    "the model already has the projector {}",
                    p.info.path.display()
                )))
            };
        }
        let projector = Projector::load(self, path, options)?;
        Ok(slot.get_or_init(|| projector))
    }

    /// The attached vision projector, if any.
    pub fn projector(&self) -> Option<&Projector> {
        self.projector_slot().get()
    }

    /// The projector, or the error a vision request without one gets.
    pub(crate) fn require_projector(&self) -> Result<&Projector> {
        self.projector().ok_or_else(|| {
            Error::Projector(format!(
                "{} has no vision projector: load its mmproj file first (load_mmproj / --mmproj)",
                self.display_name()
            ))
        })
    }
}

/// Serialises projector loads (two threads attaching at once load once).
static PROJECTOR_LOAD: Mutex<()> = Mutex::new(());

/// Check an mmproj file before llama.cpp parses it: it exists, is a well-formed GGUF (the
/// bounds-checked reader) and is a CLIP projector, not a text model.
fn precheck(path: &Path) -> Result<crate::gguf_file::GgufFile> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ModelNotFound(path.to_path_buf()))
        }
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) if m.is_dir() => {
            return Err(Error::InvalidModel {
                path: path.to_path_buf(),
                reason: "is a directory, not a GGUF file".into(),
            })
        }
        Ok(_) => {}
    }
    let gguf = crate::gguf_file::GgufFile::open(path)?;
    match gguf.architecture() {
        Some("clip") => Ok(gguf),
        other => Err(Error::Projector(format!(
            "{} is not a vision projector (architecture {:?}, expected \"clip\"): pass the \
             model's mmproj file",
            path.display(),
            other.unwrap_or("none")
        ))),
    }
}

/// Compare the projector's output width with the text model's, where the mmproj says it
/// plainly (LLaVA-style MLP and Qwen2-VL mergers), before llama.cpp loads the pair: llama.cpp
/// reports the same mismatch, but leaks the loaded vision encoder when it does.
fn check_width(gguf: &crate::gguf_file::GgufFile, model: &Model, path: &Path) -> Result<()> {
    let dim =
        |tensor: &str, axis: usize| gguf.tensor(tensor).and_then(|t| t.dims.get(axis).copied());
    let width = match gguf.get_str("clip.projector_type") {
        // clip.cpp: MLP's output is mm.2.weight ne[1] (Yi-style ones with mm.3 differ);
        // the Qwen2-VL mergers' is "mm.2.bias" ne[0] (its `mm_1_b`).
        Some("mlp") if gguf.tensor("mm.3.weight").is_none() => dim("mm.2.weight", 1),
        Some("qwen2vl_merger" | "qwen2.5vl_merger") => dim("mm.2.bias", 0),
        _ => None,
    };
    let n_embd = u64::from(model.info().n_embd);
    match width {
        Some(w) if w != n_embd => Err(Error::Projector(format!(
            "{} does not fit {}: mismatch between text model (n_embd = {n_embd}) and mmproj \
             (n_embd = {w}); it was made for another text model",
            path.display(),
            model.display_name()
        ))),
        _ => Ok(()),
    }
}

/// Give every message that has images but no markers one marker per image in front of its
/// text (as llama.cpp's mtmd-cli does), check the counts, and return the messages with the
/// images in prompt order.
pub(crate) fn prepare_messages(messages: &[ChatMessage]) -> Result<(Vec<ChatMessage>, Vec<Image>)> {
    let mut out = Vec::with_capacity(messages.len());
    let mut images = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let markers = m.content.matches(MEDIA_MARKER).count();
        let mut m = m.clone();
        if markers == 0 && !m.images.is_empty() {
            m.content = MEDIA_MARKER.repeat(m.images.len()) + &m.content;
        } else if markers != m.images.len() {
            return Err(Error::InvalidArgument(format!(
                "message {i} has {markers} image marker(s) {MEDIA_MARKER} but {} image(s)",
                m.images.len()
            )));
        }
        images.extend(m.images.iter().cloned());
        out.push(m);
    }
    Ok((out, images))
}

/// Parse OpenAI-style message content: a string, or an array of parts
/// `{"type": "text", "text": ...}` and `{"type": "image_url", "image_url": {"url": ...}}`
/// (`url` a `data:image/...;base64,` URL, a `file://` URL or a local path). Returns the text
/// with one [`MEDIA_MARKER`] where each image was, and the images in order. This is the
/// one parser every surface uses.
pub fn parse_content(
    content: &serde_json::Value,
    options: &ImageOptions,
) -> Result<(String, Vec<Image>)> {
    use serde_json::Value;
    match content {
        Value::Null => Ok((String::new(), Vec::new())),
        Value::String(s) => Ok((s.clone(), Vec::new())),
        Value::Array(parts) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                if let Value::String(s) = part {
                    text.push_str(s);
                    continue;
                }
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
                match kind {
                    "text" => text.push_str(part.get("text").and_then(Value::as_str).ok_or_else(
                        || {
                            Error::InvalidArgument(format!(
                                "content part {i}: text part without \"text\""
                            ))
                        },
                    )?),
                    "image_url" => {
                        let url = part
                            .get("image_url")
                            .and_then(|u| u.get("url"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Error::InvalidArgument(format!(
                                    "content part {i}: image part without \"image_url\": {{\"url\": ...}}"
                                ))
                            })?;
                        images.push(image_from_url(url, options)?);
                        text.push_str(MEDIA_MARKER);
                    }
                    other => {
                        return Err(Error::InvalidArgument(format!(
                            "content part {i}: type {other:?} is not supported (text, image_url)"
                        )))
                    }
                }
            }
            Ok((text, images))
        }
        other => Err(Error::InvalidArgument(format!(
            "message content must be a string or an array of parts, not {other}"
        ))),
    }
}

/// An image from an OpenAI `image_url`: a base64 `data:` URL, a `file://` URL or a path.
/// Remote URLs are refused: llmedge never goes to the network.
pub fn image_from_url(url: &str, options: &ImageOptions) -> Result<Image> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',').ok_or_else(|| {
            Error::InvalidArgument("data: URL without a comma before its payload".into())
        })?;
        if !header.ends_with(";base64") {
            return Err(Error::InvalidArgument(
                "only base64 data: URLs are supported for images".into(),
            ));
        }
        // Refuse before decoding: base64 is 4/3 of the bytes.
        options.check_bytes("data URL", data.len() as u64 / 4 * 3)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| Error::Image {
                name: "data URL".into(),
                reason: format!("invalid base64: {e}"),
            })?;
        return Image::from_bytes_with(&bytes, options);
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(Error::InvalidArgument(format!(
            "remote image URLs are not fetched (llmedge works offline): {url}; pass a data: URL or a file path"
        )));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    Image::open_with(path, options)
}

impl ChatMessage {
    /// A user message with images (placed before the text unless it has markers).
    pub fn user_with_images(content: impl Into<String>, images: Vec<Image>) -> ChatMessage {
        let mut m = ChatMessage::user(content);
        m.images = images;
        m
    }

    /// An OpenAI-shaped message object `{"role": ..., "content": string | parts}`, images
    /// decoded with `options`.
    pub fn from_openai(value: &serde_json::Value, options: &ImageOptions) -> Result<ChatMessage> {
        let role = value
            .get("role")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Error::InvalidArgument("message without a string \"role\"".into()))?;
        let (content, images) = parse_content(
            value.get("content").unwrap_or(&serde_json::Value::Null),
            options,
        )?;
        let mut m = ChatMessage::new(role, content);
        m.images = images;
        let text = |k: &str| {
            value
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        m.tool_calls = value.get("tool_calls").cloned().filter(|v| !v.is_null());
        m.tool_call_id = text("tool_call_id");
        m.name = text("name");
        Ok(m)
    }
}

/// Parse a JSON array of OpenAI-shaped messages (see [`ChatMessage::from_openai`]).
pub fn parse_messages_json(json: &str, options: &ImageOptions) -> Result<Vec<ChatMessage>> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::InvalidArgument(format!("messages are not valid JSON: {e}")))?;
    let list = value
        .as_array()
        .ok_or_else(|| Error::InvalidArgument("messages must be a JSON array".into()))?;
    list.iter()
        .map(|m| ChatMessage::from_openai(m, options))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_data_url() -> String {
        let img = image::DynamicImage::new_rgb8(3, 2);
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(out.into_inner())
        )
    }

    #[test]
    fn content_parts_put_markers_where_images_were() {
        let content = serde_json::json!([
            {"type": "text", "text": "Before "},
            {"type": "image_url", "image_url": {"url": png_data_url()}},
            {"type": "text", "text": " after"},
        ]);
        let (text, images) = parse_content(&content, &ImageOptions::default()).unwrap();
        assert_eq!(text, format!("Before {MEDIA_MARKER} after"));
        assert_eq!(images.len(), 1);
        assert_eq!((images[0].width(), images[0].height()), (3, 2));
        let e = parse_content(
            &serde_json::json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]),
            &ImageOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
        let e = parse_content(
            &serde_json::json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]),
            &ImageOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Image);
        let e = parse_content(
            &serde_json::json!([{"type": "audio"}]),
            &ImageOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("audio"), "{e}");
    }

    #[test]
    fn messages_without_markers_get_them_in_front() {
        let img = Image::from_rgb(1, 1, vec![1, 2, 3]).unwrap();
        let m = ChatMessage::user_with_images("Describe.", vec![img.clone(), img.clone()]);
        let (out, images) = prepare_messages(&[ChatMessage::system("s"), m]).unwrap();
        assert_eq!(
            out[1].content,
            format!("{MEDIA_MARKER}{MEDIA_MARKER}Describe.")
        );
        assert_eq!(images.len(), 2);
        let mut bad = ChatMessage::user_with_images(format!("{MEDIA_MARKER} x"), vec![]);
        bad.images = vec![img.clone(), img];
        assert!(prepare_messages(&[bad]).is_err());
    }

    #[test]
    fn cache_evicts_least_recent_by_bytes() {
        let mut c = EmbeddingCache {
            entries: LruCache::unbounded(),
            bytes: 0,
            max_bytes: 3 * 4 * 10,
            max_entries: 10,
        };
        for k in 0..4u32 {
            c.put(("a".into(), k), Arc::new(vec![0.0; 10]));
        }
        assert_eq!(c.entries.len(), 3);
        assert!(c.get(&("a".into(), 0)).is_none());
        assert_eq!(c.bytes, 120);
        c.put(("big".into(), 0), Arc::new(vec![0.0; 100]));
        assert_eq!(
            c.entries.len(),
            3,
            "an entry larger than the cache is not kept"
        );
    }
}
