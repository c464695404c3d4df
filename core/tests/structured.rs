//! Structured output and prompt templates on the real default model: every constrained
//! output is checked by independent validators (the `jsonschema` crate, the `regex` crate).

use std::sync::OnceLock;

use llmedge::model_fetch::default_model_path;
use llmedge::{
    ErrorCode, GenerateOptions, Model, ModelOptions, OutputConstraint, Session, SessionOptions,
    TemplateLibrary, Variables,
};
use serde_json::{json, Value};

fn model() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = default_model_path(&mut |_| {}).expect("fetch default model");
            let options = ModelOptions {
                threads: 2,
                ..ModelOptions::default()
            };
            Model::load(path, options).expect("load")
        })
        .clone()
}

fn session() -> Session {
    Session::new(&model(), SessionOptions::default()).expect("session")
}

fn sampled(seed: u32, max_tokens: u32) -> GenerateOptions {
    GenerateOptions {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: Some(seed),
        max_tokens: Some(max_tokens),
        ..GenerateOptions::default()
    }
}

fn validate(schema: &Value, value: &Value) {
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{value} violates the schema: {errors:?}");
}

fn claim() -> Variables {
    json!({"claim": json!({
        "claim_id": "CLM-2024-0117",
        "diagnosis": "acute appendicitis, laparoscopic appendectomy",
        "policy_coverage": ["appendicitis", "fractures", "pneumonia"],
        "hospital_level": "tertiary (grade 3A)",
        "policy_min_hospital_level": "secondary"
    }).to_string()})
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn one_hundred_sampled_outputs_all_validate() {
    let schema = json!({
        "type": "object",
        "properties": {
            "patient_age": {"type": "integer", "minimum": 0, "maximum": 120},
            "triage": {"type": "string", "enum": ["urgent", "routine", "administrative"]},
            "symptoms": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 2},
            "follow_up": {"type": "boolean"},
            "ward": {"type": "string", "pattern": "^[A-Z][0-9]{2}$"}
        },
        "required": ["patient_age", "triage", "symptoms", "follow_up", "ward"],
        "additionalProperties": false
    });
    let mut s = session();
    let prompt =
        "Summarise the patient record as JSON.\nRecord: 67-year-old, chest pain, sweating.\nJSON: ";
    for seed in 0..100 {
        let out = s
            .generate_json(prompt, &schema, &sampled(seed, 120))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        validate(&schema, &out.value);
    }
}

#[test]
fn insurance_review_yields_a_schema_verdict_on_every_seed() {
    let lib = TemplateLibrary::builtin();
    let mut s = session();
    for name in ["insurance_claim_review_en", "insurance_claim_review_zh"] {
        let template = lib.get(name).unwrap();
        let schema = template.output_schema.clone().unwrap();
        let allowed = &schema["properties"]["verdict"]["enum"];
        for seed in [1, 2, 3] {
            let opts = GenerateOptions {
                temperature: 0.7,
                seed: Some(seed),
                max_tokens: Some(400),
                ..GenerateOptions::default()
            };
            let out = s.run_template(template, &claim(), &opts).unwrap();
            let value = out.json.expect("schema templates return JSON");
            validate(&schema, &value);
            let verdict = &value["verdict"];
            assert!(
                allowed.as_array().unwrap().contains(verdict),
                "{name} seed {seed}: verdict {verdict} not in {allowed}"
            );
            assert_eq!(out.messages.first().unwrap().role, "system");
        }
    }
}

#[test]
fn choice_and_regex_constraints_hold() {
    let mut s = session();
    let choices = vec![
        "urgent".to_string(),
        "routine".into(),
        "administrative".into(),
    ];
    let regex = r"[A-Z]{3}-[0-9]{4}";
    let checker = regex::Regex::new(&format!("^(?:{regex})$")).unwrap();
    for seed in 0..10 {
        let opts = sampled(seed, 20).with_constraint(OutputConstraint::Choice(choices.clone()));
        let out = s
            .generate("Message: my chest hurts.\nCategory:", &opts)
            .unwrap();
        assert!(choices.contains(&out.text), "{:?}", out.text);
        let opts = sampled(seed, 20).with_constraint(OutputConstraint::Regex(regex.into()));
        let out = s.generate("A ward code:", &opts).unwrap();
        assert!(checker.is_match(&out.text), "{:?}", out.text);
    }
}

#[test]
fn impossible_constraints_fail_clearly_before_decoding() {
    let mut s = session();
    let bad_schema =
        json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}});
    let e = s
        .generate_json("x", &bad_schema, &GenerateOptions::greedy())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Grammar, "{e}");
    let e = s
        .generate(
            "x",
            &GenerateOptions::greedy()
                .with_constraint(OutputConstraint::Grammar("root ::= (".into())),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Grammar, "{e}");
    let e = s
        .generate(
            "x",
            &GenerateOptions::greedy().with_constraint(OutputConstraint::Regex(r"\bword".into())),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Grammar, "{e}");
    // Cut off mid-JSON: a clear structured-output error, not a parse panic.
    let schema =
        json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
    let e = s
        .generate_json(
            "Write a long story as JSON:",
            &schema,
            &GenerateOptions::greedy().with_max_tokens(3),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StructuredOutput, "{e}");
    assert!(e.to_string().contains("max_tokens"), "{e}");
}

/// Unsatisfiable bounds aborted the process inside llama.cpp (`GGML_ASSERT(!stacks.empty())`,
/// found by the C random-call driver); they are now a clear error, and a grammar that runs
/// out of tokens midway ends the request with one too, leaving the session usable.
#[test]
fn grammars_that_admit_nothing_are_errors_not_aborts() {
    let mut s = session();
    let e = s
        .generate_json(
            "How many?",
            &json!({"type": "integer", "minimum": 5, "maximum": 2}),
            &GenerateOptions::greedy(),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Grammar, "{e}");
    assert!(e.to_string().contains("admits no value"), "{e}");
    // "a" and then a character class no character is in.
    let e = s
        .generate(
            "Say a:",
            &GenerateOptions::greedy()
                .with_max_tokens(8)
                .with_constraint(OutputConstraint::Grammar(
                    "root ::= \"a\" [^\\x00-\\U0010FFFF]".into(),
                )),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StructuredOutput, "{e}");
    assert!(e.to_string().contains("allows no next token"), "{e}");
    let ok = s
        .generate("Say hi:", &GenerateOptions::greedy().with_max_tokens(4))
        .expect("the session still works");
    assert!(!ok.text.is_empty());
}

#[test]
fn dynamic_flow_shows_both_stages() {
    let lib = TemplateLibrary::builtin();
    let template = lib.get("role_en").unwrap();
    let mut s = session();
    let out = s
        .run_dynamic(
            template,
            "I'm a pharmacist. What is the usual adult dose of paracetamol?",
            &GenerateOptions::greedy().with_max_tokens(60),
        )
        .unwrap();
    let mut keys: Vec<&String> = out.variables.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["query", "role"],
        "stage 1 must fill exactly the template's variables"
    );
    assert!(
        out.fill_prompt.contains("role, query"),
        "{}",
        out.fill_prompt
    );
    let user = out.answer.messages.last().unwrap();
    assert!(user.content.starts_with("As a "), "{}", user.content);
    assert!(user
        .content
        .contains(out.variables["query"].as_str().unwrap()));
    assert!(!out.answer.completion.text.is_empty());
}

#[test]
fn few_shot_and_cot_templates_run() {
    let lib = TemplateLibrary::builtin();
    let mut s = session();
    let vars: Variables = json!({"message": "I cannot breathe and my lips are blue."})
        .as_object()
        .unwrap()
        .clone();
    let out = s
        .run_template(
            lib.get("few_shot_en").unwrap(),
            &vars,
            &GenerateOptions::greedy().with_max_tokens(8),
        )
        .unwrap();
    // system + 3 example pairs + the request.
    assert_eq!(out.messages.len(), 8);
    assert_eq!(out.messages[2].content, "urgent");
    let vars: Variables = json!({"question": "What is 12 + 30?"})
        .as_object()
        .unwrap()
        .clone();
    let out = s
        .run_template(
            lib.get("cot_en").unwrap(),
            &vars,
            &GenerateOptions::greedy().with_max_tokens(120),
        )
        .unwrap();
    assert_eq!(
        out.answer,
        lib.get("cot_en")
            .unwrap()
            .extract_answer(&out.completion.text)
    );
}
