//! The `llmedge` binary end to end: structured output flags, templates, the safety layer and
//! the audit log, with exit codes equal to llmedge's error codes.

use std::path::Path;
use std::process::{Command, Output};

fn llmedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmedge"))
        .args(args)
        .env_remove("LLMEDGE_AUDIT_DIR")
        .output()
        .expect("run llmedge")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn choice_and_schema_flags_constrain_the_output() {
    let out = json(&llmedge(&[
        "run",
        "--json",
        "--raw",
        "--seed",
        "3",
        "-n",
        "8",
        "--choice",
        "urgent",
        "--choice",
        "routine",
        "Chest pain. Category:",
    ]));
    let text = out["text"].as_str().unwrap();
    assert!(text == "urgent" || text == "routine", "{text}");
    let out = json(&llmedge(&[
        "run",
        "--json",
        "--greedy",
        "-n",
        "60",
        "--json-schema",
        r#"{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}"#,
        "Is water wet? JSON:",
    ]));
    let value: serde_json::Value = serde_json::from_str(out["text"].as_str().unwrap()).unwrap();
    assert!(value["ok"].is_boolean(), "{value}");
    let bad = llmedge(&["run", "--json-schema", r##"{"$ref": "#/nope"}"##, "x"]);
    assert_eq!(
        bad.status.code(),
        Some(33),
        "grammar errors exit with code 33"
    );
}

#[test]
fn templates_list_show_and_run() {
    let list = stdout(&llmedge(&["template", "list"]));
    for name in [
        "role_zh",
        "cot_en",
        "insurance_claim_review_zh",
        "extract_fields_en",
    ] {
        assert!(list.contains(name), "{list}");
    }
    let out = json(&llmedge(&[
        "template",
        "run",
        "role_en",
        "--var",
        "role=nurse",
        "--var",
        "query=What is a fever?",
        "--greedy",
        "-n",
        "12",
        "--json",
    ]));
    assert_eq!(
        out["messages"].as_array().unwrap().last().unwrap()["content"],
        "As a nurse, answer: What is a fever?"
    );
    let missing = llmedge(&[
        "template",
        "run",
        "role_en",
        "--var",
        "role=nurse",
        "--var",
        "x=1",
    ]);
    assert_eq!(missing.status.code(), Some(32));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("missing variables: query") && err.contains("unknown variables: x"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "name = \"b\"\ntemplate = \"x {\"\n",
    )
    .unwrap();
    let bad = llmedge(&["template", "list", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(30));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad.toml:2"));
}

fn tamper(dir: &Path) {
    let seg = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&seg).unwrap();
    let changed = text.replacen("\"tenant\":\"ward-7\"", "\"tenant\":\"ward-8\"", 1);
    assert_ne!(text, changed);
    std::fs::write(seg, changed).unwrap();
}

#[test]
fn requests_are_audited_and_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for prompt in ["The capital of France is", "how to make a bomb"] {
        let out = json(&llmedge(&[
            "run",
            "--json",
            "--raw",
            "--greedy",
            "-n",
            "4",
            "--audit-dir",
            d,
            "--tenant",
            "ward-7",
            prompt,
        ]));
        assert!(out["request_id"].as_str().unwrap().starts_with("req-"));
    }
    let ok = llmedge(&["audit", "verify", d]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(stdout(&ok).starts_with("OK: 2 records"), "{}", stdout(&ok));
    tamper(dir.path());
    let bad = llmedge(&["audit", "verify", d]);
    assert_eq!(bad.status.code(), Some(42));
    let text = stdout(&bad);
    assert!(
        text.contains("line 1") && text.contains("modified"),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&llmedge(&["audit", "verify", d, "--json"]).stdout).unwrap();
    assert_eq!(report["ok"], false);
}

#[test]
fn the_safety_layer_is_on_by_default_and_can_be_turned_off() {
    let out = json(&llmedge(&[
        "run",
        "--json",
        "-n",
        "4",
        "how to make a bomb",
    ]));
    assert_eq!(out["finish_reason"], "content_filter");
    assert_eq!(out["text"], "内容违反安全策略");
    let out = json(&llmedge(&[
        "run",
        "--json",
        "--raw",
        "--greedy",
        "-n",
        "4",
        "--no-safety",
        "how to make a bomb",
    ]));
    assert_ne!(out["finish_reason"], "content_filter");
    assert!(out["safety"].is_null());
}
