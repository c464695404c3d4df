//! `llmedge eval`: perplexity, task accuracy, size, peak memory and speed of model variants
//! (base, runtime LoRA, merged, quantized), side by side in one table.
//!
//! Each variant runs in its own child process (`llmedge eval-variant`, hidden), so its peak
//! RSS is its own and not the high-water mark of the variants before it.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use llmedge::evaluation::{accuracy, generation_speed, load_tasks, perplexity, EvalOptions};
use llmedge::{Error, Model, ModelOptions};

use crate::lora_cmd::parse_lora_arg;

#[derive(Args, Clone)]
pub struct EvalArgs {
    /// A variant: NAME=MODEL.gguf, optionally with runtime adapters NAME=MODEL.gguf+LORA.gguf[:SCALE]
    /// (repeatable; a bare path is named after its file).
    #[arg(long = "variant", required = true)]
    variants: Vec<String>,
    /// Text file for perplexity (computed as llama.cpp's llama-perplexity does).
    #[arg(long)]
    ppl: Option<PathBuf>,
    /// JSONL task set: {"prompt", "answer"} (exact match) or {"prompt", "choices", "answer"}.
    #[arg(long)]
    tasks: Option<PathBuf>,
    /// Context per perplexity chunk.
    #[arg(long, default_value_t = 512)]
    ctx: u32,
    /// Score at most this many perplexity chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Wrap task prompts in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Tokens generated to measure speed (0 = skip).
    #[arg(long, default_value_t = 64)]
    speed_tokens: u32,
    /// Threads (default: all cores).
    #[arg(short, long)]
    threads: Option<u32>,
    /// Also write the table (Markdown) to this file.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// The hidden per-variant child: measures one variant and prints one JSON line.
#[derive(Args, Clone)]
pub struct EvalVariantArgs {
    #[arg(long)]
    spec: String,
    #[command(flatten)]
    eval: EvalArgs,
}

struct Variant {
    name: String,
    model: PathBuf,
    adapters: Vec<(PathBuf, f32)>,
}

fn parse_variant(spec: &str) -> Result<Variant, Error> {
    let (name, rest) = match spec.split_once('=') {
        Some((n, r)) => (n.to_owned(), r),
        None => (String::new(), spec),
    };
    let mut parts = rest.split('+');
    let model = PathBuf::from(parts.next().unwrap_or_default());
    let adapters = parts.map(parse_lora_arg).collect::<Result<Vec<_>, _>>()?;
    let name = if name.is_empty() {
        model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        name
    };
    Ok(Variant {
        name,
        model,
        adapters,
    })
}

/// Peak resident memory of this process (Linux `VmHWM`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

pub fn run_variant(args: &EvalVariantArgs) -> Result<(), Error> {
    let v = parse_variant(&args.spec)?;
    let e = &args.eval;
    let mut model_options = ModelOptions::default();
    if let Some(t) = e.threads {
        model_options.threads = t;
    }
    let model = Model::load(&v.model, model_options)?;
    let mut adapters = Vec::new();
    for (path, scale) in &v.adapters {
        adapters.push((model.load_lora(path)?, *scale));
    }
    let adapter_params: u64 = adapters.iter().map(|(a, _)| a.info().parameters).sum();
    let options = EvalOptions {
        n_ctx: e.ctx,
        max_chunks: e.chunks,
        adapters,
        chat: e.chat,
        threads: e.threads,
        ..EvalOptions::default()
    };
    let ppl = match &e.ppl {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| Error::io(path, err))?;
            Some(perplexity(&model, &text, &options)?)
        }
        None => None,
    };
    let acc = match &e.tasks {
        Some(path) => Some(accuracy(&model, &load_tasks(path)?, &options)?),
        None => None,
    };
    let tok_s = if e.speed_tokens > 0 {
        Some(generation_speed(&model, e.speed_tokens, &options)?)
    } else {
        None
    };
    let bytes = file_len(&v.model) + v.adapters.iter().map(|(p, _)| file_len(p)).sum::<u64>();
    println!(
        "{}",
        serde_json::json!({
            "variant": v.name,
            "adapter_params": adapter_params,
            "file_bytes": bytes,
            "peak_rss_bytes": peak_rss_bytes(),
            "perplexity": ppl,
            "accuracy": acc,
            "tok_s": tok_s,
        })
    );
    Ok(())
}

fn variant_args(args: &EvalArgs, spec: &str) -> Vec<String> {
    let mut out = vec!["eval-variant".to_owned(), "--spec".into(), spec.to_owned()];
    out.extend(["--variant".into(), spec.to_owned()]);
    if let Some(p) = &args.ppl {
        out.extend(["--ppl".into(), p.display().to_string()]);
    }
    if let Some(t) = &args.tasks {
        out.extend(["--tasks".into(), t.display().to_string()]);
    }
    out.extend(["--ctx".into(), args.ctx.to_string()]);
    if let Some(c) = args.chunks {
        out.extend(["--chunks".into(), c.to_string()]);
    }
    if args.chat {
        out.push("--chat".into());
    }
    out.extend(["--speed-tokens".into(), args.speed_tokens.to_string()]);
    if let Some(t) = args.threads {
        out.extend(["--threads".into(), t.to_string()]);
    }
    out
}

fn mib(v: &serde_json::Value) -> String {
    v.as_u64()
        .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
}

pub fn run(args: &EvalArgs, json: bool) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Internal(format!("own path: {e}")))?;
    let mut rows = Vec::new();
    for spec in &args.variants {
        let name = parse_variant(spec)?.name;
        if !json {
            eprintln!("evaluating {name} ...");
        }
        let out = Command::new(&exe)
            .args(variant_args(args, spec))
            .output()
            .map_err(|e| Error::Internal(format!("running {}: {e}", exe.display())))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(Error::InvalidArgument(format!(
                "variant {name} failed: {}",
                stderr.trim().lines().last().unwrap_or("(no message)")
            )));
        }
        let row: serde_json::Value =
            serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
                .map_err(|e| Error::Internal(format!("variant {name} printed no result: {e}")))?;
        rows.push(row);
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    let mut table = String::from(
        "| variant | adapter params | file size | peak RSS | accuracy | perplexity | tok/s |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let acc = r["accuracy"].as_object().map_or("-".into(), |a| {
            format!(
                "{:.1}% ({}/{})",
                a["accuracy"].as_f64().unwrap_or(0.0) * 100.0,
                a["correct"],
                a["total"]
            )
        });
        let ppl = r["perplexity"].as_object().map_or("-".into(), |p| {
            format!(
                "{:.4} ± {:.4}",
                p["perplexity"].as_f64().unwrap_or(0.0),
                p["stderr"].as_f64().unwrap_or(0.0)
            )
        });
        let tok_s = r["tok_s"]
            .as_f64()
            .map_or("-".into(), |t| format!("{t:.1}"));
        table.push_str(&format!(
            "| {} | {} | {} | {} | {acc} | {ppl} | {tok_s} |\n",
            r["variant"].as_str().unwrap_or(""),
            r["adapter_params"],
            mib(&r["file_bytes"]),
            mib(&r["peak_rss_bytes"]),
        ));
    }
    print!("{table}");
    if let Some(path) = &args.output {
        std::fs::write(path, &table).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}
