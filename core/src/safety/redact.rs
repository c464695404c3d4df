//! Turning detected PII into masks, tags or reversible pseudonyms, and restoring pseudonyms
//! in model output (whole or streamed) for the caller.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::pii::{PiiKind, PiiMatch};

/// What to do with one kind of PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiAction {
    /// Leave it.
    Keep,
    /// Hide most characters: `张**`, `138****5678`.
    Mask,
    /// Replace with a type tag: `[身份证号]` / `[ID_NUMBER]`.
    Tag,
    /// Replace with a per-request placeholder (`[PERSON_1]`) that can be restored.
    Pseudonymize,
}

/// Language of type tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagLang {
    /// `[手机号]`
    #[default]
    Zh,
    /// `[PHONE]`
    En,
}

/// The tag for a kind.
pub fn tag(kind: PiiKind, lang: TagLang) -> &'static str {
    match (lang, kind) {
        (TagLang::Zh, PiiKind::Email) => "[邮箱]",
        (TagLang::Zh, PiiKind::IdCard) => "[身份证号]",
        (TagLang::Zh, PiiKind::BankCard) => "[银行卡号]",
        (TagLang::Zh, PiiKind::Mobile) => "[手机号]",
        (TagLang::Zh, PiiKind::Landline) => "[电话]",
        (TagLang::Zh, PiiKind::Ipv6 | PiiKind::Ipv4) => "[IP地址]",
        (TagLang::Zh, PiiKind::Passport) => "[护照号]",
        (TagLang::Zh, PiiKind::MedicalRecord) => "[病历号]",
        (TagLang::Zh, PiiKind::Dob) => "[出生日期]",
        (TagLang::Zh, PiiKind::Address) => "[地址]",
        (TagLang::Zh, PiiKind::Name) => "[姓名]",
        (TagLang::En, PiiKind::Email) => "[EMAIL]",
        (TagLang::En, PiiKind::IdCard) => "[ID_NUMBER]",
        (TagLang::En, PiiKind::BankCard) => "[BANK_CARD]",
        (TagLang::En, PiiKind::Mobile | PiiKind::Landline) => "[PHONE]",
        (TagLang::En, PiiKind::Ipv6 | PiiKind::Ipv4) => "[IP]",
        (TagLang::En, PiiKind::Passport) => "[PASSPORT]",
        (TagLang::En, PiiKind::MedicalRecord) => "[MRN]",
        (TagLang::En, PiiKind::Dob) => "[DOB]",
        (TagLang::En, PiiKind::Address) => "[ADDRESS]",
        (TagLang::En, PiiKind::Name) => "[NAME]",
    }
}

/// Masks a value, keeping just enough to be recognisable to its owner.
pub fn mask(kind: PiiKind, value: &str) -> String {
    let keep_alnum = |head: usize, tail: usize| {
        let n = value.chars().filter(char::is_ascii_alphanumeric).count();
        let mut seen = 0;
        value
            .chars()
            .map(|c| {
                if !c.is_ascii_alphanumeric() {
                    return c;
                }
                seen += 1;
                if seen <= head || seen > n.saturating_sub(tail) {
                    c
                } else {
                    '*'
                }
            })
            .collect::<String>()
    };
    match kind {
        PiiKind::Mobile => {
            // Keep the +86 prefix as written, then 3 + 4 digits of the number itself.
            let digits = value.chars().filter(char::is_ascii_digit).count();
            let prefix = digits.saturating_sub(11);
            let mut seen = 0;
            value
                .chars()
                .map(|c| {
                    if !c.is_ascii_digit() {
                        return c;
                    }
                    seen += 1;
                    if seen <= prefix + 3 || seen > digits - 4 {
                        c
                    } else {
                        '*'
                    }
                })
                .collect()
        }
        PiiKind::IdCard => keep_alnum(3, 4),
        PiiKind::BankCard => keep_alnum(0, 4),
        PiiKind::Landline => keep_alnum(4, 2),
        PiiKind::Passport | PiiKind::MedicalRecord => keep_alnum(1, 2),
        PiiKind::Dob | PiiKind::Ipv4 | PiiKind::Ipv6 => keep_alnum(0, 0),
        PiiKind::Email => match value.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "*".repeat(value.chars().count()),
        },
        PiiKind::Name => {
            // Keep the first char of each word: 张** / J*** S****.
            let mut out = String::new();
            let mut start = true;
            for c in value.chars() {
                if c.is_whitespace() {
                    out.push(c);
                    start = true;
                } else {
                    out.push(if start { c } else { '*' });
                    start = false;
                }
            }
            out
        }
        PiiKind::Address => value
            .chars()
            .enumerate()
            .map(|(i, c)| if i < 3 || c.is_whitespace() { c } else { '*' })
            .collect(),
    }
}

/// Placeholder label per kind.
fn label(kind: PiiKind) -> &'static str {
    match kind {
        PiiKind::Name => "PERSON",
        PiiKind::IdCard => "ID",
        PiiKind::Mobile | PiiKind::Landline => "PHONE",
        PiiKind::BankCard => "CARD",
        PiiKind::Email => "EMAIL",
        PiiKind::Ipv4 | PiiKind::Ipv6 => "IP",
        PiiKind::Passport => "PASSPORT",
        PiiKind::MedicalRecord => "MRN",
        PiiKind::Dob => "DOB",
        PiiKind::Address => "ADDRESS",
    }
}

fn placeholder_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\[[A-Z]+_[0-9]+\]").expect("valid placeholder regex"))
}

/// The reversible value ↔ placeholder map of one request. It stays with the caller: the
/// model only ever sees the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pseudonymizer {
    forward: HashMap<String, String>,
    back: HashMap<String, String>,
    counters: BTreeMap<String, u32>,
}

impl Pseudonymizer {
    /// An empty map.
    pub fn new() -> Pseudonymizer {
        Pseudonymizer::default()
    }

    /// The placeholder for a value; the same value always gets the same one.
    pub fn pseudonymize(&mut self, kind: PiiKind, value: &str) -> String {
        let key = format!("{}\u{0}{value}", label(kind));
        if let Some(p) = self.forward.get(&key) {
            return p.clone();
        }
        let n = self.counters.entry(label(kind).to_string()).or_insert(0);
        *n += 1;
        let p = format!("[{}_{n}]", label(kind));
        self.forward.insert(key, p.clone());
        self.back.insert(p.clone(), value.to_string());
        p
    }

    /// The original behind a placeholder.
    pub fn original(&self, placeholder: &str) -> Option<&str> {
        self.back.get(placeholder).map(String::as_str)
    }

    /// Number of distinct values.
    pub fn len(&self) -> usize {
        self.back.len()
    }

    /// Whether nothing was pseudonymised.
    pub fn is_empty(&self) -> bool {
        self.back.is_empty()
    }

    /// Replaces every known placeholder in `text` with its original.
    pub fn restore(&self, text: &str) -> String {
        if self.back.is_empty() {
            return text.to_string();
        }
        placeholder_re()
            .replace_all(text, |c: &regex::Captures| {
                self.original(&c[0]).unwrap_or(&c[0]).to_string()
            })
            .into_owned()
    }

    /// A restorer for streamed output.
    pub fn stream_restorer(&self) -> Restorer {
        Restorer {
            map: self.clone(),
            pending: String::new(),
        }
    }
}

/// Restores placeholders in streamed output, holding back a partial `[PERSON_` until its
/// closing bracket arrives.
#[derive(Debug, Clone)]
pub struct Restorer {
    map: Pseudonymizer,
    pending: String,
}

/// Longest placeholder we wait for; anything longer cannot be one of ours.
const MAX_PLACEHOLDER: usize = 32;

impl Restorer {
    /// Feeds a chunk and returns the restored text that is safe to show.
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        if self.map.is_empty() {
            return std::mem::take(&mut self.pending);
        }
        let cut = match self.pending.rfind('[') {
            Some(i)
                if self.pending.len() - i < MAX_PLACEHOLDER
                    && self.pending[i + 1..]
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
            {
                i
            }
            _ => self.pending.len(),
        };
        let rest = self.pending.split_off(cut);
        let out = self.map.restore(&self.pending);
        self.pending = rest;
        out
    }

    /// Flushes what is held back.
    pub fn finish(&mut self) -> String {
        let out = self.map.restore(&self.pending);
        self.pending.clear();
        out
    }
}

/// An edit to the original text: replace `start..end` with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Applies edits in order of position; an edit overlapping an earlier one is dropped (so
/// callers push the ones that must win first and rely on the stable sort).
pub(crate) fn apply_edits(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| e.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            continue;
        }
        out.push_str(&text[at..e.start]);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Per-kind actions plus the tag language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    actions: BTreeMap<PiiKind, PiiAction>,
    lang: TagLang,
}

impl Redactor {
    /// A redactor applying `action` to every kind unless `overrides` says otherwise.
    pub fn new(action: PiiAction, overrides: &BTreeMap<PiiKind, PiiAction>, lang: TagLang) -> Self {
        let actions = PiiKind::ALL
            .into_iter()
            .map(|k| (k, overrides.get(&k).copied().unwrap_or(action)))
            .collect();
        Redactor { actions, lang }
    }

    /// Whether anything would be changed.
    pub fn is_active(&self) -> bool {
        self.actions.values().any(|a| *a != PiiAction::Keep)
    }

    /// The edits for `matches`, counting each redaction by kind name.
    pub(crate) fn edits(
        &self,
        text: &str,
        matches: &[PiiMatch],
        pseudo: &mut Pseudonymizer,
        counts: &mut BTreeMap<String, u32>,
    ) -> Vec<Edit> {
        let mut out = Vec::new();
        for m in matches {
            let value = &text[m.start..m.end];
            let replacement = match self.actions[&m.kind] {
                PiiAction::Keep => continue,
                PiiAction::Mask => mask(m.kind, value),
                PiiAction::Tag => tag(m.kind, self.lang).to_string(),
                PiiAction::Pseudonymize => pseudo.pseudonymize(m.kind, value),
            };
            *counts.entry(m.kind.name().to_string()).or_insert(0) += 1;
            out.push(Edit {
                start: m.start,
                end: m.end,
                text: replacement,
            });
        }
        out
    }

    /// Redacts `text` given its matches.
    pub fn redact(
        &self,
        text: &str,
        matches: &[PiiMatch],
        pseudo: &mut Pseudonymizer,
        counts: &mut BTreeMap<String, u32>,
    ) -> String {
        apply_edits(text, self.edits(text, matches, pseudo, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask(PiiKind::Name, "张三丰"), "张**");
        assert_eq!(mask(PiiKind::Mobile, "13812345678"), "138****5678");
        assert_eq!(
            mask(PiiKind::Mobile, "+86 138-1234-5678"),
            "+86 138-****-5678"
        );
        assert_eq!(
            mask(PiiKind::Email, "alice@example.com"),
            "a***@example.com"
        );
    }

    #[test]
    fn restorer_holds_partial_placeholder() {
        let mut p = Pseudonymizer::new();
        assert_eq!(p.pseudonymize(PiiKind::Name, "张三"), "[PERSON_1]");
        let mut r = p.stream_restorer();
        assert_eq!(r.push("你好[PER"), "你好");
        assert_eq!(r.push("SON_1]，再见 [x"), "张三，再见 [x");
        assert_eq!(r.finish(), "");
    }
}
