//! llmedge: on-premises LLM inference over llama.cpp.
//!
//! ```no_run
//! use llmedge::{GenerateOptions, Model, ModelOptions, Session, SessionOptions};
//! let model = Model::load("model.gguf", ModelOptions::default())?;
//! let mut session = Session::new(&model, SessionOptions::default())?;
//! let out = session.generate("The capital of France is", &GenerateOptions::greedy().with_max_tokens(8))?;
//! println!("{}", out.text);
//! # Ok::<(), llmedge::Error>(())
//! ```
//!
//! Thread rules: [`Model`] is `Send + Sync` and cheap to clone; [`Session`] is `Send` but used
//! by one thread at a time; [`CancelHandle`] cancels from any thread.

pub mod audit;
mod backend;
pub mod chat_template;
pub mod deployment;
mod dicom_input;
pub mod error;
pub mod evaluation;
mod generation;
pub mod gguf_file;
pub mod guard_model;
pub mod image_input;
pub mod lora;
pub mod lora_import;
pub mod lora_merge;
pub mod model;
pub mod model_fetch;
pub mod model_manifest;
mod prefix_cache;
pub mod prompt_flow;
pub mod prompt_template;
pub mod quantize;
pub mod request_guard;
mod request_input;
pub mod response_cache;
pub mod router;
pub mod safety;
pub mod sampling;
pub mod server_config;
pub mod serving_engine;
pub mod session;
mod session_state;
mod stream_text;
pub mod structured_output;
pub mod vision;

pub use chat_template::{ChatMessage, ChatTemplate, RenderOptions};
pub use error::{Error, ErrorCode, Result};
pub use image_input::{Image, ImageOptions, Window};
pub use lora::{AdapterInfo, AdapterSet, LoraAdapter};
pub use model::{Model, ModelInfo, ModelOptions, Token};
pub use model_manifest::{IntegrityPolicy, ModelManifest};
pub use prompt_flow::{DynamicFlowOutput, JsonCompletion, TemplateOutput};
pub use prompt_template::{PromptTemplate, TemplateFormat, TemplateLibrary, Variables};
pub use sampling::{GenerateOptions, Truncation};
pub use serving_engine::{
    Engine, EngineOptions, EngineRequest, EngineStats, EngineStream, RequestHandle, RequestInput,
    RequestSink,
};
pub use session::{
    CancelHandle, Completion, FinishReason, Prompt, Session, SessionOptions, Timings, TokenStream,
    Usage,
};
pub use structured_output::OutputConstraint;
pub use vision::{Projector, ProjectorInfo, ProjectorOptions, VisionStats, MEDIA_MARKER};

/// The llmedge version (from Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
