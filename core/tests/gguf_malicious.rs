//! A hand-made corpus of malicious GGUF files (the shapes of real GGUF parser CVEs: huge
//! counts, overflowing sizes, truncation, overlapping tensors, bad UTF-8, deep arrays). Each
//! must get a clean `InvalidModel` error from the parser and from `Model::load`, which
//! validates every file before llama.cpp reads it. The bytes are built here by hand, not with
//! llmedge's writer, so the writer's assumptions cannot hide a parser bug.

use llmedge::gguf_file::GgufFile;
use llmedge::{ErrorCode, Model, ModelOptions};

/// A little-endian GGUF byte builder.
#[derive(Default, Clone)]
struct Gguf(Vec<u8>);

impl Gguf {
    fn header(version: u32, tensors: u64, kvs: u64) -> Gguf {
        let mut g = Gguf(b"GGUF".to_vec());
        g.u32(version).u64(tensors).u64(kvs);
        g
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn string(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64).raw(s)
    }
    /// A string KV.
    fn kv_str(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.string(key).u32(8).string(value)
    }
    /// A tensor info: name, dims, type, offset.
    fn tensor(&mut self, name: &[u8], dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.string(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    /// Pad to 32 bytes and append `n` data bytes.
    fn data(&mut self, n: usize) -> &mut Self {
        while !self.0.len().is_multiple_of(32) {
            self.0.push(0);
        }
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

fn arch() -> Gguf {
    let mut g = Gguf::header(3, 1, 1);
    g.kv_str(b"general.architecture", b"llama");
    g
}

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases = vec![
        ("empty", Vec::new()),
        ("magic only", b"GGUF".to_vec()),
        ("version 1", Gguf::header(1, 0, 0).0),
        ("version 99", Gguf::header(99, 0, 0).0),
        ("huge tensor count", Gguf::header(3, u64::MAX, 0).0),
        ("huge kv count", Gguf::header(3, 0, u64::MAX / 2).0),
    ];
    let mut g = Gguf::header(3, 0, 1);
    g.u64(u64::MAX).raw(b"key");
    cases.push(("key length overflow", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"general.name").u32(8).u64(1 << 40).raw(b"short");
    cases.push(("string value past the end", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"bad\xff\xfekey").u32(4).u32(7);
    cases.push(("bad UTF-8 key", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"general.name").u32(8).string(b"\xc3\x28");
    cases.push(("bad UTF-8 value", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"x").u32(77).u32(0);
    cases.push(("unknown value type", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"deep");
    for _ in 0..64 {
        g.u32(9).u32(9).u64(1); // array of arrays, one element, 64 levels deep
    }
    g.u32(4).u64(1).u32(0);
    cases.push(("deeply nested arrays", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"tokens").u32(9).u32(8).u64(u64::MAX / 8);
    cases.push(("array count overflow", g.0));
    let mut g = arch();
    g.tensor(b"w", &[1 << 40, 1 << 40], 0, 0).data(64);
    cases.push(("tensor size overflow", g.0));
    let mut g = arch();
    g.tensor(b"w", &[u64::MAX, 2], 0, 0).data(64);
    cases.push(("tensor dims overflow", g.0));
    let mut g = arch();
    g.tensor(b"w", &[0, 4], 0, 0).data(64);
    cases.push(("zero dim", g.0));
    let mut g = arch();
    g.tensor(b"w", &[4; 9], 0, 0).data(64);
    cases.push(("too many dims", g.0));
    let mut g = arch();
    g.tensor(b"w", &[16], 0, 1 << 20).data(64);
    cases.push(("tensor past the end", g.0));
    let mut g = arch();
    g.tensor(b"w", &[16], 0, u64::MAX - 8).data(64);
    cases.push(("tensor offset overflow", g.0));
    let mut g = arch();
    g.tensor(b"w", &[16], 0, 3).data(128);
    cases.push(("misaligned tensor", g.0));
    let mut g = arch();
    g.tensor(b"w", &[16], 4, 0).data(64);
    cases.push(("removed ggml type", g.0));
    let mut g = arch();
    g.tensor(b"w", &[16], 1000, 0).data(64);
    cases.push(("unknown ggml type", g.0));
    let mut g = arch();
    g.tensor(b"w", &[31], 8, 0).data(64); // q8_0 rows must be multiples of 32
    cases.push(("row not a block multiple", g.0));
    let mut g = Gguf::header(3, 2, 1);
    g.kv_str(b"general.architecture", b"llama");
    g.tensor(b"a", &[16], 0, 0)
        .tensor(b"b", &[16], 0, 32)
        .data(96);
    cases.push(("overlapping tensors", g.0));
    let mut g = Gguf::header(3, 2, 1);
    g.kv_str(b"general.architecture", b"llama");
    g.tensor(b"a", &[8], 0, 0)
        .tensor(b"a", &[8], 0, 32)
        .data(96);
    cases.push(("duplicate tensor names", g.0));
    let mut g = Gguf::header(3, 0, 2);
    g.kv_str(b"general.architecture", b"llama")
        .kv_str(b"general.architecture", b"gemma3");
    cases.push(("duplicate keys", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"general.alignment").u32(4).u32(3);
    cases.push(("alignment not a power of two", g.0));
    let mut g = Gguf::header(3, 0, 1);
    g.string(b"general.alignment").u32(4).u32(0);
    cases.push(("zero alignment", g.0));
    // Files the parser would accept but llama.cpp aborts on (GGML_ASSERT or an uncaught C++
    // exception) instead of failing the load; the first three were found by `fuzz/`.
    let u32_kv = |g: &mut Gguf, key: &[u8], v: u32| {
        g.string(key).u32(4).u32(v);
    };
    for (name, kvs) in [
        (
            "block count over LLAMA_MAX_LAYERS",
            &[(b"llama.block_count" as &[u8], 513u32)][..],
        ),
        ("zero block count", &[(b"llama.block_count", 0)]),
        (
            "more experts used than exist",
            &[
                (b"llama.block_count", 2),
                (b"llama.expert_count", 4),
                (b"llama.expert_used_count", 5),
            ],
        ),
        (
            "expert groups without experts",
            &[(b"llama.block_count", 2), (b"llama.expert_group_count", 2)],
        ),
    ] {
        let mut g = Gguf::header(3, 0, 1 + kvs.len() as u64);
        g.kv_str(b"general.architecture", b"llama");
        for &(key, v) in kvs {
            u32_kv(&mut g, key, v);
        }
        cases.push((name, g.0));
    }
    let vocab = |g: &mut Gguf, pieces: &[&[u8]]| {
        g.string(b"tokenizer.ggml.tokens")
            .u32(9)
            .u32(8)
            .u64(pieces.len() as u64);
        for p in pieces {
            g.string(p);
        }
    };
    let mut g = Gguf::header(3, 0, 2);
    g.kv_str(b"general.architecture", b"llama");
    vocab(&mut g, &[b"a", b"b", b"a"]);
    cases.push(("duplicate vocab piece", g.0));
    let mut g = Gguf::header(3, 0, 3);
    g.kv_str(b"general.architecture", b"llama")
        .kv_str(b"tokenizer.ggml.model", b"llama");
    vocab(&mut g, &[b"<unk>", b"<s>", b"</s>", b"hello"]);
    cases.push(("SentencePiece vocab without byte tokens", g.0));
    let mut g = arch();
    g.tensor(b"w", &[16], 0, 0).data(64);
    let valid = g.0.clone();
    cases.push(("truncated header", valid[..valid.len() / 3].to_vec()));
    cases.push(("truncated data", valid[..valid.len() - 40].to_vec()));
    cases
}

#[test]
fn every_malicious_file_gets_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, bytes)) in corpus().into_iter().enumerate() {
        let path = dir.path().join(format!("{i:02}.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        let err = GgufFile::from_bytes(&path, &bytes).expect_err(name);
        assert_eq!(err.code(), ErrorCode::InvalidModel, "{name}: {err}");
        let err = Model::load(&path, ModelOptions::default()).expect_err(name);
        assert_eq!(err.code(), ErrorCode::InvalidModel, "{name}: {err}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn the_corpus_is_minimal_a_valid_file_parses() {
    // The builder itself is right: the same shape without the defect is accepted.
    let mut g = arch();
    g.tensor(b"w", &[16], 0, 0).data(64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.gguf");
    let file = GgufFile::from_bytes(&path, &g.0).unwrap();
    assert_eq!(file.tensors.len(), 1);
    assert_eq!(file.architecture(), Some("llama"));
}

#[test]
fn consistent_counts_and_complete_vocabs_are_accepted() {
    // The same checks as above, on files that satisfy them: they must not refuse real models.
    let mut g = Gguf::header(3, 0, 6);
    g.kv_str(b"general.architecture", b"llama")
        .kv_str(b"tokenizer.ggml.model", b"llama");
    for (key, v) in [
        (&b"llama.block_count"[..], 2u32),
        (b"llama.expert_count", 4),
        (b"llama.expert_used_count", 2),
    ] {
        g.string(key).u32(4).u32(v);
    }
    let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
    g.string(b"tokenizer.ggml.tokens")
        .u32(9)
        .u32(8)
        .u64(bytes.len() as u64 + 1);
    g.string(b"<unk>");
    for b in &bytes {
        g.string(b.as_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let file = GgufFile::from_bytes(&dir.path().join("moe.gguf"), &g.0).unwrap();
    assert_eq!(file.get_u64("llama.expert_count"), Some(4));
}
