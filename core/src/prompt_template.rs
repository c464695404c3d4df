//! Prompt templates: named prompts with variables, a system (role) prompt, few-shot examples
//! and an optional output schema, loaded from TOML files or taken from the built-in library.
//!
//! Two syntaxes: `fstring` (LangChain's PromptTemplate: `{name}` placeholders, `{{`/`}}` for
//! literal braces) and `jinja` (minijinja, for loops and conditions).

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::Environment;
use serde_json::Value;

use crate::chat_template::ChatMessage;
use crate::error::{Error, Result};

/// Template variables: a JSON object. F-string templates insert strings as they are and any
/// other value as compact JSON.
pub type Variables = serde_json::Map<String, Value>;

/// The placeholder syntax of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateFormat {
    /// `{variable}`; `{{` and `}}` are literal braces.
    #[default]
    Fstring,
    /// A minijinja template (`{{ variable }}`, `{% if %}`, ...).
    Jinja,
}

/// One worked example: the variables of a request and the answer the model should give.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FewShotExample {
    pub input: Variables,
    pub output: String,
}

/// A named prompt template. Build one with [`PromptTemplate::new`] or load a library.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PromptTemplate {
    pub name: String,
    pub description: String,
    pub format: TemplateFormat,
    /// The system (role) prompt; it may use the same variables.
    pub system: Option<String>,
    pub template: String,
    /// Values used when a request leaves a variable out.
    pub defaults: Variables,
    pub examples: Vec<FewShotExample>,
    /// A JSON Schema the answer must follow; generation is then grammar-constrained.
    pub output_schema: Option<Value>,
    /// Line prefixes that introduce the final answer of a chain-of-thought
    /// (`Answer:`, `答案：`); empty for templates that are not chain-of-thought.
    pub answer_prefixes: Vec<String>,
    /// Every variable the system prompt and template use, in order of first use.
    variables: Vec<String>,
}

/// The TOML shape of one template.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateSpec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    format: TemplateFormat,
    system: Option<String>,
    template: toml::Spanned<String>,
    #[serde(default)]
    defaults: Variables,
    #[serde(default)]
    examples: Vec<FewShotExample>,
    /// A JSON string or a TOML table.
    output_schema: Option<toml::Value>,
    #[serde(default)]
    answer_prefixes: Vec<String>,
}

/// A file with several templates (`[[templates]]`); a file without that key is one template.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    templates: Vec<TemplateSpec>,
}

impl PromptTemplate {
    /// An f-string template; fails on unbalanced braces.
    pub fn new(name: impl Into<String>, template: impl Into<String>) -> Result<PromptTemplate> {
        Self::with_format(name, template, TemplateFormat::Fstring)
    }

    /// A Jinja template; fails on syntax errors.
    pub fn jinja(name: impl Into<String>, template: impl Into<String>) -> Result<PromptTemplate> {
        Self::with_format(name, template, TemplateFormat::Jinja)
    }

    fn with_format(
        name: impl Into<String>,
        template: impl Into<String>,
        format: TemplateFormat,
    ) -> Result<PromptTemplate> {
        let mut t = PromptTemplate {
            name: name.into(),
            description: String::new(),
            format,
            system: None,
            template: template.into(),
            defaults: Variables::new(),
            examples: Vec::new(),
            output_schema: None,
            answer_prefixes: Vec::new(),
            variables: Vec::new(),
        };
        t.refresh()?;
        Ok(t)
    }

    /// Builder: the system (role) prompt.
    pub fn with_system(mut self, system: impl Into<String>) -> Result<PromptTemplate> {
        self.system = Some(system.into());
        self.refresh()?;
        Ok(self)
    }

    /// Builder: a default value for a variable.
    pub fn with_default(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.defaults.insert(name.into(), value.into());
        self
    }

    /// Builder: the output JSON schema.
    pub fn with_output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// Re-parse after a field changed: recompute the variables and check the syntax.
    fn refresh(&mut self) -> Result<()> {
        self.refresh_checked()
            .map_err(|(part, e)| Error::Template(format!("template {:?}, {part} {e}", self.name)))
    }

    /// [`Self::refresh`] keeping which text failed (`system` or `template`) and where.
    fn refresh_checked(&mut self) -> std::result::Result<(), (&'static str, SyntaxError)> {
        let mut vars = Vec::new();
        if let Some(system) = &self.system {
            vars.extend(parse_variables(system, self.format).map_err(|e| ("system", e))?);
        }
        let body = parse_variables(&self.template, self.format).map_err(|e| ("template", e))?;
        for v in body {
            if !vars.contains(&v) {
                vars.push(v);
            }
        }
        self.variables = vars;
        Ok(())
    }

    /// Every variable the template uses, in order of first use.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// The variables a request must give (those without a default).
    pub fn required_variables(&self) -> Vec<String> {
        self.variables
            .iter()
            .filter(|v| !self.defaults.contains_key(*v))
            .cloned()
            .collect()
    }

    /// Check a request's variables: every required one present, no unknown ones. The error
    /// lists all of both at once.
    pub fn validate(&self, vars: &Variables) -> Result<()> {
        let missing: Vec<String> = self
            .required_variables()
            .into_iter()
            .filter(|v| !vars.contains_key(v))
            .collect();
        let mut extra: Vec<String> = vars
            .keys()
            .filter(|k| !self.variables.contains(k))
            .cloned()
            .collect();
        extra.sort();
        if missing.is_empty() && extra.is_empty() {
            Ok(())
        } else {
            Err(Error::TemplateVariables {
                template: self.name.clone(),
                missing,
                extra,
            })
        }
    }

    /// The user prompt for these variables (defaults filled in).
    pub fn render(&self, vars: &Variables) -> Result<String> {
        self.validate(vars)?;
        self.fill(&self.template, vars)
    }

    /// The conversation to send: system prompt, each few-shot example as a user/assistant
    /// pair, then the request.
    pub fn messages(&self, vars: &Variables) -> Result<Vec<ChatMessage>> {
        self.validate(vars)?;
        let mut messages = Vec::with_capacity(2 + 2 * self.examples.len());
        if let Some(system) = &self.system {
            messages.push(ChatMessage::system(self.fill(system, vars)?));
        }
        for (i, example) in self.examples.iter().enumerate() {
            self.validate(&example.input)
                .map_err(|e| Error::Template(format!("few-shot example {} of {e}", i + 1)))?;
            messages.push(ChatMessage::user(
                self.fill(&self.template, &example.input)?,
            ));
            messages.push(ChatMessage::assistant(example.output.clone()));
        }
        messages.push(ChatMessage::user(self.fill(&self.template, vars)?));
        Ok(messages)
    }

    /// The final answer of a chain-of-thought reply (see [`extract_answer`]).
    pub fn extract_answer(&self, text: &str) -> Option<String> {
        extract_answer(text, &self.answer_prefixes)
    }

    /// A JSON schema for this template's variables: an object of strings, the ones without a
    /// default required. The first stage of a dynamic prompt flow generates under it.
    pub fn variables_schema(&self) -> Value {
        let properties: serde_json::Map<String, Value> = self
            .variables
            .iter()
            .map(|v| {
                (
                    v.clone(),
                    serde_json::json!({"type": "string", "maxLength": 200}),
                )
            })
            .collect();
        serde_json::json!({
            "type": "object",
            "properties": properties,
            "required": self.required_variables(),
            "additionalProperties": false,
        })
    }

    fn fill(&self, text: &str, vars: &Variables) -> Result<String> {
        let mut all = self.defaults.clone();
        all.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        match self.format {
            TemplateFormat::Fstring => fill_fstring(text, &all)
                .map_err(|e| Error::Template(format!("template {:?}: {e}", self.name))),
            TemplateFormat::Jinja => {
                let env = jinja_env();
                env.render_str(text, &all).map_err(|e| {
                    Error::Template(format!("template {:?}: {}", self.name, jinja_detail(&e)))
                })
            }
        }
    }

    /// Parse one template (or the first of several) from TOML. `origin` names the source in
    /// errors (a file path).
    pub fn from_toml_str(source: &str, origin: &str) -> Result<PromptTemplate> {
        let mut all = parse_template_file(source, origin)?;
        if all.len() != 1 {
            return Err(Error::Template(format!(
                "{origin}: expected one template, found {}",
                all.len()
            )));
        }
        Ok(all.remove(0))
    }
}

/// Templates by name: the built-ins, plus any folder of TOML files.
#[derive(Debug, Clone, Default)]
pub struct TemplateLibrary {
    templates: BTreeMap<String, PromptTemplate>,
}

/// The built-in templates, compiled in so they work offline.
const BUILTIN_FILES: [(&str, &str); 5] = [
    ("role.toml", include_str!("../data/templates/role.toml")),
    ("cot.toml", include_str!("../data/templates/cot.toml")),
    (
        "few_shot.toml",
        include_str!("../data/templates/few_shot.toml"),
    ),
    (
        "extract.toml",
        include_str!("../data/templates/extract.toml"),
    ),
    (
        "insurance_claim.toml",
        include_str!("../data/templates/insurance_claim.toml"),
    ),
];

impl TemplateLibrary {
    /// An empty library.
    pub fn new() -> TemplateLibrary {
        TemplateLibrary::default()
    }

    /// The built-in templates (English and Chinese): `role_en`/`role_zh`, `cot_en`/`cot_zh`,
    /// `few_shot_en`/`few_shot_zh`, `extract_fields_en`/`extract_fields_zh`,
    /// `insurance_claim_review_en`/`insurance_claim_review_zh`.
    pub fn builtin() -> TemplateLibrary {
        let mut lib = TemplateLibrary::new();
        for (file, source) in BUILTIN_FILES {
            for t in parse_template_file(source, &format!("builtin:{file}"))
                .expect("built-in templates parse (checked by tests)")
            {
                lib.templates.insert(t.name.clone(), t);
            }
        }
        lib
    }

    /// Every `*.toml` file in `dir`, in name order; a later template replaces an earlier one
    /// of the same name. Errors name the file and line.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<TemplateLibrary> {
        let mut lib = TemplateLibrary::new();
        lib.add_dir(dir)?;
        Ok(lib)
    }

    /// Add every `*.toml` file in `dir` to this library.
    pub fn add_dir(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            self.add_file(&path)?;
        }
        Ok(())
    }

    /// Add the template(s) of one TOML file.
    pub fn add_file(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        for t in parse_template_file(&source, &path.display().to_string())? {
            self.templates.insert(t.name.clone(), t);
        }
        Ok(())
    }

    /// Add or replace one template.
    pub fn insert(&mut self, template: PromptTemplate) {
        self.templates.insert(template.name.clone(), template);
    }

    /// A template by name; unknown names list the known ones.
    pub fn get(&self, name: &str) -> Result<&PromptTemplate> {
        self.templates.get(name).ok_or_else(|| {
            Error::Template(format!(
                "no template named {name:?}; known: {}",
                self.names().join(", ")
            ))
        })
    }

    /// Template names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.templates.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

/// The text after the last line that starts with one of `prefixes` (`Answer:`, `答案：`...),
/// trimmed; also matches a prefix written with a half- or full-width colon, and Markdown
/// emphasis around it (`**Answer:**`). `None` when no line has a prefix.
pub fn extract_answer(text: &str, prefixes: &[String]) -> Option<String> {
    let keys: Vec<String> = prefixes
        .iter()
        .map(|p| p.trim_end_matches([':', '：']).trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate().rev() {
        let plain = line.trim().trim_start_matches(['*', '#', '-', ' ']);
        for key in &keys {
            let Some(head) = plain.get(..key.len()) else {
                continue;
            };
            if head.to_lowercase() != *key {
                continue;
            }
            let rest = plain[key.len()..].trim_start_matches('*').trim_start();
            let Some(rest) = rest.strip_prefix([':', '：']) else {
                continue;
            };
            let mut answer = rest.trim_start_matches('*').trim().to_owned();
            if answer.is_empty() {
                // `Answer:` alone on its line: the answer is what follows.
                answer = lines[i + 1..].join("\n").trim().to_owned();
            }
            return Some(answer);
        }
    }
    None
}

fn parse_template_file(source: &str, origin: &str) -> Result<Vec<PromptTemplate>> {
    let toml_error = |e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| format!(":{}", line_col(source, s.start)))
            .unwrap_or_default();
        Error::Template(format!("{origin}{at}: {}", e.message().trim_end()))
    };
    let table: toml::Table = toml::from_str(source).map_err(toml_error)?;
    let specs = if table.contains_key("templates") {
        toml::from_str::<TemplateFile>(source)
            .map_err(toml_error)?
            .templates
    } else {
        vec![toml::from_str::<TemplateSpec>(source).map_err(toml_error)?]
    };
    specs
        .into_iter()
        .map(|spec| {
            let body_start = spec.template.span().start;
            let mut t = PromptTemplate {
                name: spec.name,
                description: spec.description,
                format: spec.format,
                system: spec.system,
                template: spec.template.into_inner(),
                defaults: spec.defaults,
                examples: spec.examples,
                output_schema: None,
                answer_prefixes: spec.answer_prefixes,
                variables: Vec::new(),
            };
            if let Some(schema) = spec.output_schema {
                t.output_schema = Some(match schema {
                    toml::Value::String(json) => serde_json::from_str(&json).map_err(|e| {
                        Error::Template(format!(
                            "{origin}: template {:?}: output_schema is not JSON: {e}",
                            t.name
                        ))
                    })?,
                    other => serde_json::to_value(other)
                        .map_err(|e| Error::Internal(format!("TOML table to JSON: {e}")))?,
                });
            }
            t.refresh_checked().map_err(|(part, e)| {
                // Only the template body's position in the file is known; a triple-quoted
                // string starting with a newline begins on the next line.
                let location = if part == "template" {
                    let opens_block = source[body_start..].starts_with("\"\"\"\n")
                        || source[body_start..].starts_with("\'\'\'\n");
                    let first = line_col(source, body_start);
                    let first: usize = first.split(':').next().unwrap_or("1").parse().unwrap_or(1);
                    format!(":{}", first + usize::from(opens_block) + e.line - 1)
                } else {
                    String::new()
                };
                Error::Template(format!(
                    "{origin}{location}: template {:?}, {part}: {}",
                    t.name, e.message
                ))
            })?;
            Ok(t)
        })
        .collect()
}

/// `line:column` (1-based) of a byte offset.
fn line_col(source: &str, offset: usize) -> String {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

/// A syntax error inside a template text: 1-based line within that text.
struct SyntaxError {
    line: usize,
    message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One piece of an f-string.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Split an f-string into text and `{variable}` pieces; errors give the line and column.
fn fstring_pieces(text: &str) -> std::result::Result<Vec<Piece<'_>>, SyntaxError> {
    let mut pieces = Vec::new();
    let bytes = text.as_bytes();
    let (mut i, mut start) = (0, 0);
    let err = |at: usize, what: &str| SyntaxError {
        line: text[..at].matches('\n').count() + 1,
        message: format!(
            "{what} (column {})",
            line_col(text, at).rsplit(':').next().unwrap_or("?")
        ),
    };
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                pieces.push(Piece::Text(&text[start..=i]));
                i += 2;
                start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                pieces.push(Piece::Text(&text[start..=i]));
                i += 2;
                start = i;
            }
            b'{' => {
                let close = text[i + 1..]
                    .find(['}', '{'])
                    .filter(|&j| bytes[i + 1 + j] == b'}')
                    .ok_or_else(|| err(i, "unclosed '{'"))?;
                let name = text[i + 1..i + 1 + close].trim();
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(err(
                        i,
                        &format!("invalid variable name {name:?} (use letters, digits and _; write {{{{ for a literal brace)"),
                    ));
                }
                pieces.push(Piece::Text(&text[start..i]));
                pieces.push(Piece::Var(name));
                i += close + 2;
                start = i;
            }
            b'}' => return Err(err(i, "single '}' (write }} for a literal brace)")),
            _ => i += 1,
        }
    }
    pieces.push(Piece::Text(&text[start..]));
    Ok(pieces)
}

fn fill_fstring(text: &str, vars: &Variables) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len() + 64);
    for piece in fstring_pieces(text).map_err(|e| e.to_string())? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => match vars.get(name) {
                Some(Value::String(s)) => out.push_str(s),
                Some(other) => out.push_str(&other.to_string()),
                None => return Err(format!("no value for variable {name:?}")),
            },
        }
    }
    Ok(out)
}

fn parse_variables(
    text: &str,
    format: TemplateFormat,
) -> std::result::Result<Vec<String>, SyntaxError> {
    match format {
        TemplateFormat::Fstring => {
            let mut vars = Vec::new();
            for piece in fstring_pieces(text)? {
                if let Piece::Var(name) = piece {
                    if !vars.iter().any(|v| v == name) {
                        vars.push(name.to_owned());
                    }
                }
            }
            Ok(vars)
        }
        TemplateFormat::Jinja => {
            let env = jinja_env();
            let template = env.template_from_str(text).map_err(|e| SyntaxError {
                line: e.line().unwrap_or(1),
                message: e
                    .detail()
                    .map_or_else(|| e.kind().to_string(), str::to_owned),
            })?;
            // minijinja reports a set; order them by first mention for stable listings.
            let names = template.undeclared_variables(false);
            let mut ordered: Vec<(usize, String)> = names
                .into_iter()
                .map(|n| (text.find(n.as_str()).unwrap_or(usize::MAX), n))
                .collect();
            ordered.sort();
            Ok(ordered.into_iter().map(|(_, n)| n).collect())
        }
    }
}

fn jinja_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env
}

fn jinja_detail(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "{} (line {line})",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Variables {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fstring_fills_variables_defaults_and_escapes() {
        let t = PromptTemplate::new("t", "As a {role}, answer: {query} {{literal}}")
            .unwrap()
            .with_default("role", "doctor");
        assert_eq!(t.variables(), ["role", "query"]);
        assert_eq!(t.required_variables(), ["query"]);
        assert_eq!(
            t.render(&vars(json!({"query": "why?"}))).unwrap(),
            "As a doctor, answer: why? {literal}"
        );
        assert_eq!(
            t.render(&vars(json!({"query": 3, "role": "nurse"})))
                .unwrap(),
            "As a nurse, answer: 3 {literal}"
        );
        let zh = PromptTemplate::new("zh", "作为{角色}，请回答：{query}").unwrap();
        assert_eq!(zh.variables(), ["角色", "query"]);
    }

    #[test]
    fn missing_and_extra_variables_are_listed_together() {
        let t = PromptTemplate::new("t", "{a} {b} {c}").unwrap();
        let e = t
            .render(&vars(json!({"b": "x", "z": 1, "y": 2})))
            .unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::TemplateVariables);
        let msg = e.to_string();
        assert!(msg.contains("missing variables: a, c"), "{msg}");
        assert!(msg.contains("unknown variables: y, z"), "{msg}");
    }

    #[test]
    fn syntax_errors_give_the_position() {
        let e = PromptTemplate::new("t", "line one\nbad { here").unwrap_err();
        assert!(
            e.to_string().contains("line 2: unclosed '{' (column 5)"),
            "{e}"
        );
        let e = PromptTemplate::new("t", "x } y").unwrap_err();
        assert!(e.to_string().contains("single '}'"), "{e}");
        let e = PromptTemplate::jinja("t", "a\n{% if x %}").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Template);
    }

    #[test]
    fn jinja_templates_find_their_variables() {
        let t = PromptTemplate::jinja(
            "j",
            "{% for item in items %}- {{ item }}\n{% endfor %}Q: {{ query }}",
        )
        .unwrap();
        assert_eq!(t.variables(), ["items", "query"]);
        let out = t
            .render(&vars(json!({"items": ["a", "b"], "query": "q"})))
            .unwrap();
        assert_eq!(out, "- a\n- b\nQ: q");
        assert!(t.render(&vars(json!({"query": "q"}))).is_err());
    }

    #[test]
    fn cot_answers_are_extracted() {
        let en = ["Answer:".to_string()];
        let zh = ["答案：".to_string()];
        let cases: [(&str, &[String], Option<&str>); 8] = [
            ("Step 1: 2+2=4.\nAnswer: 4", &en, Some("4")),
            ("thinking\n**Answer:** Paris\n", &en, Some("Paris")),
            ("answer: early\nmore\nANSWER: late", &en, Some("late")),
            ("Answer:\nmulti\nline", &en, Some("multi\nline")),
            ("no final line here", &en, None),
            ("第一步……\n答案：42", &zh, Some("42")),
            ("第一步……\n答案:  四十二 ", &zh, Some("四十二")),
            ("The answer is 5", &en, None),
        ];
        for (text, prefixes, want) in cases {
            assert_eq!(extract_answer(text, prefixes).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn builtin_library_parses_and_renders() {
        let lib = TemplateLibrary::builtin();
        for name in [
            "role_en",
            "role_zh",
            "cot_en",
            "cot_zh",
            "few_shot_en",
            "few_shot_zh",
            "extract_fields_en",
            "extract_fields_zh",
            "insurance_claim_review_en",
            "insurance_claim_review_zh",
        ] {
            let t = lib.get(name).unwrap();
            assert!(!t.description.is_empty(), "{name}");
            let filled: Variables = t
                .required_variables()
                .into_iter()
                .map(|v| (v, Value::from("x")))
                .collect();
            let msgs = t.messages(&filled).unwrap();
            assert_eq!(msgs.last().unwrap().role, "user");
        }
        let role = lib.get("role_zh").unwrap();
        assert_eq!(
            role.render(&vars(json!({"role": "医生", "query": "发烧怎么办"})))
                .unwrap(),
            "作为医生，请回答：发烧怎么办"
        );
        let en = lib.get("role_en").unwrap();
        assert_eq!(
            en.render(&vars(json!({"role": "nurse", "query": "why?"})))
                .unwrap(),
            "As a nurse, answer: why?"
        );
        assert!(lib
            .get("cot_zh")
            .unwrap()
            .extract_answer("……\n答案：是")
            .is_some());
        assert!(lib.get("nope").unwrap_err().to_string().contains("role_en"));
        let schema = lib
            .get("insurance_claim_review_en")
            .unwrap()
            .output_schema
            .clone();
        assert!(crate::structured_output::json_schema_to_gbnf(&schema.unwrap()).is_ok());
    }

    #[test]
    fn library_files_report_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            "name = \"greet\"\ndescription = \"d\"\ntemplate = \"Hi {who}\"\n",
        )
        .unwrap();
        let lib = TemplateLibrary::load_dir(dir.path()).unwrap();
        assert_eq!(lib.names(), ["greet"]);
        std::fs::write(
            dir.path().join("b.toml"),
            "name = \"x\"\ntemplate = \"unterminated\n",
        )
        .unwrap();
        let e = TemplateLibrary::load_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.toml:2:"), "{e}");
        std::fs::write(
            dir.path().join("b.toml"),
            "name = \"x\"\n\n\ntemplate = \"\"\"\nok\nbad {\"\"\"\n",
        )
        .unwrap();
        let e = TemplateLibrary::load_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.toml:6:"), "{e}");
        assert!(e.contains("unclosed"), "{e}");
    }
}
