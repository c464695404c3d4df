//! Shared helpers for the integration tests.

use std::path::Path;
use std::sync::Arc;

use llmedge::safety::{Lexicon, Normalizer};

/// The test lexicon in tests/data/safety/test_lexicon.toml.
pub fn test_lexicon() -> Arc<Lexicon> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/safety/test_lexicon.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    Arc::new(Lexicon::from_files(&[(&path, &text)], Normalizer::new(true)).unwrap())
}

/// Non-comment lines of a TSV file in tests/data/safety, split on tabs.
pub fn tsv(name: &str) -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/safety")
        .join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}
