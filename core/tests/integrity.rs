//! Model integrity (`require_verified_models`) on a temporary copy of the real default model:
//! manifests, signatures, refusals before load, and the audit record of a refusal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use llmedge::audit::{self, AuditConfig, AuditLog, FsyncPolicy};
use llmedge::model_fetch::default_model_path;
use llmedge::model_manifest::{generate_keypair, IntegrityPolicy, ModelManifest};
use llmedge::{Error, ErrorCode, Model, ModelOptions};

fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| default_model_path(&mut |_| {}).expect("fetch default model"))
        .clone()
}

/// A folder with a copy of the model and a manifest listing it (saved as `manifest.toml`).
fn copy_with_manifest() -> (tempfile::TempDir, PathBuf, ModelManifest) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("model.gguf");
    std::fs::copy(model_path(), &copy).unwrap();
    let manifest = ModelManifest::create(&[&copy], dir.path()).unwrap();
    manifest.save(dir.path().join("manifest.toml")).unwrap();
    (dir, copy, manifest)
}

fn options(policy: IntegrityPolicy) -> ModelOptions {
    ModelOptions {
        threads: 2,
        integrity: Some(Arc::new(policy)),
        ..ModelOptions::default()
    }
}

fn reason(e: &Error) -> String {
    assert_eq!(e.code(), ErrorCode::ModelIntegrity, "{e}");
    e.to_string()
}

fn flip_byte(path: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x01;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
}

#[test]
fn signed_manifest_loads_and_tampering_is_refused_and_audited() {
    let (dir, copy, mut manifest) = copy_with_manifest();
    let key = generate_keypair().unwrap();
    manifest.sign(&key);
    let manifest_path = dir.path().join("manifest.toml");
    manifest.save(&manifest_path).unwrap();

    // Loaded back from disk, with the trusted key: the model loads, and its hash is known.
    let policy = IntegrityPolicy::new(ModelManifest::load(&manifest_path).unwrap())
        .with_key(key.verifying_key());
    let model = Model::load(&copy, options(policy.clone())).expect("verified load");
    assert_eq!(model.sha256().unwrap(), manifest.files[0].sha256);

    // An adapter that is not listed is refused before it is parsed.
    let stray = dir.path().join("adapter.gguf");
    std::fs::write(&stray, b"GGUF not an adapter").unwrap();
    let e = model.load_lora(&stray).unwrap_err();
    assert!(reason(&e).contains("unlisted"), "{e}");
    drop(model);

    // One byte flipped: refused with the expected and actual hash, and audited.
    let audit_dir = dir.path().join("audit");
    let mut config = AuditConfig::new(&audit_dir);
    config.fsync = FsyncPolicy::Never;
    let log = Arc::new(AuditLog::open(config).unwrap());
    let policy = IntegrityPolicy {
        audit: Some(log.clone()),
        ..policy
    };
    flip_byte(&copy, 4096);
    let e = Model::load(&copy, options(policy)).unwrap_err();
    let text = reason(&e);
    assert!(text.contains("tampered: sha256 expected"), "{text}");
    assert!(text.contains(&manifest.files[0].sha256), "{text}");
    log.flush().unwrap();
    drop(log);

    let report = audit::verify(&audit_dir).unwrap();
    assert!(report.ok, "{report}");
    assert_eq!(report.records, 1);
    let segment = std::fs::read_to_string(audit_dir.join("audit-000001.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(segment.lines().next().unwrap()).unwrap();
    assert_eq!(record["finish_reason"], "refused:model_integrity");
    assert_eq!(record["safety"]["category"], "model_integrity");
    assert!(record["safety"]["reason"]
        .as_str()
        .unwrap()
        .contains("tampered"));
    assert_ne!(record["model"]["sha256"], manifest.files[0].sha256.as_str());
}

#[test]
fn unlisted_files_are_refused() {
    let (dir, _copy, manifest) = copy_with_manifest();
    let other = dir.path().join("other.gguf");
    std::fs::copy(model_path(), &other).unwrap();
    let e = Model::load(&other, options(IntegrityPolicy::new(manifest))).unwrap_err();
    assert!(reason(&e).contains("unlisted"), "{e}");
}

#[test]
fn wrong_key_and_modified_manifest_fail_the_signature() {
    let (dir, copy, mut manifest) = copy_with_manifest();
    let key = generate_keypair().unwrap();
    let other = generate_keypair().unwrap();
    manifest.sign(&key);
    let manifest_path = dir.path().join("manifest.toml");
    manifest.save(&manifest_path).unwrap();

    let policy = IntegrityPolicy::new(manifest.clone()).with_key(other.verifying_key());
    let e = Model::load(&copy, options(policy)).unwrap_err();
    assert!(reason(&e).contains("not by the trusted key"), "{e}");

    // Edit the file on disk the way an attacker would: claim another size for the entry.
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    let size = manifest.files[0].size;
    let edited = text.replace(&format!("size = {size}"), &format!("size = {}", size + 1));
    assert_ne!(edited, text);
    std::fs::write(&manifest_path, edited).unwrap();
    let policy = IntegrityPolicy::from_files(&manifest_path, None)
        .unwrap()
        .with_key(key.verifying_key());
    let e = Model::load(&copy, options(policy)).unwrap_err();
    assert!(reason(&e).contains("changed after signing"), "{e}");
}

#[test]
fn unsigned_manifest_is_refused_when_a_signature_is_required() {
    let (_dir, copy, manifest) = copy_with_manifest();
    let key = generate_keypair().unwrap();
    let policy = IntegrityPolicy::new(manifest.clone()).with_key(key.verifying_key());
    let e = Model::load(&copy, options(policy)).unwrap_err();
    assert!(reason(&e).contains("not signed"), "{e}");

    let policy = IntegrityPolicy {
        require_signature: true,
        ..IntegrityPolicy::new(manifest.clone())
    };
    let e = Model::load(&copy, options(policy)).unwrap_err();
    assert!(reason(&e).contains("no trusted public key"), "{e}");

    // Hashes only: the unsigned manifest is enough.
    Model::load(&copy, options(IntegrityPolicy::new(manifest))).expect("hash-only load");
}
