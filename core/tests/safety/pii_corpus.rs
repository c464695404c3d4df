//! Precision and recall of PII detection per kind on the labelled corpus.

use super::common;

use std::collections::BTreeMap;

use llmedge::safety::{PiiConfig, PiiDetector, PiiKind};

#[derive(Default)]
struct Score {
    tp: u32,
    fp: u32,
    fn_: u32,
    positives: u32,
    negatives: u32,
}

#[test]
fn pii_precision_and_recall_per_kind() {
    let detector = PiiDetector::new(&PiiConfig::default()).unwrap();
    let mut scores: BTreeMap<PiiKind, Score> = BTreeMap::new();
    let mut misses = Vec::new();
    for row in common::tsv("pii_corpus.tsv") {
        let (kind, text, expected) = (PiiKind::from_name(&row[0]).unwrap(), &row[1], &row[2]);
        let found = detector.detect(text);
        let s = scores.entry(kind).or_default();
        if expected == "-" {
            s.negatives += 1;
        } else {
            s.positives += 1;
            if found
                .iter()
                .any(|m| m.kind == kind && &text[m.start..m.end] == expected)
            {
                s.tp += 1;
            } else {
                s.fn_ += 1;
                misses.push(format!(
                    "MISS {kind:?}: {text:?} expected {expected:?}, got {found:?}"
                ));
            }
        }
        // Any other detection, of any kind, in any row is a false positive of its kind.
        for m in &found {
            if !(m.kind == kind && &text[m.start..m.end] == expected) {
                scores.entry(m.kind).or_default().fp += 1;
                misses.push(format!(
                    "FP {:?}: {text:?} -> {:?}",
                    m.kind,
                    &text[m.start..m.end]
                ));
            }
        }
    }
    println!(
        "{:<16} {:>4} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "kind", "pos", "neg", "tp", "fp", "precision", "recall"
    );
    let mut failures = Vec::new();
    for (kind, s) in &scores {
        let precision = f64::from(s.tp) / f64::from((s.tp + s.fp).max(1));
        let recall = f64::from(s.tp) / f64::from(s.positives.max(1));
        println!(
            "{:<16} {:>4} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
            kind.name(),
            s.positives,
            s.negatives,
            s.tp,
            s.fp,
            precision,
            recall
        );
        assert!(
            s.positives >= 15 && s.negatives >= 10,
            "{kind:?}: corpus too small"
        );
        // Checksummed kinds: every valid number found, (almost) nothing else.
        let (min_p, min_r) = match kind {
            PiiKind::IdCard | PiiKind::BankCard => (0.99, 1.0),
            PiiKind::Name | PiiKind::Address => (0.85, 0.85),
            _ => (0.9, 0.9),
        };
        if precision < min_p || recall < min_r {
            failures.push(format!(
                "{kind:?}: precision {precision:.3} recall {recall:.3}"
            ));
        }
    }
    for m in &misses {
        println!("{m}");
    }
    assert!(failures.is_empty(), "below threshold: {failures:?}");
}
