//! The one error type of llmedge. Every surface (C, Python, Java, CLI) reports these codes,
//! so the numbers are part of the public ABI: never renumber, only append.

use std::path::PathBuf;

/// Stable numeric error codes shared by every surface.
///
/// `0` is success in the C ABI and never appears in an [`Error`].
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An argument is out of range or malformed.
    InvalidArgument = 1,
    /// A required pointer or reference was null (raised by the C, Python and Java layers).
    NullArgument = 2,
    /// Text that must be UTF-8 is not.
    InvalidUtf8 = 3,
    /// The model file does not exist or cannot be opened.
    ModelNotFound = 10,
    /// The file is not a valid GGUF model (bad magic, truncated, corrupt tensors).
    InvalidModel = 11,
    /// The GGUF names an architecture this build of llama.cpp does not know.
    UnsupportedArchitecture = 12,
    /// The model or its context does not fit in the available memory.
    OutOfMemory = 13,
    /// llama.cpp refused the model for another reason (see the message).
    ModelLoad = 14,
    /// A LoRA adapter is invalid or does not fit the model (architecture, tensors, shapes).
    Adapter = 15,
    /// The model file is not in the manifest, or its hash or signature does not match.
    ModelIntegrity = 16,
    /// A vision projector (mmproj) is missing, invalid, does not fit the text model, or
    /// failed to encode an image.
    Projector = 17,
    /// An image could not be decoded, is of an unsupported format, or exceeds the limits.
    Image = 18,
    /// A DICOM file could not be used: not DICOM, unsupported transfer syntax or photometric
    /// interpretation, no pixel data, or a frame out of range.
    Dicom = 19,
    /// A llama.cpp context could not be created.
    ContextCreate = 20,
    /// The request does not fit in the context window.
    ContextOverflow = 21,
    /// llama.cpp failed while evaluating tokens.
    Decode = 22,
    /// Text could not be tokenized, or a token id is outside the vocabulary.
    Tokenize = 23,
    /// A chat or prompt template failed to parse or render.
    Template = 30,
    /// The model has no chat template and the caller gave none.
    NoChatTemplate = 31,
    /// A prompt template got missing or unknown variables (the message lists them).
    TemplateVariables = 32,
    /// A JSON schema, regex or grammar cannot be turned into a llama.cpp grammar.
    Grammar = 33,
    /// Constrained output is unusable: generation stopped before the JSON was complete.
    StructuredOutput = 34,
    /// The request or the output was blocked by the safety policy.
    SafetyBlocked = 40,
    /// A safety policy or lexicon file is invalid (the message names the file and line).
    Policy = 41,
    /// The audit log could not be opened, written or recovered (the message names the file).
    Audit = 42,
    /// A file could not be read or written.
    Io = 50,
    /// A downloaded or cached file does not have the expected SHA-256.
    ChecksumMismatch = 51,
    /// A model could not be fetched from its package.
    Fetch = 52,
    /// The object was closed and can no longer be used.
    Closed = 60,
    /// The serving engine's queue is full, or all of a model's `max_sessions` are open: try
    /// again later (HTTP 503).
    Busy = 70,
    /// The request ran past its deadline, queued or generating (HTTP 504).
    Timeout = 71,
    /// A saved session state is corrupt or belongs to another model or adapter set.
    State = 72,
    /// A server configuration file is invalid (the message names the file and line).
    Config = 73,
    /// A request is over a configured resource limit, such as `max_prompt_tokens`.
    Limit = 74,
    /// A bug inside llmedge (a caught panic, a broken invariant).
    Internal = 98,
    /// A panic was caught at the FFI boundary.
    Panic = 99,
}

impl ErrorCode {
    /// Every code, in numeric order: the surfaces generate their constants from this list.
    pub const ALL: [ErrorCode; 36] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NullArgument,
        ErrorCode::InvalidUtf8,
        ErrorCode::ModelNotFound,
        ErrorCode::InvalidModel,
        ErrorCode::UnsupportedArchitecture,
        ErrorCode::OutOfMemory,
        ErrorCode::ModelLoad,
        ErrorCode::Adapter,
        ErrorCode::ModelIntegrity,
        ErrorCode::Projector,
        ErrorCode::Image,
        ErrorCode::Dicom,
        ErrorCode::ContextCreate,
        ErrorCode::ContextOverflow,
        ErrorCode::Decode,
        ErrorCode::Tokenize,
        ErrorCode::Template,
        ErrorCode::NoChatTemplate,
        ErrorCode::TemplateVariables,
        ErrorCode::Grammar,
        ErrorCode::StructuredOutput,
        ErrorCode::SafetyBlocked,
        ErrorCode::Policy,
        ErrorCode::Audit,
        ErrorCode::Io,
        ErrorCode::ChecksumMismatch,
        ErrorCode::Fetch,
        ErrorCode::Closed,
        ErrorCode::Busy,
        ErrorCode::Timeout,
        ErrorCode::State,
        ErrorCode::Config,
        ErrorCode::Limit,
        ErrorCode::Internal,
        ErrorCode::Panic,
    ];

    /// The stable number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code for a number, if it is one.
    pub fn from_i32(code: i32) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_i32() == code)
    }

    /// A short snake_case name, used for exception class names and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NullArgument => "null_argument",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::InvalidModel => "invalid_model",
            ErrorCode::UnsupportedArchitecture => "unsupported_architecture",
            ErrorCode::OutOfMemory => "out_of_memory",
            ErrorCode::ModelLoad => "model_load",
            ErrorCode::Adapter => "adapter",
            ErrorCode::ModelIntegrity => "model_integrity",
            ErrorCode::Projector => "projector",
            ErrorCode::Image => "image",
            ErrorCode::Dicom => "dicom",
            ErrorCode::ContextCreate => "context_create",
            ErrorCode::ContextOverflow => "context_overflow",
            ErrorCode::Decode => "decode",
            ErrorCode::Tokenize => "tokenize",
            ErrorCode::Template => "template",
            ErrorCode::NoChatTemplate => "no_chat_template",
            ErrorCode::SafetyBlocked => "safety_blocked",
            ErrorCode::Policy => "policy",
            ErrorCode::Audit => "audit",
            ErrorCode::TemplateVariables => "template_variables",
            ErrorCode::Grammar => "grammar",
            ErrorCode::StructuredOutput => "structured_output",
            ErrorCode::Io => "io",
            ErrorCode::ChecksumMismatch => "checksum_mismatch",
            ErrorCode::Fetch => "fetch",
            ErrorCode::Closed => "closed",
            ErrorCode::Busy => "busy",
            ErrorCode::Timeout => "timeout",
            ErrorCode::State => "state",
            ErrorCode::Config => "config",
            ErrorCode::Limit => "limit",
            ErrorCode::Internal => "internal",
            ErrorCode::Panic => "panic",
        }
    }
}

/// Everything that can go wrong in llmedge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("null argument: {0}")]
    NullArgument(&'static str),
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    #[error("model file not found: {}", .0.display())]
    ModelNotFound(PathBuf),
    #[error("invalid model file {}: {reason}", .path.display())]
    InvalidModel { path: PathBuf, reason: String },
    #[error("unsupported model architecture in {}: {reason}", .path.display())]
    UnsupportedArchitecture { path: PathBuf, reason: String },
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error("failed to load model {}: {reason}", .path.display())]
    ModelLoad { path: PathBuf, reason: String },
    #[error("LoRA adapter {}: {reason}", .path.display())]
    Adapter { path: PathBuf, reason: String },
    /// Refused by the model manifest (`require_verified_models`): the reason says whether the
    /// file is unlisted, tampered with (expected and actual hash), or the signature is bad.
    #[error("model integrity check failed for {}: {reason}", .path.display())]
    ModelIntegrity { path: PathBuf, reason: String },
    /// The vision projector: none loaded, the file is not one, it does not fit the text
    /// model (the reason carries llama.cpp's message), or encoding failed.
    #[error("vision projector: {0}")]
    Projector(String),
    /// `name` says which image (a file path, or "bytes"); the reason says what is wrong.
    #[error("image {name}: {reason}")]
    Image { name: String, reason: String },
    #[error("DICOM {name}: {reason}")]
    Dicom { name: String, reason: String },
    #[error("failed to create context: {0}")]
    ContextCreate(String),
    #[error("context overflow: {needed} tokens needed but the context holds {n_ctx}")]
    ContextOverflow { needed: usize, n_ctx: usize },
    #[error("decode failed: {0}")]
    Decode(String),
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    #[error("template error: {0}")]
    Template(String),
    #[error("the model has no chat template; pass one explicitly (a Jinja string or a built-in name such as \"chatml\")")]
    NoChatTemplate,
    #[error("template {template:?}: {}", variables_message(.missing, .extra))]
    TemplateVariables {
        template: String,
        missing: Vec<String>,
        extra: Vec<String>,
    },
    #[error("grammar error: {0}")]
    Grammar(String),
    #[error("structured output error: {0}")]
    StructuredOutput(String),
    #[error("blocked by the safety policy ({category}): {message}")]
    SafetyBlocked { category: String, message: String },
    #[error("invalid policy file {}:{line}: {reason}", .path.display())]
    Policy {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("audit log {}: {reason}", .path.display())]
    Audit { path: PathBuf, reason: String },
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checksum mismatch for {}: expected {expected}, got {actual}", .path.display())]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("fetch failed: {0}")]
    Fetch(String),
    #[error("{0} is closed")]
    Closed(&'static str),
    #[error("busy: {0}")]
    Busy(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("session state {}: {reason}", .path.display())]
    State { path: PathBuf, reason: String },
    #[error("invalid configuration {}{}: {reason}", .path.display(), line_suffix(*.line))]
    Config {
        path: PathBuf,
        /// 1-based; 0 when the mistake is not on one line.
        line: usize,
        reason: String,
    },
    #[error("limit exceeded: {0}")]
    Limit(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("panic: {0}")]
    Panic(String),
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::NullArgument(_) => ErrorCode::NullArgument,
            Error::InvalidUtf8(_) => ErrorCode::InvalidUtf8,
            Error::ModelNotFound(_) => ErrorCode::ModelNotFound,
            Error::InvalidModel { .. } => ErrorCode::InvalidModel,
            Error::UnsupportedArchitecture { .. } => ErrorCode::UnsupportedArchitecture,
            Error::OutOfMemory(_) => ErrorCode::OutOfMemory,
            Error::ModelLoad { .. } => ErrorCode::ModelLoad,
            Error::Adapter { .. } => ErrorCode::Adapter,
            Error::ModelIntegrity { .. } => ErrorCode::ModelIntegrity,
            Error::Projector(_) => ErrorCode::Projector,
            Error::Image { .. } => ErrorCode::Image,
            Error::Dicom { .. } => ErrorCode::Dicom,
            Error::ContextCreate(_) => ErrorCode::ContextCreate,
            Error::ContextOverflow { .. } => ErrorCode::ContextOverflow,
            Error::Decode(_) => ErrorCode::Decode,
            Error::Tokenize(_) => ErrorCode::Tokenize,
            Error::Template(_) => ErrorCode::Template,
            Error::NoChatTemplate => ErrorCode::NoChatTemplate,
            Error::SafetyBlocked { .. } => ErrorCode::SafetyBlocked,
            Error::Policy { .. } => ErrorCode::Policy,
            Error::Audit { .. } => ErrorCode::Audit,
            Error::TemplateVariables { .. } => ErrorCode::TemplateVariables,
            Error::Grammar(_) => ErrorCode::Grammar,
            Error::StructuredOutput(_) => ErrorCode::StructuredOutput,
            Error::Io { .. } => ErrorCode::Io,
            Error::ChecksumMismatch { .. } => ErrorCode::ChecksumMismatch,
            Error::Fetch(_) => ErrorCode::Fetch,
            Error::Closed(_) => ErrorCode::Closed,
            Error::Busy(_) => ErrorCode::Busy,
            Error::Timeout(_) => ErrorCode::Timeout,
            Error::State { .. } => ErrorCode::State,
            Error::Config { .. } => ErrorCode::Config,
            Error::Limit(_) => ErrorCode::Limit,
            Error::Internal(_) => ErrorCode::Internal,
            Error::Panic(_) => ErrorCode::Panic,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

fn line_suffix(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

fn variables_message(missing: &[String], extra: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing variables: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("unknown variables: {}", extra.join(", ")));
    }
    parts.join("; ")
}

/// Result alias used across llmedge.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_round_trip() {
        let mut last = 0;
        for code in ErrorCode::ALL {
            assert!(code.as_i32() > last, "{code:?} out of order");
            last = code.as_i32();
            assert_eq!(ErrorCode::from_i32(code.as_i32()), Some(code));
        }
        assert_eq!(ErrorCode::from_i32(0), None);
    }

    #[test]
    fn every_variant_maps_to_its_code() {
        assert_eq!(Error::NoChatTemplate.code(), ErrorCode::NoChatTemplate);
        let e = Error::ContextOverflow {
            needed: 10,
            n_ctx: 5,
        };
        assert_eq!(e.code().as_i32(), 21);
        assert!(e.to_string().contains("10 tokens"));
        let e = Error::Policy {
            path: "p.toml".into(),
            line: 3,
            reason: "bad".into(),
        };
        assert_eq!(e.code().as_i32(), 41);
        assert_eq!(e.code().name(), "policy");
        assert!(e.to_string().contains("p.toml:3"));
        let e = Error::Audit {
            path: "a".into(),
            reason: "x".into(),
        };
        assert_eq!(e.code().as_i32(), 42);
    }
}
