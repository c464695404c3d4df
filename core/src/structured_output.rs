//! Constrained generation: a JSON schema, a list of choices, a regex or a raw GBNF grammar
//! becomes a llama.cpp grammar, so every sampled token keeps the output inside the language.
//!
//! JSON schemas go through llama.cpp's own `json_schema_to_grammar`, the converter
//! llama-server uses; choices and regexes are translated here (regexes via `regex-syntax`'s
//! parsed form, so the grammar accepts exactly the regex's language).

use std::fmt::Write as _;

use llama_cpp_2::sampling::LlamaSampler;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::error::{Error, Result};
use crate::model::Model;

/// What the output must look like.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputConstraint {
    /// JSON that validates against this JSON Schema.
    JsonSchema(serde_json::Value),
    /// Exactly one of these strings.
    Choice(Vec<String>),
    /// A string matching this regex in full (anchors are implied).
    Regex(String),
    /// A llama.cpp GBNF grammar whose start rule is `root`.
    Grammar(String),
}

impl OutputConstraint {
    /// The GBNF grammar (start rule `root`) for this constraint.
    pub fn to_gbnf(&self) -> Result<String> {
        match self {
            OutputConstraint::JsonSchema(schema) => json_schema_to_gbnf(schema),
            OutputConstraint::Choice(choices) => choice_to_gbnf(choices),
            OutputConstraint::Regex(regex) => regex_to_gbnf(regex),
            OutputConstraint::Grammar(gbnf) => Ok(gbnf.clone()),
        }
    }

    /// The llama.cpp grammar sampler; a grammar llama.cpp cannot parse is [`Error::Grammar`].
    pub(crate) fn sampler(&self, model: &Model) -> Result<LlamaSampler> {
        let gbnf = self.to_gbnf()?;
        crate::backend::clear_recent_errors();
        LlamaSampler::grammar(model.llama(), &gbnf, "root").map_err(|e| {
            let detail = crate::backend::recent_errors();
            Error::Grammar(if detail.is_empty() {
                format!("llama.cpp rejected the grammar: {e}")
            } else {
                format!("llama.cpp rejected the grammar: {}", detail.join("; "))
            })
        })
    }
}

/// llama.cpp's JSON-schema converter; a schema it cannot express is [`Error::Grammar`].
pub fn json_schema_to_gbnf(schema: &serde_json::Value) -> Result<String> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(Error::Grammar(format!(
            "a JSON schema must be an object or a boolean, got {schema}"
        )));
    }
    check_satisfiable(schema, "#")?;
    crate::backend::backend()?;
    crate::backend::clear_recent_errors();
    let grammar = llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
        let detail = crate::backend::recent_errors();
        Error::Grammar(format!(
            "cannot turn the JSON schema into a grammar: {}",
            if detail.is_empty() {
                e.to_string()
            } else {
                detail.join("; ")
            }
        ))
    })?;
    Ok(compact_whitespace(&grammar))
}

/// Bounds no value can meet (`minimum` > `maximum`, `minLength` > `maxLength`, an empty
/// `enum`, ...), anywhere in the schema. llama.cpp turns them into a grammar that allows no
/// token at some point; refusing them here names the keyword before any prompt is decoded.
fn check_satisfiable(schema: &serde_json::Value, path: &str) -> Result<()> {
    use serde_json::Value;
    let Value::Object(map) = schema else {
        return Ok(());
    };
    let unsatisfiable = |what: String| {
        Err(Error::Grammar(format!(
            "the JSON schema at {path} admits no value: {what}"
        )))
    };
    let num = |key: &str| map.get(key).and_then(Value::as_f64);
    let kind = map.get("type").and_then(Value::as_str);
    if matches!(kind, Some("integer" | "number")) {
        let integer = kind == Some("integer");
        // The smallest and largest allowed values; for integers, the integers inside.
        let low = match (num("minimum"), num("exclusiveMinimum")) {
            (Some(m), _) if integer => Some(m.ceil()),
            (None, Some(m)) if integer => Some(m.floor() + 1.0),
            (m, e) => m.or(e),
        };
        let high = match (num("maximum"), num("exclusiveMaximum")) {
            (Some(m), _) if integer => Some(m.floor()),
            (None, Some(m)) if integer => Some(m.ceil() - 1.0),
            (m, e) => m.or(e),
        };
        let open = !integer
            && (num("minimum").is_none() && num("exclusiveMinimum").is_some()
                || num("maximum").is_none() && num("exclusiveMaximum").is_some());
        if let (Some(low), Some(high)) = (low, high) {
            if low > high || (open && low >= high) {
                let what = if integer { "integer" } else { "number" };
                return unsatisfiable(format!("no {what} lies between its bounds"));
            }
        }
    }
    for (min, max) in [
        ("minLength", "maxLength"),
        ("minItems", "maxItems"),
        ("minProperties", "maxProperties"),
    ] {
        if let (Some(lo), Some(hi)) = (num(min), num(max)) {
            if lo > hi {
                return unsatisfiable(format!("{min} {lo} is above {max} {hi}"));
            }
        }
    }
    for key in ["enum", "anyOf", "oneOf"] {
        if map
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            return unsatisfiable(format!("`{key}` is empty"));
        }
    }
    for (key, value) in map {
        match (key.as_str(), value) {
            (
                "properties" | "$defs" | "definitions" | "patternProperties",
                Value::Object(children),
            ) => {
                for (name, child) in children {
                    check_satisfiable(child, &format!("{path}/{key}/{name}"))?;
                }
            }
            ("items" | "prefixItems" | "anyOf" | "oneOf" | "allOf", Value::Array(children)) => {
                for (i, child) in children.iter().enumerate() {
                    check_satisfiable(child, &format!("{path}/{key}/{i}"))?;
                }
            }
            ("items" | "additionalProperties", child) => {
                check_satisfiable(child, &format!("{path}/{key}"))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// llama.cpp's JSON grammar lets the model indent freely (`space ::= | " " | "\n"{1,2}
/// [ \t]{0,20}`). Those bounded repetitions multiply the grammar's parse stacks, and every
/// token is checked against each stack: decoding slowed to under 1 tok/s on indented output.
/// One optional space keeps the output valid JSON (of the same schema) and the grammar cheap.
fn compact_whitespace(grammar: &str) -> String {
    grammar
        .lines()
        .map(|line| {
            if line.starts_with("space ::=") {
                "space ::= | \" \""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn choice_to_gbnf(choices: &[String]) -> Result<String> {
    if choices.is_empty() || choices.iter().any(String::is_empty) {
        return Err(Error::Grammar(
            "a choice constraint needs at least one non-empty choice".into(),
        ));
    }
    let alternatives: Vec<String> = choices.iter().map(|c| gbnf_literal(c)).collect();
    Ok(format!("root ::= {}\n", alternatives.join(" | ")))
}

/// Translate a regex into GBNF through its high-level IR. Look-arounds other than the
/// implied `^`/`$` at the ends, and byte-oriented classes, have no GBNF form.
pub fn regex_to_gbnf(regex: &str) -> Result<String> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(regex)
        .map_err(|e| Error::Grammar(format!("invalid regex {regex:?}: {e}")))?;
    let mut out = String::from("root ::= ");
    let items = match hir.kind() {
        HirKind::Concat(items) => items.as_slice(),
        _ => std::slice::from_ref(&hir),
    };
    // Anchors at the very ends only restate that the whole output must match.
    let start =
        usize::from(matches!(items.first().map(Hir::kind), Some(HirKind::Look(l)) if is_start(*l)));
    let end = items.len()
        - usize::from(
            items.len() > start
                && matches!(items.last().map(Hir::kind), Some(HirKind::Look(l)) if is_end(*l)),
        );
    let body = &items[start..end];
    if body.is_empty() {
        return Err(Error::Grammar(format!(
            "regex {regex:?} matches only the empty string"
        )));
    }
    for (i, item) in body.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        emit_hir(item, &mut out).map_err(|what| {
            Error::Grammar(format!(
                "regex {regex:?} uses {what}, which a grammar cannot express"
            ))
        })?;
    }
    out.push('\n');
    Ok(out)
}

fn is_start(look: Look) -> bool {
    matches!(look, Look::Start | Look::StartLF | Look::StartCRLF)
}

fn is_end(look: Look) -> bool {
    matches!(look, Look::End | Look::EndLF | Look::EndCRLF)
}

fn emit_hir(hir: &Hir, out: &mut String) -> std::result::Result<(), &'static str> {
    match hir.kind() {
        HirKind::Empty => out.push_str("\"\""),
        HirKind::Literal(lit) => {
            let text = std::str::from_utf8(&lit.0).map_err(|_| "a non-UTF-8 literal")?;
            out.push_str(&gbnf_literal(text));
        }
        HirKind::Class(Class::Unicode(class)) => {
            if class.ranges().is_empty() {
                return Err("an empty character class");
            }
            out.push('[');
            for r in class.ranges() {
                push_class_char(out, r.start());
                if r.end() != r.start() {
                    out.push('-');
                    push_class_char(out, r.end());
                }
            }
            out.push(']');
        }
        HirKind::Class(Class::Bytes(_)) => return Err("a byte class"),
        HirKind::Look(_) => return Err("an anchor or word boundary inside the pattern"),
        HirKind::Repetition(rep) => {
            out.push('(');
            emit_hir(&rep.sub, out)?;
            out.push(')');
            match (rep.min, rep.max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (min, None) => write!(out, "{{{min},}}").unwrap(),
                (min, Some(max)) if min == max => write!(out, "{{{min}}}").unwrap(),
                (min, Some(max)) => write!(out, "{{{min},{max}}}").unwrap(),
            }
        }
        HirKind::Capture(cap) => {
            out.push('(');
            emit_hir(&cap.sub, out)?;
            out.push(')');
        }
        HirKind::Concat(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                emit_hir(item, out)?;
            }
            out.push(')');
        }
        HirKind::Alternation(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                emit_hir(item, out)?;
            }
            out.push(')');
        }
    }
    Ok(())
}

/// A GBNF string literal: quotes, backslashes and control characters escaped.
fn gbnf_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => write!(out, "\\x{:02X}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Class members as escapes, so `]`, `-`, `^` and non-printing characters stay literal.
fn push_class_char(out: &mut String, c: char) {
    let cp = c as u32;
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else if cp <= 0xFF {
        write!(out, "\\x{cp:02X}").unwrap();
    } else if cp <= 0xFFFF {
        write!(out, "\\u{cp:04X}").unwrap();
    } else {
        write!(out, "\\U{cp:08X}").unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_become_alternatives() {
        let g = choice_to_gbnf(&["yes".into(), "no \"way\"".into()]).unwrap();
        assert_eq!(g, "root ::= \"yes\" | \"no \\\"way\\\"\"\n");
        assert!(choice_to_gbnf(&[]).is_err());
    }

    #[test]
    fn regexes_become_grammars() {
        assert_eq!(
            regex_to_gbnf(r"^[0-9]{3}-[A-Z]+$").unwrap(),
            "root ::= ([0-9]){3} \"-\" ([A-Z])+\n"
        );
        assert_eq!(
            regex_to_gbnf("yes|no").unwrap(),
            "root ::= (\"yes\" | \"no\")\n"
        );
        let e = regex_to_gbnf(r"a\bb").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Grammar);
        assert!(regex_to_gbnf("(")
            .unwrap_err()
            .to_string()
            .contains("invalid regex"));
        assert!(regex_to_gbnf("^$").is_err());
    }

    #[test]
    fn json_schemas_use_llama_cpp_converter() {
        let g = json_schema_to_gbnf(&serde_json::json!({
            "type": "object",
            "properties": {"verdict": {"enum": ["approve", "reject"]}},
            "required": ["verdict"]
        }))
        .unwrap();
        assert!(g.contains("root ::="), "{g}");
        assert!(g.contains("approve"), "{g}");
        let e = json_schema_to_gbnf(&serde_json::json!(3)).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Grammar);
    }

    #[test]
    fn unsatisfiable_schemas_are_refused_before_llama_cpp() {
        use serde_json::json;
        for (schema, needle) in [
            (
                json!({"type": "integer", "minimum": 5, "maximum": 2}),
                "at # admits",
            ),
            (
                json!({"type": "integer", "exclusiveMinimum": 2, "exclusiveMaximum": 3}),
                "integer",
            ),
            (
                json!({"type": "integer", "minimum": 2.5, "maximum": 2.9}),
                "integer",
            ),
            (
                json!({"type": "number", "exclusiveMinimum": 1, "maximum": 1}),
                "number",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "minLength": 3, "maxLength": 1}}}),
                "#/properties/a",
            ),
            (json!({"type": "array", "items": {"enum": []}}), "#/items"),
            (
                json!({"type": "array", "minItems": 4, "maxItems": 1}),
                "minItems",
            ),
            (
                json!({"anyOf": [{"type": "integer", "minimum": 9, "maximum": 0}]}),
                "#/anyOf/0",
            ),
            (
                json!({"$defs": {"x": {"oneOf": []}}, "$ref": "#/$defs/x"}),
                "#/$defs/x",
            ),
        ] {
            let e = json_schema_to_gbnf(&schema).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::Grammar, "{schema}");
            assert!(e.to_string().contains(needle), "{schema}: {e}");
        }
        for ok in [
            json!({"type": "integer", "minimum": 2, "maximum": 2}),
            json!({"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 3}),
            json!({"type": "number", "minimum": 1, "maximum": 1}),
            json!({"type": "string", "minLength": 1, "maxLength": 1}),
        ] {
            assert!(json_schema_to_gbnf(&ok).is_ok(), "{ok}");
        }
    }
}
