//! `llmedge verify MODEL`: validate a GGUF file with llmedge's bounds-checked parser (the
//! check every load runs before llama.cpp reads the file) and print what it holds.

use std::path::Path;

use llmedge::gguf_file::GgufFile;
use llmedge::model::sha256_file;
use llmedge::Error;

pub fn run(path: &Path, sha256: bool, json: bool) -> Result<(), Error> {
    if !path.exists() {
        return Err(Error::ModelNotFound(path.to_path_buf()));
    }
    let summary = GgufFile::open(path)?.summary();
    let digest = if sha256 {
        Some(sha256_file(path)?)
    } else {
        None
    };
    if json {
        let mut v = serde_json::to_value(&summary).map_err(|e| Error::Internal(e.to_string()))?;
        v["valid"] = true.into();
        if let Some(d) = &digest {
            v["sha256"] = d.clone().into();
        }
        println!("{v}");
        return Ok(());
    }
    println!(
        "{}: valid GGUF v{}",
        summary.path.display(),
        summary.version
    );
    println!(
        "  kind:          {}",
        summary.kind.as_deref().unwrap_or("model")
    );
    println!(
        "  architecture:  {}",
        summary.architecture.as_deref().unwrap_or("-")
    );
    println!(
        "  name:          {}",
        summary.name.as_deref().unwrap_or("-")
    );
    println!("  file size:     {} bytes", summary.file_size);
    println!("  metadata keys: {}", summary.metadata_keys);
    println!(
        "  tensors:       {} ({} bytes of data, aligned to {}, data at {})",
        summary.tensors, summary.tensor_bytes, summary.alignment, summary.data_offset
    );
    let types: Vec<String> = summary
        .tensor_types
        .iter()
        .map(|(t, n)| format!("{t} ×{n}"))
        .collect();
    println!("  tensor types:  {}", types.join(", "));
    if let Some(d) = digest {
        println!("  sha256:        {d}");
    }
    Ok(())
}
