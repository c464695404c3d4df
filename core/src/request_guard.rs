//! What wraps every generation request: the safety policy on its input and its streamed
//! output, and its audit record. Sessions run every request through one of these, so every
//! surface (Rust, C, Python, Java, CLI, server) gets the same checks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::audit::{AuditEvent, AuditLog, ModelRef, Surface, TokenCounts};
use crate::chat_template::ChatMessage;
use crate::error::Result;
use crate::guard_model::GuardModel;
use crate::lora::LoraAdapter;
use crate::model::Model;
use crate::safety::GuardDecision;
use crate::safety::{
    InputCheck, Pseudonymizer, Safety, SafetyPolicy, SafetyReport, StreamEvent, StreamFilter,
    Verdict,
};
use crate::sampling::GenerateOptions;

/// The process-wide default safety layer (the built-in policy), compiled once.
pub fn default_safety() -> Safety {
    static DEFAULT: OnceLock<Safety> = OnceLock::new();
    DEFAULT
        .get_or_init(|| Safety::new(SafetyPolicy::default()).expect("built-in policy compiles"))
        .clone()
}

/// A fresh request id: time, process and a counter, so ids are unique without a
/// random-number dependency and sort by time.
pub fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = chrono::Utc::now();
    format!(
        "req-{}-{:x}-{n}",
        now.format("%Y%m%dT%H%M%S%.6f"),
        std::process::id()
    )
}

/// Who is asking and where the record goes: the per-session part of a request's context.
#[derive(Debug, Clone)]
pub(crate) struct GuardConfig {
    pub safety: Option<Safety>,
    pub audit: Option<Arc<AuditLog>>,
    pub tenant: String,
    pub surface: Surface,
}

/// Outcome of the input check.
pub(crate) enum Checked<T> {
    Allowed(T),
    Refused(String),
}

/// One request's safety state and audit facts.
pub(crate) struct RequestGuard {
    pub request_id: String,
    config: GuardConfig,
    tenant: String,
    started: Instant,
    sampling: serde_json::Value,
    report: Option<SafetyReport>,
    pseudonyms: Pseudonymizer,
    filter: Option<StreamFilter>,
    prompt: String,
    prompt_redacted: String,
    audited: bool,
    /// SHA-256 of the one LoRA adapter applied (several are listed in `sampling` instead).
    adapter_sha256: Option<String>,
    route: Option<String>,
    /// Answered from a response cache instead of the model.
    cache_hit: bool,
}

impl RequestGuard {
    pub fn begin(config: &GuardConfig, options: &GenerateOptions) -> RequestGuard {
        let mut sampling = serde_json::to_value(options).unwrap_or_default();
        if let Some(map) = sampling.as_object_mut() {
            map.remove("request_id");
            map.remove("tenant");
            map.remove("route");
        }
        RequestGuard {
            request_id: options.request_id.clone().unwrap_or_else(new_request_id),
            tenant: options
                .tenant
                .clone()
                .unwrap_or_else(|| config.tenant.clone()),
            config: config.clone(),
            started: Instant::now(),
            sampling,
            report: config.safety.as_ref().map(|_| SafetyReport::default()),
            pseudonyms: Pseudonymizer::new(),
            filter: None,
            prompt: String::new(),
            prompt_redacted: String::new(),
            audited: false,
            adapter_sha256: None,
            route: options.route.clone(),
            cache_hit: false,
        }
    }

    /// Record the LoRA adapters the request runs with: each one's name, SHA-256 and scale
    /// go into the audited sampling parameters.
    pub fn set_adapters(&mut self, set: &[(LoraAdapter, f32)]) {
        if set.is_empty() {
            return;
        }
        self.adapter_sha256 = match set {
            [(one, _)] => Some(one.info().sha256.clone()),
            _ => None,
        };
        if let Some(map) = self.sampling.as_object_mut() {
            let list: Vec<serde_json::Value> = set
                .iter()
                .map(|(a, scale)| {
                    serde_json::json!({"name": a.info().name, "sha256": a.info().sha256, "scale": scale})
                })
                .collect();
            map.insert("adapters".into(), list.into());
        }
    }

    /// The answer came from a response cache (recorded in `serving.response_cache`).
    pub fn set_cache_hit(&mut self) {
        self.cache_hit = true;
    }

    fn record_input(&mut self, check: &InputCheck) {
        if let Some(report) = self.report.take() {
            let merged = report.input(check);
            self.report = Some(merged);
        }
    }

    /// Check (and redact) a raw prompt.
    pub fn check_prompt(&mut self, text: &str) -> Result<Checked<String>> {
        self.prompt = text.to_owned();
        let Some(safety) = self.config.safety.clone() else {
            self.prompt_redacted = text.to_owned();
            return Ok(Checked::Allowed(text.to_owned()));
        };
        let check = safety.check_input_with(text, std::mem::take(&mut self.pseudonyms));
        match self.finish_input(check) {
            Ok(check) => Ok(match self.guard_input(&safety, &check.text)? {
                Some(message) => Checked::Refused(message),
                None => Checked::Allowed(check.text),
            }),
            Err(message) => Ok(Checked::Refused(message)),
        }
    }

    /// The guard-model stage on the (redacted) input: `Some(refusal)` when it blocks.
    fn guard_input(&mut self, safety: &Safety, text: &str) -> Result<Option<String>> {
        let Some(model) = GuardModel::for_config(safety.guard())? else {
            return Ok(None);
        };
        let decision = model.check_input(text)?;
        let refusal = match &decision {
            GuardDecision::Block { message, .. } => Some(message.clone()),
            _ => None,
        };
        if let Some(report) = &mut self.report {
            if let GuardDecision::Block { verdict, message } = &decision {
                report.input_verdict = Some(Verdict::Block {
                    category: verdict.category.clone().unwrap_or_else(|| "guard".into()),
                    message: message.clone(),
                });
            }
            report.guard = Some(decision);
        }
        Ok(refusal)
    }

    /// Check (and redact) each message of a conversation; placeholders stay consistent
    /// across messages.
    pub fn check_messages(
        &mut self,
        messages: &[ChatMessage],
    ) -> Result<Checked<Vec<ChatMessage>>> {
        self.prompt = serde_json::to_string(messages).unwrap_or_default();
        let Some(safety) = self.config.safety.clone() else {
            self.prompt_redacted = self.prompt.clone();
            return Ok(Checked::Allowed(messages.to_vec()));
        };
        let mut out = Vec::with_capacity(messages.len());
        let mut pseudonyms = std::mem::take(&mut self.pseudonyms);
        let mut combined: Option<InputCheck> = None;
        for m in messages {
            let check = safety.check_input_with(&m.content, pseudonyms);
            pseudonyms = check.pseudonyms.clone();
            out.push(ChatMessage {
                content: check.text.clone(),
                ..m.clone()
            });
            combined = Some(match combined {
                None => check,
                Some(prev) => merge_checks(prev, check),
            });
        }
        let Some(check) = combined else {
            return Ok(Checked::Allowed(out));
        };
        match self.finish_input(check) {
            Ok(_) => {
                self.prompt_redacted = serde_json::to_string(&out).unwrap_or_default();
                // The guard judges the last user turn.
                let last_user = out.iter().rev().find(|m| m.role == "user");
                if let Some(m) = last_user {
                    if let Some(message) = self.guard_input(&safety, &m.content.clone())? {
                        return Ok(Checked::Refused(message));
                    }
                }
                Ok(Checked::Allowed(out))
            }
            Err(message) => Ok(Checked::Refused(message)),
        }
    }

    /// Record the input verdict; `Err(refusal message)` when it blocks.
    fn finish_input(&mut self, check: InputCheck) -> std::result::Result<InputCheck, String> {
        self.record_input(&check);
        self.pseudonyms = check.pseudonyms.clone();
        if self.prompt_redacted.is_empty() {
            self.prompt_redacted = check.text.clone();
        }
        match &check.verdict {
            Verdict::Block { message, .. } => Err(message.clone()),
            _ => Ok(check),
        }
    }

    /// Start filtering the output (restoring the input's placeholders for the caller).
    pub fn start_output(&mut self) {
        if let Some(safety) = &self.config.safety {
            let pseudonyms = (!self.pseudonyms.is_empty()).then_some(&self.pseudonyms);
            self.filter = Some(safety.output_filter(pseudonyms));
        }
    }

    /// Filter one generated piece.
    pub fn filter(&mut self, piece: &str) -> StreamEvent {
        match &mut self.filter {
            Some(f) => f.push(piece),
            None => StreamEvent::Text(piece.to_owned()),
        }
    }

    /// Flush the output filter at the end of generation.
    pub fn finish_output(&mut self) -> StreamEvent {
        match &mut self.filter {
            Some(f) => f.finish(),
            None => StreamEvent::Text(String::new()),
        }
    }

    /// The safety summary so far (None when safety is off).
    pub fn report(&self) -> Option<SafetyReport> {
        let report = self.report.clone()?;
        Some(match &self.filter {
            Some(f) => report.output(f.verdict(), f.matches(), f.redactions()),
            None => report,
        })
    }

    /// Append this request's audit record, once. A failure is an error for the caller:
    /// an unaudited request must not pass silently.
    pub fn audit(
        &mut self,
        model: &Model,
        output: &str,
        tokens: TokenCounts,
        finish_reason: &str,
    ) -> Result<()> {
        if self.audited {
            return Ok(());
        }
        self.audited = true;
        let Some(log) = self.config.audit.clone() else {
            return Ok(());
        };
        let safety = serde_json::to_value(self.report()).unwrap_or_default();
        let event = AuditEvent {
            request_id: self.request_id.clone(),
            tenant: self.tenant.clone(),
            surface: self.config.surface,
            model: ModelRef {
                name: model.info().name.clone().unwrap_or_else(|| {
                    model
                        .info()
                        .path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                }),
                sha256: model.sha256()?,
            },
            adapter_sha256: self.adapter_sha256.clone(),
            sampling: self.sampling.clone(),
            safety,
            prompt: self.prompt.clone(),
            output: output.to_owned(),
            prompt_redacted: Some(self.prompt_redacted.clone()),
            // The caller's output has the input's PII restored: mask it again for the log.
            output_redacted: Some(match &self.config.safety {
                Some(safety) => safety.check_output(output).text,
                None => output.to_owned(),
            }),
            tokens,
            latency_ms: self.started.elapsed().as_millis() as u64,
            finish_reason: finish_reason.to_owned(),
            serving: self.serving(),
        };
        log.append(&event).map(|_| ())
    }
}

impl RequestGuard {
    fn serving(&self) -> Option<serde_json::Value> {
        if self.route.is_none() && !self.cache_hit {
            return None;
        }
        let mut serving = serde_json::Map::new();
        if let Some(route) = &self.route {
            serving.insert("route".into(), route.clone().into());
        }
        if self.cache_hit {
            serving.insert("response_cache".into(), "hit".into());
        }
        Some(serving.into())
    }
}

fn merge_checks(mut a: InputCheck, b: InputCheck) -> InputCheck {
    if !a.verdict.is_blocked() && b.verdict != Verdict::Allow {
        a.verdict = b.verdict;
    }
    a.matches.extend(b.matches);
    a.pii.extend(b.pii);
    for (k, v) in b.redactions {
        *a.redactions.entry(k).or_insert(0) += v;
    }
    a.pseudonyms = b.pseudonyms;
    a
}
