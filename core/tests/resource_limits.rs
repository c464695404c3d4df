//! Resource limits on the real default model: `max_prompt_tokens` refuses a long prompt on
//! every path (session, engine, embeddings) before anything is evaluated, and `max_sessions`
//! refuses one sequence too many before its KV cache is allocated. The other limits (queue
//! length, image pixels, the KV memory budget) are tested where they live: `serving.rs`,
//! `vision.rs` and `engine.rs`.

use std::sync::OnceLock;

use llmedge::model_fetch::default_model_path;
use llmedge::{
    ChatMessage, Engine, EngineOptions, EngineRequest, ErrorCode, GenerateOptions, Model,
    ModelOptions, RequestInput, Session, SessionOptions,
};

const MAX_PROMPT: u32 = 16;

fn load(tweak: impl FnOnce(&mut ModelOptions)) -> llmedge::Result<Model> {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    let path = PATH.get_or_init(|| default_model_path(&mut |_| {}).expect("fetch default model"));
    let mut options = ModelOptions {
        threads: 2,
        ..ModelOptions::default()
    };
    tweak(&mut options);
    Model::load(path, options)
}

fn small_session(model: &Model) -> llmedge::Result<Session> {
    // Without prefix reuse a repeated request is bit-for-bit a fresh one.
    let options = SessionOptions {
        n_ctx: Some(256),
        prefix_reuse: false,
        ..SessionOptions::default()
    };
    Session::new(model, options)
}

fn small_engine(model: &Model, slots: u32) -> llmedge::Result<Engine> {
    let options = EngineOptions {
        session: SessionOptions {
            n_ctx: Some(256),
            ..SessionOptions::default()
        },
        slots,
        ..EngineOptions::default()
    };
    Engine::new(model, options)
}

fn assert_limit(result: llmedge::Result<impl std::fmt::Debug>, tokens: usize) {
    let err = result.expect_err("over max_prompt_tokens");
    assert_eq!(err.code(), ErrorCode::Limit, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("{tokens} tokens")) && message.contains("max_prompt_tokens (16)"),
        "{message}"
    );
}

#[test]
fn a_prompt_over_max_prompt_tokens_is_refused_everywhere_and_loses_nothing() {
    let model = load(|o| o.max_prompt_tokens = Some(MAX_PROMPT)).expect("load");
    let greedy = GenerateOptions::greedy().with_max_tokens(4);
    let at_limit: Vec<i32> = model.tokenize("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen", true, false)
        [..MAX_PROMPT as usize]
        .to_vec();
    let over: Vec<i32> = model
        .tokenize(&"word ".repeat(40), true, false)
        .into_iter()
        .take(MAX_PROMPT as usize + 1)
        .collect();
    assert_eq!(over.len(), MAX_PROMPT as usize + 1);

    // A session: exactly at the limit runs; one token more is refused, and the session
    // answers the next request as a fresh one would.
    let mut session = small_session(&model).expect("session");
    let first = session
        .generate(&at_limit[..], &greedy)
        .expect("at the limit");
    assert_limit(session.generate(&over[..], &greedy), over.len());
    let long_text = "Summarise this note: ".to_owned() + &"the patient is stable. ".repeat(10);
    let n_long = model.tokenize(&long_text, true, false).len();
    assert_limit(session.generate(long_text.as_str(), &greedy), n_long);
    let long_chat = vec![ChatMessage::user(long_text.clone())];
    let err = session
        .chat(&long_chat, &greedy)
        .expect_err("chat over the limit");
    assert_eq!(err.code(), ErrorCode::Limit, "{err}");
    let again = session
        .generate(&at_limit[..], &greedy)
        .expect("after refusals");
    assert_eq!(again.tokens, first.tokens);

    // The engine refuses it when it is submitted, before it takes a slot.
    let engine = small_engine(&model, 2).expect("engine");
    let request = |input| EngineRequest {
        input,
        options: greedy.clone(),
        timeout: None,
    };
    assert_limit(
        engine.generate(request(RequestInput::Tokens(over.clone()))),
        over.len(),
    );
    let err = engine
        .generate(EngineRequest::chat(long_chat, greedy.clone()))
        .expect_err("engine chat over the limit");
    assert_eq!(err.code(), ErrorCode::Limit, "{err}");
    let done = engine
        .generate(request(RequestInput::Tokens(at_limit.clone())))
        .expect("engine at the limit");
    assert_eq!(done.tokens, first.tokens);
    assert_eq!(engine.stats().finished, 1);

    // Embeddings count their tokens the same way.
    assert_limit(model.embed(&long_text), n_long);
    model.embed("short text").expect("short embedding");
}

#[test]
fn max_sessions_counts_sessions_and_engine_slots_and_frees_them_on_drop() {
    let model = load(|o| o.max_sessions = Some(3)).expect("load");
    let a = small_session(&model).expect("first");
    let b = small_session(&model).expect("second");
    // Two slots would make four sequences.
    let err = small_engine(&model, 2).expect_err("engine over the limit");
    assert_eq!(err.code(), ErrorCode::Busy, "{err}");
    assert!(err.to_string().contains("max_sessions (3)"), "{err}");
    let engine = small_engine(&model, 1).expect("a one-slot engine fits");
    let err = small_session(&model)
        .err()
        .expect("a fourth sequence is refused");
    assert_eq!(err.code(), ErrorCode::Busy, "{err}");
    drop(a);
    let mut c = small_session(&model).expect("a freed place is reusable");
    let greedy = GenerateOptions::greedy().with_max_tokens(4);
    c.generate("The capital of France is", &greedy)
        .expect("the new session works");
    drop((b, c, engine));
    let all: Vec<Session> = (0..3)
        .map(|_| small_session(&model).expect("all three"))
        .collect();
    assert_eq!(all.len(), 3);
}

#[test]
fn zero_limits_are_invalid_not_a_model_that_refuses_everything() {
    for tweak in [
        (|o: &mut ModelOptions| o.max_prompt_tokens = Some(0)) as fn(&mut ModelOptions),
        |o: &mut ModelOptions| o.max_sessions = Some(0),
    ] {
        let err = load(tweak).expect_err("zero limit");
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
    }
}
