//! Independent reference loops written directly on `llama-cpp-2`, with no llmedge code.
//! Tests compare the SDK's greedy tokens with `greedy`; the bench harness compares speeds
//! with `bench`.
//!
//! ```text
//! llama_reference greedy MODEL N_PREDICT PROMPT...      one JSON line per prompt: token ids
//! llama_reference bench MODEL THREADS PP TG REPS        one JSON line: pp and tg tok/s
//! ```

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut backend = LlamaBackend::init().expect("backend");
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, &args[2], &LlamaModelParams::default())
        .expect("load model");
    match args[1].as_str() {
        "greedy" => {
            let n_predict: usize = args[3].parse().expect("N_PREDICT");
            for prompt in &args[4..] {
                let tokens = greedy(&backend, &model, prompt, n_predict);
                println!("{{\"prompt\":{prompt:?},\"tokens\":{tokens:?}}}");
            }
        }
        "bench" => {
            let p = |i: usize| args[i].parse::<usize>().expect("number");
            bench(&backend, &model, p(3) as i32, p(4), p(5), p(6));
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Greedy decoding from a fresh context; stops at an end-of-generation token.
fn greedy(backend: &LlamaBackend, model: &LlamaModel, prompt: &str, n_predict: usize) -> Vec<i32> {
    let params = LlamaContextParams::default().with_n_ctx(NonZeroU32::new(2048));
    let mut ctx = model.new_context(backend, params).expect("context");
    let vocab = model.vocab();
    let prompt_tokens = vocab.tokenize(prompt.as_bytes(), vocab.should_add_bos(), true);
    let mut batch = LlamaBatch::new(2048, 1);
    let last = prompt_tokens.len() - 1;
    for (i, t) in prompt_tokens.iter().enumerate() {
        batch.add(*t, i as i32, &[0], i == last).expect("batch");
    }
    ctx.decode(&mut batch).expect("decode prompt");
    let mut sampler = LlamaSampler::greedy();
    let mut pos = prompt_tokens.len() as i32;
    let mut out = Vec::new();
    while out.len() < n_predict {
        let token = sampler.sample(&ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            break;
        }
        out.push(token.0);
        batch.clear();
        batch.add(token, pos, &[0], true).expect("batch");
        pos += 1;
        ctx.decode(&mut batch).expect("decode");
    }
    out
}

/// pp: one batch of `pp` tokens; tg: `tg` single-token decodes with greedy sampling.
fn bench(
    backend: &LlamaBackend,
    model: &LlamaModel,
    threads: i32,
    pp: usize,
    tg: usize,
    reps: usize,
) {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new((pp + tg + 16) as u32))
        .with_n_batch(2048)
        .with_n_ubatch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(backend, params).expect("context");
    let vocab = model.vocab();
    let n_vocab = model.n_vocab() as u64;
    let bos = vocab.bos();
    let mut prompt = vec![bos];
    let mut x: u64 = 7;
    while prompt.len() < pp {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        prompt.push(LlamaToken(((x >> 33) % n_vocab) as i32));
    }
    let mut batch = LlamaBatch::new(pp.max(1), 1);
    let (mut pps, mut tgs) = (Vec::new(), Vec::new());
    for rep in 0..=reps {
        ctx.clear_kv_cache();
        batch.clear();
        for (i, t) in prompt.iter().enumerate() {
            batch.add(*t, i as i32, &[0], i == pp - 1).expect("batch");
        }
        let t0 = Instant::now();
        ctx.decode(&mut batch).expect("decode");
        let pp_s = t0.elapsed().as_secs_f64();

        ctx.clear_kv_cache();
        let mut sampler = LlamaSampler::greedy();
        batch.clear();
        batch.add(bos, 0, &[0], true).expect("batch");
        ctx.decode(&mut batch).expect("decode");
        let t0 = Instant::now();
        for pos in 1..=tg {
            let token = sampler.sample(&ctx, -1);
            batch.clear();
            batch.add(token, pos as i32, &[0], true).expect("batch");
            ctx.decode(&mut batch).expect("decode");
        }
        let tg_s = t0.elapsed().as_secs_f64();
        if rep > 0 {
            pps.push(pp as f64 / pp_s);
            tgs.push(tg as f64 / tg_s);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{{\"pp\":{{\"tokens\":{pp},\"tokens_per_second\":{}}},\"tg\":{{\"tokens\":{tg},\"tokens_per_second\":{}}}}}",
        mean(&pps),
        mean(&tgs)
    );
}
