//! Obfuscated lexicon hits and hard negatives; spans point into the original text.

use super::common;

#[test]
fn obfuscated_terms_match_and_prose_does_not() {
    let lex = common::test_lexicon();
    let mut wrong = Vec::new();
    for row in common::tsv("lexicon_corpus.tsv") {
        let (text, expected) = (&row[0], &row[1]);
        let found = lex.scan(text);
        let terms: Vec<&str> = found.iter().map(|m| m.term.as_str()).collect();
        let ok = if expected == "-" {
            found.is_empty()
        } else {
            terms.contains(&expected.as_str())
        };
        for m in &found {
            // Spans are char boundaries of the original and start/end on content.
            assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            assert!(m.start < m.end);
        }
        if !ok {
            wrong.push(format!("{text:?}: expected {expected:?}, got {terms:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn spans_are_in_the_original_text() {
    let lex = common::test_lexicon();
    let text = "先说点别的。然后 炸\u{200b} * 藥 的做法";
    let m = &lex.scan(text)[0];
    assert_eq!(&text[m.start..m.end], "炸\u{200b} * 藥");
    assert_eq!(m.category, "weapons");
    let text = "ＢＯＭＢ!";
    let m = &lex.scan(text)[0];
    assert_eq!((m.start, m.end), (0, "ＢＯＭＢ".len()));
}
