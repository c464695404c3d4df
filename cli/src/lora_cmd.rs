//! `llmedge lora import|merge` and `llmedge quantize`: the offline model tools, with
//! progress bars.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use llmedge::lora_import::{import_peft, ImportOptions};
use llmedge::lora_merge::{merge_lora, MergeOptions};
use llmedge::quantize::{quantize, FileType, QuantizeOptions};
use llmedge::{gguf_file, Error};

use crate::progress::tensor_bar;

#[derive(Subcommand)]
pub enum LoraCommand {
    /// Convert a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) into a
    /// GGUF LoRA adapter for a base model.
    Import {
        /// The PEFT adapter folder.
        peft_dir: PathBuf,
        /// The base GGUF model the adapter was trained on.
        #[arg(long)]
        base: PathBuf,
        /// Output GGUF adapter.
        #[arg(short, long)]
        output: PathBuf,
        /// Tensor type of the adapter: f32 or f16.
        #[arg(long, default_value = "f32")]
        outtype: String,
    },
    /// Merge adapters into a base model: W' = W + scale·B·A, written as a new GGUF.
    Merge {
        /// The base GGUF model.
        #[arg(long)]
        base: PathBuf,
        /// Adapter to merge, optionally with a scale: PATH or PATH:SCALE (repeatable).
        #[arg(long = "lora", required = true)]
        loras: Vec<String>,
        /// Output GGUF model.
        #[arg(short, long)]
        output: PathBuf,
        /// Type of the merged tensors (f16, q8_0, ...; default: each tensor's own type).
        #[arg(long)]
        outtype: Option<String>,
    },
}

#[derive(Args)]
pub struct QuantizeArgs {
    /// Input GGUF (F32, F16, BF16 or Q8_0; other quantized inputs need --allow-requantize).
    input: PathBuf,
    /// Output GGUF.
    output: PathBuf,
    /// Target type: Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0, IQ4_NL, Q4_K_S, Q5_K_S, F16, BF16, F32.
    #[arg(long = "type", short = 'q', default_value = "Q4_K_M")]
    file_type: String,
    /// Keep tensors matching REGEX at TYPE, e.g. --keep 'token_embd=q8_0' (repeatable).
    #[arg(long)]
    keep: Vec<String>,
    /// Allow an input that is already quantized (quality loss accumulates).
    #[arg(long)]
    allow_requantize: bool,
    /// Every tensor at the target type, without llama.cpp's per-tensor mixture.
    #[arg(long)]
    pure: bool,
    /// Worker threads (default: all cores).
    #[arg(short, long)]
    threads: Option<u32>,
}

/// Print a tool's report as one JSON line (`--json`).
pub(crate) fn print_json(report: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string(report).map_err(|e| Error::Internal(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `PATH` or `PATH:SCALE` (scale 1.0 when absent).
pub fn parse_lora_arg(arg: &str) -> Result<(PathBuf, f32), Error> {
    if let Some((path, scale)) = arg.rsplit_once(':') {
        if let Ok(scale) = scale.parse::<f32>() {
            return Ok((PathBuf::from(path), scale));
        }
    }
    Ok((PathBuf::from(arg), 1.0))
}

pub fn run_lora(cmd: &LoraCommand, json: bool) -> Result<(), Error> {
    match cmd {
        LoraCommand::Import {
            peft_dir,
            base,
            output,
            outtype,
        } => {
            let out_type = match outtype.to_ascii_lowercase().as_str() {
                "f32" => gguf_file::GGML_TYPE_F32,
                "f16" => gguf_file::GGML_TYPE_F16,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "--outtype must be f32 or f16, got {other:?}"
                    )))
                }
            };
            let report = import_peft(
                peft_dir,
                output,
                &ImportOptions {
                    base: base.clone(),
                    out_type,
                },
            )?;
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "{}: {} tensor pairs, rank {}, alpha {} ({}), {} parameters, architecture {}",
                    report.out.display(),
                    report.tensors,
                    report.rank,
                    report.alpha,
                    if report.use_rslora { "rsLoRA" } else { "LoRA" },
                    report.parameters,
                    report.architecture
                );
            }
            Ok(())
        }
        LoraCommand::Merge {
            base,
            loras,
            output,
            outtype,
        } => {
            let adapters = loras
                .iter()
                .map(|l| parse_lora_arg(l))
                .collect::<Result<Vec<_>, _>>()?;
            let bar = tensor_bar("merging", json);
            let progress = bar.clone();
            let report = merge_lora(
                base,
                &adapters,
                output,
                &MergeOptions {
                    out_type: outtype.clone(),
                },
                move |done, total| {
                    progress.set_length(total as u64);
                    progress.set_position(done as u64);
                },
            );
            bar.finish_and_clear();
            let report = report?;
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "{}: merged {} tensors from {} adapter(s), copied {}, {} bytes in {:.1} s",
                    report.output.display(),
                    report.merged_tensors,
                    report.adapters,
                    report.copied_tensors,
                    report.output_bytes,
                    report.seconds
                );
            }
            Ok(())
        }
    }
}

pub fn run_quantize(args: &QuantizeArgs, json: bool) -> Result<(), Error> {
    let mut options = QuantizeOptions::new(FileType::parse(&args.file_type)?);
    options.allow_requantize = args.allow_requantize;
    options.pure = args.pure;
    if let Some(t) = args.threads {
        options.threads = t;
    }
    for keep in &args.keep {
        let (pattern, ty) = keep.rsplit_once('=').ok_or_else(|| {
            Error::InvalidArgument(format!("--keep wants REGEX=TYPE, got {keep:?}"))
        })?;
        options.keep.push((pattern.to_owned(), ty.to_owned()));
    }
    let bar = tensor_bar("quantizing", json);
    let progress = bar.clone();
    let report = quantize(&args.input, &args.output, &options, move |p| {
        progress.set_length(p.total as u64);
        progress.set_position(p.done as u64);
        progress.set_message(p.tensor);
    });
    bar.finish_and_clear();
    let report = report?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "{}: {} ({} tensors), {:.1} MiB -> {:.1} MiB in {:.1} s",
            report.output.display(),
            report.file_type,
            report.tensors,
            report.input_bytes as f64 / 1048576.0,
            report.output_bytes as f64 / 1048576.0,
            report.seconds
        );
    }
    Ok(())
}
