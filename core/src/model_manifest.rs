//! Model integrity: a manifest of SHA-256 digests, optionally signed with Ed25519, checked
//! before llama.cpp (or llmedge's own GGUF parser) reads a byte of a model or adapter.
//!
//! # The manifest file
//!
//! A manifest is TOML (the format of llmedge's other configuration files, readable and easy to
//! review in a pull request):
//!
//! ```toml
//! format = 1
//! created = "2025-01-01T00:00:00.000Z"
//!
//! [[files]]
//! path = "model.gguf"          # relative to the manifest's folder, '/'-separated
//! sha256 = "9f86d0…"           # 64 lowercase hex digits
//! size = 12345                 # bytes
//!
//! [signature]                  # absent when unsigned
//! algorithm = "ed25519"
//! public_key = "…"             # 64 hex digits: who signed (informational, never trusted)
//! value = "…"                  # 128 hex digits: the Ed25519 signature
//! ```
//!
//! # What is signed
//!
//! The signature covers a canonical byte form, not the TOML text, so reformatting the file
//! or reordering its entries does not break it, while changing any fact does:
//!
//! ```text
//! llmedge-model-manifest-v1\n
//! created\t<created>\n
//! file\t<path>\t<size in decimal>\t<sha256 lowercase hex>\n      (one per file, sorted by path)
//! ```
//!
//! Paths, and `created`, may not contain tabs, newlines or NUL, so the form is unambiguous.
//! The `public_key` in the file is not trusted: a forger would simply re-sign with their own
//! key. Verification always uses a key the operator supplies ([`IntegrityPolicy::trusted_key`]).
//!
//! # Keys
//!
//! Key files hold 64 hex digits (32 bytes) and a trailing newline: the private key (the
//! Ed25519 seed) in `KEY`, the public key in `KEY.pub`. No PEM, no passphrase: protect the
//! private key file with file permissions or keep it offline.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{AuditEvent, AuditLog, ModelRef, Surface, TokenCounts};
use crate::error::{Error, Result};
use crate::model::hex;

/// Version of the manifest layout.
pub const MANIFEST_FORMAT: u32 = 1;

/// The first line of the signed canonical form.
const CANONICAL_HEADER: &str = "llmedge-model-manifest-v1\n";

/// The `finish_reason` of the audit record written when a load is refused.
pub const REFUSED_FINISH_REASON: &str = "refused:model_integrity";

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Relative to the manifest's folder, `/`-separated; or a bare file name.
    pub path: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The Ed25519 signature of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's public key, 64 hex digits. Informational: never used to verify.
    pub public_key: String,
    /// The signature over [`ModelManifest::canonical_bytes`], 128 hex digits.
    pub value: String,
}

/// A list of files and their SHA-256, optionally signed. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// RFC 3339 UTC time of creation.
    pub created: String,
    pub files: Vec<ManifestEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ManifestSignature>,
    /// The folder entry paths are relative to (the manifest file's folder once loaded or
    /// saved). Not stored in the file.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn integrity(path: &Path, reason: impl fmt::Display) -> Error {
    Error::ModelIntegrity {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// SHA-256 and size of a file, in one pass. A missing file is [`Error::ModelNotFound`].
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ModelNotFound(path.to_path_buf()),
        _ => Error::io(path, e),
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Characters that would make the canonical form ambiguous.
fn has_separator(s: &str) -> bool {
    s.contains(['\t', '\n', '\r', '\0'])
}

/// `path` relative to `base` with `/` separators, or the bare file name when it is not under
/// `base`.
fn relative_name(path: &Path, base: &Path) -> Result<String> {
    let abs = path.canonicalize().map_err(|e| Error::io(path, e))?;
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    let rel = match abs.strip_prefix(&base) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => PathBuf::from(abs.file_name().unwrap_or_default()),
    };
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let name = parts.join("/");
    if name.is_empty() || has_separator(&name) {
        return Err(Error::InvalidArgument(format!(
            "{}: the name cannot be listed in a manifest",
            path.display()
        )));
    }
    Ok(name)
}

impl ModelManifest {
    /// List `inputs` (files, or folders whose regular files are listed, recursively, hidden
    /// files skipped) with paths relative to `base_dir`, the folder the manifest will be saved
    /// in. A file outside `base_dir` is listed by its file name alone.
    pub fn create(inputs: &[impl AsRef<Path>], base_dir: impl AsRef<Path>) -> Result<Self> {
        let base_dir = base_dir.as_ref();
        let mut paths = Vec::new();
        for input in inputs {
            collect_files(input.as_ref(), &mut paths)?;
        }
        let mut files = Vec::with_capacity(paths.len());
        for path in &paths {
            let name = relative_name(path, base_dir)?;
            if files.iter().any(|e: &ManifestEntry| e.path == name) {
                return Err(Error::InvalidArgument(format!(
                    "two files would be listed as {name:?}"
                )));
            }
            let (sha256, size) = hash_file(path)?;
            files.push(ManifestEntry {
                path: name,
                sha256,
                size,
            });
        }
        if files.is_empty() {
            return Err(Error::InvalidArgument(
                "no files to list in the manifest".into(),
            ));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(ModelManifest {
            format: MANIFEST_FORMAT,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            files,
            signature: None,
            base_dir: base_dir.to_path_buf(),
        })
    }

    /// Read and validate a manifest file; entry paths become relative to its folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut manifest: ModelManifest = toml::from_str(&text)
            .map_err(|e| integrity(path, format!("not a valid manifest: {e}")))?;
        manifest
            .validate()
            .map_err(|reason| integrity(path, reason))?;
        manifest.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok(manifest)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!("unsupported manifest format {}", self.format));
        }
        if has_separator(&self.created) {
            return Err("`created` contains a tab or newline".into());
        }
        for e in &self.files {
            if e.path.is_empty() || has_separator(&e.path) {
                return Err(format!("invalid path {:?}", e.path));
            }
            if Path::new(&e.path)
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
            {
                return Err(format!("path {:?} must be relative, without `..`", e.path));
            }
            if !is_hex(&e.sha256, 64) {
                return Err(format!("{}: sha256 is not 64 lowercase hex digits", e.path));
            }
        }
        if let Some(sig) = &self.signature {
            if sig.algorithm != "ed25519" {
                return Err(format!(
                    "unsupported signature algorithm {:?}",
                    sig.algorithm
                ));
            }
        }
        Ok(())
    }

    /// Write the manifest as TOML, atomically; entry paths are not rewritten, so save it in
    /// the `base_dir` it was created for.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = toml::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("serialising a manifest: {e}")))?;
        write_atomic(path, text.as_bytes())
    }

    /// The bytes the signature covers (see the [module docs](self)).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut files: Vec<&ManifestEntry> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut out = String::from(CANONICAL_HEADER);
        out.push_str(&format!("created\t{}\n", self.created));
        for e in files {
            out.push_str(&format!("file\t{}\t{}\t{}\n", e.path, e.size, e.sha256));
        }
        out.into_bytes()
    }

    /// Sign with `key`, replacing any previous signature.
    pub fn sign(&mut self, key: &SigningKey) {
        let signature = key.sign(&self.canonical_bytes());
        self.signature = Some(ManifestSignature {
            algorithm: "ed25519".into(),
            public_key: hex(key.verifying_key().as_bytes()),
            value: hex(&signature.to_bytes()),
        });
    }

    /// Check the signature against a trusted key. Unsigned, signed by another key, or changed
    /// since signing are each [`Error::ModelIntegrity`] with their own reason.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<()> {
        let here = self.base_dir.as_path();
        let sig = self
            .signature
            .as_ref()
            .ok_or_else(|| integrity(here, "the manifest is not signed"))?;
        let value = parse_hex::<64>(&sig.value)
            .ok_or_else(|| integrity(here, "the signature is not 128 hex digits"))?;
        let signature = Signature::from_bytes(&value);
        if key.verify(&self.canonical_bytes(), &signature).is_ok() {
            return Ok(());
        }
        if sig.public_key != hex(key.as_bytes()) {
            return Err(integrity(
                here,
                format!(
                    "the manifest is signed by key {}, not by the trusted key {}",
                    sig.public_key,
                    hex(key.as_bytes())
                ),
            ));
        }
        Err(integrity(
            here,
            "the signature does not match: the manifest was changed after signing",
        ))
    }

    /// The entry that lists `path`: the one whose path, resolved against `base_dir`, is the
    /// same file; failing that, an entry that is a bare file name equal to `path`'s (so a
    /// manifest can travel apart from the file; the hash still has to match).
    pub fn entry_for(&self, path: &Path) -> Option<&ManifestEntry> {
        let target = path.canonicalize().ok();
        let by_location = self.files.iter().find(|e| {
            let listed = self.base_dir.join(&e.path);
            match (&target, listed.canonicalize()) {
                (Some(t), Ok(l)) => *t == l,
                _ => false,
            }
        });
        by_location.or_else(|| {
            let name = path.file_name()?.to_str()?;
            self.files
                .iter()
                .find(|e| !e.path.contains('/') && e.path == name)
        })
    }

    /// Hash `path` and compare it with its entry. Returns its SHA-256 when it matches;
    /// otherwise [`Error::ModelIntegrity`] saying "not listed" or "tampered: expected X, got Y".
    pub fn check_file(&self, path: impl AsRef<Path>) -> Result<String> {
        let path = path.as_ref();
        let (sha256, size) = hash_file(path)?;
        self.check_digest(path, &sha256, size)?;
        Ok(sha256)
    }

    /// [`check_file`](Self::check_file) with the digest already computed.
    pub fn check_digest(&self, path: &Path, sha256: &str, size: u64) -> Result<()> {
        let entry = self
            .entry_for(path)
            .ok_or_else(|| integrity(path, "unlisted: the file is not in the manifest"))?;
        if entry.sha256 != sha256 {
            return Err(integrity(
                path,
                format!(
                    "tampered: sha256 expected {}, got {sha256} (size expected {}, got {size})",
                    entry.sha256, entry.size
                ),
            ));
        }
        if entry.size != size {
            return Err(integrity(
                path,
                format!("tampered: size expected {}, got {size}", entry.size),
            ));
        }
        Ok(())
    }

    /// Check the signature (when a key is given) and every listed file, collecting each
    /// problem instead of stopping at the first.
    pub fn verify_all(&self, key: Option<&VerifyingKey>) -> ManifestReport {
        let signature = match key {
            None => SignatureStatus::NotChecked,
            Some(key) => match self.verify_signature(key) {
                Ok(()) => SignatureStatus::Valid,
                Err(e) => SignatureStatus::Invalid(reason_of(&e)),
            },
        };
        let files = self
            .files
            .iter()
            .map(|e| {
                let path = self.base_dir.join(&e.path);
                let problem = match hash_file(&path) {
                    Err(err) => Some(match err {
                        Error::ModelNotFound(_) => "missing".to_owned(),
                        other => other.to_string(),
                    }),
                    Ok((sha256, size)) => self
                        .check_digest(&path, &sha256, size)
                        .err()
                        .map(|e| reason_of(&e)),
                };
                FileStatus {
                    path: e.path.clone(),
                    ok: problem.is_none(),
                    problem,
                }
            })
            .collect::<Vec<_>>();
        let ok = !matches!(signature, SignatureStatus::Invalid(_)) && files.iter().all(|f| f.ok);
        ManifestReport {
            ok,
            signed: self.signature.is_some(),
            signature,
            files,
        }
    }
}

fn reason_of(e: &Error) -> String {
    match e {
        Error::ModelIntegrity { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(path, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = entry.path();
        if p.is_dir() || p.is_file() {
            collect_files(&p, out)?;
        }
    }
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Whether the signature was checked, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// No trusted key was given.
    NotChecked,
    Valid,
    Invalid(String),
}

/// One listed file, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStatus {
    pub path: String,
    pub ok: bool,
    /// `missing`, `tampered: …`, or an I/O error.
    pub problem: Option<String>,
}

/// What [`ModelManifest::verify_all`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestReport {
    /// The signature (if checked) and every file are intact.
    pub ok: bool,
    pub signed: bool,
    pub signature: SignatureStatus,
    pub files: Vec<FileStatus>,
}

impl fmt::Display for ManifestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.signature {
            SignatureStatus::NotChecked if self.signed => {
                writeln!(f, "signature: present, not checked (no --pubkey)")?
            }
            SignatureStatus::NotChecked => writeln!(f, "signature: none")?,
            SignatureStatus::Valid => writeln!(f, "signature: valid")?,
            SignatureStatus::Invalid(why) => writeln!(f, "signature: INVALID: {why}")?,
        }
        for file in &self.files {
            match &file.problem {
                None => writeln!(f, "ok      {}", file.path)?,
                Some(p) => writeln!(f, "FAILED  {}: {p}", file.path)?,
            }
        }
        write!(
            f,
            "{}",
            if self.ok {
                "manifest verified"
            } else {
                "manifest verification FAILED"
            }
        )
    }
}

/// Check a manifest file and every file it lists: the shared entry point of the CLI, C, Python
/// and Java.
pub fn verify_manifest(manifest: &Path, pubkey: Option<&Path>) -> Result<ManifestReport> {
    let manifest = ModelManifest::load(manifest)?;
    let key = pubkey.map(read_verifying_key).transpose()?;
    Ok(manifest.verify_all(key.as_ref()))
}

/// A fresh key pair from the operating system's random source.
pub fn generate_keypair() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| Error::Internal(format!("no OS randomness for a key: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Write `key` to `path` (hex seed, created with mode 0600 on Unix) and its public key to
/// `path.pub`. Refuses to overwrite an existing private key.
pub fn write_keypair(key: &SigningKey, path: &Path) -> Result<PathBuf> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path).map_err(|e| Error::io(path, e))?;
    file.write_all(format!("{}\n", hex(&key.to_bytes())).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, e))?;
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    write_atomic(
        &pub_path,
        format!("{}\n", hex(key.verifying_key().as_bytes())).as_bytes(),
    )?;
    Ok(pub_path)
}

fn read_hex_key(path: &Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_hex::<32>(&text).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: a key file holds 64 hex digits (32 bytes)",
            path.display()
        ))
    })
}

/// Read a private key file (64 hex digits, the Ed25519 seed).
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&read_hex_key(path)?))
}

/// Read a public key file (64 hex digits).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey> {
    VerifyingKey::from_bytes(&read_hex_key(path)?).map_err(|e| {
        Error::InvalidArgument(format!(
            "{}: not an Ed25519 public key: {e}",
            path.display()
        ))
    })
}

/// `require_verified_models`: what [`Model::load`](crate::Model::load) and
/// [`Model::load_lora`](crate::Model::load_lora) check before a file is parsed.
///
/// The signature is checked when a trusted key is set or `require_signature` is true (the
/// latter without a key refuses every load: a signature that nobody checks proves nothing).
/// Refusals are written to `audit`, when set, so that an attempt to load a swapped model
/// leaves a tamper-evident trace.
#[derive(Debug, Clone)]
pub struct IntegrityPolicy {
    pub manifest: ModelManifest,
    pub trusted_key: Option<VerifyingKey>,
    pub require_signature: bool,
    pub audit: Option<Arc<AuditLog>>,
    /// The surface recorded in the audit log.
    pub surface: Surface,
}

impl IntegrityPolicy {
    /// Hash checks only; add a key with [`with_key`](Self::with_key).
    pub fn new(manifest: ModelManifest) -> Self {
        IntegrityPolicy {
            manifest,
            trusted_key: None,
            require_signature: false,
            audit: None,
            surface: Surface::Rust,
        }
    }

    /// Require a signature by `key`.
    pub fn with_key(mut self, key: VerifyingKey) -> Self {
        self.trusted_key = Some(key);
        self.require_signature = true;
        self
    }

    /// A manifest file, and a public key file whose signature it must carry.
    pub fn from_files(manifest: &Path, pubkey: Option<&Path>) -> Result<Self> {
        let policy = IntegrityPolicy::new(ModelManifest::load(manifest)?);
        Ok(match pubkey {
            Some(p) => policy.with_key(read_verifying_key(p)?),
            None => policy,
        })
    }

    fn check_signature(&self) -> Result<()> {
        match &self.trusted_key {
            Some(key) => self.manifest.verify_signature(key),
            None if self.require_signature => Err(integrity(
                &self.manifest.base_dir,
                "a signed manifest is required but no trusted public key is configured",
            )),
            None => Ok(()),
        }
    }

    /// Check a model file; on refusal, append a `refused:model_integrity` audit record.
    /// Returns the file's SHA-256.
    pub fn check_model(&self, path: &Path) -> Result<String> {
        self.check(path, None)
    }

    /// Check an adapter file of `model` (recorded as the audit record's model).
    pub fn check_adapter(&self, path: &Path, model: ModelRef) -> Result<String> {
        self.check(path, Some(model))
    }

    fn check(&self, path: &Path, base_model: Option<ModelRef>) -> Result<String> {
        let (sha256, size) = hash_file(path)?;
        let verdict = self
            .check_signature()
            .and_then(|()| self.manifest.check_digest(path, &sha256, size));
        if let Err(e) = verdict {
            if let Some(log) = &self.audit {
                let reason = e.to_string();
                let file_ref = ModelRef {
                    name: path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    sha256: sha256.clone(),
                };
                let (model, adapter) = match base_model {
                    Some(model) => (model, Some(sha256.clone())),
                    None => (file_ref, None),
                };
                log.record_refused_load(self.surface, model, adapter, path, &reason)?;
            }
            return Err(e);
        }
        Ok(sha256)
    }
}

impl AuditLog {
    /// Record that a model (or, with `adapter_sha256`, an adapter of `model`) was refused
    /// before loading: `finish_reason` is [`REFUSED_FINISH_REASON`], and `safety` holds the
    /// path and the reason. No prompt was served, so the text hashes are of empty strings.
    pub fn record_refused_load(
        &self,
        surface: Surface,
        model: ModelRef,
        adapter_sha256: Option<String>,
        path: &Path,
        reason: &str,
    ) -> Result<()> {
        let event = AuditEvent {
            request_id: crate::request_guard::new_request_id(),
            tenant: String::new(),
            surface,
            model,
            adapter_sha256,
            sampling: serde_json::Value::Null,
            safety: serde_json::json!({
                "verdict": "refused",
                "category": "model_integrity",
                "path": path.to_string_lossy(),
                "reason": reason,
            }),
            prompt: String::new(),
            output: String::new(),
            prompt_redacted: None,
            output_redacted: None,
            tokens: TokenCounts::default(),
            latency_ms: 0,
            finish_reason: REFUSED_FINISH_REASON.to_owned(),
            serving: None,
        };
        self.append(&event).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, ModelManifest) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gguf"), b"GGUF one").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.gguf"), b"GGUF two").unwrap();
        let m = ModelManifest::create(&[dir.path()], dir.path()).unwrap();
        (dir, m)
    }

    #[test]
    fn create_save_load_round_trip() {
        let (dir, m) = setup();
        let names: Vec<_> = m.files.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["a.gguf", "sub/b.gguf"]);
        let path = dir.path().join("manifest.toml");
        m.save(&path).unwrap();
        let back = ModelManifest::load(&path).unwrap();
        assert_eq!(back.files, m.files);
        assert!(back.check_file(dir.path().join("sub/b.gguf")).is_ok());
    }

    #[test]
    fn tampered_and_unlisted_are_told_apart() {
        let (dir, m) = setup();
        std::fs::write(dir.path().join("a.gguf"), b"GGUF 0ne").unwrap();
        let e = m.check_file(dir.path().join("a.gguf")).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::ModelIntegrity);
        assert!(e.to_string().contains("tampered: sha256 expected"), "{e}");
        std::fs::write(dir.path().join("c.gguf"), b"GGUF").unwrap();
        let e = m.check_file(dir.path().join("c.gguf")).unwrap_err();
        assert!(e.to_string().contains("unlisted"), "{e}");
    }

    #[test]
    fn signatures_bind_the_content_and_the_key() {
        let (_dir, mut m) = setup();
        let key = generate_keypair().unwrap();
        let other = generate_keypair().unwrap();
        assert!(m
            .verify_signature(&key.verifying_key())
            .unwrap_err()
            .to_string()
            .contains("not signed"));
        m.sign(&key);
        m.verify_signature(&key.verifying_key()).unwrap();
        let e = m.verify_signature(&other.verifying_key()).unwrap_err();
        assert!(e.to_string().contains("not by the trusted key"), "{e}");
        m.files[0].size += 1;
        let e = m.verify_signature(&key.verifying_key()).unwrap_err();
        assert!(e.to_string().contains("changed after signing"), "{e}");
        m.files[0].size -= 1;
        m.files.reverse();
        m.verify_signature(&key.verifying_key()).unwrap();
    }

    #[test]
    fn keys_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_keypair().unwrap();
        let path = dir.path().join("k");
        let pub_path = write_keypair(&key, &path).unwrap();
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(read_verifying_key(&pub_path).unwrap(), key.verifying_key());
        assert!(
            write_keypair(&key, &path).is_err(),
            "never overwrites a key"
        );
    }

    #[test]
    fn manifests_with_escaping_paths_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let text = format!(
            "format = 1\ncreated = \"x\"\n[[files]]\npath = \"../a\"\nsha256 = \"{}\"\nsize = 1\n",
            "0".repeat(64)
        );
        std::fs::write(&path, text).unwrap();
        let e = ModelManifest::load(&path).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::ModelIntegrity);
    }
}
