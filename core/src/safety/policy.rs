//! The safety policy file (TOML). Everything has a default, so an empty file is the default
//! policy; unknown keys are errors so a typo cannot silently switch a check off.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::guard::GuardConfig;
use super::pii::{PiiKind, DEFAULT_MRN_PATTERNS};
use super::redact::{PiiAction, TagLang};
use crate::error::{Error, Result};

/// The embedded default policy.
pub const DEFAULT_POLICY: &str = include_str!("../../data/safety/default_policy.toml");
/// The embedded Chinese lexicon.
pub const LEXICON_ZH: &str = include_str!("../../data/safety/lexicon_zh.toml");
/// The embedded English lexicon.
pub const LEXICON_EN: &str = include_str!("../../data/safety/lexicon_en.toml");

/// A complete safety policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default = "SafetyPolicy::field_defaults", deny_unknown_fields)]
pub struct SafetyPolicy {
    /// Master switch.
    pub enabled: bool,
    /// Shown instead of blocked input or output.
    pub refusal_message: String,
    /// Sensitive-term filtering.
    pub lexicon: LexiconPolicy,
    /// PII detection and redaction.
    pub pii: PiiPolicy,
    /// The optional guard model.
    pub guard: GuardConfig,
    /// Extra lexicon files as read from disk: (path, contents).
    #[serde(skip)]
    pub(crate) extra_lexicons: Vec<(PathBuf, String)>,
}

/// Sensitive-term settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LexiconPolicy {
    /// Switch.
    pub enabled: bool,
    /// Embedded lexicons to load: "zh", "en".
    pub builtin: Vec<String>,
    /// Extra lexicon files, relative to the policy file.
    pub files: Vec<PathBuf>,
    /// Fold traditional Chinese to simplified before matching.
    pub traditional_to_simplified: bool,
    /// Check user input.
    pub input: bool,
    /// Filter model output.
    pub output: bool,
}

impl Default for LexiconPolicy {
    fn default() -> Self {
        LexiconPolicy {
            enabled: true,
            builtin: vec!["zh".into(), "en".into()],
            files: Vec::new(),
            traditional_to_simplified: true,
            input: true,
            output: true,
        }
    }
}

/// PII settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiPolicy {
    /// Switch.
    pub enabled: bool,
    /// Kinds to detect.
    pub kinds: BTreeSet<PiiKind>,
    /// What to do with PII in the input (before the model sees it).
    pub input_action: PiiAction,
    /// What to do with PII in the output.
    pub output_action: PiiAction,
    /// Per-kind input overrides.
    pub input_overrides: BTreeMap<PiiKind, PiiAction>,
    /// Per-kind output overrides.
    pub output_overrides: BTreeMap<PiiKind, PiiAction>,
    /// Language of type tags.
    pub tag_language: TagLang,
    /// Medical-record number patterns (regex; named group `v` is the redacted part).
    #[serde(deserialize_with = "regexes")]
    pub medical_record_patterns: Vec<String>,
}

impl Default for PiiPolicy {
    fn default() -> Self {
        PiiPolicy {
            enabled: true,
            kinds: PiiKind::ALL.into_iter().collect(),
            input_action: PiiAction::Pseudonymize,
            output_action: PiiAction::Mask,
            input_overrides: BTreeMap::new(),
            output_overrides: BTreeMap::new(),
            tag_language: TagLang::Zh,
            medical_record_patterns: DEFAULT_MRN_PATTERNS.map(String::from).to_vec(),
        }
    }
}

/// Rejects bad regexes while parsing, so the error carries the line.
fn regexes<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for p in &v {
        regex::Regex::new(p).map_err(|e| serde::de::Error::custom(format!("bad regex: {e}")))?;
    }
    Ok(v)
}

impl Default for SafetyPolicy {
    /// The embedded `default_policy.toml`.
    fn default() -> Self {
        SafetyPolicy::from_toml_str(DEFAULT_POLICY).expect("the embedded default policy is valid")
    }
}

/// An [`Error::Policy`] for `path` at byte `offset` of `text`.
pub(crate) fn policy_error(path: &Path, text: &str, offset: Option<usize>, reason: &str) -> Error {
    let line = offset.map_or(1, |o| text[..o.min(text.len())].matches('\n').count() + 1);
    Error::Policy {
        path: path.to_path_buf(),
        line,
        reason: reason.trim().to_string(),
    }
}

impl SafetyPolicy {
    /// Reads a policy file; extra lexicon paths are relative to it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<SafetyPolicy> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        SafetyPolicy::parse(&text, path, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses a policy from a string; extra lexicon paths are relative to the working
    /// directory.
    pub fn from_toml_str(text: &str) -> Result<SafetyPolicy> {
        SafetyPolicy::parse(text, Path::new("<policy>"), Path::new("."))
    }

    fn parse(text: &str, path: &Path, base: &Path) -> Result<SafetyPolicy> {
        let mut policy: SafetyPolicy = toml::from_str(text)
            .map_err(|e| policy_error(path, text, e.span().map(|s| s.start), e.message()))?;
        for file in &policy.lexicon.files {
            let full = base.join(file);
            let contents = std::fs::read_to_string(&full).map_err(|e| {
                let at = text.find(&file.to_string_lossy().into_owned());
                policy_error(
                    path,
                    text,
                    at,
                    &format!("cannot read {}: {e}", full.display()),
                )
            })?;
            policy.extra_lexicons.push((full, contents));
        }
        if let Some(model) = &policy.guard.model_path {
            // Like lexicon files, a relative guard model path is relative to the policy file.
            policy.guard.model_path = Some(base.join(model));
        }
        for b in &policy.lexicon.builtin {
            if b != "zh" && b != "en" {
                let at = text.find(&format!("\"{b}\""));
                return Err(policy_error(
                    path,
                    text,
                    at,
                    &format!("unknown builtin lexicon {b:?}"),
                ));
            }
        }
        Ok(policy)
    }

    /// Code defaults for keys a file leaves out (they agree with `default_policy.toml`).
    fn field_defaults() -> SafetyPolicy {
        SafetyPolicy {
            enabled: true,
            refusal_message: "内容违反安全策略".into(),
            lexicon: LexiconPolicy::default(),
            pii: PiiPolicy::default(),
            guard: GuardConfig::default(),
            extra_lexicons: Vec::new(),
        }
    }

    /// The policy with every check off.
    pub fn disabled() -> SafetyPolicy {
        SafetyPolicy {
            enabled: false,
            ..SafetyPolicy::default()
        }
    }
}
