//! PEFT LoRA adapter folder → llama.cpp GGUF LoRA adapter, in pure Rust.
//!
//! llama.cpp only loads LoRA adapters as GGUF; the usual route (`convert_lora_to_gguf.py`)
//! needs Python, torch and the base model's HF config. This importer needs only the PEFT
//! folder (`adapter_config.json` + `adapter_model.safetensors`) and the base GGUF, and checks
//! every pair against the base so a bad adapter fails here with a clear message instead of
//! inside llama.cpp.
//!
//! # Output layout (the contract the tests check)
//!
//! Metadata: `general.architecture` = the base's architecture, `general.type` = `"adapter"`,
//! `general.name` = the PEFT folder name, `adapter.type` = `"lora"`, `adapter.lora.alpha`
//! (f32, see below).
//!
//! Module → base tensor (`N` = layer number; `base_model.model.` prefix optional, tensor
//! suffix `.lora_A.weight` or `.lora_A.default.weight`, same for B):
//!
//! | PEFT module                          | base tensor                  |
//! |--------------------------------------|------------------------------|
//! | `model.layers.N.self_attn.q_proj`    | `blk.N.attn_q.weight`        |
//! | `model.layers.N.self_attn.k_proj`    | `blk.N.attn_k.weight`        |
//! | `model.layers.N.self_attn.v_proj`    | `blk.N.attn_v.weight`        |
//! | `model.layers.N.self_attn.o_proj`    | `blk.N.attn_output.weight`   |
//! | `model.layers.N.mlp.gate_proj`       | `blk.N.ffn_gate.weight`      |
//! | `model.layers.N.mlp.up_proj`         | `blk.N.ffn_up.weight`        |
//! | `model.layers.N.mlp.down_proj`       | `blk.N.ffn_down.weight`      |
//! | `lm_head`                            | `output.weight` (only if the base has it, i.e. untied embeddings) |
//!
//! (`model.language_model.layers.N` and `language_model.model.layers.N`, used by multimodal
//! Gemma 3 checkpoints, are accepted as spellings of `model.layers.N`.)
//!
//! For each pair two tensors are written, pairs ordered by layer then q, k, v, o, gate, up,
//! down (lm_head last), `lora_a` before `lora_b`:
//! - `<base tensor>.lora_a`: ggml ne = `[in, r]`; the bytes are PEFT `lora_A` (row-major
//!   `[r, in]`) unchanged.
//! - `<base tensor>.lora_b`: ggml ne = `[r, out]`; the bytes are PEFT `lora_B` (row-major
//!   `[out, r]`), rows permuted for llama q/k (below).
//!
//! The base tensor must have ne = `[in, out]`, and both halves rank `r` (the config's `r`).
//!
//! Values are converted to [`ImportOptions::out_type`] (F32 or F16); F32→F32 and F16→F16
//! are bit-exact copies, BF16/F16/F32 inputs are otherwise widened to f32 and, for F16,
//! rounded to nearest even.
//!
//! **Rope permutation (architecture `llama` only).** `convert_hf_to_gguf.py` permutes the
//! output rows of `q_proj`/`k_proj` (HF's half-split rope layout → GGML's interleaved one),
//! so the adapter's `lora_B` of those modules must get the same row permutation or the delta
//! lands on the wrong rows:
//! `B.reshape(n_head, 2, out / n_head / 2, r).swapaxes(1, 2).reshape(out, r)`, with
//! `n_head = llama.attention.head_count` for q and `llama.attention.head_count_kv` (default:
//! head_count) for k. `lora_A` is never permuted. `qwen2` and `gemma3` are converted without
//! permutation, so their B is copied unchanged.
//!
//! **Alpha.** llama.cpp scales the delta by `user_scale × adapter.lora.alpha / r`. PEFT's
//! scale is `lora_alpha / r`, or `lora_alpha / sqrt(r)` with rsLoRA, so the importer writes
//! `alpha = lora_alpha`, or `lora_alpha × sqrt(r)` when `use_rslora` is true.
//!
//! Refused (all reasons listed together in one [`Error::Adapter`]): `peft_type` other than
//! `LORA`, DoRA, `modules_to_save`, `rank_pattern`/`alpha_pattern`, `bias` other than
//! `"none"`, `fan_in_fan_out`, embedding LoRA (`lora_embedding_A/B`), bias tensors, unknown
//! modules or tensors, architectures other than llama/qwen2/gemma3, half-pairs, dtypes other
//! than F32/F16/BF16, and pairs whose shapes do not fit the base model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::gguf_file::{write_gguf, GgufFile, GgufValue, TensorSpec, GGML_TYPE_F16, GGML_TYPE_F32};

/// Architectures whose tensor naming (and permutation rules) this importer knows.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "gemma3"];

/// How many items of one kind of problem an error message lists before summarising.
const MAX_LISTED: usize = 10;

/// Import settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// The base GGUF model the adapter was trained on: its architecture, tensor shapes and
    /// head counts decide the mapping and are checked against the adapter.
    pub base: PathBuf,
    /// ggml type of the written A/B tensors: [`GGML_TYPE_F32`] (default, lossless for F32
    /// adapters) or [`GGML_TYPE_F16`] (half the size).
    pub out_type: u32,
}

impl ImportOptions {
    /// F32 output for the base model at `base`.
    pub fn new(base: impl Into<PathBuf>) -> ImportOptions {
        ImportOptions {
            base: base.into(),
            out_type: GGML_TYPE_F32,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportReport {
    /// The base (and adapter) architecture.
    pub architecture: String,
    pub rank: u32,
    /// `adapter.lora.alpha` as written to the GGUF.
    pub alpha: f32,
    /// `lora_alpha` from adapter_config.json.
    pub peft_alpha: f32,
    pub use_rslora: bool,
    /// Number of A/B pairs (the file holds twice as many tensors).
    pub tensors: usize,
    /// Total elements of all A and B tensors.
    pub parameters: u64,
    pub out: PathBuf,
}

/// The fields of PEFT's `adapter_config.json` that matter; unknown fields are ignored because
/// PEFT adds new ones every release. Options are lenient about `null`.
#[derive(Debug, Deserialize)]
struct AdapterConfig {
    peft_type: Option<String>,
    r: u32,
    lora_alpha: f32,
    #[serde(default)]
    target_modules: Option<serde_json::Value>,
    #[serde(default)]
    use_rslora: Option<bool>,
    #[serde(default)]
    use_dora: Option<bool>,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    rank_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    alpha_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    fan_in_fan_out: Option<bool>,
}

/// The linear layers LoRA can target, in output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Proj {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
    LmHead,
}

impl Proj {
    fn from_suffix(s: &str) -> Option<Proj> {
        Some(match s {
            "self_attn.q_proj" => Proj::Q,
            "self_attn.k_proj" => Proj::K,
            "self_attn.v_proj" => Proj::V,
            "self_attn.o_proj" => Proj::O,
            "mlp.gate_proj" => Proj::Gate,
            "mlp.up_proj" => Proj::Up,
            "mlp.down_proj" => Proj::Down,
            _ => return None,
        })
    }

    fn gguf_name(self) -> &'static str {
        match self {
            Proj::Q => "attn_q",
            Proj::K => "attn_k",
            Proj::V => "attn_v",
            Proj::O => "attn_output",
            Proj::Gate => "ffn_gate",
            Proj::Up => "ffn_up",
            Proj::Down => "ffn_down",
            Proj::LmHead => "output",
        }
    }
}

/// Where a PEFT module lands in the base model: sort key and base tensor name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    layer: u32,
    proj: Proj,
}

impl Target {
    fn base_tensor(&self) -> String {
        match self.proj {
            Proj::LmHead => "output.weight".into(),
            p => format!("blk.{}.{}.weight", self.layer, p.gguf_name()),
        }
    }
}

/// Maps a PEFT module path (prefix already stripped) to its base tensor.
fn map_module(module: &str) -> Option<Target> {
    if module == "lm_head" {
        return Some(Target {
            layer: u32::MAX,
            proj: Proj::LmHead,
        });
    }
    let rest = [
        "model.layers.",
        "model.language_model.layers.",
        "language_model.model.layers.",
    ]
    .iter()
    .find_map(|p| module.strip_prefix(p))?;
    let (n, suffix) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Target {
        layer: n.parse().ok()?,
        proj: Proj::from_suffix(suffix)?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    A,
    B,
}

/// What a safetensors tensor name is.
#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    Lora(&'a str, Half),
    Embedding,
    Magnitude,
    Bias,
    Other,
}

fn classify(name: &str) -> Kind<'_> {
    let n = name.strip_prefix("base_model.model.").unwrap_or(name);
    if n.contains("lora_embedding_A") || n.contains("lora_embedding_B") {
        return Kind::Embedding;
    }
    if n.contains("lora_magnitude_vector") {
        return Kind::Magnitude;
    }
    for (suffix, half) in [
        (".lora_A.weight", Half::A),
        (".lora_A.default.weight", Half::A),
        (".lora_B.weight", Half::B),
        (".lora_B.default.weight", Half::B),
    ] {
        if let Some(module) = n.strip_suffix(suffix) {
            return Kind::Lora(module, half);
        }
    }
    if n.ends_with(".bias") {
        return Kind::Bias;
    }
    Kind::Other
}

/// Everything wrong with an adapter, grouped by kind, so one error tells the user all of it
/// instead of one problem per attempt.
#[derive(Default)]
struct Problems(Vec<(&'static str, Vec<String>)>);

impl Problems {
    fn add(&mut self, kind: &'static str, item: impl Into<String>) {
        let item = item.into();
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, items)) => items.push(item),
            None => self.0.push((kind, vec![item])),
        }
    }

    fn check(self, path: &Path) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = self
            .0
            .into_iter()
            .map(|(kind, items)| {
                let mut listed = items.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>();
                if items.len() > MAX_LISTED {
                    listed.push(format!("and {} more", items.len() - MAX_LISTED));
                }
                format!("{kind}: {}", listed.join(", "))
            })
            .collect();
        Err(Error::Adapter {
            path: path.to_path_buf(),
            reason: format!("cannot import: {}", parts.join("; ")),
        })
    }
}

/// One validated A/B pair ready to write.
struct Pair {
    base: String,
    a: String,
    b: String,
    in_features: u64,
    out_features: u64,
    /// `Some(n_head)` when B's rows need the llama rope permutation.
    permute_heads: Option<u64>,
}

/// Converts the PEFT adapter in `peft_dir` for the base model `options.base` and writes it
/// atomically to `out` (see the module docs for the exact layout).
///
/// Errors: [`Error::Io`] for missing/unreadable files, [`Error::InvalidModel`] for a bad base
/// GGUF, [`Error::InvalidArgument`] for a bad `out_type`, and one [`Error::Adapter`] listing
/// every reason the adapter cannot be imported.
pub fn import_peft(peft_dir: &Path, out: &Path, options: &ImportOptions) -> Result<ImportReport> {
    if options.out_type != GGML_TYPE_F32 && options.out_type != GGML_TYPE_F16 {
        return Err(Error::InvalidArgument(format!(
            "LoRA output type must be f32 or f16, not {}",
            crate::gguf_file::type_name(options.out_type)
        )));
    }
    let config_path = peft_dir.join("adapter_config.json");
    let config_text =
        std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let config: AdapterConfig = serde_json::from_str(&config_text).map_err(|e| Error::Adapter {
        path: config_path.clone(),
        reason: format!("not a PEFT LoRA config: {e}"),
    })?;

    let st_path = peft_dir.join("adapter_model.safetensors");
    if !st_path.exists() && peft_dir.join("adapter_model.bin").exists() {
        return Err(Error::Adapter {
            path: peft_dir.to_path_buf(),
            reason: "only adapter_model.bin (pickle) found; save the adapter with \
                     safe_serialization=True to get adapter_model.safetensors"
                .into(),
        });
    }
    let st_bytes = std::fs::read(&st_path).map_err(|e| Error::io(&st_path, e))?;
    let st = SafeTensors::deserialize(&st_bytes).map_err(|e| Error::Adapter {
        path: st_path.clone(),
        reason: format!("invalid safetensors file: {e}"),
    })?;

    let base = GgufFile::open(&options.base)?;
    let arch = base.architecture().unwrap_or("").to_string();

    let mut problems = Problems::default();
    check_config(&config, &mut problems);
    if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
        problems.add(
            "unsupported base architecture (llama, qwen2 and gemma3 are supported)",
            if arch.is_empty() { "<none>" } else { &arch },
        );
    }

    // Group tensors into pairs by target.
    let mut halves: BTreeMap<Target, (String, Option<String>, Option<String>)> = BTreeMap::new();
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    for name in names {
        match classify(name) {
            Kind::Lora(module, half) => match map_module(module) {
                Some(target) => {
                    let entry = halves
                        .entry(target)
                        .or_insert_with(|| (module.to_string(), None, None));
                    match half {
                        Half::A => entry.1 = Some(name.to_string()),
                        Half::B => entry.2 = Some(name.to_string()),
                    }
                }
                None => problems.add("unknown modules (no llama.cpp tensor for them)", module),
            },
            Kind::Embedding => problems.add("embedding LoRA (lora_embedding_A/B)", name),
            Kind::Magnitude => problems.add("DoRA (not supported by llama.cpp)", name),
            Kind::Bias => problems.add("bias tensors", name),
            Kind::Other => problems.add("unknown tensors", name),
        }
    }
    if halves.is_empty() {
        problems.add("no LoRA weights", "no lora_A/lora_B tensors found");
    }

    let r = u64::from(config.r);
    let n_head = |key: &str| base.get_u64(&format!("{arch}.attention.{key}"));
    let mut pairs = Vec::with_capacity(halves.len());
    for (target, (module, a, b)) in &halves {
        let (Some(a), Some(b)) = (a, b) else {
            let missing = if a.is_none() { "lora_A" } else { "lora_B" };
            problems.add("incomplete pairs", format!("{module} has no {missing}"));
            continue;
        };
        let base_name = target.base_tensor();
        let Some(bt) = base.tensor(&base_name) else {
            if target.proj == Proj::LmHead {
                problems.add(
                    "lm_head on a model with tied embeddings (the base has no output.weight)",
                    module.as_str(),
                );
            } else {
                problems.add("modules missing from the base model", base_name);
            }
            continue;
        };
        let (Ok(av), Ok(bv)) = (st.tensor(a), st.tensor(b)) else {
            continue; // names came from the file itself
        };
        for v in [(a, &av), (b, &bv)] {
            if !matches!(v.1.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
                problems.add(
                    "unsupported dtypes (F32, F16, BF16 are)",
                    format!("{} is {:?}", v.0, v.1.dtype()),
                );
            }
        }
        let (ash, bsh) = (av.shape(), bv.shape());
        let shape_ok = ash.len() == 2
            && bsh.len() == 2
            && ash[0] as u64 == r
            && bsh[1] as u64 == r
            && bt.dims == [ash[1] as u64, bsh[0] as u64];
        if !shape_ok {
            problems.add(
                "shapes that do not fit the base model",
                format!(
                    "{base_name} has ne {:?} (needs A [r={r}, in={}] and B [out={}, r={r}]) \
                     but {module} has A {ash:?} and B {bsh:?}",
                    bt.dims,
                    bt.dims.first().copied().unwrap_or(0),
                    bt.dims.get(1).copied().unwrap_or(0),
                ),
            );
            continue;
        }
        let (in_features, out_features) = (ash[1] as u64, bsh[0] as u64);
        let permute_heads = match (arch.as_str(), target.proj) {
            ("llama", Proj::Q) => Some(n_head("head_count")),
            ("llama", Proj::K) => Some(n_head("head_count_kv").or_else(|| n_head("head_count"))),
            _ => None,
        };
        let permute_heads = match permute_heads {
            None => None,
            Some(Some(h))
                if h.checked_mul(2)
                    .is_some_and(|d| d > 0 && out_features % d == 0) =>
            {
                Some(h)
            }
            Some(h) => {
                problems.add(
                    "rope permutation impossible",
                    format!(
                        "{base_name}: {out_features} rows cannot be split into {} heads \
                         (from {arch}.attention.head_count[_kv])",
                        h.map_or("unknown".to_string(), |h| h.to_string())
                    ),
                );
                continue;
            }
        };
        pairs.push(Pair {
            base: base_name,
            a: a.clone(),
            b: b.clone(),
            in_features,
            out_features,
            permute_heads,
        });
    }
    problems.check(peft_dir)?;

    let use_rslora = config.use_rslora.unwrap_or(false);
    let alpha = if use_rslora {
        (f64::from(config.lora_alpha) * (r as f64).sqrt()) as f32
    } else {
        config.lora_alpha
    };
    let folder = peft_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "adapter".into());
    let metadata = vec![
        (
            "general.architecture".to_string(),
            GgufValue::String(arch.clone()),
        ),
        (
            "general.type".to_string(),
            GgufValue::String("adapter".into()),
        ),
        ("general.name".to_string(), GgufValue::String(folder)),
        ("adapter.type".to_string(), GgufValue::String("lora".into())),
        ("adapter.lora.alpha".to_string(), GgufValue::F32(alpha)),
    ];
    let mut specs = Vec::with_capacity(pairs.len() * 2);
    let mut parameters = 0u64;
    for p in &pairs {
        specs.push(TensorSpec {
            name: format!("{}.lora_a", p.base),
            dims: vec![p.in_features, r],
            ggml_type: options.out_type,
        });
        specs.push(TensorSpec {
            name: format!("{}.lora_b", p.base),
            dims: vec![r, p.out_features],
            ggml_type: options.out_type,
        });
        parameters += r * (p.in_features + p.out_features);
    }

    write_gguf(out, &metadata, &specs, |i| {
        let p = &pairs[i / 2];
        let name = if i % 2 == 0 { &p.a } else { &p.b };
        let view = st.tensor(name).map_err(|e| Error::Adapter {
            path: st_path.clone(),
            reason: format!("{name}: {e}"),
        })?;
        let bytes = convert(view.dtype(), view.data(), options.out_type);
        match (i % 2, p.permute_heads) {
            (1, Some(h)) => Ok(permute_rows(&bytes, p.out_features, h)),
            _ => Ok(bytes),
        }
    })?;

    Ok(ImportReport {
        architecture: arch,
        rank: config.r,
        alpha,
        peft_alpha: config.lora_alpha,
        use_rslora,
        tensors: pairs.len(),
        parameters,
        out: out.to_path_buf(),
    })
}

/// Config-level refusals.
fn check_config(c: &AdapterConfig, problems: &mut Problems) {
    match c.peft_type.as_deref() {
        Some("LORA") => {}
        other => problems.add("peft_type must be LORA", format!("{other:?}")),
    }
    if c.r == 0 {
        problems.add("rank", "r = 0");
    }
    if c.use_dora == Some(true) {
        problems.add("DoRA (not supported by llama.cpp)", "use_dora = true");
    }
    if let Some(m) = c.modules_to_save.as_ref().filter(|m| !m.is_empty()) {
        problems.add(
            "modules_to_save (fully trained modules are not LoRA)",
            m.join(", "),
        );
    }
    for (key, pattern) in [
        ("rank_pattern", &c.rank_pattern),
        ("alpha_pattern", &c.alpha_pattern),
    ] {
        if let Some(p) = pattern.as_ref().filter(|p| !p.is_empty()) {
            let keys: Vec<&str> = p.keys().map(String::as_str).collect();
            problems.add(
                "per-module ranks/alphas are not supported",
                format!("{key}: {}", keys.join(", ")),
            );
        }
    }
    if let Some(b) = c.bias.as_deref().filter(|b| *b != "none") {
        problems.add("bias must be \"none\"", format!("bias = {b:?}"));
    }
    if c.fan_in_fan_out == Some(true) {
        problems.add("fan_in_fan_out (Conv1D layout)", "fan_in_fan_out = true");
    }
    if let Some(t) = &c.target_modules {
        if !(t.is_string() || t.is_array() || t.is_null()) {
            problems.add("target_modules must be a list or a string", t.to_string());
        }
    }
}

/// Re-encodes little-endian `data` of `dtype` (F32/F16/BF16, checked by the caller) as
/// `out_type` (F32/F16). Same-type conversions copy the bytes so they stay bit-exact.
fn convert(dtype: Dtype, data: &[u8], out_type: u32) -> Vec<u8> {
    match (dtype, out_type) {
        (Dtype::F32, GGML_TYPE_F32) | (Dtype::F16, GGML_TYPE_F16) => return data.to_vec(),
        _ => {}
    }
    let values: Vec<f32> = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    };
    if out_type == GGML_TYPE_F16 {
        values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect()
    } else {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// llama's rope row permutation of a row-major `[rows, r]` matrix (any element size):
/// numpy `w.reshape(n_head, 2, rows // n_head // 2, r).swapaxes(1, 2).reshape(rows, r)`,
/// i.e. new row `h·d + 2j + k` is old row `h·d + k·(d/2) + j`, with `d = rows / n_head`.
/// The caller guarantees `rows % (2·n_head) == 0`.
fn permute_rows(bytes: &[u8], rows: u64, n_head: u64) -> Vec<u8> {
    let rows = rows as usize;
    let row_len = bytes.len() / rows.max(1);
    let head_dim = rows / n_head as usize;
    let half = head_dim / 2;
    let mut out = Vec::with_capacity(bytes.len());
    for h in 0..n_head as usize {
        for j in 0..half {
            for k in 0..2 {
                let src = (h * head_dim + k * half + j) * row_len;
                out.extend_from_slice(&bytes[src..src + row_len]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf_file::tensor_size;
    use safetensors::tensor::TensorView;

    const N_EMBD: u64 = 8;
    const N_HEAD: u64 = 2;
    const N_KV: u64 = 1;
    const HEAD_DIM: u64 = N_EMBD / N_HEAD;

    /// A tiny llama-like base: 2 layers, n_embd 8, 2 heads, 1 kv head (q [8,8], k/v [8,4]).
    fn write_base(dir: &Path, arch: &str, with_output: bool) -> PathBuf {
        let path = dir.join(format!("base-{arch}.gguf"));
        let s = |v: &str| GgufValue::String(v.into());
        let meta = vec![
            ("general.architecture".to_string(), s(arch)),
            (
                format!("{arch}.attention.head_count"),
                GgufValue::U32(N_HEAD as u32),
            ),
            (
                format!("{arch}.attention.head_count_kv"),
                GgufValue::U32(N_KV as u32),
            ),
        ];
        let mut specs = Vec::new();
        for i in 0..2 {
            for (n, out) in [
                ("attn_q", N_EMBD),
                ("attn_k", N_KV * HEAD_DIM),
                ("attn_v", 4),
            ] {
                specs.push(TensorSpec {
                    name: format!("blk.{i}.{n}.weight"),
                    dims: vec![N_EMBD, out],
                    ggml_type: GGML_TYPE_F32,
                });
            }
        }
        if with_output {
            specs.push(TensorSpec {
                name: "output.weight".into(),
                dims: vec![N_EMBD, 16],
                ggml_type: GGML_TYPE_F32,
            });
        }
        let sizes: Vec<u64> = specs
            .iter()
            .map(|t| tensor_size(t.ggml_type, &t.dims).unwrap())
            .collect();
        write_gguf(&path, &meta, &specs, |i| Ok(vec![0; sizes[i] as usize])).unwrap();
        path
    }

    /// Distinct values so any misplaced element shows.
    fn values(seed: usize, n: usize) -> Vec<f32> {
        (0..n).map(|i| (seed * 1000 + i) as f32 * 0.001).collect()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// (name, shape, f32 values) written as `dtype`.
    type Raw = (String, Vec<usize>, Vec<f32>);

    fn write_peft(dir: &Path, config: serde_json::Value, tensors: &[Raw], dtype: Dtype) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
        let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(n, s, v)| {
                let bytes = match dtype {
                    Dtype::F32 => f32_bytes(v),
                    Dtype::F16 => v
                        .iter()
                        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                        .collect(),
                    _ => v
                        .iter()
                        .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                        .collect(),
                };
                (n.clone(), s.clone(), bytes)
            })
            .collect();
        let views: Vec<(String, TensorView)> = encoded
            .iter()
            .map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join("adapter_model.safetensors"))
            .unwrap();
    }

    fn config(r: u32, alpha: f32, extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({
            "peft_type": "LORA", "r": r, "lora_alpha": alpha,
            "target_modules": ["q_proj", "k_proj", "v_proj"], "bias": "none",
            "use_rslora": false, "modules_to_save": null,
        });
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        c
    }

    /// A and B for q, k, v of both layers.
    fn qkv_tensors(r: usize, default_suffix: bool) -> Vec<Raw> {
        let mut t = Vec::new();
        let mut seed = 0;
        for i in 0..2 {
            for (m, out) in [("q_proj", 8), ("k_proj", 4), ("v_proj", 4)] {
                let sfx = if default_suffix { ".default" } else { "" };
                let p = format!("base_model.model.model.layers.{i}.self_attn.{m}");
                seed += 1;
                t.push((
                    format!("{p}.lora_A{sfx}.weight"),
                    vec![r, 8],
                    values(seed, r * 8),
                ));
                seed += 1;
                t.push((
                    format!("{p}.lora_B{sfx}.weight"),
                    vec![out, r],
                    values(seed, out * r),
                ));
            }
        }
        t
    }

    /// The documented permutation, written independently as 4-D indexing:
    /// Y[h][j][k][c] = X[h][k][j][c] with X = B viewed as [n_head, 2, d/2, r].
    fn expected_permuted(b: &[f32], rows: usize, r: usize, n_head: usize) -> Vec<f32> {
        let half = rows / n_head / 2;
        let mut y = Vec::new();
        for h in 0..n_head {
            for j in 0..half {
                for k in 0..2 {
                    for c in 0..r {
                        y.push(b[((h * 2 + k) * half + j) * r + c]);
                    }
                }
            }
        }
        y
    }

    fn adapter_reason(r: Result<ImportReport>) -> String {
        match r {
            Err(Error::Adapter { reason, .. }) => reason,
            other => panic!("expected Error::Adapter, got {other:?}"),
        }
    }

    #[test]
    fn llama_layout_names_dims_alpha_and_permutation() {
        let dir = tempfile::tempdir().unwrap();
        let base = write_base(dir.path(), "llama", false);
        let peft = dir.path().join("my-adapter");
        let tensors = qkv_tensors(2, false);
        write_peft(
            &peft,
            config(2, 16.0, serde_json::json!({})),
            &tensors,
            Dtype::F32,
        );
        let out = dir.path().join("out.gguf");
        let rep = import_peft(&peft, &out, &ImportOptions::new(&base)).unwrap();
        assert_eq!(
            (rep.architecture.as_str(), rep.rank, rep.tensors),
            ("llama", 2, 6)
        );
        assert_eq!(
            (rep.alpha, rep.peft_alpha, rep.use_rslora),
            (16.0, 16.0, false)
        );
        assert_eq!(rep.parameters, 2 * (2 * (8 + 8) + 2 * (2 * (8 + 4))));

        let g = GgufFile::open(&out).unwrap();
        assert_eq!(g.architecture(), Some("llama"));
        assert_eq!(g.get_str("general.type"), Some("adapter"));
        assert_eq!(g.get_str("adapter.type"), Some("lora"));
        assert_eq!(g.get_str("general.name"), Some("my-adapter"));
        assert_eq!(g.get("adapter.lora.alpha"), Some(&GgufValue::F32(16.0)));
        let names: Vec<&str> = g.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            &names[..4],
            [
                "blk.0.attn_q.weight.lora_a",
                "blk.0.attn_q.weight.lora_b",
                "blk.0.attn_k.weight.lora_a",
                "blk.0.attn_k.weight.lora_b",
            ]
        );
        assert_eq!(names.len(), 12);

        let get = |n: &str| &tensors.iter().find(|t| t.0.contains(n)).unwrap().2;
        for (m, base_name, rows, heads) in [
            ("q_proj", "attn_q", 8, Some(N_HEAD)),
            ("k_proj", "attn_k", 4, Some(N_KV)),
            ("v_proj", "attn_v", 4, None),
        ] {
            for layer in 0..2 {
                let p = format!("layers.{layer}.self_attn.{m}");
                let ta = g
                    .tensor(&format!("blk.{layer}.{base_name}.weight.lora_a"))
                    .unwrap();
                let tb = g
                    .tensor(&format!("blk.{layer}.{base_name}.weight.lora_b"))
                    .unwrap();
                assert_eq!(ta.dims, vec![8, 2]);
                assert_eq!(tb.dims, vec![2, rows as u64]);
                assert_eq!(
                    g.read_tensor(ta).unwrap(),
                    f32_bytes(get(&format!("{p}.lora_A")))
                );
                let b = get(&format!("{p}.lora_B"));
                let want = match heads {
                    Some(h) => expected_permuted(b, rows, 2, h as usize),
                    None => b.clone(),
                };
                assert_eq!(g.read_tensor(tb).unwrap(), f32_bytes(&want), "{p}");
                if heads.is_some() {
                    assert_ne!(want, *b, "permutation must move rows");
                }
            }
        }
    }

    #[test]
    fn rslora_f16_default_suffix_and_qwen2_without_permutation() {
        let dir = tempfile::tempdir().unwrap();
        let base = write_base(dir.path(), "qwen2", false);
        let peft = dir.path().join("p");
        let tensors = qkv_tensors(4, true);
        let cfg = config(4, 8.0, serde_json::json!({"use_rslora": true}));
        write_peft(&peft, cfg, &tensors, Dtype::BF16);
        let out = dir.path().join("out.gguf");
        let opts = ImportOptions {
            base,
            out_type: GGML_TYPE_F16,
        };
        let rep = import_peft(&peft, &out, &opts).unwrap();
        assert_eq!((rep.alpha, rep.use_rslora), (16.0, true));
        let g = GgufFile::open(&out).unwrap();
        assert_eq!(g.get_f32("adapter.lora.alpha"), Some(16.0));
        let tb = g.tensor("blk.1.attn_q.weight.lora_b").unwrap();
        assert_eq!((tb.ggml_type, tb.dims.clone()), (GGML_TYPE_F16, vec![4, 8]));
        let b = &tensors
            .iter()
            .find(|t| t.0.contains("layers.1.self_attn.q_proj.lora_B"))
            .unwrap()
            .2;
        let want: Vec<u8> = b
            .iter()
            .flat_map(|x| half::f16::from_f32(half::bf16::from_f32(*x).to_f32()).to_le_bytes())
            .collect();
        assert_eq!(g.read_tensor(tb).unwrap(), want, "qwen2: no permutation");
    }

    #[test]
    fn refusals_are_listed_together() {
        let dir = tempfile::tempdir().unwrap();
        let base = write_base(dir.path(), "llama", false);
        let peft = dir.path().join("dora");
        let mut tensors = qkv_tensors(2, false);
        tensors.push((
            "base_model.model.model.embed_tokens.lora_embedding_A".into(),
            vec![2, 16],
            values(99, 32),
        ));
        tensors.push((
            "base_model.model.model.embed_tokens.lora_embedding_B".into(),
            vec![8, 2],
            values(98, 16),
        ));
        tensors.push((
            "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector".into(),
            vec![8],
            values(97, 8),
        ));
        tensors.push((
            "base_model.model.model.layers.0.self_attn.q_proj.bias".into(),
            vec![8],
            values(96, 8),
        ));
        tensors.push((
            "base_model.model.model.layers.0.mlp.fc1.lora_A.weight".into(),
            vec![2, 8],
            values(95, 16),
        ));
        tensors.push((
            "base_model.model.model.layers.1.mlp.up_proj.lora_A.weight".into(),
            vec![2, 8],
            values(94, 16),
        ));
        tensors.push((
            "base_model.model.lm_head.lora_A.weight".into(),
            vec![2, 8],
            values(93, 16),
        ));
        tensors.push((
            "base_model.model.lm_head.lora_B.weight".into(),
            vec![16, 2],
            values(92, 32),
        ));
        let extra = serde_json::json!({
            "use_dora": true, "modules_to_save": ["score"], "rank_pattern": {"q_proj": 4},
            "bias": "all",
        });
        write_peft(&peft, config(2, 16.0, extra), &tensors, Dtype::F32);
        let out = dir.path().join("out.gguf");
        let r = adapter_reason(import_peft(&peft, &out, &ImportOptions::new(&base)));
        for needle in [
            "DoRA",
            "use_dora = true",
            "lora_magnitude_vector",
            "modules_to_save",
            "score",
            "rank_pattern: q_proj",
            "bias = \"all\"",
            "embed_tokens.lora_embedding_A",
            "embed_tokens.lora_embedding_B",
            "bias tensors",
            "model.layers.0.mlp.fc1",
            "model.layers.1.mlp.up_proj has no lora_B",
            "tied embeddings",
        ] {
            assert!(r.contains(needle), "missing {needle:?} in: {r}");
        }
        assert!(!out.exists());
    }

    #[test]
    fn shape_mismatch_and_unsupported_arch() {
        let dir = tempfile::tempdir().unwrap();
        let base = write_base(dir.path(), "llama", true);
        let peft = dir.path().join("p");
        let mut tensors = qkv_tensors(2, false);
        tensors[0].1 = vec![2, 4]; // layer 0 q_proj lora_A with in = 4
        tensors[0].2.truncate(8);
        tensors[3].1 = vec![4, 3]; // layer 0 k_proj lora_B with rank 3
        tensors[3].2 = values(50, 12);
        write_peft(
            &peft,
            config(2, 16.0, serde_json::json!({})),
            &tensors,
            Dtype::F32,
        );
        let out = dir.path().join("out.gguf");
        let r = adapter_reason(import_peft(&peft, &out, &ImportOptions::new(&base)));
        assert!(r.contains("blk.0.attn_q.weight has ne [8, 8]"), "{r}");
        assert!(r.contains("blk.0.attn_k.weight"), "{r}");

        let base = write_base(dir.path(), "phi3", false);
        let peft = dir.path().join("ok");
        write_peft(
            &peft,
            config(2, 16.0, serde_json::json!({})),
            &qkv_tensors(2, false),
            Dtype::F32,
        );
        let r = adapter_reason(import_peft(&peft, &out, &ImportOptions::new(&base)));
        assert!(
            r.contains("unsupported base architecture") && r.contains("phi3"),
            "{r}"
        );
    }

    #[test]
    fn lm_head_maps_to_output_when_untied() {
        let dir = tempfile::tempdir().unwrap();
        let base = write_base(dir.path(), "llama", true);
        let peft = dir.path().join("p");
        let tensors = vec![
            (
                "base_model.model.lm_head.lora_A.weight".into(),
                vec![2, 8],
                values(1, 16),
            ),
            (
                "base_model.model.lm_head.lora_B.weight".into(),
                vec![16, 2],
                values(2, 32),
            ),
        ];
        write_peft(
            &peft,
            config(2, 4.0, serde_json::json!({})),
            &tensors,
            Dtype::F32,
        );
        let out = dir.path().join("out.gguf");
        import_peft(&peft, &out, &ImportOptions::new(&base)).unwrap();
        let g = GgufFile::open(&out).unwrap();
        assert_eq!(g.tensor("output.weight.lora_b").unwrap().dims, vec![2, 16]);
    }

    #[test]
    fn bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let base = write_base(dir.path(), "llama", false);
        let out = dir.path().join("out.gguf");
        let missing = import_peft(&dir.path().join("nope"), &out, &ImportOptions::new(&base));
        assert!(matches!(missing, Err(Error::Io { .. })));
        let peft = dir.path().join("p");
        write_peft(
            &peft,
            config(2, 1.0, serde_json::json!({"peft_type": "IA3"})),
            &qkv_tensors(2, false),
            Dtype::F32,
        );
        assert!(
            adapter_reason(import_peft(&peft, &out, &ImportOptions::new(&base)))
                .contains("peft_type must be LORA")
        );
        let opts = ImportOptions { base, out_type: 8 };
        assert!(matches!(
            import_peft(&peft, &out, &opts),
            Err(Error::InvalidArgument(_))
        ));
        std::fs::write(peft.join("adapter_config.json"), "{\"r\": \"x\"}").unwrap();
        assert!(matches!(
            import_peft(
                &peft,
                &out,
                &ImportOptions::new(dir.path().join("base-llama.gguf"))
            ),
            Err(Error::Adapter { .. })
        ));
    }

    #[test]
    fn module_mapping() {
        let t = map_module("model.layers.12.mlp.down_proj").unwrap();
        assert_eq!(t.base_tensor(), "blk.12.ffn_down.weight");
        let t = map_module("model.language_model.layers.3.self_attn.o_proj").unwrap();
        assert_eq!(t.base_tensor(), "blk.3.attn_output.weight");
        assert_eq!(map_module("model.layers.+1.mlp.up_proj"), None);
        assert_eq!(map_module("model.layers.1.mlp.fc1"), None);
        assert_eq!(
            classify("model.layers.0.self_attn.q_proj.lora_B.default.weight"),
            Kind::Lora("model.layers.0.self_attn.q_proj", Half::B)
        );
    }
}
