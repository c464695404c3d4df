//! Throughput of the safety layer. Run with
//! `cargo run --release -j1 --example safety_bench`; prints one JSON object. Scans are
//! repeated and the best run is reported (the machine may be shared).
//!
//! `safety_bench scan [N] [ascii|obfuscated]` only runs the full lexicon scan N times (default 20), for
//! profilers (`perf stat -e cycles:u,instructions:u target/release/examples/safety_bench scan`).

use std::sync::Arc;
use std::time::Instant;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use llmedge::safety::{
    Action, Lexicon, Normalizer, PiiConfig, PiiDetector, Safety, SafetyPolicy, StreamEvent,
    StreamFilter, TermSpec,
};

/// Deterministic xorshift so every run scans the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The 3,000 Han chars the text draws from (a contiguous slice of the common block).
fn han(rng: &mut Rng) -> char {
    char::from_u32(0x4E00 + rng.below(3000) as u32).unwrap_or('中')
}

fn word(rng: &mut Rng, min: usize) -> String {
    let len = min + rng.below(6);
    (0..len)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

fn terms(rng: &mut Rng) -> Vec<TermSpec> {
    (0..10_000)
        .map(|i| {
            let term = if i % 2 == 0 {
                (0..2 + rng.below(3)).map(|_| han(rng)).collect()
            } else {
                let w = word(rng, 5);
                if i % 10 == 1 {
                    format!("{w} {}", word(rng, 3))
                } else {
                    w
                }
            };
            TermSpec {
                term,
                category: format!("c{}", i % 14),
                action: if i % 3 == 0 {
                    Action::Flag
                } else {
                    Action::Block
                },
            }
        })
        .collect()
}

/// Mixed Chinese/English prose with punctuation, numbers and the odd full-width char.
fn text(rng: &mut Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 64);
    while s.len() < bytes {
        if rng.below(2) == 0 {
            for _ in 0..8 + rng.below(20) {
                s.push(han(rng));
            }
            s.push_str(["，", "。", "、", "！"][rng.below(4)]);
        } else {
            for _ in 0..4 + rng.below(12) {
                s.push_str(&word(rng, 2));
                s.push(' ');
            }
            if rng.below(4) == 0 {
                s.push_str(&format!("{} ", rng.next() % 100_000));
            }
            s.push_str(". ");
        }
    }
    s
}

/// Obfuscated text: separators between the chars of every Han run and inside words.
fn obfuscate(text: &str) -> String {
    text.chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = (i % 7 == 3).then_some(if c.is_ascii() { '.' } else { '*' });
            std::iter::once(c).chain(sep)
        })
        .collect()
}

/// Best throughput over a few runs, and the last run's result.
fn mb_per_s(bytes: usize, f: impl FnMut() -> usize) -> (f64, usize) {
    let (wall, _, n) = timed(bytes, RUNS, f);
    (wall, n)
}

/// Best wall-clock and best on-CPU throughput (this thread's run time from
/// /proc/thread-self/schedstat, 0 where unavailable) over `runs` runs.
fn timed(bytes: usize, runs: usize, mut f: impl FnMut() -> usize) -> (f64, f64, usize) {
    let (mut wall, mut cpu) = (0f64, 0f64);
    let mut n = 0;
    for _ in 0..runs {
        let c = cpu_ns();
        let t = Instant::now();
        n = f();
        wall = wall.max(bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (c, cpu_ns()) {
            cpu = cpu.max(bytes as f64 * 1e3 / (b - a).max(1) as f64);
        }
    }
    (wall, cpu, n)
}

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

const RUNS: usize = 5;

fn main() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let specs = terms(&mut rng);
    let corpus = text(&mut rng, 20 * 1024 * 1024);

    let t = Instant::now();
    let lexicon = Lexicon::from_terms(specs.clone(), Normalizer::new(true)).expect("lexicon");
    let build_ms = t.elapsed().as_secs_f64() * 1e3;

    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("scan") {
        let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
        let corpus = match args.next().as_deref() {
            Some("ascii") => corpus.chars().filter(char::is_ascii).collect(),
            Some("obfuscated") => obfuscate(&corpus),
            _ => corpus,
        };
        let (mb_s, _, hits) = timed(corpus.len(), n, || lexicon.scan(&corpus).len());
        println!(
            "{n} scans of {} bytes, {hits} hits, best {mb_s:.1} MB/s",
            corpus.len()
        );
        return;
    }

    // Baseline: the same terms, raw, over the raw text (no normalisation at all).
    let raw = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .build(specs.iter().map(|s| s.term.as_str()))
        .expect("raw automaton");
    let (raw_mbs, raw_cpu, raw_hits) = timed(corpus.len(), RUNS, || {
        raw.find_overlapping_iter(&corpus).count()
    });
    // What aho-corasick picks by itself, leftmost-longest (non-overlapping, with prefilter).
    let auto = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(specs.iter().map(|s| s.term.as_str()))
        .expect("raw automaton");
    let (auto_mbs, _) = mb_per_s(corpus.len(), || auto.find_iter(&corpus).count());

    // Full pipeline: normalisation (t2s on) + matching + original-span mapping + checks.
    // Floor for any char-level scanner on this machine: one UTF-8 decode and one 64K-entry
    // table lookup per char (10 passes, so the CPU clock's tick does not matter).
    let char_table: Vec<u32> = (0..0x10000u32)
        .map(|c| c.wrapping_mul(0x9E37_79B9))
        .collect();
    let (_, char_loop_cpu, _) = timed(corpus.len() * 10, RUNS, || {
        (0..10)
            .map(|_| {
                corpus
                    .chars()
                    .fold(0u32, |a, c| a ^ char_table[c as usize & 0xFFFF]) as usize
            })
            .sum()
    });
    let (norm_mbs, norm_cpu, norm_hits) = timed(corpus.len(), RUNS, || lexicon.scan(&corpus).len());
    let ascii: String = corpus.chars().filter(char::is_ascii).collect();
    let (ascii_mbs, ascii_cpu, _) = timed(ascii.len(), RUNS, || lexicon.scan(&ascii).len());
    let no_t2s = Lexicon::from_terms(specs.clone(), Normalizer::new(false)).expect("lexicon");
    let (no_t2s_mbs, no_t2s_cpu, _) = timed(corpus.len(), RUNS, || no_t2s.scan(&corpus).len());
    let obfuscated = obfuscate(&corpus);
    let (obf_mbs, obf_cpu, _) = timed(obfuscated.len(), RUNS, || lexicon.scan(&obfuscated).len());

    // PII over 4 MB with items sprinkled in.
    let mut pii_text = text(&mut rng, 4 * 1024 * 1024);
    for (i, item) in [
        "患者张三的手机13812345678，",
        "身份证11010519491231002X。",
        "email alice@example.com ",
        "卡号6222021234567890123 ",
        "IP 192.168.1.10 ",
        "地址北京市朝阳区建国路88号。",
    ]
    .iter()
    .cycle()
    .take(3000)
    .enumerate()
    {
        let at = (i * 1399) % pii_text.len();
        let at = (at..pii_text.len())
            .find(|&k| pii_text.is_char_boundary(k))
            .unwrap_or(0);
        pii_text.insert_str(at, item);
    }
    let detector = PiiDetector::new(&PiiConfig::default()).expect("detector");
    let (pii_mbs, pii_hits) = mb_per_s(pii_text.len(), || detector.detect(&pii_text).len());
    let safety = Safety::new(SafetyPolicy::default()).expect("safety");
    let (redact_mbs, _) = mb_per_s(pii_text.len(), || safety.check_output(&pii_text).text.len());

    // Streaming: 4-char tokens.
    let stream_text: String = text(&mut rng, 256 * 1024);
    let chars: Vec<char> = stream_text.chars().collect();
    let tokens: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    let per_token = |mut f: StreamFilter| {
        let t = Instant::now();
        let mut out = 0;
        for tok in &tokens {
            if let StreamEvent::Text(s) = f.push(tok) {
                out += s.len();
            }
        }
        if let StreamEvent::Text(s) = f.finish() {
            out += s.len();
        }
        (t.elapsed().as_nanos() as f64 / tokens.len() as f64, out)
    };
    let builtin =
        Safety::new(SafetyPolicy::from_toml_str("[pii]\nenabled = false\n").expect("policy"))
            .expect("safety");
    let (lex_ns, _) = per_token(builtin.output_filter(None));
    // All 10,000 terms as flags, so the stream is not cut short by a block.
    let flags = specs
        .into_iter()
        .map(|s| TermSpec {
            action: Action::Flag,
            ..s
        })
        .collect();
    let flags = Lexicon::from_terms(flags, Normalizer::new(true)).expect("lexicon");
    let (big_ns, _) = per_token(StreamFilter::new(Some(Arc::new(flags)), "blocked"));
    let (full_ns, _) = per_token(safety.output_filter(None));

    let report = serde_json::json!({
        "lexicon_terms": 10_000,
        "lexicon_build_ms": build_ms,
        "scan_bytes": corpus.len(),
        "scan_raw_ac_mb_s": raw_mbs,
        "scan_raw_ac_hits": raw_hits,
        "scan_raw_ac_auto_kind": format!("{:?}", auto.kind()),
        "scan_raw_ac_auto_leftmost_longest_mb_s": auto_mbs,
        "scan_raw_ac_cpu_mb_s": raw_cpu,
        "floor_char_decode_table_loop_cpu_mb_s": char_loop_cpu,
        "scan_normalised_mb_s": norm_mbs,
        "scan_normalised_cpu_mb_s": norm_cpu,
        "scan_normalised_no_t2s_mb_s": no_t2s_mbs,
        "scan_normalised_no_t2s_cpu_mb_s": no_t2s_cpu,
        "scan_normalised_ascii_only_mb_s": ascii_mbs,
        "scan_normalised_ascii_only_cpu_mb_s": ascii_cpu,
        "scan_normalised_obfuscated_mb_s": obf_mbs,
        "scan_normalised_obfuscated_cpu_mb_s": obf_cpu,
        "scan_normalised_hits": norm_hits,
        "pii_bytes": pii_text.len(),
        "pii_detect_mb_s": pii_mbs,
        "pii_detect_items": pii_hits,
        "pii_check_output_mb_s": redact_mbs,
        "stream_tokens": tokens.len(),
        "stream_ns_per_token_builtin_lexicon": lex_ns,
        "stream_ns_per_token_10k_lexicon": big_ns,
        "stream_ns_per_token_builtin_lexicon_and_pii": full_ns,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
