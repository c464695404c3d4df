//! What callers log ([`AuditEvent`]), what the log holds ([`AuditRecord`]), and the line
//! format that the chain hashes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{parse_hex32, sha256_hex, to_hex};
use crate::error::{Error, Result};

/// Version of the record layout, the first field of every line.
pub const FORMAT_VERSION: u32 = 1;

/// Which llmedge surface served the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    Rust,
    C,
    Python,
    Java,
    Cli,
    Server,
}

/// The model that served the request, identified by its content, not its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
    /// SHA-256 of the model file (64 hex digits).
    pub sha256: String,
}

/// Token counts of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCounts {
    pub prompt: u64,
    pub completion: u64,
}

/// One served request, as the caller reports it to [`AuditLog::append`](super::AuditLog::append).
///
/// `prompt` and `output` are never written: the log keeps their SHA-256, so a disputed
/// exchange can be matched against the log without the log disclosing it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub request_id: String,
    /// The caller or tenant the request is accounted to.
    pub tenant: String,
    pub surface: Surface,
    pub model: ModelRef,
    /// SHA-256 of the LoRA adapter, if one was applied.
    pub adapter_sha256: Option<String>,
    /// The sampling parameters as given (e.g. `serde_json::to_value(&generate_options)`).
    pub sampling: Value,
    /// Safety verdicts and redaction counts, as produced by the safety layer.
    pub safety: Value,
    pub prompt: String,
    pub output: String,
    /// Redacted prompt text; stored only if the log's policy opts in.
    pub prompt_redacted: Option<String>,
    /// Redacted output text; stored only if the log's policy opts in.
    pub output_redacted: Option<String>,
    pub tokens: TokenCounts,
    /// Wall time of the whole request.
    pub latency_ms: u64,
    /// Why generation ended (`stop`, `length`, `cancelled`, or a surface's own reason).
    pub finish_reason: String,
    /// How a server handled the request: the router's `route`, `response_cache: "hit"`.
    pub serving: Option<Value>,
}

/// One line of the log. See the [module docs](super) for how `hash` is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// [`FORMAT_VERSION`].
    pub v: u32,
    /// 1, 2, … across all segments of the log.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds; never decreases along the log.
    pub ts: String,
    /// `hash` of the previous record, or [`GENESIS_HASH`](super::GENESIS_HASH).
    pub prev: String,
    pub request_id: String,
    pub tenant: String,
    pub surface: Surface,
    pub model: ModelRef,
    pub adapter_sha256: Option<String>,
    pub sampling: Value,
    pub safety: Value,
    pub prompt_sha256: String,
    pub output_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_redacted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_redacted: Option<String>,
    pub tokens: TokenCounts,
    pub latency_ms: u64,
    pub finish_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<Value>,
    /// Empty until the record is sealed; an empty hash is left out when serialising, which is
    /// how the hashed bytes are produced.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

/// The member that ends every line: `,"hash":"` + 64 hex digits + `"}`.
const HASH_KEY: &[u8] = b",\"hash\":\"";
const HASH_SUFFIX_LEN: usize = HASH_KEY.len() + 64 + 2;

impl AuditRecord {
    /// Everything but `seq`, `ts`, `prev` and `hash`, which the writer fills in under its lock.
    pub(crate) fn from_event(event: &AuditEvent, store_redacted_text: bool) -> Result<Self> {
        let model_sha256 = normalise_sha256("model.sha256", &event.model.sha256)?;
        let adapter_sha256 = event
            .adapter_sha256
            .as_deref()
            .map(|h| normalise_sha256("adapter_sha256", h))
            .transpose()?;
        let keep = |text: &Option<String>| text.clone().filter(|_| store_redacted_text);
        Ok(AuditRecord {
            v: FORMAT_VERSION,
            seq: 0,
            ts: String::new(),
            prev: String::new(),
            request_id: event.request_id.clone(),
            tenant: event.tenant.clone(),
            surface: event.surface,
            model: ModelRef {
                name: event.model.name.clone(),
                sha256: model_sha256,
            },
            adapter_sha256,
            sampling: event.sampling.clone(),
            safety: event.safety.clone(),
            prompt_sha256: sha256_hex(event.prompt.as_bytes()),
            output_sha256: sha256_hex(event.output.as_bytes()),
            prompt_redacted: keep(&event.prompt_redacted),
            output_redacted: keep(&event.output_redacted),
            tokens: event.tokens,
            latency_ms: event.latency_ms,
            finish_reason: event.finish_reason.clone(),
            serving: event.serving.clone(),
            hash: String::new(),
        })
    }

    /// Computes `hash` and writes the record's full line, newline included, into `line`.
    pub(crate) fn seal(&mut self, line: &mut Vec<u8>) -> Result<()> {
        self.hash.clear();
        line.clear();
        serde_json::to_writer(&mut *line, self)
            .map_err(|e| Error::Internal(format!("serialising an audit record: {e}")))?;
        self.hash = to_hex(&Sha256::digest(&line[..]));
        line.pop(); // the closing brace; the hash member goes before it
        line.extend_from_slice(HASH_KEY);
        line.extend_from_slice(self.hash.as_bytes());
        line.extend_from_slice(b"\"}\n");
        Ok(())
    }
}

/// A line (without its newline) checked against the documented hash rule.
pub(crate) struct CheckedLine {
    pub record: AuditRecord,
    pub hash: [u8; 32],
    pub prev: [u8; 32],
    /// Whether the line hashes to its own `hash` member.
    pub intact: bool,
}

/// Parses one line; `Err` says why it is not a record at all.
pub(crate) fn check_line(line: &[u8]) -> Result<CheckedLine, String> {
    let record: AuditRecord = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if record.v != FORMAT_VERSION {
        return Err(format!("unsupported record version {}", record.v));
    }
    let hash = parse_hex32(&record.hash).ok_or("hash is not 64 lowercase hex digits")?;
    let prev = parse_hex32(&record.prev).ok_or("prev is not 64 lowercase hex digits")?;
    let intact = line.len() > HASH_SUFFIX_LEN && {
        let body = &line[..line.len() - HASH_SUFFIX_LEN];
        let suffix = &line[line.len() - HASH_SUFFIX_LEN..];
        let expected = [HASH_KEY, record.hash.as_bytes(), b"\"}"].concat();
        suffix == expected
            && Sha256::new()
                .chain_update(body)
                .chain_update(b"}")
                .finalize()[..]
                == hash
    };
    Ok(CheckedLine {
        record,
        hash,
        prev,
        intact,
    })
}

/// Lowercases a caller-given digest so the log spells every hash one way.
fn normalise_sha256(field: &str, value: &str) -> Result<String> {
    let lower = value.to_ascii_lowercase();
    if parse_hex32(&lower).is_none() {
        return Err(Error::InvalidArgument(format!(
            "audit event {field} must be 64 hex digits, got {value:?}"
        )));
    }
    Ok(lower)
}
