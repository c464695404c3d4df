//! Session state files: the KV cache of one sequence (the last prompt and reply) saved to disk
//! and restored, so a conversation or a long shared prompt survives a restart without being
//! evaluated again.
//!
//! Format (little-endian): the magic `LLMEDGEKV1`, a `u32` header length and a JSON header
//! (`model_sha256`, `adapters` as `[sha256, scale]` pairs, `n_tokens`, `state_bytes`), the
//! tokens as `i32`s, llama.cpp's sequence state, and a SHA-256 of everything before it. A file
//! is checked whole (digest, model, adapters, sizes) before llama.cpp reads any of it, and
//! written to a temporary file that is renamed into place.

use std::io::Write;
use std::path::Path;

use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::context::LlamaContext;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::lora::AdapterSet;
use crate::model::{Model, Token};
use crate::prefix_cache::SeqCache;

const MAGIC: &[u8] = b"LLMEDGEKV1";

#[derive(Serialize, Deserialize)]
struct Header {
    model_sha256: String,
    adapters: Vec<(String, f32)>,
    n_tokens: usize,
    state_bytes: usize,
}

fn adapter_ids(set: &AdapterSet) -> Vec<(String, f32)> {
    set.iter()
        .map(|(a, s)| (a.info().sha256.clone(), *s))
        .collect()
}

fn state_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::State {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Write sequence `seq` (holding `cache`, computed under `adapters`) to `path`.
pub(crate) fn save(
    ctx: &LlamaContext<'_>,
    seq: i32,
    cache: &SeqCache,
    model: &Model,
    adapters: &AdapterSet,
    path: &Path,
) -> Result<()> {
    let flags = LlamaStateSeqFlags::empty();
    let size = ctx.state_seq_get_size_ext(seq, flags);
    let mut state = vec![0u8; size];
    // SAFETY: `state` has exactly the size llama.cpp just reported for this sequence, and
    // the context is not used by anyone else while `&self` is borrowed.
    let written = unsafe { ctx.state_seq_get_data_ext(state.as_mut_ptr(), seq, flags) };
    if written != size {
        return Err(Error::Internal(format!(
            "llama.cpp wrote {written} of {size} state bytes"
        )));
    }
    let header = serde_json::to_vec(&Header {
        model_sha256: model.sha256()?,
        adapters: adapter_ids(adapters),
        n_tokens: cache.tokens.len(),
        state_bytes: size,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + header.len() + 4 * cache.tokens.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&header);
    for t in &cache.tokens {
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    let mut digest = Sha256::new();
    digest.update(&bytes);
    digest.update(&state);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
        .map_err(|e| Error::io(path, e))?;
    let write = |tmp: &mut tempfile::NamedTempFile| -> std::io::Result<()> {
        tmp.write_all(&bytes)?;
        tmp.write_all(&state)?;
        tmp.write_all(&digest.finalize())?;
        tmp.as_file().sync_all()
    };
    write(&mut tmp).map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Read `path` into sequence `seq` after checking it whole; returns the tokens it holds. The
/// file must have been saved from `model` with the adapter set `adapters`.
pub(crate) fn load(
    ctx: &mut LlamaContext<'_>,
    seq: i32,
    model: &Model,
    adapters: &AdapterSet,
    path: &Path,
) -> Result<Vec<Token>> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let body_len = data
        .len()
        .checked_sub(32)
        .filter(|&n| n >= MAGIC.len() + 4 && data.starts_with(MAGIC))
        .ok_or_else(|| state_error(path, "not an llmedge session state file"))?;
    let (body, digest) = data.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err(state_error(path, "the file is corrupt (checksum mismatch)"));
    }
    let mut at = MAGIC.len();
    let header_len = u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes")) as usize;
    at += 4;
    let header: Header = body
        .get(at..at.saturating_add(header_len))
        .and_then(|h| serde_json::from_slice(h).ok())
        .ok_or_else(|| state_error(path, "the header is unreadable"))?;
    at += header_len;
    let tokens_len = header.n_tokens.checked_mul(4);
    if tokens_len.and_then(|n| n.checked_add(header.state_bytes)) != Some(body.len() - at) {
        return Err(state_error(
            path,
            "the sizes in the header do not match the file",
        ));
    }
    if header.model_sha256 != model.sha256()? {
        return Err(state_error(
            path,
            format!(
                "it was saved with another model (sha256 {})",
                header.model_sha256
            ),
        ));
    }
    if header.adapters != adapter_ids(adapters) {
        return Err(state_error(
            path,
            "it was saved with another LoRA adapter set than this session's",
        ));
    }
    let tokens: Vec<Token> = body[at..at + 4 * header.n_tokens]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    for &t in &tokens {
        model.check_token(t)?;
    }
    let state = &body[at + 4 * header.n_tokens..];
    // SAFETY: `state` is a complete buffer of the length llama.cpp is told; llama.cpp
    // validates its layout and reports failure instead of reading past it.
    let ok = unsafe { ctx.state_seq_set_data_ext(state, seq, LlamaStateSeqFlags::empty()) };
    if !ok {
        let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        return Err(state_error(
            path,
            "llama.cpp refused the state (another context layout or model)",
        ));
    }
    Ok(tokens)
}
