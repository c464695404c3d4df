//! Safety layer tests (one binary: each test binary links llama.cpp, so they are grouped).

mod common;
mod lexicon_corpus;
mod pii_corpus;
mod policy;
mod pseudonym;
mod stream_filter;
