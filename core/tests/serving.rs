//! The serving engine (continuous batching, prefix reuse, adapter groups, limits) and session
//! state files, on the real default model. The reference for every output is the same
//! request run alone on a [`Session`] (whose greedy tokens `engine.rs` checks against an
//! independent llama.cpp loop).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use llmedge::audit::{AuditConfig, AuditLog};
use llmedge::model_fetch::default_model_path;
use llmedge::response_cache::{MemoryCache, RedisCache, ResponseCache, ResponseCacheConfig};
use llmedge::{
    ChatMessage, Engine, EngineOptions, EngineRequest, ErrorCode, FinishReason, GenerateOptions,
    Model, ModelOptions, OutputConstraint, RequestInput, Session, SessionOptions,
};

fn model() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = default_model_path(&mut |_| {}).expect("fetch default model");
            let options = ModelOptions {
                threads: 2,
                ..ModelOptions::default()
            };
            Model::load(path, options).expect("load")
        })
        .clone()
}

fn session_options() -> SessionOptions {
    SessionOptions {
        n_ctx: Some(1024),
        ..SessionOptions::default()
    }
}

fn make_engine(slots: u32, tweak: impl FnOnce(&mut EngineOptions)) -> Engine {
    let mut options = EngineOptions {
        session: session_options(),
        slots,
        ..EngineOptions::default()
    };
    tweak(&mut options);
    Engine::new(&model(), options).expect("engine")
}

const QUESTIONS: [&str; 8] = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
    "What is 12 times 12?",
    "Give a synonym for happy.",
    "Why do hospitals keep records?",
    "Translate 'good morning' into French.",
    "What does a nurse do?",
];

fn chat(question: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::user(question)]
}

fn greedy(n: u32) -> GenerateOptions {
    GenerateOptions::greedy().with_max_tokens(n)
}

/// The same request, alone on a fresh session.
fn alone(messages: &[ChatMessage], options: &GenerateOptions) -> Vec<i32> {
    let mut session = Session::new(&model(), session_options()).expect("session");
    session.chat(messages, options).expect("chat").tokens
}

#[test]
fn concurrent_greedy_requests_equal_each_request_run_alone() {
    let engine = Arc::new(make_engine(4, |_| {}));
    let options = greedy(24);
    let streams: Vec<_> = QUESTIONS
        .iter()
        .map(|q| {
            engine
                .stream(EngineRequest::chat(chat(q), options.clone()))
                .expect("submit")
        })
        .collect();
    // Read every stream on its own thread, as concurrent clients would.
    let results: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut text = String::new();
                for piece in stream.by_ref() {
                    text.push_str(&piece.expect("piece"));
                }
                (text, stream.completion().expect("completion"))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    for (q, (streamed, completion)) in QUESTIONS.iter().zip(&results) {
        assert_eq!(*streamed, completion.text, "stream != completion for {q:?}");
        assert_eq!(
            completion.tokens,
            alone(&chat(q), &options),
            "batched output differs from the request alone: {q:?}"
        );
        assert!(completion.usage.completion_tokens > 0);
    }
    let stats = engine.stats();
    assert_eq!(stats.finished, QUESTIONS.len() as u64);
    assert_eq!(stats.active, 0);
    // Several sequences were decoded per step: fewer steps than tokens.
    let tokens: u64 = results
        .iter()
        .map(|(_, c)| c.usage.completion_tokens as u64)
        .sum();
    assert!(
        stats.decode_steps < tokens,
        "{} steps for {tokens} tokens: nothing was batched",
        stats.decode_steps
    );
}

#[test]
fn sampled_and_constrained_requests_keep_their_own_settings_in_a_batch() {
    let engine = make_engine(3, |_| {});
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 20}},
        "required": ["answer"]
    });
    let requests = [
        GenerateOptions {
            seed: Some(7),
            temperature: 0.9,
            ..GenerateOptions::default()
        }
        .with_max_tokens(20),
        greedy(40).with_constraint(OutputConstraint::JsonSchema(schema.clone())),
        GenerateOptions {
            stop: vec![".".into()],
            ..greedy(40)
        },
    ];
    let streams: Vec<_> = requests
        .iter()
        .zip(QUESTIONS)
        .map(|(o, q)| {
            engine
                .stream(EngineRequest::chat(chat(q), o.clone()))
                .unwrap()
        })
        .collect();
    let completions: Vec<_> = streams
        .into_iter()
        .map(|s| s.completion().unwrap())
        .collect();
    for ((options, q), completion) in requests.iter().zip(QUESTIONS).zip(&completions) {
        assert_eq!(completion.tokens, alone(&chat(q), options), "{q:?}");
    }
    let value: serde_json::Value =
        serde_json::from_str(&completions[1].text).expect("constrained output is JSON");
    assert!(value["answer"].is_string());
    assert!(!completions[2].text.contains('.'));
    assert_eq!(completions[2].finish_reason, FinishReason::Stop);
}

#[test]
fn a_shared_prefix_is_reused_from_a_slot_and_from_the_host_cache() {
    let system = "You are a careful clinical assistant. Answer in one short sentence, \
                  without speculation, and say when you do not know. "
        .repeat(4);
    let ask = |q: &str| {
        vec![
            ChatMessage::system(system.clone()),
            ChatMessage::user(q.to_string()),
        ]
    };
    let engine = make_engine(2, |o| o.prefix_cache_min_tokens = 16);
    let options = greedy(12);
    let first = engine
        .generate(EngineRequest::chat(ask(QUESTIONS[0]), options.clone()))
        .unwrap();
    assert_eq!(first.usage.cached_prompt_tokens, 0);
    // Same system prompt, other question: the slot's cache holds the prefix.
    let second = engine
        .generate(EngineRequest::chat(ask(QUESTIONS[1]), options.clone()))
        .unwrap();
    assert!(
        second.usage.cached_prompt_tokens > 100,
        "cached {} of {}",
        second.usage.cached_prompt_tokens,
        second.usage.prompt_tokens
    );
    assert_eq!(second.tokens, alone(&ask(QUESTIONS[1]), &options));
    // Overwrite both slots with unrelated prompts: the prefix survives in host memory.
    for q in &QUESTIONS[2..6] {
        engine
            .generate(EngineRequest::chat(chat(q), options.clone()))
            .unwrap();
    }
    assert!(engine.stats().prefix_cache_entries > 0);
    let third = engine
        .generate(EngineRequest::chat(ask(QUESTIONS[2]), options.clone()))
        .unwrap();
    assert!(
        third.usage.cached_prompt_tokens > 100,
        "host cache not used: cached {}",
        third.usage.cached_prompt_tokens
    );
    assert_eq!(third.tokens, alone(&ask(QUESTIONS[2]), &options));
    assert!(third.timings.prompt_ms < first.timings.prompt_ms);
}

#[test]
fn a_full_queue_is_busy_and_timeouts_and_cancels_end_requests_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(AuditConfig::new(dir.path())).unwrap());
    let engine = make_engine(1, |o| {
        o.max_queue = 2;
        o.session.audit = Some(audit.clone());
    });
    let long = GenerateOptions {
        ignore_eos: true,
        ..greedy(200)
    };
    let mut running = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[0]), long.clone()))
        .unwrap();
    // Once it streams, it holds the only slot and the queue is empty.
    running.next().unwrap().unwrap();
    let queued_a = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[1]), long.clone()))
        .unwrap();
    let queued_b = engine
        .stream(
            EngineRequest::chat(chat(QUESTIONS[2]), long.clone())
                .with_timeout(Duration::from_millis(50)),
        )
        .unwrap();
    let busy = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[3]), long.clone()))
        .err()
        .expect("a full queue refuses");
    assert_eq!(busy.code(), ErrorCode::Busy);
    // Cancel the waiting request, time out the other, stop the running one by dropping it.
    queued_a.handle().cancel();
    let cancelled = queued_a.completion().unwrap();
    assert_eq!(cancelled.finish_reason, FinishReason::Cancelled);
    assert_eq!(cancelled.usage.completion_tokens, 0);
    let timed_out = queued_b.completion().expect_err("deadline");
    assert_eq!(timed_out.code(), ErrorCode::Timeout);
    drop(running);
    // The slot is free again and gives the same answer as alone.
    let after = engine
        .generate(EngineRequest::chat(chat(QUESTIONS[4]), greedy(16)))
        .unwrap();
    assert_eq!(after.tokens, alone(&chat(QUESTIONS[4]), &greedy(16)));
    // A running request past its deadline ends with Timeout too.
    let late = engine
        .generate(
            EngineRequest::chat(chat(QUESTIONS[5]), long).with_timeout(Duration::from_millis(300)),
        )
        .expect_err("deadline while generating");
    assert_eq!(late.code(), ErrorCode::Timeout);
    engine.shutdown(true);
    audit.flush().unwrap();
    // Every request, refused or not, has exactly one record, and the chain verifies.
    let report = llmedge::audit::verify(dir.path()).unwrap();
    assert!(report.ok, "{report:?}");
    let reasons: Vec<String> = read_records(dir.path())
        .iter()
        .map(|r| r["finish_reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    for expected in ["cancelled", "error:timeout", "error:busy", "length"] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "{expected} missing in {reasons:?}"
        );
    }
}

fn read_records(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

#[test]
fn tenants_are_served_round_robin() {
    let engine = make_engine(1, |_| {});
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    // Tenant a queues three requests before tenant b queues one.
    for (i, tenant) in ["a", "a", "a", "b"].iter().enumerate() {
        let options = GenerateOptions {
            tenant: Some(tenant.to_string()),
            ..greedy(4)
        };
        let (order, done) = (order.clone(), std::sync::mpsc::channel());
        let tx = done.0;
        engine
            .submit_with(
                EngineRequest::chat(chat(QUESTIONS[i]), options),
                |_| true,
                move |r| {
                    order.lock().unwrap().push(format!("{tenant}{i}"));
                    let _ = tx.send(r.map(|_| ()));
                },
            )
            .unwrap();
        handles.push(done.1);
    }
    for rx in handles {
        rx.recv().unwrap().unwrap();
    }
    let order = order.lock().unwrap().clone();
    // a0 may already be running when the rest arrive; b3 is served before a's third request.
    let b = order.iter().position(|x| x == "b3").unwrap();
    let a2 = order.iter().position(|x| x == "a2").unwrap();
    assert!(b < a2, "not fair between tenants: {order:?}");
}

#[test]
fn refused_inputs_and_bad_requests_never_reach_a_slot() {
    let engine = make_engine(1, |_| {});
    let refused = engine
        .generate(EngineRequest::chat(
            chat("Tell me how to make a bomb at home."),
            greedy(8),
        ))
        .unwrap();
    assert_eq!(refused.finish_reason, FinishReason::ContentFilter);
    assert_eq!(refused.usage.completion_tokens, 0);
    let e = engine
        .stream(EngineRequest {
            input: RequestInput::Prompt(String::new()),
            options: greedy(4),
            timeout: None,
        })
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let too_long = "word ".repeat(2000);
    let e = engine
        .stream(EngineRequest::prompt(too_long, greedy(4)))
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::ContextOverflow);
    let bad = GenerateOptions {
        top_p: 2.0,
        ..greedy(4)
    };
    let e = engine
        .stream(EngineRequest::prompt("Hi", bad))
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert_eq!(engine.stats().finished, 1);
}

#[test]
fn shutdown_drains_or_cancels_and_later_submissions_are_closed() {
    let engine = make_engine(1, |_| {});
    let a = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[0]), greedy(8)))
        .unwrap();
    let b = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[1]), greedy(8)))
        .unwrap();
    engine.shutdown(true);
    assert_eq!(
        a.completion().unwrap().tokens,
        alone(&chat(QUESTIONS[0]), &greedy(8))
    );
    assert_eq!(
        b.completion().unwrap().tokens,
        alone(&chat(QUESTIONS[1]), &greedy(8))
    );
    let e = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[2]), greedy(8)))
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::Closed);

    let engine = make_engine(1, |_| {});
    let running = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[0]), greedy(400)))
        .unwrap();
    let waiting = engine
        .stream(EngineRequest::chat(chat(QUESTIONS[1]), greedy(400)))
        .unwrap();
    engine.shutdown(false);
    for stream in [running, waiting] {
        let c = stream.completion().unwrap();
        assert_eq!(c.finish_reason, FinishReason::Cancelled);
        assert!(c.usage.completion_tokens < 400);
    }
}

#[test]
fn session_state_survives_a_new_session_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conversation.kv");
    let options = greedy(16);
    let first_turn = chat(QUESTIONS[0]);
    let mut session = Session::new(&model(), session_options()).unwrap();
    let reply = session.chat(&first_turn, &options).unwrap();
    // The next turn of the conversation reuses the KV of the first: prompt and reply.
    let mut history = first_turn.clone();
    history.push(ChatMessage::assistant(reply.text.clone()));
    history.push(ChatMessage::user("And of Italy?"));
    let next = session.chat(&history, &options).unwrap();
    assert!(
        next.usage.cached_prompt_tokens >= reply.usage.prompt_tokens,
        "{:?}",
        next.usage
    );
    session.save_state(&path).unwrap();
    history.push(ChatMessage::assistant(next.text.clone()));
    history.push(ChatMessage::user("And of Spain?"));
    // The reference: the original session continuing from the same KV.
    let continued = session.chat(&history, &options).unwrap();

    let mut restored = Session::new(&model(), session_options()).unwrap();
    let n = restored.load_state(&path).unwrap();
    assert!(n >= next.usage.prompt_tokens as usize);
    let third = restored.chat(&history, &options).unwrap();
    assert_eq!(
        third.usage.cached_prompt_tokens,
        continued.usage.cached_prompt_tokens
    );
    assert!(
        third.usage.cached_prompt_tokens as usize >= n - 2,
        "{:?}",
        third.usage
    );
    assert_eq!(
        third.tokens, continued.tokens,
        "the restored KV differs from the saved one"
    );

    // A flipped byte, a truncated file and a file that is no state file are refused.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let corrupt = dir.path().join("corrupt.kv");
    std::fs::write(&corrupt, &bytes).unwrap();
    let truncated = dir.path().join("truncated.kv");
    std::fs::write(&truncated, &std::fs::read(&path).unwrap()[..100]).unwrap();
    let other = dir.path().join("other.kv");
    std::fs::write(&other, b"hello").unwrap();
    for bad in [&corrupt, &truncated, &other] {
        let e = restored.load_state(bad).expect_err("refused");
        assert_eq!(e.code(), ErrorCode::State, "{e}");
    }
    let missing = restored
        .load_state(dir.path().join("missing.kv"))
        .err()
        .unwrap();
    assert_eq!(missing.code(), ErrorCode::Io);
    // After a refusal the session starts from an empty cache and still works.
    let again = restored.chat(&chat(QUESTIONS[1]), &options).unwrap();
    assert_eq!(again.usage.cached_prompt_tokens, 0);
    assert_eq!(again.tokens, alone(&chat(QUESTIONS[1]), &options));
}

#[test]
fn prefix_reuse_can_be_turned_off() {
    let mut session = Session::new(
        &model(),
        SessionOptions {
            prefix_reuse: false,
            ..session_options()
        },
    )
    .unwrap();
    let options = greedy(8);
    session.chat(&chat(QUESTIONS[0]), &options).unwrap();
    let again = session.chat(&chat(QUESTIONS[0]), &options).unwrap();
    assert_eq!(again.usage.cached_prompt_tokens, 0);
    let engine = make_engine(1, |o| o.session.prefix_reuse = false);
    engine
        .generate(EngineRequest::chat(chat(QUESTIONS[0]), options.clone()))
        .unwrap();
    let again = engine
        .generate(EngineRequest::chat(chat(QUESTIONS[0]), options))
        .unwrap();
    assert_eq!(again.usage.cached_prompt_tokens, 0);
}

#[test]
fn requests_with_different_adapters_run_in_groups_and_match_each_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/cache/fixtures/lora");
    let model = model();
    let a = model.load_lora(root.join("lora_smollm2_a.gguf")).unwrap();
    let b = model.load_lora(root.join("lora_smollm2_b.gguf")).unwrap();
    let sets: [llmedge::AdapterSet; 3] = [vec![(a.clone(), 1.0)], vec![(b, 0.5)], vec![]];
    let engine = make_engine(3, |o| o.adapter_quantum = 2);
    let streams: Vec<_> = QUESTIONS[..6]
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let options = GenerateOptions {
                adapters: Some(sets[i % 3].clone()),
                ..greedy(12)
            };
            (
                i,
                engine
                    .stream(EngineRequest::chat(chat(q), options))
                    .unwrap(),
            )
        })
        .collect();
    for (i, stream) in streams {
        let completion = stream.completion().unwrap();
        let mut session = Session::new(
            &model,
            SessionOptions {
                adapters: sets[i % 3].clone(),
                ..session_options()
            },
        )
        .unwrap();
        let reference = session.chat(&chat(QUESTIONS[i]), &greedy(12)).unwrap();
        assert_eq!(
            completion.tokens, reference.tokens,
            "request {i} did not run under its own adapter set"
        );
    }
    // The adapters change the answers, so the test can tell the groups apart.
    let bare = alone(&chat(QUESTIONS[0]), &greedy(12));
    let mut with_a = Session::new(
        &model,
        SessionOptions {
            adapters: vec![(a, 1.0)],
            ..session_options()
        },
    )
    .unwrap();
    assert_ne!(
        with_a
            .chat(&chat(QUESTIONS[0]), &greedy(12))
            .unwrap()
            .tokens,
        bare
    );
}

fn cached_engine(cache: Arc<dyn ResponseCache>, share: bool) -> Engine {
    make_engine(2, |o| {
        o.response_cache = Some(ResponseCacheConfig {
            cache,
            share_across_tenants: share,
        })
    })
}

#[test]
fn deterministic_requests_are_answered_from_the_memory_cache() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(AuditConfig::new(dir.path())).unwrap());
    let cache = Arc::new(MemoryCache::new(16, Duration::from_secs(60)).unwrap());
    let engine = make_engine(2, |o| {
        o.session.audit = Some(audit.clone());
        o.response_cache = Some(ResponseCacheConfig {
            cache: cache.clone(),
            share_across_tenants: false,
        });
    });
    let ask = |q: &str, options: GenerateOptions| {
        engine
            .generate(EngineRequest::chat(chat(q), options))
            .unwrap()
    };
    let first = ask(QUESTIONS[0], greedy(12));
    let second = ask(QUESTIONS[0], greedy(12));
    assert_eq!(second.text, first.text);
    assert_eq!(second.tokens, first.tokens);
    assert_eq!(engine.stats().response_cache_hits, 1);
    assert_eq!(cache.stats().hits, 1);
    // Another tenant, other sampling settings, or unseeded sampling: not the cached answer.
    let other_tenant = GenerateOptions {
        tenant: Some("ward-9".into()),
        ..greedy(12)
    };
    ask(QUESTIONS[0], other_tenant);
    ask(QUESTIONS[0], greedy(10));
    let sampled = GenerateOptions::default().with_max_tokens(6);
    ask(QUESTIONS[0], sampled.clone());
    ask(QUESTIONS[0], sampled);
    assert_eq!(engine.stats().response_cache_hits, 1);
    // A redacted input is never stored: the caller's own PII comes back in the answer.
    let pii = "My phone is 13812345678. What is my phone number?";
    ask(pii, greedy(12));
    ask(pii, greedy(12));
    assert_eq!(engine.stats().response_cache_hits, 1);
    // A seeded sampled request is deterministic, hence cached.
    let seeded = GenerateOptions {
        seed: Some(11),
        ..GenerateOptions::default().with_max_tokens(8)
    };
    let a = ask(QUESTIONS[1], seeded.clone());
    let b = ask(QUESTIONS[1], seeded);
    assert_eq!(a.text, b.text);
    assert_eq!(engine.stats().response_cache_hits, 2);
    engine.shutdown(true);
    audit.flush().unwrap();
    let records = read_records(dir.path());
    assert_eq!(records.len(), 10, "every request, hit or not, is audited");
    let hits = records
        .iter()
        .filter(|r| r["serving"]["response_cache"] == "hit")
        .count();
    assert_eq!(hits, 2);
    assert!(llmedge::audit::verify(dir.path()).unwrap().ok);
}

/// A throwaway `redis-server` on a free loopback port, stopped on drop.
struct RedisServer {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server) must be installed");
        let url = format!("redis://127.0.0.1:{port}/");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisServer {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_redis_cache_is_shared_by_engines_and_an_outage_only_costs_hits() {
    let mut redis = RedisServer::start();
    let connect = |prefix: &str| {
        Arc::new(
            RedisCache::connect(
                &redis.url,
                prefix,
                Duration::from_secs(60),
                Duration::from_millis(500),
            )
            .unwrap(),
        )
    };
    // Two engines (two replicas of a fleet) on one Redis.
    let first = cached_engine(connect("test:"), true);
    let second = cached_engine(connect("test:"), true);
    let answer = first
        .generate(EngineRequest::chat(chat(QUESTIONS[2]), greedy(12)))
        .unwrap();
    let replayed = second
        .generate(EngineRequest::chat(chat(QUESTIONS[2]), greedy(12)))
        .unwrap();
    assert_eq!(replayed.text, answer.text);
    assert_eq!(second.stats().response_cache_hits, 1);
    // The entry is really in Redis, with a TTL.
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("test:*").query(&mut conn).unwrap();
    assert_eq!(keys.len(), 1);
    let ttl: i64 = redis::cmd("TTL").arg(&keys[0]).query(&mut conn).unwrap();
    assert!((1..=60).contains(&ttl), "ttl {ttl}");
    // Redis goes away: requests are still answered by the model.
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let served = second
        .generate(EngineRequest::chat(chat(QUESTIONS[3]), greedy(8)))
        .unwrap();
    assert_eq!(served.tokens, alone(&chat(QUESTIONS[3]), &greedy(8)));
    assert!(RedisCache::connect(
        &redis.url,
        "x",
        Duration::from_secs(1),
        Duration::from_millis(200)
    )
    .is_err());
}

/// The classifier stage on the real model: its answer is the same constrained greedy chat a
/// session gives for the router's prompt, and it names a route.
#[test]
fn route_classifier_answers_with_a_route_name() {
    use llmedge::router::{RouteClassifier, RouteQuery, RouteRule, Router};
    let router = Router::from_toml_str(
        "[[routes]]\nname = \"finance\"\nmodel = \"base\"\n\
         [[routes]]\nname = \"medical\"\nmodel = \"base\"\n\
         [router.classifier]\nmodel = \"base\"\n",
    )
    .unwrap();
    let classifier = RouteClassifier::new(&model()).unwrap();
    let text = "What dose of ibuprofen is safe for a child with a fever?";
    let query = RouteQuery {
        model: None,
        tenant: "ward-7",
        text,
    };
    let decision = router.route_with(&query, Some(&classifier)).unwrap();
    let RouteRule::Classifier(name) = &decision.rule else {
        panic!("not the classifier: {decision:?}");
    };
    assert_eq!(name, &decision.route);
    let mut session = Session::new(&model(), session_options()).unwrap();
    let choices = router.classifier_choices();
    let options = GenerateOptions::greedy()
        .with_max_tokens(16)
        .with_constraint(OutputConstraint::Choice(choices));
    let prompt = router.classifier_prompt(text).unwrap();
    let reference = session
        .chat(&[ChatMessage::user(&prompt)], &options)
        .unwrap();
    assert_eq!(reference.text.trim(), decision.route);
    // A rule that matches first leaves the classifier out.
    let decision = router
        .route_with(
            &RouteQuery {
                model: Some("finance"),
                ..query
            },
            Some(&classifier),
        )
        .unwrap();
    assert_eq!(decision.rule, RouteRule::Model("finance".into()));
}
