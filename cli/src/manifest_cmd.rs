//! `llmedge manifest`: create, sign and verify model manifests (SHA-256 per file, Ed25519).

use std::path::{Path, PathBuf};
use std::process::exit;

use clap::Subcommand;
use llmedge::model_manifest::{
    generate_keypair, read_signing_key, verify_manifest, write_keypair, ModelManifest,
};
use llmedge::{Error, ErrorCode};

use crate::lora_cmd::print_json;

#[derive(Subcommand)]
pub enum ManifestCommand {
    /// List files (or every file under folders) with their SHA-256 and size.
    Create {
        /// Files or folders to list.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where to write the manifest (TOML); paths in it are relative to its folder.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Make an Ed25519 key pair: KEYFILE (private, mode 0600) and KEYFILE.pub.
    Keygen {
        /// The private key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a manifest in place with a private key file.
    Sign {
        manifest: PathBuf,
        /// The private key file (from `llmedge manifest keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Check the signature (with --pubkey) and every listed file. Exit status 0 when all is
    /// intact, 16 when a file is missing or tampered with or the signature is bad (each problem
    /// is listed).
    Verify {
        manifest: PathBuf,
        /// The trusted public key file; without it the signature is not checked.
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
}

pub fn run(cmd: &ManifestCommand, json: bool) -> Result<(), Error> {
    match cmd {
        ManifestCommand::Create { inputs, out } => {
            let base = out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let manifest = ModelManifest::create(inputs, base)?;
            manifest.save(out)?;
            if json {
                print_json(&serde_json::json!({"manifest": out, "files": manifest.files}))?;
            } else {
                for f in &manifest.files {
                    println!("{}  {}  {}", f.sha256, f.size, f.path);
                }
                println!("wrote {}", out.display());
            }
            Ok(())
        }
        ManifestCommand::Keygen { out } => {
            let key = generate_keypair()?;
            let public = write_keypair(&key, out)?;
            if json {
                print_json(&serde_json::json!({"private_key": out, "public_key": public}))?;
            } else {
                println!("private key: {}", out.display());
                println!("public key:  {}", public.display());
            }
            Ok(())
        }
        ManifestCommand::Sign { manifest, key } => {
            let key = read_signing_key(key)?;
            let mut m = ModelManifest::load(manifest)?;
            m.sign(&key);
            m.save(manifest)?;
            if json {
                print_json(&serde_json::json!({"manifest": manifest, "signature": m.signature}))?;
            } else {
                println!("signed {}", manifest.display());
            }
            Ok(())
        }
        ManifestCommand::Verify { manifest, pubkey } => {
            let report = verify_manifest(manifest, pubkey.as_deref())?;
            if json {
                print_json(&report)?;
            } else {
                println!("{report}");
            }
            if !report.ok {
                exit(ErrorCode::ModelIntegrity.as_i32());
            }
            Ok(())
        }
    }
}
