//! Filtering model output token by token.
//!
//! The filter keeps the not-yet-emitted text and releases the longest prefix that can no
//! longer take part in a match: it holds back from the start of the longest tail whose
//! normalised form is a proper prefix of some term (separators and invisible chars are
//! skipped by normalisation, so "炸 " or "b.o." is held but "hello " is not), from the start
//! of a hit whose word edge depends on the next char, and, when output PII redaction is on,
//! from where a PII item could be starting (trailing digits or e-mail chars, a recent
//! context word such as 患者 or "Patient", a recent surname). Blocked terms are never
//! emitted, even in part: the caller gets [`StreamEvent::Blocked`] and should stop decoding.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::lexicon::{Action, Check, Hit, LexMatch, Lexicon};
use super::pii::PiiDetector;
use super::redact::{apply_edits, Edit, Pseudonymizer, Redactor, Restorer};
use super::Verdict;

/// Emitted chars kept as left context when PII redaction is on (longest cue plus slack).
const PII_CONTEXT: usize = 16;

/// What a chunk produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Text safe to show (may be empty while the filter holds a tail back).
    Text(String),
    /// A blocked term appeared: stop generating and show `message` instead.
    Blocked {
        /// Category of the blocked term.
        category: String,
        /// The refusal message from the policy.
        message: String,
    },
}

/// Streaming output filter; one per generation.
#[derive(Debug, Clone)]
pub struct StreamFilter {
    lexicon: Option<Arc<Lexicon>>,
    pii: Option<(Arc<PiiDetector>, Redactor)>,
    restorer: Option<Restorer>,
    message: String,
    /// Original text not yet emitted, preceded by `ctx` bytes of emitted text (the char
    /// before, which word-edge checks need, or more for PII context).
    pending: String,
    ctx: usize,
    /// Stream offset of `pending[0]`.
    base: usize,
    blocked: Option<StreamEvent>,
    matches: Vec<LexMatch>,
    redactions: BTreeMap<String, u32>,
    scratch: Pseudonymizer,
}

impl StreamFilter {
    /// A filter for `lexicon` (if any) that answers blocks with `message`.
    pub fn new(lexicon: Option<Arc<Lexicon>>, message: impl Into<String>) -> StreamFilter {
        StreamFilter {
            lexicon,
            pii: None,
            restorer: None,
            message: message.into(),
            pending: String::new(),
            ctx: 0,
            base: 0,
            blocked: None,
            matches: Vec::new(),
            redactions: BTreeMap::new(),
            scratch: Pseudonymizer::new(),
        }
    }

    /// Also redacts PII in the output.
    pub fn with_pii(mut self, detector: Arc<PiiDetector>, redactor: Redactor) -> StreamFilter {
        if redactor.is_active() {
            self.pii = Some((detector, redactor));
        }
        self
    }

    /// Also restores the request's pseudonyms (`[PERSON_1]` → 张三) for the caller.
    pub fn with_restore(mut self, pseudonyms: &Pseudonymizer) -> StreamFilter {
        if !pseudonyms.is_empty() {
            self.restorer = Some(pseudonyms.stream_restorer());
        }
        self
    }

    /// Feeds one chunk (a token's text).
    pub fn push(&mut self, chunk: &str) -> StreamEvent {
        if let Some(b) = &self.blocked {
            return b.clone();
        }
        self.pending.push_str(chunk);
        self.process(false)
    }

    /// Ends the stream and flushes what was held back.
    pub fn finish(&mut self) -> StreamEvent {
        if let Some(b) = &self.blocked {
            return b.clone();
        }
        match self.process(true) {
            StreamEvent::Text(mut t) => {
                if let Some(r) = &mut self.restorer {
                    t.push_str(&r.finish());
                }
                StreamEvent::Text(t)
            }
            blocked => blocked,
        }
    }

    /// Terms matched so far (flag, mask; block too once blocked), with stream offsets.
    pub fn matches(&self) -> &[LexMatch] {
        &self.matches
    }

    /// PII redactions so far, by kind name.
    pub fn redactions(&self) -> &BTreeMap<String, u32> {
        &self.redactions
    }

    /// The verdict so far.
    pub fn verdict(&self) -> Verdict {
        match &self.blocked {
            Some(StreamEvent::Blocked { category, message }) => Verdict::Block {
                category: category.clone(),
                message: message.clone(),
            },
            _ if !self.matches.is_empty() => Verdict::Flag,
            _ => Verdict::Allow,
        }
    }

    fn process(&mut self, complete: bool) -> StreamEvent {
        let text = self.pending.as_str();
        let from = self.ctx;
        let mut cut = text.len();
        let mut hits: Vec<Hit> = Vec::new();
        let mut sensitive: Vec<Hit> = Vec::new();
        if let Some(lex) = &self.lexicon {
            let mut block: Option<Hit> = None;
            lex.scan_hits(text, from, |hit| match lex.check(text, hit, complete) {
                Check::Accept
                    if lex.action(hit) == Action::Block
                        && block.is_none_or(|b| b.start > hit.start) =>
                {
                    block = Some(hit);
                }
                Check::Accept if lex.action(hit) == Action::Block => {}
                Check::Accept => hits.push(hit),
                Check::NeedMore => cut = cut.min(hit.start),
                Check::RejectedByNext if lex.action(hit) == Action::Block => sensitive.push(hit),
                _ => {}
            });
            if let Some(hit) = block {
                let mut m = lex.to_match(hit);
                m.start += self.base;
                m.end += self.base;
                let category = m.category.clone();
                self.matches.push(m);
                let event = StreamEvent::Blocked {
                    category,
                    message: self.message.clone(),
                };
                self.blocked = Some(event.clone());
                self.pending.clear();
                return event;
            }
            if !complete {
                if let Some(p) = lex.open_prefix_start(text, from) {
                    cut = cut.min(p);
                }
            }
        }
        let pii = match &self.pii {
            Some((det, _)) => {
                // The context lets a cue already emitted ("患者") find the name after it.
                let mut found = det.detect(text);
                found.retain(|m| m.start >= from);
                if !complete {
                    if let Some(p) = det.open_start(text, from) {
                        cut = cut.min(p);
                    }
                }
                found
            }
            None => Vec::new(),
        };
        // Never cut inside an edit, nor right after a blocked term that only the next
        // char kept from matching (the emitted text would end with the term).
        let masks = hits.iter().filter(|h| {
            self.lexicon
                .as_ref()
                .is_some_and(|l| l.action(**h) == Action::Mask)
        });
        let spans: Vec<(usize, usize)> = masks
            .map(|h| (h.start, h.end))
            .chain(pii.iter().map(|m| (m.start, m.end)))
            .collect();
        loop {
            let before = cut;
            for &(s, e) in &spans {
                if s < cut && cut < e {
                    cut = s;
                }
            }
            for h in &sensitive {
                if h.end == cut {
                    cut = h.start;
                }
            }
            if cut == before {
                break;
            }
        }
        let mut edits = Vec::new();
        if let Some(lex) = &self.lexicon {
            for h in hits.iter().filter(|h| h.start < cut) {
                if lex.action(*h) == Action::Mask {
                    let n = text[h.start..h.end].chars().count();
                    edits.push(Edit {
                        start: h.start - from,
                        end: h.end - from,
                        text: "*".repeat(n),
                    });
                }
                let mut m = lex.to_match(*h);
                m.start += self.base;
                m.end += self.base;
                self.matches.push(m);
            }
        }
        if let Some((_, redactor)) = &self.pii {
            let done: Vec<_> = pii
                .into_iter()
                .filter(|m| m.end <= cut)
                .map(|mut m| {
                    m.start -= from;
                    m.end -= from;
                    m
                })
                .collect();
            let released = &text[from..cut];
            edits.extend(redactor.edits(released, &done, &mut self.scratch, &mut self.redactions));
        }
        let mut out = apply_edits(&text[from..cut], edits);
        // Keep the last emitted chars as context for the next round: one for word edges,
        // more for PII context words.
        let keep = if self.pii.is_some() { PII_CONTEXT } else { 1 };
        let ctx_start = text[..cut]
            .char_indices()
            .rev()
            .nth(keep - 1)
            .map_or(0, |(i, _)| i);
        self.base += ctx_start;
        self.ctx = cut - ctx_start;
        self.pending.drain(..ctx_start);
        if let Some(r) = &mut self.restorer {
            out = r.push(&out);
        }
        StreamEvent::Text(out)
    }
}
