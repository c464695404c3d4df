//! The pure half of the guard-model stage: the classifier prompt, parsing its answer and
//! the threshold decision. Running the model is the engine's job; it hands back the answer
//! text and the probability of "unsafe" as the first token.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

/// One hazard category the guard model is asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardCategory {
    /// Short id the model answers with ("S1").
    pub id: String,
    /// Name shown in the prompt.
    pub name: String,
    /// Optional longer description.
    #[serde(default)]
    pub description: String,
}

/// Guard-model settings; the stage is skipped when `model_path` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// GGUF of the guard model (Llama Guard 3, Qwen3Guard).
    pub model_path: Option<PathBuf>,
    /// Block when P("unsafe") reaches this.
    #[serde(deserialize_with = "probability")]
    pub threshold: f32,
    /// Shown instead of blocked content.
    pub message: String,
    /// Categories listed in the prompt.
    pub categories: Vec<GuardCategory>,
}

fn probability<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = f32::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "threshold {v} is not in 0..=1"
        )))
    }
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            model_path: None,
            threshold: 0.9,
            message: "内容违反安全策略".into(),
            categories: llama_guard3_categories(),
        }
    }
}

/// The Llama Guard 3 hazard taxonomy (MLCommons S1–S14).
pub fn llama_guard3_categories() -> Vec<GuardCategory> {
    [
        ("S1", "Violent Crimes"),
        ("S2", "Non-Violent Crimes"),
        ("S3", "Sex-Related Crimes"),
        ("S4", "Child Sexual Exploitation"),
        ("S5", "Defamation"),
        ("S6", "Specialized Advice"),
        ("S7", "Privacy"),
        ("S8", "Intellectual Property"),
        ("S9", "Indiscriminate Weapons"),
        ("S10", "Hate"),
        ("S11", "Suicide & Self-Harm"),
        ("S12", "Sexual Content"),
        ("S13", "Elections"),
        ("S14", "Code Interpreter Abuse"),
    ]
    .into_iter()
    .map(|(id, name)| GuardCategory {
        id: id.into(),
        name: name.into(),
        description: String::new(),
    })
    .collect()
}

/// Whose message is being classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardRole {
    /// The user's prompt.
    User,
    /// The model's reply.
    Agent,
}

/// The guard model's answer, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardVerdict {
    /// Whether the content is safe.
    pub safe: bool,
    /// The first violated category id, if the model named one.
    pub category: Option<String>,
    /// P("unsafe") as the first token, from the engine.
    pub score: f32,
}

/// What the guard stage decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum GuardDecision {
    /// No guard model configured.
    Skipped,
    /// Allowed.
    Allow {
        /// The verdict behind it.
        verdict: GuardVerdict,
    },
    /// Blocked.
    Block {
        /// The verdict behind it.
        verdict: GuardVerdict,
        /// The refusal message.
        message: String,
    },
}

impl GuardConfig {
    /// Whether a guard model is configured.
    pub fn is_enabled(&self) -> bool {
        self.model_path.is_some()
    }

    /// The classifier prompt (the user turn; the engine wraps it in the model's chat
    /// template). `conversation` is `(role, text)` in order; the last `role` turn is judged.
    pub fn prompt(&self, role: GuardRole, conversation: &[(GuardRole, &str)]) -> String {
        let who = match role {
            GuardRole::User => "User",
            GuardRole::Agent => "Agent",
        };
        let mut p = format!(
            "Task: Check if there is unsafe content in '{who}' messages in conversations according to our safety policy with the below categories.\n\n<BEGIN UNSAFE CONTENT CATEGORIES>\n"
        );
        for c in &self.categories {
            p.push_str(&format!("{}: {}.\n", c.id, c.name));
            if !c.description.is_empty() {
                p.push_str(&format!("{}\n", c.description));
            }
        }
        p.push_str("<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n");
        for (r, text) in conversation {
            let name = match r {
                GuardRole::User => "User",
                GuardRole::Agent => "Agent",
            };
            p.push_str(&format!("{name}: {text}\n\n"));
        }
        p.push_str(&format!(
            "<END CONVERSATION>\n\nProvide your safety assessment for ONLY THE LAST {who} message in the above conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line must include a comma-separated list of violated categories."
        ));
        p
    }

    /// Parses an answer in Llama Guard style ("unsafe\nS9") or Qwen3Guard style
    /// ("Safety: Unsafe\nCategories: Violent"). An answer that says neither is judged by
    /// `score` alone, so a garbled answer cannot wave through a confident "unsafe".
    pub fn parse(&self, answer: &str, score: f32) -> GuardVerdict {
        let mut lines = answer.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or("").to_ascii_lowercase();
        let first = first.strip_prefix("safety:").unwrap_or(&first).trim();
        let safe = if first.starts_with("unsafe") || first.starts_with("controversial") {
            false
        } else if first.starts_with("safe") {
            true
        } else {
            score < self.threshold
        };
        let category = if safe {
            None
        } else {
            lines.next().and_then(|l| {
                let l = l.strip_prefix("Categories:").unwrap_or(l);
                l.split(',')
                    .map(str::trim)
                    .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("none"))
                    .map(String::from)
            })
        };
        GuardVerdict {
            safe,
            category,
            score,
        }
    }

    /// Blocks when the model says unsafe with P("unsafe") ≥ threshold; `None` (no guard
    /// run) is [`GuardDecision::Skipped`].
    pub fn decide(&self, verdict: Option<GuardVerdict>) -> GuardDecision {
        match verdict {
            None => GuardDecision::Skipped,
            Some(v) if !v.safe && v.score >= self.threshold => GuardDecision::Block {
                verdict: v,
                message: self.message.clone(),
            },
            Some(v) => GuardDecision::Allow { verdict: v },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_decide() {
        let g = GuardConfig::default();
        let v = g.parse("unsafe\nS9,S1", 0.97);
        assert!(!v.safe);
        assert_eq!(v.category.as_deref(), Some("S9"));
        assert!(matches!(g.decide(Some(v)), GuardDecision::Block { .. }));
        let low = g.parse("unsafe\nS1", 0.5);
        assert!(matches!(g.decide(Some(low)), GuardDecision::Allow { .. }));
        assert!(g.parse(" safe ", 0.01).safe);
        let q = g.parse("Safety: Unsafe\nCategories: Violent", 0.95);
        assert_eq!(q.category.as_deref(), Some("Violent"));
        assert!(!g.parse("???", 0.95).safe);
        assert_eq!(g.decide(None), GuardDecision::Skipped);
        let p = g.prompt(GuardRole::User, &[(GuardRole::User, "hi")]);
        assert!(p.contains("S14: Code Interpreter Abuse."));
        assert!(p.contains("User: hi"));
    }
}
