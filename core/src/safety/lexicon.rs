//! Sensitive-term lexicons and the multi-pattern matcher.
//!
//! Terms are normalised (see [`super::normalize`]) and compiled once. A scan walks the
//! original text a char at a time, normalises it on the fly and matches the terms against
//! the normalised, separator-free char stream, so "b.o.m.b", "炸 药" and "炸*药" are seen
//! as "bomb" and "炸药". Every normalised char keeps the offset of the original char it came
//! from, so matches are reported as byte spans of the original text.
//!
//! The matcher works on chars, not bytes. Every char that occurs in some term gets a small
//! id (any other char gets 0, which no term contains); ASCII and Han chars are looked up in
//! flat tables that already include lower-casing and traditional → simplified, so text that
//! is mostly ASCII and Han never goes through the general normaliser. Two signature tables
//! filter the grams: for the pair and the triple of chars ending at each char, one 32-bit
//! word says whether some term is that gram and which chars (by id, modulo 16 after a pair
//! and 32 after a triple) follow it in longer terms. The scan works in blocks of 1,024
//! normalised chars: it looks up both signatures of every char in plain loops the compiler
//! vectorises, and only the rare grams that pass are looked up in a hash table and, for
//! longer terms, compared char by char with the text that follows. Where the CPU has
//! AVX-512 (checked at run time), the first pass turns runs of ASCII and of three-byte
//! chars (most of Han) into entries sixteen at a time (see `lexicon_avx512.rs`); the tests
//! hold it and the scalar pass to the DFA. A term that must start on a word edge (see
//! below) is only tried where it could: after a char that is not a letter or digit. (With
//! more than 65,535 distinct term chars the lexicon falls back to a byte-level Aho-Corasick
//! DFA over the same normalised stream; both report the same matches.)
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
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::OnceLock;

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use serde::{Deserialize, Serialize};

#[cfg(target_arch = "x86_64")]
#[path = "lexicon_avx512.rs"]
mod avx512;

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
    engine: Engine,
    patterns: Vec<Pattern>,
    /// Proper prefixes of every normalised pattern: a stream tail in this set may still
    /// grow into a match, so the stream filter holds it back.
    prefixes: HashSet<Box<str>>,
    /// Longest pattern in normalised chars.
    max_chars: usize,
    normalizer: Normalizer,
}

/// The automaton behind a lexicon.
#[derive(Debug, Clone)]
enum Engine {
    /// The char-level matcher (the normal case).
    Chars(Box<CharMatcher>),
    /// A byte-level DFA over the normalised stream, for alphabets too large for 16-bit ids.
    Dfa(Box<DFA>),
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
        Lexicon::build(specs, normalizer, false).map_err(|(i, reason)| {
            let (path, text, at) = origins[i];
            policy_error(path, text, Some(at), &reason)
        })
    }

    /// Compiles terms given in code (tests, benchmarks, callers with their own storage).
    pub fn from_terms(terms: Vec<TermSpec>, normalizer: Normalizer) -> Result<Lexicon> {
        Lexicon::build(terms, normalizer, false)
            .map_err(|(i, reason)| Error::InvalidArgument(format!("lexicon term #{i}: {reason}")))
    }

    /// Errors carry the index of the offending term. `force_dfa` selects the byte-level
    /// engine even where the char-level one applies (tests compare the two).
    fn build(
        specs: Vec<TermSpec>,
        normalizer: Normalizer,
        force_dfa: bool,
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
        let chars = if force_dfa {
            None
        } else {
            CharMatcher::new(&norms, normalizer)
        };
        let engine = match chars {
            Some(m) => Engine::Chars(Box::new(m)),
            None => Engine::Dfa(Box::new(
                DFA::builder()
                    .match_kind(MatchKind::Standard)
                    .start_kind(aho_corasick::StartKind::Unanchored)
                    .prefilter(false)
                    .byte_classes(true)
                    .build(&norms)
                    .map_err(|e| (0, format!("cannot compile lexicon: {e}")))?,
            )),
        };
        Ok(Lexicon {
            engine,
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

    /// Runs the matcher over `text[from..]` and reports the raw hits (unchecked), in order of
    /// end, then of start. Hits that [`Lexicon::check`] would reject by the start word-edge
    /// rule alone may be left out (every caller ignores rejected hits).
    pub(crate) fn scan_hits(&self, text: &str, from: usize, mut f: impl FnMut(Hit)) {
        if self.patterns.is_empty() {
            return;
        }
        match &self.engine {
            Engine::Chars(m) => {
                let mut found = Vec::new();
                m.scan(self.normalizer, text, from, &mut found);
                // Terms longer than four chars are found (and verified) at their fourth char,
                // before shorter ones that end earlier.
                found.sort_unstable_by_key(|h| (h.nend, h.nstart));
                for h in found {
                    f(h.hit);
                }
            }
            Engine::Dfa(dfa) => self.scan_hits_dfa(dfa, text, from, f),
        }
    }

    /// The byte-level engine: steps the DFA over the normalised bytes.
    fn scan_hits_dfa(&self, dfa: &DFA, text: &str, from: usize, mut f: impl FnMut(Hit)) {
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
                        report(dfa, sid, npos, &ring, i + 1, &mut f);
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
                            report(dfa, sid, npos, &ring, i + 3, &mut f);
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
                        report(dfa, sid, npos, &ring, end, &mut f);
                    }
                }
            }
            i = end;
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
        // Runs of content chars: (first char, last char, length in original chars,
        // normalised chars before it, whether the gap before it holds clause punctuation).
        // Each gap is judged once the run after it is complete.
        type Run = (char, char, usize, usize, bool);
        let gap_ok = |a: Run, b: Run| {
            p.breaks.contains(&b.3)
                || (!b.4 && ((is_han(a.1) && is_han(b.0)) || (a.2 == 1 && b.2 == 1)))
        };
        let mut prev: Option<Run> = None;
        let mut cur: Option<Run> = None;
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
                    match &mut cur {
                        Some(r) if in_run => {
                            r.1 = c;
                            r.2 += 1;
                        }
                        _ => {
                            if let (Some(a), Some(b)) = (prev, cur) {
                                if !gap_ok(a, b) {
                                    return false;
                                }
                            }
                            prev = cur;
                            cur = Some((c, c, 1, nchars, clause));
                        }
                    }
                    in_run = true;
                    clause = false;
                    nchars += buf.as_str().chars().count();
                }
            }
        }
        match (prev, cur) {
            (Some(a), Some(b)) => gap_ok(a, b),
            _ => true,
        }
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

/// Reports the DFA's matches at `sid`.
#[cold]
fn report(
    dfa: &DFA,
    sid: aho_corasick::automaton::StateID,
    npos: usize,
    ring: &[usize; RING],
    end: usize,
    f: &mut impl FnMut(Hit),
) {
    for k in 0..dfa.match_len(sid) {
        let pid = dfa.match_pattern(sid, k);
        let start = ring[(npos - dfa.pattern_len(pid)) % RING];
        f(Hit {
            pattern: pid.as_usize(),
            start,
            end,
        });
    }
}

/// Flags of an original char, and the one char it normalises to (if it becomes one).
type Form = (u32, Option<char>);

/// What every BMP char normalises to, per t2s setting (built once per process): flags
/// (`SKIP`, `GENERIC`, `ORIG_WORDY`) and, for chars that become one char, that char.
fn bmp_forms(normalizer: Normalizer) -> &'static [Form] {
    static FORMS: [OnceLock<Box<[Form]>>; 2] = [OnceLock::new(), OnceLock::new()];
    FORMS[usize::from(normalizer.t2s())].get_or_init(|| {
        let mut buf = NormBuf::default();
        (0..=0xFFFF)
            .map(|cp| {
                let Some(c) = char::from_u32(cp) else {
                    return (GENERIC, None);
                };
                let orig = if wordy(c) { ORIG_WORDY } else { 0 };
                if normalizer.classify(c, &mut buf) != CharClass::Content {
                    return (SKIP | orig, None);
                }
                let mut out = buf.as_str().chars();
                match (out.next(), out.next()) {
                    (Some(nc), None) => (orig, Some(nc)),
                    _ => (GENERIC | orig, None),
                }
            })
            .collect()
    })
}

/// A letter or digit outside Han: the chars word edges are made of.
#[inline]
fn wordy(c: char) -> bool {
    c.is_alphanumeric() && !is_han(c)
}

/// Fast hasher for the matcher's integer keys (ids, packed grams).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(GOLDEN);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Char table entries: the normalised char's id (0: in no term) and flags.
const ID_MASK: u32 = 0xFFFF;
/// The normalised char is a letter or digit outside Han (a term starting with it must
/// start on a word edge).
const WORDY: u32 = 1 << 16;
/// Some term is this one char.
const SINGLE: u32 = 1 << 17;
/// The original char is a separator or invisible: it produces no normalised char.
const SKIP: u32 = 1 << 18;
/// The original char is a letter or digit outside Han (the next char is not on a word edge).
const ORIG_WORDY: u32 = 1 << 19;
/// The original char normalises to several chars: take the general path.
const GENERIC: u32 = 1 << 20;
/// Set by the scan: the char may start a term.
const START: u32 = 1 << 21;
/// The id is not 0 and the char is not wordy: a term may start here whatever precedes.
const FREE_START: u32 = 1 << 22;
/// The id is not 0 and the char is wordy: a term may start here after a non-wordy char.
const EDGE_START: u32 = 1 << 23;
/// Masks of the last 2 and 3 ids in the gram word.
const GRAM2: u64 = 0xFFFF_FFFF;
const GRAM3: u64 = 0xFFFF_FFFF_FFFF;

/// Signature tables: 2^16 entries each (256 KiB), indexed by a multiplicative hash of the
/// ids of a pair or a triple of chars.
const SIG_BITS: u32 = 16;
type Sigs = Box<[u32; 1 << SIG_BITS]>;

/// Bit 31 of a triple's signature: some term is exactly this triple. Bits 0..=30 (and 31
/// again: an alias only adds false positives): `1 << (id & 31)` for the id of the char that
/// follows the triple in some longer term. A pair's signature is split instead (see
/// [`pair_whole`]).
const SIG_WHOLE: u32 = 1 << 31;
const SIG_MUL: u32 = 0x9E37_79B1;
const SIG_MIX: u32 = 0x85EB_CA77;

fn sig_table() -> Sigs {
    vec![0u32; 1 << SIG_BITS]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("length is 1 << SIG_BITS"))
}

/// The hash of the pair of chars with entries (or ids) `a`, `b`. 32-bit arithmetic, so
/// that the scan computes many at once.
#[inline(always)]
fn pair_hash(a: u32, b: u32) -> u32 {
    ((a << 16) | (b & ID_MASK)).wrapping_mul(SIG_MUL)
}

/// The signature slot of the pair of chars with entries (or ids) `a`, `b`.
#[inline(always)]
fn pair_index(a: u32, b: u32) -> usize {
    (pair_hash(a, b) >> (32 - SIG_BITS)) as usize
}

/// Bits 16..=31 of a pair's signature: a term is exactly this pair, one bit chosen by four
/// more bits of the pair's hash. Pairs that share a slot then rarely share the bit: with a
/// single "whole" bit, 2-char Han terms made one random Han pair in 40 a false candidate.
#[inline(always)]
fn pair_whole(a: u32, b: u32) -> u32 {
    1 << (16 + ((pair_hash(a, b) >> (32 - SIG_BITS - 4)) & 15))
}

/// Bits 0..=15 of a pair's signature: `1 << (id & 15)` for the id (or entry) `e` of the
/// char that follows the pair in some longer term.
#[inline(always)]
fn pair_next(e: u32) -> u32 {
    1 << (e & 15)
}

/// The signature slot of the triple of chars with entries (or ids) `a`, `b`, `c`.
#[inline(always)]
fn triple_index(a: u32, b: u32, c: u32) -> usize {
    ((((a << 16) | (b & ID_MASK)).wrapping_mul(SIG_MIX) ^ (c & ID_MASK)).wrapping_mul(SIG_MUL)
        >> (32 - SIG_BITS)) as usize
}

/// The hash-table key of a gram: its chars' ids (from entries or ids), the last in the low
/// 16 bits.
fn pack_ids(ids: impl Iterator<Item = u32>) -> u64 {
    ids.fold(0u64, |key, e| (key << 16) | u64::from(e & ID_MASK))
}

/// The signature bit of a char with entry (or id) `e` following a triple.
#[inline(always)]
fn sig_next(e: u32) -> u32 {
    1 << (e & 31)
}

/// 1 when the entry has the start bit.
#[inline(always)]
fn start_bit(e: u32) -> u32 {
    (e >> START.trailing_zeros()) & 1
}

/// Pass 1's step: stores the entry `e` of the original char at byte `i` in `ents[k]`, with
/// the start bit where a term may start after a char whose wordy bit is `prev`, and its
/// offset in `offs[k]`. Returns the next slot (the same one for a separator, which the next
/// char overwrites) and this char's wordy bit.
#[inline(always)]
fn put_entry(
    e: u32,
    i: usize,
    k: usize,
    prev: u32,
    ents: &mut [u32],
    offs: &mut [usize],
) -> (usize, u32) {
    let start = (e & FREE_START) | (e & EDGE_START & ((prev ^ 1) << 23));
    ents[k] = e | (START * u32::from(start != 0));
    offs[k] = i;
    (
        k + usize::from(e & SKIP == 0),
        (e >> ORIG_WORDY.trailing_zeros()) & 1,
    )
}

/// Whether pass 1 can take its AVX-512 paths on this CPU: ASCII, and three-byte chars.
fn simd_pass1() -> (bool, bool) {
    #[cfg(target_arch = "x86_64")]
    return avx512::available();
    #[cfg(not(target_arch = "x86_64"))]
    return (false, false);
}

/// The char-level matcher (see the module docs).
#[derive(Clone)]
struct CharMatcher {
    /// Original char (any in the Basic Multilingual Plane) → entry. Chars that normalise to
    /// one char carry that char's id; separators and invisibles are `SKIP`; the rest (and
    /// chars beyond the BMP) are `GENERIC`.
    table: Box<[u32; 1 << 16]>,
    /// No ASCII char is `GENERIC` (the normal case): pass 1 takes ASCII eight at a time.
    ascii_plain: bool,
    /// `ascii_plain` and the CPU has AVX-512F: pass 1 takes ASCII sixteen at a time.
    avx512: bool,
    /// `avx512` and the CPU has AVX-512 VBMI: pass 1 takes three-byte chars (most of Han)
    /// sixteen at a time too.
    avx512_vbmi: bool,
    /// Normalised char → entry, for the general path.
    alphabet: IdMap<char, u32>,
    /// Signatures of every term's first two chars (see [`pair_whole`], [`pair_next`]): a
    /// 2-char term, or the third chars of longer ones.
    pairs: Sigs,
    /// Signatures of every term's first three chars: a 3-char term, or the fourth chars of
    /// longer ones.
    triples: Sigs,
    /// Id → pattern, for one-char terms.
    single: IdMap<u32, u32>,
    /// Packed 2- or 3-gram → (pattern, 0); packed 4-gram → range of `long`.
    grams: IdMap<u64, (u32, u32)>,
    /// Terms of at least four chars, grouped by their first four: (pattern, range of
    /// `rest` holding the ids after the fourth).
    long: Vec<(u32, u32, u32)>,
    rest: Vec<u16>,
}

impl std::fmt::Debug for CharMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CharMatcher")
            .field("alphabet", &self.alphabet.len())
            .field("grams", &self.grams.len())
            .finish_non_exhaustive()
    }
}

/// A raw hit with its normalised char span (for ordering).
struct Found {
    nend: usize,
    nstart: usize,
    hit: Hit,
}

/// Normalised chars per block of the two-pass scan.
const BLOCK: usize = 1024;
/// Slots before a block holding the last chars of the previous one (a gram's start).
const CARRY: usize = 3;
/// Room after a block for the chars of one more original char (a [`NormBuf`] holds at most
/// 32 bytes).
const SLACK: usize = 40;

/// Pass 2's per-block arrays, indexed like the block's entries.
struct Signatures {
    /// Signature of the pair ending at each char.
    pair: Vec<u32>,
    /// Signature of the triple ending at each char.
    triple: Vec<u32>,
    /// Candidate bits (see [`CharMatcher::signatures`]).
    cand: Vec<u32>,
    /// Scratch: signature slots.
    index: Vec<u16>,
}

/// What the rare paths need.
struct Ctx<'t, 'f> {
    normalizer: Normalizer,
    text: &'t str,
    found: &'f mut Vec<Found>,
    /// Scratch for verifying long terms: (id, end of the original char) of chars ahead.
    ahead: Vec<(u16, usize)>,
}

/// A candidate for terms of four chars or more.
struct Window {
    /// Ids of the last four normalised chars, newest in the low 16 bits.
    grams: u64,
    /// Original offset of the char three back.
    start: usize,
    /// Position of the current normalised char.
    q: usize,
    /// Where the current char came from.
    at: Origin,
}

/// Where the current normalised char came from: the original char's span and the char's
/// index among the chars its normalisation produced.
#[derive(Clone, Copy)]
struct Origin {
    start: usize,
    end: usize,
    sub: usize,
}

impl CharMatcher {
    /// `None` when the terms use more distinct chars than 16-bit ids can name.
    fn new(norms: &[String], normalizer: Normalizer) -> Option<CharMatcher> {
        let mut alphabet: IdMap<char, u32> = IdMap::default();
        for c in norms.iter().flat_map(|n| n.chars()) {
            let next = alphabet.len() + 1;
            alphabet.entry(c).or_insert(next as u32);
        }
        if alphabet.len() > ID_MASK as usize {
            return None;
        }
        for (c, e) in alphabet.iter_mut() {
            *e |= if wordy(*c) {
                WORDY | EDGE_START
            } else {
                FREE_START
            };
        }
        let mut single = IdMap::default();
        let mut grams = IdMap::default();
        let mut pairs = sig_table();
        let mut triples = sig_table();
        // (4-gram, [(pattern, ids after the fourth)])
        type Group = (u64, Vec<(u32, Vec<u16>)>);
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: IdMap<u64, usize> = IdMap::default();
        let pack = |ids: &[u16]| pack_ids(ids.iter().map(|&i| u32::from(i)));
        for (pi, norm) in norms.iter().enumerate() {
            let ids: Vec<u16> = norm
                .chars()
                .map(|c| (alphabet[&c] & ID_MASK) as u16)
                .collect();
            let pi = pi as u32;
            let id = |k: usize| u32::from(ids[k]);
            let next = |k: usize| ids.get(k).map_or(SIG_WHOLE, |&n| sig_next(u32::from(n)));
            if ids.len() >= 2 {
                pairs[pair_index(id(0), id(1))] |= match ids.get(2) {
                    Some(&n) => pair_next(u32::from(n)),
                    None => pair_whole(id(0), id(1)),
                };
            }
            if ids.len() >= 3 {
                triples[triple_index(id(0), id(1), id(2))] |= next(3);
            }
            match ids.len() {
                0 => {}
                1 => {
                    single.insert(u32::from(ids[0]), pi);
                    if let Some(e) = norm.chars().next().and_then(|c| alphabet.get_mut(&c)) {
                        *e |= SINGLE;
                    }
                }
                2 | 3 => {
                    grams.insert(pack(&ids), (pi, 0));
                }
                _ => {
                    let key = pack(&ids[..4]);
                    let g = *group_of.entry(key).or_insert_with(|| {
                        groups.push((key, Vec::new()));
                        groups.len() - 1
                    });
                    groups[g].1.push((pi, ids[4..].to_vec()));
                }
            }
        }
        let mut long = Vec::new();
        let mut rest = Vec::new();
        for (key, members) in groups {
            let first = long.len() as u32;
            for (pi, tail) in members {
                long.push((pi, rest.len() as u32, (rest.len() + tail.len()) as u32));
                rest.extend(tail);
            }
            grams.insert(key, (first, long.len() as u32));
        }
        let table: Box<[u32; 1 << 16]> = bmp_forms(normalizer)
            .iter()
            .map(|&(flags, nc)| match nc {
                Some(nc) => alphabet.get(&nc).copied().unwrap_or(0) | flags,
                None => flags,
            })
            .collect::<Box<[u32]>>()
            .try_into()
            .unwrap_or_else(|_| unreachable!("one entry per BMP char"));
        let ascii_plain = table[..128].iter().all(|e| e & GENERIC == 0);
        let simd = simd_pass1();
        Some(CharMatcher {
            table,
            ascii_plain,
            avx512: ascii_plain && simd.0,
            avx512_vbmi: ascii_plain && simd.1,
            alphabet,
            pairs,
            triples,
            single,
            grams,
            long,
            rest,
        })
    }

    /// The entry of a normalised char.
    fn entry(&self, c: char) -> u32 {
        if c.is_ascii() {
            self.table[c as usize]
        } else {
            self.alphabet.get(&c).copied().unwrap_or(0)
        }
    }

    /// The table entry of the char at `bytes[i]` (a char boundary) and its length in bytes;
    /// `GENERIC` for chars beyond the BMP.
    #[inline(always)]
    fn lookup(&self, bytes: &[u8], i: usize) -> (u32, usize) {
        let b = bytes[i];
        if b < 0x80 {
            return (self.table[usize::from(b)], 1);
        }
        let cont = |k: usize| u32::from(bytes.get(i + k).copied().unwrap_or(0) & 0x3F);
        let (cp, len) = if b < 0xE0 {
            ((u32::from(b & 0x1F) << 6) | cont(1), 2)
        } else if b < 0xF0 {
            ((u32::from(b & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
        } else {
            return (GENERIC, 4);
        };
        (self.table[cp as usize & 0xFFFF], len)
    }

    /// Collects the raw hits in `text[from..]`, leaving out those the start word-edge rule
    /// rejects. Works in blocks: the first pass turns original chars into table entries
    /// of normalised chars (separators dropped, start bits set), the second computes every
    /// char's candidate bits from the signatures ([`CharMatcher::signatures`]), the third
    /// verifies the rare candidates. Branch-free but for candidates and unusual chars.
    fn scan(&self, normalizer: Normalizer, text: &str, from: usize, found: &mut Vec<Found>) {
        let bytes = text.as_bytes();
        let cap = CARRY + BLOCK.min(bytes.len() - from) + SLACK;
        // Entries of the normalised chars; the first `CARRY` slots hold the previous block's
        // last ones (zero before the text: id 0, no start).
        let mut ents = vec![0u32; cap];
        let mut offs = vec![0usize; cap];
        let mut sigs = Signatures {
            pair: vec![0u32; cap],
            triple: vec![0u32; cap],
            cand: vec![0u32; cap],
            index: vec![0u16; cap],
        };
        let limit = cap - SLACK;
        let mut ctx = Ctx {
            normalizer,
            text,
            found,
            ahead: Vec::new(),
        };
        let mut prev_wordy = text[..from].chars().next_back().is_some_and(wordy);
        // Position of `ents[CARRY]` among all normalised chars.
        let mut base = 0usize;
        let mut i = from;
        while i < bytes.len() {
            // Pass 1: the table's chars in a tight loop, the others one at a time.
            let mut k = CARRY;
            loop {
                (i, k, prev_wordy) = self.table_chars(
                    bytes,
                    i,
                    k,
                    prev_wordy,
                    &mut ents[..limit],
                    &mut offs[..limit],
                );
                if i >= bytes.len() || k >= limit {
                    break;
                }
                let c = text[i..].chars().next().unwrap_or_default();
                k = self.generic(c, i, prev_wordy, normalizer, &mut ents, &mut offs, k);
                prev_wordy = wordy(c);
                i += c.len_utf8();
            }
            // Pass 2.
            self.signatures(&ents[..k], &mut sigs);
            // Candidates are rare: look at 16 chars at a time.
            for chunk in (CARRY..k).step_by(16) {
                let end = k.min(chunk + 16);
                if sigs.cand[chunk..end].iter().fold(0, |a, &c| a | c) == 0 {
                    continue;
                }
                for j in chunk..end {
                    let cand = sigs.cand[j];
                    if cand != 0 {
                        let grams = pack_ids(ents[j - 3..=j].iter().copied());
                        self.candidate(
                            cand,
                            grams,
                            base + j - CARRY,
                            &offs[j - CARRY..=j],
                            &mut ctx,
                        );
                    }
                }
            }
            base += k - CARRY;
            offs.copy_within(k - CARRY..k, 0);
            ents.copy_within(k - CARRY..k, 0);
        }
    }

    /// Pass 1's common case: turns the chars at `bytes[i..]` into entries at `ents[k..]`
    /// until the text ends, `ents` is full or a `GENERIC` char comes; returns the new `i`,
    /// `k` and whether the last char was wordy. A leaf function, so that `i` and `k` live in
    /// registers (with the cold generic path inside the loop they were spilled, and every
    /// char waited on a store and a reload).
    #[inline(never)]
    fn table_chars(
        &self,
        bytes: &[u8],
        mut i: usize,
        mut k: usize,
        prev_wordy: bool,
        ents: &mut [u32],
        offs: &mut [usize],
    ) -> (usize, usize, bool) {
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            // SAFETY: `avx512` is only set where the CPU has AVX-512F.
            return unsafe { avx512::table_chars(self, bytes, i, k, prev_wordy, ents, offs) };
        }
        let table = &*self.table;
        let limit = ents.len().min(offs.len());
        let mut prev = u32::from(prev_wordy);
        while i < bytes.len() && k < limit {
            // Eight ASCII chars at a time, without the length and generic checks.
            if self.ascii_plain && i + 8 <= bytes.len() && k + 8 <= limit {
                let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
                if word & 0x8080_8080_8080_8080 == 0 {
                    for b in word.to_le_bytes() {
                        (k, prev) = put_entry(table[usize::from(b)], i, k, prev, ents, offs);
                        i += 1;
                    }
                    continue;
                }
            }
            let Some(next) = self.table_char(bytes, i, k, prev, ents, offs) else {
                break;
            };
            (i, k, prev) = next;
        }
        (i, k, prev != 0)
    }

    /// Pass 1's step for one char of any kind: its entry into `ents[k]` (see [`put_entry`]);
    /// the next `i`, `k` and wordy bit, or `None` for a `GENERIC` char, where the table pass
    /// stops.
    #[inline(always)]
    fn table_char(
        &self,
        bytes: &[u8],
        i: usize,
        k: usize,
        prev: u32,
        ents: &mut [u32],
        offs: &mut [usize],
    ) -> Option<(usize, usize, u32)> {
        let (e, len) = self.lookup(bytes, i);
        if e & GENERIC != 0 {
            return None;
        }
        let (k, prev) = put_entry(e, i, k, prev, ents, offs);
        Some((i + len, k, prev))
    }

    /// Pass 2 over a block's entries (`CARRY` carried ones first): the candidate bits of
    /// every char from `CARRY` on. Bits 0, 1, 2: a term of 2 chars, of 3 chars, of at least 4
    /// may end at the char (for the last, its first four do); bit 3: a one-char term. Plain
    /// loops over slices without branches, which the compiler vectorises.
    #[inline(never)]
    fn signatures(&self, ents: &[u32], sigs: &mut Signatures) {
        let n = ents.len();
        let (pair, triple, cand) = (
            &mut sigs.pair[..n],
            &mut sigs.triple[..n],
            &mut sigs.cand[..n],
        );
        let index = &mut sigs.index[..n];
        // The slots first (vectorised), then the loads. A signature is only read where a
        // term could start at the gram's first char (below, every use is masked by that
        // start bit): elsewhere the slot is 0, an L1-resident load instead of a random one
        // (most chars of Latin words, which only start terms at word edges).
        let gate = |first: u32| 0u16.wrapping_sub(start_bit(first) as u16);
        for ((x, &a), &b) in index[1..].iter_mut().zip(ents).zip(&ents[1..]) {
            *x = pair_index(a, b) as u16 & gate(a);
        }
        for (p, &x) in pair[1..].iter_mut().zip(&index[1..]) {
            *p = self.pairs[usize::from(x)];
        }
        // A triple is only read where its first pair may go on with its third char.
        for ((((x, &a), &b), &c), &p) in index[2..]
            .iter_mut()
            .zip(ents)
            .zip(&ents[1..])
            .zip(&ents[2..])
            .zip(&pair[1..])
        {
            let may = u32::from(p & pair_next(c) != 0) & start_bit(a);
            *x = triple_index(a, b, c) as u16 & 0u16.wrapping_sub(may as u16);
        }
        for (t, &x) in triple[2..].iter_mut().zip(&index[2..]) {
            *t = self.triples[usize::from(x)];
        }
        for j in CARRY..n {
            let (e, e1, e2, e3) = (ents[j], ents[j - 1], ents[j - 2], ents[j - 3]);
            // A term of three chars or more may start two chars back: its first two are the
            // previous pair and this char may be its third (and the same one char earlier).
            let may = u32::from(pair[j - 1] & pair_next(e) != 0) & start_bit(e2);
            let may_before = u32::from(pair[j - 2] & pair_next(e1) != 0) & start_bit(e3);
            let c2 = u32::from(pair[j] & pair_whole(e1, e) != 0) & start_bit(e1);
            let c3 = (triple[j] >> 31) & may;
            let c4 = u32::from(triple[j - 1] & sig_next(e) != 0) & may_before;
            let c1 = u32::from(e & (SINGLE | START) == SINGLE | START);
            cand[j] = c2 | (c3 << 1) | (c4 << 2) | (c1 << 3);
        }
    }

    /// A char the tables do not cover: normalise it and add its chars at `ents[k..]`;
    /// returns the new end.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn generic(
        &self,
        c: char,
        i: usize,
        prev_wordy: bool,
        normalizer: Normalizer,
        ents: &mut [u32],
        offs: &mut [usize],
        mut k: usize,
    ) -> usize {
        let mut buf = NormBuf::default();
        if normalizer.classify(c, &mut buf) == CharClass::Content {
            for nc in buf.as_str().chars() {
                let e = self.entry(nc);
                let start = e & FREE_START != 0 || (e & EDGE_START != 0 && !prev_wordy);
                ents[k] = e | (START * u32::from(start));
                offs[k] = i;
                k += 1;
            }
        }
        k
    }

    /// Looks up the candidate grams ending at normalised char `q` (bits as in
    /// [`CharMatcher::scan`]); `offs` holds the original offsets of chars `q - 3..=q`.
    #[cold]
    #[inline(never)]
    fn candidate(&self, cand: u32, grams: u64, q: usize, offs: &[usize], ctx: &mut Ctx<'_, '_>) {
        let start = offs[3];
        let end = start + ctx.text[start..].chars().next().map_or(0, char::len_utf8);
        if cand & 0b1000 != 0 {
            if let Some(&p) = self.single.get(&((grams & 0xFFFF) as u32)) {
                push_found(ctx.found, p, q, q, start, end);
            }
        }
        for (bit, key, len) in [(0b1, grams & GRAM2, 2), (0b10, grams & GRAM3, 3)] {
            if cand & bit != 0 {
                if let Some(&(p, _)) = self.grams.get(&key) {
                    push_found(ctx.found, p, q + 1 - len, q, offs[4 - len], end);
                }
            }
        }
        if cand & 0b100 != 0 {
            // Which of its original char's normalised chars this one is.
            let sub = offs[..3].iter().rev().take_while(|&&o| o == start).count();
            let w = Window {
                grams,
                start: offs[0],
                q,
                at: Origin { start, end, sub },
            };
            self.long(&w, ctx);
        }
    }

    /// Terms of four chars or more whose first four end at the current char.
    fn long(&self, w: &Window, ctx: &mut Ctx<'_, '_>) {
        let (normalizer, text, ahead, out) =
            (ctx.normalizer, ctx.text, &mut ctx.ahead, &mut *ctx.found);
        let Some(&(first, last)) = self.grams.get(&w.grams) else {
            return;
        };
        let (q, at, start) = (w.q, w.at, w.start);
        let s = q - 3;
        // The normalised chars after `q`, read on demand.
        ahead.clear();
        let bytes = text.as_bytes();
        let mut pos = at.start;
        let mut skip = at.sub + 1;
        let mut buf = NormBuf::default();
        for &(p, r0, r1) in &self.long[first as usize..last as usize] {
            let tail = &self.rest[r0 as usize..r1 as usize];
            while ahead.len() < tail.len() && pos < bytes.len() {
                let (e, len) = self.lookup(bytes, pos);
                if e & (SKIP | GENERIC) == 0 {
                    if skip == 0 {
                        ahead.push(((e & ID_MASK) as u16, pos + len));
                    }
                } else if e & GENERIC != 0 {
                    let c = text[pos..].chars().next().unwrap_or_default();
                    let end = pos + c.len_utf8();
                    if normalizer.classify(c, &mut buf) == CharClass::Content {
                        for nc in buf.as_str().chars().skip(skip) {
                            ahead.push(((self.entry(nc) & ID_MASK) as u16, end));
                        }
                    }
                    skip = 0;
                    pos = end;
                    continue;
                }
                skip = 0;
                pos += len;
            }
            if tail.is_empty() {
                push_found(out, p, s, q, start, at.end);
            } else if ahead.len() >= tail.len() && ahead.iter().zip(tail).all(|(a, t)| a.0 == *t) {
                let end = ahead[tail.len() - 1].1;
                push_found(out, p, s, q + tail.len(), start, end);
            }
        }
    }
}

fn push_found(out: &mut Vec<Found>, p: u32, nstart: usize, nend: usize, start: usize, end: usize) {
    out.push(Found {
        nend,
        nstart,
        hit: Hit {
            pattern: p as usize,
            start,
            end,
        },
    });
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

    /// Deterministic xorshift for the differential test.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Every hit the check does not reject, with its verdict, from both engines.
    fn checked(
        l: &Lexicon,
        text: &str,
        from: usize,
        complete: bool,
    ) -> Vec<(usize, usize, usize, Check)> {
        let mut out = Vec::new();
        l.scan_hits(text, from, |h| match l.check(text, h, complete) {
            Check::Reject => {}
            c => out.push((h.pattern, h.start, h.end, c)),
        });
        out
    }

    /// The lexicon with pass 1's SIMD path turned off.
    fn scalar_pass1(l: &Lexicon) -> Lexicon {
        let mut scalar = l.clone();
        if let Engine::Chars(m) = &mut scalar.engine {
            (m.avx512, m.avx512_vbmi) = (false, false);
        }
        scalar
    }

    #[test]
    fn char_engine_matches_the_dfa() {
        // Chars that exercise every path: ASCII letters, digits, separators, Han (with
        // traditional forms), full-width, decompositions, homoglyphs, invisibles, marks.
        const PALETTE: &[&str] = &[
            "a", "b", "o", "m", "B", "O", "1", " ", ".", "-", "炸", "药", "藥", "弹", "彈", "制",
            "造", "，", "。", "ｂ", "Ｏ", "\u{200b}", "\u{00ad}", "㎒", "h", "z", "м", "о", "é",
            "e\u{301}", "ﬁ", "f", "i", "①", "ß", "s", "😀", "ア", "\u{4dc0}", "\u{f900}",
            "\u{3400}", "*", "\t", "\u{1}",
        ];
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut compared = 0;
        for round in 0..100 {
            let gen = |rng: &mut Rng, n: usize| -> String {
                (0..n).map(|_| PALETTE[rng.below(PALETTE.len())]).collect()
            };
            let n_terms = 1 + rng.below(12);
            let terms: Vec<TermSpec> = (0..n_terms)
                .filter_map(|i| {
                    let len = 1 + rng.below(7);
                    let term = gen(&mut rng, len);
                    let n = Normalizer::new(true).normalize(&term);
                    (!n.text.is_empty() && n.text.len() < RING).then(|| TermSpec {
                        term,
                        category: "t".into(),
                        action: [Action::Flag, Action::Mask, Action::Block][i % 3],
                    })
                })
                .collect();
            for t2s in [true, false] {
                let norm = Normalizer::new(t2s);
                let fast = Lexicon::from_terms(terms.clone(), norm).unwrap();
                let slow = Lexicon::build(terms.clone(), norm, true).unwrap();
                assert!(matches!(fast.engine, Engine::Chars(_)));
                assert!(matches!(slow.engine, Engine::Dfa(_)));
                for _ in 0..40 {
                    // Texts built from the terms themselves plus noise, so hits happen.
                    let mut text = String::new();
                    for _ in 0..1 + rng.below(6) {
                        if rng.below(2) == 0 && !terms.is_empty() {
                            text.push_str(&terms[rng.below(terms.len())].term);
                        } else {
                            let len = rng.below(5);
                            text.push_str(&gen(&mut rng, len));
                        }
                    }
                    let bounds: Vec<usize> = (0..=text.len())
                        .filter(|&i| text.is_char_boundary(i))
                        .collect();
                    let from = bounds[rng.below(bounds.len())];
                    for complete in [true, false] {
                        let hits = checked(&fast, &text, from, complete);
                        compared += hits.len();
                        assert_eq!(
                            hits,
                            checked(&slow, &text, from, complete),
                            "round {round} t2s {t2s} terms {terms:?} text {text:?} from {from}"
                        );
                    }
                    assert_eq!(fast.scan(&text), slow.scan(&text), "{terms:?} {text:?}");
                }
                // A long text, so that pass 1 takes its ASCII runs in chunks; the scalar
                // pass agrees too.
                let scalar = scalar_pass1(&fast);
                let mut text = String::new();
                for _ in 0..200 {
                    if rng.below(3) == 0 && !terms.is_empty() {
                        text.push_str(&terms[rng.below(terms.len())].term);
                    } else {
                        let len = rng.below(5);
                        text.push_str(&gen(&mut rng, len));
                    }
                }
                let hits = checked(&fast, &text, 0, true);
                compared += hits.len();
                assert_eq!(hits, checked(&slow, &text, 0, true), "{terms:?} {text:?}");
                assert_eq!(hits, checked(&scalar, &text, 0, true), "{terms:?} {text:?}");
            }
        }
        assert!(compared > 1000, "only {compared} hits compared");
    }

    /// Texts of several blocks: matches that straddle a block boundary (the carried chars)
    /// are found as the DFA finds them.
    #[test]
    fn char_engine_matches_the_dfa_across_blocks() {
        let terms: Vec<TermSpec> = ["炸药", "制造炸弹", "b.o.m.b", "pipe bomb", "药", "xyz"]
            .iter()
            .map(|t| TermSpec {
                term: (*t).into(),
                category: "t".into(),
                action: Action::Block,
            })
            .collect();
        let fast = Lexicon::from_terms(terms.clone(), Normalizer::new(true)).unwrap();
        let slow = Lexicon::build(terms, Normalizer::new(true), true).unwrap();
        let pieces = [
            "炸药",
            "制造炸",
            "弹",
            " pipe ",
            "bomb ",
            "x",
            "yz ",
            "a ",
            "。",
            "b.o.",
            "m.b ",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20 {
            let text: String = (0..2000).map(|_| pieces[rng.below(pieces.len())]).collect();
            assert!(text.chars().count() > 3 * BLOCK);
            let hits = checked(&fast, &text, 0, true);
            assert!(hits.len() > 100, "only {} hits", hits.len());
            assert_eq!(hits, checked(&slow, &text, 0, true));
            assert_eq!(hits, checked(&scalar_pass1(&fast), &text, 0, true));
        }
    }

    #[test]
    fn open_prefix_is_the_longest_live_suffix() {
        let l = lex(&[("bomb", Action::Block), ("炸药", Action::Block)]);
        assert_eq!(l.open_prefix_start("say b.o", 0), Some(4));
        assert_eq!(l.open_prefix_start("很多炸", 0), Some(6));
        assert_eq!(l.open_prefix_start("nothing", 0), None);
    }
}
