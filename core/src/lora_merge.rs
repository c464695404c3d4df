//! Merging LoRA adapters into a base model: W' = W + Σ scaleᵢ·Bᵢ·Aᵢ, written as a new GGUF.
//!
//! Every touched tensor is dequantised with ggml's own `to_float`, updated in f32 and
//! requantised with ggml's `ggml_quantize_chunk` to its original type or the requested one,
//! so the numbers match what llama.cpp computes (and what its `export-lora` tool writes).
//! Untouched tensors and all metadata are copied byte for byte, and the output is written
//! atomically. The effective scale is llama.cpp's: user scale × `adapter.lora.alpha` / rank
//! (the user scale alone when alpha is 0).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::gguf_file::{self, GgufFile, TensorSpec, GGML_TYPE_F32};

/// How to merge.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// ggml type for the merged tensors (`f16`, `q8_0`, …); `None` keeps each one's type.
    pub out_type: Option<String>,
}

/// What `merge_lora` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MergeReport {
    pub output: PathBuf,
    pub merged_tensors: usize,
    pub copied_tensors: usize,
    pub adapters: usize,
    pub output_bytes: u64,
    pub seconds: f64,
}

/// One adapter's update of one base tensor.
struct Delta {
    adapter: usize,
    a: gguf_file::TensorInfo,
    b: gguf_file::TensorInfo,
    rank: usize,
    scale: f32,
}

/// An adapter file, checked against the base model.
pub(crate) struct CheckedAdapter {
    pub(crate) file: GgufFile,
    pub(crate) alpha: f32,
    pub(crate) rank: u64,
    /// (base tensor name, lora_a, lora_b)
    pub(crate) pairs: Vec<(String, gguf_file::TensorInfo, gguf_file::TensorInfo)>,
}

impl CheckedAdapter {
    /// Total parameters of the adapter (elements of every A and B).
    pub(crate) fn parameters(&self) -> u64 {
        self.pairs
            .iter()
            .map(|(_, a, b)| a.n_elements() + b.n_elements())
            .sum()
    }
}

/// Open an adapter GGUF and check it fits `base`: a LoRA adapter, the same architecture,
/// every `X.lora_a`/`X.lora_b` pair complete, `X` present in the base with matching shapes.
/// All problems are reported together.
pub(crate) fn check_adapter(path: &Path, base: &GgufFile) -> Result<CheckedAdapter> {
    let adapter_err = |reason: String| Error::Adapter {
        path: path.to_path_buf(),
        reason,
    };
    let file = GgufFile::open(path).map_err(|e| match e {
        Error::InvalidModel { reason, .. } => adapter_err(format!("not a valid GGUF: {reason}")),
        other => other,
    })?;
    if file.get_str("general.type") != Some("adapter")
        || file.get_str("adapter.type") != Some("lora")
    {
        return Err(adapter_err(format!(
            "not a LoRA adapter (general.type = {:?}, adapter.type = {:?})",
            file.get_str("general.type").unwrap_or("missing"),
            file.get_str("adapter.type").unwrap_or("missing")
        )));
    }
    let (arch, base_arch) = (file.architecture(), base.architecture());
    if arch != base_arch {
        return Err(adapter_err(format!(
            "the adapter is for architecture {}, the model is {}",
            arch.unwrap_or("(none)"),
            base_arch.unwrap_or("(none)")
        )));
    }
    let alpha = file.get_f32("adapter.lora.alpha").unwrap_or(0.0);
    let mut problems = Vec::new();
    let mut pairs = Vec::new();
    let mut rank = None;
    for t in &file.tensors {
        let Some(name) = t.name.strip_suffix(".lora_a") else {
            if !t.name.ends_with(".lora_b") {
                problems.push(format!("{}: not a .lora_a/.lora_b tensor", t.name));
            }
            continue;
        };
        let Some(b) = file.tensor(&format!("{name}.lora_b")) else {
            problems.push(format!("{name}: lora_a without lora_b"));
            continue;
        };
        let Some(w) = base.tensor(name) else {
            problems.push(format!("{name}: no such tensor in the model"));
            continue;
        };
        // W: ne [in, out]; A: ne [in, r]; B: ne [r, out].
        let shapes_ok = t.dims.len() == 2
            && b.dims.len() == 2
            && w.dims.len() == 2
            && t.dims[0] == w.dims[0]
            && b.dims[1] == w.dims[1]
            && t.dims[1] == b.dims[0];
        if !shapes_ok {
            problems.push(format!(
                "{name}: shapes do not fit (model {:?}, lora_a {:?}, lora_b {:?}; expected \
                 lora_a [{in_}, r] and lora_b [r, {out}])",
                w.dims,
                t.dims,
                b.dims,
                in_ = w.dims.first().copied().unwrap_or(0),
                out = w.dims.get(1).copied().unwrap_or(0),
            ));
            continue;
        }
        rank.get_or_insert(t.dims[1]);
        pairs.push((name.to_owned(), t.clone(), b.clone()));
    }
    for t in &file.tensors {
        if let Some(name) = t.name.strip_suffix(".lora_b") {
            if file.tensor(&format!("{name}.lora_a")).is_none() {
                problems.push(format!("{name}: lora_b without lora_a"));
            }
        }
    }
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(8);
        let more = if n > 8 {
            format!(" (and {} more)", n - 8)
        } else {
            String::new()
        };
        return Err(adapter_err(format!("{}{more}", problems.join("; "))));
    }
    if pairs.is_empty() {
        return Err(adapter_err("the adapter has no LoRA tensors".into()));
    }
    Ok(CheckedAdapter {
        file,
        alpha,
        rank: rank.unwrap_or(0),
        pairs,
    })
}

/// Merge `adapters` (path, user scale) into `base` and write the result to `output`.
/// `progress(done, total)` is called after each tensor.
pub fn merge_lora(
    base_path: &Path,
    adapters: &[(PathBuf, f32)],
    output: &Path,
    options: &MergeOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<MergeReport> {
    let started = Instant::now();
    if adapters.is_empty() {
        return Err(Error::InvalidArgument(
            "merge needs at least one adapter".into(),
        ));
    }
    let out_type = match &options.out_type {
        None => None,
        Some(name) => Some(
            gguf_file::type_from_name(&name.to_ascii_lowercase())
                .ok_or_else(|| Error::InvalidArgument(format!("unknown output type {name:?}")))?,
        ),
    };
    if let Some(t) = out_type {
        check_quantizable(t)?;
    }
    let base = GgufFile::open(base_path)?;
    let mut checked = Vec::with_capacity(adapters.len());
    for (path, scale) in adapters {
        if !scale.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "adapter scale for {} is not finite",
                path.display()
            )));
        }
        checked.push(check_adapter(path, &base)?);
    }
    // Per base tensor, the updates to apply.
    let mut deltas: Vec<Vec<Delta>> = (0..base.tensors.len()).map(|_| Vec::new()).collect();
    for (ai, (adapter, (_, user_scale))) in checked.iter().zip(adapters).enumerate() {
        for (name, a, b) in &adapter.pairs {
            let rank = a.dims[1] as usize;
            let scale = if adapter.alpha != 0.0 {
                user_scale * adapter.alpha / rank as f32
            } else {
                *user_scale
            };
            let index = base
                .tensors
                .iter()
                .position(|t| &t.name == name)
                .ok_or_else(|| Error::Internal(format!("{name} vanished from the base")))?;
            deltas[index].push(Delta {
                adapter: ai,
                a: a.clone(),
                b: b.clone(),
                rank,
                scale,
            });
        }
    }
    let specs: Vec<TensorSpec> = base
        .tensors
        .iter()
        .zip(&deltas)
        .map(|(t, d)| TensorSpec {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ggml_type: if d.is_empty() {
                t.ggml_type
            } else {
                out_type.unwrap_or(t.ggml_type)
            },
        })
        .collect();
    for (spec, d) in specs.iter().zip(&deltas) {
        if !d.is_empty() {
            check_quantizable(spec.ggml_type)?;
        }
    }
    let total = specs.len();
    let merged_tensors = deltas.iter().filter(|d| !d.is_empty()).count();
    gguf_file::write_gguf(output, &base.metadata, &specs, |i| {
        let info = &base.tensors[i];
        let raw = base.read_tensor(info)?;
        let bytes = if deltas[i].is_empty() {
            raw
        } else {
            let mut w = to_f32(info.ggml_type, &raw, info.n_elements() as usize)?;
            let n_in = info.dims[0] as usize;
            for d in &deltas[i] {
                let file = &checked[d.adapter].file;
                let a = to_f32(
                    d.a.ggml_type,
                    &file.read_tensor(&d.a)?,
                    d.a.n_elements() as usize,
                )?;
                let b = to_f32(
                    d.b.ggml_type,
                    &file.read_tensor(&d.b)?,
                    d.b.n_elements() as usize,
                )?;
                add_low_rank(&mut w, n_in, &a, &b, d.rank, d.scale);
            }
            from_f32(specs[i].ggml_type, &w, n_in)?
        };
        progress(i + 1, total);
        Ok(bytes)
    })?;
    let output_bytes = std::fs::metadata(output)
        .map_err(|e| Error::io(output, e))?
        .len();
    Ok(MergeReport {
        output: output.to_path_buf(),
        merged_tensors,
        copied_tensors: total - merged_tensors,
        adapters: adapters.len(),
        output_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// W[o][i] += scale · Σₖ B[o][k]·A[k][i], with W row-major [out][in], A [r][in], B [out][r].
fn add_low_rank(w: &mut [f32], n_in: usize, a: &[f32], b: &[f32], rank: usize, scale: f32) {
    for (o, row) in w.chunks_exact_mut(n_in).enumerate() {
        for k in 0..rank {
            let coef = scale * b[o * rank + k];
            if coef == 0.0 {
                continue;
            }
            for (x, &ak) in row.iter_mut().zip(&a[k * n_in..(k + 1) * n_in]) {
                *x += coef * ak;
            }
        }
    }
}

/// ggml's type traits, checked for null.
fn traits(ty: u32) -> Result<&'static llama_cpp_sys_2::ggml_type_traits> {
    // SAFETY: ggml returns a pointer into its static table (or null for an invalid type).
    let t = unsafe { llama_cpp_sys_2::ggml_get_type_traits(ty as llama_cpp_sys_2::ggml_type) };
    // SAFETY: non-null pointers point to a static, immutable table entry.
    unsafe { t.as_ref() }.ok_or_else(|| Error::Internal(format!("ggml has no type {ty}")))
}

/// Types that ggml can write without an importance matrix.
fn check_quantizable(ty: u32) -> Result<()> {
    traits(ty)?;
    // SAFETY: a plain query on a valid type number.
    if unsafe { llama_cpp_sys_2::ggml_quantize_requires_imatrix(ty as llama_cpp_sys_2::ggml_type) }
    {
        return Err(Error::InvalidArgument(format!(
            "type {} needs an importance matrix; choose another output type",
            gguf_file::type_name(ty)
        )));
    }
    Ok(())
}

/// Dequantise `n` elements of type `ty`.
pub(crate) fn to_f32(ty: u32, raw: &[u8], n: usize) -> Result<Vec<f32>> {
    if gguf_file::tensor_size(ty, &[n as u64]) != Some(raw.len() as u64) {
        return Err(Error::Internal(format!(
            "{} bytes do not hold {n} elements of {}",
            raw.len(),
            gguf_file::type_name(ty)
        )));
    }
    if ty == GGML_TYPE_F32 {
        return Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect());
    }
    let to_float = traits(ty)?.to_float.ok_or_else(|| {
        Error::InvalidArgument(format!("cannot dequantise {}", gguf_file::type_name(ty)))
    })?;
    let mut out = vec![0f32; n];
    // SAFETY: `raw` holds exactly `n` elements of `ty` (checked above) and `out` has room for
    // `n` floats; ggml's converter reads and writes only those.
    unsafe { to_float(raw.as_ptr().cast(), out.as_mut_ptr(), n as i64) };
    Ok(out)
}

/// Quantise rows of `n_per_row` floats to `ty`.
pub(crate) fn from_f32(ty: u32, values: &[f32], n_per_row: usize) -> Result<Vec<u8>> {
    let n_rows = values.len() / n_per_row.max(1);
    let size = gguf_file::tensor_size(ty, &[n_per_row as u64, n_rows as u64]).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "rows of {n_per_row} do not fit type {}",
            gguf_file::type_name(ty)
        ))
    })?;
    let mut out = vec![0u8; size as usize];
    // SAFETY: `values` holds n_rows × n_per_row floats and `out` holds exactly the bytes ggml
    // writes for them (tensor_size mirrors ggml_row_size); no importance matrix is passed,
    // which `check_quantizable` ensured the type does not need.
    let written = unsafe {
        llama_cpp_sys_2::ggml_quantize_chunk(
            ty as llama_cpp_sys_2::ggml_type,
            values.as_ptr(),
            out.as_mut_ptr().cast(),
            0,
            n_rows as i64,
            n_per_row as i64,
            std::ptr::null(),
        )
    };
    if written != out.len() {
        return Err(Error::Internal(format!(
            "ggml wrote {written} bytes, expected {}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_rank_update_matches_the_definition() {
        // W 2x3, A 1x3 (r = 1), B 2x1.
        let mut w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        add_low_rank(&mut w, 3, &[1.0, 0.0, -1.0], &[2.0, 3.0], 1, 0.5);
        assert_eq!(w, vec![2.0, 2.0, 2.0, 5.5, 5.0, 4.5]);
    }

    #[test]
    fn f16_round_trip_through_ggml() {
        let values: Vec<f32> = (0..64).map(|i| i as f32 * 0.25 - 4.0).collect();
        let bytes = from_f32(gguf_file::GGML_TYPE_F16, &values, 32).unwrap();
        assert_eq!(bytes.len(), 128);
        assert_eq!(
            to_f32(gguf_file::GGML_TYPE_F16, &bytes, 64).unwrap(),
            values
        );
    }
}
