//! Quantization of GGUF models through llama.cpp's own quantizer (`llama_model_quantize`).
//!
//! llama.cpp decides the per-tensor mix of a file type (Q4_K_M keeps some tensors at Q6_K,
//! for example); llmedge adds what an operator needs around it: names instead of enum
//! numbers, per-tensor overrides to keep chosen tensors at higher precision, a refusal to
//! requantize an already-quantized file unless asked, progress, and an atomic output (the
//! result appears under its name only when complete).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backend::{backend, clear_recent_errors, recent_errors, with_log_observer};
use crate::error::{Error, Result};
use crate::gguf_file::{self, GgufFile, TensorInfo};
use crate::model::{default_threads, file_type_name};

/// The file types `quantize` writes (llama.cpp `llama_ftype` numbers).
const FILE_TYPES: [(u32, &str); 11] = [
    (0, "F32"),
    (1, "F16"),
    (32, "BF16"),
    (7, "Q8_0"),
    (18, "Q6_K"),
    (17, "Q5_K_M"),
    (16, "Q5_K_S"),
    (15, "Q4_K_M"),
    (14, "Q4_K_S"),
    (2, "Q4_0"),
    (25, "IQ4_NL"),
];

/// A target file type, such as `Q4_K_M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType(u32);

impl FileType {
    /// Parse a name such as `q4_k_m` or `Q8_0` (case-insensitive).
    pub fn parse(name: &str) -> Result<FileType> {
        FILE_TYPES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|&(v, _)| FileType(v))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown quantization type {name:?}; supported: {}",
                    Self::names().join(", ")
                ))
            })
    }

    /// Every supported name.
    pub fn names() -> Vec<&'static str> {
        FILE_TYPES.iter().map(|(_, n)| *n).collect()
    }

    /// The canonical name, e.g. `Q4_K_M`.
    pub fn name(self) -> String {
        file_type_name(self.0)
    }
}

/// How to quantize.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    pub file_type: FileType,
    /// Worker threads (default: all cores).
    pub threads: u32,
    /// Allow an input whose tensors are already quantized below Q8_0 (quality loss
    /// accumulates). F32, F16, BF16 and Q8_0 inputs need no flag.
    pub allow_requantize: bool,
    /// Per-tensor overrides: tensors whose name matches the regex get that ggml type
    /// (`f16`, `q8_0`, …), e.g. `("token_embd", "q8_0")` or `("attn_v", "f16")`.
    pub keep: Vec<(String, String)>,
    /// Quantize every tensor to the file type, without llama.cpp's mixtures.
    pub pure: bool,
}

impl QuantizeOptions {
    pub fn new(file_type: FileType) -> Self {
        QuantizeOptions {
            file_type,
            threads: default_threads(),
            allow_requantize: false,
            keep: Vec::new(),
            pure: false,
        }
    }
}

/// One tensor done, as llama.cpp reported it.
#[derive(Debug, Clone)]
pub struct QuantizeProgress {
    pub done: usize,
    pub total: usize,
    pub tensor: String,
}

/// What `quantize` produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuantizeReport {
    pub output: PathBuf,
    pub file_type: String,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub tensors: usize,
    pub seconds: f64,
}

/// Quantize `input` into `output` with llama.cpp's quantizer, calling `progress` after each
/// tensor. `output` is replaced atomically; on failure nothing is left behind.
pub fn quantize(
    input: &Path,
    output: &Path,
    options: &QuantizeOptions,
    progress: impl FnMut(QuantizeProgress) + 'static,
) -> Result<QuantizeReport> {
    let started = Instant::now();
    let source = GgufFile::open(input)?;
    let allow_requantize = check_requantize(&source, options)?;
    crate::model::check_threads(options.threads)?;
    if input.canonicalize().ok() == output.canonicalize().ok() && output.exists() {
        return Err(Error::InvalidArgument(
            "the output must differ from the input".into(),
        ));
    }
    // Regexes are compiled by llama.cpp (std::regex); check them here for a clear error.
    let mut patterns = Vec::with_capacity(options.keep.len());
    let mut types = Vec::with_capacity(options.keep.len());
    for (pattern, ty) in &options.keep {
        regex::Regex::new(pattern).map_err(|e| {
            Error::InvalidArgument(format!("tensor pattern {pattern:?} is not a regex: {e}"))
        })?;
        let ty = gguf_file::type_from_name(&ty.to_ascii_lowercase()).ok_or_else(|| {
            Error::InvalidArgument(format!("unknown tensor type {ty:?} for {pattern:?}"))
        })?;
        patterns.push(
            CString::new(pattern.as_str())
                .map_err(|_| Error::InvalidArgument("tensor pattern contains NUL".into()))?,
        );
        types.push(ty);
    }
    let mut overrides: Vec<llama_cpp_sys_2::llama_model_tensor_override> = patterns
        .iter()
        .zip(&types)
        .map(|(p, &t)| llama_cpp_sys_2::llama_model_tensor_override {
            pattern: p.as_ptr(),
            type_: t as llama_cpp_sys_2::ggml_type,
        })
        .collect();
    overrides.push(llama_cpp_sys_2::llama_model_tensor_override {
        pattern: std::ptr::null(),
        type_: 0,
    });

    let tmp = temp_path(output);
    let c_in = path_cstring(input)?;
    let c_tmp = path_cstring(&tmp)?;
    backend()?;
    // SAFETY: returns a plain struct of defaults.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_quantize_default_params() };
    params.nthread = options.threads as i32;
    params.ftype = options.file_type.0 as llama_cpp_sys_2::llama_ftype;
    params.allow_requantize = allow_requantize;
    params.pure_ = options.pure;
    if !options.keep.is_empty() {
        params.tt_overrides = overrides.as_ptr();
    }
    let mut progress = progress;
    clear_recent_errors();
    let status = with_log_observer(
        move |line| {
            if let Some(p) = parse_progress(line) {
                progress(p);
            }
        },
        // SAFETY: the paths are NUL-terminated and live across the call; `overrides` (and the
        // pattern strings it points into) outlive it and end with a NULL pattern, as
        // llama.cpp requires.
        || unsafe { llama_cpp_sys_2::llama_model_quantize(c_in.as_ptr(), c_tmp.as_ptr(), &params) },
    );
    if status != 0 {
        let _ = std::fs::remove_file(&tmp);
        let why = recent_errors().join("; ");
        return Err(Error::InvalidModel {
            path: input.to_path_buf(),
            reason: format!("quantization failed: {why}"),
        });
    }
    std::fs::rename(&tmp, output).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(output, e)
    })?;
    let output_bytes = std::fs::metadata(output)
        .map_err(|e| Error::io(output, e))?
        .len();
    Ok(QuantizeReport {
        output: output.to_path_buf(),
        file_type: options.file_type.name(),
        input_bytes: source.file_size,
        output_bytes,
        tensors: source.tensors.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuse quantized inputs unless requantizing was asked for: each round loses quality. Q8_0
/// is accepted as a source (it is near-lossless and a common distribution format). Returns
/// whether llama.cpp must be allowed to requantize.
fn check_requantize(source: &GgufFile, options: &QuantizeOptions) -> Result<bool> {
    let quantized: Vec<&TensorInfo> = source
        .tensors
        .iter()
        .filter(|t| {
            !matches!(
                t.ggml_type,
                gguf_file::GGML_TYPE_F32 | gguf_file::GGML_TYPE_F16 | gguf_file::GGML_TYPE_BF16
            )
        })
        .collect();
    let lossy: Vec<&str> = quantized
        .iter()
        .filter(|t| t.ggml_type != gguf_file::GGML_TYPE_Q8_0)
        .map(|t| t.type_name())
        .collect();
    if let (Some(first), false) = (lossy.first(), options.allow_requantize) {
        return Err(Error::InvalidArgument(format!(
            "{} is already quantized ({} tensors, e.g. {first}); requantizing loses quality, \
             so it needs allow_requantize (--allow-requantize)",
            source.path().display(),
            lossy.len()
        )));
    }
    Ok(options.allow_requantize || !quantized.is_empty())
}

/// llama.cpp logs `[  12/ 272] blk.0.attn_q.weight - [576, 576, 1, 1], type = f16, ...`.
fn parse_progress(line: &str) -> Option<QuantizeProgress> {
    let rest = line.strip_prefix('[')?;
    let (counts, rest) = rest.split_once(']')?;
    let (done, total) = counts.split_once('/')?;
    let tensor = rest.split_whitespace().next()?.to_owned();
    Some(QuantizeProgress {
        done: done.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
        tensor,
    })
}

/// A sibling temporary name, so the final rename stays on one filesystem.
pub(crate) fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.gguf".into());
    output.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

pub(crate) fn path_cstring(path: &Path) -> Result<CString> {
    let s = path.to_str().ok_or(Error::InvalidUtf8("path"))?;
    CString::new(s).map_err(|_| Error::InvalidArgument(format!("path {s:?} contains NUL")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llama_progress_lines() {
        let p = parse_progress(
            "[  12/ 272]        blk.0.attn_q.weight - [576, 576, 1, 1], type = f16,",
        )
        .unwrap();
        assert_eq!(
            (p.done, p.total, p.tensor.as_str()),
            (12, 272, "blk.0.attn_q.weight")
        );
        assert!(parse_progress("llama_model_quantize_impl: model size = 10 MiB").is_none());
    }

    #[test]
    fn names_round_trip() {
        for name in FileType::names() {
            assert_eq!(FileType::parse(&name.to_lowercase()).unwrap().name(), name);
        }
        assert_eq!(FileType::parse("q3_x").unwrap_err().code().as_i32(), 1);
    }
}
