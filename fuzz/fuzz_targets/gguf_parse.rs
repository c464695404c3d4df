//! Fuzzes llmedge's bounds-checked GGUF parser, `GgufFile::from_bytes`, on arbitrary bytes.
//!
//! The parser must never panic, overflow or allocate more than the input size, and a file it
//! accepts must keep the promises llmedge relies on before handing a file to llama.cpp: every
//! tensor's size matches its type and dims, its data lies inside the file, and no two tensors
//! overlap. The accessors are exercised on every accepted file so the fuzzer explores them.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use llmedge::gguf_file::{self, GgufFile, GgufValue};

/// Keys llmedge reads from real models and adapters.
const KEYS: &[&str] = &[
    "general.architecture",
    "general.name",
    "general.type",
    "general.alignment",
    "tokenizer.ggml.model",
    "tokenizer.ggml.tokens",
    "tokenizer.chat_template",
    "llama.context_length",
    "llama.embedding_length",
    "adapter.type",
    "adapter.lora.alpha",
];

fn visit(value: &GgufValue, depth: u32) -> usize {
    assert!(
        depth <= gguf_file::MAX_ARRAY_DEPTH,
        "array nesting past the limit"
    );
    let _ = (
        value.type_id(),
        value.as_str(),
        value.as_u64(),
        value.as_f32(),
    );
    match value {
        GgufValue::Array(a) => {
            assert!(a.values.iter().all(|v| v.type_id() == a.elem_type));
            a.values.iter().map(|v| 1 + visit(v, depth + 1)).sum()
        }
        GgufValue::String(s) => s.len(),
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-input.gguf");
    let Ok(file) = GgufFile::from_bytes(path, data) else {
        return;
    };
    let len = data.len() as u64;
    assert_eq!(file.file_size, len);
    assert!((2..=3).contains(&file.version));
    assert!(file.alignment.is_power_of_two());
    assert_eq!(file.data_offset % file.alignment, 0);

    let summary = file.summary();
    assert_eq!(summary.tensors, file.tensors.len());
    assert_eq!(summary.metadata_keys, file.metadata.len());
    assert_eq!(
        summary.tensor_types.iter().map(|(_, n)| n).sum::<usize>(),
        file.tensors.len()
    );
    let _ = serde_json::to_string(&summary);

    for key in KEYS {
        let _ = (file.get_str(key), file.get_u64(key), file.get_f32(key));
    }
    let _ = file.architecture();
    let mut visited = 0usize;
    for (key, value) in &file.metadata {
        assert!(file.get(key).is_some());
        visited = visited.saturating_add(visit(value, 0));
    }
    assert!(visited as u64 <= len, "more metadata than input bytes");

    let mut ranges = Vec::with_capacity(file.tensors.len());
    for t in &file.tensors {
        assert!(!t.dims.is_empty() && t.dims.len() <= gguf_file::MAX_DIMS);
        assert!(t.name.len() <= gguf_file::MAX_TENSOR_NAME_LEN);
        assert_eq!(gguf_file::tensor_size(t.ggml_type, &t.dims), Some(t.size));
        assert_eq!(gguf_file::type_from_name(t.type_name()), Some(t.ggml_type));
        assert!(t.n_elements() <= i64::MAX as u64);
        assert_eq!(file.tensor(&t.name).map(|f| f.offset), Some(t.offset));
        let bytes = file
            .tensor_bytes(data, t)
            .expect("an accepted tensor's data is inside the file");
        assert_eq!(bytes.len() as u64, t.size);
        ranges.push((t.offset, t.offset + t.size));
    }
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "accepted overlapping tensors");
    }
});
