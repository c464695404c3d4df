//! The cost of asking about an image, with and without its cached embedding: the time of a
//! request (prompt with one image, one generated token) whose image is encoded, and of the
//! same request again, answered from the embedding cache. `bench/vision_bench.py` runs it
//! and writes the "vision" section of BENCHMARKS.md.
//!
//! ```text
//! vision_bench MODEL MMPROJ IMAGE REPS THREADS     one JSON line
//! ```

use std::time::Instant;

use llmedge::{ChatMessage, GenerateOptions, Image, Model, ModelOptions, Session, SessionOptions};

fn main() -> llmedge::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args[4].parse().expect("REPS");
    let threads: u32 = args[5].parse().expect("THREADS");
    let model = Model::load(
        &args[1],
        ModelOptions {
            threads,
            ..ModelOptions::default()
        },
    )?;
    let projector = model.load_mmproj(&args[2])?;
    let image = Image::open(&args[3])?;
    let mut session = Session::new(
        &model,
        SessionOptions {
            n_ctx: Some(2048),
            safety: None,
            ..SessionOptions::default()
        },
    )?;
    let messages = [ChatMessage::user_with_images(
        "Describe the image.",
        vec![image.clone()],
    )];
    let options = GenerateOptions::greedy().with_max_tokens(1);
    let time = |s: &mut Session| -> llmedge::Result<(f64, u32)> {
        let t = Instant::now();
        let c = s.chat(&messages, &options)?;
        Ok((t.elapsed().as_secs_f64() * 1e3, c.usage.prompt_tokens))
    };
    // Warm-up (graph allocation, page faults), not measured.
    time(&mut session)?;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let mut prompt_tokens = 0;
    for _ in 0..reps {
        projector.clear_cache();
        let (ms, n) = time(&mut session)?;
        cold.push(ms);
        prompt_tokens = n;
        warm.push(time(&mut session)?.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let stats = projector.stats();
    println!(
        "{}",
        serde_json::json!({
            "first_ms": median(&mut cold),
            "cached_ms": median(&mut warm),
            "prompt_tokens": prompt_tokens,
            "encoded": stats.encoded,
            "cache_hits": stats.cache_hits,
            "image": {"width": image.width(), "height": image.height()},
            "projector": projector.info(),
        })
    );
    Ok(())
}
