//! Chat-template conformance: our minijinja renderer (and llama.cpp's native renderer as
//! wired by llmedge) against two references.
//!
//! 1. llama.cpp's own chat-template tests (`tests/test-chat-template.cpp`,
//!    `main_automated_tests`), parsed into `fixtures/chat_templates/llama_cpp_cases.json`:
//!    our Jinja rendering must equal llama.cpp's Jinja-path expectation and
//!    `render_native` must equal its native-renderer expectation.
//! 2. A corpus of widely used templates (Llama 3.x, Qwen2.5, Gemma 2/3, Mistral, Phi,
//!    DeepSeek, ChatML, SmolLM) rendered by Jinja2 configured like Hugging Face
//!    transformers' `apply_chat_template` over four scenarios (system, multi-turn,
//!    tool call, assistant prefill): `fixtures/chat_templates/expected_jinja2.json`.
//!    Where llama.cpp recognises the template natively, its native rendering of the
//!    system and multi-turn scenarios is compared too.
//!
//! Fixtures are produced by `fixtures/chat_templates/generate.py`; see
//! `docs/chat-templates.md`. Every case that does not match must be listed in one of
//! the `KNOWN_*` tables below with a reason, and every listed case must still fail, so
//! the tables stay exact. Run with `--nocapture` to see the tables.

use std::collections::BTreeSet;
use std::path::PathBuf;

use llmedge::chat_template::render_native;
use llmedge::{ChatMessage, ChatTemplate, RenderOptions};
use serde_json::Value;

/// llama.cpp test cases our Jinja renderer does not reproduce: (case name, reason).
const KNOWN_UNSUPPORTED_LLAMA_CPP_JINJA: &[(&str, &str)] = &[];

/// llama.cpp test cases whose native rendering (through llmedge's `render_native`) does
/// not reproduce the test's `expected_output`: (case name, reason).
const KNOWN_UNSUPPORTED_LLAMA_CPP_NATIVE: &[(&str, &str)] = &[];

/// Corpus renderings that differ from the Jinja2 (transformers) reference:
/// ("template/scenario", reason).
const KNOWN_UNSUPPORTED_JINJA2: &[(&str, &str)] = &[];

/// Corpus templates llama.cpp's native renderer does not recognise: (template, note).
const NATIVE_UNRECOGNISED: &[(&str, &str)] = &[];

/// Native renderings that differ from the Jinja2 reference:
/// ("template/scenario", reason).
const KNOWN_NATIVE_VS_JINJA2_DIFFERENCES: &[(&str, &str)] = &[
    ("llama-3.1/system", LLAMA31_HEADER),
    ("llama-3.1/multi_turn", LLAMA31_HEADER),
    ("llama-3.2/system", LLAMA31_HEADER),
    ("llama-3.2/multi_turn", LLAMA31_HEADER),
    ("llama-3.3/system", LLAMA31_HEADER),
    ("llama-3.3/multi_turn", LLAMA31_HEADER),
    ("gemma-2/system", "native merges the system prompt with \"\\n\\n\", the Jinja polyfill with \"\\n\""),
    ("gemma-2/multi_turn", "native merges the system prompt with \"\\n\\n\", the Jinja polyfill with \"\\n\""),
    ("mistral-nemo/multi_turn", "the template puts the system prompt in the last user turn, native in the first"),
    ("mistral-small-3.2/system", MISTRAL_V7),
    ("mistral-small-3.2/multi_turn", MISTRAL_V7),
    ("deepseek-r1-distill-llama/system", DEEPSEEK_SYSTEM),
    ("deepseek-r1-distill-llama/multi_turn", DEEPSEEK_SYSTEM),
    ("deepseek-r1-distill-qwen/system", DEEPSEEK_SYSTEM),
    ("deepseek-r1-distill-qwen/multi_turn", DEEPSEEK_SYSTEM),
    ("deepseek-v3.1/system", DEEPSEEK_SYSTEM),
    ("deepseek-v3.1/multi_turn", "native adds \"\\n\\n\" after the system prompt and omits V3.1's \"<think></think>\" on past assistant turns"),
    ("smollm3/system", SMOLLM3_CHATML),
    ("smollm3/multi_turn", SMOLLM3_CHATML),
];

const LLAMA31_HEADER: &str =
    "native is plain Llama 3: no \"Cutting Knowledge Date / Today Date\" system header";
const MISTRAL_V7: &str =
    "llama.cpp detects mistral-v7 (\"[INST] \" with spaces); the template is v7-tekken (no spaces)";
const DEEPSEEK_SYSTEM: &str = "native adds \"\\n\\n\" after the system prompt";
const SMOLLM3_CHATML: &str =
    "native renders plain ChatML; the template adds its \"## Metadata\" system block";

/// Python-compatibility probes that differ from Jinja2: (probe, reason).
const KNOWN_UNSUPPORTED_PROBES: &[(&str, &str)] = &[
    (
        "percent_format",
        "no Python %-formatting of strings: minijinja's `%` is numeric only and has no operator hook",
    ),
    (
        "markup_concat_escapes",
        "Jinja2 HTML-escapes a str added to Markup (|safe); minijinja's `+` does not (no operator hook)",
    ),
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat_templates")
}

fn load_json(name: &str) -> Value {
    let path = fixtures().join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn messages_of(v: &Value) -> Vec<ChatMessage> {
    serde_json::from_value(v.clone()).expect("messages deserialize into ChatMessage")
}

/// A short, readable description of where two strings first differ.
fn diff(expected: &str, actual: &str) -> String {
    let at = expected
        .char_indices()
        .zip(actual.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(expected.len().min(actual.len()));
    let from = expected[..at]
        .char_indices()
        .rev()
        .nth(30)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let window = |s: &str| -> String { s[from.min(s.len())..].chars().take(90).collect() };
    format!(
        "first difference at byte {at}: expected {:?} got {:?}",
        window(expected),
        window(actual)
    )
}

/// Compare one rendering with its expectation.
fn compare(expected: &str, actual: llmedge::Result<String>) -> Result<(), String> {
    match actual {
        Ok(out) if out == expected => Ok(()),
        Ok(out) => Err(diff(expected, &out)),
        Err(e) => Err(format!("error: {e}")),
    }
}

/// Outcomes of one reference, checked against its `KNOWN_*` table.
struct Report {
    title: &'static str,
    rows: Vec<(String, Result<(), String>)>,
    skipped: Vec<(String, &'static str)>,
}

impl Report {
    fn new(title: &'static str) -> Report {
        Report {
            title,
            rows: Vec::new(),
            skipped: Vec::new(),
        }
    }

    fn push(&mut self, key: String, outcome: Result<(), String>) {
        self.rows.push((key, outcome));
    }

    /// Print the table and return the problems: unlisted failures, listed cases that
    /// now pass, and listed names that match no case.
    fn check(&self, known: &[(&str, &str)]) -> Vec<String> {
        let listed: BTreeSet<&str> = known.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            listed.len(),
            known.len(),
            "{}: duplicate entries",
            self.title
        );
        let mut problems = Vec::new();
        let (mut pass, mut unsupported) = (0, 0);
        println!("\n== {} ==", self.title);
        for (key, outcome) in &self.rows {
            let is_listed = listed.contains(key.as_str());
            let status = match (outcome, is_listed) {
                (Ok(()), false) => {
                    pass += 1;
                    "ok"
                }
                (Err(_), true) => {
                    unsupported += 1;
                    "known-unsupported"
                }
                (Err(why), false) => {
                    problems.push(format!("{}: {key}: unexpected mismatch: {why}", self.title));
                    "FAIL"
                }
                (Ok(()), true) => {
                    problems.push(format!(
                        "{}: {key}: listed as unsupported but now matches; remove it from the list",
                        self.title
                    ));
                    "FIXED?"
                }
            };
            match outcome {
                Err(why) => println!("  {status:<17} {key}  -- {why}"),
                Ok(()) => println!("  {status:<17} {key}"),
            }
        }
        for (key, why) in &self.skipped {
            println!("  {:<17} {key}  -- {why}", "skipped");
        }
        for name in &listed {
            if !self.rows.iter().any(|(k, _)| k == name) {
                problems.push(format!("{}: {name}: listed but no such case", self.title));
            }
        }
        println!(
            "  -> {} cases: {pass} match, {unsupported} known unsupported, {} problems",
            self.rows.len(),
            problems.len()
        );
        problems
    }
}

fn assert_no_problems(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} conformance problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn llama_cpp_test_cases() {
    let data = load_json("llama_cpp_cases.json");
    let conversation = messages_of(&data["conversation"]);
    let mut jinja = Report::new("llama.cpp test-chat-template.cpp, Jinja path");
    let mut native = Report::new("llama.cpp test-chat-template.cpp, native renderer");
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "only {} cases parsed", cases.len());
    for case in cases {
        let name = str_of(case, "name").to_owned();
        let template = str_of(case, "template");
        let mut messages = conversation.clone();
        messages.extend(messages_of(&case["extra_conversation"]));
        let expected_native = str_of(case, "expected_output");
        native.push(
            name.clone(),
            compare(expected_native, render_native(template, &messages, true)),
        );
        if case["supported_with_jinja"] == Value::Bool(false) {
            jinja
                .skipped
                .push((name, "llama.cpp's test skips its Jinja path too"));
            continue;
        }
        let expected = match str_of(case, "expected_output_jinja") {
            "" => expected_native,
            s => s,
        };
        let options = RenderOptions {
            add_generation_prompt: true,
            bos_token: str_of(case, "bos_token").to_owned(),
            eos_token: str_of(case, "eos_token").to_owned(),
            ..RenderOptions::default()
        };
        let out = ChatTemplate::Jinja(template.to_owned()).render_with(&messages, &options);
        jinja.push(name, compare(expected, out));
    }
    let mut problems = jinja.check(KNOWN_UNSUPPORTED_LLAMA_CPP_JINJA);
    problems.extend(native.check(KNOWN_UNSUPPORTED_LLAMA_CPP_NATIVE));
    assert_no_problems(problems);
}

struct Corpus {
    name: String,
    source: String,
}

fn corpus() -> Vec<Corpus> {
    let list = load_json("corpus.json");
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let path = fixtures().join(str_of(entry, "file"));
            Corpus {
                name: str_of(entry, "name").to_owned(),
                source: std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
            }
        })
        .collect()
}

fn records() -> Vec<Value> {
    load_json("expected_jinja2.json")["records"]
        .as_array()
        .unwrap()
        .clone()
}

fn options_of(record: &Value) -> RenderOptions {
    RenderOptions {
        add_generation_prompt: record["add_generation_prompt"].as_bool().unwrap(),
        continue_final_message: record["continue_final_message"].as_bool().unwrap(),
        tools: match &record["tools"] {
            Value::Null => None,
            tools => Some(tools.clone()),
        },
        bos_token: str_of(record, "bos_token").to_owned(),
        eos_token: str_of(record, "eos_token").to_owned(),
        extra_context: Some(record["extra_context"].clone()),
    }
}

/// With `LLMEDGE_CONFORMANCE_DUMP=DIR`, write each corpus rendering to `DIR/<template>__<scenario>.txt`
/// (for diffing against the fixtures).
fn dump(key: &str, out: &llmedge::Result<String>) {
    if let Some(dir) = std::env::var_os("LLMEDGE_CONFORMANCE_DUMP") {
        let text = match out {
            Ok(s) => s.clone(),
            Err(e) => format!("ERROR: {e}"),
        };
        let path = PathBuf::from(dir).join(format!("{}.txt", key.replace('/', "__")));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

#[test]
fn corpus_matches_jinja2_reference() {
    let corpus = corpus();
    let records = records();
    assert_eq!(records.len(), corpus.len() * 4);
    let mut report = Report::new("corpus vs Jinja2 (transformers apply_chat_template)");
    for record in &records {
        let name = str_of(record, "template");
        let key = format!("{name}/{}", str_of(record, "scenario"));
        let source = &corpus.iter().find(|c| c.name == name).unwrap().source;
        let template = ChatTemplate::parse(source);
        let messages = messages_of(&record["messages"]);
        let out = template.and_then(|t| t.render_with(&messages, &options_of(record)));
        dump(&key, &out);
        let outcome = match (&record["expected"], out) {
            (Value::String(expected), out) => compare(expected, out),
            (Value::Null, Ok(out)) => Err(format!(
                "Jinja2 raised {:?} but we rendered {:?}",
                str_of(record, "error"),
                out.chars().take(80).collect::<String>()
            )),
            (Value::Null, Err(e)) => {
                let wanted = str_of(record, "error");
                if record["error_kind"] == "raise_exception" && !e.to_string().contains(wanted) {
                    Err(format!("expected error {wanted:?}, got {e}"))
                } else {
                    Ok(())
                }
            }
            (other, _) => panic!("bad expected value {other}"),
        };
        report.push(key, outcome);
    }
    assert_no_problems(report.check(KNOWN_UNSUPPORTED_JINJA2));
}

#[test]
fn corpus_native_renderer_matches_jinja2_reference() {
    let records = records();
    let mut report = Report::new("corpus: llama.cpp native renderer vs Jinja2");
    let mut unrecognised = Vec::new();
    for c in corpus() {
        let probe = [ChatMessage::system("S"), ChatMessage::user("U")];
        if let Err(e) = render_native(&c.source, &probe, true) {
            unrecognised.push((c.name.clone(), e.to_string()));
            continue;
        }
        for scenario in ["system", "multi_turn"] {
            let record = records
                .iter()
                .find(|r| r["template"] == c.name.as_str() && r["scenario"] == scenario)
                .unwrap();
            // llama.cpp's native renderer never writes BOS (tokenization adds it), so
            // compare without the leading bos_token of a template that prints it.
            let mut expected = str_of(record, "expected");
            if c.source.contains("bos_token") {
                expected = expected
                    .strip_prefix(str_of(record, "bos_token"))
                    .unwrap_or(expected);
            }
            let messages = messages_of(&record["messages"]);
            let agp = record["add_generation_prompt"].as_bool().unwrap();
            report.push(
                format!("{}/{scenario}", c.name),
                compare(expected, render_native(&c.source, &messages, agp)),
            );
        }
    }
    println!("\n== corpus templates llama.cpp's native renderer does not recognise ==");
    for (name, e) in &unrecognised {
        println!("  {name}  -- {e}");
    }
    let mut problems = report.check(KNOWN_NATIVE_VS_JINJA2_DIFFERENCES);
    let got: BTreeSet<&str> = unrecognised.iter().map(|(n, _)| n.as_str()).collect();
    let listed: BTreeSet<&str> = NATIVE_UNRECOGNISED.iter().map(|(n, _)| *n).collect();
    if got != listed {
        problems.push(format!(
            "NATIVE_UNRECOGNISED is stale: llama.cpp does not recognise {got:?}, listed {listed:?}"
        ));
    }
    assert_no_problems(problems);
}

#[test]
fn python_compat_probes_match_jinja2() {
    let data = load_json("expected_jinja2_probes.json");
    let mut report = Report::new("Python/Jinja2 compatibility probes");
    for record in data["records"].as_array().unwrap() {
        let name = str_of(record, "name").to_owned();
        let options = RenderOptions {
            extra_context: Some(record["context"].clone()),
            ..RenderOptions::default()
        };
        let messages = match &record["messages"] {
            Value::Null => Vec::new(),
            m => messages_of(m),
        };
        let out = ChatTemplate::parse(str_of(record, "template"))
            .and_then(|t| t.render_with(&messages, &options));
        let outcome = match (&record["expected"], out) {
            (Value::String(expected), out) => compare(expected, out),
            (Value::Null, Ok(out)) => Err(format!(
                "Jinja2 raised {:?} but we rendered {out:?}",
                str_of(record, "error")
            )),
            (Value::Null, Err(e)) => {
                let wanted = str_of(record, "error");
                if record["error_kind"] == "raise_exception" && !e.to_string().contains(wanted) {
                    Err(format!("expected error {wanted:?}, got {e}"))
                } else {
                    Ok(())
                }
            }
            (other, _) => panic!("bad expected value {other}"),
        };
        report.push(name, outcome);
    }
    assert_no_problems(report.check(KNOWN_UNSUPPORTED_PROBES));
}
