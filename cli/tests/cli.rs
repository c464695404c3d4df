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

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/cache/fixtures")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make fixtures`",
        p.display()
    );
    p.display().to_string()
}

#[test]
fn lora_flags_tools_and_eval_table() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixture("lora/lora_smollm2_a.gguf");
    let f16 = fixture("smollm2-f16.gguf");
    let prompt = "A radiology report should describe";
    let run = |extra: &[&str], model: &str| {
        let mut args = vec![
            "run",
            "--json",
            "--raw",
            "--greedy",
            "--no-safety",
            "-n",
            "16",
            "-m",
            model,
        ];
        args.extend_from_slice(extra);
        args.push(prompt);
        json(&llmedge(&args))["text"].as_str().unwrap().to_owned()
    };
    let bare = run(&[], &f16);
    let with_lora = run(&["--lora", &a], &f16);
    assert_ne!(bare, with_lora);
    assert_eq!(
        run(&["--lora", &format!("{a}:0")], &f16),
        bare,
        "scale 0 is the bare model"
    );

    // merge → the merged model answers like the runtime adapter.
    let merged = tmp.path().join("merged.gguf").display().to_string();
    let report = json(&llmedge(&[
        "lora", "merge", "--json", "--base", &f16, "--lora", &a, "-o", &merged,
    ]));
    assert_eq!(report["merged_tensors"], 60);
    assert_eq!(run(&[], &merged), with_lora);

    // Wrong adapters exit with the adapter code (15); quantize refuses requantizing (1).
    let bad = llmedge(&[
        "run",
        "--raw",
        "-n",
        "2",
        "--lora",
        &fixture("lora/lora_gemma3_arch.gguf"),
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(15));
    let q = tmp.path().join("q.gguf").display().to_string();
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    let refused = llmedge(&["quantize", "--type", "Q8_0", model.to_str().unwrap(), &q]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let report = json(&llmedge(&[
        "quantize", "--json", "--type", "Q8_0", &f16, &q,
    ]));
    assert_eq!(report["file_type"], "Q8_0");

    // PEFT import → an adapter the runtime accepts.
    let imported = tmp.path().join("peft.gguf").display().to_string();
    let report = json(&llmedge(&[
        "lora",
        "import",
        "--json",
        &fixture("lora/peft_smollm2_r8"),
        "--base",
        &f16,
        "-o",
        &imported,
    ]));
    assert_eq!(report["rank"], 8);
    assert_ne!(run(&["--lora", &imported], &f16), bare);

    // eval: one row per variant, each measured in its own process.
    let table = tmp.path().join("eval.md");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = llmedge(&[
        "eval",
        "--variant",
        &format!("base={f16}"),
        "--variant",
        &format!("runtime={f16}+{a}"),
        "--variant",
        &format!("merged={merged}"),
        "--variant",
        &format!("q8={q}"),
        "--ppl",
        root.join("tests/data/eval/ppl_en.txt").to_str().unwrap(),
        "--ctx",
        "128",
        "--chunks",
        "2",
        "--tasks",
        root.join("tests/data/eval/tasks_en.jsonl")
            .to_str()
            .unwrap(),
        "--speed-tokens",
        "8",
        "-o",
        table.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&table).unwrap();
    assert!(
        text.starts_with(
            "| variant | adapter params | file size | peak RSS | accuracy | perplexity | tok/s |"
        ),
        "{text}"
    );
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[1].starts_with("| runtime | 460800 |"), "{text}");
    // The merged model and the runtime adapter score the same perplexity (to 2 decimals).
    let ppl = |row: &str| {
        row.split('|')
            .nth(6)
            .unwrap()
            .split('±')
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    let (runtime_ppl, merged_ppl): (f64, f64) =
        (ppl(rows[1]).parse().unwrap(), ppl(rows[2]).parse().unwrap());
    assert!(
        (runtime_ppl - merged_ppl).abs() / runtime_ppl < 0.005,
        "{text}"
    );
    assert_eq!(stdout(&out).trim(), text.trim());
}

#[test]
fn manifests_are_signed_verified_and_enforced() {
    let fetched = json(&llmedge(&["fetch", "--json"]));
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let (model, manifest, key, pubkey) =
        (p("model.gguf"), p("manifest.toml"), p("key"), p("key.pub"));
    std::fs::copy(fetched["path"].as_str().unwrap(), &model).unwrap();

    assert!(llmedge(&["manifest", "create", &model, "-o", &manifest])
        .status
        .success());
    assert!(llmedge(&["manifest", "keygen", "--out", &key])
        .status
        .success());
    assert!(llmedge(&["manifest", "sign", &manifest, "--key", &key])
        .status
        .success());
    let report = json(&llmedge(&[
        "--json", "manifest", "verify", &manifest, "--pubkey", &pubkey,
    ]));
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["signature"]["status"], "valid", "{report}");

    // Loading through the verified manifest works.
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--raw",
            "--greedy",
            "-n",
            "2",
            "--no-safety",
            "-m",
            &model,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--manifest", &manifest, "--pubkey", &pubkey, "Hello"]);
        llmedge(&args)
    };
    assert!(run(&[]).status.success());

    // One byte changed: verify lists the file and exits 16; run refuses it and audits that.
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[4096] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let out = llmedge(&["manifest", "verify", &manifest, "--pubkey", &pubkey]);
    assert_eq!(out.status.code(), Some(16));
    assert!(
        stdout(&out).contains("FAILED  model.gguf: tampered"),
        "{}",
        stdout(&out)
    );
    let audit = p("audit");
    let out = run(&["--audit-dir", &audit]);
    assert_eq!(out.status.code(), Some(16));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tampered"));
    let segment = std::fs::read_to_string(tmp.path().join("audit/audit-000001.jsonl")).unwrap();
    assert!(
        segment.contains("\"finish_reason\":\"refused:model_integrity\""),
        "{segment}"
    );
    assert!(llmedge(&["audit", "verify", &audit]).status.success());

    // A manifest edited after signing fails its signature.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("size = ", "size = 1")).unwrap();
    let out = llmedge(&["manifest", "verify", &manifest, "--pubkey", &pubkey]);
    assert_eq!(out.status.code(), Some(16));
    assert!(
        stdout(&out).contains("signature: INVALID"),
        "{}",
        stdout(&out)
    );
}

/// `llmedge route`: the rules without a model, the classifier stage on the default model,
/// and a bad file's line in the message (exit code 73, config).
#[test]
fn route_shows_where_a_request_goes() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[routes]]\nname = \"finance\"\nmodel = \"base\"\nkeywords = [\"invoice\"]\n\
         adapters = [{ name = \"fin\", scale = 0.5 }]\n\
         [[routes]]\nname = \"medical\"\nmodel = \"base\"\n[router.classifier]\nmodel = \"base\"\n",
    )
    .unwrap();
    let path = routes.to_str().unwrap();
    let d = json(&llmedge(&["route", "--json", path, "an invoice"]));
    assert_eq!(d["route"], "finance");
    assert_eq!(
        (d["rule"].as_str(), d["matched"].as_str()),
        (Some("keyword"), Some("invoice"))
    );
    assert_eq!(d["adapters"][0]["scale"], 0.5);
    let d = json(&llmedge(&[
        "route", "--json", path, "hi", "--model", "medical",
    ]));
    assert_eq!(d["rule"], "model");
    let d = json(&llmedge(&[
        "route",
        "--json",
        path,
        "What dose of ibuprofen is safe for a child?",
    ]));
    assert_eq!(d["rule"], "classifier");
    assert!(d["route"] == "finance" || d["route"] == "medical", "{d}");
    let text = stdout(&llmedge(&["route", path, "an invoice"]));
    assert_eq!(
        text.trim(),
        "route finance → model base + fin:0.5 (keyword \"invoice\")"
    );

    std::fs::write(
        &routes,
        "[[routes]]\nname = \"a\"\nmodel = \"m\"\ncolour = 1\n",
    )
    .unwrap();
    let bad = llmedge(&["route", path, "x"]);
    assert_eq!(bad.status.code(), Some(73));
    assert!(String::from_utf8_lossy(&bad.stderr).contains(":4"));
}
