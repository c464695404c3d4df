//! Text normalisation for matching: obfuscated text ("Ｂ.０.М.Ｂ", "炸\u{200b} 藥") is folded
//! to the form the lexicon is written in, one original char at a time, so every normalised
//! char keeps the byte span of the original char it came from.
//!
//! Steps per char: compatibility decomposition (the "K" of NFKC: full-width → half-width,
//! ligatures, circled digits), combining marks dropped, lower-casing, homoglyphs mapped to
//! Latin, optionally traditional → simplified Chinese. Invisible chars vanish; spaces and
//! punctuation become separators, which the matcher skips but remembers (see
//! [`crate::safety::lexicon`] for when a separator may sit inside a match).

use std::sync::OnceLock;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// What one original char turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharClass {
    /// Zero-width and format chars: dropped as if absent.
    Invisible,
    /// Spaces and punctuation: dropped from the match stream, kept as gaps.
    Separator,
    /// Produces normalised text.
    Content,
}

/// Up to a few normalised chars for one original char (decompositions such as "㎒" → "mhz").
#[derive(Debug, Default, Clone)]
pub struct NormBuf {
    bytes: [u8; 32],
    len: usize,
}

impl NormBuf {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, c: char) {
        // Decompositions longer than the buffer (a handful of CJK compatibility
        // squares) are truncated; they never occur in lexicon terms.
        if self.len + c.len_utf8() <= self.bytes.len() {
            c.encode_utf8(&mut self.bytes[self.len..]);
            self.len += c.len_utf8();
        }
    }

    /// The normalised bytes (valid UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// Marker in [`ASCII_MAP`] for an ASCII separator.
const SEP: u8 = 0;
/// Marker in [`ASCII_MAP`] for an ASCII control char treated as invisible.
const INVIS: u8 = 1;

/// Fast path for ASCII: the lower-cased byte, or `SEP`/`INVIS`.
static ASCII_MAP: [u8; 128] = {
    let mut t = [SEP; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphanumeric() {
            b.to_ascii_lowercase()
        } else if b.is_ascii_control() && !b.is_ascii_whitespace() {
            INVIS
        } else {
            SEP
        };
        i += 1;
    }
    t
};

/// Normalises text for lexicon matching. Cheap to copy; the t2s table is built once per
/// process on first use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Normalizer {
    t2s: bool,
}

/// Text after normalisation, with the original span of every normalised byte.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    /// The separator-free match stream.
    pub text: String,
    /// For each byte of `text`, the byte range of the original char it came from.
    spans: Vec<(u32, u32)>,
}

impl Normalized {
    /// The original byte range covering normalised bytes `start..end` (`start < end`).
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.spans[start].0 as usize, self.spans[end - 1].1 as usize)
    }
}

impl Normalizer {
    /// A normaliser; `t2s` also folds traditional Chinese to simplified.
    pub fn new(t2s: bool) -> Normalizer {
        if t2s {
            t2s_table();
        }
        Normalizer { t2s }
    }

    /// Whether traditional Chinese is folded to simplified.
    pub(crate) fn t2s(&self) -> bool {
        self.t2s
    }

    /// Normalises a whole string (for terms, tests and the stream filter's short tails).
    pub fn normalize(&self, text: &str) -> Normalized {
        let mut out = Normalized::default();
        let mut buf = NormBuf::default();
        for (i, c) in text.char_indices() {
            if self.classify(c, &mut buf) == CharClass::Content {
                let span = (i as u32, (i + c.len_utf8()) as u32);
                out.text.push_str(buf.as_str());
                out.spans.extend(std::iter::repeat_n(span, buf.len));
            }
        }
        out
    }

    /// The ASCII fast path: `Some(byte)` for content, `None` for separators and invisibles.
    #[inline(always)]
    pub fn ascii(b: u8) -> Option<u8> {
        let m = ASCII_MAP[b as usize];
        (m > INVIS).then_some(m)
    }

    /// Classifies one char and, for content, writes its normalised form into `buf`.
    #[inline]
    pub fn classify(&self, c: char, buf: &mut NormBuf) -> CharClass {
        buf.clear();
        if c.is_ascii() {
            return match ASCII_MAP[c as usize] {
                SEP => CharClass::Separator,
                INVIS => CharClass::Invisible,
                b => {
                    buf.push(b as char);
                    CharClass::Content
                }
            };
        }
        if is_han(c) {
            buf.push(self.han(c));
            return CharClass::Content;
        }
        if is_invisible(c) {
            return CharClass::Invisible;
        }
        if is_cjk_punct(c) || c.is_whitespace() {
            return CharClass::Separator;
        }
        decompose_compatible(c, |d| {
            if is_combining_mark(d) || is_invisible(d) {
                return;
            }
            for l in d.to_lowercase() {
                let l = homoglyph(l);
                if l.is_ascii() && Normalizer::ascii(l as u8).is_none() {
                    continue;
                }
                if is_han(l) {
                    buf.push(self.han(l));
                } else if !(is_cjk_punct(l) || l.is_whitespace() || is_other_punct(l)) {
                    buf.push(l);
                }
            }
        });
        if buf.len == 0 {
            CharClass::Separator
        } else {
            CharClass::Content
        }
    }

    /// A Han char after optional t2s.
    #[inline]
    pub(crate) fn han(&self, c: char) -> char {
        if !self.t2s {
            return c;
        }
        let table = t2s_table();
        let i = c as usize;
        if (T2S_FIRST..T2S_FIRST + table.len()).contains(&i) {
            table[i - T2S_FIRST]
        } else {
            c
        }
    }
}

/// CJK unified ideographs (the basic block and extension A), where t2s applies and where
/// separators between chars are taken as obfuscation.
#[inline]
pub fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// Zero-width, bidi and other format chars that render as nothing.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}'..='\u{E007F}')
}

/// CJK and general punctuation blocks.
fn is_cjk_punct(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{303F}' | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205E}'
        | '\u{FE10}'..='\u{FE1F}' | '\u{FE30}'..='\u{FE6F}' | '\u{FF01}'..='\u{FF0F}'
        | '\u{FF1A}'..='\u{FF20}' | '\u{FF3B}'..='\u{FF40}' | '\u{FF5B}'..='\u{FF65}'
        | '\u{00A1}'..='\u{00BF}' | '\u{00D7}' | '\u{00F7}' | '\u{2190}'..='\u{23FF}'
        | '\u{2500}'..='\u{27BF}')
}

/// Other symbols used as filler between letters.
fn is_other_punct(c: char) -> bool {
    matches!(c, '\u{2E00}'..='\u{2E7F}' | '\u{02B0}'..='\u{02FF}')
}

/// Look-alikes from other scripts folded to the Latin letter they imitate (input is
/// already lower-cased).
fn homoglyph(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' | 'є' => 'e',
        'һ' => 'h',
        'і' | 'ї' | 'ӏ' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'ѕ' => 's',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ь' => 'b',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'γ' => 'y',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ω' => 'w',
        // Latin variants that survive decomposition
        'ı' => 'i',
        'ȷ' => 'j',
        'ł' => 'l',
        'ø' => 'o',
        'đ' => 'd',
        'ß' => 's',
        'ɑ' => 'a',
        'ɡ' => 'g',
        _ => c,
    }
}

/// First code point covered by the t2s table.
const T2S_FIRST: usize = 0x3400;

/// Traditional → simplified, per char, for U+3400..=U+9FFF. Built from `fast2s` one char at a
/// time so the mapping is context-free (the stream filter relies on that) and never changes
/// the number of chars (the offset map relies on that).
fn t2s_table() -> &'static [char] {
    static TABLE: OnceLock<Vec<char>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut s = String::with_capacity(4);
        (T2S_FIRST as u32..=0x9FFF)
            .filter_map(char::from_u32)
            .map(|c| {
                s.clear();
                s.push(c);
                let out = fast2s::convert(&s);
                let mut out = out.chars();
                match (out.next(), out.next()) {
                    (Some(d), None) => d,
                    _ => c,
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_obfuscations() {
        let n = Normalizer::new(true);
        assert_eq!(n.normalize("ＢＯＭＢ").text, "bomb");
        assert_eq!(n.normalize("b\u{200b}o m-b").text, "bomb");
        assert_eq!(n.normalize("Ьоmв").text, "bomb");
        assert_eq!(n.normalize("炸藥，").text, "炸药");
        assert_eq!(n.normalize("Café ①").text, "cafe1");
        assert_eq!(Normalizer::new(false).normalize("炸藥").text, "炸藥");
    }

    #[test]
    fn keeps_original_spans() {
        let n = Normalizer::new(true);
        let s = "a ＢＣ";
        let out = n.normalize(s);
        assert_eq!(out.text, "abc");
        assert_eq!(out.original_span(1, 3), (2, s.len()));
    }
}
