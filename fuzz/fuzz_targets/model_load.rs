//! Fuzzes `Model::load` (llmedge's GGUF validation, then llama.cpp's loader) on mutated
//! small GGUF files; the seed corpus is a tiny llama model that llama.cpp loads.
//!
//! Whatever the bytes, loading must return `Ok` or a clean `Err`: a panic, an abort or
//! signal inside llama.cpp, a hang or a huge allocation is a finding. A file that loads is
//! tokenized and detokenized, the first things every caller does with a model.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llmedge::{Model, ModelOptions};

/// One file per fuzzing process, rewritten for every input (llama.cpp reads a path).
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "llmedge-fuzz-model-load-{}.gguf",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = input_path();
    if std::fs::write(path, data).is_err() {
        return;
    }
    let options = ModelOptions {
        threads: 1,
        ..ModelOptions::default()
    };
    // llama.cpp's log goes to `tracing`, which prints nothing without a subscriber.
    let Ok(model) = Model::load(path, options) else {
        return;
    };
    let _ = model.info();
    let tokens = model.tokenize("Hello world\n<s> ab", true, true);
    let _ = model.detokenize(&tokens, true);
    let _ = (model.bos_text(), model.eos_text());
    for &t in &tokens {
        let _ = model.is_end_of_generation(t);
    }
});
