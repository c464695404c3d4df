//! `llmedge bench`: prompt-processing and generation speed through the public SDK API,
//! measured the way llama-bench measures them (pp: one batch of N prompt tokens;
//! tg: N single-token decodes), so the two can be compared side by side.

use std::path::PathBuf;

use clap::Args;
use llmedge::{Error, GenerateOptions, Model, ModelOptions, Session, SessionOptions};

#[derive(Args)]
pub struct BenchArgs {
    /// GGUF model file (default: the default model).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(short, long)]
    threads: Option<u32>,
    /// Prompt tokens for the pp test.
    #[arg(long, default_value_t = 512)]
    pp: u32,
    /// Generated tokens for the tg test.
    #[arg(long, default_value_t = 128)]
    tg: u32,
    /// Measured repetitions (after one warm-up).
    #[arg(long, default_value_t = 5)]
    reps: u32,
}

/// Mean and sample standard deviation.
fn stats(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

pub fn run(args: &BenchArgs, json: bool) -> Result<(), Error> {
    if args.pp == 0 || args.tg == 0 || args.reps == 0 {
        return Err(Error::InvalidArgument(
            "--pp, --tg and --reps must be at least 1".into(),
        ));
    }
    let path = match &args.model {
        Some(p) => p.clone(),
        None => crate::progress::fetch_default(true)?,
    };
    let mut options = ModelOptions::default();
    if let Some(t) = args.threads {
        options.threads = t;
    }
    let threads = options.threads;
    let model = Model::load(&path, options)?;
    let n_vocab = model.info().n_vocab as i32;
    let mut session = Session::new(
        &model,
        SessionOptions {
            n_ctx: Some(args.pp + args.tg + 16),
            ..SessionOptions::default()
        },
    )?;
    // Like llama-bench: BOS, then pseudo-random tokens.
    let bos = model.tokenize("", true, false);
    let mut prompt = bos.clone();
    let mut x: u64 = 42;
    while prompt.len() < args.pp as usize {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        prompt.push(((x >> 33) % n_vocab as u64) as i32);
    }
    let pp_opts = GenerateOptions::greedy().with_max_tokens(1);
    let tg_opts = GenerateOptions {
        ignore_eos: true,
        ..GenerateOptions::greedy().with_max_tokens(args.tg + 1)
    };
    let tg_prompt = if bos.is_empty() { vec![prompt[0]] } else { bos };
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for rep in 0..=args.reps {
        let p = session.generate(prompt.as_slice(), &pp_opts)?;
        let t = session.generate(tg_prompt.as_slice(), &tg_opts)?;
        if rep > 0 {
            pp.push(p.timings.prompt_tokens_per_second);
            tg.push(t.timings.generation_tokens_per_second);
        }
    }
    let (pp_mean, pp_std) = stats(&pp);
    let (tg_mean, tg_std) = stats(&tg);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "model": path, "threads": threads, "reps": args.reps,
                "pp": {"tokens": args.pp, "tokens_per_second": pp_mean, "stddev": pp_std},
                "tg": {"tokens": args.tg, "tokens_per_second": tg_mean, "stddev": tg_std},
            })
        );
    } else {
        println!("model: {}  threads: {threads}", path.display());
        println!("pp{}: {pp_mean:.1} ± {pp_std:.1} tok/s", args.pp);
        println!("tg{}: {tg_mean:.1} ± {tg_std:.1} tok/s", args.tg);
    }
    Ok(())
}
