//! Running prompt templates and structured requests on a session: JSON under a schema,
//! a template (with its few-shot examples, chain-of-thought answer and output schema), and
//! the two-stage dynamic flow in which the model first fills a template's variables.

use serde_json::Value;

use crate::chat_template::ChatMessage;
use crate::error::{Error, Result};
use crate::prompt_template::{PromptTemplate, Variables};
use crate::sampling::GenerateOptions;
use crate::session::{Completion, FinishReason, Prompt, Session};
use crate::structured_output::OutputConstraint;

/// A generation constrained to a JSON schema, parsed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JsonCompletion {
    /// The parsed output; it validates against the schema.
    pub value: Value,
    pub completion: Completion,
}

/// One run of a prompt template.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TemplateOutput {
    pub template: String,
    /// The conversation sent (system prompt, few-shot turns, the request).
    pub messages: Vec<ChatMessage>,
    /// The prompt after the chat template.
    pub prompt: String,
    pub completion: Completion,
    /// For chain-of-thought templates, the text after the final `Answer:` line.
    pub answer: Option<String>,
    /// For templates with an output schema, the parsed JSON.
    pub json: Option<Value>,
}

/// Both stages of a dynamic prompt flow.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DynamicFlowOutput {
    /// Stage 1: the model extracted the template's variables from the request.
    pub variables: Variables,
    /// The stage-1 generation (its prompt and raw JSON output).
    pub fill_prompt: String,
    pub fill: Completion,
    /// Stage 2: the template filled with those variables, answered.
    pub answer: TemplateOutput,
}

impl Session {
    /// Generate JSON that validates against `schema` (grammar-constrained) and parse it.
    /// Output cut off by `max_tokens` is [`Error::StructuredOutput`].
    pub fn generate_json<'p>(
        &mut self,
        prompt: impl Into<Prompt<'p>>,
        schema: &Value,
        options: &GenerateOptions,
    ) -> Result<JsonCompletion> {
        let options = with_schema(options, schema);
        let completion = self.generate(prompt, &options)?;
        parse_json(completion)
    }

    /// [`Session::generate_json`] for a conversation (rendered with the chat template).
    pub fn chat_json(
        &mut self,
        messages: &[ChatMessage],
        schema: &Value,
        options: &GenerateOptions,
    ) -> Result<JsonCompletion> {
        // Through `chat`, so the safety layer checks each message as in any chat.
        let completion = self.chat(messages, &with_schema(options, schema))?;
        parse_json(completion)
    }

    /// Fill `template` with `variables`, send it as a chat, and post-process: the answer
    /// line of a chain-of-thought template, the parsed JSON of a template with an output
    /// schema (generation is then constrained to it unless `options` has a constraint).
    pub fn run_template(
        &mut self,
        template: &PromptTemplate,
        variables: &Variables,
        options: &GenerateOptions,
    ) -> Result<TemplateOutput> {
        let messages = template.messages(variables)?;
        let prompt = self.render_chat(&messages)?;
        let (completion, json) = match (&template.output_schema, &options.constraint) {
            (Some(schema), None) => {
                let out = self.generate_json(Prompt::Text(&prompt), schema, options)?;
                (out.completion, Some(out.value))
            }
            _ => (self.generate(Prompt::Text(&prompt), options)?, None),
        };
        Ok(TemplateOutput {
            template: template.name.clone(),
            answer: template.extract_answer(&completion.text),
            messages,
            prompt,
            completion,
            json,
        })
    }

    /// The two-stage flow as one call: the model reads `request` and fills the template's
    /// variables as JSON (constrained by [`PromptTemplate::variables_schema`]); llmedge then
    /// renders the template with them and answers it. Both stages are in the result.
    pub fn run_dynamic(
        &mut self,
        template: &PromptTemplate,
        request: &str,
        options: &GenerateOptions,
    ) -> Result<DynamicFlowOutput> {
        let schema = template.variables_schema();
        let names = template.variables().join(", ");
        let fill_messages = [
            ChatMessage::system(format!(
                "Fill in the variables of a prompt template from the user's request. \
                 Reply with a JSON object whose keys are exactly: {names}. \
                 Template: {}",
                template.template
            )),
            ChatMessage::user(request),
        ];
        let fill_prompt = self.render_chat(&fill_messages)?;
        // The variables JSON needs room whatever the answer's budget is.
        let fill_options = GenerateOptions {
            constraint: None,
            max_tokens: Some(options.max_tokens.unwrap_or(0).max(FILL_MIN_TOKENS)),
            ..options.clone()
        };
        let filled = self.generate_json(Prompt::Text(&fill_prompt), &schema, &fill_options)?;
        let variables = match filled.value {
            Value::Object(map) => map,
            other => {
                return Err(Error::StructuredOutput(format!(
                    "stage 1 produced {other} instead of an object"
                )))
            }
        };
        let answer = self.run_template(template, &variables, options)?;
        Ok(DynamicFlowOutput {
            variables,
            fill_prompt,
            fill: filled.completion,
            answer,
        })
    }
}

/// The least stage 1 of a dynamic flow may generate.
const FILL_MIN_TOKENS: u32 = 256;

fn with_schema(options: &GenerateOptions, schema: &Value) -> GenerateOptions {
    GenerateOptions {
        constraint: Some(OutputConstraint::JsonSchema(schema.clone())),
        ..options.clone()
    }
}

fn parse_json(completion: Completion) -> Result<JsonCompletion> {
    match serde_json::from_str(completion.text.trim()) {
        Ok(value) => Ok(JsonCompletion { value, completion }),
        Err(e) => Err(Error::StructuredOutput(match completion.finish_reason {
            FinishReason::Length => format!(
                "generation reached max_tokens ({} tokens) before the JSON was complete; raise max_tokens",
                completion.usage.completion_tokens
            ),
            FinishReason::Cancelled => "generation was cancelled before the JSON was complete".into(),
            FinishReason::ContentFilter => {
                return Err(Error::SafetyBlocked {
                    category: completion
                        .safety
                        .as_ref()
                        .and_then(|r| r.categories.iter().next().cloned())
                        .unwrap_or_default(),
                    message: completion.text,
                })
            }
            FinishReason::Stop => format!("the output is not JSON ({e}): {:?}", completion.text),
        })),
    }
}
