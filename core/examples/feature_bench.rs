//! What structured output and the safety layer cost during generation, on the real default
//! model: decode tok/s with and without a JSON-schema grammar, and with the safety layer
//! (input check + streaming output filter) on and off. Rounds alternate the contenders so
//! machine drift hits both; the ratio is the median of per-round ratios. Prints one JSON
//! object.
//!
//! `cargo run --release --example feature_bench [ROUNDS]`

use std::time::Instant;

use llmedge::model_fetch::default_model_path;
use llmedge::{GenerateOptions, Model, ModelOptions, OutputConstraint, Session, SessionOptions};
use serde_json::json;

const TOKENS: u32 = 96;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Decode tok/s of one generation (tokens after the first over generation time).
fn decode_tps(session: &mut Session, prompt: &str, options: &GenerateOptions) -> (f64, u32) {
    let out = session.generate(prompt, options).expect("generate");
    (
        out.timings.generation_tokens_per_second,
        out.usage.completion_tokens,
    )
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(6);
    let path = default_model_path(&mut |_| {}).expect("default model");
    let model = Model::load(
        &path,
        ModelOptions {
            threads: 2,
            ..ModelOptions::default()
        },
    )
    .expect("load");
    let plain = SessionOptions {
        safety: None,
        ..SessionOptions::default()
    };
    let mut raw = Session::new(&model, plain).expect("session");
    let mut guarded = Session::new(&model, SessionOptions::default()).expect("session");
    let prompt = "Write a detailed clinical note about a patient with chest pain, as JSON:";
    // A schema with room for a long answer; decode speed is per token, so the two runs may
    // stop at different lengths. (Huge `minLength` values would blow the grammar up.)
    let schema = json!({
        "type": "object",
        "properties": {
            "findings": {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 8},
            "urgency": {"enum": ["urgent", "routine"]}
        },
        "required": ["findings", "urgency"]
    });
    let free = GenerateOptions {
        ignore_eos: true,
        ..GenerateOptions::greedy().with_max_tokens(TOKENS)
    };
    let constrained = GenerateOptions::greedy()
        .with_max_tokens(TOKENS)
        .with_constraint(OutputConstraint::JsonSchema(schema));

    let (mut g_free, mut g_json, mut g_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut s_off, mut s_on, mut s_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut tokens = (0, 0);
    // One warm-up of each, then alternating rounds.
    decode_tps(&mut raw, prompt, &free);
    decode_tps(&mut raw, prompt, &constrained);
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = decode_tps(&mut raw, prompt, &free);
            (a, decode_tps(&mut raw, prompt, &constrained))
        } else {
            let b = decode_tps(&mut raw, prompt, &constrained);
            (decode_tps(&mut raw, prompt, &free), b)
        };
        tokens = (a.1, b.1);
        g_free.push(a.0);
        g_json.push(b.0);
        g_ratio.push(b.0 / a.0);
        let (off, on) = if round % 2 == 0 {
            let off = decode_tps(&mut raw, prompt, &free).0;
            (off, decode_tps(&mut guarded, prompt, &free).0)
        } else {
            let on = decode_tps(&mut guarded, prompt, &free).0;
            (decode_tps(&mut raw, prompt, &free).0, on)
        };
        s_off.push(off);
        s_on.push(on);
        s_ratio.push(on / off);
    }
    // The output filter's own cost, timed directly over a generated text fed token by token.
    let text = raw.generate(prompt, &free).expect("generate");
    let pieces: Vec<String> = text
        .tokens
        .iter()
        .map(|&t| model.detokenize(&[t], false).expect("detokenize"))
        .collect();
    let safety = llmedge::request_guard::default_safety();
    let reps = 200;
    let started = Instant::now();
    for _ in 0..reps {
        let mut filter = safety.output_filter(None);
        for p in &pieces {
            std::hint::black_box(filter.push(p));
        }
        std::hint::black_box(filter.finish());
    }
    let filter_ns_per_token = started.elapsed().as_nanos() as f64 / (reps * pieces.len()) as f64;
    let ms_per_token = 1000.0 / median(s_off.clone());
    let out = json!({
        "bench": "features",
        "model": path.file_name().map(|f| f.to_string_lossy().into_owned()),
        "threads": 2,
        "rounds": rounds,
        "tokens": {"free": tokens.0, "json_schema": tokens.1},
        "grammar": {
            "free_tps_median": round3(median(g_free)),
            "json_schema_tps_median": round3(median(g_json)),
            "ratio_median": round3(median(g_ratio)),
        },
        "safety": {
            "off_tps_median": round3(median(s_off)),
            "on_tps_median": round3(median(s_on)),
            "ratio_median": round3(median(s_ratio)),
            "filter_ns_per_token": round3(filter_ns_per_token),
            "filter_share_of_generation_percent": round3(filter_ns_per_token / (ms_per_token * 1e6) * 100.0),
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
