//! The streaming filter never emits a blocked term, whatever the chunking, and loses
//! nothing from allowed text.

use std::sync::Arc;

use llmedge::safety::{
    Action, Lexicon, Normalizer, Safety, SafetyPolicy, StreamEvent, StreamFilter, TermSpec,
};
use proptest::prelude::*;

fn block_lexicon() -> Arc<Lexicon> {
    let terms = ["炸药", "制造炸弹", "bomb", "pipe bomb", "冰毒", "ab"]
        .iter()
        .map(|t| TermSpec {
            term: t.to_string(),
            category: "test".into(),
            action: Action::Block,
        })
        .chain(std::iter::once(TermSpec {
            term: "casino".into(),
            category: "gambling".into(),
            action: Action::Flag,
        }))
        .collect();
    Arc::new(Lexicon::from_terms(terms, Normalizer::new(true)).unwrap())
}

/// Runs `text` through a fresh filter in the given chunks; returns (emitted, blocked).
fn run(filter: &mut StreamFilter, chunks: &[&str]) -> (String, bool) {
    let mut out = String::new();
    for c in chunks {
        match filter.push(c) {
            StreamEvent::Text(t) => out.push_str(&t),
            StreamEvent::Blocked { .. } => return (out, true),
        }
    }
    match filter.finish() {
        StreamEvent::Text(t) => out.push_str(&t),
        StreamEvent::Blocked { .. } => return (out, true),
    }
    (out, false)
}

/// Checks the stream invariants for one chunking of `text`.
fn check(lex: &Arc<Lexicon>, text: &str, chunks: &[&str]) {
    let blocked_full = lex.scan(text).iter().any(|m| m.action == Action::Block);
    let mut f = StreamFilter::new(Some(lex.clone()), "blocked");
    let (emitted, blocked) = run(&mut f, chunks);
    let leaked: Vec<_> = lex
        .scan(&emitted)
        .into_iter()
        .filter(|m| m.action == Action::Block)
        .collect();
    assert!(
        leaked.is_empty(),
        "{text:?} as {chunks:?} leaked {leaked:?} in {emitted:?}"
    );
    assert_eq!(blocked, blocked_full, "{text:?} as {chunks:?}");
    if blocked {
        assert!(
            text.starts_with(&emitted),
            "{text:?} as {chunks:?}: {emitted:?}"
        );
    } else {
        assert_eq!(emitted, text, "{text:?} as {chunks:?}");
    }
}

/// Every way to cut `text` at char boundaries.
fn all_splits(lex: &Arc<Lexicon>, text: &str) {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
    assert!(bounds.len() <= 12, "too long for the exhaustive loop");
    for mask in 0u32..(1 << bounds.len()) {
        let mut chunks = Vec::new();
        let mut at = 0;
        for (k, &b) in bounds.iter().enumerate() {
            if mask & (1 << k) != 0 {
                chunks.push(&text[at..b]);
                at = b;
            }
        }
        chunks.push(&text[at..]);
        check(lex, text, &chunks);
    }
}

const PIECES: &[&str] = &[
    "炸", "药", "藥", " ", "*", "b", "o", "m", "a", "\u{200b}", "x", "。", "冰", "毒", "p", "i",
    "e", "Ｂ", "，", "-", "制造", "彈", "casino",
];

#[test]
fn exhaustive_splits_of_short_texts() {
    let lex = block_lexicon();
    for text in [
        "说炸 药吧",
        "a b.o.m.b!",
        "bombastic",
        "xbomb x",
        "I am a nurse",
        "pipe  bomb?",
        "制造炸彈吗",
        "冰\u{200b}毒。",
        "炸，药。",
        "Ｂｏｍｂ",
        "a b c",
        "bomb",
        "abomb",
    ] {
        all_splits(&lex, text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn random_texts_and_chunkings(
        pieces in prop::collection::vec(prop::sample::select(PIECES), 0..14),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let lex = block_lexicon();
        let text: String = pieces.concat();
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let mut points: Vec<usize> = if bounds.is_empty() {
            Vec::new()
        } else {
            cuts.iter().map(|c| bounds[c.index(bounds.len())]).collect()
        };
        points.sort_unstable();
        points.dedup();
        let mut chunks = Vec::new();
        let mut at = 0;
        for p in points {
            chunks.push(&text[at..p]);
            at = p;
        }
        chunks.push(&text[at..]);
        check(&lex, &text, &chunks);
        // One char per chunk, the usual token case.
        let singles: Vec<&str> = text.char_indices().map(|(i, c)| &text[i..i + c.len_utf8()]).collect();
        check(&lex, &text, &singles);
    }
}

#[test]
fn masks_and_pii_in_stream_match_the_whole_text_result() {
    let policy_text = format!(
        "[lexicon]\nbuiltin = []\nfiles = [{:?}]\n[pii]\noutput_action = \"mask\"\n",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/safety/test_lexicon.toml"
        )
    );
    let safety = Safety::new(SafetyPolicy::from_toml_str(&policy_text).unwrap()).unwrap();
    for text in [
        "what the fuck, call 13812345678 now",
        "患者张三的手机是+86 138-1234-5678，邮箱 zs@example.com。",
        "身份证11010519491231002X已登记，傻逼",
    ] {
        let whole = safety.check_output(text).text;
        assert!(
            !whole.contains("fuck") && !whole.contains("12345678"),
            "{whole}"
        );
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for (k, &a) in bounds.iter().enumerate() {
            let b = bounds[(k * 7 + 3) % bounds.len()].max(a);
            let mut f = safety.output_filter(None);
            let (out, blocked) = run(&mut f, &[&text[..a], &text[a..b], &text[b..]]);
            assert!(!blocked);
            assert_eq!(out, whole, "split at {a},{b}");
        }
        let mut f = safety.output_filter(None);
        let singles: Vec<&str> = text
            .char_indices()
            .map(|(i, c)| &text[i..i + c.len_utf8()])
            .collect();
        assert_eq!(run(&mut f, &singles).0, whole);
    }
}
