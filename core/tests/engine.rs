//! Engine tests on the real default model (SmolLM2-135M-Instruct Q4_1, fetched on first use).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use llmedge::model_fetch::default_model_path;
use llmedge::{
    ChatMessage, ChatTemplate, ErrorCode, FinishReason, GenerateOptions, Model, ModelOptions,
    Session, SessionOptions, Truncation,
};

fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| default_model_path(&mut |_| {}).expect("fetch default model"))
        .clone()
}

fn model() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let options = ModelOptions {
                threads: 2,
                ..ModelOptions::default()
            };
            Model::load(model_path(), options).expect("load")
        })
        .clone()
}

fn session() -> Session {
    Session::new(&model(), SessionOptions::default()).expect("session")
}

const PROMPTS: [&str; 3] = [
    "The capital of France is",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
];

/// The reference example binary, built by `cargo test` next to the test binaries.
fn reference_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join("llama_reference");
    assert!(
        bin.exists(),
        "{} missing: run the tests with `cargo test` (it builds examples)",
        bin.display()
    );
    bin
}

#[test]
fn greedy_tokens_equal_the_independent_llama_cpp_loop() {
    let n = 32;
    let out = Command::new(reference_binary())
        .arg("greedy")
        .arg(model_path())
        .arg(n.to_string())
        .args(PROMPTS)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), PROMPTS.len());
    let mut s = session();
    for (prompt, reference) in PROMPTS.iter().zip(lines) {
        let expected: Vec<i32> = serde_json::from_value(reference["tokens"].clone()).unwrap();
        assert!(!expected.is_empty());
        let got = s
            .generate(*prompt, &GenerateOptions::greedy().with_max_tokens(n))
            .unwrap();
        assert_eq!(got.tokens, expected, "prompt {prompt:?}");
        assert_eq!(got.text, model().detokenize(&expected, false).unwrap());
    }
}

#[test]
fn chat_template_renders_exactly_like_llama_cpp() {
    let m = model();
    let jinja = m
        .info()
        .chat_template
        .clone()
        .expect("SmolLM2 embeds a template");
    let messages = vec![
        ChatMessage::system("You are terse."),
        ChatMessage::user("Hi!"),
        ChatMessage::assistant("Hello."),
        ChatMessage::user("你好，世界 🙂"),
    ];
    let ours = ChatTemplate::Jinja(jinja.clone())
        .render(&m, &messages, true)
        .unwrap();
    // llama.cpp's own renderer, given the model's template string, through the raw C API.
    let tmpl = std::ffi::CString::new(jinja).unwrap();
    let cstrings: Vec<(std::ffi::CString, std::ffi::CString)> = messages
        .iter()
        .map(|m| {
            (
                std::ffi::CString::new(m.role.clone()).unwrap(),
                std::ffi::CString::new(m.content.clone()).unwrap(),
            )
        })
        .collect();
    let chat: Vec<llama_cpp_sys_2::llama_chat_message> = cstrings
        .iter()
        .map(|(r, c)| llama_cpp_sys_2::llama_chat_message {
            role: r.as_ptr(),
            content: c.as_ptr(),
        })
        .collect();
    let mut buf = vec![0u8; 4096];
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; buf is writable.
    let n = unsafe {
        llama_cpp_sys_2::llama_chat_apply_template(
            tmpl.as_ptr(),
            chat.as_ptr(),
            chat.len(),
            true,
            buf.as_mut_ptr().cast(),
            buf.len() as i32,
        )
    };
    assert!(n > 0 && (n as usize) < buf.len());
    let theirs = String::from_utf8(buf[..n as usize].to_vec()).unwrap();
    assert_eq!(ours, theirs);
    // The built-in fallback by name gives the same for ChatML models.
    let builtin = ChatTemplate::parse("chatml")
        .unwrap()
        .render(&m, &messages, true)
        .unwrap();
    assert_eq!(builtin, theirs);
}

#[test]
fn model_without_template_and_no_override_is_a_clear_error() {
    let m = model();
    let mut s = Session::new(
        &m,
        SessionOptions {
            chat_template: Some(
                ChatTemplate::parse("{{ raise_exception('template says no') }}").unwrap(),
            ),
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let e = s
        .chat(&[ChatMessage::user("hi")], &GenerateOptions::greedy())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(e.to_string().contains("template says no"));
}

#[test]
fn streaming_is_valid_utf8_and_equals_the_blocking_result() {
    let m = model();
    let mut s = session();
    let prompts = [
        vec![ChatMessage::user("请用中文介绍一下北京。")],
        vec![ChatMessage::user(
            "Reply with many emoji like 🙂🚀🎉 and say hi in Japanese: こんにちは",
        )],
    ];
    for messages in &prompts {
        let opts = GenerateOptions::greedy().with_max_tokens(48);
        let blocking = s.chat(messages, &opts).unwrap();
        let mut pieces = Vec::new();
        let streamed = s
            .chat_with(messages, &opts, |p| {
                pieces.push(p.to_owned());
                true
            })
            .unwrap();
        assert_eq!(pieces.concat(), blocking.text);
        assert_eq!(streamed.text, blocking.text);
        assert!(
            pieces
                .iter()
                .all(|p| !p.is_empty() && !p.contains('\u{fffd}')),
            "{pieces:?}"
        );
        // Some tokens of this output are partial UTF-8 characters: at least one piece must be
        // non-ASCII, proving the decoder saw and reassembled multi-byte text.
        assert!(!blocking.text.is_ascii(), "{:?}", blocking.text);
        // The iterator form gives the same pieces.
        let mut stream = s.chat_stream(messages, &opts).unwrap();
        let iter_pieces: Vec<String> = stream.by_ref().map(|p| p.unwrap()).collect();
        assert_eq!(iter_pieces, pieces);
        let done = stream.into_completion().unwrap();
        assert_eq!(done.tokens, blocking.tokens);
        assert_eq!(m.detokenize(&done.tokens, false).unwrap(), blocking.text);
    }
}

#[test]
fn stop_strings_end_generation_and_are_not_emitted() {
    let mut s = session();
    let free = s
        .generate(
            "1, 2, 3, 4, 5,",
            &GenerateOptions::greedy().with_max_tokens(24),
        )
        .unwrap();
    assert!(free.text.contains(" 8"), "{:?}", free.text);
    let opts = GenerateOptions {
        stop: vec![" 8".into()],
        ..GenerateOptions::greedy().with_max_tokens(24)
    };
    let mut pieces = Vec::new();
    let stopped = s
        .generate_with("1, 2, 3, 4, 5,", &opts, |p| {
            pieces.push(p.to_owned());
            true
        })
        .unwrap();
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert_eq!(stopped.text, free.text[..free.text.find(" 8").unwrap()]);
    assert_eq!(pieces.concat(), stopped.text);
}

#[test]
fn finish_reason_usage_and_timings_are_reported() {
    let mut s = session();
    let out = s
        .generate(
            "Once upon a time",
            &GenerateOptions {
                ignore_eos: true,
                ..GenerateOptions::greedy().with_max_tokens(10)
            },
        )
        .unwrap();
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(out.usage.completion_tokens, 10);
    assert_eq!(
        out.usage.prompt_tokens as usize,
        model().tokenize("Once upon a time", true, true).len()
    );
    let t = out.timings;
    assert!(t.prompt_ms > 0.0 && t.generation_ms > 0.0);
    assert!(t.time_to_first_token_ms >= t.prompt_ms);
    assert!(t.prompt_tokens_per_second > 0.0 && t.generation_tokens_per_second > 0.0);
}

#[test]
fn sampling_with_a_seed_is_reproducible_and_logit_bias_bans_tokens() {
    let mut s = session();
    let opts = GenerateOptions {
        seed: Some(7),
        temperature: 1.0,
        ..GenerateOptions::default().with_max_tokens(16)
    };
    let a = s.generate("Tell me a story.", &opts).unwrap();
    let b = s.generate("Tell me a story.", &opts).unwrap();
    assert_eq!(a.tokens, b.tokens);
    let greedy = s
        .generate(
            "The capital of France is",
            &GenerateOptions::greedy().with_max_tokens(4),
        )
        .unwrap();
    let banned = greedy.tokens[0];
    let opts = GenerateOptions {
        logit_bias: vec![(banned, f32::NEG_INFINITY)],
        ..GenerateOptions::greedy().with_max_tokens(4)
    };
    let other = s.generate("The capital of France is", &opts).unwrap();
    assert!(!other.tokens.contains(&banned));
    let bad = GenerateOptions {
        top_p: 0.0,
        ..GenerateOptions::default()
    };
    assert_eq!(
        s.generate("x", &bad).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    let bad = GenerateOptions {
        logit_bias: vec![(-5, 1.0)],
        ..GenerateOptions::default()
    };
    assert_eq!(
        s.generate("x", &bad).unwrap_err().code(),
        ErrorCode::Tokenize
    );
}

#[test]
fn cancellation_from_another_thread_stops_within_one_token() {
    // Without the safety layer: its output filter may hold back a few pieces (digit runs
    // that could be a phone number), which would blur the token counts checked here.
    let mut s = Session::new(
        &model(),
        SessionOptions {
            safety: None,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let handle = s.cancel_handle();
    let opts = GenerateOptions {
        ignore_eos: true,
        ..GenerateOptions::greedy().with_max_tokens(200)
    };
    let mut stream = s.stream("Count from one to one hundred:", &opts).unwrap();
    let mut seen = 0;
    let mut after_cancel = 0;
    let mut cancelled = false;
    for piece in stream.by_ref() {
        piece.unwrap();
        if cancelled {
            after_cancel += 1;
        }
        seen += 1;
        if seen == 5 {
            let h = handle.clone();
            std::thread::spawn(move || h.cancel()).join().unwrap();
            cancelled = true;
        }
    }
    let tokens_at_cancel = stream.tokens().len();
    let out = stream.into_completion().unwrap();
    assert_eq!(out.finish_reason, FinishReason::Cancelled);
    assert!(after_cancel <= 1, "{after_cancel} pieces after cancel");
    assert!(tokens_at_cancel < 12, "{tokens_at_cancel}");
    // A callback returning false stops too.
    let mut n = 0;
    let out = s
        .generate_with("Count from one to one hundred:", &opts, |_| {
            n += 1;
            n < 3
        })
        .unwrap();
    assert_eq!(out.finish_reason, FinishReason::Cancelled);
    assert!(
        out.usage.completion_tokens <= 4,
        "{}",
        out.usage.completion_tokens
    );
    // The session is still usable and the flag was reset.
    let again = s
        .generate("Hi", &GenerateOptions::greedy().with_max_tokens(3))
        .unwrap();
    assert_ne!(again.finish_reason, FinishReason::Cancelled);
}

#[test]
fn context_overflow_is_an_error_or_an_explicit_truncation() {
    let m = model();
    let mut s = Session::new(
        &m,
        SessionOptions {
            n_ctx: Some(64),
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let long = "word ".repeat(200);
    let e = s
        .generate(long.as_str(), &GenerateOptions::greedy().with_max_tokens(8))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ContextOverflow);
    let opts = GenerateOptions {
        truncation: Truncation::DropOldest,
        ..GenerateOptions::greedy().with_max_tokens(8)
    };
    let out = s.generate(long.as_str(), &opts).unwrap();
    assert!(out.usage.prompt_tokens as usize + 8 <= 64);
    // max_tokens = None runs to the end of the context and reports Length.
    let opts = GenerateOptions {
        max_tokens: None,
        ignore_eos: true,
        ..GenerateOptions::greedy()
    };
    let out = s.generate("Hello", &opts).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(out.usage.prompt_tokens + out.usage.completion_tokens, 64);
}

#[test]
fn bad_model_files_give_typed_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let e = Model::load(dir.path().join("missing.gguf"), ModelOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ModelNotFound);
    let bytes = std::fs::read(model_path()).unwrap();
    for cut in [8, 1000, bytes.len() / 2, bytes.len() - 1] {
        let f = dir.path().join(format!("truncated-{cut}.gguf"));
        std::fs::write(&f, &bytes[..cut]).unwrap();
        let e = Model::load(&f, ModelOptions::default()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidModel, "cut at {cut}: {e}");
    }
}

#[test]
fn unknown_architecture_is_reported_as_unsupported() {
    // Patch `general.architecture = "llama"` to an architecture llama.cpp does not know.
    let mut bytes = std::fs::read(model_path()).unwrap();
    let key = b"general.architecture";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    // GGUF: u32 value type (8 = string), u64 length, then the bytes.
    assert_eq!(&bytes[at..at + 4], &8u32.to_le_bytes());
    assert_eq!(&bytes[at + 12..at + 17], b"llama");
    bytes[at + 12..at + 17].copy_from_slice(b"llamz");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("llamz.gguf");
    std::fs::write(&f, &bytes).unwrap();
    let e = Model::load(&f, ModelOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsupportedArchitecture, "{e}");
    assert!(e.to_string().contains("llamz"), "{e}");
}

#[test]
fn metadata_is_exposed() {
    let m = model();
    let info = m.info();
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.n_layer, 30);
    assert_eq!(info.n_embd, 576);
    assert_eq!(info.n_vocab, 49152);
    assert_eq!(info.n_ctx_train, 8192);
    assert_eq!(info.quantization, "Q4_1");
    assert!(info.n_params > 100_000_000 && info.n_params < 200_000_000);
    assert!(info
        .chat_template
        .as_deref()
        .unwrap()
        .contains("<|im_start|>"));
    let manifest = llmedge::model_fetch::Manifest::builtin();
    assert_eq!(
        m.sha256().unwrap(),
        manifest.get(&manifest.default).unwrap().sha256
    );
}

#[test]
fn tokenize_detokenize_round_trip_and_embeddings() {
    let m = model();
    let text = "Hello, 世界! 🙂";
    let tokens = m.tokenize(text, false, false);
    assert_eq!(m.detokenize(&tokens, false).unwrap(), text);
    assert_eq!(
        m.detokenize(&[1_000_000], false).unwrap_err().code(),
        ErrorCode::Tokenize
    );
    let a = m.embed("The patient has a fever.").unwrap();
    let b = m.embed("The patient is febrile.").unwrap();
    let c = m.embed("Stock prices fell sharply today.").unwrap();
    assert_eq!(a.len(), 576);
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    assert!((dot(&a, &a) - 1.0).abs() < 1e-4);
    assert!(
        dot(&a, &b) > dot(&a, &c),
        "similar sentences should be closer"
    );
}

#[test]
fn two_threads_on_one_model_match_sequential_runs() {
    let m = model();
    let opts = GenerateOptions::greedy().with_max_tokens(24);
    let sequential: Vec<Vec<i32>> = PROMPTS
        .iter()
        .map(|p| session().generate(*p, &opts).unwrap().tokens)
        .collect();
    let m = Arc::new(m);
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let m = m.clone();
            let opts = opts.clone();
            std::thread::spawn(move || {
                let mut s = Session::new(
                    &m,
                    SessionOptions {
                        threads: Some(1),
                        ..SessionOptions::default()
                    },
                )
                .unwrap();
                PROMPTS
                    .iter()
                    .cycle()
                    .skip(i)
                    .take(3)
                    .map(|p| (p.to_string(), s.generate(*p, &opts).unwrap().tokens))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for (prompt, tokens) in h.join().unwrap() {
            let i = PROMPTS.iter().position(|p| *p == prompt).unwrap();
            assert_eq!(tokens, sequential[i], "prompt {prompt:?}");
        }
    }
}

#[test]
fn thread_counts_and_context_sizes_are_checked_before_llama_cpp() {
    // llama.cpp crashes (not fails) beyond GGML_MAX_N_THREADS.
    let e = Model::load(
        model_path(),
        ModelOptions {
            threads: 100_000,
            ..ModelOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    for (threads, threads_batch) in [
        (Some(100_000), None),
        (Some(2), Some(u32::MAX)),
        (Some(0), None),
    ] {
        let e = Session::new(
            &model(),
            SessionOptions {
                threads,
                threads_batch,
                ..SessionOptions::default()
            },
        )
        .err()
        .expect("refused");
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    }
    // A KV cache larger than the machine's memory is refused before it is allocated.
    let e = Session::new(
        &model(),
        SessionOptions {
            n_ctx: Some(u32::MAX),
            ..SessionOptions::default()
        },
    )
    .err()
    .expect("refused");
    assert_eq!(e.code(), ErrorCode::OutOfMemory, "{e}");
    assert!(e.to_string().contains("KV cache"), "{e}");
}
