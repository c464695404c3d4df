//! Measuring a model variant: perplexity on a text, accuracy on a task set, generation speed.
//!
//! Perplexity follows llama.cpp's `llama-perplexity` exactly, so the two agree: the text is
//! tokenized once (with BOS), cut into chunks of `n_ctx` tokens, each chunk evaluated from an
//! empty cache with its first token replaced by BOS, and only the second half of each chunk
//! scored (those tokens have at least `n_ctx/2` tokens of context). Tasks are scored by exact
//! match of a greedy answer, or, for multiple choice, by the log-likelihood of each choice.

use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::lora::AdapterSet;
use crate::model::{Model, Token};
use crate::sampling::GenerateOptions;
use crate::session::{Session, SessionOptions};

/// How to run an evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Context per perplexity chunk (llama-perplexity's `-c`).
    pub n_ctx: u32,
    /// Score at most this many chunks (`None` = all).
    pub max_chunks: Option<usize>,
    /// Adapters and scales the variant runs with.
    pub adapters: AdapterSet,
    /// Wrap task prompts in the model's chat template.
    pub chat: bool,
    /// Most tokens of a generated answer (exact-match tasks).
    pub max_answer_tokens: u32,
    /// Threads (`None` = the model's default).
    pub threads: Option<u32>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            n_ctx: 512,
            max_chunks: None,
            adapters: Vec::new(),
            chat: false,
            max_answer_tokens: 32,
            threads: None,
        }
    }
}

/// Perplexity and how it was computed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PerplexityReport {
    pub perplexity: f64,
    /// Mean negative log-likelihood per scored token.
    pub nll: f64,
    /// Standard error of the perplexity (llama-perplexity's "+/-").
    pub stderr: f64,
    pub chunks: usize,
    pub scored_tokens: usize,
    pub n_ctx: u32,
    pub seconds: f64,
}

/// One task of a JSONL set.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalTask {
    /// The greedy answer must equal `answer` (trimmed, case- and end-punctuation-insensitive).
    Exact { prompt: String, answer: String },
    /// The choice with the highest log-likelihood after the prompt must be `answer`.
    Choice {
        prompt: String,
        choices: Vec<String>,
        answer: usize,
    },
}

/// Accuracy on a task set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccuracyReport {
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    pub seconds: f64,
}

/// A session for measuring: no safety layer (it would change what is measured), no audit.
fn eval_session(model: &Model, n_ctx: u32, options: &EvalOptions) -> Result<Session> {
    Session::new(
        model,
        SessionOptions {
            n_ctx: Some(n_ctx),
            n_batch: Some(n_ctx.min(2048)),
            threads: options.threads,
            safety: None,
            adapters: options.adapters.clone(),
            ..SessionOptions::default()
        },
    )
}

/// Perplexity of `text`, computed as llama.cpp's `llama-perplexity -c n_ctx` does.
pub fn perplexity(model: &Model, text: &str, options: &EvalOptions) -> Result<PerplexityReport> {
    let started = Instant::now();
    let n_ctx = options.n_ctx as usize;
    if n_ctx < 16 {
        return Err(Error::InvalidArgument("n_ctx must be at least 16".into()));
    }
    let tokens = model.tokenize(text, true, false);
    if tokens.len() < 2 * n_ctx {
        return Err(Error::InvalidArgument(format!(
            "the text has {} tokens; perplexity with a context of {n_ctx} needs at least {}",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let mut n_chunks = tokens.len() / n_ctx;
    if let Some(max) = options.max_chunks {
        n_chunks = n_chunks.min(max.max(1));
    }
    let bos = model.tokenize("", true, false).first().copied();
    let mut session = eval_session(model, options.n_ctx, options)?;
    let first = n_ctx / 2;
    let (mut nll, mut nll2, mut count) = (0f64, 0f64, 0usize);
    for chunk in 0..n_chunks {
        let mut window: Vec<Token> = tokens[chunk * n_ctx..(chunk + 1) * n_ctx].to_vec();
        if let Some(bos) = bos {
            window[0] = bos;
        }
        let original = &tokens[chunk * n_ctx..(chunk + 1) * n_ctx];
        session.score_tokens(&window, first, |pos, logits| {
            if pos + 1 < n_ctx {
                let v = -log_softmax_at(logits, original[pos + 1] as usize);
                nll += v;
                nll2 += v * v;
                count += 1;
            }
        })?;
    }
    let mean = nll / count as f64;
    // llama-perplexity: sqrt((E[x²] - E[x]²) / (n - 1)) on the NLL, scaled by the PPL.
    let var = nll2 / count as f64 - mean * mean;
    let stderr_nll = if var > 0.0 && count > 1 {
        (var / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    let ppl = mean.exp();
    Ok(PerplexityReport {
        perplexity: ppl,
        nll: mean,
        stderr: stderr_nll * ppl,
        chunks: n_chunks,
        scored_tokens: count,
        n_ctx: options.n_ctx,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// log softmax(logits)[index], computed stably in f64.
fn log_softmax_at(logits: &[f32], index: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    logits[index] as f64 - max - sum.ln()
}

/// Read a JSONL task set: one object per line with `prompt` and either `answer` (a string:
/// exact match) or `choices` plus `answer` (an index or the choice's text).
pub fn load_tasks(path: &Path) -> Result<Vec<EvalTask>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut tasks = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad =
            |why: String| Error::InvalidArgument(format!("{}:{}: {why}", path.display(), i + 1));
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let prompt = v["prompt"]
            .as_str()
            .ok_or_else(|| bad("missing \"prompt\" string".into()))?
            .to_owned();
        let task = match v.get("choices") {
            None => EvalTask::Exact {
                prompt,
                answer: v["answer"]
                    .as_str()
                    .ok_or_else(|| bad("missing \"answer\" string".into()))?
                    .to_owned(),
            },
            Some(choices) => {
                let choices: Vec<String> = choices
                    .as_array()
                    .filter(|c| c.len() >= 2)
                    .and_then(|c| c.iter().map(|x| x.as_str().map(str::to_owned)).collect())
                    .ok_or_else(
                        || bad("\"choices\" must be a list of at least 2 strings".into()),
                    )?;
                let answer = match &v["answer"] {
                    serde_json::Value::Number(n) => n.as_u64().map(|n| n as usize),
                    serde_json::Value::String(s) => choices.iter().position(|c| c == s),
                    _ => None,
                }
                .filter(|&a| a < choices.len())
                .ok_or_else(|| {
                    bad("\"answer\" must be a choice index or one of the choices".into())
                })?;
                EvalTask::Choice {
                    prompt,
                    choices,
                    answer,
                }
            }
        };
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} has no tasks",
            path.display()
        )));
    }
    Ok(tasks)
}

/// The comparable form of an answer: first line, trimmed, lower case, no end punctuation.
fn normalise_answer(text: &str) -> String {
    text.trim()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches(['.', '!', '?', '。', '！', '？'])
        .trim()
        .to_lowercase()
}

/// Accuracy of the model (with `options.adapters`) on `tasks`.
pub fn accuracy(
    model: &Model,
    tasks: &[EvalTask],
    options: &EvalOptions,
) -> Result<AccuracyReport> {
    let started = Instant::now();
    let mut session = eval_session(model, options.n_ctx.max(512), options)?;
    let mut correct = 0;
    for task in tasks {
        let ok = match task {
            EvalTask::Exact { prompt, answer } => {
                let prompt = task_prompt(&session, prompt, options.chat)?;
                let out = session.generate(
                    prompt.as_str(),
                    &GenerateOptions::greedy().with_max_tokens(options.max_answer_tokens),
                )?;
                normalise_answer(&out.text) == normalise_answer(answer)
            }
            EvalTask::Choice {
                prompt,
                choices,
                answer,
            } => {
                let prompt = task_prompt(&session, prompt, options.chat)?;
                let mut best = (f64::NEG_INFINITY, 0);
                for (i, choice) in choices.iter().enumerate() {
                    let ll = choice_log_likelihood(&mut session, &prompt, choice)?;
                    if ll > best.0 {
                        best = (ll, i);
                    }
                }
                best.1 == *answer
            }
        };
        correct += usize::from(ok);
    }
    Ok(AccuracyReport {
        accuracy: correct as f64 / tasks.len() as f64,
        correct,
        total: tasks.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn task_prompt(session: &Session, prompt: &str, chat: bool) -> Result<String> {
    if chat {
        session.render_chat(&[crate::ChatMessage::user(prompt)])
    } else {
        Ok(prompt.to_owned())
    }
}

/// Σ log P(choice tokens | prompt). The choice is tokenized with the prompt, so a token that
/// spans the boundary is scored as the model sees it.
fn choice_log_likelihood(session: &mut Session, prompt: &str, choice: &str) -> Result<f64> {
    let model = session.model().clone();
    let prompt_tokens = model.tokenize(prompt, true, true);
    let full = model.tokenize(&format!("{prompt}{choice}"), true, true);
    let common = prompt_tokens
        .iter()
        .zip(&full)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 || common >= full.len() {
        return Err(Error::InvalidArgument(format!(
            "choice {choice:?} adds no tokens to the prompt"
        )));
    }
    let mut ll = 0.0;
    session.score_tokens(&full, common - 1, |pos, logits| {
        if pos + 1 < full.len() {
            ll += log_softmax_at(logits, full[pos + 1] as usize);
        }
    })?;
    Ok(ll)
}

/// The model's next-token logits after `prompt` (tokenized with BOS and special tokens), with
/// `options.adapters` applied: what tests compare between a merged model and a runtime adapter.
pub fn next_token_logits(model: &Model, prompt: &str, options: &EvalOptions) -> Result<Vec<f32>> {
    let n_ctx = options
        .n_ctx
        .max(model.tokenize(prompt, true, true).len() as u32 + 1);
    eval_session(model, n_ctx, options)?.next_token_logits(prompt)
}

/// Greedy generation speed in tokens per second over `n_tokens` (EOS ignored).
pub fn generation_speed(model: &Model, n_tokens: u32, options: &EvalOptions) -> Result<f64> {
    let mut session = eval_session(model, 512, options)?;
    let out = session.generate(
        "The hospital's annual report describes",
        &GenerateOptions {
            ignore_eos: true,
            ..GenerateOptions::greedy().with_max_tokens(n_tokens)
        },
    )?;
    Ok(out.timings.generation_tokens_per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_is_normalised() {
        let logits = [1.0f32, 2.0, 3.0];
        let total: f64 = (0..3).map(|i| log_softmax_at(&logits, i).exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(log_softmax_at(&logits, 2) > log_softmax_at(&logits, 0));
    }

    #[test]
    fn answers_compare_loosely() {
        assert_eq!(normalise_answer("  Paris.\nmore"), "paris");
        assert_eq!(normalise_answer("是。"), "是");
    }

    #[test]
    fn task_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        std::fs::write(
            &p,
            "{\"prompt\":\"2+2=\",\"answer\":\"4\"}\n\n{\"prompt\":\"Sky?\",\"choices\":[\"blue\",\"green\"],\"answer\":\"blue\"}\n",
        )
        .unwrap();
        let tasks = load_tasks(&p).unwrap();
        assert_eq!(tasks.len(), 2);
        assert!(matches!(&tasks[1], EvalTask::Choice { answer: 0, .. }));
        std::fs::write(
            &p,
            "{\"prompt\":\"x\",\"choices\":[\"a\",\"b\"],\"answer\":5}\n",
        )
        .unwrap();
        let err = load_tasks(&p).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
    }
}
