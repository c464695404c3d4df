//! The safety layer: sensitive-term filtering, PII redaction and the guard-model stage,
//! driven by one [`SafetyPolicy`].
//!
//! Build a [`Safety`] once from the policy and share it (it is an `Arc`); per request call
//! [`Safety::check_input`], hand the returned pseudonym map to [`Safety::output_filter`] and
//! feed it the generated tokens.

pub mod guard;
pub mod lexicon;
pub mod normalize;
pub mod pii;
pub mod policy;
pub mod redact;
pub mod stream_filter;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use guard::{GuardCategory, GuardConfig, GuardDecision, GuardRole, GuardVerdict};
pub use lexicon::{Action, LexMatch, Lexicon, TermSpec};
pub use normalize::Normalizer;
pub use pii::{PiiConfig, PiiDetector, PiiKind, PiiMatch};
pub use policy::SafetyPolicy;
pub use redact::{PiiAction, Pseudonymizer, Redactor, Restorer, TagLang};
pub use stream_filter::{StreamEvent, StreamFilter};

use crate::error::Result;
use redact::apply_edits;

/// The outcome for one text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing matched.
    Allow,
    /// Allowed, but flagged or masked terms matched.
    Flag,
    /// Refused.
    Block {
        /// Category of the first blocked term.
        category: String,
        /// The refusal message.
        message: String,
    },
}

impl Verdict {
    /// Whether the text was refused.
    pub fn is_blocked(&self) -> bool {
        matches!(self, Verdict::Block { .. })
    }
}

/// The result of checking a user input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputCheck {
    /// Allow, flag or block.
    pub verdict: Verdict,
    /// The input with masked terms and PII redacted: what the model should see.
    pub text: String,
    /// Lexicon matches in the original input.
    pub matches: Vec<LexMatch>,
    /// PII found in the original input.
    pub pii: Vec<PiiMatch>,
    /// Redactions by PII kind name.
    pub redactions: BTreeMap<String, u32>,
    /// Placeholder → original map; keep it for [`Safety::output_filter`], never log it.
    #[serde(skip)]
    pub pseudonyms: Pseudonymizer,
}

/// The result of checking a complete (non-streamed) output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputCheck {
    /// Allow, flag or block.
    pub verdict: Verdict,
    /// The output with masked terms and PII redacted (empty when blocked).
    pub text: String,
    /// Lexicon matches in the original output.
    pub matches: Vec<LexMatch>,
    /// Redactions by PII kind name.
    pub redactions: BTreeMap<String, u32>,
}

/// A summary for the audit log: no text, no PII values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SafetyReport {
    /// Verdict on the input.
    pub input_verdict: Option<Verdict>,
    /// Verdict on the output.
    pub output_verdict: Option<Verdict>,
    /// Categories of every matched term.
    pub categories: BTreeSet<String>,
    /// Redactions by PII kind name, input and output together.
    pub redactions: BTreeMap<String, u32>,
    /// The guard model's decision on the input (absent when no guard model is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardDecision>,
}

impl SafetyReport {
    /// Adds the input check.
    pub fn input(mut self, check: &InputCheck) -> SafetyReport {
        self.input_verdict = Some(check.verdict.clone());
        self.add(&check.matches, &check.redactions);
        self
    }

    /// Adds the output verdict, matches and redactions (from [`OutputCheck`] or a
    /// [`StreamFilter`]).
    pub fn output(
        mut self,
        verdict: Verdict,
        matches: &[LexMatch],
        redactions: &BTreeMap<String, u32>,
    ) -> SafetyReport {
        self.output_verdict = Some(verdict);
        self.add(matches, redactions);
        self
    }

    fn add(&mut self, matches: &[LexMatch], redactions: &BTreeMap<String, u32>) {
        self.categories
            .extend(matches.iter().map(|m| m.category.clone()));
        for (k, v) in redactions {
            *self.redactions.entry(k.clone()).or_insert(0) += v;
        }
    }
}

/// The safety layer built from a policy. Cheap to clone and share across threads.
#[derive(Debug, Clone)]
pub struct Safety {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    policy: SafetyPolicy,
    lexicon: Option<Arc<Lexicon>>,
    pii: Option<Arc<PiiDetector>>,
    input_redactor: Redactor,
    output_redactor: Redactor,
}

impl Safety {
    /// Compiles a policy (lexicons, PII rules).
    pub fn new(policy: SafetyPolicy) -> Result<Safety> {
        let lexicon = if policy.enabled && policy.lexicon.enabled {
            let mut files: Vec<(&Path, &str)> = Vec::new();
            for b in &policy.lexicon.builtin {
                match b.as_str() {
                    "zh" => {
                        files.push((Path::new("<builtin>/lexicon_zh.toml"), policy::LEXICON_ZH))
                    }
                    _ => files.push((Path::new("<builtin>/lexicon_en.toml"), policy::LEXICON_EN)),
                }
            }
            for (p, t) in &policy.extra_lexicons {
                files.push((p, t));
            }
            let norm = Normalizer::new(policy.lexicon.traditional_to_simplified);
            Some(Arc::new(Lexicon::from_files(&files, norm)?))
        } else {
            None
        };
        let pii = if policy.enabled && policy.pii.enabled {
            Some(Arc::new(PiiDetector::new(&PiiConfig {
                kinds: policy.pii.kinds.clone(),
                medical_record_patterns: policy.pii.medical_record_patterns.clone(),
            })?))
        } else {
            None
        };
        let p = &policy.pii;
        let input_redactor = Redactor::new(p.input_action, &p.input_overrides, p.tag_language);
        let output_redactor = Redactor::new(p.output_action, &p.output_overrides, p.tag_language);
        Ok(Safety {
            inner: Arc::new(Inner {
                policy,
                lexicon,
                pii,
                input_redactor,
                output_redactor,
            }),
        })
    }

    /// The policy this was built from.
    pub fn policy(&self) -> &SafetyPolicy {
        &self.inner.policy
    }

    /// The guard-model settings (the engine runs the model; see [`GuardConfig::decide`]).
    pub fn guard(&self) -> &GuardConfig {
        &self.inner.policy.guard
    }

    /// Checks and redacts a user input.
    pub fn check_input(&self, text: &str) -> InputCheck {
        self.check_input_with(text, Pseudonymizer::new())
    }

    /// [`Safety::check_input`] continuing an existing placeholder map, so the parts of one
    /// request (the messages of a chat) share placeholders.
    pub fn check_input_with(&self, text: &str, mut pseudonyms: Pseudonymizer) -> InputCheck {
        let i = &self.inner;
        let lexicon = i.lexicon.as_deref().filter(|_| i.policy.lexicon.input);
        let (verdict, text, matches, pii, redactions) =
            self.check(text, lexicon, &i.input_redactor, &mut pseudonyms);
        InputCheck {
            verdict,
            text,
            matches,
            pii,
            redactions,
            pseudonyms,
        }
    }

    /// Checks and redacts a complete model output.
    pub fn check_output(&self, text: &str) -> OutputCheck {
        let i = &self.inner;
        let lexicon = i.lexicon.as_deref().filter(|_| i.policy.lexicon.output);
        let mut scratch = Pseudonymizer::new();
        let (verdict, text, matches, _, redactions) =
            self.check(text, lexicon, &i.output_redactor, &mut scratch);
        let text = if verdict.is_blocked() {
            String::new()
        } else {
            text
        };
        OutputCheck {
            verdict,
            text,
            matches,
            redactions,
        }
    }

    #[allow(clippy::type_complexity)]
    fn check(
        &self,
        text: &str,
        lexicon: Option<&Lexicon>,
        redactor: &Redactor,
        pseudonyms: &mut Pseudonymizer,
    ) -> (
        Verdict,
        String,
        Vec<LexMatch>,
        Vec<PiiMatch>,
        BTreeMap<String, u32>,
    ) {
        let matches = lexicon.map(|l| l.scan(text)).unwrap_or_default();
        let verdict = match matches.iter().find(|m| m.action == Action::Block) {
            Some(m) => Verdict::Block {
                category: m.category.clone(),
                message: self.inner.policy.refusal_message.clone(),
            },
            None if matches.is_empty() => Verdict::Allow,
            None => Verdict::Flag,
        };
        let mut edits: Vec<redact::Edit> = matches
            .iter()
            .filter(|m| m.action == Action::Mask)
            .map(|m| redact::Edit {
                start: m.start,
                end: m.end,
                text: "*".repeat(text[m.start..m.end].chars().count()),
            })
            .collect();
        let pii = self
            .inner
            .pii
            .as_ref()
            .map(|d| d.detect(text))
            .unwrap_or_default();
        let mut redactions = BTreeMap::new();
        edits.extend(redactor.edits(text, &pii, pseudonyms, &mut redactions));
        (verdict, apply_edits(text, edits), matches, pii, redactions)
    }

    /// A streaming filter for one generation; pass the input's pseudonyms to restore them.
    pub fn output_filter(&self, pseudonyms: Option<&Pseudonymizer>) -> StreamFilter {
        let i = &self.inner;
        let lexicon = i.lexicon.clone().filter(|_| i.policy.lexicon.output);
        let mut f = StreamFilter::new(lexicon, i.policy.refusal_message.clone());
        if let Some(d) = &i.pii {
            f = f.with_pii(d.clone(), i.output_redactor.clone());
        }
        if let Some(p) = pseudonyms {
            f = f.with_restore(p);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Safety>();
        check::<StreamFilter>();
    }
}
