//! The guard-model stage of the safety layer: any GGUF guard or instruct model (Llama Guard,
//! Qwen3Guard, or a general model) classifies a request with the guard prompt. The score is
//! P("unsafe") over {"safe", "unsafe"} as the first answer token, read from the logits, so
//! the threshold means the same across models.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::chat_template::ChatMessage;
use crate::error::{Error, Result};
use crate::model::{Model, ModelOptions, Token};
use crate::safety::guard::{GuardConfig, GuardDecision, GuardRole, GuardVerdict};
use crate::sampling::GenerateOptions;
use crate::session::{Prompt, Session, SessionOptions};

/// A guard model loaded for one path.
type Loaded = (PathBuf, Arc<GuardModel>);

/// A loaded guard model with its own session (one classification at a time).
pub struct GuardModel {
    config: GuardConfig,
    session: Mutex<Session>,
    safe: Token,
    unsafe_: Token,
}

impl std::fmt::Debug for GuardModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardModel")
            .field("model_path", &self.config.model_path)
            .finish()
    }
}

impl GuardModel {
    /// The guard model of `config` (`None` when none is configured), loaded once per path
    /// and process.
    pub fn for_config(config: &GuardConfig) -> Result<Option<Arc<GuardModel>>> {
        let Some(path) = &config.model_path else {
            return Ok(None);
        };
        static LOADED: OnceLock<Mutex<Vec<Loaded>>> = OnceLock::new();
        let loaded = LOADED.get_or_init(|| Mutex::new(Vec::new()));
        let mut loaded = loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, g)) = loaded
            .iter()
            .find(|(p, g)| p == path && g.config == *config)
        {
            return Ok(Some(g.clone()));
        }
        let guard = Arc::new(GuardModel::load(config.clone())?);
        loaded.push((path.clone(), guard.clone()));
        Ok(Some(guard))
    }

    /// Load the model named by `config.model_path`.
    pub fn load(config: GuardConfig) -> Result<GuardModel> {
        let path = config
            .model_path
            .clone()
            .ok_or_else(|| Error::InvalidArgument("the guard config has no model_path".into()))?;
        let model = Model::load(&path, ModelOptions::default())?;
        let first = |word: &str| -> Result<Token> {
            model
                .tokenize(word, false, false)
                .first()
                .copied()
                .ok_or_else(|| Error::Tokenize(format!("the guard model cannot tokenize {word:?}")))
        };
        let (safe, unsafe_) = (first("safe")?, first("unsafe")?);
        if safe == unsafe_ {
            return Err(Error::ModelLoad {
                path,
                reason: "\"safe\" and \"unsafe\" start with the same token; use a model whose \
                         vocabulary tells them apart"
                    .into(),
            });
        }
        // The guard model judges requests; it is not itself filtered or audited.
        let session = Session::new(
            &model,
            SessionOptions {
                safety: None,
                n_ctx: Some(model.info().n_ctx_train.min(4096)),
                ..SessionOptions::default()
            },
        )?;
        Ok(GuardModel {
            config,
            session: Mutex::new(session),
            safe,
            unsafe_,
        })
    }

    /// Classify the last `role` turn of `conversation`.
    pub fn classify(
        &self,
        role: GuardRole,
        conversation: &[(GuardRole, &str)],
    ) -> Result<GuardVerdict> {
        let question = self.config.prompt(role, conversation);
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let prompt = session.render_chat(&[ChatMessage::user(question)])?;
        let logits = session.next_token_logits(Prompt::Text(&prompt))?;
        let (ls, lu) = (logits[self.safe as usize], logits[self.unsafe_ as usize]);
        // Softmax over the two answers.
        let score = 1.0 / (1.0 + (ls - lu).exp());
        let answer = session
            .generate(
                Prompt::Text(&prompt),
                &GenerateOptions::greedy().with_max_tokens(12),
            )?
            .text;
        Ok(self.config.parse(&answer, score))
    }

    /// Classify a user request and apply the threshold policy.
    pub fn check_input(&self, text: &str) -> Result<GuardDecision> {
        let verdict = self.classify(GuardRole::User, &[(GuardRole::User, text)])?;
        Ok(self.config.decide(Some(verdict)))
    }
}
