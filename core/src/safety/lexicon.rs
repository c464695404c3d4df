//! Sensitive-term lexicons and the multi-pattern matcher.
//!
//! Terms are normalised (see [`super::normalize`]) and compiled once into an Aho-Corasick
//! DFA. A scan walks the original text a char at a time, normalises it on the fly and steps
//! the DFA over the normalised, separator-free bytes, so "b.o.m.b", "炸 药" and "炸*药" reach
//! the automaton as "bomb" and "炸药". A small ring buffer maps every normalised byte back
//! to its original offset, so matches are reported as byte spans of the original text.
//!
//! Because separators are invisible to the automaton, every raw hit is checked against the
//! original text before it counts:
//!
//! * **Word edges.** A term that starts (ends) with a Latin letter or digit only matches
//!   where the original char before (after) the span is not a letter or digit, so "bomb"
//!   does not fire inside "bombastic".
//! * **Gaps.** Split the span at separators into runs of content chars. A separator gap is
//!   accepted only if the term itself has a break there ("kill yourself"), or both chars
//!   around it are Han ("炸 药", "炸*药") or the runs on both sides are single chars
//!   ("b.o.m.b"), and it holds no Chinese clause punctuation (so "油炸，药" is prose).
//!   So "I am a nurse" never matches "iama": the run "am" has two letters.
//!
//! Invisible chars (zero-width space, soft hyphen, bidi marks) are ignored everywhere.
//!
//! Lexicon files are TOML:
//!
//! ```toml
//! [[category]]
//! id = "violence"
//! block = ["炸药", "pipe bomb"]   # refuse the request / stop the output
//! mask = ["..."]                  # replace the matched text with '*'
//! flag = ["..."]                  # allow, but report
//! ```

use std::collections::{HashMap, HashSet};
use std::path::Path;

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use serde::{Deserialize, Serialize};

use super::normalize::{is_han, CharClass, NormBuf, Normalizer};
use super::policy::policy_error;
use crate::error::{Error, Result};

/// What happens when a term matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Report only.
    Flag,
    /// Replace the matched text with `*`.
    Mask,
    /// Refuse the input or stop the output.
    Block,
}

/// One term to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermSpec {
    /// The term as written.
    pub term: String,
    /// Its category id (e.g. "violence").
    pub category: String,
    /// What a match does.
    pub action: Action,
}

/// A match, with its span in the original text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LexMatch {
    /// Category id of the term.
    pub category: String,
    /// The term's action.
    pub action: Action,
    /// The term as written in the lexicon.
    pub term: String,
    /// Byte offset of the first matched char in the original text.
    pub start: usize,
    /// Byte offset just past the last matched char in the original text.
    pub end: usize,
}

/// Normalised terms compiled into one automaton.
#[derive(Debug, Clone)]
pub struct Lexicon {
    dfa: DFA,
    patterns: Vec<Pattern>,
    /// Proper prefixes of every normalised pattern: a stream tail in this set may still
    /// grow into a match, so the stream filter holds it back.
    prefixes: HashSet<Box<str>>,
    /// Longest pattern in normalised chars.
    max_chars: usize,
    normalizer: Normalizer,
}

/// A compiled pattern: the most severe term that normalises to it.
#[derive(Debug, Clone)]
struct Pattern {
    spec: TermSpec,
    /// Normalised char offsets where the written term has a separator.
    breaks: Vec<usize>,
    latin_start: bool,
    latin_end: bool,
}

/// Ring buffer of original offsets indexed by normalised byte; only slots at normalised char
/// starts are read (matches start on a char). Patterns must be shorter than the ring.
const RING: usize = 256;

/// The outcome of checking a raw automaton hit against the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Accept,
    Reject,
    /// Rejected only because a letter follows the span: the same text cut right after the
    /// span would match, so a stream must not cut there.
    RejectedByNext,
    /// The span ends at the end of an incomplete text and the next char decides.
    NeedMore,
}

/// A raw hit: pattern index and original span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub pattern: usize,
    pub start: usize,
    pub end: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LexiconFile {
    #[serde(default)]
    category: Vec<CategoryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryFile {
    id: String,
    #[serde(default)]
    block: Vec<toml::Spanned<String>>,
    #[serde(default)]
    mask: Vec<toml::Spanned<String>>,
    #[serde(default)]
    flag: Vec<toml::Spanned<String>>,
}

impl Lexicon {
    /// Parses lexicon files (`(path, contents)`); errors name the file and line.
    pub fn from_files(files: &[(&Path, &str)], normalizer: Normalizer) -> Result<Lexicon> {
        let mut specs = Vec::new();
        let mut origins = Vec::new();
        for (path, text) in files {
            let file: LexiconFile = toml::from_str(text)
                .map_err(|e| policy_error(path, text, e.span().map(|s| s.start), e.message()))?;
            for cat in file.category {
                for (list, action) in [
                    (cat.block, Action::Block),
                    (cat.mask, Action::Mask),
                    (cat.flag, Action::Flag),
                ] {
                    for term in list {
                        origins.push((*path, *text, term.span().start));
                        specs.push(TermSpec {
                            term: term.into_inner(),
                            category: cat.id.clone(),
                            action,
                        });
                    }
                }
            }
        }
        Lexicon::build(specs, normalizer).map_err(|(i, reason)| {
            let (path, text, at) = origins[i];
            policy_error(path, text, Some(at), &reason)
        })
    }

    /// Compiles terms given in code (tests, benchmarks, callers with their own storage).
    pub fn from_terms(terms: Vec<TermSpec>, normalizer: Normalizer) -> Result<Lexicon> {
        Lexicon::build(terms, normalizer)
            .map_err(|(i, reason)| Error::InvalidArgument(format!("lexicon term #{i}: {reason}")))
    }

    /// Errors carry the index of the offending term.
    fn build(
        specs: Vec<TermSpec>,
        normalizer: Normalizer,
    ) -> std::result::Result<Lexicon, (usize, String)> {
        let mut by_norm: HashMap<String, usize> = HashMap::new();
        let mut norms: Vec<String> = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut buf = NormBuf::default();
        for (i, spec) in specs.into_iter().enumerate() {
            let mut norm = String::new();
            let mut breaks = Vec::new();
            let mut chars = 0;
            for c in spec.term.chars() {
                match normalizer.classify(c, &mut buf) {
                    CharClass::Content => {
                        norm.push_str(buf.as_str());
                        chars += buf.as_str().chars().count();
                    }
                    CharClass::Separator if chars > 0 && breaks.last() != Some(&chars) => {
                        breaks.push(chars)
                    }
                    _ => {}
                }
            }
            if breaks.last() == Some(&chars) {
                breaks.pop();
            }
            if norm.is_empty() {
                return Err((
                    i,
                    format!("term {:?} is empty after normalisation", spec.term),
                ));
            }
            if norm.len() >= RING {
                return Err((i, format!("term {:?} is too long", spec.term)));
            }
            let latin = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() && !is_han(c));
            let pattern = Pattern {
                latin_start: latin(norm.chars().next()),
                latin_end: latin(norm.chars().next_back()),
                breaks,
                spec,
            };
            match by_norm.get(&norm) {
                Some(&p) => {
                    let old = &mut patterns[p];
                    if pattern.spec.action > old.spec.action {
                        old.spec = pattern.spec;
                    }
                    old.breaks.extend(pattern.breaks);
                }
                None => {
                    by_norm.insert(norm.clone(), patterns.len());
                    norms.push(norm);
                    patterns.push(pattern);
                }
            }
        }
        let mut prefixes = HashSet::new();
        let mut max_chars = 0;
        for norm in &norms {
            max_chars = max_chars.max(norm.chars().count());
            for (i, _) in norm.char_indices().skip(1) {
                prefixes.insert(Box::from(&norm[..i]));
            }
        }
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(aho_corasick::StartKind::Unanchored)
            .prefilter(false)
            .byte_classes(true)
            .build(&norms)
            .map_err(|e| (0, format!("cannot compile lexicon: {e}")))?;
        Ok(Lexicon {
            dfa,
            patterns,
            prefixes,
            max_chars,
            normalizer,
        })
    }

    /// Number of distinct normalised terms.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the lexicon has no terms.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The longest term, in normalised chars.
    pub fn max_term_chars(&self) -> usize {
        self.max_chars
    }

    /// All accepted matches in a complete text, overlapping ones included, in order of end.
    pub fn scan(&self, text: &str) -> Vec<LexMatch> {
        let mut out = Vec::new();
        self.scan_hits(text, 0, |hit| {
            if self.check(text, hit, true) == Check::Accept {
                out.push(self.to_match(hit));
            }
        });
        out
    }

    pub(crate) fn to_match(&self, hit: Hit) -> LexMatch {
        let spec = &self.patterns[hit.pattern].spec;
        LexMatch {
            category: spec.category.clone(),
            action: spec.action,
            term: spec.term.clone(),
            start: hit.start,
            end: hit.end,
        }
    }

    pub(crate) fn action(&self, hit: Hit) -> Action {
        self.patterns[hit.pattern].spec.action
    }

    /// Runs the automaton over `text[from..]` and reports every raw hit (unchecked).
    pub(crate) fn scan_hits(&self, text: &str, from: usize, mut f: impl FnMut(Hit)) {
        if self.patterns.is_empty() {
            return;
        }
        let dfa = &self.dfa;
        let Ok(mut sid) = dfa.start_state(Anchored::No) else {
            return;
        };
        let bytes = text.as_bytes();
        let mut ring = [0usize; RING];
        let mut npos = 0usize;
        let mut buf = NormBuf::default();
        let mut i = from;
        while i < bytes.len() {
            let b = bytes[i];
            if b < 0x80 {
                if let Some(m) = Normalizer::ascii(b) {
                    ring[npos % RING] = i;
                    npos += 1;
                    sid = dfa.next_state(Anchored::No, sid, m);
                    if dfa.is_special(sid) && dfa.is_match(sid) {
                        self.report(sid, npos, &ring, i + 1, &mut f);
                    }
                }
                i += 1;
                continue;
            }
            // Han fast path: feed the (t2s-mapped) char's bytes straight to the DFA.
            if b & 0xF0 == 0xE0 && i + 2 < bytes.len() {
                let c = (u32::from(b & 0x0F) << 12)
                    | (u32::from(bytes[i + 1] & 0x3F) << 6)
                    | u32::from(bytes[i + 2] & 0x3F);
                if let Some(c) = char::from_u32(c).filter(|c| is_han(*c)) {
                    let mut enc = [0u8; 4];
                    let mapped = self.normalizer.han(c).encode_utf8(&mut enc).as_bytes();
                    ring[npos % RING] = i;
                    for &nb in mapped {
                        npos += 1;
                        sid = dfa.next_state(Anchored::No, sid, nb);
                        if dfa.is_special(sid) && dfa.is_match(sid) {
                            self.report(sid, npos, &ring, i + 3, &mut f);
                        }
                    }
                    i += 3;
                    continue;
                }
            }
            let c = text[i..].chars().next().unwrap_or_default();
            let end = i + c.len_utf8();
            if self.normalizer.classify(c, &mut buf) == CharClass::Content {
                for &nb in buf.as_bytes() {
                    ring[npos % RING] = i;
                    npos += 1;
                    sid = dfa.next_state(Anchored::No, sid, nb);
                    if dfa.is_special(sid) && dfa.is_match(sid) {
                        self.report(sid, npos, &ring, end, &mut f);
                    }
                }
            }
            i = end;
        }
    }

    #[cold]
    fn report(
        &self,
        sid: aho_corasick::automaton::StateID,
        npos: usize,
        ring: &[usize; RING],
        end: usize,
        f: &mut impl FnMut(Hit),
    ) {
        for k in 0..self.dfa.match_len(sid) {
            let pid = self.dfa.match_pattern(sid, k);
            let start = ring[(npos - self.dfa.pattern_len(pid)) % RING];
            f(Hit {
                pattern: pid.as_usize(),
                start,
                end,
            });
        }
    }

    /// Checks a raw hit against the original text (rules in the module docs). `complete`
    /// says whether `text` ends where the input ends.
    pub(crate) fn check(&self, text: &str, hit: Hit, complete: bool) -> Check {
        let p = &self.patterns[hit.pattern];
        let wordy = |c: char| c.is_alphanumeric() && !is_han(c);
        if p.latin_start && text[..hit.start].chars().next_back().is_some_and(wordy) {
            return Check::Reject;
        }
        if !self.gaps_ok(&text[hit.start..hit.end], p) {
            return Check::Reject;
        }
        if p.latin_end {
            match text[hit.end..].chars().next() {
                None if !complete => return Check::NeedMore,
                Some(c) if wordy(c) => return Check::RejectedByNext,
                _ => {}
            }
        }
        Check::Accept
    }

    fn gaps_ok(&self, span: &str, p: &Pattern) -> bool {
        // (first char, last char, length in original chars, normalised chars before it,
        // whether the gap before it holds clause punctuation)
        let mut runs: Vec<(char, char, usize, usize, bool)> = Vec::new();
        let mut buf = NormBuf::default();
        let mut nchars = 0;
        let mut in_run = false;
        let mut clause = false;
        for c in span.chars() {
            match self.normalizer.classify(c, &mut buf) {
                CharClass::Invisible => {}
                CharClass::Separator => {
                    in_run = false;
                    clause |= "，。、；：！？".contains(c);
                }
                CharClass::Content => {
                    match runs.last_mut() {
                        Some(r) if in_run => {
                            r.1 = c;
                            r.2 += 1;
                        }
                        _ => runs.push((c, c, 1, nchars, clause)),
                    }
                    in_run = true;
                    clause = false;
                    nchars += buf.as_str().chars().count();
                }
            }
        }
        runs.windows(2).all(|w| {
            let (a, b) = (w[0], w[1]);
            p.breaks.contains(&b.3)
                || (!b.4 && ((is_han(a.1) && is_han(b.0)) || (a.2 == 1 && b.2 == 1)))
        })
    }

    /// Where a match could still begin in `text[from..]` if more text follows: the original
    /// offset of the longest normalised suffix that is a proper prefix of a term.
    pub(crate) fn open_prefix_start(&self, text: &str, from: usize) -> Option<usize> {
        if self.max_chars < 2 {
            return None;
        }
        // Only the last `max_chars - 1` content chars can matter.
        let mut start = text.len();
        let mut seen = 0;
        let mut buf = NormBuf::default();
        for (i, c) in text[from..].char_indices().rev() {
            if self.normalizer.classify(c, &mut buf) == CharClass::Content {
                seen += 1;
                if seen >= self.max_chars {
                    break;
                }
            }
            start = from + i;
        }
        let norm = self.normalizer.normalize(&text[start..]);
        norm.text
            .char_indices()
            .find(|(i, _)| self.prefixes.contains(&norm.text[*i..]))
            .map(|(i, _)| start + norm.original_span(i, i + 1).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(terms: &[(&str, Action)]) -> Lexicon {
        let specs = terms
            .iter()
            .map(|(t, a)| TermSpec {
                term: t.to_string(),
                category: "test".into(),
                action: *a,
            })
            .collect();
        Lexicon::from_terms(specs, Normalizer::new(true)).unwrap()
    }

    fn found(l: &Lexicon, text: &str) -> Vec<String> {
        l.scan(text)
            .into_iter()
            .map(|m| text[m.start..m.end].to_string())
            .collect()
    }

    #[test]
    fn gap_and_edge_rules() {
        let l = lex(&[
            ("iama", Action::Block),
            ("bomb", Action::Block),
            ("炸药", Action::Block),
            ("kill yourself", Action::Block),
        ]);
        assert!(found(&l, "I am a nurse").is_empty());
        assert!(found(&l, "a bombastic speech").is_empty());
        assert_eq!(found(&l, "a b.o.m.b here"), ["b.o.m.b"]);
        assert_eq!(found(&l, "x 炸 * 藥!"), ["炸 * 藥"]);
        assert_eq!(found(&l, "go KILL  yourself"), ["KILL  yourself"]);
        assert!(found(&l, "bo mb").is_empty());
        assert_eq!(found(&l, "ｂ\u{200b}ｏмb"), ["ｂ\u{200b}ｏмb"]);
    }

    #[test]
    fn open_prefix_is_the_longest_live_suffix() {
        let l = lex(&[("bomb", Action::Block), ("炸药", Action::Block)]);
        assert_eq!(l.open_prefix_start("say b.o", 0), Some(4));
        assert_eq!(l.open_prefix_start("很多炸", 0), Some(6));
        assert_eq!(l.open_prefix_start("nothing", 0), None);
    }
}
